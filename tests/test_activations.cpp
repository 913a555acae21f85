// Sigmoid, Tanh, LeakyReLU, GELU (exact and tanh), SiLU, Softmax and LogSoftmax:
// the vector exp/expm1/tanh against the C library, every fast kernel against
// its naive twin, the same bits on 1 and 2 threads, inputs of +-100, backward
// by finite differences in double (alone and inside planned networks), and
// the errors a user gets for bad arguments. PyTorch parity is in
// test_activations_parity.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"
#include "minidl/testing/gradcheck.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_activations {

using namespace minidl;
using namespace minidl::testing;
using minidl::kernels::Simd;

namespace {

// Analytic and numeric gradients agree to ~1e-9 in double with h = 1e-6;
// a wrong backward is off by 1e-2 or more. The bound is 1e-5, not
// test_gradcheck.cpp's 1e-6: the loss sum(y R) over outputs of several units
// (log-softmax, SiLU at |x| = 19) carries rounding of ~1e-14, which the
// central difference divides by 2h into ~1e-8 absolute, 1e-5 relative to the
// floor of 1e-3.
constexpr double kGradTolerance = 1e-5;
const Context kTrain{Mode::Train, 3};

// The worst |got - want| / max(|want|, floor[i]) (floor[i] the scale below
// which element i's error is judged absolutely: where a formula cancels,
// e.g. 1 + tanh(u) for u << 0, both sides lose the same digits). NaN and
// infinities must match exactly.
template <typename T>
double worst_relative(const std::vector<T>& got, const std::vector<T>& want,
                      const std::vector<double>& floor) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (std::isnan(w) || std::isnan(g)) {
      if (std::isnan(w) != std::isnan(g)) return std::numeric_limits<double>::infinity();
      continue;
    }
    if (std::isinf(w) || std::isinf(g)) {
      if (g != w) return std::numeric_limits<double>::infinity();
      continue;
    }
    worst = std::max(worst, std::fabs(g - w) / std::max({std::fabs(w), floor[i], 1e-30}));
  }
  return worst;
}

template <typename T>
double worst_relative(const std::vector<T>& got, const std::vector<T>& want, double floor) {
  return worst_relative(got, want, std::vector<double>(got.size(), floor));
}

// |v[i]| as floors: the scale of x for y = x g(x) (SiLU, GELU), of dy for a
// gradient dy h(x) whose h sums terms of order 1.
template <typename T>
std::vector<double> magnitudes(const std::vector<T>& v) {
  std::vector<double> m(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) m[i] = std::fabs(static_cast<double>(v[i]));
  return m;
}

template <typename T>
std::vector<T> random_values(std::size_t n, double lo, double hi, std::uint64_t seed) {
  std::vector<T> v(n);
  Rng rng(seed);
  for (T& x : v) x = static_cast<T>(rng.uniform(lo, hi));
  return v;
}

