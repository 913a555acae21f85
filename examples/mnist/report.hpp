// examples/mnist/report.hpp - shared with the resnet command: examples/common/report.hpp.
#pragma once

#include "../common/report.hpp"

namespace mnist {
using namespace cli;
}  // namespace mnist
