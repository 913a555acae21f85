// Pooling and Identity: AvgPool2d, AdaptiveAvgPool2d, MaxPool2d with any window, Identity.
// Fast kernels against their naive twins (bits where the order of the sums is the same),
// 1 thread against 2 (bits), small cases worked out by hand, backward passes against
// finite differences in double (alone and inside planned networks), the plan's fusions,
// and the errors a user sees.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "minidl/kernels/adaptive_avgpool2d.hpp"
#include "minidl/kernels/avgpool2d.hpp"
#include "minidl/kernels/maxpool2d.hpp"
#include "minidl/kernels/relu.hpp"
#include "minidl/minidl.hpp"
#include "minidl/testing/gradcheck.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_pooling {

using namespace minidl;
using namespace minidl::kernels;
using namespace minidl::testing;

namespace {

// Analytic and numeric gradients agree to ~1e-9 in double; a wrong backward is off by O(1).
constexpr double kTolerance = 1e-6;
const Context kTrain{Mode::Train, 7};

template <typename T>
std::vector<T> random_values(std::int64_t n, std::uint64_t seed) {
  std::vector<T> v(static_cast<std::size_t>(n));
  Rng rng(seed);
  for (T& x : v) x = static_cast<T>(rng.uniform(-1.0, 1.0));
  return v;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <typename T>
double max_rel_diff(const std::vector<T>& a, const std::vector<T>& b) {
  double diff = 0, scale = 1e-300;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

// A few roundings of the unit in the last place: sums of up to ~100 terms in another order.
template <typename T>
double order_tolerance() {
  return sizeof(T) == 4 ? 2e-6 : 4e-15;
}

// Runs f() with 1 thread and with 2 and restores the count.
template <typename F>
void with_threads(int n, F&& f) {
  const int saved = num_threads();
  set_num_threads(n);
  f();
  set_num_threads(saved);
}

Pool2dShape windows(std::int64_t planes, std::int64_t H, std::int64_t W, Pool2dArg k, Pool2dArg s,
                    Pool2dArg p, Pool2dArg d = 1, bool ceil_mode = false) {
  return {planes, pool_axis(H, k.h, s.h, p.h, d.h, ceil_mode),
          pool_axis(W, k.w, s.w, p.w, d.w, ceil_mode)};
}

// Average-pooling shapes users meet: odd sizes, stride 2, padding, per-axis sizes, ceil mode.
std::vector<Pool2dShape> avg_shapes() {
  return {windows(6, 28, 28, 2, 2, 0),
          windows(5, 7, 9, 2, 2, 0),
          windows(4, 14, 14, 3, 2, 1),
          windows(3, 7, 7, 3, 1, 1),
          windows(3, 9, 8, {3, 2}, {2, 1}, {1, 0}),
          windows(2, 7, 7, 3, 2, 1, 1, true),
          windows(2, 6, 11, 2, {2, 3}, {1, 0}, 1, true),
          windows(3, 33, 35, 5, 3, 2),
          windows(1, 1, 1, 1, 1, 0)};
}

}  // namespace

// ---- The window geometry -------------------------------------------------------------------

TEST_CASE("pool windows: PyTorch's output sizes, and the taps and windows inside the input") {
  // (H + 2p - d(k-1) - 1) / s + 1, floor or ceil; a ceil window starting in the padding dropped.
  CHECK(pool_output_size(28, 2, 2, 0, 1, false) == 14);
  CHECK(pool_output_size(7, 2, 2, 0, 1, false) == 3);
  CHECK(pool_output_size(7, 2, 2, 0, 1, true) == 4);
  CHECK(pool_output_size(28, 3, 2, 1, 1, false) == 14);
  CHECK(pool_output_size(6, 3, 2, 1, 1, true) == 4);  // the last window starts at 5: kept
  CHECK(pool_output_size(5, 2, 2, 1, 1, true) == 3);  // a fourth would start at 5, in the padding
  CHECK(pool_output_size(9, 3, 1, 0, 2, false) == 5);
  CHECK(pool_output_size(2, 3, 1, 0, 1, false) == 0);
  const PoolAxis a = pool_axis(7, 3, 2, 1);  // windows start at -1, 1, 3, 5
  REQUIRE(a.out == 4);
  CHECK(a.first_tap(0) == 1);
  CHECK(a.end_tap(0) == 3);
  CHECK(a.end_tap(3) == 2);  // taps at 5, 6 (7 is padding)
  CHECK(a.first_out(0) == 1);
  CHECK(a.end_out(2) == 3);  // tap 2 of window 3 is 7
  CHECK(a.inside(0) == 2);
  CHECK(a.inside_padded(0) == 3);
  const PoolAxis c = pool_axis(6, 3, 2, 1, 1, true);  // ceil: the last window 5..7, cut at 6 + 1
  REQUIRE(c.out == 4);
  CHECK(c.inside_padded(3) == 2);
  CHECK(c.inside(3) == 1);
}

// ---- AvgPool2d -------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("avgpool2d: fast kernels give the naive loops' bits, with 1 or 2 threads", T,
                   float, double) {
  for (const Pool2dShape& s : avg_shapes())
    for (const bool include_pad : {true, false}) {
      CAPTURE(s.H());
      CAPTURE(s.W());
      CAPTURE(s.h.k);
      CAPTURE(include_pad);
      const std::int64_t in = s.planes * s.H() * s.W(), out = s.planes * s.OH() * s.OW();
      const auto x = random_values<T>(in, 1), dy = random_values<T>(out, 2);
      std::vector<T> y_ref(static_cast<std::size_t>(out)), dx_ref(static_cast<std::size_t>(in));
      avgpool2d_forward_naive(s, include_pad, x.data(), y_ref.data());
      avgpool2d_backward_naive(s, include_pad, dy.data(), dx_ref.data());
      for (const int threads : {1, 2})
        with_threads(threads, [&] {
          std::vector<T> y(y_ref.size(), T(7)), dx(dx_ref.size(), T(7));
          avgpool2d_forward(s, include_pad, x.data(), y.data());
          avgpool2d_backward(s, include_pad, dy.data(), dx.data());
          CAPTURE(threads);
          CHECK(same_bits(y, y_ref));
          CHECK(same_bits(dx, dx_ref));
        });
    }
}

TEST_CASE("avgpool2d: a 3x3 window, stride 2, padding 1 on a 3x3 plane, by hand") {
  // x = 1..9; windows centred on (0,0), (0,2), (2,0), (2,2): each holds 4 elements.
  const Pool2dShape s = windows(1, 3, 3, 3, 2, 1);
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<double> y(4), y_fast(4);
  avgpool2d_forward_naive(s, true, x.data(), y.data());  // divided by 9, padding counted
  CHECK(y == std::vector<double>{12.0 / 9, 16.0 / 9, 24.0 / 9, 28.0 / 9});
  avgpool2d_forward_naive(s, false, x.data(), y.data());  // divided by 4
  CHECK(y == std::vector<double>{3, 4, 6, 7});
  avgpool2d_forward(s, false, x.data(), y_fast.data());
  CHECK(y_fast == y);
  // The centre element lies in all four windows: its gradient is the sum of dy / 4.
  const std::vector<double> dy = {4, 8, 12, 16};
  std::vector<double> dx(9), dx_fast(9);
  avgpool2d_backward_naive(s, false, dy.data(), dx.data());
  CHECK(dx == std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4});
  avgpool2d_backward(s, false, dy.data(), dx_fast.data());
  CHECK(dx_fast == dx);
}

