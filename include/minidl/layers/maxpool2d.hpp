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
// which costs less than storing its position. After a ReLU (in a
// Sequential) it also applies the ReLU's backward: windows whose maximum is
// 0 route no gradient. With 2x2 windows and stride 2 it can pass planes
// instead of whole tensors (see Sequential): it then records each window's
// winner in a byte in forward, so that backward never reads x. Taking its
// input plane by plane (take_input_planes), it pools the planes as the
// convolution before it computes them, and x is never stored. With its
// input gradient deferred (defer_input_grad), backward keeps a view of dy
// from which input_grad_plane makes the gradient one plane at a time, and
// a full-size dx is never written.
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

  bool fold_relu_backward(bool fold) override {
    relu_before_ = fold;
    return true;
  }

  bool defer_input_grad(bool defer) override {
    defer_ = defer && k_ == 2 && stride_ == 2;
    return defer_ == defer;
  }
  bool input_grad_deferred() const { return defer_; }

  bool take_input_planes(bool take) override {
    fed_ = take && k_ == 2 && stride_ == 2;
    return fed_ == take;
  }
  bool input_planes_taken() const { return fed_; }

  void begin_input_planes(const Shape& in) override {
    output_.resize(output_shape(in));
    shape_ = pool_shape(in);
    in_shape_ = in;
    winners_.resize(static_cast<std::size_t>(output_.size()));
    input_ = Tensor<T>();
  }
  void input_planes(std::int64_t p0, std::int64_t count, const T* planes) override {
    kernels::maxpool2x2_forward_planes(shape_, p0, count, planes, output_.data(), winners_.data(),
                                       relu_before_);
  }

  void input_grad_plane(std::int64_t p, T* out) const override {
    kernels::maxpool2x2_input_grad_plane(shape_, p, winners_.data(), dy_.data(), out);
  }

  Shape output_shape(const Shape& in) const override {
    if (in.rank() != 4) this->shape_error("[N, C, H, W]", in);
    if (in[2] < k_ || in[3] < k_)
      fail(this->label(), ": input ", in.str(), " is smaller than the window ", k_, "x", k_);
    const auto s = pool_shape(in);
    return Shape{in[0], in[1], s.OH(), s.OW()};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    if (fed_) return output_;  // made by input_planes; x is empty
    output_.resize(output_shape(x.shape()));
    shape_ = pool_shape(x.shape());
    in_shape_ = x.shape();
    if (defer_) winners_.resize(static_cast<std::size_t>(output_.size()));
    kernels::maxpool2d_forward(shape_, x.data(), output_.data(), defer_ ? winners_.data() : nullptr,
                               relu_before_);
    input_ = x;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    if (defer_) {  // the layer that consumes the gradient calls input_grad_plane
      dy_ = dy;
      dinput_ = Tensor<T>();
      return dinput_;
    }
    if (fed_) {  // no input stored: its winners route dy
      dinput_.resize(in_shape_);
      kernels::maxpool2x2_backward_from_winners(shape_, winners_.data(), dy.data(), dinput_.data());
      return dinput_;
    }
    if (this->may_overwrite_input())
      dinput_ = input_;  // nothing reads the input after this: reuse its storage
    else
      dinput_.resize(input_.shape());
    kernels::maxpool2d_backward(shape_, input_.data(), dy.data(), dinput_.data(), relu_before_);
    return dinput_;
  }

 private:
  kernels::MaxPool2dShape pool_shape(const Shape& in) const {
    return {in[0] * in[1], in[2], in[3], k_, stride_};
  }

  std::int64_t k_, stride_;
  bool relu_before_ = false;  // the input is a ReLU's output, whose backward is folded in
  bool defer_ = false;        // input gradient made plane by plane, from winners_ and dy_
  bool fed_ = false;          // input taken plane by plane (take_input_planes); winners_ kept
  Shape in_shape_;
  Tensor<T> input_, output_, dinput_, dy_;
  std::vector<std::uint8_t> winners_;  // max2x2_winner of each window, when deferred or fed
  kernels::MaxPool2dShape shape_{};
};

}  // namespace minidl
