// Tests of the strict JSON reader and the safetensors reader and writer:
// bit-exact round trips, atomic writes, and one check per kind of bad file;
// then checkpoints: network and Adam state round trips, refusals, and resuming.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "minidl/core/rng.hpp"
#include "minidl/io/checkpoint.hpp"
#include "minidl/io/json.hpp"
#include "minidl/io/safetensors.hpp"
#include "minidl/layers/dropout.hpp"
#include "minidl/layers/linear.hpp"
#include "minidl/layers/relu.hpp"
#include "minidl/loss/cross_entropy.hpp"
#include "minidl/models/mnist_cnn.hpp"
#include "minidl/optim/adam.hpp"
#include "minidl/optim/sgd.hpp"
#include "minidl/train/step.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_safetensors {

namespace fs = std::filesystem;
using minidl::Json;

namespace {

using minidl::testing::error_message;
using minidl::testing::read_all;
using minidl::testing::write_all;

// Scratch folders of this file are named minidl_test_st_<pid>_<n>.
struct TempDir : minidl::testing::TempDir {
  TempDir() : minidl::testing::TempDir("minidl_test_st_") {}
};

// A safetensors file made by hand: length, header text, then `data_bytes` bytes.
std::string handmade(const std::string& header, std::size_t data_bytes, std::uint64_t length = 0) {
  if (length == 0) length = header.size();
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>(length >> (8 * i));
  return out + header + std::string(data_bytes, '\x01');
}

minidl::SafetensorsFile sample() {
  const float f[6] = {1.5f,
                      -0.0f,
                      std::numeric_limits<float>::infinity(),
                      std::numeric_limits<float>::denorm_min(),
                      3.14159265f,
                      -1e30f};
  const double d[3] = {0.1, -2.5e-300, std::nan("")};
  const std::int64_t i[4] = {0, -1, std::numeric_limits<std::int64_t>::min(),
                             std::numeric_limits<std::int64_t>::max()};
  minidl::SafetensorsFile file;
  file.tensors.push_back(minidl::make_tensor("fc1.weight", f, 6, {2, 3}));
  file.tensors.push_back(minidl::make_tensor("b.double", d, 3, {3}));
  file.tensors.push_back(minidl::make_tensor("a.int64", i, 4, {2, 1, 2}));
  file.tensors.push_back(minidl::make_tensor("empty", f, 0, {0, 4}));
  file.metadata["format"] = "minidl";
  file.metadata["note"] = "quote \" backslash \\ newline \n unicode \xC3\xA9";
  return file;
}

}  // namespace

TEST_CASE("JSON: values, escapes, exact integers and key order read back as written") {
  const Json v = minidl::parse_json(
      R"( {"a": [1, -2.5e3, true, false, null], "s": "tab\t quote\" \u00e9 \ud83d\ude00 \/",
           "big": 9007199254740993, "nested": {"x": {}}, "empty": []} )");
  REQUIRE(v.is_object());
  CHECK(v.size() == 5);
  CHECK(v.at("a")[1].get<double>() == -2500.0);
  CHECK(v.at("a")[2].get<bool>());
  CHECK(v.at("a")[4].is_null());
  CHECK(v.at("s").get<std::string>() == "tab\t quote\" \xC3\xA9 \xF0\x9F\x98\x80 /");
  CHECK(v.at("big").get<std::int64_t>() == 9007199254740993);  // beyond a double's exact range
  CHECK(minidl::json_member(v, "missing") == nullptr);
  CHECK(minidl::json_member(v.at("a"), "a") == nullptr);  // not an object
  CHECK(minidl::json_type(v.at("nested")) == std::string("an object"));
  CHECK(minidl::json_type(v.at("big")) == std::string("a number"));
  // Keys stay in file order: a header read and written again keeps its bytes.
  CHECK(minidl::parse_json(R"({"b":1,"a":{"d":2,"c":3}})").dump() ==
        R"({"b":1,"a":{"d":2,"c":3}})");
  CHECK(minidl::parse_json(v.dump()).dump() == v.dump());
  CHECK(minidl::parse_json(v.dump(2)).dump() == v.dump());
  CHECK(minidl::parse_json("0.1").get<double>() == 0.1);
  CHECK(Json(0.1).dump() == "0.1");  // shortest text that reads back exactly
  CHECK(Json(std::nan("")).dump() == "null");

  Json m;
  m["epoch"] = 3;
  m["name"] = "run \"1\"";
  m["epoch"] = 4;  // replaces
  m["list"] = {1.25};
  CHECK(m.dump() == R"({"epoch":4,"name":"run \"1\"","list":[1.25]})");
  CHECK(m.dump(1) ==
        "{\n \"epoch\": 4,\n \"name\": \"run \\\"1\\\"\",\n \"list\": [\n  1.25\n ]\n}");
  CHECK_ERROR(minidl::dump_json(Json(std::string("\xFF")), "out.json"),
              "out.json: cannot write JSON", "invalid UTF-8");
}

