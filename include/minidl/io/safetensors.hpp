// minidl/io/safetensors.hpp - read and write the safetensors format, validating everything.
//
// Layout: 8-byte little-endian header length N; N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "string value", ...}}
// then the data buffer, with offsets relative to its start. Tensors are raw
// little-endian, row-major, and together cover the buffer without gaps.
// Python's safetensors (and a few lines of numpy) read what this writes.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/io/atomic_file.hpp"
#include "minidl/io/json.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "minidl/io/safetensors.hpp copies tensor bytes as they are: it needs a little-endian host"
#endif

namespace minidl {

// PyTorch/numpy names: F64 is float64, BF16 bfloat16, BOOL one byte per value.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16:
      return 2;
    default:
      return 1;
  }
}

inline const char* dtype_name(DType t) {
  static const char* names[] = {"F64", "F32", "F16", "BF16", "I64",
                                "I32", "I16", "I8",  "U8",   "BOOL"};
  return names[static_cast<int>(t)];
}

// Sets `out` and returns true when `s` names a dtype.
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
  std::vector<std::uint8_t> bytes;  // little-endian, row-major
};

struct SafetensorsFile {
  std::vector<NamedTensor> tensors;
  // The caller's metadata. Checksums ("crc32:<name>") are added by
  // write_safetensors and checked and removed by read_safetensors.
  std::map<std::string, std::string> metadata;

  const NamedTensor* find(const std::string& name) const {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  const NamedTensor& at(const std::string& name) const {
    if (const NamedTensor* t = find(name)) return *t;
    std::string names;
    for (std::size_t i = 0; i < tensors.size() && i < 8; ++i)
      names += (i ? ", " : "") + tensors[i].name;
    if (tensors.size() > 8) names += ", ...";
    fail("no tensor named '", name, "' (the file holds ", tensors.size(), ": ", names, ")");
  }
};

// Header sizes beyond this are refused before anything is allocated.
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100u << 20;

inline std::uint32_t crc32_of(const std::vector<std::uint8_t>& bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::size_t done = 0; done < bytes.size();) {  // zlib takes 32-bit lengths
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(bytes.size() - done, 1u << 30));
    crc = crc32(crc, bytes.data() + done, chunk);
    done += chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

namespace detail {

inline std::string crc32_hex(const std::vector<std::uint8_t>& bytes) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(crc32_of(bytes)));
  return buf;
}

// Number of bytes a tensor of `shape` and `dtype` occupies; false on a
// negative dimension or when the size does not fit in 64 bits.
inline bool tensor_bytes(const std::vector<std::int64_t>& shape, DType dtype, std::uint64_t& out) {
  std::uint64_t n = dtype_size(dtype);
  for (std::int64_t d : shape) {
    const auto u = static_cast<std::uint64_t>(d);
    if (d < 0 || (u != 0 && n > UINT64_MAX / u)) return false;
    n *= u;
  }
  out = n;
  return true;
}

template <typename T>
NamedTensor make_tensor(std::string name, DType dtype, const T* data, std::size_t count,
                        std::vector<std::int64_t> shape) {
  std::uint64_t bytes = 0;
  if (!tensor_bytes(shape, dtype, bytes) || bytes != count * sizeof(T))
    fail("make_tensor '", name, "': shape ", shape_to_string(shape), " does not hold ", count,
         " elements");
  NamedTensor t{std::move(name), dtype, std::move(shape), std::vector<std::uint8_t>(bytes)};
  if (bytes) std::memcpy(t.bytes.data(), data, bytes);
  return t;
}

template <typename T>
void copy_tensor(const NamedTensor& t, DType dtype, T* out,
                 const std::vector<std::int64_t>& expected_shape) {
  if (t.dtype != dtype)
    fail("tensor '", t.name, "': expected dtype ", dtype_name(dtype), ", found ",
         dtype_name(t.dtype));
  if (t.shape != expected_shape)
    fail("tensor '", t.name, "': expected shape ", shape_to_string(expected_shape), ", found ",
         shape_to_string(t.shape));
  std::uint64_t bytes = 0;
  if (!tensor_bytes(t.shape, t.dtype, bytes) || bytes != t.bytes.size())
    fail("tensor '", t.name, "': shape ", shape_to_string(t.shape), " needs ", bytes,
         " bytes but it holds ", t.bytes.size());
  if (bytes) std::memcpy(out, t.bytes.data(), bytes);
}

}  // namespace detail

