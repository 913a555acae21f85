// The readers under test take file paths: each fuzz input is written to a
// private temporary file first.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

inline std::string write_fuzz_input(const std::uint8_t* data, std::size_t size,
                                    const char* suffix) {
  static const std::string path = "/tmp/minidl_fuzz_" + std::to_string(::getpid()) + suffix;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}
