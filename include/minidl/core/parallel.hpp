// minidl/core/parallel.hpp - OpenMP helpers whose results never depend on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace minidl {

// Number of threads minidl's parallel loops use.
inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline void set_num_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Runs body(i) for i in [0, count). Each index must write its own outputs and
// sum in its own fixed order: then which thread runs which index cannot change
// a single bit of the result. Loops shorter than `min_parallel` stay serial.
template <typename Body>
void parallel_for(std::int64_t count, Body&& body, std::int64_t min_parallel = 2) {
#ifdef _OPENMP
  if (count >= min_parallel && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
#else
  (void)min_parallel;
#endif
  for (std::int64_t i = 0; i < count; ++i) body(i);
}

// Elements per parallel chunk: large enough that threading pays off.
inline constexpr std::int64_t kElementwiseChunk = 1 << 15;

// Runs body(begin, end) over [0, n) cut into fixed chunks of kElementwiseChunk.
template <typename Body>
void parallel_chunks(std::int64_t n, Body&& body) {
  const std::int64_t chunks = (n + kElementwiseChunk - 1) / kElementwiseChunk;
  parallel_for(chunks, [&](std::int64_t c) {
    const std::int64_t begin = c * kElementwiseChunk;
    body(begin, std::min(n, begin + kElementwiseChunk));
  });
}

// Runs body(t, begin, end) once on each thread of a team of at most
// max_threads, with [0, n) cut into one contiguous block per thread the way
// OpenMP's static schedule cuts a loop (so thread t gets the same items as
// in parallel_for). Unlike parallel_for's, the blocks depend on the number
// of threads: the body must give the same results for any cut.
template <typename Body>
void parallel_blocks(std::int64_t n, int max_threads, Body&& body) {
#ifdef _OPENMP
  const int want = std::min(omp_get_max_threads(), max_threads);
  if (want > 1 && n > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(want)
    {
      const std::int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const std::int64_t q = n / threads, r = n % threads;
      const std::int64_t begin = t * q + std::min(t, r);
      body(static_cast<int>(t), begin, begin + q + (t < r ? 1 : 0));
    }
    return;
  }
#else
  (void)max_threads;
#endif
  body(0, std::int64_t(0), n);
}

// Runs body(begin, end) over the elements of a [rows, n / rows] array, in
// one block of whole rows per thread (parallel_blocks' cut), or on the
// calling thread when the array is smaller than kElementwiseChunk. Passes
// that write a weight gradient by output rows and those that read it after
// (the finite check, the optimizer) then keep each row on one thread: which
// matters when a virtual machine's CPUs sit far apart. The body must give
// the same results for any cut.
template <typename Body>
void parallel_row_blocks(std::int64_t n, std::int64_t rows, Body&& body) {
  if (n <= 0 || rows <= 0) return;
  const std::int64_t row_size = n / rows;
  parallel_blocks(
      rows, n >= kElementwiseChunk ? num_threads() : 1,
      [&](int, std::int64_t r0, std::int64_t r1) { body(r0 * row_size, r1 * row_size); });
}

// A hint inside a spin-wait loop that this thread waits for another.
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace minidl
