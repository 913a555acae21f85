// BatchNorm2d and BatchNorm1d: the fast kernels against their naive twins,
// bits for 1 and 2 threads, finite differences in double (training and
// evaluation, alone and inside a network), running statistics, errors,
// buffers in checkpoints, and the plan's folding into a convolution.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "minidl/io/checkpoint.hpp"
#include "minidl/minidl.hpp"
#include "minidl/testing/gradcheck.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_batchnorm {

using namespace minidl;
using namespace minidl::testing;

namespace {
const Context kTrain{Mode::Train, 1};
const Context kEval{Mode::Eval, 1};

// A batch norm's input gradients nearly cancel (they sum to 0 over each
// channel), so many are ~1e-3, where the relative error's floor of 1e-3
// turns the finite differences' rounding (a few 1e-9, from a loss summed
// over a hundred outputs with h = 1e-6) into up to 3e-6. A wrong backward is
// off by 1e-2 or more (each deliberate breakage tried was).
constexpr double kGradTolerance = 1e-5;

template <typename T>
Tensor<T> random_as(const Shape& shape, std::uint64_t seed, double scale = 1, double offset = 0) {
  Tensor<T> t(shape);
  Rng rng(seed);
  for (T& v : t) v = static_cast<T>(offset + scale * rng.uniform(-1.0, 1.0));
  return t;
}

template <typename T>
double max_rel_diff(const T* a, const T* b, std::int64_t n) {
  double worst = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    worst = std::max(worst, d / std::max({std::fabs(double(a[i])), std::fabs(double(b[i])), 1.0}));
  }
  return worst;
}

template <typename T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

void expect_ok(const LayerGradCheck& r) {
  INFO(r.report());
  CHECK(r.input.checked > 0);
  CHECK(r.worst() < kGradTolerance);
}
}  // namespace

// ------------------------------------------------------------------ kernels

