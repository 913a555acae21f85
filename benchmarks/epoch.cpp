// Whole-network timings: one training epoch of the MNIST CNN (60,000 images,
// batch 64, Adam), the evaluation of the 10,000 test images, and the latency
// of classifying one image; prints seconds, images/s and peak memory.
//
//   benchmarks/epoch [--threads N] [--epochs E] [--data DIR] [--limit-train N]
//                    [--eval-batch N] [--profile STEPS] [--sustained-peak SECONDS]
// --eval-batch sets the batch of the test evaluation (64 unless given).
// --profile times each layer's forward and backward, the loss and the
// optimizer over STEPS training steps (after 20 warm-up steps) instead.
// --sustained-peak runs the FMA loop without a break for SECONDS instead and
// prints its rate in half-second windows, to compare with the best-of-9
// peak the FLOP bound is computed from.
// Data: --data, else $MNIST_DIR, else random images of the same size.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "minidl/data/batch.hpp"
#include "minidl/data/mnist.hpp"
#include "minidl/minidl.hpp"
#include "peak_fma.hpp"
#include "thread_round_trip.hpp"

using namespace minidl;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Keeps a result alive so the compiler cannot drop the work that made it.
static volatile int g_sink;
static void benchmark_sink(int v) {
  g_sink = v;
}

static double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

static Mnist random_mnist() {
  Mnist m;
  Rng rng(1);
  for (auto* d : {&m.train, &m.test}) {
    const std::size_t n = d == &m.train ? 60000 : 10000;
    d->rows = d->cols = 28;
    d->images.resize(n * 784);
    d->labels.resize(n);
    for (auto& p : d->images) p = static_cast<std::uint8_t>(rng.below(256));
    for (auto& l : d->labels) l = static_cast<std::uint8_t>(rng.below(10));
  }
  return m;
}

// Multiply-add FLOPs of one training step per image: for every layer with a
// weight (Conv2d, Linear), 2 x outputs x fan-in for the forward, the same for
// the weight gradient, and again for the input gradient except in the first
// such layer, whose input gradient nobody needs.
static double training_flops_per_image(Sequential<float>& net, Shape shape) {
  double flops = 0;
  bool first = true;
  for (std::size_t i = 0; i < net.size(); ++i) {
    shape = net[i].output_shape(shape);
    for (const auto& p : net[i].parameters()) {
      if (p.name != "weight") continue;
      const Shape& w = p.value->shape();
      const double fan_in = static_cast<double>(w.numel() / w[0]);
      const double forward = 2.0 * static_cast<double>(shape.numel() / shape[0]) * fan_in;
      flops += forward * (first ? 2 : 3);
      first = false;
    }
  }
  return flops;
}

// Peak FP32 FLOP/s: the best of 9 runs of the FMA loop on `threads` threads,
// about 30 ms each. The best, not the median: the loop cannot beat the
// hardware, but a run can lose a CPU to the host for a while (a median of 7
// once read half the 2-core peak, which would halve the bound).
static double measured_peak_flops(int threads) {
  const std::int64_t iters = std::int64_t(1) << 23;
  double best = 0;
  for (int r = 0; r < 9; ++r) {
    const auto t = Clock::now();
    benchmark_sink(static_cast<int>(bench::run_peak_fma(threads, iters)));
    best = std::max(best, bench::peak_fma_flops(threads, iters) / seconds_since(t));
  }
  return best;
}

// The FMA loop without a break for `seconds`: GFLOP/s per half-second
// window, and the smallest, median and largest of them.
static void sustained_peak(int threads, double seconds) {
  const std::int64_t iters = std::int64_t(1) << 20;
  std::vector<double> rates;
  std::printf("sustained_peak threads=%d gflops_per_half_second=", threads);
  for (const auto start = Clock::now(); seconds_since(start) < seconds;) {
    const auto t = Clock::now();
    double flops = 0;
    while (seconds_since(t) < 0.5) {
      benchmark_sink(static_cast<int>(bench::run_peak_fma(threads, iters)));
      flops += bench::peak_fma_flops(threads, iters);
    }
    rates.push_back(flops / seconds_since(t) * 1e-9);
    std::printf("%s%.0f", rates.size() > 1 ? "," : "", rates.back());
  }
  std::sort(rates.begin(), rates.end());
  std::printf(" min=%.1f median=%.1f max=%.1f\n", rates.front(), rates[rates.size() / 2],
              rates.back());
}

