// minidl/layers/gelu.hpp - GELU: x Phi(x) elementwise, exact (erf) or in its tanh form.
#pragma once

#include <string>

#include "minidl/kernels/activations.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// torch.nn.GELU(approximate='none' | 'tanh').
enum class GeluApproximate { none, tanh };

// Any shape. exact: y = x/2 (1 + erf(x / sqrt 2)); tanh:
// y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Cached for backward: a
// view of the input (no copy; the layer before leaves its output untouched
// until the next forward), because the derivative is a function of x that
// y does not give back (GELU is not monotonic below -0.75). Not reading the
// output lets the layer after write over it.
template <typename T>
class GELU : public Layer<T> {
 public:
  explicit GELU(GeluApproximate approximate = GeluApproximate::none) : approximate_(approximate) {}
  // "none" or "tanh", as PyTorch spells it.
  explicit GELU(const std::string& approximate) {
    if (approximate == "none")
      approximate_ = GeluApproximate::none;
    else if (approximate == "tanh")
      approximate_ = GeluApproximate::tanh;
    else
      fail(type(), ": approximate must be 'none' or 'tanh', got '", approximate, "'");
  }

  std::string type() const override { return "GELU"; }
  std::string describe() const override {
    return approximate_ == GeluApproximate::tanh ? "approximate tanh" : "";
  }
  bool backward_reads_output() const override { return false; }
  Shape output_shape(const Shape& in) const override { return in; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    input_ = x;
    output_.resize(x.shape());
    if (approximate_ == GeluApproximate::tanh)
      kernels::gelu_tanh_forward(x.size(), x.data(), output_.data());
    else
      kernels::gelu_forward(x.size(), x.data(), output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != input_.shape())
      fail(this->label(), ": backward expected dy ", input_.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_.resize(dy.shape());
    if (approximate_ == GeluApproximate::tanh)
      kernels::gelu_tanh_backward(dy.size(), input_.data(), dy.data(), this->dinput_.data());
    else
      kernels::gelu_backward(dy.size(), input_.data(), dy.data(), this->dinput_.data());
    return this->dinput_;
  }

  GeluApproximate approximate() const { return approximate_; }

 private:
  GeluApproximate approximate_ = GeluApproximate::none;
  Tensor<T> input_, output_;
};

}  // namespace minidl
