// minidl/kernels/batchnorm.hpp - batch normalisation over [N, C, P]: statistics, forward, backward.
//
// Shapes: x, y, dy, dx are [N, C, P] (P = H * W for BatchNorm2d, L or 1 for
// BatchNorm1d); every per-channel array (gamma, beta, mean, var, invstd,
// running statistics, dgamma, dbeta) holds C values. A channel's M = N * P
// elements lie in N rows of P at a stride of C * P. gamma and beta may be
// null (affine off): then gamma is 1 and beta 0, and dgamma, dbeta are not
// written (they may be null too).
//
// The fast kernels give each channel to one thread (parallel over
// channels) and sum its M elements in an order fixed by N and P alone:
// 4 vector accumulators along each row, the row's tail in a scalar, the
// vector lanes added up in lane order at the end. So the result is the
// same bits for any number of threads. The naive twins sum in plain (n, p)
// order, so the two agree to rounding, not bit for bit, where they sum;
// where they do not sum (evaluation forward, the affine map) they agree
// exactly.
//
// A ReLU after the batch norm may be applied inside it (the plan pass
// decides, layers/plan.hpp): the normalisation then stores max(y, 0), and
// the backward takes dy with respect to that output and the output itself,
// and uses dy where the output is positive, else 0, as the ReLU's backward
// would have written it. The bits are those of the two layers run apart.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// ---------------------------------------------------------------- naive twins

// mean and biased variance (divided by M) of each channel, two passes; invstd
// = 1 / sqrt(var + eps).
template <typename T>
void batchnorm_stats_naive(std::int64_t N, std::int64_t C, std::int64_t P, double eps, const T* x,
                           T* mean, T* var, T* invstd) {
  const T M = static_cast<T>(N * P);
  for (std::int64_t c = 0; c < C; ++c) {
    T sum = 0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t p = 0; p < P; ++p) sum += x[(n * C + c) * P + p];
    const T m = sum / M;
    T sq = 0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t p = 0; p < P; ++p) {
        const T d = x[(n * C + c) * P + p] - m;
        sq += d * d;
      }
    mean[c] = m;
    var[c] = sq / M;
    invstd[c] = T(1) / std::sqrt(var[c] + static_cast<T>(eps));
  }
}

// y = (x - mean) * invstd * gamma + beta, computed as PyTorch's CPU kernel
// does: y = x * a + b with a = invstd * gamma and b = beta - mean * a.
// With `relu`, y = max(that, 0).
template <typename T>
void batchnorm_normalize_naive(std::int64_t N, std::int64_t C, std::int64_t P, const T* x,
                               const T* mean, const T* invstd, const T* gamma, const T* beta, T* y,
                               bool relu = false) {
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = 0; c < C; ++c) {
      const T a = invstd[c] * (gamma ? gamma[c] : T(1));
      const T b = (beta ? beta[c] : T(0)) - mean[c] * a;
      for (std::int64_t p = 0; p < P; ++p) {
        const T v = x[(n * C + c) * P + p] * a + b;
        y[(n * C + c) * P + p] = relu && !(v > T(0)) ? T(0) : v;
      }
    }
}

