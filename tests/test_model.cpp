// Whole networks: determinism, learning, shape errors, summary.
#include <doctest/doctest.h>

#include <cstring>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_model {

using namespace minidl;

namespace {

// A batch of fake 28x28 images and labels drawn from a seeded stream.
struct Batch {
  Tensor<float> x{16, 1, 28, 28};
  std::vector<std::int32_t> labels = std::vector<std::int32_t>(16);
  explicit Batch(std::uint64_t seed) {
    Rng rng(seed);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    for (auto& l : labels) l = static_cast<std::int32_t>(rng.below(10));
  }
};

// Trains the MNIST CNN for a few Adam steps and returns every parameter's bits.
std::vector<float> train_a_few_steps(int threads, std::uint64_t seed, bool fold_relu = true,
                                     bool pass_planes = true) {
  const int saved = num_threads();
  set_num_threads(threads);
  auto net = make_mnist_cnn<float>(seed);
  net.set_plan_options({fold_relu, pass_planes, true});
  CrossEntropyLoss<float> loss;
  Adam<float> adam(net.parameters());
  for (std::uint64_t s = 0; s < 4; ++s) {
    Batch b(100 + s);
    train_step(net, loss, adam, b.x, b.labels.data());
  }
  set_num_threads(saved);
  std::vector<float> all;
  for (auto& p : net.parameters()) all.insert(all.end(), p.value->begin(), p.value->end());
  return all;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("the MNIST CNN has PyTorch's parameter names and shapes") {
  auto net = make_mnist_cnn<float>(1);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"conv1.weight", "[32, 1, 3, 3]"},  {"conv1.bias", "[32]"},
      {"conv2.weight", "[64, 32, 3, 3]"}, {"conv2.bias", "[64]"},
      {"fc1.weight", "[128, 3136]"},      {"fc1.bias", "[128]"},
      {"fc2.weight", "[10, 128]"},        {"fc2.bias", "[10]"}};
  auto params = net.parameters();
  REQUIRE(params.size() == expected.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    CHECK(params[i].name == expected[i].first);
    CHECK(params[i].value->shape().str() == expected[i].second);
  }
  CHECK(net.num_parameters() == 421642);
  const std::string summary = net.summary({64, 1, 28, 28});
  CHECK(summary.find("[64, 64, 7, 7]") != std::string::npos);
  CHECK(summary.find("total parameters: 421642") != std::string::npos);
  // The plan, printed: per node, the kernels chosen and what was fused.
  const auto line = [&](const std::string& node) {
    const auto at = summary.find("\n" + node + " ", summary.find("plan for input"));
    return at == std::string::npos ? std::string()
                                   : summary.substr(at + 1, summary.find('\n', at + 1) - at - 1);
  };
  CHECK(line("conv1").find("rows/none/rows") != std::string::npos);
  CHECK(line("conv1").find("planes to pool1; dy by planes from pool1") != std::string::npos);
  // F(4x4, 3x3) forward and input gradient, the pool after it notwithstanding; F(2x2, 3x3) for
  // the weight gradient where its rows of 7 tiles fill a two-vector block (AVX-512). On other
  // vector widths, at least the forward kernel a lone Conv2d of that shape takes.
  const std::string conv2_forward = kernels::conv_kernel_name(
      dynamic_cast<Conv2d<float>&>(net.layer("conv2")).kernels_for({64, 32, 14, 14}).forward);
  CHECK(line("conv2").find(kernels::Simd<float>::width == 16
                               ? "winograd4/winograd4/winograd"
                               : conv2_forward + "/") != std::string::npos);
  CHECK(line("relu2").find("forward done by conv2; backward done by pool2") != std::string::npos);

  // The activation memory at batch 64 in float, from the shapes: every buffer
  // the plan keeps, a byte per pool winner and per in-place ReLU's mask element.
  const std::int64_t f = static_cast<std::int64_t>(sizeof(float)), pool1_out = 64 * 32 * 14 * 14,
                     pool2_in = 64 * 64 * 14 * 14, pool2_out = 64 * 64 * 7 * 7, fc1_in = 64 * 3136,
                     fc1_out = 64 * 128, fc2_out = 64 * 10;
  const std::int64_t activation_bytes = pool1_out * f +
                                        pool1_out +  // pool1: output and winners (conv1 has none)
                                        pool2_out * f + pool2_out +  // pool2: output and winners
                                        fc1_out * f +                // fc1 (flatten is a view)
                                        fc1_out +                    // relu3's mask
                                        3 * fc1_out * f +  // dropout: output, input gradient, mask
                                        fc2_out * f +      // fc2
                                        // The input gradients of fc2, fc1, pool2 and conv2 (made in
                                        // that order) in two shared buffers: pool2's goes into
                                        // fc2's, whose reading ended at fc1, as fc1's is read until
                                        // pool2; conv2's into fc1's, as pool2's is read by conv2.
                                        pool2_in * f + pool1_out * f;
  const Plan& plan = net.plan({64, 1, 28, 28});
  REQUIRE(plan.grad_buffers.size() == 2);
  CHECK(plan.grad_buffers[0] == Shape{64, 64, 14, 14});  // pool2_in elements
  CHECK(plan.grad_buffers[1] == Shape{64, 32, 14, 14});  // pool1_out
  CHECK(fc1_in <= pool1_out);
  std::int64_t planned = 0;
  for (const NodePlan& p : plan.nodes) planned += p.output_bytes + p.grad_bytes + p.cache_bytes;
  for (const Shape& buffer : plan.grad_buffers) planned += buffer.numel() * f;
  CHECK(planned == activation_bytes);
  std::ostringstream mb;
  mb << std::fixed << std::setprecision(2) << static_cast<double>(activation_bytes) / 1e6;
  CHECK(summary.find("\nactivation memory (outputs, gradients, masks and winners): " + mb.str() +
                     " MB\n") != std::string::npos);
}

TEST_CASE("initialisation follows PyTorch's bounds: U(+-1/sqrt(fan_in))") {
  auto net = make_mnist_cnn<float>(3);
  for (auto& p : net.parameters()) {
    const double fan_in = p.name.rfind("conv1", 0) == 0   ? 9
                          : p.name.rfind("conv2", 0) == 0 ? 288
                          : p.name.rfind("fc1", 0) == 0   ? 3136
                                                          : 128;
    const double bound = 1.0 / std::sqrt(fan_in);
    float lo = 1e9f, hi = -1e9f;
    for (float v : *p.value) lo = std::min(lo, v), hi = std::max(hi, v);
    CAPTURE(p.name);
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    CHECK(hi - lo > bound);  // spread over the range, not a constant
  }
}

TEST_CASE("the same seed gives bit-identical weights after training; another seed does not") {
  const auto a = train_a_few_steps(1, 42), b = train_a_few_steps(1, 42),
             c = train_a_few_steps(1, 43);
  CHECK(bit_identical(a, b));
  CHECK(!bit_identical(a, c));
}

