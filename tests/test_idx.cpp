// Tests of the IDX reader and the MNIST loader: good files raw and gzipped, and one
// check per kind of bad file, each asserting that the error names the file and the problem.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "minidl/data/idx.hpp"
#include "minidl/data/mnist.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_idx {

using Bytes = std::vector<std::uint8_t>;

namespace {

// Scratch folders of this file are named minidl_test_idx_<pid>_<n>.
struct TempDir : minidl::testing::TempDir {
  TempDir() : minidl::testing::TempDir("minidl_test_idx_") {}
};

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

// An IDX image file whose pixels follow a recognisable pattern; `data_bytes`
// overrides how many pixel bytes actually follow the header.
Bytes idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols,
                 long data_bytes = -1) {
  Bytes b;
  put_be32(b, 0x00000803);
  put_be32(b, count);
  put_be32(b, rows);
  put_be32(b, cols);
  const std::size_t n =
      data_bytes >= 0 ? static_cast<std::size_t>(data_bytes) : std::size_t{count} * rows * cols;
  for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(i * 7 + i / 13));
  return b;
}

Bytes idx_labels(std::uint32_t count, long data_bytes = -1) {
  Bytes b;
  put_be32(b, 0x00000801);
  put_be32(b, count);
  const std::size_t n = data_bytes >= 0 ? static_cast<std::size_t>(data_bytes) : count;
  for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(i % 10));
  return b;
}

void write_raw(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(f.good());
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty())
    REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

Bytes read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_CASE("IDX: raw and gzip files hold the same images and labels") {
  TempDir dir;
  const Bytes images = idx_images(5, 3, 4), labels = idx_labels(5);
  write_raw(dir.file("img"), images);
  write_gz(dir.file("img.gz"), images);
  write_raw(dir.file("lab"), labels);
  write_gz(dir.file("lab.gz"), labels);

  for (const char* name : {"img", "img.gz"}) {
    const minidl::IdxImages im = minidl::read_idx_images(dir.file(name));
    CHECK(im.count == 5);
    CHECK(im.rows == 3);
    CHECK(im.cols == 4);
    CHECK(im.pixels == Bytes(images.begin() + 16, images.end()));
  }
  for (const char* name : {"lab", "lab.gz"})
    CHECK(minidl::read_idx_labels(dir.file(name)) == Bytes(labels.begin() + 8, labels.end()));
}

TEST_CASE("IDX: gzip is recognised by its magic bytes, not by the file name") {
  TempDir dir;
  const Bytes labels = idx_labels(7);
  write_gz(dir.file("labels.raw"), labels);  // gzip without .gz
  write_raw(dir.file("labels.gz"), labels);  // raw despite .gz
  CHECK(minidl::read_idx_labels(dir.file("labels.raw")).size() == 7);
  CHECK(minidl::read_idx_labels(dir.file("labels.gz")).size() == 7);
}

TEST_CASE("IDX: a gzip file of several members (cat a.gz b.gz) reads as one") {
  TempDir dir;
  const Bytes labels = idx_labels(9);
  write_gz(dir.file("a.gz"), Bytes(labels.begin(), labels.begin() + 11));
  write_gz(dir.file("b.gz"), Bytes(labels.begin() + 11, labels.end()));
  Bytes both = read_all(dir.file("a.gz"));
  const Bytes b = read_all(dir.file("b.gz"));
  both.insert(both.end(), b.begin(), b.end());
  write_raw(dir.file("ab.gz"), both);
  CHECK(minidl::read_idx_labels(dir.file("ab.gz")) == Bytes(labels.begin() + 8, labels.end()));
}

TEST_CASE("IDX: missing file, directory, empty file") {
  TempDir dir;
  CHECK_ERROR(minidl::read_idx_images(dir.file("nope-idx3-ubyte")), dir.file("nope-idx3-ubyte"),
              "does not exist");
  CHECK_ERROR(minidl::read_idx_labels(dir.path.string()), dir.path.string(), "is a directory");
  write_raw(dir.file("empty"), {});
  CHECK_ERROR(minidl::read_idx_images(dir.file("empty")), dir.file("empty"), "file is empty");
}

