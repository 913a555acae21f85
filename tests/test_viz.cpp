// Tests for minidl/viz: canvas drawing and clipping, the font, PNG output and the plots.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <stb/stb_image.h>

#include "minidl/core/error.hpp"
#include "minidl/viz/canvas.hpp"
#include "minidl/viz/font.hpp"
#include "minidl/viz/plots.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_viz {

namespace fs = std::filesystem;
using minidl::viz::Canvas;
using minidl::viz::Color;

namespace {

constexpr Color kInk{200, 10, 30};

// Bounding box of every pixel that differs from the background.
struct InkBox {
  int left = std::numeric_limits<int>::max(), top = std::numeric_limits<int>::max();
  int right = -1, bottom = -1;
  int width() const { return right - left + 1; }
  int height() const { return bottom - top + 1; }
};

InkBox ink_box(const Canvas& canvas, Color background = minidl::viz::white) {
  InkBox box;
  for (int y = 0; y < canvas.height(); ++y) {
    for (int x = 0; x < canvas.width(); ++x) {
      if (canvas.get(x, y) == background) continue;
      box.left = std::min(box.left, x);
      box.right = std::max(box.right, x);
      box.top = std::min(box.top, y);
      box.bottom = std::max(box.bottom, y);
    }
  }
  return box;
}

int count_color(const Canvas& canvas, Color c) {
  int n = 0;
  for (int y = 0; y < canvas.height(); ++y) {
    for (int x = 0; x < canvas.width(); ++x) n += canvas.get(x, y) == c;
  }
  return n;
}

// Scratch folders of this file are named minidl_test_viz_<pid>_<n>.
struct TempDir : minidl::testing::TempDir {
  TempDir() : minidl::testing::TempDir("minidl_test_viz_") {}
};

struct PngSize {
  int width = -1, height = -1;
};

// Reads the size from the bytes themselves: 8-byte signature, then the IHDR
// chunk whose data starts with big-endian width and height.
PngSize png_size_from_header(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
  const std::array<unsigned char, 8> signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  REQUIRE(bytes.size() >= 24);
  for (std::size_t i = 0; i < signature.size(); ++i) REQUIRE(bytes[i] == signature[i]);
  REQUIRE(std::string(bytes.begin() + 12, bytes.begin() + 16) == "IHDR");
  auto be32 = [&](std::size_t at) {
    return static_cast<int>((std::uint32_t{bytes[at]} << 24) |
                            (std::uint32_t{bytes[at + 1]} << 16) |
                            (std::uint32_t{bytes[at + 2]} << 8) | std::uint32_t{bytes[at + 3]});
  };
  return {be32(16), be32(20)};
}

// Size as decoded by stb_image, checked against the header bytes.
PngSize png_size(const fs::path& file) {
  const PngSize header = png_size_from_header(file);
  int width = 0, height = 0, channels = 0;
  REQUIRE(stbi_info(file.string().c_str(), &width, &height, &channels) == 1);
  CHECK(width == header.width);
  CHECK(height == header.height);
  return header;
}

// The decoded image as a Canvas, so tests can inspect pixels of saved files.
Canvas load_png(const fs::path& file) {
  int width = 0, height = 0, channels = 0;
  unsigned char* data = stbi_load(file.string().c_str(), &width, &height, &channels, 3);
  REQUIRE(data != nullptr);
  Canvas canvas(width, height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const unsigned char* p = data + (static_cast<std::size_t>(y) * width + x) * 3;
      canvas.set(x, y, Color{p[0], p[1], p[2]});
    }
  }
  stbi_image_free(data);
  return canvas;
}

}  // namespace

