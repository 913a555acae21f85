// minidl/layers/leaky_relu.hpp - LeakyReLU: x where x > 0, else negative_slope x.
#pragma once

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "minidl/kernels/activations.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Any shape; torch.nn.LeakyReLU(negative_slope=0.01, inplace=False). Any
// finite slope, negative ones included (PyTorch refuses those in place).
//
// Cached for backward: a view of the input (no copy; the layer before
// leaves its output untouched until the next forward): with a negative
// slope the output's sign no longer tells which side x was on. Not reading
// the output lets the layer after write over it.
//
// LeakyReLU(slope, true) works in place, like ReLU(true): forward
// overwrites its input and keeps a byte per element (x > 0) for backward,
// which overwrites the incoming gradient. The plan pass refuses it where
// its input is read by something else or by its producer's backward.
template <typename T>
class LeakyReLU : public Layer<T> {
 public:
  explicit LeakyReLU(double negative_slope = 0.01, bool inplace = false)
      : slope_(negative_slope), inplace_(inplace) {
    if (!std::isfinite(negative_slope))
      fail(type(), ": negative_slope must be a finite number, got ", negative_slope);
  }

  std::string type() const override { return "LeakyReLU"; }
  std::string describe() const override {
    std::ostringstream os;
    os << "negative_slope " << slope_ << (inplace_ ? ", in place" : "");
    return os.str();
  }
  bool backward_reads_output() const override { return false; }
  bool output_aliases_input() const override { return inplace_; }
  Shape output_shape(const Shape& in) const override { return in; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    const T slope = static_cast<T>(slope_);
    if (inplace_) {
      output_ = x;  // a view of the same elements
      mask_.resize(static_cast<std::size_t>(x.size()));
      kernels::leaky_relu_forward_mask(x.size(), slope, x.data(), output_.data(), mask_.data());
    } else {
      input_ = x;
      output_.resize(x.shape());
      kernels::leaky_relu_forward(x.size(), slope, x.data(), output_.data());
    }
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    const T slope = static_cast<T>(slope_);
    if (inplace_) {
      this->dinput_ = dy;
      kernels::leaky_relu_backward_mask(dy.size(), slope, mask_.data(), dy.data(),
                                        this->dinput_.data());
    } else {
      this->dinput_.resize(dy.shape());
      kernels::leaky_relu_backward(dy.size(), slope, input_.data(), dy.data(),
                                   this->dinput_.data());
    }
    return this->dinput_;
  }

  double negative_slope() const { return slope_; }
  bool inplace() const { return inplace_; }

 private:
  double slope_;
  bool inplace_;
  Tensor<T> input_, output_;
  std::vector<std::uint8_t> mask_;  // in place: 1 where x > 0
};

}  // namespace minidl
