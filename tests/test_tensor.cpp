// Tensor, Shape and Rng: the containers everything else stands on.
#include <doctest/doctest.h>

#include <cstdint>
#include <set>

#include "minidl/core/rng.hpp"
#include "minidl/core/tensor.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_tensor {

using namespace minidl;

TEST_CASE("a tensor is zero-filled, 64-byte aligned and indexed row-major") {
  Tensor<float> t({2, 3, 4, 5});
  CHECK(t.rank() == 4);
  CHECK(t.size() == 120);
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  for (float v : t) CHECK(v == 0.0f);
  t(1, 2, 3, 4) = 7.0f;
  CHECK(t[119] == 7.0f);
  t(0, 1, 0, 2) = 3.0f;
  CHECK(t[22] == 3.0f);
  Tensor<double> m({3, 4});
  m(2, 1) = 5.0;
  CHECK(m[9] == 5.0);
}

TEST_CASE("reshape and view share storage; clone does not") {
  Tensor<float> t({2, 6});
  Tensor<float> r = t.reshape({3, 4});
  r(2, 3) = 1.5f;
  CHECK(t(1, 5) == 1.5f);
  Tensor<float> v = t.view(6, {6});
  v[0] = 2.0f;
  CHECK(t(1, 0) == 2.0f);
  Tensor<float> c = t.clone();
  c(1, 0) = 9.0f;
  CHECK(t(1, 0) == 2.0f);
}

TEST_CASE("shape errors name both shapes") {
  Tensor<float> t({2, 6});
  CHECK_THROWS_WITH_AS(t.reshape({5, 2}),
                       "Tensor::reshape: cannot view [2, 6] (12 elements) as [5, 2] (10 elements)",
                       Error);
  CHECK_THROWS_AS(t.view(10, {4}), Error);
  CHECK_THROWS_AS(Shape({1, 2, 3, 4, 5}), Error);
  CHECK_THROWS_AS(Shape({2, -1}), Error);
  CHECK_THROWS_WITH_AS(t.dim(2), "Tensor::dim(2) on a tensor of shape [2, 6]", Error);
}

TEST_CASE("resize reuses storage that is large enough") {
  Tensor<float> t({4, 100});
  const float* before = t.data();
  t.resize({2, 50});
  CHECK(t.data() == before);
  t.resize({4, 100});
  CHECK(t.data() == before);
  t.resize({5, 100});
  CHECK(t.data() != before);
  CHECK(t.shape() == Shape{5, 100});
}

TEST_CASE("Rng: a saved state continues the stream exactly") {
  Rng a(123);
  for (int i = 0; i < 10; ++i) a.next_u64();
  Rng b(a.state());
  for (int i = 0; i < 100; ++i) CHECK(a.next_u64() == b.next_u64());
  Rng c(124);
  CHECK(Rng(123).next_u64() != c.next_u64());
}

TEST_CASE("Rng: uniform values lie in range with the right mean; shuffle is a permutation") {
  Rng rng(7);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = rng.uniform(-2.0, 3.0);
    REQUIRE(u >= -2.0);
    REQUIRE(u < 3.0);
    sum += u;
  }
  CHECK(sum / 100000 == doctest::Approx(0.5).epsilon(0.02));
  std::vector<int> v(1000);
  for (int i = 0; i < 1000; ++i) v[static_cast<std::size_t>(i)] = i;
  rng.shuffle(v.begin(), v.end());
  CHECK(std::set<int>(v.begin(), v.end()).size() == 1000);
  int fixed = 0;
  for (int i = 0; i < 1000; ++i) fixed += v[static_cast<std::size_t>(i)] == i;
  CHECK(fixed < 10);
}

}  // namespace test_tensor
