// The cases of the shape sweep (benchmarks/shape_sweep.cpp): which convolutions and layers it
// measures, and their names. The grid is defined here only: `shape_sweep --list` prints it, and
// the PyTorch twin (benchmarks/pytorch/shape_sweep.py) reads that list and parses the names.
//
// Names:
//   conv_k3_s2_c16x32_h28_n64    square kernel 3, stride 2, padding k/2, 16 -> 32 channels,
//                                28 x 28 input, batch 64
//   maxpool_k2_c32_h28_n64       2x2 windows, stride 2 (kNsMpP: kernel N, stride M, padding P)
//   avgpool_k2_c32_h28_n64       the same windows, averaged
//   gap_c64_h7_n64               global average pool (adaptive to 1 x 1)
//   batchnorm_c32_h28_n64        BatchNorm2d in training mode
//   linear_n64_i3136_o128        batch x in features x out features
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minidl/kernels/conv2d_naive.hpp"

namespace minidl::sweep {

enum class LayerKind { MaxPool, AvgPool, GlobalAvgPool, BatchNorm, Linear };

// A layer driven through its class, forward and backward. Pools and batch norm take [N, C, H, H]
// with window k, stride s, padding p; a linear layer takes [N, in] to [N, out].
struct LayerCase {
  LayerKind kind;
  std::int64_t N = 1, C = 1, H = 1, k = 1, s = 1, p = 0;
  std::int64_t in = 1, out = 1;  // linear only
};

// One line of the grid: a square convolution, or a layer.
struct SweepCase {
  std::string name;
  bool is_conv = true;
  kernels::Conv2dShape conv{};
  LayerCase layer{LayerKind::Linear};
};

// Multiply-adds of one convolution pass (the three passes do as many).
inline double conv_macs(const kernels::Conv2dShape& s) {
  return static_cast<double>(s.N) * static_cast<double>(s.OC * s.col_cols() * s.col_rows());
}

inline std::string conv_name(const kernels::Conv2dShape& s) {
  return "conv_k" + std::to_string(s.KH) + "_s" + std::to_string(s.stride) + "_c" +
         std::to_string(s.C) + "x" + std::to_string(s.OC) + "_h" + std::to_string(s.H) + "_n" +
         std::to_string(s.N);
}

inline std::string layer_name(const LayerCase& l) {
  const std::string tail =
      "_c" + std::to_string(l.C) + "_h" + std::to_string(l.H) + "_n" + std::to_string(l.N);
  const std::string window =
      l.s == l.k && l.p == 0
          ? "_k" + std::to_string(l.k)
          : "_k" + std::to_string(l.k) + "s" + std::to_string(l.s) + "p" + std::to_string(l.p);
  switch (l.kind) {
    case LayerKind::MaxPool:
      return "maxpool" + window + tail;
    case LayerKind::AvgPool:
      return "avgpool" + window + tail;
    case LayerKind::GlobalAvgPool:
      return "gap" + tail;
    case LayerKind::BatchNorm:
      return "batchnorm" + tail;
    case LayerKind::Linear:
      return "linear_n" + std::to_string(l.N) + "_i" + std::to_string(l.in) + "_o" +
             std::to_string(l.out);
  }
  return "?";
}

enum class Grid { Default, Full, Quick };

namespace detail {

struct ChannelPair {
  std::int64_t in, out;
};

// The channel pairs of the full product.
inline const std::vector<ChannelPair>& all_channel_pairs() {
  static const std::vector<ChannelPair> pairs{{1, 16},  {3, 16},  {6, 16},  {16, 16},   {16, 32},
                                              {32, 32}, {32, 64}, {64, 64}, {128, 128}, {256, 256}};
  return pairs;
}

// The channel pairs real CNNs have at each input size: few channels on large images, many on
// small ones (each halving of the image doubles the channels).
inline std::vector<ChannelPair> typical_channel_pairs(std::int64_t h) {
  switch (h) {
    case 56:
      return {{1, 16}, {3, 16}, {16, 16}, {16, 32}};
    case 28:  // 1 -> 6: LeNet-5's conv1; 3 -> 6 and 2 -> 16, which conv2d_backward_weights_kernel's
              // stride-2 rule rests on
      return {{1, 6},  {3, 6},   {1, 16},  {2, 16},  {3, 16},
              {6, 16}, {16, 16}, {16, 32}, {32, 32}, {32, 64}};
    case 14:
      return {{6, 16}, {16, 32}, {32, 32}, {32, 64}, {64, 64}, {128, 128}};
    default:  // 7
      return {{32, 64}, {64, 64}, {128, 128}, {256, 256}};
  }
}

// Whether the default grid takes kernel k on `in` input channels: 1x1 mixes channels, so only
// on 16 or more; 5x5 and 7x7 are the first layers of LeNet-style nets and stems, so only on 32
// or fewer.
inline bool typical_kernel(std::int64_t k, std::int64_t in) {
  if (k == 1) return in >= 16;
  if (k >= 5) return in <= 32;
  return true;
}

inline std::vector<SweepCase> quick_cases() {
  using kernels::Conv2dShape;
  // Small enough for a few seconds in all, and among them every square kernel in every pass
  // (direct, rows, im2col), stride 2, 1x1, 5x5 and 7x7.
  const std::vector<Conv2dShape> convs{
      {2, 16, 14, 14, 32, 3, 3, 1, 1},  // direct
      {2, 3, 28, 28, 16, 3, 3, 1, 1},   // rows (few input channels, rows of 16 or more)
      {2, 16, 14, 14, 32, 3, 3, 2, 1},  // stride 2
      {1, 16, 7, 7, 32, 1, 1, 1, 0},    // 1x1
      {2, 6, 14, 14, 16, 5, 5, 1, 2},   // 5x5
      {1, 3, 14, 14, 16, 7, 7, 2, 3},   // 7x7 stem
  };
  std::vector<SweepCase> cases;
  for (const auto& s : convs) cases.push_back({conv_name(s), true, s, {}});
  const std::vector<LayerCase> layers{
      {LayerKind::MaxPool, 2, 4, 8, 2, 2, 0}, {LayerKind::MaxPool, 2, 4, 9, 3, 2, 1},
      {LayerKind::AvgPool, 2, 4, 8, 2, 2, 0}, {LayerKind::GlobalAvgPool, 2, 4, 7},
      {LayerKind::BatchNorm, 2, 4, 7},        {LayerKind::Linear, 2, 1, 1, 1, 1, 0, 33, 10},
  };
  for (const auto& l : layers) cases.push_back({layer_name(l), false, {}, l});
  return cases;
}

inline std::vector<SweepCase> layer_cases() {
  const std::vector<LayerCase> layers{
      {LayerKind::MaxPool, 64, 32, 28, 2, 2, 0},
      {LayerKind::MaxPool, 64, 32, 28, 3, 2, 1},
      {LayerKind::MaxPool, 16, 64, 56, 3, 2, 1},  // a ResNet stem's pool
      {LayerKind::AvgPool, 64, 32, 28, 2, 2, 0},
      {LayerKind::GlobalAvgPool, 64, 64, 7},
      {LayerKind::GlobalAvgPool, 64, 256, 7},
      {LayerKind::BatchNorm, 64, 32, 28},
      {LayerKind::BatchNorm, 64, 128, 14},
      {LayerKind::Linear, 64, 1, 1, 1, 1, 0, 3136, 128},
      {LayerKind::Linear, 64, 1, 1, 1, 1, 0, 128, 10},
      {LayerKind::Linear, 64, 1, 1, 1, 1, 0, 3136, 10},  // a classifier on 64 x 7 x 7: one sliver
      {LayerKind::Linear, 64, 1, 1, 1, 1, 0, 400, 120},  // LeNet-5's fc1 and fc2
      {LayerKind::Linear, 64, 1, 1, 1, 1, 0, 120, 84},
      {LayerKind::Linear, 1, 1, 1, 1, 1, 0, 3136, 128},
      {LayerKind::Linear, 256, 1, 1, 1, 1, 0, 512, 512},
  };
  std::vector<SweepCase> cases;
  for (const auto& l : layers) cases.push_back({layer_name(l), false, {}, l});
  return cases;
}

}  // namespace detail

// The cases of a grid, convolutions first, then layers. Default: kernels 1, 3, 5, 7 (see
// typical_kernel) at stride 1 and 2 on the typical channel pairs of each size 56, 28, 14, 7, at
// batch 1 and 64. Full: every kernel, stride, channel pair, size and batch 1, 16, 64, 256.
// Both drop the convolutions of more than max_gmacs billion multiply-adds per pass.
inline std::vector<SweepCase> sweep_cases(Grid grid, double max_gmacs) {
  if (grid == Grid::Quick) return detail::quick_cases();
  const bool full = grid == Grid::Full;
  const std::vector<std::int64_t> batches =
      full ? std::vector<std::int64_t>{1, 16, 64, 256} : std::vector<std::int64_t>{1, 64};
  std::vector<SweepCase> cases;
  for (std::int64_t k : {1, 3, 5, 7})
    for (std::int64_t stride : {1, 2})
      for (std::int64_t h : {56, 28, 14, 7}) {
        const auto pairs = full ? detail::all_channel_pairs() : detail::typical_channel_pairs(h);
        for (const auto& c : pairs) {
          if (!full && !detail::typical_kernel(k, c.in)) continue;
          for (std::int64_t n : batches) {
            const kernels::Conv2dShape s{n, c.in, h, h, c.out, k, k, stride, k / 2};
            if (conv_macs(s) > max_gmacs * 1e9) continue;
            cases.push_back({conv_name(s), true, s, {}});
          }
        }
      }
  for (auto& c : detail::layer_cases()) cases.push_back(std::move(c));
  return cases;
}

}  // namespace minidl::sweep
