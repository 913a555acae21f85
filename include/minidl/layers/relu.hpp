// minidl/layers/relu.hpp - ReLU: max(x, 0) elementwise.
#pragma once

#include <string>

#include "minidl/kernels/relu.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Any shape. Cached for backward: the output (its sign is the gradient mask).
//
// ReLU(true) works in place, like torch.nn.ReLU(inplace=True): forward
// overwrites its input and backward overwrites the incoming gradient, so the
// layer owns no buffers. Safe after a layer whose backward does not read its
// own output (Conv2d, Linear, MaxPool2d and ReLU do not); the input tensor
// passed to forward is changed.
template <typename T>
class ReLU : public Layer<T> {
 public:
  explicit ReLU(bool inplace = false) : inplace_(inplace) {}

  std::string type() const override { return "ReLU"; }
  std::string describe() const override { return inplace_ ? "in place" : ""; }
  Shape output_shape(const Shape& in) const override { return in; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    if (inplace_)
      output_ = x;  // a view of the same elements
    else
      output_.resize(x.shape());
    kernels::relu_forward(x.size(), x.data(), output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    if (inplace_)
      dinput_ = dy;
    else
      dinput_.resize(dy.shape());
    kernels::relu_backward(dy.size(), output_.data(), dy.data(), dinput_.data());
    return dinput_;
  }

  bool inplace() const { return inplace_; }

 private:
  bool inplace_;
  Tensor<T> output_, dinput_;
};

}  // namespace minidl
