// minidl/kernels/gemm.hpp - single-threaded packed matrix multiply, and its naive twin.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// Operand layout: element (r, c) of a row-major matrix with leading dimension
// ld sits at p[r * ld + c]; a transposed operand is read as p[c * ld + r].
template <typename T>
struct MatRef {
  const T* data;
  std::int64_t ld;
  bool transposed;
  T at(std::int64_t r, std::int64_t c) const {
    return transposed ? data[c * ld + r] : data[r * ld + c];
  }
};

// C[M,N] = A[M,K] * B[K,N]  (or C += A*B when accumulate). Reference oracle.
template <typename T>
void gemm_naive(std::int64_t M, std::int64_t N, std::int64_t K, MatRef<T> A, MatRef<T> B, T* C,
                std::int64_t ldc, bool accumulate) {
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      T sum = accumulate ? C[i * ldc + j] : T(0);
      for (std::int64_t k = 0; k < K; ++k) sum += A.at(i, k) * B.at(k, j);
      C[i * ldc + j] = sum;
    }
}

namespace detail {

template <typename T>
struct GemmBlocking {
  static constexpr int MR = kGemmRows;           // rows of the register tile
  static constexpr int NR = 2 * Simd<T>::width;  // columns of the register tile
  static constexpr std::int64_t KC = 256;        // depth of a packed panel
  static constexpr std::int64_t MC = 16 * MR;    // rows packed at once (L2)
  static constexpr std::int64_t NC = 64 * NR;    // columns packed at once (L3)
};

#if defined(__AVX__)
// dst[j * ldd + i] = src[i * lds + j] for an 8 x 8 block of floats. The
// loops are unrolled by pragma, as -O3 does by itself: at -O2 the arrays of
// registers would live in memory.
inline void transpose_8x8(const float* src, std::int64_t lds, float* dst, std::int64_t ldd) {
  __m256 r[8], t[8], u[8];
  MINIDL_UNROLL(8)
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  MINIDL_UNROLL(8)
  for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved: columns 0,1 | 4,5 and 2,3 | 6,7
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  MINIDL_UNROLL(8)
  for (int i = 0; i < 8; i += 4) {  // four rows of one column per 128-bit half
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  MINIDL_UNROLL(8)
  for (int j = 0; j < 4; ++j) {  // halves of rows 0-3 and 4-7 joined
    _mm256_storeu_ps(dst + j * ldd, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
    _mm256_storeu_ps(dst + (j + 4) * ldd, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
  }
}
#endif

// dst[k * R + r] = src[r * ld + k] for r < rows and k < kc, and zeros in
// rows [rows, R): R rows of memory, each contiguous along k, interleaved
// into the k-major layout of one packed sliver. A plain loop either reads
// or writes with a stride; whole 8 x 8 blocks transposed in registers do
// neither.
template <typename T>
void pack_rows_k_major(const T* src, std::int64_t ld, std::int64_t rows, std::int64_t R,
                       std::int64_t kc, T* dst) {
  std::int64_t k0 = 0;
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    if (rows == R && R % 8 == 0)
      for (; k0 + 8 <= kc; k0 += 8)
        for (std::int64_t r = 0; r < R; r += 8)
          transpose_8x8(src + r * ld + k0, ld, dst + k0 * R + r, R);
  }
#endif
  for (std::int64_t k = k0; k < kc; ++k) {
    for (std::int64_t r = 0; r < rows; ++r) dst[k * R + r] = src[r * ld + k];
    for (std::int64_t r = rows; r < R; ++r) dst[k * R + r] = T(0);
  }
}

// Packs rows [i0, i0+mc) x depth [k0, k0+kc) of A into MR-row slivers laid out
// k-major (for each k, MR consecutive values), zero-padding the last sliver.
template <typename T>
void pack_a(MatRef<T> A, std::int64_t i0, std::int64_t mc, std::int64_t k0, std::int64_t kc,
            T* dst) {
  constexpr int MR = GemmBlocking<T>::MR;
  for (std::int64_t is = 0; is < mc; is += MR) {
    const std::int64_t rows = std::min<std::int64_t>(MR, mc - is);
    if (!A.transposed) {
      pack_rows_k_major(A.data + (i0 + is) * A.ld + k0, A.ld, rows, MR, kc, dst);
      dst += MR * kc;
      continue;
    }
    // Transposed, a sliver's MR values of one k lie side by side: a copy.
    for (std::int64_t k = 0; k < kc; ++k) {
      std::copy_n(A.data + (k0 + k) * A.ld + i0 + is, rows, dst);
      std::fill(dst + rows, dst + MR, T(0));
      dst += MR;
    }
  }
}

// Packs depth [k0, k0+kc) x columns [j0, j0+nc) of B into NR-column slivers
// laid out k-major, zero-padding the last sliver.
template <typename T>
void pack_b(MatRef<T> B, std::int64_t k0, std::int64_t kc, std::int64_t j0, std::int64_t nc,
            T* dst) {
  constexpr int NR = GemmBlocking<T>::NR;
  for (std::int64_t js = 0; js < nc; js += NR) {
    const std::int64_t cols = std::min<std::int64_t>(NR, nc - js);
    if (B.transposed) {
      pack_rows_k_major(B.data + (j0 + js) * B.ld + k0, B.ld, cols, NR, kc, dst);
      dst += NR * kc;
      continue;
    }
    for (std::int64_t k = 0; k < kc; ++k) {
      if (cols == NR) {
        std::copy_n(B.data + (k0 + k) * B.ld + j0 + js, NR, dst);
      } else {
        for (std::int64_t c = 0; c < cols; ++c) dst[c] = B.at(k0 + k, j0 + js + c);
        for (std::int64_t c = cols; c < NR; ++c) dst[c] = T(0);
      }
      dst += NR;
    }
  }
}

// The register tile: C[MR,NR] (+)= a_sliver * b_sliver over kc. The MR x 2
// accumulators stay in registers; each k costs two vector loads, MR
// broadcasts and 2*MR fused multiply-adds. With PackedA, a is a packed
// sliver (a[k * MR + r]); without, MR whole rows of a row-major A, lda
// apart (a[r * lda + k]), read in place. With `continued` the accumulators
// start from C and end there, so that each element of C is one running sum
// over k, ((c + a0 b0) + a1 b1) + ..., which a later call may continue.
template <typename T, bool PackedA = true>
void micro_kernel(std::int64_t kc, const T* a, std::int64_t lda, const T* b, T* C, std::int64_t ldc,
                  int rows, int cols, bool accumulate, bool continued = false) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int MR = GemmBlocking<T>::MR;
  constexpr int W = S::width;
  V acc0[MR], acc1[MR];
  const bool full = rows == MR && cols == 2 * W;
  alignas(64) T tile[MR][2 * W];
  // Loops over the tile's rows unrolled from the start, so that GCC keeps
  // the accumulators in registers only: otherwise it gave them stack slots,
  // zeroed on entry and filled on exit, which cost fc1's passes (kc of 64
  // to 256) 3-8%.
  if (continued && full) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      acc0[r] = S::load(C + r * ldc);
      acc1[r] = S::load(C + r * ldc + W);
    }
  } else if (continued) {
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < 2 * W; ++c) tile[r][c] = r < rows && c < cols ? C[r * ldc + c] : T(0);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      acc0[r] = S::load(tile[r]);
      acc1[r] = S::load(tile[r] + W);
    }
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = V{};
  }
  if (continued) accumulate = false;  // the sums already include C
  if (cols <= W) {
    // The sliver's second vector holds no column of C (a classifier's ten
    // outputs): half the multiply-adds, each sum's the same.
    for (std::int64_t k = 0; k < kc; ++k) {
      const V b0 = S::load(b);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) acc0[r] += S::broadcast(PackedA ? a[r] : a[r * lda]) * b0;
      a += PackedA ? MR : 1;
      b += 2 * W;
    }
  } else {
    for (std::int64_t k = 0; k < kc; ++k) {
      const V b0 = S::load(b);
      const V b1 = S::load(b + W);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const V ar = S::broadcast(PackedA ? a[r] : a[r * lda]);
        acc0[r] += ar * b0;
        acc1[r] += ar * b1;
      }
      a += PackedA ? MR : 1;
      b += 2 * W;
    }
  }
  if (full) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      T* c = C + r * ldc;
      if (accumulate) {
        S::store(c, S::load(c) + acc0[r]);
        S::store(c + W, S::load(c + W) + acc1[r]);
      } else {
        S::store(c, acc0[r]);
        S::store(c + W, acc1[r]);
      }
    }
    return;
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    S::store(tile[r], acc0[r]);
    S::store(tile[r] + W, acc1[r]);
  }
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      C[r * ldc + c] = accumulate ? C[r * ldc + c] + tile[r][c] : tile[r][c];
}