// The gradients. With batch_stats (training, or no running statistics),
// mean and invstd came from this batch and dx goes through them (PyTorch's
// formula):
//   dx = (dy - sum(dy) / M - (x - mean) * invstd^2 * sum(dy * (x - mean)) / M) * invstd * gamma
// else they are constants and dx = dy * invstd * gamma. In both cases
// dbeta = sum(dy) and dgamma = sum(dy * (x - mean)) * invstd. dx may be
// null (no input gradient). With relu_output (the output of a ReLU applied
// inside, dy being the gradient with respect to it), dy is first zeroed
// where that output is not positive.
template <typename T>
void batchnorm_backward_naive(std::int64_t N, std::int64_t C, std::int64_t P, bool batch_stats,
                              const T* x, const T* dy_in, const T* mean, const T* invstd,
                              const T* gamma, T* dx, T* dgamma, T* dbeta,
                              const T* relu_output = nullptr) {
  const T M = static_cast<T>(N * P);
  std::vector<T> masked;
  const T* dy = dy_in;
  if (relu_output) {
    masked.resize(static_cast<std::size_t>(N * C * P));
    for (std::size_t i = 0; i < masked.size(); ++i)
      masked[i] = relu_output[i] > T(0) ? dy_in[i] : T(0);
    dy = masked.data();
  }
  for (std::int64_t c = 0; c < C; ++c) {
    T sum_dy = 0, sum_dy_xmu = 0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t p = 0; p < P; ++p) {
        const std::int64_t i = (n * C + c) * P + p;
        sum_dy += dy[i];
        sum_dy_xmu += dy[i] * (x[i] - mean[c]);
      }
    if (dgamma) dgamma[c] = sum_dy_xmu * invstd[c];
    if (dbeta) dbeta[c] = sum_dy;
    if (!dx) continue;
    const T w = invstd[c] * (gamma ? gamma[c] : T(1));
    const T mean_dy = batch_stats ? sum_dy / M : T(0);
    const T k = batch_stats ? sum_dy_xmu * invstd[c] * invstd[c] / M : T(0);
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t p = 0; p < P; ++p) {
        const std::int64_t i = (n * C + c) * P + p;
        dx[i] = (dy[i] - mean_dy - (x[i] - mean[c]) * k) * w;
      }
  }
}

// ------------------------------------------------------ shared by both twins

// running = (1 - momentum) * running + momentum * batch, with the batch's
// variance made unbiased (times M / (M - 1)) as PyTorch does.
template <typename T>
void batchnorm_update_running(std::int64_t C, std::int64_t M, double momentum, const T* mean,
                              const T* var, T* running_mean, T* running_var) {
  const T m = static_cast<T>(momentum), keep = static_cast<T>(1 - momentum);
  const T unbias = static_cast<T>(M) / static_cast<T>(M - 1);
  for (std::int64_t c = 0; c < C; ++c) {
    running_mean[c] = keep * running_mean[c] + m * mean[c];
    running_var[c] = keep * running_var[c] + m * (var[c] * unbias);
  }
}

// invstd = 1 / sqrt(var + eps) of the running variance, for evaluation.
template <typename T>
void batchnorm_invstd(std::int64_t C, double eps, const T* var, T* invstd) {
  for (std::int64_t c = 0; c < C; ++c) invstd[c] = T(1) / std::sqrt(var[c] + static_cast<T>(eps));
}

// A convolution followed by a batch norm in evaluation, as one convolution:
// w' = w * a, b' = (b - mean) * a + beta with a = gamma / sqrt(var + eps).
// w: [OC, K] (K = IC * KH * KW); bias may be null (none), gamma/beta too.
template <typename T>
void batchnorm_fold_into_conv(std::int64_t OC, std::int64_t K, const T* w, const T* bias,
                              const T* mean, const T* invstd, const T* gamma, const T* beta,
                              T* folded_w, T* folded_bias) {
  for (std::int64_t o = 0; o < OC; ++o) {
    const T a = invstd[o] * (gamma ? gamma[o] : T(1));
    MINIDL_VECTORIZE
    for (std::int64_t k = 0; k < K; ++k) folded_w[o * K + k] = w[o * K + k] * a;
    folded_bias[o] = ((bias ? bias[o] : T(0)) - mean[o]) * a + (beta ? beta[o] : T(0));
  }
}

// ---------------------------------------------------------------- fast kernels

