// minidl/layers/maxpool2d.hpp - MaxPool2d: max over K x K windows, no padding.
#pragma once

#include <cstdint>
#include <string>

#include "minidl/kernels/maxpool2d.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Input [N, C, H, W] -> output [N, C, OH, OW], OH = (H - K) / stride + 1 as
// torch.nn.MaxPool2d(K, stride) (stride defaults to K). Cached for backward:
// a view of the input (the previous layer's output buffer, untouched until
// the next forward); the backward pass finds each window's winner again,
// which costs less than storing its position. After a ReLU (in a
// Sequential) it also applies the ReLU's backward: windows whose maximum is
// 0 route no gradient.
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

  Shape output_shape(const Shape& in) const override {
    if (in.rank() != 4) this->shape_error("[N, C, H, W]", in);
    if (in[2] < k_ || in[3] < k_)
      fail(this->label(), ": input ", in.str(), " is smaller than the window ", k_, "x", k_);
    const auto s = pool_shape(in);
    return Shape{in[0], in[1], s.OH(), s.OW()};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    output_.resize(output_shape(x.shape()));
    shape_ = pool_shape(x.shape());
    kernels::maxpool2d_forward(shape_, x.data(), output_.data());
    input_ = x;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
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
  Tensor<T> input_, output_, dinput_;
  kernels::MaxPool2dShape shape_{};
};

}  // namespace minidl
