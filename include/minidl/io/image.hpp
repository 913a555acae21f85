// minidl/io/image.hpp - grayscale image files (via stb), transparency composited away.
#pragma once

// Declarations only: Debian's libstb (linked by the minidl target) holds the implementations.
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "minidl/core/byte_order.hpp"
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
// The largest file read: a 16-bit PPM at kMaxImagePixels is 384 MiB.
inline constexpr std::uintmax_t kMaxImageFileBytes = std::uintmax_t{512} << 20;

namespace detail {

// Grey of an RGB pixel with the weights stb_image uses for its own conversion.
inline int luma(const unsigned char* rgb) {
  return (rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8;
}

// Pixels of 1 to 4 channels (grey, grey+alpha, RGB, RGBA) made opaque grey. Transparent
// pixels are composited over white, or over black when what is drawn is light (white chalk
// on a transparent layer), so that the drawing always stands out from what shows through.
inline std::vector<std::uint8_t> to_opaque_grey(const unsigned char* px, std::size_t n,
                                                int channels) {
  const auto grey_of = [&](std::size_t i) {
    const unsigned char* p = px + i * static_cast<std::size_t>(channels);
    return channels >= 3 ? luma(p) : int{p[0]};
  };
  std::vector<std::uint8_t> grey(n);
  if (channels == 1 || channels == 3) {
    for (std::size_t i = 0; i < n; ++i) grey[i] = static_cast<std::uint8_t>(grey_of(i));
    return grey;
  }
  const auto alpha_of = [&](std::size_t i) {
    return int{px[i * static_cast<std::size_t>(channels) + static_cast<std::size_t>(channels - 1)]};
  };
  double drawn = 0, drawn_luma = 0;
  for (std::size_t i = 0; i < n; ++i) {
    drawn += alpha_of(i);
    drawn_luma += static_cast<double>(alpha_of(i)) * grey_of(i);
  }
  const int behind = drawn > 0 && drawn_luma / drawn > 127 ? 0 : 255;
  for (std::size_t i = 0; i < n; ++i) {
    const int a = alpha_of(i);
    grey[i] = static_cast<std::uint8_t>((grey_of(i) * a + behind * (255 - a) + 127) / 255);
  }
  return grey;
}

// The formats stb_image decodes for minidl, told by their first bytes: PNG, JPEG and BMP.
// Its other decoders (GIF, PSD, PIC, HDR, TGA) are never reached, and neither is its PNM
// reader, whose 16-bit path reads past its buffer and takes the low byte of each sample.
inline bool is_stb_image(const std::vector<unsigned char>& b) {
  const auto starts = [&](const char* magic, std::size_t n) {
    return b.size() >= n && std::equal(magic, magic + n, b.begin(),
                                       [](char m, unsigned char c) { return m == char(c); });
  };
  return starts("\x89PNG\r\n\x1a\n", 8) || starts("\xff\xd8\xff", 3) || starts("BM", 2);
}

// Walks a PNG's chunks and refuses one whose stated length runs past the end of the file.
// stb_image sizes its buffer for the compressed data from these lengths before reading them,
// so a few bytes claiming a gigabyte would otherwise allocate one.
inline void check_png_chunks(const std::vector<unsigned char>& b, const std::string& path) {
  std::size_t at = 8;  // after the signature
  while (true) {
    if (b.size() - at < 12) fail(path, ": PNG ends at byte ", b.size(), ", before its IEND chunk");
    const std::uint32_t length = read_be32(&b[at]);
    std::string type(reinterpret_cast<const char*>(&b[at + 4]), 4);
    for (char& c : type)
      if (!std::isalpha(static_cast<unsigned char>(c))) c = '?';  // chunk types are letters
    // What the file holds for this chunk's data once its header and CRC are counted.
    const std::size_t room = b.size() - at - 12;
    if (length > room)
      fail(path, ": PNG chunk '", type, "' at byte ", at, " claims ", length,
           " bytes of data, but only ", room, " remain in the file");
    if (type == "IEND") return;
    at += 12 + std::size_t{length};
  }
}

inline bool is_binary_pnm(const std::vector<unsigned char>& b) {
  return b.size() >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6');
}

// A binary PGM (P5) or PPM (P6), 8 or 16 bits per sample, scaled from 0..maxval to 0..255.
inline GrayImage decode_pnm(const std::vector<unsigned char>& b, const std::string& path) {
  std::size_t at = 2;
  const auto skip_blanks_and_comments = [&] {
    while (at < b.size()) {
      if (b[at] == '#') {
        while (at < b.size() && b[at] != '\n') ++at;
      } else if (std::isspace(b[at])) {
        ++at;
      } else {
        break;
      }
    }
  };
  // Width, height and maxval: decimal numbers up to `limit`, each after blanks or comments.
  const auto number = [&](const char* name, long limit) {
    const std::size_t before = at;
    skip_blanks_and_comments();
    if (at == before || at >= b.size() || !std::isdigit(b[at]))
      fail(path, ": PGM/PPM header: expected the ", name, " at byte ", at);
    long value = 0;
    for (; at < b.size() && std::isdigit(b[at]); ++at) {
      value = value * 10 + (b[at] - '0');
      if (value > limit) fail(path, ": PGM/PPM header: ", name, " is larger than ", limit);
    }
    return value;
  };
  const int channels = b[1] == '6' ? 3 : 1;
  const long w = number("width", kMaxImageSide), h = number("height", kMaxImageSide);
  const long maxval = number("maximum value", 65535);
  if (w == 0 || h == 0 || maxval == 0)
    fail(path, ": PGM/PPM header: width, height and maximum value must be positive");
  if (std::int64_t{w} * h > kMaxImagePixels)
    fail(path, ": image of ", w, "x", h, " pixels is too large (limit ", kMaxImagePixels,
         " pixels)");
  if (at >= b.size() || !std::isspace(b[at]))
    fail(path, ": PGM/PPM header: expected one blank after the maximum value");
  ++at;
  const std::size_t bytes_per_sample = maxval > 255 ? 2 : 1;
  const std::size_t n = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
  const std::size_t needed = n * static_cast<std::size_t>(channels) * bytes_per_sample;
  if (b.size() - at < needed)
    fail(path, ": PGM/PPM data has ", b.size() - at, " bytes, ", w, "x", h, " pixels need ",
         needed);
  std::vector<unsigned char> samples(n * static_cast<std::size_t>(channels));
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const unsigned char* s = &b[at + i * bytes_per_sample];
    const long v = bytes_per_sample == 2 ? (long{s[0]} << 8) | s[1] : long{s[0]};  // big-endian
    if (v > maxval) fail(path, ": PGM/PPM sample ", v, " is above the maximum value ", maxval);
    samples[i] = static_cast<unsigned char>((v * 255 + maxval / 2) / maxval);
  }
  return GrayImage{static_cast<int>(w), static_cast<int>(h),
                   to_opaque_grey(samples.data(), n, channels)};
}

}  // namespace detail

