// minidl/layers/pool2d_arg.hpp - a pooling layer's size argument, one number or (h, w).
#pragma once

#include <cstdint>
#include <string>

namespace minidl {

// A kernel size, stride, padding or dilation of a pooling layer: one number
// for both axes (3) or one per axis ({3, 2}), as PyTorch takes an int or a
// tuple.
struct Pool2dArg {
  std::int64_t h, w;
  Pool2dArg(std::int64_t both) : h(both), w(both) {}  // NOLINT: implicit, like PyTorch's int
  Pool2dArg(std::int64_t h_, std::int64_t w_) : h(h_), w(w_) {}
  bool square() const { return h == w; }
  bool operator==(const Pool2dArg& o) const { return h == o.h && w == o.w; }
  std::string str() const {
    return square() ? std::to_string(h) : std::to_string(h) + "x" + std::to_string(w);
  }
};

}  // namespace minidl
