// Whole networks: determinism, learning, shape errors, summary.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"

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
  net.set_fold_relu(fold_relu);
  net.set_pass_planes(pass_planes);
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

TEST_CASE("folding the ReLUs into the convolutions and max-pools changes no bit") {
  auto net = make_mnist_cnn<float>(1);
  auto relu = [&](const char* name) -> ReLU<float>& {
    return dynamic_cast<ReLU<float>&>(net.layer(name));
  };
  CHECK(relu("relu1").backward_folded());
  CHECK(relu("relu2").backward_folded());
  CHECK_FALSE(relu("relu3").backward_folded());  // dropout follows it, which cannot fold a ReLU
  CHECK(relu("relu1").forward_folded());         // in place after a convolution...
  CHECK(relu("relu2").forward_folded());
  CHECK_FALSE(relu("relu3").forward_folded());  // ...but its backward still needs its mask
  net.set_fold_relu(false);
  CHECK_FALSE(relu("relu1").backward_folded());
  CHECK_FALSE(relu("relu1").forward_folded());
  CHECK(train_a_few_steps(1, 5, true) == train_a_few_steps(1, 5, false));

  // The evaluation outputs too, and a ReLU that is not in place stays unfolded.
  auto a = make_mnist_cnn<float>(3), b = make_mnist_cnn<float>(3);
  b.set_fold_relu(false);
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
  CHECK(dynamic_cast<ReLU<float>&>(copy_relu.layer("relu")).backward_folded());
  CHECK_FALSE(dynamic_cast<ReLU<float>&>(copy_relu.layer("relu")).forward_folded());
}

TEST_CASE("conv1 and pool1 pass planes instead of whole tensors, changing no bit") {
  auto net = make_mnist_cnn<float>(1);
  auto pool = [&](const char* name) -> MaxPool2d<float>& {
    return dynamic_cast<MaxPool2d<float>&>(net.layer(name));
  };
  CHECK(pool("pool1").input_grad_deferred());
  CHECK(pool("pool1").input_planes_taken());
  CHECK_FALSE(pool("pool2").input_grad_deferred());  // conv2 needs its input gradient
  CHECK(pool("pool2").input_planes_taken());
  net.set_pass_planes(false);
  CHECK_FALSE(pool("pool1").input_grad_deferred());
  CHECK_FALSE(pool("pool1").input_planes_taken());
  CHECK_FALSE(pool("pool2").input_planes_taken());
  net.set_pass_planes(true);
  net.set_input_grad(true);  // then conv1 computes an input gradient from dy whole
  CHECK_FALSE(pool("pool1").input_grad_deferred());
  CHECK(pool("pool1").input_planes_taken());
  CHECK(train_a_few_steps(2, 6, true, true) == train_a_few_steps(2, 6, true, false));
  CHECK(train_a_few_steps(1, 6, false, true) == train_a_few_steps(1, 6, false, false));

  // Odd sizes (a last row and column no window reaches), and rows narrower
  // than a vector, where the convolution makes y and dy whole and passes
  // them on as planes; a ReLU in place, one with its own buffer (which
  // leaves the forward pass whole), and none. Training and evaluation.
  enum Relu { kInPlace, kOwnBuffer, kNone };
  for (const std::int64_t size : {13, 17})
    for (const Relu relu : {kInPlace, kOwnBuffer, kNone}) {
      CAPTURE(size);
      CAPTURE(relu);
      Tensor<float> x({6, 1, size, size});
      Rng rng(9);
      for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
      auto train = [&](bool planes, std::vector<float>& logits) {
        Sequential<float> small;
        small.add("conv", Conv2d<float>(1, 3, 3, 1, 1));
        if (relu != kNone) small.add("relu", ReLU<float>(relu == kInPlace));
        small.add("pool", MaxPool2d<float>(2));
        small.add("flatten", Flatten<float>());
        small.add("fc", Linear<float>(3 * (size / 2) * (size / 2), 4));
        small.reset_parameters(8);
        small.set_pass_planes(planes);
        const auto& p = dynamic_cast<MaxPool2d<float>&>(small.layer("pool"));
        CHECK(p.input_grad_deferred() == planes);
        CHECK(p.input_planes_taken() == (planes && relu != kOwnBuffer));
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
                       Error);
  b.x[100] = 0.0f;
  // An infinite bias: the logits and the loss are not finite.
  const float saved = net.parameters()[7].value->data()[0];
  net.parameters()[7].value->data()[0] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(train_step(net, loss, adam, b.x, b.labels.data()),
                       doctest::Contains("training diverged: the loss is"), Error);
  net.parameters()[7].value->data()[0] = saved;
  std::size_t i = 0;
  for (auto& p : net.parameters()) {
    CHECK(std::memcmp(p.value->data(), before[i].data(),
                      sizeof(float) * static_cast<std::size_t>(p.value->size())) == 0);
    ++i;
  }
  CHECK(adam.step_count() == 1);
}

TEST_CASE("a layer may overwrite its input only when nothing reads it after its backward") {
  auto flags = [](Sequential<float>& net) {
    std::string out;
    for (std::size_t i = 0; i < net.size(); ++i) out += net[i].may_overwrite_input() ? '1' : '0';
    return out;
  };
  // conv1 relu1 pool1 conv2 relu2 pool2 flatten fc1 relu3 dropout fc2: the
  // in-place ReLUs keep masks, so the conv outputs are free once each pool
  // has run backward.
  auto cnn = make_mnist_cnn<float>(1);
  CHECK(flags(cnn) == "01111111111");
  CHECK(cnn.layer("pool1").may_overwrite_input());

  Sequential<float> reads_output;  // a ReLU with its own buffer reads it in backward...
  reads_output.add("conv", Conv2d<float>(1, 2, 3, 1, 1));
  reads_output.add("relu", ReLU<float>());
  reads_output.add("pool", MaxPool2d<float>(2));
  reads_output.set_fold_relu(false);
  CHECK(flags(reads_output) == "010");
  CHECK_FALSE(reads_output.layer("pool").may_overwrite_input());
  reads_output.set_fold_relu(true);  // ...unless the pool does its backward
  CHECK(flags(reads_output) == "011");

  Sequential<float> network_input;  // the caller's tensor, through in-place views
  network_input.add("relu", ReLU<float>(true));
  network_input.add("flatten", Flatten<float>());
  network_input.add("fc", Linear<float>(4, 2));
  CHECK(flags(network_input) == "000");
}
