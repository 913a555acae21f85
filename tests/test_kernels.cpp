// Every fast kernel against its naive reference, in float and double.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <mutex>
#include <vector>

#include "minidl/core/rng.hpp"
#include "minidl/kernels/add.hpp"
#include "minidl/kernels/batchnorm.hpp"
#include "minidl/kernels/conv2d.hpp"
#include "minidl/kernels/dropout.hpp"
#include "minidl/kernels/finite.hpp"
#include "minidl/kernels/gemm.hpp"
#include "minidl/kernels/linear.hpp"
#include "minidl/kernels/maxpool2d.hpp"
#include "minidl/kernels/ordered_sum.hpp"
#include "minidl/kernels/relu.hpp"
#include "minidl/kernels/softmax_xent.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_kernels {

using namespace minidl;
using namespace minidl::kernels;

namespace {

template <typename T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed) {
  std::vector<T> v(n);
  Rng rng(seed);
  for (T& x : v) x = static_cast<T>(rng.uniform(-1.0, 1.0));
  return v;
}

// Both sides sum the same products in different orders; the difference is
// bounded by the depth of the sum times the precision, relative to the scale.
template <typename T>
double tolerance(std::int64_t depth) {
  return (sizeof(T) == 4 ? 2e-6 : 1e-14) * static_cast<double>(std::max<std::int64_t>(depth, 16));
}

template <typename T>
double max_abs_diff(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();  // max() would skip it
    m = std::max(m, d);
  }
  return m;
}

}  // namespace

TEST_CASE_TEMPLATE("gemm matches the naive product for every transpose and odd sizes", T, float,
                   double) {
  struct Case {
    std::int64_t m, n, k;
  };
  // {100, 2100, 40}: many slivers to cut between threads, a short last one.
  // {1, 300, 600}, {1, 2100, 40}: one row (a batch of one) over panels and slivers.
  const Case cases[] = {{1, 1, 1},   {7, 5, 3},       {64, 196, 288}, {33, 70, 300}, {130, 17, 600},
                        {5, 300, 9}, {100, 2100, 40}, {1, 300, 600},  {1, 2100, 40}};
  for (const auto& c : cases)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int acc = 0; acc < 2; ++acc) {
          CAPTURE(c.m);
          CAPTURE(c.n);
          CAPTURE(c.k);
          CAPTURE(ta);
          CAPTURE(tb);
          CAPTURE(acc);
          auto a = random_vector<T>(static_cast<std::size_t>(c.m * c.k), 1);
          auto b = random_vector<T>(static_cast<std::size_t>(c.k * c.n), 2);
          auto fast = random_vector<T>(static_cast<std::size_t>(c.m * c.n), 3);
          auto ref = fast;
          const MatRef<T> A{a.data(), ta ? c.m : c.k, ta == 1},
              B{b.data(), tb ? c.k : c.n, tb == 1};
          gemm<T>(c.m, c.n, c.k, A, B, fast.data(), c.n, acc == 1);
          gemm_naive<T>(c.m, c.n, c.k, A, B, ref.data(), c.n, acc == 1);
          CHECK(max_abs_diff(fast, ref) <= tolerance<T>(c.k));
          auto running = random_vector<T>(static_cast<std::size_t>(c.m * c.n), 3);
          gemm<T>(c.m, c.n, c.k, A, B, running.data(), c.n, acc == 1, true);
          // Cut by columns or rows on any number of threads: gemm's bits,
          // and before() once for every element.
          const int saved = num_threads();
          for (int threads : {1, 2, 3}) {
            CAPTURE(threads);
            set_num_threads(threads);
            auto cols = random_vector<T>(static_cast<std::size_t>(c.m * c.n), 3);
            std::vector<int> seen(static_cast<std::size_t>(c.m * c.n), 0);
            gemm_parallel_columns<T>(
                c.m, c.n, c.k, A, B, cols.data(), c.n, acc == 1,
                [&](std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1) {
                  for (std::int64_t i = i0; i < i1; ++i)
                    for (std::int64_t j = j0; j < j1; ++j)
                      ++seen[static_cast<std::size_t>(i * c.n + j)];
                });
            CHECK(std::memcmp(cols.data(), fast.data(), cols.size() * sizeof(T)) == 0);
            CHECK(seen == std::vector<int>(static_cast<std::size_t>(c.m * c.n), 1));
            auto rows = random_vector<T>(static_cast<std::size_t>(c.m * c.n), 3);
            gemm_parallel_rows<T>(c.m, c.n, c.k, A, B, rows.data(), c.n, acc == 1);
            CHECK(std::memcmp(rows.data(), fast.data(), rows.size() * sizeof(T)) == 0);
            auto continued = random_vector<T>(static_cast<std::size_t>(c.m * c.n), 3);
            gemm_parallel_rows<T>(c.m, c.n, c.k, A, B, continued.data(), c.n, acc == 1, true);
            CHECK(std::memcmp(continued.data(), running.data(), continued.size() * sizeof(T)) == 0);
          }
          set_num_threads(saved);
        }
}

TEST_CASE_TEMPLATE("a sliver of one vector of columns sums as a full sliver does", T, float,
                   double) {
  // The register tile skips the second vector when no column of C lies in
  // it; each element's sum must keep the bits of the same column inside a
  // wider product, in every mode.
  constexpr std::int64_t W = Simd<T>::width, m = 20, k = 300;
  for (const std::int64_t narrow : {std::int64_t(1), W / 2 + 2, W}) {
    const std::int64_t wide = 3 * W;  // full slivers and a short one
    CAPTURE(narrow);
    auto a = random_vector<T>(static_cast<std::size_t>(m * k), 1);
    auto b = random_vector<T>(static_cast<std::size_t>(k * wide), 2);
    std::vector<T> b_narrow(static_cast<std::size_t>(k * narrow));
    for (std::int64_t kk = 0; kk < k; ++kk)
      std::copy_n(b.data() + kk * wide, narrow, b_narrow.data() + kk * narrow);
    for (int mode = 0; mode < 3; ++mode) {  // plain, accumulate, continued
      CAPTURE(mode);
      auto c_wide = random_vector<T>(static_cast<std::size_t>(m * wide), 3);
      std::vector<T> c_narrow(static_cast<std::size_t>(m * narrow));
      for (std::int64_t i = 0; i < m; ++i)
        std::copy_n(c_wide.data() + i * wide, narrow, c_narrow.data() + i * narrow);
      gemm<T>(m, wide, k, {a.data(), k, false}, {b.data(), wide, false}, c_wide.data(), wide,
              mode > 0, mode == 2);
      gemm<T>(m, narrow, k, {a.data(), k, false}, {b_narrow.data(), narrow, false}, c_narrow.data(),
              narrow, mode > 0, mode == 2);
      for (std::int64_t i = 0; i < m; ++i)
        CHECK(std::memcmp(c_narrow.data() + i * narrow, c_wide.data() + i * wide,
                          static_cast<std::size_t>(narrow) * sizeof(T)) == 0);
    }
  }
}

TEST_CASE("a product too small to pay for a second thread stays on the calling one") {
  // fc2 and fc3 of LeNet-5 (64 x 84 x 120, 64 x 10 x 84) are cut nowhere; fc1 (64 x 120 x
  // 400) is, and so is the MNIST CNN's fc1 for one image (1 x 128 x 3136: little arithmetic,
  // but 1.6 MB of weights to read), not its fc2 (1 x 10 x 128).
  CHECK(gemm_threads(64, 10, 84, 1) == 1);
  CHECK(gemm_threads(64, 84, 120, 6) == 1);
  CHECK(gemm_threads(64, 120, 400, 8) == 5);
  CHECK(gemm_threads(64, 120, 400, 2) == 2);
  CHECK(gemm_threads(1, 128, 3136, 4) == 4);
  CHECK(gemm_threads(1, 10, 128, 1) == 1);
  CHECK(gemm_threads(1, 84, 120, 3) == 1);
  const int saved = num_threads();
  set_num_threads(2);
  for (const std::int64_t n : {std::int64_t(84), std::int64_t(2100)}) {
    CAPTURE(n);
    const std::int64_t m = 64, k = 120;
    auto a = random_vector<float>(static_cast<std::size_t>(m * k), 1);
    auto b = random_vector<float>(static_cast<std::size_t>(k * n), 2);
    std::vector<float> c(static_cast<std::size_t>(m * n));
    int blocks = 0;
    gemm_parallel_columns<float>(m, n, k, {a.data(), k, false}, {b.data(), n, false}, c.data(), n,
                                 false,
                                 [&](std::int64_t, std::int64_t, std::int64_t, std::int64_t) {
#pragma omp atomic
                                   ++blocks;
                                 });
    CHECK(blocks == (n == 84 ? 1 : num_threads()));
  }
  set_num_threads(saved);
}

