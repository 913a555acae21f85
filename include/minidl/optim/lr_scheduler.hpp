// minidl/optim/lr_scheduler.hpp - applies a learning-rate schedule to an optimizer, step by step.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/optim/lr_schedule.hpp"
#include "minidl/optim/optimizer.hpp"

namespace minidl {

// What a checkpoint saves to resume a schedule exactly: PyTorch's last_epoch
// and base_lrs (each group's learning rate when the scheduler was made).
struct LrSchedulerState {
  std::int64_t last_epoch = 0;
  std::vector<double> base_lrs;
};

// As a torch.optim.lr_scheduler: made after the optimizer, it takes each
// group's current learning rate as that group's base and sets the rate of
// step 0; each step() then moves to the next step (call it after
// optimizer.step(), once per batch or once per epoch, as the schedule wants).
// It keeps a pointer to the optimizer, which must outlive it. A schedule that
// cycles momentum (OneCycleLR) also sets each group's momentum or beta1; the
// optimizer must then have one (SGD and RMSprop made with momentum > 0, Adam).
// io/checkpoint.hpp saves and restores the state with the network.
template <typename T>
class LrScheduler {
 public:
  LrScheduler(Optimizer<T>& optimizer, std::shared_ptr<const LrSchedule> schedule)
      : optimizer_(&optimizer), schedule_(std::move(schedule)) {
    if (!schedule_) fail("LrScheduler: no schedule");
    if (schedule_->momentum_at(0) && !optimizer.group_momentum(0))
      fail("LrScheduler: ", schedule_->type(), " cycles momentum (as PyTorch's does by default), ",
           "but ", optimizer.type(),
           " was made without momentum: give it momentum > 0, or turn cycle_momentum off");
    for (std::size_t g = 0; g < optimizer.group_count(); ++g)
      state_.base_lrs.push_back(optimizer.group_learning_rate(g));
    apply();
  }

  void step() {
    ++state_.last_epoch;
    apply();
  }

  std::int64_t last_epoch() const { return state_.last_epoch; }
  // The learning rate the schedule set for group g.
  double last_lr(std::size_t g = 0) const { return optimizer_->group_learning_rate(g); }

  const LrSchedule& schedule() const { return *schedule_; }
  const LrSchedulerState& state() const { return state_; }
  // Restores a saved state and sets the optimizer's rates for its step.
  void load_state(const LrSchedulerState& state) {
    if (state.base_lrs.size() != optimizer_->group_count())
      fail("LrScheduler: the saved state has ", state.base_lrs.size(),
           " learning rates, the optimizer ", optimizer_->group_count(), " groups");
    if (state.last_epoch < 0) fail("LrScheduler: negative last_epoch ", state.last_epoch);
    state_ = state;
    apply();
  }

 private:
  void apply() {
    for (std::size_t g = 0; g < state_.base_lrs.size(); ++g)
      optimizer_->set_group_learning_rate(g,
                                          schedule_->lr_at(state_.base_lrs[g], state_.last_epoch));
    if (const auto momentum = schedule_->momentum_at(state_.last_epoch))
      for (std::size_t g = 0; g < optimizer_->group_count(); ++g)
        optimizer_->set_group_momentum(g, *momentum);
  }

  Optimizer<T>* optimizer_;
  std::shared_ptr<const LrSchedule> schedule_;
  LrSchedulerState state_;
};

}  // namespace minidl
