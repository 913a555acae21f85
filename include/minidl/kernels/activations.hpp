// minidl/kernels/activations.hpp - elementwise activations forward and backward, and their naive
// twins.
//
// Sizes: n elements; x the input, y the output, dy the gradient of the
// output, dx the gradient of the input, all [n]. Each naive twin is the
// plain loop over the definition with std::exp / std::tanh / std::erf. The
// fast ones run a vector at a time (kernels/vector_exp.hpp) over fixed
// chunks of kElementwiseChunk elements (core/parallel.hpp), so no element's
// result depends on the number of threads. The formulas are PyTorch's
// (ATen's CPU kernels), so that the two agree to rounding.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/simd.hpp"
#include "minidl/kernels/vector_exp.hpp"

namespace minidl::kernels {

// out[i] = f(a[i], b[i]) (b may be null when f ignores it), a vector at a
// time. The last elements short of a vector are copied into a zeroed
// vector and go through the same f, so every element gets the same
// instructions wherever it sits. out may alias a or b.
template <typename T, typename F>
void map_vectors(std::int64_t n, const T* a, const T* b, T* out, F f) {
  using S = Simd<T>;
  parallel_chunks(n, [a, b, out, f](std::int64_t begin, std::int64_t end) {
    const T* pa = a;
    const T* pb = b;
    T* po = out;
    std::int64_t i = begin;
    for (; i + S::width <= end; i += S::width)
      S::store(po + i, f(S::load(pa + i), pb ? S::load(pb + i) : typename S::vec{}));
    if (i < end) {
      const std::size_t bytes = static_cast<std::size_t>(end - i) * sizeof(T);
      typename S::vec va{}, vb{};
      std::memcpy(&va, pa + i, bytes);
      if (pb) std::memcpy(&vb, pb + i, bytes);
      const typename S::vec vo = f(va, vb);
      std::memcpy(po + i, &vo, bytes);
    }
  });
}

// ---- Sigmoid: y = 1 / (1 + exp(-x)); dx = dy (1 - y) y, from the output --------------

template <typename T>
void sigmoid_forward_naive(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
}

template <typename T>
void sigmoid_forward(std::int64_t n, const T* x, T* y) {
  using V = typename Simd<T>::vec;
  map_vectors(n, x, static_cast<const T*>(nullptr), y,
              [](V v, V) { return T(1) / (T(1) + VectorExp<T>::exp(-v)); });
}

template <typename T>
void sigmoid_backward_naive(std::int64_t n, const T* y, const T* dy, T* dx) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i]) * y[i];
}

template <typename T>
void sigmoid_backward(std::int64_t n, const T* y, const T* dy, T* dx) {
  using V = typename Simd<T>::vec;
  map_vectors(n, y, dy, dx, [](V out, V g) { return g * (T(1) - out) * out; });
}

// ---- Tanh: dx = dy (1 - y^2), from the output -------------------------------------------

template <typename T>
void tanh_forward_naive(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

template <typename T>
void tanh_forward(std::int64_t n, const T* x, T* y) {
  using V = typename Simd<T>::vec;
  map_vectors(n, x, static_cast<const T*>(nullptr), y,
              [](V v, V) { return VectorExp<T>::tanh(v); });
}

template <typename T>
void tanh_backward_naive(std::int64_t n, const T* y, const T* dy, T* dx) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
}

template <typename T>
void tanh_backward(std::int64_t n, const T* y, const T* dy, T* dx) {
  using V = typename Simd<T>::vec;
  map_vectors(n, y, dy, dx, [](V out, V g) { return g * (T(1) - out * out); });
}

// ---- LeakyReLU: y = x > 0 ? x : slope x; dx = x > 0 ? dy : slope dy, from the input -----
// (PyTorch's choice at x = 0 is the slope side.) The fast kernels select
// between both candidates computed in full, so that no branch depends on a
// sign that is random.

template <typename T>
void leaky_relu_forward_naive(std::int64_t n, T slope, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : x[i] * slope;
}

// y may alias x. A vector select, not a branch: the sign of x is random, and a branch that
// mispredicts half the time made this loop twenty times slower than the select.
template <typename T>
void leaky_relu_forward(std::int64_t n, T slope, const T* x, T* y) {
  using V = typename Simd<T>::vec;
  map_vectors(n, x, static_cast<const T*>(nullptr), y,
              [slope](V v, V) { return v > T(0) ? v : v * slope; });
}

// The same, and mask = (x > 0) as bytes for an in-place layer's backward.
template <typename T>
void leaky_relu_forward_mask(std::int64_t n, T slope, const T* x, T* y, std::uint8_t* mask) {
  parallel_chunks(n, [slope, x, y, mask](std::int64_t b, std::int64_t e) {
    const T* in = x;
    T* out = y;
    std::uint8_t* m = mask;
    MINIDL_VECTORIZE
    for (std::int64_t i = b; i < e; ++i) {
      const T v = in[i], scaled = v * slope;
      m[i] = v > T(0);
      out[i] = v > T(0) ? v : scaled;
    }
  });
}

template <typename T>
void leaky_relu_backward_naive(std::int64_t n, T slope, const T* x, const T* dy, T* dx) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : dy[i] * slope;
}

template <typename T>
void leaky_relu_backward(std::int64_t n, T slope, const T* x, const T* dy, T* dx) {
  using V = typename Simd<T>::vec;
  map_vectors(n, x, dy, dx, [slope](V v, V g) { return v > T(0) ? g : g * slope; });
}

