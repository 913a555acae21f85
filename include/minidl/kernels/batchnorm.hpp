// minidl/kernels/batchnorm.hpp - batch normalisation over [N, C, P]: statistics, forward, backward.
//
// Shapes: x, y, dy, dx are [N, C, P] (P = H * W for BatchNorm2d, L or 1 for
// BatchNorm1d); every per-channel array (gamma, beta, mean, var, invstd,
// running statistics, dgamma, dbeta) holds C values. A channel's M = N * P
// elements lie in N rows of P at a stride of C * P. gamma and beta may be
// null (affine off): then gamma is 1 and beta 0, and dgamma, dbeta are not
// written (they may be null too).
//
// The fast kernels sum each channel sample by sample: a sample's row of P
// elements with 2 vector accumulators and its tail in a scalar, the lanes
// added in a fixed tree, and the channel's total as the fold of the rows'
// sums in batch order. The passes run parallel over samples (each thread
// reads the samples it holds, in memory order), and the order of every sum
// depends on N and P alone: the same bits for any number of threads, and of
// processes holding parts of the batch. The naive twins sum in plain (n, p)
// order, so the two agree to rounding, not bit for bit, where they sum;
// where they do not sum (evaluation forward, the affine map) they agree
// exactly.
//
// A ReLU after the batch norm may be applied inside it (the plan pass
// decides, layers/plan.hpp): the normalisation then stores max(y, 0), and
// the backward takes dy with respect to that output and uses dy where the
// output is positive, else 0, as the ReLU's backward would have written it.
// The fast backward does not read the stored output for that: it makes
// y = x * a + b again from x, with the coefficients the forward used
// (ReluInside), which spares a pass over memory, and decides on the sign of
// the same number. The naive twin reads the output. The bits are those of
// the two layers run apart.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
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
//
// A channel's sums run over the batch sample by sample: each sample's row of
// P elements is summed on its own (parallel over samples, so each thread
// reads the samples it holds, in memory order), and the channel's total is
// the left fold of those row sums in batch order. A process can stop the
// fold after its samples and the next one continue it
// (core/batch_reducer.hpp), so the single-process kernels are the split ones
// below run without a carry.

// A ReLU applied inside the normalising pass, for the backward: the
// per-channel numbers of the affine map the forward applied (gamma and beta
// may be null, as there), from which its output's sign is made again.
template <typename T>
struct ReluInside {
  const T* invstd;
  const T* gamma;
  const T* beta;
};