TEST_CASE("avgpool2d in ceil mode: the last window is cut where the padded input ends") {
  // H = W = 3, k 2, s 2, no padding, ceil: windows 0-1 and 2 (one column past the input).
  const Pool2dShape s = windows(1, 3, 3, 2, 2, 0, 1, true);
  REQUIRE(s.OH() == 2);
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<double> y(4);
  avgpool2d_forward_naive(s, true, x.data(), y.data());  // PyTorch: 3, 4.5, 7.5, 9
  CHECK(y == std::vector<double>{3, 4.5, 7.5, 9});
}

TEST_CASE("gradcheck: AvgPool2d in the shapes users use") {
  struct Case {
    Shape in;
    Pool2dArg k, s, p;
    bool ceil, include_pad;
  };
  const Case cases[] = {{{2, 3, 4, 4}, 2, 2, 0, false, true},
                        {{1, 2, 7, 7}, 3, 2, 1, false, true},
                        {{1, 2, 7, 7}, 3, 2, 1, false, false},
                        {{2, 1, 5, 6}, 3, 1, 1, false, false},
                        {{1, 2, 9, 8}, {3, 2}, {2, 1}, {1, 0}, false, true},
                        {{1, 2, 7, 7}, 3, 2, 1, true, true},
                        {{1, 2, 7, 6}, 2, 2, 1, true, false},
                        {{3, 1, 5, 5}, 5, 1, 2, false, false}};
  for (const Case& c : cases) {
    CAPTURE(c.in.str());
    AvgPool2d<double> pool(c.k, c.s, c.p, c.ceil, c.include_pad);
    const auto r = check_layer_gradients(pool, random_tensor(c.in, 3), kTrain);
    INFO(r.report());
    CHECK(r.input.checked > 0);
    CHECK(r.worst() < kTolerance);
  }
}

