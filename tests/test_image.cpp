// Tests of image loading/saving and of to_mnist_format: bad files name the file and the
// problem; a digit drawn anywhere, at any size, in either polarity comes out MNIST-like.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "minidl/data/digit_preprocess.hpp"
#include "minidl/io/image.hpp"
#include "photo_digits.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_image {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

using minidl::testing::read_all;
using minidl::testing::write_all;

// Scratch folders of this file are named minidl_test_image_<pid>_<n>.
struct TempDir : minidl::testing::TempDir {
  TempDir() : minidl::testing::TempDir("minidl_test_image_") {}
};

// Draws a "2"-like digit (strokes in a unit box, aspect 0.7:1) into a W x H
// canvas: box at (left, top) of height `size`, antialiased by 4x4 supersampling,
// plus optional uniform noise of +-noise grey levels.
minidl::GrayImage draw_digit(int W, int H, double left, double top, double size, int paper, int ink,
                             int noise = 0) {
  struct Seg {
    double x0, y0, x1, y1;
  };
  const Seg strokes[] = {{0.05, 0.25, 0.3, 0.02},
                         {0.3, 0.02, 0.65, 0.05},
                         {0.65, 0.05, 0.68, 0.35},
                         {0.68, 0.35, 0.05, 0.95},
                         {0.05, 0.95, 0.7, 0.95}};
  const double half_width = 0.07 * size;
  minidl::GrayImage img{W, H, Bytes(static_cast<std::size_t>(W) * H)};
  unsigned seed = 12345;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      int covered = 0;
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) {
          const double px = x + (sx + 0.5) / 4, py = y + (sy + 0.5) / 4;
          for (const Seg& s : strokes) {
            const double ax = left + s.x0 * size, ay = top + s.y0 * size;
            const double bx = left + s.x1 * size, by = top + s.y1 * size;
            const double t = std::clamp(((px - ax) * (bx - ax) + (py - ay) * (by - ay)) /
                                            ((bx - ax) * (bx - ax) + (by - ay) * (by - ay)),
                                        0.0, 1.0);
            if (std::hypot(px - ax - t * (bx - ax), py - ay - t * (by - ay)) < half_width) {
              ++covered;
              break;
            }
          }
        }
      double v = paper + (ink - paper) * covered / 16.0;
      if (noise) {
        seed = seed * 1103515245u + 12345u;
        v += static_cast<int>((seed >> 16) % (2 * noise + 1)) - noise;
      }
      img.pixels[static_cast<std::size_t>(y) * W + x] =
          static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  return img;
}

struct Stats {
  double cx = 0, cy = 0;
  int box_w = 0, box_h = 0, peak = 0;
};

Stats stats(const Bytes& d) {
  Stats s;
  double mass = 0;
  int x0 = 28, y0 = 28, x1 = -1, y1 = -1;
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const int v = d[static_cast<std::size_t>(y * 28 + x)];
      mass += v, s.cx += v * x, s.cy += v * y, s.peak = std::max(s.peak, v);
      if (v > 32)
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  s.cx /= mass, s.cy /= mass;
  s.box_w = x1 - x0 + 1, s.box_h = y1 - y0 + 1;
  return s;
}

double mean_abs_diff(const Bytes& a, const Bytes& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(int{a[i]} - int{b[i]});
  return sum / static_cast<double>(a.size());
}

// The smallest mean |difference| of two 28x28 images with b moved by up to a
// pixel either way: centring by mass rounds to whole pixels, and a stroke
// moved by one pixel differs everywhere.
double aligned_diff(const Bytes& a, const Bytes& b) {
  double best = 255;
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      double sum = 0;
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
          const int sx = x + dx, sy = y + dy;
          const int v = sx < 0 || sy < 0 || sx >= 28 || sy >= 28
                            ? 0
                            : b[static_cast<std::size_t>(sy * 28 + sx)];
          sum += std::abs(int{a[static_cast<std::size_t>(y * 28 + x)]} - v);
        }
      best = std::min(best, sum / 784);
    }
  return best;
}

}  // namespace

