// The LibTorch twin of benchmarks/pytorch/epoch.py, for the C++ user whose
// alternative to minidl is PyTorch's own C++ library: the same MNIST CNN,
// recipe (Adam 1e-3, batch 64, per-batch uint8 -> float conversion), random
// numbers and printed lines. Seeded alike, the two print the same mean loss
// and accuracy; only the interpreter between the program and ATen differs.
//
//   libtorch_epoch [--threads N] [--data DIR] [--limit-train N] [--eval-batch N]
// Data: --data, else $MNIST_DIR, else random images of the same size.
// Built by its own CMake project (benchmarks/libtorch/CMakeLists.txt), run by
// benchmarks/pytorch/compare.sh.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "minidl/data/mnist.hpp"
#include "torch_libraries.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// tools/reference_model.py's MnistCnn. The members are declared, and so
// created and initialised from the default generator, in the order the
// Python model creates them, which gives both the same initial weights.
struct MnistCnnImpl : torch::nn::Module {
  MnistCnnImpl()
      : conv1(register_module("conv1",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).padding(1)))),
        conv2(register_module("conv2",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1)))),
        fc1(register_module("fc1", torch::nn::Linear(64 * 7 * 7, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, 10))),
        dropout(register_module("dropout", torch::nn::Dropout(0.5))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2(x)), 2);
    x = dropout(torch::relu(fc1(x.flatten(1))));
    return fc2(x);
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2;
  torch::nn::Dropout dropout;
};
TORCH_MODULE(MnistCnn);

// Images as uint8 [N, 28, 28], labels as int64 [N], as epoch.py holds them.
struct Split {
  torch::Tensor images, labels;
};

Split from_minidl(const minidl::ImageDataset& d) {
  const auto n = static_cast<std::int64_t>(d.size());
  std::vector<std::int64_t> labels(d.labels.begin(), d.labels.end());
  return {torch::from_blob(const_cast<std::uint8_t*>(d.images.data()), {n, d.rows, d.cols},
                           torch::kUInt8)
              .clone(),
          torch::tensor(labels, torch::kInt64)};
}

// The random stand-in for MNIST, drawn exactly as epoch.py draws it.
std::pair<Split, Split> random_mnist() {
  auto g = at::make_generator<at::CPUGeneratorImpl>(1);
  Split train, test;
  train.images = torch::randint(0, 256, {60000, 28, 28}, g, torch::kUInt8);
  train.labels = torch::randint(0, 10, {60000}, g, torch::kInt64);
  test.images = torch::randint(0, 256, {10000, 28, 28}, g, torch::kUInt8);
  test.labels = torch::randint(0, 10, {10000}, g, torch::kInt64);
  return {train, test};
}

