// minidl/kernels/finite.hpp - find the first NaN or infinity in an array, fast.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"

namespace minidl::kernels {

template <typename T>
std::int64_t first_non_finite_naive(std::int64_t n, const T* x) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

// Index of the first element that is NaN or infinite, or -1. A value is not
// finite exactly when its exponent bits are all ones: the scan ORs that test
// over blocks with integer operations only, which vectorise, and looks at
// single elements only inside a block that holds a culprit. The training
// step runs it over every gradient, so it must cost little next to the step.
template <typename T>
std::int64_t first_non_finite(std::int64_t n, const T* x) {
  static_assert(std::is_floating_point_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7F800000u) : Bits(0x7FF0000000000000ull);
  constexpr std::int64_t kBlock = 1024;
  for (std::int64_t b = 0; b < n; b += kBlock) {
    const std::int64_t e = b + kBlock < n ? b + kBlock : n;
    Bits any = 0;
    MINIDL_VECTORIZE_REDUCTION(|, any)
    for (std::int64_t i = b; i < e; ++i) {
      Bits bits;
      std::memcpy(&bits, x + i, sizeof bits);
      any |= Bits((bits & exponent) == exponent);
    }
    if (any)
      for (std::int64_t i = b; i < e; ++i)
        if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

// first_non_finite over an array of `rows` rows, in parallel with the cut of
// parallel_row_blocks: each thread scans the rows the weight-gradient pass
// wrote on it (fc1's 1.6 MB would otherwise cross between CPUs). Still the
// first such index overall, whatever the number of threads.
template <typename T>
std::int64_t first_non_finite_rows(std::int64_t n, std::int64_t rows, const T* x) {
  std::atomic<std::int64_t> first{n};
  parallel_row_blocks(n, rows, [&](std::int64_t b, std::int64_t e) {
    const std::int64_t i = first_non_finite(e - b, x + b);
    if (i < 0) return;
    std::int64_t seen = first.load();
    while (b + i < seen && !first.compare_exchange_weak(seen, b + i)) {
    }
  });
  return first.load() < n ? first.load() : -1;
}

}  // namespace minidl::kernels
