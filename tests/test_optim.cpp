// The optimizers against PyTorch's published update rules, written out
// element by element in double precision; parameter groups; gradient
// clipping; and updates that are the same bits for any thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "minidl/core/rng.hpp"
#include "minidl/optim/adam.hpp"
#include "minidl/optim/adamw.hpp"
#include "minidl/optim/clip_grad.hpp"
#include "minidl/optim/param_groups.hpp"
#include "minidl/optim/rmsprop.hpp"
#include "minidl/optim/sgd.hpp"
#include "minidl/train/divergence.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_optim {

using namespace minidl;

namespace {

// A parameter vector whose gradient at step t is a fixed function of t and
// the current value, so the trajectory depends on every update being right.
double gradient_at(int t, std::size_t i, double p) {
  return std::sin(1.0 + t + 2.0 * i) + 0.3 * p;
}

struct Fixture {
  Tensor<double> value{4}, grad{4};
  Fixture() {
    const double init[] = {0.5, -1.0, 2.0, 0.0};
    for (int i = 0; i < 4; ++i) value[i] = init[i];
  }
  void compute_grad(int t) {
    for (std::size_t i = 0; i < 4; ++i)
      grad[static_cast<std::int64_t>(i)] = gradient_at(t, i, value[static_cast<std::int64_t>(i)]);
  }
  std::vector<Parameter<double>> params() { return {{"w", &value, &grad}}; }
};

}  // namespace

TEST_CASE(
    "Adam follows torch.optim.Adam's formulas (bias correction, eps outside the root, L2 decay)") {
  for (double wd : {0.0, 0.05}) {
    AdamOptions o;
    o.lr = 0.01;
    o.weight_decay = wd;
    Fixture f;
    Adam<double> adam(f.params(), o);
    std::vector<double> p = {0.5, -1.0, 2.0, 0.0}, m(4, 0.0), v(4, 0.0);
    for (int t = 1; t <= 6; ++t) {
      f.compute_grad(t);
      adam.step();
      for (std::size_t i = 0; i < 4; ++i) {
        const double g = gradient_at(t, i, p[i]) + wd * p[i];
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.999 * v[i] + 0.001 * g * g;
        const double m_hat = m[i] / (1 - std::pow(0.9, t));
        const double v_hat = v[i] / (1 - std::pow(0.999, t));
        p[i] -= 0.01 * m_hat / (std::sqrt(v_hat) + 1e-8);
        CHECK(f.value[static_cast<std::int64_t>(i)] == doctest::Approx(p[i]).epsilon(1e-12));
      }
    }
    CHECK(adam.step_count() == 6);
  }
}

TEST_CASE("Adam's first step moves every element by lr against the sign of its gradient") {
  // With m_hat = g and v_hat = g^2 at t = 1, the update is lr * g / (|g| + eps).
  Fixture f;
  f.compute_grad(1);
  const Tensor<double> before = f.value.clone(), g = f.grad.clone();
  Adam<double> adam(f.params(), AdamOptions{});
  adam.step();
  for (std::int64_t i = 0; i < 4; ++i)
    CHECK(f.value[i] - before[i] == doctest::Approx(-1e-3 * (g[i] > 0 ? 1 : -1)).epsilon(1e-6));
}