// Slivers of B the single-row kernel sums at a time (see single_row_kernel).
inline constexpr int kSingleRowSlivers = 4;

// Sums one row of A against G <= kSingleRowSlivers slivers of packed B,
// each sliver's two accumulators from zero, one k after another. G is a
// compile-time count so that every accumulator stays in a register at -O2
// too; with a run-time count the compiler keeps them on the stack and
// stores them at every k.
template <int G, typename T>
void single_row_slivers(std::int64_t kc, const T* a, std::int64_t a_step, const T* bs,
                        typename Simd<T>::vec (&out0)[kSingleRowSlivers],
                        typename Simd<T>::vec (&out1)[kSingleRowSlivers]) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width, NR = GemmBlocking<T>::NR;
  V acc0[G] = {}, acc1[G] = {};
  for (std::int64_t k = 0; k < kc; ++k) {
    const V ak = S::broadcast(a[k * a_step]);
    MINIDL_UNROLL(4)
    for (int g = 0; g < G; ++g) {
      const T* bk = bs + g * NR * kc + k * NR;
      acc0[g] += ak * S::load(bk);
      acc1[g] += ak * S::load(bk + W);
    }
  }
  MINIDL_UNROLL(4)
  for (int g = 0; g < G; ++g) {
    out0[g] = acc0[g];
    out1[g] = acc1[g];
  }
}

