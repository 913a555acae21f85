// benchmarks/network_flags.hpp - the command line that benchmarks/networks and its LibTorch twin
// (benchmarks/libtorch/networks.cpp) share, so that compare_networks.sh drives both alike.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>

namespace network_bench {

struct NetworkFlags {
  std::string name;        // --network, required
  std::int64_t batch = 0;  // --batch; 0: the network's own default
  std::int64_t threads = 2, steps = 20, runs = 200, warmup = 5;
  std::int64_t profile = 0;  // --profile STEPS: time each node instead (minidl only)
  bool help = false;         // --help or -h: print network_usage() and stop
};

inline std::string network_usage(const char* program) {
  return std::string("usage: ") + program +
         " --network mnist_cnn|lenet5|vgg_strided|wide|resnet [--batch N] [--threads N] "
         "[--steps N] [--runs N] [--warmup N] [--profile STEPS]";
}

// A whole number >= minimum from a flag's value, else an error naming the flag.
inline std::int64_t whole_number(const char* flag, const char* text, std::int64_t minimum) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < minimum)
    throw std::invalid_argument(std::string(flag) + " wants a whole number >= " +
                                std::to_string(minimum) + ", not '" + text + "'");
  return v;
}

// The flags of `program`; throws std::invalid_argument, with the usage, on anything else.
inline NetworkFlags parse_network_flags(int argc, char** argv, const char* program) {
  const std::string usage = network_usage(program);
  NetworkFlags f;
  for (int i = 1; i < argc; i += 2) {
    const char* flag = argv[i];
    if (!std::strcmp(flag, "--help") || !std::strcmp(flag, "-h")) {
      f.help = true;
      return f;
    }
    static const char* const known[] = {"--network", "--batch",  "--threads", "--steps",
                                        "--runs",    "--warmup", "--profile"};
    if (std::none_of(std::begin(known), std::end(known),
                     [&](const char* k) { return !std::strcmp(flag, k); }))
      throw std::invalid_argument(std::string("unknown option '") + flag + "'; " + usage);
    if (i + 1 >= argc) throw std::invalid_argument(std::string(flag) + " wants a value; " + usage);
    const char* value = argv[i + 1];
    if (!std::strcmp(flag, "--network"))
      f.name = value;
    else if (!std::strcmp(flag, "--batch"))
      f.batch = whole_number(flag, value, 1);
    else if (!std::strcmp(flag, "--threads"))
      f.threads = whole_number(flag, value, 1);
    else if (!std::strcmp(flag, "--steps"))
      f.steps = whole_number(flag, value, 1);
    else if (!std::strcmp(flag, "--runs"))
      f.runs = whole_number(flag, value, 1);
    else if (!std::strcmp(flag, "--profile"))
      f.profile = whole_number(flag, value, 1);
    else
      f.warmup = whole_number(flag, value, 0);
  }
  if (f.name.empty()) throw std::invalid_argument("--network is required; " + usage);
  return f;
}

}  // namespace network_bench
