// The general convolution: groups (depthwise included), dilation, KH x KW
// kernels, stride and padding per axis. Its depthwise and general kernels
// against the naive loops and across thread counts, the kernel choice, the
// layer's arguments and errors, and its gradients by finite differences,
// alone and inside planned networks. Parity with PyTorch is in
// test_conv_general_parity.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "minidl/core/rng.hpp"
#include "minidl/kernels/conv2d.hpp"
#include "minidl/kernels/relu.hpp"
#include "minidl/minidl.hpp"
#include "minidl/testing/gradcheck.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_conv_general {

using namespace minidl;
using namespace minidl::kernels;

namespace {

// Every size named, as a reader of a failure wants them.
struct Case {
  const char* what;
  std::int64_t N, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, G;

  Conv2dGeometry geometry() const {
    Conv2dGeometry g;
    g.N = N;
    g.C = C;
    g.H = H;
    g.W = W;
    g.OC = OC;
    g.KH = KH;
    g.KW = KW;
    g.SH = SH;
    g.SW = SW;
    g.PH = PH;
    g.PW = PW;
    g.DH = DH;
    g.DW = DW;
    g.G = G;
    return g;
  }
  Conv2dOptions options() const {
    return Conv2dOptions(C, OC, KH, KW).stride(SH, SW).padding(PH, PW).dilation(DH, DW).groups(G);
  }
  Shape input() const { return Shape{N, C, H, W}; }
};

// The configurations users write: rows longer than a vector (16 floats with
// AVX-512) with a ragged end, odd sizes, batch 1, more samples than two
// weight chunks.
const Case kCases[] = {
    //  what                                  N  C   H   W  OC KH KW SH SW PH PW DH DW  G
    {"groups 2", 3, 4, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    {"depthwise 3x3 pad 1", 2, 5, 11, 21, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5},
    {"depthwise x2, 3x5, stride (2,1), pad (1,2), dil 2", 2, 3, 13, 37, 6, 3, 5, 2, 1, 1, 2, 2, 2,
     3},
    {"depthwise stride 2", 3, 4, 15, 17, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4},
    {"depthwise batch 1, one channel, 1x7", 1, 1, 6, 40, 2, 1, 7, 1, 1, 0, 3, 1, 1, 1},
    {"dilation 2", 2, 3, 10, 20, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1},
    {"3x5, stride (2,1), pad (1,2), batch 1", 1, 3, 9, 11, 5, 3, 5, 2, 1, 1, 2, 1, 1, 1},
    {"groups 2, 5x3, stride (1,2), pad (2,1), dil (2,1)", 5, 4, 12, 9, 4, 5, 3, 1, 2, 2, 1, 2, 1,
     2},
    {"groups 4, 9 samples", 9, 8, 7, 11, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4},
};

template <typename T>
std::vector<T> random_vector(std::int64_t n, std::uint64_t seed) {
  std::vector<T> v(static_cast<std::size_t>(n));
  Rng rng(seed);
  for (T& x : v) x = static_cast<T>(rng.uniform(-1.0, 1.0));
  return v;
}

// NaN counts as an infinite difference (std::max would skip it).
template <typename T>
double max_abs_diff(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    m = std::max(m, d);
  }
  return m;
}

// The same products summed in another order: the difference grows with
// the depth of the sum (inputs are in [-1, 1]).
template <typename T>
double tolerance(std::int64_t depth) {
  return (sizeof(T) == 4 ? 2e-6 : 1e-14) * static_cast<double>(std::max<std::int64_t>(depth, 16));
}

// A case's tensors and the naive loops' answers.
template <typename T>
struct Reference {
  Conv2dGeometry g;
  std::vector<T> x, w, b, dy, y, dx, dw, db;
  explicit Reference(const Conv2dGeometry& geometry) : g(geometry) {
    x = random_vector<T>(g.N * g.C * g.H * g.W, 1);
    w = random_vector<T>(g.weight_size(), 2);
    b = random_vector<T>(g.OC, 3);
    dy = random_vector<T>(g.N * g.OC * g.OH() * g.OW(), 4);
    y.resize(dy.size());
    dx.resize(x.size());
    dw.resize(w.size());
    db.resize(b.size());
    conv2d_forward_naive(g, x.data(), w.data(), b.data(), y.data());
    conv2d_backward_data_naive(g, dy.data(), w.data(), dx.data());
    conv2d_backward_weights_naive(g, x.data(), dy.data(), dw.data(), db.data());
  }
};

// Runs the three passes of kernel k; outputs and scratch start as NaN, so
// that an element a kernel forgets to write, or scratch it reads before
// writing, fails.
template <typename T>
struct Run {
  std::vector<T> y, y_relu, dx, dw, db;
  Run(ConvKernel k, const Reference<T>& r) {
    const Conv2dGeometry& g = r.g;
    const T nan = std::numeric_limits<T>::quiet_NaN();
    std::vector<T> workspace(static_cast<std::size_t>(conv2d_workspace_size<T>(g)), nan);
    std::vector<T> partials(static_cast<std::size_t>(conv2d_weight_partials_size<T>(g)), nan);
    y.assign(r.y.size(), nan);
    y_relu.assign(r.y.size(), nan);
    dx.assign(r.dx.size(), nan);
    dw.assign(r.dw.size(), nan);
    db.assign(r.db.size(), nan);
    conv2d_forward_run(k, g, r.x.data(), r.w.data(), r.b.data(), y.data(), workspace.data());
    conv2d_forward_run(k, g, r.x.data(), r.w.data(), r.b.data(), y_relu.data(), workspace.data(),
                       true);
    conv2d_backward_data_run(k, g, r.dy.data(), r.w.data(), dx.data(), workspace.data());
    conv2d_backward_weights_run(k, g, r.x.data(), r.dy.data(), dw.data(), db.data(),
                                partials.data());
  }
};

// Analytic and numeric gradients agree to ~1e-9 in double with h = 1e-6; a
// wrong backward is off by O(1).
constexpr double kGradTolerance = 1e-6;

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace

TEST_CASE_TEMPLATE("the depthwise and general kernels match the naive loops", T, float, double) {
  for (const Case& c : kCases) {
    INFO(std::string(c.what));
    const Reference<T> r(c.geometry());
    const Conv2dGeometry& g = r.g;
    const double forward_tol = tolerance<T>(g.group_col_rows()),
                 weights_tol = tolerance<T>(g.N * g.OH() * g.OW()),
                 data_tol = tolerance<T>(g.group_out() * g.KH * g.KW);
    std::vector<T> relu_of_y = r.y;
    relu_forward(static_cast<std::int64_t>(relu_of_y.size()), relu_of_y.data(), relu_of_y.data());

    // The general kernels take every case.
    const Run<T> general(ConvKernel::General, r);
    CHECK(max_abs_diff(general.y, r.y) <= forward_tol);
    CHECK(max_abs_diff(general.y_relu, relu_of_y) <= forward_tol);
    CHECK(max_abs_diff(general.dx, r.dx) <= data_tol);
    CHECK(max_abs_diff(general.dw, r.dw) <= weights_tol);
    CHECK(max_abs_diff(general.db, r.db) <= weights_tol);

    if (!conv2d_depthwise_applies(g)) continue;
    // Forward and backward-data add in the naive loops' order, but whether
    // a product and its sum become one fused multiply-add is the compiler's
    // choice on each side: a bound of a rounding per tap, not equality.
    const Run<T> depthwise(ConvKernel::Depthwise, r);
    CHECK(max_abs_diff(depthwise.y, r.y) <= forward_tol);
    CHECK(max_abs_diff(depthwise.y_relu, relu_of_y) <= forward_tol);
    CHECK(max_abs_diff(depthwise.dx, r.dx) <= data_tol);
    CHECK(max_abs_diff(depthwise.dw, r.dw) <= weights_tol);
    CHECK(max_abs_diff(depthwise.db, r.db) <= weights_tol);
  }
}

TEST_CASE_TEMPLATE("the depthwise and general kernels give the same bits with 1, 2 and 3 threads",
                   T, float, double) {
  const int saved = num_threads();
  for (const Case& c : kCases) {
    INFO(std::string(c.what));
    const Reference<T> r(c.geometry());
    for (ConvKernel k : {ConvKernel::General, ConvKernel::Depthwise}) {
      if (k == ConvKernel::Depthwise && !conv2d_depthwise_applies(r.g)) continue;
      CAPTURE(conv_kernel_name(k));
      set_num_threads(1);
      const Run<T> one(k, r);
      for (int threads : {2, 3}) {
        CAPTURE(threads);
        set_num_threads(threads);
        const Run<T> more(k, r);
        CHECK(same_bits(one.y, more.y));
        CHECK(same_bits(one.y_relu, more.y_relu));
        CHECK(same_bits(one.dx, more.dx));
        CHECK(same_bits(one.dw, more.dw));
        CHECK(same_bits(one.db, more.db));
      }
    }
  }
  set_num_threads(saved);
}

TEST_CASE("the kernel choice: classic kernels for the square case, depthwise, general") {
  // The square case gets exactly what the classic choosers give.
  const Conv2dShape mnist_conv2{64, 32, 14, 14, 64, 3, 3, 1, 1};
  const Conv2dKernels square = conv2d_kernels_for<float>(mnist_conv2);
  CHECK(square.forward == conv2d_forward_kernel<float>(mnist_conv2));
  CHECK(square.backward_data == conv2d_backward_data_kernel<float>(mnist_conv2));
  CHECK(square.backward_weights == conv2d_backward_weights_kernel<float>(mnist_conv2));
  // Stride 2 with 3 input channels: the direct forward (which the shape sweep
  // finds about twice as fast as im2col there), and for the input gradient,
  // whose direct tile would be mostly padding with 3 channels, the rows
  // kernel where input rows of 15 are a vector wide (AVX2's 8 floats), else
  // im2col (AVX-512's 16).
  const Conv2dShape strided{8, 3, 15, 15, 8, 3, 3, 2, 1};
  CHECK(conv2d_kernels_for<float>(strided).forward == ConvKernel::Direct);
  CHECK(conv2d_kernels_for<float>(strided).backward_data ==
        (Simd<float>::width <= 15 ? ConvKernel::Rows : ConvKernel::Im2col));
  // LeNet-5's conv1 (1 -> 6 channels, 5x5): the rows kernel in both its passes where 6
  // channels fill half a vector or less (AVX-512), so that a tile's lanes hold pixels.
  const Conv2dKernels lenet1 = conv2d_kernels_for<float>(Conv2dShape{64, 1, 28, 28, 6, 5, 5, 1, 2});
  CHECK(lenet1.forward == (2 * 6 <= Simd<float>::width ? ConvKernel::Rows : ConvKernel::Direct));
  CHECK(lenet1.backward_weights == ConvKernel::Rows);
  // Weight gradients of few input channels go to the rows kernel at stride 1 on rows a vector
  // wide, 3x3 to 7x7, and at stride 2 or on narrower rows where the channels would fill at
  // most half of a direct tile's lanes (with AVX-512, 1 to 4 of its 8). So LeNet-5's conv2 (6
  // -> 16, 5x5, rows of 10) stays direct with AVX-512, two taps of 6 channels a vector.
  const Conv2dShape rgb3{64, 3, 28, 28, 16, 3, 3, 1, 1}, rgb5{64, 3, 28, 28, 16, 5, 5, 1, 2},
      rgb7{64, 3, 28, 28, 16, 7, 7, 1, 3}, rgb3_stride2{64, 3, 28, 28, 16, 3, 3, 2, 1},
      lenet2{64, 6, 14, 14, 16, 5, 5, 1, 0};
  CHECK(conv2d_backward_weights_kernel<float>(rgb3) == ConvKernel::Rows);
  CHECK(conv2d_backward_weights_kernel<float>(rgb5) == ConvKernel::Rows);
  CHECK(conv2d_backward_weights_kernel<float>(rgb7) == ConvKernel::Rows);
  const Conv2dShape one_to_six{64, 1, 28, 28, 6, 5, 5, 2, 2},
      two_to_16{64, 2, 28, 28, 16, 7, 7, 2, 3}, three_to_six{64, 3, 28, 28, 6, 3, 3, 2, 1},
      one_to_16{64, 1, 56, 56, 16, 5, 5, 2, 2}, six_to_16{64, 6, 28, 28, 16, 5, 5, 2, 2};
  CHECK(conv2d_backward_weights_kernel<float>(one_to_six) == ConvKernel::Rows);
  CHECK(conv2d_backward_weights_kernel<float>(two_to_16) == ConvKernel::Rows);
  CHECK(conv2d_backward_weights_kernel<float>(one_to_16) == ConvKernel::Rows);
  CHECK(conv2d_backward_weights_kernel<float>(six_to_16) == ConvKernel::Direct);
  if (Simd<float>::width == 16) {
    CHECK(conv2d_backward_weights_kernel<float>(rgb3_stride2) == ConvKernel::Rows);
    CHECK(conv2d_backward_weights_kernel<float>(three_to_six) == ConvKernel::Rows);
    CHECK(conv2d_backward_weights_kernel<float>(lenet2) == ConvKernel::Direct);
  }
  // Winograd's F(4x4, 3x3) for the forward pass and input gradient of 3x3 "same" convolutions
  // of 16 or more input channels into a vector (AVX-512: 16) or more of output channels, on
  // planes of any size; direct otherwise. F(2x2, 3x3) for the weight gradient where C OC / (C
  // + OC) is above 16 on rows of 7 tiles or more, F(4x4, 3x3) for the other ones up to 64
  // channels (16 into 16 on rows of 7 tiles or more). Each row: the shape, then the forward,
  // input-gradient and weight-gradient kernels.
  struct Choice {
    Conv2dShape s;
    ConvKernel forward, backward_data, backward_weights;
  };
  const ConvKernel D = ConvKernel::Direct, Wg = ConvKernel::Winograd, W4 = ConvKernel::Winograd4;
  const Choice choices[] = {
      // ResNet-20's three stages: 16 channels at 28x28 (7 tiles a row), 32 and 64.
      {{128, 16, 28, 28, 16, 3, 3, 1, 1}, W4, W4, W4},
      {{128, 32, 14, 14, 32, 3, 3, 1, 1}, W4, W4, W4},
      {{128, 64, 7, 7, 64, 3, 3, 1, 1}, W4, W4, W4},
      // 16 into 16 at 14x14 (4 tiles a row) and at batch 1: the same choice at any batch.
      {{64, 16, 14, 14, 16, 3, 3, 1, 1}, W4, W4, D},
      {{1, 16, 28, 28, 16, 3, 3, 1, 1}, W4, W4, W4},
      // The MNIST CNN's conv2 (the plan keeps its forward direct before the max pool).
      {{64, 32, 14, 14, 64, 3, 3, 1, 1}, W4, W4, Wg},
      // 64 into 64 at 14x14 and 28x28, 128 into 128 at 14x14; at 7x7 (4 tiles a row), F(4x4,
      // 3x3) up to 64 channels.
      {{64, 64, 14, 14, 64, 3, 3, 1, 1}, W4, W4, Wg},
      {{64, 64, 28, 28, 64, 3, 3, 1, 1}, W4, W4, Wg},
      {{64, 128, 14, 14, 128, 3, 3, 1, 1}, W4, W4, Wg},
      {{64, 32, 7, 7, 64, 3, 3, 1, 1}, W4, W4, W4},
      {{64, 128, 7, 7, 128, 3, 3, 1, 1}, W4, W4, D},
      // 16 into 32 at 14x14: the input gradient sums 32 channels into 16.
      {{64, 16, 14, 14, 32, 3, 3, 1, 1}, W4, W4, W4},
      // 6 input channels: too few to sum, and too few outputs for the input gradient; the
      // weight gradient puts pixels in its lanes.
      {{64, 6, 28, 28, 32, 3, 3, 1, 1}, D, ConvKernel::Im2col, ConvKernel::Rows},
      // 8 output channels, less than a vector.
      {{64, 32, 14, 14, 8, 3, 3, 1, 1}, D, D, D},
  };
  if (Simd<float>::width == 16)
    for (const Choice& c : choices) {
      CAPTURE(c.s.C);
      CAPTURE(c.s.OC);
      CAPTURE(c.s.H);
      const Conv2dKernels k = conv2d_kernels_for<float>(c.s);
      CHECK(k.forward == c.forward);
      CHECK(k.backward_data == c.backward_data);
      CHECK(k.backward_weights == c.backward_weights);
    }
  CHECK(conv2d_forward_kernel<float>(Conv2dShape{64, 32, 14, 14, 64, 3, 3, 1, 0}) !=
        ConvKernel::Winograd4);
  CHECK(conv2d_backward_weights_kernel<float>(Conv2dShape{64, 32, 14, 14, 64, 3, 3, 1, 0}) !=
        ConvKernel::Winograd);
  CHECK(conv_kernel_applies<float>(ConvKernel::Winograd, ConvPass::BackwardWeights,
                                   Conv2dShape{64, 32, 14, 14, 64, 3, 3, 1, 1}));
  const Conv2dKernels down =
      conv2d_kernels_for<float>(Conv2dShape{128, 16, 28, 28, 32, 3, 3, 2, 1});
  CHECK(down.forward == ConvKernel::Direct);
  CHECK(down.backward_data == ConvKernel::Direct);
  CHECK(down.backward_weights == ConvKernel::Direct);
  // Its 1x1 projection runs the pointwise products forward, and for its input gradient where
  // their stores between the zeros are vectorized (else the direct kernel by phases, three of
  // them zeros).
  const Conv2dKernels projection =
      conv2d_kernels_for<float>(Conv2dShape{128, 16, 28, 28, 32, 1, 1, 2, 0});
  CHECK(projection.forward == ConvKernel::Pointwise);
  CHECK(projection.backward_data ==
        (kernels::detail::kStoreEveryOtherVectorized ? ConvKernel::Pointwise : ConvKernel::Direct));
  // The second projection (32 -> 64 from 14x14) keeps the direct input gradient at batch 128,
  // and takes the pointwise one for a single image; so does 16 -> 32 from 14x14 at any batch,
  // but not 16 -> 16 from 56x56 at batch 64.
  const ConvKernel strided_data =
      kernels::detail::kStoreEveryOtherVectorized ? ConvKernel::Pointwise : ConvKernel::Direct;
  CHECK(conv2d_backward_data_kernel<float>(Conv2dShape{128, 32, 14, 14, 64, 1, 1, 2, 0}) ==
        ConvKernel::Direct);
  CHECK(conv2d_backward_data_kernel<float>(Conv2dShape{1, 32, 14, 14, 64, 1, 1, 2, 0}) ==
        strided_data);
  CHECK(conv2d_backward_data_kernel<float>(Conv2dShape{64, 16, 14, 14, 32, 1, 1, 2, 0}) ==
        strided_data);
  CHECK(conv2d_backward_data_kernel<float>(Conv2dShape{64, 16, 56, 56, 16, 1, 1, 2, 0}) ==
        ConvKernel::Direct);
  // At stride 1 with 16 channels at 56x56 the pointwise products serve one image only.
  const Conv2dKernels wide_one =
      conv2d_kernels_for<float>(Conv2dShape{1, 16, 56, 56, 16, 1, 1, 1, 0});
  CHECK(wide_one.forward == ConvKernel::Pointwise);
  CHECK(wide_one.backward_data == ConvKernel::Pointwise);
  const Conv2dKernels wide_batch =
      conv2d_kernels_for<float>(Conv2dShape{64, 16, 56, 56, 16, 1, 1, 1, 0});
  CHECK(wide_batch.forward == ConvKernel::Direct);
  CHECK(wide_batch.backward_data == ConvKernel::Direct);

  for (const Case& c : kCases) {
    INFO(std::string(c.what));
    const Conv2dGeometry g = c.geometry();
    const ConvKernel want = g.G == g.C ? ConvKernel::Depthwise : ConvKernel::General;
    const Conv2dKernels k = conv2d_kernels_for<float>(g);
    CHECK(k.forward == want);
    CHECK(k.backward_data == want);
    CHECK(k.backward_weights == want);
    CHECK_FALSE(conv2d_forward_passes_planes(k.forward));
  }
}

TEST_CASE("a kernel refuses a convolution it does not take") {
  std::vector<float> buf(1 << 16);
  float* p = buf.data();
  Conv2dGeometry grouped = kCases[0].geometry();  // groups 2
  CHECK_THROWS_AS(conv2d_forward_run(ConvKernel::Direct, grouped, p, p, p, p, p), Error);
  CHECK_THROWS_AS(conv2d_forward_run(ConvKernel::Depthwise, grouped, p, p, p, p, p), Error);
  CHECK_THROWS_AS(conv2d_backward_data_run(ConvKernel::Im2col, grouped, p, p, p, p), Error);
  CHECK_THROWS_AS(conv2d_backward_weights_run(ConvKernel::Rows, grouped, p, p, p, p, p), Error);
  // The classic kernels' own preconditions: rows need stride 1 for the
  // forward pass and 1 or 2 for the gradients, direct stride 1 or 2 in
  // every pass.
  const Conv2dShape strided{2, 3, 15, 15, 8, 3, 3, 2, 1}, stride3{2, 3, 15, 15, 8, 3, 3, 3, 1};
  CHECK_THROWS_WITH_AS(conv2d_forward_with(ConvKernel::Direct, stride3, p, p, p, p, p),
                       doctest::Contains("the direct kernel does not take kernel 3x3, stride 3"),
                       Error);
  CHECK_THROWS_AS(conv2d_backward_weights_with(ConvKernel::Direct, stride3, p, p, p, p, p), Error);
  CHECK_THROWS_WITH_AS(conv2d_backward_data_with(ConvKernel::Direct, stride3, p, p, p, p),
                       doctest::Contains("the direct kernel does not take kernel 3x3, stride 3"),
                       Error);
  CHECK_THROWS_AS(conv2d_backward_weights_with(ConvKernel::Rows, stride3, p, p, p, p, p), Error);
  CHECK_THROWS_AS(conv2d_forward_with(ConvKernel::Rows, strided, p, p, p, p, p), Error);
  CHECK_THROWS_AS(conv2d_backward_data_with(ConvKernel::Rows, stride3, p, p, p, p), Error);
  const Conv2dShape big_pad{2, 3, 15, 15, 8, 3, 3, 1, 3};  // pad > kernel - 1
  CHECK_THROWS_AS(conv2d_forward_with(ConvKernel::Direct, big_pad, p, p, p, p, p), Error);
  const Conv2dShape narrow{2, 1, 6, 6, 8, 3, 3, 1, 1};  // rows narrower than a vector
  if (Simd<float>::width > 6)
    CHECK_THROWS_AS(conv2d_forward_with(ConvKernel::Rows, narrow, p, p, p, p, p), Error);
  if (Simd<float>::width > 12)  // and its weight gradient rows of less than half a vector
    CHECK_THROWS_AS(conv2d_backward_weights_with(ConvKernel::Rows, narrow, p, p, p, p, p), Error);
}

TEST_CASE("Conv2d takes PyTorch's arguments: shapes, description, errors") {
  Conv2d<float> conv(Conv2dOptions(4, 6, 3, 5).stride(2, 1).padding(1, 2).dilation(2).groups(2));
  CHECK(conv.weight().shape() == Shape{6, 2, 3, 5});
  CHECK(conv.bias().shape() == Shape{6});
  CHECK(conv.describe() == "4 -> 6, kernel 3x5, stride (2, 1), pad (1, 2), dilation 2, groups 2");
  // H: (13 + 2 - 2*2 - 1) / 2 + 1 = 6; W: (17 + 4 - 2*4 - 1) / 1 + 1 = 13.
  CHECK(conv.output_shape(Shape{2, 4, 13, 17}) == Shape{2, 6, 6, 13});
  Conv2d<float> depthwise(Conv2dOptions(8, 8, 3).padding(1).groups(8).bias(false));
  CHECK(depthwise.weight().shape() == Shape{8, 1, 3, 3});
  CHECK(depthwise.parameters().size() == 1);
  // The classic constructor and its description are unchanged.
  Conv2d<float> classic(1, 32, 3, 1, 1);
  CHECK(classic.describe() == "1 -> 32, kernel 3, stride 1, pad 1");
  CHECK(classic.weight().shape() == Shape{32, 1, 3, 3});

  CHECK_THROWS_WITH_AS(Conv2d<float>(Conv2dOptions(4, 6, 0)), doctest::Contains("kernel 0"), Error);
  CHECK_THROWS_WITH_AS(Conv2d<float>(Conv2dOptions(4, 6, 3).padding(1, -1)),
                       doctest::Contains("padding (1, -1)"), Error);
  CHECK_THROWS_WITH_AS(Conv2d<float>(Conv2dOptions(4, 6, 3).dilation(0)),
                       doctest::Contains("dilation 0"), Error);
  CHECK_THROWS_WITH_AS(Conv2d<float>(Conv2dOptions(4, 6, 3).stride(1, 0)),
                       doctest::Contains("stride (1, 0)"), Error);
  CHECK_THROWS_WITH_AS(
      Conv2d<float>(Conv2dOptions(4, 6, 3).groups(4)),
      doctest::Contains("groups 4 must divide both in_channels 4 and out_channels 6"), Error);
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(4, 6, 3).groups(0)), Error);

  // A dilated kernel that does not fit names the layer and the sizes.
  Sequential<float> net;
  net.add("dil", Conv2d<float>(Conv2dOptions(1, 2, 3).dilation(3)));
  CHECK_THROWS_WITH_AS(net.output_shape(Shape{1, 1, 6, 9}),
                       doctest::Contains("dil (Conv2d): input [1, 1, 6, 9] is smaller than the "
                                         "kernel 3x3 (7x7 dilated) with padding 0"),
                       Error);
  CHECK(net.output_shape(Shape{1, 1, 7, 9}) == Shape{1, 2, 1, 3});
}

