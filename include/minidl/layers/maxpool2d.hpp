// minidl/layers/maxpool2d.hpp - MaxPool2d: max over K x K windows, no padding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minidl/kernels/maxpool2d.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Input [N, C, H, W] -> output [N, C, OH, OW], OH = (H - K) / stride + 1 as
// torch.nn.MaxPool2d(K, stride) (stride defaults to K). Cached for backward:
// a view of the input (the previous layer's output buffer, untouched until
// the next forward); the backward pass finds each window's winner again,
// which costs less than storing its position.
//
// forward() and backward() are the plain passes. The plan pass
// (layers/plan.hpp) may instead call forward_with(), which can also apply
// the backward of a ReLU before the pool (windows whose maximum is 0 route
// no gradient) and, for 2x2 windows with stride 2, record each window's
// winner in a byte so that backward never reads x; begin_planes() and
// take_planes(), which pool the input as the convolution before it computes
// it, a few planes at a time, so that x is never stored; backward_with(),
// which may write the input gradient over the dead input; and
// keep_output_grad() with input_grad_plane(), which make the input gradient
// one plane at a time for the convolution before it.
template <typename T>
class MaxPool2d : public Layer<T> {
 public:
  explicit MaxPool2d(std::int64_t kernel_size, std::int64_t stride = 0)
      : k_(kernel_size), stride_(stride ? stride : kernel_size) {
    if (k_ <= 0 || stride_ <= 0) fail("MaxPool2d: invalid kernel ", k_, " or stride ", stride_);
  }

  std::string type() const override { return "MaxPool2d"; }
  std::string describe() const override {
    return "kernel " + std::to_string(k_) + ", stride " + std::to_string(stride_);
  }
  bool backward_reads_output() const override { return false; }
  // Whether winners can be recorded: what planes and deferred gradients need.
  bool is_2x2() const { return k_ == 2 && stride_ == 2; }

  Shape output_shape(const Shape& in) const override {
    if (in.rank() != 4) this->shape_error("[N, C, H, W]", in);
    if (in[2] < k_ || in[3] < k_)
      fail(this->label(), ": input ", in.str(), " is smaller than the window ", k_, "x", k_);
    const auto s = pool_shape(in);
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
    kernels::maxpool2d_forward(shape_, x.data(), output_.data(),
                               keep_winners ? winners_.data() : nullptr, relu_before);
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
    kernels::maxpool2x2_forward_planes(shape_, p0, count, planes, output_.data(), winners_.data(),
                                       relu_before_);
  }
  const Tensor<T>& output() const { return output_; }

  const Tensor<T>& backward(const Tensor<T>& dy) override { return backward_with(dy, false); }

  // overwrite_input: nothing reads the input after this, so the input
  // gradient may be written over its storage.
  const Tensor<T>& backward_with(const Tensor<T>& dy, bool overwrite_input) {
    check_dy(dy);
    if (fed_) {  // no input stored: its winners route dy
      dinput_.resize(in_shape_);
      kernels::maxpool2x2_backward_from_winners(shape_, winners_.data(), dy.data(), dinput_.data());
      return dinput_;
    }
    if (overwrite_input)
      dinput_ = input_;
    else
      dinput_.resize(input_.shape());
    kernels::maxpool2d_backward(shape_, input_.data(), dy.data(), dinput_.data(), relu_before_);
    return dinput_;
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
    kernels::maxpool2x2_input_grad_plane(shape_, p, winners_.data(), dy_.data(), out);
  }

 private:
  void begin(const Shape& in, bool relu_before) {
    output_.resize(output_shape(in));
    shape_ = pool_shape(in);
    in_shape_ = in;
    relu_before_ = relu_before;
  }
  void check_dy(const Tensor<T>& dy) const {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
  }
  kernels::MaxPool2dShape pool_shape(const Shape& in) const {
    return {in[0] * in[1], in[2], in[3], k_, stride_};
  }

  std::int64_t k_, stride_;
  bool relu_before_ = false;  // the input is a ReLU's output, whose backward is done here
  bool fed_ = false;          // the last input came as planes; only winners_ were kept
  Shape in_shape_;
  Tensor<T> input_, output_, dinput_, dy_;
  std::vector<std::uint8_t> winners_;  // max2x2_winner of each window, when recorded
  kernels::MaxPool2dShape shape_{};
};

}  // namespace minidl
