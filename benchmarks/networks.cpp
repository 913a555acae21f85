// Whole-network timings over networks of several shapes, for the side-by-side comparison with
// PyTorch and LibTorch (benchmarks/pytorch/compare_networks.sh): after warm-up, the training
// step (forward, cross-entropy, backward, Adam lr 1e-3) at a batch, and the latency of one
// image in evaluation mode. benchmarks/pytorch/networks.py and benchmarks/libtorch/networks.cpp
// build the same five networks and print the same lines.
//
//   benchmarks/networks --network NAME [--batch N] [--threads N] [--steps N] [--runs N]
//                       [--warmup N] [--profile STEPS]
// NAME: mnist_cnn, lenet5, vgg_strided, wide, resnet (all 1x28x28 in, 10 classes).
// --batch: of the training step (64; 128 for resnet, the batch examples/resnet trains with).
// --steps: timed training steps (20); --runs: timed 1-image forwards (200); --warmup: untimed
// steps and forwards before each (5). --threads: 2 unless given. --profile STEPS: instead,
// the milliseconds of each node's forward and backward in a training step, as the plan runs
// them (a node fused into another shows next to nothing), then the sums by node type.
//
// Prints, per measurement, one line of key=value fields:
//   train_step network=NAME engine=minidl threads=T batch=B reps=R median_ms=.. best_ms=..
//       parameters=P forward_macs_per_image=F train_macs_per_image=W
//       thread_round_trip_ns=.. thread_round_trip_after_ns=..
//   latency_1_image ... (the same fields, batch=1)
// then the plan of each (lines starting "plan "). The round trips, before and after the timed
// steps, say where the two CPUs sat (benchmarks/thread_round_trip.hpp; 0 on one thread): a
// speed-up from one to two threads reads differently with the CPUs near or far apart (the
// latency line has them too). forward_macs_per_image counts the
// multiply-adds of the convolutions and linear layers; train_macs_per_image adds those of
// their weight gradients and of their input gradients where one is computed (not for a layer
// reading the network's input). Inputs are random (fixed seed); nothing here is checked for
// accuracy.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"
#include "minidl/models/resnet.hpp"
#include "network_flags.hpp"
#include "thread_round_trip.hpp"

using namespace minidl;
using Clock = std::chrono::steady_clock;

