// Every layer's backward pass against finite differences, in double precision.
//
// Adding a layer? Two checks (minidl/testing/gradcheck.hpp), as for SiLU below:
//   expect_ok(check_layer_gradients(layer, random_tensor(shape, seed), kTrain));
//   expect_ok(check_layer_in_network([] { return MyLayer<double>(); }, shape));
// and for a merge, check_merge_in_network([] { return MyMerge<double>(); }, shape).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"
#include "minidl/testing/gradcheck.hpp"
// The "Your own layer" example of docs/guide.md, the layer and its checks, as written there.
#include "my_layers/silu_check.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_gradcheck {

using namespace minidl;
using namespace minidl::testing;

// Analytic and numeric gradients agree to ~1e-9 in double with h = 1e-6; a
// wrong backward is off by O(1). 1e-6 separates the two by three decades.
constexpr double kTolerance = 1e-6;

namespace {
const Context kTrain{Mode::Train, 7};

void expect_ok(const LayerGradCheck& r) {
  INFO(r.report());
  CHECK(r.input.checked > 0);
  CHECK(r.worst() < kTolerance);
}

void expect_ok(const NetworkGradCheck& r) {
  INFO(r.report());
  CHECK(r.option_sets == 9);
  CHECK(r.same_bits);
  CHECK(r.worst < kTolerance);
}

// tanh written by a user: backward reads the output. `declared` is what it
// tells the plan pass about that; only true is honest.
template <typename T>
class UserTanh : public Layer<T> {
 public:
  explicit UserTanh(bool declared = true) : declared_(declared) {}
  std::string type() const override { return "UserTanh"; }
  Shape output_shape(const Shape& in) const override { return in; }
  bool backward_reads_output() const override { return declared_; }
  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    y_.resize(x.shape());
    for (std::int64_t i = 0; i < x.size(); ++i) y_[i] = std::tanh(x[i]);
    return y_;
  }
  const Tensor<T>& backward(const Tensor<T>& dy) override {
    dx_.resize(dy.shape());
    for (std::int64_t i = 0; i < dy.size(); ++i) dx_[i] = dy[i] * (1 - y_[i] * y_[i]);
    return dx_;
  }

 private:
  bool declared_;
  Tensor<T> y_, dx_;
};

// The elementwise maximum of two inputs, written by a user: backward finds
// the winner by comparing the first input with the output, so it reads the
// output. `declared` is what it tells the plan pass; only the default
// (true) is honest.
template <typename T>
class UserMaximum : public Merge<T> {
 public:
  UserMaximum() = default;
  explicit UserMaximum(bool declared) : declared_(declared) {}
  std::string type() const override { return "UserMaximum"; }
  Shape output_shape(const std::vector<Shape>& in) const override { return in[0]; }
  bool backward_reads_output() const override {
    return declared_ ? Merge<T>::backward_reads_output() : false;
  }
  const Tensor<T>& forward(const std::vector<const Tensor<T>*>& xs) override {
    a_ = *xs[0];
    y_.resize(a_.shape());
    for (std::int64_t i = 0; i < y_.size(); ++i) y_[i] = std::max((*xs[0])[i], (*xs[1])[i]);
    return y_;
  }
  const std::vector<Tensor<T>>& backward(const Tensor<T>& dy) override {
    d_.resize(2);
    for (auto& d : d_) d.resize(dy.shape());
    for (std::int64_t i = 0; i < dy.size(); ++i) {
      const bool first = a_[i] == y_[i];
      d_[0][i] = first ? dy[i] : 0;
      d_[1][i] = first ? 0 : dy[i];
    }
    return d_;
  }

 private:
  bool declared_ = true;
  Tensor<T> a_, y_;
  std::vector<Tensor<T>> d_;
};
}  // namespace

