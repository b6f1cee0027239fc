#include "control/restriction_policy.h"

namespace earshot::control {
namespace {

constexpr std::string_view kCountriesKey = "allowedCountries";
constexpr std::string_view kOriginsKey = "allowedOrigins";
constexpr std::string_view kStrictKey = "enableStrictOriginEnforcement";

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 3986 scheme, lowercase: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool IsScheme(std::string_view s) {
  if (s.empty() || !IsLower(s[0])) return false;
  for (char c : s) {
    if (!IsLower(c) && !IsDigit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// A DNS label: 1..63 of [a-z0-9-], not starting or ending with '-'.
bool IsLabel(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
    return false;
  }
  for (char c : label) {
    if (!IsLower(c) && !IsDigit(c) && c != '-') return false;
  }
  return true;
}

bool IsHostPattern(std::string_view host) {
  if (host.size() > 253 + 2) return false;
  if (host.starts_with('[')) {  // IPv6 literal: hex digits, ':' and '.' (embedded IPv4)
    if (host.size() < 4 || !host.ends_with(']')) return false;
    const std::string_view inner = host.substr(1, host.size() - 2);
    if (inner.find(':') == std::string_view::npos) return false;
    return inner.find_first_not_of("0123456789abcdef:.") == std::string_view::npos;
  }
  size_t start = 0;
  bool first = true;
  while (true) {
    const size_t dot = host.find('.', start);
    const std::string_view label =
        host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!(first && label == "*") && !IsLabel(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
    first = false;
  }
}

bool IsPort(std::string_view port) {
  if (port.empty() || port.size() > 5 || port[0] == '0') return false;
  int value = 0;
  for (char c : port) {
    if (!IsDigit(c)) return false;
    value = value * 10 + (c - '0');
  }
  return value <= 65535;
}


// A JSON value for an error message: never throws on invalid UTF-8, cut at
// 80 characters.
std::string Quote(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 80) + "...";
  return text;
}

Result<std::vector<std::string>> StringList(const nlohmann::json& json, std::string_view key) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return std::vector<std::string>{};
  if (!it->is_array()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "restriction policy: " + std::string(key) + " must be an array of strings");
  }
  std::vector<std::string> out;
  for (const auto& item : *it) {
    if (!item.is_string()) {
      return MakeError(ErrorCode::kInvalidArgument, "restriction policy: " + std::string(key) +
                                                        " must be an array of strings, found " +
                                                        Quote(item));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

bool IsCountryCode(std::string_view code) {
  return code.size() == 2 && code[0] >= 'A' && code[0] <= 'Z' && code[1] >= 'A' &&
         code[1] <= 'Z';
}

bool IsOriginPattern(std::string_view origin) {
  if (origin == "*") return true;
  if (origin.size() > kMaxOriginLength) return false;
  const size_t sep = origin.find("://");
  if (sep == std::string_view::npos || !IsScheme(origin.substr(0, sep))) return false;
  std::string_view authority = origin.substr(sep + 3);
  std::string_view host = authority;
  // A port follows the last ':' outside an IPv6 literal.
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    if (!IsPort(authority.substr(colon + 1))) return false;
    host = authority.substr(0, colon);
  }
  return IsHostPattern(host);
}

Status ValidateRestrictionPolicy(const RestrictionPolicy& policy) {
  if (policy.allowed_countries.size() > kMaxAllowedCountries) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "restriction policy: allowedCountries has " +
                         std::to_string(policy.allowed_countries.size()) + " entries (at most " +
                         std::to_string(kMaxAllowedCountries) + ")");
  }
  for (size_t i = 0; i < policy.allowed_countries.size(); ++i) {
    const std::string& code = policy.allowed_countries[i];
    if (!IsCountryCode(code)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "restriction policy: allowedCountries[" + std::to_string(i) + "] \"" +
                           code +
                           "\" is not an ISO 3166-1 alpha-2 code in uppercase (e.g. \"FR\")");
    }
  }
  if (policy.allowed_origins.size() > kMaxAllowedOrigins) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "restriction policy: allowedOrigins has " +
                         std::to_string(policy.allowed_origins.size()) + " entries (at most " +
                         std::to_string(kMaxAllowedOrigins) + ")");
  }
  for (size_t i = 0; i < policy.allowed_origins.size(); ++i) {
    const std::string& origin = policy.allowed_origins[i];
    if (!IsOriginPattern(origin)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "restriction policy: allowedOrigins[" + std::to_string(i) + "] \"" +
                           origin +
                           "\" is not an origin: use \"*\" or scheme://host[:port] in lowercase "
                           "without a path, e.g. https://example.com or "
                           "https://*.example.com:8443");
    }
  }
  return Ok();
}

nlohmann::json RestrictionPolicyToJson(const RestrictionPolicy& policy) {
  return {{kCountriesKey, policy.allowed_countries},
          {kOriginsKey, policy.allowed_origins},
          {kStrictKey, policy.strict_origin_enforcement}};
}

Result<RestrictionPolicy> RestrictionPolicyFromJson(const nlohmann::json& json) {
  RestrictionPolicy policy;
  if (json.is_null()) return policy;
  if (!json.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "restriction policy must be a JSON object, found " + Quote(json));
  }
  for (const auto& [key, value] : json.items()) {
    if (key != kCountriesKey && key != kOriginsKey && key != kStrictKey) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "restriction policy: unknown member \"" + key +
                           "\" (known: allowedCountries, allowedOrigins, "
                           "enableStrictOriginEnforcement)");
    }
  }
  auto countries = StringList(json, kCountriesKey);
  if (!countries) return std::unexpected(countries.error());
  policy.allowed_countries = std::move(*countries);
  auto origins = StringList(json, kOriginsKey);
  if (!origins) return std::unexpected(origins.error());
  policy.allowed_origins = std::move(*origins);
  if (auto it = json.find(kStrictKey); it != json.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "restriction policy: enableStrictOriginEnforcement must be true or false");
    }
    policy.strict_origin_enforcement = it->get<bool>();
  }
  if (Status valid = ValidateRestrictionPolicy(policy); !valid) {
    return std::unexpected(valid.error());
  }
  return policy;
}

}  // namespace earshot::control