TEST_CASE("JSON: malformed input is refused with the source and the byte offset") {
  using minidl::parse_json;
  CHECK_ERROR(parse_json("[1,2,]", "f.json"), "f.json: invalid JSON at byte 5", "unexpected ']'");
  CHECK_ERROR(parse_json(R"({"a" 1})", "f.json"), "f.json: invalid JSON at byte 5", "expected ':'");
  CHECK_ERROR(parse_json(R"({"a":1,})"), "invalid JSON at byte 7");  // no trailing commas
  CHECK_ERROR(parse_json("// note\n1"), "invalid JSON at byte 0");   // no comments
  CHECK_ERROR(parse_json("012"), "expected end of input");           // no leading zeros
  CHECK_ERROR(parse_json("1e999"), "number overflow");
  CHECK_ERROR(parse_json("NaN"), "byte 0", "invalid literal");
  CHECK_ERROR(parse_json("[1] x"), "byte 4", "expected end of input");
  CHECK_ERROR(parse_json("\"a\nb\""), "control character");
  CHECK_ERROR(parse_json("\"\xC3\x28\""), "ill-formed UTF-8");
  CHECK_ERROR(parse_json(R"("\ud800x")"), "surrogate U+D800..U+DBFF must be followed");
  CHECK_ERROR(parse_json(R"("\udc00")"), "surrogate U+DC00..U+DFFF must follow");
  CHECK_ERROR(parse_json(R"("\u12G4")"), "4 hex digits");
  CHECK_ERROR(parse_json(R"("\q")"), "forbidden character after backslash");
  CHECK_ERROR(parse_json("\"abc"), "missing closing quote");
  CHECK_ERROR(parse_json(""), "byte 0", "unexpected end of input");
}

TEST_CASE("JSON: duplicate keys and deep nesting, which nlohmann/json lets through, are refused") {
  using minidl::parse_json;
  CHECK_ERROR(parse_json(R"({"a":1,"a":2})", "f.json"),
              "f.json: invalid JSON: duplicate key \"a\" in the top-level object");
  CHECK_ERROR(parse_json(R"({"w": [{"x": 1}, {"y": 2, "x": {}, "x": 3}]})"),
              "duplicate key \"x\" in /w/1");
  CHECK_ERROR(
      parse_json("{\"" + std::string(1000, 'k') + "\":1,\"" + std::string(1000, 'k') + "\":1}"),
      "duplicate key \"" + std::string(64, 'k') + "...\" in");
  // Each object has its own keys.
  CHECK(parse_json(R"([{"a":1},{"a":2,"b":{"a":3}}])").dump() ==
        R"([{"a":1},{"a":2,"b":{"a":3}}])");

  const auto nested = [](std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  CHECK_NOTHROW(parse_json(nested(minidl::kJsonMaxDepth)));
  CHECK_ERROR(parse_json(nested(minidl::kJsonMaxDepth + 1), "f.json"),
              "f.json: invalid JSON: nesting deeper than 128 levels");
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  CHECK_ERROR(parse_json(objects), "nesting deeper than 128 levels");
}

TEST_CASE("safetensors: float, double and int64 round trip bit-exactly") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  const minidl::SafetensorsFile in = sample();
  minidl::write_safetensors(path, in);
  const minidl::SafetensorsFile out = minidl::read_safetensors(path);

  REQUIRE(out.tensors.size() == in.tensors.size());
  for (const minidl::NamedTensor& t : in.tensors) {
    const minidl::NamedTensor& r = out.at(t.name);
    CHECK(r.dtype == t.dtype);
    CHECK(r.shape == t.shape);
    CHECK(r.bytes == t.bytes);  // bit-exact, NaN payload and -0.0 included
  }
  CHECK(out.tensors[0].name == "a.int64");  // returned in name order
  CHECK(out.metadata == in.metadata);       // checksums are checked, then left out

  float f[6];
  minidl::copy_tensor(out.at("fc1.weight"), f, {2, 3});
  CHECK(std::memcmp(f, in.tensors[0].bytes.data(), sizeof f) == 0);
  std::int64_t i[4];
  minidl::copy_tensor(out.at("a.int64"), i, {2, 1, 2});
  CHECK(i[2] == std::numeric_limits<std::int64_t>::min());
  double d[3];
  minidl::copy_tensor(out.at("b.double"), d, {3});
  CHECK(std::isnan(d[2]));

  // Layout: header padded to a multiple of 8, buffer in name order, checksums in the metadata.
  const std::string bytes = read_all(path);
  std::uint64_t n = 0;
  for (int k = 7; k >= 0; --k)
    n = n << 8 | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
  CHECK(n % 8 == 0);
  const Json header = minidl::parse_json(bytes.substr(8, n));
  CHECK(header.at("a.int64").at("data_offsets").dump() == "[0,32]");
  CHECK(header.at("b.double").at("data_offsets").dump() == "[32,56]");
  CHECK(header.at("empty").at("data_offsets").dump() == "[56,56]");
  CHECK(header.at("fc1.weight").at("data_offsets").dump() == "[56,80]");
  CHECK(header.at("__metadata__").at("crc32:fc1.weight").get<std::string>().size() == 8);
  CHECK(bytes.size() == 8 + n + 80);

  // Reading and writing again gives the same file.
  minidl::write_safetensors(dir.file("again.safetensors"), out);
  CHECK(read_all(dir.file("again.safetensors")) == bytes);
}

