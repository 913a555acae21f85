// examples/mlp/main.cpp - a two-layer perceptron learns two interleaved spirals,
// saves itself, loads into a fresh network and checks it predicts the same.
//
//   mlp [--out DIR]     (writes DIR/mlp.safetensors, default: the current folder)
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "minidl/io/checkpoint.hpp"
#include "minidl/minidl.hpp"

using namespace minidl;

// Two spirals of n points each, class 0 and class 1, in [-1, 1]^2.
static void make_spirals(std::int64_t n, Tensor<float>& x, std::vector<std::int32_t>& labels) {
  Rng rng(7);
  x.resize(Shape{2 * n, 2});
  labels.resize(static_cast<std::size_t>(2 * n));
  for (std::int64_t i = 0; i < 2 * n; ++i) {
    const int cls = static_cast<int>(i % 2);
    const double t = 0.25 + 2.5 * static_cast<double>(i / 2) /
                                static_cast<double>(n);  // radius grows with angle
    const double angle = 2.2 * t + cls * 3.14159265358979;
    x(i, 0) = static_cast<float>(0.35 * t * std::cos(angle) + rng.uniform(-0.02, 0.02));
    x(i, 1) = static_cast<float>(0.35 * t * std::sin(angle) + rng.uniform(-0.02, 0.02));
    labels[static_cast<std::size_t>(i)] = cls;
  }
}

static Sequential<float> make_mlp() {
  Sequential<float> net;
  net.add("fc1", Linear<float>(2, 64));
  net.add("relu", ReLU<float>());
  net.add("fc2", Linear<float>(64, 2));
  return net;
}

int main(int argc, char** argv) {
  const std::string out = argc == 3 && std::strcmp(argv[1], "--out") == 0 ? argv[2] : ".";
  try {
    Tensor<float> x;
    std::vector<std::int32_t> labels;
    make_spirals(200, x, labels);

    Sequential<float> net = make_mlp();
    net.reset_parameters(1);
    std::printf("%s", net.summary(x.shape()).c_str());
    Adam<float> adam(net.parameters(), AdamOptions{0.01});
    CrossEntropyLoss<float> loss;
    for (int step = 1; step <= 1500; ++step) {
      const float l = train_step(net, loss, adam, x, labels.data());
      if (step % 300 == 0) std::printf("step %4d  loss %.4f\n", step, static_cast<double>(l));
    }
    ConfusionMatrix cm(2);
    const auto pred = argmax_rows(net.forward(x, Context{}));
    for (std::size_t i = 0; i < labels.size(); ++i) cm.add(labels[i], pred[i]);
    std::printf("training accuracy %.4f\n", cm.accuracy());

    const std::string path = out + "/mlp.safetensors";
    save_checkpoint(path, net, &adam);
    Sequential<float> loaded = make_mlp();
    load_checkpoint(path, loaded);
    const Tensor<float> a = net.forward(x, Context{}).clone();
    const Tensor<float>& b = loaded.forward(x, Context{});
    const bool same =
        std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
    std::printf("saved %s; the reloaded network gives %s logits\n", path.c_str(),
                same ? "identical" : "DIFFERENT");
    return same && cm.accuracy() > 0.95 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlp: error: %s\n", e.what());
    return 2;
  }
}
