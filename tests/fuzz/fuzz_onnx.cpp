// libFuzzer target: the ONNX import must reject any bytes with a minidl::Error;
// a network it accepts must plan for its input (shapes that fit).
#include "fuzz_input.hpp"
#include "minidl/onnx/import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = write_fuzz_input(data, size, ".onnx");
  try {
    auto model = minidl::onnx::import_model<float>(path);
    std::vector<std::int64_t> dims;
    for (std::int64_t d : model.input_shape) dims.push_back(d == 0 ? 1 : d);
    model.graph.output_shape(minidl::Shape(dims));
  } catch (const minidl::Error&) {
  }
  return 0;
}
