// minidl/layers/maxpool2d.hpp - MaxPool2d: max over windows, as torch.nn.MaxPool2d.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minidl/kernels/maxpool2d.hpp"
#include "minidl/layers/layer.hpp"
#include "minidl/layers/pool2d_arg.hpp"

namespace minidl {

// Input [N, C, H, W] -> output [N, C, OH, OW], as
// torch.nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode):
// OH = floor((H + 2 padding - dilation (kernel - 1) - 1) / stride) + 1 (ceil
// in ceil mode); padding counts as -inf. Stride 0 (the default) means the
// kernel size; each size is one number or {h, w}. Ties go to the first
// maximum in row-major order, as PyTorch routes the gradient; a NaN wins
// only when it comes first in its window (PyTorch's always wins). Cached for backward:
// a view of the input (the previous layer's output buffer, untouched until
// the next forward); the backward pass finds each window's winner again,
// which costs less than storing its position.
//
// forward() and backward() are the plain passes. The plan pass
// (layers/plan.hpp) may instead call forward_with(), which can also apply
// the backward of a ReLU before the pool (windows whose maximum is 0 route
// no gradient) and, for 2x2 windows with stride 2 (is_2x2()), record each window's
// winner in a byte so that backward never reads x; begin_planes() and
// take_planes(), which pool the input as the convolution before it computes
// it, a few planes at a time, so that x is never stored; backward_with(),
// which may write the input gradient over the dead input; and
// keep_output_grad() with input_grad_plane(), which make the input gradient
// one plane at a time for the convolution before it.
template <typename T>
class MaxPool2d : public Layer<T> {
 public:
  explicit MaxPool2d(Pool2dArg kernel, Pool2dArg stride = 0, Pool2dArg padding = 0,
                     Pool2dArg dilation = 1, bool ceil_mode = false)
      : kernel_(kernel),
        stride_(stride == Pool2dArg(0) ? kernel : stride),
        padding_(padding),
        dilation_(dilation),
        ceil_mode_(ceil_mode) {
    if (kernel_.h <= 0 || kernel_.w <= 0 || stride_.h <= 0 || stride_.w <= 0 || dilation_.h <= 0 ||
        dilation_.w <= 0)
      fail(this->label(), ": kernel ", kernel_.str(), ", stride ", stride_.str(), " and dilation ",
           dilation_.str(), " must be positive");
    if (padding_.h < 0 || padding_.w < 0 || 2 * padding_.h > kernel_.h ||
        2 * padding_.w > kernel_.w)
      fail(this->label(), ": padding ", padding_.str(),
           " must be between 0 and half the kernel size ", kernel_.str());
  }

  std::string type() const override { return "MaxPool2d"; }
  std::string describe() const override {
    std::string d = "kernel " + kernel_.str() + ", stride " + stride_.str();
    if (!(padding_ == Pool2dArg(0))) d += ", pad " + padding_.str();
    if (!(dilation_ == Pool2dArg(1))) d += ", dilation " + dilation_.str();
    if (ceil_mode_) d += ", ceil mode";
    return d;
  }
  bool backward_reads_output() const override { return false; }
  Pool2dArg kernel() const { return kernel_; }
  Pool2dArg stride() const { return stride_; }
  Pool2dArg padding() const { return padding_; }
  Pool2dArg dilation() const { return dilation_; }
  bool ceil_mode() const { return ceil_mode_; }
  // 2x2 windows, stride 2, no padding, dilation or ceil mode: the windows
  // whose winners fit a byte, which the plane fusions of the plan need.
  bool is_2x2() const {
    return kernel_ == Pool2dArg(2) && stride_ == Pool2dArg(2) && padding_ == Pool2dArg(0) &&
           dilation_ == Pool2dArg(1) && !ceil_mode_;
  }

  Shape output_shape(const Shape& in) const override {
    if (in.rank() != 4) this->shape_error("[N, C, H, W]", in);
    const auto s = windows(in);
    if (s.OH() <= 0 || s.OW() <= 0)
      fail(this->label(), ": input ", in.str(), " is smaller than the window ", kernel_.str(),
           describe_padding());
    if (!kernels::every_window_inside(s.h) || !kernels::every_window_inside(s.w))
      fail(this->label(), ": with input ", in.str(), ", a window ", kernel_.str(),
           describe_padding(), " falls wholly in the padding or between input elements");
    return Shape{in[0], in[1], s.OH(), s.OW()};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    return forward_with(x, false, false);
  }

