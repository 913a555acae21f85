// minidl/io/image.hpp - grayscale image files (via stb) and MNIST-style digit preparation.
#pragma once

// Declarations only: Debian's libstb (linked by the minidl target) holds the implementations.
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/io/atomic_file.hpp"

namespace minidl {

struct GrayImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 0 = black
};

// Pictures beyond these are refused before decoding: a phone photo is about
// 4000x3000, while a malicious header can claim gigapixels.
inline constexpr int kMaxImageSide = 16384;
inline constexpr std::int64_t kMaxImagePixels = std::int64_t{1} << 26;

// PNG, JPEG, BMP, PGM/PPM (and GIF, TGA, PSD) through stb_image, converted to one channel.
inline GrayImage load_gray_image(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) fail(path, ": file does not exist");
  if (ec) fail(path, ": cannot access file: ", ec.message());
  if (fs::is_directory(st)) fail(path, ": is a directory, expected an image file");
  if (fs::file_size(path, ec) == 0 && !ec) fail(path, ": file is empty");
  int w = 0, h = 0, channels = 0;
  // stbi_info reads only the header, so the size limits apply before any decoding.
  if (!stbi_info(path.c_str(), &w, &h, &channels))
    fail(path, ": not an image minidl can read (stb_image: ", stbi_failure_reason(),
         "); use PNG, JPEG, BMP or PGM");
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide ||
      std::int64_t{w} * h > kMaxImagePixels)
    fail(path, ": image of ", w, "x", h, " pixels is too large (limit ", kMaxImageSide,
         " per side and ", kMaxImagePixels, " pixels)");
  std::unique_ptr<unsigned char, void (*)(void*)> data(
      stbi_load(path.c_str(), &w, &h, &channels, 1), stbi_image_free);
  if (!data) fail(path, ": cannot decode the image (stb_image: ", stbi_failure_reason(), ")");
  GrayImage img;
  img.width = w;
  img.height = h;
  img.pixels.assign(data.get(),
                    data.get() + static_cast<std::size_t>(w) * static_cast<std::size_t>(h));
  return img;
}

// Writes a grayscale PNG atomically.
inline void write_gray_png(const std::string& path, const GrayImage& img) {
  if (img.width <= 0 || img.height <= 0 ||
      img.pixels.size() !=
          static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height))
    fail(path, ": cannot write an image of ", img.width, "x", img.height, " with ",
         img.pixels.size(), " pixels");
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &bytes, img.width, img.height, 1, img.pixels.data(),
                              img.width))
    fail(path, ": PNG encoding failed");
  write_file_atomic(path, bytes);
}

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

}  // namespace detail

// Turns a picture of one digit into 28x28 bytes the way MNIST was made:
// light ink on black (inverting a light background), the ink's bounding box
// scaled to fit 20x20 keeping its aspect ratio (area-averaged, so strokes
// stay anti-aliased), placed so that its centre of mass lands on pixel
// (14, 14), as in MNIST, clamped to the frame. An MNIST image comes back as it was.
inline std::vector<std::uint8_t> to_mnist_format(const GrayImage& img) {
  const int W = img.width, H = img.height;
  const std::size_t n =
      static_cast<std::size_t>(std::max(W, 0)) * static_cast<std::size_t>(std::max(H, 0));
  if (W <= 0 || H <= 0 || img.pixels.size() != n)
    fail("to_mnist_format: image of ", W, "x", H, " holds ", img.pixels.size(), " pixels");
  const auto at = [&](int x, int y) { return img.pixels[static_cast<std::size_t>(y) * W + x]; };

  // Background = median of the border; a light one means dark ink on paper.
  // Noise = median absolute deviation of the border: a clean (or MNIST)
  // image has none and keeps every faint pixel, a photo's grain is cut off.
  std::vector<int> border;
  for (int x = 0; x < W; ++x) border.insert(border.end(), {at(x, 0), at(x, H - 1)});
  for (int y = 0; y < H; ++y) border.insert(border.end(), {at(0, y), at(W - 1, y)});
  const auto median = [](std::vector<int>& v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  const int background = median(border);
  for (int& v : border) v = std::abs(v - background);
  const int noise = 3 * median(border);  // ~2 standard deviations of Gaussian grain
  const bool invert = background > 127;
  const int bg = invert ? 255 - background : background;
  int peak = 0;
  for (std::uint8_t p : img.pixels) peak = std::max(peak, invert ? 255 - p : int{p});
  constexpr int kMinContrast = 24;
  if (peak - bg < std::max(kMinContrast, 2 * noise))
    fail("to_mnist_format: no digit found (the ", W, "x", H, " image is blank: ink contrast ",
         peak - bg, " of 255, noise ", noise, ")");
  // Photos of paper are grey on grey: stretch so background -> 0, strongest ink -> 255.
  std::vector<float> ink(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int v = (invert ? 255 - img.pixels[i] : img.pixels[i]) - bg;
    ink[i] = v <= noise ? 0.0f : static_cast<float>(v) * 255.0f / static_cast<float>(peak - bg);
  }

  // Bounding box of the ink: pixels above a small level, so faint noise does not widen it.
  constexpr float kInkLevel = 32.0f;
  int x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      if (ink[static_cast<std::size_t>(y) * W + x] > kInkLevel)
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
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
