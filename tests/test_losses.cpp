// The losses: values from their definitions, gradients against central
// finite differences in double, the fast smoothed cross-entropy against its
// naive twin, stability at extreme logits, and the errors bad input gets.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "minidl/core/rng.hpp"
#include "minidl/kernels/losses.hpp"
#include "minidl/loss/bce_with_logits.hpp"
#include "minidl/loss/cross_entropy.hpp"
#include "minidl/loss/mse.hpp"
#include "minidl/loss/nll.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_losses {

using namespace minidl;

namespace {

Tensor<double> random_tensor(Shape shape, std::uint64_t seed, double scale = 1.0) {
  Tensor<double> t(shape);
  Rng rng(seed);
  for (std::int64_t i = 0; i < t.size(); ++i) t[i] = scale * rng.normal();
  return t;
}

// d loss/d input by central differences: (L(x + h e_i) - L(x - h e_i)) / 2h.
// With h = 1e-6 the truncation error is O(h^2) and the rounding O(1e-16 / h),
// so a correct gradient agrees to about 1e-8 of its scale.
void check_gradient(const Tensor<double>& x, const Tensor<double>& analytic,
                    const std::function<double(const Tensor<double>&)>& loss) {
  REQUIRE(analytic.shape() == x.shape());
  const double h = 1e-6;
  double scale = 0, worst = 0;
  for (std::int64_t i = 0; i < x.size(); ++i) {
    Tensor<double> plus = x.clone(), minus = x.clone();
    plus[i] += h;
    minus[i] -= h;
    const double numeric = (loss(plus) - loss(minus)) / (2 * h);
    worst = std::max(worst, std::fabs(numeric - analytic[i]));
    scale = std::max(scale, std::fabs(numeric));
  }
  CHECK(worst <= 1e-7 * std::max(scale, 1.0));
}

std::vector<std::int32_t> random_labels(std::int64_t n, std::int32_t k, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (auto& v : y) v = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(k)));
  return y;
}

const Reduction kReductions[] = {Reduction::mean, Reduction::sum};

}  // namespace

TEST_CASE("MSELoss: the mean or sum of squared differences, and its gradient") {
  Tensor<double> x{2, 2}, y{2, 2};
  const double xs[] = {1, 2, -1, 0.5}, ys[] = {0, 0, 1, 0.5};
  for (int i = 0; i < 4; ++i) x[i] = xs[i], y[i] = ys[i];
  MSELoss<double> mean, sum(Reduction::sum);
  CHECK(mean.forward(x, y) == doctest::Approx((1 + 4 + 4 + 0) / 4.0));
  CHECK(sum.forward(x, y) == doctest::Approx(9.0));
  CHECK(mean.backward()[0] == doctest::Approx(2 * 1 / 4.0));
  CHECK(sum.backward()[2] == doctest::Approx(2 * -2.0));

  for (Reduction r : kReductions)
    for (const Shape& shape : {Shape({1}), Shape({3, 7}), Shape({1, 5, 3})}) {
      CAPTURE(shape.str());
      const Tensor<double> in = random_tensor(shape, 1), target = random_tensor(shape, 2);
      MSELoss<double> loss(r);
      loss.forward(in, target);
      check_gradient(in, loss.backward().clone(), [&](const Tensor<double>& t) {
        return MSELoss<double>(r).forward(t, target);
      });
    }
}

