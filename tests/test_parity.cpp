// minidl against PyTorch on identical weights and inputs: logits, loss, every
// gradient, the weights after 3 Adam and 3 SGD steps, a residual network
// built as a Graph, and single layers.
// The reference file comes from tests/parity/make_reference.py; its path is
// in MINIDL_PARITY_FILE (set by CTest). Without it the test says it skipped.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "minidl/io/safetensors.hpp"
#include "minidl/minidl.hpp"

#include "parity_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_parity {

using namespace minidl;

namespace {

// float: both sides sum tens of thousands of float products in different
// orders, which moves results by a few units of 1e-7 of the tensor's scale;
// 1e-5 leaves room for that and catches any real formula difference (O(1)).
// double: the same argument at 1e-16 gives 1e-12; we allow 1e-10.
template <typename T>
double tolerance() {
  return sizeof(T) == 4 ? 1e-5 : 1e-10;
}

template <typename T>
const char* prefix() {
  return minidl::testing::precision_prefix<T>();
}

const SafetensorsFile& reference() {
  return minidl::testing::parity_reference("MINIDL_PARITY_FILE");
}

template <typename T>
Tensor<T> get(const std::string& name) {
  return minidl::testing::reference_tensor<T>(reference(), name);
}

std::vector<std::int32_t> labels(const std::string& name) {
  return minidl::testing::reference_labels(reference(), name);
}

// Largest difference relative to the reference tensor's largest magnitude.
template <typename T>
void compare(const std::string& what, const Tensor<T>& ours, const Tensor<T>& theirs) {
  minidl::testing::compare_to_reference(what, ours, theirs, tolerance<T>());
}

// Adam in float is ill-conditioned where a gradient is within rounding of
// zero: m/sqrt(v) is then +-1 whatever the noise, so such an element may move
// by lr in either direction on the two sides. The formula itself is checked
// in double (1e-10); in float we require all but 0.1% of the elements to
// agree to 1e-4 of the tensor's scale, and report how many did not.
template <typename T>
void compare_mostly(const std::string& what, const Tensor<T>& ours, const Tensor<T>& theirs) {
  REQUIRE(ours.size() == theirs.size());
  double scale = 0;
  for (std::int64_t i = 0; i < theirs.size(); ++i)
    scale = std::max(scale, std::fabs(static_cast<double>(theirs[i])));
  std::int64_t off = 0;
  for (std::int64_t i = 0; i < ours.size(); ++i)
    off += std::fabs(static_cast<double>(ours[i]) - static_cast<double>(theirs[i])) > 1e-4 * scale;
  MESSAGE(std::string(prefix<T>())
          << what << ": " << off << " of " << ours.size() << " elements beyond 1e-4");
  CHECK(static_cast<double>(off) <= 1e-3 * static_cast<double>(ours.size()));
}

template <typename T>
Sequential<T> reference_model() {
  auto net = make_mnist_cnn<T>(0, /*dropout=*/0.0);
  for (auto& p : net.parameters()) p.value->copy_from(get<T>(prefix<T>() + p.name));
  return net;
}

// Every case needs the reference, so without it the whole program ends as skipped.
bool skip_without_reference() {
  reference();
  return false;
}

}  // namespace

TEST_CASE_TEMPLATE("parity: the MNIST CNN's logits, loss and gradients equal PyTorch's", T, float,
                   double) {
  if (skip_without_reference()) return;
  const std::string pre = prefix<T>();
  auto net = reference_model<T>();
  const Tensor<T> x = get<T>(pre + "x");
  const auto y = labels(pre + "labels");
  CrossEntropyLoss<T> xent;
  const Tensor<T>& logits = net.forward(x, Context{Mode::Train, 0});
  compare("logits", logits, get<T>(pre + "logits"));
  Tensor<T> loss({1});
  loss[0] = xent.forward(logits, y.data());
  compare("loss", loss, get<T>(pre + "loss"));
  net.backward(xent.backward());
  for (auto& p : net.parameters())
    compare("grad." + p.name, *p.grad, get<T>(pre + "grad." + p.name));
}

