// minidl/core/byte_order.hpp - integers stored most significant byte first, as files hold them.
#pragma once

#include <cstdint>

namespace minidl {

// The 32-bit unsigned integer in the four bytes at p, most significant first
// (IDX headers, PNG chunk lengths).
inline std::uint32_t read_be32(const unsigned char* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

}  // namespace minidl
