#include "playback/origin_match.h"

namespace earshot::playback {
namespace {

struct OriginParts {
  std::string_view scheme;
  std::string_view host;
  std::string_view port;  // empty: none, or the scheme's default
};

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

bool EndsWithIgnoreCase(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         EqualsIgnoreCase(text.substr(text.size() - suffix.size()), suffix);
}

std::string_view DefaultPort(std::string_view scheme) {
  if (EqualsIgnoreCase(scheme, "https") || EqualsIgnoreCase(scheme, "wss")) return "443";
  if (EqualsIgnoreCase(scheme, "http") || EqualsIgnoreCase(scheme, "ws")) return "80";
  return {};
}

// scheme://host[:port] with no path, query, userinfo or whitespace. `allow_star`
// lets '*' through (patterns); origins never contain one.
bool Split(std::string_view text, bool allow_star, OriginParts& out) {
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  out.scheme = text.substr(0, sep);
  for (char c : out.scheme) {
    const char l = LowerAscii(c);
    if (!((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '+' || l == '-' || l == '.')) {
      return false;
    }
  }
  const std::string_view authority = text.substr(sep + 3);
  for (char c : authority) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\' ||
        (c == '*' && !allow_star)) {
      return false;
    }
  }
  out.host = authority;
  out.port = {};
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
    if (out.port.empty()) return false;
    for (char c : out.port) {
      if (c < '0' || c > '9') return false;
    }
  }
  if (out.host.empty()) return false;
  if (out.port == DefaultPort(out.scheme)) out.port = {};
  return true;
}

}  // namespace

bool OriginMatches(std::string_view origin, std::string_view pattern) {
  if (pattern == "*") return true;
  OriginParts o;
  OriginParts p;
  if (!Split(origin, /*allow_star=*/false, o) || !Split(pattern, /*allow_star=*/true, p)) {
    return false;
  }
  if (!EqualsIgnoreCase(o.scheme, p.scheme) || o.port != p.port) return false;
  if (p.host == "*") return true;
  if (p.host.starts_with("*.")) {
    const std::string_view suffix = p.host.substr(1);  // ".example.com"
    // One or more labels before the suffix: a non-empty prefix not starting with '.'.
    return o.host.size() > suffix.size() && EndsWithIgnoreCase(o.host, suffix) &&
           o.host.front() != '.' && o.host[o.host.size() - suffix.size() - 1] != '.';
  }
  return EqualsIgnoreCase(o.host, p.host);
}

bool OriginAllowed(std::string_view origin, std::span<const std::string> patterns) {
  if (patterns.empty()) return true;
  for (const std::string& pattern : patterns) {
    if (OriginMatches(origin, pattern)) return true;
  }
  return false;
}

}  // namespace earshot::playback
