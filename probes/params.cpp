#include "params.h"

#include "base/duration.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace netmond {

std::string Diagnostic::format() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (!path.empty()) out += path + ": ";
  return out + message;
}

void Diagnostics::error(const YAML::Mark& mark, std::string path, std::string message) {
  Diagnostic d;
  d.file = file_;
  if (!mark.is_null()) {
    d.line = mark.line + 1;
    d.column = mark.column + 1;
  }
  d.path = std::move(path);
  d.message = std::move(message);
  list_.push_back(std::move(d));
}

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t cost = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                            std::tolower(static_cast<unsigned char>(b[j - 1]))
                        ? 0
                        : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* kind_of(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "empty";
    default: return "a scalar";
  }
}

}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (auto c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(c);
    }
  }
  return best;
}

Params::Params(const YAML::Node& map, std::string path, Diagnostics* diag)
    : map_(map), path_(std::move(path)), diag_(diag), errors_at_start_(diag->size()) {
  for (auto it = map_.begin(); it != map_.end(); ++it) {
    key_marks_.push_back(it->first.Mark());
    std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string();
    // yaml-cpp keeps both entries of a repeated key and lookups see only the first, so the
    // second would be silently ignored.
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (!key.empty() && entries_[i].first == key) {
        diag_->error(
            it->first.Mark(), path_,
            fmt::format("duplicate key '{}' (first at line {})", key, key_marks_[i].line + 1));
        break;
      }
    }
    entries_.emplace_back(std::move(key), it->second);
  }
}

std::string Params::path_of(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return fmt::format("{}.{}", path_, key);
}

const YAML::Node* Params::find(std::string_view key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return &v;
  return nullptr;
}

bool Params::has(std::string_view key) const { return find(key) != nullptr; }

void Params::accept(std::string_view key) { known_.emplace(key); }

bool Params::require(std::string_view key) {
  known_.emplace(key);
  if (has(key)) return true;
  diag_->error(map_.Mark(), path_, fmt::format("missing required key '{}'", key));
  return false;
}

void Params::error(std::string_view key, std::string message) {
  YAML::Mark mark = map_.Mark();
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].first != key) continue;
    // yaml-cpp places an empty value ("key:" and nothing) at the start of the next line;
    // the key is where the reader should look.
    mark = entries_[i].second.IsNull() ? key_marks_[i] : entries_[i].second.Mark();
    break;
  }
  diag_->error(mark, path_of(key), std::move(message));
}

void Params::error(std::string message) { diag_->error(map_.Mark(), path_, std::move(message)); }

bool Params::get(std::string_view key, std::string* out) {
  known_.emplace(key);
  const YAML::Node* n = find(key);
  if (!n) return false;
  if (!n->IsScalar()) {
    error(key, fmt::format("expected a string, got {}", kind_of(*n)));
    return false;
  }
  *out = n->Scalar();
  return true;
}

bool Params::get(std::string_view key, bool* out) {
  known_.emplace(key);
  const YAML::Node* n = find(key);
  if (!n) return false;
  std::string v = n->IsScalar() ? lower(n->Scalar()) : "";
  if (v == "true" || v == "yes" || v == "on")
    *out = true;
  else if (v == "false" || v == "no" || v == "off")
    *out = false;
  else {
    error(key, n->IsScalar() ? fmt::format("expected true or false, got '{}'", n->Scalar())
                             : fmt::format("expected true or false, got {}", kind_of(*n)));
    return false;
  }
  return true;
}

bool Params::get(std::string_view key, unsigned* out, unsigned min, unsigned max) {
  known_.emplace(key);
  const YAML::Node* n = find(key);
  if (!n) return false;
  if (!n->IsScalar()) {
    error(key, fmt::format("expected a whole number, got {}", kind_of(*n)));
    return false;
  }
  const std::string& s = n->Scalar();
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec == std::errc::invalid_argument || end != s.data() + s.size()) {
    error(key, fmt::format("expected a whole number, got '{}'", s));
    return false;
  }
  if (ec == std::errc::result_out_of_range || v < min || v > max) {
    error(key, fmt::format("{} is out of range ({}..{})", s, min, max));
    return false;
  }
  *out = static_cast<unsigned>(v);
  return true;
}

bool Params::get_port(std::string_view key, std::uint16_t* out) {
  known_.emplace(key);
  const YAML::Node* n = find(key);
  if (!n) return false;
  const std::string s = n->IsScalar() ? n->Scalar() : std::string();
  long long v = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (!n->IsScalar() || s.empty() || ec == std::errc::invalid_argument ||
      end != s.data() + s.size()) {
    error(key, n->IsScalar() ? fmt::format("expected a port number, got '{}'", s)
                             : fmt::format("expected a port number, got {}", kind_of(*n)));
    return false;
  }
  if (ec == std::errc::result_out_of_range || v < 1 || v > 65535) {
    error(key, fmt::format("port {} is out of range (1..65535)", s));
    return false;
  }
  *out = static_cast<std::uint16_t>(v);
  return true;
}

const YAML::Node* Params::node(std::string_view key) {
  known_.emplace(key);
  return find(key);
}

void Params::error_at(const YAML::Node& at, std::string_view key, std::string_view suffix,
                      std::string message) {
  diag_->error(at.Mark(), path_of(key) + std::string(suffix), std::move(message));
}

bool Params::get_duration(std::string_view key, std::chrono::milliseconds* out,
                          std::chrono::milliseconds max) {
  known_.emplace(key);
  const YAML::Node* n = find(key);
  if (!n) return false;
  if (!n->IsScalar()) {
    error(key, fmt::format("expected a duration (e.g. 30s, 250ms, 5m), got {}", kind_of(*n)));
    return false;
  }
  auto d = parse_duration(n->Scalar(), max);
  if (!d) {
    error(key, fmt::format("bad duration '{}' (use seconds or a number with ms, s, m, h or d: "
                           "250ms, 30s, 5m, 1h, 14d; at most {})",
                           n->Scalar(), format_duration(max)));
    return false;
  }
  *out = *d;
  return true;
}

bool Params::get_choice(std::string_view key, std::initializer_list<std::string_view> choices,
                        std::string* out) {
  std::string v;
  if (!get(key, &v)) return false;
  v = lower(v);
  for (auto c : choices) {
    if (v == c) {
      *out = v;
      return true;
    }
  }
  std::string list;
  for (auto c : choices) list += (list.empty() ? "" : ", ") + std::string(c);
  error(key, fmt::format("'{}' is not one of: {}", v, list));
  return false;
}

void Params::reject_unknown() {
  std::vector<std::string_view> known(known_.begin(), known_.end());
  for (size_t i = 0; i < entries_.size(); ++i) {
    const std::string& key = entries_[i].first;
    if (known_.count(key)) continue;
    std::string suggestion = closest_match(key, known);
    std::string msg = suggestion.empty()
                          ? fmt::format("unknown key '{}'", key)
                          : fmt::format("unknown key '{}' (did you mean '{}'?)", key, suggestion);
    diag_->error(key_marks_[i], path_, std::move(msg));
  }
}

}  // namespace netmond