// One row of C against the packed slivers of B: C[0, 0:nc) (+)= a * b over
// kc, for a product with a single row (a batch of one sample). The tile
// above would run MR rows for it, MR - 1 of them zeros; here each sliver's
// two accumulators are the tile's row 0, summed the same way (from zero,
// one k after another, then added to C), so the bits are the tile's.
// Four slivers at a time keep eight independent sums in flight. a[k] is
// at a[k * a_step].
template <typename T>
void single_row_kernel(std::int64_t kc, const T* a, std::int64_t a_step, const T* b,
                       std::int64_t nc, T* C, bool accumulate) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width, NR = GemmBlocking<T>::NR, kGroup = kSingleRowSlivers;
  alignas(64) T row[NR];
  for (std::int64_t js = 0; js < nc; js += kGroup * NR) {
    const int slivers = static_cast<int>(std::min<std::int64_t>(kGroup, (nc - js + NR - 1) / NR));
    const T* bs = b + js * kc;  // sliver g starts at bs + g * NR * kc
    V acc0[kGroup], acc1[kGroup];
    switch (slivers) {  // a thread's share of a narrow layer is often 1-3 slivers
      case 4:
        single_row_slivers<4>(kc, a, a_step, bs, acc0, acc1);
        break;
      case 3:
        single_row_slivers<3>(kc, a, a_step, bs, acc0, acc1);
        break;
      case 2:
        single_row_slivers<2>(kc, a, a_step, bs, acc0, acc1);
        break;
      default:
        single_row_slivers<1>(kc, a, a_step, bs, acc0, acc1);
        break;
    }
    for (int g = 0; g < slivers; ++g) {
      S::store(row, acc0[g]);
      S::store(row + W, acc1[g]);
      T* c = C + js + g * NR;
      const int cols = static_cast<int>(std::min<std::int64_t>(NR, nc - js - g * NR));
      for (int j = 0; j < cols; ++j) c[j] = accumulate ? c[j] + row[j] : row[j];
    }
  }
}

template <typename T>
struct GemmWorkspace {
  ScratchBuffer<T> a, b;
};

// One scratch pair per thread: grows on first use, then is reused, so warm
// training steps do not allocate.
template <typename T>
GemmWorkspace<T>& thread_gemm_workspace() {
  thread_local GemmWorkspace<T> ws;
  return ws;
}

}  // namespace detail

