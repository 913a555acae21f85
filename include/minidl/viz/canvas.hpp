// minidl/viz/canvas.hpp - an RGB8 raster with lines, rectangles, text and PNG output.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>

#include "minidl/core/error.hpp"
#include "minidl/io/atomic_file.hpp"
#include "minidl/viz/font.hpp"

namespace minidl::viz {

struct Color {
  std::uint8_t r, g, b;
};

inline bool operator==(Color a, Color b) {
  return a.r == b.r && a.g == b.g && a.b == b.b;
}
inline bool operator!=(Color a, Color b) {
  return !(a == b);
}

inline constexpr Color white{255, 255, 255};
inline constexpr Color black{0, 0, 0};
inline constexpr Color dark_gray{70, 70, 70};
inline constexpr Color gray{150, 150, 150};
inline constexpr Color light_gray{225, 225, 225};
// Series colours chosen to stay distinguishable from each other on white.
inline constexpr Color blue{31, 100, 180};
inline constexpr Color orange{230, 120, 20};
inline constexpr Color green{40, 150, 60};
inline constexpr Color red{200, 40, 40};
inline constexpr Color purple{130, 80, 170};

// Linear blend: t = 0 gives a, t = 1 gives b.
inline Color mix(Color a, Color b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto channel = [t](std::uint8_t from, std::uint8_t to) {
    return static_cast<std::uint8_t>(std::lround(from + (to - from) * t));
  };
  return {channel(a.r, b.r), channel(a.g, b.g), channel(a.b, b.b)};
}

// An RGB image, 3 bytes per pixel, rows top to bottom. Every drawing call is
// clipped to the canvas, so callers may draw partly (or wholly) outside it.
class Canvas {
 public:
  Canvas(int width, int height, Color background = white) : width_(width), height_(height) {
    // The limit keeps 3 * width * height inside int, which stb's encoder uses.
    if (width < 1 || height < 1 || static_cast<std::int64_t>(width) * height > (1 << 28)) {
      fail("Canvas: size ", width, "x", height, " is empty or too large");
    }
    pixels_.resize(static_cast<std::size_t>(width) * height * 3);
    for (std::size_t i = 0; i < pixels_.size(); i += 3) {
      pixels_[i] = background.r;
      pixels_[i + 1] = background.g;
      pixels_[i + 2] = background.b;
    }
  }

  int width() const { return width_; }
  int height() const { return height_; }
  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width_ && y < height_; }

  void set(int x, int y, Color c) {
    if (!contains(x, y)) return;
    std::uint8_t* p = &pixels_[offset(x, y)];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }

  // Reading outside the canvas is a caller bug, unlike drawing there.
  Color get(int x, int y) const {
    if (!contains(x, y)) fail("Canvas::get: (", x, ", ", y, ") is outside ", width_, "x", height_);
    const std::uint8_t* p = &pixels_[offset(x, y)];
    return {p[0], p[1], p[2]};
  }

  // Pixels x..x+w-1, y..y+h-1; 64-bit bounds so huge arguments cannot overflow.
  void fill_rect(int x, int y, int w, int h, Color c) {
    const int x0 = std::max(x, 0);
    const int y0 = std::max(y, 0);
    const int x1 = static_cast<int>(std::clamp<std::int64_t>(std::int64_t{x} + w, 0, width_));
    const int y1 = static_cast<int>(std::clamp<std::int64_t>(std::int64_t{y} + h, 0, height_));
    for (int py = y0; py < y1; ++py) {
      for (int px = x0; px < x1; ++px) set(px, py, c);
    }
  }

  // Outline drawn inside the rectangle x..x+w-1, y..y+h-1.
  void draw_rect(int x, int y, int w, int h, Color c, int thickness = 1) {
    if (w <= 0 || h <= 0) return;
    const int t = std::clamp(thickness, 1, std::min(w, h));
    fill_rect(x, y, w, t, c);
    fill_rect(x, y + h - t, w, t, c);
    fill_rect(x, y, t, h, c);
    fill_rect(x + w - t, y, t, h, c);
  }

  // Bresenham line; thickness stamps a square brush centred on each point.
  void line(int x0, int y0, int x1, int y1, Color c, int thickness = 1) {
    const int t = std::max(thickness, 1);
    if (!clip_line(x0, y0, x1, y1, t)) return;
    const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int error = dx + dy;
    for (;;) {
      if (t == 1) {
        set(x0, y0, c);
      } else {
        fill_rect(x0 - t / 2, y0 - t / 2, t, t, c);
      }
      if (x0 == x1 && y0 == y1) break;
      const int doubled = 2 * error;
      if (doubled >= dy) {
        error += dy;
        x0 += sx;
      }
      if (doubled <= dx) {
        error += dx;
        y0 += sy;
      }
    }
  }

  // Alternating dash / gap pieces along the line, starting with a dash.
  void dashed_line(int x0, int y0, int x1, int y1, Color c, int dash = 6, int gap = 4,
                   int thickness = 1) {
    if (!clip_line(x0, y0, x1, y1, std::max(thickness, 1))) return;
    const double dx = static_cast<double>(x1) - x0, dy = static_cast<double>(y1) - y0;
    const double length = std::hypot(dx, dy);
    if (length == 0.0 || dash < 1 || gap < 0) return line(x0, y0, x1, y1, c, thickness);
    auto at = [&](double from, double d) { return static_cast<int>(std::lround(from + d)); };
    for (double start = 0.0; start < length; start += dash + gap) {
      const double end = std::min(start + dash - 1, length);
      line(at(x0, dx * start / length), at(y0, dy * start / length), at(x0, dx * end / length),
           at(y0, dy * end / length), c, thickness);
    }
  }