TEST_CASE("canvas starts filled with its background and stores RGB row-major") {
  Canvas canvas(5, 3, Color{1, 2, 3});
  CHECK(canvas.width() == 5);
  CHECK(canvas.height() == 3);
  REQUIRE(canvas.pixels().size() == 5u * 3u * 3u);
  CHECK(count_color(canvas, Color{1, 2, 3}) == 15);

  canvas.set(4, 1, kInk);
  CHECK(canvas.get(4, 1) == kInk);
  const std::size_t at = (1 * 5 + 4) * 3;
  CHECK(canvas.pixels()[at] == kInk.r);
  CHECK(canvas.pixels()[at + 1] == kInk.g);
  CHECK(canvas.pixels()[at + 2] == kInk.b);
  CHECK(count_color(canvas, kInk) == 1);
}

TEST_CASE("canvas rejects empty or absurd sizes and out-of-range reads") {
  CHECK_THROWS_AS(Canvas(0, 10), minidl::Error);
  CHECK_THROWS_AS(Canvas(10, -1), minidl::Error);
  CHECK_THROWS_AS(Canvas(100000, 100000), minidl::Error);
  Canvas canvas(4, 4);
  CHECK_THROWS_AS(canvas.get(4, 0), minidl::Error);
  CHECK_THROWS_AS(canvas.get(0, -1), minidl::Error);
}

TEST_CASE("drawing outside the canvas is clipped without touching other pixels") {
  Canvas canvas(10, 8);
  const std::vector<std::uint8_t> before = canvas.pixels();
  canvas.set(-1, 0, kInk);
  canvas.set(10, 0, kInk);
  canvas.set(0, 8, kInk);
  canvas.set(std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), kInk);
  canvas.fill_rect(20, 20, 5, 5, kInk);
  canvas.fill_rect(std::numeric_limits<int>::min(), 0, -5, 5, kInk);
  canvas.text(-1000, -1000, "hidden", kInk, 3);
  canvas.line(-50, -50, -10, 100, kInk, 3);
  CHECK(canvas.pixels() == before);

  // Partly inside: exactly the overlap is painted.
  canvas.fill_rect(-3, -3, 5, 6, kInk);
  CHECK(count_color(canvas, kInk) == 2 * 3);
  canvas.fill_rect(8, 6, 100, 100, kInk);
  CHECK(count_color(canvas, kInk) == 2 * 3 + 2 * 2);

  // A line from very far away still crosses the visible part (and finishes quickly).
  Canvas crossing(10, 8);
  crossing.line(-1000000000, 4, 1000000000, 4, kInk);
  CHECK(count_color(crossing, kInk) == 10);
  crossing.dashed_line(5, -2000000000, 5, 2000000000, kInk);
  CHECK(crossing.get(5, 4) == kInk);
}

TEST_CASE("rectangles: filled exactly, outlines leave the inside alone") {
  Canvas canvas(20, 20);
  canvas.fill_rect(2, 3, 4, 5, kInk);
  CHECK(count_color(canvas, kInk) == 20);
  const InkBox box = ink_box(canvas);
  CHECK(box.left == 2);
  CHECK(box.top == 3);
  CHECK(box.width() == 4);
  CHECK(box.height() == 5);

  Canvas outline(20, 20);
  outline.draw_rect(1, 1, 10, 6, kInk);
  CHECK(count_color(outline, kInk) == 2 * 10 + 2 * 4);
  CHECK(outline.get(1, 1) == kInk);
  CHECK(outline.get(10, 6) == kInk);
  CHECK(outline.get(5, 3) == minidl::viz::white);
  outline.fill_rect(0, 0, 20, 20, minidl::viz::white);
  outline.draw_rect(1, 1, 10, 6, kInk, 2);
  CHECK(count_color(outline, kInk) == 10 * 6 - 6 * 2);
}