TEST_CASE_TEMPLATE("batchnorm kernels: the fast ones agree with their naive twins", T, float,
                   double) {
  // Tight bounds: only the order of each channel's sum differs.
  const double bound = sizeof(T) == 4 ? 2e-5 : 1e-13;
  struct Case {
    std::int64_t N, C, P;
  };
  // P = 1 (BatchNorm1d over [N, C]), odd P shorter and longer than a vector,
  // batch 1, a MNIST-sized plane.
  for (const Case s :
       {Case{5, 3, 1}, Case{2, 4, 7}, Case{1, 3, 37}, Case{4, 5, 784}, Case{3, 2, 97}}) {
    CAPTURE(s.N);
    CAPTURE(s.C);
    CAPTURE(s.P);
    const std::int64_t n = s.N * s.C * s.P;
    // An offset of 3 makes a one-pass variance lose digits: the two-pass one must not.
    const Tensor<T> x = random_as<T>({n}, 1, 1.0, 3.0), dy = random_as<T>({n}, 2);
    const Tensor<T> gamma = random_as<T>({s.C}, 3, 1.0, 1.0), beta = random_as<T>({s.C}, 4);
    Tensor<T> m1({s.C}), v1({s.C}), i1({s.C}), m2({s.C}), v2({s.C}), i2({s.C});
    kernels::batchnorm_stats_naive(s.N, s.C, s.P, 1e-5, x.data(), m1.data(), v1.data(), i1.data());
    kernels::batchnorm_stats(s.N, s.C, s.P, 1e-5, x.data(), m2.data(), v2.data(), i2.data());
    CHECK(max_rel_diff(m1.data(), m2.data(), s.C) < bound);
    CHECK(max_rel_diff(v1.data(), v2.data(), s.C) < bound);
    CHECK(max_rel_diff(i1.data(), i2.data(), s.C) < bound);
    // The variance itself, in double from the definition: the naive kernel is an oracle.
    for (std::int64_t c = 0; c < s.C; ++c) {
      double mean = 0, var = 0;
      for (std::int64_t k = 0; k < s.N * s.P; ++k)
        mean += double(x[(k / s.P * s.C + c) * s.P + k % s.P]);
      mean /= double(s.N * s.P);
      for (std::int64_t k = 0; k < s.N * s.P; ++k) {
        const double d = double(x[(k / s.P * s.C + c) * s.P + k % s.P]) - mean;
        var += d * d;
      }
      var /= double(s.N * s.P);
      CHECK(std::fabs(double(v1[c]) - var) <= (sizeof(T) == 4 ? 1e-5 : 1e-13) * std::max(var, 1.0));
    }

    // Statistics and normalisation in one pass per channel: the bits of the two calls.
    for (const bool relu : {false, true}) {
      Tensor<T> m3({s.C}), v3({s.C}), i3({s.C}), apart({n}), together({n});
      kernels::batchnorm_normalize(s.N, s.C, s.P, x.data(), m2.data(), i2.data(), gamma.data(),
                                   beta.data(), apart.data(), relu);
      kernels::batchnorm_stats_normalize(s.N, s.C, s.P, 1e-5, x.data(), m3.data(), v3.data(),
                                         i3.data(), gamma.data(), beta.data(), together.data(),
                                         relu);
      CHECK(same_bits(m2, m3));
      CHECK(same_bits(v2, v3));
      CHECK(same_bits(i2, i3));
      CHECK(same_bits(apart, together));
    }

    // The affine map does no sums: the same bits.
    Tensor<T> y1({n}), y2({n});
    for (const bool affine : {true, false}) {
      const T* g = affine ? gamma.data() : nullptr;
      const T* b = affine ? beta.data() : nullptr;
      kernels::batchnorm_normalize_naive(s.N, s.C, s.P, x.data(), m1.data(), i1.data(), g, b,
                                         y1.data());
      kernels::batchnorm_normalize(s.N, s.C, s.P, x.data(), m1.data(), i1.data(), g, b, y2.data());
      CHECK(same_bits(y1, y2));
    }

    for (const bool batch_stats : {true, false}) {
      CAPTURE(batch_stats);
      Tensor<T> dx1({n}), dx2({n}), dg1({s.C}), dg2({s.C}), db1({s.C}), db2({s.C});
      kernels::batchnorm_backward_naive(s.N, s.C, s.P, batch_stats, x.data(), dy.data(), m1.data(),
                                        i1.data(), gamma.data(), dx1.data(), dg1.data(),
                                        db1.data());
      kernels::batchnorm_backward(s.N, s.C, s.P, batch_stats, x.data(), dy.data(), m1.data(),
                                  i1.data(), gamma.data(), dx2.data(), dg2.data(), db2.data());
      CHECK(max_rel_diff(dg1.data(), dg2.data(), s.C) < bound * 10);
      CHECK(max_rel_diff(db1.data(), db2.data(), s.C) < bound * 10);
      CHECK(max_rel_diff(dx1.data(), dx2.data(), n) < bound * 10);
    }
  }
}

