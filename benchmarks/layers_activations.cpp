// Google Benchmark cases of the activation kernels and layers (part of the
// `kernels` executable, whose main is in kernels.cpp), at the shape of a
// CNN's first block: batch 64, 32 channels, 28 x 28 (1.6 M elements).
//   BM_act_<kernel>_{forward,backward}[_naive]/threads   fast kernel and its naive twin, GB/s
//   BM_layer_<case>_64x32x28x28                          the layer's forward + backward, on
//                                                        minidl's default threads (OMP_NUM_THREADS)
// The layer cases have the names of benchmarks/pytorch/layer_cases_activations.py, for the
// side-by-side comparison (benchmarks/pytorch/compare_layers.sh). Each fast kernel is
// checked against its naive twin before it is timed.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/kernels/activations.hpp"
#include "minidl/kernels/softmax.hpp"
#include "minidl/layers/gelu.hpp"
#include "minidl/layers/leaky_relu.hpp"
#include "minidl/layers/sigmoid.hpp"
#include "minidl/layers/silu.hpp"
#include "minidl/layers/softmax.hpp"
#include "minidl/layers/tanh.hpp"

using namespace minidl;

namespace {

using minidl::bench::close;
using minidl::bench::random_values;
using minidl::bench::set_bytes;
using minidl::bench::set_flops;

constexpr std::int64_t kN = 64, kC = 32, kH = 28, kW = 28;
constexpr std::int64_t kElements = kN * kC * kH * kW;

// Kernels run on 1 and 2 threads (their naive twins on one); layers on the
// threads minidl starts with (OMP_NUM_THREADS), whatever the kernel cases set.
const int kDefaultThreads = num_threads();

using Map = std::function<void(std::int64_t, const float*, float*)>;
using Map2 = std::function<void(std::int64_t, const float*, const float*, float*)>;

// One elementwise pass: reads `inputs` arrays of n floats, writes one.
void run_map(benchmark::State& state, const Map& forward, const Map& oracle) {
  set_num_threads(static_cast<int>(state.range(0)));
  const auto x = random_values(kElements, 1, 4);
  std::vector<float> y(x.size()), ref(x.size());
  forward(kElements, x.data(), y.data());
  oracle(kElements, x.data(), ref.data());
  if (!close(y, ref, 1e-5)) state.SkipWithError("differs from the naive twin");
  for (auto _ : state) {
    forward(kElements, x.data(), y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 2.0 * sizeof(float) * static_cast<double>(kElements));
}

void run_map2(benchmark::State& state, const Map2& backward, const Map2& oracle) {
  set_num_threads(static_cast<int>(state.range(0)));
  const auto a = random_values(kElements, 2, 4), dy = random_values(kElements, 3, 1);
  std::vector<float> dx(a.size()), ref(a.size());
  backward(kElements, a.data(), dy.data(), dx.data());
  oracle(kElements, a.data(), dy.data(), ref.data());
  if (!close(dx, ref, 1e-5)) state.SkipWithError("differs from the naive twin");
  for (auto _ : state) {
    backward(kElements, a.data(), dy.data(), dx.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 3.0 * sizeof(float) * static_cast<double>(kElements));
}

// Softmax over the 32 channels of each pixel (forward, or backward from y).
void run_softmax(benchmark::State& state, bool backward, bool log, bool naive) {
  set_num_threads(static_cast<int>(state.range(0)));
  const kernels::SoftmaxShape s{kN, kC, kH * kW};
  const auto x = random_values(kElements, 4, 4), dy = random_values(kElements, 5, 1);
  std::vector<float> y(x.size()), out(x.size()), ref(x.size());
  kernels::softmax_forward_naive(s, x.data(), y.data(), log);
  auto run = [&](bool use_naive, float* result) {
    if (backward)
      use_naive ? kernels::softmax_backward_naive(s, y.data(), dy.data(), result, log)
                : kernels::softmax_backward(s, y.data(), dy.data(), result, log);
    else
      use_naive ? kernels::softmax_forward_naive(s, x.data(), result, log)
                : kernels::softmax_forward(s, x.data(), result, log);
  };
  run(naive, out.data());
  run(true, ref.data());
  if (!close(out, ref, 1e-5)) state.SkipWithError("differs from the naive twin");
  for (auto _ : state) {
    run(naive, out.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, (backward ? 3.0 : 2.0) * sizeof(float) * static_cast<double>(kElements));
}

// A layer's forward and backward, as a training step runs them.
void run_layer(benchmark::State& state,
               const std::function<std::unique_ptr<Layer<float>>()>& make) {
  set_num_threads(kDefaultThreads);
  auto layer = make();
  Tensor<float> x({kN, kC, kH, kW}), dy({kN, kC, kH, kW});
  const auto xv = random_values(kElements, 6, 4), dyv = random_values(kElements, 7, 1);
  std::copy(xv.begin(), xv.end(), x.begin());
  std::copy(dyv.begin(), dyv.end(), dy.begin());
  const Context ctx{Mode::Train, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(layer->forward(x, ctx).data());
    benchmark::DoNotOptimize(layer->backward(dy).data());
    benchmark::ClobberMemory();
  }
  // x, y, dy, dx: each read or written at least once.
  set_bytes(state, 4.0 * sizeof(float) * static_cast<double>(kElements));
}

enum class Threads { one_and_two, one, default_count };

template <typename F>
void add(const std::string& name, F f, Threads threads) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), f);
  b->Unit(benchmark::kMillisecond)->UseRealTime();
  if (threads == Threads::one_and_two) b->Arg(1)->Arg(2);
  if (threads == Threads::one) b->Arg(1);
}

void add_map(const std::string& name, Map fast, Map naive) {
  add(
      "BM_act_" + name + "_forward", [=](benchmark::State& s) { run_map(s, fast, naive); },
      Threads::one_and_two);
  add(
      "BM_act_" + name + "_forward_naive", [=](benchmark::State& s) { run_map(s, naive, naive); },
      Threads::one);
}

void add_map2(const std::string& name, Map2 fast, Map2 naive) {
  add(
      "BM_act_" + name + "_backward", [=](benchmark::State& s) { run_map2(s, fast, naive); },
      Threads::one_and_two);
  add(
      "BM_act_" + name + "_backward_naive", [=](benchmark::State& s) { run_map2(s, naive, naive); },
      Threads::one);
}

template <typename L, typename... Args>
void add_layer(const std::string& name, Args... args) {
  add(
      "BM_layer_" + name + "_64x32x28x28",
      [=](benchmark::State& s) { run_layer(s, [=] { return std::make_unique<L>(args...); }); },
      Threads::default_count);
}

bool register_all() {
  namespace k = kernels;
  const float slope = 0.01f;
  add_map("sigmoid", k::sigmoid_forward<float>, k::sigmoid_forward_naive<float>);
  add_map2("sigmoid", k::sigmoid_backward<float>, k::sigmoid_backward_naive<float>);
  add_map("tanh", k::tanh_forward<float>, k::tanh_forward_naive<float>);
  add_map2("tanh", k::tanh_backward<float>, k::tanh_backward_naive<float>);
  add_map(
      "leaky_relu",
      [slope](std::int64_t n, const float* x, float* y) { k::leaky_relu_forward(n, slope, x, y); },
      [slope](std::int64_t n, const float* x, float* y) {
        k::leaky_relu_forward_naive(n, slope, x, y);
      });
  add_map2(
      "leaky_relu",
      [slope](std::int64_t n, const float* x, const float* dy, float* dx) {
        k::leaky_relu_backward(n, slope, x, dy, dx);
      },
      [slope](std::int64_t n, const float* x, const float* dy, float* dx) {
        k::leaky_relu_backward_naive(n, slope, x, dy, dx);
      });
  add_map("gelu", k::gelu_forward<float>, k::gelu_forward_naive<float>);
  add_map2("gelu", k::gelu_backward<float>, k::gelu_backward_naive<float>);
  add_map("gelu_tanh", k::gelu_tanh_forward<float>, k::gelu_tanh_forward_naive<float>);
  add_map2("gelu_tanh", k::gelu_tanh_backward<float>, k::gelu_tanh_backward_naive<float>);
  add_map("silu", k::silu_forward<float>, k::silu_forward_naive<float>);
  add_map2("silu", k::silu_backward<float>, k::silu_backward_naive<float>);
  for (bool log : {false, true}) {
    const std::string name = log ? "log_softmax" : "softmax";
    for (bool backward : {false, true})
      for (bool naive : {false, true})
        add(
            "BM_act_" + name + (backward ? "_backward" : "_forward") + (naive ? "_naive" : ""),
            [=](benchmark::State& s) { run_softmax(s, backward, log, naive); },
            naive ? Threads::one : Threads::one_and_two);
  }

  add_layer<Sigmoid<float>>("sigmoid");
  add_layer<Tanh<float>>("tanh");
  add_layer<LeakyReLU<float>>("leaky_relu", 0.01, false);
  add_layer<GELU<float>>("gelu", GeluApproximate::none);
  add_layer<GELU<float>>("gelu_tanh", GeluApproximate::tanh);
  add_layer<SiLU<float>>("silu");
  add_layer<Softmax<float>>("softmax", 1);
  add_layer<LogSoftmax<float>>("log_softmax", 1);
  return true;
}

const bool registered = register_all();

}  // namespace