TEST_CASE("a product with one sliver of columns (or rows) is cut the other way") {
  // A classifier's forward pass (64 x 10 x 3136: ten outputs are one sliver
  // of columns) and its weight gradient (10 x 3136 x 64: ten rows, which
  // slivers of 8 would share out 8 and 2) each take both threads, in blocks
  // of whole slivers, and give gemm's bits.
  const int saved = num_threads();
  set_num_threads(2);
  struct Case {
    std::int64_t m, n, k;
    bool by_columns;
  };
  for (const Case& c : {Case{64, 10, 3136, true}, Case{10, 3136, 64, false}}) {
    CAPTURE(c.m);
    CAPTURE(c.n);
    auto a = random_vector<float>(static_cast<std::size_t>(c.m * c.k), 1);
    auto b = random_vector<float>(static_cast<std::size_t>(c.k * c.n), 2);
    std::vector<float> out(static_cast<std::size_t>(c.m * c.n)), ref(out.size());
    const MatRef<float> A{a.data(), c.k, false}, B{b.data(), c.n, false};
    gemm<float>(c.m, c.n, c.k, A, B, ref.data(), c.n, false, true);
    std::vector<std::array<std::int64_t, 4>> blocks;
    kernels::detail::gemm_parallel_cut(
        c.by_columns, c.m, c.n, c.k, A, B, out.data(), c.n, false, true,
        [&](std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1) {
#pragma omp critical
          blocks.push_back({i0, i1, j0, j1});
        });
    CHECK(std::memcmp(out.data(), ref.data(), out.size() * sizeof(float)) == 0);
    std::sort(blocks.begin(), blocks.end());
    REQUIRE(blocks.size() == 2);
    if (c.by_columns) {  // by rows: [0, cut) and [cut, 64), all ten columns
      const std::int64_t cut = blocks[0][1];
      CHECK(cut % gemm_rows<float>() == 0);
      CHECK(blocks[0] == std::array<std::int64_t, 4>{0, cut, 0, 10});
      CHECK(blocks[1] == std::array<std::int64_t, 4>{cut, 64, 0, 10});
      continue;
    }
    // Cut by rows, the busier thread would take this many of the ten: 8 in
    // slivers of 8 (AVX-512) or 4, more than a quarter beyond half; 6 in
    // slivers of 6 (AVX2), which stay cut by rows.
    const std::int64_t MR = gemm_rows<float>(), slivers = (10 + MR - 1) / MR;
    const std::int64_t busier_rows = std::min<std::int64_t>((slivers + 1) / 2 * MR, 10);
    if (4 * busier_rows > 3 * 10) {  // by columns: all ten rows, [0, cut) and [cut, 3136)
      std::sort(blocks.begin(), blocks.end(),
                [](const auto& x, const auto& y) { return x[2] < y[2]; });
      const std::int64_t cut = blocks[0][3];
      CHECK(cut % gemm_cols<float>() == 0);
      CHECK(blocks[0] == std::array<std::int64_t, 4>{0, 10, 0, cut});
      CHECK(blocks[1] == std::array<std::int64_t, 4>{0, 10, cut, 3136});
    } else {
      CHECK(blocks[0] == std::array<std::int64_t, 4>{0, busier_rows, 0, 3136});
      CHECK(blocks[1] == std::array<std::int64_t, 4>{busier_rows, 10, 0, 3136});
    }
  }
  set_num_threads(saved);
}

TEST_CASE_TEMPLATE("gemm gives a single row the bits it has inside a taller product", T, float,
                   double) {
  // A batch of one image must score as it does in a batch: the single-row
  // path sums each element as the register tile does, for 1 to 4 slivers
  // of B at a time.
  const std::int64_t M = 9;
  for (const std::int64_t n : {10, 72, 128, 300})
    for (const std::int64_t k : {7, 256, 600})
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (int acc = 0; acc < 2; ++acc) {
            CAPTURE(n);
            CAPTURE(k);
            CAPTURE(ta);
            CAPTURE(tb);
            CAPTURE(acc);
            const auto a = random_vector<T>(static_cast<std::size_t>(M * k), 21);
            const auto b = random_vector<T>(static_cast<std::size_t>(k * n), 22);
            auto tall = random_vector<T>(static_cast<std::size_t>(M * n), 23);
            const auto start = tall;
            const MatRef<T> B{b.data(), tb ? k : n, tb == 1};
            gemm<T>(M, n, k, MatRef<T>{a.data(), ta ? M : k, ta == 1}, B, tall.data(), n, acc == 1);
            for (std::int64_t r = 0; r < M; ++r) {
              CAPTURE(r);
              // Row r of A alone: a [1, k] matrix, or column r of the stored A^T.
              const MatRef<T> row{ta ? a.data() + r : a.data() + r * k, ta ? M : k, ta == 1};
              std::vector<T> one(start.begin() + r * n, start.begin() + (r + 1) * n);
              gemm<T>(1, n, k, row, B, one.data(), n, acc == 1);
              CHECK(std::memcmp(one.data(), tall.data() + r * n, one.size() * sizeof(T)) == 0);
            }
          }
}

