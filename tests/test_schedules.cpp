// Learning-rate schedules: values from their definitions at the points that
// define them, every group from its own base rate, and a resumed run that
// continues with the same rates bit for bit.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "minidl/optim/lr_schedule.hpp"
#include "minidl/optim/lr_scheduler.hpp"
#include "minidl/optim/sgd.hpp"

using namespace minidl;

namespace {

const double kPi = 3.14159265358979323846;

// An SGD optimizer with two groups, learning rates 0.1 and 0.02.
struct TwoGroups {
  Tensor<double> p{1}, q{1}, gp{1}, gq{1};
  SGD<double> opt{
      std::vector<ParamGroup<double>>{{{{"p", &p, &gp}}, 0.1, {}}, {{{"q", &q, &gq}}, 0.02, {}}}};
};

std::vector<double> rates(const LrSchedule& s, double base, int count) {
  std::vector<double> out;
  for (int t = 0; t < count; ++t) out.push_back(s.lr_at(base, t));
  return out;
}

}  // namespace

TEST_CASE("step, multi-step and exponential decay multiply by gamma at their steps") {
  CHECK(rates(StepLR(3, 0.5), 0.8, 8) ==
        std::vector<double>{0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2});
  CHECK(rates(MultiStepLR({4, 2}, 0.5), 0.8, 6) ==
        std::vector<double>{0.8, 0.8, 0.4, 0.4, 0.2, 0.2});
  const ExponentialLR exponential(0.5);
  CHECK(exponential.lr_at(0.8, 0) == 0.8);
  CHECK(exponential.lr_at(0.8, 3) == 0.1);
}

TEST_CASE("cosine annealing: base rate, midpoint, minimum at t_max, back up after") {
  const CosineAnnealingLR cosine(10, 0.01);
  CHECK(cosine.lr_at(0.1, 0) == doctest::Approx(0.1));
  CHECK(cosine.lr_at(0.1, 5) == doctest::Approx((0.1 + 0.01) / 2));
  CHECK(cosine.lr_at(0.1, 10) == doctest::Approx(0.01));
  CHECK(cosine.lr_at(0.1, 3) == doctest::Approx(0.01 + 0.09 * (1 + std::cos(kPi * 0.3)) / 2));
  CHECK(cosine.lr_at(0.1, 13) == doctest::Approx(cosine.lr_at(0.1, 7)));
}

TEST_CASE("warm restarts return to the base rate after periods t_0, t_0 t_mult, ...") {
  const CosineAnnealingWarmRestarts sgdr(3, 2, 0.0);
  for (int restart : {0, 3, 9, 21}) CHECK(sgdr.lr_at(0.1, restart) == doctest::Approx(0.1));
  // Halfway through the second period (length 6, from t = 3).
  CHECK(sgdr.lr_at(0.1, 6) == doctest::Approx(0.05));
  CHECK(sgdr.lr_at(0.1, 8) == doctest::Approx(0.1 * (1 + std::cos(kPi * 5 / 6)) / 2));
  const CosineAnnealingWarmRestarts constant_period(4, 1, 0.0);
  CHECK(constant_period.lr_at(0.1, 6) == doctest::Approx(constant_period.lr_at(0.1, 2)));
}

TEST_CASE("one-cycle: from max/div_factor up to max at pct_start, then down to its minimum") {
  const OneCycleLR one_cycle(100, 0.3, 25, 1e4);
  CHECK(one_cycle.lr_at(1.0, 0) == doctest::Approx(1.0 / 25));
  CHECK(one_cycle.lr_at(1.0, 29) == doctest::Approx(1.0));  // peak at step 0.3 * 100 - 1
  CHECK(one_cycle.lr_at(1.0, 99) == doctest::Approx(1.0 / 25 / 1e4));
  // Halfway up and halfway down, half a cosine each.
  CHECK(one_cycle.lr_at(1.0, 14) ==
        doctest::Approx(1.0 + (0.04 - 1.0) / 2 * (std::cos(kPi * 14 / 29) + 1)));
  CHECK(one_cycle.lr_at(1.0, 64) == doctest::Approx((1.0 + 4e-6) / 2));
  CHECK_THROWS_AS(one_cycle.lr_at(1.0, 101), Error);
}