TEST_CASE_TEMPLATE("parity: weights after 3 Adam and 3 SGD-momentum steps equal PyTorch's", T,
                   float, double) {
  if (skip_without_reference()) return;
  const std::string pre = prefix<T>();
  for (const std::string opt : {"adam", "sgd"}) {
    auto net = reference_model<T>();
    std::unique_ptr<Optimizer<T>> optimizer;
    if (opt == "adam") {
      optimizer = std::make_unique<Adam<T>>(net.parameters(), AdamOptions{1e-3});
    } else {
      SgdOptions o;
      o.lr = 0.01;
      o.momentum = 0.9;
      optimizer = std::make_unique<SGD<T>>(net.parameters(), o);
    }
    const Tensor<T> x = get<T>(pre + "x");
    const auto y = labels(pre + "labels");
    CrossEntropyLoss<T> xent;
    for (int s = 0; s < 3; ++s) train_step(net, xent, *optimizer, x, y.data());
    for (auto& p : net.parameters()) {
      if (opt == "adam" && sizeof(T) == 4)
        compare_mostly(opt + "3." + p.name, *p.value, get<T>(pre + opt + "3." + p.name));
      else
        compare(opt + "3." + p.name, *p.value, get<T>(pre + opt + "3." + p.name));
    }
  }
}

TEST_CASE_TEMPLATE(
    "parity: Conv2d stride 2 without padding, MaxPool2d on odd sizes, Linear, cross-entropy", T,
    float, double) {
  if (skip_without_reference()) return;
  const std::string pre = prefix<T>();
  auto run = [&](Layer<T>& layer, const std::string& name) {
    for (auto& p : layer.parameters()) p.value->copy_from(get<T>(pre + name + p.name));
    layer.set_needs_input_grad(true);
    compare(name + "y", layer.forward(get<T>(pre + name + "x"), Context{Mode::Train, 0}),
            get<T>(pre + name + "y"));
    compare(name + "dx", layer.backward(get<T>(pre + name + "dy")), get<T>(pre + name + "dx"));
    for (auto& p : layer.parameters())
      compare(name + "grad." + p.name, *p.grad, get<T>(pre + name + "grad." + p.name));
  };
  Conv2d<T> conv(3, 4, 3, 2, 0);
  run(conv, "conv_s2.");
  MaxPool2d<T> pool(2);
  run(pool, "pool_odd.");
  Linear<T> lin(37, 11);
  run(lin, "linear.");
  CrossEntropyLoss<T> xent;
  const auto y = labels(pre + "xent.labels");
  Tensor<T> loss({1});
  loss[0] = xent.forward(get<T>(pre + "xent.logits"), y.data());
  compare("xent.loss", loss, get<T>(pre + "xent.loss"));
  compare("xent.dlogits", xent.backward(), get<T>(pre + "xent.dlogits"));
}

// torch: layer1 = Sequential(Block(3, 8)), fc = Linear(192, 10), where
// Block.forward(x) = relu(conv2(relu(conv1(x))) + x).
template <typename T>
Graph<T> residual_network() {
  Graph<T> net;
  net.add("layer1.0.conv1", Conv2d<T>(3, 8, 3, 1, 1), "input");
  net.add("layer1.0.relu1", ReLU<T>(true));
  net.add("layer1.0.conv2", Conv2d<T>(8, 3, 3, 1, 1));
  net.add("layer1.0.add", Add<T>(), "layer1.0.conv2", "input");
  net.add("layer1.0.relu2", ReLU<T>(true));
  net.add("flatten", Flatten<T>());
  net.add("fc", Linear<T>(3 * 8 * 8, 10));
  return net;
}

TEST_CASE_TEMPLATE("parity: a residual network's logits, loss and gradients equal PyTorch's", T,
                   float, double) {
  if (skip_without_reference()) return;
  const std::string pre = std::string(prefix<T>()) + "res.";
  for (const bool fuse : {true, false}) {
    CAPTURE(fuse);
    auto net = residual_network<T>();
    net.set_plan_options({fuse, fuse, fuse});
    net.set_input_grad(true);
    for (auto& p : net.parameters()) p.value->copy_from(get<T>(pre + p.name));
    const Tensor<T> x = get<T>(pre + "x");
    const auto y = labels(pre + "labels");
    CrossEntropyLoss<T> xent;
    const Tensor<T>& logits = net.forward(x, Context{Mode::Train, 0});
    compare("res.logits", logits, get<T>(pre + "logits"));
    Tensor<T> loss({1});
    loss[0] = xent.forward(logits, y.data());
    compare("res.loss", loss, get<T>(pre + "loss"));
    compare("res.dx", net.backward(xent.backward()), get<T>(pre + "dx"));
    for (auto& p : net.parameters())
      compare("res.grad." + p.name, *p.grad, get<T>(pre + "grad." + p.name));
  }
}

}  // namespace test_parity
