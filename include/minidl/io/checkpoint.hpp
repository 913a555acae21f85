// minidl/io/checkpoint.hpp - a network (and optionally its optimizer) as a safetensors file.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "minidl/io/safetensors.hpp"
#include "minidl/layers/sequential.hpp"
#include "minidl/optim/lr_scheduler.hpp"
#include "minidl/optim/optimizer.hpp"

namespace minidl {

// Layout of a checkpoint (docs/interop.md):
//   "<layer>.<param>"            every parameter, PyTorch's name and layout
//   "<layer>.<buffer>"           every buffer ("bn1.running_mean"), as in
//                                PyTorch's state_dict; counters as I64 of shape []
//   "optimizer.<state name>"     optimizer buffers ("optimizer.exp_avg.fc1.weight")
//   __metadata__: "format" = "minidl", "format_version" = "1",
//     "optimizer.type", "optimizer.step", plus whatever the caller adds;
//     "optimizer.updates.<param>" for a parameter whose update count differs
//     from the step (it was frozen for some steps);
//     with a scheduler: "scheduler.type", "scheduler.settings",
//     "scheduler.last_epoch" and "scheduler.base_lrs" (one exact decimal per
//     group, 17 digits: they read back as the same doubles).
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

// Reads metadata `key` as an integer in [lo, hi].
inline std::int64_t metadata_integer(const std::string& path,
                                     const std::map<std::string, std::string>& meta,
                                     const std::string& key, std::int64_t lo, std::int64_t hi) {
  const auto it = meta.find(key);
  const std::string text = it == meta.end() ? "" : it->second;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi)
    fail(path, ": metadata \"", key, "\" is '", text, "', expected an integer from ", lo, " to ",
         hi);
  return v;
}

// The scheduler's metadata entries.
template <typename T>
std::map<std::string, std::string> scheduler_metadata(const LrScheduler<T>& scheduler) {
  std::string lrs;
  for (double lr : scheduler.state().base_lrs) lrs += (lrs.empty() ? "" : " ") + exact_decimal(lr);
  return {{"scheduler.type", scheduler.schedule().type()},
          {"scheduler.settings", scheduler.schedule().describe()},
          {"scheduler.last_epoch", std::to_string(scheduler.state().last_epoch)},
          {"scheduler.base_lrs", lrs}};
}

// The scheduler state the metadata holds, checked against `scheduler`'s schedule and groups.
template <typename T>
LrSchedulerState read_scheduler_state(const std::string& path,
                                      const std::map<std::string, std::string>& meta,
                                      const LrScheduler<T>& scheduler, std::size_t groups) {
  const LrSchedule& schedule = scheduler.schedule();
  const auto type = meta.find("scheduler.type");
  if (type == meta.end())
    fail(path, ": holds no learning-rate scheduler state (saved without a scheduler), expected ",
         schedule.type());
  if (type->second != schedule.type())
    fail(path, ": holds the state of a ", type->second, " schedule, expected ", schedule.type());
  const auto settings = meta.find("scheduler.settings");
  if (settings == meta.end() || settings->second != schedule.describe())
    fail(path, ": its ", schedule.type(), " schedule had settings '",
         settings == meta.end() ? "" : settings->second, "', this one has '", schedule.describe(),
         "'");
  LrSchedulerState state;
  state.last_epoch = metadata_integer(path, meta, "scheduler.last_epoch", 0, INT64_MAX);
  const auto lrs = meta.find("scheduler.base_lrs");
  const std::string text = lrs == meta.end() ? "" : lrs->second;
  const char* at = text.c_str();
  while (*at != '\0') {
    char* end = nullptr;
    const double lr = std::strtod(at, &end);
    if (end == at || !(lr >= 0) || (*end != ' ' && *end != '\0'))
      fail(path, ": metadata \"scheduler.base_lrs\" is not a list of learning rates: '", text, "'");
    state.base_lrs.push_back(lr);
    at = *end == ' ' ? end + 1 : end;
  }
  if (state.base_lrs.size() != groups)
    fail(path, ": holds scheduler state for ", state.base_lrs.size(),
         " parameter groups, the optimizer has ", groups);
  return state;
}

