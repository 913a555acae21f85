// minidl/optim/clip_grad.hpp - gradient clipping by global norm and by value, as torch.nn.utils.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

namespace detail {

// The slot of thread_scratch holding the chunks' partial results; no kernel uses it.
inline constexpr int kClipScratchSlot = 8;

// Sum of squares (norm_type 2) or largest magnitude (infinity) of one
// gradient, in double. Each fixed chunk is reduced on its own and the chunks
// are then combined in order, so the bits never depend on the thread count.
template <typename T>
double gradient_norm_part(const Tensor<T>& g, bool infinity) {
  const std::int64_t n = g.size();
  const std::int64_t chunks = (n + kElementwiseChunk - 1) / kElementwiseChunk;
  // Reused from call to call: a warm training step allocates nothing.
  double* const partial = thread_scratch<double, kClipScratchSlot>(chunks);
  const T* data = g.data();
  parallel_for(chunks, [&](std::int64_t c) {
    const std::int64_t begin = c * kElementwiseChunk, end = std::min(n, begin + kElementwiseChunk);
    double acc = 0;
    for (std::int64_t j = begin; j < end; ++j) {
      const double x = static_cast<double>(data[j]);
      acc = infinity ? std::max(acc, std::fabs(x)) : acc + x * x;
    }
    partial[c] = acc;
  });
  double total = 0;
  for (std::int64_t c = 0; c < chunks; ++c)
    total = infinity ? std::max(total, partial[c]) : total + partial[c];
  return total;
}

}  // namespace detail

// torch.nn.utils.clip_grad_norm_: the norm of all gradients together, as if
// they were one vector, and when it exceeds max_norm every gradient is
// multiplied by max_norm / (norm + 1e-6). norm_type is 2 or infinity.
// Frozen parameters (not trainable(): PyTorch's grad None) take no part.
// Returns the norm before clipping (computed in double). A non-finite norm
// is returned as it is, and the gradients are then scaled by NaN or zero,
// as PyTorch does by default: check the result when that matters.
template <typename T>
double clip_grad_norm(const std::vector<Parameter<T>>& params, double max_norm,
                      double norm_type = 2.0) {
  const bool infinity = std::isinf(norm_type) && norm_type > 0;
  if (!infinity && norm_type != 2.0)
    fail("clip_grad_norm: norm_type must be 2 or infinity, got ", norm_type);
  if (!(max_norm >= 0)) fail("clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  double total = 0;
  for (const auto& p : params) {
    if (!p.trainable()) continue;
    const double part = detail::gradient_norm_part(*p.grad, infinity);
    total = infinity ? std::max(total, part) : total + part;
  }
  const double norm = infinity ? total : std::sqrt(total);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0 || std::isnan(coef)) {
    const T scale = static_cast<T>(coef);
    for (const auto& p : params) {
      if (!p.trainable()) continue;
      T* g = p.grad->data();
      parallel_chunks(p.grad->size(), [=](std::int64_t b, std::int64_t e) {
        MINIDL_VECTORIZE
        for (std::int64_t j = b; j < e; ++j) g[j] *= scale;
      });
    }
  }
  return norm;
}

// torch.nn.utils.clip_grad_value_: every gradient element clamped to
// [-clip_value, clip_value]; frozen parameters are left alone.
template <typename T>
void clip_grad_value(const std::vector<Parameter<T>>& params, double clip_value) {
  if (!(clip_value >= 0)) fail("clip_grad_value: clip_value must be >= 0, got ", clip_value);
  const T hi = static_cast<T>(clip_value), lo = -hi;
  for (const auto& p : params) {
    if (!p.trainable()) continue;
    T* g = p.grad->data();
    parallel_chunks(p.grad->size(), [=](std::int64_t b, std::int64_t e) {
      MINIDL_VECTORIZE
      for (std::int64_t j = b; j < e; ++j) g[j] = std::min(std::max(g[j], lo), hi);
    });
  }
}

}  // namespace minidl
