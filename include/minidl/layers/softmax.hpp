// minidl/layers/softmax.hpp - Softmax and LogSoftmax along one axis (the channels by default).
#pragma once

#include <string>

#include "minidl/kernels/softmax.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Softmax(dim) and LogSoftmax(dim): torch.nn.Softmax(dim) and
// torch.nn.LogSoftmax(dim) on any shape, normalised over axis `dim`
// (negative counts from the end, as in PyTorch). The default dim = 1 is
// the feature axis of (N, C) and the channel axis of (N, C, H, W). Cached
// for backward: the output, which is all the gradient needs
// (kernels/softmax.hpp).
template <typename T>
class SoftmaxAlong : public Layer<T> {
 public:
  SoftmaxAlong(int dim, bool log) : dim_(dim), log_(log) {}

  std::string type() const override { return log_ ? "LogSoftmax" : "Softmax"; }
  std::string describe() const override { return "dim " + std::to_string(dim_); }
  bool backward_reads_output() const override { return true; }
  Shape output_shape(const Shape& in) const override {
    axis(in);
    return in;
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    shape_ = split(x.shape());
    output_.resize(x.shape());
    kernels::softmax_forward(shape_, x.data(), output_.data(), log_);
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_.resize(dy.shape());
    kernels::softmax_backward(shape_, output_.data(), dy.data(), this->dinput_.data(), log_);
    return this->dinput_;
  }

  int dim() const { return dim_; }

 private:
  // The axis dim names in a shape of this rank, or an Error naming both.
  int axis(const Shape& in) const {
    const int rank = in.rank();
    if (dim_ < -rank || dim_ >= rank)
      fail(this->label(), ": dim ", dim_, " is out of range for an input of rank ", rank, " ",
           in.str(), " (expected -", rank, " to ", rank - 1, ")");
    return dim_ < 0 ? dim_ + rank : dim_;
  }

  kernels::SoftmaxShape split(const Shape& in) const {
    const int a = axis(in);
    kernels::SoftmaxShape s{1, in[a], 1};
    for (int i = 0; i < a; ++i) s.outer *= in[i];
    for (int i = a + 1; i < in.rank(); ++i) s.inner *= in[i];
    return s;
  }

  int dim_;
  bool log_;
  kernels::SoftmaxShape shape_{0, 0, 0};
  Tensor<T> output_;
};

template <typename T>
class Softmax : public SoftmaxAlong<T> {
 public:
  explicit Softmax(int dim = 1) : SoftmaxAlong<T>(dim, false) {}
};

template <typename T>
class LogSoftmax : public SoftmaxAlong<T> {
 public:
  explicit LogSoftmax(int dim = 1) : SoftmaxAlong<T>(dim, true) {}
};

}  // namespace minidl
