// examples/mnist/stop_signals.hpp - shared with the resnet command:
// examples/common/stop_signals.hpp.
#pragma once

#include "../common/stop_signals.hpp"

namespace mnist {
using namespace cli;
}  // namespace mnist