TEST_CASE("IDX: truncated header, raw and gzip") {
  TempDir dir;
  const Bytes header = idx_images(2, 28, 28, 0);
  write_raw(dir.file("short"), Bytes(header.begin(), header.begin() + 10));
  CHECK_ERROR(minidl::read_idx_images(dir.file("short")), dir.file("short"), "truncated header",
              "holds only 10 bytes", "needs 16");
  write_gz(dir.file("short.gz"), Bytes(header.begin(), header.begin() + 3));
  CHECK_ERROR(minidl::read_idx_images(dir.file("short.gz")), dir.file("short.gz"),
              "truncated header", "decompressed file holds only 3 bytes");
  const Bytes lab = idx_labels(1, 0);
  write_raw(dir.file("lab"), Bytes(lab.begin(), lab.begin() + 6));
  CHECK_ERROR(minidl::read_idx_labels(dir.file("lab")), dir.file("lab"), "truncated header",
              "needs 8");
}

TEST_CASE("IDX: wrong magic says what was found and what was expected") {
  TempDir dir;
  write_raw(dir.file("labels"), idx_labels(4));
  write_raw(dir.file("images"), idx_images(1, 2, 2));
  write_raw(dir.file("png"), {0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK_ERROR(minidl::read_idx_images(dir.file("labels")), dir.file("labels"),
              "wrong magic number 0x00000801", "expected 0x00000803", "IDX label file");
  CHECK_ERROR(minidl::read_idx_labels(dir.file("images")), dir.file("images"),
              "wrong magic number 0x00000803", "expected 0x00000801", "IDX image file");
  CHECK_ERROR(minidl::read_idx_images(dir.file("png")), dir.file("png"),
              "wrong magic number 0x89504e47", "not an IDX file");
}

TEST_CASE("IDX: zero and absurd dimensions are refused before allocating") {
  TempDir dir;
  write_raw(dir.file("zero_rows"), idx_images(3, 0, 4, 0));
  CHECK_ERROR(minidl::read_idx_images(dir.file("zero_rows")), dir.file("zero_rows"),
              "3 images of 0x4", "a dimension is zero");
  write_raw(dir.file("zero_labels"), idx_labels(0));
  CHECK_ERROR(minidl::read_idx_labels(dir.file("zero_labels")), dir.file("zero_labels"), "0 labels",
              "a dimension is zero");
  write_raw(dir.file("wide"), idx_images(1, 1, 100000, 16));
  CHECK_ERROR(minidl::read_idx_images(dir.file("wide")), dir.file("wide"), "1 images of 1x100000",
              "absurd image size");
  // 4e9 images of 28x28 would be 3 TB: refused from the header alone.
  write_gz(dir.file("huge.gz"), idx_images(4000000000u, 28, 28, 16));
  CHECK_ERROR(minidl::read_idx_images(dir.file("huge.gz")), dir.file("huge.gz"),
              "4000000000 images of 28x28", "absurd size", "1 GiB limit");
}

TEST_CASE("IDX: header count larger than the data (truncated data)") {
  TempDir dir;
  const Bytes lying = idx_images(60000, 28, 28, 1000);
  write_raw(dir.file("train-images-idx3-ubyte"), lying);
  CHECK_ERROR(minidl::read_idx_images(dir.file("train-images-idx3-ubyte")),
              dir.file("train-images-idx3-ubyte") +
                  ": header declares 60000 images of 28x28 (47040000 bytes) but the file holds "
                  "1000 bytes of data");
  write_gz(dir.file("train-images-idx3-ubyte.gz"), lying);
  CHECK_ERROR(minidl::read_idx_images(dir.file("train-images-idx3-ubyte.gz")),
              dir.file("train-images-idx3-ubyte.gz") +
                  ": header declares 60000 images of 28x28 (47040000 bytes) but the decompressed "
                  "file holds 1000 bytes of data");
  write_raw(dir.file("labels"), idx_labels(60000, 10));
  CHECK_ERROR(minidl::read_idx_labels(dir.file("labels")), dir.file("labels"),
              "header declares 60000 labels (60000 bytes) but the file holds 10 bytes of data");
}

TEST_CASE("IDX: data longer than the header declares") {
  TempDir dir;
  write_raw(dir.file("long"), idx_images(2, 2, 2, 9));
  CHECK_ERROR(minidl::read_idx_images(dir.file("long")), dir.file("long"),
              "2 images of 2x2 (8 bytes) but the file holds 9 bytes of data");
  write_gz(dir.file("long.gz"), idx_labels(3, 4));
  CHECK_ERROR(minidl::read_idx_labels(dir.file("long.gz")), dir.file("long.gz"),
              "3 labels (3 bytes)", "holds more data than that");
}

TEST_CASE("IDX: a gzip bomb stops at the declared size instead of inflating everything") {
  TempDir dir;
  Bytes bomb = idx_images(1, 1, 1);
  bomb.resize(bomb.size() + (std::size_t{256} << 20), 0);  // 256 MiB of zeros, ~256 KiB gzipped
  write_gz(dir.file("bomb.gz"), bomb);
  bomb = Bytes();
  const auto start = std::chrono::steady_clock::now();
  CHECK_ERROR(minidl::read_idx_images(dir.file("bomb.gz")), dir.file("bomb.gz"),
              "1 images of 1x1 (1 bytes)", "holds more data than that");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
}

TEST_CASE("IDX: corrupt and truncated gzip streams") {
  TempDir dir;
  write_gz(dir.file("good.gz"), idx_images(20, 28, 28));
  const Bytes good = read_all(dir.file("good.gz"));

  Bytes bad_crc = good;  // the gzip trailer: CRC-32 then length of the content
  bad_crc[bad_crc.size() - 8] ^= 0xFF;
  write_raw(dir.file("bad_crc.gz"), bad_crc);
  CHECK_ERROR(minidl::read_idx_images(dir.file("bad_crc.gz")), dir.file("bad_crc.gz"),
              "corrupt gzip stream", "incorrect data check");

  Bytes garbled = good;  // deflate data overwritten in the middle
  for (std::size_t i = garbled.size() / 2; i < garbled.size() / 2 + 64; ++i) garbled[i] = 0xFF;
  write_raw(dir.file("garbled.gz"), garbled);
  CHECK_ERROR(minidl::read_idx_images(dir.file("garbled.gz")), dir.file("garbled.gz"), "gzip");

  write_raw(dir.file("cut.gz"),
            Bytes(good.begin(), good.begin() + static_cast<long>(good.size() / 2)));
  CHECK_ERROR(minidl::read_idx_images(dir.file("cut.gz")), dir.file("cut.gz"),
              "gzip stream is truncated");

  Bytes trailing = good;
  trailing.insert(trailing.end(), {'j', 'u', 'n', 'k'});
  write_raw(dir.file("trailing.gz"), trailing);
  CHECK_ERROR(minidl::read_idx_images(dir.file("trailing.gz")), dir.file("trailing.gz"),
              "4 bytes of trailing garbage after the gzip stream");
}

TEST_CASE("MNIST: files found under both spellings, with or without .gz") {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(6, 28, 28));
  write_raw(dir.file("train-labels-idx1-ubyte"), idx_labels(6));
  write_raw(dir.file("t10k-images.idx3-ubyte"), idx_images(4, 28, 28));
  write_gz(dir.file("t10k-labels.idx1-ubyte.gz"), idx_labels(4));
  const minidl::Mnist m = minidl::load_mnist(dir.path.string());
  CHECK(m.train.size() == 6);
  CHECK(m.test.size() == 4);
  CHECK(m.train.rows == 28);
  CHECK(m.test.cols == 28);
  CHECK(m.test.labels[3] == 3);
  CHECK(m.train.image(1) == m.train.images.data() + 784);
  CHECK(m.train.image(5)[0] == static_cast<std::uint8_t>(5 * 784 * 7 + 5 * 784 / 13));
  CHECK_ERROR(m.train.image(6), "index 6 out of range (6 images)");
}

TEST_CASE("MNIST: a missing file names the folder, the names tried and the fix") {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(2, 28, 28));
  const std::string folder = dir.path.string();
  CHECK_ERROR(minidl::load_mnist(folder), "'" + folder + "'", "train-labels-idx1-ubyte.gz",
              "train-labels-idx1-ubyte,", "train-labels.idx1-ubyte.gz", "train-labels.idx1-ubyte)",
              "MNIST_DIR", "--data", "scripts/download_mnist.sh " + folder);
  CHECK_ERROR(minidl::load_mnist(folder + "/absent"), folder + "/absent", "does not exist",
              "MNIST_DIR", "scripts/download_mnist.sh");
}

