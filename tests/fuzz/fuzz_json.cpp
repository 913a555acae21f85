// libFuzzer target: parse_json must reject any bytes with a minidl::Error;
// what it accepts must write out and read back to the same text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "minidl/io/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const minidl::Json value = minidl::parse_json(text, "fuzz");
    const std::string once = minidl::dump_json(value);
    if (minidl::dump_json(minidl::parse_json(once, "fuzz")) != once) std::abort();
  } catch (const minidl::Error&) {
  }
  return 0;
}
