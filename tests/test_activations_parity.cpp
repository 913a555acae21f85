// minidl's activation layers against PyTorch's modules on identical inputs:
// the output and the input gradient for a given upstream gradient, in float32
// and float64, on an (N, C, H, W) input, an (N, C) input and one of
// magnitudes up to 100. The reference comes from
// tests/parity/make_activation_reference.py, its path in
// MINIDL_ACTIVATION_PARITY_FILE (set by CTest). Without it the test skips.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "minidl/minidl.hpp"

#include "parity_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_activations_parity {

using namespace minidl;

namespace {

// Both sides round the same few operations (and an exp, erf or tanh each
// within an ulp or two) in the same precision: they agree to a few units of
// rounding of the largest value, float's 6e-8 and double's 1.1e-16.
template <typename T>
double tolerance() {
  return sizeof(T) == 4 ? 1e-6 : 1e-14;
}

template <typename T>
Tensor<T> get(const std::string& name) {
  static const auto& file = minidl::testing::parity_reference("MINIDL_ACTIVATION_PARITY_FILE");
  return minidl::testing::reference_tensor<T>(file, minidl::testing::precision_prefix<T>() + name);
}

// Largest difference relative to the reference's largest magnitude.
template <typename T>
void compare(const std::string& what, const Tensor<T>& ours, const Tensor<T>& theirs) {
  minidl::testing::compare_to_reference(what, ours, theirs, tolerance<T>());
}

template <typename T>
std::vector<std::pair<std::string, std::function<std::unique_ptr<Layer<T>>()>>> cases() {
  return {{"sigmoid", [] { return std::make_unique<Sigmoid<T>>(); }},
          {"tanh", [] { return std::make_unique<Tanh<T>>(); }},
          {"leaky_relu", [] { return std::make_unique<LeakyReLU<T>>(); }},
          {"leaky_relu_neg", [] { return std::make_unique<LeakyReLU<T>>(-0.3); }},
          {"gelu", [] { return std::make_unique<GELU<T>>(GeluApproximate::none); }},
          {"gelu_tanh", [] { return std::make_unique<GELU<T>>(GeluApproximate::tanh); }},
          {"silu", [] { return std::make_unique<SiLU<T>>(); }},
          {"softmax", [] { return std::make_unique<Softmax<T>>(1); }},
          {"log_softmax", [] { return std::make_unique<LogSoftmax<T>>(1); }},
          {"softmax_last", [] { return std::make_unique<Softmax<T>>(-1); }},
          {"log_softmax_first", [] { return std::make_unique<LogSoftmax<T>>(0); }}};
}

}  // namespace

TEST_CASE_TEMPLATE("activation layers match PyTorch: forward and backward", T, float, double) {
  for (const char* input : {"nchw", "nc", "big"}) {
    const Tensor<T> x = get<T>(std::string(input) + ".x");
    const Tensor<T> dy = get<T>(std::string(input) + ".dy");
    for (auto& [name, make] : cases<T>()) {
      const std::string at = std::string(input) + "." + name;
      auto layer = make();
      const Tensor<T> y = layer->forward(x, Context{Mode::Train, 0}).clone();
      const Tensor<T> dx = layer->backward(dy).clone();
      compare(at + ".y", y, get<T>(at + ".y"));
      compare(at + ".dx", dx, get<T>(at + ".dx"));
    }
  }
}

}  // namespace test_activations_parity