  // relu_before: the input is a ReLU's output whose backward this layer does.
  // keep_winners (2x2 windows): record the winners for input_grad_plane().
  const Tensor<T>& forward_with(const Tensor<T>& x, bool relu_before, bool keep_winners) {
    begin(x.shape(), relu_before);
    input_ = x;
    fed_ = false;
    if (keep_winners) winners_.resize(static_cast<std::size_t>(output_.size()));
    if (is_2x2())
      kernels::maxpool2d_forward(shape_2x2_, x.data(), output_.data(),
                                 keep_winners ? winners_.data() : nullptr, relu_before);
    else if (keep_winners)
      fail(this->label(), ": winners are recorded for 2x2 windows with stride 2 only");
    else
      kernels::maxpool2d_forward(shape_, x.data(), output_.data());
    return output_;
  }

  // The forward pass with the input handed over a few planes at a time
  // ([N, C] order, any thread): begin_planes(), then take_planes() until
  // every plane has come; output() is then the result. 2x2 windows only.
  void begin_planes(const Shape& in, bool relu_before) {
    if (!is_2x2()) fail(this->label(), ": planes need 2x2 windows with stride 2");
    begin(in, relu_before);
    input_ = Tensor<T>();
    fed_ = true;
    winners_.resize(static_cast<std::size_t>(output_.size()));
  }
  void take_planes(std::int64_t p0, std::int64_t count, const T* planes) {
    kernels::maxpool2x2_forward_planes(shape_2x2_, p0, count, planes, output_.data(),
                                       winners_.data(), relu_before_);
  }
  const Tensor<T>& output() const { return output_; }

  const Tensor<T>& backward(const Tensor<T>& dy) override { return backward_with(dy, false); }

  // overwrite_input: nothing reads the input after this, so the input
  // gradient may be written over its storage.
  const Tensor<T>& backward_with(const Tensor<T>& dy, bool overwrite_input) {
    check_dy(dy);
    if (fed_) {  // no input stored: its winners route dy
      this->dinput_.resize(in_shape_);
      kernels::maxpool2x2_backward_from_winners(shape_2x2_, winners_.data(), dy.data(),
                                                this->dinput_.data());
      return this->dinput_;
    }
    if (overwrite_input)
      this->dinput_ = input_;
    else
      this->dinput_.resize(input_.shape());
    if (is_2x2())
      kernels::maxpool2d_backward(shape_2x2_, input_.data(), dy.data(), this->dinput_.data(),
                                  relu_before_);
    else
      kernels::maxpool2d_backward(shape_, input_.data(), dy.data(), this->dinput_.data(),
                                  relu_before_);
    return this->dinput_;
  }

  // The backward pass deferred: keeps a view of dy, from which
  // input_grad_plane(p, out) writes plane p of the input gradient (winners
  // recorded in forward). A full-size gradient is never written.
  void keep_output_grad(const Tensor<T>& dy) {
    check_dy(dy);
    if (winners_.size() != static_cast<std::size_t>(output_.size()))
      fail(this->label(), ": no winners recorded for a deferred input gradient");
    dy_ = dy;
  }
  void input_grad_plane(std::int64_t p, T* out) const {
    kernels::maxpool2x2_input_grad_plane(shape_2x2_, p, winners_.data(), dy_.data(), out);
  }

 private:
  void begin(const Shape& in, bool relu_before) {
    output_.resize(output_shape(in));
    shape_ = windows(in);
    shape_2x2_ = {in[0] * in[1], in[2], in[3], 2, 2};
    in_shape_ = in;
    relu_before_ = relu_before;
  }
  void check_dy(const Tensor<T>& dy) const {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
  }
  kernels::Pool2dShape windows(const Shape& in) const {
    return {in[0] * in[1],
            kernels::pool_axis(in[2], kernel_.h, stride_.h, padding_.h, dilation_.h, ceil_mode_),
            kernels::pool_axis(in[3], kernel_.w, stride_.w, padding_.w, dilation_.w, ceil_mode_)};
  }
  std::string describe_padding() const {
    return " (padding " + padding_.str() + ", dilation " + dilation_.str() + ")";
  }

  Pool2dArg kernel_, stride_, padding_, dilation_;
  bool ceil_mode_;
  bool relu_before_ = false;  // the input is a ReLU's output, whose backward is done here
  bool fed_ = false;          // the last input came as planes; only winners_ were kept
  Shape in_shape_;
  Tensor<T> input_, output_, dy_;
  std::vector<std::uint8_t> winners_;  // max2x2_winner of each window, when recorded
  kernels::Pool2dShape shape_{};
  kernels::MaxPool2dShape shape_2x2_{};  // the same windows, for the 2x2 kernels
};

}  // namespace minidl
