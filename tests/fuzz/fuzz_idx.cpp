// libFuzzer target: the IDX reader (raw and gzip) must reject any bytes with
// a minidl::Error, never crash, hang or allocate past the file's evidence.
#include "fuzz_input.hpp"
#include "minidl/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = write_fuzz_input(data, size, ".idx");
  try {
    const auto images = minidl::read_idx_images(path);
    if (images.pixels.size() != static_cast<std::size_t>(images.count * images.rows * images.cols))
      std::abort();
  } catch (const minidl::Error&) {
  }
  try {
    minidl::read_idx_labels(path);
  } catch (const minidl::Error&) {
  }
  return 0;
}
