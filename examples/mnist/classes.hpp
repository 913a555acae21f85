// examples/mnist/classes.hpp - shared with the resnet command: examples/common/classes.hpp.
#pragma once

#include "../common/classes.hpp"

namespace mnist {
using namespace cli;
}  // namespace mnist