TEST_CASE("gradcheck: Conv2d") {
  struct Case {
    std::int64_t n, c, h, w, oc, k, stride, pad;
  };
  const Case cases[] = {
      {2, 1, 6, 6, 3, 3, 1, 1},      // MNIST conv1 style, padding edges
      {3, 2, 5, 7, 4, 3, 1, 1},      // odd, non-square sizes
      {2, 3, 7, 7, 2, 3, 2, 0},      // stride 2, no padding
      {1, 2, 6, 5, 3, 2, 2, 1},      // even kernel, stride 2 with padding
      {2, 4, 4, 4, 5, 1, 1, 0},      // 1x1 convolution (the pointwise products: rows of 4)
      {2, 6, 7, 7, 9, 1, 2, 0},      // 1x1 at stride 2 (pointwise: gathered, scattered back)
      {2, 9, 7, 6, 3, 3, 2, 1},      // stride 2 with enough channels for the direct input gradient
      {1, 16, 13, 13, 16, 3, 1, 1},  // enough channels and pixels for Winograd (double, AVX-512)
      {5, 33, 3, 13, 33, 3, 1, 1},   // and its weight gradient (33 x 33 / 66 > 16), two chunks
      {6, 17, 5, 6, 17, 3, 1, 1},    // F(4x4, 3x3)'s weight gradient (17 x 17 / 34 < 16), 2 chunks
      {2, 3, 12, 10, 2, 5, 1, 2},    // the rows kernel's input gradient (few input channels)
      {2, 2, 13, 10, 3, 5, 2, 2},    // and at stride 2
      {2, 2, 9, 17, 3, 3, 2, 1},     // the rows kernel's weight gradient at stride 2
  };
  bool direct_stride2 = false, winograd = false, winograd_weights = false, pointwise = false,
       winograd4_weights = false, rows_data = false, rows_data_stride2 = false,
       rows_weights_stride2 = false;
  for (const auto& c : cases) {
    CAPTURE(c.n);
    CAPTURE(c.c);
    CAPTURE(c.h);
    CAPTURE(c.w);
    CAPTURE(c.k);
    CAPTURE(c.stride);
    CAPTURE(c.pad);
    const kernels::Conv2dShape shape{c.n, c.c, c.h, c.w, c.oc, c.k, c.k, c.stride, c.pad};
    direct_stride2 =
        direct_stride2 || (c.stride == 2 && kernels::conv2d_backward_data_kernel<double>(shape) ==
                                                kernels::ConvKernel::Direct);
    winograd =
        winograd ||
        (kernels::conv2d_forward_kernel<double>(shape) == kernels::ConvKernel::Winograd4 &&
         kernels::conv2d_backward_data_kernel<double>(shape) == kernels::ConvKernel::Winograd4);
    winograd_weights = winograd_weights || kernels::conv2d_backward_weights_kernel<double>(shape) ==
                                               kernels::ConvKernel::Winograd;
    winograd4_weights = winograd4_weights || kernels::conv2d_backward_weights_kernel<double>(
                                                 shape) == kernels::ConvKernel::Winograd4;
    pointwise =
        pointwise ||
        (c.stride == 2 &&
         kernels::conv2d_forward_kernel<double>(shape) == kernels::ConvKernel::Pointwise &&
         kernels::conv2d_backward_data_kernel<double>(shape) == kernels::ConvKernel::Pointwise);
    if (kernels::conv2d_backward_data_kernel<double>(shape) == kernels::ConvKernel::Rows)
      (c.stride == 1 ? rows_data : rows_data_stride2) = true;
    rows_weights_stride2 =
        rows_weights_stride2 || (c.stride == 2 && kernels::conv2d_backward_weights_kernel<double>(
                                                      shape) == kernels::ConvKernel::Rows);
    Conv2d<double> conv(c.c, c.oc, c.k, c.stride, c.pad);
    Rng rng(5);
    conv.reset_parameters(rng);
    // Linear in its input and weights: a step of 1e-4 has no truncation error and a hundredth
    // of 1e-6's rounding noise, which the 33-channel case's loss (5,000 outputs) brings within
    // 2x of the bound.
    expect_ok(
        check_layer_gradients(conv, random_tensor({c.n, c.c, c.h, c.w}, 11), kTrain, 99, 1e-4));
  }
  CHECK(direct_stride2);  // the phase-by-phase input gradient is among the cases
  CHECK(pointwise);       // and both pointwise passes at stride 2
  if (kernels::Simd<double>::width == 8) {
    CHECK(winograd);          // both Winograd passes are too,
    CHECK(winograd_weights);  // and both weight gradients
    CHECK(winograd4_weights);
    CHECK(rows_data);
    CHECK(rows_data_stride2);
    CHECK(rows_weights_stride2);
  }
}

