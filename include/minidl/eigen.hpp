// minidl/eigen.hpp - Eigen views of tensors, for code that works in Eigen.
//
// Part of the minidl::eigen component, the only one that needs Eigen. A view
// is an Eigen::Map over the tensor's own memory: nothing is copied, and
// writing through the view writes the tensor. Tensors are row-major, so the
// views are too, and a [rows, cols] tensor maps to a rows x cols matrix.
#pragma once

#include <Eigen/Core>

#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"

namespace minidl {

template <typename T>
using EigenMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using EigenVector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

namespace detail {

inline void require_matrix_shape(const Shape& shape) {
  if (shape.rank() != 2)
    fail("as_eigen_matrix: tensor of shape ", shape.str(),
         " is not a matrix; reshape it to [rows, cols] first");
}

}  // namespace detail

// A rank-2 tensor [rows, cols] as a rows x cols matrix. Other ranks are
// refused: reshape first (a conv weight [out, in, kh, kw] as [out, in*kh*kw],
// the layout of PyTorch's weight.flatten(1)).
template <typename T>
Eigen::Map<EigenMatrix<T>> as_eigen_matrix(Tensor<T>& t) {
  detail::require_matrix_shape(t.shape());
  return {t.data(), t.dim(0), t.dim(1)};
}
template <typename T>
Eigen::Map<const EigenMatrix<T>> as_eigen_matrix(const Tensor<T>& t) {
  detail::require_matrix_shape(t.shape());
  return {t.data(), t.dim(0), t.dim(1)};
}

// Every element of a tensor of any shape, in storage order, as a column vector.
template <typename T>
Eigen::Map<EigenVector<T>> as_eigen_vector(Tensor<T>& t) {
  return {t.data(), t.size()};
}
template <typename T>
Eigen::Map<const EigenVector<T>> as_eigen_vector(const Tensor<T>& t) {
  return {t.data(), t.size()};
}

}  // namespace minidl
