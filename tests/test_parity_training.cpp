// minidl's losses, optimizers, gradient clipping, learning-rate schedules and
// freezing against PyTorch on identical inputs: loss values and gradients,
// parameters after four optimizer steps (also under a one-cycle schedule that
// cycles momentum), clipped gradients, learning-rate and momentum sequences,
// and a small network trained with frozen parameters.
// The reference comes from tests/parity/make_training_reference.py, its path
// in MINIDL_TRAINING_PARITY_FILE (set by CTest). Without it the test skips.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "minidl/io/safetensors.hpp"
#include "minidl/minidl.hpp"

#include "parity_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_parity_training {

using namespace minidl;

namespace {

// Both sides do the same few operations per element in the same precision,
// so they agree to a few roundings: float's unit is 6e-8, double's 1.1e-16.
// The float bound is tight enough to see Adam's 1 - beta2 rounded in float
// (6.4e-6 relative on every update).
template <typename T>
double tolerance() {
  return sizeof(T) == 4 ? 1e-6 : 1e-12;
}

template <typename T>
std::string prefix() {
  return minidl::testing::precision_prefix<T>();
}

const SafetensorsFile& reference() {
  return minidl::testing::parity_reference("MINIDL_TRAINING_PARITY_FILE");
}

template <typename T>
Tensor<T> get(const std::string& name) {
  return minidl::testing::reference_tensor<T>(reference(), name);
}

std::vector<std::int32_t> labels(const std::string& name) {
  return minidl::testing::reference_labels(reference(), name);
}

// Largest difference relative to the reference's largest magnitude.
template <typename T>
void compare(const std::string& what, const Tensor<T>& ours, const Tensor<T>& theirs,
             double bound = tolerance<T>()) {
  minidl::testing::compare_to_reference(what, ours, theirs, bound);
}

template <typename T>
Tensor<T> scalar(T value) {
  Tensor<T> t{1};
  t[0] = value;
  return t;
}

template <typename Loss, typename T, typename Target>
void check_loss(const std::string& name, const Target& target, Reduction reduction, Loss loss) {
  const std::string red = reduction == Reduction::mean ? "mean" : "sum";
  const std::string at = prefix<T>() + name + ".";
  const T value = loss.forward(get<T>(at + "x"), target);
  compare<T>(name + "." + red + ".loss", scalar(value), get<T>(at + red + ".loss"));
  compare<T>(name + "." + red + ".dx", loss.backward(), get<T>(at + red + ".dx"));
}

template <typename T>
void check_losses() {
  const std::string p = prefix<T>();
  for (Reduction r : {Reduction::mean, Reduction::sum}) {
    const Tensor<T> mse_target = get<T>(p + "mse.target"), bce_target = get<T>(p + "bce.target");
    check_loss<MSELoss<T>, T>("mse", mse_target, r, MSELoss<T>(r));
    check_loss<BCEWithLogitsLoss<T>, T>("bce", bce_target, r, BCEWithLogitsLoss<T>(r));
    check_loss<NLLLoss<T>, T>("nll", labels(p + "nll.target").data(), r, NLLLoss<T>(r));
    const auto y = labels(p + "xent.target");
    check_loss<CrossEntropyLoss<T>, T>("xent_ls", y.data(), r, CrossEntropyLoss<T>(r, 0.1));
    check_loss<CrossEntropyLoss<T>, T>("xent", y.data(), r, CrossEntropyLoss<T>(r));
  }
}

// Two parameters and the gradients of each step, as the reference has them.
template <typename T>
struct TwoParams {
  Tensor<T> w = get<T>(prefix<T>() + "opt.init.w"), b = get<T>(prefix<T>() + "opt.init.b");
  Tensor<T> gw{w.shape()}, gb{b.shape()};
  std::vector<Parameter<T>> params() { return {{"w", &w, &gw}, {"b", &b, &gb}}; }
  void load_gradients(int t) {
    gw.copy_from(get<T>(prefix<T>() + "opt.grad" + std::to_string(t) + ".w"));
    gb.copy_from(get<T>(prefix<T>() + "opt.grad" + std::to_string(t) + ".b"));
  }
};

// Compares what the steps moved the parameters, not the parameters: an
// error of a few 1e-6 in the updates would drown in the initial values.
template <typename T>
void check_optimizer(
    const std::string& name, TwoParams<T>& f, Optimizer<T>& opt,
    const std::function<void()>& after_step = [] {}) {
  for (int t = 0; t < 4; ++t) {
    f.load_gradients(t);
    opt.step();
    after_step();
  }
  for (const char* k : {"w", "b"}) {
    const Tensor<T> init = get<T>(prefix<T>() + "opt.init." + k);
    Tensor<T> ours = (std::string(k) == "w" ? f.w : f.b).clone();
    Tensor<T> theirs = get<T>(prefix<T>() + "opt." + name + "." + k);
    for (std::int64_t i = 0; i < init.size(); ++i) {
      ours[i] -= init[i];
      theirs[i] -= init[i];
    }
    compare<T>("opt." + name + "." + k + " (change)", ours, theirs);
  }
}

template <typename T>
void check_optimizers() {
  {
    TwoParams<T> f;
    AdamOptions o;
    o.lr = 1e-2;
    Adam<T> opt(f.params(), o);
    check_optimizer("adam", f, opt);
  }
  {
    TwoParams<T> f;
    AdamOptions o;
    o.lr = 1e-2;
    o.weight_decay = 0.1;
    Adam<T> opt(f.params(), o);
    check_optimizer("adam_l2", f, opt);
  }
  {
    TwoParams<T> f;
    AdamWOptions o;
    o.lr = 1e-2;
    o.weight_decay = 0.1;
    AdamW<T> opt(f.params(), o);
    check_optimizer("adamw", f, opt);
  }
  {
    TwoParams<T> f;
    AdamWOptions o;
    o.lr = 1e-2;
    auto groups = split_weight_decay(f.params(), 0.1);
    REQUIRE(groups.size() == 2);
    groups[1].lr = 5e-3;  // the biases
    AdamW<T> opt(groups, o);
    check_optimizer("adamw_groups", f, opt);
  }
  {
    TwoParams<T> f;
    RMSprop<T> opt(f.params(), RmspropOptions{});
    check_optimizer("rmsprop", f, opt);
  }
  {
    TwoParams<T> f;
    RmspropOptions o;
    o.alpha = 0.9;
    o.eps = 1e-6;
    o.weight_decay = 0.05;
    o.momentum = 0.8;
    o.centered = true;
    RMSprop<T> opt(f.params(), o);
    check_optimizer("rmsprop_all", f, opt);
  }
  {
    TwoParams<T> f;
    SgdOptions o;
    o.lr = 0.05;
    o.momentum = 0.9;
    o.nesterov = true;
    o.weight_decay = 0.01;
    SGD<T> opt(f.params(), o);
    check_optimizer("sgd_nesterov", f, opt);
  }
}

// Clipping, AdamW with two groups and a one-cycle schedule in one loop.
template <typename T>
void check_recipe() {
  TwoParams<T> f;
  AdamWOptions o;
  o.lr = 1e-2;
  auto groups = split_weight_decay(f.params(), 0.1);
  REQUIRE(groups.size() == 2);
  groups[1].lr = 5e-3;
  AdamW<T> opt(groups, o);
  // PyTorch's loop turns cycle_momentum off.
  LrScheduler<T> scheduler(opt, std::make_shared<OneCycleLR>(4, 0.5, 25, 1e4, false));
  const std::vector<Parameter<T>> params = f.params();
  for (int t = 0; t < 4; ++t) {
    f.load_gradients(t);
    clip_grad_norm(params, 2.0);
    opt.step();
    scheduler.step();
  }
  for (const char* k : {"w", "b"}) {
    const Tensor<T> init = get<T>(prefix<T>() + "opt.init." + k);
    Tensor<T> ours = (std::string(k) == "w" ? f.w : f.b).clone();
    Tensor<T> theirs = get<T>(prefix<T>() + "opt.recipe." + k);
    for (std::int64_t i = 0; i < init.size(); ++i) {
      ours[i] -= init[i];
      theirs[i] -= init[i];
    }
    compare<T>(std::string("opt.recipe.") + k + " (change)", ours, theirs);
  }
}

// Four steps of SGD with momentum and of Adam under OneCycleLR with
// cycle_momentum on, as PyTorch's defaults have it.
template <typename T>
void check_onecycle_momentum() {
  {
    TwoParams<T> f;
    SgdOptions o;
    o.lr = 0.05;
    o.momentum = 0.9;
    SGD<T> opt(f.params(), o);
    LrScheduler<T> scheduler(opt, std::make_shared<OneCycleLR>(4, 0.5, 25, 1e4, true, 0.8, 0.9));
    check_optimizer("sgd_onecycle", f, opt, [&] { scheduler.step(); });
  }
  {
    TwoParams<T> f;
    AdamOptions o;
    o.lr = 1e-2;
    Adam<T> opt(f.params(), o);
    LrScheduler<T> scheduler(opt, std::make_shared<OneCycleLR>(4, 0.5));
    check_optimizer("adam_onecycle", f, opt, [&] { scheduler.step(); });
  }
}

// Names as PyTorch's torch.nn.Sequential gives them: "0.weight", ...
template <typename T>
Sequential<T> freeze_net() {
  Sequential<T> net;
  net.add(Linear<T>(5, 7));
  net.add(ReLU<T>());
  net.add(Linear<T>(7, 6));
  net.add(ReLU<T>());
  net.add(Linear<T>(6, 3));
  for (auto& p : net.parameters())
    p.value->copy_from(get<T>(prefix<T>() + "freeze.init." + p.name));
  return net;
}

// Six steps of cross-entropy training; `always` frozen throughout,
// `first_three` for the first three steps (as make_training_reference.py).
template <typename T>
void check_freeze_case(const std::string& name, Optimizer<T>& opt, Sequential<T>& net,
                       const std::vector<std::string>& always,
                       const std::vector<std::string>& first_three) {
  const Tensor<T> x = get<T>(prefix<T>() + "freeze.x");
  const auto y = labels(prefix<T>() + "freeze.labels");
  for (const auto& n : always) net.freeze(n);
  for (const auto& n : first_three) net.freeze(n);
  CrossEntropyLoss<T> loss;
  for (int step = 0; step < 6; ++step) {
    if (step == 3)
      for (const auto& n : first_three) net.unfreeze(n);
    train_step(net, loss, opt, x, y.data());
  }
  for (auto& p : net.parameters()) {
    const Tensor<T> init = get<T>(prefix<T>() + "freeze.init." + p.name);
    Tensor<T> ours = p.value->clone(),
              theirs = get<T>(prefix<T>() + "freeze." + name + "." + p.name);
    bool unchanged = true;
    for (std::int64_t i = 0; i < init.size(); ++i) {
      unchanged &= ours[i] == init[i];
      ours[i] -= init[i];
      theirs[i] -= init[i];
    }
    if (!p.trainable()) {
      CHECK_MESSAGE(unchanged, prefix<T>() << "freeze." << name << "." << p.name << " moved");
      continue;
    }
    compare<T>("freeze." + name + "." + p.name + " (change)", ours, theirs);
  }
}

template <typename T>
void check_freezing() {
  {
    auto net = freeze_net<T>();
    AdamOptions o;
    o.lr = 5e-2;
    o.weight_decay = 0.1;
    Adam<T> opt(net.parameters(), o);
    check_freeze_case<T>("adam", opt, net, {"4.bias"}, {"2"});
  }
  {
    auto net = freeze_net<T>();
    SgdOptions o;
    o.lr = 0.05;
    o.momentum = 0.9;
    o.dampening = 0.5;
    o.weight_decay = 0.01;
    SGD<T> opt(net.parameters(), o);
    check_freeze_case<T>("sgd", opt, net, {}, {"0"});
  }
  {
    auto net = freeze_net<T>();
    AdamWOptions o;
    o.lr = 5e-2;
    o.weight_decay = 0.1;
    AdamW<T> opt(net.parameters(), o);
    check_freeze_case<T>("adamw", opt, net, {"2"}, {});
  }
  {
    auto net = freeze_net<T>();
    RmspropOptions o;
    o.lr = 1e-2;
    o.momentum = 0.5;
    o.weight_decay = 0.01;
    RMSprop<T> opt(net.parameters(), o);
    check_freeze_case<T>("rmsprop", opt, net, {"0.weight"}, {"2"});
  }
}

template <typename T>
void check_clipping() {
  const std::string p = prefix<T>() + "clip.";
  struct Case {
    const char* name;
    double max_norm, norm_type;
  };
  const double inf = std::numeric_limits<double>::infinity();
  for (const Case c :
       {Case{"norm2", 1.0, 2.0}, Case{"norm2_loose", 100.0, 2.0}, Case{"norm_inf", 0.5, inf}}) {
    Tensor<T> w{6, 5}, b{5}, gw = get<T>(p + "grad.w"), gb = get<T>(p + "grad.b");
    std::vector<Parameter<T>> params = {{"w", &w, &gw}, {"b", &b, &gb}};
    const double norm = clip_grad_norm(params, c.max_norm, c.norm_type);
    compare<T>(std::string("clip.") + c.name + ".norm", scalar(static_cast<T>(norm)),
               get<T>(p + c.name + ".norm"));
    compare<T>(std::string("clip.") + c.name + ".w", gw, get<T>(p + c.name + ".w"));
    compare<T>(std::string("clip.") + c.name + ".b", gb, get<T>(p + c.name + ".b"));
  }
  Tensor<T> w{6, 5}, b{5}, gw = get<T>(p + "grad.w"), gb = get<T>(p + "grad.b");
  clip_grad_value(std::vector<Parameter<T>>{{"w", &w, &gw}, {"b", &b, &gb}}, 0.5);
  compare<T>("clip.value.w", gw, get<T>(p + "value.w"));
  compare<T>("clip.value.b", gb, get<T>(p + "value.b"));
}

// The learning rates of both groups (0.1 and 0.02) after each step.
void check_schedule(const std::string& name, std::shared_ptr<const LrSchedule> schedule) {
  const Tensor<double> expected = get<double>("sched." + name);
  REQUIRE(expected.rank() == 2);
  REQUIRE(expected.dim(1) == 2);
  Tensor<double> p{1}, q{1}, gp{1}, gq{1};
  SGD<double> opt({{{{"p", &p, &gp}}, 0.1, {}}, {{{"q", &q, &gq}}, 0.02, {}}});
  LrScheduler<double> scheduler(opt, std::move(schedule));
  Tensor<double> ours(expected.shape());
  for (std::int64_t t = 0; t < expected.dim(0); ++t) {
    if (t > 0) scheduler.step();
    ours[2 * t] = opt.group_learning_rate(0);
    ours[2 * t + 1] = opt.group_learning_rate(1);
  }
  compare<double>("sched." + name, ours, expected);
}

// OneCycleLR with cycle_momentum on: both groups' rates and momenta
// (SGD's momentum, Adam's beta1) at each step.
template <typename Opt>
void check_momentum_sequence(const std::string& name, Opt& opt) {
  const Tensor<double> expected = get<double>("sched.onecycle_momentum." + name);
  REQUIRE(expected.rank() == 3);
  LrScheduler<double> scheduler(opt,
                                std::make_shared<OneCycleLR>(20, 0.25, 25, 1e4, true, 0.8, 0.92));
  Tensor<double> ours(expected.shape());
  for (std::int64_t t = 0; t < expected.dim(0); ++t) {
    if (t > 0) scheduler.step();
    for (std::size_t g = 0; g < 2; ++g) {
      ours[4 * t + 2 * static_cast<std::int64_t>(g)] = opt.group_learning_rate(g);
      ours[4 * t + 2 * static_cast<std::int64_t>(g) + 1] = opt.group_momentum(g).value_or(-1);
    }
  }
  compare<double>("sched.onecycle_momentum." + name, ours, expected);
}

}  // namespace

