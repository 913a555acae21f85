// minidl/onnx/proto.hpp - ONNX files and tensors through the ONNX project's protobuf classes.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"

namespace minidl::onnx {

// The operator set the export writes: 13 is supported by Debian's onnx 1.12,
// OpenCV 4.6 and onnxruntime alike, and has Softmax along one axis.
inline constexpr std::int64_t kExportOpset = 13;
// The opsets the import reads (ONNX 1.0 to 1.12). Older operator versions
// differ in attributes (Gemm's broadcast, BatchNormalization's is_test...),
// which the import refuses by name.
inline constexpr std::int64_t kMinImportOpset = 1, kMaxImportOpset = 17;

// The ONNX element type of float and double.
template <typename T>
constexpr int element_type() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "ONNX tensors of float or double");
  return std::is_same<T, float>::value ? ::onnx::TensorProto::FLOAT : ::onnx::TensorProto::DOUBLE;
}

inline const char* element_type_name(int type) {
  return ::onnx::TensorProto::DataType_IsValid(type)
             ? ::onnx::TensorProto::DataType_Name(static_cast<::onnx::TensorProto::DataType>(type))
                   .c_str()
             : "an unknown type";
}

// A TensorProto named `name` holding t (dims as t's shape; raw little-endian data).
template <typename T>
::onnx::TensorProto to_tensor_proto(const std::string& name, const Tensor<T>& t) {
  ::onnx::TensorProto p;
  p.set_name(name);
  p.set_data_type(element_type<T>());
  for (std::int64_t d : t.shape().to_vector()) p.add_dims(d);
  p.set_raw_data(std::string(reinterpret_cast<const char*>(t.data()),
                             static_cast<std::size_t>(t.size()) * sizeof(T)));
  return p;
}

// A scalar constant (a TensorProto without dims).
template <typename T>
::onnx::TensorProto scalar_proto(const std::string& name, T value) {
  ::onnx::TensorProto p;
  p.set_name(name);
  p.set_data_type(element_type<T>());
  p.set_raw_data(std::string(reinterpret_cast<const char*>(&value), sizeof(T)));
  return p;
}

// The dims of a TensorProto, checked: non-negative, and a product that fits.
// `where` starts every message ("model.onnx: initializer 'conv1.weight'").
inline std::vector<std::int64_t> checked_dims(const ::onnx::TensorProto& p,
                                              const std::string& where) {
  std::vector<std::int64_t> dims(p.dims().begin(), p.dims().end());
  std::int64_t n = 1;
  for (std::int64_t d : dims) {
    if (d < 0) fail(where, ": negative dimension ", d, " in ", shape_to_string(dims));
    if (d > 0 && n > std::numeric_limits<std::int64_t>::max() / 8 / d)
      fail(where, ": shape ", shape_to_string(dims), " is too large");
    n *= d;
  }
  return dims;
}

inline std::int64_t element_count(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (std::int64_t d : dims) n *= d;
  return n;
}

// The elements of a FLOAT or DOUBLE TensorProto as T, after checking that
// the data is in the file (not external) and holds exactly the elements the
// dims claim.
template <typename T>
std::vector<T> tensor_values(const ::onnx::TensorProto& p, const std::string& where) {
  if (p.data_location() == ::onnx::TensorProto::EXTERNAL || p.external_data_size() > 0)
    fail(where, ": data in an external file is not supported (save the model as one file)");
  const std::vector<std::int64_t> dims = checked_dims(p, where);
  const std::int64_t n = element_count(dims);
  const int type = p.data_type();
  if (type != ::onnx::TensorProto::FLOAT && type != ::onnx::TensorProto::DOUBLE)
    fail(where, ": element type ", element_type_name(type), ", expected FLOAT or DOUBLE");
  const std::size_t width = type == ::onnx::TensorProto::FLOAT ? 4 : 8;
  const auto un = static_cast<std::size_t>(n);
  std::vector<T> out;
  if (p.has_raw_data()) {
    if (p.raw_data().size() != un * width)
      fail(where, ": shape ", shape_to_string(dims), " needs ", un * width, " bytes of data, has ",
           p.raw_data().size());
    out.resize(un);
    const char* raw = p.raw_data().data();
    for (std::size_t i = 0; i < un; ++i) {
      if (width == 4) {
        float v;
        std::memcpy(&v, raw + i * 4, 4);
        out[i] = static_cast<T>(v);
      } else {
        double v;
        std::memcpy(&v, raw + i * 8, 8);
        out[i] = static_cast<T>(v);
      }
    }
    return out;
  }
  const auto have = static_cast<std::size_t>(
      type == ::onnx::TensorProto::FLOAT ? p.float_data_size() : p.double_data_size());
  if (have != un)
    fail(where, ": shape ", shape_to_string(dims), " needs ", un, " elements, the file holds ",
         have);
  out.resize(un);
  for (std::size_t i = 0; i < un; ++i)
    out[i] = type == ::onnx::TensorProto::FLOAT
                 ? static_cast<T>(p.float_data(static_cast<int>(i)))
                 : static_cast<T>(p.double_data(static_cast<int>(i)));
  return out;
}