TEST_CASE_TEMPLATE("batchnorm kernels: a ReLU or a sum inside gives the passes' bits", T, float,
                   double) {
  struct Case {
    std::int64_t N, C, P;
  };
  // at_threshold: a third of each channel's values share one value x0, and
  // beta puts x0 * a + b, before the ReLU, at 0 give or take a rounding, so
  // that a backward that makes the mask again from x must round as the
  // forward did.
  for (const bool at_threshold : {false, true})
    for (const Case s : {Case{5, 3, 1}, Case{2, 4, 7}, Case{1, 3, 37}, Case{4, 5, 784}}) {
      CAPTURE(at_threshold);
      CAPTURE(s.N);
      CAPTURE(s.C);
      CAPTURE(s.P);
      const std::int64_t n = s.N * s.C * s.P;
      Tensor<T> x = random_as<T>({n}, 5);
      const Tensor<T> dy = random_as<T>({n}, 6);
      const Tensor<T> gamma = random_as<T>({s.C}, 7, 1.0, 1.0);
      Tensor<T> beta = random_as<T>({s.C}, 8);
      if (at_threshold)
        for (std::int64_t i = 0; i < n; ++i)
          if ((s.P > 1 ? i % s.P : i / s.C) % 3 == 0) x[i] = x[i / s.P % s.C * s.P];
      Tensor<T> mean({s.C}), var({s.C}), invstd({s.C});
      kernels::batchnorm_stats(s.N, s.C, s.P, 1e-5, x.data(), mean.data(), var.data(),
                               invstd.data());
      if (at_threshold)
        for (std::int64_t c = 0; c < s.C; ++c)
          beta[c] = (mean[c] - x[c * s.P]) * (invstd[c] * gamma[c]);
      const kernels::ReluInside<T> relu_inside{invstd.data(), gamma.data(), beta.data()};
      // Apart: normalise, then max(y, 0), then the ReLU's backward into a gradient of its own.
      Tensor<T> y({n}), relu_y({n}), relu_dy({n});
      kernels::batchnorm_normalize(s.N, s.C, s.P, x.data(), mean.data(), invstd.data(),
                                   gamma.data(), beta.data(), y.data());
      kernels::relu_forward(n, y.data(), relu_y.data());
      kernels::relu_backward(n, relu_y.data(), dy.data(), relu_dy.data());
      Tensor<T> fused_y({n}), naive_y({n});
      kernels::batchnorm_normalize(s.N, s.C, s.P, x.data(), mean.data(), invstd.data(),
                                   gamma.data(), beta.data(), fused_y.data(), true);
      kernels::batchnorm_normalize_naive(s.N, s.C, s.P, x.data(), mean.data(), invstd.data(),
                                         gamma.data(), beta.data(), naive_y.data(), true);
      CHECK(same_bits(fused_y, relu_y));
      CHECK(same_bits(naive_y, relu_y));
      std::int64_t zeroed = 0;
      for (std::int64_t i = 0; i < n; ++i) zeroed += relu_y[i] == T(0);
      CHECK(zeroed > 0);  // the mask matters: some outputs are cut, some kept
      CHECK(zeroed < n);
      // A residual block's sum (dy stands for the other input), and the ReLU
      // after it, stored by the normalising pass.
      Tensor<T> sum({n}), sum_relu({n});
      kernels::add(n, y.data(), dy.data(), sum.data());
      kernels::add_relu(n, dy.data(), y.data(), sum_relu.data());  // the other order: it commutes
      for (const bool relu : {false, true}) {
        CAPTURE(relu);
        Tensor<T> fused({n});
        kernels::batchnorm_normalize(s.N, s.C, s.P, x.data(), mean.data(), invstd.data(),
                                     gamma.data(), beta.data(), fused.data(), relu, dy.data());
        CHECK(same_bits(fused, relu ? sum_relu : sum));
      }
      for (const bool batch_stats : {true, false}) {
        CAPTURE(batch_stats);
        Tensor<T> dx1({n}), dx2({n}), dx3({n}), dg1({s.C}), dg2({s.C}), dg3({s.C}), db1({s.C}),
            db2({s.C}), db3({s.C});
        kernels::batchnorm_backward(s.N, s.C, s.P, batch_stats, x.data(), relu_dy.data(),
                                    mean.data(), invstd.data(), gamma.data(), dx1.data(),
                                    dg1.data(), db1.data());
        kernels::batchnorm_backward(s.N, s.C, s.P, batch_stats, x.data(), dy.data(), mean.data(),
                                    invstd.data(), gamma.data(), dx2.data(), dg2.data(), db2.data(),
                                    &relu_inside);
        CHECK(same_bits(dx1, dx2));
        CHECK(same_bits(dg1, dg2));
        CHECK(same_bits(db1, db2));
        // The naive twin with the ReLU inside, to rounding.
        kernels::batchnorm_backward_naive(s.N, s.C, s.P, batch_stats, x.data(), dy.data(),
                                          mean.data(), invstd.data(), gamma.data(), dx3.data(),
                                          dg3.data(), db3.data(), fused_y.data());
        const double bound = sizeof(T) == 4 ? 2e-4 : 1e-12;
        CHECK(max_rel_diff(dx1.data(), dx3.data(), n) < bound);
        CHECK(max_rel_diff(dg1.data(), dg3.data(), s.C) < bound);
        CHECK(max_rel_diff(db1.data(), db3.data(), s.C) < bound);
        // Split between two processes: the same bits as in one.
        std::vector<T> states(static_cast<std::size_t>(2 * s.C));
        const std::int64_t first = s.N / 2, off = first * s.C * s.P;
        kernels::batchnorm_grad_sums(first, s.C, s.P, x.data(), dy.data(), mean.data(),
                                     states.data(), false, &relu_inside);
        kernels::batchnorm_grad_sums(s.N - first, s.C, s.P, x.data() + off, dy.data() + off,
                                     mean.data(), states.data(), true, &relu_inside);
        Tensor<T> dx4({n}), dg4({s.C}), db4({s.C});
        kernels::batchnorm_backward_from_sums(
            s.N, s.C, s.P, s.N * s.P, batch_stats, x.data(), dy.data(), mean.data(), invstd.data(),
            gamma.data(), states.data(), dx4.data(), dg4.data(), db4.data(), &relu_inside);
        CHECK(same_bits(dx1, dx4));
        CHECK(same_bits(dg1, dg4));
        CHECK(same_bits(db1, db4));
      }
    }
}

