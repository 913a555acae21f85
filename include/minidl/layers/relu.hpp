// minidl/layers/relu.hpp - ReLU: max(x, 0) elementwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minidl/kernels/relu.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Any shape. Cached for backward: the output (its sign is the gradient mask).
//
// ReLU(true) works in place, like torch.nn.ReLU(inplace=True): forward
// overwrites its input and backward overwrites the incoming gradient. It
// keeps a byte per element (x > 0) instead of reading the output back, so
// that the layer after it may reuse the shared buffer for its gradient.
// The plan pass refuses it after a layer whose backward reads its own
// output, or on a value something else reads too.
//
// When the plan pass has the layer after it do this layer's backward (a
// max-pool), it calls forward_unmasked() instead of forward() and skips
// backward(); when the layer before it also applies max(x, 0) as it stores
// its output (a convolution or a batch norm), it skips the forward, and
// the backward too if that layer does it (a batch norm, or a convolution
// followed by a max-pool), else calls backward_from_output().
template <typename T>
class ReLU : public Layer<T> {
 public:
  explicit ReLU(bool inplace = false) : inplace_(inplace) {}

  std::string type() const override { return "ReLU"; }
  std::string describe() const override { return inplace_ ? "in place" : ""; }
  bool backward_reads_output() const override { return !inplace_; }
  bool output_aliases_input() const override { return inplace_; }
  Shape output_shape(const Shape& in) const override { return in; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    if (!inplace_) return forward_unmasked(x);
    output_ = x;  // a view of the same elements
    mask_.resize(static_cast<std::size_t>(x.size()));
    kernels::relu_forward_mask(x.size(), x.data(), output_.data(), mask_.data());
    return output_;
  }

  // max(x, 0) without the mask an in-place backward needs.
  const Tensor<T>& forward_unmasked(const Tensor<T>& x) {
    if (inplace_)
      output_ = x;
    else
      output_.resize(x.shape());
    kernels::relu_forward(x.size(), x.data(), output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    if (inplace_) {
      this->dinput_ = dy;
      kernels::relu_backward_mask(dy.size(), mask_.data(), dy.data(), this->dinput_.data());
    } else {
      this->dinput_.resize(dy.shape());
      kernels::relu_backward(dy.size(), output_.data(), dy.data(), this->dinput_.data());
    }
    return this->dinput_;
  }

  // The backward of an in-place ReLU whose forward the layer before did as
  // it stored `output` (plan step 5): dy is zeroed, in place, where that
  // stored max(y, 0) is not positive, which is where the mask would be 0.
  const Tensor<T>& backward_from_output(const Tensor<T>& dy, const Tensor<T>& output) {
    if (dy.shape() != output.shape())
      fail(this->label(), ": backward expected dy ", output.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_ = dy;
    kernels::relu_backward(dy.size(), output.data(), dy.data(), this->dinput_.data());
    return this->dinput_;
  }

  bool inplace() const { return inplace_; }

 private:
  bool inplace_;
  Tensor<T> output_;
  std::vector<std::uint8_t> mask_;  // in place: 1 where x > 0
};

}  // namespace minidl
