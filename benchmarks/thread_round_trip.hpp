// The time a cache line takes to go from one thread to the other and back. On this project's
// test machine the two virtual CPUs sometimes sit far apart, which slows every pass that hands
// data from one thread to the other; benchmarks print this beside their timings, so that a slow
// run can be told from a slow change. Shared by benchmarks/epoch and benchmarks/networks.
#pragma once

#include <atomic>
#include <chrono>

#include "minidl/core/parallel.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace minidl::bench {

// Nanoseconds per round trip of an atomic counter passed between two threads (0 when fewer
// than two threads are set, or without OpenMP).
inline double thread_round_trip_ns() {
#ifdef _OPENMP
  if (num_threads() < 2) return 0;
  constexpr int kTrips = 100000;
  std::atomic<int> ball{0};
  double seconds = 0;
#pragma omp parallel num_threads(2)
  {
    const int me = omp_get_thread_num();
    const auto t = std::chrono::steady_clock::now();
    for (int i = 0; i < kTrips; ++i) {
      const int mine = 2 * i + me;  // thread 0 serves on even counts, 1 on odd
      while (ball.load(std::memory_order_acquire) != mine) {
      }
      ball.store(mine + 1, std::memory_order_release);
    }
    if (me == 0)
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  return seconds / kTrips * 1e9;
#else
  return 0;
#endif
}

}  // namespace minidl::bench
