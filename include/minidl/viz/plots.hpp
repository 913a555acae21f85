// minidl/viz/plots.hpp - training curves, confusion matrices and image grids as PNG.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/viz/canvas.hpp"

namespace minidl::viz {

// One curve: values[i] belongs to epoch i + 1. Non-finite values (NaN, inf)
// are skipped and break the line, so a missing epoch is visible as a gap.
struct Series {
  std::string label;
  std::vector<double> values;
  Color color;
};

// A grayscale image (width x height bytes, row-major, 0 = black) and the text
// written under it, e.g. "T:4 P:9".
struct Thumbnail {
  std::vector<std::uint8_t> pixels;
  int width;
  int height;
  std::string caption;
};

namespace detail {

// Pixel coordinates from doubles; the clamp keeps degenerate inputs
// (overflowing ranges) away from undefined float-to-int conversions.
inline int to_pixel(double v) {
  if (std::isnan(v)) return 0;
  return static_cast<int>(std::lround(std::clamp(v, -1e7, 1e7)));
}

// "%.*f", without the "-0.00" that rounding tiny negatives would print.
inline std::string format_fixed(double v, int decimals) {
  char buffer[64];
  if (std::abs(v) >= 1e9) {
    std::snprintf(buffer, sizeof buffer, "%.3g", v);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  }
  std::string s = buffer;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

// 1, 2 or 5 times a power of ten, at least raw: steps people read at a glance.
inline double nice_step(double raw) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double nice = fraction <= 1.0 ? 1.0 : fraction <= 2.0 ? 2.0 : fraction <= 5.0 ? 5.0 : 10.0;
  return nice * magnitude;
}

// Fewest decimals that print every multiple of step exactly (0.005 -> 3).
inline int decimals_for(double step) {
  for (int decimals = 0; decimals < 9; ++decimals) {
    const double scaled = step * std::pow(10.0, decimals);
    if (std::abs(scaled - std::round(scaled)) <= 1e-6 * scaled) return decimals;
  }
  return 9;
}

struct ValueRange {
  double lo, hi;
};

// The finite values of all series with a little room above and below; a
// constant series gets an artificial spread so that nothing divides by zero.
inline ValueRange padded_value_range(const std::vector<Series>& series) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (const Series& s : series) {
    for (double v : s.values) {
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (!(lo <= hi)) return {0.0, 1.0};
  const double spread = hi - lo;
  if (!(spread > 1e-12 * std::max(1.0, std::abs(hi)))) {
    const double half = lo == 0.0 ? 1.0 : std::abs(lo) * 0.1;
    return {lo - half, hi + half};
  }
  const double pad = 0.06 * spread;
  return {lo - pad, hi + pad};
}

struct ValueTicks {
  std::vector<double> values;
  int decimals = 0;
};

// At most max_count nice ticks inside [lo, hi].
inline ValueTicks value_ticks(double lo, double hi, int max_count) {
  ValueTicks ticks;
  const double raw = (hi - lo) / std::max(max_count - 1, 1);
  if (!(raw > 0.0) || !std::isfinite(raw)) return ticks;
  const double step = nice_step(raw);
  ticks.decimals = decimals_for(step);
  const double first = std::ceil(lo / step - 1e-9) * step;
  for (int k = 0; k <= max_count; ++k) {
    const double v = first + k * step;
    if (v > hi + 1e-9 * step) break;
    ticks.values.push_back(v);
  }
  return ticks;
}

// Epoch ticks: a 1-2-5 stride wide enough that labels of label_width pixels
// never touch; with a stride above 1 only its multiples are labelled.
inline std::vector<int> epoch_ticks(int epochs, double pixels_per_epoch, int label_width) {
  std::vector<int> ticks;
  if (epochs < 1) return ticks;
  int stride = 1;
  for (int base = 1; stride * pixels_per_epoch < label_width && base < 100000000; base *= 10) {
    for (int multiple : {1, 2, 5}) {
      stride = base * multiple;
      if (stride * pixels_per_epoch >= label_width) break;
    }
  }
  for (int epoch = stride == 1 ? 1 : stride; epoch <= epochs; epoch += stride) {
    ticks.push_back(epoch);
  }
  return ticks;
}

inline void fill_disc(Canvas& canvas, int cx, int cy, int radius, Color c) {
  for (int dy = -radius; dy <= radius; ++dy) {
    for (int dx = -radius; dx <= radius; ++dx) {
      if (dx * dx + dy * dy <= radius * radius + radius) canvas.set(cx + dx, cy + dy, c);
    }
  }
}

struct Point {
  int x, y;
};

struct Box {
  int x, y, w, h;
  bool contains(Point p) const { return p.x >= x && p.x < x + w && p.y >= y && p.y < y + h; }
};

// Light to dark blue; low counts stay pale but visibly tinted.
inline Color heat_color(double t) {
  const Color stops[] = {{255, 255, 255}, {176, 208, 232}, {66, 128, 190}, {12, 42, 102}};
  const double position = std::clamp(t, 0.0, 1.0) * 3.0;
  const int segment = std::min(static_cast<int>(position), 2);
  return mix(stops[segment], stops[segment + 1], position - segment);
}

// Dark text on light cells and white text on dark cells.
inline Color text_color_on(Color background) {
  const double luminance = 0.299 * background.r + 0.587 * background.g + 0.114 * background.b;
  return luminance > 150.0 ? Color{20, 20, 20} : white;
}

}  // namespace detail

// A line chart of per-epoch series inside the rectangle (x, y, w, h) of canvas:
// title, axes with nice ticks, light grid, legend placed where it covers the
// fewest data points, and a dashed "best" marker at mark_epoch (1-based, 0 = none).
inline void draw_line_chart(Canvas& canvas, int x, int y, int w, int h, const std::string& title,
                            const std::string& xlabel, const std::string& ylabel,
                            const std::vector<Series>& series, int mark_epoch) {
  int epochs = 0;
  for (const Series& s : series) epochs = std::max(epochs, static_cast<int>(s.values.size()));
  if (mark_epoch < 0 || mark_epoch > epochs) {
    fail("draw_line_chart '", title, "': mark_epoch ", mark_epoch, " is outside 1..", epochs,
         " (use 0 for no marker)");
  }

  // Text grows with the panel so that a 700x560 panel reads like a figure.
  const int scale = (w >= 480 && h >= 320) ? 2 : 1;
  const int title_scale = scale + 1;
  const int pad = 8 * scale;
  const int line_h = Canvas::text_height(scale);
  const int cap_h = 7 * scale;  // ink height of digits and capitals
  const int tick_len = 4 * scale;
  const int label_gap = 3 * scale;
  const Color axis_color = dark_gray;
  const Color marker_color{110, 110, 110};

  const int title_top = y + pad;
  const int marker_band = mark_epoch > 0 ? line_h + pad : pad / 2;
  const int plot_top = title_top + Canvas::text_height(title_scale) + pad + marker_band;
  const int xlabel_top = y + h - pad - line_h;
  const int plot_bottom = xlabel_top - pad - line_h - label_gap - tick_len;
  const int plot_h = std::max(plot_bottom - plot_top, 1);

  const detail::ValueRange range = detail::padded_value_range(series);
  const detail::ValueTicks y_ticks =
      detail::value_ticks(range.lo, range.hi, std::clamp(plot_h / (3 * line_h), 2, 8));
  std::vector<std::string> y_labels;
  int y_label_w = 0;
  for (double v : y_ticks.values) {
    y_labels.push_back(detail::format_fixed(v, y_ticks.decimals));
    y_label_w = std::max(y_label_w, Canvas::text_width(y_labels.back(), scale));
  }

  const int plot_left = x + pad + line_h + pad + y_label_w + label_gap + tick_len;
  const std::string widest_epoch = std::to_string(std::max(epochs, 1));
  const int plot_right = x + w - pad - Canvas::text_width(widest_epoch, scale) / 2;
  const int plot_w = std::max(plot_right - plot_left, 1);

  // Epoch e sits in the middle of a slot 1/epochs of the width wide, so a
  // single epoch lands in the centre rather than on an edge.
  const int slots = std::max(epochs, 1);
  auto to_x = [&](double epoch) {
    return detail::to_pixel(plot_left + (epoch - 0.5) / slots * plot_w);
  };
  auto to_y = [&](double v) {
    return detail::to_pixel(plot_bottom - (v - range.lo) / (range.hi - range.lo) * plot_h);
  };
  const std::vector<int> x_ticks =
      detail::epoch_ticks(epochs, static_cast<double>(plot_w) / slots,
                          Canvas::text_width(widest_epoch, scale) + 2 * font::kAdvance * scale);

  // Grid first, so that everything else is drawn over it.
  for (double v : y_ticks.values) canvas.line(plot_left, to_y(v), plot_right, to_y(v), light_gray);
  for (int e : x_ticks) canvas.line(to_x(e), plot_top, to_x(e), plot_bottom, light_gray);
  canvas.draw_rect(plot_left, plot_top, plot_w + 1, plot_h + 1, axis_color);

  for (std::size_t i = 0; i < y_ticks.values.size(); ++i) {
    const int ty = to_y(y_ticks.values[i]);
    canvas.line(plot_left - tick_len, ty, plot_left - 1, ty, axis_color, 1);
    const int label_w = Canvas::text_width(y_labels[i], scale);
    canvas.text(plot_left - tick_len - label_gap - label_w, ty - cap_h / 2, y_labels[i], axis_color,
                scale);
  }
  for (int e : x_ticks) {
    const int tx = to_x(e);
    canvas.line(tx, plot_bottom + 1, tx, plot_bottom + tick_len, axis_color, 1);
    const std::string label = std::to_string(e);
    canvas.text(tx - Canvas::text_width(label, scale) / 2, plot_bottom + tick_len + label_gap,
                label, axis_color, scale);
  }

  const int plot_centre_x = plot_left + plot_w / 2;
  const int title_w = Canvas::text_width(title, title_scale);
  canvas.text(
      std::clamp(plot_centre_x - title_w / 2, x + pad, std::max(x + pad, x + w - pad - title_w)),
      title_top, title, black, title_scale);
  canvas.text(plot_centre_x - Canvas::text_width(xlabel, scale) / 2, xlabel_top, xlabel, black,
              scale);
  canvas.text_vertical(x + pad, plot_top + (plot_h - Canvas::text_width(ylabel, scale)) / 2, ylabel,
                       black, scale);

  // The marker goes under the data; its label sits in its own band above the plot.
  if (mark_epoch > 0) {
    const int mx = to_x(mark_epoch);
    canvas.dashed_line(mx, plot_top + 1, mx, plot_bottom - 1, marker_color, 5 * scale, 4 * scale,
                       scale);
    const std::string label = "best (epoch " + std::to_string(mark_epoch) + ")";
    const int label_w = Canvas::text_width(label, scale);
    const int label_x =
        std::clamp(mx - label_w / 2, x + pad, std::max(x + pad, x + w - pad - label_w));
    canvas.text(label_x, plot_top - label_gap - line_h, label, marker_color, scale);
  }

  // Curves, remembering sampled points so the legend can avoid them (and the marker).
  std::vector<detail::Point> drawn;
  if (mark_epoch > 0) {
    for (int py = plot_top; py <= plot_bottom; py += 2) drawn.push_back({to_x(mark_epoch), py});
  }
  const bool dots_everywhere = epochs <= 40;
  for (const Series& s : series) {
    const int n = static_cast<int>(s.values.size());
    for (int i = 0; i < n; ++i) {
      if (!std::isfinite(s.values[i])) continue;
      const detail::Point p{to_x(i + 1), to_y(s.values[i])};
      const bool has_prev = i > 0 && std::isfinite(s.values[i - 1]);
      const bool has_next = i + 1 < n && std::isfinite(s.values[i + 1]);
      if (has_prev) {
        const detail::Point q{to_x(i), to_y(s.values[i - 1])};
        canvas.line(q.x, q.y, p.x, p.y, s.color, scale);
        const int steps = std::max(std::abs(p.x - q.x), std::abs(p.y - q.y)) / 2 + 1;
        for (int k = 0; k <= steps; ++k) {
          drawn.push_back({q.x + (p.x - q.x) * k / steps, q.y + (p.y - q.y) * k / steps});
        }
      }
      // An isolated point would be invisible without its dot.
      if (dots_everywhere || (!has_prev && !has_next)) {
        detail::fill_disc(canvas, p.x, p.y, scale + 1, s.color);
      }
      drawn.push_back(p);
    }
  }

  std::vector<const Series*> entries;
  for (const Series& s : series) {
    if (!s.label.empty()) entries.push_back(&s);
  }
  if (entries.empty()) return;
  int widest_label = 0;
  for (const Series* s : entries) {
    widest_label = std::max(widest_label, Canvas::text_width(s->label, scale));
  }
  const int swatch_w = 14 * scale;
  const int entry_h = line_h + 3 * scale;
  const int box_w = pad + swatch_w + label_gap * 2 + widest_label + pad;
  const int box_h = static_cast<int>(entries.size()) * entry_h + pad;
  const int margin = 6 * scale;
  const int left = plot_left + margin, right = plot_right - margin - box_w;
  const int top = plot_top + margin, bottom = plot_bottom - margin - box_h;
  const int centre = plot_left + (plot_w - box_w) / 2;
  const detail::Box candidates[] = {{right, top, box_w, box_h},  {right, bottom, box_w, box_h},
                                    {left, top, box_w, box_h},   {left, bottom, box_w, box_h},
                                    {centre, top, box_w, box_h}, {centre, bottom, box_w, box_h}};
  detail::Box best = candidates[0];
  std::size_t best_hits = std::numeric_limits<std::size_t>::max();
  for (const detail::Box& box : candidates) {
    const detail::Box halo{box.x - margin, box.y - margin, box.w + 2 * margin, box.h + 2 * margin};
    const std::size_t hits = static_cast<std::size_t>(std::count_if(
        drawn.begin(), drawn.end(), [&](detail::Point p) { return halo.contains(p); }));
    if (hits < best_hits) {
      best = box;
      best_hits = hits;
    }
  }
  canvas.fill_rect(best.x, best.y, best.w, best.h, white);
  canvas.draw_rect(best.x, best.y, best.w, best.h, gray);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const int row_top = best.y + pad / 2 + static_cast<int>(i) * entry_h + scale;
    const int row_mid = row_top + cap_h / 2;
    const int swatch_x = best.x + pad;
    canvas.line(swatch_x, row_mid, swatch_x + swatch_w, row_mid, entries[i]->color, scale);
    detail::fill_disc(canvas, swatch_x + swatch_w / 2, row_mid, scale + 1, entries[i]->color);
    canvas.text(swatch_x + swatch_w + label_gap * 2, row_top, entries[i]->label, black, scale);
  }
}

// Loss (left) and accuracy (right) per epoch, 1400x560, both marked at best_epoch.
inline void save_training_curves_png(const std::string& path, const std::vector<Series>& loss,
                                     const std::vector<Series>& accuracy, int best_epoch) {
  Canvas canvas(1400, 560);
  draw_line_chart(canvas, 0, 0, 700, 560, "Loss per epoch", "epoch", "loss", loss, best_epoch);
  draw_line_chart(canvas, 700, 0, 700, 560, "Accuracy per epoch", "epoch", "accuracy", accuracy,
                  best_epoch);
  canvas.save_png(path);
}

// Heatmap of counts (n x n, row-major, rows = true label, columns = predicted).
// Shading is logarithmic so that a handful of mistakes still shows beside a
// diagonal of a thousand; every cell also carries its exact count.
inline void save_confusion_matrix_png(const std::string& path,
                                      const std::vector<std::int64_t>& counts, int n,
                                      const std::vector<std::string>& class_names,
                                      const std::string& title = "Confusion matrix") {
  if (n < 1) fail("save_confusion_matrix_png '", path, "': n must be at least 1, got ", n);
  if (counts.size() != static_cast<std::size_t>(n) * n) {
    fail("save_confusion_matrix_png '", path, "': counts has ", counts.size(),
         " entries, expected ", n, "x", n, " = ", static_cast<std::int64_t>(n) * n);
  }
  if (!class_names.empty() && class_names.size() != static_cast<std::size_t>(n)) {
    fail("save_confusion_matrix_png '", path, "': ", class_names.size(), " class names for ", n,
         " classes (pass none to number them)");
  }
  std::int64_t max_count = 0, total = 0, correct = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 0) {
      fail("save_confusion_matrix_png '", path, "': negative count ", counts[i], " at row ", i / n,
           ", column ", i % n);
    }
    max_count = std::max(max_count, counts[i]);
    total += counts[i];
    if (i / n == i % n) correct += counts[i];
  }
  std::vector<std::string> names = class_names;
  if (names.empty()) {
    for (int i = 0; i < n; ++i) names.push_back(std::to_string(i));
  }

  const int scale = n <= 20 ? 2 : 1;
  const int pad = 12 * scale;
  const int line_h = Canvas::text_height(scale);
  const int cap_h = 7 * scale;
  const int gap = 4 * scale;
  const int cell = std::max({Canvas::text_width(std::to_string(max_count), scale) + 4 * gap,
                             line_h + 4 * gap, 20 * scale});
  const int matrix_size = n * cell;

  int row_name_w = 0, column_name_w = 0;
  for (const std::string& name : names) {
    row_name_w = std::max(row_name_w, Canvas::text_width(name, scale));
    column_name_w = std::max(column_name_w, Canvas::text_width(name, scale));
  }
  // Column names turn vertical when they would run into their neighbours.
  const bool vertical_columns = column_name_w > cell - gap;
  const int column_names_h = vertical_columns ? column_name_w : line_h;

  char accuracy_text[64];
  std::snprintf(
      accuracy_text, sizeof accuracy_text, "%.2f%%",
      total > 0 ? 100.0 * static_cast<double>(correct) / static_cast<double>(total) : 0.0);
  const std::string subtitle =
      std::to_string(total) + " samples, accuracy " + accuracy_text + ", shading on a log scale";

  const int title_scale = scale + 1;
  const int matrix_left = pad + line_h + pad + row_name_w + gap * 2;
  const int matrix_top = pad + Canvas::text_height(title_scale) + gap + line_h + pad * 2;
  const int bar_left = matrix_left + matrix_size + pad * 2;
  const int bar_w = 10 * scale;
  const int bar_label_w = Canvas::text_width(std::to_string(max_count), scale);
  const int width = std::max({bar_left + bar_w + gap * 2 + bar_label_w + pad,
                              pad * 2 + Canvas::text_width(title, title_scale),
                              pad * 2 + Canvas::text_width(subtitle, scale)});
  const int height = matrix_top + matrix_size + gap * 2 + column_names_h + pad + line_h + pad;
  Canvas canvas(width, height);

  const double log_max = std::log1p(static_cast<double>(max_count));
  // Any non-zero count starts at a visible tint, so a single mistake is not
  // mistaken for an empty cell.
  auto shade_position = [&](std::int64_t count) {
    if (count == 0 || log_max <= 0.0) return 0.0;
    return 0.12 + 0.88 * std::log1p(static_cast<double>(count)) / log_max;
  };
  auto shade = [&](std::int64_t count) { return detail::heat_color(shade_position(count)); };

  const int matrix_centre = matrix_left + matrix_size / 2;
  const int title_w = Canvas::text_width(title, title_scale);
  const int subtitle_w = Canvas::text_width(subtitle, scale);
  // Title and subtitle share one centre: over the matrix when they fit there.
  const int heading_w = std::max(title_w, subtitle_w);
  const int heading_centre = std::clamp(matrix_centre, pad + heading_w / 2,
                                        std::max(pad + heading_w / 2, width - pad - heading_w / 2));
  canvas.text(heading_centre - title_w / 2, pad, title, black, title_scale);
  canvas.text(heading_centre - subtitle_w / 2, pad + Canvas::text_height(title_scale) + gap,
              subtitle, dark_gray, scale);

  for (int row = 0; row < n; ++row) {
    for (int column = 0; column < n; ++column) {
      const std::int64_t count = counts[static_cast<std::size_t>(row) * n + column];
      const Color fill = shade(count);
      const int cx = matrix_left + column * cell, cy = matrix_top + row * cell;
      canvas.fill_rect(cx, cy, cell, cell, fill);
      const std::string label = std::to_string(count);
      // Zeros are printed softer so that the real confusions stand out.
      const Color ink = count == 0 ? Color{150, 150, 150} : detail::text_color_on(fill);
      canvas.text(cx + (cell - Canvas::text_width(label, scale)) / 2, cy + (cell - cap_h) / 2,
                  label, ink, scale);
    }
  }
  // Thin separators keep the many near-white cells apart.
  for (int i = 0; i <= n; ++i) {
    canvas.line(matrix_left + i * cell, matrix_top, matrix_left + i * cell,
                matrix_top + matrix_size, light_gray);
    canvas.line(matrix_left, matrix_top + i * cell, matrix_left + matrix_size,
                matrix_top + i * cell, light_gray);
  }
  canvas.draw_rect(matrix_left, matrix_top, matrix_size + 1, matrix_size + 1, dark_gray);

  for (int i = 0; i < n; ++i) {
    const std::string& name = names[i];
    const int name_w = Canvas::text_width(name, scale);
    canvas.text(matrix_left - gap * 2 - name_w, matrix_top + i * cell + (cell - cap_h) / 2, name,
                black, scale);
    const int column_x = matrix_left + i * cell;
    if (vertical_columns) {
      canvas.text_vertical(column_x + (cell - line_h) / 2, matrix_top + matrix_size + gap * 2, name,
                           black, scale);
    } else {
      canvas.text(column_x + (cell - name_w) / 2, matrix_top + matrix_size + gap * 2, name, black,
                  scale);
    }
  }
  const std::string xlabel = "predicted label", ylabel = "true label";
  canvas.text(matrix_centre - Canvas::text_width(xlabel, scale) / 2,
              matrix_top + matrix_size + gap * 2 + column_names_h + pad, xlabel, black, scale);
  canvas.text_vertical(pad, matrix_top + (matrix_size - Canvas::text_width(ylabel, scale)) / 2,
                       ylabel, black, scale);

  // Colour bar with ticks at 0, powers of ten and the maximum.
  const int bar_top = matrix_top, bar_bottom = matrix_top + matrix_size - 1;
  for (int py = bar_top; py <= bar_bottom; ++py) {
    const double t = static_cast<double>(bar_bottom - py) / std::max(bar_bottom - bar_top, 1);
    canvas.fill_rect(bar_left, py, bar_w, 1, detail::heat_color(t));
  }
  canvas.draw_rect(bar_left, bar_top, bar_w, matrix_size, gray);
  std::vector<std::int64_t> bar_ticks = {max_count, 0};
  for (std::int64_t p = 1; p < max_count; p *= 10) bar_ticks.push_back(p);
  std::vector<int> used_y;
  for (std::int64_t tick : bar_ticks) {
    const double t = shade_position(tick);
    const int ty = bar_bottom - detail::to_pixel(t * (bar_bottom - bar_top));
    const bool crowded = std::any_of(used_y.begin(), used_y.end(), [&](int other) {
      return std::abs(other - ty) < line_h + gap;
    });
    if (crowded) continue;
    used_y.push_back(ty);
    canvas.line(bar_left + bar_w, ty, bar_left + bar_w + gap / 2, ty, dark_gray);
    canvas.text(bar_left + bar_w + gap * 2, ty - cap_h / 2, std::to_string(tick), dark_gray, scale);
  }

  canvas.save_png(path);
}

