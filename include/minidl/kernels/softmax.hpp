// minidl/kernels/softmax.hpp - softmax and log-softmax along one axis, forward and backward, and
// their naive twins.
//
// Sizes: the tensor seen as [outer, C, inner], normalised over C: element c
// of position (o, j) sits at (o C + c) inner + j. For (N, C) and dim 1,
// outer = N and inner = 1; for (N, C, H, W) and dim 1, inner = H W.
// x the input, y the output, dy and dx their gradients, all of that shape.
//   softmax:      y = exp(x - m) / s,  m = max_c x,  s = sum_c exp(x - m)
//                 dx = y (dy - sum_c dy y)
//   log-softmax:  y = x - m - log s
//                 dx = dy - exp(y) sum_c dy
// Subtracting the maximum first keeps exp() from overflowing (inputs of
// +-100 and beyond). The backward passes read the output, as PyTorch's do.
//
// The fast kernels work on vectors of positions (kernels/simd.hpp): along
// the inner axis when inner > 1, along C when inner = 1. Each sum runs in
// an order that the shape alone fixes (over c in order; for inner = 1 each
// vector lane over every width-th c, then the lanes in order, then the last
// elements short of a vector), and work is split over outer and blocks of
// positions, so the bits never depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/simd.hpp"
#include "minidl/kernels/vector_exp.hpp"

