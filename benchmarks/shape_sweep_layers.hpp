// The layer cases of the shape sweep (benchmarks/shape_sweep.cpp): a pool, batch norm or linear
// layer driven through its class, forward then backward as a network in training runs it, and
// checked once against the naive kernels before it is timed.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "minidl/kernels/adaptive_avgpool2d.hpp"
#include "minidl/kernels/avgpool2d.hpp"
#include "minidl/kernels/batchnorm.hpp"
#include "minidl/kernels/linear.hpp"
#include "minidl/kernels/maxpool2d.hpp"
#include "minidl/layers/adaptive_avgpool2d.hpp"
#include "minidl/layers/avgpool2d.hpp"
#include "minidl/layers/batchnorm.hpp"
#include "minidl/layers/linear.hpp"
#include "minidl/layers/maxpool2d.hpp"
#include "shape_sweep_cases.hpp"

namespace minidl::sweep {

// One layer with its input and upstream gradient.
struct LayerRun {
  std::unique_ptr<Layer<float>> layer;
  Tensor<float> x, dy;

  void forward_backward() {
    layer->forward(x, Context{Mode::Train, 0});
    layer->backward(dy);
  }
};

namespace detail {

inline Tensor<float> random_tensor(const Shape& shape, std::uint64_t seed) {
  Tensor<float> t(shape);
  const auto v = bench::random_values(shape.numel(), seed);
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}

inline std::vector<float> values(const Tensor<float>& t) {
  return {t.begin(), t.end()};
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Largest difference within tol of the values' scale (1 for inputs in [-1, 1]), no NaN.
inline bool near(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(static_cast<double>(a[i]) - b[i]) <=
          tol * std::max(1.0, std::fabs(static_cast<double>(b[i])))))
      return false;
  return true;
}

// A sum of `depth` products or values in another order than its twin's: float rounding grows
// with the depth (tests/test_kernels.cpp's bound, for values in [-1, 1]).
inline double depth_tolerance(std::int64_t depth) {
  return 2e-6 * static_cast<double>(std::max<std::int64_t>(depth, 16));
}

inline kernels::Pool2dShape windows(const LayerCase& l) {
  const auto axis = kernels::pool_axis(l.H, l.k, l.s, l.p);
  return {l.N * l.C, axis, axis};
}

}  // namespace detail

inline LayerRun make_layer_run(const LayerCase& l) {
  LayerRun r;
  Shape in{l.N, l.C, l.H, l.H};
  switch (l.kind) {
    case LayerKind::MaxPool:
      r.layer = std::make_unique<MaxPool2d<float>>(l.k, l.s, l.p);
      break;
    case LayerKind::AvgPool:
      r.layer = std::make_unique<AvgPool2d<float>>(l.k, l.s, l.p);
      break;
    case LayerKind::GlobalAvgPool:
      r.layer = std::make_unique<AdaptiveAvgPool2d<float>>(1);
      break;
    case LayerKind::BatchNorm:
      r.layer = std::make_unique<BatchNorm2d<float>>(l.C);
      break;
    case LayerKind::Linear: {
      r.layer = std::make_unique<Linear<float>>(l.in, l.out);
      Rng rng(5);
      r.layer->reset_parameters(rng);
      in = Shape{l.N, l.in};
      break;
    }
  }
  r.x = detail::random_tensor(in, 1);
  r.dy = detail::random_tensor(r.layer->output_shape(in), 2);
  return r;
}

