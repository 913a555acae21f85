// minidl/layers/avgpool2d.hpp - AvgPool2d: averages over windows, as torch.nn.AvgPool2d.
#pragma once

#include <cstdint>
#include <string>

#include "minidl/kernels/avgpool2d.hpp"
#include "minidl/layers/layer.hpp"
#include "minidl/layers/pool2d_arg.hpp"

namespace minidl {

// Input [N, C, H, W] -> output [N, C, OH, OW], as
// torch.nn.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad):
// OH = floor((H + 2 padding - kernel) / stride) + 1 (ceil in ceil mode), each
// output the mean of its window; count_include_pad: the divisor counts the
// zero padding (not what lies past it in ceil mode), else only the input.
// Stride 0 (the default) means the kernel size. Each size is one number or
// {h, w}. Nothing is cached for backward but the shape: the gradient of an
// average does not depend on x.
template <typename T>
class AvgPool2d : public Layer<T> {
 public:
  explicit AvgPool2d(Pool2dArg kernel, Pool2dArg stride = 0, Pool2dArg padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true)
      : kernel_(kernel),
        stride_(stride == Pool2dArg(0) ? kernel : stride),
        padding_(padding),
        ceil_mode_(ceil_mode),
        count_include_pad_(count_include_pad) {
    if (kernel_.h <= 0 || kernel_.w <= 0 || stride_.h <= 0 || stride_.w <= 0)
      fail(this->label(), ": kernel ", kernel_.str(), " and stride ", stride_.str(),
           " must be positive");
    if (padding_.h < 0 || padding_.w < 0 || 2 * padding_.h > kernel_.h ||
        2 * padding_.w > kernel_.w)
      fail(this->label(), ": padding ", padding_.str(),
           " must be between 0 and half the kernel size ", kernel_.str());
  }

  std::string type() const override { return "AvgPool2d"; }
  std::string describe() const override {
    std::string d = "kernel " + kernel_.str() + ", stride " + stride_.str();
    if (!(padding_ == Pool2dArg(0))) d += ", pad " + padding_.str();
    if (ceil_mode_) d += ", ceil mode";
    if (!count_include_pad_) d += ", padding not counted";
    return d;
  }
  bool backward_reads_output() const override { return false; }
  Pool2dArg kernel() const { return kernel_; }
  Pool2dArg stride() const { return stride_; }
  Pool2dArg padding() const { return padding_; }
  bool ceil_mode() const { return ceil_mode_; }
  bool count_include_pad() const { return count_include_pad_; }

  Shape output_shape(const Shape& in) const override {
    if (in.rank() != 4) this->shape_error("[N, C, H, W]", in);
    const auto s = pool_shape(in);
    if (s.OH() <= 0 || s.OW() <= 0)
      fail(this->label(), ": input ", in.str(), " is smaller than the window ", kernel_.str(),
           " with padding ", padding_.str());
    return Shape{in[0], in[1], s.OH(), s.OW()};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    output_.resize(output_shape(x.shape()));
    shape_ = pool_shape(x.shape());
    in_shape_ = x.shape();
    kernels::avgpool2d_forward(shape_, count_include_pad_, x.data(), output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_.resize(in_shape_);
    kernels::avgpool2d_backward(shape_, count_include_pad_, dy.data(), this->dinput_.data());
    return this->dinput_;
  }

 private:
  kernels::Pool2dShape pool_shape(const Shape& in) const {
    return {in[0] * in[1],
            kernels::pool_axis(in[2], kernel_.h, stride_.h, padding_.h, 1, ceil_mode_),
            kernels::pool_axis(in[3], kernel_.w, stride_.w, padding_.w, 1, ceil_mode_)};
  }

  Pool2dArg kernel_, stride_, padding_;
  bool ceil_mode_, count_include_pad_;
  Shape in_shape_;
  kernels::Pool2dShape shape_{};
  Tensor<T> output_;
};

}  // namespace minidl