TEST_CASE("BCEWithLogitsLoss: the definition on moderate logits, finite on extreme ones") {
  Tensor<double> x{3}, y{3};
  const double xs[] = {0.3, -1.2, 2.0}, ys[] = {1, 0, 0.25};
  for (int i = 0; i < 3; ++i) x[i] = xs[i], y[i] = ys[i];
  double expected = 0;
  for (int i = 0; i < 3; ++i) {
    const double s = 1 / (1 + std::exp(-xs[i]));
    expected += -(ys[i] * std::log(s) + (1 - ys[i]) * std::log(1 - s));
  }
  BCEWithLogitsLoss<double> sum(Reduction::sum), mean;
  CHECK(sum.forward(x, y) == doctest::Approx(expected).epsilon(1e-12));
  CHECK(mean.forward(x, y) == doctest::Approx(expected / 3).epsilon(1e-12));
  CHECK(mean.backward()[1] == doctest::Approx((1 / (1 + std::exp(1.2)) - 0) / 3).epsilon(1e-12));

  for (Reduction r : kReductions) {
    const Tensor<double> in = random_tensor({4, 5}, 3, 3.0);
    Tensor<double> target = random_tensor({4, 5}, 4);
    for (auto& t : target) t = 1 / (1 + std::exp(-t));  // probabilities
    BCEWithLogitsLoss<double> loss(r);
    loss.forward(in, target);
    check_gradient(in, loss.backward().clone(), [&](const Tensor<double>& t) {
      return BCEWithLogitsLoss<double>(r).forward(t, target);
    });
  }

  // exp(1000) overflows: a formula that forms it gives inf or NaN.
  Tensor<float> big{4}, target{4};
  const float logits[] = {1000, -1000, 1000, -1000}, targets[] = {1, 0, 0, 1};
  for (int i = 0; i < 4; ++i) big[i] = logits[i], target[i] = targets[i];
  BCEWithLogitsLoss<float> loss(Reduction::sum);
  const float value = loss.forward(big, target);
  CHECK(value == doctest::Approx(2000.0f));  // the two wrong signs cost |x| each
  const float expected_grad[] = {0, 0, 1, -1};
  for (int i = 0; i < 4; ++i) CHECK(loss.backward()[i] == expected_grad[i]);
}

TEST_CASE("NLLLoss: minus the log-probability of the label, mean or sum") {
  Tensor<double> logp{2, 3};
  const double v[] = {-0.1, -2.0, -3.0, -1.5, -0.4, -2.5};
  for (int i = 0; i < 6; ++i) logp[i] = v[i];
  const std::int32_t y[] = {0, 2};
  NLLLoss<double> mean, sum(Reduction::sum);
  CHECK(mean.forward(logp, y) == doctest::Approx((0.1 + 2.5) / 2));
  CHECK(sum.forward(logp, y) == doctest::Approx(2.6));
  CHECK(mean.backward()[0] == -0.5);
  CHECK(mean.backward()[1] == 0);
  CHECK(mean.backward()[5] == -0.5);

  for (Reduction r : kReductions) {
    const Tensor<double> in = random_tensor({5, 4}, 5);
    const auto labels = random_labels(5, 4, 6);
    NLLLoss<double> loss(r);
    loss.forward(in, labels.data());
    check_gradient(in, loss.backward().clone(), [&](const Tensor<double>& t) {
      return NLLLoss<double>(r).forward(t, labels.data());
    });
  }
}

TEST_CASE("CrossEntropyLoss with label smoothing: the smoothed target's cross-entropy") {
  // Two classes, logits (0, 0): p = (1/2, 1/2) whatever the target, so the loss is log 2.
  Tensor<double> even{1, 2};
  const std::int32_t first[] = {0};
  CHECK(CrossEntropyLoss<double>(Reduction::mean, 0.3).forward(even, first) ==
        doctest::Approx(std::log(2.0)));
  // Logits (2, 0), label 0, smoothing 0.2: target (0.9, 0.1).
  Tensor<double> z{1, 2};
  z[0] = 2;
  const double lse = std::log(std::exp(2.0) + 1);
  CrossEntropyLoss<double> smoothed(Reduction::sum, 0.2);
  CHECK(smoothed.forward(z, first) == doctest::Approx(0.9 * (lse - 2) + 0.1 * lse));
  CHECK(smoothed.backward()[0] == doctest::Approx(std::exp(2.0 - lse) - 0.9));

  for (Reduction r : kReductions)
    for (double s : {0.0, 0.1, 1.0})
      for (std::int64_t n : {1, 6}) {
        CAPTURE(s);
        CAPTURE(n);
        const Tensor<double> in = random_tensor({n, 7}, 7, 2.0);
        const auto labels = random_labels(n, 7, 8);
        CrossEntropyLoss<double> loss(r, s);
        loss.forward(in, labels.data());
        check_gradient(in, loss.backward().clone(), [&](const Tensor<double>& t) {
          return CrossEntropyLoss<double>(r, s).forward(t, labels.data());
        });
      }
}

