// BatchNorm2d and BatchNorm1d against PyTorch: the same weights and inputs through
// three training steps and one evaluation step (tests/parity/make_batchnorm_reference.py,
// run by CTest as the fixture batchnorm_parity_reference): outputs, input and parameter
// gradients, running statistics and num_batches_tracked, in float32 and float64.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "minidl/io/checkpoint.hpp"
#include "minidl/minidl.hpp"
#include "parity_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_parity_batchnorm {

using namespace minidl;
using namespace minidl::testing;

namespace {

const SafetensorsFile& reference() {
  return parity_reference("MINIDL_BATCHNORM_PARITY_FILE");
}

// The cases of make_batchnorm_reference.py's CASES, built the same way.
struct Case {
  const char* name;
  bool two_d;
  std::int64_t features;
  double eps;
  std::optional<double> momentum;
  bool affine, track;
};
const Case kCases[] = {
    {"bn2d", true, 4, 1e-5, 0.1, true, true},
    {"bn2d_no_affine", true, 4, 1e-5, 0.1, false, true},
    {"bn2d_no_stats", true, 3, 1e-5, 0.1, true, false},
    {"bn2d_cumulative", true, 3, 1e-3, std::nullopt, true, true},
    {"bn2d_wide", true, 16, 1e-5, 0.3, true, true},
    {"bn1d", false, 5, 1e-5, 0.1, true, true},
    {"bn1d_length", false, 3, 1e-5, 0.5, false, true},
    {"bn1d_no_stats", false, 6, 1e-5, 0.1, true, false},
};

template <typename T>
std::unique_ptr<BatchNorm<T>> make(const Case& c) {
  if (c.two_d)
    return std::make_unique<BatchNorm2d<T>>(c.features, c.eps, c.momentum, c.affine, c.track);
  return std::make_unique<BatchNorm1d<T>>(c.features, c.eps, c.momentum, c.affine, c.track);
}

// Float rounding in float32 (the largest seen is 3e-7; a wrong formula is off by far more) and
// ~1e-12 in float64, relative to the tensor's largest magnitude (and at least 1).
template <typename T>
void expect_close(const Tensor<T>& got, const std::string& name) {
  const Tensor<T> want = reference_tensor<T>(reference(), name);
  REQUIRE_MESSAGE(got.size() == want.size(),
                  name << ": " << got.shape().str() << " vs " << want.shape().str());
  double scale = 1, worst = 0;
  for (std::int64_t i = 0; i < want.size(); ++i)
    scale = std::max(scale, std::fabs(double(want[i])));
  for (std::int64_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - double(want[i])) / scale);
  const double bound = sizeof(T) == 4 ? 4e-6 : 1e-12;
  INFO(name << ": largest difference " << worst << " of the largest magnitude " << scale);
  CHECK(worst < bound);
}

template <typename T>
void run_case(const Case& c) {
  const std::string p = std::string(precision_prefix<T>()) + c.name + ".";
  CAPTURE(p);
  auto bn = make<T>(c);
  if (c.affine) {
    bn->weight().copy_from(reference_tensor<T>(reference(), p + "weight"));
    bn->bias().copy_from(reference_tensor<T>(reference(), p + "bias"));
  }
  bn->set_needs_input_grad(true);
  auto step = [&](const std::string& k, const Context& ctx) {
    const Tensor<T> x = reference_tensor<T>(reference(), p + "x" + k);
    const Tensor<T> dy = reference_tensor<T>(reference(), p + "dy" + k);
    expect_close(bn->forward(x, ctx), p + "y" + k);
    expect_close(bn->backward(dy), p + "dx" + k);
    if (c.affine) {
      expect_close(bn->weight_grad(), p + "dweight" + k);
      expect_close(bn->bias_grad(), p + "dbias" + k);
    }
  };
  for (int k = 0; k < 3; ++k) step(std::to_string(k), Context{Mode::Train, std::uint64_t(k)});
  if (c.track) {
    expect_close(bn->running_mean(), p + "running_mean");
    expect_close(bn->running_var(), p + "running_var");
    const NamedTensor& count = reference().at(p + "num_batches_tracked");
    REQUIRE(count.dtype == DType::I64);
    std::int64_t want = 0;
    std::memcpy(&want, count.bytes.data(), sizeof want);
    CHECK(bn->num_batches_tracked() == want);
  } else {
    CHECK(bn->buffers().empty());
  }
  step("_eval", Context{Mode::Eval, 3});
}

}  // namespace

TEST_CASE_TEMPLATE("BatchNorm parity with PyTorch: training steps, running statistics, evaluation",
                   T, float, double) {
  for (const Case& c : kCases) run_case<T>(c);
}

// A PyTorch network's state_dict, running statistics and num_batches_tracked included, as a
// minidl checkpoint: load_checkpoint takes it as it is, and the evaluation output matches
// PyTorch's with each batch norm folded into its convolution and without.
TEST_CASE_TEMPLATE("BatchNorm parity with PyTorch: a state_dict with buffers, loaded and evaluated",
                   T, float, double) {
  const std::string p = std::string(precision_prefix<T>()) + "net.";
  const std::string state = p + "state.";
  SafetensorsFile file;
  for (const NamedTensor& t : reference().tensors)
    if (t.name.rfind(state, 0) == 0) {
      file.tensors.push_back(t);
      file.tensors.back().name = t.name.substr(state.size());
    }
  file.metadata["format"] = kCheckpointFormat;
  TempDir dir("bn_parity_");
  write_safetensors(dir.file("net.safetensors"), file);
  for (const bool fold : {true, false}) {
    CAPTURE(fold);
    Sequential<T> net;
    net.add("conv1", Conv2d<T>(2, 4, 3, 1, 1, false));
    net.add("bn1", BatchNorm2d<T>(4));
    net.add("relu1", ReLU<T>(true));
    net.add("conv2", Conv2d<T>(4, 3, 3, 2, 1));
    net.add("bn2", BatchNorm2d<T>(3));
    PlanOptions options;
    options.fold_batchnorm = fold;
    net.set_plan_options(options);
    load_checkpoint(dir.file("net.safetensors"), net);
    CHECK(static_cast<BatchNorm2d<T>&>(net.layer("bn2")).num_batches_tracked() == 3);
    const Tensor<T> x = reference_tensor<T>(reference(), p + "x");
    CHECK((net.plan_summary(x.shape()).find("applies bn1 in evaluation") != std::string::npos) ==
          fold);
    expect_close(net.forward(x, Context{Mode::Eval, 0}), p + "y");
  }
}

}  // namespace test_parity_batchnorm