// Values across the range a network produces, with the extremes of a user's
// (+-100, +-30) and exact zeros sprinkled in.
template <typename T>
std::vector<T> activation_inputs(std::size_t n, std::uint64_t seed) {
  std::vector<T> v = random_values<T>(n, -8, 8, seed);
  const T specials[] = {T(100), T(-100), T(30), T(-30), T(0), T(1e-6), T(-1e-6), T(0.5)};
  for (std::size_t i = 0; i < n; i += 13) v[i] = specials[(i / 13) % 8];
  return v;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// One elementwise kernel pair: forward(n, x, y) or backward(n, a, dy, dx).
template <typename T>
using Forward = std::function<void(std::int64_t, const T*, T*)>;
template <typename T>
using Backward = std::function<void(std::int64_t, const T*, const T*, T*)>;

// Fast against naive (to `rel`, or bit for bit when rel is 0) and 1 thread
// against 2 threads (bit for bit), over sizes with a short tail and over
// several parallel chunks.
template <typename T>
void check_forward(const char* what, Forward<T> fast, Forward<T> naive, double rel,
                   bool scale_of_x = false) {
  for (std::int64_t n : {std::int64_t(1), std::int64_t(Simd<T>::width * 3 + 5),
                         std::int64_t(3 * kElementwiseChunk + 77)}) {
    const std::string name = what;
    CAPTURE(name);
    CAPTURE(n);
    const auto x = activation_inputs<T>(static_cast<std::size_t>(n), 5);
    std::vector<T> want(x.size()), one(x.size()), two(x.size());
    naive(n, x.data(), want.data());
    set_num_threads(1);
    fast(n, x.data(), one.data());
    set_num_threads(2);
    fast(n, x.data(), two.data());
    CHECK(same_bits(one, two));
    if (rel == 0)
      CHECK(same_bits(one, want));
    else
      CHECK(worst_relative(one, want, scale_of_x ? magnitudes(x) : magnitudes(want)) <= rel);
  }
}

template <typename T>
void check_backward(const char* what, Forward<T> make_first, Backward<T> fast, Backward<T> naive,
                    double rel) {
  for (std::int64_t n : {std::int64_t(1), std::int64_t(Simd<T>::width * 3 + 5),
                         std::int64_t(3 * kElementwiseChunk + 77)}) {
    const std::string name = what;
    CAPTURE(name);
    CAPTURE(n);
    const auto x = activation_inputs<T>(static_cast<std::size_t>(n), 6);
    std::vector<T> a(x.size());  // what backward reads: x itself or the output
    make_first(n, x.data(), a.data());
    const auto dy = random_values<T>(x.size(), -1, 1, 7);
    std::vector<T> want(x.size()), one(x.size()), two(x.size());
    naive(n, a.data(), dy.data(), want.data());
    set_num_threads(1);
    fast(n, a.data(), dy.data(), one.data());
    set_num_threads(2);
    fast(n, a.data(), dy.data(), two.data());
    CHECK(same_bits(one, two));
    // dy h(x) sums terms of order |x| (x s (1 - s), x/2 (1 - t^2) u'): their
    // rounding is relative to |dy| (1 + |x|).
    std::vector<double> scale = magnitudes(dy);
    for (std::size_t i = 0; i < scale.size(); ++i) scale[i] *= 1 + std::fabs(double(x[i]));
    if (rel == 0)
      CHECK(same_bits(one, want));
    else
      CHECK(worst_relative(one, want, scale) <= rel);
  }
}

template <typename T>
void copy_input(std::int64_t n, const T* x, T* y) {
  std::memcpy(y, x, static_cast<std::size_t>(n) * sizeof(T));
}

// A few units of T's rounding: float's unit is 6e-8, double's 1.1e-16.
template <typename T>
double ulps(double count) {
  return count * std::numeric_limits<T>::epsilon() / 2;
}

}  // namespace

TEST_CASE_TEMPLATE("vector exp, expm1 and tanh stay within a few roundings of the C library", T,
                   float, double) {
  using VE = kernels::VectorExp<T>;
  using S = Simd<T>;
  std::vector<T> x = random_values<T>(4096, -80, 80, 1);
  const auto small = random_values<T>(1024, -1e-3, 1e-3, 2);
  x.insert(x.end(), small.begin(), small.end());
  const T specials[] = {T(0), T(-0.0), T(1e-30), T(-1e-30), T(0.34657359), T(-0.34657359)};
  x.insert(x.end(), std::begin(specials), std::end(specials));
  while (x.size() % S::width) x.push_back(T(1));
  std::vector<T> e(x.size()), em1(x.size()), th(x.size());
  std::vector<T> e_ref(x.size()), em1_ref(x.size()), th_ref(x.size());
  for (std::size_t i = 0; i < x.size(); i += S::width) {
    const auto v = S::load(&x[i]);
    S::store(&e[i], VE::exp(v));
    S::store(&th[i], VE::tanh(v));
    S::store(&em1[i], VE::expm1(v > T(40) ? S::broadcast(T(40)) : v));
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    e_ref[i] = std::exp(x[i]);
    em1_ref[i] = std::expm1(std::min(x[i], T(40)));
    th_ref[i] = std::tanh(x[i]);
  }
  // Relative errors, tiny arguments included (expm1 and tanh keep their digits there).
  const double floor = std::numeric_limits<T>::min();
  MESSAGE("exp " << worst_relative(e, e_ref, floor) << " expm1 "
                 << worst_relative(em1, em1_ref, floor) << " tanh "
                 << worst_relative(th, th_ref, floor));
  CHECK(worst_relative(e, e_ref, floor) <= ulps<T>(4));
  CHECK(worst_relative(em1, em1_ref, floor) <= ulps<T>(4));
  CHECK(worst_relative(th, th_ref, floor) <= ulps<T>(4));

  // Overflow, underflow, infinities and NaN as the C library has them.
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> edge(S::width, T(0));
  const T edges[] = {T(1000), T(-1000), inf, -inf, std::numeric_limits<T>::quiet_NaN()};
  for (int i = 0; i < 5 && i < S::width; ++i) edge[static_cast<std::size_t>(i)] = edges[i];
  std::vector<T> e_edge(edge.size()), t_edge(edge.size());
  S::store(e_edge.data(), VE::exp(S::load(edge.data())));
  S::store(t_edge.data(), VE::tanh(S::load(edge.data())));
  CHECK(e_edge[0] == inf);
  CHECK(e_edge[1] == T(0));
  CHECK(t_edge[0] == T(1));
  CHECK(t_edge[1] == T(-1));
  if (S::width >= 5) {
    CHECK(e_edge[2] == inf);
    CHECK(e_edge[3] == T(0));
    CHECK(std::isnan(e_edge[4]));
    CHECK(t_edge[2] == T(1));
    CHECK(t_edge[3] == T(-1));
    CHECK(std::isnan(t_edge[4]));
  }
}

