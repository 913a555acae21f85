// minidl/core/tensor.hpp - Tensor<T>: a shape of rank 1-4 over aligned, contiguous storage.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/core/memory.hpp"

namespace minidl {

// Dimensions of a tensor, outermost first (N, C, H, W for images). Fixed
// capacity so that passing shapes around never allocates.
class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) {
    if (dims.size() < 1 || dims.size() > kMaxRank)
      fail("Shape: rank must be 1 to ", kMaxRank, ", got ", dims.size());
    for (std::int64_t d : dims) push(d);
  }
  explicit Shape(const std::vector<std::int64_t>& dims) {
    if (dims.size() < 1 || dims.size() > kMaxRank)
      fail("Shape: rank must be 1 to ", kMaxRank, ", got ", dims.size());
    for (std::int64_t d : dims) push(d);
  }

  int rank() const { return rank_; }
  std::int64_t operator[](int i) const { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t numel() const {
    std::int64_t n = rank_ ? 1 : 0;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }
  std::vector<std::int64_t> to_vector() const {
    return std::vector<std::int64_t>(dims_.begin(), dims_.begin() + rank_);
  }
  std::string str() const { return shape_to_string(to_vector()); }

  friend bool operator==(const Shape& a, const Shape& b) {
    return a.rank_ == b.rank_ &&
           std::equal(a.dims_.begin(), a.dims_.begin() + a.rank_, b.dims_.begin());
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

 private:
  void push(std::int64_t d) {
    if (d < 0) fail("Shape: negative dimension ", d);
    dims_[static_cast<std::size_t>(rank_++)] = d;
  }
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

// A dense, row-major tensor of float or double.
//
// Copies are shallow, like torch.Tensor: a copy or a reshape() is a view that
// shares the same storage; clone() makes an independent deep copy. Storage is
// 64-byte aligned. resize() keeps the storage when it is large enough, which is
// how layers reuse their buffers from one training step to the next.
template <typename T>
class Tensor {
  static_assert(std::is_floating_point<T>::value, "Tensor<T> holds float or double");

 public:
  using value_type = T;

  Tensor() = default;
  // A zero-filled tensor of the given shape.
  explicit Tensor(const Shape& shape) { resize(shape); }
  Tensor(std::initializer_list<std::int64_t> dims) : Tensor(Shape(dims)) {}

  static Tensor zeros(const Shape& shape) { return Tensor(shape); }
  static Tensor full(const Shape& shape, T value) {
    Tensor t(shape);
    t.fill(value);
    return t;
  }

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  std::int64_t dim(int i) const {
    if (i < 0 || i >= shape_.rank())
      fail("Tensor::dim(", i, ") on a tensor of shape ", shape_.str());
    return shape_[i];
  }
  std::int64_t size() const { return shape_.rank() ? shape_.numel() : 0; }
  bool empty() const { return size() == 0; }

  T* data() { return data_; }
  const T* data() const { return data_; }
  T* begin() { return data_; }
  T* end() { return data_ + size(); }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size(); }

  T& operator[](std::int64_t i) { return data_[i]; }
  const T& operator[](std::int64_t i) const { return data_[i]; }

  // Element access by index along each dimension (unchecked, like operator[]).
  T& operator()(std::int64_t i0) { return data_[offset(i0)]; }
  T& operator()(std::int64_t i0, std::int64_t i1) { return data_[offset(i0, i1)]; }
  T& operator()(std::int64_t i0, std::int64_t i1, std::int64_t i2) {
    return data_[offset(i0, i1, i2)];
  }
  T& operator()(std::int64_t i0, std::int64_t i1, std::int64_t i2, std::int64_t i3) {
    return data_[offset(i0, i1, i2, i3)];
  }
  const T& operator()(std::int64_t i0) const { return data_[offset(i0)]; }
  const T& operator()(std::int64_t i0, std::int64_t i1) const { return data_[offset(i0, i1)]; }
  const T& operator()(std::int64_t i0, std::int64_t i1, std::int64_t i2) const {
    return data_[offset(i0, i1, i2)];
  }
  const T& operator()(std::int64_t i0, std::int64_t i1, std::int64_t i2, std::int64_t i3) const {
    return data_[offset(i0, i1, i2, i3)];
  }

  // Gives the tensor a new shape. Reuses the storage when it holds enough
  // elements (views of it then see the new contents); otherwise allocates
  // zeroed storage. Contents are unspecified after a resize.
  void resize(const Shape& shape) {
    const auto n = static_cast<std::size_t>(shape.numel());
    if (!storage_ || n > capacity_) {
      std::shared_ptr<T> fresh(allocate(shape, n).release(), AlignedFree());
      std::memset(static_cast<void*>(fresh.get()), 0, n * sizeof(T));
      storage_ = std::move(fresh);
      capacity_ = n;
    }
    data_ = storage_.get();
    shape_ = shape;
  }

  // A view of the same elements with another shape of the same size.
  Tensor reshape(const Shape& shape) const {
    if (shape.numel() != size())
      fail("Tensor::reshape: cannot view ", shape_.str(), " (", size(), " elements) as ",
           shape.str(), " (", shape.numel(), " elements)");
    Tensor view = *this;
    view.shape_ = shape;
    return view;
  }

  // A view of `shape` starting at element `offset` of this tensor's storage.
  Tensor view(std::int64_t offset, const Shape& shape) const {
    if (offset < 0 || offset + shape.numel() > size())
      fail("Tensor::view: elements [", offset, ", ", offset + shape.numel(),
           ") are outside a tensor of ", size(), " elements");
    Tensor v = *this;
    v.data_ = data_ + offset;
    v.shape_ = shape;
    v.capacity_ = static_cast<std::size_t>(shape.numel());
    return v;
  }

  Tensor clone() const {
    Tensor copy(shape_);
    std::copy(begin(), end(), copy.begin());
    return copy;
  }

  void fill(T value) { std::fill(begin(), end(), value); }
  void zero() {
    std::memset(static_cast<void*>(data_), 0, static_cast<std::size_t>(size()) * sizeof(T));
  }

  // Copies the elements of `src` (same number of elements) into this tensor.
  void copy_from(const Tensor& src) {
    if (src.size() != size())
      fail("Tensor::copy_from: source ", src.shape_.str(), " and destination ", shape_.str(),
           " differ in size");
    std::copy(src.begin(), src.end(), begin());
  }

 private:
  // Out of memory is reported with what was being allocated, not only as std::bad_alloc.
  static std::unique_ptr<T[], AlignedFree> allocate(const Shape& shape, std::size_t n) {
    try {
      return aligned_alloc_array<T>(n);
    } catch (const std::bad_alloc&) {
      fail("out of memory: cannot allocate a tensor of shape ", shape.str(), " (",
           static_cast<double>(n * sizeof(T)) / 1e6, " MB)");
    }
  }
  std::int64_t offset(std::int64_t i0) const { return i0; }
  std::int64_t offset(std::int64_t i0, std::int64_t i1) const { return i0 * shape_[1] + i1; }
  std::int64_t offset(std::int64_t i0, std::int64_t i1, std::int64_t i2) const {
    return (i0 * shape_[1] + i1) * shape_[2] + i2;
  }
  std::int64_t offset(std::int64_t i0, std::int64_t i1, std::int64_t i2, std::int64_t i3) const {
    return ((i0 * shape_[1] + i1) * shape_[2] + i2) * shape_[3] + i3;
  }

  std::shared_ptr<T> storage_;
  T* data_ = nullptr;
  Shape shape_;
  std::size_t capacity_ = 0;
};

}  // namespace minidl
