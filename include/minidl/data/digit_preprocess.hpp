// minidl/data/digit_preprocess.hpp - a picture of one digit made into a 28x28 MNIST-style image.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "minidl/data/ink_map.hpp"
#include "minidl/io/image.hpp"

namespace minidl {

namespace detail {

// Area-averaging resampler for one line: output sample o is the mean of the
// input over [start + o*r, start + (o+1)*r), partial pixels weighted by their
// coverage and input outside [0, n_in) counting as 0. Down-scaling thus
// anti-aliases instead of dropping pixels; r = 1 with an integer start copies.
inline void resample_line(const float* in, std::size_t in_stride, int n_in, double start, double r,
                          float* out, std::size_t out_stride, int n_out) {
  for (int o = 0; o < n_out; ++o) {
    const double a = start + o * r, b = a + r;
    double sum = 0;
    for (int j = std::max(0, static_cast<int>(std::floor(a))); j < n_in && j < b; ++j)
      sum += (std::min<double>(b, j + 1) - std::max<double>(a, j)) *
             in[static_cast<std::size_t>(j) * in_stride];
    out[static_cast<std::size_t>(o) * out_stride] = static_cast<float>(sum / r);
  }
}

// A photo of more than kMaxInkPixels is first reduced by a whole factor,
// averaging blocks of f x f pixels: a 12-megapixel phone photo then needs
// about 150 MB less memory to search for ink, and a digit of 28x28 pixels
// is made from it anyway.
inline constexpr std::int64_t kMaxInkPixels = std::int64_t{1} << 21;

inline GrayImage reduced_for_ink(const GrayImage& img) {
  const std::int64_t n = std::int64_t{img.width} * img.height;
  if (n <= kMaxInkPixels || img.pixels.size() != static_cast<std::size_t>(n)) return img;
  const int f = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n) / kMaxInkPixels)));
  GrayImage small{(img.width + f - 1) / f, (img.height + f - 1) / f, {}};
  small.pixels.resize(static_cast<std::size_t>(small.width) * small.height);
  for (int y = 0; y < small.height; ++y)
    for (int x = 0; x < small.width; ++x) {
      int sum = 0, count = 0;
      for (int sy = y * f; sy < std::min(img.height, (y + 1) * f); ++sy)
        for (int sx = x * f; sx < std::min(img.width, (x + 1) * f); ++sx, ++count)
          sum += img.pixels[static_cast<std::size_t>(sy) * img.width + sx];
      small.pixels[static_cast<std::size_t>(y) * small.width + x] =
          static_cast<std::uint8_t>((sum + count / 2) / count);
    }
  return small;
}

}  // namespace detail

// Turns a picture of one digit into 28x28 bytes the way MNIST was made:
// light ink on black (find_ink: paper, grain and stray marks removed, either
// polarity), the ink's bounding box scaled to fit 20x20 keeping its aspect
// ratio (area-averaged, so strokes stay anti-aliased), placed so that its
// centre of mass lands on pixel (14, 14), as in MNIST, clamped to the frame.
// Photos above 2 megapixels are reduced first (detail::reduced_for_ink).
// An MNIST image comes back as it was. Errors name `name` (the file, for a user).
inline std::vector<std::uint8_t> to_mnist_format(const GrayImage& img,
                                                 const std::string& name = "to_mnist_format") {
  const InkMap map = find_ink(detail::reduced_for_ink(img), name);
  const int W = map.width, H = map.height;
  const std::vector<float>& ink = map.ink;

  // Bounding box of the ink: pixels above a small level, so faint rims do not widen it.
  constexpr float kInkLevel = 32.0f;
  int x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      if (ink[static_cast<std::size_t>(y) * W + x] > kInkLevel)
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (x1 < 0) fail(name, ": no digit found (the ", W, "x", H, " image has no solid stroke)");
  const int bw = x1 - x0 + 1, bh = y1 - y0 + 1;

  // Scale the box to fit 20x20 keeping its aspect ratio. The resampled patch
  // extends kMargin output pixels beyond the box on every side, so the faint
  // anti-aliased rim of the strokes survives and can fill the rest of the
  // frame. Rows first, then columns.
  const double scale = 20.0 / std::max(bw, bh);
  const int ow = std::max(1, static_cast<int>(std::lround(bw * scale)));
  const int oh = std::max(1, static_cast<int>(std::lround(bh * scale)));
  const double rx = static_cast<double>(bw) / ow, ry = static_cast<double>(bh) / oh;
  constexpr int kMargin = 28;
  const int pw = ow + 2 * kMargin, ph = oh + 2 * kMargin;
  std::vector<float> rows(static_cast<std::size_t>(H) * pw),
      patch(static_cast<std::size_t>(ph) * pw);
  for (int y = 0; y < H; ++y)
    detail::resample_line(&ink[static_cast<std::size_t>(y) * W], 1, W, x0 - kMargin * rx, rx,
                          &rows[static_cast<std::size_t>(y) * pw], 1, pw);
  for (int x = 0; x < pw; ++x)
    detail::resample_line(&rows[static_cast<std::size_t>(x)], static_cast<std::size_t>(pw), H,
                          y0 - kMargin * ry, ry, &patch[static_cast<std::size_t>(x)],
                          static_cast<std::size_t>(pw), ph);

  // Centre of mass in pixel indices; MNIST's sits on (14, 14) of the 28x28
  // frame. The shift is clamped so that the box stays inside the frame.
  double mass = 0, cx = 0, cy = 0;
  for (int y = 0; y < ph; ++y)
    for (int x = 0; x < pw; ++x) {
      const double m = patch[static_cast<std::size_t>(y) * pw + x];
      mass += m, cx += m * x, cy += m * y;
    }
  const int dx =
      std::clamp(static_cast<int>(std::lround(14.0 - cx / mass)), -kMargin, 28 - ow - kMargin);
  const int dy =
      std::clamp(static_cast<int>(std::lround(14.0 - cy / mass)), -kMargin, 28 - oh - kMargin);
  std::vector<std::uint8_t> out(28 * 28, 0);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const int py = y - dy, px = x - dx;  // always inside the patch, given the clamp above
      out[static_cast<std::size_t>(y) * 28 + x] = static_cast<std::uint8_t>(
          std::clamp(std::lround(patch[static_cast<std::size_t>(py) * pw + px]), 0L, 255L));
    }
  return out;
}

}  // namespace minidl