TEST_CASE("MNIST: images and labels must pair up, labels must be digits") {
  TempDir dir;
  write_raw(dir.file("train-images-idx3-ubyte"), idx_images(5, 28, 28));
  write_raw(dir.file("train-labels-idx1-ubyte"), idx_labels(4));
  write_raw(dir.file("t10k-images-idx3-ubyte"), idx_images(2, 28, 28));
  write_raw(dir.file("t10k-labels-idx1-ubyte"), idx_labels(2));
  CHECK_ERROR(minidl::load_mnist(dir.path.string()), dir.file("train-images-idx3-ubyte"),
              "holds 5 images but", dir.file("train-labels-idx1-ubyte"), "holds 4 labels");

  Bytes labels = idx_labels(5);
  labels[8 + 3] = 10;
  labels[8 + 4] = 200;
  write_raw(dir.file("train-labels-idx1-ubyte"), labels);
  CHECK_ERROR(minidl::load_mnist(dir.path.string()), dir.file("train-labels-idx1-ubyte"),
              "label 10 at index 3 is outside 0..9");

  write_raw(dir.file("train-labels-idx1-ubyte"), idx_labels(5));
  write_raw(dir.file("t10k-images-idx3-ubyte"), idx_images(2, 20, 20));
  CHECK_ERROR(minidl::load_mnist(dir.path.string()), "training images are 28x28",
              "test images are 20x20");
}