TEST_CASE("gradcheck: Linear") {
  for (auto [n, in, out] : {std::array<std::int64_t, 3>{1, 3, 2}, {4, 7, 5}, {5, 33, 17}}) {
    Linear<double> fc(in, out);
    Rng rng(3);
    fc.reset_parameters(rng);
    expect_ok(check_layer_gradients(fc, random_tensor({n, in}, 12), kTrain));
  }
}

TEST_CASE("gradcheck: MaxPool2d (no ties by construction)") {
  for (auto [h, w, k, s] :
       {std::array<std::int64_t, 4>{4, 4, 2, 2}, {7, 5, 2, 2}, {7, 7, 3, 2}, {6, 6, 3, 3}}) {
    MaxPool2d<double> pool(k, s);
    expect_ok(check_layer_gradients(pool, distinct_values({2, 3, h, w}, 13), kTrain));
  }
}

TEST_CASE("gradcheck: ReLU (inputs away from the kink)") {
  ReLU<double> relu;
  expect_ok(check_layer_gradients(relu, away_from_zero({3, 2, 5, 5}, 14), kTrain));
  expect_ok(check_layer_gradients(relu, away_from_zero({4, 9}, 15), kTrain));
}

TEST_CASE("gradcheck: Dropout with its mask frozen by the step") {
  Dropout<double> drop(0.5, 1234);
  // Training: the same step draws the same mask on every forward, so the
  // function being differentiated is x -> x * mask.
  auto r = check_layer_gradients(drop, random_tensor({4, 50}, 16), kTrain);
  expect_ok(r);
  // The mask really drops and scales: some zeros, the rest exactly 1/(1-p).
  int zeros = 0, scaled = 0;
  for (double m : drop.mask()) (m == 0.0 ? zeros : scaled) += (m == 0.0 || m == 2.0) ? 1 : 0;
  CHECK(zeros + scaled == 200);
  CHECK(zeros > 60);
  CHECK(scaled > 60);
  // Evaluation: the identity.
  expect_ok(check_layer_gradients(drop, random_tensor({4, 50}, 17), Context{Mode::Eval, 7}));
}

TEST_CASE("gradcheck: Flatten") {
  Flatten<double> flat;
  expect_ok(check_layer_gradients(flat, random_tensor({3, 2, 3, 4}, 18), kTrain));
}

TEST_CASE("gradcheck: softmax cross-entropy") {
  for (auto [n, k] : {std::array<std::int64_t, 2>{1, 2}, {5, 10}, {7, 3}}) {
    Tensor<double> logits = random_tensor({n, k}, 19);
    for (double& v : logits) v *= 4;  // exercise saturated softmax rows
    std::vector<std::int32_t> labels;
    for (std::int64_t i = 0; i < n; ++i)
      labels.push_back(static_cast<std::int32_t>((i * 7 + 3) % k));
    CrossEntropyLoss<double> loss;
    loss.forward(logits, labels.data());
    const Tensor<double> analytic = loss.backward().clone();
    auto f = [&]() { return CrossEntropyLoss<double>().forward(logits, labels.data()); };
    auto r = compare_with_finite_differences(logits, analytic, f, "logits");
    INFO(r.worst);
    CHECK(r.max_rel_error < kTolerance);
  }
}