// ---- AdaptiveAvgPool2d -----------------------------------------------------------------------

TEST_CASE_TEMPLATE("adaptive avgpool2d: fast kernels against the naive loops, 1 or 2 threads", T,
                   float, double) {
  const AdaptivePool2dShape shapes[] = {{6, 7, 7, 3, 3},   {5, 5, 5, 2, 2},   {4, 7, 5, 3, 2},
                                        {3, 8, 8, 4, 4},   {3, 14, 14, 7, 7}, {4, 6, 9, 3, 3},
                                        {2, 3, 3, 5, 4},   {7, 7, 7, 1, 1},   {5, 5, 3, 1, 1},
                                        {3, 28, 28, 1, 1}, {2, 1, 1, 1, 1},   {2, 9, 9, 1, 2}};
  for (const AdaptivePool2dShape& s : shapes) {
    CAPTURE(s.H);
    CAPTURE(s.W);
    CAPTURE(s.OH);
    CAPTURE(s.OW);
    const std::int64_t in = s.planes * s.H * s.W, out = s.planes * s.OH * s.OW;
    const auto x = random_values<T>(in, 4), dy = random_values<T>(out, 5);
    std::vector<T> y_ref(static_cast<std::size_t>(out)), dx_ref(static_cast<std::size_t>(in));
    adaptive_avgpool2d_forward_naive(s, x.data(), y_ref.data());
    adaptive_avgpool2d_backward_naive(s, dy.data(), dx_ref.data());
    // Global pooling sums in another order and divides by H*W at once (as PyTorch's mean).
    const bool global = s.OH == 1 && s.OW == 1;
    std::vector<T> first_y, first_dx;
    for (const int threads : {1, 2})
      with_threads(threads, [&] {
        std::vector<T> y(y_ref.size(), T(7)), dx(dx_ref.size(), T(7));
        adaptive_avgpool2d_forward(s, x.data(), y.data());
        adaptive_avgpool2d_backward(s, dy.data(), dx.data());
        CAPTURE(threads);
        if (global) {
          CHECK(max_rel_diff(y, y_ref) <= order_tolerance<T>());
          CHECK(max_rel_diff(dx, dx_ref) <= order_tolerance<T>());
        } else {
          CHECK(same_bits(y, y_ref));
          CHECK(same_bits(dx, dx_ref));
        }
        if (first_y.empty()) {
          first_y = y;
          first_dx = dx;
        } else {
          CHECK(same_bits(y, first_y));
          CHECK(same_bits(dx, first_dx));
        }
      });
  }
}

TEST_CASE("adaptive avgpool2d: PyTorch's overlapping bins, 5 -> 3 by hand") {
  // Bins of 5 over 3: [0, 2), [1, 4), [3, 5); rows and columns alike.
  const AdaptivePool2dShape s{1, 5, 5, 3, 3};
  std::vector<double> x(25);
  for (int i = 0; i < 25; ++i) x[static_cast<std::size_t>(i)] = i;  // x[h][w] = 5h + w
  std::vector<double> y(9);
  adaptive_avgpool2d_forward_naive(s, x.data(), y.data());
  // The mean of 5h + w over a bin is 5 mean(h) + mean(w); bin means 0.5, 2, 3.5.
  const double m[] = {0.5, 2, 3.5};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) CHECK(y[static_cast<std::size_t>(3 * i + j)] == 5 * m[i] + m[j]);
  const std::vector<double> dy(9, 1.0);
  std::vector<double> dx(25);
  adaptive_avgpool2d_backward_naive(s, dy.data(), dx.data());
  // Element (2, 2) lies in the middle bin only (3x3: 1/9); (1, 1) in bins 0 and 1 of each axis.
  CHECK(dx[12] == doctest::Approx(1.0 / 9));
  CHECK(dx[6] == doctest::Approx((0.5 + 1.0 / 3) * (0.5 + 1.0 / 3)));
}

