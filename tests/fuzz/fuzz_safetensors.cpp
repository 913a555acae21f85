// libFuzzer target: the safetensors reader must reject any bytes with a
// minidl::Error; what it accepts must be self-consistent and rewritable.
#include "fuzz_input.hpp"
#include "minidl/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = write_fuzz_input(data, size, ".safetensors");
  try {
    const minidl::SafetensorsFile file = minidl::read_safetensors(path);
    for (const auto& t : file.tensors) {
      std::size_t n = minidl::dtype_size(t.dtype);
      for (auto d : t.shape) n *= static_cast<std::size_t>(d);
      if (n != t.bytes.size()) std::abort();  // accepted, but inconsistent
    }
    minidl::write_safetensors(path + ".out", file);
    const minidl::SafetensorsFile again = minidl::read_safetensors(path + ".out");
    if (again.tensors.size() != file.tensors.size()) std::abort();
  } catch (const minidl::Error&) {
  }
  return 0;
}
