// examples/mnist/output_folder.hpp - shared with the resnet command:
// examples/common/output_folder.hpp.
#pragma once

#include "../common/output_folder.hpp"

namespace mnist {
using namespace cli;
}  // namespace mnist
