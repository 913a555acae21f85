// minidl/core/error.hpp - the exception types minidl throws.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace minidl {

// Every failure minidl reports (bad shapes, bad files, bad arguments) is an
// Error whose message says what was wrong and where.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A loss or gradient that is NaN or infinite: training diverged. Its own type, so that a
// program can tell it from the failures a smaller learning rate does not cure (a file, memory).
class NonFiniteError : public Error {
 public:
  using Error::Error;
};

// Builds a message from any streamable pieces: fail("conv1: expected ", a, " got ", b), or
// fail<NonFiniteError>(...) to throw that type.
template <typename E = Error, typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw E(os.str());
}

// "[64, 1, 28, 28]"
inline std::string shape_to_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace minidl
