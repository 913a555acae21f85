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
// writes over it (layers/plan.hpp, step 11), and has the sum written over
// an input that nothing reads after it (step 8).
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
    return forward_with(xs, false);
  }

  // With relu, stores max(sum, 0) for the in-place ReLU after it (plan
  // step 5), whose backward then reads the stored value.
  const Tensor<T>& forward_with(const std::vector<const Tensor<T>*>& xs, bool relu) {
    check(xs);
    output_.resize(xs[0]->shape());
    return sum_into(xs, output_, relu);
  }

  // The same sum written over input number `input` (0 or 1), whose storage
  // nothing reads after this forward. Each element of the first two inputs
  // is read before it is written, so the bits are those of forward().
  const Tensor<T>& forward_over(const std::vector<const Tensor<T>*>& xs, std::size_t input,
                                bool relu = false) {
    check(xs);
    if (input > 1) fail(this->label(), ": only the first two inputs can take the sum");
    over_ = *xs[input];  // a view: the same storage
    return sum_into(xs, over_, relu);
  }

  // The sum of two inputs already stored over input `input` by the layer
  // that made it (a batch norm, BatchNorm::forward_adding, plan step 8):
  // returns that storage and keeps what backward needs, with no pass.
  const Tensor<T>& forward_made(const std::vector<const Tensor<T>*>& xs, std::size_t input) {
    check(xs);
    if (xs.size() != 2 || input > 1)
      fail(this->label(), ": only a sum of two inputs can be made by one of them");
    over_ = *xs[input];  // a view: the same storage
    inputs_ = xs.size();
    shape_ = over_.shape();
    return over_;
  }

  const std::vector<Tensor<T>>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != shape_)
      fail(this->label(), ": backward expected dy ", shape_.str(), ", got ", dy.shape().str());
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
  void check(const std::vector<const Tensor<T>*>& xs) const {
    for (const auto* x : xs)  // checked without allocating; the message needs the list
      if (xs.size() < 2 || x->shape() != xs[0]->shape()) output_shape(shape_list(xs));
  }

  const Tensor<T>& sum_into(const std::vector<const Tensor<T>*>& xs, Tensor<T>& out, bool relu) {
    const std::size_t last = xs.size() - 1;
    for (std::size_t i = 1; i <= last; ++i) {
      const T* a = i == 1 ? xs[0]->data() : out.data();
      if (relu && i == last)
        kernels::add_relu(out.size(), a, xs[i]->data(), out.data());
      else
        kernels::add(out.size(), a, xs[i]->data(), out.data());
    }
    inputs_ = xs.size();
    shape_ = out.shape();
    return out;
  }

  static std::vector<Shape> shape_list(const std::vector<const Tensor<T>*>& xs) {
    std::vector<Shape> s;
    for (const auto* x : xs) s.push_back(x->shape());
    return s;
  }

  std::size_t inputs_ = 0;
  Shape shape_;       // of the last forward's output
  Tensor<T> output_;  // the sum, in memory of its own
  Tensor<T> over_;    // or a view of the input it was written over
  std::vector<Tensor<T>> dinputs_;
};

}  // namespace minidl