// A tensor of `count` values copied from `data`; `shape` must hold exactly `count` values.
inline NamedTensor make_tensor(std::string name, const float* data, std::size_t count,
                               std::vector<std::int64_t> shape) {
  return detail::make_tensor(std::move(name), DType::F32, data, count, std::move(shape));
}
inline NamedTensor make_tensor(std::string name, const double* data, std::size_t count,
                               std::vector<std::int64_t> shape) {
  return detail::make_tensor(std::move(name), DType::F64, data, count, std::move(shape));
}
inline NamedTensor make_tensor(std::string name, const std::int64_t* data, std::size_t count,
                               std::vector<std::int64_t> shape) {
  return detail::make_tensor(std::move(name), DType::I64, data, count, std::move(shape));
}

// Copies `t` into `out` (room for the product of `shape` values) after
// checking that its dtype matches the pointer type and its shape is `shape`.
inline void copy_tensor(const NamedTensor& t, float* out, const std::vector<std::int64_t>& shape) {
  detail::copy_tensor(t, DType::F32, out, shape);
}
inline void copy_tensor(const NamedTensor& t, double* out, const std::vector<std::int64_t>& shape) {
  detail::copy_tensor(t, DType::F64, out, shape);
}
inline void copy_tensor(const NamedTensor& t, std::int64_t* out,
                        const std::vector<std::int64_t>& shape) {
  detail::copy_tensor(t, DType::I64, out, shape);
}

// Writes `file` atomically (temporary file, fsync, rename). Tensors go into
// the buffer sorted by name; the header is padded with spaces to a multiple
// of 8 so the data stays aligned; each tensor's CRC-32 is recorded as
// metadata "crc32:<name>" (replacing any the caller passed in).
inline void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  std::vector<const NamedTensor*> sorted;
  for (const auto& t : file.tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });

  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : file.metadata)
    if (k.rfind("crc32:", 0) != 0) meta[k] = v;
  Json header = Json::object();
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const NamedTensor& t = *sorted[i];
    if (t.name.empty() || t.name == "__metadata__")
      fail(path, ": cannot write a tensor named '", t.name, "'");
    if (i && sorted[i - 1]->name == t.name)
      fail(path, ": two tensors are named '", t.name, "'; names must be unique");
    std::uint64_t bytes = 0;
    if (!detail::tensor_bytes(t.shape, t.dtype, bytes) || bytes != t.bytes.size())
      fail(path, ": tensor '", t.name, "' of shape ", shape_to_string(t.shape), " and dtype ",
           dtype_name(t.dtype), " needs ", bytes, " bytes but holds ", t.bytes.size());
    Json entry = Json::object();
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + bytes};
    header[t.name] = std::move(entry);
    offset += bytes;
    meta["crc32:" + t.name] = detail::crc32_hex(t.bytes);
  }
  if (!meta.empty()) {
    Json m = Json::object();
    for (const auto& [k, v] : meta) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::string text = dump_json(header, path);
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>(text.size() >> (8 * i));
  out.reserve(8 + text.size() + offset);
  out += text;
  for (const NamedTensor* t : sorted)
    out.append(reinterpret_cast<const char*>(t->bytes.data()), t->bytes.size());
  write_file_atomic(path, out);
}

