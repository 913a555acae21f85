// minidl/kernels/softmax_xent.hpp - softmax cross-entropy: loss and its gradient.
//
// Sizes: N batch, K classes. logits [N,K], labels [N] in [0, K), dlogits [N,K].
// loss = mean_n (logsumexp(z_n) - z_n[label_n]); dlogits = (softmax(z) - onehot) / N,
// PyTorch's CrossEntropyLoss with reduction='mean'. Subtracting the row
// maximum before exponentiating keeps exp() from overflowing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace minidl::kernels {

// Returns the mean loss; writes dlogits when it is not null.
template <typename T>
T softmax_xent_naive(std::int64_t N, std::int64_t K, const T* logits, const std::int32_t* labels,
                     T* dlogits) {
  double total = 0;
  for (std::int64_t n = 0; n < N; ++n) {
    const T* z = logits + n * K;
    const T zmax = *std::max_element(z, z + K);
    double sum = 0;
    for (std::int64_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(z[k] - zmax));
    total += std::log(sum) + zmax - z[labels[n]];
    if (dlogits)
      for (std::int64_t k = 0; k < K; ++k) {
        const double p = std::exp(static_cast<double>(z[k] - zmax)) / sum;
        dlogits[n * K + k] =
            static_cast<T>((p - (k == labels[n] ? 1.0 : 0.0)) / static_cast<double>(N));
      }
  }
  return static_cast<T>(total / static_cast<double>(N));
}

// The sum of the row losses of rows [0, N), continuing `total` (a sum over
// earlier rows, on another process, core/batch_reducer.hpp), with dlogits
// divided by `count`, the rows of the whole batch.
template <typename T>
double softmax_xent_sum(std::int64_t N, std::int64_t K, const T* logits, const std::int32_t* labels,
                        std::int64_t count, T* dlogits, double total) {
  const T inv_n = T(1) / static_cast<T>(count);
  for (std::int64_t n = 0; n < N; ++n) {
    const T* z = logits + n * K;
    const T zmax = *std::max_element(z, z + K);
    T sum = 0;
    for (std::int64_t k = 0; k < K; ++k) sum += std::exp(z[k] - zmax);
    const T log_sum = std::log(sum);
    total += static_cast<double>(log_sum + zmax - z[labels[n]]);
    if (dlogits) {
      T* d = dlogits + n * K;
      const T inv_sum = T(1) / sum;
      for (std::int64_t k = 0; k < K; ++k) d[k] = std::exp(z[k] - zmax) * inv_sum * inv_n;
      d[labels[n]] -= inv_n;
    }
  }
  return total;
}

// Per-row log-probabilities in T's precision with one exp per element; the
// batch mean is accumulated in double in row order.
template <typename T>
T softmax_xent(std::int64_t N, std::int64_t K, const T* logits, const std::int32_t* labels,
               T* dlogits) {
  const double total = softmax_xent_sum(N, K, logits, labels, N, dlogits, 0.0);
  return static_cast<T>(total / static_cast<double>(N));
}

}  // namespace minidl::kernels