TEST_CASE_TEMPLATE("elementwise activation kernels: fast against naive, 1 thread against 2", T,
                   float, double) {
  namespace k = kernels;
  const double rel = ulps<T>(8);
  const T slope = T(0.01);
  check_forward<T>("sigmoid", k::sigmoid_forward<T>, k::sigmoid_forward_naive<T>, rel);
  check_forward<T>("tanh", k::tanh_forward<T>, k::tanh_forward_naive<T>, rel);
  check_forward<T>("silu", k::silu_forward<T>, k::silu_forward_naive<T>, rel, true);
  check_forward<T>("gelu_tanh", k::gelu_tanh_forward<T>, k::gelu_tanh_forward_naive<T>, rel, true);
  check_forward<T>("gelu", k::gelu_forward<T>, k::gelu_forward_naive<T>, 0);
  check_forward<T>(
      "leaky_relu",
      [&](std::int64_t n, const T* x, T* y) { k::leaky_relu_forward(n, slope, x, y); },
      [&](std::int64_t n, const T* x, T* y) { k::leaky_relu_forward_naive(n, slope, x, y); }, 0);

  check_backward<T>("sigmoid", k::sigmoid_forward_naive<T>, k::sigmoid_backward<T>,
                    k::sigmoid_backward_naive<T>, 0);
  check_backward<T>("tanh", k::tanh_forward_naive<T>, k::tanh_backward<T>,
                    k::tanh_backward_naive<T>, 0);
  check_backward<T>("silu", copy_input<T>, k::silu_backward<T>, k::silu_backward_naive<T>, rel);
  check_backward<T>("gelu_tanh", copy_input<T>, k::gelu_tanh_backward<T>,
                    k::gelu_tanh_backward_naive<T>, rel);
  check_backward<T>("gelu", copy_input<T>, k::gelu_backward<T>, k::gelu_backward_naive<T>, 0);
  check_backward<T>(
      "leaky_relu", copy_input<T>,
      [&](std::int64_t n, const T* x, const T* dy, T* dx) {
        k::leaky_relu_backward(n, slope, x, dy, dx);
      },
      [&](std::int64_t n, const T* x, const T* dy, T* dx) {
        k::leaky_relu_backward_naive(n, slope, x, dy, dx);
      },
      0);
}

