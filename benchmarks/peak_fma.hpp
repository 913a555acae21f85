// Peak FP32 throughput of this machine: independent FMA chains in registers,
// one set per thread. Shared by benchmarks/kernels (efficiency of each
// kernel) and benchmarks/epoch (the epoch against its FLOP bound), so both
// state their figures against a peak measured in the same run.
#pragma once

#include <cstdint>

#include "minidl/kernels/simd.hpp"

namespace minidl::bench {

// FLOPs done by one call of run_peak_fma with these arguments.
inline double peak_fma_flops(int threads, std::int64_t iters) {
  constexpr int kChains = 12;
  return 2.0 * kChains * kernels::Simd<float>::width * static_cast<double>(iters) * threads;
}

// Runs `iters` rounds of 12 independent vector FMAs on each of `threads`
// threads; returns a value the caller must keep so that the work stays.
inline float run_peak_fma(int threads, std::int64_t iters) {
  using S = kernels::Simd<float>;
  constexpr int kChains = 12;  // more than latency x ports: the FMA units never wait
  float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    S::vec acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = S::broadcast(0.001f * static_cast<float>(c));
    const S::vec a = S::broadcast(0.999f), b = S::broadcast(0.0001f);
    // Unrolled by pragma: at -O2 GCC does not unroll the chains by itself and
    // keeps them in memory, which reads less than half the peak.
    for (std::int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;  // one FMA per chain
    for (int c = 0; c < kChains; ++c)
      for (int l = 0; l < S::width; ++l) sink += acc[c][l];
  }
  return sink;
}

}  // namespace minidl::bench