TEST_CASE("one thread and two threads give bit-identical weights") {
  CHECK(bit_identical(train_a_few_steps(1, 7), train_a_few_steps(2, 7)));
}

// The plan of a network for an input shape, node by node.
template <typename T>
const NodePlan& decided(Graph<T>& net, const Shape& input, const std::string& name) {
  const Plan& plan = net.plan(input);
  for (std::size_t i = 0; i < net.size(); ++i)
    if (net.node_name(i) == name) return plan.nodes[i];
  FAIL("no node " << name);
  throw 0;
}

// The index of a node, by name.
template <typename T>
int node_number(const Graph<T>& net, const std::string& name) {
  for (std::size_t i = 0; i < net.size(); ++i)
    if (net.node_name(i) == name) return static_cast<int>(i);
  FAIL("no node " << name);
  throw 0;
}

TEST_CASE("folding the ReLUs into the convolutions and max-pools changes no bit") {
  auto net = make_mnist_cnn<float>(1);
  const Shape in{64, 1, 28, 28};
  CHECK(decided(net, in, "pool1").relu_in_backward);
  CHECK(decided(net, in, "relu1").skip_backward);
  CHECK(decided(net, in, "relu2").skip_backward);
  CHECK_FALSE(decided(net, in, "relu3").skip_backward);  // dropout follows it, not a pool
  CHECK(decided(net, in, "relu1").skip_forward);         // in place after a convolution...
  CHECK(decided(net, in, "conv1").relu_in_store);
  CHECK(decided(net, in, "relu2").skip_forward);
  CHECK_FALSE(decided(net, in, "relu3").skip_forward);  // ...but its backward still needs its mask
  net.set_plan_options({false, true, true});
  CHECK_FALSE(decided(net, in, "relu1").skip_backward);
  CHECK_FALSE(decided(net, in, "relu1").skip_forward);
  CHECK_FALSE(decided(net, in, "conv1").relu_in_store);
  CHECK(train_a_few_steps(1, 5, true) == train_a_few_steps(1, 5, false));

  // The evaluation outputs too, and a ReLU that is not in place stays unfolded.
  auto a = make_mnist_cnn<float>(3), b = make_mnist_cnn<float>(3);
  b.set_plan_options({false, true, true});
  Tensor<float> x({5, 1, 28, 28});
  Rng rng(4);
  for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  const Tensor<float>& ya = a.forward(x, Context{});
  const Tensor<float>& yb = b.forward(x, Context{});
  CHECK(std::memcmp(ya.data(), yb.data(), static_cast<std::size_t>(ya.size()) * sizeof(float)) ==
        0);
  Sequential<float> copy_relu;
  copy_relu.add("conv", Conv2d<float>(1, 2, 3, 1, 1));
  copy_relu.add("relu", ReLU<float>(false));
  copy_relu.add("pool", MaxPool2d<float>(2));
  CHECK(decided(copy_relu, {2, 1, 8, 8}, "relu").skip_backward);
  CHECK_FALSE(decided(copy_relu, {2, 1, 8, 8}, "relu").skip_forward);
}

TEST_CASE("conv1 and pool1 pass planes instead of whole tensors, changing no bit") {
  auto net = make_mnist_cnn<float>(1);
  const Shape in{64, 1, 28, 28};
  CHECK(decided(net, in, "pool1").defer_input_grad);
  CHECK(decided(net, in, "conv1").grad_planes_from == 2);
  CHECK(decided(net, in, "pool1").fed_planes);
  CHECK(decided(net, in, "conv1").planes_to == 2);
  CHECK_FALSE(decided(net, in, "pool2").defer_input_grad);  // conv2 needs its input gradient
  CHECK(decided(net, in, "pool2").fed_planes);
  net.set_plan_options({true, false, true});
  CHECK_FALSE(decided(net, in, "pool1").defer_input_grad);
  CHECK_FALSE(decided(net, in, "pool1").fed_planes);
  CHECK_FALSE(decided(net, in, "pool2").fed_planes);
  net.set_plan_options({});
  net.set_input_grad(true);  // then conv1 computes an input gradient from dy whole
  CHECK_FALSE(decided(net, in, "pool1").defer_input_grad);
  CHECK(decided(net, in, "pool1").fed_planes);
  CHECK(train_a_few_steps(2, 6, true, true) == train_a_few_steps(2, 6, true, false));
  CHECK(train_a_few_steps(1, 6, false, true) == train_a_few_steps(1, 6, false, false));

  // Odd sizes (a last row and column no window reaches); rows narrower than
  // a vector (13 with AVX-512), where the forward kernel works on whole
  // tensors and the plan passes it no planes, but the weight gradient still
  // reads dy's planes from the pool; a ReLU in place, one with its own buffer
  // (which leaves the forward pass whole), and none. Training and evaluation.
  enum Relu { kInPlace, kOwnBuffer, kNone };
  for (const std::int64_t size : {13, 17, 33})
    for (const Relu relu : {kInPlace, kOwnBuffer, kNone}) {
      CAPTURE(size);
      CAPTURE(relu);
      Tensor<float> x({6, 1, size, size});
      Rng rng(9);
      for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
      const bool wide = size >= kernels::Simd<float>::width;  // the rows forward kernel applies
      const bool rows_weights = 2 * size >= kernels::Simd<float>::width;  // its weight gradient
      auto train = [&](bool planes, std::vector<float>& logits) {
        Sequential<float> small;
        small.add("conv", Conv2d<float>(1, 3, 3, 1, 1));
        if (relu != kNone) small.add("relu", ReLU<float>(relu == kInPlace));
        small.add("pool", MaxPool2d<float>(2));
        small.add("flatten", Flatten<float>());
        small.add("fc", Linear<float>(3 * (size / 2) * (size / 2), 4));
        small.reset_parameters(8);
        small.set_plan_options({true, planes, true});
        const NodePlan& p = decided(small, x.shape(), "pool");
        CHECK(p.defer_input_grad == (planes && rows_weights));
        CHECK(p.fed_planes == (planes && wide && relu != kOwnBuffer));
        CrossEntropyLoss<float> loss;
        Adam<float> adam(small.parameters());
        const std::int32_t labels[] = {0, 1, 2, 3, 0, 1};
        for (int step = 0; step < 3; ++step) train_step(small, loss, adam, x, labels);
        const Tensor<float>& y = small.forward(x, Context{});
        logits.assign(y.begin(), y.end());
        std::vector<float> all;
        for (auto& q : small.parameters()) all.insert(all.end(), q.value->begin(), q.value->end());
        return all;
      };
      std::vector<float> logits_planes, logits_whole;
      CHECK(bit_identical(train(true, logits_planes), train(false, logits_whole)));
      CHECK(bit_identical(logits_planes, logits_whole));
    }
}