TEST_CASE_TEMPLATE("conv2d forward, backward-data and backward-weights match the naive loops", T,
                   float, double) {
  const Conv2dShape shapes[] = {
      {4, 1, 28, 28, 32, 3, 3, 1, 1},   // MNIST conv1 (batch 4)
      {3, 32, 14, 14, 64, 3, 3, 1, 1},  // MNIST conv2
      {5, 3, 9, 7, 4, 3, 3, 2, 0},      // stride 2, no padding, odd sizes
      {3, 3, 9, 8, 5, 3, 3, 2, 1},      // stride 2 with padding
      {2, 2, 6, 6, 3, 5, 5, 1, 2},      // 5x5 kernel
      {6, 4, 5, 5, 2, 1, 1, 1, 0},      // 1x1, more samples than a weight chunk
      {5, 10, 11, 10, 40, 3, 3, 1, 0},  // partial tiles in every dimension, no padding
      {2, 17, 8, 13, 33, 3, 3, 1, 2},   // padding of kernel - 1
      {5, 2, 12, 21, 5, 3, 3, 1, 0},    // rows longer than a vector, ragged last vector
      {2, 1, 6, 32, 3, 3, 3, 1, 1},     // rows of whole vectors
      {2, 3, 5, 40, 11, 3, 3, 1, 1},    // an odd number of vectors per row, 8 + 3 channels
      {1, 2, 7, 20, 3, 5, 5, 1, 2},     // 5x5 kernel on rows of more than a vector
      {2, 1, 9, 20, 3, 5, 5, 1, 2},     // the same with one input channel (rows kernel)
      {2, 6, 14, 14, 16, 5, 5, 1, 0},   // LeNet-5's conv2: rows of less than a vector
      {2, 3, 10, 19, 4, 7, 7, 1, 3},    // 7x7, padding 3
      // The convolutions of ResNet-20 on 28x28 images (models/resnet.hpp).
      {2, 1, 28, 28, 16, 3, 3, 1, 1},   // stem
      {3, 16, 28, 28, 16, 3, 3, 1, 1},  // stage 1: one-vector tiles
      {2, 16, 28, 28, 32, 3, 3, 2, 1},  // stride 2 into stage 2
      {2, 16, 28, 28, 32, 1, 1, 2, 0},  // its 1x1 projection
      {2, 32, 14, 14, 32, 3, 3, 1, 1},  // stage 2
      {2, 32, 14, 14, 64, 3, 3, 2, 1},  // stride 2 into stage 3
      {2, 32, 14, 14, 64, 1, 1, 2, 0},  // its 1x1 projection
      {2, 64, 7, 7, 64, 3, 3, 1, 1},    // stage 3
      // One-vector tiles with partial slivers, ragged rows and padded channels.
      {2, 13, 9, 30, 12, 3, 3, 1, 1},
      {2, 7, 6, 11, 6, 3, 3, 1, 1},
      {2, 12, 8, 17, 10, 5, 5, 1, 2},
      // Stride 2 through the direct kernels: ragged rows, odd sizes, 5x5.
      {2, 20, 13, 11, 40, 3, 3, 2, 1},
      {3, 9, 15, 30, 7, 3, 3, 2, 0},
      {2, 6, 11, 9, 5, 5, 5, 2, 2},
      {2, 40, 9, 9, 24, 1, 1, 2, 0},
      // Stride-2 input gradients by phases: 7x7, a ragged second sliver of
      // input channels, padding 1 of a 5x5 kernel and 2 of a 3x3 (a phase
      // that starts past dy's first row), a single input row.
      {2, 5, 12, 13, 18, 7, 7, 2, 3},
      {2, 17, 10, 10, 9, 5, 5, 2, 1},
      {2, 16, 9, 8, 8, 3, 3, 2, 2},
      {2, 16, 1, 5, 4, 3, 3, 2, 1},
      // Odd widths whose even phase has a block of pixels more than the odd
      // one (two-vector and one-vector tiles), and a 2x2 kernel.
      {2, 20, 6, 15, 8, 3, 3, 2, 1},
      {2, 16, 5, 29, 8, 3, 3, 2, 1},
      {2, 20, 8, 9, 6, 2, 2, 2, 1},
      // Winograd with rows of fewer tiles than a block, in several groups of tile rows (256
      // channels), and a ragged last sliver of output channels.
      {1, 256, 12, 7, 40, 3, 3, 1, 1},
      // Winograd's weight gradient over three chunks of samples, the last short, on odd sizes.
      {9, 24, 11, 13, 20, 3, 3, 1, 1},
      // 4x4 tiles of which the last row and column hold one output each, a ragged sliver; four
      // 4x4 tiles a sample, whose blocks take four vectors of output channels, ragged.
      {2, 20, 5, 9, 36, 3, 3, 1, 1},
      {2, 24, 7, 6, 40, 3, 3, 1, 1},
      // Rows shorter than a transposed block, whose weight gradients copy x to channels last
      // along the flattened plane: a last block that overlaps, half-vector channels with
      // padding 2, stride 2.
      {3, 16, 5, 6, 24, 3, 3, 1, 1},
      {2, 8, 9, 3, 16, 3, 3, 1, 2},
      {2, 24, 7, 5, 16, 3, 3, 2, 1},
      // 1x1 kernels (the pointwise products): channels that fill no tile, pixel rows cut across
      // vectors, a plane of less than a vector, several units of rows per sample (stride 1 and
      // 2, an odd width), stride 3, a 7x7 input at stride 2, output rows of a group of eight
      // and five (the stride-2 input gradient's stores, eight values a store).
      {9, 5, 40, 40, 11, 1, 1, 1, 0},
      {3, 3, 64, 63, 9, 1, 1, 2, 0},
      {2, 5, 9, 25, 6, 1, 1, 2, 0},
      {2, 19, 3, 5, 13, 1, 1, 1, 0},
      {3, 6, 10, 11, 7, 1, 1, 3, 0},
      {5, 64, 7, 7, 40, 1, 1, 2, 0},
      // The rows kernel's weight gradient: stride 2 on an odd padded width, 7 output rows (tiles
      // of 4, 2 and 1 rows), a short last group of output channels and a ragged last vector;
      // 5x5 at stride 2 with padding 1; 7x7 at stride 2 over two chunks of samples, and at
      // stride 1 without padding (tiles of 6, then 1 and 1 rows).
      {2, 2, 13, 37, 5, 3, 3, 2, 1},
      {2, 3, 20, 40, 4, 5, 5, 2, 1},
      {5, 1, 30, 36, 3, 7, 7, 2, 3},
      {2, 2, 14, 23, 3, 7, 7, 1, 0},
      // Output rows narrower than a vector (from half a vector): 14 pixels at stride 2 (float),
      // 7 at stride 2 with 5x5 (double).
      {2, 3, 28, 28, 6, 3, 3, 2, 1},
      {3, 1, 11, 13, 5, 5, 5, 2, 2},
      // The rows kernel's input gradient, tiles of input rows: a row of exactly one vector and a
      // second tile of rows that overlaps the first (no padding); a pair of vectors, then one,
      // and a last tile that overlaps; 7x7 with padding 6 (dy unpadded) and an overlapping
      // last vector; a plane of exactly one tile, one sample cut between the threads.
      {3, 1, 13, 16, 5, 5, 5, 1, 0},
      {2, 3, 30, 40, 7, 3, 3, 1, 1},
      {2, 6, 17, 33, 4, 7, 7, 1, 6},
      {1, 2, 12, 28, 9, 5, 5, 1, 1},
      // At stride 2, each column phase in one vector, a last tile of rows starting on the other
      // parity; two vectors, odd padding; 7x7 with odd padding and an odd width; two groups of
      // columns, the second of 6 pixels, no padding; padding of kernel - 1.
      {2, 1, 29, 28, 6, 5, 5, 2, 2},
      {2, 3, 29, 40, 5, 3, 3, 2, 1},
      {2, 2, 17, 33, 4, 7, 7, 2, 3},
      {1, 4, 20, 70, 3, 5, 5, 2, 0},
      {2, 1, 16, 16, 3, 3, 3, 2, 2},
  };
  for (const auto& s : shapes) {
    CAPTURE(s.N);
    CAPTURE(s.C);
    CAPTURE(s.H);
    CAPTURE(s.W);
    CAPTURE(s.OC);
    CAPTURE(s.KH);
    CAPTURE(s.stride);
    CAPTURE(s.pad);
    const auto xs = static_cast<std::size_t>(s.N * s.C * s.H * s.W);
    const auto ys = static_cast<std::size_t>(s.N * s.OC * s.OH() * s.OW());
    const auto ws = static_cast<std::size_t>(s.OC * s.col_rows());
    const auto bs = static_cast<std::size_t>(s.OC);
    auto x = random_vector<T>(xs, 4), w = random_vector<T>(ws, 5), b = random_vector<T>(bs, 6);
    auto dy = random_vector<T>(ys, 7);
    // Scratch holds garbage between calls: NaN here, so that reading it fails.
    const T nan = std::numeric_limits<T>::quiet_NaN();
    std::vector<T> workspace(static_cast<std::size_t>(conv2d_workspace_size<T>(s)), nan);
    std::vector<T> partials(static_cast<std::size_t>(conv2d_weight_partials_size<T>(s)), nan);
    std::vector<T> y_ref(ys), dw_ref(ws), db_ref(bs), dx_ref(xs);
    conv2d_forward_naive(s, x.data(), w.data(), b.data(), y_ref.data());
    conv2d_backward_weights_naive(s, x.data(), dy.data(), dw_ref.data(), db_ref.data());
    conv2d_backward_data_naive(s, dy.data(), w.data(), dx_ref.data());
    const double forward_tol = tolerance<T>(s.col_rows()),
                 weights_tol = tolerance<T>(s.N * s.col_cols()),
                 data_tol = tolerance<T>(s.OC * s.KH * s.KW);

    // Outputs start as NaN, so that an element a kernel forgets to write fails.
    // With relu, the same bits as the kernel's output passed through
    // relu_forward (channel 0's bias is NaN, which the ReLU turns into 0).
    auto check_forward = [&](auto&& kernel) {
      std::vector<T> y(ys, nan), y_relu(ys, nan);
      kernel(s, x.data(), w.data(), b.data(), y.data(), workspace.data(), false);
      CHECK(max_abs_diff(y, y_ref) <= forward_tol);
      std::vector<T> b_nan = b;
      b_nan[0] = nan;
      kernel(s, x.data(), w.data(), b_nan.data(), y.data(), workspace.data(), false);
      relu_forward(static_cast<std::int64_t>(ys), y.data(), y.data());
      kernel(s, x.data(), w.data(), b_nan.data(), y_relu.data(), workspace.data(), true);
      CHECK(std::memcmp(y.data(), y_relu.data(), ys * sizeof(T)) == 0);
    };
    auto check_weights = [&](auto&& kernel) {
      std::vector<T> dw(ws, nan), db(bs, nan);
      kernel(s, x.data(), dy.data(), dw.data(), db.data(), partials.data());
      CHECK(max_abs_diff(dw, dw_ref) <= weights_tol);
      CHECK(max_abs_diff(db, db_ref) <= weights_tol);
    };
    auto check_data = [&](auto&& kernel) {
      std::vector<T> dx(xs, nan);
      kernel(s, dy.data(), w.data(), dx.data(), workspace.data());
      CHECK(max_abs_diff(dx, dx_ref) <= data_tol);
    };

    SUBCASE("the kernels conv2d.hpp chooses") {
      check_forward(conv2d_forward<T>);
      check_weights(conv2d_backward_weights<T>);
      check_data(conv2d_backward_data<T>);
    }
    SUBCASE("im2col kernels") {
      check_forward(conv2d_forward_im2col<T>);
      check_weights(conv2d_backward_weights_im2col<T>);
      check_data(conv2d_backward_data_im2col<T>);
    }
    SUBCASE("direct kernels") {
      if (conv2d_direct_strided_applies(s)) {  // stride 1 or 2
        check_forward(conv2d_forward_direct<T>);
        check_weights(conv2d_backward_weights_direct<T>);  // also with padded channels
      }
      if (conv2d_direct_strided_applies(s)) check_data(conv2d_backward_data_direct<T>);
      if (conv2d_weights_rows_applies<T>(s)) check_weights(conv2d_backward_weights_rows<T>);
      if (conv2d_forward_rows_applies<T>(s)) check_forward(conv2d_forward_rows<T>);
      if (conv2d_data_rows_applies<T>(s)) check_data(conv2d_backward_data_rows<T>);
    }
    SUBCASE("winograd kernels") {
      if (conv2d_winograd_applies(s)) {
        check_forward(conv2d_forward_winograd<T>);
        check_data(conv2d_backward_data_winograd<T>);
        check_weights(conv2d_backward_weights_winograd<T>);
      }
    }
    SUBCASE("winograd 4x4 kernels") {
      if (conv2d_winograd_applies(s)) {
        check_forward(conv2d_forward_winograd4<T>);
        check_data(conv2d_backward_data_winograd4<T>);
        check_weights(conv2d_backward_weights_winograd4<T>);
      }
    }
    SUBCASE("pointwise kernels") {
      if (conv2d_pointwise_applies(s)) {
        check_forward(conv2d_forward_pointwise<T>);
        check_data(conv2d_backward_data_pointwise<T>);
      }
      // Where the direct kernels apply too, the bits are theirs (each output sums the channels
      // in order, then adds the bias): conv2d.hpp may choose either by speed alone, and a trained
      // network's bits do not depend on that choice.
      if (conv2d_pointwise_applies(s) && conv2d_direct_strided_applies(s)) {
        for (const bool relu : {false, true}) {
          std::vector<T> y_direct(ys, nan), y(ys, nan);
          conv2d_forward_direct<T>(s, x.data(), w.data(), b.data(), y_direct.data(),
                                   workspace.data(), relu);
          conv2d_forward_pointwise<T>(s, x.data(), w.data(), b.data(), y.data(), workspace.data(),
                                      relu);
          CHECK(std::memcmp(y.data(), y_direct.data(), ys * sizeof(T)) == 0);
        }
        std::vector<T> dx_direct(xs, nan), dx(xs, nan);
        conv2d_backward_data_direct<T>(s, dy.data(), w.data(), dx_direct.data(), workspace.data());
        conv2d_backward_data_pointwise<T>(s, dy.data(), w.data(), dx.data(), workspace.data());
        CHECK(std::memcmp(dx.data(), dx_direct.data(), xs * sizeof(T)) == 0);
      }
    }
  }
}