TEST_CASE_TEMPLATE("softmax kernels: fast against naive, 1 thread against 2, both layouts", T,
                   float, double) {
  // (N, C) rows, (N, C, H, W) planes with a short last vector, and
  // planes that span several work items.
  const kernels::SoftmaxShape shapes[] = {{1, 1, 1},     {7, 10, 1},      {5, 37, 1},
                                          {3, 7, 5 * 7}, {2, 5, 33 * 31}, {1, 3, 1}};
  for (const auto& s : shapes)
    for (bool log : {false, true}) {
      CAPTURE(s.outer);
      CAPTURE(s.C);
      CAPTURE(s.inner);
      CAPTURE(log);
      const auto n = static_cast<std::size_t>(s.outer * s.C * s.inner);
      auto x = random_values<T>(n, -20, 20, 8);
      for (std::size_t i = 0; i < n; i += 17) x[i] = i % 2 ? T(100) : T(-100);
      std::vector<T> want(n), one(n), two(n);
      kernels::softmax_forward_naive(s, x.data(), want.data(), log);
      set_num_threads(1);
      kernels::softmax_forward(s, x.data(), one.data(), log);
      set_num_threads(2);
      kernels::softmax_forward(s, x.data(), two.data(), log);
      CHECK(same_bits(one, two));
      // Softmax: relative to each value, down to 1e-30 (softmax of -100 next
      // to +100 is e^-200). Log-softmax, x - (max + log sum), relative to the
      // largest |x|: near 0 it cancels.
      double largest = 1;
      for (T v : x) largest = std::max(largest, std::fabs(static_cast<double>(v)));
      CHECK(worst_relative(one, want, log ? largest : 1e-30) <= ulps<T>(16));

      const auto dy = random_values<T>(n, -1, 1, 9);
      std::vector<T> dwant(n), done(n), dtwo(n);
      kernels::softmax_backward_naive(s, want.data(), dy.data(), dwant.data(), log);
      set_num_threads(1);
      kernels::softmax_backward(s, want.data(), dy.data(), done.data(), log);
      set_num_threads(2);
      kernels::softmax_backward(s, want.data(), dy.data(), dtwo.data(), log);
      CHECK(same_bits(done, dtwo));
      // A difference of sums in another order: bounded by the sum's scale, C ulps.
      double scale = 0, diff = 0;
      for (std::size_t i = 0; i < n; ++i) {
        scale = std::max(scale, std::fabs(static_cast<double>(dwant[i])));
        diff = std::max(diff, std::fabs(static_cast<double>(done[i]) - dwant[i]));
      }
      CHECK(diff <= ulps<T>(4.0 * static_cast<double>(s.C)) * std::max(scale, 1.0));
    }
}

TEST_CASE_TEMPLATE("inputs of +-100 give the exact limits, no overflow or NaN", T, float, double) {
  const T big = T(100);
  Tensor<T> x({1, 4});
  x[0] = big, x[1] = -big, x[2] = big, x[3] = T(0);
  const Context ctx;
  const T ln2 = T(0.69314718055994531);

  Softmax<T> softmax;
  const Tensor<T>& p = softmax.forward(x, ctx);
  CHECK(p[0] == doctest::Approx(0.5));
  CHECK(p[2] == doctest::Approx(0.5));
  CHECK(p[1] >= T(0));
  CHECK(p[1] < T(1e-40) + std::numeric_limits<T>::denorm_min());
  CHECK(std::isfinite(p[3]));
  LogSoftmax<T> log_softmax;
  const Tensor<T>& lp = log_softmax.forward(x, ctx);
  CHECK(lp[0] == doctest::Approx(-ln2));
  CHECK(lp[1] == doctest::Approx(-200 - ln2));
  CHECK(lp[3] == doctest::Approx(-100 - ln2));

  Tensor<T> e({2});
  e[0] = big, e[1] = -big;
  Sigmoid<T> sigmoid;
  CHECK(sigmoid.forward(e, ctx)[0] == T(1));
  CHECK(sigmoid.forward(e, ctx)[1] == doctest::Approx(std::exp(-100.0)).epsilon(1e-5));
  Tanh<T> tanh;
  CHECK(tanh.forward(e, ctx)[0] == T(1));
  CHECK(tanh.forward(e, ctx)[1] == T(-1));
  SiLU<T> silu;
  CHECK(silu.forward(e, ctx)[0] == big);
  CHECK(std::fabs(silu.forward(e, ctx)[1]) < T(1e-40) + std::numeric_limits<T>::denorm_min());
  for (auto approximate : {GeluApproximate::none, GeluApproximate::tanh}) {
    GELU<T> gelu(approximate);
    CHECK(gelu.forward(e, ctx)[0] == big);
    CHECK(gelu.forward(e, ctx)[1] == T(0));
  }
  // Backward at the extremes: finite, and 0 where the function is flat.
  Tensor<T> g({2});
  g[0] = T(1), g[1] = T(1);
  sigmoid.forward(e, ctx);
  CHECK(sigmoid.backward(g)[0] == T(0));
  silu.forward(e, ctx);
  CHECK(silu.backward(g)[0] == T(1));
  CHECK(std::isfinite(silu.backward(g)[1]));
}

