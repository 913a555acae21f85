// minidl/core/memory.hpp - 64-byte aligned buffers that only grow.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace minidl {

// Cache-line (and AVX-512 register) alignment of every buffer minidl owns.
inline constexpr std::size_t kAlignment = 64;

struct AlignedFree {
  void operator()(void* p) const noexcept { ::operator delete(p, std::align_val_t(kAlignment)); }
};

// Allocates count elements of T aligned to kAlignment; throws std::bad_alloc.
// Through the aligned operator new, so that a program (or a test) that
// replaces operator new sees every allocation minidl makes.
template <typename T>
std::unique_ptr<T[], AlignedFree> aligned_alloc_array(std::size_t count) {
  const std::size_t bytes = std::max<std::size_t>(count * sizeof(T), 1);
  void* p = ::operator new(bytes, std::align_val_t(kAlignment));
  return std::unique_ptr<T[], AlignedFree>(static_cast<T*>(p));
}

// Scratch memory for kernels: reserve() reallocates only when asked for more
// than it holds, so a buffer reused across training steps stops allocating
// after the first step. Contents are not preserved across a growth.
template <typename T>
class ScratchBuffer {
 public:
  T* reserve(std::size_t count) {
    if (count > capacity_) {
      data_ = aligned_alloc_array<T>(count);
      capacity_ = count;
    }
    return data_.get();
  }
  std::size_t capacity() const { return capacity_; }

 private:
  std::unique_ptr<T[], AlignedFree> data_;
  std::size_t capacity_ = 0;
};

// Per-thread scratch of the kernels, one buffer per (T, Slot): grows on first
// use and is then reused, so warm training steps do not allocate. A kernel
// gives each buffer it needs at once its own slot.
template <typename T, int Slot>
T* thread_scratch(std::int64_t count) {
  thread_local ScratchBuffer<T> buffer;
  return buffer.reserve(static_cast<std::size_t>(count));
}

}  // namespace minidl
