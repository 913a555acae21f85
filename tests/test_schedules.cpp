// Learning-rate schedules: values from their definitions at the points that
// define them, every group from its own base rate, one-cycle momentum, and a
// resumed run (from the state, or from a checkpoint) that continues with the
// same rates and weights bit for bit.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "minidl/io/checkpoint.hpp"
#include "minidl/minidl.hpp"
#include "minidl/optim/lr_schedule.hpp"
#include "minidl/optim/lr_scheduler.hpp"
#include "minidl/optim/sgd.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_schedules {

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

TEST_CASE("one-cycle momentum: from max_momentum down to base_momentum at the peak, then back") {
  const OneCycleLR one_cycle(100, 0.3, 25, 1e4, true, 0.8, 0.9);
  CHECK(one_cycle.momentum_at(0) == 0.9);
  CHECK(*one_cycle.momentum_at(29) == doctest::Approx(0.8));  // where the rate peaks
  CHECK(*one_cycle.momentum_at(99) == doctest::Approx(0.9));
  CHECK(*one_cycle.momentum_at(14) ==
        doctest::Approx(0.8 + (0.9 - 0.8) / 2 * (std::cos(kPi * 14 / 29) + 1)));
  CHECK(*one_cycle.momentum_at(64) == doctest::Approx(0.85));
  CHECK(OneCycleLR(100).momentum_at(0) == 0.95);  // PyTorch's defaults: 0.85 to 0.95
  CHECK(!OneCycleLR(100, 0.3, 25, 1e4, false).momentum_at(10));
  CHECK(!CosineAnnealingLR(10).momentum_at(3));
  CHECK(LinearWarmup(0.5, 2, std::make_shared<OneCycleLR>(10)).momentum_at(0) == 0.95);
  CHECK_THROWS_AS(OneCycleLR(10, 0.3, 25, 1e4, true, -0.1), Error);
}

TEST_CASE("the scheduler sets SGD's momentum and Adam's beta1, and refuses an optimizer without") {
  Tensor<double> w{3}, gw{3};
  SgdOptions sgd_options;
  sgd_options.momentum = 0.5;
  SGD<double> sgd({{"w", &w, &gw}}, sgd_options);
  auto one_cycle = std::make_shared<OneCycleLR>(10, 0.5);
  LrScheduler<double> sgd_scheduler(sgd, one_cycle);
  for (int t = 0; t < 10; ++t) {
    CHECK(sgd.group_momentum(0) == one_cycle->momentum_at(t));
    sgd_scheduler.step();
  }
  Adam<double> adam({{"w", &w, &gw}});
  CHECK(adam.group_momentum(0) == 0.9);  // beta1
  LrScheduler<double> adam_scheduler(adam, one_cycle);
  adam_scheduler.step();
  CHECK(adam.group_momentum(0) == one_cycle->momentum_at(1));

  TwoGroups plain;  // SGD without momentum
  CHECK_ERROR(LrScheduler<double>(plain.opt, std::make_shared<OneCycleLR>(10)), "OneCycleLR",
              "cycles momentum", "sgd was made without momentum", "cycle_momentum off");
  CHECK_NOTHROW(
      LrScheduler<double>(plain.opt, std::make_shared<OneCycleLR>(10, 0.3, 25, 1e4, false)));
  CHECK_ERROR(adam.set_group_momentum(0, 1.0), "beta1 must be in [0, 1)");
  CHECK_ERROR(plain.opt.set_group_momentum(0, 0.9), "made without momentum");
}

namespace {

// A small classifier and a fixed batch, trained under a schedule.
struct Run {
  Sequential<float> net;
  std::unique_ptr<Optimizer<float>> opt;
  std::unique_ptr<LrScheduler<float>> scheduler;
  CrossEntropyLoss<float> loss;
  Tensor<float> x{8, 4};
  std::vector<std::int32_t> labels{0, 1, 2, 0, 1, 2, 2, 1};

  Run(std::uint64_t seed, const std::function<std::unique_ptr<Optimizer<float>>(Run&)>& make_opt,
      std::shared_ptr<const LrSchedule> schedule) {
    net.add("fc1", Linear<float>(4, 6));
    net.add("relu", ReLU<float>());
    net.add("fc2", Linear<float>(6, 3));
    net.reset_parameters(seed);
    Rng rng(31);
    for (auto& v : x) v = static_cast<float>(rng.normal());
    opt = make_opt(*this);
    scheduler = std::make_unique<LrScheduler<float>>(*opt, std::move(schedule));
  }
  void steps(int count) {
    for (int i = 0; i < count; ++i) {
      train_step(net, loss, *opt, x, labels.data());
      scheduler->step();
    }
  }
  std::vector<float> bits() {
    std::vector<float> out;
    for (auto& p : net.parameters()) out.insert(out.end(), p.value->begin(), p.value->end());
    for (auto& [name, t] : opt->state()) out.insert(out.end(), t->begin(), t->end());
    return out;
  }
};

std::unique_ptr<Optimizer<float>> make_adam(Run& r) {
  auto groups = split_weight_decay(r.net.parameters(), 0.01);
  groups[1].lr = 3e-3;  // two groups with their own rates
  return std::make_unique<AdamW<float>>(groups, AdamWOptions{1e-2});
}

std::unique_ptr<Optimizer<float>> make_sgd(Run& r) {
  SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  return std::make_unique<SGD<float>>(r.net.parameters(), o);
}

}  // namespace