TEST_CASE("the fast smoothed cross-entropy agrees with its naive twin") {
  const std::int64_t n = 9, k = 11;
  const Tensor<double> z64 = random_tensor({n, k}, 9, 4.0);
  Tensor<float> z32({n, k});
  for (std::int64_t i = 0; i < z64.size(); ++i) z32[i] = static_cast<float>(z64[i]);
  const auto labels = random_labels(n, static_cast<std::int32_t>(k), 10);
  for (double s : {0.0, 0.1}) {
    Tensor<double> fast({n, k}), naive({n, k});
    const double a =
        kernels::softmax_xent_smoothed(n, k, z64.data(), labels.data(), s, 0.5, fast.data());
    const double b =
        kernels::softmax_xent_smoothed_naive(n, k, z64.data(), labels.data(), s, 0.5, naive.data());
    CHECK(a == doctest::Approx(b).epsilon(1e-13));
    for (std::int64_t i = 0; i < fast.size(); ++i)
      CHECK(fast[i] == doctest::Approx(naive[i]).epsilon(1e-12).scale(1.0));

    Tensor<float> fast32({n, k}), naive32({n, k});
    const double c =
        kernels::softmax_xent_smoothed(n, k, z32.data(), labels.data(), s, 0.5, fast32.data());
    const double d = kernels::softmax_xent_smoothed_naive(n, k, z32.data(), labels.data(), s, 0.5,
                                                          naive32.data());
    CHECK(c == doctest::Approx(d).epsilon(1e-6));
    for (std::int64_t i = 0; i < fast32.size(); ++i)
      CHECK(fast32[i] == doctest::Approx(naive32[i]).epsilon(1e-6).scale(1.0));
  }
}

TEST_CASE("cross-entropy stays finite for logits far beyond exp's range") {
  Tensor<float> z{2, 3};
  const float v[] = {1000, -1000, 0, -500, 500, 499};
  for (int i = 0; i < 6; ++i) z[i] = v[i];
  const std::int32_t y[] = {0, 2};
  CrossEntropyLoss<float> loss(Reduction::sum, 0.1);
  const float value = loss.forward(z, y);
  CHECK(std::isfinite(value));
  for (float g : loss.backward()) CHECK(std::isfinite(g));
}

TEST_CASE("losses reject inputs they cannot score, naming the problem") {
  Tensor<double> a{2, 3}, b{3, 2}, probs{2, 3};
  CHECK_THROWS_WITH_AS(MSELoss<double>().forward(a, b), doctest::Contains("same non-empty shape"),
                       Error);
  CHECK_THROWS_AS(BCEWithLogitsLoss<double>().forward(a, b), Error);
  probs[4] = 1.5;
  CHECK_THROWS_WITH_AS(BCEWithLogitsLoss<double>().forward(a, probs),
                       doctest::Contains("outside [0, 1]"), Error);
  const std::int32_t bad[] = {0, 3};
  CHECK_THROWS_WITH_AS(NLLLoss<double>().forward(a, bad), doctest::Contains("label 3"), Error);
  CHECK_THROWS_WITH_AS(CrossEntropyLoss<double>().forward(a, bad), doctest::Contains("label 3"),
                       Error);
  CHECK_THROWS_AS(CrossEntropyLoss<double>(Reduction::mean, 1.5), Error);
  CHECK_THROWS_AS(CrossEntropyLoss<double>(Reduction::mean, -0.1), Error);
  Tensor<double> flat{6};
  const std::int32_t ok[] = {0, 1};
  CHECK_THROWS_AS(NLLLoss<double>().forward(flat, ok), Error);
}

}  // namespace test_losses
