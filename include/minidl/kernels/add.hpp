// minidl/kernels/add.hpp - elementwise sums over n elements, for residual additions.
#pragma once

#include <cstdint>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"

namespace minidl::kernels {

// y = a + b; y may alias a or b. Each element is one addition, so the
// result does not depend on how the work is split.
template <typename T>
void add(std::int64_t n, const T* a, const T* b, T* y) {
  parallel_chunks(n, [a, b, y](std::int64_t s, std::int64_t e) {
    const T* pa = a;
    const T* pb = b;
    T* out = y;
    MINIDL_VECTORIZE
    for (std::int64_t i = s; i < e; ++i) out[i] = pa[i] + pb[i];
  });
}

// y = max(a + b, 0), the sum and the ReLU after it in one pass; y may
// alias a or b. The same bits as add() then relu_forward().
template <typename T>
void add_relu(std::int64_t n, const T* a, const T* b, T* y) {
  parallel_chunks(n, [a, b, y](std::int64_t s, std::int64_t e) {
    const T* pa = a;
    const T* pb = b;
    T* out = y;
    MINIDL_VECTORIZE
    for (std::int64_t i = s; i < e; ++i) {
      const T sum = pa[i] + pb[i];
      out[i] = sum > T(0) ? sum : T(0);
    }
  });
}

// dx = a + b where y is positive, else 0: the last addition of a value's
// gradients and the backward of the in-place ReLU that made the value (y,
// its stored output), in one pass; dx may alias a or b. The same bits as
// add() then relu_backward().
template <typename T>
void add_relu_backward(std::int64_t n, const T* a, const T* b, const T* y, T* dx) {
  parallel_chunks(n, [a, b, y, dx](std::int64_t s, std::int64_t e) {
    const T* pa = a;
    const T* pb = b;
    const T* out = y;
    T* din = dx;
    MINIDL_VECTORIZE
    for (std::int64_t i = s; i < e; ++i) {
      const T sum = pa[i] + pb[i];
      din[i] = out[i] > T(0) ? sum : T(0);
    }
  });
}

template <typename T>
void copy(std::int64_t n, const T* x, T* y) {
  parallel_chunks(n, [x, y](std::int64_t s, std::int64_t e) {
    const T* in = x;
    T* out = y;
    MINIDL_VECTORIZE
    for (std::int64_t i = s; i < e; ++i) out[i] = in[i];
  });
}

}  // namespace minidl::kernels