TEST_CASE("image: unreadable files name the file and the problem") {
  TempDir dir;
  CHECK_ERROR(minidl::load_gray_image(dir.file("none.png")), dir.file("none.png"),
              "does not exist");
  CHECK_ERROR(minidl::load_gray_image(dir.path.string()), dir.path.string(), "is a directory");
  write_all(dir.file("empty.png"), "");
  CHECK_ERROR(minidl::load_gray_image(dir.file("empty.png")), dir.file("empty.png"),
              "file is empty");
  write_all(dir.file("notes.png"), "this is a text file, not a picture\n");
  CHECK_ERROR(minidl::load_gray_image(dir.file("notes.png")), dir.file("notes.png"),
              "not an image minidl can read; use PNG, JPEG, BMP or PGM/PPM");
  // Formats stb_image would decode but minidl does not hand it: GIF and TGA.
  write_all(dir.file("a.gif"), std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14));
  CHECK_ERROR(minidl::load_gray_image(dir.file("a.gif")), dir.file("a.gif"),
              "not an image minidl can read");
  write_all(dir.file("a.tga"), std::string("\0\0\3\0\0\0\0\0\0\0\0\0\1\0\1\0\x08\0\x7f", 19));
  CHECK_ERROR(minidl::load_gray_image(dir.file("a.tga")), dir.file("a.tga"),
              "not an image minidl can read");

  // A PNG whose header claims 20000 x 100 pixels: refused before decoding.
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\0\0\0\x0dIHDR", 8) + std::string("\0\0\x4e\x20\0\0\0\x64", 8) +
         std::string("\x08\0\0\0\0", 5) + std::string("\0\0\0\0", 4);
  write_all(dir.file("huge.png"), png);
  CHECK_ERROR(minidl::load_gray_image(dir.file("huge.png")), dir.file("huge.png"),
              "20000x100 pixels is too large");

  minidl::GrayImage img = draw_digit(64, 48, 10, 5, 36, 255, 0);
  minidl::write_gray_png(dir.file("ok.png"), img);
  const std::string bytes = read_all(dir.file("ok.png"));
  write_all(dir.file("cut.png"), bytes.substr(0, bytes.size() / 2));
  CHECK_ERROR(minidl::load_gray_image(dir.file("cut.png")), dir.file("cut.png"),
              "PNG chunk 'IDAT' at byte 33 claims");
  write_all(dir.file("no_end.png"), bytes.substr(0, bytes.size() - 12));  // IEND cut off
  CHECK_ERROR(minidl::load_gray_image(dir.file("no_end.png")), dir.file("no_end.png"),
              "PNG ends at byte 453, before its IEND chunk");

  // A chunk claiming a gigabyte in a file of a few bytes is refused before stb_image sizes a
  // buffer by it. The 64x48 image's own chunks come first, the claim is inserted before IEND.
  std::string claim = bytes.substr(0, bytes.size() - 12);
  claim +=
      std::string("\x40\0\0\0IDAT", 8) + std::string(16, '\0') + bytes.substr(bytes.size() - 12);
  write_all(dir.file("claim.png"), claim);
  CHECK_ERROR(minidl::load_gray_image(dir.file("claim.png")), dir.file("claim.png"),
              "claims 1073741824 bytes of data, but only 24 remain");
  // The chunk check passes every chunk of a valid file through to the decoder.
  CHECK(minidl::load_gray_image(dir.file("ok.png")).pixels == img.pixels);
}

