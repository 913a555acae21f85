// Freezing parameters (requires_grad = False): optimizers leave a frozen
// parameter and its state untouched, gradients still flow through its layer
// to the layers before, clipping and the finite check ignore it, checkpoints
// keep it, and a parameter unfrozen later resumes exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "minidl/io/checkpoint.hpp"
#include "minidl/minidl.hpp"
#include "minidl/testing/gradcheck.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_freeze {

using namespace minidl;

namespace {

// fc1 (6 -> 8) -> relu -> fc2 (8 -> 8) -> relu -> fc3 (8 -> 3).
template <typename T>
Sequential<T> make_mlp(std::uint64_t seed = 3) {
  Sequential<T> net;
  net.add("fc1", Linear<T>(6, 8));
  net.add("relu1", ReLU<T>());
  net.add("fc2", Linear<T>(8, 8));
  net.add("relu2", ReLU<T>());
  net.add("fc3", Linear<T>(8, 3));
  net.reset_parameters(seed);
  return net;
}

// A fixed batch of 5 samples and their labels.
template <typename T>
struct Batch {
  Tensor<T> x{5, 6};
  std::vector<std::int32_t> labels{0, 2, 1, 1, 0};
  Batch() {
    Rng rng(21);
    for (auto& v : x) v = static_cast<T>(rng.normal());
  }
};

template <typename T>
std::vector<T> bits_of(const Tensor<T>& t) {
  return std::vector<T>(t.begin(), t.end());
}

// Every value of the parameters whose name starts with `prefix`.
template <typename T>
std::vector<T> values(Sequential<T>& net, const std::string& prefix) {
  std::vector<T> out;
  for (auto& p : net.parameters())
    if (p.name.compare(0, prefix.size(), prefix) == 0)
      for (T v : *p.value) out.push_back(v);
  return out;
}

// Every state tensor of the optimizer whose name mentions `param`.
template <typename T>
std::vector<T> state_of(Optimizer<T>& opt, const std::string& param) {
  std::vector<T> out;
  for (auto& [name, tensor] : opt.state())
    if (name.find(param) != std::string::npos)
      for (T v : *tensor) out.push_back(v);
  return out;
}

using MakeOptimizer = std::function<std::unique_ptr<Optimizer<float>>(Sequential<float>&)>;

std::vector<std::pair<std::string, MakeOptimizer>> optimizers() {
  // Weight decay everywhere: a frozen parameter must not decay either.
  return {{"SGD",
           [](Sequential<float>& net) -> std::unique_ptr<Optimizer<float>> {
             SgdOptions o;
             o.lr = 0.05;
             o.momentum = 0.9;
             o.weight_decay = 0.01;
             return std::make_unique<SGD<float>>(net.parameters(), o);
           }},
          {"Adam",
           [](Sequential<float>& net) -> std::unique_ptr<Optimizer<float>> {
             AdamOptions o;
             o.lr = 1e-2;
             o.weight_decay = 0.01;
             return std::make_unique<Adam<float>>(net.parameters(), o);
           }},
          {"AdamW",
           [](Sequential<float>& net) -> std::unique_ptr<Optimizer<float>> {
             AdamWOptions o;
             o.lr = 1e-2;
             return std::make_unique<AdamW<float>>(net.parameters(), o);
           }},
          {"RMSprop", [](Sequential<float>& net) -> std::unique_ptr<Optimizer<float>> {
             RmspropOptions o;
             o.lr = 1e-3;
             o.momentum = 0.5;
             o.centered = true;
             o.weight_decay = 0.01;
             return std::make_unique<RMSprop<float>>(net.parameters(), o);
           }}};
}

}  // namespace