TEST_CASE("every activation's backward matches finite differences in double, alone") {
  const Shape shapes[] = {{1, 3, 5, 7}, {2, 3, 4, 5}, {4, 9}, {7}};
  for (const Shape& shape : shapes) {
    CAPTURE(shape.str());
    std::vector<std::pair<std::string, std::function<std::unique_ptr<Layer<double>>()>>> layers = {
        {"Sigmoid", [] { return std::make_unique<Sigmoid<double>>(); }},
        {"Tanh", [] { return std::make_unique<Tanh<double>>(); }},
        {"SiLU", [] { return std::make_unique<SiLU<double>>(); }},
        {"GELU", [] { return std::make_unique<GELU<double>>(); }},
        {"GELU tanh", [] { return std::make_unique<GELU<double>>("tanh"); }},
        {"LeakyReLU", [] { return std::make_unique<LeakyReLU<double>>(0.01); }},
        {"LeakyReLU -0.5", [] { return std::make_unique<LeakyReLU<double>>(-0.5); }},
        {"Softmax", [] { return std::make_unique<Softmax<double>>(); }},
        {"LogSoftmax", [] { return std::make_unique<LogSoftmax<double>>(); }},
        {"Softmax -1", [] { return std::make_unique<Softmax<double>>(-1); }},
        {"LogSoftmax 0", [] { return std::make_unique<LogSoftmax<double>>(0); }}};
    for (auto& entry : layers) {
      const std::string& name = entry.first;
      if (shape.rank() == 1 && (name == "Softmax" || name == "LogSoftmax")) continue;
      CAPTURE(name);
      auto layer = entry.second();
      // Scaled to +-3, and away from LeakyReLU's kink at 0 by 0.1 (the
      // finite difference steps 1e-6 and would straddle it).
      Tensor<double> x = away_from_zero(shape, 11, 0.1);
      for (double& v : x) v *= 3;
      const LayerGradCheck r = check_layer_gradients(*layer, x, kTrain);
      INFO(r.report());
      CHECK(r.input.checked > 0);
      CHECK(r.worst() < kGradTolerance);
    }
  }
}

TEST_CASE("sigmoid and tanh gradients at large magnitudes, LeakyReLU just beside its kink") {
  Tensor<double> big({2, 8});
  for (std::int64_t i = 0; i < big.size(); ++i)
    big[i] = (i % 2 ? -1 : 1) * (4.0 + static_cast<double>(i));  // |x| from 4 to 19
  Sigmoid<double> sigmoid;
  Tanh<double> tanh;
  SiLU<double> silu;
  for (Layer<double>* layer : std::initializer_list<Layer<double>*>{&sigmoid, &tanh, &silu}) {
    CAPTURE(layer->type());
    const LayerGradCheck r = check_layer_gradients(*layer, big, kTrain);
    INFO(r.report());
    CHECK(r.worst() < kGradTolerance);
  }
  LeakyReLU<double> leaky(0.2);
  const LayerGradCheck r = check_layer_gradients(leaky, away_from_zero({3, 11}, 12, 1e-4), kTrain);
  INFO(r.report());
  CHECK(r.worst() < kGradTolerance);
}

TEST_CASE(
    "every activation inside a planned network: gradients right, same bits with fusions on or "
    "off") {
  const Shape shapes[] = {{2, 2, 6, 6}, {1, 3, 5, 7}};
  for (const Shape& shape : shapes) {
    CAPTURE(shape.str());
    std::vector<NetworkGradCheck> results = {
        check_layer_in_network([] { return Sigmoid<double>(); }, shape),
        check_layer_in_network([] { return Tanh<double>(); }, shape),
        check_layer_in_network([] { return SiLU<double>(); }, shape),
        check_layer_in_network([] { return GELU<double>(GeluApproximate::none); }, shape),
        check_layer_in_network([] { return GELU<double>(GeluApproximate::tanh); }, shape),
        check_layer_in_network([] { return LeakyReLU<double>(0.1); }, shape),
        check_layer_in_network([] { return LeakyReLU<double>(0.1, true); }, shape),
        check_layer_in_network([] { return Softmax<double>(); }, shape),
        check_layer_in_network([] { return LogSoftmax<double>(); }, shape)};
    for (std::size_t i = 0; i < results.size(); ++i) {
      CAPTURE(i);
      INFO(results[i].report());
      CHECK(results[i].option_sets == 9);
      CHECK(results[i].same_bits);
      CHECK(results[i].worst < kGradTolerance);
    }
  }
}

