// The pooling layers and Identity against PyTorch on identical inputs: the output and the
// input gradient of each case of tests/parity/make_pooling_reference.py, in float32 and
// float64. The reference's path is in MINIDL_POOLING_PARITY_FILE (set by CTest); without it
// the test skips.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"
#include "parity_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_parity_pooling {

using namespace minidl;

namespace {

// Both sides do the same few operations per element in the same precision (PyTorch sums a
// global average in another order): a few roundings apart, float's unit 6e-8, double's 1.1e-16.
template <typename T>
double tolerance() {
  return sizeof(T) == 4 ? 1e-6 : 1e-12;
}

template <typename T>
Tensor<T> get(const std::string& name) {
  return minidl::testing::reference_tensor<T>(
      minidl::testing::parity_reference("MINIDL_POOLING_PARITY_FILE"), name);
}

// The cases of make_pooling_reference.py, built with minidl's layers.
template <typename T>
std::vector<std::pair<std::string, std::function<std::unique_ptr<Layer<T>>()>>> cases() {
  auto make = [](auto layer) {
    return
        [layer]() -> std::unique_ptr<Layer<T>> { return std::make_unique<decltype(layer)>(layer); };
  };
  return {
      {"avg_k2", make(AvgPool2d<T>(2))},
      {"avg_k3s2p1", make(AvgPool2d<T>(3, 2, 1))},
      {"avg_k3s2p1_nopad", make(AvgPool2d<T>(3, 2, 1, false, false))},
      {"avg_ceil", make(AvgPool2d<T>(3, 2, 1, true))},
      {"avg_ceil_nopad", make(AvgPool2d<T>(2, 2, 1, true, false))},
      {"avg_axes", make(AvgPool2d<T>({3, 2}, {2, 1}, {1, 0}))},
      {"adaptive_7to3", make(AdaptiveAvgPool2d<T>(3))},
      {"adaptive_5to2x3", make(AdaptiveAvgPool2d<T>(2, 3))},
      {"adaptive_8to4", make(AdaptiveAvgPool2d<T>(4))},
      {"adaptive_global", make(AdaptiveAvgPool2d<T>(1))},
      {"adaptive_3to5x4", make(AdaptiveAvgPool2d<T>(5, 4))},
      {"max_k3s2p1", make(MaxPool2d<T>(3, 2, 1))},
      {"max_axes_dilated", make(MaxPool2d<T>({3, 2}, {2, 1}, {1, 0}, {1, 2}))},
      {"max_ceil", make(MaxPool2d<T>(3, 2, 0, 1, true))},
      {"max_k3s1p1_ties", make(MaxPool2d<T>(3, 1, 1))},
      {"max_k2_ties", make(MaxPool2d<T>(2))},
      {"identity", make(Identity<T>())},
  };
}

}  // namespace

TEST_CASE_TEMPLATE("parity: pooling layers and Identity, output and input gradient", T, float,
                   double) {
  const std::string pre = minidl::testing::precision_prefix<T>();
  for (auto& entry : cases<T>()) {
    // Plain variables, not structured bindings: C++17 lets no lambda (CAPTURE) capture those.
    const std::string& name = entry.first;
    const auto& make = entry.second;
    CAPTURE(name);
    const std::string at = pre + name + ".";
    auto layer = make();
    const Tensor<T> x = get<T>(at + "x");
    const Tensor<T>& y = layer->forward(x, Context{Mode::Train, 0});
    const double y_rel = minidl::testing::max_relative_difference(y, get<T>(at + "y"));
    const Tensor<T>& dx = layer->backward(get<T>(at + "dy"));
    const double dx_rel = minidl::testing::max_relative_difference(dx, get<T>(at + "dx"));
    MESSAGE(at << " y: " << y_rel << ", dx: " << dx_rel);
    CHECK(y_rel <= tolerance<T>());
    CHECK(dx_rel <= tolerance<T>());
  }
}

}  // namespace test_parity_pooling
