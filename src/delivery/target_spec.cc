#include "delivery/target_spec.h"

#include <charconv>
#include <cstdlib>

namespace earshot::delivery {

Result<TargetSpec> ParseTargetSpec(std::string_view text) {
  TargetSpec spec;
  size_t colon = text.find(':');
  spec.kind = std::string(text.substr(0, colon));
  if (spec.kind.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "delivery target '" + std::string(text) + "' has no kind (expected KIND[:KEY=VALUE,...])");
  }
  if (colon == std::string_view::npos) return spec;
  std::string_view rest = text.substr(colon + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return MakeError(ErrorCode::kInvalidArgument, spec.kind + ": option '" + std::string(item) +
                                                        "' is not KEY=VALUE");
    }
    std::string key(item.substr(0, eq));
    if (!spec.options.emplace(key, std::string(item.substr(eq + 1))).second) {
      return MakeError(ErrorCode::kInvalidArgument, spec.kind + ": option '" + key + "' given twice");
    }
  }
  return spec;
}

Status CheckKnownOptions(const TargetSpec& spec, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : spec.options) {
    bool found = false;
    for (std::string_view k : known) found = found || k == key;
    if (found) continue;
    std::string list;
    for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    return MakeError(ErrorCode::kInvalidArgument,
                     spec.kind + ": unknown option '" + key + "' (known: " + list + ")");
  }
  return Ok();
}

Result<std::string> RequiredOption(const TargetSpec& spec, const std::string& key) {
  auto it = spec.options.find(key);
  if (it == spec.options.end() || it->second.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     spec.kind + ": missing " + key + "=... (required)");
  }
  return it->second;
}

std::string OptionOr(const TargetSpec& spec, const std::string& key, std::string fallback) {
  auto it = spec.options.find(key);
  return it == spec.options.end() ? std::move(fallback) : it->second;
}

Result<int> IntOption(const TargetSpec& spec, const std::string& key, int fallback, int min,
                      int max) {
  auto it = spec.options.find(key);
  if (it == spec.options.end()) return fallback;
  const std::string& text = it->second;
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < min ||
      value > max) {
    return MakeError(ErrorCode::kInvalidArgument,
                     spec.kind + ": " + key + "='" + text + "' is not a whole number in " +
                         std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

Result<std::string> SecretOption(const TargetSpec& spec, const std::string& key,
                                 const std::string& default_env) {
  std::string variable = OptionOr(spec, key + "_env", default_env);
  const char* value = variable.empty() ? nullptr : std::getenv(variable.c_str());
  if (value == nullptr || *value == '\0') {
    return MakeError(ErrorCode::kInvalidArgument,
                     spec.kind + ": the " + key + " is read from the environment variable " +
                         variable + ", which is not set (or empty)");
  }
  return std::string(value);
}

}  // namespace earshot::delivery
