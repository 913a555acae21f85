// Google Benchmark timings of every kernel at the MNIST shapes (batch 64 and
// batch 1), fast and naive, plus this machine's peak FMA throughput, so that
// efficiency can be stated as a fraction of peak measured in the same run.
// Each fast kernel is checked against its naive twin before it is timed.
//
//   benchmarks/kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Arguments of each benchmark: batch size, threads.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "bench_support.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/kernels/conv2d.hpp"
#include "minidl/kernels/linear.hpp"
#include "minidl/kernels/maxpool2d.hpp"
#include "minidl/kernels/relu.hpp"
#include "minidl/kernels/softmax_xent.hpp"
#include "peak_fma.hpp"

using namespace minidl;
using namespace minidl::kernels;

namespace {

using minidl::bench::close;
using minidl::bench::random_values;
using minidl::bench::set_bytes;
using minidl::bench::set_flops;

// ---- peak: independent FMA chains in registers, one per thread -------------

void BM_peak_fma(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const std::int64_t iters = 1 << 20;
  for (auto _ : state) benchmark::DoNotOptimize(bench::run_peak_fma(threads, iters));
  set_flops(state, bench::peak_fma_flops(threads, iters));
}
BENCHMARK(BM_peak_fma)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- convolution -------------------------------------------------------------

Conv2dShape conv_shape(int which, std::int64_t n) {
  return which == 1 ? Conv2dShape{n, 1, 28, 28, 32, 3, 3, 1, 1}
                    : Conv2dShape{n, 32, 14, 14, 64, 3, 3, 1, 1};
}

struct ConvData {
  Conv2dShape s;
  std::vector<float> x, w, b, y, dy, dx, dw, db, workspace, partials;
  explicit ConvData(Conv2dShape shape) : s(shape) {
    x = random_values(static_cast<std::size_t>(s.N * s.C * s.H * s.W), 1);
    w = random_values(static_cast<std::size_t>(s.OC * s.col_rows()), 2);
    b = random_values(static_cast<std::size_t>(s.OC), 3);
    dy = random_values(static_cast<std::size_t>(s.N * s.OC * s.OH() * s.OW()), 4);
    y.resize(dy.size());
    dx.resize(x.size());
    dw.resize(w.size());
    db.resize(b.size());
    workspace.resize(static_cast<std::size_t>(conv2d_workspace_size<float>(s)));
    partials.resize(static_cast<std::size_t>(conv2d_weight_partials_size<float>(s)));
  }
  double flops() const {
    return 2.0 * static_cast<double>(s.N * s.OC * s.col_cols() * s.col_rows());
  }
};

enum class Pass { Forward, BackwardData, BackwardWeights };

// Which kernel a convolution benchmark times: the one conv2d.hpp chooses for
// the shape, the general im2col kernel (for comparison), or the naive loops.
enum class Impl { Chosen, Im2col, Naive };

// Runs one pass of d with the given implementation, writing y, dx or dw/db.
void conv_pass(ConvData& d, Pass pass, Impl impl) {
  switch (pass) {
    case Pass::Forward: {
      auto* kernel = impl == Impl::Chosen ? conv2d_forward<float> : conv2d_forward_im2col<float>;
      if (impl == Impl::Naive)
        conv2d_forward_naive(d.s, d.x.data(), d.w.data(), d.b.data(), d.y.data());
      else
        kernel(d.s, d.x.data(), d.w.data(), d.b.data(), d.y.data(), d.workspace.data(), false);
      break;
    }
    case Pass::BackwardData: {
      auto* kernel =
          impl == Impl::Chosen ? conv2d_backward_data<float> : conv2d_backward_data_im2col<float>;
      if (impl == Impl::Naive)
        conv2d_backward_data_naive(d.s, d.dy.data(), d.w.data(), d.dx.data());
      else
        kernel(d.s, d.dy.data(), d.w.data(), d.dx.data(), d.workspace.data());
      break;
    }
    case Pass::BackwardWeights: {
      auto* kernel = impl == Impl::Chosen ? conv2d_backward_weights<float>
                                          : conv2d_backward_weights_im2col<float>;
      if (impl == Impl::Naive)
        conv2d_backward_weights_naive(d.s, d.x.data(), d.dy.data(), d.dw.data(), d.db.data());
      else
        kernel(d.s, d.x.data(), d.dy.data(), d.dw.data(), d.db.data(), d.partials.data());
      break;
    }
  }
}

void run_conv(benchmark::State& state, int which, Pass pass, Impl impl) {
  const std::int64_t n = state.range(0);
  set_num_threads(static_cast<int>(state.range(1)));
  ConvData d(conv_shape(which, n));
  if (impl != Impl::Naive) {  // verify the timed kernel once against the naive loops
    ConvData ref(d.s);
    conv_pass(d, pass, impl);
    conv_pass(ref, pass, Impl::Naive);
    const bool same = pass == Pass::Forward ? close(d.y, ref.y, 1e-5)
                      : pass == Pass::BackwardData
                          ? close(d.dx, ref.dx, 1e-5)
                          : close(d.dw, ref.dw, 1e-4) && close(d.db, ref.db, 1e-4);
    if (!same) state.SkipWithError("the kernel differs from the naive reference");
  }
  for (auto _ : state) {
    conv_pass(d, pass, impl);
    benchmark::ClobberMemory();
  }
  set_flops(state, d.flops());
}

#define CONV_BENCH(name, which, pass)            \
  void BM_##name(benchmark::State& s) {          \
    run_conv(s, which, pass, Impl::Chosen);      \
  }                                              \
  void BM_##name##_im2col(benchmark::State& s) { \
    run_conv(s, which, pass, Impl::Im2col);      \
  }                                              \
  void BM_##name##_naive(benchmark::State& s) {  \
    run_conv(s, which, pass, Impl::Naive);       \
  }                                              \
  BENCHMARK(BM_##name)                           \
      ->Args({64, 1})                            \
      ->Args({64, 2})                            \
      ->Args({1, 1})                             \
      ->Unit(benchmark::kMillisecond)            \
      ->UseRealTime();                           \
  BENCHMARK(BM_##name##_im2col)                  \
      ->Args({64, 1})                            \
      ->Args({64, 2})                            \
      ->Unit(benchmark::kMillisecond)            \
      ->UseRealTime();                           \
  BENCHMARK(BM_##name##_naive)                   \
      ->Args({64, 1})                            \
      ->Args({1, 1})                             \
      ->Unit(benchmark::kMillisecond)            \
      ->UseRealTime();

CONV_BENCH(conv1_forward, 1, Pass::Forward)
CONV_BENCH(conv1_backward_weights, 1, Pass::BackwardWeights)
CONV_BENCH(conv2_forward, 2, Pass::Forward)
CONV_BENCH(conv2_backward_data, 2, Pass::BackwardData)
CONV_BENCH(conv2_backward_weights, 2, Pass::BackwardWeights)

// ---- linear (fc1: 3136 -> 128) -------------------------------------------------

void run_linear(benchmark::State& state, Pass pass, bool naive) {
  const std::int64_t N = state.range(0), I = 3136, O = 128;
  set_num_threads(static_cast<int>(state.range(1)));
  auto x = random_values(static_cast<std::size_t>(N * I), 1),
       w = random_values(static_cast<std::size_t>(O * I), 2);
  auto b = random_values(static_cast<std::size_t>(O), 3),
       dy = random_values(static_cast<std::size_t>(N * O), 4);
  std::vector<float> y(static_cast<std::size_t>(N * O)), ref(y.size()), dx(x.size()), dw(w.size()),
      db(b.size());
  linear_forward(N, I, O, x.data(), w.data(), b.data(), y.data());
  linear_forward_naive(N, I, O, x.data(), w.data(), b.data(), ref.data());
  if (!close(y, ref, 1e-5)) state.SkipWithError("linear_forward differs from the naive reference");
  for (auto _ : state) {
    if (pass == Pass::Forward) {
      if (naive)
        linear_forward_naive(N, I, O, x.data(), w.data(), b.data(), y.data());
      else
        linear_forward(N, I, O, x.data(), w.data(), b.data(), y.data());
    } else if (pass == Pass::BackwardData) {
      if (naive)
        linear_backward_data_naive(N, I, O, dy.data(), w.data(), dx.data());
      else
        linear_backward_data(N, I, O, dy.data(), w.data(), dx.data());
    } else {
      if (naive)
        linear_backward_weights_naive(N, I, O, x.data(), dy.data(), dw.data(), db.data());
      else
        linear_backward_weights(N, I, O, x.data(), dy.data(), dw.data(), db.data());
    }
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * static_cast<double>(N * I * O));
}

#define LINEAR_BENCH(name, pass)                \
  void BM_##name(benchmark::State& s) {         \
    run_linear(s, pass, false);                 \
  }                                             \
  void BM_##name##_naive(benchmark::State& s) { \
    run_linear(s, pass, true);                  \
  }                                             \
  BENCHMARK(BM_##name)                          \
      ->Args({64, 1})                           \
      ->Args({64, 2})                           \
      ->Args({1, 1})                            \
      ->Unit(benchmark::kMicrosecond)           \
      ->UseRealTime();                          \
  BENCHMARK(BM_##name##_naive)                  \
      ->Args({64, 1})                           \
      ->Args({1, 1})                            \
      ->Unit(benchmark::kMicrosecond)           \
      ->UseRealTime();

LINEAR_BENCH(fc1_forward, Pass::Forward)
LINEAR_BENCH(fc1_backward_data, Pass::BackwardData)
LINEAR_BENCH(fc1_backward_weights, Pass::BackwardWeights)

// ---- memory-bound kernels: max-pool, ReLU, softmax cross-entropy ---------------

// MNIST's two pools: 32 planes of 28 x 28 per image, and 64 of 14 x 14.
template <std::int64_t C, std::int64_t H>
void BM_pool_forward(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  set_num_threads(static_cast<int>(state.range(1)));
  const MaxPool2dShape s{n * C, H, H, 2, 2};
  auto x = random_values(static_cast<std::size_t>(s.planes * H * H), 1);
  std::vector<float> y(static_cast<std::size_t>(s.planes * s.OH() * s.OW())), ref(y.size());
  std::vector<std::int32_t> am_ref(y.size());
  maxpool2d_forward(s, x.data(), y.data());
  maxpool2d_forward_naive(s, x.data(), ref.data(), am_ref.data());
  if (y != ref) state.SkipWithError("maxpool2d_forward differs from the naive reference");
  for (auto _ : state) maxpool2d_forward(s, x.data(), y.data());
  set_bytes(state, static_cast<double>(x.size() * 4 + y.size() * 4));
}

template <std::int64_t C, std::int64_t H>
void BM_pool_backward(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  set_num_threads(static_cast<int>(state.range(1)));
  const MaxPool2dShape s{n * C, H, H, 2, 2};
  auto x = random_values(static_cast<std::size_t>(s.planes * H * H), 1);
  auto dy = random_values(static_cast<std::size_t>(s.planes * s.OH() * s.OW()), 2);
  std::vector<float> y(dy.size()), dx(x.size()), ref(x.size());
  std::vector<std::int32_t> am(y.size());
  maxpool2d_forward_naive(s, x.data(), y.data(), am.data());
  maxpool2d_backward(s, x.data(), dy.data(), dx.data());
  maxpool2d_backward_naive(s, dy.data(), am.data(), ref.data());
  if (dx != ref) state.SkipWithError("maxpool2d_backward differs from the naive reference");
  // Timed in place, as the MNIST network runs it (the pool writes its input
  // gradient over its input); the kernel has no branches, so the values the
  // first iteration leaves behind cost the same.
  for (auto _ : state) maxpool2d_backward(s, dx.data(), dy.data(), dx.data());
  // Reads x and dy, writes dx.
  set_bytes(state, static_cast<double>(x.size() * 8 + dy.size() * 4));
}

#define POOL_BENCH(name, C, H)               \
  BENCHMARK_TEMPLATE(BM_pool_forward, C, H)  \
      ->Name("BM_" #name "_forward")         \
      ->Args({64, 1})                        \
      ->Args({64, 2})                        \
      ->Args({1, 1})                         \
      ->Unit(benchmark::kMicrosecond)        \
      ->UseRealTime();                       \
  BENCHMARK_TEMPLATE(BM_pool_backward, C, H) \
      ->Name("BM_" #name "_backward")        \
      ->Args({64, 1})                        \
      ->Args({64, 2})                        \
      ->Args({1, 1})                         \
      ->Unit(benchmark::kMicrosecond)        \
      ->UseRealTime();

POOL_BENCH(pool1, 32, 28)
POOL_BENCH(pool2, 64, 14)

// ReLU with its own output (relu_forward/backward) and in place with a byte
// mask (relu_forward_mask/backward_mask, what the MNIST network runs).
void BM_relu1_forward(benchmark::State& state) {
  const std::int64_t n = state.range(0) * 32 * 28 * 28;
  set_num_threads(static_cast<int>(state.range(1)));
  const bool inplace = state.range(2) != 0;
  auto x = random_values(static_cast<std::size_t>(n), 1);
  std::vector<float> y(x.size()), ref(x.size());
  std::vector<std::uint8_t> mask(x.size());
  relu_forward_naive(n, x.data(), ref.data());
  if (inplace) {
    y = x;
    relu_forward_mask(n, y.data(), y.data(), mask.data());
  } else {
    relu_forward(n, x.data(), y.data());
  }
  if (y != ref) state.SkipWithError("relu forward differs from the naive reference");
  for (auto _ : state) {
    if (inplace)
      relu_forward_mask(n, y.data(), y.data(), mask.data());  // same work on its own output
    else
      relu_forward(n, x.data(), y.data());
  }
  set_bytes(state, (inplace ? 9.0 : 8.0) * static_cast<double>(n));
}
BENCHMARK(BM_relu1_forward)
    ->ArgNames({"batch", "threads", "inplace"})
    ->Args({64, 1, 0})
    ->Args({64, 2, 0})
    ->Args({1, 1, 0})
    ->Args({64, 1, 1})
    ->Args({64, 2, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_relu1_backward(benchmark::State& state) {
  const std::int64_t n = state.range(0) * 32 * 28 * 28;
  set_num_threads(static_cast<int>(state.range(1)));
  const bool inplace = state.range(2) != 0;
  auto x = random_values(static_cast<std::size_t>(n), 1),
       dy = random_values(static_cast<std::size_t>(n), 2);
  std::vector<float> y(x.size()), dx(x.size()), ref(x.size());
  std::vector<std::uint8_t> mask(x.size());
  relu_forward_mask(n, x.data(), y.data(), mask.data());
  relu_backward_naive(n, y.data(), dy.data(), ref.data());
  if (inplace) {
    dx = dy;
    relu_backward_mask(n, mask.data(), dx.data(), dx.data());
  } else {
    relu_backward(n, y.data(), dy.data(), dx.data());
  }
  if (dx != ref) state.SkipWithError("relu backward differs from the naive reference");
  for (auto _ : state) {
    if (inplace)
      relu_backward_mask(n, mask.data(), dx.data(), dx.data());
    else
      relu_backward(n, y.data(), dy.data(), dx.data());
  }
  set_bytes(state, (inplace ? 9.0 : 12.0) * static_cast<double>(n));
}
BENCHMARK(BM_relu1_backward)
    ->ArgNames({"batch", "threads", "inplace"})
    ->Args({64, 1, 0})
    ->Args({64, 2, 0})
    ->Args({1, 1, 0})
    ->Args({64, 1, 1})
    ->Args({64, 2, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_softmax_xent(benchmark::State& state) {
  const std::int64_t n = state.range(0), k = 10;
  auto z = random_values(static_cast<std::size_t>(n * k), 1);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % k);
  std::vector<float> d(z.size()), ref(z.size());
  softmax_xent(n, k, z.data(), labels.data(), d.data());
  softmax_xent_naive(n, k, z.data(), labels.data(), ref.data());
  if (!close(d, ref, 1e-5)) state.SkipWithError("softmax_xent differs from the naive reference");
  for (auto _ : state)
    benchmark::DoNotOptimize(softmax_xent(n, k, z.data(), labels.data(), d.data()));
  set_bytes(state, 8.0 * static_cast<double>(n * k));
}
BENCHMARK(BM_softmax_xent)
    ->Args({64, 1})
    ->Args({1, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
