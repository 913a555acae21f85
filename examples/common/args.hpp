// examples/common/args.hpp - a small command-line flag parser with typed values and --help.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"

namespace cli {

// Exit statuses of the example commands, mnist and resnet (docs/reliability.md). A run stopped by
// SIGINT or SIGTERM exits with 128 + the signal's number (130, 143), as a shell reports a process
// it killed.
enum ExitStatus : int {
  kExitOk = 0,
  kExitError = 1,     // a file, a folder or the machine failed: bad data, unwritable --out, memory
  kExitUsage = 2,     // the command cannot run as given: a bad flag or value, --out busy or taken
  kExitDiverged = 3,  // training diverged; the checkpoints keep the last good epoch
};

// Thrown for a usage mistake or a refusal: the program prints it as one line and exits 2.
struct UsageError : minidl::Error {
  using minidl::Error::Error;
};

// Flags are declared with a default and a help line, then parsed; a flag the
// command does not declare, a missing value or a value of the wrong type is a
// UsageError naming the flag.
class Args {
 public:
  Args(std::string command, std::string synopsis)
      : command_(std::move(command)), synopsis_(std::move(synopsis)) {}

  Args& flag(const std::string& name, const std::string& default_value, const std::string& help) {
    specs_.push_back({name, default_value, help, false});
    values_[name] = default_value;
    return *this;
  }
  Args& toggle(const std::string& name, const std::string& help) {
    specs_.push_back({name, "", help, true});
    values_[name] = "0";
    return *this;
  }

  // Parses argv[first..); returns false when --help was asked for (usage printed).
  bool parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        std::fputs(usage().c_str(), stdout);
        return false;
      }
      if (a.rfind("--", 0) != 0) {
        positional_.push_back(a);
        continue;
      }
      std::string name = a.substr(2), value;
      const auto eq = name.find('=');
      const bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const Spec* spec = find(name);
      if (!spec)
        throw UsageError(command_ + ": unknown flag --" + name + " (see '" + command_ +
                         " --help')");
      if (spec->is_toggle) {
        if (inline_value) throw UsageError(command_ + ": --" + name + " takes no value");
        values_[name] = "1";
        given_.push_back(name);
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= argc) throw UsageError(command_ + ": --" + name + " needs a value");
        value = argv[++i];
      }
      values_[name] = value;
      given_.push_back(name);
    }
    return true;
  }

  std::string str(const std::string& name) const { return values_.at(name); }
  bool on(const std::string& name) const { return values_.at(name) == "1"; }
  // Whether the flag was on the command line (rather than defaulted).
  bool given(const std::string& name) const {
    for (const auto& g : given_)
      if (g == name) return true;
    return false;
  }

  long long integer(const std::string& name, long long min, long long max) const {
    const std::string v = str(name);
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || x < min || x > max) {
      std::ostringstream os;
      os << command_ << ": --" << name << " must be an integer from " << min << " to " << max
         << ", got '" << v << "'";
      throw UsageError(os.str());
    }
    return x;
  }

  double real(const std::string& name, double min, double max) const {
    const std::string v = str(name);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(x >= min && x <= max)) {
      std::ostringstream os;
      os << command_ << ": --" << name << " must be a number from " << min << " to " << max
         << ", got '" << v << "'";
      throw UsageError(os.str());
    }
    return x;
  }

  std::string choice(const std::string& name, const std::vector<std::string>& allowed) const {
    const std::string v = str(name);
    for (const auto& a : allowed)
      if (v == a) return v;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    throw UsageError(command_ + ": --" + name + " must be one of " + list + ", got '" + v + "'");
  }

  const std::vector<std::string>& positional() const { return positional_; }
  // The flags on the command line, in order.
  const std::vector<std::string>& given_flags() const { return given_; }

  std::string usage() const {
    std::ostringstream os;
    os << "usage: " << synopsis_ << "\n\noptions:\n";
    for (const auto& s : specs_) {
      std::string left = "  --" + s.name + (s.is_toggle ? "" : " VALUE");
      if (left.size() < 24) left.resize(24, ' ');
      os << left << " " << s.help;
      if (!s.is_toggle && !s.default_value.empty()) os << " (default " << s.default_value << ")";
      os << "\n";
    }
    os << "  --help                  show this help\n";
    return os.str();
  }

 private:
  struct Spec {
    std::string name, default_value, help;
    bool is_toggle;
  };
  const Spec* find(const std::string& name) const {
    for (const auto& s : specs_)
      if (s.name == name) return &s;
    return nullptr;
  }

  std::string command_, synopsis_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  std::vector<std::string> given_;
};

}  // namespace cli
