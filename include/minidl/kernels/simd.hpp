// minidl/kernels/simd.hpp - the vector width the compiler targets, as GCC/Clang vector types.
#pragma once

#include <cstddef>
#include <cstring>
#include <utility>

namespace minidl::kernels {

// Chosen at compile time from the target flags (-march=...): AVX-512 gives
// 64-byte vectors and 32 registers, AVX/AVX2 32-byte vectors and 16
// registers; anything else gets 16-byte vectors, which every SIMD ISA has
// (and which the compiler lowers to scalar code where there is none).
#if defined(__AVX512F__)
inline constexpr int kSimdBytes = 64;
inline constexpr int kGemmRows = 8;  // 8 x 2 accumulators of 32 registers
#elif defined(__AVX__)
inline constexpr int kSimdBytes = 32;
inline constexpr int kGemmRows = 6;  // 6 x 2 accumulators of 16 registers
#else
inline constexpr int kSimdBytes = 16;
inline constexpr int kGemmRows = 4;
#endif

// Makes v, a vector or a scalar in a register, a value the compiler cannot
// see the origin of: an empty asm that says it may have changed it.
template <typename V>
void hide_from_optimizer(V& v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+v"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(v));
#else
  (void)v;
#endif
}

template <typename T>
struct Simd {
  typedef T vec __attribute__((vector_size(kSimdBytes)));
  static constexpr int width = kSimdBytes / static_cast<int>(sizeof(T));

  // Unaligned load/store: memcpy compiles to a single vector move.
  static vec load(const T* p) {
    vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, vec v) { std::memcpy(p, &v, sizeof v); }
  static vec broadcast(T x) {
    return x - vec{};
  }  // x - 0 is exact for every x, so this folds to a plain broadcast

  // d where y > 0, else +0, lane by lane: a ReLU's backward. The comparison
  // gives all ones or all zeros per lane, and the AND keeps d or clears it.
  static vec positive_or_zero(vec y, vec d) {
    const auto keep = y > vec{};
    decltype(y > vec{}) bits;
    std::memcpy(&bits, &d, sizeof d);
    bits &= keep;
    vec out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
  }

  // Keeps v in a register for the instructions that follow. GCC folds a
  // load that several multiply-adds use into each of them, as a memory
  // operand, and so loads it once per use; hidden, it is a value the
  // compiler cannot reload from memory.
  static void keep_in_register(vec& v) { hide_from_optimizer(v); }
};

namespace detail {
// The even and odd elements of the 2W elements a, b (a first); `lanes` is
// std::make_index_sequence<W>.
template <typename T, std::size_t... I>
typename Simd<T>::vec even_lanes(typename Simd<T>::vec a, typename Simd<T>::vec b,
                                 std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, static_cast<int>(2 * I)...);
}
template <typename T, std::size_t... I>
typename Simd<T>::vec odd_lanes(typename Simd<T>::vec a, typename Simd<T>::vec b,
                                std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, static_cast<int>(2 * I + 1)...);
}
}  // namespace detail

}  // namespace minidl::kernels