TEST_CASE("a frozen layer keeps its weights and optimizer state bit for bit while others move") {
  for (const auto& entry : optimizers()) {
    // Plain variables, not structured bindings: C++17 lets no lambda (CAPTURE) capture those.
    const std::string& name = entry.first;
    const auto& make = entry.second;
    CAPTURE(name);
    auto net = make_mlp<float>();
    auto opt = make(net);
    CrossEntropyLoss<float> loss;
    Batch<float> batch;
    // Two steps with everything trainable, so that fc2 has a gradient, moments
    // and buffers; then freeze it, after the optimizer was made.
    for (int t = 0; t < 2; ++t) train_step(net, loss, *opt, batch.x, batch.labels.data());
    net.freeze("fc2");
    const auto fc2 = values(net, "fc2."), fc1 = values(net, "fc1."), fc3 = values(net, "fc3.");
    const auto fc2_state = state_of(*opt, "fc2.");
    REQUIRE(!fc2_state.empty());
    for (int t = 0; t < 5; ++t) train_step(net, loss, *opt, batch.x, batch.labels.data());
    CHECK(values(net, "fc2.") == fc2);
    CHECK(state_of(*opt, "fc2.") == fc2_state);
    CHECK(values(net, "fc1.") != fc1);
    CHECK(values(net, "fc3.") != fc3);
    CHECK(opt->step_count() == 7);
    for (std::size_t i = 0; i < opt->parameters().size(); ++i) {
      const bool frozen = opt->parameters()[i].name.compare(0, 4, "fc2.") == 0;
      CHECK(opt->update_count(i) == (frozen ? 2 : 7));
    }
  }
}

TEST_CASE("freeze and unfreeze name a parameter, a node or a prefix of node names") {
  Sequential<float> net;
  net.add("layer1.0.fc", Linear<float>(4, 4));
  net.add("layer1.1.fc", Linear<float>(4, 4));
  net.add("layer10.fc", Linear<float>(4, 4));
  net.add("relu", ReLU<float>());
  net.add("head", Linear<float>(4, 2));
  auto frozen = [&] {
    std::vector<std::string> names;
    for (auto& p : net.parameters())
      if (!p.trainable()) names.push_back(p.name);
    return names;
  };
  net.freeze("layer1");
  CHECK(frozen() == std::vector<std::string>{"layer1.0.fc.weight", "layer1.0.fc.bias",
                                             "layer1.1.fc.weight", "layer1.1.fc.bias"});
  net.unfreeze("layer1.1.fc");
  CHECK(frozen() == std::vector<std::string>{"layer1.0.fc.weight", "layer1.0.fc.bias"});
  net.freeze("head.bias");
  CHECK(frozen() ==
        std::vector<std::string>{"layer1.0.fc.weight", "layer1.0.fc.bias", "head.bias"});
  net.freeze("");
  CHECK(frozen().size() == net.parameters().size());
  net.unfreeze("");
  CHECK(frozen().empty());

  CHECK_ERROR(net.freeze("layer2"), "cannot freeze 'layer2'", "no parameter");
  CHECK_ERROR(net.unfreeze("layer1.0.f"), "cannot unfreeze 'layer1.0.f'");  // not at a dot
  CHECK_ERROR(net.freeze("layer"), "cannot freeze 'layer'");
  CHECK_ERROR(net.freeze("head.weigh"), "cannot freeze 'head.weigh'");
  CHECK_ERROR(net.freeze("relu"), "cannot freeze 'relu'", "has no parameters");
  CHECK_ERROR(net.layer("head").set_frozen("gamma", true), "head (Linear)",
              "no parameter named 'gamma'");
  CHECK(frozen().empty());  // a failed call changed nothing
}

TEST_CASE("gradients pass through frozen layers to the layers before (finite differences)") {
  // A frozen layer in the middle and a frozen last layer: fc1's gradients
  // must still match finite differences of the whole network.
  for (const char* frozen : {"fc2", "fc3", "fc2.weight"}) {
    CAPTURE(frozen);
    auto net = make_mlp<double>(5);
    net.freeze(frozen);
    Tensor<double> x = testing::random_tensor(Shape{4, 6}, 7);
    const Tensor<double> R = testing::random_tensor(Shape{4, 3}, 8);
    const Context ctx{Mode::Train, 0};
    auto loss = [&] {
      const Tensor<double>& y = net.forward(x, ctx);
      double s = 0;
      for (std::int64_t i = 0; i < y.size(); ++i) s += y[i] * R[i];
      return s;
    };
    net.forward(x, ctx);
    net.backward(R);
    for (auto& p : net.parameters()) {
      if (!p.trainable()) continue;
      const Tensor<double> analytic = p.grad->clone();
      const auto r = testing::compare_with_finite_differences(*p.value, analytic, loss, p.name);
      CHECK_MESSAGE(r.max_rel_error < 1e-6, r.worst);
    }
  }
  // A frozen convolution between two trainable ones, under every plan option set.
  for (const PlanOptions options :
       {PlanOptions{true, true, true}, PlanOptions{false, false, false}}) {
    Graph<double> net;
    net.add("conv1", Conv2d<double>(2, 3, 3, 1, 1));
    net.add("relu1", ReLU<double>(true));
    net.add("conv2", Conv2d<double>(3, 4, 3, 1, 1));
    net.add("relu2", ReLU<double>(true));
    net.add("pool", MaxPool2d<double>(2));
    net.add("flatten", Flatten<double>());
    net.add("fc", Linear<double>(4 * 3 * 3, 2));
    net.reset_parameters(11);
    net.set_plan_options(options);
    net.freeze("conv2");
    Tensor<double> x = testing::random_tensor(Shape{2, 2, 7, 7}, 12);
    const Tensor<double> R = testing::random_tensor(Shape{2, 2}, 13);
    const Context ctx{Mode::Train, 0};
    auto loss = [&] {
      const Tensor<double>& y = net.forward(x, ctx);
      double s = 0;
      for (std::int64_t i = 0; i < y.size(); ++i) s += y[i] * R[i];
      return s;
    };
    net.forward(x, ctx);
    net.backward(R);
    for (auto& p : net.parameters()) {
      if (!p.trainable()) continue;
      const Tensor<double> analytic = p.grad->clone();
      const auto r = testing::compare_with_finite_differences(*p.value, analytic, loss, p.name);
      CHECK_MESSAGE(r.max_rel_error < 1e-6, r.worst);
    }
  }
}

