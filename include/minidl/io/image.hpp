// minidl/io/image.hpp - grayscale image files (via stb), transparency composited away.
#pragma once

// Declarations only: Debian's libstb (linked by the minidl target) holds the implementations.
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

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

namespace detail {

// Grey of an RGB pixel with the weights stb_image uses for its own conversion.
inline int luma(const unsigned char* rgb) {
  return (rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8;
}

// RGBA pixels made opaque grey: composited over white, or over black when
// what is drawn is light (white chalk on a transparent layer), so that the
// drawing always stands out from what shows through.
inline std::vector<std::uint8_t> composite_rgba(const unsigned char* rgba, std::size_t n) {
  double drawn = 0, drawn_luma = 0;
  for (std::size_t i = 0; i < n; ++i) {
    drawn += rgba[4 * i + 3];
    drawn_luma += static_cast<double>(rgba[4 * i + 3]) * luma(rgba + 4 * i);
  }
  const int behind = drawn > 0 && drawn_luma / drawn > 127 ? 0 : 255;
  std::vector<std::uint8_t> grey(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int a = rgba[4 * i + 3];
    grey[i] = static_cast<std::uint8_t>((luma(rgba + 4 * i) * a + behind * (255 - a) + 127) / 255);
  }
  return grey;
}

}  // namespace detail

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
  // With transparency, stb's grey conversion would drop the alpha channel and
  // with it the drawing (a canvas export is black ink on transparent black).
  const bool has_alpha = channels == 2 || channels == 4;
  std::unique_ptr<unsigned char, void (*)(void*)> data(
      stbi_load(path.c_str(), &w, &h, &channels, has_alpha ? 4 : 1), stbi_image_free);
  if (!data) fail(path, ": cannot decode the image (stb_image: ", stbi_failure_reason(), ")");
  GrayImage img;
  img.width = w;
  img.height = h;
  const std::size_t n = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
  if (has_alpha)
    img.pixels = detail::composite_rgba(data.get(), n);
  else
    img.pixels.assign(data.get(), data.get() + n);
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

}  // namespace minidl
