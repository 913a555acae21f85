// minidl/data/batch.hpp - uint8 images to normalised float batches, with optional augmentation.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/data/mnist.hpp"

namespace minidl {

// Pixel p in [0, 255] becomes (p/255 - mean) / std: MNIST's reference recipe
// uses mean = std = 0.5, mapping pixels to [-1, 1].
struct Normalization {
  float mean = 0.5f;
  float std = 0.5f;
  float operator()(float pixel) const { return (pixel / 255.0f - mean) / std; }
};

// Random affine jitter of training images: a translation of up to
// `max_shift` pixels on each axis and a rotation of up to `max_degrees`
// about the centre, resampled bilinearly (outside the image is background 0).
struct Augmentation {
  float max_shift = 2.0f;
  float max_degrees = 10.0f;
};

// Writes image `src` (rows x cols bytes) moved by (dx, dy) and rotated by
// `radians` into dst as pixel values 0..255.
inline void warp_image(const std::uint8_t* src, std::int64_t rows, std::int64_t cols, float dx,
                       float dy, float radians, float* dst) {
  const float cy = static_cast<float>(rows - 1) / 2, cx = static_cast<float>(cols - 1) / 2;
  const float c = std::cos(radians), s = std::sin(radians);
  auto pixel = [&](std::int64_t r, std::int64_t q) -> float {
    return (r < 0 || r >= rows || q < 0 || q >= cols) ? 0.0f
                                                      : static_cast<float>(src[r * cols + q]);
  };
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t q = 0; q < cols; ++q) {
      // Inverse map: where in the source does output pixel (r, q) come from?
      const float y = static_cast<float>(r) - cy - dy, x = static_cast<float>(q) - cx - dx;
      const float sy = c * y - s * x + cy, sx = s * y + c * x + cx;
      const float fy = std::floor(sy), fx = std::floor(sx);
      const auto y0 = static_cast<std::int64_t>(fy), x0 = static_cast<std::int64_t>(fx);
      const float wy = sy - fy, wx = sx - fx;
      dst[r * cols + q] = (1 - wy) * ((1 - wx) * pixel(y0, x0) + wx * pixel(y0, x0 + 1)) +
                          wy * ((1 - wx) * pixel(y0 + 1, x0) + wx * pixel(y0 + 1, x0 + 1));
    }
}

// Fills x [count, 1, rows, cols] and labels with the images indices[0..count)
// of `data`. With `augment`, image i of the batch is jittered by draws keyed
// on (seed, epoch, its dataset index), so an epoch replays identically.
inline void make_batch(const ImageDataset& data, const std::int64_t* indices, std::int64_t count,
                       Tensor<float>& x, std::vector<std::int32_t>& labels, Normalization norm = {},
                       const Augmentation* augment = nullptr, std::uint64_t seed = 0,
                       std::uint64_t epoch = 0) {
  const std::int64_t pixels = data.rows * data.cols;
  x.resize(Shape{count, 1, data.rows, data.cols});
  labels.resize(static_cast<std::size_t>(count));
  parallel_for(count, [&](std::int64_t i) {
    const auto idx = static_cast<std::size_t>(indices[i]);
    const std::uint8_t* src = data.image(idx);
    float* dst = x.data() + i * pixels;
    labels[static_cast<std::size_t>(i)] = data.labels[idx];
    if (augment) {
      Rng rng(hash64(seed, 0xA06 + epoch, idx));
      const float dx = rng.uniform(-augment->max_shift, augment->max_shift);
      const float dy = rng.uniform(-augment->max_shift, augment->max_shift);
      const float deg = rng.uniform(-augment->max_degrees, augment->max_degrees);
      warp_image(src, data.rows, data.cols, dx, dy, deg * 3.14159265f / 180.0f, dst);
      MINIDL_VECTORIZE
      for (std::int64_t p = 0; p < pixels; ++p) dst[p] = norm(dst[p]);
    } else {
      MINIDL_VECTORIZE
      for (std::int64_t p = 0; p < pixels; ++p) dst[p] = norm(static_cast<float>(src[p]));
    }
  });
}

}  // namespace minidl
