// examples/mnist/history.hpp - shared with the resnet command: examples/common/history.hpp.
#pragma once

#include "../common/history.hpp"

namespace mnist {
using namespace cli;
}  // namespace mnist
