// Finite-difference gradient checks for layers, in double precision.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>

#include "minidl/minidl.hpp"

namespace minidl::testing {

// Uniform values in [-1, 1] from a seeded stream.
inline Tensor<double> random_tensor(const Shape& shape, std::uint64_t seed) {
  Tensor<double> t(shape);
  Rng rng(seed);
  for (double& v : t) v = rng.uniform(-1.0, 1.0);
  return t;
}

// Values whose magnitude is at least `margin`: no element sits near ReLU's kink at 0.
inline Tensor<double> away_from_zero(const Shape& shape, std::uint64_t seed, double margin = 0.1) {
  Tensor<double> t(shape);
  Rng rng(seed);
  for (double& v : t) {
    const double m = rng.uniform(margin, 1.0);
    v = rng.uniform() < 0.5 ? -m : m;
  }
  return t;
}

// Distinct values at least `gap` apart in random order: no max-pool window has a tie.
inline Tensor<double> distinct_values(const Shape& shape, std::uint64_t seed, double gap = 1e-3) {
  Tensor<double> t(shape);
  for (std::int64_t i = 0; i < t.size(); ++i)
    t[i] = static_cast<double>(i) * gap - 0.5 * gap * static_cast<double>(t.size());
  Rng rng(seed);
  rng.shuffle(t.begin(), t.end());
  return t;
}

struct GradCheckResult {
  double max_abs_error = 0;  // largest |analytic - numeric|
  double max_rel_error = 0;  // largest error relative to max(|analytic|, |numeric|, 1e-3)
  std::int64_t checked = 0;
  std::string worst;  // where the largest relative error occurred
};

// Compares analytic[i] with the central difference (f(x+h) - f(x-h)) / 2h
// of the scalar function f over the elements of `x`. Checks at most
// `max_checks` elements, spread evenly.
inline GradCheckResult compare_with_finite_differences(Tensor<double>& x,
                                                       const Tensor<double>& analytic,
                                                       const std::function<double()>& f,
                                                       const std::string& what, double h = 1e-6,
                                                       std::int64_t max_checks = 400) {
  GradCheckResult r;
  const std::int64_t n = x.size();
  const std::int64_t stride = std::max<std::int64_t>(1, n / max_checks);
  for (std::int64_t i = 0; i < n; i += stride) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = f();
    x[i] = saved - h;
    const double down = f();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    const double err = std::fabs(numeric - analytic[i]);
    const double rel = err / std::max({std::fabs(numeric), std::fabs(analytic[i]), 1e-3});
    r.max_abs_error = std::max(r.max_abs_error, err);
    if (rel > r.max_rel_error) {
      r.max_rel_error = rel;
      std::ostringstream os;
      os << what << "[" << i << "]: analytic " << analytic[i] << " numeric " << numeric;
      r.worst = os.str();
    }
    ++r.checked;
  }
  return r;
}

// Checks a layer's input gradient and every parameter gradient for the loss
// L = sum(forward(x) * R) with a fixed random R, so dL/dy = R.
struct LayerGradCheck {
  GradCheckResult input;
  std::vector<std::pair<std::string, GradCheckResult>> params;
  double worst() const {
    double w = input.max_rel_error;
    for (auto& p : params) w = std::max(w, p.second.max_rel_error);
    return w;
  }
  std::string report() const {
    std::ostringstream os;
    os << "input: " << input.max_rel_error << " (" << input.worst << ")";
    for (auto& p : params)
      os << "; " << p.first << ": " << p.second.max_rel_error << " (" << p.second.worst << ")";
    return os.str();
  }
};

inline LayerGradCheck check_layer_gradients(Layer<double>& layer, Tensor<double> x,
                                            const Context& ctx, std::uint64_t seed = 99) {
  const Tensor<double> y0 = layer.forward(x, ctx).clone();
  const Tensor<double> R = random_tensor(y0.shape(), seed);
  auto loss = [&]() {
    const Tensor<double>& y = layer.forward(x, ctx);
    double s = 0;
    for (std::int64_t i = 0; i < y.size(); ++i) s += y[i] * R[i];
    return s;
  };
  layer.set_needs_input_grad(true);
  layer.forward(x, ctx);
  const Tensor<double> dx = layer.backward(R).clone();
  LayerGradCheck out;
  std::vector<Tensor<double>> grads;
  for (auto& p : layer.parameters()) grads.push_back(p.grad->clone());
  out.input = compare_with_finite_differences(x, dx, loss, "input");
  std::size_t i = 0;
  for (auto& p : layer.parameters()) {
    out.params.emplace_back(p.name,
                            compare_with_finite_differences(*p.value, grads[i++], loss, p.name));
  }
  return out;
}

}  // namespace minidl::testing