namespace detail {

// a and b of channel c's affine map y = x * a + b, computed in this one
// function for the forward and the backward's ReLU mask alike (kept out of
// line, so that no caller rounds them differently).
template <typename T>
struct Affine {
  T a, b;
};
template <typename T>
[[gnu::noinline]] Affine<T> affine_of(std::int64_t c, const T* mean, const T* invstd,
                                      const T* gamma, const T* beta) {
  const T a = invstd[c] * (gamma ? gamma[c] : T(1));
  return {a, (beta ? beta[c] : T(0)) - mean[c] * a};
}

// The value the normalising pass stores before its ReLU, x * a + b, as a
// vector or one element: one expression, as in plane_affine, so that a
// compiler that fuses the multiply and the add there fuses it here too.
template <typename T>
typename Simd<T>::vec affine_as(const typename Simd<T>::vec*, const T* x, Affine<T> f) {
  return Simd<T>::load(x) * Simd<T>::broadcast(f.a) + Simd<T>::broadcast(f.b);
}
template <typename T>
T affine_as(const T*, const T* x, Affine<T> f) {
  return *x * f.a + f.b;
}

// The sum of the Bytes / sizeof(T) values at v, in a fixed tree: the upper
// half added to the lower, and again, until one value is left (a vector
// extract and add a step).
template <typename T, int Bytes>
T halving_sum(const void* v) {
  if constexpr (Bytes == 2 * static_cast<int>(sizeof(T))) {
    T pair[2];
    std::memcpy(pair, v, sizeof pair);
    return pair[0] + pair[1];
  } else {
    typedef T half __attribute__((vector_size(Bytes / 2)));
    half lo, hi;
    std::memcpy(&lo, v, sizeof lo);
    std::memcpy(&hi, static_cast<const char*>(v) + sizeof lo, sizeof hi);
    const half sum = lo + hi;
    return halving_sum<T, Bytes / 2>(&sum);
  }
}

// a * b rounded on its own, kept from being fused with the addition that
// takes it into a multiply-add (which rounds once): compilers contract such
// pairs in one function and not in another, and sums that must give the
// same bits in every caller (with and without a ReLU inside, here and in the
// tests' references) would not.
template <typename V>
V unfused_product(V a, V b) {
  V p = a * b;
  hide_from_optimizer(p);
  return p;
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

// dy where the ReLU's output, max(x * a + b, 0), is positive, else +0 (the
// ReLU's backward), as a vector or one element.
template <typename T>
typename Simd<T>::vec relu_grad_as(const typename Simd<T>::vec* acc, const T* dy, const T* x,
                                   Affine<T> f) {
  return Simd<T>::positive_or_zero(affine_as<T>(acc, x, f), Simd<T>::load(dy));
}
template <typename T>
T relu_grad_as(const T* acc, const T* dy, const T* x, Affine<T> f) {
  return affine_as<T>(acc, x, f) > T(0) ? *dy : T(0);
}

// Sums over one row of P elements into out[0, Sums): two vector accumulators
// along the row and its tail in a scalar; at the end the two vectors added,
// their lanes summed by halving_sum, then the tail. add(acc, offset) adds the
// vector or element (as acc is a vector or a scalar) at `offset` into each
// of the Sums accumulators of acc.
// Inlined by attribute: -O2 calls it once a row otherwise, which made the
// sums over ResNet's 7 x 7 planes three times slower than at -O3.
template <typename T, int Sums, typename Add>
[[gnu::always_inline]] inline void row_sums(std::int64_t P, Add add, T* out) {
  static_assert(Sums >= 1 && Sums <= 2, "the unroll pragmas below assume at most 2 sums");
  using S = Simd<T>;
  constexpr std::int64_t W = S::width;
  typename S::vec acc0[Sums], acc1[Sums];
  T tail[Sums];
  // Unrolled by pragma, so that -O2 keeps the accumulators in registers.
  MINIDL_UNROLL(2)
  for (int k = 0; k < Sums; ++k) {
    acc0[k] = acc1[k] = S::broadcast(T(0));
    tail[k] = T(0);
  }
  std::int64_t p = 0;
  for (; p + 2 * W <= P; p += 2 * W) {
    add(acc0, p);
    add(acc1, p + W);
  }
  for (; p + W <= P; p += W) add(acc0, p);
  for (; p < P; ++p) add(tail, p);
  MINIDL_UNROLL(2)
  for (int k = 0; k < Sums; ++k) {
    const typename S::vec v = acc0[k] + acc1[k];
    // Rows shorter than a vector (BatchNorm1d's P = 1) skip the lanes' sum.
    out[k] = P >= W ? halving_sum<T, static_cast<int>(sizeof v)>(&v) + tail[k] : tail[k];
  }
}

// One sample's row sums of its C channels (rows P apart, from x_n), into
// out[c * Sums + k]: sum(x); sum((x - mean)^2); sum(dy) and sum(dy * (x -
// mean)), with dy through a ReLU applied inside (relu). Not inlined, so that one
// compiled body serves every caller: inlined into two, the compiler may fuse
// a multiply and an add (FMA) in one and not in the other, and the bits
// would differ.
template <typename T>
[[gnu::noinline]] void sample_mean_sums(std::int64_t C, std::int64_t P, const T* x_n, T* out) {
  for (std::int64_t c = 0; c < C; ++c) {
    const T* xr = x_n + c * P;
    row_sums<T, 1>(
        P, [xr](auto* acc, std::int64_t i) { acc[0] += load_as<T>(acc, xr + i); }, out + c);
  }
}

template <typename T>
[[gnu::noinline]] void sample_var_sums(std::int64_t C, std::int64_t P, const T* x_n, const T* mean,
                                       T* out) {
  for (std::int64_t c = 0; c < C; ++c) {
    const T* xr = x_n + c * P;
    const T m = mean[c];
    row_sums<T, 1>(
        P,
        [xr, m](auto* acc, std::int64_t i) {
          const auto d = load_as<T>(acc, xr + i) - m;
          acc[0] += unfused_product(d, d);
        },
        out + c);
  }
}

template <typename T>
[[gnu::noinline]] void sample_grad_sums(std::int64_t C, std::int64_t P, const T* x_n, const T* dy_n,
                                        const T* mean, T* out) {
  for (std::int64_t c = 0; c < C; ++c) {
    const T *xr = x_n + c * P, *dr = dy_n + c * P;
    const T m = mean[c];
    row_sums<T, 2>(
        P,
        [xr, dr, m](auto* acc, std::int64_t i) {
          const auto d = load_as<T>(acc, dr + i);
          acc[0] += d;
          acc[1] += unfused_product(d, load_as<T>(acc, xr + i) - m);
        },
        out + 2 * c);
  }
}

template <typename T>
[[gnu::noinline]] void sample_relu_grad_sums(std::int64_t C, std::int64_t P, const T* x_n,
                                             const T* dy_n, const T* mean, ReluInside<T> relu,
                                             T* out) {
  for (std::int64_t c = 0; c < C; ++c) {
    const T *xr = x_n + c * P, *dr = dy_n + c * P;
    const T m = mean[c];
    const Affine<T> f = affine_of(c, mean, relu.invstd, relu.gamma, relu.beta);
    row_sums<T, 2>(
        P,
        [xr, dr, m, f](auto* acc, std::int64_t i) {
          const auto d = relu_grad_as<T>(acc, dr + i, xr + i, f);
          acc[0] += d;
          acc[1] += unfused_product(d, load_as<T>(acc, xr + i) - m);
        },
        out + 2 * c);
  }
}

// Elements a pass needs before a thread of its own pays.
inline constexpr std::int64_t kParallelElements = 4096;

// Scratch for the row sums of a batch: N * C * Sums values.
inline constexpr int kRowSumsSlot = 10;  // a slot of thread_scratch no other kernel uses

// Computes every sample's row sums with sample(n, out) (parallel over
// samples; `width` = C * Sums values a sample), then folds them into states
// [width] in batch order: states = ((carry + s0) + s1) + ..., or from zero
// without a carry. Lane by lane, so the fold vectorises across channels
// without changing a bit.
template <typename T, typename Sample>
void fold_row_sums(std::int64_t N, std::int64_t width, std::int64_t P, Sample sample, T* states,
                   bool carried) {
  T* rows = thread_scratch<T, kRowSumsSlot>(N * width);
  // Rows of fewer elements than a vector are not worth a thread per sample.
  parallel_for(
      N, [=](std::int64_t n) { sample(n, rows + n * width); },
      N * width * P >= kParallelElements ? 2 : N + 1);
  if (!carried)
    for (std::int64_t j = 0; j < width; ++j) states[j] = T(0);
  for (std::int64_t n = 0; n < N; ++n) {
    const T* r = rows + n * width;
    MINIDL_VECTORIZE
    for (std::int64_t j = 0; j < width; ++j) states[j] += r[j];
  }
}

// y = x * a + b over one plane of P elements; with Add, that plus other
// (the affine value rounded first, as when add() reads it back from
// memory); with Relu, max(the result, 0).
template <bool Relu, bool Add, typename T>
void plane_affine(std::int64_t P, const T* x, T a, T b, const T* other, T* y) {
  MINIDL_VECTORIZE
  for (std::int64_t p = 0; p < P; ++p) {
    T v = x[p] * a + b;
    if constexpr (Add) v = v + other[p];
    y[p] = Relu ? (v > T(0) ? v : T(0)) : v;
  }
}

// Runs plane(n, c) for the N * C planes of an [N, C, P] array, parallel over
// them in memory order: each thread takes a block of whole samples, those it
// holds when the pass before cut the batch the same way. Planes too small to
// be worth a thread stay on one.
template <typename Plane>
void parallel_planes(std::int64_t N, std::int64_t C, std::int64_t P, Plane plane) {
  parallel_for(
      N * C, [=](std::int64_t i) { plane(i / C, i % C); },
      N * C * P >= kParallelElements ? 2 : N * C + 1);
}

}  // namespace detail

// ------------------------------------ sums over a batch that processes may split
// Each continues per-channel running sums (states: C * Sums values, channel
// by channel) over this process's N samples, or starts them when not
// `carried`; once the states hold the whole batch the *_from_sums functions
// finish. M is the number of values per channel in the whole batch.

// sum(x) per channel (states: C values).
template <typename T>
void batchnorm_mean_sums(std::int64_t N, std::int64_t C, std::int64_t P, const T* x, T* states,
                         bool carried) {
  detail::fold_row_sums(
      N, C, P, [=](std::int64_t n, T* out) { detail::sample_mean_sums(C, P, x + n * C * P, out); },
      states, carried);
}

// sum((x - mean)^2) per channel (states: C values).
template <typename T>
void batchnorm_var_sums(std::int64_t N, std::int64_t C, std::int64_t P, const T* x, const T* mean,
                        T* states, bool carried) {
  detail::fold_row_sums(
      N, C, P,
      [=](std::int64_t n, T* out) { detail::sample_var_sums(C, P, x + n * C * P, mean, out); },
      states, carried);
}

template <typename T>
void batchnorm_mean_from_sums(std::int64_t C, std::int64_t M, const T* states, T* mean) {
  for (std::int64_t c = 0; c < C; ++c) mean[c] = states[c] / static_cast<T>(M);
}

template <typename T>
void batchnorm_var_from_sums(std::int64_t C, std::int64_t M, double eps, const T* states, T* var,
                             T* invstd) {
  for (std::int64_t c = 0; c < C; ++c) {
    var[c] = states[c] / static_cast<T>(M);
    invstd[c] = T(1) / std::sqrt(var[c] + static_cast<T>(eps));
  }
}

// sum(dy) and sum(dy * (x - mean)) per channel (states: 2 C values, in that
// order for each channel), dy through the ReLU applied inside if relu is
// not null.
template <typename T>
void batchnorm_grad_sums(std::int64_t N, std::int64_t C, std::int64_t P, const T* x, const T* dy,
                         const T* mean, T* states, bool carried,
                         const ReluInside<T>* relu = nullptr) {
  const ReluInside<T> r = relu ? *relu : ReluInside<T>{};
  detail::fold_row_sums(
      N, 2 * C, P,
      [=](std::int64_t n, T* out) {
        const std::int64_t off = n * C * P;
        if (relu)
          detail::sample_relu_grad_sums(C, P, x + off, dy + off, mean, r, out);
        else
          detail::sample_grad_sums(C, P, x + off, dy + off, mean, out);
      },
      states, carried);
}

// batchnorm_normalize_naive, parallel over planes; the same bits (no sums).
// With `other` (of y's shape, not aliasing it), y + other is stored instead,
// and relu applies to the sum: a residual block's addition and the ReLU
// after it, done as the batch norm stores, with the bits of
// batchnorm_normalize followed by add() or add_relu() (kernels/add.hpp).
template <typename T>
void batchnorm_normalize(std::int64_t N, std::int64_t C, std::int64_t P, const T* x, const T* mean,
                         const T* invstd, const T* gamma, const T* beta, T* y, bool relu = false,
                         const T* other = nullptr) {
  detail::parallel_planes(N, C, P, [=](std::int64_t n, std::int64_t c) {
    const auto [a, b] = detail::affine_of(c, mean, invstd, gamma, beta);
    const std::int64_t off = (n * C + c) * P;
    const T* o = other ? other + off : nullptr;
    if (other && relu)
      detail::plane_affine<true, true>(P, x + off, a, b, o, y + off);
    else if (other)
      detail::plane_affine<false, true>(P, x + off, a, b, o, y + off);
    else if (relu)
      detail::plane_affine<true, false>(P, x + off, a, b, o, y + off);
    else
      detail::plane_affine<false, false>(P, x + off, a, b, o, y + off);
  });
}

// batchnorm_backward_naive's results from the sums of the whole batch
// (batchnorm_grad_sums' states): dgamma and dbeta, then dx plane by plane.
// relu as for batchnorm_grad_sums.
template <typename T>
void batchnorm_backward_from_sums(std::int64_t N, std::int64_t C, std::int64_t P, std::int64_t M,
                                  bool batch_stats, const T* x, const T* dy, const T* mean,
                                  const T* invstd, const T* gamma, const T* states, T* dx,
                                  T* dgamma, T* dbeta, const ReluInside<T>* relu = nullptr) {
  for (std::int64_t c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] = states[2 * c + 1] * invstd[c];
    if (dbeta) dbeta[c] = states[2 * c];
  }
  if (!dx) return;
  const T Mt = static_cast<T>(M);
  const ReluInside<T> r = relu ? *relu : ReluInside<T>{};
  const bool relu_inside = relu != nullptr;
  detail::parallel_planes(N, C, P, [=](std::int64_t n, std::int64_t c) {
    const T mc = mean[c], sum_dy = states[2 * c], sum_dy_xmu = states[2 * c + 1];
    const T w = invstd[c] * (gamma ? gamma[c] : T(1));
    const T mean_dy = batch_stats ? sum_dy / Mt : T(0);
    const T k = batch_stats ? sum_dy_xmu * invstd[c] * invstd[c] / Mt : T(0);
    const std::int64_t off = (n * C + c) * P;
    const T *d = dy + off, *v = x + off;
    T* out = dx + off;
    if (relu_inside) {
      const detail::Affine<T> f = detail::affine_of(c, mean, r.invstd, r.gamma, r.beta);
      MINIDL_VECTORIZE
      for (std::int64_t p = 0; p < P; ++p) {
        const T y = v[p] * f.a + f.b;  // the forward's value before its ReLU, as plane_affine
        const T masked = y > T(0) ? d[p] : T(0);
        out[p] = (masked - mean_dy - (v[p] - mc) * k) * w;
      }
    } else {
      MINIDL_VECTORIZE
      for (std::int64_t p = 0; p < P; ++p) out[p] = (d[p] - mean_dy - (v[p] - mc) * k) * w;
    }
  });
}

