// Generated photos of digits for the preprocessing tests: digits drawn in a
// stroke font made from the bitmap font (thin or thick pen) or MNIST digits
// enlarged, put anywhere on paper with uneven lighting and Gaussian grain.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "minidl/io/image.hpp"
#include "minidl/viz/font.hpp"

namespace minidl::testing {

// How much of each pixel of a W x H picture the pen covered, 0..1, row-major.
struct Coverage {
  int width = 0, height = 0;
  std::vector<float> cover;
};

namespace detail {

inline double distance_to_segment(double px, double py, double ax, double ay, double bx,
                                  double by) {
  const double len2 = (bx - ax) * (bx - ax) + (by - ay) * (by - ay);
  const double t =
      len2 == 0 ? 0 : std::clamp(((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / len2, 0.0, 1.0);
  return std::hypot(px - ax - t * (bx - ax), py - ay - t * (by - ay));
}

}  // namespace detail

struct Segment {
  double ax, ay, bx, by;
};

// Strokes of half-width `r` pixels, 4x4 samples per pixel for anti-aliased edges.
inline Coverage draw_strokes(const std::vector<Segment>& strokes, int W, int H, double r) {
  Coverage out{W, H, std::vector<float>(static_cast<std::size_t>(W) * H)};
  double left = W, top = H, right = 0, bottom = 0;
  for (const Segment& g : strokes) {
    left = std::min({left, g.ax, g.bx}), right = std::max({right, g.ax, g.bx});
    top = std::min({top, g.ay, g.by}), bottom = std::max({bottom, g.ay, g.by});
  }
  const int x0 = std::max(0, static_cast<int>(left - r - 1));
  const int x1 = std::min(W, static_cast<int>(right + r + 2));
  const int y0 = std::max(0, static_cast<int>(top - r - 1));
  const int y1 = std::min(H, static_cast<int>(bottom + r + 2));
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      int covered = 0;
      for (int s = 0; s < 16; ++s) {
        const double px = x + (s % 4 + 0.5) / 4, py = y + (s / 4 + 0.5) / 4;
        for (const Segment& g : strokes)
          if (detail::distance_to_segment(px, py, g.ax, g.ay, g.bx, g.by) < r) {
            ++covered;
            break;
          }
      }
      out.cover[static_cast<std::size_t>(y) * W + x] = static_cast<float>(covered / 16.0);
    }
  return out;
}

// Digit `d` of the 5x7 bitmap font as a pen drawing: the centres of lit cells
// that touch (also at a corner) are joined by strokes of half-width
// `half_width` cells; `cell` is the size of a cell in pixels and (left, top)
// the glyph's corner. Its 0 is slashed, its 1 has a foot and its 4 is closed:
// printed shapes, unlike most handwriting.
inline Coverage draw_font_digit(int d, int W, int H, double left, double top, double cell,
                                double half_width) {
  std::vector<Segment> strokes;
  const char c = static_cast<char>('0' + d);
  for (int gy = 0; gy < 7; ++gy)
    for (int gx = 0; gx < viz::font::kGlyphWidth; ++gx) {
      if (!viz::font::glyph_pixel(c, gx, gy)) continue;
      const double ax = left + (gx + 0.5) * cell, ay = top + (gy + 0.5) * cell;
      strokes.push_back({ax, ay, ax, ay});  // a lone cell is a dot
      const int next[4][2] = {{1, 0}, {0, 1}, {1, 1}, {-1, 1}};
      for (const auto& nb : next) {
        const int nx = gx + nb[0], ny = gy + nb[1];
        if (nx >= 0 && nx < viz::font::kGlyphWidth && ny < 7 && viz::font::glyph_pixel(c, nx, ny))
          strokes.push_back({ax, ay, left + (nx + 0.5) * cell, top + (ny + 0.5) * cell});
      }
    }
  return draw_strokes(strokes, W, H, half_width * cell);
}

// Digit `d` as a hand might write it: polylines in a box 0.6 wide and 1 tall
// (loops as 24-sided ellipses), drawn `height` pixels tall at (left, top)
// with a pen `pen` times the height wide.
inline Coverage draw_pen_digit(int d, int W, int H, double left, double top, double height,
                               double pen) {
  using Points = std::vector<std::pair<double, double>>;
  const auto ellipse = [](double cx, double cy, double rx, double ry) {
    Points p;
    for (int k = 0; k <= 24; ++k)
      p.emplace_back(cx + rx * std::cos(k * 0.2617993877991494),
                     cy + ry * std::sin(k * 0.2617993877991494));
    return p;
  };
  std::vector<Points> lines;
  switch (d) {
    case 0:
      lines = {ellipse(0.3, 0.5, 0.26, 0.47)};
      break;
    case 1:
      lines = {{{0.38, 0.02}, {0.26, 0.98}}};
      break;
    case 2:
      lines = {{{0.05, 0.25},
                {0.12, 0.08},
                {0.3, 0.02},
                {0.48, 0.08},
                {0.55, 0.25},
                {0.45, 0.45},
                {0.05, 0.95},
                {0.58, 0.95}}};
      break;
    case 3:
      lines = {{{0.05, 0.1}, {0.3, 0.02}, {0.52, 0.12}, {0.5, 0.35}, {0.25, 0.48}},
               {{0.25, 0.48}, {0.52, 0.6}, {0.55, 0.8}, {0.35, 0.97}, {0.05, 0.9}}};
      break;
    case 4:
      lines = {{{0.1, 0.02}, {0.05, 0.58}, {0.58, 0.58}}, {{0.45, 0.1}, {0.45, 0.98}}};
      break;
    case 5:
      lines = {{{0.55, 0.03},
                {0.12, 0.03},
                {0.08, 0.45},
                {0.3, 0.4},
                {0.5, 0.5},
                {0.56, 0.72},
                {0.45, 0.92},
                {0.25, 0.98},
                {0.05, 0.9}}};
      break;
    case 6:
      lines = {{{0.5, 0.05},
                {0.3, 0.05},
                {0.12, 0.3},
                {0.06, 0.6},
                {0.1, 0.85},
                {0.3, 0.98},
                {0.5, 0.88},
                {0.55, 0.7},
                {0.45, 0.55},
                {0.25, 0.52},
                {0.08, 0.65}}};
      break;
    case 7:
      lines = {{{0.04, 0.03}, {0.58, 0.03}, {0.25, 0.98}}};
      break;
    case 8:
      lines = {ellipse(0.3, 0.25, 0.2, 0.23), ellipse(0.3, 0.73, 0.25, 0.25)};
      break;
    default:
      lines = {ellipse(0.3, 0.27, 0.24, 0.25), {{0.54, 0.3}, {0.5, 0.98}}};
      break;
  }
  std::vector<Segment> strokes;
  for (const Points& p : lines)
    for (std::size_t k = 0; k + 1 < p.size(); ++k)
      strokes.push_back({left + p[k].first * height, top + p[k].second * height,
                         left + p[k + 1].first * height, top + p[k + 1].second * height});
  return draw_strokes(strokes, W, H, pen * height / 2);
}

// A 28x28 MNIST digit enlarged (bilinear) to size x size pixels at (left, top).
inline Coverage paste_mnist_digit(const std::uint8_t* digit, int W, int H, double left, double top,
                                  double size) {
  Coverage out{W, H, std::vector<float>(static_cast<std::size_t>(W) * H)};
  const auto at = [&](int x, int y) {
    return x < 0 || y < 0 || x >= 28 || y >= 28 ? 0.0 : digit[y * 28 + x] / 255.0;
  };
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const double sx = (x + 0.5 - left) * 28 / size - 0.5, sy = (y + 0.5 - top) * 28 / size - 0.5;
      if (sx < -1 || sy < -1 || sx > 28 || sy > 28) continue;
      const int ix = static_cast<int>(std::floor(sx)), iy = static_cast<int>(std::floor(sy));
      const double fx = sx - ix, fy = sy - iy;
      out.cover[static_cast<std::size_t>(y) * W + x] =
          static_cast<float>((1 - fy) * ((1 - fx) * at(ix, iy) + fx * at(ix + 1, iy)) +
                             fy * ((1 - fx) * at(ix, iy + 1) + fx * at(ix + 1, iy + 1)));
    }
  return out;
}

// The paper and the camera: the paper's grey changes linearly by `tilt_x`
// grey levels from the left edge to the right and `tilt_y` from top to
// bottom around `paper`; the pen is `contrast` levels darker (or lighter,
// chalk on a board); the sensor adds Gaussian grain of `grain` levels.
struct Shot {
  double paper = 200, tilt_x = 0, tilt_y = 0, contrast = 150;
  bool light_ink = false;
  double grain = 0;
  std::uint64_t seed = 1;
};

inline GrayImage photograph(const Coverage& c, const Shot& shot) {
  GrayImage img{c.width, c.height, std::vector<std::uint8_t>(c.cover.size())};
  std::mt19937_64 rng(shot.seed);
  const auto uniform = [&] {
    return (static_cast<double>(rng() >> 11) + 0.5) / 9007199254740992.0;
  };
  for (int y = 0; y < c.height; ++y)
    for (int x = 0; x < c.width; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * c.width + x;
      const double paper = shot.paper + shot.tilt_x * (x / (c.width - 1.0) - 0.5) +
                           shot.tilt_y * (y / (c.height - 1.0) - 0.5);
      double v = paper + (shot.light_ink ? 1 : -1) * shot.contrast * c.cover[i];
      if (shot.grain > 0)  // Box-Muller: the same grain on every platform
        v += shot.grain * std::sqrt(-2 * std::log(uniform())) *
             std::cos(6.283185307179586 * uniform());
      img.pixels[i] = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  return img;
}

}  // namespace minidl::testing