TEST_CASE("gradcheck: AdaptiveAvgPool2d, bins that divide and bins that do not") {
  struct Case {
    Shape in;
    std::int64_t oh, ow;
  };
  const Case cases[] = {{{2, 3, 7, 7}, 3, 3}, {{1, 2, 5, 5}, 2, 2}, {{2, 2, 7, 5}, 3, 2},
                        {{1, 3, 8, 8}, 4, 4}, {{3, 2, 7, 7}, 1, 1}, {{1, 2, 5, 3}, 1, 1},
                        {{1, 1, 3, 3}, 5, 4}};
  for (const Case& c : cases) {
    CAPTURE(c.in.str());
    AdaptiveAvgPool2d<double> pool(c.oh, c.ow);
    const auto r = check_layer_gradients(pool, random_tensor(c.in, 6), kTrain);
    INFO(r.report());
    CHECK(r.input.checked > 0);
    CHECK(r.worst() < kTolerance);
  }
}

// ---- MaxPool2d with any window -----------------------------------------------------------------

TEST_CASE_TEMPLATE("maxpool2d, any window: fast kernels give the naive loops' bits", T, float,
                   double) {
  const Pool2dShape shapes[] = {windows(4, 28, 28, 3, 2, 1),
                                windows(3, 7, 7, 3, 2, 1),
                                windows(3, 9, 8, {3, 2}, {2, 1}, {1, 0}),
                                windows(2, 9, 9, 3, 1, 1, 2),
                                windows(2, 7, 7, 2, 2, 1),
                                windows(2, 7, 7, 3, 2, 0, 1, true),
                                windows(2, 8, 8, 2, 2, 0, 1, true),
                                windows(2, 5, 6, 5, {1, 2}, 2),
                                windows(3, 14, 14, 2, 1, 0)};
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (const Pool2dShape& s : shapes) {
    CAPTURE(s.H());
    CAPTURE(s.W());
    CAPTURE(s.h.k);
    CAPTURE(s.h.p);
    const std::int64_t in = s.planes * s.H() * s.W(), out = s.planes * s.OH() * s.OW();
    auto x = random_values<T>(in, 7);
    for (std::int64_t i = 0; i < in; i += 5) x[i] = x[i / 2];  // ties
    for (std::int64_t i = 0; i < in; i += 37) x[i] = T(0);
    for (std::int64_t i = 1; i < in; i += 37) x[i] = -T(0);  // -0 ties with 0
    x[0] = nan;                                              // a NaN first in its windows
    x[static_cast<std::size_t>(s.W() + 1)] = nan;            // a NaN elsewhere
    const auto dy = random_values<T>(out, 8);
    std::vector<T> y_ref(static_cast<std::size_t>(out)), dx_ref(static_cast<std::size_t>(in));
    std::vector<std::int32_t> argmax(static_cast<std::size_t>(out));
    maxpool2d_forward_naive(s, x.data(), y_ref.data(), argmax.data());
    maxpool2d_backward_naive(s, dy.data(), argmax.data(), dx_ref.data());
    // A ReLU before the pool, its backward folded in: the pool's backward then the ReLU's.
    std::vector<T> xr(x.size()), yr(y_ref.size()), pool_grad(x.size()), folded_ref(x.size());
    relu_forward_naive(in, x.data(), xr.data());
    maxpool2d_forward_naive(s, xr.data(), yr.data(), argmax.data());
    maxpool2d_backward_naive(s, dy.data(), argmax.data(), pool_grad.data());
    relu_backward_naive(in, xr.data(), pool_grad.data(), folded_ref.data());
    for (const int threads : {1, 2})
      with_threads(threads, [&] {
        CAPTURE(threads);
        std::vector<T> y(y_ref.size(), T(7)), dx(dx_ref.size(), T(7));
        maxpool2d_forward(s, x.data(), y.data());
        CHECK(same_bits(y, y_ref));  // NaN and -0 too
        maxpool2d_backward(s, x.data(), dy.data(), dx.data());
        CHECK(same_bits(dx, dx_ref));
        std::vector<T> inplace = x;  // dx written over x
        maxpool2d_backward(s, inplace.data(), dy.data(), inplace.data());
        CHECK(same_bits(inplace, dx_ref));
        std::vector<T> folded(x.size(), T(7));
        maxpool2d_backward(s, xr.data(), dy.data(), folded.data(), true);
        CHECK(same_bits(folded, folded_ref));
      });
  }
}