  // Size of the box text() fills: glyph cells without a trailing blank column.
  static int text_width(const std::string& s, int scale = 1) {
    check_scale(scale);
    if (s.empty()) return 0;
    return (static_cast<int>(s.size()) * font::kAdvance - 1) * scale;
  }
  static int text_height(int scale = 1) {
    check_scale(scale);
    return font::kGlyphHeight * scale;
  }

  // (x, y) is the top-left corner of the text box; each font pixel becomes a
  // scale x scale block so that bigger text stays crisp.
  void text(int x, int y, const std::string& s, Color c, int scale = 1) {
    check_scale(scale);
    for (std::size_t i = 0; i < s.size(); ++i) {
      const int left = x + static_cast<int>(i) * font::kAdvance * scale;
      for (int row = 0; row < font::kGlyphHeight; ++row) {
        for (int column = 0; column < font::kGlyphWidth; ++column) {
          if (font::glyph_pixel(s[i], column, row)) {
            fill_rect(left + column * scale, y + row * scale, scale, scale, c);
          }
        }
      }
    }
  }

  // Text turned 90 degrees anticlockwise, read bottom to top as on a y axis.
  // (x, y) is the top-left of its box, text_height(scale) wide and
  // text_width(s, scale) tall.
  void text_vertical(int x, int y, const std::string& s, Color c, int scale = 1) {
    const int length = text_width(s, scale);
    for (std::size_t i = 0; i < s.size(); ++i) {
      const int along = static_cast<int>(i) * font::kAdvance * scale;
      for (int row = 0; row < font::kGlyphHeight; ++row) {
        for (int column = 0; column < font::kGlyphWidth; ++column) {
          if (!font::glyph_pixel(s[i], column, row)) continue;
          // Unrotated pixel (u, v) lands at (x + v, y + length - 1 - u).
          const int u = along + column * scale;
          const int v = row * scale;
          fill_rect(x + v, y + length - u - scale, scale, scale, c);
        }
      }
    }
  }

  // Grayscale image (w x h bytes, row-major, 0 = black) drawn with its top-left
  // at (x, y), each source pixel repeated as a scale x scale block.
  void blit_gray(const std::uint8_t* pixels, int w, int h, int x, int y, int scale = 1) {
    check_scale(scale);
    if (w <= 0 || h <= 0) return;
    if (!pixels) fail("Canvas::blit_gray: null pixels for a ", w, "x", h, " image");
    for (int row = 0; row < h; ++row) {
      for (int column = 0; column < w; ++column) {
        const std::uint8_t v = pixels[static_cast<std::size_t>(row) * w + column];
        fill_rect(x + column * scale, y + row * scale, scale, scale, Color{v, v, v});
      }
    }
  }

  const std::vector<std::uint8_t>& pixels() const { return pixels_; }

  // Encodes with stb_image_write and replaces path atomically; throws Error
  // naming path if anything fails, leaving no temporary file behind.
  void save_png(const std::string& path) const {
    std::vector<unsigned char> encoded;
    auto append = [](void* context, void* data, int size) {
      auto* out = static_cast<std::vector<unsigned char>*>(context);
      const auto* bytes = static_cast<const unsigned char*>(data);
      out->insert(out->end(), bytes, bytes + size);
    };
    if (!stbi_write_png_to_func(append, &encoded, width_, height_, 3, pixels_.data(), width_ * 3)) {
      fail("cannot write '", path, "': PNG encoding of a ", width_, "x", height_, " image failed");
    }
    write_file_atomic(path, encoded.data(), encoded.size());
  }

 private:
  static void check_scale(int scale) {
    if (scale < 1) fail("viz: text/image scale must be at least 1, got ", scale);
  }

  std::size_t offset(int x, int y) const { return (static_cast<std::size_t>(y) * width_ + x) * 3; }

  // Liang-Barsky clip against the canvas grown by the brush size, so that a
  // line from far outside costs only its visible length. False if nothing is left.
  bool clip_line(int& x0, int& y0, int& x1, int& y1, int thickness) const {
    const double lo_x = -thickness, hi_x = width_ - 1.0 + thickness;
    const double lo_y = -thickness, hi_y = height_ - 1.0 + thickness;
    auto inside = [&](int x, int y) { return x >= lo_x && x <= hi_x && y >= lo_y && y <= hi_y; };
    if (inside(x0, y0) && inside(x1, y1)) return true;
    const double dx = static_cast<double>(x1) - x0, dy = static_cast<double>(y1) - y0;
    double t_enter = 0.0, t_leave = 1.0;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {x0 - lo_x, hi_x - x0, y0 - lo_y, hi_y - y0};
    for (int i = 0; i < 4; ++i) {
      if (p[i] == 0.0) {
        if (q[i] < 0.0) return false;
        continue;
      }
      const double t = q[i] / p[i];
      if (p[i] < 0.0) {
        t_enter = std::max(t_enter, t);
      } else {
        t_leave = std::min(t_leave, t);
      }
    }
    if (t_enter > t_leave) return false;
    const double ax = x0, ay = y0;
    x0 = static_cast<int>(std::lround(ax + t_enter * dx));
    y0 = static_cast<int>(std::lround(ay + t_enter * dy));
    x1 = static_cast<int>(std::lround(ax + t_leave * dx));
    y1 = static_cast<int>(std::lround(ay + t_leave * dy));
    return true;
  }

  int width_;
  int height_;
  std::vector<std::uint8_t> pixels_;
};

}  // namespace minidl::viz