TEST_CASE_TEMPLATE("col2im by rows gives the scatter's bits at stride 1", T, float, double) {
  // Rows shorter than a vector, a ragged last vector, whole vectors, and
  // every padding from 0 to kernel - 1; dcol's margins hold NaN, which the
  // lane masks must keep out of dx.
  const Conv2dShape shapes[] = {{1, 6, 14, 14, 16, 5, 5, 1, 0}, {1, 2, 9, 21, 3, 3, 3, 1, 1},
                                {1, 1, 4, 32, 2, 3, 3, 1, 2},   {1, 3, 8, 7, 2, 7, 7, 1, 3},
                                {1, 2, 5, 1, 2, 1, 1, 1, 0},    {1, 2, 6, 40, 2, 5, 5, 1, 4}};
  for (const auto& s : shapes) {
    CAPTURE(s.C);
    CAPTURE(s.H);
    CAPTURE(s.W);
    CAPTURE(s.KH);
    CAPTURE(s.pad);
    const std::int64_t margin = col2im_margin<T>(s), size = s.col_size();
    std::vector<T> dcol(static_cast<std::size_t>(size + 2 * margin),
                        std::numeric_limits<T>::quiet_NaN());
    const auto values = random_vector<T>(static_cast<std::size_t>(size), 8);
    std::copy(values.begin(), values.end(), dcol.begin() + margin);
    const auto xs = static_cast<std::size_t>(s.C * s.H * s.W);
    std::vector<T> by_rows(xs, T(7)), scattered(xs, T(7));
    kernels::detail::col2im_stride1(s, dcol.data() + margin, by_rows.data());
    kernels::detail::col2im_scatter(s, dcol.data() + margin, scattered.data());
    CHECK(std::memcmp(by_rows.data(), scattered.data(), xs * sizeof(T)) == 0);
  }
}

TEST_CASE_TEMPLATE(
    "every weight-gradient kernel's bias is conv2d_bias_grad's bits, on any thread count", T, float,
    double) {
  // Planes with and without a scalar tail, batches that 2 and 3 threads
  // cut unevenly, a short last chunk, one sample (fewer samples than
  // threads), a stride-2 shape only im2col takes, and the rows kernel at
  // stride 2 on one sample (its channels shared between the threads) and
  // with a 7x7 kernel.
  const Conv2dShape shapes[] = {{64, 32, 28, 28, 32, 3, 3, 1, 1}, {7, 3, 5, 5, 9, 3, 3, 1, 1},
                                {1, 2, 6, 6, 5, 3, 3, 1, 0},      {13, 1, 28, 28, 32, 3, 3, 1, 1},
                                {5, 2, 7, 17, 3, 5, 5, 1, 2},     {9, 3, 9, 8, 5, 3, 3, 2, 1},
                                {1, 2, 13, 37, 5, 3, 3, 2, 1},    {6, 1, 30, 36, 3, 7, 7, 2, 3}};
  using Kernel = void (*)(const Conv2dShape&, const T*, const T*, T*, T*, T*);
  const int saved = num_threads();
  for (const auto& s : shapes) {
    CAPTURE(s.N);
    CAPTURE(s.H);
    const auto x = random_vector<T>(static_cast<std::size_t>(s.N * s.C * s.H * s.W), 11);
    const auto dy = random_vector<T>(static_cast<std::size_t>(s.N * s.OC * s.OH() * s.OW()), 12);
    std::vector<T> serial(static_cast<std::size_t>(s.OC)), naive(serial.size());
    for (std::int64_t o = 0; o < s.OC; ++o)
      serial[static_cast<std::size_t>(o)] = conv2d_bias_grad(s, dy.data(), o);
    std::vector<T> dw(static_cast<std::size_t>(s.OC * s.col_rows()));
    conv2d_backward_weights_naive(s, x.data(), dy.data(), dw.data(), naive.data());
    CHECK(max_abs_diff(serial, naive) <= tolerance<T>(s.N * s.col_cols()));
    std::vector<Kernel> kernels = {conv2d_backward_weights_im2col<T>};
    if (conv2d_direct_applies(s)) kernels.push_back(conv2d_backward_weights_direct<T>);
    if (conv2d_weights_rows_applies<T>(s)) kernels.push_back(conv2d_backward_weights_rows<T>);
    if (conv2d_winograd_applies(s)) {
      kernels.push_back(conv2d_backward_weights_winograd<T>);
      kernels.push_back(conv2d_backward_weights_winograd4<T>);
    }
    for (std::size_t k = 0; k < kernels.size(); ++k) {
      std::vector<T> first_dw;  // and the weights' bits the same for any thread count
      for (int threads : {1, 2, 3}) {
        CAPTURE(k);
        CAPTURE(threads);
        set_num_threads(threads);
        std::vector<T> partials(static_cast<std::size_t>(conv2d_weight_partials_size<T>(s)),
                                std::numeric_limits<T>::quiet_NaN());
        std::vector<T> db(serial.size(), std::numeric_limits<T>::quiet_NaN());
        kernels[k](s, x.data(), dy.data(), dw.data(), db.data(), partials.data());
        CHECK(std::memcmp(db.data(), serial.data(), db.size() * sizeof(T)) == 0);
        if (first_dw.empty())
          first_dw = dw;
        else
          CHECK(std::memcmp(dw.data(), first_dw.data(), dw.size() * sizeof(T)) == 0);
      }
    }
  }
  set_num_threads(saved);
}

TEST_CASE_TEMPLATE("weight and bias gradients from a plane source give the stored dy's bits", T,
                   float, double) {
  // conv1's shape with a short last group of output channels, two input
  // channels (each plane made once per channel), an odd size and padding 0;
  // LeNet-5's 5x5 conv1; stride 2 on one sample (its channels shared between
  // the threads), 7x7, and rows of 14 (narrower than a float vector).
  const Conv2dShape shapes[] = {{5, 1, 28, 28, 5, 3, 3, 1, 1}, {3, 2, 17, 17, 4, 3, 3, 1, 1},
                                {4, 1, 19, 19, 3, 3, 3, 1, 0}, {3, 1, 28, 28, 6, 5, 5, 1, 2},
                                {1, 2, 13, 37, 5, 3, 3, 2, 1}, {2, 1, 24, 40, 3, 7, 7, 1, 3},
                                {2, 2, 28, 28, 5, 3, 3, 2, 1}};
  const int saved = num_threads();
  for (const auto& s : shapes) {
    CAPTURE(s.H);
    REQUIRE(conv2d_weights_rows_applies<T>(s));
    const std::int64_t P = s.OH() * s.OW();
    const auto x = random_vector<T>(static_cast<std::size_t>(s.N * s.C * s.H * s.W), 13);
    const auto dy = random_vector<T>(static_cast<std::size_t>(s.N * s.OC * P), 14);
    const auto wsize = static_cast<std::size_t>(s.OC * s.col_rows());
    std::vector<T> partials(static_cast<std::size_t>(conv2d_rows_partials_size<T>(s)));
    std::vector<T> dw_ref(wsize), db_ref(static_cast<std::size_t>(s.OC));
    conv2d_backward_weights_rows(s, x.data(), dy.data(), dw_ref.data(), db_ref.data(),
                                 partials.data());
    // Each plane made in the buffer the kernel hands over, as a max-pool makes it.
    const auto made = [&](std::int64_t n, std::int64_t o, T* buffer) {
      std::copy_n(dy.data() + (n * s.OC + o) * P, P, buffer);
      return static_cast<const T*>(buffer);
    };
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      set_num_threads(threads);
      const T nan = std::numeric_limits<T>::quiet_NaN();
      std::vector<T> dw(wsize, nan), db(db_ref.size(), nan);
      conv2d_backward_weights_rows_planes(s, x.data(), made, dw.data(), db.data(), partials.data());
      CHECK(std::memcmp(dw.data(), dw_ref.data(), wsize * sizeof(T)) == 0);
      CHECK(std::memcmp(db.data(), db_ref.data(), db.size() * sizeof(T)) == 0);
    }
  }
  set_num_threads(saved);
}

