// Google Benchmark cases of the pooling kernels (fast and naive twins) and layers (forward
// and backward), at the shapes of a small CNN: batch 64 of 32 planes of 28 x 28, or of 64
// planes of 7 x 7 before a global average. Part of the `kernels` executable (its main is in
// kernels.cpp). Each fast kernel is checked against its naive twin before it is timed.
// Argument of each case: threads. Counters: GB/s of the tensors read and written.
//
// The BM_layer_* cases run the layer's forward and backward as a network does; their
// names (without BM_layer_) are those of benchmarks/pytorch/layer_cases_pooling.py.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/kernels/adaptive_avgpool2d.hpp"
#include "minidl/kernels/avgpool2d.hpp"
#include "minidl/kernels/maxpool2d.hpp"
#include "minidl/layers/adaptive_avgpool2d.hpp"
#include "minidl/layers/avgpool2d.hpp"
#include "minidl/layers/maxpool2d.hpp"

using namespace minidl;
using namespace minidl::kernels;

namespace {

using minidl::bench::random_values;
using minidl::bench::set_bytes;
using minidl::bench::set_flops;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Relative difference within float rounding of a short sum (global average pooling sums in
// another order than its naive twin).
bool close(const std::vector<float>& a, const std::vector<float>& b) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= 1e-5f * (1.0f + std::fabs(b[i])))) return false;
  return true;
}

// Runs `run` once per iteration with state.range(0) threads, after `check` (which returns an
// error message, or "" when the fast kernel agrees with its naive twin).
void register_case(const std::string& name, std::function<std::string()> check,
                   std::function<void()> run, double bytes) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& state) {
                                 set_num_threads(static_cast<int>(state.range(0)));
                                 const std::string error = check ? check() : "";
                                 if (!error.empty()) state.SkipWithError(error.c_str());
                                 for (auto _ : state) run();
                                 set_bytes(state, bytes);
                               })
      ->Arg(1)
      ->Arg(2)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}

// Buffers of one pooling shape, float: x, dy and the outputs of the fast and naive kernels.
struct Buffers {
  std::vector<float> x, dy, y, y_ref, dx, dx_ref;
  std::vector<std::int32_t> argmax;
  Buffers(std::int64_t in, std::int64_t out)
      : x(random_values(in, 1)),
        dy(random_values(out, 2)),
        y(static_cast<std::size_t>(out)),
        y_ref(y.size()),
        dx(x.size()),
        dx_ref(x.size()),
        argmax(y.size()) {}
  double forward_bytes() const { return 4.0 * static_cast<double>(x.size() + y.size()); }
  double backward_bytes(bool reads_x) const {
    return 4.0 * static_cast<double>(dy.size() + dx.size() + (reads_x ? x.size() : 0));
  }
};

void register_avgpool(const std::string& name, const Pool2dShape& s, bool include_pad) {
  auto b = std::make_shared<Buffers>(s.planes * s.H() * s.W(), s.planes * s.OH() * s.OW());
  register_case(
      "BM_avgpool2d_" + name + "_forward",
      [=] {
        avgpool2d_forward(s, include_pad, b->x.data(), b->y.data());
        avgpool2d_forward_naive(s, include_pad, b->x.data(), b->y_ref.data());
        return same_bits(b->y, b->y_ref) ? "" : "avgpool2d_forward differs from its naive twin";
      },
      [=] { avgpool2d_forward(s, include_pad, b->x.data(), b->y.data()); }, b->forward_bytes());
  register_case(
      "BM_avgpool2d_" + name + "_forward_naive", nullptr,
      [=] { avgpool2d_forward_naive(s, include_pad, b->x.data(), b->y_ref.data()); },
      b->forward_bytes());
  register_case(
      "BM_avgpool2d_" + name + "_backward",
      [=] {
        avgpool2d_backward(s, include_pad, b->dy.data(), b->dx.data());
        avgpool2d_backward_naive(s, include_pad, b->dy.data(), b->dx_ref.data());
        return same_bits(b->dx, b->dx_ref) ? "" : "avgpool2d_backward differs from its naive twin";
      },
      [=] { avgpool2d_backward(s, include_pad, b->dy.data(), b->dx.data()); },
      b->backward_bytes(false));
  register_case(
      "BM_avgpool2d_" + name + "_backward_naive", nullptr,
      [=] { avgpool2d_backward_naive(s, include_pad, b->dy.data(), b->dx_ref.data()); },
      b->backward_bytes(false));
}