namespace {

// Keeps a result alive so the compiler cannot drop the work that made it.
volatile int g_sink;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// LeNet-5 with ReLU and max-pooling: two 5x5 convolutions of 6 and 16 channels, three linear
// layers.
Sequential<float> make_lenet5(std::uint64_t seed) {
  Sequential<float> net;
  net.add("conv1", Conv2d<float>(1, 6, 5, 1, 2));
  net.add("relu1", ReLU<float>(true));
  net.add("pool1", MaxPool2d<float>(2));
  net.add("conv2", Conv2d<float>(6, 16, 5));
  net.add("relu2", ReLU<float>(true));
  net.add("pool2", MaxPool2d<float>(2));
  net.add("flatten", Flatten<float>());
  net.add("fc1", Linear<float>(16 * 5 * 5, 120));
  net.add("relu3", ReLU<float>(true));
  net.add("fc2", Linear<float>(120, 84));
  net.add("relu4", ReLU<float>(true));
  net.add("fc3", Linear<float>(84, 10));
  net.reset_parameters(seed);
  return net;
}

// A VGG-style network that halves the image with a stride-2 convolution, not a pool.
Sequential<float> make_vgg_strided(std::uint64_t seed) {
  Sequential<float> net;
  net.add("conv1", Conv2d<float>(1, 16, 3, 1, 1));
  net.add("relu1", ReLU<float>(true));
  net.add("conv2", Conv2d<float>(16, 32, 3, 2, 1));
  net.add("relu2", ReLU<float>(true));
  net.add("conv3", Conv2d<float>(32, 64, 3, 1, 1));
  net.add("relu3", ReLU<float>(true));
  net.add("pool", MaxPool2d<float>(2));
  net.add("flatten", Flatten<float>());
  net.add("fc", Linear<float>(64 * 7 * 7, 10));
  net.reset_parameters(seed);
  return net;
}

// Few layers, many channels: 64 and 128.
Sequential<float> make_wide(std::uint64_t seed) {
  Sequential<float> net;
  net.add("conv1", Conv2d<float>(1, 64, 3, 1, 1));
  net.add("relu1", ReLU<float>(true));
  net.add("pool1", MaxPool2d<float>(2));
  net.add("conv2", Conv2d<float>(64, 128, 3, 1, 1));
  net.add("relu2", ReLU<float>(true));
  net.add("pool2", MaxPool2d<float>(2));
  net.add("flatten", Flatten<float>());
  net.add("fc", Linear<float>(128 * 7 * 7, 10));
  net.reset_parameters(seed);
  return net;
}

struct NetworkChoice {
  Sequential<float> net;
  std::int64_t default_batch;
};

NetworkChoice make_network(const std::string& name) {
  if (name == "mnist_cnn") return {make_mnist_cnn<float>(1), 64};  // as examples/mnist trains it
  if (name == "lenet5") return {make_lenet5(1), 64};
  if (name == "vgg_strided") return {make_vgg_strided(1), 64};
  if (name == "wide") return {make_wide(1), 64};
  // ResNetOptions' defaults (ResNet-20, width 16) and batch 128 are those of `resnet train`
  // (examples/resnet/run_state.hpp).
  if (name == "resnet") return {make_resnet<float>(1), 128};
  throw std::invalid_argument("unknown --network '" + name +
                              "'; one of mnist_cnn, lenet5, vgg_strided, wide, resnet");
}

struct Work {
  double forward_macs = 0, train_macs = 0;  // per image
};

// Multiply-adds per image of every layer with a weight matrix or filter bank (rank >= 2):
// output elements x fan-in for the forward, as many for the weight gradient, and again for the
// input gradient where the plan computes one.
Work work_per_image(Sequential<float>& net, const Shape& input) {
  const Plan& plan = net.plan(input);
  Work w;
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (!net.node(i).layer) continue;  // a merge (Add) has no weights
    for (const auto& p : net[i].parameters()) {
      const Shape& s = p.value->shape();
      if (p.name != "weight" || s.rank() < 2) continue;  // batch norms' weights are rank 1
      const Shape& out = plan.nodes[i].output;
      const double macs =
          static_cast<double>(out.numel() / out[0]) * static_cast<double>(s.numel() / s[0]);
      w.forward_macs += macs;
      w.train_macs += macs * (plan.nodes[i].needs_input_grad ? 3 : 2);
    }
  }
  return w;
}

// numpy's median (the mean of the middle two of an even count) and the best.
std::pair<double, double> median_and_best(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front()};
}

struct RoundTrips {
  double before_ns = 0, after_ns = 0;
};

void print_measure(const char* what, const std::string& network, std::int64_t batch,
                   const std::vector<double>& ms, std::int64_t parameters, const Work& w,
                   const RoundTrips& trips) {
  const auto [median, best] = median_and_best(ms);
  std::printf(
      "%s network=%s engine=minidl threads=%d batch=%lld reps=%zu median_ms=%.4f best_ms=%.4f "
      "parameters=%lld forward_macs_per_image=%.0f train_macs_per_image=%.0f "
      "thread_round_trip_ns=%.0f thread_round_trip_after_ns=%.0f\n",
      what, network.c_str(), num_threads(), static_cast<long long>(batch), ms.size(), median, best,
      static_cast<long long>(parameters), w.forward_macs, w.train_macs, trips.before_ns,
      trips.after_ns);
}

void print_plan(Sequential<float>& net, const Shape& input) {
  std::istringstream lines(net.plan_summary(input));
  for (std::string line; std::getline(lines, line);) std::printf("plan %s\n", line.c_str());
}