TEST_CASE("SGD with momentum, dampening and Nesterov follows torch.optim.SGD") {
  struct Case {
    double momentum, dampening, wd;
    bool nesterov;
  };
  for (const Case c : {Case{0, 0, 0, false}, Case{0.9, 0, 0, false}, Case{0.9, 0.1, 0.01, false},
                       Case{0.8, 0, 0.02, true}}) {
    CAPTURE(c.momentum);
    CAPTURE(c.nesterov);
    SgdOptions o;
    o.lr = 0.1;
    o.momentum = c.momentum;
    o.dampening = c.dampening;
    o.weight_decay = c.wd;
    o.nesterov = c.nesterov;
    Fixture f;
    SGD<double> sgd(f.params(), o);
    std::vector<double> p = {0.5, -1.0, 2.0, 0.0}, buf(4, 0.0);
    for (int t = 1; t <= 5; ++t) {
      f.compute_grad(t);
      sgd.step();
      for (std::size_t i = 0; i < 4; ++i) {
        double g = gradient_at(t, i, p[i]) + c.wd * p[i];
        if (c.momentum != 0) {
          buf[i] = t == 1 ? g : c.momentum * buf[i] + (1 - c.dampening) * g;
          g = c.nesterov ? g + c.momentum * buf[i] : buf[i];
        }
        p[i] -= 0.1 * g;
        CHECK(f.value[static_cast<std::int64_t>(i)] == doctest::Approx(p[i]).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("optimizer state is exposed by name and restoring it continues identically") {
  Fixture a, b;
  Adam<double> adam_a(a.params()), adam_b(b.params());
  for (int t = 1; t <= 3; ++t) {
    a.compute_grad(t);
    adam_a.step();
  }
  // Copy a's parameters and state into b, then take the same steps.
  b.value.copy_from(a.value);
  auto sa = adam_a.state(), sb = adam_b.state();
  REQUIRE(sa.size() == 2);
  CHECK(sa[0].first == "exp_avg.w");
  CHECK(sa[1].first == "exp_avg_sq.w");
  for (std::size_t i = 0; i < sa.size(); ++i) sb[i].second->copy_from(*sa[i].second);
  adam_b.set_step_count(adam_a.step_count());
  for (int t = 4; t <= 6; ++t) {
    a.compute_grad(t);
    b.compute_grad(t);
    adam_a.step();
    adam_b.step();
  }
  for (std::int64_t i = 0; i < 4; ++i) CHECK(a.value[i] == b.value[i]);
}

TEST_CASE("SGD rejects Nesterov without momentum") {
  Fixture f;
  SgdOptions o;
  o.nesterov = true;
  CHECK_THROWS_AS(SGD<double>(f.params(), o), Error);
}

TEST_CASE("Adam in float rounds 1 - beta1 and 1 - beta2 from double, as PyTorch does") {
  // 1.0f - 0.999f is 0.00099998713f, 1.3e-5 below 0.001f: a v formed with it
  // makes every float update 6.4e-6 (relative) larger than PyTorch's.
  Tensor<float> value{3}, grad{3};
  const float g[] = {0.75f, -1.3f, 2.1f};
  for (int i = 0; i < 3; ++i) grad[i] = g[i];
  Adam<float> adam(std::vector<Parameter<float>>{{"w", &value, &grad}}, AdamOptions{});
  adam.step();
  auto state = adam.state();
  const float one_b1 = static_cast<float>(1.0 - 0.9), one_b2 = static_cast<float>(1.0 - 0.999);
  for (std::int64_t i = 0; i < 3; ++i) {
    CHECK((*state[0].second)[i] == one_b1 * g[i]);
    CHECK((*state[1].second)[i] == one_b2 * g[i] * g[i]);
  }
}

TEST_CASE("AdamW follows torch.optim.AdamW: decay decoupled from the moments, per group") {
  Tensor<double> w{3}, b{2}, gw{3}, gb{2};
  const double w0[] = {0.5, -1.0, 2.0}, b0[] = {0.3, -0.2};
  for (int i = 0; i < 3; ++i) w[i] = w0[i];
  for (int i = 0; i < 2; ++i) b[i] = b0[i];
  AdamWOptions o;
  o.lr = 0.02;
  o.weight_decay = 0.1;
  // Group 0 takes the options; group 1 sets lr 0.005 and no decay.
  AdamW<double> adamw(
      std::vector<ParamGroup<double>>{{{{"w", &w, &gw}}, {}, {}}, {{{"b", &b, &gb}}, 0.005, 0.0}},
      o);
  CHECK(adamw.type() == "adamw");
  std::vector<double> p(w0, w0 + 3), q(b0, b0 + 2), m(5, 0.0), v(5, 0.0);
  for (int t = 1; t <= 5; ++t) {
    for (std::size_t i = 0; i < 3; ++i) gw[static_cast<std::int64_t>(i)] = gradient_at(t, i, p[i]);
    for (std::size_t i = 0; i < 2; ++i)
      gb[static_cast<std::int64_t>(i)] = gradient_at(t, i + 3, q[i]);
    adamw.step();
    for (std::size_t i = 0; i < 5; ++i) {
      double& x = i < 3 ? p[i] : q[i - 3];
      const double lr = i < 3 ? 0.02 : 0.005, wd = i < 3 ? 0.1 : 0.0;
      const double g = gradient_at(t, i, x);
      x *= 1 - lr * wd;
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      x -= lr * (m[i] / (1 - std::pow(0.9, t))) /
           (std::sqrt(v[i] / (1 - std::pow(0.999, t))) + 1e-8);
    }
    for (std::int64_t i = 0; i < 3; ++i)
      CHECK(w[i] == doctest::Approx(p[static_cast<std::size_t>(i)]).epsilon(1e-12));
    for (std::int64_t i = 0; i < 2; ++i)
      CHECK(b[i] == doctest::Approx(q[static_cast<std::size_t>(i)]).epsilon(1e-12));
  }
}

TEST_CASE("RMSprop follows torch.optim.RMSprop (alpha, eps, weight decay, momentum, centered)") {
  struct Case {
    double momentum, wd;
    bool centered;
  };
  for (const Case c :
       {Case{0, 0, false}, Case{0.7, 0, false}, Case{0, 0.05, true}, Case{0.8, 0.02, true}}) {
    CAPTURE(c.momentum);
    CAPTURE(c.centered);
    RmspropOptions o;
    o.lr = 0.01;
    o.alpha = 0.9;
    o.eps = 1e-6;
    o.momentum = c.momentum;
    o.weight_decay = c.wd;
    o.centered = c.centered;
    Fixture f;
    RMSprop<double> rms(f.params(), o);
    std::vector<double> p = {0.5, -1.0, 2.0, 0.0}, s(4, 0.0), a(4, 0.0), buf(4, 0.0);
    for (int t = 1; t <= 5; ++t) {
      f.compute_grad(t);
      rms.step();
      for (std::size_t i = 0; i < 4; ++i) {
        const double g = gradient_at(t, i, p[i]) + c.wd * p[i];
        s[i] = 0.9 * s[i] + 0.1 * g * g;
        a[i] = 0.9 * a[i] + 0.1 * g;
        const double d = std::sqrt(c.centered ? s[i] - a[i] * a[i] : s[i]) + 1e-6;
        if (c.momentum > 0) {
          buf[i] = c.momentum * buf[i] + g / d;
          p[i] -= 0.01 * buf[i];
        } else {
          p[i] -= 0.01 * g / d;
        }
        CHECK(f.value[static_cast<std::int64_t>(i)] == doctest::Approx(p[i]).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("RMSprop's state is named as PyTorch's and restoring it continues identically") {
  RmspropOptions o;
  o.momentum = 0.5;
  o.centered = true;
  Fixture a, b;
  RMSprop<double> first(a.params(), o), second(b.params(), o);
  auto names = first.state();
  REQUIRE(names.size() == 3);
  CHECK(names[0].first == "square_avg.w");
  CHECK(names[1].first == "momentum_buffer.w");
  CHECK(names[2].first == "grad_avg.w");
  for (int t = 1; t <= 3; ++t) {
    a.compute_grad(t);
    first.step();
  }
  b.value.copy_from(a.value);
  auto sa = first.state(), sb = second.state();
  for (std::size_t i = 0; i < sa.size(); ++i) sb[i].second->copy_from(*sa[i].second);
  for (int t = 4; t <= 6; ++t) {
    a.compute_grad(t);
    b.compute_grad(t);
    first.step();
    second.step();
  }
  for (std::int64_t i = 0; i < 4; ++i) CHECK(a.value[i] == b.value[i]);
}

TEST_CASE("parameter groups: each group steps with its own learning rate and weight decay") {
  Tensor<double> w{2}, b{2}, gw{2}, gb{2};
  w.fill(1.0);
  b.fill(1.0);
  gw.fill(0.5);
  gb.fill(0.5);
  SgdOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.2;
  SGD<double> sgd(
      std::vector<ParamGroup<double>>{{{{"w", &w, &gw}}, {}, {}}, {{{"b", &b, &gb}}, 0.01, 0.0}},
      o);
  REQUIRE(sgd.group_count() == 2);
  CHECK(sgd.group_learning_rate(0) == 0.1);
  CHECK(sgd.group_weight_decay(0) == 0.2);
  CHECK(sgd.group_weight_decay(1) == 0.0);
  CHECK(sgd.group_of(1) == 1);
  sgd.step();
  CHECK(w[0] == doctest::Approx(1.0 - 0.1 * (0.5 + 0.2 * 1.0)));
  CHECK(b[0] == doctest::Approx(1.0 - 0.01 * 0.5));
  sgd.set_learning_rate(0.3);  // every group, as the training loop's decay expects
  CHECK(sgd.group_learning_rate(1) == 0.3);
  sgd.set_group_learning_rate(1, 0.05);
  CHECK(sgd.learning_rate() == 0.3);
  CHECK(sgd.group_learning_rate(1) == 0.05);
}

TEST_CASE("optimizers reject a parameter given twice and an empty group list") {
  Fixture f;
  std::vector<Parameter<double>> twice = {{"w", &f.value, &f.grad}, {"w2", &f.value, &f.grad}};
  CHECK_THROWS_WITH_AS(SGD<double>{twice}, doctest::Contains("'w2' is given twice"), Error);
  CHECK_THROWS_AS(Adam<double>(std::vector<ParamGroup<double>>{}), Error);
  RmspropOptions bad;
  bad.alpha = 1.5;
  CHECK_THROWS_AS(RMSprop<double>(f.params(), bad), Error);
  AdamWOptions negative_lr;
  negative_lr.lr = -1e-3;
  CHECK_THROWS_WITH_AS(AdamW<double>(f.params(), negative_lr),
                       doctest::Contains("adamw: learning rate -0.001 of group 0 is negative"),
                       Error);
  AdamOptions beta_one;
  beta_one.beta2 = 1.0;
  CHECK_THROWS_WITH_AS(Adam<double>(f.params(), beta_one), doctest::Contains("betas"), Error);
  CHECK_THROWS_WITH_AS(SGD<double>(std::vector<ParamGroup<double>>{{f.params(), 0.1, -0.5}}),
                       doctest::Contains("weight decay -0.5 of group 0"), Error);
}

TEST_CASE("split_weight_decay puts biases and norm parameters in a group without decay") {
  Tensor<float> conv_w{4, 1, 3, 3}, conv_b{4}, norm_w{4}, norm_b{4}, fc_w{10, 4}, fc_b{10};
  std::vector<Tensor<float>> grads;
  for (auto* t : {&conv_w, &conv_b, &norm_w, &norm_b, &fc_w, &fc_b}) grads.emplace_back(t->shape());
  std::vector<Parameter<float>> params = {
      {"conv1.weight", &conv_w, &grads[0]}, {"conv1.bias", &conv_b, &grads[1]},
      {"bn1.weight", &norm_w, &grads[2]},   {"bn1.bias", &norm_b, &grads[3]},
      {"fc.weight", &fc_w, &grads[4]},      {"fc.bias", &fc_b, &grads[5]}};
  const auto groups = split_weight_decay(params, 0.05);
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].params.size() == 2);
  CHECK(groups[0].params[0].name == "conv1.weight");
  CHECK(groups[0].params[1].name == "fc.weight");
  CHECK(*groups[0].weight_decay == 0.05);
  REQUIRE(groups[1].params.size() == 4);
  CHECK(groups[1].params[0].name == "conv1.bias");
  CHECK(groups[1].params[1].name == "bn1.weight");
  CHECK(*groups[1].weight_decay == 0.0);
  CHECK_FALSE(groups[0].lr.has_value());
  // Only weights: one group.
  CHECK(split_weight_decay(std::vector<Parameter<float>>{params[0]}, 0.1).size() == 1);
}

TEST_CASE("clip_grad_norm: the global norm, and scaling by max_norm / (norm + 1e-6)") {
  Tensor<double> a{2}, b{1}, ga{2}, gb{1};
  ga[0] = 3;
  ga[1] = 0;
  gb[0] = -4;  // together the vector (3, 0, -4), norm 5
  std::vector<Parameter<double>> params = {{"a", &a, &ga}, {"b", &b, &gb}};
  CHECK(clip_grad_norm(params, 10.0) == doctest::Approx(5.0).epsilon(1e-15));
  CHECK(ga[0] == 3);  // under max_norm: untouched
  CHECK(clip_grad_norm(params, 1.0) == doctest::Approx(5.0).epsilon(1e-15));
  CHECK(ga[0] == doctest::Approx(3 / (5 + 1e-6)).epsilon(1e-15));
  CHECK(gb[0] == doctest::Approx(-4 / (5 + 1e-6)).epsilon(1e-15));

  ga[0] = 3;
  ga[1] = 0;
  gb[0] = -4;
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(clip_grad_norm(params, 2.0, inf) == 4.0);
  CHECK(gb[0] == doctest::Approx(-4 * 2 / (4 + 1e-6)).epsilon(1e-15));
  CHECK_THROWS_AS(clip_grad_norm(params, 1.0, 1.0), Error);
  CHECK_THROWS_AS(clip_grad_norm(params, -1.0), Error);

  gb[0] = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::isnan(clip_grad_norm(params, 1.0)));  // reported, as PyTorch does
}

TEST_CASE("clip_grad_value clamps every gradient element to [-v, v]") {
  Fixture f;
  const double g[] = {0.3, -2.0, 5.0, -0.1};
  for (std::int64_t i = 0; i < 4; ++i) f.grad[i] = g[i];
  clip_grad_value(f.params(), 0.5);
  const double expected[] = {0.3, -0.5, 0.5, -0.1};
  for (std::int64_t i = 0; i < 4; ++i) CHECK(f.grad[i] == expected[i]);
  CHECK_THROWS_AS(clip_grad_value(f.params(), -1.0), Error);
}

namespace {

// A parameter large enough to be cut into several row blocks and chunks.
struct Big {
  Tensor<float> value{300, 257}, grad{300, 257};
  explicit Big(std::uint64_t seed) {
    Rng rng(seed);
    for (auto& x : value) x = static_cast<float>(rng.normal());
    for (auto& x : grad) x = static_cast<float>(rng.normal());
  }
  std::vector<Parameter<float>> params() { return {{"w", &value, &grad}}; }
};

// The parameters after three steps (and the clipped norm) with `threads` threads.
std::pair<Tensor<float>, double> run_with_threads(int threads, int which) {
  const int saved = num_threads();
  set_num_threads(threads);
  Big big(5);
  const double norm = clip_grad_norm(big.params(), 50.0);
  std::unique_ptr<Optimizer<float>> opt;
  if (which == 0) opt = std::make_unique<AdamW<float>>(big.params());
  if (which == 1) {
    RmspropOptions o;
    o.momentum = 0.9;
    o.centered = true;
    opt = std::make_unique<RMSprop<float>>(big.params(), o);
  }
  for (int t = 0; t < 3; ++t) opt->step();
  set_num_threads(saved);
  return {big.value.clone(), norm};
}

}  // namespace

TEST_CASE("AdamW, RMSprop and clip_grad_norm give the same bits for any thread count") {
  for (int which : {0, 1}) {
    CAPTURE(which);
    const auto one = run_with_threads(1, which), three = run_with_threads(3, which);
    CHECK(one.second == three.second);
    bool same = true;
    for (std::int64_t i = 0; i < one.first.size(); ++i)
      same = same && one.first[i] == three.first[i];
    CHECK(same);
  }
}

TEST_CASE("divergence: an exploding loss or a fall to chance after learning, not slow learning") {
  const minidl::DivergenceCheck check{10};
  const double best_unknown = -INFINITY;
  // Learning, slowly or well: not diverged.
  CHECK(check.reason(2.30, 0.11, best_unknown).empty());  // the first epoch of a slow start
  CHECK(check.reason(0.05, 0.99, 0.98).empty());
  CHECK(check.reason(2.5, 0.30, 0.40).empty());  // worse, but above chance
  // The loss of the --lr 10 run that stayed finite, and a NaN mean.
  const std::string exploded = check.reason(4.6e9, 0.10, best_unknown);
  CHECK(exploded.find("4.6e+09") != std::string::npos);
  CHECK(exploded.find("ln 10") != std::string::npos);
  CHECK_FALSE(check.reason(NAN, 0.5, 0.5).empty());
  CHECK_FALSE(check.reason(9.3, 0.5, 0.5).empty());  // just above 4 ln 10 = 9.21
  CHECK(check.reason(9.1, 0.5, 0.5).empty());
  // At chance (below 0.2) after having reached 0.5 or more.
  const std::string collapsed = check.reason(2.31, 0.1135, 0.97);
  CHECK(collapsed.find("chance") != std::string::npos);
  CHECK(collapsed.find("0.9700") != std::string::npos);
  CHECK(check.reason(2.31, 0.1135, 0.45).empty());  // never learned much: not a fall
}

}  // namespace test_optim