TEST_CASE("a first convolution with many input channels: same bits with planes on or off") {
  // With 32 input channels (and no padding, which keeps Winograd away) the
  // weight kernel is the direct one; the plan must not read dy by planes
  // then, which only the rows kernel can.
  Tensor<float> x({4, 32, 16, 16});
  Rng rng(6);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  auto train = [&](bool planes) {
    Sequential<float> net;
    net.add("conv", Conv2d<float>(32, 16, 3, 1, 0));
    net.add("relu", ReLU<float>(true));
    net.add("pool", MaxPool2d<float>(2));
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(16 * 7 * 7, 4));
    net.reset_parameters(5);
    net.set_plan_options({true, planes, true});
    const NodePlan& conv = decided(net, x.shape(), "conv");
    REQUIRE(conv.kernels.backward_weights == kernels::ConvKernel::Direct);
    CHECK(conv.planes_to == (planes ? 2 : -1));  // the forward planes still pay
    CHECK(conv.grad_planes_from == -1);
    const std::int32_t labels[] = {0, 1, 2, 3};
    CrossEntropyLoss<float> xent;
    Adam<float> adam(net.parameters());
    for (int s = 0; s < 2; ++s) train_step(net, xent, adam, x, labels);
    std::vector<float> all;
    for (auto& q : net.parameters()) all.insert(all.end(), q.value->begin(), q.value->end());
    return all;
  };
  CHECK(bit_identical(train(true), train(false)));
}

TEST_CASE("a small network learns a separable problem") {
  // Four classes: which quadrant of an 8x8 image holds a bright square.
  Rng rng(5);
  const int n = 64;
  Tensor<float> x({n, 1, 8, 8});
  std::vector<std::int32_t> labels(n);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng.below(4));
    labels[static_cast<std::size_t>(i)] = c;
    for (int r = 0; r < 8; ++r)
      for (int q = 0; q < 8; ++q) {
        const bool inside = (r / 4 == c / 2) && (q / 4 == c % 2) && (r % 4) > 0 && (q % 4) > 0;
        x(i, 0, r, q) = (inside ? 1.0f : -1.0f) + 0.3f * rng.uniform(-1.0f, 1.0f);
      }
  }
  Sequential<float> net;
  net.add("conv1", Conv2d<float>(1, 4, 3, 1, 1));
  net.add("relu1", ReLU<float>());
  net.add("pool1", MaxPool2d<float>(2));
  net.add("flatten", Flatten<float>());
  net.add("fc1", Linear<float>(4 * 4 * 4, 4));
  net.reset_parameters(1);
  CrossEntropyLoss<float> loss;
  Adam<float> adam(net.parameters(), AdamOptions{0.01});
  float first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    last = train_step(net, loss, adam, x, labels.data());
    if (step == 0) first = last;
  }
  CAPTURE(first);
  CAPTURE(last);
  CHECK(first > 1.0f);  // about log(4) at the start
  CHECK(last < 0.05f);
  CHECK(argmax_rows(net.forward(x, Context{})) == labels);
}

TEST_CASE("shape mistakes throw errors naming the layer and both shapes") {
  auto net = make_mnist_cnn<float>(1);
  Tensor<float> flat({4, 784});
  CHECK_THROWS_WITH_AS(net.forward(flat, Context{}),
                       "conv1 (Conv2d): expected input [N, 1, H, W], got [4, 784]", Error);
  Tensor<float> wrong_size({2, 1, 20, 20});  // flattens to 64*5*5 = 1600, not 3136
  CHECK_THROWS_WITH_AS(net.forward(wrong_size, Context{}),
                       "fc1 (Linear): expected input [N, 3136], got [2, 1600]", Error);
  Linear<float> fc(3, 2);
  CHECK_THROWS_WITH_AS(fc.forward(Tensor<float>({5, 4}), Context{}),
                       "Linear: expected input [N, 3], got [5, 4]", Error);
  MaxPool2d<float> pool(2);
  CHECK_THROWS_AS(pool.forward(Tensor<float>({3, 4, 4}), Context{}), Error);
  CrossEntropyLoss<float> xent;
  const std::int32_t bad[] = {0, 12};
  CHECK_THROWS_WITH_AS(xent.forward(Tensor<float>({2, 10}), bad),
                       "CrossEntropyLoss: label 12 of sample 1 is outside [0, 10)", Error);
}

