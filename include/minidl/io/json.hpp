// minidl/io/json.hpp - a small strict JSON value with a parser and a writer.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "minidl/core/error.hpp"

namespace minidl {

// A JSON value. Objects keep their keys in insertion (or file) order, so what
// is written reads back the same; integers are kept exactly as 64-bit values.
class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::Bool), bool_(b) {}
  Json(double d) : type_(Type::Number), num_(d) {}
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Json(T v) : type_(Type::Number), num_(static_cast<double>(v)) {
    // Unsigned values above INT64_MAX stay doubles.
    is_int_ = std::is_signed_v<T> || static_cast<std::uint64_t>(v) <= INT64_MAX;
    if (is_int_) int_ = static_cast<std::int64_t>(v);
  }
  Json(const char* s) : type_(Type::String), str_(s) {}
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}
  Json(Array a) : type_(Type::Array), arr_(std::move(a)) {}
  Json(Object o) : type_(Type::Object), obj_(std::move(o)) {}
  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }
  static const char* type_name(Type t) {
    static const char* names[] = {"null",     "a boolean", "a number",
                                  "a string", "an array",  "an object"};
    return names[static_cast<int>(t)];
  }

  bool as_bool() const { return check(Type::Bool).bool_; }
  double as_number() const { return check(Type::Number).num_; }
  // The value as an exact integer: 3 and 3.0 qualify, 3.5 and 1e300 do not.
  std::int64_t as_int64() const {
    check(Type::Number);
    if (is_int_) return int_;
    if (std::trunc(num_) == num_ && std::fabs(num_) < 9.2e18)
      return static_cast<std::int64_t>(num_);
    fail("JSON: ", num_, " is not an integer");
  }
  bool is_integer() const {
    return type_ == Type::Number &&
           (is_int_ || (std::trunc(num_) == num_ && std::fabs(num_) < 9.2e18));
  }
  const std::string& as_string() const { return check(Type::String).str_; }
  const Array& as_array() const { return check(Type::Array).arr_; }
  Array& as_array() { return const_cast<Array&>(std::as_const(*this).as_array()); }
  const Object& as_object() const { return check(Type::Object).obj_; }
  Object& as_object() { return const_cast<Object&>(std::as_const(*this).as_object()); }

  std::size_t size() const {
    return type_ == Type::Array ? arr_.size() : type_ == Type::Object ? obj_.size() : 0;
  }
  // Member `key` of an object, or null when absent or when this is no object.
  const Json* find(std::string_view key) const {
    if (type_ == Type::Object)
      for (const auto& kv : obj_)
        if (kv.first == key) return &kv.second;
    return nullptr;
  }
  const Json& at(std::string_view key) const {
    if (const Json* v = find(key)) return *v;
    fail("JSON: no member \"", key, "\"");
  }
  // Sets member `key` (replacing an existing one, else appending); a null value becomes an object.
  Json& set(std::string key, Json value) {
    if (type_ == Type::Null) *this = object();
    for (auto& kv : as_object())
      if (kv.first == key) return kv.second = std::move(value);
    obj_.emplace_back(std::move(key), std::move(value));
    return obj_.back().second;
  }
  Json& push_back(Json value) {
    if (type_ == Type::Null) *this = array();
    as_array().push_back(std::move(value));
    return arr_.back();
  }

  // Compact text when indent < 0, else one member per line indented by `indent` spaces.
  std::string dump(int indent = -1) const {
    std::string out;
    write(out, indent, 0);
    return out;
  }
  // Parses all of `text`; errors read "<source>: invalid JSON at byte N: what".
  static Json parse(std::string_view text, const std::string& source = "JSON");

 private:
  friend class JsonParser;

  const Json& check(Type t) const {
    if (type_ != t) fail("JSON: expected ", type_name(t), ", found ", type_name(type_));
    return *this;
  }

  static void write_string(std::string& out, const std::string& s);
  void write(std::string& out, int indent, int depth) const;

  Type type_ = Type::Null;
  bool bool_ = false;
  bool is_int_ = false;
  std::int64_t int_ = 0;
  double num_ = 0;
  std::string str_;
  Array arr_;
  Object obj_;
};

namespace detail {

// Length of the valid UTF-8 sequence starting at s[0] (0 if invalid): rejects
// overlong forms, surrogates and code points above U+10FFFF.
inline std::size_t utf8_length(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  std::size_t n = c < 0x80                 ? 1
                  : c >= 0xC2 && c <= 0xDF ? 2
                  : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4
                                           : 0;
  if (n == 0 || n > s.size()) return 0;
  for (std::size_t i = 1; i < n; ++i)
    if ((b(i) & 0xC0) != 0x80) return 0;
  if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F) || (c == 0xF0 && b(1) < 0x90) ||
      (c == 0xF4 && b(1) > 0x8F))
    return 0;
  return n;
}

inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace detail

// RFC 8259 without extensions: no comments, trailing commas, NaN, duplicate
// keys or invalid UTF-8. Nesting is limited so hostile input cannot exhaust the stack.
class JsonParser {
 public:
  static constexpr int kMaxDepth = 128;

