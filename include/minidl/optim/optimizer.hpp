// minidl/optim/optimizer.hpp - what every optimizer shares: parameters, step count, state.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "minidl/core/parallel.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// An optimizer updates a list of named parameters from their gradients. Its
// state (moment buffers and step count) is exposed as named tensors so that a
// checkpoint can save it and a resumed run continue bit for bit.
template <typename T>
class Optimizer {
 public:
  explicit Optimizer(std::vector<Parameter<T>> params) : params_(std::move(params)) {
    for (const auto& p : params_)
      if (!p.value || !p.grad || p.value->shape() != p.grad->shape())
        fail("optimizer: parameter '", p.name, "' has no gradient of its own shape");
  }
  virtual ~Optimizer() = default;

  // Applies one update from the current gradients.
  virtual void step() = 0;
  virtual std::string type() const = 0;

  // Named state tensors ("exp_avg.conv1.weight", ...), live: writing into them
  // restores the state.
  virtual std::vector<std::pair<std::string, Tensor<T>*>> state() = 0;

  std::int64_t step_count() const { return step_; }
  void set_step_count(std::int64_t step) { step_ = step; }
  double learning_rate() const { return lr_; }
  void set_learning_rate(double lr) { lr_ = lr; }
  const std::vector<Parameter<T>>& parameters() const { return params_; }

 protected:
  // Runs update(begin, end) over the elements of parameter i in parallel,
  // in blocks of whole rows (first dimension): parallel_row_blocks, the cut
  // the weight gradients and train_step's finite check use. Every element
  // is updated on its own, so the cut does not change a bit.
  template <typename Update>
  void for_each_row_block(std::size_t i, Update&& update) const {
    const Tensor<T>& value = *params_[i].value;
    parallel_row_blocks(value.size(), value.shape().rank() > 0 ? value.shape()[0] : 1, update);
  }

  std::vector<Tensor<T>> zeros_like_params() const {
    std::vector<Tensor<T>> out;
    for (const auto& p : params_) out.emplace_back(p.value->shape());
    return out;
  }

  std::vector<Parameter<T>> params_;
  std::int64_t step_ = 0;
  double lr_ = 0;
};

}  // namespace minidl