TEST_CASE("maxpool2d: ties go to the first maximum in row-major order, as in PyTorch") {
  // One 3x3 window (stride 1, padding 1 makes 3x3 outputs over a 3x3 plane): all equal but one.
  const Pool2dShape s = windows(1, 3, 3, 3, 1, 1);
  const std::vector<double> x = {1, 5, 5, 5, 2, 5, 0, 5, 5};
  std::vector<double> y(9), y_fast(9);
  std::vector<std::int32_t> argmax(9);
  maxpool2d_forward_naive(s, x.data(), y.data(), argmax.data());
  // Window (0,0) holds x[0,1], x[1,0] (5s) first at index 1; window (2,0) holds rows 1-2,
  // columns 0-1: 5, 2, 0, 5 -> the 5 at index 3.
  CHECK(argmax[0] == 1);
  CHECK(argmax[6] == 3);
  CHECK(argmax[4] == 1);  // the centre window sees the whole plane
  const std::vector<double> dy = {1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8};
  std::vector<double> dx(9), dx_fast(9);
  maxpool2d_backward_naive(s, dy.data(), argmax.data(), dx.data());
  maxpool2d_forward(s, x.data(), y_fast.data());
  maxpool2d_backward(s, x.data(), dy.data(), dx_fast.data());
  CHECK(y_fast == y);
  CHECK(dx_fast == dx);
  // Winners: windows of rows 0 and 1 -> index 1, (2,0) and (2,1) -> 3, (2,2) -> 5.
  CHECK(dx ==
        std::vector<double>{0, 1 + 10 + 100 + 1000 + 1e4 + 1e5, 0, 1e6 + 1e7, 0, 1e8, 0, 0, 0});
}

TEST_CASE("gradcheck: MaxPool2d with padding, per-axis windows, dilation, ceil mode") {
  struct Case {
    Shape in;
    Pool2dArg k, s, p, d;
    bool ceil;
  };
  const Case cases[] = {{{2, 3, 7, 7}, 3, 2, 1, 1, false},
                        {{1, 2, 6, 6}, 3, 2, 1, 1, false},
                        {{1, 2, 9, 8}, {3, 2}, {2, 1}, {1, 0}, 1, false},
                        {{1, 2, 9, 9}, 3, 1, 1, 2, false},
                        {{2, 1, 7, 7}, 3, 2, 0, 1, true},
                        {{1, 2, 7, 6}, 2, 2, 1, 1, true},
                        {{3, 1, 5, 5}, 2, 1, 0, 1, false}};
  for (const Case& c : cases) {
    CAPTURE(c.in.str());
    MaxPool2d<double> pool(c.k, c.s, c.p, c.d, c.ceil);
    const auto r = check_layer_gradients(pool, distinct_values(c.in, 9), kTrain);
    INFO(r.report());
    CHECK(r.input.checked > 0);
    CHECK(r.worst() < kTolerance);
  }
}

// ---- Identity -------------------------------------------------------------------------------

TEST_CASE("Identity: the output is the input's storage, dy passes through") {
  Identity<double> id;
  CHECK(id.output_aliases_input());
  CHECK_FALSE(id.backward_reads_output());
  const Tensor<double> x = random_tensor({2, 3, 4, 5}, 10);
  const Tensor<double>& y = id.forward(x, kTrain);
  CHECK(y.data() == x.data());
  CHECK(y.shape() == x.shape());
  const Tensor<double> dy = random_tensor({2, 3, 4, 5}, 11);
  const Tensor<double>& dx = id.backward(dy);
  CHECK(dx.data() == dy.data());
  const auto r = check_layer_gradients(id, random_tensor({3, 7}, 12), kTrain);
  INFO(r.report());
  CHECK(r.worst() < kTolerance);
}

// ---- Inside planned networks -------------------------------------------------------------------