TEST_CASE("a Linear whose parameters are all frozen skips its weight gradient, not dx") {
  auto net = make_mlp<float>();
  Batch<float> batch;
  const Context ctx{Mode::Train, 0};
  Tensor<float> dy{5, 3};
  for (std::int64_t i = 0; i < dy.size(); ++i) dy[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  auto& fc2 = static_cast<Linear<float>&>(net.layer("fc2"));
  net.forward(batch.x, ctx);
  net.backward(dy);
  const auto weight_grad = bits_of(fc2.weight_grad());
  const auto fc1_grad = bits_of(static_cast<Linear<float>&>(net.layer("fc1")).weight_grad());

  net.freeze("fc2");
  CHECK(!fc2.needs_param_grad());
  fc2.weight_grad().fill(7.0f);
  net.forward(batch.x, ctx);
  net.backward(dy);
  CHECK(bits_of(fc2.weight_grad()) == std::vector<float>(weight_grad.size(), 7.0f));
  CHECK(bits_of(static_cast<Linear<float>&>(net.layer("fc1")).weight_grad()) == fc1_grad);

  net.freeze("fc3.bias");  // one of two: the kernel still runs for the other
  CHECK(net.layer("fc3").needs_param_grad());
  net.unfreeze("fc2");
  net.forward(batch.x, ctx);
  net.backward(dy);
  CHECK(bits_of(fc2.weight_grad()) == weight_grad);
}

TEST_CASE("clipping and the finite check of train_step ignore frozen parameters") {
  Tensor<float> a{3}, b{2}, ga{3}, gb{2};
  for (std::int64_t i = 0; i < 3; ++i) ga[i] = 1.0f;
  gb[0] = 300.0f;
  gb[1] = -400.0f;
  const bool frozen = true;
  const std::vector<Parameter<float>> params = {{"a", &a, &ga}, {"b", &b, &gb, &frozen}};
  CHECK(clip_grad_norm(params, 1.0) == doctest::Approx(std::sqrt(3.0)));
  for (std::int64_t i = 0; i < 3; ++i)
    CHECK(ga[i] == doctest::Approx(1.0 / (std::sqrt(3.0) + 1e-6)));
  CHECK(gb[0] == 300.0f);
  CHECK(gb[1] == -400.0f);
  clip_grad_value(params, 0.1);
  CHECK(ga[0] == 0.1f);
  CHECK(gb[1] == -400.0f);
  clip_grad_norm(params, 1.0, INFINITY);
  CHECK(gb[0] == 300.0f);

  // A frozen layer's gradient is not computed, so whatever it holds is not checked.
  auto net = make_mlp<float>();
  Adam<float> adam(net.parameters());
  net.freeze("fc2");
  static_cast<Linear<float>&>(net.layer("fc2")).weight_grad().fill(NAN);
  CrossEntropyLoss<float> loss;
  Batch<float> batch;
  CHECK_NOTHROW(train_step(net, loss, adam, batch.x, batch.labels.data()));
  net.unfreeze("fc2");
  static_cast<Linear<float>&>(net.layer("fc1")).weight_grad().fill(NAN);
  CHECK_NOTHROW(train_step(net, loss, adam, batch.x, batch.labels.data()));  // recomputed
}

TEST_CASE("checkpoints keep frozen parameters and each parameter's update count") {
  testing::TempDir dir("minidl_freeze_");
  const std::string path = dir.file("frozen.safetensors");
  CrossEntropyLoss<float> loss;
  Batch<float> batch;
  // fc1 frozen for the first 3 of 8 steps, then trained: its Adam bias
  // correction counts its own 5 updates, and a resumed run must know that.
  auto run = [&](Sequential<float>& net, Adam<float>& adam, int from, int to) {
    for (int t = from; t < to; ++t) {
      if (t == 3) net.unfreeze("fc1");
      train_step(net, loss, adam, batch.x, batch.labels.data());
    }
  };
  auto straight = make_mlp<float>();
  Adam<float> straight_adam(straight.parameters());
  straight.freeze("fc1");
  run(straight, straight_adam, 0, 8);

  {
    auto first = make_mlp<float>();
    Adam<float> adam(first.parameters());
    first.freeze("fc1");
    run(first, adam, 0, 5);
    save_checkpoint(path, first, &adam);
  }
  const SafetensorsFile file = read_safetensors(path);
  CHECK(file.find("fc1.weight") != nullptr);  // saved though it was frozen once
  CHECK(file.metadata.at("optimizer.updates.fc1.weight") == "2");
  CHECK(file.metadata.count("optimizer.updates.fc2.weight") == 0);

  auto resumed = make_mlp<float>(99);
  Adam<float> adam(resumed.parameters());
  load_checkpoint(path, resumed, &adam);
  CHECK(adam.update_count(0) == 2);
  CHECK(adam.update_count(2) == 5);
  run(resumed, adam, 5, 8);
  CHECK(values(resumed, "") == values(straight, ""));

  // The comparison can tell: without the update counts, fc1 ends elsewhere.
  auto forgetful = make_mlp<float>(99);
  Adam<float> forgetful_adam(forgetful.parameters());
  load_checkpoint(path, forgetful, &forgetful_adam);
  forgetful_adam.set_update_count(0, 5);
  run(forgetful, forgetful_adam, 5, 8);
  CHECK(values(forgetful, "fc1.") != values(straight, "fc1."));

  // A corrupt count is an error naming the file and the entry.
  SafetensorsFile bad = file;
  bad.metadata["optimizer.updates.fc1.weight"] = "9";
  const std::string bad_path = dir.file("bad.safetensors");
  write_safetensors(bad_path, bad);
  auto victim = make_mlp<float>(99);
  Adam<float> victim_adam(victim.parameters());
  CHECK_ERROR(load_checkpoint(bad_path, victim, &victim_adam), bad_path,
              "optimizer.updates.fc1.weight", "from 0 to 5");
  auto fresh = make_mlp<float>(99);
  CHECK(values(victim, "") == values(fresh, ""));  // untouched
}

TEST_CASE("training with a frozen layer gives the same bits on 1 and 2 threads") {
  auto train = [](int threads) {
    set_num_threads(threads);
    Graph<float> net;
    net.add("conv1", Conv2d<float>(1, 8, 3, 1, 1));
    net.add("relu1", ReLU<float>(true));
    net.add("pool1", MaxPool2d<float>(2));
    net.add("conv2", Conv2d<float>(8, 8, 3, 1, 1));
    net.add("relu2", ReLU<float>(true));
    net.add("pool2", MaxPool2d<float>(2));
    net.add("flatten", Flatten<float>());
    net.add("fc1", Linear<float>(8 * 7 * 7, 32));
    net.add("relu3", ReLU<float>());
    net.add("fc2", Linear<float>(32, 10));
    net.reset_parameters(4);
    net.freeze("conv2");
    net.freeze("fc1");
    Adam<float> adam(net.parameters());
    CrossEntropyLoss<float> loss;
    Tensor<float> x{16, 1, 28, 28};
    Rng rng(5);
    for (auto& v : x) v = static_cast<float>(rng.normal());
    std::vector<std::int32_t> labels(16);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 10);
    for (int t = 0; t < 3; ++t) train_step(net, loss, adam, x, labels.data());
    return values(net, "");
  };
  const int saved = num_threads();
  const auto one = train(1), two = train(2);
  set_num_threads(saved);
  CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
}

}  // namespace test_freeze