TEST_CASE_TEMPLATE("partials are summed in chunk order on any number of threads", T, float,
                   double) {
  // 1, 2, 3 and 5 threads cut 7 chunks differently, and 9 threads would have
  // more threads than chunks; blocks of 3 leave the partials' tail unsummed.
  const std::int64_t chunks = 7, part_size = 20, blocks = 6, block = 3;
  const auto original = random_vector<T>(static_cast<std::size_t>(chunks * part_size), 13);
  std::vector<T> expected(static_cast<std::size_t>(blocks * block));
  for (std::size_t j = 0; j < expected.size(); ++j) {
    T sum = original[j];
    for (std::int64_t c = 1; c < chunks; ++c)
      sum += original[static_cast<std::size_t>(c * part_size) + j];
    expected[j] = sum;
  }
  const int saved = num_threads();
  for (int threads : {1, 2, 3, 5, 9}) {
    CAPTURE(threads);
    set_num_threads(threads);
    std::vector<T> partials(original.size(), std::numeric_limits<T>::quiet_NaN());
    std::vector<T> got(expected.size(), std::numeric_limits<T>::quiet_NaN());
    std::vector<int> computed(static_cast<std::size_t>(chunks), 0), emitted(blocks, 0);
    sum_partials_in_order(
        chunks, part_size, blocks, block, partials.data(),
        [&](std::int64_t c, T* part) {
          ++computed[static_cast<std::size_t>(c)];
          std::copy_n(original.data() + c * part_size, part_size, part);
        },
        [&](std::int64_t b, const T* sum) {
          ++emitted[static_cast<std::size_t>(b)];
          std::copy_n(sum, block, got.data() + b * block);
        });
    CHECK(std::memcmp(got.data(), expected.data(), got.size() * sizeof(T)) == 0);
    CHECK(computed == std::vector<int>(static_cast<std::size_t>(chunks), 1));
    CHECK(emitted == std::vector<int>(blocks, 1));
  }
  set_num_threads(saved);
  std::vector<T> zeros(static_cast<std::size_t>(block), T(1));
  sum_partials_in_order(
      std::int64_t(0), part_size, std::int64_t(1), block, static_cast<T*>(nullptr),
      [](std::int64_t, T*) { FAIL("no chunk to compute"); },
      [&](std::int64_t, const T* sum) { std::copy_n(sum, block, zeros.data()); });
  CHECK(zeros == std::vector<T>(static_cast<std::size_t>(block), T(0)));
}

TEST_CASE_TEMPLATE("every weight-gradient kernel gives the same bits on any number of threads", T,
                   float, double) {
  // Several weight chunks, the last one short, for each kernel: direct
  // (MNIST's conv2, ResNet's 16-channel stage and its stride-2 convolution),
  // rows (MNIST's conv1, LeNet-5's 5x5 conv1) and im2col (stride 2). Then
  // fewer chunks than threads, whose output channels the threads share, for
  // direct and Winograd: one image, one chunk of three, two chunks (shared
  // on 3 threads only), ragged slivers of output channels, stride 2. Then
  // F(4x4, 3x3) over several chunks (ResNet's three stages, the 7x7 one's
  // tiles half past the plane, a 28x28 one in several groups of tile rows)
  // and shared by the threads, with a ragged sliver. Last, a strided 1x1
  // kernel, whose direct weight gradient copies only the pixels it reads.
  const Conv2dShape shapes[] = {{13, 32, 14, 14, 64, 3, 3, 1, 1}, {9, 16, 28, 28, 16, 3, 3, 1, 1},
                                {9, 16, 28, 28, 32, 3, 3, 2, 1},  {13, 1, 28, 28, 32, 3, 3, 1, 1},
                                {13, 1, 28, 28, 6, 5, 5, 1, 2},   {9, 3, 9, 8, 5, 3, 3, 2, 1},
                                {1, 16, 10, 9, 20, 3, 3, 1, 1},   {3, 64, 7, 7, 64, 3, 3, 1, 1},
                                {5, 8, 9, 9, 36, 3, 3, 2, 1},     {1, 32, 14, 14, 64, 3, 3, 1, 1},
                                {3, 48, 14, 15, 40, 3, 3, 1, 1},  {9, 16, 28, 28, 16, 3, 3, 1, 1},
                                {13, 32, 14, 14, 32, 3, 3, 1, 1}, {9, 64, 7, 7, 64, 3, 3, 1, 1},
                                {2, 24, 11, 13, 40, 3, 3, 1, 1},  {9, 16, 28, 27, 24, 1, 1, 2, 0}};
  using Kernel = void (*)(const Conv2dShape&, const T*, const T*, T*, T*, T*);
  const Kernel kernels[] = {
      conv2d_backward_weights_direct<T>,    conv2d_backward_weights_direct<T>,
      conv2d_backward_weights_direct<T>,    conv2d_backward_weights_rows<T>,
      conv2d_backward_weights_rows<T>,      conv2d_backward_weights_im2col<T>,
      conv2d_backward_weights_direct<T>,    conv2d_backward_weights_direct<T>,
      conv2d_backward_weights_direct<T>,    conv2d_backward_weights_winograd<T>,
      conv2d_backward_weights_winograd<T>,  conv2d_backward_weights_winograd4<T>,
      conv2d_backward_weights_winograd4<T>, conv2d_backward_weights_winograd4<T>,
      conv2d_backward_weights_winograd4<T>, conv2d_backward_weights_direct<T>};
  static_assert(std::size(shapes) == std::size(kernels));
  const int saved = num_threads();
  for (int k = 0; k < static_cast<int>(std::size(shapes)); ++k) {
    const auto& s = shapes[k];
    CAPTURE(k);
    const auto x = random_vector<T>(static_cast<std::size_t>(s.N * s.C * s.H * s.W), 14);
    const auto dy = random_vector<T>(static_cast<std::size_t>(s.N * s.OC * s.OH() * s.OW()), 15);
    const auto ws = static_cast<std::size_t>(s.OC * s.col_rows());
    std::vector<T> naive_w(ws), naive_b(static_cast<std::size_t>(s.OC));
    conv2d_backward_weights_naive(s, x.data(), dy.data(), naive_w.data(), naive_b.data());
    std::vector<T> first, first_b;
    for (int threads : {1, 2, 3}) {
      CAPTURE(threads);
      set_num_threads(threads);
      std::vector<T> partials(static_cast<std::size_t>(conv2d_weight_partials_size<T>(s)),
                              std::numeric_limits<T>::quiet_NaN());
      std::vector<T> dw(ws, std::numeric_limits<T>::quiet_NaN()),
          db(naive_b.size(), std::numeric_limits<T>::quiet_NaN());
      kernels[k](s, x.data(), dy.data(), dw.data(), db.data(), partials.data());
      CHECK(max_abs_diff(dw, naive_w) <= tolerance<T>(s.N * s.col_cols()));
      CHECK(max_abs_diff(db, naive_b) <= tolerance<T>(s.N * s.col_cols()));
      if (first.empty()) {
        first = dw;
        first_b = db;
      } else {
        CHECK(std::memcmp(dw.data(), first.data(), ws * sizeof(T)) == 0);
        CHECK(std::memcmp(db.data(), first_b.data(), db.size() * sizeof(T)) == 0);
      }
    }
  }
  set_num_threads(saved);
}

// An output sink that hands out a buffer of just the planes asked for (as
// the max-pool's sink does) and copies them into y when they are done. The
// threads call it at once: a lock keeps its lists whole.
template <typename T>
struct PlaneBufferOutput {
  PlaneBufferOutput(T* y_, std::int64_t OC_, std::int64_t P_, std::int64_t planes)
      : y(y_), OC(OC_), P(P_), written(static_cast<std::size_t>(planes), 0) {}
  T* y;
  std::int64_t OC, P;
  mutable std::vector<std::vector<T>> buffers;  // one per call; none is reused
  mutable std::vector<int> written;             // per plane of y: how many times
  mutable std::mutex lock;
  T* planes(std::int64_t, std::int64_t, std::int64_t count) const {
    const std::lock_guard<std::mutex> hold(lock);
    buffers.emplace_back(static_cast<std::size_t>(count * P), std::numeric_limits<T>::quiet_NaN());
    return buffers.back().data();  // moving the list keeps each buffer where it is
  }
  void done(std::int64_t n, std::int64_t oc0, std::int64_t count, const T* planes) const {
    const std::lock_guard<std::mutex> hold(lock);
    std::copy(planes, planes + count * P, y + (n * OC + oc0) * P);
    for (std::int64_t c = 0; c < count; ++c) ++written[static_cast<std::size_t>(n * OC + oc0 + c)];
  }
};

// Fills every thread's padded-input and packed-weight scratch (the direct
// kernels' slots 0 and 2) with NaN, so that a kernel reading a row it did
// not pad, or a sliver of weights it did not pack, gives NaN rather than
// what an earlier call left there.
template <typename T>
void poison_padding_scratch(int threads) {
  parallel_blocks(threads, threads, [](int, std::int64_t, std::int64_t) {
    constexpr std::int64_t kPadded = 1 << 18, kPacked = 1 << 20;
    std::fill_n(thread_scratch<T, 0>(kPadded), kPadded, std::numeric_limits<T>::quiet_NaN());
    std::fill_n(thread_scratch<T, 2>(kPacked), kPacked, std::numeric_limits<T>::quiet_NaN());
  });
}

