// minidl/data/random_erasing.hpp - random erasing: a rectangle of a training image set to the
// data set's mean, keyed by (seed, epoch, image) like the crops and flips.
#pragma once

#include <cmath>
#include <cstdint>

#include "minidl/core/error.hpp"
#include "minidl/core/rng.hpp"

namespace minidl {

// Zhong et al.'s random erasing, as torchvision's RandomErasing draws it: with
// probability `probability`, a rectangle covering a share of the image drawn
// uniformly from [min_area, max_area], with an aspect ratio (height / width)
// drawn log-uniformly from [min_aspect, 1 / min_aspect], is placed uniformly
// inside the image; up to 10 draws are made until one fits, else nothing is
// erased. The rectangle takes the value 0 of the normalised image, which is the
// data set's mean pixel.
struct RandomErasing {
  double probability = 0.5;
  double min_area = 0.02, max_area = 0.33;
  double min_aspect = 0.3;
};

// The rectangle [top, top + height) x [left, left + width) of image `index` in
// epoch `epoch`; height 0 when the image is left whole.
struct ErasingDraw {
  std::int64_t top = 0, left = 0, height = 0, width = 0;
};

inline void check_erasing(const RandomErasing& e) {
  if (!(e.probability >= 0 && e.probability <= 1))
    fail("RandomErasing: probability ", e.probability, " must be in [0, 1]");
  if (!(e.min_area > 0 && e.min_area <= e.max_area && e.max_area <= 1))
    fail("RandomErasing: areas [", e.min_area, ", ", e.max_area,
         "] must satisfy 0 < min <= max <= 1");
  if (!(e.min_aspect > 0 && e.min_aspect <= 1))
    fail("RandomErasing: min_aspect ", e.min_aspect, " must be in (0, 1]");
}

inline ErasingDraw draw_erasing(const RandomErasing& e, std::int64_t rows, std::int64_t cols,
                                std::uint64_t seed, std::uint64_t epoch, std::uint64_t index) {
  // A stream of its own, apart from the crops' and flips' (0xC409F119...).
  Rng rng(hash64(seed, 0xE5A5E00000000000ULL + epoch, index));
  ErasingDraw d;
  if (rng.uniform<double>() >= e.probability) return d;
  const double area = static_cast<double>(rows * cols);
  const double log_lo = std::log(e.min_aspect), log_hi = -log_lo;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform<double>(e.min_area, e.max_area);
    const double aspect = std::exp(rng.uniform<double>(log_lo, log_hi));
    const auto h = static_cast<std::int64_t>(std::lround(std::sqrt(target * aspect)));
    const auto w = static_cast<std::int64_t>(std::lround(std::sqrt(target / aspect)));
    if (h < 1 || w < 1 || h >= rows || w >= cols) continue;
    d.top = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(rows - h + 1)));
    d.left = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(cols - w + 1)));
    d.height = h;
    d.width = w;
    return d;
  }
  return d;
}

// Sets the rectangle of `d` in the rows x cols image `image` to `value`.
inline void erase_rectangle(float* image, std::int64_t cols, const ErasingDraw& d, float value) {
  for (std::int64_t r = d.top; r < d.top + d.height; ++r)
    for (std::int64_t q = d.left; q < d.left + d.width; ++q) image[r * cols + q] = value;
}

}  // namespace minidl
