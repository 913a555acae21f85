// minidl/layers/identity.hpp - Identity: passes its input through, as torch.nn.Identity.
#pragma once

#include <string>

#include "minidl/layers/layer.hpp"

namespace minidl {

// Any shape. The output is a view of the input and the input gradient a
// view of dy: no copy, no memory of its own. A placeholder where a network
// needs a layer that does nothing (a skip branch of a Graph, a block whose
// downsampling is switched off).
template <typename T>
class Identity : public Layer<T> {
 public:
  std::string type() const override { return "Identity"; }
  bool output_aliases_input() const override { return true; }
  bool backward_reads_output() const override { return false; }
  Shape output_shape(const Shape& in) const override { return in; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    output_ = x;  // a view: shares x's storage
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_ = dy;
    return this->dinput_;
  }

 private:
  Tensor<T> output_;
};

}  // namespace minidl