TEST_CASE("safetensors: helpers check counts, dtypes and shapes") {
  const float f[4] = {1, 2, 3, 4};
  CHECK_ERROR(minidl::make_tensor("w", f, 4, {3, 2}), "'w'",
              "shape [3, 2] does not hold 4 elements");
  const minidl::NamedTensor t = minidl::make_tensor("fc1.weight", f, 4, {2, 2});
  float out[4];
  double dout[4];
  CHECK_ERROR(minidl::copy_tensor(t, out, {4, 1}), "tensor 'fc1.weight'",
              "expected shape [4, 1], found [2, 2]");
  CHECK_ERROR(minidl::copy_tensor(t, dout, {2, 2}), "tensor 'fc1.weight'",
              "expected dtype F64, found F32");
  minidl::SafetensorsFile file;
  file.tensors.push_back(t);
  CHECK_ERROR(file.at("fc2.weight"), "no tensor named 'fc2.weight'", "fc1.weight");
}

TEST_CASE("safetensors: writes are atomic; a failed write keeps the old file") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  minidl::write_safetensors(path, sample());
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});  // no temporary left
  const std::string old = read_all(path);

  // Invalid input: refused before anything is written.
  minidl::SafetensorsFile bad = sample();
  bad.tensors[0].bytes.pop_back();
  CHECK_ERROR(minidl::write_safetensors(path, bad), path, "tensor 'fc1.weight'",
              "needs 24 bytes but holds 23");
  bad = sample();
  bad.tensors[1].name = "fc1.weight";
  CHECK_ERROR(minidl::write_safetensors(path, bad), path, "two tensors are named 'fc1.weight'");

  // A write that fails half-way (file size limit, as on a full disk).
  minidl::SafetensorsFile big;
  const std::vector<float> values(100000, 1.0f);
  big.tensors.push_back(minidl::make_tensor("big", values.data(), values.size(), {100000}));
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto previous = std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
  rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string msg = error_message([&] { minidl::write_safetensors(path, big); });
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous);
  CHECK_MESSAGE(msg.find(path) != std::string::npos, msg);
  CHECK(read_all(path) == old);
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
  CHECK(minidl::read_safetensors(path).tensors.size() == 4);
}