TEST_CASE("image: PNG round trip, atomic write, PGM reading") {
  TempDir dir;
  const minidl::GrayImage img = draw_digit(57, 31, 3, 2, 26, 200, 20);
  minidl::write_gray_png(dir.file("digit.png"), img);
  const minidl::GrayImage back = minidl::load_gray_image(dir.file("digit.png"));
  CHECK(back.width == 57);
  CHECK(back.height == 31);
  CHECK(back.pixels == img.pixels);
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  CHECK(files == 1);  // no temporary file left behind

  write_all(dir.file("p.pgm"),
            std::string("P5\n3 2\n255\n") + std::string("\x00\x10\x20\x30\x40\xff", 6));
  const minidl::GrayImage pgm = minidl::load_gray_image(dir.file("p.pgm"));
  CHECK(pgm.width == 3);
  CHECK(pgm.pixels == Bytes{0x00, 0x10, 0x20, 0x30, 0x40, 0xff});

  // 16-bit samples are big-endian; every sample is scaled from 0..maxval to 0..255.
  write_all(dir.file("p16.pgm"), std::string("P5\n# sixteen bits\n4 1\n65535\n") +
                                     std::string("\x00\x00\x80\x00\xff\xff\x12\x34", 8));
  CHECK(minidl::load_gray_image(dir.file("p16.pgm")).pixels == Bytes{0, 128, 255, 18});
  write_all(dir.file("p16.ppm"),
            std::string("P6 2 1 65535\n") + std::string("\xff\xff\0\0\0\0\0\0\xff\xff\0\0", 12));
  CHECK(minidl::load_gray_image(dir.file("p16.ppm")).pixels == Bytes{76, 149});  // red, green
  write_all(dir.file("p15.pgm"), std::string("P5 3 1 15\n\x00\x0f\x08", 13));
  CHECK(minidl::load_gray_image(dir.file("p15.pgm")).pixels == Bytes{0, 255, 136});
  write_all(dir.file("p300.pgm"), std::string("P5 2 1 300\n\x01\x2c\x00\x96", 15));
  CHECK(minidl::load_gray_image(dir.file("p300.pgm")).pixels == Bytes{255, 128});
  // Bad headers and data, each named.
  write_all(dir.file("short.pgm"), std::string("P5 3 2 255\n\x01\x02", 13));
  CHECK_ERROR(minidl::load_gray_image(dir.file("short.pgm")), dir.file("short.pgm"),
              "PGM/PPM data has 2 bytes, 3x2 pixels need 6");
  write_all(dir.file("wide.pgm"), "P5 99999999999999999999 2 255\n");
  CHECK_ERROR(minidl::load_gray_image(dir.file("wide.pgm")), dir.file("wide.pgm"),
              "width is larger than 16384");
  write_all(dir.file("above.pgm"), std::string("P5 1 1 10\n\x0b", 11));
  CHECK_ERROR(minidl::load_gray_image(dir.file("above.pgm")), dir.file("above.pgm"),
              "sample 11 is above the maximum value 10");
  write_all(dir.file("zero.pgm"), "P5 0 1 255\n");
  CHECK_ERROR(minidl::load_gray_image(dir.file("zero.pgm")), dir.file("zero.pgm"),
              "must be positive");
  write_all(dir.file("text.pgm"), "P5 3 x 255\n");
  CHECK_ERROR(minidl::load_gray_image(dir.file("text.pgm")), dir.file("text.pgm"),
              "expected the height");

  minidl::GrayImage bad{4, 4, Bytes(15)};
  CHECK_ERROR(minidl::write_gray_png(dir.file("bad.png"), bad), dir.file("bad.png"),
              "4x4 with 15 pixels");
  CHECK(!fs::exists(dir.file("bad.png")));
}

TEST_CASE("to_mnist_format: blank or malformed images are refused") {
  CHECK_ERROR(minidl::to_mnist_format(minidl::GrayImage{40, 30, Bytes(1200, 250)}),
              "no digit found", "40x30 image is blank");
  CHECK_ERROR(minidl::to_mnist_format(draw_digit(40, 30, 0, 0, 20, 128, 140)), "no digit found");
  CHECK_ERROR(minidl::to_mnist_format(minidl::GrayImage{10, 10, Bytes(99)}),
              "10x10 holds 99 pixels");
  CHECK_ERROR(minidl::to_mnist_format(minidl::GrayImage{}), "0x0");
}