// ------------------------------------ one process holding the whole batch

// Scratch for the running sums of the single-process kernels: 2 C values.
inline constexpr int kChannelSumsSlot = 11;  // a slot of thread_scratch no other kernel uses

// batchnorm_stats_naive: the sums of x, then of (x - mean)^2.
template <typename T>
void batchnorm_stats(std::int64_t N, std::int64_t C, std::int64_t P, double eps, const T* x,
                     T* mean, T* var, T* invstd) {
  T* states = thread_scratch<T, kChannelSumsSlot>(C);
  batchnorm_mean_sums(N, C, P, x, states, false);
  batchnorm_mean_from_sums(C, N * P, states, mean);
  batchnorm_var_sums(N, C, P, x, mean, states, false);
  batchnorm_var_from_sums(C, N * P, eps, states, var, invstd);
}

// batchnorm_stats then batchnorm_normalize.
template <typename T>
void batchnorm_stats_normalize(std::int64_t N, std::int64_t C, std::int64_t P, double eps,
                               const T* x, T* mean, T* var, T* invstd, const T* gamma,
                               const T* beta, T* y, bool relu = false) {
  batchnorm_stats(N, C, P, eps, x, mean, var, invstd);
  batchnorm_normalize(N, C, P, x, mean, invstd, gamma, beta, y, relu);
}

// batchnorm_backward_naive: the two sums per channel, then dx. With relu,
// the ReLU applied inside (the naive twin's relu_output is the forward's
// output with that ReLU).
template <typename T>
void batchnorm_backward(std::int64_t N, std::int64_t C, std::int64_t P, bool batch_stats,
                        const T* x, const T* dy, const T* mean, const T* invstd, const T* gamma,
                        T* dx, T* dgamma, T* dbeta, const ReluInside<T>* relu = nullptr) {
  T* states = thread_scratch<T, kChannelSumsSlot>(2 * C);
  batchnorm_grad_sums(N, C, P, x, dy, mean, states, false, relu);
  batchnorm_backward_from_sums(N, C, P, N * P, batch_stats, x, dy, mean, invstd, gamma, states, dx,
                               dgamma, dbeta, relu);
}

}  // namespace minidl::kernels
