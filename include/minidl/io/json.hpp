// minidl/io/json.hpp - strict JSON reading on top of nlohmann/json, for text
// that may come from anywhere (safetensors headers).
//
// nlohmann/json's parser already refuses comments, trailing commas, NaN,
// leading zeros, unescaped control characters, invalid UTF-8, unpaired
// surrogates and numbers out of range. parse_json feeds its SAX events into
// a builder that also refuses what it lets through: a key given twice in one
// object (nlohmann keeps the last one, so two readers of one file could
// disagree) and nesting deeper than kJsonMaxDepth. Errors are minidl::Error
// and name the source.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "minidl/core/error.hpp"

namespace minidl {

// Objects keep their keys in file (or insertion) order, so what is written
// reads back the same; integers are kept exactly as 64-bit values.
using Json = nlohmann::ordered_json;

inline constexpr std::size_t kJsonMaxDepth = 128;

namespace detail {

// "[json.exception.parse_error.101] parse error at line 1, column 6: syntax
// error ..." -> "syntax error ...": the caller gives the byte offset.
inline std::string json_reason(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  const auto id_end = what.find("] ");
  if (what.rfind("[json.exception.", 0) == 0 && id_end != std::string_view::npos)
    what.remove_prefix(id_end + 2);
  const auto colon = what.find(": ");
  if (what.rfind("parse error", 0) == 0 && colon != std::string_view::npos)
    what.remove_prefix(colon + 2);
  return std::string(what);
}

// A key as messages show it: hostile files can hold keys of megabytes.
inline std::string short_key(std::string_view key) {
  return key.size() <= 64 ? std::string(key) : std::string(key.substr(0, 64)) + "...";
}

// Builds a Json from nlohmann's SAX events, one open object or array per
// level of `open_`. Keys are checked against a set per open object, and
// members appended, so that a header of n keys takes O(n log n), not the
// O(n^2) of ordered_json's own inserts, which search the object linearly.
class StrictJsonBuilder {
 public:
  explicit StrictJsonBuilder(const std::string& source) : source_(source) {}

  bool null() { return add(nullptr); }
  bool boolean(bool b) { return add(b); }
  bool number_integer(std::int64_t v) { return add(v); }
  bool number_unsigned(std::uint64_t v) { return add(v); }
  bool number_float(double v, const std::string&) { return add(v); }
  bool string(std::string& s) { return add(std::move(s)); }
  bool binary(Json::binary_t&) { return false; }  // only binary formats produce these
  bool start_object(std::size_t) { return open(Json::object()); }
  bool start_array(std::size_t) { return open(Json::array()); }
  bool key(std::string& k) {
    Level& level = open_.back();
    if (!level.keys.insert(k).second)
      fail(source_, ": invalid JSON: duplicate key \"", short_key(k), "\" in ", where());
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::json::exception& e) {
    // nlohmann counts the byte it stopped at from 1.
    fail(source_, ": invalid JSON at byte ", byte ? byte - 1 : 0, ": ", json_reason(e));
  }

  Json take() { return std::move(root_); }

 private:
  struct Level {
    Json* value;
    std::set<std::string, std::less<>> keys;  // objects only
    std::string name;                         // in the parent: key or index
  };

  // Appends `v` to the open object or array (or makes it the root); returns it.
  Json* insert(Json v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Json& parent = *open_.back().value;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    auto& members = parent.get_ref<Json::object_t&>();
    members.push_back({std::move(key_), std::move(v)});  // the key is new: checked in key()
    return &members.back().second;
  }
  bool add(Json v) {
    insert(std::move(v));
    return true;
  }
  bool open(Json v) {
    if (open_.size() >= kJsonMaxDepth)
      fail(source_, ": invalid JSON: nesting deeper than ", kJsonMaxDepth, " levels");
    std::string name;
    if (!open_.empty())
      name = open_.back().value->is_array() ? std::to_string(open_.back().value->size()) : key_;
    // The pointer kept in open_ stays valid: a container only grows once
    // the child it points into has closed.
    Json* value = insert(std::move(v));
    open_.push_back({value, {}, std::move(name)});
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }
  // The open value as a JSON pointer ("/tensor/shape"), for messages.
  std::string where() const {
    std::string path;
    for (std::size_t i = 1; i < open_.size(); ++i) path += "/" + short_key(open_[i].name);
    return path.empty() ? "the top-level object" : path;
  }

  const std::string& source_;
  Json root_;
  std::vector<Level> open_;
  std::string key_;
};

}  // namespace detail

// Parses all of `text` strictly. Errors read "<source>: invalid JSON at byte
// N: what", or "<source>: invalid JSON: duplicate key "k" in /path".
inline Json parse_json(std::string_view text, const std::string& source = "JSON") {
  detail::StrictJsonBuilder builder(source);
  try {
    Json::sax_parse(text, &builder, Json::input_format_t::json, /*strict=*/true);
  } catch (const nlohmann::json::exception& e) {  // none expected: errors arrive in parse_error
    fail(source, ": invalid JSON: ", detail::json_reason(e));
  }
  return builder.take();
}

// "an object", "a number", ...: the kind of `value`, for messages.
inline const char* json_type(const Json& value) {
  switch (value.type()) {
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::null:
      return "null";
    default:
      return "not JSON";
  }
}

// Member `key` of an object, or null when absent or when `value` is no object.
inline const Json* json_member(const Json& value, std::string_view key) {
  if (!value.is_object()) return nullptr;
  const auto it = value.find(key);
  return it == value.end() ? nullptr : &*it;
}

// `value` as compact text (indent < 0) or one member per line. Strings must
// be valid UTF-8: a parser would refuse anything else.
inline std::string dump_json(const Json& value, const std::string& source = "JSON",
                             int indent = -1) {
  try {
    return value.dump(indent);
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": cannot write JSON: ", detail::json_reason(e));
  }
}

}  // namespace minidl
