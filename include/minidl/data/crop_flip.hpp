// minidl/data/crop_flip.hpp - random crops of zero-padded images and horizontal flips, keyed by
// (seed, epoch, image) like make_batch's augmentation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/data/batch.hpp"
#include "minidl/data/mnist.hpp"
#include "minidl/data/random_erasing.hpp"

namespace minidl {

// torchvision's RandomCrop(size, padding) then RandomHorizontalFlip(): the
// image is padded with `padding` pixels of value 0 on every side, a window of
// the image's own size is cut at a uniformly drawn offset in [0, 2 * padding]
// on each axis, and mirrored left to right with probability 1/2 when `flip`.
struct CropFlip {
  int padding = 4;
  bool flip = true;
};

// Writes the crop of `src` (rows x cols bytes, zero-padded by `padding`) whose
// top-left corner is at (top, left) of the padded image, mirrored when
// `mirror`, into dst as pixel values 0..255 normalised by `norm`.
inline void crop_flip_image(const std::uint8_t* src, std::int64_t rows, std::int64_t cols,
                            int padding, std::int64_t top, std::int64_t left, bool mirror,
                            Normalization norm, float* dst) {
  const float background = norm(0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t sr = r + top - padding;
    for (std::int64_t q = 0; q < cols; ++q) {
      const std::int64_t sq = (mirror ? cols - 1 - q : q) + left - padding;
      const bool inside = sr >= 0 && sr < rows && sq >= 0 && sq < cols;
      dst[r * cols + q] = inside ? norm(static_cast<float>(src[sr * cols + sq])) : background;
    }
  }
}

// The crop offsets and flip of image `index` in epoch `epoch`: the same for a
// resumed run, in any batch position and with any number of threads.
struct CropFlipDraw {
  std::int64_t top = 0, left = 0;
  bool mirror = false;
};
inline CropFlipDraw draw_crop_flip(const CropFlip& aug, std::uint64_t seed, std::uint64_t epoch,
                                   std::uint64_t index) {
  // A stream of its own: make_batch's affine jitter uses 0xA06 + epoch.
  Rng rng(hash64(seed, 0xC409F11900000000ULL + epoch, index));
  const auto span = static_cast<std::uint64_t>(2 * aug.padding + 1);
  CropFlipDraw d;
  d.top = static_cast<std::int64_t>(rng.below(span));
  d.left = static_cast<std::int64_t>(rng.below(span));
  d.mirror = aug.flip && rng.below(2) == 1;
  return d;
}

// Fills x [count, 1, rows, cols] and labels with the images indices[0..count)
// of `data`, each cropped and flipped as draw_crop_flip says (`aug` null: as
// they are, as make_batch), then, when `erase` is given, with a rectangle set
// to the normalised mean (0) as draw_erasing says.
inline void make_crop_flip_batch(const ImageDataset& data, const std::int64_t* indices,
                                 std::int64_t count, Tensor<float>& x,
                                 std::vector<std::int32_t>& labels, Normalization norm,
                                 const CropFlip* aug, std::uint64_t seed, std::uint64_t epoch,
                                 const RandomErasing* erase = nullptr) {
  if (aug && (aug->padding < 0 || aug->padding > data.rows || aug->padding > data.cols))
    fail("CropFlip: padding ", aug->padding, " must be from 0 to the image size ", data.rows, "x",
         data.cols);
  if (erase) check_erasing(*erase);
  const std::int64_t pixels = data.rows * data.cols;
  x.resize(Shape{count, 1, data.rows, data.cols});
  labels.resize(static_cast<std::size_t>(count));
  parallel_for(count, [&](std::int64_t i) {
    const auto idx = static_cast<std::size_t>(indices[i]);
    labels[static_cast<std::size_t>(i)] = data.labels[idx];
    const CropFlipDraw d = aug ? draw_crop_flip(*aug, seed, epoch, idx) : CropFlipDraw{};
    crop_flip_image(data.image(idx), data.rows, data.cols, aug ? aug->padding : 0, d.top, d.left,
                    d.mirror, norm, x.data() + i * pixels);
    if (erase)
      erase_rectangle(x.data() + i * pixels, data.cols,
                      draw_erasing(*erase, data.rows, data.cols, seed, epoch, idx), 0.0f);
  });
}

// Mirrors every image of x [N, C, H, W] left to right, in place: the flip of
// CropFlip with no crop, for averaging a model's output over an image and its
// mirror image at test time.
inline void mirror_images(Tensor<float>& x) {
  if (x.rank() != 4) fail("mirror_images: expected a batch [N, C, H, W], got ", x.shape().str());
  const std::int64_t cols = x.dim(3);
  const std::int64_t rows = x.size() / std::max<std::int64_t>(cols, 1);
  float* p = x.data();
  parallel_for(rows, [&](std::int64_t r) { std::reverse(p + r * cols, p + (r + 1) * cols); });
}

}  // namespace minidl
