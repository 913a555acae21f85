// minidl/data/idx.hpp - IDX image/label readers (raw or gzip) that reject bad files, never crash.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include "minidl/core/byte_order.hpp"
#include "minidl/core/error.hpp"

namespace minidl {

// An IDX image file: `count` images of rows x cols bytes, row-major, one after another.
struct IdxImages {
  std::int64_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;
};

namespace detail {

inline constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
inline constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension

// Limits on what a header may declare. Nothing is allocated until the file is
// known to hold the declared bytes, and gzip output is never kept beyond the
// declared size, so a lying header or a gzip bomb fails fast and cheaply.
inline constexpr std::uint64_t kIdxMaxBytes = std::uint64_t{1} << 30;  // 1 GiB of pixel data
inline constexpr std::int64_t kIdxMaxSide = 1 << 14;                   // rows or cols

inline std::string idx_hex(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
  return buf;
}

// Size of the regular file at `path`, or an Error saying why it cannot be read as one.
inline std::uint64_t idx_file_size(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) fail(path, ": file does not exist");
  if (ec) fail(path, ": cannot access file: ", ec.message());
  if (fs::is_directory(st)) fail(path, ": is a directory, expected an IDX file");
  if (!fs::is_regular_file(st)) fail(path, ": is not a regular file");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) fail(path, ": cannot read file size: ", ec.message());
  if (size == 0) fail(path, ": file is empty");
  return size;
}

// Inflates the gzip data `gz` (one or more members), stopping as soon as more
// than `limit` bytes have come out: a result longer than `limit` therefore
// means "the content is longer than expected", without inflating the rest.
inline std::vector<std::uint8_t> idx_gunzip(const std::string& path,
                                            const std::vector<std::uint8_t>& gz,
                                            std::uint64_t limit) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) fail(path, ": cannot initialise zlib");
  struct End {
    z_stream* zs;
    ~End() { inflateEnd(zs); }
  } end{&zs};

  constexpr std::size_t kChunk = std::size_t{1} << 20;
  const std::uint64_t cap = limit + 1;
  std::vector<std::uint8_t> out;
  // Deflate expands at most about 1032:1, so min(cap, 1032 x compressed size)
  // is backed by the file itself. Reserving it up front means the buffer is
  // never copied while it grows (which doubled the peak memory of a load).
  out.reserve(static_cast<std::size_t>(
      std::min<std::uint64_t>(cap, std::uint64_t{1032} * gz.size() + 1024)));
  std::size_t produced = 0, fed = 0;  // bytes written to `out`, bytes of `gz` handed to zlib
  while (produced < cap) {
    if (zs.avail_in == 0) {
      if (fed == gz.size())
        fail(path, ": gzip stream is truncated (the compressed data ends after ", produced,
             " decompressed bytes)");
      zs.next_in = const_cast<Bytef*>(gz.data() + fed);  // zlib's API is not const-correct
      zs.avail_in = static_cast<uInt>(std::min<std::size_t>(gz.size() - fed, kChunk));
      fed += zs.avail_in;
    }
    // Grow geometrically but never past `cap`, so memory stays bounded by the limit.
    if (produced == out.size()) {
      const std::size_t grow = std::max(kChunk, out.size());
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, out.size() + grow)));
    }
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - produced, kChunk));
    const uInt room = zs.avail_out;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (rc == Z_STREAM_END) {
      const std::size_t consumed = fed - zs.avail_in;
      if (consumed == gz.size()) break;
      // `cat a.gz b.gz` is a valid gzip file: continue with the next member.
      if (gz.size() - consumed >= 2 && gz[consumed] == 0x1f && gz[consumed + 1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      fail(path, ": ", gz.size() - consumed, " bytes of trailing garbage after the gzip stream");
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) continue;  // needs more input
    if (rc != Z_OK)
      fail(path, ": corrupt gzip stream (", zs.msg ? zs.msg : "zlib error", " after ", produced,
           " decompressed bytes)");
  }
  out.resize(produced);
  return out;
}

// "60000 images of 28x28 (47040000 bytes)" or "60000 labels (60000 bytes)".
inline std::string idx_describe(const std::vector<std::int64_t>& dims) {
  std::string s = std::to_string(dims[0]);
  if (dims.size() == 3)
    s += " images of " + std::to_string(dims[1]) + "x" + std::to_string(dims[2]);
  else
    s += " labels";
  return s;
}

