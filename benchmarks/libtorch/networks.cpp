// The LibTorch twin of benchmarks/networks and benchmarks/pytorch/networks.py: the same five
// networks (1x28x28 in, 10 classes), the same measurements after warm-up (the training step:
// zero_grad, forward, cross-entropy, backward, Adam lr 1e-3; the latency of one image in
// evaluation mode), the same random numbers as networks.py and the same printed lines.
//
//   libtorch_networks --network NAME [--batch N] [--threads N] [--steps N] [--runs N]
//                     [--warmup N]
// Built by benchmarks/libtorch/CMakeLists.txt, run by benchmarks/pytorch/compare_networks.sh.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../network_flags.hpp"
#include "torch_libraries.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace nn = torch::nn;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Multiply-adds per image of the convolutions and linear layers, counted as
// benchmarks/networks counts them: output elements x fan-in for the forward, as many for the
// weight gradient, and again for the input gradient when the layer's input needs one.
struct Work {
  std::int64_t forward_macs = 0, train_macs = 0;
};

void count(Work* work, const torch::Tensor& weight, const torch::Tensor& x,
           const torch::Tensor& y) {
  if (!work) return;
  const std::int64_t macs = y[0].numel() * (weight.numel() / weight.size(0));
  work->forward_macs += macs;
  work->train_macs += macs * (x.requires_grad() ? 3 : 2);
}

// A chain of modules, run one by one so that the convolutions and linear layers can be counted.
torch::Tensor run_chain(nn::Sequential& chain, torch::Tensor x, Work* work) {
  for (auto& m : *chain) {
    torch::Tensor y = m.forward(x);
    if (auto* conv = m.ptr()->as<nn::Conv2d>())
      count(work, conv->weight, x, y);
    else if (auto* linear = m.ptr()->as<nn::Linear>())
      count(work, linear->weight, x, y);
    x = y;
  }
  return x;
}

struct Network : nn::Module {
  // Counts the multiply-adds into `work` when given.
  virtual torch::Tensor forward(torch::Tensor x, Work* work = nullptr) = 0;
};

struct Chain : Network {
  explicit Chain(nn::Sequential chain) : layers(register_module("layers", chain)) {}
  torch::Tensor forward(torch::Tensor x, Work* work) override {
    return run_chain(layers, std::move(x), work);
  }
  nn::Sequential layers;
};

nn::Conv2dOptions conv(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride = 1,
                       std::int64_t padding = 0) {
  return nn::Conv2dOptions(in, out, k).stride(stride).padding(padding);
}