// Milliseconds per training step spent in each node's forward and backward
// (as the plan runs them: a node fused into another shows next to nothing),
// the loss, the check that the gradients are finite, and the optimizer (the
// same work as train_step, timed piecewise).
static void profile(Sequential<float>& net, CrossEntropyLoss<float>& xent, Adam<float>& adam,
                    const Mnist& data, int steps) {
  const std::size_t L = net.size();
  std::vector<double> fwd(L), bwd(L);
  double loss_ms = 0, check_ms = 0, optim_ms = 0, batch_ms = 0;
  Tensor<float> x;
  std::vector<std::int32_t> labels;
  std::vector<std::int64_t> idx(64);
  for (int s = 0; s < steps + 20; ++s) {
    const bool timed = s >= 20;
    auto t = Clock::now();
    auto lap = [&](double& into) {
      if (timed) into += seconds_since(t) * 1e3;
      t = Clock::now();
    };
    for (std::size_t i = 0; i < idx.size(); ++i)
      idx[i] =
          static_cast<std::int64_t>((static_cast<std::size_t>(s) * 64 + i) % data.train.size());
    make_batch(data.train, idx.data(), 64, x, labels);
    lap(batch_ms);
    const Context ctx{Mode::Train, static_cast<std::uint64_t>(adam.step_count())};
    const Tensor<float>& logits = net.forward(x, ctx, [&](std::size_t i) { lap(fwd[i]); });
    benchmark_sink(static_cast<int>(xent.forward(logits, labels.data())));
    const Tensor<float>& dlogits = xent.backward();
    lap(loss_ms);
    net.backward(dlogits, [&](std::size_t i) { lap(bwd[i]); });
    for (const auto& p : adam.parameters()) {  // train_step's check that gradients are finite
      const Tensor<float>& grad = *p.grad;
      benchmark_sink(
          static_cast<int>(kernels::first_non_finite_rows(grad.size(), grad.dim(0), grad.data())));
    }
    lap(check_ms);
    adam.step();
    lap(optim_ms);
  }
  double total = batch_ms + loss_ms + check_ms + optim_ms;
  std::printf("profile threads=%d steps=%d (ms per step)\n", num_threads(), steps);
  for (std::size_t i = 0; i < L; ++i) {
    std::printf("  %-8s forward %7.3f  backward %7.3f\n", net.node_name(i).c_str(), fwd[i] / steps,
                bwd[i] / steps);
    total += fwd[i] + bwd[i];
  }
  std::printf("  batch %.3f  loss %.3f  check %.3f  optimizer %.3f  total %.3f\n", batch_ms / steps,
              loss_ms / steps, check_ms / steps, optim_ms / steps, total / steps);
}

