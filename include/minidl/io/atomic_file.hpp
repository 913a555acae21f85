// minidl/io/atomic_file.hpp - replace a file's contents all at once or not at all.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include <unistd.h>

#include "minidl/core/error.hpp"

namespace minidl {

// Writes `size` bytes to "<path>.tmp.<pid>.<n>" in the same folder (n counts
// this process's writes, so that two threads writing one path never share a
// temporary file), flushes it to disk and renames it over `path`: readers
// (and a crash) see the old file or the new one, never a part. On failure
// the temporary file is removed and an Error names the path and the reason.
// A writer killed mid-write leaves its temporary file; a program that owns
// the folder may remove "<name>.tmp.*" once it knows no writer is alive.
inline void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
  static std::atomic<unsigned> writes{0};
  const std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(writes++);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path, ": cannot write (", std::strerror(errno), ")");
  // The cause of the first step that fails: writing, flushing, syncing or closing.
  bool ok =
      std::fwrite(data, 1, size, f) == size && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  int cause = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    cause = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    fail(path, ": writing failed (", std::strerror(cause), "); is the disk full?");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_errno = errno;
    std::remove(tmp.c_str());
    fail(path, ": cannot replace the file (", std::strerror(rename_errno), ")");
  }
}

inline void write_file_atomic(const std::string& path, const std::string& contents) {
  write_file_atomic(path, contents.data(), contents.size());
}

}  // namespace minidl
