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
  // Runs update(begin, end) over the elements of parameter i, in parallel
  // in blocks of whole rows (first dimension), one block per thread. The
  // passes that compute a weight gradient split it by rows the same way
  // (fc1's by output feature), so each thread updates rows it wrote and the
  // next forward pass reads. Parameters smaller than kElementwiseChunk stay
  // on one thread. Every element is updated on its own, so the cut does not
  // change a bit.
  template <typename Update>
  void for_each_row_block(std::size_t i, Update&& update) const {
    const Tensor<T>& value = *params_[i].value;
    const std::int64_t n = value.size();
    const std::int64_t rows = value.shape().rank() > 0 ? value.shape()[0] : 1;
    if (n == 0) return;
    const std::int64_t row_size = n / rows;
    parallel_blocks(
        rows, n >= kElementwiseChunk ? num_threads() : 1,
        [&](int, std::int64_t r0, std::int64_t r1) { update(r0 * row_size, r1 * row_size); });
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