TEST_CASE("MNIST: the real data set" * doctest::test_suite("mnist_data")) {
  const minidl::Mnist m = minidl::load_mnist(minidl::testing::mnist_dir_or_skip());
  CHECK(m.train.size() == 60000);
  CHECK(m.test.size() == 10000);
  CHECK(m.train.rows == 28);
  CHECK(m.train.cols == 28);
  for (const minidl::ImageDataset* ds : {&m.train, &m.test}) {
    std::array<std::size_t, 10> histogram{};
    for (std::uint8_t l : ds->labels) ++histogram[l];
    for (std::size_t c = 0; c < 10; ++c) {
      const double share = static_cast<double>(histogram[c]) / static_cast<double>(ds->size());
      CHECK_MESSAGE((share > 0.08 && share < 0.12), "class " << c << " share " << share);
    }
  }
  CHECK(m.train.labels[0] == 5);  // the first training digit is a 5
  CHECK(m.test.labels[0] == 7);   // the first test digit is a 7
}

namespace {

// Caps this process's address space at its current size plus `headroom` bytes
// while the object lives, so that allocating what a lying header declares
// throws std::bad_alloc (failing the test) instead of quietly succeeding.
struct AddressSpaceCap {
  rlimit saved{};
  bool active = false;
  explicit AddressSpaceCap(std::uint64_t headroom) {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t pages = 0;
    if (!(statm >> pages) || getrlimit(RLIMIT_AS, &saved) != 0) return;
    rlimit capped = saved;
    capped.rlim_cur = pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) + headroom;
    if (saved.rlim_cur != RLIM_INFINITY && saved.rlim_cur <= capped.rlim_cur) return;
    active = setrlimit(RLIMIT_AS, &capped) == 0;
  }
  ~AddressSpaceCap() {
    if (active) setrlimit(RLIMIT_AS, &saved);
  }
};

}  // namespace