// From the mask of leaky_relu_forward_mask; dx may alias dy.
template <typename T>
void leaky_relu_backward_mask(std::int64_t n, T slope, const std::uint8_t* mask, const T* dy,
                              T* dx) {
  parallel_chunks(n, [slope, mask, dy, dx](std::int64_t b, std::int64_t e) {
    const std::uint8_t* m = mask;
    const T* grad = dy;
    T* din = dx;
    MINIDL_VECTORIZE
    for (std::int64_t i = b; i < e; ++i) {
      const T g = grad[i], scaled = g * slope;
      din[i] = m[i] ? g : scaled;
    }
  });
}

// ---- SiLU: y = x / (1 + exp(-x)); dx = dy s (1 + x (1 - s)), s = sigmoid(x), from the input

template <typename T>
void silu_forward_naive(std::int64_t n, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] / (T(1) + std::exp(-x[i]));
}

template <typename T>
void silu_forward(std::int64_t n, const T* x, T* y) {
  using V = typename Simd<T>::vec;
  map_vectors(n, x, static_cast<const T*>(nullptr), y,
              [](V v, V) { return v / (T(1) + VectorExp<T>::exp(-v)); });
}

template <typename T>
void silu_backward_naive(std::int64_t n, const T* x, const T* dy, T* dx) {
  for (std::int64_t i = 0; i < n; ++i) {
    const T s = T(1) / (T(1) + std::exp(-x[i]));
    dx[i] = dy[i] * s * (T(1) + x[i] * (T(1) - s));
  }
}

template <typename T>
void silu_backward(std::int64_t n, const T* x, const T* dy, T* dx) {
  using V = typename Simd<T>::vec;
  map_vectors(n, x, dy, dx, [](V v, V g) {
    const V s = T(1) / (T(1) + VectorExp<T>::exp(-v));
    return g * s * (T(1) + v * (T(1) - s));
  });
}

// ---- GELU, tanh form: y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), from the input

template <typename T>
struct GeluTanhConstants {
  static constexpr T beta = T(0.7978845608028654);  // sqrt(2 / pi)
  static constexpr T kappa = T(0.044715);
};

template <typename T>
void gelu_tanh_forward_naive(std::int64_t n, const T* x, T* y) {
  using K = GeluTanhConstants<T>;
  for (std::int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    y[i] = T(0.5) * v * (T(1) + std::tanh(K::beta * (v + K::kappa * v * v * v)));
  }
}

template <typename T>
void gelu_tanh_forward(std::int64_t n, const T* x, T* y) {
  using V = typename Simd<T>::vec;
  using K = GeluTanhConstants<T>;
  map_vectors(n, x, static_cast<const T*>(nullptr), y, [](V v, V) {
    return T(0.5) * v * (T(1) + VectorExp<T>::tanh(K::beta * (v + K::kappa * v * v * v)));
  });
}

// dx = dy (1/2 (1 + t) + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2)), t = tanh(u).
template <typename T>
void gelu_tanh_backward_naive(std::int64_t n, const T* x, const T* dy, T* dx) {
  using K = GeluTanhConstants<T>;
  for (std::int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T t = std::tanh(K::beta * (v + K::kappa * v * v * v));
    const T du = K::beta * (T(1) + T(3) * K::kappa * v * v);
    dx[i] = dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * du);
  }
}

template <typename T>
void gelu_tanh_backward(std::int64_t n, const T* x, const T* dy, T* dx) {
  using V = typename Simd<T>::vec;
  using K = GeluTanhConstants<T>;
  map_vectors(n, x, dy, dx, [](V v, V g) {
    const V t = VectorExp<T>::tanh(K::beta * (v + K::kappa * v * v * v));
    const V du = K::beta * (T(1) + T(3) * K::kappa * v * v);
    return g * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * du);
  });
}

// ---- GELU, exact form: y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)); dx = dy (Phi(x) + x phi(x))
// There is no vector erf here yet: the fast kernels are the naive loops
// run in parallel over chunks, so they give the naive twin's bits.

template <typename T>
struct GeluConstants {
  static constexpr T inv_sqrt2 = T(0.70710678118654752440);
  static constexpr T inv_sqrt_2pi = T(0.39894228040143267794);
};

template <typename T>
void gelu_forward_naive(std::int64_t n, const T* x, T* y) {
  using K = GeluConstants<T>;
  for (std::int64_t i = 0; i < n; ++i)
    y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * K::inv_sqrt2));
}

template <typename T>
void gelu_forward(std::int64_t n, const T* x, T* y) {
  parallel_chunks(
      n, [x, y](std::int64_t b, std::int64_t e) { gelu_forward_naive(e - b, x + b, y + b); });
}

template <typename T>
void gelu_backward_naive(std::int64_t n, const T* x, const T* dy, T* dx) {
  using K = GeluConstants<T>;
  for (std::int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T cdf = T(0.5) * (T(1) + std::erf(v * K::inv_sqrt2));
    const T pdf = std::exp(T(-0.5) * v * v) * K::inv_sqrt_2pi;
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

template <typename T>
void gelu_backward(std::int64_t n, const T* x, const T* dy, T* dx) {
  parallel_chunks(n, [x, dy, dx](std::int64_t b, std::int64_t e) {
    gelu_backward_naive(e - b, x + b, dy + b, dx + b);
  });
}

}  // namespace minidl::kernels