// PNG, JPEG and BMP (decoded by stb_image) and binary PGM/PPM, converted to one channel.
inline GrayImage load_gray_image(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) fail(path, ": file does not exist");
  if (ec) fail(path, ": cannot access file: ", ec.message());
  if (fs::is_directory(st)) fail(path, ": is a directory, expected an image file");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot read the file size: ", ec.message());
  if (size == 0) fail(path, ": file is empty");
  if (size > kMaxImageFileBytes)
    fail(path, ": file of ", size, " bytes is too large for an image (limit ", kMaxImageFileBytes,
         ")");
  // One read: the header check and the decoding see the same bytes.
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the file");
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<std::size_t>(in.gcount()) != bytes.size())
    fail(path, ": reading failed after ", in.gcount(), " of ", size, " bytes");
  if (detail::is_binary_pnm(bytes)) return detail::decode_pnm(bytes, path);
  if (!detail::is_stb_image(bytes))
    fail(path, ": not an image minidl can read; use PNG, JPEG, BMP or PGM/PPM");
  const int length = static_cast<int>(bytes.size());
  int w = 0, h = 0, channels = 0;
  // stbi_info reads only the header, so the size limits apply before any decoding.
  if (!stbi_info_from_memory(bytes.data(), length, &w, &h, &channels) || channels < 1 ||
      channels > 4)
    fail(path, ": cannot read the image header (stb_image: ", stbi_failure_reason(), ")");
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide ||
      std::int64_t{w} * h > kMaxImagePixels)
    fail(path, ": image of ", w, "x", h, " pixels is too large (limit ", kMaxImageSide,
         " per side and ", kMaxImagePixels, " pixels)");
  if (bytes[0] == 0x89) detail::check_png_chunks(bytes, path);  // a PNG, by its first byte
  // Asking for the file's own channel count: stb converts nothing, and transparency,
  // which its grey conversion would drop with the drawing, is composited by to_opaque_grey.
  int decoded_w = 0, decoded_h = 0, decoded_channels = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> data(
      stbi_load_from_memory(bytes.data(), length, &decoded_w, &decoded_h, &decoded_channels,
                            channels),
      stbi_image_free);
  if (!data) fail(path, ": cannot decode the image (stb_image: ", stbi_failure_reason(), ")");
  if (decoded_w != w || decoded_h != h || decoded_channels != channels)
    fail(path, ": the image decodes as ", decoded_w, "x", decoded_h, "x", decoded_channels,
         " but its header says ", w, "x", h, "x", channels);
  GrayImage img;
  img.width = w;
  img.height = h;
  img.pixels = detail::to_opaque_grey(
      data.get(), static_cast<std::size_t>(w) * static_cast<std::size_t>(h), channels);
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
