// minidl/layers/adaptive_avgpool2d.hpp - AdaptiveAvgPool2d: averages over bins that fit an output
// size.
#pragma once

#include <cstdint>
#include <string>

#include "minidl/kernels/adaptive_avgpool2d.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Input [N, C, H, W] -> output [N, C, out_h, out_w], as
// torch.nn.AdaptiveAvgPool2d((out_h, out_w)): output row i averages input
// rows [floor(i H / out_h), ceil((i + 1) H / out_h)), columns likewise.
// AdaptiveAvgPool2d(1) is global average pooling, with a kernel of its own.
// Nothing is cached for backward but the shape.
template <typename T>
class AdaptiveAvgPool2d : public Layer<T> {
 public:
  explicit AdaptiveAvgPool2d(std::int64_t out_h, std::int64_t out_w)
      : out_h_(out_h), out_w_(out_w) {
    if (out_h_ <= 0 || out_w_ <= 0)
      fail(this->label(), ": output size ", out_h_, "x", out_w_, " must be positive");
  }
  explicit AdaptiveAvgPool2d(std::int64_t out) : AdaptiveAvgPool2d(out, out) {}

  std::string type() const override { return "AdaptiveAvgPool2d"; }
  std::string describe() const override {
    return "output " + std::to_string(out_h_) + "x" + std::to_string(out_w_);
  }
  bool backward_reads_output() const override { return false; }
  std::int64_t output_h() const { return out_h_; }
  std::int64_t output_w() const { return out_w_; }

  Shape output_shape(const Shape& in) const override {
    if (in.rank() != 4) this->shape_error("[N, C, H, W]", in);
    if (in[2] <= 0 || in[3] <= 0) fail(this->label(), ": input ", in.str(), " has an empty plane");
    return Shape{in[0], in[1], out_h_, out_w_};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    output_.resize(output_shape(x.shape()));
    in_shape_ = x.shape();
    kernels::adaptive_avgpool2d_forward(pool_shape(), x.data(), output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_.resize(in_shape_);
    kernels::adaptive_avgpool2d_backward(pool_shape(), dy.data(), this->dinput_.data());
    return this->dinput_;
  }

 private:
  kernels::AdaptivePool2dShape pool_shape() const {
    return {in_shape_[0] * in_shape_[1], in_shape_[2], in_shape_[3], out_h_, out_w_};
  }

  std::int64_t out_h_, out_w_;
  Shape in_shape_;
  Tensor<T> output_;
};

}  // namespace minidl
