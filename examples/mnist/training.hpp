// examples/mnist/training.hpp - shared with the resnet command: examples/common/training.hpp.
#pragma once

#include "../common/training.hpp"

namespace mnist {
using namespace cli;
}  // namespace mnist
