// minidl/kernels/linear.hpp - fully connected layer forward and backward.
//
// Sizes: N batch, I inputs, O outputs. x [N,I], w [O,I] (PyTorch's layout),
// b [O], y [N,O]: y = x * w^T + b.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/gemm.hpp"

namespace minidl::kernels {

template <typename T>
void linear_forward_naive(std::int64_t N, std::int64_t I, std::int64_t O, const T* x, const T* w,
                          const T* b, T* y) {
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o) {
      T sum = b ? b[o] : T(0);
      for (std::int64_t i = 0; i < I; ++i) sum += x[n * I + i] * w[o * I + i];
      y[n * O + o] = sum;
    }
}

// dx = dy * w (overwritten).
template <typename T>
void linear_backward_data_naive(std::int64_t N, std::int64_t I, std::int64_t O, const T* dy,
                                const T* w, T* dx) {
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t i = 0; i < I; ++i) {
      T sum = 0;
      for (std::int64_t o = 0; o < O; ++o) sum += dy[n * O + o] * w[o * I + i];
      dx[n * I + i] = sum;
    }
}

// dw = dy^T * x, db = column sums of dy (overwritten; db may be null).
template <typename T>
void linear_backward_weights_naive(std::int64_t N, std::int64_t I, std::int64_t O, const T* x,
                                   const T* dy, T* dw, T* db) {
  for (std::int64_t o = 0; o < O; ++o) {
    for (std::int64_t i = 0; i < I; ++i) {
      T sum = 0;
      for (std::int64_t n = 0; n < N; ++n) sum += dy[n * O + o] * x[n * I + i];
      dw[o * I + i] = sum;
    }
    if (db) {
      T sum = 0;
      for (std::int64_t n = 0; n < N; ++n) sum += dy[n * O + o];
      db[o] = sum;
    }
  }
}

template <typename T>
void linear_forward(std::int64_t N, std::int64_t I, std::int64_t O, const T* x, const T* w,
                    const T* b, T* y) {
  gemm_parallel_columns<T>(N, O, I, {x, I, false}, {w, I, true}, y, O, b != nullptr,
                           [&](std::int64_t n0, std::int64_t n1, std::int64_t o0, std::int64_t o1) {
                             if (b)
                               for (std::int64_t n = n0; n < n1; ++n)
                                 std::copy(b + o0, b + o1, y + n * O + o0);
                           });
}

template <typename T>
void linear_backward_data(std::int64_t N, std::int64_t I, std::int64_t O, const T* dy, const T* w,
                          T* dx) {
  gemm_parallel_columns<T>(N, I, O, {dy, O, false}, {w, I, false}, dx, I, false);
}

// Each element of dw and db is one running sum over the samples in order,
// so that with `carried` (dw and db hold the sums over the samples of the
// processes before this one, core/batch_reducer.hpp) the batch's samples
// continue them to the bits one process would get.
template <typename T>
void linear_backward_weights(std::int64_t N, std::int64_t I, std::int64_t O, const T* x,
                             const T* dy, T* dw, T* db, bool carried = false) {
  gemm_parallel_rows<T>(O, I, N, {dy, O, true}, {x, I, false}, dw, I, carried, true);
  if (!db) return;
  // Sample by sample over all outputs, a vector of them at a time: each
  // db[o] is the same running sum as one output's loop over the samples
  // would make, without that loop's chain of dependent additions.
  if (!carried) std::fill_n(db, O, T(0));
  for (std::int64_t n = 0; n < N; ++n) {
    const T* row = dy + n * O;
    MINIDL_VECTORIZE
    for (std::int64_t o = 0; o < O; ++o) db[o] += row[o];
  }
}

}  // namespace minidl::kernels
