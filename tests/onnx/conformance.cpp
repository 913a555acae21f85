// The ONNX backend node tests (Debian's libonnx-testdata) of the operators minidl imports.
// Usage: onnx_conformance [NODE_TESTS_DIR] [--table]
//
// Each test folder holds model.onnx (one node) and test_data_set_0/input_*.pb and
// output_0.pb. The first graph input is the network's input; the others (weights, which
// the tests pass as inputs) become initializers. A test passes when minidl imports it and
// its output matches output_0.pb as ONNX's own runner checks it (|got - want| <= 1e-7 +
// 1e-3 |want|); it is unsupported when the import refuses it with an Error (the reason is
// printed); it fails when minidl computes something else. Exit status: 1 if any test
// fails or none passes, 77 (skipped; 1 under CI=true) without the test data.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "minidl/onnx/import.hpp"

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kOperators = {"AveragePool", "BatchNormalization",
                                          "Concat",      "Conv",
                                          "Dropout",     "Flatten",
                                          "Gemm",        "GlobalAveragePool",
                                          "Identity",    "LeakyRelu",
                                          "LogSoftmax",  "MatMul",
                                          "MaxPool",     "Relu",
                                          "Sigmoid",     "Softmax",
                                          "Sum",         "Tanh",
                                          "Add"};

struct Result {
  std::string test, op, outcome, reason;  // outcome: passed, failed, unsupported
};

template <typename T>
Result run_case(::onnx::ModelProto model, const fs::path& dir, Result r) {
  const fs::path data = dir / "test_data_set_0";
  auto* graph = model.mutable_graph();
  // Graph inputs after the first are the operator's other arguments: constants here.
  for (int k = 1; k < graph->input_size(); ++k) {
    ::onnx::TensorProto t =
        minidl::onnx::read_tensor_proto((data / ("input_" + std::to_string(k) + ".pb")).string());
    t.set_name(graph->input(k).name());
    *graph->add_initializer() = t;
  }
  auto imported = minidl::onnx::import_model<T>(model, (dir / "model.onnx").string());
  const auto input = minidl::onnx::read_tensor_proto((data / "input_0.pb").string());
  const auto expected = minidl::onnx::read_tensor_proto((data / "output_0.pb").string());
  const minidl::Tensor<T> x = minidl::onnx::to_tensor<T>(input, "input_0.pb");
  const minidl::Tensor<T> want = minidl::onnx::to_tensor<T>(expected, "output_0.pb");
  const minidl::Tensor<T>& got = imported.graph.forward(x, minidl::Context{});
  if (got.size() != want.size()) {
    r.outcome = "failed";
    r.reason = "output " + got.shape().str() + ", expected " + want.shape().str();
    return r;
  }
  double worst = 0;
  for (std::int64_t i = 0; i < got.size(); ++i) {
    const double w = static_cast<double>(want[i]), g = static_cast<double>(got[i]);
    const double excess = std::abs(g - w) - (1e-7 + 1e-3 * std::abs(w));
    if (!(excess <= 0)) worst = std::max(worst, std::isnan(excess) ? HUGE_VAL : excess);
  }
  r.outcome = worst > 0 ? "failed" : "passed";
  if (worst > 0)
    r.reason = "outputs differ by up to " + std::to_string(worst) + " beyond tolerance";
  return r;
}

Result run_test(const fs::path& dir) {
  Result r;
  r.test = dir.filename().string();
  const std::string path = (dir / "model.onnx").string();
  try {
    const ::onnx::ModelProto model = minidl::onnx::read_model_proto(path);
    r.op = model.graph().node_size() ? model.graph().node(0).op_type() : "";
    if (model.graph().node_size() != 1 || !kOperators.count(r.op)) return r;  // not ours
    const int type = model.graph().input(0).type().tensor_type().elem_type();
    if (type == ::onnx::TensorProto::DOUBLE) return run_case<double>(model, dir, r);
    return run_case<float>(model, dir, r);
  } catch (const minidl::Error& e) {
    r.outcome = "unsupported";
    r.reason = e.what();
    const std::string prefix = path + ": ";
    if (r.reason.compare(0, prefix.size(), prefix) == 0) r.reason.erase(0, prefix.size());
  }
  return r;
}

bool ci_requires_everything() {
  const char* ci = std::getenv("CI");
  const std::string v = ci ? ci : "";
  return !(v.empty() || v == "0" || v == "false" || v == "False" || v == "FALSE");
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = "/usr/share/libonnx-testdata/data/node";
  bool table = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--table")
      table = true;
    else
      root = a;
  }
  if (!fs::is_directory(root)) {
    std::printf("%s: %s is not a folder (apt-get install libonnx-testdata)\n",
                ci_requires_everything() ? "error" : "SKIPPED", root.c_str());
    return ci_requires_everything() ? 1 : 77;
  }
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());

  std::map<std::string, std::vector<Result>> by_op;
  int passed = 0, failed = 0, unsupported = 0;
  for (const auto& dir : dirs) {
    Result r = run_test(dir);
    if (r.outcome.empty()) continue;
    (r.outcome == "passed" ? passed : r.outcome == "failed" ? failed : unsupported)++;
    by_op[r.op].push_back(r);
  }
  if (table) {
    std::printf(
        "| operator | node tests | passed | not supported | failed |\n|---|---|---|---|---|\n");
    for (const auto& [op, results] : by_op) {
      int p = 0, f = 0, u = 0;
      for (const auto& r : results) (r.outcome == "passed" ? p : r.outcome == "failed" ? f : u)++;
      std::printf("| %s | %zu | %d | %d | %d |\n", op.c_str(), results.size(), p, u, f);
    }
    std::printf("\n");
  }
  for (const auto& [op, results] : by_op)
    for (const auto& r : results)
      if (r.outcome != "passed")
        std::printf("%s %s: %s\n", r.outcome == "failed" ? "FAILED" : "not supported",
                    r.test.c_str(), r.reason.c_str());
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, unsupported);
  return failed > 0 || passed == 0 ? 1 : 0;
}
