// examples/common/onnx_model.hpp - the commands' ONNX files: `export`, and .onnx models for
// evaluate and predict. Built with minidl::onnx when CMake found it (MINIDL_WITH_ONNX);
// otherwise each use says so.
#pragma once

#include <cstdint>
#include <string>

#include "minidl/core/error.hpp"
#include "minidl/layers/graph.hpp"
#ifdef MINIDL_WITH_ONNX
#include "minidl/onnx/export.hpp"
#include "minidl/onnx/import.hpp"
#endif

namespace cli {

inline bool is_onnx_file(const std::string& path) {
  const std::string ext = ".onnx";
  return path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
}

// Writes `net` for [N, 1, rows, cols] images to `path`, atomically.
inline void export_onnx(minidl::Graph<float>& net, std::int64_t rows, std::int64_t cols,
                        const std::string& path) {
#ifdef MINIDL_WITH_ONNX
  minidl::onnx::export_model(net, minidl::Shape{1, 1, rows, cols}, path);
#else
  (void)net, (void)rows, (void)cols;
  minidl::fail(path, ": this program was built without ONNX support (libonnx-dev)");
#endif
}

// The network of an ONNX file, checked to map [N, 1, rows, cols] images to
// `classes` scores.
inline minidl::Graph<float> import_onnx(const std::string& path, std::int64_t rows,
                                        std::int64_t cols, std::int64_t classes) {
#ifdef MINIDL_WITH_ONNX
  auto model = minidl::onnx::import_model<float>(path);
  const auto& in = model.input_shape;
  const bool fits = in.size() == 4 && (in[1] == 0 || in[1] == 1) && (in[2] == 0 || in[2] == rows) &&
                    (in[3] == 0 || in[3] == cols);
  if (!fits)
    minidl::fail(path, ": the model takes input ", minidl::shape_to_string(in),
                 ", expected [N, 1, ", rows, ", ", cols, "]");
  minidl::Shape out;
  try {
    out = model.graph.output_shape(minidl::Shape{1, 1, rows, cols});
  } catch (const minidl::Error& e) {
    minidl::fail(path, ": ", e.what());
  }
  if (out != minidl::Shape{1, classes})
    minidl::fail(path, ": the model's output is ", out.str(), " for one image, expected [1, ",
                 classes, "] (one score per class)");
  return std::move(model.graph);
#else
  (void)rows, (void)cols, (void)classes;
  minidl::fail(path, ": this program was built without ONNX support (libonnx-dev)");
#endif
}

}  // namespace cli