// "" when the layer's output and input gradient (and the weight and bias gradients of a linear
// or batch-norm layer) agree with the naive kernels', else what differs.
inline std::string check_layer(const LayerCase& l, LayerRun& r) {
  const std::vector<float> y = detail::values(r.layer->forward(r.x, Context{Mode::Train, 0}));
  const std::vector<float> dx = detail::values(r.layer->backward(r.dy));
  std::vector<float> y_ref(y.size()), dx_ref(dx.size());
  const float* x = r.x.data();
  const float* dy = r.dy.data();
  const std::int64_t P = l.H * l.H;
  switch (l.kind) {
    case LayerKind::MaxPool: {
      std::vector<std::int32_t> argmax(y.size());
      kernels::maxpool2d_forward_naive(detail::windows(l), x, y_ref.data(), argmax.data());
      kernels::maxpool2d_backward_naive(detail::windows(l), dy, argmax.data(), dx_ref.data());
      if (!detail::same_bits(y, y_ref)) return "the forward differs from the naive kernel";
      if (!detail::same_bits(dx, dx_ref)) return "the backward differs from the naive kernel";
      return "";
    }
    case LayerKind::AvgPool: {
      kernels::avgpool2d_forward_naive(detail::windows(l), true, x, y_ref.data());
      kernels::avgpool2d_backward_naive(detail::windows(l), true, dy, dx_ref.data());
      break;
    }
    case LayerKind::GlobalAvgPool: {
      const kernels::AdaptivePool2dShape s{l.N * l.C, l.H, l.H, 1, 1};
      kernels::adaptive_avgpool2d_forward_naive(s, x, y_ref.data());
      kernels::adaptive_avgpool2d_backward_naive(s, dy, dx_ref.data());
      break;
    }
    case LayerKind::BatchNorm: {
      const auto params = r.layer->parameters();  // weight (gamma), bias (beta)
      const float* gamma = params[0].value->data();
      std::vector<float> mean(l.C), var(l.C), invstd(l.C), dgamma(l.C), dbeta(l.C);
      kernels::batchnorm_stats_naive(l.N, l.C, P, 1e-5, x, mean.data(), var.data(), invstd.data());
      kernels::batchnorm_normalize_naive(l.N, l.C, P, x, mean.data(), invstd.data(), gamma,
                                         params[1].value->data(), y_ref.data());
      kernels::batchnorm_backward_naive(l.N, l.C, P, true, x, dy, mean.data(), invstd.data(), gamma,
                                        dx_ref.data(), dgamma.data(), dbeta.data());
      if (!detail::near(y, y_ref, 1e-4)) return "the forward differs from the naive kernels";
      if (!detail::near(dx, dx_ref, 1e-4)) return "the backward differs from the naive kernel";
      // Sums over the N * P values of a channel.
      const double sum_tol = detail::depth_tolerance(l.N * P);
      if (!detail::near(detail::values(*params[0].grad), dgamma, sum_tol) ||
          !detail::near(detail::values(*params[1].grad), dbeta, sum_tol))
        return "the weight and bias gradients differ from the naive kernel";
      return "";
    }
    case LayerKind::Linear: {
      const auto params = r.layer->parameters();  // weight, bias
      const float* w = params[0].value->data();
      std::vector<float> dw_ref(static_cast<std::size_t>(l.out * l.in)),
          db_ref(static_cast<std::size_t>(l.out));
      kernels::linear_forward_naive(l.N, l.in, l.out, x, w, params[1].value->data(), y_ref.data());
      kernels::linear_backward_data_naive(l.N, l.in, l.out, dy, w, dx_ref.data());
      kernels::linear_backward_weights_naive(l.N, l.in, l.out, x, dy, dw_ref.data(), db_ref.data());
      auto tol = detail::depth_tolerance;
      if (!detail::near(y, y_ref, tol(l.in))) return "the forward differs from the naive kernel";
      if (!detail::near(dx, dx_ref, tol(l.out)))
        return "the input gradient differs from the naive kernel";
      if (!detail::near(detail::values(*params[0].grad), dw_ref, tol(l.N)) ||
          !detail::near(detail::values(*params[1].grad), db_ref, tol(l.N)))
        return "the weight gradient differs from the naive kernel";
      return "";
    }
  }
  // The averages: the same sums as their naive twins, maybe in another order.
  if (!detail::near(y, y_ref, 1e-5)) return "the forward differs from the naive kernel";
  if (!detail::near(dx, dx_ref, 1e-5)) return "the backward differs from the naive kernel";
  return "";
}

// The work of one forward + backward: multiply-adds x 2 for a linear layer (forward, input and
// weight gradients), else the bytes of x, y, dy and dx (memory-bound layers). Sets `is_flops`.
inline double layer_work(const LayerCase& l, const LayerRun& r, bool& is_flops) {
  is_flops = l.kind == LayerKind::Linear;
  if (is_flops) return 3 * 2.0 * static_cast<double>(l.N * l.in * l.out);
  return 8.0 * static_cast<double>(r.x.size() + r.dy.size());
}

}  // namespace minidl::sweep
