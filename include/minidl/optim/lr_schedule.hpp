// minidl/optim/lr_schedule.hpp - learning rates as functions of the step, as
// torch.optim.lr_scheduler.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"

namespace minidl {

// A schedule gives the learning rate at step (or epoch) t >= 0 from the
// group's initial learning rate, in closed form: the value at t depends on
// t alone, so a run resumed at t continues with the same bits. LrScheduler
// (lr_scheduler.hpp) applies one to an optimizer and counts the steps.
class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr_at(double base_lr, std::int64_t t) const = 0;
  // The momentum (SGD, RMSprop) or beta1 (Adam) at step t, for a schedule
  // that cycles it (OneCycleLR); none for the others.
  virtual std::optional<double> momentum_at(std::int64_t t) const {
    (void)t;
    return std::nullopt;
  }
  // The class name and its settings, exactly ("OneCycleLR", "total_steps
  // 100, ..."): a checkpoint records them, and resuming under another
  // schedule is an error.
  virtual std::string type() const = 0;
  virtual std::string describe() const = 0;
};

namespace detail {
constexpr double kPi = 3.14159265358979323846;

// Shortest-enough decimal text that reads back as the same double (17 digits).
inline std::string exact_decimal(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

// Half a cosine from `from` (pct 0) to `to` (pct 1).
inline double cosine_between(double from, double to, double pct) {
  return to + (from - to) / 2.0 * (std::cos(kPi * pct) + 1.0);
}
}  // namespace detail

// StepLR: base_lr * gamma^(t / step_size), the division rounding down.
class StepLR : public LrSchedule {
 public:
  explicit StepLR(std::int64_t step_size, double gamma = 0.1)
      : step_size_(step_size), gamma_(gamma) {
    if (step_size < 1) fail("StepLR: step_size must be >= 1, got ", step_size);
  }
  double lr_at(double base_lr, std::int64_t t) const override {
    return base_lr * std::pow(gamma_, static_cast<double>(t / step_size_));
  }
  std::string type() const override { return "StepLR"; }
  std::string describe() const override {
    return "step_size " + std::to_string(step_size_) + ", gamma " + detail::exact_decimal(gamma_);
  }

 private:
  std::int64_t step_size_;
  double gamma_;
};

// MultiStepLR: base_lr * gamma^(number of milestones <= t).
class MultiStepLR : public LrSchedule {
 public:
  explicit MultiStepLR(std::vector<std::int64_t> milestones, double gamma = 0.1)
      : milestones_(std::move(milestones)), gamma_(gamma) {
    std::sort(milestones_.begin(), milestones_.end());
  }
  double lr_at(double base_lr, std::int64_t t) const override {
    const auto passed =
        std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
    return base_lr * std::pow(gamma_, static_cast<double>(passed));
  }
  std::string type() const override { return "MultiStepLR"; }
  std::string describe() const override {
    std::string out = "milestones";
    for (auto m : milestones_) out += " " + std::to_string(m);
    return out + ", gamma " + detail::exact_decimal(gamma_);
  }

 private:
  std::vector<std::int64_t> milestones_;
  double gamma_;
};

// ExponentialLR: base_lr * gamma^t.
class ExponentialLR : public LrSchedule {
 public:
  explicit ExponentialLR(double gamma) : gamma_(gamma) {}
  double lr_at(double base_lr, std::int64_t t) const override {
    return base_lr * std::pow(gamma_, static_cast<double>(t));
  }
  std::string type() const override { return "ExponentialLR"; }
  std::string describe() const override { return "gamma " + detail::exact_decimal(gamma_); }

 private:
  double gamma_;
};

// CosineAnnealingLR: from base_lr at t = 0 to eta_min at t = t_max along half
// a cosine (and back up after, as PyTorch's does).
class CosineAnnealingLR : public LrSchedule {
 public:
  explicit CosineAnnealingLR(std::int64_t t_max, double eta_min = 0)
      : t_max_(t_max), eta_min_(eta_min) {
    if (t_max < 1) fail("CosineAnnealingLR: t_max must be >= 1, got ", t_max);
  }
  double lr_at(double base_lr, std::int64_t t) const override {
    const double angle = detail::kPi * static_cast<double>(t) / static_cast<double>(t_max_);
    return eta_min_ + (base_lr - eta_min_) * (1.0 + std::cos(angle)) / 2.0;
  }
  std::string type() const override { return "CosineAnnealingLR"; }
  std::string describe() const override {
    return "t_max " + std::to_string(t_max_) + ", eta_min " + detail::exact_decimal(eta_min_);
  }

 private:
  std::int64_t t_max_;
  double eta_min_;
};

// CosineAnnealingWarmRestarts (SGDR): cosine annealing over t_0 steps, then
// a restart at base_lr with a period t_mult times longer, and so on.
class CosineAnnealingWarmRestarts : public LrSchedule {
 public:
  explicit CosineAnnealingWarmRestarts(std::int64_t t_0, std::int64_t t_mult = 1,
                                       double eta_min = 0)
      : t_0_(t_0), t_mult_(t_mult), eta_min_(eta_min) {
    if (t_0 < 1) fail("CosineAnnealingWarmRestarts: t_0 must be >= 1, got ", t_0);
    if (t_mult < 1) fail("CosineAnnealingWarmRestarts: t_mult must be >= 1, got ", t_mult);
  }
  double lr_at(double base_lr, std::int64_t t) const override {
    std::int64_t period = t_0_, t_cur = t;
    if (t_mult_ == 1) {
      t_cur = t % t_0_;
    } else {
      while (t_cur >= period) {  // periods grow geometrically: few iterations
        t_cur -= period;
        period *= t_mult_;
      }
    }
    return detail::cosine_between(base_lr, eta_min_,
                                  static_cast<double>(t_cur) / static_cast<double>(period));
  }
  std::string type() const override { return "CosineAnnealingWarmRestarts"; }
  std::string describe() const override {
    return "t_0 " + std::to_string(t_0_) + ", t_mult " + std::to_string(t_mult_) + ", eta_min " +
           detail::exact_decimal(eta_min_);
  }