// C[M,N] = A[M,K] * B[K,N], or C += A*B when accumulate. Single-threaded;
// callers parallelise over independent outputs. Every element of C is summed
// over k in the same order whatever the matrix sizes around it, so results
// are reproducible bit for bit. With `continued`, each element of C is one
// running sum over all of k (the panels of KC continue it rather than add
// their own sums to it), started from C when accumulate: a sum over a batch
// cut between processes then continues exactly where the previous process
// stopped.
template <typename T>
void gemm(std::int64_t M, std::int64_t N, std::int64_t K, MatRef<T> A, MatRef<T> B, T* C,
          std::int64_t ldc, bool accumulate, bool continued = false) {
  using Blk = detail::GemmBlocking<T>;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (std::int64_t i = 0; i < M; ++i) std::fill_n(C + i * ldc, N, T(0));
    return;
  }
  auto& ws = detail::thread_gemm_workspace<T>();
  T* packed_a = ws.a.reserve(static_cast<std::size_t>(Blk::MC * Blk::KC));
  T* packed_b = ws.b.reserve(static_cast<std::size_t>(Blk::KC * (Blk::NC + Blk::NR)));
  for (std::int64_t jc = 0; jc < N; jc += Blk::NC) {
    const std::int64_t nc = std::min(Blk::NC, N - jc);
    for (std::int64_t pc = 0; pc < K; pc += Blk::KC) {
      const std::int64_t kc = std::min(Blk::KC, K - pc);
      const bool acc = accumulate || pc > 0;
      const bool cont = continued && acc;
      detail::pack_b(B, pc, kc, jc, nc, packed_b);
      for (std::int64_t ic = 0; ic < M; ic += Blk::MC) {
        const std::int64_t mc = std::min(Blk::MC, M - ic);
        if (mc == 1 && !cont) {  // a single row (M = 1): no padded tile
          const T* a = A.transposed ? A.data + pc * A.ld + ic : A.data + ic * A.ld + pc;
          detail::single_row_kernel(kc, a, A.transposed ? A.ld : 1, packed_b, nc, C + ic * ldc + jc,
                                    acc);
          continue;
        }
        // A row-major A is read in place, whole slivers of it: packing would
        // copy it on every thread that takes columns of C (all of fc1's x,
        // 800 KB, in each thread's forward pass). Only a short last sliver,
        // whose missing rows must read as zeros, is packed.
        const std::int64_t in_place = A.transposed ? 0 : mc / Blk::MR * Blk::MR;
        detail::pack_a(A, ic + in_place, mc - in_place, pc, kc, packed_a + in_place * kc);
        for (std::int64_t jr = 0; jr < nc; jr += Blk::NR) {
          const int cols = static_cast<int>(std::min<std::int64_t>(Blk::NR, nc - jr));
          for (std::int64_t ir = 0; ir < mc; ir += Blk::MR) {
            const int rows = static_cast<int>(std::min<std::int64_t>(Blk::MR, mc - ir));
            T* c = C + (ic + ir) * ldc + jc + jr;
            if (ir < in_place)
              detail::micro_kernel<T, false>(kc, A.data + (ic + ir) * A.ld + pc, A.ld,
                                             packed_b + jr * kc, c, ldc, rows, cols, acc, cont);
            else
              detail::micro_kernel<T>(kc, packed_a + ir * kc, 0, packed_b + jr * kc, c, ldc, rows,
                                      cols, acc, cont);
          }
        }
      }
    }
  }
}

}  // namespace minidl::kernels