// Milliseconds per training step of each node's forward and backward, the loss, and the
// check and the optimizer step (train_step's work, timed piece by piece).
void profile(Sequential<float>& net, CrossEntropyLoss<float>& xent, Adam<float>& adam,
             const Tensor<float>& x, const std::int32_t* labels, std::int64_t steps,
             std::int64_t warmup) {
  const std::size_t L = net.size();
  std::vector<double> fwd(L), bwd(L);
  double loss_ms = 0, optim_ms = 0;
  for (std::int64_t s = 0; s < warmup + steps; ++s) {
    const bool timed = s >= warmup;
    auto t = Clock::now();
    auto lap = [&](double& into) {
      if (timed) into += ms_since(t);
      t = Clock::now();
    };
    const Context ctx{Mode::Train, static_cast<std::uint64_t>(adam.step_count())};
    const Tensor<float>& logits = net.forward(x, ctx, [&](std::size_t i) { lap(fwd[i]); });
    g_sink = static_cast<int>(xent.forward(logits, labels));
    const Tensor<float>& dlogits = xent.backward();
    lap(loss_ms);
    net.backward(dlogits, [&](std::size_t i) { lap(bwd[i]); });
    for (const auto& p : adam.parameters())  // train_step's check that gradients are finite
      g_sink = static_cast<int>(
          kernels::first_non_finite_rows(p.grad->size(), p.grad->dim(0), p.grad->data()));
    adam.step();
    lap(optim_ms);
  }
  const auto n = static_cast<double>(steps);
  std::printf("profile threads=%d steps=%lld (ms per step)\n", num_threads(),
              static_cast<long long>(steps));
  std::vector<std::pair<std::string, std::pair<double, double>>> by_type;
  double total = loss_ms + optim_ms;
  for (std::size_t i = 0; i < L; ++i) {
    const std::string type = net.node(i).type();
    std::printf("  %-22s %-12s forward %8.3f  backward %8.3f\n", net.node_name(i).c_str(),
                type.c_str(), fwd[i] / n, bwd[i] / n);
    total += fwd[i] + bwd[i];
    auto it = std::find_if(by_type.begin(), by_type.end(),
                           [&](const auto& e) { return e.first == type; });
    if (it == by_type.end()) it = by_type.insert(by_type.end(), {type, {0.0, 0.0}});
    it->second.first += fwd[i] / n;
    it->second.second += bwd[i] / n;
  }
  std::printf("by type:\n");
  for (const auto& [type, ms] : by_type)
    std::printf("  %-12s forward %8.3f  backward %8.3f  both %8.3f  (%4.1f%%)\n", type.c_str(),
                ms.first, ms.second, ms.first + ms.second,
                100 * (ms.first + ms.second) * n / total);
  std::printf("  loss %.3f  check and optimizer %.3f  total %.3f\n", loss_ms / n, optim_ms / n,
              total / n);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const network_bench::NetworkFlags flags =
        network_bench::parse_network_flags(argc, argv, "networks");
    if (flags.help) {
      std::printf("%s\n", network_bench::network_usage("networks").c_str());
      return 0;
    }
    const std::string& name = flags.name;
    std::int64_t batch = flags.batch;
    const std::int64_t threads = flags.threads, steps = flags.steps, runs = flags.runs,
                       warmup = flags.warmup;
    set_num_threads(static_cast<int>(threads));
    NetworkChoice choice = make_network(name);
    Sequential<float>& net = choice.net;
    if (batch == 0) batch = choice.default_batch;
    const std::int64_t parameters = net.num_parameters();

    // Random images in [-1, 1] (the range of normalised pixels) and labels, from one seed.
    Rng rng(1);
    Tensor<float> x(Shape{batch, 1, 28, 28});
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
    for (auto& l : labels) l = static_cast<std::int32_t>(rng.below(10));

    Adam<float> adam(net.parameters());  // lr 1e-3, PyTorch's defaults
    CrossEntropyLoss<float> xent;
    if (flags.profile) {
      profile(net, xent, adam, x, labels.data(), flags.profile, warmup);
      return 0;
    }
    const Work train_work = work_per_image(net, x.shape());
    std::vector<double> ms;
    RoundTrips trips;
    for (std::int64_t s = 0; s < warmup + steps; ++s) {
      if (s == warmup) trips.before_ns = bench::thread_round_trip_ns();
      const auto t = Clock::now();
      train_step(net, xent, adam, x, labels.data());
      if (s >= warmup) ms.push_back(ms_since(t));
    }
    trips.after_ns = bench::thread_round_trip_ns();
    print_measure("train_step", name, batch, ms, parameters, train_work, trips);
    print_plan(net, x.shape());

    // One image at a time in evaluation mode (batch norms use their running statistics).
    Tensor<float> image(Shape{1, 1, 28, 28});
    std::copy(x.data(), x.data() + image.size(), image.data());
    ms.clear();
    for (std::int64_t r = 0; r < warmup + runs; ++r) {
      if (r == warmup) trips.before_ns = bench::thread_round_trip_ns();
      const auto t = Clock::now();
      g_sink = argmax_rows(net.forward(image, Context{}))[0];
      if (r >= warmup) ms.push_back(ms_since(t));
    }
    trips.after_ns = bench::thread_round_trip_ns();
    print_measure("latency_1_image", name, 1, ms, parameters, work_per_image(net, image.shape()),
                  trips);
    print_plan(net, image.shape());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "networks: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
