// STUB: replaced by the YAML loader.
#include "config.h"

namespace netmond {
const char* const kEmbeddedDefaultConfig = "";
std::optional<Config> parse_config(const std::string&, const std::string&, std::vector<Diagnostic>*) {
  return std::nullopt;
}
std::optional<Config> load_config(const std::filesystem::path&, std::vector<Diagnostic>*) {
  return std::nullopt;
}
}  // namespace netmond
