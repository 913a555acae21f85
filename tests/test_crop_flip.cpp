// Random crops of zero-padded images and horizontal flips (data/crop_flip.hpp): the geometry
// against hand-worked pixels, the draws keyed by (seed, epoch, image) whatever the batch
// position or thread count, and every offset and both flips drawn.
#include <doctest/doctest.h>

#include <cstdint>
#include <set>
#include <vector>

#include "minidl/core/parallel.hpp"
#include "minidl/data/crop_flip.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_crop_flip {

using namespace minidl;

namespace {

// A 4x5 image whose pixel (r, q) is 10 * r + q + 1 (never 0, so padding shows as 0).
ImageDataset numbered_images(int count) {
  ImageDataset d;
  d.rows = 4;
  d.cols = 5;
  for (int i = 0; i < count; ++i) {
    for (int r = 0; r < 4; ++r)
      for (int q = 0; q < 5; ++q) d.images.push_back(static_cast<std::uint8_t>(10 * r + q + 1 + i));
    d.labels.push_back(static_cast<std::uint8_t>(i % 10));
  }
  return d;
}

// Pixel values as they are: mean 0, deviation 255.
const Normalization kRaw{0.0f, 1.0f / 255.0f};

}  // namespace

TEST_CASE("crop_flip_image: the centred crop is the image, other offsets shift in zeros") {
  const ImageDataset d = numbered_images(1);
  std::vector<float> out(20);
  crop_flip_image(d.image(0), 4, 5, 2, 2, 2, false, kRaw, out.data());
  for (int i = 0; i < 20; ++i)
    CHECK(out[static_cast<std::size_t>(i)] ==
          doctest::Approx(d.images[static_cast<std::size_t>(i)]));

  // Top-left corner of the padded image: the image moves 2 down and 2 right.
  crop_flip_image(d.image(0), 4, 5, 2, 0, 0, false, kRaw, out.data());
  CHECK(out[0] == 0.0f);                         // (0, 0) is padding
  CHECK(out[1 * 5 + 4] == 0.0f);                 // row 1 is padding
  CHECK(out[2 * 5 + 1] == 0.0f);                 // column 1 is padding
  CHECK(out[2 * 5 + 2] == doctest::Approx(1));   // source (0, 0)
  CHECK(out[3 * 5 + 4] == doctest::Approx(13));  // source (1, 2)

  // Offset (3, 1) with padding 2: output (r, q) holds source (r + 1, q - 1).
  crop_flip_image(d.image(0), 4, 5, 2, 3, 1, false, kRaw, out.data());
  CHECK(out[0 * 5 + 0] == 0.0f);
  CHECK(out[0 * 5 + 1] == doctest::Approx(11));  // source (1, 0)
  CHECK(out[2 * 5 + 4] == doctest::Approx(34));  // source (3, 3)
  CHECK(out[3 * 5 + 2] == 0.0f);                 // source row 4 is padding
}

TEST_CASE("crop_flip_image: a flip mirrors each row of the crop") {
  const ImageDataset d = numbered_images(1);
  std::vector<float> out(20);
  crop_flip_image(d.image(0), 4, 5, 2, 2, 2, true, kRaw, out.data());
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 5; ++q)
      CHECK(out[static_cast<std::size_t>(r * 5 + q)] == doctest::Approx(10 * r + (4 - q) + 1));
  // Flip after the crop, as torchvision's RandomCrop then RandomHorizontalFlip: the crop at
  // left offset 0 (image moved 2 right) mirrored has the padding on the right.
  crop_flip_image(d.image(0), 4, 5, 2, 2, 0, true, kRaw, out.data());
  CHECK(out[0 * 5 + 4] == 0.0f);
  CHECK(out[0 * 5 + 3] == 0.0f);
  CHECK(out[0 * 5 + 2] == doctest::Approx(1));  // source (0, 0)
  CHECK(out[0 * 5 + 0] == doctest::Approx(3));  // source (0, 2)
}

TEST_CASE("crop_flip_image: padding takes the normalised value of a zero pixel") {
  const ImageDataset d = numbered_images(1);
  std::vector<float> out(20);
  const Normalization norm{0.25f, 0.5f};
  crop_flip_image(d.image(0), 4, 5, 1, 0, 0, false, norm, out.data());
  CHECK(out[0] == doctest::Approx(-0.5));                        // (0 - 0.25) / 0.5
  CHECK(out[6] == doctest::Approx((1.0 / 255.0 - 0.25) / 0.5));  // source (0, 0)
}

