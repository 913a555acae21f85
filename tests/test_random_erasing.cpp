// Random erasing (data/random_erasing.hpp): the rectangles drawn lie inside the image with the
// areas and aspect ratios asked for, as often as asked for, keyed by (seed, epoch, image)
// whatever the batch position or thread count; a batch is its crops and flips with exactly
// those rectangles set to the normalised mean.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "minidl/core/parallel.hpp"
#include "minidl/data/crop_flip.hpp"
#include "minidl/data/random_erasing.hpp"

namespace test_random_erasing {

using namespace minidl;

namespace {

constexpr std::int64_t kRows = 12, kCols = 10;

// kRows x kCols images whose pixels are never 0, so that an erased pixel (0) shows.
ImageDataset bright_images(int count) {
  ImageDataset d;
  d.rows = kRows;
  d.cols = kCols;
  for (int i = 0; i < count; ++i) {
    for (std::int64_t p = 0; p < kRows * kCols; ++p)
      d.images.push_back(static_cast<std::uint8_t>(1 + (p * 7 + i) % 250));
    d.labels.push_back(static_cast<std::uint8_t>(i % 10));
  }
  return d;
}

// Pixel values as they are: mean 0, deviation 255.
const Normalization kRaw{0.0f, 1.0f / 255.0f};

}  // namespace

TEST_CASE("draw_erasing: rectangles inside the image, of the areas and shapes asked for") {
  RandomErasing e;
  e.probability = 1;
  int erased = 0, taller = 0, wider = 0;
  const int n = 3000;
  for (int i = 0; i < n; ++i) {
    const ErasingDraw d = draw_erasing(e, 28, 28, 3, 2, static_cast<std::uint64_t>(i));
    if (d.height == 0) continue;
    ++erased;
    CHECK(d.width >= 1);
    CHECK(d.top >= 0);
    CHECK(d.left >= 0);
    CHECK(d.top + d.height <= 28);
    CHECK(d.left + d.width <= 28);
    // Each side is rounded from the drawn one, which is within half a pixel of it: the drawn
    // area (a share of 784 pixels in [0.02, 0.33]) and aspect (in [0.3, 1 / 0.3]) are within
    // what these sides allow.
    const double h = static_cast<double>(d.height), w = static_cast<double>(d.width);
    CHECK((h + 0.5) * (w + 0.5) >= 0.02 * 784);
    CHECK((h - 0.5) * (w - 0.5) <= 0.33 * 784);
    CHECK((h + 0.5) / (w - 0.5) >= 0.3);
    CHECK((h - 0.5) / (w + 0.5) <= 1 / 0.3);
    taller += d.height > d.width;
    wider += d.width > d.height;
  }
  // Ten draws nearly always find a rectangle that fits a 28x28 image.
  CHECK(erased > n * 95 / 100);
  CHECK(taller > n / 4);
  CHECK(wider > n / 4);
}

TEST_CASE("draw_erasing: an image is erased with the probability asked for") {
  RandomErasing e;
  for (double p : {0.0, 0.25, 1.0}) {
    e.probability = p;
    int erased = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) erased += draw_erasing(e, 28, 28, 1, 1, i).height > 0;
    // binomial(4000, p): 6 standard deviations at p = 1/4 are 164; a 28x28 image fits a
    // rectangle within ten draws nearly always.
    CHECK(erased >= p * n - 170);
    CHECK(erased <= p * n + 170);
    if (p == 0) CHECK(erased == 0);
  }
}