TEST_CASE("lines include both end points and follow the diagonal") {
  Canvas canvas(12, 12);
  canvas.line(2, 5, 9, 5, kInk);
  CHECK(count_color(canvas, kInk) == 8);
  CHECK(canvas.get(2, 5) == kInk);
  CHECK(canvas.get(9, 5) == kInk);

  Canvas diagonal(12, 12);
  diagonal.line(10, 10, 1, 1, kInk);
  CHECK(count_color(diagonal, kInk) == 10);
  for (int i = 1; i <= 10; ++i) CHECK(diagonal.get(i, i) == kInk);

  Canvas thick(12, 12);
  thick.line(2, 6, 9, 6, kInk, 3);
  const InkBox box = ink_box(thick);
  CHECK(box.height() == 3);
  CHECK(box.top == 5);
  CHECK(box.width() == 10);

  Canvas dashed(40, 3);
  dashed.dashed_line(0, 1, 39, 1, kInk, 6, 4);
  CHECK(dashed.get(0, 1) == kInk);
  CHECK(dashed.get(5, 1) == kInk);
  CHECK(dashed.get(7, 1) == minidl::viz::white);
  CHECK(count_color(dashed, kInk) == 24);
}

TEST_CASE("font: every visible glyph has ink and no two glyphs look the same") {
  namespace font = minidl::viz::font;
  std::set<std::vector<std::uint8_t>> seen;
  for (char c = '!'; c <= '~'; ++c) {
    const std::uint8_t* rows = font::glyph(c);
    std::vector<std::uint8_t> copy(rows, rows + font::kGlyphHeight);
    bool any = false;
    for (std::uint8_t row : copy) {
      CHECK((row & ~0x1Fu) == 0u);  // only the 5 glyph columns are used
      any = any || row != 0;
    }
    CHECK_MESSAGE(any, "glyph '" << c << "' is blank");
    CHECK_MESSAGE(seen.insert(copy).second, "glyph '" << c << "' duplicates another");
  }
  for (int row = 0; row < font::kGlyphHeight; ++row) CHECK(font::glyph(' ')[row] == 0);
  // Bytes outside printable ASCII are shown as '?'.
  CHECK(font::glyph('\n') == font::glyph('?'));
  CHECK(font::glyph(static_cast<char>(200)) == font::glyph('?'));
}

TEST_CASE("text_width and text_height match the drawn extent at scales 1 to 3") {
  // 'M' inks its first column and 'g' its last column and the descender row,
  // 'M' also the top row, so the ink box is the whole text box.
  for (int scale = 1; scale <= 3; ++scale) {
    CAPTURE(scale);
    for (const std::string s : {"Mg", "Mxyzg", "M0.985g"}) {
      CAPTURE(s);
      Canvas canvas(200, 60);
      canvas.text(7, 9, s, kInk, scale);
      const InkBox box = ink_box(canvas);
      CHECK(box.left == 7);
      CHECK(box.top == 9);
      CHECK(box.width() == Canvas::text_width(s, scale));
      CHECK(box.height() == Canvas::text_height(scale));
    }
  }
  CHECK(Canvas::text_width("", 2) == 0);
  CHECK(Canvas::text_width("ab", 2) == 2 * Canvas::text_width("ab", 1));
  CHECK_THROWS_AS(Canvas::text_width("x", 0), minidl::Error);
}

TEST_CASE("text_vertical is rotated: box swapped, first character at the bottom") {
  for (int scale = 1; scale <= 3; ++scale) {
    CAPTURE(scale);
    Canvas canvas(60, 200);
    canvas.text_vertical(5, 11, "Mxyzg", kInk, scale);
    const InkBox box = ink_box(canvas);
    CHECK(box.left == 5);
    CHECK(box.top == 11);
    CHECK(box.width() == Canvas::text_height(scale));
    CHECK(box.height() == Canvas::text_width("Mxyzg", scale));
  }
  // "M" followed by blanks: its ink must be at the bottom of the box, and the
  // top of the glyph (its first row) must face left.
  Canvas canvas(20, 40);
  canvas.text_vertical(0, 0, "M  ", kInk);
  const InkBox box = ink_box(canvas);
  CHECK(box.bottom == Canvas::text_width("M  ", 1) - 1);
  CHECK(box.top == Canvas::text_width("M  ", 1) - 5);
  CHECK(box.left == 0);
  CHECK(box.right == 6);  // 'M' has ink in rows 0..6 only
}

