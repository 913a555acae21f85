// minidl/kernels/pool2d_window.hpp - where the windows of a 2-d pooling lie.
//
// Sizes: P = N*C independent planes of H x W. Along each axis a window has
// k taps, d apart (dilation), and window o starts at o*s - p: the input is
// padded by p on both sides, and taps in the padding are left out (a
// max-pool pads with -inf, an average ignores them or counts them as
// zeros). The number of windows is PyTorch's:
//   out = floor((in + 2p - d(k - 1) - 1) / s) + 1      (ceil in ceil mode,
// where a last window that would start in the right padding is dropped).
#pragma once

#include <algorithm>
#include <cstdint>

namespace minidl::kernels {

// a / b rounded down and up, for b > 0 and any sign of a.
inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// The windows along one axis.
struct PoolAxis {
  std::int64_t in = 0, out = 0;             // input and output sizes
  std::int64_t k = 1, s = 1, p = 0, d = 1;  // taps, stride, padding, dilation

  // Input index of tap j of window o (may fall in the padding).
  std::int64_t at(std::int64_t o, std::int64_t j) const { return o * s - p + j * d; }
  // The taps of window o inside the input: [first_tap, end_tap).
  std::int64_t first_tap(std::int64_t o) const {
    return std::clamp<std::int64_t>(ceil_div(p - o * s, d), 0, k);
  }
  std::int64_t end_tap(std::int64_t o) const {
    return std::clamp<std::int64_t>(ceil_div(in + p - o * s, d), 0, k);
  }
  // The windows whose tap j lies inside the input: [first_out, end_out).
  std::int64_t first_out(std::int64_t j) const {
    return std::clamp<std::int64_t>(ceil_div(p - j * d, s), 0, out);
  }
  std::int64_t end_out(std::int64_t j) const {
    return std::clamp<std::int64_t>(floor_div(in - 1 + p - j * d, s) + 1, 0, out);
  }
  // Taps of window o inside the input, and inside the padded input (the
  // divisor of an average that counts padding, as PyTorch cuts it).
  std::int64_t inside(std::int64_t o) const {
    return std::max<std::int64_t>(end_tap(o) - first_tap(o), 0);
  }
  std::int64_t inside_padded(std::int64_t o) const {
    return std::min(o * s - p + k, in + p) - (o * s - p);
  }
};

// PyTorch's number of windows; 0 when not even one fits.
inline std::int64_t pool_output_size(std::int64_t in, std::int64_t k, std::int64_t s,
                                     std::int64_t p, std::int64_t d, bool ceil_mode) {
  const std::int64_t span = in + 2 * p - d * (k - 1) - 1;
  if (span < 0) return 0;
  std::int64_t out = (ceil_mode ? ceil_div(span, s) : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

inline PoolAxis pool_axis(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p,
                          std::int64_t d = 1, bool ceil_mode = false) {
  return PoolAxis{in, pool_output_size(in, k, s, p, d, ceil_mode), k, s, p, d};
}

// Whether every window holds at least one input element: what PyTorch's
// rule padding <= (effective kernel) / 2 gives, except with a dilation
// wider than the input.
inline bool every_window_inside(const PoolAxis& a) {
  for (std::int64_t o = 0; o < a.out; ++o)
    if (a.inside(o) <= 0) return false;
  return true;
}

struct Pool2dShape {
  std::int64_t planes = 0;
  PoolAxis h, w;
  std::int64_t H() const { return h.in; }
  std::int64_t W() const { return w.in; }
  std::int64_t OH() const { return h.out; }
  std::int64_t OW() const { return w.out; }
};

}  // namespace minidl::kernels