TEST_CASE("evaluation mode is deterministic and dropout is the identity there") {
  auto net = make_mnist_cnn<float>(9);
  Batch b(1);
  const Tensor<float> a = net.forward(b.x, Context{Mode::Eval, 0}).clone();
  const Tensor<float> c = net.forward(b.x, Context{Mode::Eval, 5}).clone();
  CHECK(std::memcmp(a.data(), c.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0);
  const Tensor<float> t = net.forward(b.x, Context{Mode::Train, 0}).clone();
  CHECK(std::memcmp(a.data(), t.data(), sizeof(float) * static_cast<std::size_t>(a.size())) != 0);
}

TEST_CASE("a non-finite loss or gradient stops training before any parameter changes") {
  auto net = make_mnist_cnn<float>(2);
  CrossEntropyLoss<float> loss;
  Adam<float> adam(net.parameters());
  Batch b(3);
  train_step(net, loss, adam, b.x, b.labels.data());
  std::vector<Tensor<float>> before;
  for (auto& p : net.parameters()) before.push_back(p.value->clone());
  // A NaN pixel: ReLU turns the NaN activations into 0, so the loss stays
  // finite, but conv1's weight gradient is NaN.
  b.x[100] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(train_step(net, loss, adam, b.x, b.labels.data()),
                       "training diverged: the gradient of conv1.weight is nan at optimizer step 2",
                       NonFiniteError);
  b.x[100] = 0.0f;
  // An infinite bias: the logits and the loss are not finite.
  const float saved = net.parameters()[7].value->data()[0];
  net.parameters()[7].value->data()[0] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(train_step(net, loss, adam, b.x, b.labels.data()),
                       doctest::Contains("training diverged: the loss is"), NonFiniteError);
  net.parameters()[7].value->data()[0] = saved;
  std::size_t i = 0;
  for (auto& p : net.parameters()) {
    CHECK(std::memcmp(p.value->data(), before[i].data(),
                      sizeof(float) * static_cast<std::size_t>(p.value->size())) == 0);
    ++i;
  }
  CHECK(adam.step_count() == 1);
}

TEST_CASE("a max-pool writes its gradient over its input only when nothing reads it after") {
  auto overwrites = [](Sequential<float>& net, const Shape& in) {
    return decided(net, in, "pool").overwrite_input;
  };
  // The MNIST CNN without planes: the in-place ReLUs keep masks, so the conv
  // outputs are free once each pool has run backward.
  auto cnn = make_mnist_cnn<float>(1);
  cnn.set_plan_options({false, false, true});
  CHECK(decided(cnn, {4, 1, 28, 28}, "pool1").overwrite_input);
  CHECK(decided(cnn, {4, 1, 28, 28}, "pool2").overwrite_input);
  cnn.set_plan_options({false, false, false});
  CHECK_FALSE(decided(cnn, {4, 1, 28, 28}, "pool1").overwrite_input);

  const Shape in{2, 1, 8, 8};
  Sequential<float> reads_output;  // a ReLU with its own buffer reads it in backward...
  reads_output.add("conv", Conv2d<float>(1, 2, 3, 1, 1));
  reads_output.add("relu", ReLU<float>());
  reads_output.add("pool", MaxPool2d<float>(2));
  reads_output.set_plan_options({false, false, true});
  CHECK_FALSE(overwrites(reads_output, in));
  reads_output.set_plan_options({true, false, true});  // ...unless the pool does its backward
  CHECK(overwrites(reads_output, in));

  Sequential<float> from_input;  // the caller's tensor, through an in-place view
  from_input.add("relu", ReLU<float>(true));
  from_input.add("pool", MaxPool2d<float>(2));
  CHECK_FALSE(overwrites(from_input, in));
}

// A user's layer whose backward reads its output, written as the guide
// says, without declaring it: backward_reads_output() is true by default.
template <typename T>
class UserTanh : public Layer<T> {
 public:
  std::string type() const override { return "UserTanh"; }
  Shape output_shape(const Shape& in) const override { return in; }
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
  Tensor<T> y_, dx_;
};

TEST_CASE("a max-pool never writes over the output of a layer whose backward reads it") {
  Sequential<float> net;
  net.add("conv", Conv2d<float>(1, 2, 3, 1, 1));
  net.add("tanh", UserTanh<float>());
  net.add("pool", MaxPool2d<float>(2));
  CHECK_FALSE(decided(net, {2, 1, 8, 8}, "pool").overwrite_input);
  // An in-place ReLU would write over it in forward: refused, by name.
  Sequential<float> inplace;
  inplace.add("conv", Conv2d<float>(1, 2, 3, 1, 1));
  inplace.add("tanh", UserTanh<float>());
  inplace.add("relu", ReLU<float>(true));
  CHECK_THROWS_WITH_AS(inplace.plan({2, 1, 8, 8}),
                       doctest::Contains("relu (ReLU): works in place over the output of tanh "
                                         "(UserTanh), whose backward reads it"),
                       Error);
}

TEST_CASE("a graph: named inputs, residual additions, concatenations, and its mistakes") {
  Graph<float> net;
  net.add("stem", Conv2d<float>(1, 4, 3, 1, 1));
  net.add("layer1.0.conv1", Conv2d<float>(4, 4, 3, 1, 1));
  net.add("layer1.0.relu", ReLU<float>(true));
  net.add("layer1.0.conv2", Conv2d<float>(4, 4, 3, 1, 1));
  net.add("layer1.0.add", Add<float>(), "layer1.0.conv2", "stem");
  net.add("cat", Concat<float>(), "layer1.0.add", "stem");
  net.add("flatten", Flatten<float>());
  net.add("fc", Linear<float>(8 * 6 * 6, 3));
  const std::vector<std::string> names = {"stem.weight",
                                          "stem.bias",
                                          "layer1.0.conv1.weight",
                                          "layer1.0.conv1.bias",
                                          "layer1.0.conv2.weight",
                                          "layer1.0.conv2.bias",
                                          "fc.weight",
                                          "fc.bias"};
  const auto params = net.parameters();
  REQUIRE(params.size() == names.size());
  for (std::size_t i = 0; i < names.size(); ++i) CHECK(params[i].name == names[i]);
  const Plan& plan = net.plan({2, 1, 6, 6});
  CHECK(plan.nodes[0].uses.size() == 2 + 1);  // conv1, the addition and the concatenation
  CHECK(plan.nodes[5].output == Shape{2, 8, 6, 6});
  const std::string summary = net.summary({2, 1, 6, 6});
  CHECK(summary.find("Add <- layer1.0.conv2, stem") != std::string::npos);
  CHECK(summary.find("activation memory") != std::string::npos);

  Graph<float> unknown;
  unknown.add("a", ReLU<float>());
  CHECK_THROWS_WITH_AS(unknown.add("b", Add<float>(), "a", "nope"), "network: no node named 'nope'",
                       Error);
  CHECK_THROWS_WITH_AS(unknown.add("a", ReLU<float>()), "network: a node named 'a' already exists",
                       Error);
  Graph<float> dangling;
  dangling.add("a", ReLU<float>());
  dangling.add("b", ReLU<float>(), "input");
  CHECK_THROWS_WITH_AS(dangling.plan({2, 3}),
                       "network: nothing reads the output of 'a', and it is not the last node",
                       Error);
  Graph<float> shared;  // an in-place ReLU on a value the addition reads too
  shared.add("a", Linear<float>(3, 3));
  shared.add("relu", ReLU<float>(true));
  shared.add("sum", Add<float>(), "relu", "a");
  CHECK_THROWS_WITH_AS(shared.plan({2, 3}),
                       doctest::Contains("relu (ReLU): works in place, but its input"), Error);
  Graph<float> replanned;  // backward must follow a forward under the same plan
  replanned.add("fc", Linear<float>(3, 2));
  const Tensor<float> x23({2, 3});
  const Tensor<float>& y23 = replanned.forward(x23, Context{});
  const Tensor<float> dy = y23.clone();
  replanned.plan({5, 3});
  CHECK_THROWS_WITH_AS(replanned.backward(dy),
                       "network: backward without a forward under the current plan", Error);
  Graph<float> mismatch;
  mismatch.add("a", Linear<float>(3, 4));
  mismatch.add("sum", Add<float>(), "a", "input");
  CHECK_THROWS_WITH_AS(mismatch.plan({2, 3}),
                       "sum (Add): inputs must have one shape, got [2, 4], [2, 3]", Error);
}

TEST_CASE("an addition's inputs share dy only where nothing writes over it") {
  // Gradients (input and parameters) of a network with two branches from the
  // input added together; with an in-place ReLU at the end of the first
  // branch, added after the second so that its backward (which writes over
  // the gradient it receives) runs before the second branch reads dy.
  auto run = [](bool share_buffers, bool relu_on_branch) {
    Graph<float> net;
    net.add("other", Linear<float>(3, 4), "input");
    net.add("a", Linear<float>(3, 4), "input");
    if (relu_on_branch) net.add("relu", ReLU<float>(true));
    net.add("sum", Add<float>(), relu_on_branch ? "relu" : "a", "other");
    net.set_input_grad(true);
    PlanOptions options;
    options.share_buffers = share_buffers;
    net.set_plan_options(options);
    net.reset_parameters(5);
    Tensor<float> x({2, 3});
    Rng rng(6);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    const bool shares = net.plan(x.shape()).nodes.back().passes_gradient;
    Context train;
    train.mode = Mode::Train;
    const Tensor<float>& y = net.forward(x, train);
    Tensor<float> dy(y.shape());
    for (float& v : dy) v = rng.uniform(-1.0f, 1.0f);
    const Tensor<float>& dx = net.backward(dy);
    std::vector<float> grads(dx.begin(), dx.end());
    for (auto& q : net.parameters()) grads.insert(grads.end(), q.grad->begin(), q.grad->end());
    return std::make_pair(shares, grads);
  };
  const auto copied = run(false, true), planned = run(true, true);
  CHECK_FALSE(copied.first);
  CHECK_FALSE(planned.first);  // the ReLU would write over the other branch's dy
  CHECK(bit_identical(copied.second, planned.second));
  const auto linear_copied = run(false, false), linear_planned = run(true, false);
  CHECK_FALSE(linear_copied.first);
  CHECK(linear_planned.first);  // two linear layers only read dy
  CHECK(bit_identical(linear_copied.second, linear_planned.second));
}

// Three Adam steps of the network make() returns, under `options` on
// `threads` threads, on uniform inputs drawn with `seed`; then one
// evaluation forward, whose output goes into eval_out. Returns the weights.
template <typename Make>
std::vector<float> train_then_evaluate(Make make, PlanOptions options, int threads, const Shape& in,
                                       std::uint64_t seed, const std::vector<std::int32_t>& labels,
                                       std::vector<float>& eval_out) {
  const int saved = num_threads();
  set_num_threads(threads);
  auto net = make();
  net.set_plan_options(options);
  Tensor<float> x(in);
  Rng rng(seed);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  CrossEntropyLoss<float> xent;
  Adam<float> adam(net.parameters());
  for (int s = 0; s < 3; ++s) train_step(net, xent, adam, x, labels.data());
  const Tensor<float>& y = net.forward(x, Context{Mode::Eval, 0});
  eval_out.assign(y.begin(), y.end());
  set_num_threads(saved);
  std::vector<float> all;
  for (auto& q : net.parameters()) all.insert(all.end(), q.value->begin(), q.value->end());
  return all;
}

TEST_CASE(
    "batch norms, convolutions and additions apply the in-place ReLUs after them, same bits") {
  // A residual block with batch norms, as in a ResNet.
  auto make = [] {
    Graph<float> net;
    net.add("conv1", Conv2d<float>(3, 8, 3, 1, 1, false), "input");
    net.add("bn1", BatchNorm2d<float>(8));
    net.add("relu1", ReLU<float>(true));
    net.add("conv2", Conv2d<float>(8, 3, 3, 1, 1, false));
    net.add("bn2", BatchNorm2d<float>(3));
    net.add("add", Add<float>(), "bn2", "input");
    net.add("relu2", ReLU<float>(true));
    // A second block: relu2's value is read twice, by conv_b and add_b.
    net.add("conv_b", Conv2d<float>(3, 3, 3, 1, 1));
    net.add("add_b", Add<float>(), "conv_b", "relu2");
    net.add("relu_b", ReLU<float>(true));
    net.add("conv3", Conv2d<float>(3, 4, 3, 1, 1));
    net.add("relu3", ReLU<float>(true));
    net.add("pool", MaxPool2d<float>(2));
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(4 * 8 * 8, 4));
    net.reset_parameters(2);
    return net;
  };
  const Shape in{4, 3, 16, 16};
  {
    auto net = make();
    CHECK(decided(net, in, "bn1").relu_after);
    CHECK(decided(net, in, "relu1").skip_forward);
    CHECK(decided(net, in, "relu1").skip_backward);
    CHECK(decided(net, in, "relu1").cache_bytes == 0);
    // After an addition: the sum is stored as max(sum, 0), and the ReLU's
    // backward reads it instead of a mask.
    CHECK(decided(net, in, "add").relu_in_store);
    CHECK(decided(net, in, "relu2").skip_forward);
    CHECK(decided(net, in, "relu2").backward_from_output);
    CHECK(decided(net, in, "relu2").cache_bytes == 0);
    // Read twice, its gradient is a sum, whose last addition does the ReLU's backward.
    CHECK(decided(net, in, "relu2").backward_in_sum);
    CHECK(decided(net, in, "relu_b").backward_from_output);
    CHECK_FALSE(decided(net, in, "relu_b").backward_in_sum);  // read once: no sum
    CHECK(decided(net, in, "relu3").skip_forward);            // the pool does its backward (step 4)
    const std::string summary = net.plan_summary(in);
    CHECK(summary.find("does the ReLU's backward") != std::string::npos);
    CHECK(summary.find("backward done by bn1") != std::string::npos);
    CHECK(summary.find("forward done by add_b; backward from the stored output") !=
          std::string::npos);
    CHECK(
        summary.find(
            "forward done by add; backward in the sum of its gradients, from the stored output") !=
        std::string::npos);
    net.set_plan_options({false, true, true});
    CHECK_FALSE(decided(net, in, "bn1").relu_after);
    CHECK_FALSE(decided(net, in, "relu1").skip_forward);
    CHECK_FALSE(decided(net, in, "add").relu_in_store);
    CHECK_FALSE(decided(net, in, "relu2").backward_in_sum);
    CHECK(decided(net, in, "relu2").cache_bytes > 0);  // a mask
  }
  // Evaluation folds bn1 into conv1: relu1 must still apply.
  auto run = [&](PlanOptions options, int threads, std::vector<float>& eval_out) {
    return train_then_evaluate(make, options, threads, in, 3, {0, 1, 2, 3}, eval_out);
  };
  std::vector<float> eval_fused, eval_apart, eval_two, eval_unfolded, eval_unshared;
  const auto fused = run({}, 1, eval_fused);
  CHECK(bit_identical(fused, run({false, true, true}, 1, eval_apart)));
  CHECK(bit_identical(eval_fused, eval_apart));
  // bn2 stores the first addition's sum in training; in evaluation, folded
  // into conv2, it makes no pass and the addition sums on its own.
  {
    auto net = make();
    CHECK(decided(net, in, "bn2").adds_for == node_number(net, "add"));
  }
  CHECK(bit_identical(fused, run({true, true, false}, 1, eval_unshared)));
  CHECK(bit_identical(eval_fused, eval_unshared));
  CHECK(bit_identical(fused, run({}, 2, eval_two)));
  CHECK(bit_identical(eval_fused, eval_two));
  // Without folding the batch norms, the same outputs to float rounding.
  run({true, true, true, false}, 1, eval_unfolded);
  REQUIRE(eval_unfolded.size() == eval_fused.size());
  for (std::size_t i = 0; i < eval_fused.size(); ++i)
    CHECK(eval_fused[i] == doctest::Approx(eval_unfolded[i]).epsilon(1e-4));

  // A layer working in place after the ReLU would write over the value the backward reads: no
  // fusion, and the network is still accepted.
  Graph<float> leaky;
  leaky.add("conv", Conv2d<float>(1, 2, 3, 1, 1), "input");
  leaky.add("bn", BatchNorm2d<float>(2));
  leaky.add("relu", ReLU<float>(true));
  leaky.add("leaky", LeakyReLU<float>(0.1, true));
  CHECK_FALSE(decided(leaky, {2, 1, 8, 8}, "bn").relu_after);
  CHECK_FALSE(decided(leaky, {2, 1, 8, 8}, "relu").skip_forward);
}