TEST_CASE("blit_gray repeats each source pixel as a scale x scale block") {
  const std::uint8_t image[] = {0, 255, 128, 7, 9, 11};  // 3 wide, 2 tall
  Canvas canvas(20, 20, Color{50, 60, 70});
  canvas.blit_gray(image, 3, 2, 4, 5, 3);
  CHECK(canvas.get(4, 5) == Color{0, 0, 0});
  CHECK(canvas.get(6, 7) == Color{0, 0, 0});
  CHECK(canvas.get(7, 5) == Color{255, 255, 255});
  CHECK(canvas.get(12, 7) == Color{128, 128, 128});
  CHECK(canvas.get(4, 8) == Color{7, 7, 7});
  CHECK(canvas.get(12, 10) == Color{11, 11, 11});
  CHECK(canvas.get(13, 10) == Color{50, 60, 70});
  CHECK(canvas.get(12, 11) == Color{50, 60, 70});
  const InkBox box = ink_box(canvas, Color{50, 60, 70});
  CHECK(box.width() == 9);
  CHECK(box.height() == 6);
  // Partly off the canvas is fine.
  canvas.blit_gray(image, 3, 2, 18, 18, 3);
  CHECK(canvas.get(19, 19) == Color{0, 0, 0});
}

TEST_CASE("save_png writes a PNG that reads back with the same size and pixels") {
  TempDir dir;
  const fs::path file = dir.path / "canvas.png";
  Canvas canvas(37, 21);
  canvas.set(36, 20, kInk);
  canvas.fill_rect(0, 0, 3, 2, minidl::viz::blue);
  canvas.save_png(file.string());

  const PngSize size = png_size(file);
  CHECK(size.width == 37);
  CHECK(size.height == 21);
  const Canvas loaded = load_png(file);
  CHECK(loaded.pixels() == canvas.pixels());

  // Saving again replaces the file and leaves nothing else in the directory.
  Canvas other(8, 9);
  other.save_png(file.string());
  CHECK(png_size(file).width == 8);
  CHECK(dir.listing() == std::vector<std::string>{"canvas.png"});
}

TEST_CASE("save_png replaces the file by renaming, never by rewriting it in place") {
  // A second hard link to the old file keeps the old bytes only if the new
  // picture arrived as a new file renamed over the name.
  TempDir dir;
  const fs::path file = dir.path / "picture.png";
  const fs::path other_name = dir.path / "old_link.png";
  Canvas(3, 5).save_png(file.string());
  fs::create_hard_link(file, other_name);
  Canvas(6, 2).save_png(file.string());
  CHECK(png_size(file).width == 6);
  CHECK(png_size(other_name).width == 3);
}

TEST_CASE("save_png into a missing directory throws an Error naming the path") {
  TempDir dir;
  const fs::path file = dir.path / "no_such_dir" / "picture.png";
  Canvas canvas(4, 4);
  CHECK_ERROR(canvas.save_png(file.string()), file.string(), "No such file");
  CHECK_FALSE(fs::exists(file));
  CHECK(dir.listing().empty());

  // The plot helpers report the same way.
  const fs::path curves = dir.path / "missing" / "curves.png";
  CHECK_THROWS_WITH_AS(minidl::viz::save_training_curves_png(curves.string(), {}, {}, 0),
                       doctest::Contains(curves.string().c_str()), minidl::Error);
  const fs::path confusion = dir.path / "missing" / "confusion.png";
  CHECK_THROWS_WITH_AS(minidl::viz::save_confusion_matrix_png(
                           confusion.string(), std::vector<std::int64_t>(4, 3), 2, {}),
                       doctest::Contains(confusion.string().c_str()), minidl::Error);
  const fs::path grid = dir.path / "missing" / "grid.png";
  const std::vector<minidl::viz::Thumbnail> thumbnails = {
      {std::vector<std::uint8_t>(28 * 28, 200), 28, 28, "T:1 P:7"}};
  CHECK_THROWS_WITH_AS(minidl::viz::save_image_grid_png(grid.string(), thumbnails, 4, 2, "t"),
                       doctest::Contains(grid.string().c_str()), minidl::Error);
  CHECK(dir.listing().empty());
}

