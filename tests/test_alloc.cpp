// No heap allocation inside a training step once warm: this executable
// replaces the global operator new to count every allocation.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "minidl/data/batch.hpp"
#include "minidl/minidl.hpp"

namespace {
std::atomic<long> g_allocations{0};

void* counted(std::size_t size, std::size_t align) {
  ++g_allocations;
  void* p = align > alignof(std::max_align_t)
                ? std::aligned_alloc(align, (size + align - 1) / align * align)
                : std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t size) {
  return counted(size, 0);
}
void* operator new[](std::size_t size) {
  return counted(size, 0);
}
void* operator new(std::size_t size, std::align_val_t a) {
  return counted(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a) {
  return counted(size, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

using namespace minidl;

TEST_CASE("a warm training step of the MNIST CNN allocates nothing, with 1 or 2 threads") {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    ImageDataset data;
    data.rows = data.cols = 28;
    data.images.assign(256 * 784, 0);
    data.labels.assign(256, 0);
    Rng rng(1);
    for (auto& p : data.images) p = static_cast<std::uint8_t>(rng.below(256));
    for (auto& l : data.labels) l = static_cast<std::uint8_t>(rng.below(10));
    std::vector<std::int64_t> order(256);
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);

    auto net = make_mnist_cnn<float>(1);
    Adam<float> adam(net.parameters());
    CrossEntropyLoss<float> loss;
    Tensor<float> x;
    std::vector<std::int32_t> labels;
    auto step = [&](std::int64_t b) {
      make_batch(data, order.data() + b * 64, 64, x, labels);
      train_step(net, loss, adam, x, labels.data());
    };
    step(0);  // warm-up: buffers, packing space, per-thread scratch
    step(1);
    const long before = g_allocations.load();
    step(2);
    step(3);
    const long during = g_allocations.load() - before;
    CAPTURE(threads);
    CHECK(during == 0);
  }
}

TEST_CASE("a warm training step of a residual graph allocates nothing") {
  set_num_threads(2);
  Graph<float> net;
  net.add("conv1", Conv2d<float>(3, 8, 3, 1, 1));
  net.add("relu1", ReLU<float>(false));  // read twice: not in place
  net.add("conv2", Conv2d<float>(8, 3, 3, 1, 1));
  net.add("add", Add<float>(), "conv2", "input");
  net.add("cat", Concat<float>(), "add", "relu1");
  net.add("pool", MaxPool2d<float>(2));
  net.add("flatten", Flatten<float>());
  net.add("fc", Linear<float>(11 * 8 * 8, 10));
  net.reset_parameters(1);
  Adam<float> adam(net.parameters());
  CrossEntropyLoss<float> loss;
  Tensor<float> x({8, 3, 16, 16});
  Rng rng(2);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  const std::int32_t labels[] = {0, 1, 2, 3, 4, 5, 6, 7};
  train_step(net, loss, adam, x, labels);  // warm-up
  train_step(net, loss, adam, x, labels);
  const long before = g_allocations.load();
  train_step(net, loss, adam, x, labels);
  CHECK(g_allocations.load() - before == 0);
}

TEST_CASE("the counter sees minidl's allocations (the check above can fail)") {
  const long before = g_allocations.load();
  Tensor<float> t({1000});
  CHECK(g_allocations.load() > before);
}

TEST_CASE("warm optimizer steps, clipping, losses and schedules allocate nothing") {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    // Large enough for several chunks and row blocks.
    Tensor<float> w({300, 257}), b({300}), gw({300, 257}), gb({300});
    Rng rng(2);
    for (auto* t : {&w, &b, &gw, &gb})
      for (auto& v : *t) v = static_cast<float>(rng.normal());
    const std::vector<Parameter<float>> params = {{"w", &w, &gw}, {"b", &b, &gb}};
    RmspropOptions rms_options;
    rms_options.momentum = 0.9;
    rms_options.centered = true;
    SgdOptions sgd_options;
    sgd_options.momentum = 0.9;
    sgd_options.nesterov = true;
    AdamW<float> adamw(split_weight_decay(params, 0.01));
    RMSprop<float> rmsprop(params, rms_options);
    SGD<float> sgd(params, sgd_options);
    LrScheduler<float> scheduler(adamw, std::make_shared<OneCycleLR>(100));
    Tensor<float> logits({64, 10}), target({64, 10});
    std::vector<std::int32_t> labels(64, 3);
    CrossEntropyLoss<float> xent(Reduction::sum, 0.1);
    BCEWithLogitsLoss<float> bce;
    auto step = [&] {
      xent.forward(logits, labels.data());
      bce.forward(logits, target);
      clip_grad_norm(params, 1.0);
      clip_grad_value(params, 0.5);
      adamw.step();
      rmsprop.step();
      sgd.step();
      scheduler.step();
    };
    step();  // warm-up: loss buffers, per-thread scratch
    const long before = g_allocations.load();
    step();
    step();
    CAPTURE(threads);
    CHECK(g_allocations.load() - before == 0);
  }
}

TEST_CASE("warm training steps through the pooling layers and Identity allocate nothing") {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Graph<float> net;
    net.add("conv1", Conv2d<float>(3, 8, 3, 1, 1));
    net.add("relu1", ReLU<float>(true));
    net.add("pool1", MaxPool2d<float>(3, 2, 1));  // any window: the general kernels
    net.add("shortcut", Identity<float>());
    net.add("conv2", Conv2d<float>(8, 8, 3, 1, 1));
    net.add("add", Add<float>(), "conv2", "shortcut");
    net.add("avg", AvgPool2d<float>(3, 1, 1, false, false));
    net.add("adaptive", AdaptiveAvgPool2d<float>(3));  // 8 -> 3: bins that overlap
    net.add("gap", AdaptiveAvgPool2d<float>(1));
    net.add("flatten", Flatten<float>());
    net.add("fc", Linear<float>(8, 10));
    net.reset_parameters(1);
    Adam<float> adam(net.parameters());
    CrossEntropyLoss<float> loss;
    Tensor<float> x({8, 3, 16, 16});
    Rng rng(2);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    const std::int32_t labels[] = {0, 1, 2, 3, 4, 5, 6, 7};
    train_step(net, loss, adam, x, labels);  // warm-up
    train_step(net, loss, adam, x, labels);
    const long before = g_allocations.load();
    train_step(net, loss, adam, x, labels);
    CAPTURE(threads);
    CHECK(g_allocations.load() - before == 0);
  }
}
