// minidl/io/image.hpp - load a picture of a digit and prepare it the way MNIST was made.
#pragma once

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/io/atomic_file.hpp"

namespace minidl {

struct GrayImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 0 = black
};

// Pictures larger than this many pixels per side are refused (a phone photo
// is ~4000; a decompression bomb claims far more).
inline constexpr int kMaxImageSide = 16384;

// PNG, JPEG, BMP, PGM/PPM, GIF, TGA... through stb_image, converted to one channel.
inline GrayImage load_gray_image(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, ": file does not exist");
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, expected an image file");
  int w = 0, h = 0, channels = 0;
  if (!stbi_info(path.c_str(), &w, &h, &channels))
    fail(path, ": not an image minidl can read (", stbi_failure_reason(), "); use PNG, JPEG, BMP or PGM");
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide)
    fail(path, ": image of ", w, "x", h, " pixels is outside the supported 1..", kMaxImageSide, " per side");
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &channels, 1);
  if (!data) fail(path, ": cannot decode the image (", stbi_failure_reason(), ")");
  GrayImage img;
  img.width = w;
  img.height = h;
  img.pixels.assign(data, data + static_cast<std::size_t>(w) * static_cast<std::size_t>(h));
  stbi_image_free(data);
  return img;
}

// Writes a grayscale PNG atomically.
inline void write_gray_png(const std::string& path, const GrayImage& img) {
  if (img.width <= 0 || img.height <= 0 || img.pixels.size() != static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height))
    fail(path, ": cannot write an image of ", img.width, "x", img.height, " with ", img.pixels.size(), " pixels");
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &bytes, img.width, img.height, 1, img.pixels.data(), img.width))
    fail(path, ": PNG encoding failed");
  write_file_atomic(path, bytes);
}

// Turns a picture of one digit into 28x28 bytes the way MNIST was made:
// white ink on black (inverting a light background), the ink's bounding box
// scaled to fit 20x20 keeping its aspect ratio (area-averaged, so strokes stay
// anti-aliased), then placed so that its centre of mass is at the centre of
// the 28x28 frame.
inline std::vector<std::uint8_t> to_mnist_format(const GrayImage& img) {
  const int W = img.width, H = img.height;
  if (W <= 0 || H <= 0) fail("to_mnist_format: empty image");
  // Background = median of the border pixels; a light one means dark ink.
  std::vector<std::uint8_t> border;
  for (int x = 0; x < W; ++x) border.push_back(img.pixels[static_cast<std::size_t>(x)]), border.push_back(img.pixels[static_cast<std::size_t>((H - 1) * W + x)]);
  for (int y = 0; y < H; ++y) border.push_back(img.pixels[static_cast<std::size_t>(y * W)]), border.push_back(img.pixels[static_cast<std::size_t>(y * W + W - 1)]);
  std::nth_element(border.begin(), border.begin() + static_cast<std::ptrdiff_t>(border.size() / 2), border.end());
  const int background = border[border.size() / 2];
  const bool invert = background > 127;
  // Ink intensity relative to the background, 0..255.
  std::vector<float> ink(static_cast<std::size_t>(W) * static_cast<std::size_t>(H));
  for (std::size_t i = 0; i < ink.size(); ++i) {
    const int v = invert ? 255 - img.pixels[i] : img.pixels[i];
    const int bg = invert ? 255 - background : background;
    ink[i] = static_cast<float>(std::max(0, v - bg)) * 255.0f / static_cast<float>(std::max(1, 255 - bg));
  }
  // Bounding box of pixels clearly above the background.
  const float level = 0.15f * *std::max_element(ink.begin(), ink.end());
  int x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      if (ink[static_cast<std::size_t>(y * W + x)] > level && level > 0) {
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      }
  if (x1 < 0) fail("to_mnist_format: no digit found (the image is blank)");
  const int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  // Fit into 20x20: each output pixel averages the source area it covers.
  const double scale = 20.0 / std::max(bw, bh);
  const int ow = std::max(1, static_cast<int>(std::lround(bw * scale))), oh = std::max(1, static_cast<int>(std::lround(bh * scale)));
  std::vector<float> small(static_cast<std::size_t>(ow * oh), 0.0f);
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      const double sx0 = x0 + ox / scale, sx1 = x0 + (ox + 1) / scale;
      const double sy0 = y0 + oy / scale, sy1 = y0 + (oy + 1) / scale;
      double sum = 0, area = 0;
      for (int sy = static_cast<int>(std::floor(sy0)); sy < static_cast<int>(std::ceil(sy1)); ++sy)
        for (int sx = static_cast<int>(std::floor(sx0)); sx < static_cast<int>(std::ceil(sx1)); ++sx) {
          if (sx < 0 || sy < 0 || sx >= W || sy >= H) continue;
          const double cover = (std::min<double>(sx + 1, sx1) - std::max<double>(sx, sx0)) *
                               (std::min<double>(sy + 1, sy1) - std::max<double>(sy, sy0));
          if (cover <= 0) continue;
          sum += cover * ink[static_cast<std::size_t>(sy * W + sx)];
          area += cover;
        }
      small[static_cast<std::size_t>(oy * ow + ox)] = area > 0 ? static_cast<float>(sum / area) : 0.0f;
    }
  // Centre of mass of the scaled digit, moved to (14, 14).
  double mass = 0, cx = 0, cy = 0;
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x) {
      const double m = small[static_cast<std::size_t>(y * ow + x)];
      mass += m, cx += m * (x + 0.5), cy += m * (y + 0.5);
    }
  cx /= mass, cy /= mass;
  const int left = std::clamp(static_cast<int>(std::lround(14.0 - cx)), 0, 28 - ow);
  const int top = std::clamp(static_cast<int>(std::lround(14.0 - cy)), 0, 28 - oh);
  std::vector<std::uint8_t> out(28 * 28, 0);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x)
      out[static_cast<std::size_t>((top + y) * 28 + left + x)] =
          static_cast<std::uint8_t>(std::clamp(std::lround(small[static_cast<std::size_t>(y * ow + x)]), 0L, 255L));
  return out;
}

}  // namespace minidl
