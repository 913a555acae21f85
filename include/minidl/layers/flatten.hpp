// minidl/layers/flatten.hpp - Flatten: [N, ...] -> [N, product of the rest], no copy.
#pragma once

#include <string>

#include "minidl/layers/layer.hpp"

namespace minidl {

// Forward and backward are views of their argument with another shape.
template <typename T>
class Flatten : public Layer<T> {
 public:
  std::string type() const override { return "Flatten"; }
  bool output_aliases_input() const override { return true; }
  bool backward_reads_output() const override { return false; }
  Shape output_shape(const Shape& in) const override {
    if (in.rank() < 2) this->shape_error("[N, ...] of rank 2 or more", in);
    return Shape{in[0], in.numel() / std::max<std::int64_t>(in[0], 1)};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    input_shape_ = x.shape();
    output_ = x.reshape(output_shape(x.shape()));
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.size() != input_shape_.numel())
      fail(this->label(), ": backward expected dy of ", input_shape_.numel(), " elements, got ",
           dy.shape().str());
    this->dinput_ = dy.reshape(input_shape_);
    return this->dinput_;
  }

 private:
  Shape input_shape_;
  Tensor<T> output_;
};

}  // namespace minidl