TEST_CASE("batchnorm kernels: the fold of a convolution and its batch norm") {
  // One output channel by hand: w' = w * gamma / sqrt(var + eps), b' = (b - mean) * that + beta.
  const double w[2] = {2, -1}, bias[1] = {0.5}, mean[1] = {1.5}, invstd[1] = {0.25}, gamma[1] = {3},
               beta[1] = {-2};
  double fw[2], fb[1];
  kernels::batchnorm_fold_into_conv<double>(1, 2, w, bias, mean, invstd, gamma, beta, fw, fb);
  CHECK(fw[0] == 1.5);
  CHECK(fw[1] == -0.75);
  CHECK(fb[0] == (0.5 - 1.5) * 0.75 - 2);
  kernels::batchnorm_fold_into_conv<double>(1, 2, w, nullptr, mean, invstd, nullptr, nullptr, fw,
                                            fb);
  CHECK(fw[0] == 0.5);
  CHECK(fb[0] == -1.5 * 0.25);
}

TEST_CASE_TEMPLATE("BatchNorm2d: the same bits with 1 and 2 threads, forward and backward", T,
                   float, double) {
  const Shape shape{6, 8, 14, 14};  // large enough that samples and planes run in parallel
  const Tensor<T> x = random_as<T>(shape, 5, 2.0, 1.0), dy = random_as<T>(shape, 6);
  std::vector<Tensor<T>> results;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    BatchNorm2d<T> bn(8);
    bn.weight().copy_from(random_as<T>({8}, 7));
    bn.forward(x, kTrain);
    results.push_back(bn.forward(x, kTrain).clone());
    results.push_back(bn.backward(dy).clone());
    results.push_back(bn.weight_grad().clone());
    results.push_back(bn.bias_grad().clone());
    results.push_back(bn.running_mean().clone());
    results.push_back(bn.running_var().clone());
    results.push_back(bn.forward(x, kEval).clone());
  }
  set_num_threads(2);
  const std::size_t half = results.size() / 2;
  for (std::size_t i = 0; i < half; ++i) {
    CAPTURE(i);
    CHECK(same_bits(results[i], results[i + half]));
  }
}

// ------------------------------------------------------- finite differences

TEST_CASE("gradcheck: BatchNorm2d in training and evaluation, affine on and off") {
  for (const Shape& shape : {Shape{3, 4, 5, 7}, Shape{1, 3, 3, 5}, Shape{2, 2, 1, 1}}) {
    CAPTURE(shape.str());
    for (const bool affine : {true, false})
      for (const bool track : {true, false}) {
        CAPTURE(affine);
        CAPTURE(track);
        BatchNorm2d<double> bn(shape[1], 1e-5, 0.1, affine, track);
        if (affine) {  // away from the defaults 1 and 0, so that a swapped gamma and beta shows
          bn.weight().copy_from(random_as<double>({shape[1]}, 11, 0.5, 1.0));
          bn.bias().copy_from(random_as<double>({shape[1]}, 12));
        }
        if (track) {  // running statistics unlike the batch's
          bn.running_mean().copy_from(random_as<double>({shape[1]}, 13));
          bn.running_var().copy_from(random_as<double>({shape[1]}, 14, 0.5, 1.0));
        }
        const Tensor<double> x = random_tensor(shape, 15);
        expect_ok(check_layer_gradients(bn, x, kTrain));
        expect_ok(check_layer_gradients(bn, x, kEval));
      }
  }
}

