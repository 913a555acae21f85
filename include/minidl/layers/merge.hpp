// minidl/layers/merge.hpp - the interface of a node with several inputs (Add, Concat).
#pragma once

#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"

namespace minidl {

// A merge has no parameters; like a Layer, forward() returns a buffer the
// merge owns, and backward() *writes* one gradient per input, each in a
// buffer of its own (so that a later in-place backward on one branch cannot
// change another's).
template <typename T>
class Merge {
 public:
  virtual ~Merge() = default;

  virtual std::string type() const = 0;
  // The output shape for the input shapes; throws an Error naming the merge
  // and the shapes when they do not fit.
  virtual Shape output_shape(const std::vector<Shape>& inputs) const = 0;

  virtual const Tensor<T>& forward(const std::vector<const Tensor<T>*>& xs) = 0;
  virtual const std::vector<Tensor<T>>& backward(const Tensor<T>& dy) = 0;

  // Whether backward reads the output forward returned. The safe default:
  // the plan pass then lets no later layer write over that output (a
  // max-pool's gradient, an in-place ReLU). Say false only when it does not.
  virtual bool backward_reads_output() const { return true; }

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  std::string label() const { return name_.empty() ? type() : name_ + " (" + type() + ")"; }

 protected:
  static std::string shapes_str(const std::vector<Shape>& shapes) {
    std::string s;
    for (const auto& shape : shapes) s += (s.empty() ? "" : ", ") + shape.str();
    return s;
  }

  std::string name_;
};

}  // namespace minidl