TEST_CASE("a residual network: same bits with every plan option, and with one or two threads") {
  auto run = [](PlanOptions options, int threads) {
    const int saved = num_threads();
    set_num_threads(threads);
    Graph<float> net;
    net.add("conv1", Conv2d<float>(3, 8, 3, 1, 1), "input");
    net.add("relu1", ReLU<float>(true));
    net.add("conv2", Conv2d<float>(8, 3, 3, 1, 1));
    net.add("add", Add<float>(), "conv2", "input");
    net.add("relu2", ReLU<float>(true));
    net.add("pool", MaxPool2d<float>(2));
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(3 * 8 * 8, 4));
    net.reset_parameters(2);
    net.set_plan_options(options);
    Tensor<float> x({4, 3, 16, 16});
    Rng rng(3);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    const std::int32_t labels[] = {0, 1, 2, 3};
    CrossEntropyLoss<float> xent;
    Adam<float> adam(net.parameters());
    for (int s = 0; s < 3; ++s) train_step(net, xent, adam, x, labels);
    set_num_threads(saved);
    std::vector<float> all;
    for (auto& q : net.parameters()) all.insert(all.end(), q.value->begin(), q.value->end());
    return all;
  };
  Graph<float> shape_only;
  shape_only.add("conv1", Conv2d<float>(3, 8, 3, 1, 1), "input");
  shape_only.add("relu1", ReLU<float>(true));
  shape_only.add("conv2", Conv2d<float>(8, 3, 3, 1, 1));
  // relu1 is applied as conv1 stores, and its backward reads that stored value: no mask.
  CHECK(decided(shape_only, {4, 3, 16, 16}, "conv1").relu_in_store);
  CHECK(decided(shape_only, {4, 3, 16, 16}, "relu1").backward_from_output);
  CHECK(decided(shape_only, {4, 3, 16, 16}, "relu1").cache_bytes == 0);
  const auto base = run({}, 1);
  CHECK(bit_identical(base, run({}, 2)));
  CHECK(bit_identical(base, run({false, false, false}, 1)));
  CHECK(bit_identical(base, run({true, false, true}, 2)));
}