// uint8 images -> float32 [count, 1, 28, 28] in [-1, 1], rounded as numpy
// rounds reference_model.normalise: (p / 255 - 0.5) / 0.5 in float32.
torch::Tensor normalise(const torch::Tensor& images, const std::int64_t* index,
                        std::int64_t count) {
  const std::int64_t pixels = images.size(1) * images.size(2);
  torch::Tensor x = torch::empty({count, 1, images.size(1), images.size(2)}, torch::kFloat32);
  const std::uint8_t* src = images.data_ptr<std::uint8_t>();
  float* dst = x.data_ptr<float>();
  for (std::int64_t i = 0; i < count; ++i)
    for (std::int64_t p = 0; p < pixels; ++p)
      dst[i * pixels + p] = (static_cast<float>(src[index[i] * pixels + p]) / 255.0f - 0.5f) / 0.5f;
  return x;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::int64_t whole_number(const char* flag, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 0)
    throw std::invalid_argument(std::string(flag) + " wants a whole number >= 0, not '" + text +
                                "'");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::int64_t threads = 2, limit_train = 0, eval_batch = 64;  // limit 0: all images
    std::string data_dir = std::getenv("MNIST_DIR") ? std::getenv("MNIST_DIR") : "";
    for (int i = 1; i < argc; i += 2) {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(argv[i]) + " wants a value");
      if (!std::strcmp(argv[i], "--threads"))
        threads = whole_number(argv[i], argv[i + 1]);
      else if (!std::strcmp(argv[i], "--data"))
        data_dir = argv[i + 1];
      else if (!std::strcmp(argv[i], "--limit-train"))
        limit_train = whole_number(argv[i], argv[i + 1]);
      else if (!std::strcmp(argv[i], "--eval-batch"))
        eval_batch = whole_number(argv[i], argv[i + 1]);
      else
        throw std::invalid_argument(
            std::string("unknown option '") + argv[i] +
            "'; usage: libtorch_epoch [--threads N] [--data DIR] [--limit-train N] "
            "[--eval-batch N]");
    }
    if (threads < 1 || eval_batch < 1)
      throw std::invalid_argument("--threads and --eval-batch must be at least 1");
    torch::set_num_threads(static_cast<int>(threads));
    torch::manual_seed(1);

    Split train, test;
    if (!data_dir.empty()) {
      const minidl::Mnist m = minidl::load_mnist(data_dir);
      train = from_minidl(m.train);
      test = from_minidl(m.test);
    } else {
      std::tie(train, test) = random_mnist();
    }
    MnistCnn model;
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));

    model->train();
    const torch::Tensor order =
        torch::randperm(train.images.size(0), at::make_generator<at::CPUGeneratorImpl>(1));
    const std::int64_t n = limit_train > 0 ? std::min(limit_train, order.size(0)) : order.size(0);
    const std::int64_t* idx = order.data_ptr<std::int64_t>();
    auto t0 = Clock::now();
    double total = 0;
    for (std::int64_t b = 0; b < n; b += 64) {
      const std::int64_t count = std::min<std::int64_t>(64, n - b);
      const torch::Tensor x = normalise(train.images, idx + b, count);
      opt.zero_grad();
      const torch::Tensor loss = torch::nn::functional::cross_entropy(
          model->forward(x), train.labels.index_select(0, order.slice(0, b, b + count)));
      loss.backward();
      opt.step();
      total += loss.item<double>();
    }
    double s = seconds_since(t0);
    const std::int64_t batches = (n + 63) / 64;
    std::printf("train_epoch threads=%lld seconds=%.3f images_per_s=%.0f mean_loss=%.4f\n",
                static_cast<long long>(threads), s, static_cast<double>(n) / s,
                total / static_cast<double>(batches));

    model->eval();
    torch::NoGradGuard no_grad;
    const std::int64_t n_test = test.images.size(0);
    std::vector<std::int64_t> in_order(static_cast<std::size_t>(n_test));
    for (std::int64_t i = 0; i < n_test; ++i) in_order[static_cast<std::size_t>(i)] = i;
    t0 = Clock::now();
    std::int64_t correct = 0;
    for (std::int64_t b = 0; b < n_test; b += eval_batch) {
      const std::int64_t count = std::min(eval_batch, n_test - b);
      const torch::Tensor pred =
          model->forward(normalise(test.images, in_order.data() + b, count)).argmax(1);
      correct += pred.eq(test.labels.slice(0, b, b + count)).sum().item<std::int64_t>();
    }
    s = seconds_since(t0);
    std::printf(
        "evaluate_test threads=%lld batch=%lld seconds=%.3f images_per_s=%.0f accuracy=%.4f\n",
        static_cast<long long>(threads), static_cast<long long>(eval_batch), s,
        static_cast<double>(n_test) / s,
        static_cast<double>(correct) / static_cast<double>(n_test));

    // Latency: one image at a time, median of 200 after 20 warm-up runs.
    std::vector<double> lat;
    for (std::int64_t r = 0; r < 220; ++r) {
      const std::int64_t image = r % 1000;
      const torch::Tensor x = normalise(test.images, &image, 1);
      t0 = Clock::now();
      volatile std::int64_t label = model->forward(x).argmax(1)[0].item<std::int64_t>();
      (void)label;
      if (r >= 20) lat.push_back(seconds_since(t0));
    }
    std::sort(lat.begin(), lat.end());  // numpy's median: the mean of the middle two
    std::printf("latency_1_image threads=%lld median_ms=%.3f\n", static_cast<long long>(threads),
                (lat[99] + lat[100]) / 2 * 1e3);
    std::printf("peak_rss_mb=%.1f\n", peak_rss_mb());
    std::printf("%s\n", loaded_libraries().c_str());
  } catch (const c10::Error& e) {  // what() would add a multi-line backtrace
    std::fprintf(stderr, "libtorch_epoch: error: %s\n", e.what_without_backtrace());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libtorch_epoch: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
