// minidl/data/ink_map.hpp - where the ink of one digit is in a photo: background, noise, Otsu
// threshold and the largest connected pieces of ink.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/data/components.hpp"
#include "minidl/io/image.hpp"

namespace minidl {

// How strongly each pixel of a picture is ink of its digit: 0 for paper,
// sensor grain and stray marks, 255 for the digit's strongest strokes.
struct InkMap {
  int width = 0, height = 0;
  std::vector<float> ink;  // row-major, width * height
  double noise = 0;        // standard deviation of the background's grain, in grey levels
};

// Otsu's threshold of a histogram: the t that best splits it into values <= t
// and values > t (largest between-class variance). With a single occupied
// value v it returns v - 1, so that value counts as the upper class.
inline int otsu_threshold(const std::vector<std::uint64_t>& histogram) {
  double total = 0, sum = 0;
  int lo = -1, hi = -1;
  for (std::size_t v = 0; v < histogram.size(); ++v) {
    if (!histogram[v]) continue;
    total += static_cast<double>(histogram[v]);
    sum += static_cast<double>(v) * static_cast<double>(histogram[v]);
    if (lo < 0) lo = static_cast<int>(v);
    hi = static_cast<int>(v);
  }
  if (lo < 0 || lo == hi) return lo - 1;
  double below = 0, below_sum = 0, best = -1;
  int best_t = lo;
  for (int t = lo; t < hi; ++t) {
    below += static_cast<double>(histogram[static_cast<std::size_t>(t)]);
    below_sum += t * static_cast<double>(histogram[static_cast<std::size_t>(t)]);
    const double above = total - below;
    if (below == 0 || above == 0) continue;
    const double diff = below_sum / below - (sum - below_sum) / above;
    const double between = below * above * diff * diff;
    if (between > best) best = between, best_t = t;
  }
  return best_t;
}

namespace detail {

// The lighting of a photo: c0 + c1 u + c2 v + c3 u^2 + c4 uv + c5 v^2 with
// u, v running over [-1, 1] across the picture. A quadratic follows a
// gradient or the fall-off towards the corners, but is too stiff to bend
// into a digit's strokes.
struct LightingSurface {
  std::array<double, 6> c{};
  static std::array<double, 6> terms(double u, double v) { return {1, u, v, u * u, u * v, v * v}; }
  double at(double u, double v) const {
    const auto t = terms(u, v);
    double s = 0;
    for (int k = 0; k < 6; ++k)
      s += c[static_cast<std::size_t>(k)] * t[static_cast<std::size_t>(k)];
    return s;
  }
};

struct Sample {
  double u, v;
  int value;
};

// Least-squares fit of the surface to the samples where keep[i]. A tiny
// ridge keeps the system solvable when the samples cannot fix every term
// (one row or column of pixels).
inline LightingSurface fit_lighting(const std::vector<Sample>& samples,
                                    const std::vector<std::uint8_t>& keep) {
  double a[6][7] = {};
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (!keep[i]) continue;
    const auto t = LightingSurface::terms(samples[i].u, samples[i].v);
    for (int r = 0; r < 6; ++r) {
      for (int k = 0; k < 6; ++k)
        a[r][k] += t[static_cast<std::size_t>(r)] * t[static_cast<std::size_t>(k)];
      a[r][6] += t[static_cast<std::size_t>(r)] * samples[i].value;
    }
  }
  const double ridge = 1e-9 * (a[0][0] + 1);
  for (int r = 0; r < 6; ++r) a[r][r] += ridge;
  for (int col = 0; col < 6; ++col) {  // Gaussian elimination with partial pivoting
    int pivot = col;
    for (int r = col + 1; r < 6; ++r)
      if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
    for (int k = 0; k < 7; ++k) std::swap(a[col][k], a[pivot][k]);
    for (int r = 0; r < 6; ++r) {
      if (r == col) continue;
      const double f = a[r][col] / a[col][col];
      for (int k = col; k < 7; ++k) a[r][k] -= f * a[col][k];
    }
  }
  LightingSurface s;
  for (int k = 0; k < 6; ++k) s.c[static_cast<std::size_t>(k)] = a[k][6] / a[k][k];
  return s;
}

// Median of non-negative integers below 512, through a histogram.
inline int median_of_small(const std::vector<int>& values) {
  std::array<std::size_t, 512> h{};
  for (int v : values) ++h[static_cast<std::size_t>(std::clamp(v, 0, 511))];
  std::size_t seen = 0;
  for (std::size_t v = 0; v < h.size(); ++v)
    if ((seen += h[v]) * 2 > values.size()) return static_cast<int>(v);
  return 0;
}

}  // namespace detail