  JsonParser(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  Json parse_document() {
    Json v = value(0);
    skip_space();
    if (pos_ != s_.size()) error("unexpected data after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail(source_, ": invalid JSON at byte ", pos_, ": ", what);
  }
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) return ++pos_, true;
    return false;
  }
  void expect(char c, const char* context) {
    if (!eat(c)) error(std::string("expected '") + c + "' " + context);
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Json value(int depth) {
    skip_space();
    if (pos_ >= s_.size()) error("unexpected end of input");
    const char c = s_[pos_];
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) error("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
      ++pos_;
      return c == '{' ? object(depth + 1) : array(depth + 1);
    }
    if (c == '"') return Json(string());
    if (literal("true")) return Json(true);
    if (literal("false")) return Json(false);
    if (literal("null")) return Json();
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    char buf[48];
    if (c >= 0x20 && c < 0x7F)
      std::snprintf(buf, sizeof buf, "unexpected character '%c'", c);
    else
      std::snprintf(buf, sizeof buf, "unexpected byte 0x%02x", static_cast<unsigned char>(c));
    error(buf);
  }

  Json object(int depth) {
    Json v = Json::object();
    if (eat('}')) return v;
    std::set<std::string, std::less<>> keys;  // duplicate keys make a file ambiguous
    do {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"') error("expected a string key");
      const std::size_t key_pos = pos_;
      std::string key = string();
      if (!keys.insert(key).second) {
        pos_ = key_pos;
        error("duplicate key \"" + key + "\"");
      }
      expect(':', "after an object key");
      v.obj_.emplace_back(std::move(key), value(depth));
    } while (eat(','));
    expect('}', "or ',' in an object");
    return v;
  }

  Json array(int depth) {
    Json v = Json::array();
    if (eat(']')) return v;
    do v.arr_.push_back(value(depth));
    while (eat(','));
    expect(']', "or ',' in an array");
    return v;
  }

  Json number() {
    const std::size_t start = pos_;
    const auto digits = [&] {
      const std::size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == from) error("malformed number");
      return pos_ - from;
    };
    if (s_[pos_] == '-') ++pos_;
    const std::size_t int_start = pos_;
    if (digits() > 1 && s_[int_start] == '0') pos_ = start, error("number with a leading zero");
    bool integral = true;
    if (pos_ < s_.size() && s_[pos_] == '.') ++pos_, digits(), integral = false;
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      digits();
      integral = false;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (integral) {
      std::int64_t i = 0;
      if (std::from_chars(first, last, i).ec == std::errc()) return Json(i);
    }
    double d = 0;  // from_chars, unlike strtod, ignores the locale
    const auto r = std::from_chars(first, last, d);
    if (r.ec != std::errc() || !std::isfinite(d)) {
      pos_ = start;
      error("number out of range");
    }
    return Json(d);
  }

  std::string string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) error("unterminated string");
      const char c = s_[pos_];
      if (c == '"') return ++pos_, out;
      if (static_cast<unsigned char>(c) < 0x20)
        error("control character in a string (must be escaped)");
      if (c != '\\') {
        const std::size_t n = detail::utf8_length(s_.substr(pos_));
        if (n == 0) error("invalid UTF-8 in a string");
        out.append(s_.data() + pos_, n);
        pos_ += n;
        continue;
      }
      if (++pos_ >= s_.size()) error("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // UTF-16 high surrogate: a low one must follow
            if (s_.substr(pos_, 2) != "\\u") error("high surrogate without a low surrogate");
            pos_ += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) error("high surrogate without a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            error("lone low surrogate");
          }
          detail::append_utf8(out, cp);
          break;
        }
        default:
          --pos_, error(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  std::uint32_t hex4() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char c = pos_ < s_.size() ? s_[pos_] : '\0';
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) error("\\u must be followed by 4 hex digits");
      v = v << 4 | static_cast<std::uint32_t>(d);
    }
    return v;
  }

  std::string_view s_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

inline Json Json::parse(std::string_view text, const std::string& source) {
  return JsonParser(text, source).parse_document();
}

inline void Json::write_string(std::string& out, const std::string& s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const char* esc = c == '"'    ? "\\\""
                      : c == '\\' ? "\\\\"
                      : c == '\n' ? "\\n"
                      : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t"
                                  : nullptr;
    if (esc) {
      out += esc, ++i;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf, ++i;
    } else {
      // Refuse to write what the parser would refuse to read.
      const std::size_t n = detail::utf8_length(std::string_view(s).substr(i));
      if (n == 0)
        fail("JSON: string is not valid UTF-8 (byte ", i, " of \"", s.substr(0, 40), "\")");
      out.append(s, i, n);
      i += n;
    }
  }
  out += '"';
}

inline void Json::write(std::string& out, int indent, int depth) const {
  const auto newline = [&](int d) {
    if (indent >= 0) out += '\n', out.append(static_cast<std::size_t>(indent * d), ' ');
  };
  switch (type_) {
    case Type::Null:
      out += "null";
      break;
    case Type::Bool:
      out += bool_ ? "true" : "false";
      break;
    case Type::Number: {
      // JSON has no NaN or infinity; like JavaScript, write null (say a diverged loss).
      if (!is_int_ && !std::isfinite(num_)) {
        out += "null";
        break;
      }
      char buf[32];  // shortest text that reads back to the same double
      const auto r = is_int_ ? std::to_chars(buf, buf + sizeof buf, int_)
                             : std::to_chars(buf, buf + sizeof buf, num_);
      out.append(buf, r.ptr);
      break;
    }
    case Type::String:
      write_string(out, str_);
      break;
    case Type::Array:
      out += '[';
      for (std::size_t i = 0; i < arr_.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        arr_[i].write(out, indent, depth + 1);
      }
      if (!arr_.empty()) newline(depth);
      out += ']';
      break;
    case Type::Object:
      out += '{';
      for (std::size_t i = 0; i < obj_.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        write_string(out, obj_[i].first);
        out += indent >= 0 ? ": " : ":";
        obj_[i].second.write(out, indent, depth + 1);
      }
      if (!obj_.empty()) newline(depth);
      out += '}';
      break;
  }
}

}  // namespace minidl
