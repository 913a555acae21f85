// minidl/kernels/vector_exp.hpp - exp, expm1 and tanh of a whole vector (kernels/simd.hpp).
//
// std::exp does not vectorise, so the activation kernels use these instead.
// exp(x) = 2^n * exp(r) with n = round(x / ln 2) and r = x - n ln 2 in
// [-ln2/2, ln2/2] (ln 2 split in two constants, so that n ln 2 is exact in
// its high part); expm1(r) is the Taylor polynomial r + r^2/2! + ... to a
// degree whose remainder is below a tenth of T's unit roundoff on that
// interval (7 for float: 5e-9; 13 for double: 4e-18). Every element goes
// through the same instructions, so a result never depends on where in an
// array the element sits. tests/test_activations.cpp bounds the error
// against std::exp, std::expm1 and std::tanh.
#pragma once

#include <cstdint>

#include "minidl/core/loop_hints.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

template <typename T>
struct ExpConstants;

template <>
struct ExpConstants<float> {
  using Int = std::int32_t;
  static constexpr int mantissa_bits = 23, exponent_bias = 127, degree = 7;
  static constexpr float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  static constexpr float ln2_hi = 0.693359375f;      // 9 significant bits: n * ln2_hi is exact
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr float limit = 150.0f;  // exp(+-150) is already inf or 0 in float
};

template <>
struct ExpConstants<double> {
  using Int = std::int64_t;
  static constexpr int mantissa_bits = 52, exponent_bias = 1023, degree = 13;
  static constexpr double round_magic = 6755399441055744.0;     // 1.5 * 2^52
  static constexpr double ln2_hi = 6.93147180369123816490e-01;  // low 32 bits zero
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double limit = 1100.0;
};

template <typename T>
struct VectorExp {
  using S = Simd<T>;
  using vec = typename S::vec;
  using C = ExpConstants<T>;
  using Int = typename C::Int;
  typedef Int ivec __attribute__((vector_size(kSimdBytes)));

  static vec clamp(vec x, T lo, T hi) {  // a NaN stays NaN: both comparisons are false
    x = x < lo ? S::broadcast(lo) : x;
    return x > hi ? S::broadcast(hi) : x;
  }

  // n = round(x / ln 2) as T and as an integer, and r = x - n ln 2. Adding
  // 1.5 * 2^mantissa_bits leaves n in the low bits of the sum's encoding.
  static void reduce(vec x, vec& r, ivec& n) {
    const vec magic = S::broadcast(C::round_magic);
    const vec t = x * T(1.4426950408889634) + magic;  // x * log2(e)
    const vec nf = t - magic;
    n = reinterpret_cast<ivec>(t) - reinterpret_cast<ivec>(magic);
    r = (x - nf * C::ln2_hi) - nf * C::ln2_lo;
  }

  static constexpr T inv_factorial(int k) {
    double f = 1;
    for (int i = 2; i <= k; ++i) f *= i;
    return static_cast<T>(1.0 / f);
  }

  // expm1(r) for |r| <= ln2/2 + a little: Horner's rule over 1/k!.
  static vec expm1_reduced(vec r) {
    vec p = S::broadcast(inv_factorial(C::degree));
    MINIDL_UNROLL(16)  // -O2 would not, and would compute each 1/k! at run time
    for (int k = C::degree - 1; k >= 1; --k) p = p * r + inv_factorial(k);
    return p * r;
  }

  static vec pow2(ivec n) {  // 2^n for n in the exponent's normal range
    return reinterpret_cast<vec>((n + Int(C::exponent_bias)) << C::mantissa_bits);
  }

  // exp(x): overflows to inf and underflows to 0 (through the subnormals) as
  // std::exp does; 2^n is applied in two halves so that neither leaves the
  // exponent's range.
  static vec exp(vec x) {
    vec r;
    ivec n;
    reduce(clamp(x, -C::limit, C::limit), r, n);
    const ivec half = n >> 1;
    return ((expm1_reduced(r) + T(1)) * pow2(half)) * pow2(n - half);
  }

  // expm1(x) for x <= 44 (tanh's use): 2^n expm1(r) + (2^n - 1) keeps the
  // small values that exp(x) - 1 would cancel away.
  static vec expm1(vec x) {
    vec r;
    ivec n;
    reduce(clamp(x, -C::limit, T(44)), r, n);
    const vec scale = pow2(n);
    return scale * expm1_reduced(r) + (scale - T(1));
  }

  // tanh(x) = sign(x) e / (e + 2) with e = expm1(2|x|); |x| is capped at 22,
  // where tanh is 1 in float and in double.
  static vec tanh(vec x) {
    const ivec sign_bit = reinterpret_cast<ivec>(S::broadcast(T(-0.0)));
    const ivec bits = reinterpret_cast<ivec>(x);
    const vec ax = reinterpret_cast<vec>(bits & ~sign_bit);
    const vec e = expm1(T(2) * ax);
    const vec t = e / (e + T(2));
    return reinterpret_cast<vec>(reinterpret_cast<ivec>(t) | (bits & sign_bit));
  }
};

}  // namespace minidl::kernels
