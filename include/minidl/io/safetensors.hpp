// minidl/io/safetensors.hpp - read and write the safetensors format, validating everything.
//
// Layout: 8-byte little-endian header length N; N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "string value", ...}}
// then the data buffer, with offsets relative to its start. Tensors are raw
// little-endian, row-major. Readable by Python's safetensors and by numpy.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/io/atomic_file.hpp"
#include "minidl/io/json.hpp"

namespace minidl {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    default: return 1;
  }
}

inline const char* dtype_name(DType t) {
  static const char* names[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
  return names[static_cast<int>(t)];
}

inline bool parse_dtype(const std::string& s, DType& out) {
  for (int i = 0; i <= static_cast<int>(DType::BOOL); ++i)
    if (s == dtype_name(static_cast<DType>(i))) {
      out = static_cast<DType>(i);
      return true;
    }
  return false;
}

struct NamedTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes;
};

struct SafetensorsFile {
  std::vector<NamedTensor> tensors;
  std::map<std::string, std::string> metadata;

  const NamedTensor* find(const std::string& name) const {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

// Header sizes beyond this are refused before anything is allocated.
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100u << 20;

inline std::uint32_t crc32_of(const std::vector<std::uint8_t>& bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  std::size_t done = 0;
  while (done < bytes.size()) {  // zlib takes 32-bit lengths
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(bytes.size() - done, 1u << 30));
    crc = crc32(crc, bytes.data() + done, chunk);
    done += chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

// Writes `file` atomically. Tensors go into the buffer sorted by name, the
// header is padded with spaces to a multiple of 8 (so the data stays
// aligned), and each tensor's CRC-32 is recorded as metadata "crc32:<name>".
inline void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  std::vector<const NamedTensor*> sorted;
  for (const auto& t : file.tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  std::map<std::string, std::string> meta = file.metadata;
  std::string header = "{";
  std::uint64_t offset = 0;
  for (const NamedTensor* t : sorted) {
    if (t->name == "__metadata__" || t->name.empty()) fail(path, ": invalid tensor name '", t->name, "'");
    std::uint64_t count = 1;
    for (auto d : t->shape) {
      if (d < 0) fail(path, ": tensor '", t->name, "' has a negative dimension");
      count *= static_cast<std::uint64_t>(d);
    }
    if (count * dtype_size(t->dtype) != t->bytes.size())
      fail(path, ": tensor '", t->name, "' of shape ", shape_to_string(t->shape), " and dtype ", dtype_name(t->dtype),
           " needs ", count * dtype_size(t->dtype), " bytes, has ", t->bytes.size());
    header += json::quote(t->name) + ":{\"dtype\":\"" + dtype_name(t->dtype) + "\",\"shape\":[";
    for (std::size_t i = 0; i < t->shape.size(); ++i) header += (i ? "," : "") + std::to_string(t->shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t->bytes.size()) + "]},";
    offset += t->bytes.size();
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", crc32_of(t->bytes));
    meta["crc32:" + t->name] = crc;
  }
  header += "\"__metadata__\":{";
  bool first = true;
  for (const auto& [k, v] : meta) {
    header += (first ? "" : ",") + json::quote(k) + ":" + json::quote(v);
    first = false;
  }
  header += "}}";
  while (header.size() % 8) header += ' ';
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  out += header;
  out.reserve(out.size() + offset);
  for (const NamedTensor* t : sorted) out.append(reinterpret_cast<const char*>(t->bytes.data()), t->bytes.size());
  write_file_atomic(path, out);
}

namespace detail {

inline std::int64_t json_uint(const json::Value& v, const std::string& path, const std::string& what) {
  if (v.kind != json::Value::Kind::Number || v.text.empty() || v.text[0] == '-' ||
      v.text.find_first_of(".eE") != std::string::npos || v.text.size() > 18)
    fail(path, ": ", what, " must be a non-negative integer, got '", v.text, "'");
  return std::stoll(v.text);
}

}  // namespace detail

// Reads and validates a whole file: header length within the file, JSON
// well formed, every entry with a known dtype, a shape whose byte size equals
// its offsets, offsets inside the buffer, covering it without overlap or gap,
// and matching CRC-32s where recorded.
inline SafetensorsFile read_safetensors(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) fail(path, ": file does not exist");
  if (fs::is_directory(status)) fail(path, ": is a directory, expected a .safetensors file");
  const std::uint64_t size = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot read the file size: ", ec.message());
  if (size < 8) fail(path, ": file is ", size, " bytes, too short for a safetensors header");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  std::uint8_t len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | len[i];
  if (header_len > size - 8)
    fail(path, ": header length ", header_len, " runs past the end of the file (", size, " bytes): truncated or not safetensors");
  if (header_len > kSafetensorsMaxHeader) fail(path, ": header length ", header_len, " exceeds the 100 MB limit");
  std::string header(static_cast<std::size_t>(header_len), '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len))) fail(path, ": read error in the header");
  const json::Value root = json::parse(header, path);
  if (root.kind != json::Value::Kind::Object) fail(path, ": the header is not a JSON object");

  SafetensorsFile file;
  const std::uint64_t buffer_size = size - 8 - header_len;
  struct Span {
    std::uint64_t begin, end;
    std::size_t index;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : root.object) {
    if (name == "__metadata__") {
      if (entry.kind != json::Value::Kind::Object) fail(path, ": __metadata__ is not an object");
      for (const auto& [k, v] : entry.object) {
        if (v.kind != json::Value::Kind::String) fail(path, ": metadata value of \"", k, "\" is not a string");
        file.metadata[k] = v.text;
      }
      continue;
    }
    if (entry.kind != json::Value::Kind::Object) fail(path, ": entry of tensor '", name, "' is not an object");
    const json::Value* dtype = entry.find("dtype");
    const json::Value* shape = entry.find("shape");
    const json::Value* offsets = entry.find("data_offsets");
    if (!dtype || !shape || !offsets) fail(path, ": tensor '", name, "' lacks dtype, shape or data_offsets");
    NamedTensor t;
    t.name = name;
    if (dtype->kind != json::Value::Kind::String || !parse_dtype(dtype->text, t.dtype))
      fail(path, ": tensor '", name, "' has unknown dtype '", dtype->text, "'");
    if (shape->kind != json::Value::Kind::Array || shape->array.size() > 8)
      fail(path, ": tensor '", name, "' has a malformed shape");
    std::uint64_t bytes = dtype_size(t.dtype);
    for (const auto& d : shape->array) {
      const std::int64_t dim = detail::json_uint(d, path, "a dimension of tensor '" + name + "'");
      t.shape.push_back(dim);
      if (dim != 0 && bytes > buffer_size / static_cast<std::uint64_t>(dim)) bytes = buffer_size + 1;  // overflow-safe
      else bytes *= static_cast<std::uint64_t>(dim);
    }
    if (offsets->kind != json::Value::Kind::Array || offsets->array.size() != 2)
      fail(path, ": tensor '", name, "' needs data_offsets [begin, end]");
    const auto begin = static_cast<std::uint64_t>(detail::json_uint(offsets->array[0], path, "an offset"));
    const auto end = static_cast<std::uint64_t>(detail::json_uint(offsets->array[1], path, "an offset"));
    if (begin > end || end > buffer_size)
      fail(path, ": tensor '", name, "' has data_offsets [", begin, ", ", end, "] outside the ", buffer_size,
           "-byte data buffer (truncated file?)");
    if (end - begin != bytes)
      fail(path, ": tensor '", name, "' of shape ", shape_to_string(t.shape), " and dtype ", dtype->text, " needs ", bytes,
           " bytes but its offsets span ", end - begin);
    spans.push_back({begin, end, file.tensors.size()});
    file.tensors.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::uint64_t expected = 0;
  for (const Span& s : spans) {
    if (s.begin < expected) fail(path, ": tensor '", file.tensors[s.index].name, "' overlaps another tensor's data");
    if (s.begin > expected) fail(path, ": gap in the data buffer before tensor '", file.tensors[s.index].name, "'");
    expected = s.end;
  }
  if (expected != buffer_size)
    fail(path, ": the data buffer holds ", buffer_size, " bytes but the tensors account for ", expected);
  for (const Span& s : spans) {
    NamedTensor& t = file.tensors[s.index];
    t.bytes.resize(static_cast<std::size_t>(s.end - s.begin));
    in.seekg(static_cast<std::streamoff>(8 + header_len + s.begin));
    if (!in.read(reinterpret_cast<char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size())))
      fail(path, ": read error in tensor '", t.name, "'");
    auto crc = file.metadata.find("crc32:" + t.name);
    if (crc != file.metadata.end()) {
      char actual[16];
      std::snprintf(actual, sizeof actual, "%08x", crc32_of(t.bytes));
      if (crc->second != actual) fail(path, ": checksum mismatch in tensor '", t.name, "': the file is corrupt");
    }
  }
  // The checksums describe the file, not its contents: keep them out of the
  // metadata handed back so that a rewrite recomputes them.
  for (auto it = file.metadata.begin(); it != file.metadata.end();)
    it = it->first.rfind("crc32:", 0) == 0 ? file.metadata.erase(it) : std::next(it);
  return file;
}

}  // namespace minidl
