// Trains a tiny network through the installed headers and prints its loss,
// then runs the layer authors' gradient check on a layer; built against
// minidl::minidl and against minidl::core alone.
#include <minidl/minidl.hpp>
#include <minidl/testing/gradcheck.hpp>

#include <cstdio>

int main() {
  using namespace minidl;
  Sequential<float> net;
  net.add("fc1", Linear<float>(2, 8));
  net.add("relu", ReLU<float>());
  net.add("fc2", Linear<float>(8, 2));
  net.reset_parameters(1);
  Tensor<float> x({4, 2});
  const float points[] = {0, 0, 0, 1, 1, 0, 1, 1};
  for (int i = 0; i < 8; ++i) x[i] = points[i];
  const std::int32_t labels[] = {0, 1, 1, 0};  // XOR
  Adam<float> adam(net.parameters(), AdamOptions{0.05});
  CrossEntropyLoss<float> loss;
  float l = 0;
  for (int step = 0; step < 300; ++step) l = train_step(net, loss, adam, x, labels);
  std::printf("consumer: XOR loss after 300 steps %.4f\n", static_cast<double>(l));

  Linear<double> layer(3, 2);
  Rng rng(2);
  layer.reset_parameters(rng);
  const auto check = testing::check_layer_gradients(layer, testing::random_tensor({4, 3}, 3),
                                                    Context{Mode::Train, 0});
  std::printf("consumer: gradient check of Linear, worst relative error %.1e\n", check.worst());
  const bool checked = check.input.checked > 0 && check.params.size() == 2;
  return l < 0.1f && checked && check.worst() < 1e-6 ? 0 : 1;
}
