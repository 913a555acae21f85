// examples/common/output_folder.hpp - the folder a training run writes into: held with an OS lock,
// checked for space and write access before the first epoch, never silently reused.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "args.hpp"
#include "minidl/core/error.hpp"

namespace cli {

// The files only a training run (`mnist train`, `resnet train`) writes: a folder holding any of
// them holds a training run.
inline const std::vector<std::string>& training_file_names() {
  static const std::vector<std::string> names = {
      "best.safetensors", "last.safetensors", "history.csv", "metrics.json", "loss_acc_curves.png"};
  return names;
}

// Every file a run writes: the training files and the two pictures `evaluate` draws too.
inline const std::vector<std::string>& run_file_names() {
  static const std::vector<std::string> names = [] {
    auto all = training_file_names();
    all.insert(all.end(), {"confusion_matrix.png", "wrong_predictions.png"});
    return all;
  }();
  return names;
}

// Those of `names` present in `dir`, as "a, b, c" (empty when none).
inline std::string files_in(const std::string& dir, const std::vector<std::string>& names) {
  std::string found;
  std::error_code ec;
  for (const auto& name : names)
    if (std::filesystem::exists(std::filesystem::path(dir) / name, ec))
      found += (found.empty() ? "" : ", ") + name;
  return found;
}

// A new training run refuses a folder holding any run file; `evaluate` only one holding
// training files, so that evaluating again into an evaluation folder replaces its own pictures.
inline std::string run_files_in(const std::string& dir) {
  return files_in(dir, run_file_names());
}
inline std::string training_files_in(const std::string& dir) {
  return files_in(dir, training_file_names());
}

class OutputFolder {
 public:
  enum class Use { NewRun, Overwrite, Resume };

  // Creates `dir` when missing and locks it for this process; then refuses a folder that holds
  // a run (unless `use` says to replace or continue it), removes temporary files that killed
  // writers left, and checks that `bytes_needed` can be written there.
  OutputFolder(const std::string& dir, Use use, std::uint64_t bytes_needed) : dir_(dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (use == Use::Resume && !fs::exists(file("last.safetensors"), ec))
      minidl::fail(file("last.safetensors"),
                   ": no checkpoint to resume from (train without --resume first)");
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
      minidl::fail(dir, ": --out must be a folder, but this is a file");
    created_ = fs::create_directories(dir, ec);
    if (ec) minidl::fail(dir, ": cannot create the output folder (", ec.message(), ")");
    try {
      lock();
      check_use(use);
      remove_stale_temporaries();
      check_writable(bytes_needed);
    } catch (...) {
      release();
      throw;
    }
  }
  ~OutputFolder() { release(); }
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;

  std::string file(const std::string& name) const {
    return (std::filesystem::path(dir_) / name).string();
  }

  // Called before each round of writes (an epoch's files, the final report). A folder deleted
  // under the run, perhaps made again by another run, is no longer this run's: writing there
  // would mix two runs' files or replace the other run's, so the run stops instead. (A folder
  // replaced between this check and the writes is not caught; the window is milliseconds.)
  void require_held(const std::string& what) const {
    if (holds_named_lock_file()) return;
    minidl::fail(dir_, ": the output folder was deleted or replaced while this run was using it (",
                 kLockName, " is gone or another run's); stopped without writing ", what);
  }

