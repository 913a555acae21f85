// minidl/layers/sigmoid.hpp - Sigmoid: 1 / (1 + exp(-x)) elementwise.
#pragma once

#include <string>

#include "minidl/kernels/activations.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Any shape; torch.nn.Sigmoid. Cached for backward: the output, since
// dx = dy y (1 - y) needs nothing else (no exp in backward).
template <typename T>
class Sigmoid : public Layer<T> {
 public:
  std::string type() const override { return "Sigmoid"; }
  bool backward_reads_output() const override { return true; }
  Shape output_shape(const Shape& in) const override { return in; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    output_.resize(x.shape());
    kernels::sigmoid_forward(x.size(), x.data(), output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_.resize(dy.shape());
    kernels::sigmoid_backward(dy.size(), output_.data(), dy.data(), this->dinput_.data());
    return this->dinput_;
  }

 private:
  Tensor<T> output_;
};

}  // namespace minidl