// Thumbnails in rows of `columns`, each upscaled by `scale` (nearest neighbour)
// in a thin frame with its caption underneath, under a title.
inline void save_image_grid_png(const std::string& path, const std::vector<Thumbnail>& images,
                                int columns, int scale, const std::string& title) {
  if (columns < 1)
    fail("save_image_grid_png '", path, "': columns must be at least 1, got ", columns);
  if (scale < 1 || scale > 64) {
    fail("save_image_grid_png '", path, "': scale must be in 1..64, got ", scale);
  }
  int image_w = 1, image_h = 1;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const Thumbnail& t = images[i];
    if (t.width < 1 || t.height < 1 ||
        t.pixels.size() != static_cast<std::size_t>(t.width) * t.height) {
      fail("save_image_grid_png '", path, "': image ", i, " is ", t.width, "x", t.height,
           " but has ", t.pixels.size(), " pixels");
    }
    image_w = std::max(image_w, t.width * scale);
    image_h = std::max(image_h, t.height * scale);
  }

  const int caption_scale = image_w >= 70 ? 2 : 1;
  const int pad = 6 * caption_scale;
  int caption_w = 0;
  for (const Thumbnail& t : images) {
    caption_w = std::max(caption_w, Canvas::text_width(t.caption, caption_scale));
  }
  const int cell_w = std::max(image_w, caption_w) + 2 * pad;
  const int cell_h = image_h + pad + Canvas::text_height(caption_scale) + pad;
  const int count = static_cast<int>(images.size());
  const int used_columns = std::max(std::min(columns, count), 1);
  const int rows = std::max((count + columns - 1) / columns, 1);
  const int grid_w = used_columns * cell_w;

  const int title_scale = Canvas::text_width(title, 3) + 2 * pad <= grid_w ? 3 : 2;
  const int title_w = Canvas::text_width(title, title_scale);
  const int width = std::max(grid_w, title_w + 2 * pad) + 2 * pad;
  const int grid_top = pad + Canvas::text_height(title_scale) + pad;
  const int height = grid_top + rows * cell_h + pad;
  Canvas canvas(width, height);
  canvas.text((width - title_w) / 2, pad, title, black, title_scale);

  if (images.empty()) {
    const std::string note = "(no images)";
    canvas.text((width - Canvas::text_width(note, caption_scale)) / 2, grid_top + pad, note, gray,
                caption_scale);
  }
  const int grid_left = (width - grid_w) / 2;
  for (int i = 0; i < count; ++i) {
    const Thumbnail& t = images[i];
    const int cell_x = grid_left + (i % columns) * cell_w;
    const int cell_y = grid_top + (i / columns) * cell_h;
    const int image_x = cell_x + (cell_w - t.width * scale) / 2;
    const int image_y = cell_y + (image_h - t.height * scale) / 2;
    canvas.draw_rect(image_x - 1, image_y - 1, t.width * scale + 2, t.height * scale + 2, gray);
    canvas.blit_gray(t.pixels.data(), t.width, t.height, image_x, image_y, scale);
    const int text_w = Canvas::text_width(t.caption, caption_scale);
    canvas.text(cell_x + (cell_w - text_w) / 2, cell_y + image_h + pad, t.caption, black,
                caption_scale);
  }
  canvas.save_png(path);
}

}  // namespace minidl::viz