// Ink fainter than this many grey levels is no ink, whatever the grain: a
// photo of blank paper is blank.
inline constexpr int kMinInkContrast = 24;

// Finds the ink of the one digit a picture shows, in either polarity:
//  1. the paper's lighting is a smooth surface fitted to the pixels that are
//     not ink (ink and outliers dropped over three rounds), so a gradient or
//     a shadow across the page does not count as ink;
//  2. the grain is the robust spread (median absolute deviation) of the
//     pixels around that surface, and ink must stand at least
//     kMinInkContrast grey levels and six grain deviations from the paper;
//     the side (darker or lighter) with more such pixels is the ink;
//  3. pixels more than three deviations from the paper are candidates, and
//     Otsu's threshold over the candidates tells solid stroke from the
//     faint rims and the grain's tail;
//  4. the 8-connected pieces of candidates are kept when they hold solid
//     stroke: the one with most of it, and others with at least a tenth as
//     much lying near it (a stroke broken by the pen). Specks of grain and
//     marks elsewhere on the page are dropped;
//  5. the kept ink is stretched so that its strongest strokes reach 255.
// A clean image (an MNIST digit) has no grain and keeps every inked pixel.
// Errors name `name` (the file, for a user).
inline InkMap find_ink(const GrayImage& img, const std::string& name = "image") {
  const int W = img.width, H = img.height;
  const std::size_t n =
      static_cast<std::size_t>(std::max(W, 0)) * static_cast<std::size_t>(std::max(H, 0));
  if (W <= 0 || H <= 0 || img.pixels.size() != n)
    fail(name, ": image of ", W, "x", H, " holds ", img.pixels.size(), " pixels");
  const auto u_of = [&](int x) { return W > 1 ? 2.0 * x / (W - 1) - 1 : 0.0; };
  const auto v_of = [&](int y) { return H > 1 ? 2.0 * y / (H - 1) - 1 : 0.0; };

  // 1. Lighting, fitted on a grid of at most about 2^18 pixels.
  const int step =
      std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n) / (1 << 18)))));
  std::vector<detail::Sample> samples;
  std::vector<int> values;
  for (int y = 0; y < H; y += step)
    for (int x = 0; x < W; x += step) {
      const int p = img.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(W) +
                               static_cast<std::size_t>(x)];
      samples.push_back({u_of(x), v_of(y), p});
      values.push_back(p);
    }
  // The first round keeps the pixels near the median: the paper, as ink is the minority.
  const int median = detail::median_of_small(values);
  std::vector<int> deviation(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i)
    deviation[i] = std::abs(samples[i].value - median);
  // 1.4826 turns a median absolute deviation into a Gaussian's standard deviation.
  double spread = 1.4826 * detail::median_of_small(deviation);
  std::vector<std::uint8_t> keep(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i)
    keep[i] = deviation[i] <= std::max(3 * spread, 2.0);
  detail::LightingSurface lighting;
  for (int round = 0; round < 3; ++round) {
    lighting = detail::fit_lighting(samples, keep);
    std::vector<int> kept_deviation;
    for (std::size_t i = 0; i < samples.size(); ++i) {
      deviation[i] =
          std::abs(samples[i].value -
                   static_cast<int>(std::lround(lighting.at(samples[i].u, samples[i].v))));
      if (keep[i]) kept_deviation.push_back(deviation[i]);
    }
    spread = 1.4826 * detail::median_of_small(kept_deviation);
    for (std::size_t i = 0; i < samples.size(); ++i)
      keep[i] = deviation[i] <= std::max(3 * spread, 2.0);
  }
  const double noise = spread;

  // 2. Residuals from the paper (rounded to whole grey levels, so that a
  // clean picture's values stay exact) and the side the ink is on.
  std::vector<int> residual(n);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const std::size_t i =
          static_cast<std::size_t>(y) * static_cast<std::size_t>(W) + static_cast<std::size_t>(x);
      const long paper = std::clamp(std::lround(lighting.at(u_of(x), v_of(y))), 0L, 255L);
      residual[i] = img.pixels[i] - static_cast<int>(paper);
    }
  const int contrast_needed = std::max(kMinInkContrast, static_cast<int>(std::ceil(6 * noise)));
  std::size_t darker = 0, lighter = 0;
  int strongest = 0;
  for (int r : residual) {
    darker += r<-contrast_needed, lighter += r> contrast_needed;
    strongest = std::max(strongest, std::abs(r));
  }
  if (darker == 0 && lighter == 0)
    fail(name, ": no digit found (the ", W, "x", H, " image is blank: ink contrast ", strongest,
         " of 255, noise ", std::lround(noise), "; ink needs a contrast of ", contrast_needed, ")");
  const int sign = darker > lighter ? -1 : 1;

  // 3. Candidates and Otsu's threshold among them.
  const int candidate_level = static_cast<int>(std::ceil(3 * noise));
  std::vector<std::uint8_t> candidate(n);
  std::vector<std::uint64_t> histogram(256);
  for (std::size_t i = 0; i < n; ++i) {
    const int c = std::clamp(sign * residual[i], 0, 255);
    residual[i] = c;  // from here on: ink contrast
    candidate[i] = c > candidate_level;
    if (candidate[i]) ++histogram[static_cast<std::size_t>(c)];
  }
  const int solid_level = std::max(otsu_threshold(histogram), contrast_needed);

  // 4. Pieces of ink: solid pixels and bounding box of each.
  const Components pieces = label_components(candidate, W, H);
  struct Piece {
    std::size_t solid = 0;
    int x0 = 0, y0 = 0, x1 = -1, y1 = -1;
  };
  std::vector<Piece> piece(static_cast<std::size_t>(pieces.count));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const std::size_t i =
          static_cast<std::size_t>(y) * static_cast<std::size_t>(W) + static_cast<std::size_t>(x);
      if (pieces.label[i] < 0) continue;
      Piece& p = piece[static_cast<std::size_t>(pieces.label[i])];
      if (p.x1 < 0) p.x0 = p.x1 = x, p.y0 = p.y1 = y;
      p.x0 = std::min(p.x0, x), p.x1 = std::max(p.x1, x), p.y0 = std::min(p.y0, y),
      p.y1 = std::max(p.y1, y);
      p.solid += residual[i] > solid_level;
    }
  std::size_t main = 0;
  for (std::size_t k = 1; k < piece.size(); ++k)
    if (piece[k].solid > piece[main].solid) main = k;
  const Piece& m = piece[main];
  const int reach = std::max(m.x1 - m.x0, m.y1 - m.y0) / 2 + 1;
  std::vector<std::uint8_t> kept(piece.size());
  for (std::size_t k = 0; k < piece.size(); ++k) {
    const Piece& p = piece[k];
    const bool near = p.x1 >= m.x0 - reach && p.x0 <= m.x1 + reach && p.y1 >= m.y0 - reach &&
                      p.y0 <= m.y1 + reach;
    kept[k] = k == main || (p.solid > 0 && p.solid * 10 >= m.solid && near);
  }

  // 5. Stretch: the strongest kept ink becomes 255. Where there is grain, the
  // strongest pixel is the ink plus about three deviations of grain.
  int peak = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (pieces.label[i] >= 0 && kept[static_cast<std::size_t>(pieces.label[i])])
      peak = std::max(peak, residual[i]);
  const double full = std::max(peak - 3 * noise, static_cast<double>(solid_level));
  InkMap out;
  out.width = W;
  out.height = H;
  out.noise = noise;
  out.ink.assign(n, 0.0f);
  for (std::size_t i = 0; i < n; ++i)
    if (pieces.label[i] >= 0 && kept[static_cast<std::size_t>(pieces.label[i])])
      out.ink[i] = static_cast<float>(std::min(255.0, residual[i] * 255.0 / full));
  return out;
}

}  // namespace minidl
