// minidl/loss/reduction.hpp - how a loss reduces its per-element terms, as PyTorch's reduction=.
#pragma once

#include <cstdint>

namespace minidl {

// mean: the sum divided by the number of terms (elements, or samples for the
// classification losses); sum: the plain sum. PyTorch's 'none' is not offered.
enum class Reduction { mean, sum };

// The factor applied to the sum of `count` terms.
inline double reduction_scale(Reduction r, std::int64_t count) {
  return r == Reduction::mean ? 1.0 / static_cast<double>(count) : 1.0;
}

}  // namespace minidl