// The elements of an INT64 (or INT32, or BOOL) TensorProto, such as Reshape's shape.
inline std::vector<std::int64_t> int64_values(const ::onnx::TensorProto& p,
                                              const std::string& where) {
  if (p.data_location() == ::onnx::TensorProto::EXTERNAL || p.external_data_size() > 0)
    fail(where, ": data in an external file is not supported (save the model as one file)");
  const auto n = static_cast<std::size_t>(element_count(checked_dims(p, where)));
  const int type = p.data_type();
  if (type != ::onnx::TensorProto::INT64 && type != ::onnx::TensorProto::INT32 &&
      type != ::onnx::TensorProto::BOOL)
    fail(where, ": element type ", element_type_name(type), ", expected INT64");
  const std::size_t width = type == ::onnx::TensorProto::INT64   ? 8
                            : type == ::onnx::TensorProto::INT32 ? 4
                                                                 : 1;
  std::vector<std::int64_t> out(n);
  if (p.has_raw_data()) {
    if (p.raw_data().size() != n * width)
      fail(where, ": ", n, " integers need ", n * width, " bytes of data, has ",
           p.raw_data().size());
    for (std::size_t i = 0; i < n; ++i) {
      if (width == 8) {
        std::memcpy(&out[i], p.raw_data().data() + i * 8, 8);
      } else if (width == 1) {
        out[i] = p.raw_data()[i] != 0;
      } else {
        std::int32_t v;
        std::memcpy(&v, p.raw_data().data() + i * 4, 4);
        out[i] = v;
      }
    }
    return out;
  }
  const auto have = static_cast<std::size_t>(
      type == ::onnx::TensorProto::INT64 ? p.int64_data_size() : p.int32_data_size());
  if (have != n) fail(where, ": ", n, " integers claimed, the file holds ", have);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = type == ::onnx::TensorProto::INT64 ? p.int64_data(static_cast<int>(i))
                                                : p.int32_data(static_cast<int>(i));
  return out;
}

// A minidl tensor from a TensorProto (rank 1 to 4; a scalar becomes [1]).
template <typename T>
Tensor<T> to_tensor(const ::onnx::TensorProto& p, const std::string& where) {
  std::vector<std::int64_t> dims = checked_dims(p, where);
  if (dims.size() > static_cast<std::size_t>(Shape::kMaxRank))
    fail(where, ": rank ", dims.size(), " (", shape_to_string(dims), "), minidl holds rank 1 to ",
         Shape::kMaxRank);
  if (dims.empty()) dims = {1};
  const std::vector<T> values = tensor_values<T>(p, where);
  Tensor<T> t{Shape(dims)};
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

// The whole file as bytes; an Error naming it when it cannot be read.
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the file");
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) fail(path, ": reading failed");
  return os.str();
}

// Parses an ONNX model file (a serialized ModelProto).
inline ::onnx::ModelProto read_model_proto(const std::string& path) {
  const std::string bytes = read_bytes(path);
  ::onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes))
    fail(path, ": not an ONNX model (", bytes.empty() ? "empty file" : "malformed protobuf", ")");
  return model;
}

// Parses a serialized TensorProto (the input_*.pb and output_*.pb of ONNX's tests).
inline ::onnx::TensorProto read_tensor_proto(const std::string& path) {
  const std::string bytes = read_bytes(path);
  ::onnx::TensorProto t;
  if (!t.ParseFromString(bytes)) fail(path, ": not an ONNX tensor (malformed protobuf)");
  return t;
}

}  // namespace minidl::onnx