TEST_CASE("shared gradient buffers and sums over dead inputs change no bit") {
  // Every way a gradient is passed on: batch norms doing their ReLU's
  // backward, residual additions sharing dy and copying it, a projection, a
  // concatenation, a max-pool taking planes from the convolution before it
  // (and giving them back when that convolution needs no input gradient),
  // Flatten's view, dropout and an in-place ReLU after the classifier's
  // first layer, and the network's own input gradient. The additions write
  // their sums over an input nothing reads after them: the first or the
  // second.
  auto make = [] {
    Graph<float> net;
    net.add("conv0", Conv2d<float>(2, 4, 3, 1, 1), "input");
    net.add("relu0", ReLU<float>(true));
    net.add("pool0", MaxPool2d<float>(2));
    net.add("conv1", Conv2d<float>(4, 8, 3, 1, 1, false));
    net.add("bn1", BatchNorm2d<float>(8));
    net.add("relu1", ReLU<float>(true));
    net.add("conv2", Conv2d<float>(8, 8, 3, 2, 1, false));
    net.add("bn2", BatchNorm2d<float>(8));
    net.add("down", Conv2d<float>(4, 8, 1, 2, 0, false), "pool0");
    net.add("down_bn", BatchNorm2d<float>(8));
    net.add("add", Add<float>(), "bn2", "down_bn");
    net.add("relu2", ReLU<float>(true));
    net.add("conv3", Conv2d<float>(8, 8, 3, 1, 1));
    net.add("add2", Add<float>(), "relu2", "conv3");
    net.add("cat", Concat<float>(), "add2", "relu2");
    net.add("avg", AvgPool2d<float>(2));
    net.add("flatten", Flatten<float>());
    net.add("fc1", Linear<float>(16 * 2 * 2, 12));
    net.add("relu3", ReLU<float>(true));
    net.add("drop", Dropout<float>(0.25));
    net.add("fc2", Linear<float>(12, 3));
    net.reset_parameters(4);
    return net;
  };
  const Shape in{5, 2, 16, 16};
  auto run = [&](bool share_buffers, bool input_grad, int threads) {
    const int saved = num_threads();
    set_num_threads(threads);
    auto net = make();
    net.set_input_grad(input_grad);
    PlanOptions options;
    options.share_buffers = share_buffers;
    net.set_plan_options(options);
    Tensor<float> x(in);
    Rng rng(8);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    const std::int32_t labels[] = {0, 1, 2, 1, 0};
    CrossEntropyLoss<float> xent;
    Adam<float> adam(net.parameters());
    std::vector<float> all;
    for (std::uint64_t s = 0; s < 3; ++s) {
      const Tensor<float>& logits = net.forward(x, Context{Mode::Train, s});
      xent.forward(logits, labels);
      const Tensor<float>& dx = net.backward(xent.backward());
      if (input_grad) all.insert(all.end(), dx.begin(), dx.end());
      adam.step();
    }
    set_num_threads(saved);
    for (auto& q : net.parameters()) all.insert(all.end(), q.value->begin(), q.value->end());
    return all;
  };
  {
    auto net = make();
    const Plan& plan = net.plan(in);
    int sharing = 0;
    for (const NodePlan& p : plan.nodes) sharing += p.grad_buffer >= 0;
    CHECK(sharing >= 8);
    CHECK(plan.grad_buffers.size() >= 2);
    CHECK(static_cast<int>(plan.grad_buffers.size()) < sharing);
    CHECK(decided(net, in, "conv0").grad_planes_from >= 0);  // no input gradient: dy by planes
    CHECK(decided(net, in, "pool0").grad_buffer < 0);
    // The later of its two batch-norm inputs stores the sum and the ReLU after it.
    CHECK(decided(net, in, "add").sum_over_input == 1);
    CHECK(decided(net, in, "add").sum_made_by == node_number(net, "down_bn"));
    CHECK(decided(net, in, "down_bn").adds_for == node_number(net, "add"));
    CHECK(decided(net, in, "bn2").adds_for < 0);
    CHECK(net.plan_summary(in).find("stores add's sum, max(sum, 0)") != std::string::npos);
    CHECK(net.plan_summary(in).find("sum made by down_bn") != std::string::npos);
    CHECK(decided(net, in, "add2").sum_over_input == 1);  // relu2 is read by cat too
    CHECK(decided(net, in, "add2").output_bytes == 0);
    CHECK(net.plan_summary(in).find("sum over conv3") != std::string::npos);
    CHECK(net.plan_summary(in).find("input gradient in shared buffer 0") != std::string::npos);
    net.set_plan_options({true, true, false});
    for (const NodePlan& p : net.plan(in).nodes) {
      CHECK(p.grad_buffer < 0);
      CHECK(p.sum_over_input < 0);
      CHECK(p.sum_made_by < 0);
      CHECK(p.adds_for < 0);
    }
    CHECK(net.plan(in).grad_buffers.empty());
  }
  for (bool input_grad : {false, true}) {
    CAPTURE(input_grad);
    const auto apart = run(false, input_grad, 1);
    CHECK(bit_identical(apart, run(true, input_grad, 1)));
    CHECK(bit_identical(apart, run(true, input_grad, 2)));
  }

  // A max-pool keeps dy (conv1's input gradient) for the convolution before
  // it to read by planes, and a branch between them in node order makes an
  // input gradient of its own in the meantime: not in that memory (conv1's
  // is the largest buffer, the one a misjudged plan would pick).
  auto run_branch = [](bool share_buffers) {
    Graph<float> net;
    net.add("conv0", Conv2d<float>(2, 8, 3, 1, 1), "input");
    net.add("relu0", ReLU<float>(true));
    net.add("side", Conv2d<float>(2, 4, 3, 1, 1), "input");
    net.add("side_relu", ReLU<float>(true));
    net.add("side2", Conv2d<float>(4, 4, 3, 1, 1));
    net.add("pool0", MaxPool2d<float>(2), "relu0");
    net.add("conv1", Conv2d<float>(8, 4, 3, 1, 1));
    net.add("side_pool", MaxPool2d<float>(2), "side2");
    net.add("add", Add<float>(), "conv1", "side_pool");
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(4 * 8 * 8, 3));
    net.reset_parameters(6);
    PlanOptions options;
    options.share_buffers = share_buffers;
    net.set_plan_options(options);
    Tensor<float> x({3, 2, 16, 16});
    Rng rng(9);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    const std::int32_t labels[] = {2, 0, 1};
    CrossEntropyLoss<float> xent;
    Adam<float> adam(net.parameters());
    for (int s = 0; s < 3; ++s) train_step(net, xent, adam, x, labels);
    CHECK(net.plan(x.shape()).nodes[0].grad_planes_from == 5);
    std::vector<float> all;
    for (auto& q : net.parameters()) all.insert(all.end(), q.value->begin(), q.value->end());
    return all;
  };
  CHECK(bit_identical(run_branch(false), run_branch(true)));
}
TEST_CASE("the gradients of values read by several nodes are summed in shared buffers") {
  // The network's input is read by two convolutions, and relu1's value by
  // three nodes: each gradient is a sum, made just before the backward of
  // the node that made the value and passed on from there (relu1 passes it
  // to bn1, an in-place ReLU over its input). Those sums, like the layers'
  // input gradients, go into shared buffers and are counted.
  auto make = [] {
    Graph<float> net;
    net.add("conv0", Conv2d<float>(2, 6, 3, 1, 1), "input");
    net.add("side", Conv2d<float>(2, 6, 1, 1, 0), "input");
    net.add("add0", Add<float>(), "conv0", "side");
    net.add("bn1", BatchNorm2d<float>(6));
    net.add("relu1", ReLU<float>(true));
    net.add("conv2", Conv2d<float>(6, 6, 3, 1, 1));
    net.add("relu2", ReLU<float>(true));
    net.add("conv3", Conv2d<float>(6, 6, 3, 1, 1));
    net.add("add", Add<float>(), "relu1", "conv3");
    net.add("cat", Concat<float>(), "add", "relu1");
    net.add("avg", AvgPool2d<float>(2));
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(12 * 4 * 4, 3));
    net.reset_parameters(5);
    net.set_input_grad(true);
    return net;
  };
  const Shape in{4, 2, 8, 8};
  const std::int64_t f = static_cast<std::int64_t>(sizeof(float)), map = 4 * 6 * 8 * 8;
  {
    auto net = make();
    const Plan& plan = net.plan(in);
    CHECK(decided(net, in, "relu1").sum_buffer >= 0);
    CHECK(plan.input_sum_buffer >= 0);
    CHECK(plan.input_sum_bytes == 0);
    for (const std::string name : {"conv0", "conv2", "conv3", "fc", "avg"})
      CHECK(decided(net, in, name).sum_buffer < 0);  // read by one node
    const std::string summary = net.plan_summary(in);
    CHECK(summary.find("gradient sum in shared buffer") != std::string::npos);
    // The buffers hold every layer's input gradient and the two sums.
    std::int64_t held = 4 * 2 * 8 * 8 * f + map * f;  // the two sums
    for (std::size_t i = 0; i < plan.nodes.size(); ++i)
      if (plan.nodes[i].grad_buffer >= 0) {
        const int v = net.node(i).inputs[0];
        held +=
            (v == kNetworkInput ? in : plan.nodes[static_cast<std::size_t>(v)].output).numel() * f;
      }
    std::ostringstream mb;
    mb << std::fixed << std::setprecision(2) << static_cast<double>(held) / 1e6;
    CHECK(summary.find(" MB for " + mb.str() + " MB of gradients\n") != std::string::npos);

    // Unshared, each sum is memory of its own, and still counted.
    net.set_plan_options({true, true, false});
    const Plan& apart = net.plan(in);
    CHECK(apart.grad_buffers.empty());
    CHECK(apart.input_sum_buffer < 0);
    CHECK(apart.input_sum_bytes == 4 * 2 * 8 * 8 * f);
    CHECK(decided(net, in, "relu1").grad_bytes == map * f);  // the sum; the ReLU works in place
    CHECK(net.plan_summary(in).find("the network input's gradient, summed over its readers") !=
          std::string::npos);
  }
  auto run = [&](bool share_buffers, int threads) {
    const int saved = num_threads();
    set_num_threads(threads);
    auto net = make();
    PlanOptions options;
    options.share_buffers = share_buffers;
    net.set_plan_options(options);
    Tensor<float> x(in);
    Rng rng(3);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    const std::int32_t labels[] = {2, 0, 1, 1};
    CrossEntropyLoss<float> xent;
    Adam<float> adam(net.parameters());
    std::vector<float> all;
    for (std::uint64_t s = 0; s < 3; ++s) {
      xent.forward(net.forward(x, Context{Mode::Train, s}), labels);
      const Tensor<float>& dx = net.backward(xent.backward());
      all.insert(all.end(), dx.begin(), dx.end());
      adam.step();
    }
    set_num_threads(saved);
    for (auto& q : net.parameters()) all.insert(all.end(), q.value->begin(), q.value->end());
    return all;
  };
  const auto apart = run(false, 1);
  CHECK(bit_identical(apart, run(true, 1)));
  CHECK(bit_identical(apart, run(true, 2)));
}
TEST_CASE("batch norms before a convolution keep no output: it is remade in backward, same bits") {
  // Two conv -> batch norm -> ReLU -> conv chains of different sizes, as in
  // the first half of residual blocks: both batch norms write into one
  // buffer, and each output is made again before the convolution after it
  // runs its backward. bn3's ReLU is read by two nodes: it keeps its output.
  auto make = [] {
    Graph<float> net;
    net.add("conv1", Conv2d<float>(3, 6, 3, 1, 1, false), "input");
    net.add("bn1", BatchNorm2d<float>(6));
    net.add("relu1", ReLU<float>(true));
    net.add("conv2", Conv2d<float>(6, 8, 3, 2, 1, false));
    net.add("bn2", BatchNorm2d<float>(8));
    net.add("relu2", ReLU<float>(true));
    net.add("conv3", Conv2d<float>(8, 8, 3, 1, 1, false));
    net.add("bn3", BatchNorm2d<float>(8));
    net.add("relu3", ReLU<float>(true));
    net.add("conv4", Conv2d<float>(8, 8, 3, 1, 1));
    net.add("add", Add<float>(), "conv4", "relu3");
    net.add("avg", AdaptiveAvgPool2d<float>(1));
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(8, 3));
    net.reset_parameters(7);
    return net;
  };
  const Shape in{4, 3, 12, 12};
  {
    auto net = make();
    CHECK(decided(net, in, "bn1").output_remade);
    CHECK(decided(net, in, "bn1").output_bytes == 0);
    CHECK(decided(net, in, "conv2").remakes_input_of == 1);
    CHECK(decided(net, in, "bn2").output_remade);
    CHECK(decided(net, in, "conv3").remakes_input_of == 4);
    CHECK_FALSE(decided(net, in, "bn3").output_remade);  // relu3 is read by conv4 and add
    CHECK(decided(net, in, "bn3").output_bytes > 0);
    CHECK(net.plan(in).remade_buffer == Shape{4, 6, 12, 12});  // bn1's, the larger
    CHECK(net.plan_summary(in).find("outputs remade in backward, in 1 shared buffer") !=
          std::string::npos);
    PlanOptions keep;
    keep.remake_outputs = false;
    net.set_plan_options(keep);
    CHECK_FALSE(decided(net, in, "bn1").output_remade);
    CHECK(decided(net, in, "conv2").remakes_input_of < 0);
    CHECK(net.plan(in).remade_buffer.numel() == 0);
  }
  // Trained with remaking on and off, then evaluated with the batch norms
  // folded and not (a batch norm that is not folded writes into the
  // shared buffer in evaluation too).
  auto run = [&](PlanOptions options, int threads, std::vector<float>& eval_out) {
    return train_then_evaluate(make, options, threads, in, 4, {0, 2, 1, 2}, eval_out);
  };
  std::vector<float> eval_on, eval_off, eval_two, eval_apart, eval_unfolded, eval_unfolded_off;
  const auto on = run({}, 1, eval_on);
  CHECK(bit_identical(on, run({true, true, true, true, false}, 1, eval_off)));
  CHECK(bit_identical(eval_on, eval_off));
  CHECK(bit_identical(on, run({}, 2, eval_two)));
  CHECK(bit_identical(eval_on, eval_two));
  CHECK(bit_identical(on, run({true, true, false, true, true}, 2, eval_apart)));  // no sharing
  CHECK(bit_identical(eval_on, eval_apart));
  CHECK(bit_identical(run({true, true, true, false, true}, 1, eval_unfolded),
                      run({true, true, true, false, false}, 1, eval_unfolded_off)));
  CHECK(bit_identical(eval_unfolded, eval_unfolded_off));
}
TEST_CASE("F(4x4, 3x3) convolutions make the batch norm output they read, same bits") {
  // conv -> batch norm -> ReLU -> conv chains whose second convolution runs
  // on F(4x4, 3x3) (16 -> 32 channels on 12x12 planes, 20 -> 32 on 6x6
  // ones): the batch norm's output is made inside the convolution's copy of
  // each sample, in forward and again in the weight gradient, never in
  // memory, with the bits of the stored output. In an evaluation that folds
  // the batch norms, the convolutions read the folded ones' outputs.
  auto make = [] {
    Graph<float> net;
    net.add("conv1", Conv2d<float>(3, 16, 3, 1, 1, false), "input");
    net.add("bn1", BatchNorm2d<float>(16));
    net.add("relu1", ReLU<float>(true));
    net.add("conv2", Conv2d<float>(16, 32, 3, 1, 1, false));
    net.add("bn2", BatchNorm2d<float>(32));
    net.add("relu2", ReLU<float>(true));
    net.add("conv3", Conv2d<float>(32, 20, 3, 2, 1, false));
    net.add("bn3", BatchNorm2d<float>(20));
    net.add("relu3", ReLU<float>(true));
    net.add("conv4", Conv2d<float>(20, 32, 3, 1, 1));
    net.add("avg", AdaptiveAvgPool2d<float>(1));
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(32, 3));
    net.reset_parameters(11);
    return net;
  };
  const Shape in{5, 3, 12, 12};
  {
    auto net = make();
    for (const char* conv : {"conv2", "conv4"}) {
      CAPTURE(conv);
      CHECK(decided(net, in, conv).kernels.backward_weights == kernels::ConvKernel::Winograd4);
      CHECK(decided(net, in, conv).remakes_in_copy);
    }
    CHECK(decided(net, in, "conv4").remakes_input_of == node_number(net, "bn3"));
    CHECK(decided(net, in, "bn1").output_made_by == node_number(net, "conv2"));
    CHECK(decided(net, in, "bn3").output_made_by == node_number(net, "conv4"));
    CHECK_FALSE(decided(net, in, "conv3").remakes_in_copy);  // direct at stride 2: remade first
    CHECK(decided(net, in, "conv3").remakes_input_of == node_number(net, "bn2"));
    CHECK(decided(net, in, "bn2").output_made_by < 0);
    CHECK(net.plan_summary(in).find("remakes bn1's output in its weight gradient's copy") !=
          std::string::npos);
  }
  auto run = [&](PlanOptions options, int threads, std::vector<float>& eval_out) {
    return train_then_evaluate(make, options, threads, in, 6, {0, 2, 1, 2, 0}, eval_out);
  };
  std::vector<float> eval_on, eval_kept, eval_two, eval_unfolded, eval_unfolded_kept;
  const auto on = run({}, 1, eval_on);
  CHECK(bit_identical(on, run({true, true, true, true, false}, 1, eval_kept)));
  CHECK(bit_identical(eval_on, eval_kept));
  CHECK(bit_identical(on, run({}, 2, eval_two)));
  CHECK(bit_identical(eval_on, eval_two));
  // Unfolded, the batch norms run in evaluation too, with the running statistics.
  const auto unfolded = run({true, true, true, false, true}, 2, eval_unfolded);
  CHECK(bit_identical(unfolded, run({true, true, true, false, false}, 1, eval_unfolded_kept)));
  CHECK(bit_identical(eval_unfolded, eval_unfolded_kept));
}
}  // namespace test_model