TEST_CASE("linear warm-up scales another schedule from start_factor to 1") {
  auto cosine = std::make_shared<CosineAnnealingLR>(10);
  const LinearWarmup warmup(0.25, 3, cosine);
  CHECK(warmup.lr_at(0.1, 0) == doctest::Approx(0.025));
  CHECK(warmup.lr_at(0.1, 1) == doctest::Approx(0.5 * cosine->lr_at(0.1, 1)));
  CHECK(warmup.lr_at(0.1, 3) == cosine->lr_at(0.1, 3));
  CHECK(warmup.lr_at(0.1, 7) == cosine->lr_at(0.1, 7));
  const LinearWarmup alone(0.5, 4);
  CHECK(alone.lr_at(0.2, 2) == doctest::Approx(0.15));
  CHECK(alone.lr_at(0.2, 9) == 0.2);
}

TEST_CASE("the scheduler sets every group's rate from that group's own base") {
  TwoGroups f;
  LrScheduler<double> scheduler(f.opt, std::make_shared<StepLR>(2, 0.5));
  CHECK(f.opt.group_learning_rate(0) == 0.1);
  CHECK(f.opt.group_learning_rate(1) == 0.02);
  scheduler.step();
  scheduler.step();
  CHECK(scheduler.last_epoch() == 2);
  CHECK(f.opt.group_learning_rate(0) == 0.05);
  CHECK(f.opt.group_learning_rate(1) == 0.01);
  CHECK(scheduler.last_lr(1) == 0.01);
}

TEST_CASE("a schedule restored from its saved state continues with the same rates, bit for bit") {
  const std::vector<std::shared_ptr<const LrSchedule>> schedules = {
      std::make_shared<StepLR>(3, 0.7),
      std::make_shared<MultiStepLR>(std::vector<std::int64_t>{4, 9}, 0.3),
      std::make_shared<ExponentialLR>(0.93),
      std::make_shared<CosineAnnealingLR>(11, 1e-4),
      std::make_shared<CosineAnnealingWarmRestarts>(2, 3, 1e-3),
      std::make_shared<OneCycleLR>(20, 0.3, 25, 1e4, /*cycle_momentum=*/false),
      std::make_shared<LinearWarmup>(0.1, 5, std::make_shared<CosineAnnealingLR>(15))};
  for (std::size_t i = 0; i < schedules.size(); ++i) {
    CAPTURE(i);
    TwoGroups whole;
    LrScheduler<double> uninterrupted(whole.opt, schedules[i]);
    std::vector<double> expected;
    for (int t = 1; t <= 18; ++t) {
      uninterrupted.step();
      if (t > 7) expected.push_back(whole.opt.group_learning_rate(1));
    }

    TwoGroups first;
    LrScheduler<double> before(first.opt, schedules[i]);
    for (int t = 1; t <= 7; ++t) before.step();
    const LrSchedulerState saved = before.state();
    CHECK(saved.last_epoch == 7);

    // A fresh run whose optimizer starts elsewhere: the saved base rates win.
    TwoGroups second;
    second.opt.set_learning_rate(0.5);
    LrScheduler<double> after(second.opt, schedules[i]);
    after.load_state(saved);
    std::vector<double> resumed;
    for (int t = 8; t <= 18; ++t) {
      after.step();
      resumed.push_back(second.opt.group_learning_rate(1));
    }
    CHECK(resumed == expected);
  }
}

TEST_CASE("schedules reject settings and states they cannot use") {
  CHECK_THROWS_AS(StepLR(0), Error);
  CHECK_THROWS_AS(CosineAnnealingLR(0), Error);
  CHECK_THROWS_AS(CosineAnnealingWarmRestarts(3, 0), Error);
  CHECK_THROWS_AS(OneCycleLR(10, 1.5), Error);
  CHECK_THROWS_AS(LinearWarmup(0.0, 3), Error);
  CHECK_THROWS_AS(LinearWarmup(0.5, 0), Error);
  TwoGroups f;
  LrScheduler<double> scheduler(f.opt, std::make_shared<ExponentialLR>(0.9));
  CHECK_THROWS_WITH_AS(scheduler.load_state(LrSchedulerState{3, {0.1}}),
                       doctest::Contains("1 learning rates, the optimizer 2 groups"), Error);
  CHECK_THROWS_AS(scheduler.load_state(LrSchedulerState{-1, {0.1, 0.2}}), Error);
  CHECK_THROWS_AS(LrScheduler<double>(f.opt, nullptr), Error);
}
