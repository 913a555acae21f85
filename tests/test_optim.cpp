// Adam and SGD against PyTorch's published update rules, written out element
// by element in double precision.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "minidl/optim/adam.hpp"
#include "minidl/optim/sgd.hpp"
#include "minidl/train/divergence.hpp"

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
