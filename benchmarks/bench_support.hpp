// benchmarks/bench_support.hpp - what the benchmark files share: random inputs, the check of a
// fast kernel against its naive twin, and the GFLOP/s and GB/s counters.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "minidl/core/rng.hpp"

namespace minidl::bench {

// n values offset + U(-scale, scale), the same for a seed on every run.
inline std::vector<float> random_values(std::int64_t n, std::uint64_t seed, float scale = 1.0f,
                                        float offset = 0.0f) {
  std::vector<float> v(static_cast<std::size_t>(n));
  minidl::Rng rng(seed);
  for (float& x : v) x = offset + scale * rng.uniform(-1.0f, 1.0f);
  return v;
}

// Largest difference within tol of the largest magnitude of the reference b (no NaN).
inline bool close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  double diff = 0, scale = 1e-30;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(d)) return false;
    diff = std::max(diff, d);
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return diff <= tol * scale;
}

inline void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

inline void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["GB/s"] =
      benchmark::Counter(bytes_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace minidl::bench