TEST_CASE("gradcheck: BatchNorm1d over [N, C] and [N, C, L], in training and evaluation") {
  for (const Shape& shape : {Shape{5, 4}, Shape{2, 3}, Shape{2, 3, 7}, Shape{1, 3, 6}}) {
    CAPTURE(shape.str());
    for (const bool affine : {true, false}) {
      BatchNorm1d<double> bn(shape[1], 1e-3, std::nullopt, affine);
      if (affine) bn.weight().copy_from(random_as<double>({shape[1]}, 21, 0.5, 1.0));
      bn.running_var().copy_from(random_as<double>({shape[1]}, 22, 0.5, 1.0));
      const Tensor<double> x = random_tensor(shape, 23);
      expect_ok(check_layer_gradients(bn, x, kTrain));
      expect_ok(check_layer_gradients(bn, x, kEval));
    }
  }
}

TEST_CASE("gradcheck: BatchNorm2d inside a network, with the plan's options on and off") {
  for (const Shape& shape : {Shape{2, 2, 6, 6}, Shape{1, 3, 4, 6}, Shape{3, 1, 8, 4}}) {
    CAPTURE(shape.str());
    const auto r = check_layer_in_network([] { return BatchNorm2d<double>(3); }, shape);
    INFO(r.report());
    CHECK(r.option_sets == 9);
    CHECK(r.same_bits);
    CHECK(r.worst < kGradTolerance);
  }
}

TEST_CASE("gradcheck: BatchNorm2d doing the backward of the in-place ReLU after it") {
  auto middle = [](Graph<double>& net) {
    net.add("conv", Conv2d<double>(2, 3, 3, 1, 1));
    net.add("bn", BatchNorm2d<double>(3));
    net.add("relu", ReLU<double>(true));
    net.add("conv2", Conv2d<double>(3, 3, 3, 1, 1));
  };
  const Shape shape{3, 2, 6, 6};
  Graph<double> net;
  middle(net);
  const Plan& plan = net.plan(shape);
  REQUIRE(plan.nodes[1].relu_after);  // the case under test: the batch norm does the ReLU
  CHECK(plan.nodes[2].skip_forward);
  CHECK(plan.nodes[2].skip_backward);
  CHECK(plan.nodes[2].cache_bytes == 0);  // no mask
  const auto r = minidl::testing::detail::check_in_network(middle, shape, 3);
  INFO(r.report());
  CHECK(r.option_sets == 9);
  CHECK(r.same_bits);
  CHECK(r.worst < kGradTolerance);
}

// ------------------------------------------------------ running statistics

