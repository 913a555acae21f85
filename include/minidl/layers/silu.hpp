// minidl/layers/silu.hpp - SiLU (swish): x sigmoid(x) elementwise.
#pragma once

#include <string>

#include "minidl/kernels/activations.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Any shape; torch.nn.SiLU. Cached for backward: a view of the input, not
// the output: dx = dy s (1 + x (1 - s)) with s = sigmoid(x) cannot be had
// from y = x s alone, and a view costs no copy (the layer before leaves its
// output untouched until the next forward). Backward recomputes s. Not
// reading the output lets the layer after write over it.
template <typename T>
class SiLU : public Layer<T> {
 public:
  std::string type() const override { return "SiLU"; }
  bool backward_reads_output() const override { return false; }
  Shape output_shape(const Shape& in) const override { return in; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    input_ = x;
    output_.resize(x.shape());
    kernels::silu_forward(x.size(), x.data(), output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != input_.shape())
      fail(this->label(), ": backward expected dy ", input_.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_.resize(dy.shape());
    kernels::silu_backward(dy.size(), input_.data(), dy.data(), this->dinput_.data());
    return this->dinput_;
  }

 private:
  Tensor<T> input_, output_;
};

}  // namespace minidl