TEST_CASE("safetensors: unreadable files and bad header lengths") {
  TempDir dir;
  CHECK_ERROR(minidl::read_safetensors(dir.file("none.safetensors")), dir.file("none.safetensors"),
              "does not exist");
  CHECK_ERROR(minidl::read_safetensors(dir.path.string()), dir.path.string(), "is a directory");
  write_all(dir.file("short"), "abc");
  CHECK_ERROR(minidl::read_safetensors(dir.file("short")), dir.file("short"),
              "file is 3 bytes, too short");
  write_all(dir.file("past_end"), handmade("{}", 0, 1000));
  CHECK_ERROR(minidl::read_safetensors(dir.file("past_end")), dir.file("past_end"),
              "header length 1000 runs past the end of the file (only 2 bytes follow");
  // A sparse file big enough that only the 100 MB limit is left to refuse the header.
  write_all(dir.file("huge"), handmade("{}", 0, (100u << 20) + 8));
  fs::resize_file(dir.file("huge"), (101u << 20));
  CHECK_ERROR(minidl::read_safetensors(dir.file("huge")), dir.file("huge"),
              "exceeds the 100 MB limit");
}

TEST_CASE("safetensors: malformed headers name the file, the tensor and the problem") {
  TempDir dir;
  const std::string p = dir.file("bad.safetensors");
  const auto check = [&](const std::string& header, std::size_t data,
                         std::initializer_list<std::string> parts) {
    write_all(p, handmade(header, data));
    const std::string msg = error_message([&] { minidl::read_safetensors(p); });
    CHECK_MESSAGE(msg.find(p + ": ") == 0, msg);
    for (const std::string& part : parts)
      CHECK_MESSAGE(msg.find(part) != std::string::npos, msg << " lacks " << part);
  };
  check(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})", 8,
        {"header: invalid JSON at byte 60", "expected '}'"});
  check(R"([1, 2])", 0, {"the header is an array, expected a JSON object"});
  check(R"({"w": {"dtype": "F8", "shape": [2], "data_offsets": [0, 2]}})", 2,
        {"tensor 'w'", "unknown dtype \"F8\""});
  check(R"({"w": {"dtype": "F32", "shape": [2]}})", 0, {"tensor 'w' lacks data_offsets"});
  check(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 0]}})", 0,
        {"tensor 'w'", "non-negative"});
  check(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 12,
        {"tensor 'w' of shape [2, 2] and dtype F32 needs 16 bytes but its data_offsets span 12"});
  check(R"({"w": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8,
        {"tensor 'w'", "shape [4294967296, 4294967296] is too large"});
  check(R"({"w": {"dtype": "F32", "shape": [250], "data_offsets": [0, 1000]}})", 16,
        {"tensor 'w' has data_offsets [0, 1000] outside the 16-byte data buffer"});
  check(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8,
        {"tensor 'w' has data_offsets [8, 4] that end before they begin"});
  check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
        12, {"tensor 'b' at bytes [4, 12) overlaps the data of another tensor"});
  check(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
            "b": {"dtype": "U8", "shape": [4], "data_offsets": [8, 12]}})",
        12, {"gap in the data buffer: bytes [4, 8) belong to no tensor"});
  check(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})", 10,
        {"data buffer holds 10 bytes but the tensors account for 4"});
  check(R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
            "w": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}})",
        4, {"header: invalid JSON", "duplicate key \"w\" in the top-level object"});
  check(R"({"w": {"dtype": "U8", "dtype": "F32", "shape": [2], "data_offsets": [0, 2]}})", 2,
        {"header: invalid JSON", "duplicate key \"dtype\" in /w"});
  check(R"({"w": {"dtype": "U8", "shape": [2.0], "data_offsets": [0, 2]}})", 2,
        {"tensor 'w'", "must hold non-negative integers"});
  check(R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2e0]}})", 2,
        {"tensor 'w'", "data_offsets must be non-negative integers, found 2.0"});
  check(R"({"__metadata__": {"epoch": 3}})", 0,
        {"metadata value of 'epoch' is a number, expected a string"});
}

TEST_CASE("safetensors: a flipped data byte is caught by the checksum") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  minidl::write_safetensors(path, sample());
  std::string bytes = read_all(path);
  bytes[bytes.size() - 3] ^= 0x10;  // inside fc1.weight, the last tensor of the buffer
  write_all(path, bytes);
  CHECK_ERROR(minidl::read_safetensors(path), path,
              "checksum mismatch in tensor fc1.weight: file is corrupt");
}

// ---------------------------------------------------------------------------
// Checkpoints: a network and its optimizer state in one safetensors file.