TEST_CASE("losses match torch.nn.functional in value and gradient (float and double)") {
  check_losses<float>();
  check_losses<double>();
}

TEST_CASE("four optimizer steps match torch.optim (float and double)") {
  check_optimizers<float>();
  check_optimizers<double>();
}

TEST_CASE("clipping, AdamW with groups and one-cycle together match PyTorch's loop") {
  check_recipe<float>();
  check_recipe<double>();
}

TEST_CASE("gradient clipping matches torch.nn.utils (float and double)") {
  check_clipping<float>();
  check_clipping<double>();
}

TEST_CASE("learning-rate schedules match torch.optim.lr_scheduler step by step") {
  check_schedule("step", std::make_shared<StepLR>(3, 0.5));
  check_schedule("multistep",
                 std::make_shared<MultiStepLR>(std::vector<std::int64_t>{2, 5, 6}, 0.3));
  check_schedule("exponential", std::make_shared<ExponentialLR>(0.9));
  check_schedule("cosine", std::make_shared<CosineAnnealingLR>(6, 0.001));
  check_schedule("warm_restarts", std::make_shared<CosineAnnealingWarmRestarts>(3, 2, 0.01));
  check_schedule("onecycle", std::make_shared<OneCycleLR>(20, 0.3, 25, 1e4, false));
  check_schedule("warmup_cosine",
                 std::make_shared<LinearWarmup>(0.1, 4, std::make_shared<CosineAnnealingLR>(12)));
}

TEST_CASE("one-cycle cycles SGD's momentum and Adam's beta1 as torch.optim.lr_scheduler does") {
  Tensor<double> p{1}, q{1}, gp{1}, gq{1};
  std::vector<ParamGroup<double>> groups{{{{"p", &p, &gp}}, 0.1, {}}, {{{"q", &q, &gq}}, 0.02, {}}};
  SgdOptions o;
  o.momentum = 0.9;
  SGD<double> sgd(groups, o);
  check_momentum_sequence("sgd", sgd);
  Adam<double> adam(groups);
  check_momentum_sequence("adam", adam);
}

TEST_CASE("four steps of SGD and Adam under one-cycle momentum match PyTorch (float and double)") {
  check_onecycle_momentum<float>();
  check_onecycle_momentum<double>();
}

TEST_CASE("training with frozen parameters matches requires_grad_(False) (float and double)") {
  check_freezing<float>();
  check_freezing<double>();
}

}  // namespace test_parity_training