TEST_CASE("Conv2d's initial weights follow PyTorch: bound 1/sqrt(in/groups * KH * KW)") {
  Conv2d<double> conv(Conv2dOptions(6, 6, 3, 5).groups(3));
  Rng rng(5);
  conv.reset_parameters(rng);
  const double bound = 1.0 / std::sqrt(2.0 * 3 * 5);
  double largest = 0;
  for (double v : conv.weight()) largest = std::max(largest, std::fabs(v));
  CHECK(largest <= bound);
  CHECK(largest > 0.9 * bound);  // 180 draws: one of them comes this close
}

TEST_CASE("Conv2d's gradients match finite differences in double, in every configuration") {
  for (const Case& c : kCases) {
    INFO(std::string(c.what));
    for (bool bias : {true, false}) {
      CAPTURE(bias);
      Conv2d<double> conv(c.options().bias(bias));
      Rng rng(7);
      conv.reset_parameters(rng);
      // One sample: the loss then sums few enough outputs that its rounding
      // stays well below the finite differences' resolution (sums over the
      // batch are checked in the network cases below and against PyTorch).
      // The convolution is linear in its input and weights, so a step of 1e-4
      // has no truncation error and a hundredth of 1e-6's rounding noise,
      // which came within 2x of the bound with other compilers' rounding.
      const Shape input{1, c.C, c.H, c.W};
      const auto result = minidl::testing::check_layer_gradients(
          conv, minidl::testing::random_tensor(input, 9), Context{Mode::Train, 0}, 99, 1e-4);
      INFO(result.report());
      CHECK(result.input.checked > 0);
      CHECK(result.params.size() == (bias ? 2u : 1u));
      CHECK(result.worst() < kGradTolerance);
    }
  }
}