TEST_CASE("a run resumed from a checkpoint with its scheduler continues bit for bit") {
  testing::TempDir dir("minidl_sched_");
  struct Case {
    const char* name;
    std::function<std::unique_ptr<Optimizer<float>>(Run&)> make_opt;
    std::shared_ptr<const LrSchedule> schedule;
  };
  const Case cases[] = {
      {"one-cycle, AdamW (beta1 cycled)", make_adam, std::make_shared<OneCycleLR>(12, 0.4)},
      {"one-cycle, SGD (momentum cycled)", make_sgd, std::make_shared<OneCycleLR>(12, 0.4)},
      {"warm restarts, AdamW", make_adam,
       std::make_shared<CosineAnnealingWarmRestarts>(3, 2, 1e-4)}};
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Run straight(1, c.make_opt, c.schedule);
    straight.steps(11);

    const std::string path = dir.file("run.safetensors");
    {
      Run first(1, c.make_opt, c.schedule);
      first.steps(5);
      save_checkpoint(path, first.net, first.opt.get(), *first.scheduler);
    }
    Run resumed(2, c.make_opt, c.schedule);  // other weights: the file must set them all
    load_checkpoint(path, resumed.net, resumed.opt.get(), *resumed.scheduler);
    CHECK(resumed.scheduler->last_epoch() == 5);
    resumed.steps(6);
    CHECK(resumed.bits() == straight.bits());
    CHECK(resumed.opt->group_learning_rate(0) == straight.opt->group_learning_rate(0));

    // The comparison can tell: without the scheduler's state the run ends elsewhere.
    Run forgetful(2, c.make_opt, c.schedule);
    load_checkpoint(path, forgetful.net, forgetful.opt.get());
    forgetful.steps(6);
    CHECK(forgetful.bits() != straight.bits());
  }
}

TEST_CASE("a checkpoint's scheduler state loads only into the same schedule") {
  testing::TempDir dir("minidl_sched_");
  const std::string path = dir.file("one_cycle.safetensors");
  {
    Run saved(1, make_adam, std::make_shared<OneCycleLR>(12, 0.4));
    saved.steps(3);
    save_checkpoint(path, saved.net, saved.opt.get(), *saved.scheduler);
    const SafetensorsFile file = read_safetensors(path);
    CHECK(file.metadata.at("scheduler.type") == "OneCycleLR");
    CHECK(file.metadata.at("scheduler.last_epoch") == "3");
    CHECK(file.metadata.at("scheduler.base_lrs") == "0.01 0.0030000000000000001");
  }
  auto untouched = [](Run& r) {
    Run fresh(7, make_adam, std::make_shared<StepLR>(2));
    return r.bits() == fresh.bits() && r.scheduler->last_epoch() == 0;
  };
  Run other(7, make_adam, std::make_shared<CosineAnnealingWarmRestarts>(3));
  CHECK_ERROR(load_checkpoint(path, other.net, other.opt.get(), *other.scheduler), path,
              "holds the state of a OneCycleLR schedule, expected CosineAnnealingWarmRestarts");
  CHECK(untouched(other));
  Run longer(7, make_adam, std::make_shared<OneCycleLR>(24, 0.4));
  CHECK_ERROR(load_checkpoint(path, longer.net, longer.opt.get(), *longer.scheduler), path,
              "had settings 'total_steps 12,", "this one has 'total_steps 24,");
  CHECK(untouched(longer));

  const std::string plain = dir.file("plain.safetensors");
  {
    Run saved(1, make_adam, std::make_shared<OneCycleLR>(12, 0.4));
    save_checkpoint(plain, saved.net, saved.opt.get());
  }
  Run same(7, make_adam, std::make_shared<OneCycleLR>(12, 0.4));
  CHECK_ERROR(load_checkpoint(plain, same.net, same.opt.get(), *same.scheduler), plain,
              "holds no learning-rate scheduler state", "expected OneCycleLR");
  CHECK(untouched(same));

  // Damaged entries are named.
  SafetensorsFile file = read_safetensors(path);
  file.metadata["scheduler.base_lrs"] = "0.01 x";
  const std::string bad = dir.file("bad.safetensors");
  write_safetensors(bad, file);
  CHECK_ERROR(load_checkpoint(bad, same.net, same.opt.get(), *same.scheduler), bad,
              "scheduler.base_lrs", "0.01 x");
  file.metadata["scheduler.base_lrs"] = "0.01";
  write_safetensors(bad, file);
  CHECK_ERROR(load_checkpoint(bad, same.net, same.opt.get(), *same.scheduler), bad,
              "for 1 parameter groups, the optimizer has 2");
  file.metadata["scheduler.base_lrs"] = "0.01 0.003";
  file.metadata["scheduler.last_epoch"] = "-2";
  write_safetensors(bad, file);
  CHECK_ERROR(load_checkpoint(bad, same.net, same.opt.get(), *same.scheduler), bad,
              "scheduler.last_epoch", "'-2'");
  CHECK(untouched(same));
}

}  // namespace test_schedules
