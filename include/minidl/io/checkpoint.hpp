// minidl/io/checkpoint.hpp - a network (and optionally its optimizer) as a safetensors file.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <utility>

#include "minidl/io/safetensors.hpp"
#include "minidl/layers/sequential.hpp"
#include "minidl/optim/optimizer.hpp"

namespace minidl {

// Layout of a checkpoint (docs/interop.md):
//   "<layer>.<param>"            every parameter, PyTorch's name and layout
//   "<layer>.<buffer>"           every buffer ("bn1.running_mean"), as in
//                                PyTorch's state_dict; counters as I64 of shape []
//   "optimizer.<state name>"     optimizer buffers ("optimizer.exp_avg.fc1.weight")
//   __metadata__: "format" = "minidl", "format_version" = "1",
//     "optimizer.type", "optimizer.step", plus whatever the caller adds.
// Parameters and buffer tensors are F32 for Tensor<float> and F64 for Tensor<double>.
inline constexpr const char* kCheckpointFormat = "minidl";
inline constexpr const char* kCheckpointVersion = "1";

namespace detail {

// Names a type without letting a template argument be deduced from it.
template <typename U>
struct NotDeduced {
  using type = U;
};

template <typename T>
constexpr DType dtype_of() {
  return std::is_same<T, float>::value ? DType::F32 : DType::F64;
}

template <typename T>
NamedTensor to_named(const std::string& name, const Tensor<T>& t) {
  NamedTensor n;
  n.name = name;
  n.dtype = dtype_of<T>();
  n.shape = t.shape().to_vector();
  n.bytes.resize(static_cast<std::size_t>(t.size()) * sizeof(T));
  if (!n.bytes.empty()) std::memcpy(n.bytes.data(), t.data(), n.bytes.size());
  return n;
}

// Copies tensor `name` of the file into t, checking it is there with t's dtype and shape.
template <typename T>
void from_named(const SafetensorsFile& file, const std::string& path, const std::string& name,
                Tensor<T>& t) {
  const NamedTensor* n = file.find(name);
  if (!n)
    fail(path, ": tensor '", name, "' ", t.shape().str(),
         " is missing (is this a checkpoint of this model?)");
  if (n->dtype != dtype_of<T>())
    fail(path, ": tensor '", name, "' has dtype ", dtype_name(n->dtype), ", expected ",
         dtype_name(dtype_of<T>()));
  if (n->shape != t.shape().to_vector())
    fail(path, ": tensor '", name, "' has shape ", shape_to_string(n->shape), ", expected ",
         t.shape().str());
  if (!n->bytes.empty()) std::memcpy(t.data(), n->bytes.data(), n->bytes.size());
  // A NaN or an infinity would only turn every prediction into NaN later, silently.
  std::int64_t bad = 0, first = -1;
  for (std::int64_t i = 0; i < t.size(); ++i)
    if (!std::isfinite(static_cast<double>(t[i])) && bad++ == 0) first = i;
  if (bad > 0)
    fail(path, ": tensor '", name, "' holds ", bad, " non-finite value", bad > 1 ? "s" : "",
         " (the first, ", t[first], ", at index ", first,
         "); the model diverged before it was saved: use an earlier checkpoint");
}

// A counter buffer (num_batches_tracked) as PyTorch stores it: I64, shape [].
inline NamedTensor count_to_named(const std::string& name, std::int64_t count) {
  return minidl::make_tensor(name, &count, 1, {});
}

// Reads counter buffer `name`, which must be an I64 of shape [] holding a count >= 0.
inline std::int64_t count_from_named(const SafetensorsFile& file, const std::string& path,
                                     const std::string& name) {
  const NamedTensor* n = file.find(name);
  if (!n)
    fail(path, ": buffer '", name,
         "' is missing (a checkpoint of a network without this layer's running statistics?)");
  if (n->dtype != DType::I64 || !n->shape.empty())
    fail(path, ": buffer '", name, "' has dtype ", dtype_name(n->dtype), " and shape ",
         shape_to_string(n->shape), ", expected I64 and shape []");
  std::int64_t count = 0;
  std::memcpy(&count, n->bytes.data(), sizeof count);
  if (count < 0) fail(path, ": buffer '", name, "' holds ", count, ", expected a count >= 0");
  return count;
}

}  // namespace detail

// Writes the parameters, the optimizer's state (when given) and `metadata`
// atomically: a crash leaves the previous file or the new one, never a mix.
// The optimizer argument does not take part in deducing T, so that `nullptr` (no optimizer
// state) can be passed as it is.
template <typename T>
void save_checkpoint(const std::string& path, Sequential<T>& net,
                     typename detail::NotDeduced<Optimizer<T>>::type* optimizer = nullptr,
                     std::map<std::string, std::string> metadata = {}) {
  SafetensorsFile file;
  for (auto& p : net.parameters()) file.tensors.push_back(detail::to_named(p.name, *p.value));
  for (auto& b : net.buffers())
    file.tensors.push_back(b.value ? detail::to_named(b.name, *b.value)
                                   : detail::count_to_named(b.name, *b.count));
  metadata["format"] = kCheckpointFormat;
  metadata["format_version"] = kCheckpointVersion;
  if (optimizer) {
    for (auto& [name, tensor] : optimizer->state())
      file.tensors.push_back(detail::to_named("optimizer." + name, *tensor));
    metadata["optimizer.type"] = optimizer->type();
    metadata["optimizer.step"] = std::to_string(optimizer->step_count());
  }
  file.metadata = std::move(metadata);
  write_safetensors(path, file);
}

// The parameters and `metadata`, without optimizer state.
template <typename T>
void save_checkpoint(const std::string& path, Sequential<T>& net,
                     std::map<std::string, std::string> metadata) {
  save_checkpoint(path, net, nullptr, std::move(metadata));
}

// Reads a checkpoint into `net` (and `optimizer`, when given) and returns its
// metadata. Every parameter and buffer must be present with the network's
// shape; the network is only modified once the whole file has been
// validated.
template <typename T>
std::map<std::string, std::string> load_checkpoint(const std::string& path, Sequential<T>& net,
                                                   Optimizer<T>* optimizer = nullptr) {
  const SafetensorsFile file = read_safetensors(path);
  auto meta = file.metadata;
  if (meta["format"] != kCheckpointFormat)
    fail(path, ": not a minidl checkpoint (metadata \"format\" is '", meta["format"],
         "', expected '", kCheckpointFormat, "')");
  // Validate everything into temporaries first, then commit.
  std::vector<std::pair<Tensor<T>*, Tensor<T>>> staged;
  for (auto& p : net.parameters()) {
    Tensor<T> t(p.value->shape());
    detail::from_named(file, path, p.name, t);
    staged.emplace_back(p.value, std::move(t));
  }
  std::vector<std::pair<std::int64_t*, std::int64_t>> staged_counts;
  for (auto& b : net.buffers()) {
    if (b.count) {
      staged_counts.emplace_back(b.count, detail::count_from_named(file, path, b.name));
      continue;
    }
    if (!file.find(b.name))
      fail(path, ": buffer '", b.name, "' ", b.value->shape().str(),
           " is missing (a checkpoint of a network without this layer's running statistics?)");
    Tensor<T> t(b.value->shape());
    detail::from_named(file, path, b.name, t);
    staged.emplace_back(b.value, std::move(t));
  }
  std::int64_t step = 0;
  if (optimizer) {
    if (meta["optimizer.type"] != optimizer->type())
      fail(path, ": holds optimizer state of type '", meta["optimizer.type"], "', expected '",
           optimizer->type(), "'");
    for (auto& [name, tensor] : optimizer->state()) {
      Tensor<T> t(tensor->shape());
      detail::from_named(file, path, "optimizer." + name, t);
      staged.emplace_back(tensor, std::move(t));
    }
    try {
      step = std::stoll(meta["optimizer.step"]);
    } catch (const std::exception&) {
      fail(path, ": metadata \"optimizer.step\" is not an integer: '", meta["optimizer.step"], "'");
    }
  }
  for (auto& [dst, src] : staged) dst->copy_from(src);
  for (auto& [dst, count] : staged_counts) *dst = count;
  if (optimizer) optimizer->set_step_count(step);
  return meta;
}

}  // namespace minidl