namespace {
void expect_ok(const NetworkGradCheck& r) {
  INFO(r.report());
  CHECK(r.option_sets == 9);
  CHECK(r.same_bits);
  CHECK(r.worst < kTolerance);
}

// Finite differences run a network hundreds of times on tiny tensors, where starting the
// thread team costs more than the work (on a busy machine, far more): one thread. The
// kernels' bits do not depend on it (checked above with 1 and 2 threads).
struct OneThread {
  int saved = num_threads();
  OneThread() { set_num_threads(1); }
  ~OneThread() { set_num_threads(saved); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;
};

// Every option set of the plan on a network: the same bits, and gradients that match finite
// differences (loss = cross-entropy of the output).
template <typename Build>
void check_every_plan(Build build, const Shape& shape, std::uint64_t seed) {
  const OneThread one_thread;
  const PlanOptions sets[] = {{true, true, true},
                              {false, false, false},
                              {false, true, true},
                              {true, false, true},
                              {true, true, false}};
  std::vector<double> reference;
  for (const PlanOptions& options : sets) {
    CAPTURE(options.fold_relu);
    CAPTURE(options.pass_planes);
    CAPTURE(options.share_buffers);
    Graph<double> net;
    build(net);
    net.reset_parameters(seed);
    net.set_plan_options(options);
    net.set_input_grad(true);
    Tensor<double> x = random_tensor(shape, seed + 1);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(shape[0]));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);
    CrossEntropyLoss<double> loss;
    auto f = [&]() { return loss.forward(net.forward(x, kTrain), labels.data()); };
    std::vector<double> bits = {f()};
    const Tensor<double> dx = net.backward(loss.backward()).clone();
    bits.insert(bits.end(), dx.begin(), dx.end());
    std::vector<Tensor<double>> grads;
    for (auto& p : net.parameters()) {
      grads.push_back(p.grad->clone());
      bits.insert(bits.end(), p.grad->begin(), p.grad->end());
    }
    auto r = compare_with_finite_differences(x, dx, f, "input");
    INFO(r.worst);
    CHECK(r.max_rel_error < kTolerance);
    std::size_t i = 0;
    for (auto& p : net.parameters()) {
      auto rp = compare_with_finite_differences(*p.value, grads[i++], f, p.name);
      INFO(rp.worst);
      CHECK(rp.max_rel_error < kTolerance);
    }
    if (reference.empty())
      reference = bits;
    else
      CHECK(same_bits(bits, reference));
  }
}
}  // namespace

TEST_CASE("gradcheck inside a planned network: the pooling layers and Identity") {
  const OneThread one_thread;
  const Shape shape{2, 1, 5, 5};
  expect_ok(check_layer_in_network([] { return AvgPool2d<double>(3, 1, 1); }, shape));
  expect_ok(check_layer_in_network([] { return AvgPool2d<double>(3, 1, 1, false, false); }, shape));
  expect_ok(check_layer_in_network([] { return AvgPool2d<double>(2, 1, 1, true, false); }, shape));
  expect_ok(check_layer_in_network([] { return AdaptiveAvgPool2d<double>(5, 4); }, shape));
  expect_ok(check_layer_in_network([] { return MaxPool2d<double>(3, 1, 1); }, shape));
  expect_ok(check_layer_in_network([] { return MaxPool2d<double>({3, 2}, 1, {1, 0}); }, shape));
  expect_ok(check_layer_in_network([] { return Identity<double>(); }, shape));
}

TEST_CASE("a ReLU before a padded 3x3 max-pool: its backward folds in, no planes, same bits") {
  auto build = [](Graph<double>& net) {
    net.add("conv", Conv2d<double>(2, 3, 3, 1, 1));
    net.add("relu", ReLU<double>(true));
    net.add("pool", MaxPool2d<double>(3, 2, 1));
    net.add("flatten", Flatten<double>());
    net.add("fc", Linear<double>(3 * 3 * 3, 3));
  };
  Graph<double> net;
  build(net);
  const Shape shape{2, 2, 5, 5};
  const Plan& plan = net.plan(shape);
  CHECK(plan.nodes[2].relu_in_backward);  // the pool does the ReLU's backward
  CHECK(plan.nodes[1].skip_backward);
  CHECK(plan.nodes[0].relu_in_store);
  CHECK(plan.nodes[0].planes_to < 0);  // planes are for 2x2 windows with stride 2 only
  CHECK_FALSE(plan.nodes[2].fed_planes);
  CHECK_FALSE(plan.nodes[2].defer_input_grad);
  CHECK(plan.nodes[2].overwrite_input);  // the general kernel finds the winners, then writes
  check_every_plan(build, shape, 50);
}

