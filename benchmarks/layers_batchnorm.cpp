// Batch normalisation at a realistic shape (batch 64, 32 channels, 28x28): the
// training forward (statistics, then the normalisation) and backward kernels, fast
// and naive, and BatchNorm2d's forward + backward in training as a layer. GB/s
// counts the bytes each pass moves: forward reads x three times (mean, variance,
// normalisation) and writes y; backward reads x and dy twice (sums, then dx) and
// writes dx. Each fast kernel is checked against its naive twin before it is timed.
// Arguments: threads.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "bench_support.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/kernels/batchnorm.hpp"
#include "minidl/layers/batchnorm.hpp"

using namespace minidl;

namespace {

using minidl::bench::close;
using minidl::bench::random_values;
using minidl::bench::set_bytes;
using minidl::bench::set_flops;

constexpr std::int64_t kN = 64, kC = 32, kP = 28 * 28, kCount = kN * kC * kP;

bool bn_close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(double(a[i]) - double(b[i])) <= tol * std::max(1.0, std::fabs(double(b[i])))))
      return false;
  return true;
}

// Statistics and normalisation of a training forward pass.
template <bool Naive>
void BM_batchnorm_forward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  const auto x = random_values(kCount, 1, 1.0f, 0.5f), gamma = random_values(kC, 2, 1.0f, 1),
             beta = random_values(kC, 3);
  std::vector<float> y(x.size()), ref(x.size()), mean(kC), var(kC), invstd(kC);
  auto run = [&](bool naive, std::vector<float>& out) {
    if (naive) {
      kernels::batchnorm_stats_naive(kN, kC, kP, 1e-5, x.data(), mean.data(), var.data(),
                                     invstd.data());
      kernels::batchnorm_normalize_naive(kN, kC, kP, x.data(), mean.data(), invstd.data(),
                                         gamma.data(), beta.data(), out.data());
    } else {
      kernels::batchnorm_stats(kN, kC, kP, 1e-5, x.data(), mean.data(), var.data(), invstd.data());
      kernels::batchnorm_normalize(kN, kC, kP, x.data(), mean.data(), invstd.data(), gamma.data(),
                                   beta.data(), out.data());
    }
  };
  run(true, ref);
  run(false, y);
  if (!bn_close(y, ref, 1e-4)) state.SkipWithError("batchnorm forward differs from the naive twin");
  for (auto _ : state) run(Naive, y);
  set_bytes(state, 16.0 * kCount);
}

// The training backward pass: per-channel sums, then dx through the batch statistics.
template <bool Naive>
void BM_batchnorm_backward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  const auto x = random_values(kCount, 1, 1.0f, 0.5f), dy = random_values(kCount, 4),
             gamma = random_values(kC, 2, 1.0f, 1);
  std::vector<float> dx(x.size()), ref(x.size()), mean(kC), var(kC), invstd(kC), dgamma(kC),
      dbeta(kC);
  kernels::batchnorm_stats(kN, kC, kP, 1e-5, x.data(), mean.data(), var.data(), invstd.data());
  auto run = [&](bool naive, std::vector<float>& out) {
    if (naive)
      kernels::batchnorm_backward_naive<float>(kN, kC, kP, true, x.data(), dy.data(), mean.data(),
                                               invstd.data(), gamma.data(), out.data(),
                                               dgamma.data(), dbeta.data());
    else
      kernels::batchnorm_backward<float>(kN, kC, kP, true, x.data(), dy.data(), mean.data(),
                                         invstd.data(), gamma.data(), out.data(), dgamma.data(),
                                         dbeta.data());
  };
  run(true, ref);
  run(false, dx);
  if (!bn_close(dx, ref, 1e-4))
    state.SkipWithError("batchnorm backward differs from the naive twin");
  for (auto _ : state) run(Naive, dx);
  set_bytes(state, 20.0 * kCount);
}

// BatchNorm2d(32) in training: forward (with the running statistics' update) and backward.
void BM_layer_batchnorm2d_64x32x28x28(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  BatchNorm2d<float> bn(kC);
  Tensor<float> x({kN, kC, 28, 28}), dy({kN, kC, 28, 28});
  const auto xs = random_values(kCount, 1, 1.0f, 0.5f), dys = random_values(kCount, 4);
  std::copy(xs.begin(), xs.end(), x.begin());
  std::copy(dys.begin(), dys.end(), dy.begin());
  const Context train{Mode::Train, 0};
  for (auto _ : state) {
    bn.forward(x, train);
    benchmark::DoNotOptimize(bn.backward(dy).data());
  }
  set_bytes(state, 36.0 * kCount);
}

}  // namespace

BENCHMARK_TEMPLATE(BM_batchnorm_forward, false)
    ->Name("BM_batchnorm_forward_64x32x28x28")
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_batchnorm_forward, true)
    ->Name("BM_batchnorm_forward_64x32x28x28_naive")
    ->ArgName("threads")
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_batchnorm_backward, false)
    ->Name("BM_batchnorm_backward_64x32x28x28")
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_batchnorm_backward, true)
    ->Name("BM_batchnorm_backward_64x32x28x28_naive")
    ->ArgName("threads")
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_layer_batchnorm2d_64x32x28x28)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