TEST_CASE("Conv2d inside a planned network: gradients right and the same bits for every plan") {
  // check_layer_in_network puts a convolution with 3 output channels before
  // the layer, and a 2x2 max-pool after it.
  struct InNetwork {
    const char* what;
    Conv2dOptions options;
    Shape input;
  };
  const InNetwork cases[] = {
      {"depthwise", Conv2dOptions(3, 3, 3).padding(1).groups(3), Shape{2, 2, 9, 12}},
      {"depthwise x2, batch 1", Conv2dOptions(3, 6, 3, 5).padding(1, 2).groups(3),
       Shape{1, 1, 8, 10}},
      {"dilation 2", Conv2dOptions(3, 4, 3).padding(2).dilation(2), Shape{2, 1, 8, 9}},
      {"3x5, stride (2,1), pad (1,2)", Conv2dOptions(3, 4, 3, 5).stride(2, 1).padding(1, 2),
       Shape{1, 2, 11, 9}},
  };
  for (const auto& c : cases) {
    INFO(std::string(c.what));
    const auto result =
        minidl::testing::check_layer_in_network([&] { return Conv2d<double>(c.options); }, c.input);
    INFO(result.report());
    CHECK(result.option_sets == 9);
    CHECK(result.same_bits);
    CHECK(result.worst < kGradTolerance);
  }
}

