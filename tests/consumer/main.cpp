// Trains a tiny network through the installed headers and prints its loss;
// built against minidl::minidl and against minidl::core alone.
#include <minidl/minidl.hpp>

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
  return l < 0.1f ? 0 : 1;
}
