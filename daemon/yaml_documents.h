// The first YAML document of a text, and whether another follows, without YAML::LoadAll.
//
// yaml-cpp 0.7 (Debian 12) LoadAll never returns on some broken text, "," or ",a: {m" for
// instance: a document that consumes no token is read again and again, each time adding
// one more null document, until memory runs out (yaml-cpp issue #1040, fixed upstream by
// PR #1319 in 0.8.0). netmond --check-config hung on such a file and a reload grew the
// daemon without bound; found by fuzz/config_fuzz.cpp. The configuration needs only the
// first document and whether there is a second, so no more than two are read.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

namespace netmond {

struct YamlDocuments {
  YAML::Node first;                  // Null when the text holds no document
  std::optional<YAML::Mark> second;  // where a second document's root node is
  // The text the parser cannot get past (the second document would start where the first
  // did): where, and the character there.
  std::optional<YAML::Mark> stuck;
};

// Throws what YAML::Load throws (YAML::ParserException, ...) for a syntax error.
YamlDocuments load_yaml_documents(const std::string& text);

}  // namespace netmond
