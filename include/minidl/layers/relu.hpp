// minidl/layers/relu.hpp - ReLU: max(x, 0) elementwise.
#pragma once

#include <string>

#include "minidl/kernels/relu.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Any shape. Cached for backward: the output (its sign is the gradient mask).
template <typename T>
class ReLU : public Layer<T> {
 public:
  std::string type() const override { return "ReLU"; }
  Shape output_shape(const Shape& in) const override { return in; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    output_.resize(x.shape());
    kernels::relu_forward(x.size(), x.data(), output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    dinput_.resize(dy.shape());
    kernels::relu_backward(dy.size(), output_.data(), dy.data(), dinput_.data());
    return dinput_;
  }

 private:
  Tensor<T> output_, dinput_;
};

}  // namespace minidl
