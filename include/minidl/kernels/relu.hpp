// minidl/kernels/relu.hpp - ReLU forward and backward over n elements.
#pragma once

#include <cstdint>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"

namespace minidl::kernels {

template <typename T>
void relu_forward_naive(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

// y = max(x, 0); y may alias x. The chunk bodies read the pointers into
// locals first: through the lambda's captures the compiler would have to
// reload them after every store, and would not vectorise.
template <typename T>
void relu_forward(std::int64_t n, const T* x, T* y) {
  parallel_chunks(n, [x, y](std::int64_t b, std::int64_t e) {
    const T* in = x;
    T* out = y;
    MINIDL_VECTORIZE
    for (std::int64_t i = b; i < e; ++i) out[i] = in[i] > T(0) ? in[i] : T(0);
  });
}

// dx = dy where the output was positive, else 0 (PyTorch's choice at x = 0).
template <typename T>
void relu_backward_naive(std::int64_t n, const T* y, const T* dy, T* dx) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

// Both operands are loaded unconditionally so that the select compiles to a
// vector blend instead of a branch that mispredicts half the time. dx may
// alias dy (in-place ReLU); y never aliases dx.
template <typename T>
void relu_backward(std::int64_t n, const T* y, const T* dy, T* dx) {
  parallel_chunks(n, [y, dy, dx](std::int64_t b, std::int64_t e) {
    const T* out = y;
    const T* grad = dy;
    T* din = dx;
    MINIDL_VECTORIZE
    for (std::int64_t i = b; i < e; ++i) {
      const T g = grad[i];
      din[i] = out[i] > T(0) ? g : T(0);
    }
  });
}

// y = max(x, 0) and mask = (x > 0) as bytes; y may alias x.
template <typename T>
void relu_forward_mask(std::int64_t n, const T* x, T* y, std::uint8_t* mask) {
  parallel_chunks(n, [x, y, mask](std::int64_t b, std::int64_t e) {
    const T* in = x;
    T* out = y;
    std::uint8_t* m = mask;
    MINIDL_VECTORIZE
    for (std::int64_t i = b; i < e; ++i) {
      const T v = in[i];
      m[i] = v > T(0);
      out[i] = v > T(0) ? v : T(0);
    }
  });
}

// dx = dy where mask is set, else 0; dx may alias dy.
template <typename T>
void relu_backward_mask(std::int64_t n, const std::uint8_t* mask, const T* dy, T* dx) {
  parallel_chunks(n, [mask, dy, dx](std::int64_t b, std::int64_t e) {
    const std::uint8_t* m = mask;
    const T* grad = dy;
    T* din = dx;
    MINIDL_VECTORIZE
    for (std::int64_t i = b; i < e; ++i) {
      const T g = grad[i];
      din[i] = m[i] ? g : T(0);
    }
  });
}

}  // namespace minidl::kernels
