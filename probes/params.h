// Strict reading of one YAML mapping of configuration keys, with every problem recorded as
// a diagnostic "FILE:LINE:COL: path.to.key: what is wrong".
//
// The config loader and each probe's parse() read their keys through the same Params, so a
// key that nobody asked for is reported as unknown (with a "did you mean" suggestion).
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace netmond {

struct Diagnostic {
  std::string file;
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based
  std::string path;  // "servers[2].services[0].port"; empty for file-level problems
  std::string message;

  // "file:line:col: path: message"
  std::string format() const;
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  void error(const YAML::Mark& mark, std::string path, std::string message);
  const std::vector<Diagnostic>& list() const { return list_; }
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<Diagnostic> list_;
};

// The closest candidate within a small edit distance, or "" (for "did you mean").
std::string closest_match(std::string_view word, const std::vector<std::string_view>& candidates);

class Params {
 public:
  // `map` must be a YAML map (the caller checks); `path` names it in messages.
  Params(const YAML::Node& map, std::string path, Diagnostics* diag);

  // Getters: true when the key is present and valid (then *out is set); false when absent
  // (*out untouched) or invalid (a diagnostic is recorded). Each marks the key as known.
  bool get(std::string_view key, std::string* out);
  bool get(std::string_view key, bool* out);
  bool get(std::string_view key, unsigned* out, unsigned min, unsigned max);
  bool get_port(std::string_view key, std::uint16_t* out);
  // A duration of at most `max` (a day unless said otherwise).
  bool get_duration(std::string_view key, std::chrono::milliseconds* out,
                    std::chrono::milliseconds max = std::chrono::hours(24));
  // The raw value of `key` (marked known), for lists and maps a getter does not cover;
  // nullptr when absent.
  const YAML::Node* node(std::string_view key);
  // Records an error at `at` (an element inside `key`'s value), named path_of(key) + suffix.
  void error_at(const YAML::Node& at, std::string_view key, std::string_view suffix,
                std::string message);
  // A string that must be one of `choices` (compared case-insensitively; stored lower-case).
  bool get_choice(std::string_view key, std::initializer_list<std::string_view> choices,
                  std::string* out);

  bool has(std::string_view key) const;
  // Marks `key` as known without reading it (for keys read elsewhere).
  void accept(std::string_view key);
  // Records "missing required key 'key'" at the map, unless the key is present.
  bool require(std::string_view key);

  // Records an error about `key`'s value (at its position), or about the whole map.
  void error(std::string_view key, std::string message);
  void error(std::string message);

  // Records "unknown key" for every key no getter or accept() asked for.
  void reject_unknown();

  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const;
  Diagnostics& diagnostics() { return *diag_; }
  bool failed() const { return diag_->size() != errors_at_start_; }

 private:
  const YAML::Node* find(std::string_view key) const;

  YAML::Node map_;
  std::string path_;
  Diagnostics* diag_;
  size_t errors_at_start_;
  std::vector<std::pair<std::string, YAML::Node>> entries_;  // key text -> value
  std::vector<YAML::Mark> key_marks_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace netmond
