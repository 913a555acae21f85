// minidl/io/atomic_file.hpp - replace a file's contents all at once or not at all.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <unistd.h>

#include "minidl/core/error.hpp"

namespace minidl {

// Writes `contents` to "<path>.tmp.<pid>" in the same folder, flushes it to
// disk and renames it over `path`: readers (and a crash) see the old file or
// the new one, never a part. On failure the temporary file is removed and an
// Error names the path.
inline void write_file_atomic(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path, ": cannot write (", std::strerror(errno), ")");
  const bool written = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
  const bool flushed = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!written || !flushed || !closed) {
    std::remove(tmp.c_str());
    fail(path, ": writing failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, ": cannot replace the file (", std::strerror(errno), ")");
  }
}

}  // namespace minidl
