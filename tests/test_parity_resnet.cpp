// The ResNet of models/resnet.hpp against its PyTorch twin (benchmarks/resnet/train_resnet.py):
// the state_dict's names, shapes and dtypes for three depths and widths; on the same weights
// and batch, the logits, the loss with label smoothing, every gradient, the input gradient and
// the running statistics in training mode, the logits in evaluation mode, and the weights after
// 3 SGD-Nesterov steps under OneCycleLR, in float32 and float64.
// The reference comes from tests/parity/make_resnet_reference.py at test time; its path is in
// MINIDL_RESNET_PARITY_FILE (set by CTest). Without it the program ends as skipped.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"
#include "minidl/models/resnet.hpp"
#include "minidl/optim/lr_scheduler.hpp"
#include "minidl/optim/param_groups.hpp"
#include "parity_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_parity_resnet {

using namespace minidl;

namespace {

const SafetensorsFile& reference() {
  return testing::parity_reference("MINIDL_RESNET_PARITY_FILE");
}

template <typename T>
Tensor<T> get(const std::string& name) {
  return testing::reference_tensor<T>(reference(), name);
}

std::int64_t get_count(const std::string& name) {
  const NamedTensor* n = reference().find(name);
  REQUIRE_MESSAGE(n != nullptr, "reference lacks " << name);
  REQUIRE(n->dtype == DType::I64);
  std::int64_t count = 0;
  std::memcpy(&count, n->bytes.data(), sizeof count);
  return count;
}

// As test_parity.cpp: float sums in other orders move results by a few 1e-7 of the scale.
template <typename T>
double tolerance() {
  return sizeof(T) == 4 ? 1e-5 : 1e-10;
}

template <typename T>
void compare(const std::string& what, const Tensor<T>& ours, const Tensor<T>& theirs) {
  minidl::testing::compare_to_reference(what, ours, theirs, tolerance<T>());
}

ResNetOptions options(int depth, std::int64_t width) {
  ResNetOptions o;
  o.depth = depth;
  o.width = width;
  return o;
}

// The reference's ResNet-8 of width 4, weights and buffers loaded from `prefix`.
template <typename T>
Graph<T> reference_network(const std::string& prefix) {
  Graph<T> net = make_resnet<T>(0, options(8, 4));
  for (auto& p : net.parameters()) p.value->copy_from(get<T>(prefix + p.name));
  for (auto& b : net.buffers()) {
    if (b.value)
      b.value->copy_from(get<T>(prefix + b.name));
    else
      *b.count = get_count(prefix + b.name);
  }
  return net;
}

template <typename T>
void compare_buffers(Graph<T>& net, const std::string& prefix) {
  for (auto& b : net.buffers()) {
    if (b.value)
      compare(prefix + b.name, *b.value, get<T>(prefix + b.name));
    else
      CHECK_MESSAGE(*b.count == get_count(prefix + b.name), b.name);
  }
}

}  // namespace

TEST_CASE("resnet parity: parameter and buffer names, shapes and dtypes equal the twin's") {
  for (const auto& arch : {std::pair<int, int>{8, 4}, {14, 8}, {20, 16}}) {
    // Plain variables, not structured bindings: C++17 lets no lambda (CAPTURE) capture those.
    const int depth = arch.first, width = arch.second;
    CAPTURE(depth);
    const std::string prefix = "arch.d" + std::to_string(depth) + "w" + std::to_string(width) + ".";
    std::map<std::string, std::string> theirs, ours;
    for (const auto& t : reference().tensors)
      if (t.name.rfind(prefix, 0) == 0)
        theirs[t.name.substr(prefix.size())] =
            std::string(dtype_name(t.dtype)) + " " + shape_to_string(t.shape);
    REQUIRE(!theirs.empty());
    Graph<float> net = make_resnet<float>(1, options(depth, width));
    for (auto& p : net.parameters())
      ours[p.name] = "F32 " + shape_to_string(p.value->shape().to_vector());
    for (auto& b : net.buffers())
      ours[b.name] = b.value ? "F32 " + shape_to_string(b.value->shape().to_vector())
                             : "I64 " + shape_to_string({});
    for (const auto& entry : theirs) {
      const std::string &name = entry.first, &what = entry.second;
      CAPTURE(name);
      CHECK(ours.count(name) == 1);
      if (ours.count(name)) CHECK(ours.at(name) == what);
    }
    for (const auto& entry : ours) {
      const std::string& name = entry.first;
      CAPTURE(name);
      CHECK_MESSAGE(theirs.count(name) == 1, "not in PyTorch's state_dict");
    }
  }
}

TEST_CASE_TEMPLATE("resnet parity: training and evaluation passes equal PyTorch's", T, float,
                   double) {
  const std::string pre = testing::precision_prefix<T>();
  for (const bool fuse : {true, false}) {
    CAPTURE(fuse);
    Graph<T> net = reference_network<T>(pre);
    net.set_plan_options({fuse, fuse, fuse, fuse, fuse});
    net.set_input_grad(true);
    const Tensor<T> x = get<T>(pre + "x");
    const auto labels = testing::reference_labels(reference(), pre + "labels");
    CrossEntropyLoss<T> xent(Reduction::mean, 0.1);
    const Tensor<T>& logits = net.forward(x, Context{Mode::Train, 0});
    compare("train.logits", logits, get<T>(pre + "train.logits"));
    Tensor<T> loss({1});
    loss[0] = xent.forward(logits, labels.data());
    compare("train.loss", loss, get<T>(pre + "train.loss"));
    compare("train.dx", net.backward(xent.backward()), get<T>(pre + "train.dx"));
    for (auto& p : net.parameters())
      compare("train.grad." + p.name, *p.grad, get<T>(pre + "train.grad." + p.name));
    compare_buffers(net, pre + "train.after.");
    // Evaluation uses the running statistics (folded into the convolutions when fusing).
    compare("eval.logits", net.forward(x, Context{Mode::Eval, 0}), get<T>(pre + "eval.logits"));
  }
}

TEST_CASE_TEMPLATE("resnet parity: 3 SGD-Nesterov steps under OneCycleLR equal PyTorch's", T, float,
                   double) {
  const std::string pre = testing::precision_prefix<T>();
  Graph<T> net = reference_network<T>(pre);
  SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.nesterov = true;
  SGD<T> sgd(split_weight_decay(net.parameters(), 5e-4), o);
  LrScheduler<T> schedule(sgd,
                          std::make_shared<OneCycleLR>(10, 0.3, 25, 1e4, /*cycle_momentum=*/false));
  CrossEntropyLoss<T> xent(Reduction::mean, 0.1);
  const Tensor<T> x = get<T>(pre + "x");
  const auto labels = testing::reference_labels(reference(), pre + "labels");
  for (int step = 0; step < 3; ++step) {
    train_step(net, xent, sgd, x, labels.data());
    schedule.step();
  }
  for (auto& p : net.parameters())
    compare("sgd3." + p.name, *p.value, get<T>(pre + "sgd3." + p.name));
  compare_buffers(net, pre + "sgd3.");
}

}  // namespace test_parity_resnet