TEST_CASE("a 2x2 max-pool with stride 2 but padding or ceil mode gets no planes") {
  // conv -> in-place ReLU -> pool on 8x8 planes: the shape where the plain 2x2 pool gets them.
  auto build = [](Pool2dArg padding, bool ceil) {
    return [=](Graph<double>& net) {
      net.add("conv", Conv2d<double>(1, 2, 3, 1, 1));
      net.add("relu", ReLU<double>(true));
      net.add("pool", MaxPool2d<double>(2, 2, padding, 1, ceil));
      net.add("flatten", Flatten<double>());
      const std::int64_t side = padding.h ? 5 : 4;
      net.add("fc", Linear<double>(2 * side * side, 3));
    };
  };
  const Shape shape{2, 1, 8, 8};
  Graph<double> plain;
  build(0, false)(plain);
  plain.set_input_grad(false);
  REQUIRE(plain.plan(shape).nodes[0].planes_to == 2);
  REQUIRE(plain.plan(shape).nodes[2].fed_planes);
  for (const bool ceil : {false, true}) {
    CAPTURE(ceil);
    Graph<double> net;
    build(ceil ? 0 : 1, ceil)(net);
    net.set_input_grad(false);
    const Plan& plan = net.plan(shape);
    CHECK(plan.nodes[0].planes_to < 0);
    CHECK(plan.nodes[0].grad_planes_from < 0);
    CHECK_FALSE(plan.nodes[2].fed_planes);
    CHECK_FALSE(plan.nodes[2].defer_input_grad);
  }
  check_every_plan(build(1, false), shape, 80);  // padded: gradients and bits under every plan
}

TEST_CASE("a 5x5 convolution's weight gradient from a 2x2 max-pool's planes (LeNet-5's conv1)") {
  auto build = [](Graph<double>& net) {
    net.add("conv", Conv2d<double>(1, 3, 5, 1, 2));
    net.add("relu", ReLU<double>(true));
    net.add("pool", MaxPool2d<double>(2));
    net.add("flatten", Flatten<double>());
    net.add("fc", Linear<double>(3 * 4 * 4, 3));
  };
  const Shape shape{2, 1, 8, 8};
  Graph<double> net;
  build(net);
  net.set_input_grad(false);
  const Plan& plan = net.plan(shape);
  CHECK(plan.nodes[0].planes_to == 2);
  CHECK(plan.nodes[0].grad_planes_from == 2);
  check_every_plan(build, shape, 90);
}

TEST_CASE("global average pooling ends a network: gradients and bits under every plan") {
  check_every_plan(
      [](Graph<double>& net) {
        net.add("conv1", Conv2d<double>(1, 3, 3, 1, 1));
        net.add("relu1", ReLU<double>(true));
        net.add("pool", AvgPool2d<double>(2));
        net.add("conv2", Conv2d<double>(3, 4, 3, 1, 1));
        net.add("relu2", ReLU<double>(false));
        net.add("gap", AdaptiveAvgPool2d<double>(1));
        net.add("flatten", Flatten<double>());
        net.add("fc", Linear<double>(4, 3));
      },
      {2, 1, 5, 5}, 60);
}

TEST_CASE("Identity as the skip branch of a residual block: gradients, and a skip's bits") {
  auto build = [](bool identity) {
    return [identity](Graph<double>& net) {
      net.add("conv1", Conv2d<double>(2, 3, 3, 1, 1));
      net.add("relu1", ReLU<double>(false));
      net.add("conv2", Conv2d<double>(3, 3, 3, 1, 1));
      if (identity) net.add("shortcut", Identity<double>(), "relu1");
      net.add("add", Add<double>(), "conv2", identity ? "shortcut" : "relu1");
      net.add("relu2", ReLU<double>(true));
      net.add("pool", MaxPool2d<double>(2));
      net.add("flatten", Flatten<double>());
      net.add("fc", Linear<double>(3 * 2 * 2, 3));
    };
  };
  check_every_plan(build(true), {2, 2, 5, 5}, 70);
  // The same block with the skip reading relu1 directly: the same bits.
  std::vector<double> out[2];
  for (const bool identity : {true, false}) {
    Graph<double> net;
    build(identity)(net);
    net.reset_parameters(70);
    net.set_input_grad(true);
    const Tensor<double> x = random_tensor({2, 2, 5, 5}, 71);
    const Tensor<double>& y = net.forward(x, kTrain);
    auto& bits = out[identity ? 0 : 1];
    bits.assign(y.begin(), y.end());
    const Tensor<double>& dx = net.backward(random_tensor(y.shape(), 72));
    bits.insert(bits.end(), dx.begin(), dx.end());
    for (auto& p : net.parameters()) bits.insert(bits.end(), p.grad->begin(), p.grad->end());
  }
  CHECK(same_bits(out[0], out[1]));
}

