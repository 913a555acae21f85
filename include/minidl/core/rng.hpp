// minidl/core/rng.hpp - deterministic, counter-based random numbers with a saveable state.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>

namespace minidl {

// SplitMix64's finaliser: a bijective mix of 64 bits. Hashing (key, counter)
// instead of stepping a hidden state makes every draw addressable, so dropout
// masks can be keyed by (seed, step, element) and do not depend on which
// thread draws them or in what order.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Independent 64-bit value for the triple (seed, stream, index).
inline std::uint64_t hash64(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return mix64(mix64(mix64(seed) ^ stream) ^ index);
}

// Uniform in [0, 1) with 24 random bits (float) or 53 (double).
template <typename T>
inline T uniform01(std::uint64_t bits) {
  if constexpr (sizeof(T) == 4) {
    return static_cast<T>(bits >> 40) * static_cast<T>(1.0 / 16777216.0);
  } else {
    return static_cast<T>(bits >> 11) * static_cast<T>(1.0 / 9007199254740992.0);
  }
}

// A stream of random numbers whose whole state is (seed, counter): saving
// those two integers in a checkpoint and restoring them continues the stream
// exactly where it stopped.
class Rng {
 public:
  struct State {
    std::uint64_t seed = 0;
    std::uint64_t counter = 0;
  };

  explicit Rng(std::uint64_t seed = 0) { state_.seed = seed; }
  explicit Rng(State state) : state_(state) {}

  State state() const { return state_; }
  void set_state(State state) { state_ = state; }

  std::uint64_t next_u64() { return hash64(state_.seed, 0x5EED, state_.counter++); }

  // Uniform in [lo, hi).
  template <typename T = double>
  T uniform(T lo = 0, T hi = 1) {
    return lo + (hi - lo) * uniform01<T>(next_u64());
  }

  // Uniform integer in [0, n) without modulo bias (n > 0).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t x;
    do x = next_u64();
    while (x >= limit);
    return x % n;
  }

  // Standard normal by Box-Muller (two draws per value, none cached, so the
  // state stays two integers).
  double normal() {
    const double u1 = 1.0 - uniform<double>();  // (0, 1]: log is finite
    const double u2 = uniform<double>();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  // Fisher-Yates shuffle of [first, last).
  template <typename It>
  void shuffle(It first, It last) {
    const auto n = static_cast<std::uint64_t>(last - first);
    for (std::uint64_t i = n; i > 1; --i) std::swap(first[i - 1], first[below(i)]);
  }

 private:
  State state_;
};

}  // namespace minidl