namespace detail {

// The running state of channel_sums: two vector accumulators and a scalar
// tail per sum. Plain data, so that a process can pass it to the next one,
// which continues the sums over its own rows (core/batch_reducer.hpp).
template <typename T, int Sums>
struct ChannelSums {
  typename Simd<T>::vec acc0[Sums], acc1[Sums];
  T tail[Sums];
};

// Sums over one channel's N rows of P elements (row n at x + n * stride),
// continuing `state`: 2 vector accumulators along each row, the row's tail
// in a scalar, so the order depends on N and P only. add(acc, tail,
// offset, count) adds `count` elements (a vector's worth, or 1 into the
// tail) from `offset` into acc or tail; an Accumulator holds as many sums
// as the caller needs.
template <typename T, int Sums, typename Add>
void channel_sums_continue(std::int64_t N, std::int64_t P, std::int64_t stride, Add add,
                           ChannelSums<T, Sums>& state) {
  constexpr std::int64_t W = Simd<T>::width;
  for (std::int64_t n = 0; n < N; ++n) {
    const std::int64_t row = n * stride;
    std::int64_t p = 0;
    for (; p + 2 * W <= P; p += 2 * W) {
      add(state.acc0, row + p);
      add(state.acc1, row + p + W);
    }
    for (; p + W <= P; p += W) add(state.acc0, row + p);
    for (; p < P; ++p) add(state.tail, row + p);
  }
}

// The sums of a state: the vector lanes added up in lane order, then the tail.
template <typename T, int Sums>
void channel_sums_total(const ChannelSums<T, Sums>& state, T (&out)[Sums]) {
  for (int s = 0; s < Sums; ++s) {
    const typename Simd<T>::vec v = state.acc0[s] + state.acc1[s];
    T sum = 0;
    for (int l = 0; l < Simd<T>::width; ++l) sum += v[l];
    out[s] = sum + state.tail[s];
  }
}

// Loads a vector (for a vec accumulator) or one element (for a scalar one).
template <typename T>
typename Simd<T>::vec load_as(const typename Simd<T>::vec*, const T* p) {
  return Simd<T>::load(p);
}
template <typename T>
T load_as(const T*, const T* p) {
  return *p;
}

// dy where the ReLU's output y is positive, else +0 (the ReLU's backward),
// as a vector or one element.
template <typename T>
typename Simd<T>::vec relu_grad_as(const typename Simd<T>::vec*, const T* dy, const T* y) {
  return Simd<T>::positive_or_zero(Simd<T>::load(y), Simd<T>::load(dy));
}
template <typename T>
T relu_grad_as(const T*, const T* dy, const T* y) {
  return *y > T(0) ? *dy : T(0);
}

// y = x * a + b over one channel's N rows of P elements, or max(that, 0)
// with Relu.
template <bool Relu, typename T>
void channel_affine(std::int64_t N, std::int64_t P, std::int64_t stride, const T* x, T a, T b,
                    T* y) {
  for (std::int64_t n = 0; n < N; ++n) {
    const T* in = x + n * stride;
    T* out = y + n * stride;
    MINIDL_VECTORIZE
    for (std::int64_t p = 0; p < P; ++p) {
      const T v = in[p] * a + b;
      out[p] = Relu ? (v > T(0) ? v : T(0)) : v;
    }
  }
}

// One channel's sums, continuing `state`: sum(x); sum((x - m)^2); sum(dy)
// and sum(dy * (x - m)). Not inlined, so that one compiled body serves the
// single-process kernels and the split ones below: inlined into two callers,
// the compiler may fuse a multiply and an add (FMA) in one and not in the
// other, or vectorise one across channels, and the bits would differ.
template <typename T>
[[gnu::noinline]] void channel_mean_sums(std::int64_t N, std::int64_t P, std::int64_t stride,
                                         const T* xc, ChannelSums<T, 1>& state) {
  channel_sums_continue<T, 1>(
      N, P, stride, [xc](auto* acc, std::int64_t i) { acc[0] += load_as<T>(acc, xc + i); }, state);
}

template <typename T>
[[gnu::noinline]] void channel_var_sums(std::int64_t N, std::int64_t P, std::int64_t stride,
                                        const T* xc, T m, ChannelSums<T, 1>& state) {
  channel_sums_continue<T, 1>(
      N, P, stride,
      [xc, m](auto* acc, std::int64_t i) {
        const auto d = load_as<T>(acc, xc + i) - m;
        acc[0] += d * d;
      },
      state);
}

template <typename T>
[[gnu::noinline]] void channel_grad_sums(std::int64_t N, std::int64_t P, std::int64_t stride,
                                         const T* xc, const T* dyc, T mc,
                                         ChannelSums<T, 2>& state) {
  channel_sums_continue<T, 2>(
      N, P, stride,
      [xc, dyc, mc](auto* acc, std::int64_t i) {
        const auto d = load_as<T>(acc, dyc + i);
        acc[0] += d;
        acc[1] += d * (load_as<T>(acc, xc + i) - mc);
      },
      state);
}

// The same sums of dy passed back through a ReLU whose output is yc.
template <typename T>
[[gnu::noinline]] void channel_relu_grad_sums(std::int64_t N, std::int64_t P, std::int64_t stride,
                                              const T* xc, const T* dyc, const T* yc, T mc,
                                              ChannelSums<T, 2>& state) {
  channel_sums_continue<T, 2>(
      N, P, stride,
      [xc, dyc, yc, mc](auto* acc, std::int64_t i) {
        const auto d = relu_grad_as<T>(acc, dyc + i, yc + i);
        acc[0] += d;
        acc[1] += d * (load_as<T>(acc, xc + i) - mc);
      },
      state);
}

template <typename T>
void channel_grad_sums(std::int64_t N, std::int64_t P, std::int64_t stride, const T* xc,
                       const T* dyc, const T* relu_yc, T mc, ChannelSums<T, 2>& state) {
  if (relu_yc)
    channel_relu_grad_sums(N, P, stride, xc, dyc, relu_yc, mc, state);
  else
    channel_grad_sums(N, P, stride, xc, dyc, mc, state);
}

// dgamma, dbeta and dx of channel c from its sums (sum(dy), sum(dy * (x -
// mean))) over a batch of M values per channel; dy through the ReLU whose
// output is relu_y, if not null.
template <typename T>
[[gnu::noinline]] void channel_backward(std::int64_t N, std::int64_t C, std::int64_t P, T M,
                                        bool batch_stats, const T* x, const T* dy, const T* relu_y,
                                        const T* mean, const T* invstd, const T* gamma,
                                        std::int64_t c, const T (&sums)[2], T* dx, T* dgamma,
                                        T* dbeta) {
  const T mc = mean[c];
  const T sum_dy = sums[0], sum_dy_xmu = sums[1];
  if (dgamma) dgamma[c] = sum_dy_xmu * invstd[c];
  if (dbeta) dbeta[c] = sum_dy;
  if (!dx) return;
  const T w = invstd[c] * (gamma ? gamma[c] : T(1));
  const T mean_dy = batch_stats ? sum_dy / M : T(0);
  const T k = batch_stats ? sum_dy_xmu * invstd[c] * invstd[c] / M : T(0);
  for (std::int64_t n = 0; n < N; ++n) {
    const T* d = dy + (n * C + c) * P;
    const T* v = x + (n * C + c) * P;
    T* out = dx + (n * C + c) * P;
    if (relu_y) {
      const T* y = relu_y + (n * C + c) * P;
      MINIDL_VECTORIZE
      for (std::int64_t p = 0; p < P; ++p) {
        const T g = d[p];
        const T masked = y[p] > T(0) ? g : T(0);
        out[p] = (masked - mean_dy - (v[p] - mc) * k) * w;
      }
    } else {
      MINIDL_VECTORIZE
      for (std::int64_t p = 0; p < P; ++p) out[p] = (d[p] - mean_dy - (v[p] - mc) * k) * w;
    }
  }
}

// Mean, biased variance and 1 / sqrt(var + eps) of channel c, two passes.
template <typename T>
void channel_stats(std::int64_t N, std::int64_t C, std::int64_t P, double eps, const T* x,
                   std::int64_t c, T* mean, T* var, T* invstd) {
  const T M = static_cast<T>(N * P);
  const T* xc = x + c * P;
  ChannelSums<T, 1> state{};
  channel_mean_sums(N, P, C * P, xc, state);
  T sum[1];
  channel_sums_total(state, sum);
  const T m = sum[0] / M;
  state = {};
  channel_var_sums(N, P, C * P, xc, m, state);
  T sq[1];
  channel_sums_total(state, sq);
  mean[c] = m;
  var[c] = sq[0] / M;
  invstd[c] = T(1) / std::sqrt(var[c] + static_cast<T>(eps));
}

// y = x * a + b (max(that, 0) with relu) over channel c, with a = invstd *
// gamma and b = beta - mean * a.
template <typename T>
void channel_normalize(std::int64_t N, std::int64_t C, std::int64_t P, const T* x, const T* mean,
                       const T* invstd, const T* gamma, const T* beta, std::int64_t c, T* y,
                       bool relu) {
  const T a = invstd[c] * (gamma ? gamma[c] : T(1));
  const T b = (beta ? beta[c] : T(0)) - mean[c] * a;
  if (relu)
    channel_affine<true>(N, P, C * P, x + c * P, a, b, y + c * P);
  else
    channel_affine<false>(N, P, C * P, x + c * P, a, b, y + c * P);
}

}  // namespace detail

