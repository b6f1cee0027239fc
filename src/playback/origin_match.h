// Matching a request's Origin header against allowed-origin patterns (the
// syntax of control/restriction_policy.h: "*", or scheme://host[:port] whose
// leftmost host label may be "*").
//
// Rules:
// - "*" matches every origin, including "null".
// - Otherwise scheme and host compare case-insensitively (ASCII), the port
//   exactly, where a scheme's default port is the same as no port
//   ("https://a.com:443" == "https://a.com", "http://a.com:80" == "http://a.com").
// - A "*" leftmost label matches one or more whole labels:
//   "https://*.example.com" matches https://a.example.com and
//   https://a.b.example.com, not https://example.com nor
//   https://badexample.com; "https://*" matches every host on https without a
//   port (IPv6 literals too). A wildcard pattern never matches a different
//   port: "https://*.example.com" does not match https://a.example.com:8443.
// - An origin that is not scheme://host[:port] (a path, userinfo, spaces, an
//   empty host, a '*' in it) matches nothing but "*".
//
// Pure functions, no I/O. Thread safety: reentrant.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace earshot::playback {

// Whether `origin` (an Origin header value) matches `pattern`.
bool OriginMatches(std::string_view origin, std::string_view pattern);

// Whether any pattern matches; an empty list allows every origin.
bool OriginAllowed(std::string_view origin, std::span<const std::string> patterns);

}  // namespace earshot::playback
