// minidl/layers/concat.hpp - Concat: inputs joined along the channel axis (torch.cat(xs, dim=1)).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minidl/kernels/add.hpp"
#include "minidl/layers/merge.hpp"

namespace minidl {

// Inputs [N, C_i, ...] with the same N and trailing dimensions -> output
// [N, C_0 + C_1 + ..., ...], in input order. Backward hands each input its
// slice of dy, copied.
template <typename T>
class Concat : public Merge<T> {
 public:
  std::string type() const override { return "Concat"; }

  Shape output_shape(const std::vector<Shape>& in) const override {
    if (in.size() < 2) fail(this->label(), ": needs two inputs or more, got ", in.size());
    std::vector<std::int64_t> out = in[0].to_vector();
    if (out.size() < 2) fail(this->label(), ": inputs must have rank 2 or more, got ", in[0].str());
    out[1] = 0;
    for (const auto& s : in) {
      bool fits = s.rank() == in[0].rank() && s[0] == in[0][0];
      for (int d = 2; fits && d < s.rank(); ++d) fits = s[d] == in[0][d];
      if (!fits)
        fail(this->label(), ": inputs must differ in the channel axis only, got ",
             this->shapes_str(in));
      out[1] += s[1];
    }
    return Shape(out);
  }

  const Tensor<T>& forward(const std::vector<const Tensor<T>*>& xs) override {
    bool same = shapes_.size() == xs.size();  // as last time: no allocation once warm
    for (std::size_t i = 0; same && i < xs.size(); ++i) same = shapes_[i] == xs[i]->shape();
    if (!same) {
      shapes_.clear();
      for (const auto* x : xs) shapes_.push_back(x->shape());
      try {
        out_shape_ = output_shape(shapes_);
      } catch (...) {
        shapes_.clear();  // so that the same mistake is caught again
        throw;
      }
    }
    output_.resize(out_shape_);
    for_each_slice([&](std::int64_t n, std::size_t i, std::int64_t offset, std::int64_t len) {
      kernels::copy(len, xs[i]->data() + n * len, output_.data() + offset);
    });
    return output_;
  }

  const std::vector<Tensor<T>>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    dinputs_.resize(shapes_.size());
    for (std::size_t i = 0; i < shapes_.size(); ++i) dinputs_[i].resize(shapes_[i]);
    for_each_slice([&](std::int64_t n, std::size_t i, std::int64_t offset, std::int64_t len) {
      kernels::copy(len, dy.data() + offset, dinputs_[i].data() + n * len);
    });
    return dinputs_;
  }

  // Backward copies dy; it reads only the output's shape.
  bool backward_reads_output() const override { return false; }

 private:
  // f(n, input, offset in the output, length) for each sample's slice of each input.
  template <typename F>
  void for_each_slice(F&& f) const {
    const std::int64_t N = output_.dim(0),
                       per_sample = output_.size() / std::max<std::int64_t>(N, 1);
    for (std::int64_t n = 0; n < N; ++n) {
      std::int64_t offset = n * per_sample;
      for (std::size_t i = 0; i < shapes_.size(); ++i) {
        const std::int64_t len = shapes_[i].numel() / std::max<std::int64_t>(N, 1);
        f(n, i, offset, len);
        offset += len;
      }
    }
  }

  std::vector<Shape> shapes_;  // of the inputs of the last forward
  Shape out_shape_;
  Tensor<T> output_;
  std::vector<Tensor<T>> dinputs_;
};

}  // namespace minidl