 private:
  std::int64_t t_0_, t_mult_;
  double eta_min_;
};

// OneCycleLR (two phases, cosine annealing): base_lr is the peak (PyTorch's
// max_lr). The rate rises from base_lr / div_factor to base_lr over the first
// pct_start of total_steps, then falls to base_lr / div_factor /
// final_div_factor at step total_steps - 1. With cycle_momentum (the
// default, as in PyTorch) the momentum, or Adam's beta1, moves the other way
// along the same two half cosines: from max_momentum down to base_momentum at
// the peak rate, then back up to max_momentum.
class OneCycleLR : public LrSchedule {
 public:
  explicit OneCycleLR(std::int64_t total_steps, double pct_start = 0.3, double div_factor = 25,
                      double final_div_factor = 1e4, bool cycle_momentum = true,
                      double base_momentum = 0.85, double max_momentum = 0.95)
      : total_steps_(total_steps),
        pct_start_(pct_start),
        div_factor_(div_factor),
        final_div_factor_(final_div_factor),
        cycle_momentum_(cycle_momentum),
        base_momentum_(base_momentum),
        max_momentum_(max_momentum) {
    if (total_steps < 1) fail("OneCycleLR: total_steps must be >= 1, got ", total_steps);
    if (!(pct_start >= 0 && pct_start <= 1))
      fail("OneCycleLR: pct_start must be in [0, 1], got ", pct_start);
    if (cycle_momentum && !(base_momentum >= 0 && max_momentum >= 0))
      fail("OneCycleLR: base_momentum and max_momentum must be >= 0, got ", base_momentum, " and ",
           max_momentum);
  }
  double lr_at(double base_lr, std::int64_t t) const override {
    const double initial = base_lr / div_factor_, final_lr = initial / final_div_factor_;
    const Phase p = phase(t);
    return p.first ? detail::cosine_between(initial, base_lr, p.pct)
                   : detail::cosine_between(base_lr, final_lr, p.pct);
  }
  std::optional<double> momentum_at(std::int64_t t) const override {
    if (!cycle_momentum_) return std::nullopt;
    const Phase p = phase(t);
    return p.first ? detail::cosine_between(max_momentum_, base_momentum_, p.pct)
                   : detail::cosine_between(base_momentum_, max_momentum_, p.pct);
  }
  std::string type() const override { return "OneCycleLR"; }
  std::string describe() const override {
    std::string out = "total_steps " + std::to_string(total_steps_) + ", pct_start " +
                      detail::exact_decimal(pct_start_) + ", div_factor " +
                      detail::exact_decimal(div_factor_) + ", final_div_factor " +
                      detail::exact_decimal(final_div_factor_);
    if (!cycle_momentum_) return out + ", cycle_momentum false";
    return out + ", base_momentum " + detail::exact_decimal(base_momentum_) + ", max_momentum " +
           detail::exact_decimal(max_momentum_);
  }

 private:
  // The phase of step t (rising or falling) and how far along it, as PyTorch splits them.
  struct Phase {
    bool first;
    double pct;
  };
  Phase phase(std::int64_t t) const {
    if (t > total_steps_) fail("OneCycleLR: step ", t, " is past total_steps ", total_steps_);
    const double warm_end = pct_start_ * static_cast<double>(total_steps_) - 1;
    const double step = static_cast<double>(t);
    if (warm_end > 0 && step <= warm_end) return {true, step / warm_end};
    const double last = static_cast<double>(total_steps_ - 1);
    return {false, (step - warm_end) / (last - warm_end)};
  }

  std::int64_t total_steps_;
  double pct_start_, div_factor_, final_div_factor_;
  bool cycle_momentum_;
  double base_momentum_, max_momentum_;
};

// A linear warm-up in front of another schedule: the other's rate times a
// factor that grows from start_factor at t = 0 to 1 at t = warmup_steps and
// stays 1 after (PyTorch: ChainedScheduler of LinearLR and the other).
class LinearWarmup : public LrSchedule {
 public:
  LinearWarmup(double start_factor, std::int64_t warmup_steps,
               std::shared_ptr<const LrSchedule> then = nullptr)
      : start_factor_(start_factor), warmup_steps_(warmup_steps), then_(std::move(then)) {
    if (!(start_factor > 0 && start_factor <= 1))
      fail("LinearWarmup: start_factor must be in (0, 1], got ", start_factor);
    if (warmup_steps < 1) fail("LinearWarmup: warmup_steps must be >= 1, got ", warmup_steps);
  }
  double lr_at(double base_lr, std::int64_t t) const override {
    const double done = static_cast<double>(std::min(t, warmup_steps_));
    const double factor =
        start_factor_ + (1.0 - start_factor_) * done / static_cast<double>(warmup_steps_);
    return (then_ ? then_->lr_at(base_lr, t) : base_lr) * factor;
  }
  std::optional<double> momentum_at(std::int64_t t) const override {
    return then_ ? then_->momentum_at(t) : std::nullopt;
  }
  std::string type() const override { return "LinearWarmup"; }
  std::string describe() const override {
    return "start_factor " + detail::exact_decimal(start_factor_) + ", warmup_steps " +
           std::to_string(warmup_steps_) +
           (then_ ? ", then " + then_->type() + "(" + then_->describe() + ")" : "");
  }

 private:
  double start_factor_;
  std::int64_t warmup_steps_;
  std::shared_ptr<const LrSchedule> then_;
};

}  // namespace minidl