// tools/reference_model.py's MnistCnn, as one chain.
std::shared_ptr<Network> mnist_cnn() {
  return std::make_shared<Chain>(nn::Sequential(
      nn::Conv2d(conv(1, 32, 3, 1, 1)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Conv2d(conv(32, 64, 3, 1, 1)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Flatten(), nn::Linear(64 * 7 * 7, 128), nn::ReLU(), nn::Dropout(0.5),
      nn::Linear(128, 10)));
}

std::shared_ptr<Network> lenet5() {
  return std::make_shared<Chain>(nn::Sequential(
      nn::Conv2d(conv(1, 6, 5, 1, 2)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Conv2d(conv(6, 16, 5)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(),
      nn::Linear(16 * 5 * 5, 120), nn::ReLU(), nn::Linear(120, 84), nn::ReLU(),
      nn::Linear(84, 10)));
}

std::shared_ptr<Network> vgg_strided() {
  return std::make_shared<Chain>(nn::Sequential(
      nn::Conv2d(conv(1, 16, 3, 1, 1)), nn::ReLU(), nn::Conv2d(conv(16, 32, 3, 2, 1)), nn::ReLU(),
      nn::Conv2d(conv(32, 64, 3, 1, 1)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Flatten(), nn::Linear(64 * 7 * 7, 10)));
}

std::shared_ptr<Network> wide() {
  return std::make_shared<Chain>(nn::Sequential(
      nn::Conv2d(conv(1, 64, 3, 1, 1)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Conv2d(conv(64, 128, 3, 1, 1)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Flatten(), nn::Linear(128 * 7 * 7, 10)));
}

// benchmarks/resnet/train_resnet.py's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + x),
// with a 1x1 convolution and batch norm on the shortcut when the shape changes.
struct BasicBlock : nn::Module {
  BasicBlock(std::int64_t in, std::int64_t out, std::int64_t stride)
      : conv1(register_module("conv1", nn::Conv2d(conv(in, out, 3, stride, 1).bias(false)))),
        bn1(register_module("bn1", nn::BatchNorm2d(out))),
        conv2(register_module("conv2", nn::Conv2d(conv(out, out, 3, 1, 1).bias(false)))),
        bn2(register_module("bn2", nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out)
      downsample = register_module(
          "downsample",
          nn::Sequential(nn::Conv2d(conv(in, out, 1, stride).bias(false)), nn::BatchNorm2d(out)));
  }

  torch::Tensor forward(const torch::Tensor& x, Work* work) {
    torch::Tensor y = conv1(x);
    count(work, conv1->weight, x, y);
    const torch::Tensor h = torch::relu(bn1(y));
    y = conv2(h);
    count(work, conv2->weight, h, y);
    const torch::Tensor shortcut = downsample ? run_chain(downsample, x, work) : x;
    return torch::relu(bn2(y) + shortcut);
  }

  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Sequential downsample{nullptr};
};

// train_resnet.py's ResNet (examples/resnet's network) at its defaults: ResNet-20, width 16.
struct ResNet : Network {
  explicit ResNet(int depth = 20, std::int64_t width = 16)
      : conv1(register_module("conv1", nn::Conv2d(conv(1, width, 3, 1, 1).bias(false)))),
        bn1(register_module("bn1", nn::BatchNorm2d(width))),
        fc(nullptr) {
    const int blocks = (depth - 2) / 6;
    std::int64_t channels = width;
    for (int stage = 0; stage < 3; ++stage) {
      const std::int64_t out = width << stage;
      nn::ModuleList layer;
      for (int b = 0; b < blocks; ++b) {
        layer->push_back(std::make_shared<BasicBlock>(channels, out, stage > 0 && b == 0 ? 2 : 1));
        channels = out;
      }
      stages.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    }
    fc = register_module("fc", nn::Linear(channels, 10));
    torch::NoGradGuard no_grad;  // He initialisation of the convolutions, as torchvision's
    for (auto& m : modules(false))
      if (auto* c = m->as<nn::Conv2d>())
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
  }

  torch::Tensor forward(torch::Tensor x, Work* work) override {
    torch::Tensor y = conv1(x);
    count(work, conv1->weight, x, y);
    y = torch::relu(bn1(y));
    for (auto& stage : stages)
      for (auto& block : *stage) y = block->as<BasicBlock>()->forward(y, work);
    const torch::Tensor pooled = torch::adaptive_avg_pool2d(y, {1, 1}).flatten(1);
    y = fc(pooled);
    count(work, fc->weight, pooled, y);
    return y;
  }

  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  std::vector<nn::ModuleList> stages;
  nn::Linear fc;
};

// The network of a name and its default batch, as benchmarks/networks has them.
std::pair<std::shared_ptr<Network>, std::int64_t> make_network(const std::string& name) {
  if (name == "mnist_cnn") return {mnist_cnn(), 64};
  if (name == "lenet5") return {lenet5(), 64};
  if (name == "vgg_strided") return {vgg_strided(), 64};
  if (name == "wide") return {wide(), 64};
  if (name == "resnet") return {std::make_shared<ResNet>(), 128};
  throw std::invalid_argument("unknown --network '" + name +
                              "'; one of mnist_cnn, lenet5, vgg_strided, wide, resnet");
}

// numpy's median (the mean of the middle two of an even count) and the best.
std::pair<double, double> median_and_best(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front()};
}

void print_measure(const char* what, const std::string& network, std::int64_t threads,
                   std::int64_t batch, const std::vector<double>& ms, std::int64_t parameters,
                   const Work& w) {
  const auto [median, best] = median_and_best(ms);
  std::printf(
      "%s network=%s engine=libtorch threads=%lld batch=%lld reps=%zu median_ms=%.4f "
      "best_ms=%.4f parameters=%lld forward_macs_per_image=%lld train_macs_per_image=%lld\n",
      what, network.c_str(), static_cast<long long>(threads), static_cast<long long>(batch),
      ms.size(), median, best, static_cast<long long>(parameters),
      static_cast<long long>(w.forward_macs), static_cast<long long>(w.train_macs));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const network_bench::NetworkFlags flags =
        network_bench::parse_network_flags(argc, argv, "libtorch_networks");
    if (flags.help) {
      std::printf("%s\n", network_bench::network_usage("libtorch_networks").c_str());
      return 0;
    }
    if (flags.profile)
      throw std::invalid_argument("--profile times minidl's nodes; benchmarks/networks has it");
    const std::string& name = flags.name;
    std::int64_t batch = flags.batch;
    const std::int64_t threads = flags.threads, steps = flags.steps, runs = flags.runs,
                       warmup = flags.warmup;
    torch::set_num_threads(static_cast<int>(threads));
    torch::manual_seed(1);
    auto [model, default_batch] = make_network(name);
    if (batch == 0) batch = default_batch;
    std::int64_t parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();

    auto g = at::make_generator<at::CPUGeneratorImpl>(1);  // drawn as networks.py draws them
    const torch::Tensor x = torch::rand({batch, 1, 28, 28}, g) * 2 - 1;
    const torch::Tensor y = torch::randint(0, 10, {batch}, g, torch::kInt64);
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
    model->train();
    Work work;
    model->forward(x.slice(0, 0, 2), &work);  // two images: batch norm needs two values
    std::vector<double> ms;
    for (std::int64_t s = 0; s < warmup + steps; ++s) {
      const auto t = Clock::now();
      opt.zero_grad();
      const torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      opt.step();
      if (s >= warmup) ms.push_back(ms_since(t));
    }
    print_measure("train_step", name, threads, batch, ms, parameters, work);

    model->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor image = x.slice(0, 0, 1).clone();
    ms.clear();
    for (std::int64_t r = 0; r < warmup + runs; ++r) {
      const auto t = Clock::now();
      volatile std::int64_t label = model->forward(image).argmax(1)[0].item<std::int64_t>();
      (void)label;
      if (r >= warmup) ms.push_back(ms_since(t));
    }
    print_measure("latency_1_image", name, threads, 1, ms, parameters, work);
    std::printf("%s\n", loaded_libraries().c_str());
  } catch (const c10::Error& e) {  // what() would add a multi-line backtrace
    std::fprintf(stderr, "libtorch_networks: error: %s\n", e.what_without_backtrace());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libtorch_networks: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
