// Sums over a batch split between ranks (simulated by threads): the same bits as one process.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "minidl/minidl.hpp"
#include "minidl/models/resnet.hpp"
#include "thread_ranks.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_batch_reducer {

using namespace minidl;
using minidl::testing::run_thread_ranks;
using minidl::testing::ThreadRankReducer;

namespace {

Tensor<float> random_tensor(const Shape& shape, std::uint64_t seed) {
  Tensor<float> t(shape);
  Rng rng(seed);
  for (float& v : t) v = rng.uniform(-1.0f, 1.0f);
  return t;
}

// Rows [first, first + count) of t, copied.
Tensor<float> rows(const Tensor<float>& t, std::int64_t first, std::int64_t count) {
  std::vector<std::int64_t> dims = t.shape().to_vector();
  const std::int64_t per_row = t.size() / dims[0];
  dims[0] = count;
  Tensor<float> out{Shape(dims)};
  std::memcpy(out.data(), t.data() + first * per_row,
              static_cast<std::size_t>(count * per_row) * sizeof(float));
  return out;
}

bool same_bits(const Tensor<float>& a, const float* b, std::int64_t n) {
  return a.size() == n &&
         std::memcmp(a.data(), b, static_cast<std::size_t>(n) * sizeof(float)) == 0;
}

BatchShare share_for(ThreadRankReducer& r, std::int64_t total) {
  const SampleRange range = batch_share_range(total, r.rank(), r.ranks());
  return BatchShare{&r, range.first, total};
}

// Every parameter and buffer of a network, as bits.
std::vector<float> state_bits(Sequential<float>& net) {
  std::vector<float> all;
  for (auto& p : net.parameters()) all.insert(all.end(), p.value->begin(), p.value->end());
  for (auto& b : net.buffers())
    if (b.value) all.insert(all.end(), b.value->begin(), b.value->end());
  return all;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("batch_share_range: contiguous whole chunks, every sample once, every rank some") {
  for (std::int64_t total : {12, 13, 64, 65, 250})
    for (int ranks = 1; ranks <= 3; ++ranks) {
      std::int64_t next = 0;
      for (int r = 0; r < ranks; ++r) {
        const SampleRange s = batch_share_range(total, r, ranks);
        CHECK(s.first == next);
        CHECK(s.first % kBatchShareChunk == 0);
        CHECK(s.count > 0);
        next = s.first + s.count;
      }
      CHECK(next == total);
    }
  CHECK_THROWS_WITH_AS(batch_share_range(8, 0, 3),
                       "a batch of 8 samples has 2 chunks of 4, fewer than the 3 processes; use "
                       "fewer processes or a larger batch",
                       Error);
}

// Linear's weight and bias gradients: a GEMM's running sums over the samples, continued by each
// rank. 300 samples also cross the GEMM's panel depth (256).
TEST_CASE("Linear gradients over 1-3 ranks equal one process's bits") {
  for (std::int64_t N : {30, 300}) {
    const std::int64_t in = 37, out = 11;
    const Tensor<float> x = random_tensor(Shape{N, in}, 1), dy = random_tensor(Shape{N, out}, 2);
    Linear<float> one(in, out);
    Rng init(3);
    one.reset_parameters(init);
    one.forward(x, Context{Mode::Train, 0});
    one.backward(dy);
    for (int ranks = 1; ranks <= 3; ++ranks) {
      std::vector<std::vector<float>> dw(3), db(3);
      run_thread_ranks(ranks, [&](ThreadRankReducer& r) {
        Linear<float> layer(in, out);
        Rng rng(3);
        layer.reset_parameters(rng);
        Context ctx{Mode::Train, 0};
        ctx.share = share_for(r, N);
        layer.forward(rows(x, ctx.share.first, batch_share_range(N, r.rank(), ranks).count), ctx);
        layer.backward(rows(dy, ctx.share.first, batch_share_range(N, r.rank(), ranks).count));
        dw[static_cast<std::size_t>(r.rank())].assign(layer.weight_grad().begin(),
                                                      layer.weight_grad().end());
        db[static_cast<std::size_t>(r.rank())].assign(layer.bias_grad().begin(),
                                                      layer.bias_grad().end());
      });
      for (int r = 0; r < ranks; ++r) {
        CAPTURE(N);
        CAPTURE(ranks);
        CAPTURE(r);
        CHECK(same_bits(one.weight_grad(), dw[static_cast<std::size_t>(r)].data(), out * in));
        CHECK(same_bits(one.bias_grad(), db[static_cast<std::size_t>(r)].data(), out));
      }
    }
  }
}

// The convolutions' chunk partials, continued from the carry, in the shapes that pick the
// direct (stride 1) and im2col (stride 2) weight kernels; with 20 and 40 output channels
// (direct, Winograd) a rank of one chunk shares its output channels between its two threads.
TEST_CASE("Conv2d gradients over 1-3 ranks equal one process's bits") {
  struct Case {
    std::int64_t C, OC, k, stride, pad, H;
  };
  for (const Case c : {Case{3, 8, 3, 1, 1, 12}, Case{3, 6, 5, 2, 1, 11}, Case{4, 5, 1, 2, 0, 9},
                       Case{16, 20, 3, 1, 1, 9}, Case{32, 40, 3, 1, 1, 14}}) {
    const std::int64_t N = 14;
    const Tensor<float> x = random_tensor(Shape{N, c.C, c.H, c.H}, 4);
    Conv2d<float> one(c.C, c.OC, c.k, c.stride, c.pad, true);
    Rng init(5);
    one.reset_parameters(init);
    const Shape out = one.output_shape(x.shape());
    const Tensor<float> dy = random_tensor(out, 6);
    one.forward(x, Context{Mode::Train, 0});
    one.backward(dy);
    const Tensor<float>& w1 = *one.parameters()[0].grad;
    const Tensor<float>& b1 = *one.parameters()[1].grad;
    for (int ranks = 1; ranks <= 3; ++ranks) {
      std::vector<std::vector<float>> dw(3), db(3);
      run_thread_ranks(
          ranks,
          [&](ThreadRankReducer& r) {
            Conv2d<float> layer(c.C, c.OC, c.k, c.stride, c.pad, true);
            Rng rng(5);
            layer.reset_parameters(rng);
            Context ctx{Mode::Train, 0};
            ctx.share = share_for(r, N);
            const std::int64_t count = batch_share_range(N, r.rank(), ranks).count;
            layer.forward(rows(x, ctx.share.first, count), ctx);
            layer.backward(rows(dy, ctx.share.first, count));
            const auto p = layer.parameters();
            dw[static_cast<std::size_t>(r.rank())].assign(p[0].grad->begin(), p[0].grad->end());
            db[static_cast<std::size_t>(r.rank())].assign(p[1].grad->begin(), p[1].grad->end());
          },
          2);
      for (int r = 0; r < ranks; ++r) {
        CAPTURE(c.k);
        CAPTURE(ranks);
        CAPTURE(r);
        CHECK(same_bits(w1, dw[static_cast<std::size_t>(r)].data(), w1.size()));
        CHECK(same_bits(b1, db[static_cast<std::size_t>(r)].data(), b1.size()));
      }
    }
  }
}

void check_batchnorm_over_ranks(std::int64_t N, std::int64_t C, std::int64_t H);

// BatchNorm in training: the whole batch's statistics in forward (and the running ones), the
// whole batch's sums in backward; each rank's rows of y and dx are one process's rows.
// 16 channels of 3 x 3 once made the compiler vectorise one process's sums across channels and
// not the split ones, which changed the variance's bits: both now run one compiled body.
TEST_CASE("BatchNorm2d over 1-3 ranks equals one process's bits") {
  for (const auto& [C, H] : {std::pair<std::int64_t, std::int64_t>{5, 6}, {16, 3}})
    check_batchnorm_over_ranks(18, C, H);
}

void check_batchnorm_over_ranks(std::int64_t N, std::int64_t C, std::int64_t H) {
  const Tensor<float> x = random_tensor(Shape{N, C, H, H}, 7);
  const Tensor<float> dy = random_tensor(Shape{N, C, H, H}, 8);
  BatchNorm2d<float> one(C);
  Rng init(9);
  one.reset_parameters(init);
  const Tensor<float> y1 = one.forward(x, Context{Mode::Train, 0}).clone();
  const Tensor<float> dx1 = one.backward(dy).clone();
  const auto p1 = one.parameters();
  const auto b1 = one.buffers();
  for (int ranks = 1; ranks <= 3; ++ranks) {
    std::vector<int> ok(3, 0);
    run_thread_ranks(ranks, [&](ThreadRankReducer& r) {
      BatchNorm2d<float> layer(C);
      Rng rng(9);
      layer.reset_parameters(rng);
      Context ctx{Mode::Train, 0};
      ctx.share = share_for(r, N);
      const std::int64_t first = ctx.share.first;
      const std::int64_t count = batch_share_range(N, r.rank(), ranks).count;
      const std::int64_t per = C * H * H;
      const Tensor<float>& y = layer.forward(rows(x, first, count), ctx);
      bool same = same_bits(y, y1.data() + first * per, count * per);
      const Tensor<float>& dx = layer.backward(rows(dy, first, count));
      same = same && same_bits(dx, dx1.data() + first * per, count * per);
      const auto p = layer.parameters();
      for (std::size_t i = 0; i < p.size(); ++i)
        same = same && same_bits(*p[i].grad, p1[i].grad->data(), p1[i].grad->size());
      const auto b = layer.buffers();
      for (std::size_t i = 0; i < b.size(); ++i)
        if (b[i].value)
          same = same && same_bits(*b[i].value, b1[i].value->data(), b1[i].value->size());
      ok[static_cast<std::size_t>(r.rank())] = same ? 1 : -1;
    });
    for (int r = 0; r < ranks; ++r) {
      CAPTURE(ranks);
      CAPTURE(r);
      CHECK(ok[static_cast<std::size_t>(r)] == 1);
    }
  }
}

namespace {

// A few training steps of `make` on random batches of `batch` images, on the share of the ranks
// in `reducer` (none: one process), with `threads` OpenMP threads when alone.
template <typename Make>
std::vector<float> train_steps(Make make, double smoothing, std::int64_t batch, std::int64_t side,
                               ThreadRankReducer* reducer) {
  auto net = make();
  CrossEntropyLoss<float> loss(Reduction::mean, smoothing);
  SgdOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.nesterov = true;
  SGD<float> sgd(net.parameters(), o);
  for (std::uint64_t step = 0; step < 3; ++step) {
    const Tensor<float> x = random_tensor(Shape{batch, 1, side, side}, 20 + step);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
    Rng rng(30 + step);
    for (auto& l : labels) l = static_cast<std::int32_t>(rng.below(10));
    if (!reducer) {
      train_step(net, loss, sgd, x, labels.data());
      continue;
    }
    const SampleRange s = batch_share_range(batch, reducer->rank(), reducer->ranks());
    const Tensor<float> x_share = rows(x, s.first, s.count);
    train_step(net, loss, sgd, x_share, labels.data() + s.first,
               static_cast<const Tensor<float>**>(nullptr), BatchShare{reducer, s.first, batch});
  }
  return state_bits(net);
}

template <typename Make>
void check_network_over_ranks(Make make, double smoothing, std::int64_t batch, std::int64_t side) {
  const int saved = num_threads();
  set_num_threads(1);
  const std::vector<float> one = train_steps(make, smoothing, batch, side, nullptr);
  set_num_threads(2);
  CHECK(same_bits(one, train_steps(make, smoothing, batch, side, nullptr)));
  set_num_threads(saved);
  for (int ranks = 1; ranks <= 3; ++ranks) {
    std::vector<int> ok(3, 0);
    run_thread_ranks(ranks, [&](ThreadRankReducer& r) {
      ok[static_cast<std::size_t>(r.rank())] =
          same_bits(one, train_steps(make, smoothing, batch, side, &r)) ? 1 : -1;
    });
    for (int r = 0; r < ranks; ++r) {
      CAPTURE(ranks);
      CAPTURE(r);
      CHECK(ok[static_cast<std::size_t>(r)] == 1);
    }
  }
}

}  // namespace

// Dropout masks keyed by the global element, the loss's 1/N of the whole batch, Adam-free SGD
// with Nesterov momentum; a batch of 26 ends in a short chunk.
TEST_CASE("the MNIST CNN trained over 1-3 ranks has one process's weights, bit for bit") {
  check_network_over_ranks([] { return make_mnist_cnn<float>(11); }, 0.0, 26, 28);
}

TEST_CASE("a ResNet (BatchNorm, label smoothing) trained over 1-3 ranks has one process's bits") {
  ResNetOptions o;
  o.depth = 8;
  o.width = 4;
  check_network_over_ranks([&] { return make_resnet<float>(12, o); }, 0.1, 20, 12);
}

}  // namespace test_batch_reducer