TEST_CASE(
    "BatchNorm: running statistics, num_batches_tracked and evaluation, from the definition") {
  const Shape shape{3, 2, 2, 5};
  const std::int64_t M = 3 * 2 * 5;
  const Tensor<double> x1 = random_tensor(shape, 31), x2 = random_as<double>(shape, 32, 2.0, 1.0);
  // Batch mean and variance (biased, unbiased) of channel c, in double.
  auto stats = [&](const Tensor<double>& x, std::int64_t c, double& mean, double& var_b,
                   double& var_u) {
    mean = 0;
    for (std::int64_t n = 0; n < 3; ++n)
      for (std::int64_t p = 0; p < 10; ++p) mean += x[(n * 2 + c) * 10 + p];
    mean /= M;
    double sq = 0;
    for (std::int64_t n = 0; n < 3; ++n)
      for (std::int64_t p = 0; p < 10; ++p) sq += std::pow(x[(n * 2 + c) * 10 + p] - mean, 2);
    var_b = sq / M;
    var_u = sq / (M - 1);
  };
  SUBCASE("momentum 0.3") {
    BatchNorm2d<double> bn(2, 1e-5, 0.3);
    const Tensor<double> y = bn.forward(x1, kTrain).clone();
    bn.forward(x2, kTrain);
    CHECK(bn.num_batches_tracked() == 2);
    for (std::int64_t c = 0; c < 2; ++c) {
      double m1, vb1, vu1, m2, vb2, vu2;
      stats(x1, c, m1, vb1, vu1);
      stats(x2, c, m2, vb2, vu2);
      CHECK(bn.running_mean()[c] == doctest::Approx(0.7 * (0.3 * m1) + 0.3 * m2).epsilon(1e-13));
      CHECK(bn.running_var()[c] ==
            doctest::Approx(0.7 * (0.7 + 0.3 * vu1) + 0.3 * vu2).epsilon(1e-13));
      // Training normalises with the biased variance of the batch.
      CHECK(
          y[(1 * 2 + c) * 10 + 3] ==
          doctest::Approx((x1[(1 * 2 + c) * 10 + 3] - m1) / std::sqrt(vb1 + 1e-5)).epsilon(1e-12));
    }
    // Evaluation uses the running statistics and changes nothing.
    const Tensor<double> mean = bn.running_mean().clone(), var = bn.running_var().clone();
    const Tensor<double>& e = bn.forward(x1, kEval);
    for (std::int64_t c = 0; c < 2; ++c)
      CHECK(e[(2 * 2 + c) * 10 + 7] ==
            doctest::Approx((x1[(2 * 2 + c) * 10 + 7] - mean[c]) / std::sqrt(var[c] + 1e-5))
                .epsilon(1e-12));
    CHECK(same_bits(mean, bn.running_mean()));
    CHECK(same_bits(var, bn.running_var()));
    CHECK(bn.num_batches_tracked() == 2);
  }
  SUBCASE("momentum None: the cumulative average") {
    BatchNorm2d<double> bn(2, 1e-5, std::nullopt);
    bn.forward(x1, kTrain);
    bn.forward(x2, kTrain);
    for (std::int64_t c = 0; c < 2; ++c) {
      double m1, vb1, vu1, m2, vb2, vu2;
      stats(x1, c, m1, vb1, vu1);
      stats(x2, c, m2, vb2, vu2);
      CHECK(bn.running_mean()[c] == doctest::Approx((m1 + m2) / 2).epsilon(1e-13));
      CHECK(bn.running_var()[c] == doctest::Approx((vu1 + vu2) / 2).epsilon(1e-13));
    }
  }
  SUBCASE("without running statistics, evaluation normalises with the batch's") {
    BatchNorm2d<double> bn(2, 1e-5, 0.1, true, false);
    const Tensor<double> train = bn.forward(x2, kTrain).clone();
    CHECK(same_bits(train, bn.forward(x2, kEval)));
    CHECK(bn.buffers().empty());
    CHECK(bn.num_batches_tracked() == 0);
  }
}

TEST_CASE("BatchNorm: bad arguments and shapes are clear errors naming the layer") {
  CHECK_ERROR(BatchNorm2d<float>(0), "BatchNorm2d", "num_features 0");
  CHECK_ERROR(BatchNorm2d<float>(3, 0.0), "BatchNorm2d", "eps 0");
  CHECK_ERROR(BatchNorm1d<float>(3, 1e-5, 1.5), "BatchNorm1d", "momentum 1.5");
  Sequential<float> net;
  net.add("bn1", BatchNorm2d<float>(3));
  CHECK_ERROR(net.output_shape({2, 4, 5, 5}), "bn1 (BatchNorm2d)", "[N, 3, H, W]", "[2, 4, 5, 5]");
  CHECK_ERROR(net.output_shape({2, 3}), "bn1 (BatchNorm2d)", "[2, 3]");
  BatchNorm1d<float> bn(4);
  bn.set_name("bn");
  CHECK_ERROR(bn.output_shape({2, 5}), "bn (BatchNorm1d)", "[N, 4] or [N, 4, L]");
  // As in PyTorch, training needs more than one value per channel; evaluation does not.
  CHECK_ERROR(bn.forward(Tensor<float>({1, 4}), kTrain), "bn (BatchNorm1d)",
              "more than 1 value per channel", "[1, 4]");
  CHECK(bn.num_batches_tracked() == 0);
  CHECK(bn.forward(Tensor<float>({1, 4}), kEval).shape() == Shape{1, 4});
  CHECK(bn.forward(Tensor<float>({1, 4, 2}), kTrain).shape() == Shape{1, 4, 2});
  CHECK_ERROR(bn.backward(Tensor<float>({1, 4, 3})), "bn (BatchNorm1d)", "[1, 4, 2]");
}

// ------------------------------------------------------ buffers, checkpoints

