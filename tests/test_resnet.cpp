// The ResNet of models/resnet.hpp without PyTorch: its gradients against finite differences in
// double (batch norms in training mode, identity and projection shortcuts), its He
// initialisation, the same bits for one and two threads, and refused depths. Names, shapes
// and values against the PyTorch twin are in test_parity_resnet.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "minidl/minidl.hpp"
#include "minidl/models/resnet.hpp"
#include "minidl/optim/param_groups.hpp"
#include "minidl/testing/gradcheck.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_resnet {

using namespace minidl;

namespace {

ResNetOptions tiny(int depth, std::int64_t width) {
  ResNetOptions o;
  o.depth = depth;
  o.width = width;
  return o;
}

// Every parameter and buffer of a network as bits, in order.
std::vector<unsigned char> state_bits(Graph<float>& net) {
  std::vector<unsigned char> bits;
  auto append = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    bits.insert(bits.end(), b, b + n);
  };
  for (auto& p : net.parameters())
    append(p.value->data(), static_cast<std::size_t>(p.value->size()) * sizeof(float));
  for (auto& b : net.buffers()) {
    if (b.value)
      append(b.value->data(), static_cast<std::size_t>(b.value->size()) * sizeof(float));
    else
      append(b.count, sizeof *b.count);
  }
  return bits;
}

}  // namespace

// The loss sums 30 outputs of order 1 through ten layers, so the central difference's rounding
// is about 1e-16 * |L| / h = 1e-9 absolute: 1e-6 of the 1e-3 floor of the relative error. A
// wrong formula is off by far more than 1e-5.
constexpr double kTolerance = 1e-5;

TEST_CASE("resnet: gradients of a ResNet-8 in training mode equal finite differences") {
  // Width 2 on 7x7 images: stages of 7, 4 and 2 pixels, projections in layer2.0 and layer3.0.
  for (const bool fuse : {true, false}) {
    CAPTURE(fuse);
    Graph<double> net = make_resnet<double>(5, tiny(8, 2));
    // Batch norms away from 1/0, so that their scale and shift take part.
    Rng rng(17);
    for (auto& p : net.parameters())
      if (p.value->shape().rank() == 1)
        for (double& v : *p.value) v = rng.uniform(0.5, 1.5);
    net.set_plan_options({fuse, fuse, fuse, fuse, fuse});
    net.set_input_grad(true);
    Tensor<double> x = testing::random_tensor({3, 1, 7, 7}, 3);
    const Context ctx{Mode::Train, 0};
    const Tensor<double> R = testing::random_tensor(net.output_shape(x.shape()), 4);
    auto loss = [&]() {
      const Tensor<double>& y = net.forward(x, ctx);
      double s = 0;
      for (std::int64_t i = 0; i < y.size(); ++i) s += y[i] * R[i];
      return s;
    };
    loss();
    const Tensor<double> dx = net.backward(R).clone();
    std::vector<Tensor<double>> grads;
    for (auto& p : net.parameters()) grads.push_back(p.grad->clone());
    // A sample of each tensor keeps the test short: 100 input elements, 40 of each parameter.
    const auto in = testing::compare_with_finite_differences(x, dx, loss, "input", 1e-6, 100);
    CHECK_MESSAGE(in.max_rel_error < kTolerance, in.worst);
    std::size_t i = 0;
    for (auto& p : net.parameters()) {
      const auto r =
          testing::compare_with_finite_differences(*p.value, grads[i++], loss, p.name, 1e-6, 40);
      CHECK_MESSAGE(r.max_rel_error < kTolerance, r.worst);
    }
  }
}

