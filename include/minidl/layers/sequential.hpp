// minidl/layers/sequential.hpp - Sequential: a chain of named layers.
#pragma once

#include "minidl/layers/graph.hpp"

namespace minidl {

// A chain is a Graph whose nodes all read the node before: add(name, layer)
// without input names builds one, and runs it in order (backward in
// reverse), as torch.nn.Sequential does. Parameters are listed as
// "<layer name>.<parameter>" ("conv1.weight").
template <typename T>
using Sequential = Graph<T>;

}  // namespace minidl