namespace {

template <typename T>
std::vector<std::uint8_t> bits_of(const minidl::Tensor<T>& t) {
  std::vector<std::uint8_t> b(static_cast<std::size_t>(t.size()) * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), t.data(), b.size());
  return b;
}

// Every parameter's bytes, in order.
template <typename T>
std::vector<std::uint8_t> parameter_bits(minidl::Sequential<T>& net) {
  std::vector<std::uint8_t> all;
  for (auto& p : net.parameters()) {
    const auto b = bits_of(*p.value);
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}

// Every optimizer state tensor's bytes, in order.
template <typename T>
std::vector<std::uint8_t> state_bits(minidl::Optimizer<T>& opt) {
  std::vector<std::uint8_t> all;
  for (auto& named : opt.state()) {
    const auto b = bits_of(*named.second);
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}

// A seeded batch: inputs of `shape` in [-1, 1) and labels below `classes`.
struct Batch {
  minidl::Tensor<float> x;
  std::vector<std::int32_t> labels;
  Batch(const minidl::Shape& shape, int classes, std::uint64_t seed) : x(shape) {
    minidl::Rng rng(seed);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    labels.resize(static_cast<std::size_t>(shape[0]));
    for (auto& l : labels)
      l = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(classes)));
  }
};

}  // namespace

TEST_CASE("checkpoint: the MNIST CNN and its Adam state round trip exactly") {
  TempDir dir;
  const std::string path = dir.file("cnn.safetensors");
  auto net = minidl::make_mnist_cnn<float>(1);
  minidl::Adam<float> adam(net.parameters());
  minidl::CrossEntropyLoss<float> loss;
  for (std::uint64_t s = 0; s < 2; ++s) {
    const Batch b({4, 1, 28, 28}, 10, 50 + s);
    minidl::train_step(net, loss, adam, b.x, b.labels.data());
  }
  minidl::save_checkpoint(path, net, &adam, {{"epoch", "3"}, {"note", "a \"quoted\" note"}});
  CHECK(dir.listing() == std::vector<std::string>{"cnn.safetensors"});

  // PyTorch's names, in a valid safetensors file.
  const minidl::SafetensorsFile file = minidl::read_safetensors(path);
  const minidl::NamedTensor* w = file.find("conv1.weight");
  REQUIRE(w != nullptr);
  CHECK(w->dtype == minidl::DType::F32);
  CHECK(w->shape == std::vector<std::int64_t>{32, 1, 3, 3});
  CHECK(file.find("optimizer.exp_avg.fc1.weight") != nullptr);
  CHECK(file.find("optimizer.exp_avg_sq.fc2.bias") != nullptr);
  CHECK(file.metadata.at("format") == "minidl");
  CHECK(file.metadata.at("optimizer.step") == "2");

  auto other = minidl::make_mnist_cnn<float>(99);
  minidl::Adam<float> other_adam(other.parameters());
  REQUIRE(parameter_bits(other) != parameter_bits(net));
  const auto meta = minidl::load_checkpoint(path, other, &other_adam);
  CHECK(parameter_bits(other) == parameter_bits(net));
  CHECK(state_bits(other_adam) == state_bits(adam));
  CHECK(other_adam.step_count() == 2);
  CHECK(meta.at("epoch") == "3");
  CHECK(meta.at("note") == "a \"quoted\" note");
  CHECK(meta.at("optimizer.type") == "adam");

  // The parameters alone load into a network without an optimizer.
  auto plain = minidl::make_mnist_cnn<float>(7);
  minidl::load_checkpoint(path, plain);
  CHECK(parameter_bits(plain) == parameter_bits(net));

  // Double networks store F64, which a float network refuses by dtype.
  auto net64 = minidl::make_mnist_cnn<double>(3);
  const std::string path64 = dir.file("cnn64.safetensors");
  minidl::save_checkpoint(path64, net64);
  CHECK(minidl::read_safetensors(path64).find("fc2.bias")->dtype == minidl::DType::F64);
  auto back64 = minidl::make_mnist_cnn<double>(4);
  minidl::load_checkpoint(path64, back64);
  CHECK(parameter_bits(back64) == parameter_bits(net64));
  CHECK_ERROR(minidl::load_checkpoint(path64, plain), path64, "F64", "F32");
}