// batchnorm_stats_naive, parallel over channels, vectorised along rows.
template <typename T>
void batchnorm_stats(std::int64_t N, std::int64_t C, std::int64_t P, double eps, const T* x,
                     T* mean, T* var, T* invstd) {
  parallel_for(
      C, [=](std::int64_t c) { detail::channel_stats(N, C, P, eps, x, c, mean, var, invstd); });
}

// batchnorm_stats then batchnorm_normalize, channel by channel: each
// channel is normalised right after its two passes, while it is still in
// cache. The same bits as the two calls.
template <typename T>
void batchnorm_stats_normalize(std::int64_t N, std::int64_t C, std::int64_t P, double eps,
                               const T* x, T* mean, T* var, T* invstd, const T* gamma,
                               const T* beta, T* y, bool relu = false) {
  parallel_for(C, [=](std::int64_t c) {
    detail::channel_stats(N, C, P, eps, x, c, mean, var, invstd);
    detail::channel_normalize(N, C, P, x, mean, invstd, gamma, beta, c, y, relu);
  });
}

// batchnorm_normalize_naive, parallel over planes; the same bits (no sums).
template <typename T>
void batchnorm_normalize(std::int64_t N, std::int64_t C, std::int64_t P, const T* x, const T* mean,
                         const T* invstd, const T* gamma, const T* beta, T* y, bool relu = false) {
  const auto plane = [=](std::int64_t c) {
    detail::channel_normalize(N, C, P, x, mean, invstd, gamma, beta, c, y, relu);
  };
  // Small planes (BatchNorm1d) are not worth a thread each.
  parallel_for(C, plane, N * P >= 4096 ? 2 : C + 1);
}

