// minidl/kernels/relu.hpp - ReLU forward and backward over n elements.
#pragma once

#include <cstdint>

#include "minidl/core/parallel.hpp"

namespace minidl::kernels {

template <typename T>
void relu_forward_naive(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

// y = max(x, 0); y may alias x.
template <typename T>
void relu_forward(std::int64_t n, const T* x, T* y) {
  parallel_chunks(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
  });
}

// dx = dy where the output was positive, else 0 (PyTorch's choice at x = 0).
template <typename T>
void relu_backward_naive(std::int64_t n, const T* y, const T* dy, T* dx) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

template <typename T>
void relu_backward(std::int64_t n, const T* y, const T* dy, T* dx) {
  parallel_chunks(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
  });
}

}  // namespace minidl::kernels