TEST_CASE("an in-place LeakyReLU gives the bits of the copying one, and is refused where unsafe") {
  auto make = [](bool inplace, bool after_sigmoid) {
    Sequential<float> net;
    net.add("conv", Conv2d<float>(2, 4, 3, 1, 1));
    if (after_sigmoid) net.add("sigmoid", Sigmoid<float>());
    net.add("leaky", LeakyReLU<float>(0.1, inplace));
    net.add("pool", MaxPool2d<float>(2));
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(4 * 3 * 3, 5));
    net.reset_parameters(3);
    return net;
  };
  Tensor<float> x({3, 2, 6, 6});
  Rng rng(4);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  Tensor<float> dy({3, 5});
  for (float& v : dy) v = rng.uniform(-1.0f, 1.0f);
  auto copying = make(false, false), in_place = make(true, false);
  const Tensor<float> y0 = copying.forward(x, kTrain).clone();
  const Tensor<float> dx0 = copying.backward(dy).clone();
  const Tensor<float> y1 = in_place.forward(x, kTrain).clone();
  const Tensor<float> dx1 = in_place.backward(dy).clone();
  CHECK(std::memcmp(y0.data(), y1.data(), sizeof(float) * y0.size()) == 0);
  CHECK(std::memcmp(dx0.data(), dx1.data(), sizeof(float) * dx0.size()) == 0);
  for (std::size_t i = 0; i < copying.parameters().size(); ++i) {
    const auto& a = *copying.parameters()[i].grad;
    const auto& b = *in_place.parameters()[i].grad;
    CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0);
  }
  // Over a Sigmoid's output, which the Sigmoid's backward reads: refused.
  auto unsafe = make(true, true);
  CHECK_ERROR(unsafe.forward(x, kTrain), "leaky (LeakyReLU)", "works in place", "sigmoid (Sigmoid)",
              "LeakyReLU(negative_slope, false)");
}

TEST_CASE("bad arguments are refused with the layer and the numbers") {
  CHECK_ERROR(LeakyReLU<float>(std::numeric_limits<double>::quiet_NaN()), "LeakyReLU",
              "negative_slope must be a finite number", "nan");
  CHECK_ERROR(GELU<float>("fast"), "GELU", "approximate must be 'none' or 'tanh'", "'fast'");
  Softmax<float> softmax(4);
  softmax.set_name("probs");
  CHECK_ERROR(softmax.output_shape({2, 3, 4, 5}), "probs (Softmax)", "dim 4", "rank 4",
              "[2, 3, 4, 5]", "-4 to 3");
  LogSoftmax<float> log_softmax(-3);
  CHECK_ERROR(log_softmax.forward(Tensor<float>({2, 3}), Context{}), "LogSoftmax", "dim -3",
              "rank 2");
  Sigmoid<float> sigmoid;
  sigmoid.forward(Tensor<float>({2, 3}), Context{});
  CHECK_ERROR(sigmoid.backward(Tensor<float>({3, 2})), "Sigmoid", "backward expected dy [2, 3]",
              "got [3, 2]");
  GELU<float> gelu;
  gelu.forward(Tensor<float>({2, 3}), Context{});
  CHECK_ERROR(gelu.backward(Tensor<float>({6})), "GELU", "[2, 3]", "[6]");
}

TEST_CASE("softmax along another axis equals softmax of the transposed tensor") {
  // Softmax(dim 2) of [2, 3, 4] against Softmax(dim 1) of its [2, 4, 3] transpose:
  // the same numbers through the other layout (planes against rows).
  Tensor<double> x({2, 3, 4}), xt({2, 4, 3});
  Rng rng(5);
  for (double& v : x) v = rng.uniform(-3.0, 3.0);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int j = 0; j < 4; ++j) xt(n, j, c) = x(n, c, j);
  Softmax<double> along2(2), along1(1);
  const Tensor<double>& y = along2.forward(x, Context{});
  const Tensor<double>& yt = along1.forward(xt, Context{});
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int j = 0; j < 4; ++j) CHECK(y(n, c, j) == doctest::Approx(yt(n, j, c)).epsilon(1e-15));
  double total = 0;
  for (int j = 0; j < 4; ++j) total += y(1, 2, j);
  CHECK(total == doctest::Approx(1.0).epsilon(1e-15));
}

}  // namespace test_activations