namespace {

// A network of general convolutions where the plan fuses around them: a
// depthwise convolution reading the input, its in-place ReLU (stored by the
// convolution when fold_relu is on) and a pool; a grouped dilated
// convolution, a ReLU and a pool; then a linear layer.
Graph<double> grouped_network(PlanOptions options, bool input_grad) {
  Graph<double> net;
  net.add("dw", Conv2d<double>(Conv2dOptions(2, 4, 3).padding(1).groups(2)));
  net.add("relu1", ReLU<double>(true));  // in place: stored by "dw" when fold_relu is on
  net.add("pool1", MaxPool2d<double>(2));
  net.add("grouped",
          Conv2d<double>(
              Conv2dOptions(4, 6, 3, 5).padding(2, 2).dilation(2, 1).stride(1, 2).groups(2)));
  net.add("relu2", ReLU<double>(true));
  net.add("pool2", MaxPool2d<double>(2));
  net.add("flatten", Flatten<double>());
  net.add("fc", Linear<double>(6 * 2 * 1, 3));
  net.reset_parameters(3);
  net.set_plan_options(options);
  net.set_input_grad(input_grad);
  return net;
}

}  // namespace

TEST_CASE("a network of grouped and depthwise convolutions: every plan gives the same bits") {
  const Shape shape{3, 2, 10, 12};
  const Tensor<double> x0 = minidl::testing::random_tensor(shape, 4);
  const PlanOptions option_sets[] = {{true, true, true},
                                     {false, false, false},
                                     {false, true, true},
                                     {true, false, true},
                                     {true, true, false}};
  std::vector<double> reference;
  for (const PlanOptions& options : option_sets) {
    Graph<double> net = grouped_network(options, true);
    Tensor<double> x = x0.clone();
    const Tensor<double> R = minidl::testing::random_tensor(net.output_shape(shape), 5);
    const Context ctx{Mode::Train, 1};
    auto loss = [&] {
      const Tensor<double>& y = net.forward(x, ctx);
      double s = 0;
      for (std::int64_t i = 0; i < y.size(); ++i) s += y[i] * R[i];
      return s;
    };
    std::vector<double> bits;
    for (double v : net.forward(x, ctx)) bits.push_back(v);
    const Tensor<double> dx = net.backward(R).clone();
    for (double v : dx) bits.push_back(v);
    std::vector<Tensor<double>> grads;
    for (auto& p : net.parameters()) {
      grads.push_back(p.grad->clone());
      for (double v : *p.grad) bits.push_back(v);
    }
    CAPTURE(options.fold_relu);
    CAPTURE(options.pass_planes);
    CAPTURE(options.share_buffers);
    const auto input = minidl::testing::compare_with_finite_differences(x, dx, loss, "input");
    CHECK_MESSAGE(input.max_rel_error < kGradTolerance, input.worst);
    std::size_t i = 0;
    for (auto& p : net.parameters()) {
      const auto r =
          minidl::testing::compare_with_finite_differences(*p.value, grads[i++], loss, p.name);
      CHECK_MESSAGE(r.max_rel_error < kGradTolerance, p.name << ": " << r.worst);
    }
    if (reference.empty()) reference = bits;
    CHECK(same_bits(bits, reference));
  }
}

TEST_CASE("the plan summary names the depthwise and general kernels") {
  Graph<double> net = grouped_network(PlanOptions{}, false);
  const std::string s = net.summary(Shape{3, 2, 10, 12});
  INFO(s);
  CHECK(s.find("depthwise/none/depthwise") != std::string::npos);
  CHECK(s.find("general/general/general") != std::string::npos);
  CHECK(s.find("stores max(y, 0)") != std::string::npos);  // the ReLU folded into "dw"
  CHECK(s.find("groups 2") != std::string::npos);
}

}  // namespace test_conv_general