TEST_CASE("to_mnist_format: a digit anywhere, any size, either polarity lands centred") {
  // Dark ink on light paper, in the corner of a large picture.
  const Bytes a = minidl::to_mnist_format(draw_digit(240, 180, 130, 40, 120, 235, 30));
  const Stats sa = stats(a);
  CHECK(std::abs(sa.cx - 14) <= 0.5);
  CHECK(std::abs(sa.cy - 14) <= 0.5);
  CHECK(sa.box_h == 20);  // the taller side fills 20 pixels
  CHECK(sa.box_w >= 13);
  CHECK(sa.box_w <= 15);
  CHECK(sa.peak == 255);
  for (int i = 0; i < 28; ++i) {  // a 20-pixel digit centred in 28 leaves the rim black
    CHECK(a[static_cast<std::size_t>(i)] == 0);
    CHECK(a[static_cast<std::size_t>(27 * 28 + i)] == 0);
  }

  // Light ink on dark ground, small, low contrast and noisy, elsewhere in a tall picture.
  const Bytes b = minidl::to_mnist_format(draw_digit(90, 300, 5, 220, 45, 20, 170, 6));
  const Stats sb = stats(b);
  CHECK(std::abs(sb.cx - 14) <= 0.5);
  CHECK(std::abs(sb.cy - 14) <= 0.5);
  CHECK(sb.box_h == 20);
  MESSAGE("mean |difference| between the two renderings: ", mean_abs_diff(a, b));
  CHECK(mean_abs_diff(a, b) < 12);

  // Scaled up from a tiny drawing.
  const Bytes c = minidl::to_mnist_format(draw_digit(30, 30, 10, 10, 12, 255, 0));
  CHECK(std::abs(stats(c).cy - 14) <= 0.5);
  CHECK(stats(c).box_h == 20);
  CHECK(mean_abs_diff(a, c) < 20);

  // An image that already is MNIST-like comes back unchanged.
  const minidl::GrayImage already{28, 28, a};
  CHECK(minidl::to_mnist_format(already) == a);
}

TEST_CASE("to_mnist_format: a dark rectangle near the top-left of a white 100x60 picture") {
  // A 30x20 rectangle of ink at (6, 5) on white paper.
  minidl::GrayImage img{100, 60, Bytes(100 * 60, 250)};
  for (int y = 5; y < 25; ++y)
    for (int x = 6; x < 36; ++x) img.pixels[static_cast<std::size_t>(y * 100 + x)] = 20;
  const Bytes out = minidl::to_mnist_format(img);
  REQUIRE(out.size() == 28u * 28u);

  // White ink on black.
  CHECK(out[0] == 0);
  CHECK(out[27] == 0);
  CHECK(out[27 * 28] == 0);
  CHECK(out[28 * 28 - 1] == 0);
  CHECK(out[14 * 28 + 14] == 255);

  // Every inked pixel inside 20x20, the 3:2 shape kept, the mass on (14, 14).
  int x0 = 28, y0 = 28, x1 = -1, y1 = -1;
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x)
      if (out[static_cast<std::size_t>(y * 28 + x)] != 0)
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  const int w = x1 - x0 + 1, h = y1 - y0 + 1;
  CHECK(w <= 20);
  CHECK(h <= 20);
  CHECK(w >= 19);
  CHECK(std::abs(2 * w - 3 * h) <= 3);
  const Stats s = stats(out);
  CHECK(std::abs(s.cx - 14) <= 1.0);
  CHECK(std::abs(s.cy - 14) <= 1.0);

  // The same rectangle in the bottom-right corner gives the same result.
  minidl::GrayImage moved{100, 60, Bytes(100 * 60, 250)};
  for (int y = 35; y < 55; ++y)
    for (int x = 64; x < 94; ++x) moved.pixels[static_cast<std::size_t>(y * 100 + x)] = 20;
  CHECK(minidl::to_mnist_format(moved) == out);
}