int main(int argc, char** argv) {
  int threads = 0, epochs = 1;
  std::int64_t limit_train = 0;  // 0: all 60,000 images
  std::int64_t eval_batch = 64;
  int profile_steps = 0;
  double sustained_seconds = 0;
  std::string data_dir = std::getenv("MNIST_DIR") ? std::getenv("MNIST_DIR") : "";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--epochs"))
      epochs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--data"))
      data_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--limit-train"))
      limit_train = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--eval-batch"))
      eval_batch = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--profile"))
      profile_steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--sustained-peak"))
      sustained_seconds = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr,
                   "usage: epoch [--threads N] [--epochs E] [--data DIR] [--limit-train N] "
                   "[--eval-batch N] [--profile STEPS] [--sustained-peak SECONDS]\n");
      return 2;
    }
  }
  if (eval_batch < 1) {
    std::fprintf(stderr, "epoch: error: --eval-batch must be at least 1\n");
    return 2;
  }
  if (threads > 0) set_num_threads(threads);
  if (sustained_seconds > 0) {
    sustained_peak(num_threads(), sustained_seconds);
    return 0;
  }
  try {
    const Mnist data = data_dir.empty() ? random_mnist() : load_mnist(data_dir);
    auto net = make_mnist_cnn<float>(1);
    Adam<float> adam(net.parameters());
    CrossEntropyLoss<float> xent;
    Tensor<float> x;
    std::vector<std::int32_t> labels;
    std::vector<std::int64_t> order(data.train.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
    const auto n = limit_train > 0 ? std::min<std::int64_t>(limit_train, order.size())
                                   : static_cast<std::int64_t>(order.size());

    if (profile_steps > 0) {
      profile(net, xent, adam, data, profile_steps);
      return 0;
    }

    // The FLOP bound of an epoch: its multiply-adds at this machine's peak,
    // measured here, just before, on as many threads as the epoch uses, and
    // again just after: the bound takes the larger, so that a host that
    // took a CPU away while the peak was measured cannot lower the bar.
    double peak = measured_peak_flops(num_threads());
    const double epoch_flops =
        training_flops_per_image(net, Shape{1, 1, 28, 28}) * static_cast<double>(n);
    std::printf(
        "flop_bound threads=%d peak_gflops=%.1f epoch_tflop=%.3f bound_seconds=%.3f "
        "thread_round_trip_ns=%.0f\n",
        num_threads(), peak * 1e-9, epoch_flops * 1e-12, epoch_flops / peak,
        bench::thread_round_trip_ns());
    for (int e = 1; e <= epochs; ++e) {
      Rng(static_cast<std::uint64_t>(e)).shuffle(order.begin(), order.end());
      const auto t0 = Clock::now();
      double loss = 0;
      for (std::int64_t b = 0; b < n; b += 64) {
        const std::int64_t count = std::min<std::int64_t>(64, n - b);
        make_batch(data.train, order.data() + b, count, x, labels);
        loss += static_cast<double>(train_step(net, xent, adam, x, labels.data()));
      }
      const double s = seconds_since(t0);
      const double round_trip_after = bench::thread_round_trip_ns();
      const double peak_after = measured_peak_flops(num_threads());
      peak = std::max(peak, peak_after);
      std::printf(
          "train_epoch threads=%d seconds=%.3f images_per_s=%.0f mean_loss=%.4f "
          "peak_gflops_after=%.1f over_flop_bound=%.2f thread_round_trip_after_ns=%.0f\n",
          num_threads(), s, static_cast<double>(n) / s, loss / static_cast<double>((n + 63) / 64),
          peak_after * 1e-9, s / (epoch_flops / peak), round_trip_after);
    }

    std::vector<std::int64_t> test(data.test.size());
    for (std::size_t i = 0; i < test.size(); ++i) test[i] = static_cast<std::int64_t>(i);
    auto t0 = Clock::now();
    std::int64_t correct = 0;
    for (std::int64_t b = 0; b < static_cast<std::int64_t>(test.size()); b += eval_batch) {
      const std::int64_t count =
          std::min<std::int64_t>(eval_batch, static_cast<std::int64_t>(test.size()) - b);
      make_batch(data.test, test.data() + b, count, x, labels);
      const auto pred = argmax_rows(net.forward(x, Context{}));
      for (std::int64_t i = 0; i < count; ++i)
        correct += pred[static_cast<std::size_t>(i)] == labels[static_cast<std::size_t>(i)];
    }
    double s = seconds_since(t0);
    std::printf(
        "evaluate_test threads=%d batch=%lld seconds=%.3f images_per_s=%.0f accuracy=%.4f\n",
        num_threads(), static_cast<long long>(eval_batch), s, static_cast<double>(test.size()) / s,
        static_cast<double>(correct) / static_cast<double>(test.size()));

    // Latency: one image at a time, median of 200.
    std::vector<double> lat;
    for (int r = 0; r < 220; ++r) {
      const std::int64_t idx = r % 1000;
      make_batch(data.test, &idx, 1, x, labels);
      t0 = Clock::now();
      benchmark_sink(argmax_rows(net.forward(x, Context{}))[0]);
      if (r >= 20) lat.push_back(seconds_since(t0));
    }
    std::nth_element(lat.begin(), lat.begin() + 100, lat.end());
    std::printf("latency_1_image threads=%d median_ms=%.3f\n", num_threads(), lat[100] * 1e3);
    std::printf("peak_rss_mb=%.1f\n", peak_rss_mb());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "epoch: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
