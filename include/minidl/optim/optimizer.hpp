// minidl/optim/optimizer.hpp - what every optimizer shares: parameters, groups, step count, state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "minidl/core/parallel.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Parameters that share a learning rate and a weight decay, as a PyTorch
// param_group. A value left unset takes the optimizer's option.
template <typename T>
struct ParamGroup {
  std::vector<Parameter<T>> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

// An optimizer updates a list of named parameters from their gradients. Its
// state (moment buffers and step count) is exposed as named tensors so that a
// checkpoint can save it and a resumed run continue bit for bit.
//
// A frozen parameter (Parameter::trainable() false) is skipped as PyTorch
// skips one whose grad is None: no update, no weight decay, no change of its
// state. Each parameter counts the updates it received (PyTorch's per-
// parameter "step"): Adam's bias correction and SGD's first momentum step use
// that count, so a parameter unfrozen later starts as it would in PyTorch.
template <typename T>
class Optimizer {
 public:
  // One group holding every parameter.
  explicit Optimizer(std::vector<Parameter<T>> params)
      : Optimizer(std::vector<ParamGroup<T>>{ParamGroup<T>{std::move(params), {}, {}}}) {}

  explicit Optimizer(std::vector<ParamGroup<T>> groups) {
    if (groups.empty()) fail("optimizer: no parameter group");
    for (std::size_t g = 0; g < groups.size(); ++g) {
      groups_.push_back({groups[g].lr, groups[g].weight_decay, std::nullopt});
      for (auto& p : groups[g].params) {
        if (!p.value || !p.grad || p.value->shape() != p.grad->shape())
          fail("optimizer: parameter '", p.name, "' has no gradient of its own shape");
        for (const auto& q : params_)
          if (q.value == p.value) fail("optimizer: parameter '", p.name, "' is given twice");
        params_.push_back(std::move(p));
        group_of_.push_back(g);
      }
    }
    updates_.assign(params_.size(), 0);
  }
  virtual ~Optimizer() = default;

  // Applies one update from the current gradients.
  virtual void step() = 0;
  virtual std::string type() const = 0;

  // Named state tensors ("exp_avg.conv1.weight", ...), live: writing into them
  // restores the state.
  virtual std::vector<std::pair<std::string, Tensor<T>*>> state() = 0;

  // Steps taken; setting it (resuming) sets every parameter's update count too.
  std::int64_t step_count() const { return step_; }
  void set_step_count(std::int64_t step) {
    step_ = step;
    updates_.assign(params_.size(), step);
  }
  // The updates parameter i received: step_count() unless it was frozen for some steps.
  std::int64_t update_count(std::size_t i) const { return updates_.at(i); }
  void set_update_count(std::size_t i, std::int64_t count) {
    if (count < 0 || count > step_)
      fail(type(), ": update count ", count, " of '", params_.at(i).name, "' is outside 0..",
           step_);
    updates_.at(i) = count;
  }

  // The learning rate of the first group; setting it sets every group's.
  double learning_rate() const { return group_learning_rate(0); }
  void set_learning_rate(double lr) {
    for (auto& g : groups_) g.lr = lr;
  }

  std::size_t group_count() const { return groups_.size(); }
  double group_learning_rate(std::size_t group) const { return *groups_.at(group).lr; }
  void set_group_learning_rate(std::size_t group, double lr) { groups_.at(group).lr = lr; }
  double group_weight_decay(std::size_t group) const { return *groups_.at(group).weight_decay; }

  // The momentum a schedule may cycle (OneCycleLR): SGD's and RMSprop's
  // momentum, Adam's beta1; none when the optimizer was made without one.
  std::optional<double> group_momentum(std::size_t group) const {
    return groups_.at(group).momentum;
  }
  void set_group_momentum(std::size_t group, double momentum) {
    GroupSettings& g = groups_.at(group);
    if (!g.momentum) fail(type(), ": made without momentum, so it has none to set");
    check_momentum(momentum);
    g.momentum = momentum;
  }

  const std::vector<Parameter<T>>& parameters() const { return params_; }
  // The group parameter i belongs to.
  std::size_t group_of(std::size_t i) const { return group_of_.at(i); }

 protected:
  struct GroupSettings {
    std::optional<double> lr, weight_decay, momentum;
  };

  // Rejects a momentum (or beta1) the update cannot use.
  virtual void check_momentum(double momentum) const {
    if (!(momentum >= 0)) fail(type(), ": momentum must be >= 0, got ", momentum);
  }
  // Gives every group the momentum (or beta1) the optimizer was made with.
  void set_group_momentum_defaults(double momentum) {
    for (auto& g : groups_) g.momentum = momentum;
  }

  // Gives the groups that did not set them the optimizer's options, and
  // rejects a negative (or NaN) learning rate or weight decay, as PyTorch does.
  void set_group_defaults(double lr, double weight_decay) {
    for (std::size_t i = 0; i < groups_.size(); ++i) {
      GroupSettings& g = groups_[i];
      if (!g.lr) g.lr = lr;
      if (!g.weight_decay) g.weight_decay = weight_decay;
      if (!(*g.lr >= 0)) fail(type(), ": learning rate ", *g.lr, " of group ", i, " is negative");
      if (!(*g.weight_decay >= 0))
        fail(type(), ": weight decay ", *g.weight_decay, " of group ", i, " is negative");
    }
  }
  double lr_of(std::size_t i) const { return *groups_[group_of_[i]].lr; }
  double weight_decay_of(std::size_t i) const { return *groups_[group_of_[i]].weight_decay; }
  double momentum_of(std::size_t i) const { return groups_[group_of_[i]].momentum.value_or(0.0); }
  // Whether step() updates parameter i; counts the update when it does.
  bool begin_update(std::size_t i) {
    if (!params_[i].trainable()) return false;
    ++updates_[i];
    return true;
  }

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
  std::vector<std::size_t> group_of_;  // group index of each parameter
  std::vector<GroupSettings> groups_;
  std::int64_t step_ = 0;
  std::vector<std::int64_t> updates_;  // updates each parameter received
};

}  // namespace minidl
