// examples/mnist/args.hpp - shared with the resnet command: examples/common/args.hpp.
#pragma once

#include "../common/args.hpp"

namespace mnist {
using namespace cli;
}  // namespace mnist