// Reads and validates a whole file: header length within the file, JSON well
// formed, every entry with a known dtype and a shape whose byte size equals
// its offsets, offsets inside the buffer and covering it without overlap or
// gap, and matching CRC-32s where recorded. Tensors come back in name order.
inline SafetensorsFile read_safetensors(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) fail(path, ": file does not exist");
  if (ec) fail(path, ": cannot access file: ", ec.message());
  if (fs::is_directory(status)) fail(path, ": is a directory, expected a .safetensors file");
  const std::uint64_t size = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot read the file size: ", ec.message());
  if (size < 8)
    fail(path, ": file is ", size, " bytes, too short for the 8-byte safetensors header length");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open file: ", std::strerror(errno));

  std::uint8_t len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | len[i];
  if (header_len > size - 8)
    fail(path, ": header length ", header_len, " runs past the end of the file (only ", size - 8,
         " bytes follow the length field): truncated, or not a safetensors file");
  if (header_len > kSafetensorsMaxHeader)
    fail(path, ": header length ", header_len, " exceeds the 100 MB limit");
  std::string text(static_cast<std::size_t>(header_len), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_len)))
    fail(path, ": read error in the header");
  const Json root = parse_json(text, path + ": header");
  if (!root.is_object())
    fail(path, ": the header is ", json_type(root), ", expected a JSON object");

  SafetensorsFile file;
  const std::uint64_t buffer_size = size - 8 - header_len;
  struct Span {
    std::uint64_t begin, end;
    std::size_t index;
  };
  std::vector<Span> spans;
  const auto offset = [&](const Json& v, const std::string& name) {
    if (!v.is_number_unsigned())
      fail(path, ": tensor '", name, "': data_offsets must be non-negative integers, found ",
           dump_json(v, path));
    return v.get<std::uint64_t>();
  };
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        fail(path, ": __metadata__ is ", json_type(entry), ", expected an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string())
          fail(path, ": metadata value of '", k, "' is ", json_type(v), ", expected a string");
        file.metadata[k] = v.get_ref<const std::string&>();
      }
      continue;
    }
    if (!entry.is_object()) fail(path, ": entry of tensor '", name, "' is not an object");
    const Json* dtype = json_member(entry, "dtype");
    const Json* shape = json_member(entry, "shape");
    const Json* offsets = json_member(entry, "data_offsets");
    if (!dtype || !shape || !offsets)
      fail(path, ": tensor '", name, "' lacks ",
           !dtype   ? "dtype"
           : !shape ? "shape"
                    : "data_offsets");
    NamedTensor t;
    t.name = name;
    if (!dtype->is_string() || !parse_dtype(dtype->get_ref<const std::string&>(), t.dtype))
      fail(path, ": tensor '", name, "' has unknown dtype ", dump_json(*dtype, path),
           " (known: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    if (!shape->is_array()) fail(path, ": tensor '", name, "': shape is not an array");
    for (const Json& d : *shape) {
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > INT64_MAX)
        fail(path, ": tensor '", name, "': shape ", dump_json(*shape, path),
             " must hold non-negative integers");
      t.shape.push_back(d.get<std::int64_t>());
    }
    if (!offsets->is_array() || offsets->size() != 2)
      fail(path, ": tensor '", name, "': data_offsets must be [begin, end], found ",
           dump_json(*offsets, path));
    const std::uint64_t begin = offset((*offsets)[0], name);
    const std::uint64_t end = offset((*offsets)[1], name);
    if (begin > end)
      fail(path, ": tensor '", name, "' has data_offsets [", begin, ", ", end,
           "] that end before they begin");
    if (end > buffer_size)
      fail(path, ": tensor '", name, "' has data_offsets [", begin, ", ", end, "] outside the ",
           buffer_size, "-byte data buffer (truncated file?)");
    std::uint64_t bytes = 0;
    if (!detail::tensor_bytes(t.shape, t.dtype, bytes))
      fail(path, ": tensor '", name, "': shape ", shape_to_string(t.shape), " is too large");
    if (bytes != end - begin)
      fail(path, ": tensor '", name, "' of shape ", shape_to_string(t.shape), " and dtype ",
           dtype_name(t.dtype), " needs ", bytes, " bytes but its data_offsets span ", end - begin);
    spans.push_back({begin, end, file.tensors.size()});
    file.tensors.push_back(std::move(t));
  }

  // The format requires the tensors to tile the buffer exactly.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  for (const Span& s : spans) {
    if (s.begin < expected)
      fail(path, ": tensor '", file.tensors[s.index].name, "' at bytes [", s.begin, ", ", s.end,
           ") overlaps the data of another tensor");
    if (s.begin > expected)
      fail(path, ": gap in the data buffer: bytes [", expected, ", ", s.begin,
           ") belong to no tensor");
    expected = s.end;
  }
  if (expected != buffer_size)
    fail(path, ": the data buffer holds ", buffer_size, " bytes but the tensors account for ",
         expected);

  for (const Span& s : spans) {  // in file order, so reading is sequential
    NamedTensor& t = file.tensors[s.index];
    t.bytes.resize(static_cast<std::size_t>(s.end - s.begin));
    if (!in.read(reinterpret_cast<char*>(t.bytes.data()),
                 static_cast<std::streamsize>(t.bytes.size())))
      fail(path, ": read error in tensor '", t.name, "'");
    const auto crc = file.metadata.find("crc32:" + t.name);
    if (crc != file.metadata.end() && crc->second != detail::crc32_hex(t.bytes))
      fail(path, ": checksum mismatch in tensor ", t.name, ": file is corrupt (crc32 recorded ",
           crc->second, ", computed ", detail::crc32_hex(t.bytes), ")");
  }
  // The checksums describe this file, not the caller's data: drop them so a
  // rewrite computes fresh ones.
  for (auto it = file.metadata.begin(); it != file.metadata.end();)
    it = it->first.rfind("crc32:", 0) == 0 ? file.metadata.erase(it) : std::next(it);
  std::sort(file.tensors.begin(), file.tensors.end(),
            [](const NamedTensor& a, const NamedTensor& b) { return a.name < b.name; });
  return file;
}

}  // namespace minidl
