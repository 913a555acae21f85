// minidl/kernels/dropout.hpp - inverted dropout with masks keyed by (seed, step, element).
#pragma once

#include <cstdint>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"

namespace minidl::kernels {

// mask[i] = 0 with probability p, else 1/(1-p); y = x * mask. Each element's
// draw is hash(seed, step, first + i), so the mask is the same whatever the
// thread count and can be recomputed from three integers; `first` is the
// global index of x[0] when x is one process's share of a batch.
template <typename T>
void dropout_forward(std::int64_t n, T p, std::uint64_t seed, std::uint64_t step, const T* x, T* y,
                     T* mask, std::uint64_t first = 0) {
  const T scale = T(1) / (T(1) - p);
  parallel_chunks(n, [=](std::int64_t b, std::int64_t e) {
    const T* __restrict in = x;
    T* __restrict out = y;
    T* __restrict m = mask;
    MINIDL_VECTORIZE
    for (std::int64_t i = b; i < e; ++i) {
      const T u = uniform01<T>(hash64(seed, step, first + static_cast<std::uint64_t>(i)));
      m[i] = u < p ? T(0) : scale;
      out[i] = in[i] * m[i];
    }
  });
}

// dx = dy * mask.
template <typename T>
void dropout_backward(std::int64_t n, const T* mask, const T* dy, T* dx) {
  parallel_chunks(n, [=](std::int64_t b, std::int64_t e) {
    const T* __restrict m = mask;
    const T* __restrict grad = dy;
    T* __restrict din = dx;
    MINIDL_VECTORIZE
    for (std::int64_t i = b; i < e; ++i) din[i] = grad[i] * m[i];
  });
}

}  // namespace minidl::kernels