TEST_CASE("IDX: a header claiming more than a 100-byte file holds fails without allocating") {
  TempDir dir;
  const AddressSpaceCap cap(std::uint64_t{256} << 20);
  if (!cap.active) MESSAGE("could not cap the address space: allocations are not checked");

  // 2^31 images: refused from the header alone, raw or gzipped.
  const Bytes huge = idx_images(0x80000000u, 1, 1, 84);
  REQUIRE(huge.size() == 100);
  write_raw(dir.file("huge"), huge);
  CHECK_ERROR(minidl::read_idx_images(dir.file("huge")), dir.file("huge"),
              "2147483648 images of 1x1", "absurd size");
  write_gz(dir.file("huge.gz"), huge);
  CHECK_ERROR(minidl::read_idx_images(dir.file("huge.gz")), dir.file("huge.gz"),
              "2147483648 images of 1x1", "absurd size");

  // 10^6 images of 28x28 (784 MB) and 9*10^8 labels are within the limits:
  // only the size of the data gives them away, and nothing that large may be allocated.
  const Bytes plausible = idx_images(1000000, 28, 28, 84);
  REQUIRE(plausible.size() == 100);
  write_raw(dir.file("plausible"), plausible);
  CHECK_ERROR(minidl::read_idx_images(dir.file("plausible")), dir.file("plausible"),
              "(784000000 bytes) but the file holds 84 bytes of data");
  write_gz(dir.file("plausible.gz"), plausible);
  CHECK_ERROR(minidl::read_idx_images(dir.file("plausible.gz")), dir.file("plausible.gz"),
              "(784000000 bytes) but the decompressed file holds 84 bytes of data");
  const Bytes labels = idx_labels(900000000u, 92);
  REQUIRE(labels.size() == 100);
  write_raw(dir.file("labels"), labels);
  CHECK_ERROR(minidl::read_idx_labels(dir.file("labels")), dir.file("labels"), "900000000 labels",
              "holds 92 bytes of data");
  write_gz(dir.file("labels.gz"), labels);
  CHECK_ERROR(minidl::read_idx_labels(dir.file("labels.gz")), dir.file("labels.gz"),
              "900000000 labels", "holds 92 bytes of data");
}

TEST_CASE("MNIST: each of the four spellings works for all four files") {
  const std::array<std::string, 4> stems = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  for (int variant = 0; variant < 4; ++variant) {
    const bool dotted = variant & 1, gz = variant & 2;
    CAPTURE(dotted);
    CAPTURE(gz);
    TempDir dir;
    std::array<std::string, 4> names;
    for (std::size_t i = 0; i < 4; ++i) {
      names[i] = stems[i];
      if (dotted) names[i][names[i].find("-idx")] = '.';
      if (gz) names[i] += ".gz";
    }
    const Bytes contents[4] = {idx_images(3, 28, 28), idx_labels(3), idx_images(2, 28, 28),
                               idx_labels(2)};
    for (std::size_t i = 0; i < 4; ++i)
      (gz ? write_gz : write_raw)(dir.file(names[i]), contents[i]);
    for (std::size_t i = 0; i < 4; ++i)
      CHECK(minidl::find_mnist_file(dir.path.string(), stems[i]) == dir.file(names[i]));
    const minidl::Mnist m = minidl::load_mnist(dir.path.string());
    CHECK(m.train.size() == 3);
    CHECK(m.test.size() == 2);
    CHECK(m.train.images == Bytes(contents[0].begin() + 16, contents[0].end()));
    CHECK(m.test.labels == Bytes(contents[3].begin() + 8, contents[3].end()));
  }
}

}  // namespace test_idx
