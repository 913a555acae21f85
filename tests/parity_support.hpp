// What the PyTorch parity tests share: the reference file that their CTest fixture wrote
// (make_reference.py, make_training_reference.py), and its tensors read as minidl tensors.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "minidl/core/tensor.hpp"
#include "minidl/io/safetensors.hpp"
#include "test_support.hpp"

namespace minidl::testing {

// The reference named by the environment variable `env`, read once. Without it (python3-torch
// missing, so the fixture wrote nothing) the whole program ends as skipped, or fails under
// CI=true (skip_program): every case of a parity program needs it.
inline const SafetensorsFile& parity_reference(const char* env) {
  static SafetensorsFile file;
  static bool loaded = false;
  if (!loaded) {
    const char* path = std::getenv(env);
    if (!path || !std::filesystem::exists(path))
      skip_program(std::string("no PyTorch reference (") + env +
                   " unset or missing; install python3-torch)");
    file = read_safetensors(path);
    loaded = true;
  }
  return file;
}

// "f32." or "f64.": the prefix of the reference's tensors computed in T.
template <typename T>
const char* precision_prefix() {
  return sizeof(T) == 4 ? "f32." : "f64.";
}

// A float32 or float64 reference tensor as a Tensor<T> (a 0-d tensor as shape [1]).
template <typename T>
Tensor<T> reference_tensor(const SafetensorsFile& file, const std::string& name) {
  const NamedTensor* n = file.find(name);
  REQUIRE_MESSAGE(n != nullptr, "reference lacks " << name);
  Tensor<T> t(Shape(n->shape.empty() ? std::vector<std::int64_t>{1} : n->shape));
  if (n->dtype == DType::F32) {
    const auto* p = reinterpret_cast<const float*>(n->bytes.data());
    for (std::int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(p[i]);
  } else {
    REQUIRE(n->dtype == DType::F64);
    const auto* p = reinterpret_cast<const double*>(n->bytes.data());
    for (std::int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(p[i]);
  }
  return t;
}

// An int64 reference tensor of class labels as int32.
inline std::vector<std::int32_t> reference_labels(const SafetensorsFile& file,
                                                  const std::string& name) {
  const NamedTensor* n = file.find(name);
  REQUIRE_MESSAGE(n != nullptr, "reference lacks " << name);
  REQUIRE(n->dtype == DType::I64);
  std::vector<std::int32_t> out(n->bytes.size() / 8);
  const auto* p = reinterpret_cast<const std::int64_t*>(n->bytes.data());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::int32_t>(p[i]);
  return out;
}

// The largest difference between ours and PyTorch's `theirs`, relative to the largest magnitude
// of theirs; a NaN or an infinity in ours makes it infinite, so that no bound passes it.
template <typename T>
double max_relative_difference(const Tensor<T>& ours, const Tensor<T>& theirs) {
  REQUIRE_MESSAGE(ours.size() == theirs.size(), ours.shape().str()
                                                    << " vs " << theirs.shape().str());
  double diff = 0, scale = 1e-300;
  for (std::int64_t i = 0; i < ours.size(); ++i) {
    const double d = std::fabs(static_cast<double>(ours[i]) - static_cast<double>(theirs[i]));
    if (!std::isfinite(d)) return HUGE_VAL;
    diff = std::max(diff, d);
    scale = std::max(scale, std::fabs(static_cast<double>(theirs[i])));
  }
  return diff / scale;
}

// Checks ours against PyTorch's `theirs` to `bound` (relative, as above) and prints the
// difference, so that a run shows how close each quantity came.
template <typename T>
void compare_to_reference(const std::string& what, const Tensor<T>& ours, const Tensor<T>& theirs,
                          double bound) {
  const double rel = max_relative_difference(ours, theirs);
  const std::string name = precision_prefix<T>() + what;  // doctest prints a char* as a pointer
  MESSAGE(name << ": max relative difference " << rel);
  CHECK_MESSAGE(rel <= bound, name << " differs from PyTorch: " << rel);
}

}  // namespace minidl::testing
