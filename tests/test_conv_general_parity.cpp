// The general convolution against torch.nn.Conv2d on identical weights and
// inputs: output, input gradient, weight and bias gradients, in float32 and
// float64, for groups, depthwise (with a channel multiplier), dilation,
// KH x KW kernels and stride and padding per axis.
// The reference comes from tests/parity/make_conv_reference.py; its path is
// in MINIDL_CONV_PARITY_FILE (set by CTest). Without it the test says it
// skipped.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "minidl/minidl.hpp"

#include "parity_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_conv_general_parity {

using namespace minidl;

namespace {

const SafetensorsFile& reference() {
  return minidl::testing::parity_reference("MINIDL_CONV_PARITY_FILE");
}

// float: both sides sum up to a few hundred float products in different
// orders, a few units of 1e-7 of the tensor's scale; a wrong formula is
// off by O(1). double: the same argument at 1e-16.
template <typename T>
double tolerance() {
  return sizeof(T) == 4 ? 1e-5 : 1e-12;
}

// Largest difference relative to the reference tensor's largest magnitude.
template <typename T>
void compare(const std::string& what, const Tensor<T>& ours, const Tensor<T>& theirs) {
  minidl::testing::compare_to_reference(what, ours, theirs, tolerance<T>());
}

// The cases make_conv_reference.py writes.
const char* const kCases[] = {"groups2",           "depthwise",         "depthwise_x2_3x5",
                              "depthwise_stride2", "dilation2",         "k3x5_s21_p12",
                              "groups2_mixed",     "pointwise_s2",      "pointwise_s1",
                              "pointwise_s1_wide", "pointwise_s2_wide", "rows_data_5x5",
                              "rows_data_7x7",     "rows_data_s2"};

template <typename T>
void check_case(const std::string& name) {
  CAPTURE(name);
  const auto& file = reference();
  // in, out, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias, N, H, W
  const auto c = minidl::testing::reference_labels(file, name + ".config");
  REQUIRE(c.size() == 15);
  const bool bias = c[11] != 0;
  Conv2d<T> conv(Conv2dOptions(c[0], c[1], c[2], c[3])
                     .stride(c[4], c[5])
                     .padding(c[6], c[7])
                     .dilation(c[8], c[9])
                     .groups(c[10])
                     .bias(bias));
  const std::string key = std::string(minidl::testing::precision_prefix<T>()) + name + ".";
  auto get = [&](const char* what) {
    return minidl::testing::reference_tensor<T>(file, key + what);
  };
  const Tensor<T> x = get("x");
  REQUIRE(x.shape() == Shape{c[12], c[0], c[13], c[14]});
  const Tensor<T> w = get("weight");
  REQUIRE(w.shape() == conv.weight().shape());
  std::copy(w.begin(), w.end(), conv.weight().begin());
  if (bias) {
    const Tensor<T> b = get("bias");
    std::copy(b.begin(), b.end(), conv.bias().begin());
  }
  if (name.rfind("pointwise", 0) == 0) {  // the cases named for the pointwise products run them
    const kernels::Conv2dKernels k = conv.kernels_for(x.shape());
    CHECK(k.forward == kernels::ConvKernel::Pointwise);
    // The stride-2 input gradient on wide rows only where its stores are vectorized.
    const bool pointwise_data =
        name != "pointwise_s2_wide" || kernels::detail::kStoreEveryOtherVectorized;
    CHECK((k.backward_data == kernels::ConvKernel::Pointwise) == pointwise_data);
  }
  if (name.rfind("rows_data", 0) == 0) {  // and those named for the rows kernel run its
    const kernels::Conv2dKernels k = conv.kernels_for(x.shape());  // input and weight gradients
    CHECK(k.backward_data == kernels::ConvKernel::Rows);
    // (With vectors of 4 doubles, AVX2, the stride-2 weight gradient of 2 channels stays direct.)
    if (kernels::Simd<T>::width >= 8) CHECK(k.backward_weights == kernels::ConvKernel::Rows);
  }
  compare(name + ".y", conv.forward(x, Context{Mode::Train, 0}), get("y"));
  compare(name + ".dx", conv.backward(get("dy")), get("dx"));
  compare(name + ".dweight", conv.weight_grad(), get("dweight"));
  if (bias) compare(name + ".dbias", conv.bias_grad(), get("dbias"));
}

}  // namespace

TEST_CASE_TEMPLATE("general Conv2d matches torch.nn.Conv2d: output and every gradient", T, float,
                   double) {
  for (const char* name : kCases) check_case<T>(name);
}

}  // namespace test_conv_general_parity
