// benchmarks/mpi/mpi_step.cpp - what data-parallel training costs: the time of a training step
// of the MNIST CNN or a ResNet on K ranks (or one process with T threads), and the time and
// bandwidth of one exchange of the gradients' sums between ranks. Random data: the time of a
// step does not depend on the pixels.
//
//   mpi_step step [--model mnist|resnet] [--batch 64] [--steps 50] [--warmup 5]
//   mpi_step exchange [--bytes 1686568] [--repeats 50]      (under mpirun)
//
// Without mpirun, `step` runs one process (OMP_NUM_THREADS threads). Prints one line of
// "name value" pairs, medians over the timed repeats, for benchmarks/mpi/measure.sh.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"
#include "minidl/models/resnet.hpp"
#include "minidl/mpi/mpi_reducer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::string flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Milliseconds per training step on this rank's share of random batches.
int run_steps(minidl::mpi::Reducer* reducer, int argc, char** argv) {
  const std::string model = flag(argc, argv, "model", "mnist");
  const std::int64_t batch = std::stoll(flag(argc, argv, "batch", "64"));
  const int steps = std::stoi(flag(argc, argv, "steps", "50"));
  const int warmup = std::stoi(flag(argc, argv, "warmup", "5"));
  const int rank = reducer ? reducer->rank() : 0, ranks = reducer ? reducer->ranks() : 1;
  minidl::ResNetOptions o;
  o.depth = 20;
  minidl::Graph<float> net =
      model == "resnet" ? minidl::make_resnet<float>(1, o) : minidl::make_mnist_cnn<float>(1);
  minidl::CrossEntropyLoss<float> loss;
  minidl::Adam<float> adam(net.parameters());
  const minidl::SampleRange mine = minidl::batch_share_range(batch, rank, ranks);
  minidl::Tensor<float> x({mine.count, 1, 28, 28});
  minidl::Rng rng(7 + static_cast<std::uint64_t>(rank));
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(mine.count));
  for (auto& l : labels) l = static_cast<std::int32_t>(rng.below(10));
  const minidl::BatchShare share{reducer, mine.first, batch};
  std::vector<double> ms;
  for (int s = 0; s < warmup + steps; ++s) {
    if (reducer) MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = Clock::now();
    minidl::train_step(net, loss, adam, x, labels.data(),
                       static_cast<const minidl::Tensor<float>**>(nullptr), share);
    const double t = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (s >= warmup) ms.push_back(t);
  }
  if (rank == 0)
    std::printf("model %s ranks %d threads %d batch %lld step_ms %.3f parameters %lld\n",
                model.c_str(), ranks, minidl::num_threads(), static_cast<long long>(batch),
                median(ms), static_cast<long long>(net.num_parameters()));
  return 0;
}

// One fold of `bytes` round the ranks: carries from rank to rank, then the total broadcast.
int run_exchange(minidl::mpi::Reducer& reducer, int argc, char** argv) {
  const auto bytes = static_cast<std::size_t>(std::stoll(flag(argc, argv, "bytes", "1686568")));
  const int repeats = std::stoi(flag(argc, argv, "repeats", "50"));
  std::vector<char> state(bytes, 1);
  std::vector<double> ms;
  for (int r = 0; r < repeats + 3; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = Clock::now();
    reducer.receive_carry(state.data(), bytes);
    reducer.pass_on(state.data(), bytes);
    reducer.take_total(state.data(), bytes);
    const double t = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (r >= 3) ms.push_back(t);
  }
  if (reducer.rank() == 0) {
    const double m = median(ms);
    std::printf("ranks %d bytes %zu exchange_ms %.3f bandwidth_GBps %.3f\n", reducer.ranks(), bytes,
                m, m > 0 ? static_cast<double>(bytes) / (m * 1e6) : 0.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "step" && mode != "exchange") {
    std::fprintf(stderr, "usage: mpi_step step|exchange [options] (see the file's comment)\n");
    return 2;
  }
  try {
    if (!minidl::mpi::launched_by_mpi()) {
      if (mode == "exchange") {
        std::fprintf(stderr, "mpi_step exchange: run it under mpirun\n");
        return 2;
      }
      return run_steps(nullptr, argc, argv);
    }
    minidl::mpi::Session session(&argc, &argv);
    minidl::mpi::Reducer reducer(session);
    return mode == "step" ? run_steps(&reducer, argc, argv) : run_exchange(reducer, argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_step: %s\n", e.what());
    return 1;
  }
}
