// libFuzzer target: image loading and MNIST-style preprocessing must reject
// any bytes with a minidl::Error or return exactly 28x28 pixels.
#include "fuzz_input.hpp"
#include "minidl/data/digit_preprocess.hpp"
#include "minidl/io/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = write_fuzz_input(data, size, ".img");
  try {
    const minidl::GrayImage img = minidl::load_gray_image(path);
    if (img.pixels.size() !=
        static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height))
      std::abort();
    if (static_cast<long>(img.width) * img.height <= (1L << 22)) {  // keep each run fast
      const auto digit = minidl::to_mnist_format(img);
      if (digit.size() != 784) std::abort();
    }
  } catch (const minidl::Error&) {
  }
  return 0;
}