namespace {
Sequential<float> bn_net() {
  Sequential<float> net;
  net.add("conv1", Conv2d<float>(1, 4, 3, 1, 1, false));
  net.add("bn1", BatchNorm2d<float>(4));
  net.add("relu1", ReLU<float>(true));
  net.add("pool1", MaxPool2d<float>(2));
  net.add("flatten", Flatten<float>());
  net.add("fc1", Linear<float>(4 * 3 * 3, 5));
  net.add("bn2", BatchNorm1d<float>(5));
  net.reset_parameters(3);
  return net;
}
}  // namespace

TEST_CASE("BatchNorm buffers: named as PyTorch's state_dict, saved and loaded with checkpoints") {
  TempDir dir("bn_ckpt_");
  Sequential<float> net = bn_net();
  std::vector<std::string> names;
  for (auto& b : net.buffers()) names.push_back(b.name);
  CHECK(names == std::vector<std::string>{"bn1.running_mean", "bn1.running_var",
                                          "bn1.num_batches_tracked", "bn2.running_mean",
                                          "bn2.running_var", "bn2.num_batches_tracked"});
  const Tensor<float> x = random_as<float>({4, 1, 6, 6}, 41);
  for (int i = 0; i < 3; ++i) net.forward(x, kTrain);
  const std::string path = dir.file("bn.safetensors");
  save_checkpoint(path, net);

  // The file: running statistics in F32, the counter as I64 of shape [].
  const SafetensorsFile file = read_safetensors(path);
  const NamedTensor& count = file.at("bn2.num_batches_tracked");
  CHECK(count.dtype == DType::I64);
  CHECK(count.shape.empty());
  std::int64_t stored = 0;
  std::memcpy(&stored, count.bytes.data(), 8);
  CHECK(stored == 3);
  CHECK(file.at("bn1.running_var").dtype == DType::F32);

  Sequential<float> fresh = bn_net();
  load_checkpoint(path, fresh);
  auto a = net.buffers(), b = fresh.buffers();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    if (a[i].value)
      CHECK(same_bits(*a[i].value, *b[i].value));
    else
      CHECK(*a[i].count == *b[i].count);
  }
  CHECK(same_bits(net.forward(x, kEval).clone(), fresh.forward(x, kEval)));

  SUBCASE("a missing buffer or a wrong counter is an error, and changes nothing") {
    SafetensorsFile broken = read_safetensors(path);
    std::vector<NamedTensor> kept;
    for (auto& t : broken.tensors)
      if (t.name != "bn2.running_mean") kept.push_back(t);
    broken.tensors = kept;
    write_safetensors(dir.file("missing.safetensors"), broken);
    Sequential<float> other = bn_net();
    CHECK_ERROR(load_checkpoint(dir.file("missing.safetensors"), other), "missing.safetensors",
                "buffer 'bn2.running_mean'", "missing");
    CHECK(other.layer("bn1").buffers()[0].value->operator[](0) == 0.0f);  // untouched

    SafetensorsFile wrong = read_safetensors(path);
    for (auto& t : wrong.tensors)
      if (t.name == "bn1.num_batches_tracked") t.shape = {1};
    write_safetensors(dir.file("wrong.safetensors"), wrong);
    CHECK_ERROR(load_checkpoint(dir.file("wrong.safetensors"), other), "wrong.safetensors",
                "'bn1.num_batches_tracked'", "expected I64 and shape []");
    CHECK(static_cast<BatchNorm2d<float>&>(other.layer("bn1")).num_batches_tracked() == 0);
  }
  SUBCASE("a network without buffers still loads a checkpoint without them") {
    Sequential<float> plain;
    plain.add("fc1", Linear<float>(3, 2));
    plain.reset_parameters(1);
    save_checkpoint(dir.file("plain.safetensors"), plain);
    CHECK(read_safetensors(dir.file("plain.safetensors")).tensors.size() == 2);
    load_checkpoint(dir.file("plain.safetensors"), plain);
  }
}

// ------------------------------------------------------------- the folding