// batchnorm_backward_naive, parallel over channels: each channel's two sums
// and then its dx, while the channel is still in cache.
template <typename T>
void batchnorm_backward(std::int64_t N, std::int64_t C, std::int64_t P, bool batch_stats,
                        const T* x, const T* dy, const T* mean, const T* invstd, const T* gamma,
                        T* dx, T* dgamma, T* dbeta, const T* relu_output = nullptr) {
  const T M = static_cast<T>(N * P);
  parallel_for(
      C,
      [=](std::int64_t c) {
        detail::ChannelSums<T, 2> state{};
        detail::channel_grad_sums(N, P, C * P, x + c * P, dy + c * P,
                                  relu_output ? relu_output + c * P : nullptr, mean[c], state);
        T sums[2];  // sum(dy), sum(dy * (x - mean))
        detail::channel_sums_total(state, sums);
        detail::channel_backward(N, C, P, M, batch_stats, x, dy, relu_output, mean, invstd, gamma,
                                 c, sums, dx, dgamma, dbeta);
      },
      N * P >= 4096 ? 2 : C + 1);
}

// ------------------------------------ a batch split between processes
// The same sums, cut in passes that another process may continue: each
// continues the running states of channel_sums (C of them) over this
// process's rows; once the states hold the whole batch the *_from_sums
// functions finish with the formulas of the kernels above, so the bits are
// those one process gets. M is the global number of values per channel.