template <typename T>
std::map<std::string, std::string> load_checkpoint(const std::string& path, Sequential<T>& net,
                                                   Optimizer<T>* optimizer,
                                                   LrScheduler<T>* scheduler);

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
    for (std::size_t i = 0; i < optimizer->parameters().size(); ++i)
      if (optimizer->update_count(i) != optimizer->step_count())
        metadata["optimizer.updates." + optimizer->parameters()[i].name] =
            std::to_string(optimizer->update_count(i));
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

// The same with the learning-rate scheduler's state, so that a resumed run
// continues the schedule exactly: load it with the load_checkpoint that
// takes the scheduler.
template <typename T>
void save_checkpoint(const std::string& path, Sequential<T>& net,
                     typename detail::NotDeduced<Optimizer<T>>::type* optimizer,
                     const typename detail::NotDeduced<LrScheduler<T>>::type& scheduler,
                     std::map<std::string, std::string> metadata = {}) {
  for (auto& [key, value] : detail::scheduler_metadata(scheduler)) metadata[key] = value;
  save_checkpoint(path, net, optimizer, std::move(metadata));
}

// Reads a checkpoint into `net` (and `optimizer`, when given) and returns its
// metadata. Every parameter and buffer must be present with the network's
// shape; the network is only modified once the whole file has been
// validated.
template <typename T>
std::map<std::string, std::string> load_checkpoint(const std::string& path, Sequential<T>& net,
                                                   Optimizer<T>* optimizer = nullptr) {
  return detail::load_checkpoint(path, net, optimizer, static_cast<LrScheduler<T>*>(nullptr));
}

// The same, and the scheduler's state, which the file must hold for the same
// schedule (type and settings) and the same number of parameter groups.
// `scheduler` must drive `optimizer`: loading sets the optimizer's rates.
template <typename T>
std::map<std::string, std::string> load_checkpoint(const std::string& path, Sequential<T>& net,
                                                   Optimizer<T>* optimizer,
                                                   LrScheduler<T>& scheduler) {
  return detail::load_checkpoint(path, net, optimizer, &scheduler);
}

namespace detail {

template <typename T>
std::map<std::string, std::string> load_checkpoint(const std::string& path, Sequential<T>& net,
                                                   Optimizer<T>* optimizer,
                                                   LrScheduler<T>* scheduler) {
  const SafetensorsFile file = read_safetensors(path);
  auto meta = file.metadata;
  if (meta["format"] != kCheckpointFormat)
    fail(path, ": not a minidl checkpoint (metadata \"format\" is '", meta["format"],
         "', expected '", kCheckpointFormat, "')");
  // Validate everything into temporaries first, then commit.
  std::vector<std::pair<Tensor<T>*, Tensor<T>>> staged;
  for (auto& p : net.parameters()) {
    Tensor<T> t(p.value->shape());
    from_named(file, path, p.name, t);
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
  std::vector<std::int64_t> updates;
  if (optimizer) {
    if (meta["optimizer.type"] != optimizer->type())
      fail(path, ": holds optimizer state of type '", meta["optimizer.type"], "', expected '",
           optimizer->type(), "'");
    for (auto& [name, tensor] : optimizer->state()) {
      Tensor<T> t(tensor->shape());
      from_named(file, path, "optimizer." + name, t);
      staged.emplace_back(tensor, std::move(t));
    }
    try {
      step = std::stoll(meta["optimizer.step"]);
    } catch (const std::exception&) {
      fail(path, ": metadata \"optimizer.step\" is not an integer: '", meta["optimizer.step"], "'");
    }
    for (const auto& p : optimizer->parameters()) {
      const std::string key = "optimizer.updates." + p.name;
      updates.push_back(meta.count(key) ? metadata_integer(path, meta, key, 0, step) : step);
    }
  }
  LrSchedulerState schedule_state;
  if (scheduler) {
    if (!optimizer) fail(path, ": loading a scheduler's state needs its optimizer");
    schedule_state = read_scheduler_state(path, meta, *scheduler, optimizer->group_count());
  }
  for (auto& [dst, src] : staged) dst->copy_from(src);
  for (auto& [dst, count] : staged_counts) *dst = count;
  if (optimizer) {
    optimizer->set_step_count(step);
    for (std::size_t i = 0; i < updates.size(); ++i) optimizer->set_update_count(i, updates[i]);
  }
  if (scheduler) scheduler->load_state(schedule_state);
  return meta;
}

}  // namespace detail

}  // namespace minidl