 private:
  // flock: the kernel drops the lock when the process ends in any way, so a killed run never
  // leaves a stale lock; the lock file itself is removed by the run that held it.
  void lock() {
    const std::string path = file(kLockName);
    for (int attempt = 0; attempt < 10; ++attempt) {
      fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0)
        minidl::fail(dir_, ": cannot write into the output folder (", std::strerror(errno), ")");
      if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        const std::string holder = read_holder();
        ::close(fd_);
        fd_ = -1;
        if (err != EWOULDBLOCK)
          minidl::fail(dir_, ": cannot lock the output folder (", std::strerror(err), ")");
        throw UsageError(dir_ + ": another training run" +
                         (holder.empty() ? std::string() : " (process " + holder + ")") +
                         " is writing into this folder; wait for it to end or choose another "
                         "--out");
      }
      // The holder before us may have removed the file after we opened it: then our lock is
      // on a file nobody else will see, and we try again on the new one.
      if (holds_named_lock_file()) {
        // The pid only makes a second run's message clearer; failing to write it is harmless.
        const std::string pid = std::to_string(::getpid()) + "\n";
        const bool noted = ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) ==
                                                           static_cast<ssize_t>(pid.size());
        static_cast<void>(noted);
        return;
      }
      ::close(fd_);
      fd_ = -1;
    }
    minidl::fail(dir_, ": cannot lock the output folder (its lock file keeps changing)");
  }

  std::string read_holder() const {
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string s = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  void check_use(Use use) {
    const std::string found = run_files_in(dir_);
    if (found.empty() || use == Use::Resume) return;
    if (use == Use::NewRun) {
      // --resume continues from the last checkpoint; without one (evaluate's pictures, say)
      // it would only fail.
      std::error_code ec;
      if (std::filesystem::exists(file("last.safetensors"), ec))
        throw UsageError(dir_ + " already holds a training run (" + found +
                         "); continue it with --resume, replace it with --overwrite, or choose "
                         "another --out");
      throw UsageError(dir_ + " already holds files a run writes (" + found +
                       "); replace them with --overwrite, or choose another --out");
    }
    // Overwrite: nothing of the old run may stay beside the new one's files.
    for (const auto& name : run_file_names()) {
      std::error_code ec;
      std::filesystem::remove(file(name), ec);
      if (ec) minidl::fail(file(name), ": cannot remove the old run's file (", ec.message(), ")");
    }
  }

  // "<name>.tmp.<pid>.<n>" files are what a writer killed mid-write leaves (io/atomic_file.hpp);
  // holding the lock, we know no writer is alive.
  void remove_stale_temporaries() {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
      const std::string name = entry.path().filename().string();
      for (const auto& run_file : run_file_names())
        if (name.rfind(run_file + ".tmp.", 0) == 0) std::filesystem::remove(entry.path(), ec);
    }
  }

  // A read-only, full or unwritable folder is found now, not when the first epoch is saved.
  void check_writable(std::uint64_t bytes_needed) const {
    const std::string probe = file(".write-test.tmp." + std::to_string(::getpid()));
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      minidl::fail(dir_, ": cannot write into the output folder (", std::strerror(errno), ")");
    const std::string block(4096, 'x');
    const bool ok = ::write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()) &&
                    ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    ::unlink(probe.c_str());
    if (!ok) minidl::fail(dir_, ": cannot write into the output folder (", std::strerror(err), ")");
    struct statvfs fs {};
    if (::statvfs(dir_.c_str(), &fs) == 0) {
      const std::uint64_t free_bytes =
          static_cast<std::uint64_t>(fs.f_bavail) * static_cast<std::uint64_t>(fs.f_frsize);
      if (free_bytes < bytes_needed)
        minidl::fail(dir_, ": only ", megabytes(free_bytes),
                     " MB free on its disk; a training run ", "needs about ",
                     megabytes(bytes_needed),
                     " MB (two checkpoints, a temporary copy and the pictures)");
    }
  }

  static std::string megabytes(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1e6);
    return buf;
  }

  // Whether the file named train.lock is the one this process locked.
  bool holds_named_lock_file() const {
    struct stat opened {
    }, named{};
    return ::fstat(fd_, &opened) == 0 && ::stat(file(kLockName).c_str(), &named) == 0 &&
           opened.st_ino == named.st_ino && opened.st_dev == named.st_dev;
  }

  void release() {
    if (fd_ < 0) return;
    // If the folder was deleted under this run and made again by another run, which now holds
    // a lock file of its own there, neither that file nor the folder is this run's to remove.
    const bool ours = holds_named_lock_file();
    std::error_code ec;
    if (ours) std::filesystem::remove(file(kLockName), ec);  // while still holding the lock
    ::close(fd_);
    fd_ = -1;
    // A run that failed before writing anything leaves no folder behind.
    if (ours && created_ && std::filesystem::is_empty(dir_, ec)) std::filesystem::remove(dir_, ec);
  }

  static constexpr const char* kLockName = "train.lock";
  std::string dir_;
  bool created_ = false;
  int fd_ = -1;
};

}  // namespace cli