template <typename T>
void batchnorm_mean_sums(std::int64_t N, std::int64_t C, std::int64_t P, const T* x,
                         detail::ChannelSums<T, 1>* states, bool carried) {
  parallel_for(C, [=](std::int64_t c) {
    if (!carried) states[c] = {};
    detail::channel_mean_sums(N, P, C * P, x + c * P, states[c]);
  });
}

template <typename T>
void batchnorm_var_sums(std::int64_t N, std::int64_t C, std::int64_t P, const T* x, const T* mean,
                        detail::ChannelSums<T, 1>* states, bool carried) {
  parallel_for(C, [=](std::int64_t c) {
    if (!carried) states[c] = {};
    detail::channel_var_sums(N, P, C * P, x + c * P, mean[c], states[c]);
  });
}

template <typename T>
void batchnorm_mean_from_sums(std::int64_t C, std::int64_t M,
                              const detail::ChannelSums<T, 1>* states, T* mean) {
  for (std::int64_t c = 0; c < C; ++c) {
    T sum[1];
    detail::channel_sums_total(states[c], sum);
    mean[c] = sum[0] / static_cast<T>(M);
  }
}

template <typename T>
void batchnorm_var_from_sums(std::int64_t C, std::int64_t M, double eps,
                             const detail::ChannelSums<T, 1>* states, T* var, T* invstd) {
  for (std::int64_t c = 0; c < C; ++c) {
    T sq[1];
    detail::channel_sums_total(states[c], sq);
    var[c] = sq[0] / static_cast<T>(M);
    invstd[c] = T(1) / std::sqrt(var[c] + static_cast<T>(eps));
  }
}

// sum(dy) and sum(dy * (x - mean)) per channel, continued over this share.
template <typename T>
void batchnorm_grad_sums(std::int64_t N, std::int64_t C, std::int64_t P, const T* x, const T* dy,
                         const T* mean, detail::ChannelSums<T, 2>* states, bool carried,
                         const T* relu_output = nullptr) {
  parallel_for(C, [=](std::int64_t c) {
    if (!carried) states[c] = {};
    detail::channel_grad_sums(N, P, C * P, x + c * P, dy + c * P,
                              relu_output ? relu_output + c * P : nullptr, mean[c], states[c]);
  });
}

// batchnorm_backward's gradients from the states of the whole batch.
template <typename T>
void batchnorm_backward_from_sums(std::int64_t N, std::int64_t C, std::int64_t P, std::int64_t M,
                                  bool batch_stats, const T* x, const T* dy, const T* mean,
                                  const T* invstd, const T* gamma,
                                  const detail::ChannelSums<T, 2>* states, T* dx, T* dgamma,
                                  T* dbeta, const T* relu_output = nullptr) {
  parallel_for(C, [=](std::int64_t c) {
    T sums[2];
    detail::channel_sums_total(states[c], sums);
    detail::channel_backward(N, C, P, static_cast<T>(M), batch_stats, x, dy, relu_output, mean,
                             invstd, gamma, c, sums, dx, dgamma, dbeta);
  });
}

}  // namespace minidl::kernels