TEST_CASE("checkpoint: weights and metadata without an optimizer are one plain call") {
  TempDir dir;
  auto net = minidl::make_mnist_cnn<float>(1);
  minidl::save_checkpoint(dir.file("a.safetensors"), net, nullptr, {{"note", "a"}});
  minidl::save_checkpoint(dir.file("b.safetensors"), net, {{"note", "b"}});
  auto again = minidl::make_mnist_cnn<float>(2);
  CHECK(minidl::load_checkpoint(dir.file("a.safetensors"), again).at("note") == "a");
  CHECK(parameter_bits(again) == parameter_bits(net));
  CHECK(minidl::load_checkpoint(dir.file("b.safetensors"), again).at("note") == "b");
  CHECK(minidl::read_safetensors(dir.file("b.safetensors")).metadata.count("optimizer.type") == 0);
}

TEST_CASE("checkpoint: a model of another shape is refused and left untouched") {
  TempDir dir;
  const std::string path = dir.file("cnn.safetensors");
  auto net = minidl::make_mnist_cnn<float>(1);
  minidl::save_checkpoint(path, net);

  // The same layers, but fc1 with 64 outputs.
  minidl::Sequential<float> small;
  small.add("conv1", minidl::Conv2d<float>(1, 32, 3, 1, 1));
  small.add("relu1", minidl::ReLU<float>());
  small.add("pool1", minidl::MaxPool2d<float>(2));
  small.add("conv2", minidl::Conv2d<float>(32, 64, 3, 1, 1));
  small.add("relu2", minidl::ReLU<float>());
  small.add("pool2", minidl::MaxPool2d<float>(2));
  small.add("flatten", minidl::Flatten<float>());
  small.add("fc1", minidl::Linear<float>(3136, 64));
  small.add("relu3", minidl::ReLU<float>());
  small.add("fc2", minidl::Linear<float>(64, 10));
  small.reset_parameters(5);
  const auto before = parameter_bits(small);
  CHECK_ERROR(minidl::load_checkpoint(path, small), path, "'fc1.weight'", "[128, 3136]",
              "[64, 3136]");
  // conv1 and conv2 fit, but nothing is copied unless everything fits.
  CHECK(parameter_bits(small) == before);

  // A parameter the file lacks.
  minidl::Sequential<float> extra;
  extra.add("fc3", minidl::Linear<float>(4, 2));
  CHECK_ERROR(minidl::load_checkpoint(path, extra), path, "'fc3.weight'", "missing");
}

TEST_CASE("checkpoint: NaN or infinite weights are refused with the tensor's name") {
  TempDir dir;
  auto healthy = minidl::make_mnist_cnn<float>(2);
  const auto before = parameter_bits(healthy);
  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    const std::string path = dir.file("diverged.safetensors");
    auto net = minidl::make_mnist_cnn<float>(1);
    for (auto& p : net.parameters())
      if (p.name == "conv2.bias") p.value->data()[5] = bad;
    minidl::save_checkpoint(path, net);
    CHECK_ERROR(minidl::load_checkpoint(path, healthy), path, "'conv2.bias'", "non-finite",
                "index 5");
    CHECK(parameter_bits(healthy) == before);  // nothing loaded
  }
}

TEST_CASE("checkpoint: a safetensors file that is not a minidl checkpoint is refused") {
  TempDir dir;
  auto net = minidl::make_mnist_cnn<float>(1);
  // The right tensors without "format" metadata, as another tool would write them.
  minidl::SafetensorsFile file;
  for (auto& p : net.parameters()) {
    minidl::NamedTensor t;
    t.name = p.name;
    t.dtype = minidl::DType::F32;
    t.shape = p.value->shape().to_vector();
    t.bytes = bits_of(*p.value);
    file.tensors.push_back(std::move(t));
  }
  const std::string path = dir.file("foreign.safetensors");
  minidl::write_safetensors(path, file);
  const auto before = parameter_bits(net);
  CHECK_ERROR(minidl::load_checkpoint(path, net), path, "not a minidl checkpoint", "format");
  file.metadata["format"] = "pt";
  minidl::write_safetensors(path, file);
  CHECK_ERROR(minidl::load_checkpoint(path, net), path, "not a minidl checkpoint", "'pt'");
  CHECK(parameter_bits(net) == before);

  // Optimizer state of another kind is refused too.
  const std::string adam_path = dir.file("adam.safetensors");
  minidl::Adam<float> adam(net.parameters());
  minidl::save_checkpoint(adam_path, net, &adam);
  minidl::SGD<float> sgd(net.parameters());
  CHECK_ERROR(minidl::load_checkpoint(adam_path, net, &sgd), adam_path, "'adam'", "'sgd'");
}