TEST_CASE("tick helpers: nice steps, sensible decimals, non-touching epoch labels") {
  using namespace minidl::viz::detail;
  const ValueTicks accuracy = value_ticks(0.975, 0.995, 6);
  CHECK(accuracy.decimals == 3);
  REQUIRE(accuracy.values.size() == 5);
  CHECK(format_fixed(accuracy.values[2], accuracy.decimals) == "0.985");

  const ValueTicks loss = value_ticks(-0.1, 2.4, 6);
  CHECK(loss.decimals == 1);
  CHECK(format_fixed(loss.values.front(), loss.decimals) == "0.0");
  CHECK(format_fixed(loss.values.back(), loss.decimals) == "2.0");
  CHECK(format_fixed(-0.0001, 2) == "0.00");

  const ValueRange constant = padded_value_range({{"", {0.5, 0.5}, minidl::viz::blue}});
  CHECK(constant.lo < 0.5);
  CHECK(constant.hi > 0.5);
  const ValueRange only_nan = padded_value_range({{"", {std::nan("")}, minidl::viz::blue}});
  CHECK(only_nan.lo < only_nan.hi);

  CHECK(epoch_ticks(12, 47.0, 46) == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(epoch_ticks(12, 30.0, 46) == std::vector<int>{2, 4, 6, 8, 10, 12});
  const std::vector<int> long_run = epoch_ticks(100, 5.6, 46);
  CHECK(long_run.front() == 10);
  CHECK(long_run.back() == 100);
  CHECK(epoch_ticks(0, 10.0, 10).empty());
}

TEST_CASE("line chart: curves, NaN gaps, a single epoch and the best marker") {
  using minidl::viz::Series;
  const Color curve{10, 180, 90};
  auto render = [&](const std::vector<Series>& series, int mark) {
    Canvas canvas(700, 560);
    minidl::viz::draw_line_chart(canvas, 0, 0, 700, 560, "t", "epoch", "loss", series, mark);
    return canvas;
  };
  // Unlabelled series have no legend swatch, so every pixel of their colour is data.
  CHECK(count_color(render({{"", {std::nan(""), std::nan("")}, curve}}, 0), curve) == 0);
  CHECK(count_color(render({{"", {0.3}, curve}}, 1), curve) > 0);
  CHECK(count_color(render({{"", {0.3, 0.3, 0.3}, curve}}, 0), curve) > 0);
  const int with_gap = count_color(render({{"", {1.0, std::nan(""), 0.5}, curve}}, 0), curve);
  const int without_gap = count_color(render({{"", {1.0, 0.75, 0.5}, curve}}, 0), curve);
  CHECK(with_gap > 0);
  CHECK(with_gap < without_gap);
  // A NaN breaks the line: the same picture as two separate pieces.
  const double nan = std::nan("");
  CHECK(render({{"", {1.0, nan, 0.5}, curve}}, 0).pixels() ==
        render({{"", {1.0, nan, nan}, curve}, {"", {nan, nan, 0.5}, curve}}, 0).pixels());

  const std::vector<Series> data = {{"train", {0.9, 0.5, 0.3, 0.2}, curve}};
  CHECK(render(data, 3).pixels() != render(data, 0).pixels());
  CHECK(render(data, 3).pixels() != render(data, 2).pixels());
  // The dashed marker moves with the epoch, one slot per epoch. Compared with
  // a marker at epoch 1 (same layout), a marker at k changes two narrow
  // columns below the label band: epoch 1's and epoch k's.
  const Canvas at_first = render(data, 1);
  auto changed_columns = [&](int mark) {
    const Canvas marked = render(data, mark);
    std::set<int> columns;
    for (int y = 200; y < 400; ++y) {
      for (int x = 0; x < marked.width(); ++x) {
        if (marked.get(x, y) != at_first.get(x, y)) columns.insert(x);
      }
    }
    return columns;
  };
  const std::set<int> at2 = changed_columns(2), at3 = changed_columns(3), at4 = changed_columns(4);
  REQUIRE(at2.size() >= 2);
  REQUIRE(at3.size() >= 2);
  REQUIRE(at4.size() >= 2);
  CHECK(at2.size() <= 6);
  CHECK(*at2.begin() == *at3.begin());
  const int slot = *at3.rbegin() - *at2.rbegin();
  CHECK(slot > 50);
  CHECK(std::abs(*at4.rbegin() - *at3.rbegin() - slot) <= 1);
  CHECK(std::abs(*at2.rbegin() - *at2.begin() - slot) <= 3);
  // ...and sits on the vertical grid line of its epoch.
  std::vector<int> grid_columns;
  for (int x = 0; x < at_first.width(); ++x) {
    int grid_pixels = 0;
    for (int y = 200; y < 400; ++y) grid_pixels += at_first.get(x, y) == minidl::viz::light_gray;
    if (grid_pixels >= 50) grid_columns.push_back(x);
  }
  REQUIRE(grid_columns.size() == 4);
  CHECK(std::abs(*at3.rbegin() - grid_columns[2]) <= 1);
  CHECK(std::abs(*at4.rbegin() - grid_columns[3]) <= 1);
  CHECK_THROWS_AS(render(data, 5), minidl::Error);
  CHECK_THROWS_AS(render(data, -1), minidl::Error);

  // Everything stays inside the panel it was given.
  Canvas wide(900, 600, Color{1, 1, 1});
  minidl::viz::draw_line_chart(wide, 100, 20, 700, 560, "Loss per epoch", "epoch", "loss", data, 2);
  const InkBox box = ink_box(wide, Color{1, 1, 1});
  CHECK(box.left >= 100);
  CHECK(box.right < 800);
  CHECK(box.top >= 20);
  CHECK(box.bottom < 580);
}

TEST_CASE("save_training_curves_png writes a 1400x560 PNG") {
  TempDir dir;
  const fs::path file = dir.path / "curves.png";
  const std::vector<minidl::viz::Series> loss = {
      {"train", {2.3, 0.6, 0.3, 0.2}, minidl::viz::blue},
      {"validation", {2.1, 0.7, 0.35, 0.3}, minidl::viz::orange}};
  const std::vector<minidl::viz::Series> accuracy = {
      {"train", {0.3, 0.9, 0.95, 0.97}, minidl::viz::blue},
      {"validation", {0.35, 0.88, 0.94, 0.955}, minidl::viz::orange}};
  minidl::viz::save_training_curves_png(file.string(), loss, accuracy, 4);
  const PngSize size = png_size(file);
  CHECK(size.width == 1400);
  CHECK(size.height == 560);
  CHECK(count_color(load_png(file), minidl::viz::orange) > 0);
}

TEST_CASE("save_confusion_matrix_png: heatmap with every count written") {
  TempDir dir;
  const fs::path file = dir.path / "confusion.png";
  const int n = 10;
  std::vector<std::int64_t> counts(n * n, 0);
  for (int i = 0; i < n; ++i) counts[i * n + i] = 900 + 23 * i;
  counts[4 * n + 9] = 17;
  minidl::viz::save_confusion_matrix_png(file.string(), counts, n, {});
  const PngSize size = png_size(file);
  const Canvas image = load_png(file);
  CHECK(size.width == image.width());
  CHECK(size.height == image.height());
  // At least n cells wide and tall, each wide enough for "1107" at scale 2.
  CHECK(size.width > n * Canvas::text_width("1107", 2));
  CHECK(size.height > n * Canvas::text_width("1107", 2));
  // The largest count gets the darkest blue, a cell's worth of it.
  const Color darkest = minidl::viz::detail::heat_color(1.0);
  CHECK(count_color(image, darkest) >
        Canvas::text_width("1107", 2) * Canvas::text_width("1107", 2));
  // Light text on the dark cells.
  CHECK(minidl::viz::detail::text_color_on(darkest) == minidl::viz::white);
  CHECK(minidl::viz::detail::text_color_on(minidl::viz::white) != minidl::viz::white);
  // One wrong prediction is visibly tinted, not white.
  CHECK(minidl::viz::detail::heat_color(0.12) != minidl::viz::white);

  CHECK_THROWS_AS(minidl::viz::save_confusion_matrix_png(file.string(), counts, 9, {}),
                  minidl::Error);
  CHECK_THROWS_AS(minidl::viz::save_confusion_matrix_png(file.string(), counts, n, {"a", "b"}),
                  minidl::Error);
  counts[3] = -1;
  CHECK_THROWS_AS(minidl::viz::save_confusion_matrix_png(file.string(), counts, n, {}),
                  minidl::Error);
  CHECK(dir.listing() == std::vector<std::string>{"confusion.png"});
}

TEST_CASE("save_confusion_matrix_png: the caller's title, e.g. naming the data set, is drawn") {
  TempDir dir;
  std::vector<std::int64_t> counts(100, 3);
  const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                          "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                          "Bag",         "Ankle boot"};
  const fs::path plain = dir.path / "plain.png", named = dir.path / "named.png";
  minidl::viz::save_confusion_matrix_png(plain.string(), counts, 10, names);
  minidl::viz::save_confusion_matrix_png(named.string(), counts, 10, names,
                                         "Confusion matrix, Fashion-MNIST");
  const Canvas a = load_png(plain), b = load_png(named);
  REQUIRE(a.width() == b.width());
  // Only the title differs, and the longer one has more black text.
  CHECK(count_color(b, minidl::viz::black) > count_color(a, minidl::viz::black));
}

TEST_CASE("save_image_grid_png: every thumbnail upscaled in full, in a grid") {
  TempDir dir;
  const fs::path file = dir.path / "grid.png";
  // A gray level nothing else in the picture uses, to count thumbnail pixels.
  const std::uint8_t level = 77;
  std::vector<minidl::viz::Thumbnail> images;
  for (int i = 0; i < 10; ++i) {
    images.push_back({std::vector<std::uint8_t>(28 * 28, level), 28, 28, "T:4 P:9"});
  }
  minidl::viz::save_image_grid_png(file.string(), images, 4, 3, "Misclassified");
  const PngSize size = png_size(file);
  CHECK(size.width >= 4 * 28 * 3);
  CHECK(size.height >= 3 * 28 * 3);
  const Canvas image = load_png(file);
  CHECK(count_color(image, Color{level, level, level}) == 10 * (28 * 3) * (28 * 3));

  // No images is a picture that says so, not an error.
  minidl::viz::save_image_grid_png(file.string(), {}, 4, 3, "Misclassified");
  CHECK(png_size(file).width > 0);

  images[2].pixels.pop_back();
  CHECK_THROWS_AS(minidl::viz::save_image_grid_png(file.string(), images, 4, 3, "x"),
                  minidl::Error);
  CHECK_THROWS_AS(minidl::viz::save_image_grid_png(file.string(), {}, 0, 3, "x"), minidl::Error);
  CHECK(dir.listing() == std::vector<std::string>{"grid.png"});
}

}  // namespace test_viz