TEST_CASE(
    "the plan sees through Identity: an in-place ReLU after it may not overwrite a shared value") {
  Graph<float> net;
  net.add("conv", Conv2d<float>(1, 2, 3, 1, 1));
  net.add("shortcut", Identity<float>());
  net.add("relu", ReLU<float>(true));  // would write over conv's output, which "add" reads too
  net.add("add", Add<float>(), "relu", "conv");
  CHECK_ERROR(net.plan({1, 1, 4, 4}), "relu (ReLU)", "in place", "'conv'");
}

// ---- Errors -----------------------------------------------------------------------------------

TEST_CASE("pooling layers name themselves and the numbers in their errors") {
  CHECK_ERROR(AvgPool2d<float>(0), "AvgPool2d", "kernel 0");
  CHECK_ERROR(AvgPool2d<float>(3, -1), "AvgPool2d", "stride -1");
  CHECK_ERROR(AvgPool2d<float>(3, 1, -1), "AvgPool2d", "padding -1");
  CHECK_ERROR(AvgPool2d<float>(3, 1, 2), "AvgPool2d", "padding 2", "half the kernel size 3");
  CHECK_ERROR(MaxPool2d<float>(Pool2dArg{2, 0}), "MaxPool2d", "kernel 2x0");
  CHECK_ERROR(MaxPool2d<float>(3, 1, 0, 0), "MaxPool2d", "dilation 0");
  CHECK_ERROR(MaxPool2d<float>(2, 2, 2), "MaxPool2d", "padding 2", "kernel size 2");
  CHECK_ERROR(AdaptiveAvgPool2d<float>(0, 3), "AdaptiveAvgPool2d", "output size 0x3");

  Sequential<float> net;
  net.add("pool", AvgPool2d<float>(5));
  CHECK_ERROR(net.output_shape({1, 1, 4, 4}), "pool (AvgPool2d)", "[1, 1, 4, 4]", "window 5");
  Sequential<float> max;
  max.add("mp", MaxPool2d<float>(2, 1, 1, 3));  // taps -1 and 2 of a 2-high input: none inside
  CHECK_ERROR(max.output_shape({1, 1, 2, 9}), "mp (MaxPool2d)", "[1, 1, 2, 9]",
              "wholly in the padding");
  CHECK_ERROR(max.output_shape({1, 9, 9}), "mp (MaxPool2d)", "[N, C, H, W]");
  Sequential<float> gap;
  gap.add("gap", AdaptiveAvgPool2d<float>(1));
  CHECK_ERROR(gap.output_shape({4, 8}), "gap (AdaptiveAvgPool2d)", "[N, C, H, W]", "[4, 8]");

  Identity<float> id;
  id.set_name("skip");
  const Tensor<float> x({2, 3});
  id.forward(x, kTrain);
  CHECK_ERROR(id.backward(Tensor<float>({3, 2})), "skip (Identity)", "[2, 3]", "[3, 2]");
  AvgPool2d<float> avg(2);
  avg.forward(Tensor<float>({1, 1, 4, 4}), kTrain);
  CHECK_ERROR(avg.backward(Tensor<float>({1, 1, 3, 3})), "AvgPool2d", "[1, 1, 2, 2]");
}

TEST_CASE("the plan summary describes the pooling layers") {
  Sequential<float> net;
  net.add("avg", AvgPool2d<float>(3, 2, 1, true, false));
  net.add("max", MaxPool2d<float>({3, 2}, 1, {1, 0}, 2));
  net.add("gap", AdaptiveAvgPool2d<float>(1));
  net.add("id", Identity<float>());
  const std::string s = net.summary({1, 2, 15, 15});
  INFO(s);
  CHECK(s.find("AvgPool2d(kernel 3, stride 2, pad 1, ceil mode, padding not counted)") !=
        std::string::npos);
  CHECK(s.find("MaxPool2d(kernel 3x2, stride 1, pad 1x0, dilation 2)") != std::string::npos);
  CHECK(s.find("AdaptiveAvgPool2d(output 1x1)") != std::string::npos);
  CHECK(s.find("[1, 2, 1, 1]") != std::string::npos);
}

}  // namespace test_pooling