TEST_CASE("gradcheck: the MNIST network end to end, all eight parameters") {
  bool inplace = false, fold = false;
  SUBCASE("ReLUs with their own buffers") {
    inplace = false;
  }
  SUBCASE("ReLUs in place") {
    inplace = true;
  }
  SUBCASE("ReLUs with their own buffers, backward folded into the pools") {
    fold = true;
  }
  SUBCASE("ReLUs in place, backward folded into the pools") {
    inplace = fold = true;
  }
  bool defer = false;  // conv1 takes pool1's gradient plane by plane; no input gradient then
  SUBCASE("ReLUs in place and folded, pool1's gradient deferred to conv1") {
    inplace = fold = defer = true;
  }
  CAPTURE(inplace);
  CAPTURE(fold);
  CAPTURE(defer);
  Sequential<double> net;
  net.add("conv1", Conv2d<double>(1, 4, 3, 1, 1));
  net.add("relu1", ReLU<double>(inplace));
  net.add("pool1", MaxPool2d<double>(2));
  net.add("conv2", Conv2d<double>(4, 6, 3, 1, 1));
  net.add("relu2", ReLU<double>(inplace));
  net.add("pool2", MaxPool2d<double>(2));
  net.add("flatten", Flatten<double>());
  net.add("fc1", Linear<double>(6 * 2 * 2, 8));
  net.add("relu3", ReLU<double>(inplace));
  net.add("dropout", Dropout<double>(0.5));
  net.add("fc2", Linear<double>(8, 3));
  net.reset_parameters(21);
  net.set_input_grad(!defer);
  net.set_plan_options({fold, defer, true});
  Tensor<double> x = random_tensor({3, 1, 8, 8}, 22);
  const Plan& plan = net.plan(x.shape());
  CHECK(plan.nodes[1].skip_backward == fold);
  CHECK(plan.nodes[2].defer_input_grad == defer);
  // With in-place ReLUs, or ReLUs whose backward the pools do, the pools
  // write their input gradients over their inputs (unless planes come in).
  CHECK(plan.nodes[2].overwrite_input == ((inplace || fold) && !defer));
  CHECK(plan.nodes[5].overwrite_input == ((inplace || fold) && !defer));
  const std::int32_t labels[] = {0, 2, 1};
  CrossEntropyLoss<double> loss;
  auto f = [&]() { return loss.forward(net.forward(x, kTrain), labels); };
  f();
  const Tensor<double> dx = net.backward(loss.backward()).clone();
  std::vector<Tensor<double>> grads;
  for (auto& p : net.parameters()) grads.push_back(p.grad->clone());
  if (!defer) {
    auto r = compare_with_finite_differences(x, dx, f, "input");
    INFO(r.worst);
    CHECK(r.max_rel_error < kTolerance);
  }
  std::size_t i = 0;
  for (auto& p : net.parameters()) {
    auto rp = compare_with_finite_differences(*p.value, grads[i++], f, p.name);
    INFO(rp.worst);
    CHECK(rp.max_rel_error < kTolerance);
  }
  CHECK(i == 8);
}

// Every parameter and the input of a network against finite differences,
// with the loss cross-entropy(net(x), labels).
void check_network(Graph<double>& net, Tensor<double> x, const std::vector<std::int32_t>& labels) {
  net.set_input_grad(true);
  CrossEntropyLoss<double> loss;
  auto f = [&]() { return loss.forward(net.forward(x, kTrain), labels.data()); };
  f();
  const Tensor<double> dx = net.backward(loss.backward()).clone();
  std::vector<Tensor<double>> grads;
  for (auto& p : net.parameters()) grads.push_back(p.grad->clone());
  auto r = compare_with_finite_differences(x, dx, f, "input");
  INFO(r.worst);
  CHECK(r.max_rel_error < kTolerance);
  std::size_t i = 0;
  for (auto& p : net.parameters()) {
    auto rp = compare_with_finite_differences(*p.value, grads[i++], f, p.name);
    INFO(rp.worst);
    CHECK(rp.max_rel_error < kTolerance);
  }
  CHECK(i > 0);
}

TEST_CASE("gradcheck: a residual network (two 3x3 convolutions and a skip, flatten, linear)") {
  for (const bool fuse : {true, false}) {
    CAPTURE(fuse);
    Graph<double> net;
    net.add("conv1", Conv2d<double>(3, 4, 3, 1, 1), "input");
    net.add("relu1", ReLU<double>(true));
    net.add("conv2", Conv2d<double>(4, 3, 3, 1, 1));
    net.add("add", Add<double>(), "conv2", "input");
    net.add("relu2", ReLU<double>(true));
    net.add("flatten", Flatten<double>());
    net.add("fc", Linear<double>(3 * 5 * 5, 4));
    net.reset_parameters(31);
    net.set_plan_options({fuse, fuse, fuse});
    check_network(net, away_from_zero({2, 3, 5, 5}, 32), {1, 3});
  }
}

