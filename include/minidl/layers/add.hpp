// minidl/layers/add.hpp - Add: the elementwise sum of inputs of one shape (a residual connection).
#pragma once

#include <string>
#include <vector>

#include "minidl/kernels/add.hpp"
#include "minidl/layers/merge.hpp"

namespace minidl {

// y = x0 + x1 + ..., summed left to right (the order of `out += identity`
// in PyTorch for two inputs). Every input's gradient is dy, each a copy; in
// a network, the plan pass has the inputs share dy instead where nothing
// writes over it (layers/plan.hpp, step 11).
template <typename T>
class Add : public Merge<T> {
 public:
  std::string type() const override { return "Add"; }

  Shape output_shape(const std::vector<Shape>& in) const override {
    if (in.size() < 2) fail(this->label(), ": needs two inputs or more, got ", in.size());
    for (const auto& s : in)
      if (s != in[0])
        fail(this->label(), ": inputs must have one shape, got ", this->shapes_str(in));
    return in[0];
  }

  const Tensor<T>& forward(const std::vector<const Tensor<T>*>& xs) override {
    for (const auto* x : xs)  // checked without allocating; the message needs the list
      if (xs.size() < 2 || x->shape() != xs[0]->shape()) output_shape(shape_list(xs));
    output_.resize(xs[0]->shape());
    kernels::add(output_.size(), xs[0]->data(), xs[1]->data(), output_.data());
    for (std::size_t i = 2; i < xs.size(); ++i)
      kernels::add(output_.size(), output_.data(), xs[i]->data(), output_.data());
    inputs_ = xs.size();
    return output_;
  }

  const std::vector<Tensor<T>>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    dinputs_.resize(inputs_);
    for (auto& d : dinputs_) {
      d.resize(dy.shape());
      kernels::copy(dy.size(), dy.data(), d.data());
    }
    return dinputs_;
  }

  // Backward copies dy; it reads only the output's shape.
  bool backward_reads_output() const override { return false; }

 private:
  static std::vector<Shape> shape_list(const std::vector<const Tensor<T>*>& xs) {
    std::vector<Shape> s;
    for (const auto* x : xs) s.push_back(x->shape());
    return s;
  }

  std::size_t inputs_ = 0;
  Tensor<T> output_;
  std::vector<Tensor<T>> dinputs_;
};

}  // namespace minidl
