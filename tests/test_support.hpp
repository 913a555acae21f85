// Helpers shared by the test programs: a scratch folder per test case, whole-file reads and
// writes, and CHECK_ERROR for asserting on the message of a minidl::Error.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "minidl/core/error.hpp"

namespace minidl::testing {

// A fresh, empty folder per test case, removed with everything in it afterwards.
// It is named `<prefix><pid>_<n>`, so that each test program keeps its own folders
// and runs of the same program at the same time never share one.
struct TempDir {
  std::filesystem::path path;

  explicit TempDir(const std::string& prefix) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           (prefix + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;  // a destructor must not throw
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The path of `name` inside the folder.
  std::string file(const std::string& name) const { return (path / name).string(); }

  // The names of everything in the folder, sorted.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

// The whole file as bytes; empty if it cannot be read.
inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Writes `bytes` as the whole file, failing the test case if that does not succeed.
inline void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
  REQUIRE(f.good());
}

// The message of the minidl::Error that `f()` throws, or a placeholder saying none was thrown.
template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const minidl::Error& e) {
    return e.what();
  }
  return "<no minidl::Error thrown>";
}

}  // namespace minidl::testing

// Checks that `expr` throws minidl::Error with every one of the given strings in its message.
#define CHECK_ERROR(expr, ...)                                                        \
  do {                                                                                \
    const std::string msg_ = ::minidl::testing::error_message([&] { (void)(expr); }); \
    for (const std::string& part_ : std::initializer_list<std::string>{__VA_ARGS__})  \
      CHECK_MESSAGE(msg_.find(part_) != std::string::npos,                            \
                    "message \"" << msg_ << "\" lacks \"" << part_ << "\"");          \
  } while (0)
