// minidl/kernels/losses.hpp - loss values and their gradients: MSE, BCE with logits, NLL,
// and softmax cross-entropy with label smoothing.
//
// Every kernel takes `scale`, 1 / count for a mean and 1 for a sum: the loss
// is scale * sum of the per-element (or per-sample) losses, summed in double
// in index order, and the gradient is scale * d(loss_i)/d(input). A null
// gradient pointer skips the gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace minidl::kernels {

// (x - y)^2 over n elements; gradient 2 (x - y).
template <typename T>
double mse(std::int64_t n, const T* x, const T* y, double scale, T* dx) {
  double total = 0;
  const T two_scale = static_cast<T>(2.0 * scale);
  for (std::int64_t i = 0; i < n; ++i) {
    const T diff = x[i] - y[i];
    total += static_cast<double>(diff * diff);
    if (dx) dx[i] = two_scale * diff;
  }
  return total * scale;
}

// -y log(sigmoid(x)) - (1 - y) log(1 - sigmoid(x)) over n logits x and
// targets y in [0, 1], written as (1 - y) x + max(-x, 0) + log1p(exp(-|x|)):
// no exp() of a positive number, so nothing overflows for any x. Gradient
// sigmoid(x) - y, the sigmoid also formed without overflow.
template <typename T>
double bce_with_logits(std::int64_t n, const T* x, const T* y, double scale, T* dx) {
  double total = 0;
  const T s = static_cast<T>(scale);
  for (std::int64_t i = 0; i < n; ++i) {
    const T e = std::exp(-std::fabs(x[i]));  // in (0, 1]
    total += static_cast<double>((T(1) - y[i]) * x[i] + std::max(-x[i], T(0)) + std::log1p(e));
    if (dx) {
      const T sigmoid = x[i] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
      dx[i] = (sigmoid - y[i]) * s;
    }
  }
  return total * scale;
}

// -logp[i, label_i] over N rows of K log-probabilities; gradient -1 at the label.
template <typename T>
double nll(std::int64_t N, std::int64_t K, const T* logp, const std::int32_t* labels, double scale,
           T* dlogp) {
  double total = 0;
  for (std::int64_t i = 0; i < N; ++i) total -= static_cast<double>(logp[i * K + labels[i]]);
  if (dlogp) {
    std::fill(dlogp, dlogp + N * K, T(0));
    for (std::int64_t i = 0; i < N; ++i) dlogp[i * K + labels[i]] = static_cast<T>(-scale);
  }
  return total * scale;
}

// Cross-entropy of softmax(z) against the label smoothed by `smoothing` (s):
// the target puts 1 - s + s/K on the label and s/K on every other class, so
//   loss_n = logsumexp(z) - (1 - s) z[label] - (s/K) sum_k z[k]
//   dz     = softmax(z) - (1 - s) onehot - s/K.
// The naive twin, in double throughout, is the oracle of the fast version.
template <typename T>
double softmax_xent_smoothed_naive(std::int64_t N, std::int64_t K, const T* logits,
                                   const std::int32_t* labels, double smoothing, double scale,
                                   T* dlogits) {
  double total = 0;
  for (std::int64_t n = 0; n < N; ++n) {
    const T* z = logits + n * K;
    double zmax = static_cast<double>(z[0]);
    for (std::int64_t k = 1; k < K; ++k) zmax = std::max(zmax, static_cast<double>(z[k]));
    double sum = 0, zsum = 0;
    for (std::int64_t k = 0; k < K; ++k) {
      sum += std::exp(static_cast<double>(z[k]) - zmax);
      zsum += static_cast<double>(z[k]);
    }
    const double lse = std::log(sum) + zmax;
    total += lse - (1 - smoothing) * static_cast<double>(z[labels[n]]) -
             smoothing / static_cast<double>(K) * zsum;
    if (dlogits)
      for (std::int64_t k = 0; k < K; ++k) {
        const double target =
            (k == labels[n] ? 1 - smoothing : 0.0) + smoothing / static_cast<double>(K);
        const double p = std::exp(static_cast<double>(z[k]) - lse);
        dlogits[n * K + k] = static_cast<T>((p - target) * scale);
      }
  }
  return total * scale;
}

// Fast version: each row in T's precision with one exp per element; the
// row losses are summed in double in row order. Shifting every logit by the
// row maximum first (the targets sum to 1, so the loss is unchanged) keeps
// exp() from overflowing and the subtraction from cancelling.
// softmax_xent_smoothed_sum returns the unscaled sum of the row losses,
// continuing `total` (the sum over earlier rows, on another process).
template <typename T>
double softmax_xent_smoothed_sum(std::int64_t N, std::int64_t K, const T* logits,
                                 const std::int32_t* labels, double smoothing, double scale,
                                 T* dlogits, double total) {
  const T s = static_cast<T>(scale), keep = static_cast<T>(1.0 - smoothing);
  const T spread = static_cast<T>(smoothing / static_cast<double>(K));
  for (std::int64_t n = 0; n < N; ++n) {
    const T* z = logits + n * K;
    const T zmax = *std::max_element(z, z + K);
    T sum = 0, shifted_sum = 0;
    for (std::int64_t k = 0; k < K; ++k) {
      sum += std::exp(z[k] - zmax);
      shifted_sum += z[k] - zmax;
    }
    total +=
        static_cast<double>(std::log(sum) - keep * (z[labels[n]] - zmax) - spread * shifted_sum);
    if (dlogits) {
      T* d = dlogits + n * K;
      const T inv_sum = T(1) / sum;
      for (std::int64_t k = 0; k < K; ++k) d[k] = (std::exp(z[k] - zmax) * inv_sum - spread) * s;
      d[labels[n]] -= keep * s;
    }
  }
  return total;
}

template <typename T>
double softmax_xent_smoothed(std::int64_t N, std::int64_t K, const T* logits,
                             const std::int32_t* labels, double smoothing, double scale,
                             T* dlogits) {
  return softmax_xent_smoothed_sum(N, K, logits, labels, smoothing, scale, dlogits, 0.0) * scale;
}

}  // namespace minidl::kernels