TEST_CASE("make_crop_flip_batch: erasing sets exactly the drawn rectangle to the mean") {
  const ImageDataset d = bright_images(16);
  std::vector<std::int64_t> idx(16);
  for (int i = 0; i < 16; ++i) idx[static_cast<std::size_t>(i)] = 15 - i;
  RandomErasing e;
  e.probability = 1;
  const CropFlip aug{2, true};
  Tensor<float> x;
  std::vector<std::int32_t> labels;
  make_crop_flip_batch(d, idx.data(), 16, x, labels, kRaw, &aug, 5, 4, &e);
  int erased_images = 0;
  for (std::int64_t i = 0; i < 16; ++i) {
    const auto image = static_cast<std::uint64_t>(idx[static_cast<std::size_t>(i)]);
    // The crop and flip as they are without erasing...
    std::vector<float> expected(kRows * kCols);
    const CropFlipDraw c = draw_crop_flip(aug, 5, 4, image);
    crop_flip_image(d.image(image), kRows, kCols, 2, c.top, c.left, c.mirror, kRaw,
                    expected.data());
    // ...with the rectangle of (seed, epoch, image) at the mean.
    const ErasingDraw r = draw_erasing(e, kRows, kCols, 5, 4, image);
    erased_images += r.height > 0;
    for (std::int64_t row = 0; row < kRows; ++row)
      for (std::int64_t col = 0; col < kCols; ++col) {
        const bool inside =
            row >= r.top && row < r.top + r.height && col >= r.left && col < r.left + r.width;
        const float want = inside ? 0.0f : expected[static_cast<std::size_t>(row * kCols + col)];
        CHECK(x[i * kRows * kCols + row * kCols + col] == want);
      }
  }
  CHECK(erased_images > 10);
}

TEST_CASE("make_crop_flip_batch: erasing is keyed by (seed, epoch, image) alone") {
  const ImageDataset d = bright_images(40);
  std::vector<std::int64_t> order(40), reversed(40);
  for (int i = 0; i < 40; ++i) {
    order[static_cast<std::size_t>(i)] = i;
    reversed[static_cast<std::size_t>(i)] = 39 - i;
  }
  RandomErasing e;
  const int before = num_threads();
  std::vector<Tensor<float>> batches;
  std::vector<std::int32_t> labels;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Tensor<float> a, b;
    make_crop_flip_batch(d, order.data(), 40, a, labels, kRaw, nullptr, 9, 1, &e);
    make_crop_flip_batch(d, reversed.data(), 40, b, labels, kRaw, nullptr, 9, 1, &e);
    for (std::int64_t i = 0; i < 40; ++i)
      for (std::int64_t p = 0; p < kRows * kCols; ++p)
        CHECK(a[i * kRows * kCols + p] == b[(39 - i) * kRows * kCols + p]);
    batches.push_back(a);
  }
  set_num_threads(before);
  for (std::int64_t k = 0; k < batches[0].size(); ++k) CHECK(batches[0][k] == batches[1][k]);
  // Another epoch erases other rectangles.
  Tensor<float> other;
  make_crop_flip_batch(d, order.data(), 40, other, labels, kRaw, nullptr, 9, 2, &e);
  std::int64_t differ = 0;
  for (std::int64_t k = 0; k < other.size(); ++k) differ += other[k] != batches[0][k];
  CHECK(differ > 0);
}

TEST_CASE("RandomErasing: settings out of range are refused with what they must be") {
  const ImageDataset d = bright_images(2);
  const std::vector<std::int64_t> idx = {0, 1};
  Tensor<float> x;
  std::vector<std::int32_t> labels;
  auto refused = [&](RandomErasing e) {
    make_crop_flip_batch(d, idx.data(), 2, x, labels, kRaw, nullptr, 1, 1, &e);
  };
  RandomErasing e;
  e.probability = 1.5;
  CHECK_THROWS_WITH(refused(e), doctest::Contains("probability 1.5"));
  e = RandomErasing{};
  e.min_area = 0;
  CHECK_THROWS_WITH(refused(e), doctest::Contains("areas"));
  e = RandomErasing{};
  e.max_area = 0.01;
  CHECK_THROWS_WITH(refused(e), doctest::Contains("areas"));
  e = RandomErasing{};
  e.min_aspect = 2;
  CHECK_THROWS_WITH(refused(e), doctest::Contains("min_aspect 2"));
}

}  // namespace test_random_erasing