TEST_CASE_TEMPLATE(
    "F(4x4, 3x3) on a batch norm's input gives the stored output's bits, both passes", T, float,
    double) {
  // The input a batch norm with its ReLU stored, max(x a + b, 0), made as
  // F(4x4, 3x3) copies each sample (RemadeInput), against the forward pass
  // and the weight gradient on that output stored by batchnorm_normalize:
  // rows of 8 or more pixels and 7x7 planes (the two ways of copying),
  // channels in whole vectors of 8 and not, on 1 and 2 threads; one image
  // on 28x28, whose rows the two threads share in forward. A third of each
  // channel's values sit on the ReLU's threshold (x0 with beta putting x0 a
  // + b at zero give or take a rounding), where rounding the product apart
  // from the addition would move values across it.
  const Conv2dShape shapes[] = {{5, 16, 12, 12, 32, 3, 3, 1, 1},
                                {6, 20, 7, 7, 32, 3, 3, 1, 1},
                                {3, 24, 6, 9, 16, 3, 3, 1, 1},
                                {1, 16, 28, 28, 16, 3, 3, 1, 1}};
  const int saved = num_threads();
  for (const auto& s : shapes) {
    CAPTURE(s.C);
    CAPTURE(s.H);
    const std::int64_t P = s.H * s.W;
    auto x = random_vector<T>(static_cast<std::size_t>(s.N * s.C * P), 31);
    const auto dy = random_vector<T>(static_cast<std::size_t>(s.N * s.OC * P), 32);
    const auto noise = random_vector<T>(static_cast<std::size_t>(4 * s.C), 33);
    const auto w = random_vector<T>(static_cast<std::size_t>(s.OC * s.col_rows()), 34);
    const auto bias = random_vector<T>(static_cast<std::size_t>(s.OC), 35);
    std::vector<T> mean(static_cast<std::size_t>(s.C)), invstd(mean.size()), gamma(mean.size()),
        beta(mean.size()), a(mean.size()), b(mean.size());
    for (std::size_t c = 0; c < mean.size(); ++c) {
      mean[c] = T(0.1) * noise[c];
      invstd[c] = T(1.5) + noise[mean.size() + c];
      gamma[c] = T(0.7) + T(0.5) * noise[2 * mean.size() + c];
      const T x0 = T(0.3) * noise[3 * mean.size() + c];
      beta[c] = (mean[c] - x0) * invstd[c] * gamma[c];
      for (std::int64_t i = static_cast<std::int64_t>(c) * P; i < s.N * s.C * P; i += 3 * s.C * P)
        for (std::int64_t p = 0; p < P; ++p) x[static_cast<std::size_t>(i + p)] = x0;
      const auto f = kernels::detail::affine_of(static_cast<std::int64_t>(c), mean.data(),
                                                invstd.data(), gamma.data(), beta.data());
      a[c] = f.a;
      b[c] = f.b;
    }
    std::vector<T> y(x.size());
    batchnorm_normalize(s.N, s.C, P, x.data(), mean.data(), invstd.data(), gamma.data(),
                        beta.data(), y.data(), true);
    const std::size_t ws = static_cast<std::size_t>(s.OC * s.col_rows());
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      set_num_threads(threads);
      std::vector<T> partials(static_cast<std::size_t>(conv2d_weight_partials_size<T>(s)));
      std::vector<T> dw_stored(ws), db_stored(static_cast<std::size_t>(s.OC)), dw(ws),
          db(db_stored.size());
      conv2d_backward_weights_winograd4(s, y.data(), dy.data(), dw_stored.data(), db_stored.data(),
                                        partials.data());
      conv2d_backward_weights_winograd4_continue(s, x.data(), dy.data(), dw.data(), db.data(),
                                                 partials.data(), false, NoWait{},
                                                 RemadeInput<T>{a.data(), b.data()});
      CHECK(std::memcmp(dw.data(), dw_stored.data(), ws * sizeof(T)) == 0);
      CHECK(std::memcmp(db.data(), db_stored.data(), db.size() * sizeof(T)) == 0);
      std::vector<T> out_stored(dy.size()), out(dy.size());
      for (bool relu : {false, true}) {
        CAPTURE(relu);
        poison_padding_scratch<T>(threads);
        conv2d_forward_winograd_tiles<4>(s, y.data(), w.data(), bias.data(), relu,
                                         StoredOutput<T>{out_stored.data(), s.OC, P});
        poison_padding_scratch<T>(threads);
        conv2d_forward_winograd_tiles<4>(s, x.data(), w.data(), bias.data(), relu,
                                         StoredOutput<T>{out.data(), s.OC, P},
                                         RemadeInput<T>{a.data(), b.data()});
        CHECK(std::memcmp(out.data(), out_stored.data(), out.size() * sizeof(T)) == 0);
      }
    }
  }
  set_num_threads(saved);
}

struct Tile2 : std::integral_constant<int, 2> {};
struct Tile4 : std::integral_constant<int, 4> {};

// Winograd's F(M x M, 3x3) on one shape at a number of threads: the
// forward pass handed to a sink and stored whole, and the input gradient,
// each near the naive loops, the two forwards with the same bits, and all
// with the bits of the first call (first_y, first_dx, empty before it).
template <typename T, typename Tile>
void check_winograd_tiles(const Conv2dShape& s, const std::vector<T>& x, const std::vector<T>& w,
                          const std::vector<T>& b, const std::vector<T>& dy,
                          const std::vector<T>& y_ref, const std::vector<T>& dx_ref, int threads,
                          std::vector<T>& first_y, std::vector<T>& first_dx, Tile) {
  constexpr int M = Tile::value;
  CAPTURE(M);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> y(y_ref.size(), nan), stored(y_ref.size(), nan), dx(dx_ref.size(), nan);
  PlaneBufferOutput<T> out(y.data(), s.OC, s.OH() * s.OW(), s.N * s.OC);
  poison_padding_scratch<T>(threads);
  conv2d_forward_winograd_tiles<M>(s, x.data(), w.data(), b.data(), false, out);
  CHECK(std::all_of(out.written.begin(), out.written.end(), [](int c) { return c == 1; }));
  CHECK(max_abs_diff(y, y_ref) <= tolerance<T>(s.col_rows()));
  poison_padding_scratch<T>(threads);
  conv2d_forward_winograd_tiles<M>(s, x.data(), w.data(), b.data(), false,
                                   StoredOutput<T>{stored.data(), s.OC, s.OH() * s.OW()});
  CHECK(std::memcmp(stored.data(), y.data(), y.size() * sizeof(T)) == 0);
  poison_padding_scratch<T>(threads);
  conv2d_backward_data_winograd_tiles<M>(s, dy.data(), w.data(), dx.data());
  CHECK(max_abs_diff(dx, dx_ref) <= tolerance<T>(s.OC * s.KH * s.KW));
  if (first_y.empty()) {
    first_y = y;
    first_dx = dx;
    return;
  }
  CHECK(std::memcmp(y.data(), first_y.data(), y.size() * sizeof(T)) == 0);
  CHECK(std::memcmp(dx.data(), first_dx.data(), dx.size() * sizeof(T)) == 0);
}

TEST_CASE_TEMPLATE(
    "direct and Winograd convolutions give the same bits on any number of threads, one image too",
    T, float, double) {
  // With fewer images than threads, each image's output channels are shared
  // out between the threads in whole slivers: 4 slivers, 2 ragged ones,
  // one narrow sliver, and stride 2. With fewer slivers than threads, the
  // stored passes share the rows: one sliver of 16 channels (3x3; stride 2
  // with an odd number of rows; 5x5; 7x7 at stride 2, whose tiles reach
  // rows past their taps'), one of 32, and Winograd's tile rows of an odd
  // number of rows; sizes of 4 k + 1, whose last 4x4 tiles hold one row or
  // column of outputs.
  const Conv2dShape shapes[] = {{1, 64, 14, 14, 128, 3, 3, 1, 1}, {1, 9, 10, 11, 40, 3, 3, 1, 1},
                                {1, 16, 28, 28, 16, 3, 3, 1, 1},  {2, 32, 14, 14, 64, 3, 3, 2, 1},
                                {1, 32, 9, 9, 64, 1, 1, 2, 0},    {1, 64, 7, 7, 64, 3, 3, 1, 1},
                                {1, 16, 57, 55, 16, 3, 3, 2, 1},  {1, 8, 30, 27, 16, 5, 5, 1, 2},
                                {1, 16, 30, 30, 16, 7, 7, 2, 3},  {1, 32, 20, 21, 32, 3, 3, 1, 1},
                                {1, 16, 27, 25, 16, 3, 3, 1, 1},  {1, 16, 29, 21, 16, 3, 3, 1, 1},
                                {2, 24, 9, 13, 40, 3, 3, 1, 1}};
  const int saved = num_threads();
  for (const auto& s : shapes) {
    CAPTURE(s.N);
    CAPTURE(s.C);
    CAPTURE(s.OC);
    CAPTURE(s.stride);
    const auto ys = static_cast<std::size_t>(s.N * s.OC * s.OH() * s.OW());
    const auto xs = static_cast<std::size_t>(s.N * s.C * s.H * s.W);
    const auto x = random_vector<T>(xs, 31),
               w = random_vector<T>(static_cast<std::size_t>(s.OC * s.col_rows()), 32);
    const auto b = random_vector<T>(static_cast<std::size_t>(s.OC), 33);
    const auto dy = random_vector<T>(ys, 34);
    std::vector<T> y_ref(ys), dx_ref(xs);
    conv2d_forward_naive(s, x.data(), w.data(), b.data(), y_ref.data());
    conv2d_backward_data_naive(s, dy.data(), w.data(), dx_ref.data());
    std::vector<T> first_y, first_dx, first_wy, first_wdx, winograd4_y, winograd4_dx;
    for (int threads : {1, 2, 3}) {
      CAPTURE(threads);
      set_num_threads(threads);
      std::vector<T> y(ys, std::numeric_limits<T>::quiet_NaN());
      PlaneBufferOutput<T> out(y.data(), s.OC, s.OH() * s.OW(), s.N * s.OC);
      poison_padding_scratch<T>(threads);
      conv2d_forward_direct_samples(s, x.data(), w.data(), b.data(), false, out);
      CHECK(std::all_of(out.written.begin(), out.written.end(), [](int c) { return c == 1; }));
      CHECK(max_abs_diff(y, y_ref) <= tolerance<T>(s.col_rows()));
      if (first_y.empty())
        first_y = y;
      else
        CHECK(std::memcmp(y.data(), first_y.data(), ys * sizeof(T)) == 0);
      // Stored whole, the output may be made a share of the rows at a time.
      std::vector<T> stored(ys, std::numeric_limits<T>::quiet_NaN());
      poison_padding_scratch<T>(threads);
      conv2d_forward_direct<T>(s, x.data(), w.data(), b.data(), stored.data(), nullptr);
      CHECK(std::memcmp(stored.data(), first_y.data(), ys * sizeof(T)) == 0);
      if (conv2d_winograd_applies(s)) {  // F(2x2, 3x3) and F(4x4, 3x3), as the direct kernels
        check_winograd_tiles(s, x, w, b, dy, y_ref, dx_ref, threads, first_wy, first_wdx, Tile2{});
        check_winograd_tiles(s, x, w, b, dy, y_ref, dx_ref, threads, winograd4_y, winograd4_dx,
                             Tile4{});
      }
      if (!conv2d_direct_strided_applies(s)) continue;
      std::vector<T> dx(xs, std::numeric_limits<T>::quiet_NaN());
      poison_padding_scratch<T>(threads);
      conv2d_backward_data_direct<T>(s, dy.data(), w.data(), dx.data(), nullptr);
      CHECK(max_abs_diff(dx, dx_ref) <= tolerance<T>(s.OC * s.KH * s.KW));
      if (first_dx.empty())
        first_dx = dx;
      else
        CHECK(std::memcmp(dx.data(), first_dx.data(), xs * sizeof(T)) == 0);
    }
  }
  set_num_threads(saved);
}