namespace {
template <typename T>
Graph<T> fold_net(bool conv_bias, bool track = true) {
  Graph<T> net;
  net.add("conv1", Conv2d<T>(3, 6, 3, 1, 1, conv_bias));
  net.add("bn1", BatchNorm2d<T>(6, 1e-5, 0.1, true, track));
  net.add("relu1", ReLU<T>(true));
  net.add("pool1", MaxPool2d<T>(2));
  net.add("conv2", Conv2d<T>(6, 4, 3, 2, 1));  // stride 2: im2col
  net.add("bn2", BatchNorm2d<T>(4));
  net.reset_parameters(5);
  for (auto& p : net.parameters())  // gamma and beta unlike their defaults
    if (p.name.rfind("bn", 0) == 0) p.value->copy_from(random_as<T>(p.value->shape(), 6, 0.5, 1.0));
  return net;
}
}  // namespace

TEST_CASE_TEMPLATE("plan: Conv2d -> BatchNorm2d folded in evaluation equals the two layers", T,
                   float, double) {
  const double bound = sizeof(T) == 4 ? 1e-5 : 1e-12;
  for (const bool conv_bias : {true, false}) {
    CAPTURE(conv_bias);
    Graph<T> folded = fold_net<T>(conv_bias), plain = fold_net<T>(conv_bias);
    PlanOptions off;
    off.fold_batchnorm = false;
    plain.set_plan_options(off);
    const Tensor<T> x = random_as<T>({3, 3, 8, 8}, 7, 2.0, 0.5);
    const std::string summary = folded.plan_summary(x.shape());
    CHECK(summary.find("applies bn1 in evaluation") != std::string::npos);
    CHECK(summary.find("folded into conv2 in evaluation") != std::string::npos);
    CHECK(plain.plan_summary(x.shape()).find("folded") == std::string::npos);

    // Training never folds: the same bits, and running statistics move.
    for (int step = 0; step < 2; ++step) {
      CHECK(same_bits(folded.forward(x, kTrain).clone(), plain.forward(x, kTrain)));
      const Tensor<T> dy = random_as<T>(folded.output_shape(x.shape()), 8);
      folded.backward(dy);
      plain.backward(dy);
      auto pf = folded.parameters(), pp = plain.parameters();
      for (std::size_t i = 0; i < pf.size(); ++i) CHECK(same_bits(*pf[i].grad, *pp[i].grad));
    }
    const Tensor<T> y_folded = folded.forward(x, kEval).clone();
    const Tensor<T>& y_plain = plain.forward(x, kEval);
    CHECK(max_rel_diff(y_folded.data(), y_plain.data(), y_plain.size()) < bound);
    CHECK(!same_bits(y_folded, y_plain));  // it really took another path

    // Folded again from the current statistics and weights after they change.
    for (Graph<T>* net : {&folded, &plain}) {
      auto& bn = static_cast<BatchNorm2d<T>&>(net->layer("bn1"));
      bn.running_var().copy_from(random_as<T>({6}, 9, 0.5, 2.0));
      net->parameters()[0].value->operator[](0) += T(0.25);
    }
    const Tensor<T> y2 = folded.forward(x, kEval).clone();
    CHECK(max_rel_diff(y2.data(), plain.forward(x, kEval).data(), y2.size()) < bound);
    CHECK(max_rel_diff(y2.data(), y_folded.data(), y2.size()) > 1e-3);

    // A folded evaluation forward has no backward.
    folded.forward(x, kEval);
    CHECK_ERROR(folded.backward(random_as<T>(folded.output_shape(x.shape()), 8)), "fold_batchnorm");
  }
}

TEST_CASE(
    "plan: no folding where the convolution's output has another reader or no running stats") {
  Graph<float> net;
  net.add("conv1", Conv2d<float>(3, 3, 3, 1, 1));
  net.add("bn1", BatchNorm2d<float>(3));
  net.add("add", Add<float>(), "bn1", "conv1");  // conv1 is read twice
  const std::string summary = net.plan_summary({2, 3, 5, 5});
  CHECK(summary.find("in evaluation") == std::string::npos);
  Graph<float> untracked = fold_net<float>(true, false);
  const std::string s2 = untracked.plan_summary({2, 3, 8, 8});
  CHECK(s2.find("applies bn1") == std::string::npos);
  CHECK(s2.find("applies bn2") != std::string::npos);
}

}  // namespace test_batchnorm