TEST_CASE("resnet: He initialisation (N(0, 2 / fan_out) convolutions, BN at 1 and 0)") {
  Graph<float> net = make_resnet<float>(3, tiny(20, 16));
  int convs = 0;
  for (auto& p : net.parameters()) {
    const Shape& s = p.value->shape();
    CAPTURE(p.name);
    if (s.rank() == 4) {
      ++convs;
      double sum = 0, squares = 0;
      for (float v : *p.value) {
        sum += v;
        squares += static_cast<double>(v) * v;
      }
      const auto n = static_cast<double>(p.value->size());
      const double expected = std::sqrt(2.0 / static_cast<double>(s[0] * s[2] * s[3]));
      const double std = std::sqrt(squares / n - (sum / n) * (sum / n));
      // 144 (the stem) to 36864 draws: the sample deviation is within 25% (4 standard errors)
      // of the expected one for the fewest, and within 5% from 2304 draws on.
      CHECK(std::fabs(std / expected - 1) < (n >= 2304 ? 0.05 : 0.25));
    } else if (p.name == "fc.weight") {
      for (float v : *p.value) CHECK(std::fabs(v) <= 1.0 / std::sqrt(64.0));
    } else if (p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".weight") == 0) {
      for (float v : *p.value) CHECK(v == 1.0f);  // batch-norm scales
    } else if (p.name != "fc.bias") {
      for (float v : *p.value) CHECK(v == 0.0f);  // batch-norm shifts
    }
  }
  CHECK(convs == 1 + 9 * 2 + 2);  // stem, 9 blocks of two, two projections
  // Another seed, other weights.
  Graph<float> other = make_resnet<float>(4, tiny(20, 16));
  CHECK(state_bits(net) != state_bits(other));
}

TEST_CASE(
    "resnet: zero_init_residual starts each block's bn2 at scale 0 and changes nothing else") {
  ResNetOptions zero = tiny(20, 16);
  zero.zero_init_residual = true;
  Graph<float> plain = make_resnet<float>(3, tiny(20, 16));
  Graph<float> zeroed = make_resnet<float>(3, zero);
  const auto a = plain.parameters();
  const auto b = zeroed.parameters();
  REQUIRE(a.size() == b.size());
  int zeroed_norms = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    const bool last_norm = a[i].name.find(".bn2.weight") != std::string::npos;
    zeroed_norms += last_norm;
    REQUIRE(a[i].value->size() == b[i].value->size());
    const float* va = a[i].value->data();
    const float* vb = b[i].value->data();
    for (std::int64_t k = 0; k < a[i].value->size(); ++k) {
      if (last_norm) {
        CHECK(va[k] == 1.0f);
        CHECK(vb[k] == 0.0f);
      } else {
        CHECK(va[k] == vb[k]);  // the same draws: the option changes no other parameter
      }
    }
  }
  CHECK(zeroed_norms == 9);  // one in each of the nine blocks; the stem's bn1 and the projections'
                             // batch norms keep scale 1
}

TEST_CASE("resnet: training steps give the same bits with one and two threads") {
  auto train = [](int threads) {
    const int saved = num_threads();
    set_num_threads(threads);
    Graph<float> net = make_resnet<float>(9, tiny(8, 4));
    SgdOptions o;
    o.lr = 0.05;
    o.momentum = 0.9;
    o.nesterov = true;
    SGD<float> sgd(split_weight_decay(net.parameters(), 5e-4), o);
    CrossEntropyLoss<float> xent(Reduction::mean, 0.1);
    Tensor<float> x({12, 1, 28, 28});
    Rng rng(1);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    std::vector<std::int32_t> labels(12);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 10);
    for (int step = 0; step < 3; ++step) train_step(net, xent, sgd, x, labels.data());
    std::vector<unsigned char> bits = state_bits(net);
    const Tensor<float>& eval = net.forward(x, Context{Mode::Eval, 0});
    const auto* e = reinterpret_cast<const unsigned char*>(eval.data());
    bits.insert(bits.end(), e, e + eval.size() * static_cast<std::int64_t>(sizeof(float)));
    set_num_threads(saved);
    return bits;
  };
  const auto one = train(1), two = train(2);
  REQUIRE(one.size() == two.size());
  CHECK(std::memcmp(one.data(), two.data(), one.size()) == 0);
}

TEST_CASE("resnet: a depth that is not 6n + 2 is refused with the list of valid ones") {
  CHECK_THROWS_WITH(make_resnet<float>(1, tiny(10, 4)),
                    doctest::Contains("depth 10 is not 6n + 2"));
  CHECK_THROWS_WITH(make_resnet<float>(1, tiny(2, 4)), doctest::Contains("(8, 14, 20"));
  CHECK(resnet_blocks_per_stage(20) == 3);
  CHECK(resnet_blocks_per_stage(8) == 1);
}

}  // namespace test_resnet
