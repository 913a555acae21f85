// Google Benchmark timings of the general convolution: the depthwise and
// general kernels beside their naive twins, per pass, and a forward and
// backward pass of the Conv2d layer (BM_layer_conv2d_<case>, the cases of
// benchmarks/pytorch/layer_cases_conv.py). Each fast kernel is checked
// against the naive loops before it is timed. Part of the `kernels`
// executable (one main for all). Arguments: threads.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "bench_support.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/kernels/conv2d.hpp"
#include "minidl/layers/conv2d.hpp"

using namespace minidl;
using namespace minidl::kernels;

namespace {

using minidl::bench::close;
using minidl::bench::random_values;
using minidl::bench::set_bytes;
using minidl::bench::set_flops;

struct ConvCase {
  std::int64_t N, C, H, W, OC, K, P, D, G;  // square kernel, stride 1

  Conv2dGeometry geometry() const {
    Conv2dGeometry g;
    g.N = N;
    g.C = C;
    g.H = H;
    g.W = W;
    g.OC = OC;
    g.KH = g.KW = K;
    g.PH = g.PW = P;
    g.DH = g.DW = D;
    g.G = G;
    return g;
  }
  Conv2dOptions options() const { return Conv2dOptions(C, OC, K).padding(P).dilation(D).groups(G); }
};

// Depthwise 3x3 on 32 channels at 28x28; groups 2 and dilation 2 at 14x14.
constexpr ConvCase kDepthwise{64, 32, 28, 28, 32, 3, 1, 1, 32};
constexpr ConvCase kGroups2{64, 32, 14, 14, 32, 3, 1, 1, 2};
constexpr ConvCase kDilation2{64, 32, 14, 14, 32, 3, 2, 2, 1};
// Multiply-adds of one pass, counted as two floating-point operations.
double pass_flops(const Conv2dGeometry& g) {
  return 2.0 * static_cast<double>(g.N * g.OC * g.OH() * g.OW() * g.group_col_rows());
}

enum class Pass { Forward, BackwardData, BackwardWeights };

struct ConvData {
  Conv2dGeometry g;
  std::vector<float> x, w, b, y, dy, dx, dw, db, workspace, partials;
  explicit ConvData(const Conv2dGeometry& geometry) : g(geometry) {
    x = random_values(g.N * g.C * g.H * g.W, 1);
    w = random_values(g.weight_size(), 2);
    b = random_values(g.OC, 3);
    dy = random_values(g.N * g.OC * g.OH() * g.OW(), 4);
    y.resize(dy.size());
    dx.resize(x.size());
    dw.resize(w.size());
    db.resize(b.size());
    workspace.resize(static_cast<std::size_t>(conv2d_workspace_size<float>(g)));
    partials.resize(static_cast<std::size_t>(conv2d_weight_partials_size<float>(g)));
  }

  // One pass with the kernel the layer would choose, or the naive loops.
  void run(Pass pass, bool naive) {
    const Conv2dKernels k = conv2d_kernels_for<float>(g);
    if (pass == Pass::Forward) {
      if (naive)
        conv2d_forward_naive(g, x.data(), w.data(), b.data(), y.data());
      else
        conv2d_forward_run(k.forward, g, x.data(), w.data(), b.data(), y.data(), workspace.data());
    } else if (pass == Pass::BackwardData) {
      if (naive)
        conv2d_backward_data_naive(g, dy.data(), w.data(), dx.data());
      else
        conv2d_backward_data_run(k.backward_data, g, dy.data(), w.data(), dx.data(),
                                 workspace.data());
    } else {
      if (naive)
        conv2d_backward_weights_naive(g, x.data(), dy.data(), dw.data(), db.data());
      else
        conv2d_backward_weights_run(k.backward_weights, g, x.data(), dy.data(), dw.data(),
                                    db.data(), partials.data());
    }
  }
};

void run_pass(benchmark::State& state, const ConvCase& c, Pass pass, bool naive) {
  set_num_threads(static_cast<int>(state.range(0)));
  ConvData d(c.geometry());
  if (!naive) {  // verify the timed kernel once against the naive loops
    ConvData ref(d.g);
    d.run(pass, false);
    ref.run(pass, true);
    const bool same = pass == Pass::Forward ? close(d.y, ref.y, 1e-5)
                      : pass == Pass::BackwardData
                          ? close(d.dx, ref.dx, 1e-5)
                          : close(d.dw, ref.dw, 1e-4) && close(d.db, ref.db, 1e-4);
    if (!same) state.SkipWithError("the kernel differs from the naive reference");
  }
  for (auto _ : state) {
    d.run(pass, naive);
    benchmark::ClobberMemory();
  }
  set_flops(state, pass_flops(d.g));
}

#define GENERAL_CONV_BENCH(name, c, pass)                                             \
  void BM_##name(benchmark::State& s) {                                               \
    run_pass(s, c, pass, false);                                                      \
  }                                                                                   \
  void BM_##name##_naive(benchmark::State& s) {                                       \
    run_pass(s, c, pass, true);                                                       \
  }                                                                                   \
  BENCHMARK(BM_##name)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK(BM_##name##_naive)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

GENERAL_CONV_BENCH(conv_dw3x3_forward, kDepthwise, Pass::Forward)
GENERAL_CONV_BENCH(conv_dw3x3_backward_data, kDepthwise, Pass::BackwardData)
GENERAL_CONV_BENCH(conv_dw3x3_backward_weights, kDepthwise, Pass::BackwardWeights)
GENERAL_CONV_BENCH(conv_g2_forward, kGroups2, Pass::Forward)
GENERAL_CONV_BENCH(conv_g2_backward_data, kGroups2, Pass::BackwardData)
GENERAL_CONV_BENCH(conv_g2_backward_weights, kGroups2, Pass::BackwardWeights)
GENERAL_CONV_BENCH(conv_dil2_forward, kDilation2, Pass::Forward)
GENERAL_CONV_BENCH(conv_dil2_backward_data, kDilation2, Pass::BackwardData)
GENERAL_CONV_BENCH(conv_dil2_backward_weights, kDilation2, Pass::BackwardWeights)

// The layer as a network runs it: forward, then backward with the input
// gradient (three passes).
void run_layer(benchmark::State& state, const ConvCase& c) {
  set_num_threads(static_cast<int>(state.range(0)));
  Conv2d<float> conv(c.options());
  Rng rng(1);
  conv.reset_parameters(rng);
  const Conv2dGeometry g = c.geometry();
  Tensor<float> x({g.N, g.C, g.H, g.W}), dy({g.N, g.OC, g.OH(), g.OW()});
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  for (float& v : dy) v = rng.uniform(-1.0f, 1.0f);
  const Context ctx{Mode::Train, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(conv.forward(x, ctx).data());
    benchmark::DoNotOptimize(conv.backward(dy).data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 3 * pass_flops(g));
}

void BM_layer_conv2d_dw3x3_64x32x28x28(benchmark::State& s) {
  run_layer(s, kDepthwise);
}
void BM_layer_conv2d_g2_64x32x14x14(benchmark::State& s) {
  run_layer(s, kGroups2);
}
void BM_layer_conv2d_dil2_64x32x14x14(benchmark::State& s) {
  run_layer(s, kDilation2);
}
BENCHMARK(BM_layer_conv2d_dw3x3_64x32x28x28)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_layer_conv2d_g2_64x32x14x14)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_layer_conv2d_dil2_64x32x14x14)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
