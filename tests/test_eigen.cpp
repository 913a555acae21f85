// Eigen views of tensors (minidl/eigen.hpp), and Eigen as a second oracle for
// the GEMM kernel. gemm_naive, the first oracle, reads its operands through
// the same MatRef as the fast kernel; Eigen shares no code with minidl, so a
// mistake in how operands are laid out or transposed cannot hide in both.
#include <doctest/doctest.h>

#include <Eigen/Core>
#include <cstdint>
#include <limits>
#include <vector>

#include "minidl/core/rng.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/eigen.hpp"
#include "minidl/kernels/gemm.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_eigen {

using minidl::as_eigen_matrix;
using minidl::as_eigen_vector;
using minidl::Tensor;

TEST_CASE("eigen: a matrix view is the tensor's own memory, row-major") {
  Tensor<float> t({2, 3});
  for (std::int64_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(i);
  auto m = as_eigen_matrix(t);
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 3);
  CHECK(m.data() == t.data());
  CHECK(m(1, 0) == 3.0f);  // row 1 starts after the 3 values of row 0
  CHECK(m(0, 2) == 2.0f);
  m(0, 2) = -1.0f;  // writes the tensor
  CHECK(t(0, 2) == -1.0f);

  const Tensor<float> row = t.view(3, {1, 3});  // a view at an offset maps too
  CHECK(as_eigen_matrix(row)(0, 1) == 4.0f);
  CHECK(as_eigen_matrix(row).sum() == 3.0f + 4.0f + 5.0f);

  Tensor<double> w({4, 2, 3, 3});  // a conv weight: viewed whole as a vector
  as_eigen_vector(w).setConstant(0.5);
  CHECK(as_eigen_vector(w).size() == 72);
  CHECK(w(3, 1, 2, 2) == 0.5);
  CHECK(as_eigen_matrix(w.reshape({4, 18})).rowwise().sum()(3) == 9.0);

  CHECK_ERROR(as_eigen_matrix(w), "as_eigen_matrix", "[4, 2, 3, 3] is not a matrix", "reshape");
}

TEST_CASE_TEMPLATE("eigen: gemm matches Eigen's product within the rounding bound", T, float,
                   double) {
  using minidl::kernels::MatRef;
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  struct Case {
    std::int64_t m, n, k;
  };
  // Past one packed panel in depth (300, 600), in rows (130), and odd edges.
  const Case cases[] = {{1, 1, 1}, {7, 5, 3}, {33, 70, 300}, {130, 17, 600}, {5, 300, 9}};
  minidl::Rng rng(42);
  const auto random_matrix = [&](std::int64_t rows, std::int64_t cols) {
    Matrix m(rows, cols);
    for (std::int64_t i = 0; i < m.size(); ++i)
      m.data()[i] = static_cast<T>(rng.uniform(-1.0, 1.0));
    return m;  // values a T holds exactly, so both sides multiply the same numbers
  };
  for (const Case& c : cases)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int acc = 0; acc < 2; ++acc) {
          CAPTURE(c.m);
          CAPTURE(c.n);
          CAPTURE(c.k);
          CAPTURE(ta);
          CAPTURE(tb);
          CAPTURE(acc);
          const Matrix a = random_matrix(c.m, c.k), b = random_matrix(c.k, c.n);
          const Matrix c0 = random_matrix(c.m, c.n);
          // The operands as gemm reads them: stored transposed when asked.
          const Matrix a_stored = ta ? Matrix(a.transpose()) : a;
          const Matrix b_stored = tb ? Matrix(b.transpose()) : b;
          const std::vector<T> a_t(a_stored.data(), a_stored.data() + a_stored.size());
          const std::vector<T> b_t(b_stored.data(), b_stored.data() + b_stored.size());
          std::vector<T> out(c0.data(), c0.data() + c0.size());
          minidl::kernels::gemm<T>(c.m, c.n, c.k, MatRef<T>{a_t.data(), a_stored.cols(), ta == 1},
                                   MatRef<T>{b_t.data(), b_stored.cols(), tb == 1}, out.data(), c.n,
                                   acc == 1);

          const Matrix start = acc ? c0 : Matrix(Matrix::Zero(c.m, c.n));
          const Matrix exact = start + a * b;
          // A sum of k + 1 products in any order is off by at most
          // (k + 1) eps times the sum of their magnitudes; twice that
          // covers Eigen's own rounding in double.
          const Matrix magnitude = start.cwiseAbs() + a.cwiseAbs() * b.cwiseAbs();
          const double eps = std::numeric_limits<T>::epsilon();
          const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
              got(out.data(), c.m, c.n);
          const Matrix error = (got.template cast<double>() - exact).cwiseAbs();
          const Matrix bound = 2.0 * static_cast<double>(c.k + 1) * eps * magnitude;
          CHECK((error.array() <= bound.array()).all());
        }
}

}  // namespace test_eigen
