// Google Benchmark timings of every distinct convolution of the ResNet-20 of
// examples/resnet (models/resnet.hpp: 28x28 input, widths 16-32-64, no bias):
// forward, backward-data and backward-weights at batch 128, and the forward
// at batch 1, each with the kernel conv2d_kernels_for chooses (its name is
// the benchmark's label). Each kernel is checked against the naive loops
// before it is timed. Besides GFLOP/s, each case reports "%peak": its
// throughput as a share of the peak FMA throughput on the same number of
// threads, measured in the same process (peak_flops, peak_fma.hpp). Part of the
// `kernels` executable. Arguments: batch size, threads.
//
//   build/benchmarks/kernels --benchmark_filter=resnet --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d.hpp"
#include "peak_fma.hpp"

using namespace minidl;
using namespace minidl::kernels;

namespace {

using minidl::bench::close;
using minidl::bench::random_values;

// The convolutions of ResNet-20 on 28x28 images, without the batch size.
struct ResnetConv {
  std::int64_t C, H, OC, K, stride, pad;
  Conv2dShape shape(std::int64_t n) const { return {n, C, H, H, OC, K, K, stride, pad}; }
};
constexpr ResnetConv kStem{1, 28, 16, 3, 1, 1};     // conv1
constexpr ResnetConv kStage1{16, 28, 16, 3, 1, 1};  // layer1.*
constexpr ResnetConv kDown2{16, 28, 32, 3, 2, 1};   // layer2.0.conv1
constexpr ResnetConv kProj2{16, 28, 32, 1, 2, 0};   // layer2.0.downsample.0
constexpr ResnetConv kStage2{32, 14, 32, 3, 1, 1};  // layer2.*.conv2, layer2.1+
constexpr ResnetConv kDown3{32, 14, 64, 3, 2, 1};   // layer3.0.conv1
constexpr ResnetConv kProj3{32, 14, 64, 1, 2, 0};   // layer3.0.downsample.0
constexpr ResnetConv kStage3{64, 7, 64, 3, 1, 1};   // layer3.*.conv2, layer3.1+

// Peak FP32 throughput (FLOP/s) on `threads` threads: the highest this
// process has measured, in rounds of about 2 ms before and after each case.
// On a shared machine a round can only read low, never high, so the
// running maximum is the best estimate of the peak.
double peak_flops(int threads) {
  static double best[3] = {0, 0, 0};
  double& peak = best[std::clamp(threads, 1, 2)];
  const std::int64_t iters = 1 << 18;
  for (int round = 0; round < 3; ++round) {
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(bench::run_peak_fma(threads, iters));
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    peak = std::max(peak, bench::peak_fma_flops(threads, iters) / took.count());
  }
  return peak;
}

enum class Pass { Forward, BackwardData, BackwardWeights };

struct Data {
  static constexpr const float* kNoBias = nullptr;
  Conv2dShape s;
  std::vector<float> x, w, y, dy, dx, dw, workspace, partials;
  explicit Data(const Conv2dShape& shape) : s(shape) {
    x = random_values(s.N * s.C * s.H * s.W, 1);
    w = random_values(s.OC * s.col_rows(), 2, 0.3f);
    dy = random_values(s.N * s.OC * s.OH() * s.OW(), 4);
    y.resize(dy.size());
    dx.resize(x.size());
    dw.resize(w.size());
    workspace.resize(static_cast<std::size_t>(conv2d_workspace_size<float>(s)));
    partials.resize(static_cast<std::size_t>(conv2d_weight_partials_size<float>(s)));
  }
  ConvKernel kernel(Pass pass) const {
    const Conv2dKernels k = conv2d_kernels_for<float>(Conv2dGeometry(s));
    return pass == Pass::Forward        ? k.forward
           : pass == Pass::BackwardData ? k.backward_data
                                        : k.backward_weights;
  }
  // One pass with the kernel the plan would choose (no bias, as in the ResNet).
  void run(Pass pass) {
    if (pass == Pass::Forward)
      conv2d_forward_with(kernel(pass), s, x.data(), w.data(), kNoBias, y.data(), workspace.data());
    else if (pass == Pass::BackwardData)
      conv2d_backward_data_with(kernel(pass), s, dy.data(), w.data(), dx.data(), workspace.data());
    else
      conv2d_backward_weights_with(kernel(pass), s, x.data(), dy.data(), dw.data(),
                                   static_cast<float*>(nullptr), partials.data());
  }
  void run_naive(Pass pass) {
    if (pass == Pass::Forward)
      conv2d_forward_naive(s, x.data(), w.data(), kNoBias, y.data());
    else if (pass == Pass::BackwardData)
      conv2d_backward_data_naive(s, dy.data(), w.data(), dx.data());
    else
      conv2d_backward_weights_naive(s, x.data(), dy.data(), dw.data(),
                                    static_cast<float*>(nullptr));
  }
  const std::vector<float>& result(Pass pass) const {
    return pass == Pass::Forward ? y : pass == Pass::BackwardData ? dx : dw;
  }
};

void run_resnet_conv(benchmark::State& state, const ResnetConv& c, Pass pass) {
  const int threads = static_cast<int>(state.range(1));
  peak_flops(threads);
  set_num_threads(threads);
  Data d(c.shape(state.range(0)));
  // Verify the timed kernel against the naive loops, once per shape and
  // pass in this process (not again for every repetition).
  static std::map<std::string, bool> verified;
  const std::string key = std::to_string(d.s.N) + "/" + std::to_string(d.s.C) + "/" +
                          std::to_string(d.s.H) + "/" + std::to_string(d.s.OC) + "/" +
                          std::to_string(d.s.KH) + "/" + std::to_string(d.s.stride) + "/" +
                          std::to_string(static_cast<int>(pass));
  if (verified.count(key) == 0) {
    Data ref(d.s);
    d.run(pass);
    ref.run_naive(pass);
    verified[key] =
        close(d.result(pass), ref.result(pass), pass == Pass::BackwardWeights ? 1e-4 : 1e-5);
  }
  if (!verified[key]) state.SkipWithError("the kernel differs from the naive reference");
  for (auto _ : state) {
    d.run(pass);
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * static_cast<double>(d.s.N * d.s.OC * d.s.col_cols() * d.s.col_rows());
  bench::set_flops(state, flops);
  // The share of the peak: FLOPs per iteration over the peak's FLOP/s,
  // against the time per iteration (a rate, inverted).
  const double peak = peak_flops(threads);
  state.counters["peak GFLOP/s"] = peak * 1e-9;
  state.counters["%peak"] =
      benchmark::Counter(100.0 * flops / peak, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(conv_kernel_name(d.kernel(pass)));
}

// Batch 128 on 1 and 2 threads for every pass; batch 1 for the forward.
#define RESNET_CONV_BENCH(name, conv)                             \
  void BM_resnet_##name##_forward(benchmark::State& s) {          \
    run_resnet_conv(s, conv, Pass::Forward);                      \
  }                                                               \
  void BM_resnet_##name##_backward_data(benchmark::State& s) {    \
    run_resnet_conv(s, conv, Pass::BackwardData);                 \
  }                                                               \
  void BM_resnet_##name##_backward_weights(benchmark::State& s) { \
    run_resnet_conv(s, conv, Pass::BackwardWeights);              \
  }                                                               \
  BENCHMARK(BM_resnet_##name##_forward)                           \
      ->Args({128, 1})                                            \
      ->Args({128, 2})                                            \
      ->Args({1, 1})                                              \
      ->Unit(benchmark::kMillisecond)                             \
      ->UseRealTime();                                            \
  BENCHMARK(BM_resnet_##name##_backward_data)                     \
      ->Args({128, 1})                                            \
      ->Args({128, 2})                                            \
      ->Unit(benchmark::kMillisecond)                             \
      ->UseRealTime();                                            \
  BENCHMARK(BM_resnet_##name##_backward_weights)                  \
      ->Args({128, 1})                                            \
      ->Args({128, 2})                                            \
      ->Unit(benchmark::kMillisecond)                             \
      ->UseRealTime();

RESNET_CONV_BENCH(stem_1to16_28, kStem)
RESNET_CONV_BENCH(3x3_16_28, kStage1)
RESNET_CONV_BENCH(3x3s2_16to32_28, kDown2)
RESNET_CONV_BENCH(1x1s2_16to32_28, kProj2)
RESNET_CONV_BENCH(3x3_32_14, kStage2)
RESNET_CONV_BENCH(3x3s2_32to64_14, kDown3)
RESNET_CONV_BENCH(1x1s2_32to64_14, kProj3)
RESNET_CONV_BENCH(3x3_64_7, kStage3)

}  // namespace