namespace {

// A small network with dropout, so that a resumed run must also draw the same masks.
minidl::Sequential<float> make_small_net() {
  minidl::Sequential<float> net;
  net.add("fc1", minidl::Linear<float>(6, 16));
  net.add("relu", minidl::ReLU<float>());
  net.add("dropout", minidl::Dropout<float>(0.5));
  net.add("fc2", minidl::Linear<float>(16, 4));
  net.reset_parameters(2024);
  return net;
}

// Training steps [from, to), each on a batch keyed by its step.
void train_steps(minidl::Sequential<float>& net, minidl::Adam<float>& adam, int from, int to) {
  minidl::CrossEntropyLoss<float> loss;
  for (int s = from; s < to; ++s) {
    REQUIRE(adam.step_count() == s);
    const Batch b({8, 6}, 4, 1000 + static_cast<std::uint64_t>(s));
    minidl::train_step(net, loss, adam, b.x, b.labels.data());
  }
}

}  // namespace

TEST_CASE("checkpoint: 2 steps, save, load into a fresh network, 2 steps == 4 steps, bit for bit") {
  TempDir dir;
  const std::string path = dir.file("resume.safetensors");

  auto straight = make_small_net();
  minidl::Adam<float> straight_adam(straight.parameters());
  train_steps(straight, straight_adam, 0, 4);

  {
    auto first = make_small_net();
    minidl::Adam<float> first_adam(first.parameters());
    train_steps(first, first_adam, 0, 2);
    minidl::save_checkpoint(path, first, &first_adam);
  }
  auto resumed = make_small_net();
  minidl::Adam<float> resumed_adam(resumed.parameters());
  minidl::load_checkpoint(path, resumed, &resumed_adam);
  CHECK(resumed_adam.step_count() == 2);
  train_steps(resumed, resumed_adam, 2, 4);

  CHECK(parameter_bits(resumed) == parameter_bits(straight));
  CHECK(state_bits(resumed_adam) == state_bits(straight_adam));
  CHECK(resumed_adam.step_count() == 4);

  // The comparison can tell: resuming without the optimizer's moments ends elsewhere.
  auto forgetful = make_small_net();
  minidl::Adam<float> forgetful_adam(forgetful.parameters());
  minidl::load_checkpoint(path, forgetful);
  forgetful_adam.set_step_count(2);
  train_steps(forgetful, forgetful_adam, 2, 4);
  CHECK(parameter_bits(forgetful) != parameter_bits(straight));
}

TEST_CASE("safetensors: U8 round trip, and writing into a missing folder") {
  TempDir dir;
  const std::string path = dir.file("bytes.safetensors");
  minidl::SafetensorsFile file;
  minidl::NamedTensor t;
  t.name = "images";
  t.dtype = minidl::DType::U8;
  t.shape = {4, 8, 8};
  for (int i = 0; i < 256; ++i) t.bytes.push_back(static_cast<std::uint8_t>(255 - i));
  file.tensors.push_back(t);
  file.metadata["utf8"] = "Z\xC3\xBCrich \xE2\x80\x93 \xE6\x95\xB0\xE5\xAD\x97 \xF0\x9F\x98\x80";
  file.metadata["controls"] = "tab\t bell\x07 cr\r \\ \"";
  minidl::write_safetensors(path, file);
  const minidl::SafetensorsFile back = minidl::read_safetensors(path);
  REQUIRE(back.find("images") != nullptr);
  CHECK(back.find("images")->dtype == minidl::DType::U8);
  CHECK(back.find("images")->shape == t.shape);
  CHECK(back.find("images")->bytes == t.bytes);
  CHECK(back.metadata == file.metadata);

  const std::string nowhere = dir.file("no-such-folder/model.safetensors");
  CHECK_ERROR(minidl::write_safetensors(nowhere, file), nowhere, "cannot write");
  CHECK(dir.listing() == std::vector<std::string>{"bytes.safetensors"});
}

}  // namespace test_safetensors