namespace minidl::kernels {

// ---- whole-operand packing, for products small enough to skip blocking ----
// A convolution multiplies the same weights by one small matrix per sample:
// packing the weights once per pass and writing im2col straight into the
// packed layout saves two copies per sample.

template <typename T>
constexpr int gemm_rows() {
  return detail::GemmBlocking<T>::MR;
}
template <typename T>
constexpr int gemm_cols() {
  return detail::GemmBlocking<T>::NR;
}

inline std::int64_t round_up(std::int64_t n, std::int64_t m) {
  return (n + m - 1) / m * m;
}

// Elements of A[M,K] packed whole: MR-row slivers, each K deep.
template <typename T>
std::int64_t packed_a_size(std::int64_t M, std::int64_t K) {
  return round_up(M, gemm_rows<T>()) * K;
}
// Elements of B[K,N] packed whole: NR-column slivers, each K deep.
template <typename T>
std::int64_t packed_b_size(std::int64_t K, std::int64_t N) {
  return K * round_up(N, gemm_cols<T>());
}

template <typename T>
void pack_a_whole(MatRef<T> A, std::int64_t M, std::int64_t K, T* dst) {
  detail::pack_a(A, 0, M, 0, K, dst);
}
template <typename T>
void pack_b_whole(MatRef<T> B, std::int64_t K, std::int64_t N, T* dst) {
  detail::pack_b(B, 0, K, 0, N, dst);
}

// C[M,N] (+)= A*B from operands packed whole. No cache blocking: meant for
// products whose packed operands fit in L2 (a few hundred KB), such as one
// sample of a convolution. Each element of C is summed over k in order.
template <typename T>
void gemm_packed(std::int64_t M, std::int64_t N, std::int64_t K, const T* packed_a,
                 const T* packed_b, T* C, std::int64_t ldc, bool accumulate) {
  constexpr int MR = gemm_rows<T>(), NR = gemm_cols<T>();
  // One A sliver (MR x K) stays in L1 while the B slivers stream past it.
  for (std::int64_t ir = 0; ir < M; ir += MR) {
    const int rows = static_cast<int>(std::min<std::int64_t>(MR, M - ir));
    for (std::int64_t jr = 0; jr < N; jr += NR) {
      const int cols = static_cast<int>(std::min<std::int64_t>(NR, N - jr));
      detail::micro_kernel<T>(K, packed_a + ir * K, 0, packed_b + jr * K, C + ir * ldc + jr, ldc,
                              rows, cols, accumulate);
    }
  }
}

// Work a thread must get before a product is cut between threads: 1 MFLOP
// of its arithmetic (2 M N K), or kElementwiseChunk elements of its
// operands (A, B and C), whichever allows more threads. Waking a second
// thread and handing it the operands costs a few microseconds, more when
// the CPUs sit far apart, and a thread's share should take several times
// that: LeNet-5's fc2 and fc3 ran slower on two threads than on one. A
// product of one row does 2 flops per element of B; there each thread
// keeping its own part of B in its cache is what pays (MNIST's fc1 for one
// image: one thread took 0.11 ms for the whole network where two took
// 0.08). The cut never changes a bit, so neither does this.
inline constexpr std::int64_t kGemmFlopsPerThread = std::int64_t(1) << 20;

// Threads for an M x N x K product cut into `slivers` parts.
inline int gemm_threads(std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t slivers) {
  const std::int64_t by_flops = 2 * M * N * K / kGemmFlopsPerThread;
  const std::int64_t by_memory = (M * K + K * N + M * N) / kElementwiseChunk;
  return static_cast<int>(
      std::min({slivers, std::max<std::int64_t>({1, by_flops, by_memory}), std::int64_t(1) << 10}));
}

namespace detail {

// Rows [i0, i1) of C (+)= the same rows of A times B.
template <typename T>
void gemm_row_block(std::int64_t i0, std::int64_t i1, std::int64_t N, std::int64_t K, MatRef<T> A,
                    MatRef<T> B, T* C, std::int64_t ldc, bool accumulate, bool continued) {
  const MatRef<T> a{A.transposed ? A.data + i0 : A.data + i0 * A.ld, A.ld, A.transposed};
  gemm<T>(i1 - i0, N, K, a, B, C + i0 * ldc, ldc, accumulate, continued);
}

// Columns [j0, j1) of C (+)= A times the same columns of B.
template <typename T>
void gemm_column_block(std::int64_t j0, std::int64_t j1, std::int64_t M, std::int64_t K,
                       MatRef<T> A, MatRef<T> B, T* C, std::int64_t ldc, bool accumulate,
                       bool continued) {
  const MatRef<T> b{B.transposed ? B.data + j0 * B.ld : B.data + j0, B.ld, B.transposed};
  gemm<T>(M, j1 - j0, K, A, b, C + j0, ldc, accumulate, continued);
}

// C[M,N] (+)= A*B cut into one block of whole slivers per thread, by columns
// or by rows as `by_columns` prefers, unless that leaves the busiest thread
// more than a quarter of the product beyond what the other cut gives it: a
// classifier's ten outputs are one sliver of columns, so its forward pass
// cut by columns ran on one thread (0.14 ms for 3136 -> 10 at batch 64 in
// the strided network), and its weight gradient cut by rows gave one
// thread eight of the ten rows. before(i0, i1, j0, j1) runs on the thread
// that owns that block of C, before its product. Each element is summed
// over k as gemm sums it, so the cut cannot change a bit.
template <typename T, typename Before>
void gemm_parallel_cut(bool by_columns, std::int64_t M, std::int64_t N, std::int64_t K, MatRef<T> A,
                       MatRef<T> B, T* C, std::int64_t ldc, bool accumulate, bool continued,
                       Before&& before) {
  constexpr int MR = gemm_rows<T>(), NR = gemm_cols<T>();
  const std::int64_t row_slivers = (M + MR - 1) / MR, column_slivers = (N + NR - 1) / NR;
  const int rows_threads = std::min(num_threads(), gemm_threads(M, N, K, row_slivers));
  const int columns_threads = std::min(num_threads(), gemm_threads(M, N, K, column_slivers));
  // The busiest thread's share of the product, cut each way.
  auto busiest = [](std::int64_t slivers, int threads, std::int64_t size, std::int64_t total) {
    const std::int64_t most = (slivers + threads - 1) / threads * size;
    return static_cast<double>(std::min(most, total)) / static_cast<double>(total);
  };
  const double rows_share = busiest(row_slivers, rows_threads, MR, M);
  const double columns_share = busiest(column_slivers, columns_threads, NR, N);
  const bool cut_rows =
      by_columns ? rows_share < columns_share - 0.25 : !(columns_share < rows_share - 0.25);
  if (!cut_rows) {
    parallel_blocks(column_slivers, columns_threads, [&](int, std::int64_t s0, std::int64_t s1) {
      const std::int64_t j0 = s0 * NR, j1 = std::min(N, s1 * NR);
      if (j0 >= j1) return;
      before(std::int64_t(0), M, j0, j1);
      gemm_column_block<T>(j0, j1, M, K, A, B, C, ldc, accumulate, continued);
    });
    return;
  }
  parallel_blocks(row_slivers, rows_threads, [&](int, std::int64_t s0, std::int64_t s1) {
    const std::int64_t i0 = s0 * MR, i1 = std::min(M, s1 * MR);
    if (i0 >= i1) return;
    before(i0, i1, std::int64_t(0), N);
    gemm_row_block<T>(i0, i1, N, K, A, B, C, ldc, accumulate, continued);
  });
}

}  // namespace detail

// C[M,N] (+)= A*B with C cut by columns into one block of whole NR-column
// slivers per thread. Each thread reads only its own columns of B, and all
// of A: for a weight matrix B that would otherwise be read whole by both
// threads (fc1's forward and input gradient), which costs a cache-line
// transfer per line, and an invalidation when the optimizer writes it,
// whenever a virtual machine's two CPUs sit far apart. With too few
// columns to share, by rows instead (detail::gemm_parallel_cut). before(i0,
// i1, j0, j1) runs on the thread that owns that block of C, before its
// product.
template <typename T, typename Before>
void gemm_parallel_columns(std::int64_t M, std::int64_t N, std::int64_t K, MatRef<T> A, MatRef<T> B,
                           T* C, std::int64_t ldc, bool accumulate, Before&& before) {
  detail::gemm_parallel_cut(true, M, N, K, A, B, C, ldc, accumulate, false, before);
}

template <typename T>
void gemm_parallel_columns(std::int64_t M, std::int64_t N, std::int64_t K, MatRef<T> A, MatRef<T> B,
                           T* C, std::int64_t ldc, bool accumulate) {
  gemm_parallel_columns(M, N, K, A, B, C, ldc, accumulate,
                        [](std::int64_t, std::int64_t, std::int64_t, std::int64_t) {});
}

// C[M,N] (+)= A*B with C cut by rows into one block of whole MR-row slivers
// per thread. Each thread packs all of B once, where fixed tiles of rows
// would pack it once per tile: fc1's weight gradient reads all of x into
// every thread's rows either way. With too few rows to share, by columns
// instead (detail::gemm_parallel_cut).
template <typename T>
void gemm_parallel_rows(std::int64_t M, std::int64_t N, std::int64_t K, MatRef<T> A, MatRef<T> B,
                        T* C, std::int64_t ldc, bool accumulate, bool continued = false) {
  detail::gemm_parallel_cut(false, M, N, K, A, B, C, ldc, accumulate, continued,
                            [](std::int64_t, std::int64_t, std::int64_t, std::int64_t) {});
}

}  // namespace minidl::kernels