TEST_CASE("make_crop_flip_batch: an image is augmented by (seed, epoch, index) alone") {
  const ImageDataset d = numbered_images(40);
  const CropFlip aug{2, true};
  std::vector<std::int64_t> order(40), reversed(40);
  for (int i = 0; i < 40; ++i) {
    order[static_cast<std::size_t>(i)] = i;
    reversed[static_cast<std::size_t>(i)] = 39 - i;
  }
  Tensor<float> a, b, c, one, two;
  std::vector<std::int32_t> la, lb;
  make_crop_flip_batch(d, order.data(), 40, a, la, kRaw, &aug, 7, 3);
  make_crop_flip_batch(d, reversed.data(), 40, b, lb, kRaw, &aug, 7, 3);
  for (int i = 0; i < 40; ++i) {
    CHECK(la[static_cast<std::size_t>(i)] == lb[static_cast<std::size_t>(39 - i)]);
    for (int p = 0; p < 20; ++p) CHECK(a[i * 20 + p] == b[(39 - i) * 20 + p]);
  }
  // Each image as the draw for its index says.
  std::vector<float> expected(20);
  for (int i = 0; i < 40; ++i) {
    const CropFlipDraw draw = draw_crop_flip(aug, 7, 3, static_cast<std::uint64_t>(i));
    crop_flip_image(d.image(static_cast<std::size_t>(i)), 4, 5, 2, draw.top, draw.left, draw.mirror,
                    kRaw, expected.data());
    for (int p = 0; p < 20; ++p) CHECK(a[i * 20 + p] == expected[static_cast<std::size_t>(p)]);
  }
  // Another epoch or seed draws differently.
  make_crop_flip_batch(d, order.data(), 40, c, la, kRaw, &aug, 7, 4);
  bool differs = false;
  for (std::int64_t i = 0; i < a.size(); ++i) differs |= a[i] != c[i];
  CHECK(differs);
  // With one or two threads, the same batch.
  const int threads = num_threads();
  set_num_threads(1);
  make_crop_flip_batch(d, order.data(), 40, one, la, kRaw, &aug, 7, 3);
  set_num_threads(2);
  make_crop_flip_batch(d, order.data(), 40, two, la, kRaw, &aug, 7, 3);
  set_num_threads(threads);
  for (std::int64_t i = 0; i < a.size(); ++i) {
    CHECK(one[i] == a[i]);
    CHECK(two[i] == a[i]);
  }
}

TEST_CASE("draw_crop_flip: every offset in [0, 2 padding] and both flips are drawn, fairly") {
  const CropFlip aug{2, true};
  std::set<std::int64_t> tops, lefts;
  int mirrored = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const CropFlipDraw d = draw_crop_flip(aug, 1, 1, static_cast<std::uint64_t>(i));
    CHECK(d.top >= 0);
    CHECK(d.top <= 4);
    CHECK(d.left >= 0);
    CHECK(d.left <= 4);
    tops.insert(d.top);
    lefts.insert(d.left);
    mirrored += d.mirror;
  }
  CHECK(tops.size() == 5);
  CHECK(lefts.size() == 5);
  CHECK(mirrored > n / 2 - 200);  // binomial(4000, 1/2): 6 standard deviations
  CHECK(mirrored < n / 2 + 200);
  CHECK_FALSE(draw_crop_flip(CropFlip{2, false}, 1, 1, 5).mirror);
}

TEST_CASE("make_crop_flip_batch: without augmentation, the images as make_batch gives them") {
  const ImageDataset d = numbered_images(6);
  const std::vector<std::int64_t> idx = {5, 0, 3};
  Tensor<float> a, b;
  std::vector<std::int32_t> la, lb;
  const Normalization norm{0.2860f, 0.3530f};
  make_crop_flip_batch(d, idx.data(), 3, a, la, norm, nullptr, 1, 1);
  make_batch(d, idx.data(), 3, b, lb, norm);
  REQUIRE(a.shape() == b.shape());
  for (std::int64_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  CHECK(la == lb);
}

TEST_CASE("make_crop_flip_batch: a padding larger than the image is refused") {
  const ImageDataset d = numbered_images(2);
  const std::vector<std::int64_t> idx = {0, 1};
  Tensor<float> x;
  std::vector<std::int32_t> labels;
  const CropFlip aug{5, true};
  CHECK_THROWS_WITH(make_crop_flip_batch(d, idx.data(), 2, x, labels, kRaw, &aug, 1, 1),
                    doctest::Contains("padding 5"));
}

TEST_CASE("mirror_images: every row of every image reversed, on any number of threads") {
  const ImageDataset d = numbered_images(3);
  const std::vector<std::int64_t> idx = {0, 1, 2};
  const int before = num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    Tensor<float> x;
    std::vector<std::int32_t> labels;
    make_batch(d, idx.data(), 3, x, labels, kRaw);
    mirror_images(x);
    std::vector<float> expected(20);
    for (std::int64_t i = 0; i < 3; ++i) {
      crop_flip_image(d.image(static_cast<std::size_t>(i)), 4, 5, 0, 0, 0, true, kRaw,
                      expected.data());
      for (std::int64_t p = 0; p < 20; ++p)
        CHECK(x[i * 20 + p] == expected[static_cast<std::size_t>(p)]);
    }
  }
  set_num_threads(before);
  Tensor<float> flat(Shape{3, 20});
  CHECK_THROWS_WITH(mirror_images(flat), doctest::Contains("[N, C, H, W]"));
}

}  // namespace test_crop_flip