// Reads an IDX file of unsigned bytes with `magic` (images or labels); returns
// the dimensions from its header and the data that follows.
inline std::vector<std::uint8_t> read_idx(const std::string& path, std::uint32_t magic,
                                          std::vector<std::int64_t>& dims) {
  const bool images = magic == kIdxImagesMagic;
  const std::size_t ndims = images ? 3 : 1;
  const std::size_t header_size = 4 + 4 * ndims;
  const std::uint64_t file_size = idx_file_size(path);
  // Runs an allocation of `bytes`; out of memory names the file and the size.
  auto allocating = [&path](std::uint64_t bytes, auto&& allocate) {
    try {
      return allocate();
    } catch (const std::bad_alloc&) {
      fail(path, ": out of memory: cannot allocate ", static_cast<double>(bytes) / 1e6,
           " MB to load this file");
    }
  };

  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open file: ", std::strerror(errno));
  // Detect gzip by its magic bytes, not by the file name.
  std::uint8_t sig[2] = {0, 0};
  in.read(reinterpret_cast<char*>(sig), file_size >= 2 ? 2 : 1);
  const bool gzip = file_size >= 2 && sig[0] == 0x1f && sig[1] == 0x8b;
  in.seekg(0);

  std::vector<std::uint8_t> gz, head;
  if (gzip) {
    if (file_size > kIdxMaxBytes)
      fail(path, ": compressed file is ", file_size, " bytes, more than the 1 GiB limit");
    allocating(file_size, [&] { gz.resize(static_cast<std::size_t>(file_size)); });
    if (!in.read(reinterpret_cast<char*>(gz.data()), static_cast<std::streamsize>(gz.size())))
      fail(path, ": read error after ", in.gcount(), " of ", file_size, " bytes");
    head = idx_gunzip(path, gz, header_size);  // inflates only the first few bytes
  } else {
    head.resize(static_cast<std::size_t>(std::min<std::uint64_t>(header_size, file_size)));
    if (!in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size())))
      fail(path, ": read error in the header");
  }
  const char* holder = gzip ? "the decompressed file" : "the file";
  const char* kind = images ? "IDX image file" : "IDX label file";

  if (head.size() < 4)
    fail(path, ": truncated header: ", holder, " holds only ", head.size(), " bytes but an ", kind,
         " header needs ", header_size);
  const std::uint32_t found = read_be32(head.data());
  if (found != magic) {
    const char* hint = found == kIdxImagesMagic   ? " (this is an IDX image file)"
                       : found == kIdxLabelsMagic ? " (this is an IDX label file)"
                                                  : " (not an IDX file of unsigned bytes)";
    fail(path, ": wrong magic number ", idx_hex(found), ", expected ", idx_hex(magic), " for an ",
         kind, hint);
  }
  if (head.size() < header_size)
    fail(path, ": truncated header: ", holder, " holds only ", head.size(), " bytes but an ", kind,
         " header needs ", header_size);

  dims.assign(ndims, 0);
  for (std::size_t d = 0; d < ndims; ++d) dims[d] = read_be32(head.data() + 4 + 4 * d);
  const std::string desc = idx_describe(dims);
  for (std::int64_t d : dims)
    if (d == 0) fail(path, ": header declares ", desc, ": a dimension is zero");
  if (images && (dims[1] > kIdxMaxSide || dims[2] > kIdxMaxSide))
    fail(path, ": header declares ", desc, ": absurd image size (limit ", kIdxMaxSide,
         " per side)");
  // Each factor is below 2^32 and the running product below 2^30, so this cannot overflow.
  std::uint64_t declared = 1;
  for (std::int64_t d : dims) {
    declared *= static_cast<std::uint64_t>(d);
    if (declared > kIdxMaxBytes)
      fail(path, ": header declares ", desc, ": absurd size, more than the 1 GiB limit");
  }
  const std::string declares =
      ": header declares " + desc + " (" + std::to_string(declared) + " bytes) but " + holder;

  if (gzip) {
    std::vector<std::uint8_t> all = allocating(
        header_size + declared, [&] { return idx_gunzip(path, gz, header_size + declared); });
    if (all.size() > header_size + declared)
      fail(path, declares, " holds more data than that (trailing bytes after the last item)");
    if (all.size() < header_size + declared)
      fail(path, declares, " holds ", all.size() - header_size, " bytes of data");
    all.erase(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(header_size));
    return all;
  }
  if (file_size - header_size != declared)
    fail(path, declares, " holds ", file_size - header_size, " bytes of data");
  std::vector<std::uint8_t> data = allocating(
      declared, [&] { return std::vector<std::uint8_t>(static_cast<std::size_t>(declared)); });
  in.seekg(static_cast<std::streamoff>(header_size));
  if (!in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size())))
    fail(path, ": read error after ", in.gcount(), " of ", declared, " data bytes");
  return data;
}

}  // namespace detail

// Reads an IDX image file (magic 0x00000803), raw or gzip-compressed.
inline IdxImages read_idx_images(const std::string& path) {
  std::vector<std::int64_t> dims;
  IdxImages out;
  out.pixels = detail::read_idx(path, detail::kIdxImagesMagic, dims);
  out.count = dims[0];
  out.rows = dims[1];
  out.cols = dims[2];
  return out;
}

// Reads an IDX label file (magic 0x00000801), raw or gzip-compressed.
inline std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  std::vector<std::int64_t> dims;
  return detail::read_idx(path, detail::kIdxLabelsMagic, dims);
}

}  // namespace minidl
