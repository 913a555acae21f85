// Helpers shared by the test programs: a scratch folder per test case, whole-file reads and
// writes, and CHECK_ERROR for asserting on the message of a minidl::Error.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "minidl/core/error.hpp"

namespace minidl::testing {

// True when the CI variable asks for every test to run (set to anything but "", 0 or false).
inline bool ci_requires_everything() {
  const char* ci = std::getenv("CI");
  if (!ci) return false;
  const std::string v = ci;
  return !(v.empty() || v == "0" || v == "false" || v == "False" || v == "FALSE");
}

// Ends a test program that cannot run here: exit 77, which CTest reports as skipped
// (SKIP_RETURN_CODE), with the reason on one line; under CI=true exit 1, a failure,
// because CI must run every test. Only for a CTest entry that runs nothing but the test
// cases sharing this one requirement (the doctest suite "mnist_data", or a whole program).
[[noreturn]] inline void skip_program(const std::string& reason) {
  if (ci_requires_everything()) {
    std::fprintf(stderr, "error: %s (CI=true requires every test to run)\n", reason.c_str());
    std::exit(1);
  }
  std::printf("SKIPPED: %s\n", reason.c_str());
  std::fflush(stdout);
  std::exit(77);
}

// The MNIST folder named by MNIST_DIR, or the end of the program through skip_program.
// Test cases calling it belong in TEST_SUITE("mnist_data"), which CTest runs on its own.
inline std::string mnist_dir_or_skip() {
  const char* env = std::getenv("MNIST_DIR");
  if (!env || !*env) skip_program("MNIST_DIR is not set; point it at the MNIST folder");
  if (!std::filesystem::is_directory(env))
    skip_program(std::string("MNIST_DIR=") + env + " is not a folder");
  return env;
}

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