namespace minidl::kernels {

struct SoftmaxShape {
  std::int64_t outer, C, inner;
};

template <typename T>
void softmax_forward_naive(const SoftmaxShape& s, const T* x, T* y, bool log) {
  if (s.C == 0) return;
  for (std::int64_t o = 0; o < s.outer; ++o)
    for (std::int64_t j = 0; j < s.inner; ++j) {
      const T* in = x + o * s.C * s.inner + j;
      T* out = y + o * s.C * s.inner + j;
      T m = in[0];
      for (std::int64_t c = 1; c < s.C; ++c) m = std::max(m, in[c * s.inner]);
      T sum = 0;
      for (std::int64_t c = 0; c < s.C; ++c) sum += std::exp(in[c * s.inner] - m);
      for (std::int64_t c = 0; c < s.C; ++c)
        out[c * s.inner] =
            log ? in[c * s.inner] - m - std::log(sum) : std::exp(in[c * s.inner] - m) / sum;
    }
}

template <typename T>
void softmax_backward_naive(const SoftmaxShape& s, const T* y, const T* dy, T* dx, bool log) {
  for (std::int64_t o = 0; o < s.outer; ++o)
    for (std::int64_t j = 0; j < s.inner; ++j) {
      const std::int64_t base = o * s.C * s.inner + j;
      T sum = 0;  // log: sum dy; else sum dy y
      for (std::int64_t c = 0; c < s.C; ++c) {
        const std::int64_t i = base + c * s.inner;
        sum += log ? dy[i] : dy[i] * y[i];
      }
      for (std::int64_t c = 0; c < s.C; ++c) {
        const std::int64_t i = base + c * s.inner;
        dx[i] = log ? dy[i] - std::exp(y[i]) * sum : y[i] * (dy[i] - sum);
      }
    }
}

namespace softmax_detail {

// Loads and stores of a vector of `count` positions: whole vectors move in
// one instruction, the last short one through a zeroed vector.
template <typename T>
struct Lanes {
  using S = Simd<T>;
  using vec = typename S::vec;
  std::int64_t count;
  vec load(const T* p) const {
    if (count == S::width) return S::load(p);
    vec v{};
    std::memcpy(&v, p, static_cast<std::size_t>(count) * sizeof(T));
    return v;
  }
  void store(T* p, vec v) const {
    if (count == S::width) return S::store(p, v);
    std::memcpy(p, &v, static_cast<std::size_t>(count) * sizeof(T));
  }
};

template <typename T>
typename Simd<T>::vec vmax(typename Simd<T>::vec a, typename Simd<T>::vec b) {
  return b > a ? b : a;
}

// Positions j .. j + lanes.count of plane o, vectorised along the inner axis.
template <typename T>
void forward_positions(const SoftmaxShape& s, const T* x, T* y, bool log, Lanes<T> lanes) {
  using V = typename Simd<T>::vec;
  V m = lanes.load(x);
  for (std::int64_t c = 1; c < s.C; ++c) m = vmax<T>(m, lanes.load(x + c * s.inner));
  V sum{};
  for (std::int64_t c = 0; c < s.C; ++c) {
    const V e = VectorExp<T>::exp(lanes.load(x + c * s.inner) - m);
    sum += e;
    if (!log) lanes.store(y + c * s.inner, e);
  }
  if (log) {
    V log_sum;
    for (int l = 0; l < Simd<T>::width; ++l) log_sum[l] = l < lanes.count ? std::log(sum[l]) : T(0);
    for (std::int64_t c = 0; c < s.C; ++c)
      lanes.store(y + c * s.inner, lanes.load(x + c * s.inner) - m - log_sum);
  } else {
    for (std::int64_t c = 0; c < s.C; ++c)
      lanes.store(y + c * s.inner, lanes.load(y + c * s.inner) / sum);
  }
}

template <typename T>
void backward_positions(const SoftmaxShape& s, const T* y, const T* dy, T* dx, bool log,
                        Lanes<T> lanes) {
  using V = typename Simd<T>::vec;
  V sum{};
  for (std::int64_t c = 0; c < s.C; ++c) {
    const V g = lanes.load(dy + c * s.inner);
    sum += log ? g : g * lanes.load(y + c * s.inner);
  }
  for (std::int64_t c = 0; c < s.C; ++c) {
    const V out = lanes.load(y + c * s.inner), g = lanes.load(dy + c * s.inner);
    lanes.store(dx + c * s.inner, log ? g - VectorExp<T>::exp(out) * sum : out * (g - sum));
  }
}

// The sum of a vector's lanes in lane order, then of the rest of a row.
template <typename T>
T lanes_then_tail(typename Simd<T>::vec acc, const T* tail, std::int64_t count) {
  T total = acc[0];
  for (int l = 1; l < Simd<T>::width; ++l) total += acc[l];
  for (std::int64_t i = 0; i < count; ++i) total += tail[i];
  return total;
}

// One row of C contiguous elements (inner = 1), vectorised along the row.
template <typename T>
void forward_row(std::int64_t C, const T* x, T* y, bool log) {
  using S = Simd<T>;
  using V = typename S::vec;
  const std::int64_t full = C / S::width * S::width;
  const Lanes<T> tail{C - full};
  T m = x[0];
  for (std::int64_t c = 1; c < C; ++c) m = std::max(m, x[c]);
  V acc{};
  for (std::int64_t c = 0; c < full; c += S::width) {
    const V e = VectorExp<T>::exp(S::load(x + c) - m);
    acc += e;
    if (!log) S::store(y + c, e);
  }
  T tail_e[S::width] = {};
  if (tail.count > 0) {
    const V e = VectorExp<T>::exp(tail.load(x + full) - m);
    tail.store(tail_e, e);
    if (!log) tail.store(y + full, e);
  }
  const T sum = lanes_then_tail<T>(acc, tail_e, tail.count);
  if (log) {
    const T shift = m + std::log(sum);
    MINIDL_VECTORIZE
    for (std::int64_t c = 0; c < C; ++c) y[c] = x[c] - shift;
  } else {
    MINIDL_VECTORIZE
    for (std::int64_t c = 0; c < C; ++c) y[c] /= sum;
  }
}

template <typename T>
void backward_row(std::int64_t C, const T* y, const T* dy, T* dx, bool log) {
  using S = Simd<T>;
  using V = typename S::vec;
  const std::int64_t full = C / S::width * S::width;
  V acc{};
  for (std::int64_t c = 0; c < full; c += S::width)
    acc += log ? S::load(dy + c) : S::load(dy + c) * S::load(y + c);
  T tail[S::width] = {};
  for (std::int64_t c = full; c < C; ++c) tail[c - full] = log ? dy[c] : dy[c] * y[c];
  const T sum = lanes_then_tail<T>(acc, tail, C - full);
  const Lanes<T> last{C - full};
  for (std::int64_t c = 0; c < C; c += S::width) {
    const Lanes<T> lanes = c < full ? Lanes<T>{S::width} : last;
    const V out = lanes.load(y + c), g = lanes.load(dy + c);
    lanes.store(dx + c, log ? g - VectorExp<T>::exp(out) * sum : out * (g - sum));
  }
}

// Positions per work item when inner > 1: a few vectors' worth, so that
// small planes still spread over the threads.
inline constexpr std::int64_t kPositionsPerItem = 256;

// Runs body(o, j, lanes) over every vector of positions, in parallel over
// (o, block of positions); for inner = 1, row(o) over the rows.
template <typename T, typename Positions, typename Row>
void for_each_vector(const SoftmaxShape& s, Positions positions, Row row) {
  using S = Simd<T>;
  if (s.inner == 1) {
    parallel_for(s.outer, [&](std::int64_t o) { row(o); });
    return;
  }
  const std::int64_t blocks = (s.inner + kPositionsPerItem - 1) / kPositionsPerItem;
  parallel_for(s.outer * blocks, [&](std::int64_t item) {
    const std::int64_t o = item / blocks, begin = item % blocks * kPositionsPerItem;
    const std::int64_t end = std::min(s.inner, begin + kPositionsPerItem);
    for (std::int64_t j = begin; j < end; j += S::width)
      positions(o, j, Lanes<T>{std::min<std::int64_t>(S::width, end - j)});
  });
}

}  // namespace softmax_detail

// The fast kernels; y must not alias x (nor dx alias y or dy).
template <typename T>
void softmax_forward(const SoftmaxShape& s, const T* x, T* y, bool log) {
  using namespace softmax_detail;
  if (s.outer * s.C * s.inner == 0) return;
  const std::int64_t plane = s.C * s.inner;
  for_each_vector<T>(
      s,
      [&](std::int64_t o, std::int64_t j, Lanes<T> lanes) {
        forward_positions(s, x + o * plane + j, y + o * plane + j, log, lanes);
      },
      [&](std::int64_t o) { forward_row(s.C, x + o * s.C, y + o * s.C, log); });
}

template <typename T>
void softmax_backward(const SoftmaxShape& s, const T* y, const T* dy, T* dx, bool log) {
  using namespace softmax_detail;
  if (s.outer * s.C * s.inner == 0) return;
  const std::int64_t plane = s.C * s.inner;
  for_each_vector<T>(
      s,
      [&](std::int64_t o, std::int64_t j, Lanes<T> lanes) {
        const std::int64_t at = o * plane + j;
        backward_positions(s, y + at, dy + at, dx + at, log, lanes);
      },
      [&](std::int64_t o) {
        const std::int64_t at = o * s.C;
        backward_row(s.C, y + at, dy + at, dx + at, log);
      });
}

}  // namespace minidl::kernels
