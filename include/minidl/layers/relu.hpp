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
// Safe after a layer whose backward does not read its own output (Conv2d,
// Linear, MaxPool2d do not); the input tensor passed to forward is changed.
//
// Before a MaxPool2d in a Sequential, the pool does this layer's backward
// inside its own (set_backward_folded): forward then keeps no mask and
// backward hands the gradient through untouched. In place and after a
// Conv2d as well, the convolution applies it as it stores its output
// (set_forward_folded), and forward hands its input on untouched too.
template <typename T>
class ReLU : public Layer<T> {
 public:
  explicit ReLU(bool inplace = false) : inplace_(inplace) {}

  std::string type() const override { return "ReLU"; }
  std::string describe() const override { return inplace_ ? "in place" : ""; }
  bool backward_reads_output() const override { return !inplace_ && !folded_; }
  bool output_aliases_input() const override { return inplace_; }
  Shape output_shape(const Shape& in) const override { return in; }

  bool is_relu() const override { return true; }
  void set_backward_folded(bool folded) override { folded_ = folded; }
  bool backward_folded() const { return folded_; }
  // Only an in-place ReLU with its backward folded has nothing left to do:
  // its output is its input's storage, and it keeps no mask.
  bool set_forward_folded(bool folded) override {
    forward_folded_ = folded && inplace_ && folded_;
    return forward_folded_;
  }
  bool forward_folded() const { return forward_folded_; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    if (inplace_)
      output_ = x;  // a view of the same elements
    else
      output_.resize(x.shape());
    if (forward_folded_) {
      // The layer before has applied max(x, 0) already.
    } else if (inplace_ && !folded_) {  // backward needs the sign, and x is overwritten
      mask_.resize(static_cast<std::size_t>(x.size()));
      kernels::relu_forward_mask(x.size(), x.data(), output_.data(), mask_.data());
    } else {
      kernels::relu_forward(x.size(), x.data(), output_.data());
    }
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    if (folded_) {
      dinput_ = dy;  // the next layer's backward has applied this one already
    } else if (inplace_) {
      dinput_ = dy;
      kernels::relu_backward_mask(dy.size(), mask_.data(), dy.data(), dinput_.data());
    } else {
      dinput_.resize(dy.shape());
      kernels::relu_backward(dy.size(), output_.data(), dy.data(), dinput_.data());
    }
    return dinput_;
  }

  bool inplace() const { return inplace_; }

 private:
  bool inplace_;
  bool folded_ = false;          // backward done by the layer after
  bool forward_folded_ = false;  // forward done by the layer before
  Tensor<T> output_, dinput_;
  std::vector<std::uint8_t> mask_;  // in place: 1 where x > 0
};

}  // namespace minidl