TEST_CASE_TEMPLATE("maxpool2d matches the naive loops, ties and NaN included", T, float, double) {
  // 2x2 rows of 3, 4, 7 and 8 windows (two rows per vector, an odd number
  // of rows), 9, 14, 16, 17 and 33: one vector, ragged after one or two.
  const MaxPool2dShape shapes[] = {{6, 28, 28, 2, 2}, {5, 7, 7, 2, 2},  {4, 6, 9, 2, 2},
                                   {3, 14, 14, 2, 2}, {2, 6, 16, 2, 2}, {2, 4, 18, 2, 2},
                                   {2, 4, 32, 2, 2},  {2, 5, 35, 2, 2}, {2, 3, 66, 2, 2},
                                   {3, 9, 8, 3, 2},   {2, 5, 5, 3, 1},  {2, 8, 8, 3, 3}};
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (const auto& s : shapes) {
    CAPTURE(s.H);
    CAPTURE(s.K);
    CAPTURE(s.stride);
    const auto in = static_cast<std::size_t>(s.planes * s.H * s.W),
               out = static_cast<std::size_t>(s.planes * s.OH() * s.OW());
    auto x = random_vector<T>(in, 8);
    for (std::size_t i = 0; i < in; i += 5)
      x[i] = x[i / 2];  // some ties, which the first element in the window wins
    for (std::size_t i = 0; i < in; i += 37) x[i] = T(0);
    for (std::size_t i = 1; i < in; i += 37) x[i] = -T(0);  // -0 ties with 0
    x[0] = nan;                                             // a NaN first in its window
    x[static_cast<std::size_t>(s.W + 1)] = nan;             // a NaN elsewhere in one
    std::vector<T> y(out), y_ref(out);
    std::vector<std::int32_t> am_ref(out);
    maxpool2d_forward(s, x.data(), y.data());
    maxpool2d_forward_naive(s, x.data(), y_ref.data(), am_ref.data());
    CHECK(std::memcmp(y.data(), y_ref.data(), out * sizeof(T)) == 0);  // NaN and -0 too
    auto dy = random_vector<T>(out, 9);
    std::vector<T> dx(in, nan), dx_ref(in);
    maxpool2d_backward(s, x.data(), dy.data(), dx.data());
    maxpool2d_backward_naive(s, dy.data(), am_ref.data(), dx_ref.data());
    CHECK(max_abs_diff(dx, dx_ref) == 0.0);
    std::vector<T> inplace = x;  // dx written over x
    maxpool2d_backward(s, inplace.data(), dy.data(), inplace.data());
    CHECK(max_abs_diff(inplace, dx_ref) == 0.0);

    // A ReLU before the pool, its backward folded in: the same bits as the
    // pool's backward followed by the ReLU's. Windows of zeros (all inputs
    // negative) must route nothing.
    std::vector<T> xr(in);
    relu_forward_naive(static_cast<std::int64_t>(in), x.data(), xr.data());
    for (std::int64_t h = 0; h < s.K; ++h)  // the first window all zeros
      for (std::int64_t w = 0; w < s.K; ++w) xr[static_cast<std::size_t>(h * s.W + w)] = T(0);
    std::vector<T> yr(out), pool_grad(in), folded_ref(in);
    maxpool2d_forward_naive(s, xr.data(), yr.data(), am_ref.data());
    maxpool2d_backward_naive(s, dy.data(), am_ref.data(), pool_grad.data());
    relu_backward_naive(static_cast<std::int64_t>(in), xr.data(), pool_grad.data(),
                        folded_ref.data());
    std::vector<T> folded(in, nan);
    maxpool2d_backward(s, xr.data(), dy.data(), folded.data(), true);
    CHECK(std::memcmp(folded.data(), folded_ref.data(), in * sizeof(T)) == 0);
    maxpool2d_backward(s, xr.data(), dy.data(), xr.data(), true);  // in place
    CHECK(std::memcmp(xr.data(), folded_ref.data(), in * sizeof(T)) == 0);
  }
}

TEST_CASE_TEMPLATE("maxpool2d's recorded winners give the backward pass's bits without x", T, float,
                   double) {
  // The 2x2 shapes above: rows of 3 to 33 windows, odd sizes.
  const MaxPool2dShape shapes[] = {{6, 28, 28, 2, 2}, {5, 7, 7, 2, 2},  {4, 6, 9, 2, 2},
                                   {3, 14, 14, 2, 2}, {2, 6, 16, 2, 2}, {2, 4, 18, 2, 2},
                                   {2, 4, 32, 2, 2},  {2, 5, 35, 2, 2}, {2, 3, 66, 2, 2}};
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (const auto& s : shapes)
    for (const bool relu_before : {false, true}) {
      CAPTURE(s.H);
      CAPTURE(s.W);
      CAPTURE(relu_before);
      const auto in = static_cast<std::size_t>(s.planes * s.H * s.W),
                 out = static_cast<std::size_t>(s.planes * s.OH() * s.OW());
      auto x = random_vector<T>(in, 10);
      for (std::size_t i = 0; i < in; i += 5) x[i] = x[i / 2];  // ties
      for (std::size_t i = 0; i < in; i += 37) x[i] = T(0);
      for (std::size_t i = 1; i < in; i += 37) x[i] = -T(0);
      x[0] = nan;
      x[static_cast<std::size_t>(s.W + 1)] = nan;
      if (relu_before) {  // a ReLU's output, the first window all zeros
        relu_forward_naive(static_cast<std::int64_t>(in), x.data(), x.data());
        x[0] = x[1] = x[static_cast<std::size_t>(s.W)] = x[static_cast<std::size_t>(s.W + 1)] = 0;
      }
      std::vector<T> y(out), y_plain(out);
      std::vector<std::uint8_t> winners(out, 255);
      maxpool2d_forward(s, x.data(), y.data(), winners.data(), relu_before);
      maxpool2d_forward(s, x.data(), y_plain.data());
      CHECK(std::memcmp(y.data(), y_plain.data(), out * sizeof(T)) == 0);
      for (const std::uint8_t w : winners) REQUIRE(w <= kNoWinner);
      const auto dy = random_vector<T>(out, 11);
      std::vector<T> dx_ref(in), dx(in, nan);
      maxpool2d_backward(s, x.data(), dy.data(), dx_ref.data(), relu_before);
      for (std::int64_t p = 0; p < s.planes; ++p)
        maxpool2x2_input_grad_plane(s, p, winners.data(), dy.data(), dx.data() + p * s.H * s.W);
      CHECK(std::memcmp(dx.data(), dx_ref.data(), in * sizeof(T)) == 0);
      std::vector<T> dx_all(in, nan);  // every plane, in parallel
      maxpool2x2_backward_from_winners(s, winners.data(), dy.data(), dx_all.data());
      CHECK(std::memcmp(dx_all.data(), dx_ref.data(), in * sizeof(T)) == 0);
      // Planes pooled as they come, a few at a time, as a convolution hands them over.
      std::vector<T> y_fed(out, nan);
      std::vector<std::uint8_t> winners_fed(out, 255);
      for (std::int64_t p0 = 0; p0 < s.planes; p0 += 2)
        maxpool2x2_forward_planes(s, p0, std::min<std::int64_t>(2, s.planes - p0),
                                  x.data() + p0 * s.H * s.W, y_fed.data(), winners_fed.data(),
                                  relu_before);
      CHECK(std::memcmp(y_fed.data(), y.data(), out * sizeof(T)) == 0);
      CHECK(winners_fed == winners);
    }
  const MaxPool2dShape three{1, 9, 9, 3, 3};
  std::vector<T> x(81), y(9);
  std::vector<std::uint8_t> winners(9);
  CHECK_THROWS_AS(maxpool2d_forward(three, x.data(), y.data(), winners.data()), Error);
}

