// minidl/data/components.hpp - connected components of a binary mask (8-connected).
#pragma once

#include <cstdint>
#include <vector>

#include "minidl/core/error.hpp"

namespace minidl {

// Components of the set pixels of a W x H mask (row-major, non-zero = set).
// Pixels touching at a corner belong together: a thin diagonal stroke of a
// digit is one piece, as a reader sees it.
struct Components {
  std::vector<std::int32_t> label;  // per pixel: -1 for an unset pixel, else its component
  int count = 0;
};

// Labels components in raster order of their first pixel with an explicit
// stack (no recursion, so a mask of millions of pixels cannot overflow it).
// Debian's stb_connected_components.h was the alternative, and does not fit:
// it joins only orthogonal neighbours, fixes the largest grid (and its
// memory) when compiled, and needs its implementation compiled into exactly
// one translation unit, which a header-only library cannot promise (libstb
// does not ship it).
inline Components label_components(const std::vector<std::uint8_t>& mask, int W, int H) {
  if (W < 0 || H < 0 || mask.size() != static_cast<std::size_t>(W) * static_cast<std::size_t>(H))
    fail("label_components: mask of ", mask.size(), " pixels for ", W, "x", H);
  Components c;
  c.label.assign(mask.size(), -1);
  std::vector<std::size_t> stack;
  for (std::size_t start = 0; start < mask.size(); ++start) {
    if (!mask[start] || c.label[start] >= 0) continue;
    const int id = c.count++;
    c.label[start] = id;
    stack.push_back(start);
    while (!stack.empty()) {
      const std::size_t i = stack.back();
      stack.pop_back();
      const int x = static_cast<int>(i % static_cast<std::size_t>(W));
      const int y = static_cast<int>(i / static_cast<std::size_t>(W));
      for (int ny = y - 1; ny <= y + 1; ++ny)
        for (int nx = x - 1; nx <= x + 1; ++nx) {
          if (nx < 0 || ny < 0 || nx >= W || ny >= H) continue;
          const std::size_t j = static_cast<std::size_t>(ny) * static_cast<std::size_t>(W) +
                                static_cast<std::size_t>(nx);
          if (mask[j] && c.label[j] < 0) {
            c.label[j] = id;
            stack.push_back(j);
          }
        }
    }
  }
  return c;
}

}  // namespace minidl
