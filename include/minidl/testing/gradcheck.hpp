// minidl/testing/gradcheck.hpp - finite-difference gradient checks for layer authors, in double.
//
// For a new layer, two checks (see docs/guide.md, "Your own layer"):
//   check_layer_gradients(layer, x, ctx)        the layer alone;
//   check_layer_in_network(make_layer, shape)   inside a planned network,
//       with every plan option on and off: gradients right, bits the same.
// For a new merge (several inputs), check_merge_in_network(make_merge, shape).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "minidl/layers/conv2d.hpp"
#include "minidl/layers/flatten.hpp"
#include "minidl/layers/graph.hpp"
#include "minidl/layers/linear.hpp"
#include "minidl/layers/maxpool2d.hpp"

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

// `h` is the finite-difference step: for a layer that is linear in what is checked (a
// convolution in its input and its weights) the central difference has no truncation error,
// and a larger step lowers its rounding noise.
inline LayerGradCheck check_layer_gradients(Layer<double>& layer, Tensor<double> x,
                                            const Context& ctx, std::uint64_t seed = 99,
                                            double h = 1e-6) {
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
  out.input = compare_with_finite_differences(x, dx, loss, "input", h);
  std::size_t i = 0;
  for (auto& p : layer.parameters()) {
    out.params.emplace_back(p.name,
                            compare_with_finite_differences(*p.value, grads[i++], loss, p.name, h));
  }
  return out;
}

// The result of check_layer_in_network: the worst relative error over every
// option set, input and parameter, and whether all option sets gave the
// same bits (output, input gradient and parameter gradients).
struct NetworkGradCheck {
  double worst = 0;
  std::string where;
  bool same_bits = true;
  std::string differs;  // the first option set whose bits differ
  int option_sets = 0;
  std::string report() const {
    std::ostringstream os;
    os << option_sets << " option sets; worst relative error " << worst << " (" << where << "); "
       << (same_bits ? "same bits" : "bits differ with " + differs);
    return os.str();
  }
};

namespace detail {

// Builds `shape` -> add_middle(net) -> MaxPool2d(2) -> Flatten -> Linear(-> 3)
// under every set of plan options, runs it with the loss L = sum(output * R),
// and checks every gradient against finite differences and the bits of
// every set against those of the first.
template <typename AddMiddle>
NetworkGradCheck check_in_network(AddMiddle add_middle, const Shape& shape, std::uint64_t seed) {
  struct Run {
    PlanOptions options;
    bool input_grad;
    std::string name;
  };
  // The 8 combinations of the options that act in training, all on first,
  // then all on without an input gradient (which changes the plan too).
  std::vector<Run> runs;
  for (int off = 0; off < 8; ++off) {
    const PlanOptions o{(off & 1) == 0, (off & 2) == 0, (off & 4) == 0};
    runs.push_back({o, true,
                    std::string("fold_relu ") + (o.fold_relu ? "on" : "off") + ", pass_planes " +
                        (o.pass_planes ? "on" : "off") + ", share_buffers " +
                        (o.share_buffers ? "on" : "off")});
  }
  runs.push_back({PlanOptions{}, false, "all on, no input gradient"});
  NetworkGradCheck out;
  std::vector<double> reference;
  const Tensor<double> x0 = random_tensor(shape, seed);
  for (const Run& run : runs) {
    Graph<double> net;
    add_middle(net);
    net.add("pool", MaxPool2d<double>(2));
    net.add("flatten", Flatten<double>());
    const std::int64_t features = net.output_shape(shape)[1];
    net.add("fc", Linear<double>(features, 3));
    net.reset_parameters(seed + 1);
    net.set_plan_options(run.options);
    net.set_input_grad(run.input_grad);
    Tensor<double> x = x0.clone();
    const Context ctx{Mode::Train, 7};
    const Tensor<double> R = random_tensor(net.output_shape(shape), seed + 2);
    auto loss = [&]() {
      const Tensor<double>& y = net.forward(x, ctx);
      double s = 0;
      for (std::int64_t i = 0; i < y.size(); ++i) s += y[i] * R[i];
      return s;
    };
    // Bits compared across option sets: the output and the parameter
    // gradients, and the input gradient where one is computed.
    std::vector<double> bits;
    auto append = [&bits](const Tensor<double>& t) {
      for (double v : t) bits.push_back(v);
    };
    append(net.forward(x, ctx));
    const Tensor<double> dx = net.backward(R).clone();
    std::vector<Tensor<double>> grads;
    for (auto& p : net.parameters()) {
      grads.push_back(p.grad->clone());
      append(*p.grad);
    }
    auto note = [&](const GradCheckResult& r, const std::string& what) {
      if (r.max_rel_error >= out.worst) {
        out.worst = r.max_rel_error;
        out.where = run.name + ": " + what + " " + r.worst;
      }
    };
    if (run.input_grad) note(compare_with_finite_differences(x, dx, loss, "input"), "input");
    std::size_t i = 0;
    for (auto& p : net.parameters())
      note(compare_with_finite_differences(*p.value, grads[i++], loss, p.name), p.name);
    if (run.input_grad) append(dx);
    if (out.option_sets++ == 0) reference = bits;
    const std::size_t n = std::min(bits.size(), reference.size());
    const bool same = (bits.size() == reference.size() || !run.input_grad) &&
                      std::memcmp(bits.data(), reference.data(), n * sizeof(double)) == 0;
    if (out.same_bits && !same) {
      out.same_bits = false;
      out.differs = run.name;
    }
  }
  return out;
}

}  // namespace detail

// Runs the layer make_layer() returns inside
//   Conv2d(C -> 3, 3x3, pad 1) -> layer -> MaxPool2d(2) -> Flatten -> Linear(-> 3)
// on an input of `shape` [N, C, H, W], where the plan pass fuses and shares
// buffers around it. Each set of plan options (the 8 combinations of
// fold_relu, pass_planes and share_buffers, and all on without an input
// gradient) must give the same bits, and every gradient must match finite
// differences. The layer must keep the shape's rank 4.
template <typename MakeLayer>
NetworkGradCheck check_layer_in_network(MakeLayer make_layer, const Shape& shape,
                                        std::uint64_t seed = 1) {
  return detail::check_in_network(
      [&](Graph<double>& net) {
        net.add("conv", Conv2d<double>(shape[1], 3, 3, 1, 1));
        net.add("layer", make_layer());
      },
      shape, seed);
}

// The same for a merge of two inputs: make_merge() joins two branches,
//   a = Conv2d(C -> 3, 3x3, pad 1)(x) and b = Conv2d(C -> 3, 3x3, pad 1)(x),
// and a MaxPool2d(2) reads its output (which must have rank 4).
template <typename MakeMerge>
NetworkGradCheck check_merge_in_network(MakeMerge make_merge, const Shape& shape,
                                        std::uint64_t seed = 1) {
  return detail::check_in_network(
      [&](Graph<double>& net) {
        net.add("a", Conv2d<double>(shape[1], 3, 3, 1, 1), "input");
        net.add("b", Conv2d<double>(shape[1], 3, 3, 1, 1), "input");
        net.add("merge", make_merge(), "a", "b");
      },
      shape, seed);
}

}  // namespace minidl::testing