TEST_CASE("image: PNG signature and size on disk; a failed write leaves no file") {
  TempDir dir;
  const std::string path = dir.file("digit.png");
  minidl::write_gray_png(path, minidl::GrayImage{13, 7, Bytes(13 * 7, 77)});
  CHECK(read_all(path).compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
  int w = 0, h = 0, channels = 0;
  REQUIRE(stbi_info(path.c_str(), &w, &h, &channels) == 1);
  CHECK(w == 13);
  CHECK(h == 7);
  CHECK(channels == 1);

  // Replacing the picture, then failing to: the last good one stays.
  minidl::write_gray_png(path, minidl::GrayImage{2, 3, Bytes(6, 9)});
  const std::string good = read_all(path);
  CHECK_ERROR(minidl::write_gray_png(path, minidl::GrayImage{2, 3, Bytes(5)}), path);
  CHECK(read_all(path) == good);
  CHECK(minidl::load_gray_image(path).pixels == Bytes(6, 9));

  const std::string nowhere = dir.file("no-such-folder/digit.png");
  CHECK_ERROR(minidl::write_gray_png(nowhere, minidl::GrayImage{2, 2, Bytes(4)}), nowhere,
              "cannot write");
  CHECK(dir.listing() == std::vector<std::string>{"digit.png"});
}

namespace {

using minidl::testing::Coverage;
using minidl::testing::Shot;

// The preprocessed photo must match the same drawing preprocessed from clean
// white paper: centred, as large, nearly the same pixels.
void check_like_clean(const Coverage& drawing, const Shot& shot) {
  const Bytes clean = minidl::to_mnist_format(minidl::testing::photograph(drawing, Shot{}));
  const Bytes got = minidl::to_mnist_format(minidl::testing::photograph(drawing, shot));
  const Stats s = stats(got), c = stats(clean);
  CHECK(std::abs(s.cx - 14) <= 1.0);
  CHECK(std::abs(s.cy - 14) <= 1.0);
  CHECK(std::abs(s.box_w - c.box_w) <= 1);
  CHECK(std::abs(s.box_h - c.box_h) <= 1);
  CHECK(std::max(s.box_w, s.box_h) >= 19);
  CHECK(aligned_diff(clean, got) < 14);
}

}  // namespace

TEST_CASE("to_mnist_format: sensor grain and uneven light on the paper are not ink") {
  // Digits of the stroke font, thin and thick pen, small and large, anywhere
  // on the picture, under grain of 4 to 8 grey levels and a gradient of light.
  const struct {
    int W, H;
    double left, top, cell, half_width;
    Shot shot;
  } cases[] = {
      {320, 240, 40, 30, 14, 0.25, {128, 0, 0, 90, false, 6, 1}},
      {320, 240, 200, 120, 8, 0.55, {150, 60, 0, 110, false, 8, 2}},
      {240, 320, 20, 180, 12, 0.3, {200, -40, 50, 150, false, 4, 3}},
      {400, 300, 150, 40, 30, 0.4, {120, 50, -50, 100, false, 8, 4}},
      {300, 300, 60, 60, 6, 0.5, {180, 0, 70, 140, false, 5, 5}},
      {320, 240, 100, 50, 18, 0.3, {40, 20, 0, 150, true, 7, 6}},  // chalk on a board
  };
  int k = 0;
  for (const auto& c : cases)
    for (int d = 0; d < 10; ++d, ++k) {
      CAPTURE(k);
      CAPTURE(d);
      Shot shot = c.shot;
      shot.seed = shot.seed * 100 + static_cast<std::uint64_t>(d);
      check_like_clean(
          minidl::testing::draw_font_digit(d, c.W, c.H, c.left, c.top, c.cell, c.half_width), shot);
    }
}

TEST_CASE("to_mnist_format: grain alone, or a gradient alone, is a blank picture") {
  const Coverage none{320, 240, std::vector<float>(320 * 240)};
  for (double grain : {4.0, 8.0})
    CHECK_ERROR(
        minidl::to_mnist_format(
            minidl::testing::photograph(none, Shot{128, 0, 0, 0, false, grain, 7}), "grain.png"),
        "grain.png: no digit found", "image is blank");
  CHECK_ERROR(
      minidl::to_mnist_format(minidl::testing::photograph(none, Shot{150, 80, -60, 0, false, 0, 7}),
                              "light.png"),
      "light.png: no digit found");
}

TEST_CASE("to_mnist_format: a speck or a mark elsewhere on the page does not move the digit") {
  Coverage drawing = minidl::testing::draw_font_digit(7, 320, 240, 120, 60, 14, 0.35);
  const Bytes alone = minidl::to_mnist_format(minidl::testing::photograph(drawing, Shot{}));
  // A blot of 3x3 pixels in a corner and a short dash far to the right.
  for (int y = 10; y < 13; ++y)
    for (int x = 10; x < 13; ++x) drawing.cover[static_cast<std::size_t>(y) * 320 + x] = 1;
  for (int x = 290; x < 300; ++x) drawing.cover[static_cast<std::size_t>(200) * 320 + x] = 1;
  CHECK(minidl::to_mnist_format(minidl::testing::photograph(drawing, Shot{})) == alone);
}

TEST_CASE(
    "image: a transparent canvas export (black ink on transparent black) reads as ink on white") {
  TempDir dir;
  const Coverage drawing = minidl::testing::draw_font_digit(3, 200, 160, 60, 20, 16, 0.4);
  std::vector<std::uint8_t> rgba(200 * 160 * 4, 0);  // transparent black
  for (std::size_t i = 0; i < drawing.cover.size(); ++i)
    rgba[4 * i + 3] = static_cast<std::uint8_t>(std::lround(255 * drawing.cover[i]));
  REQUIRE(stbi_write_png(dir.file("canvas.png").c_str(), 200, 160, 4, rgba.data(), 200 * 4));
  const minidl::GrayImage img = minidl::load_gray_image(dir.file("canvas.png"));
  CHECK(img.pixels[0] == 255);  // the transparent background shows white paper
  minidl::GrayImage paper{200, 160, Bytes(200 * 160)};  // what white paper under the ink shows
  for (std::size_t i = 0; i < paper.pixels.size(); ++i)
    paper.pixels[i] = static_cast<std::uint8_t>(255 - rgba[4 * i + 3]);
  CHECK(img.pixels == paper.pixels);
  CHECK(minidl::to_mnist_format(img, "canvas.png") == minidl::to_mnist_format(paper));

  // White chalk on a transparent layer: composited over black instead.
  for (std::size_t i = 0; i < drawing.cover.size(); ++i)
    rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = 255;
  REQUIRE(stbi_write_png(dir.file("chalk.png").c_str(), 200, 160, 4, rgba.data(), 200 * 4));
  const minidl::GrayImage chalk = minidl::load_gray_image(dir.file("chalk.png"));
  CHECK(chalk.pixels[0] == 0);
  CHECK(minidl::to_mnist_format(chalk) == minidl::to_mnist_format(paper));

  // Grey with alpha (2 channels) goes the same way.
  std::vector<std::uint8_t> ga(200 * 160 * 2, 0);
  for (std::size_t i = 0; i < drawing.cover.size(); ++i) ga[2 * i + 1] = rgba[4 * i + 3];
  REQUIRE(stbi_write_png(dir.file("ga.png").c_str(), 200, 160, 2, ga.data(), 200 * 2));
  CHECK(minidl::load_gray_image(dir.file("ga.png")).pixels == paper.pixels);
}

TEST_CASE(
    "to_mnist_format: a 12-megapixel photo is reduced first and gives what a small one does") {
  const auto photo = [](int scale) {
    minidl::GrayImage img{400 * scale, 300 * scale,
                          Bytes(static_cast<std::size_t>(400 * scale) * (300 * scale), 190)};
    for (int y = 60 * scale; y < 240 * scale; ++y)  // an L of two thick strokes
      for (int x = 150 * scale; x < 260 * scale; ++x)
        if (x < 180 * scale || y >= 210 * scale)
          img.pixels[static_cast<std::size_t>(y) * img.width + x] = 40;
    return img;
  };
  const minidl::GrayImage big = photo(10);
  const minidl::GrayImage reduced = minidl::detail::reduced_for_ink(big);
  CHECK(std::int64_t{reduced.width} * reduced.height <= minidl::detail::kMaxInkPixels);
  CHECK(reduced.width == 1334);  // blocks of 3x3: 4000 / 3, rounded up
  const Bytes a = minidl::to_mnist_format(big), b = minidl::to_mnist_format(photo(1));
  MESSAGE("mean |difference| from the small photo: ", mean_abs_diff(a, b));
  CHECK(mean_abs_diff(a, b) < 3);
  CHECK(stats(a).box_h == 20);
}

}  // namespace test_image