void register_adaptive(const std::string& name, const AdaptivePool2dShape& s) {
  auto b = std::make_shared<Buffers>(s.planes * s.H * s.W, s.planes * s.OH * s.OW);
  register_case(
      "BM_adaptiveavgpool2d_" + name + "_forward",
      [=] {
        adaptive_avgpool2d_forward(s, b->x.data(), b->y.data());
        adaptive_avgpool2d_forward_naive(s, b->x.data(), b->y_ref.data());
        return close(b->y, b->y_ref) ? "" : "adaptive_avgpool2d_forward differs from its twin";
      },
      [=] { adaptive_avgpool2d_forward(s, b->x.data(), b->y.data()); }, b->forward_bytes());
  register_case(
      "BM_adaptiveavgpool2d_" + name + "_forward_naive", nullptr,
      [=] { adaptive_avgpool2d_forward_naive(s, b->x.data(), b->y_ref.data()); },
      b->forward_bytes());
  register_case(
      "BM_adaptiveavgpool2d_" + name + "_backward",
      [=] {
        adaptive_avgpool2d_backward(s, b->dy.data(), b->dx.data());
        adaptive_avgpool2d_backward_naive(s, b->dy.data(), b->dx_ref.data());
        return close(b->dx, b->dx_ref) ? "" : "adaptive_avgpool2d_backward differs from its twin";
      },
      [=] { adaptive_avgpool2d_backward(s, b->dy.data(), b->dx.data()); },
      b->backward_bytes(false));
  register_case(
      "BM_adaptiveavgpool2d_" + name + "_backward_naive", nullptr,
      [=] { adaptive_avgpool2d_backward_naive(s, b->dy.data(), b->dx_ref.data()); },
      b->backward_bytes(false));
}

void register_maxpool(const std::string& name, const Pool2dShape& s) {
  auto b = std::make_shared<Buffers>(s.planes * s.H() * s.W(), s.planes * s.OH() * s.OW());
  register_case(
      "BM_maxpool2d_" + name + "_forward",
      [=] {
        maxpool2d_forward(s, b->x.data(), b->y.data());
        maxpool2d_forward_naive(s, b->x.data(), b->y_ref.data(), b->argmax.data());
        return same_bits(b->y, b->y_ref) ? "" : "maxpool2d_forward differs from its naive twin";
      },
      [=] { maxpool2d_forward(s, b->x.data(), b->y.data()); }, b->forward_bytes());
  register_case(
      "BM_maxpool2d_" + name + "_forward_naive", nullptr,
      [=] { maxpool2d_forward_naive(s, b->x.data(), b->y_ref.data(), b->argmax.data()); },
      b->forward_bytes());
  register_case(
      "BM_maxpool2d_" + name + "_backward",
      [=] {
        maxpool2d_forward_naive(s, b->x.data(), b->y_ref.data(), b->argmax.data());
        maxpool2d_backward(s, b->x.data(), b->dy.data(), b->dx.data());
        maxpool2d_backward_naive(s, b->dy.data(), b->argmax.data(), b->dx_ref.data());
        return same_bits(b->dx, b->dx_ref) ? "" : "maxpool2d_backward differs from its naive twin";
      },
      [=] { maxpool2d_backward(s, b->x.data(), b->dy.data(), b->dx.data()); },
      b->backward_bytes(true));
  // The naive backward is timed with the arg-max its forward recorded (it does not find it).
  register_case(
      "BM_maxpool2d_" + name + "_backward_naive", nullptr,
      [=] { maxpool2d_backward_naive(s, b->dy.data(), b->argmax.data(), b->dx_ref.data()); },
      b->backward_bytes(false));
}

// A layer's forward and backward on [N, C, H, W], as a network runs it in training.
template <typename L>
void register_layer(const std::string& name, L layer, const Shape& in) {
  auto l = std::make_shared<L>(std::move(layer));
  auto x = std::make_shared<Tensor<float>>(in);
  Rng rng(3);
  for (float& v : *x) v = rng.uniform(-1.0f, 1.0f);
  const Shape out = l->output_shape(in);
  auto dy = std::make_shared<Tensor<float>>(out);
  for (float& v : *dy) v = rng.uniform(-1.0f, 1.0f);
  const double bytes = 8.0 * static_cast<double>(in.numel() + out.numel());  // x, y, dy, dx
  register_case(
      "BM_layer_" + name, nullptr,
      [=] {
        l->forward(*x, Context{Mode::Train, 0});
        benchmark::DoNotOptimize(l->backward(*dy).data());
      },
      bytes);
}

Pool2dShape windows(std::int64_t planes, std::int64_t H, std::int64_t k, std::int64_t s,
                    std::int64_t p) {
  return {planes, pool_axis(H, k, s, p), pool_axis(H, k, s, p)};
}

const bool registered = [] {
  register_avgpool("k2_64x32x28x28", windows(64 * 32, 28, 2, 2, 0), true);
  register_avgpool("k3s2p1_64x32x28x28", windows(64 * 32, 28, 3, 2, 1), false);
  register_adaptive("1x1_64x64x7x7", {64 * 64, 7, 7, 1, 1});
  register_adaptive("7to3_64x64x7x7", {64 * 64, 7, 7, 3, 3});
  register_maxpool("k3s2p1_64x32x28x28", windows(64 * 32, 28, 3, 2, 1));
  register_layer("avgpool2d_k2_64x32x28x28", AvgPool2d<float>(2), {64, 32, 28, 28});
  register_layer("avgpool2d_k3s2p1_64x32x28x28", AvgPool2d<float>(3, 2, 1, false, false),
                 {64, 32, 28, 28});
  register_layer("adaptiveavgpool2d_1x1_64x64x7x7", AdaptiveAvgPool2d<float>(1), {64, 64, 7, 7});
  register_layer("maxpool2d_k3s2p1_64x32x28x28", MaxPool2d<float>(3, 2, 1), {64, 32, 28, 28});
  register_layer("maxpool2d_k2_64x32x28x28", MaxPool2d<float>(2), {64, 32, 28, 28});
  return true;
}();

}  // namespace