TEST_CASE("gradcheck: a concatenation of two branches, one of them read twice") {
  Graph<double> net;
  net.add("a", Conv2d<double>(2, 3, 3, 1, 1), "input");
  net.add("b", Conv2d<double>(2, 2, 1, 1, 0), "input");
  net.add("cat", Concat<double>(), "a", "b", "a");
  net.add("pool", MaxPool2d<double>(2));
  net.add("flatten", Flatten<double>());
  net.add("fc", Linear<double>(8 * 2 * 2, 3));
  net.reset_parameters(41);
  check_network(net, random_tensor({2, 2, 4, 4}, 42), {0, 2});
}

TEST_CASE("gradcheck inside a planned network: built-in layers, a user's tanh, the guide's SiLU") {
  const Shape shape{2, 2, 6, 6};
  expect_ok(check_layer_in_network([] { return ReLU<double>(true); }, shape));
  expect_ok(check_layer_in_network([] { return ReLU<double>(false); }, shape));
  expect_ok(check_layer_in_network([] { return Dropout<double>(0.3, 5); }, shape));
  expect_ok(check_layer_in_network([] { return Conv2d<double>(3, 3, 3, 1, 1); }, shape));
  // A user's layer whose backward reads its output, before a max-pool: the
  // pool must not write its gradient over that output.
  expect_ok(check_layer_in_network([] { return UserTanh<double>(); }, shape));
  // The guide's example, alone and in a network. It lives in the global
  // namespace, beside minidl's own SiLU: ::SiLU names the guide's.
  ::SiLU<double> silu;
  expect_ok(check_layer_gradients(silu, random_tensor({3, 2, 4, 5}, 43), kTrain));
  expect_ok(check_layer_in_network([] { return ::SiLU<double>(); }, shape));
  CHECK(::silu_passes_checks());  // the guide's own checks of it
}

TEST_CASE("check_layer_in_network catches a layer that hides that backward reads its output") {
  const auto r = check_layer_in_network([] { return UserTanh<double>(false); }, {2, 2, 6, 6});
  INFO(r.report());
  CHECK_FALSE(r.same_bits);  // sharing buffers on and off disagree
  CHECK(r.worst > kTolerance);
}

TEST_CASE("gradcheck inside a planned network: merges, built-in and a user's") {
  const Shape shape{2, 2, 6, 6};
  expect_ok(check_merge_in_network([] { return Add<double>(); }, shape));
  expect_ok(check_merge_in_network([] { return Concat<double>(); }, shape));
  // A merge whose backward reads its output, before a max-pool, relying on
  // the default trait: the pool must not write its gradient over that output.
  expect_ok(check_merge_in_network([] { return UserMaximum<double>(); }, shape));
}

TEST_CASE("the plan never writes over the output of a merge whose backward reads it") {
  const Shape in{2, 1, 8, 8};
  auto branches = [](Graph<double>& net) {
    net.add("a", Conv2d<double>(1, 2, 3, 1, 1), "input");
    net.add("b", Conv2d<double>(1, 2, 3, 1, 1), "input");
  };
  Graph<double> user;  // a max-pool after it keeps its gradient to itself
  branches(user);
  user.add("max", UserMaximum<double>(), "a", "b");
  user.add("pool", MaxPool2d<double>(2));
  CHECK_FALSE(user.plan(in).nodes[3].overwrite_input);
  Graph<double> add;  // after an Add, whose backward only copies dy, it may
  branches(add);
  add.add("sum", Add<double>(), "a", "b");
  add.add("pool", MaxPool2d<double>(2));
  CHECK(add.plan(in).nodes[3].overwrite_input);
  Graph<double> inplace;  // an in-place ReLU would write over it in forward: refused, by name
  branches(inplace);
  inplace.add("max", UserMaximum<double>(), "a", "b");
  inplace.add("relu", ReLU<double>(true));
  CHECK_THROWS_WITH_AS(inplace.plan(in),
                       doctest::Contains("relu (ReLU): works in place over the output of max "
                                         "(UserMaximum), whose backward reads it"),
                       Error);
}

TEST_CASE("check_merge_in_network catches a merge that hides that backward reads its output") {
  const auto r = check_merge_in_network([] { return UserMaximum<double>(false); }, {2, 2, 6, 6});
  INFO(r.report());
  CHECK_FALSE(r.same_bits);  // sharing buffers on and off disagree
  CHECK(r.worst > kTolerance);
}

}  // namespace test_gradcheck