TEST_CASE_TEMPLATE("relu forward and backward match the naive loops", T, float, double) {
  const std::int64_t n = 100003;  // several parallel chunks and a ragged end
  auto x = random_vector<T>(n, 10), dy = random_vector<T>(n, 11);
  std::vector<T> y(n), y_ref(n), dx(n), dx_ref(n);
  relu_forward(n, x.data(), y.data());
  relu_forward_naive(n, x.data(), y_ref.data());
  CHECK(y == y_ref);
  relu_backward(n, y.data(), dy.data(), dx.data());
  relu_backward_naive(n, y_ref.data(), dy.data(), dx_ref.data());
  CHECK(dx == dx_ref);

  // The in-place form: a byte mask instead of the output, both buffers reused.
  std::vector<T> inplace = x;
  std::vector<std::uint8_t> mask(n);
  relu_forward_mask(n, inplace.data(), inplace.data(), mask.data());
  CHECK(inplace == y_ref);
  std::vector<T> grad = dy;
  relu_backward_mask(n, mask.data(), grad.data(), grad.data());
  CHECK(grad == dx_ref);

  // A sum of two gradients and the backward in one pass, written over its
  // first operand as the network's sums are: the bits of the two passes.
  auto other = random_vector<T>(n, 12);
  std::vector<T> sum(n), sum_ref(n);
  for (std::int64_t i = 0; i < n; ++i) sum_ref[i] = dy[i] + other[i];
  relu_backward_naive(n, y_ref.data(), sum_ref.data(), sum_ref.data());
  sum = dy;
  add_relu_backward(n, sum.data(), other.data(), y_ref.data(), sum.data());
  CHECK(std::memcmp(sum.data(), sum_ref.data(), sizeof(T) * sum.size()) == 0);
}

TEST_CASE_TEMPLATE("first_non_finite finds the first NaN or infinity, and nothing else", T, float,
                   double) {
  using Limits = std::numeric_limits<T>;
  const std::int64_t n = 5000;  // several scan blocks and a ragged end
  std::vector<T> x = random_vector<T>(n, 12);
  // Extreme finite values must pass: the largest, the smallest normal, a
  // subnormal, negative zero.
  x[3] = Limits::max();
  x[4] = -Limits::max();
  x[5] = Limits::min();
  x[6] = Limits::denorm_min();
  x[7] = T(-0.0);
  CHECK(first_non_finite(n, x.data()) == -1);
  CHECK(first_non_finite_naive(n, x.data()) == -1);
  const T culprits[] = {Limits::quiet_NaN(), -Limits::quiet_NaN(), Limits::infinity(),
                        -Limits::infinity()};
  const std::int64_t places[] = {0, 1023, 1024, 2500, n - 1};
  for (const T bad : culprits)
    for (const std::int64_t at : places) {
      std::vector<T> y = x;
      y[static_cast<std::size_t>(at)] = bad;
      CHECK(first_non_finite(n, y.data()) == at);
      if (at + 7 < n) {  // a second culprit later in the same block: still the first one
        y[static_cast<std::size_t>(at + 7)] = Limits::infinity();
        CHECK(first_non_finite(n, y.data()) == at);
      }
    }
  CHECK(first_non_finite<T>(0, nullptr) == -1);
}

TEST_CASE_TEMPLATE("first_non_finite_rows finds the first culprit on any number of threads", T,
                   float, double) {
  // fc1's gradient shape: big enough to be cut between threads.
  const std::int64_t rows = 128, cols = 3136, n = rows * cols;
  std::vector<T> x = random_vector<T>(static_cast<std::size_t>(n), 16);
  const int saved = num_threads();
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    set_num_threads(threads);
    CHECK(first_non_finite_rows(n, rows, x.data()) == -1);
    // Culprits in the first and last thread's rows: the first wins.
    for (const std::int64_t at : {std::int64_t(5), n / 2 + 17, n - 1}) {
      CAPTURE(at);
      std::vector<T> y = x;
      y[static_cast<std::size_t>(at)] = std::numeric_limits<T>::quiet_NaN();
      y[static_cast<std::size_t>(n - 1)] = std::numeric_limits<T>::infinity();
      CHECK(first_non_finite_rows(n, rows, y.data()) == at);
    }
  }
  set_num_threads(saved);
  const T small[] = {T(1), T(2), std::numeric_limits<T>::infinity()};  // one thread's worth
  CHECK(first_non_finite_rows(std::int64_t(3), std::int64_t(1), small) == 2);
  CHECK(first_non_finite_rows<T>(0, 0, nullptr) == -1);
}

TEST_CASE_TEMPLATE("linear forward and backward match the naive loops", T, float, double) {
  const std::int64_t sizes[][3] = {{64, 3136, 128}, {1, 128, 10}, {37, 50, 33}};
  for (const auto& sz : sizes) {
    const std::int64_t N = sz[0], I = sz[1], O = sz[2];
    CAPTURE(N);
    CAPTURE(I);
    CAPTURE(O);
    auto x = random_vector<T>(static_cast<std::size_t>(N * I), 12),
         w = random_vector<T>(static_cast<std::size_t>(O * I), 13);
    auto b = random_vector<T>(static_cast<std::size_t>(O), 14),
         dy = random_vector<T>(static_cast<std::size_t>(N * O), 15);
    std::vector<T> y(static_cast<std::size_t>(N * O)), y_ref(y.size());
    linear_forward(N, I, O, x.data(), w.data(), b.data(), y.data());
    linear_forward_naive(N, I, O, x.data(), w.data(), b.data(), y_ref.data());
    CHECK(max_abs_diff(y, y_ref) <= tolerance<T>(I));
    std::vector<T> dx(static_cast<std::size_t>(N * I)), dx_ref(dx.size());
    linear_backward_data(N, I, O, dy.data(), w.data(), dx.data());
    linear_backward_data_naive(N, I, O, dy.data(), w.data(), dx_ref.data());
    CHECK(max_abs_diff(dx, dx_ref) <= tolerance<T>(O));
    std::vector<T> dw(static_cast<std::size_t>(O * I)), dw_ref(dw.size()),
        db(static_cast<std::size_t>(O)), db_ref(db.size());
    linear_backward_weights(N, I, O, x.data(), dy.data(), dw.data(), db.data());
    linear_backward_weights_naive(N, I, O, x.data(), dy.data(), dw_ref.data(), db_ref.data());
    CHECK(max_abs_diff(dw, dw_ref) <= tolerance<T>(N));
    CHECK(db == db_ref);  // each one running sum over the samples in order, as the naive loop
    // Carried: the first samples' sums, continued by the others, are the
    // whole batch's to the bit.
    const std::int64_t first = N / 2;
    std::vector<T> dw_carried(dw.size()), db_carried(db.size());
    linear_backward_weights(first, I, O, x.data(), dy.data(), dw_carried.data(), db_carried.data());
    linear_backward_weights(N - first, I, O, x.data() + first * I, dy.data() + first * O,
                            dw_carried.data(), db_carried.data(), true);
    CHECK(dw_carried == dw);
    CHECK(db_carried == db);
  }
}

TEST_CASE_TEMPLATE(
    "softmax cross-entropy matches the double-precision reference, even for huge logits", T, float,
    double) {
  const std::int64_t N = 9, K = 10;
  auto z = random_vector<T>(static_cast<std::size_t>(N * K), 16);
  for (std::int64_t k = 0; k < K; ++k)
    z[static_cast<std::size_t>(k)] = static_cast<T>(1000 + k);  // row 0 overflows a naive exp
  std::vector<std::int32_t> labels;
  for (std::int64_t i = 0; i < N; ++i) labels.push_back(static_cast<std::int32_t>(i % K));
  std::vector<T> d(static_cast<std::size_t>(N * K)), d_ref(d.size());
  const T loss = softmax_xent(N, K, z.data(), labels.data(), d.data());
  const T loss_ref = softmax_xent_naive(N, K, z.data(), labels.data(), d_ref.data());
  CHECK(std::isfinite(static_cast<double>(loss)));
  CHECK(std::fabs(static_cast<double>(loss - loss_ref)) <=
        tolerance<T>(K) * std::max(1.0, std::fabs(static_cast<double>(loss_ref))));
  CHECK(max_abs_diff(d, d_ref) <= tolerance<T>(K));
  // Row 0: label 0 has logit 1000, the largest is 1009: loss = logsumexp - 1000 > 9.
  CHECK(static_cast<double>(loss_ref) * N > 9.0);
}

TEST_CASE("dropout masks depend on (seed, step, element) only and scale by 1/(1-p)") {
  const std::int64_t n = 70001;
  std::vector<float> x(n, 1.0f), y1(n), y2(n), m1(n), m2(n);
  dropout_forward<float>(n, 0.25f, 42, 3, x.data(), y1.data(), m1.data());
  dropout_forward<float>(n, 0.25f, 42, 3, x.data(), y2.data(), m2.data());
  CHECK(m1 == m2);
  dropout_forward<float>(n, 0.25f, 42, 4, x.data(), y2.data(), m2.data());
  CHECK(m1 != m2);
  std::int64_t kept = 0, other = 0;
  for (float m : m1) {
    kept += m == 1.0f / 0.75f;
    other += m != 0.0f && m != 1.0f / 0.75f;
  }
  CHECK(other == 0);
  // 75% kept within 5 standard deviations (sd = sqrt(n p (1-p)) ~ 115).
  CHECK(std::fabs(static_cast<double>(kept) - 0.75 * n) < 5 * 115);
}

}  // namespace test_kernels
