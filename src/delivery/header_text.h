// Small text checks shared by the HTTP and SMTP adapters (header names,
// header values, addresses). Pure; thread-safe.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace earshot::delivery {

// ASCII lower case (header names are case-insensitive).
inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// True when `s` holds a byte that must not appear in a header value or an
// SMTP line: CR, LF, NUL and the other C0 controls except tab, and DEL.
inline bool HasControlChars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7f;
  });
}

// At most `max_bytes` of a peer's answer, quoted, on one line, for an error
// message or a log line: control characters blanked, never cut inside a
// UTF-8 sequence, "..." when shortened; "(empty body)" for nothing.
inline std::string QuotedExcerpt(std::string_view body, size_t max_bytes = 200) {
  if (body.empty()) return "(empty body)";
  size_t n = std::min(body.size(), max_bytes);
  if (n < body.size()) {
    while (n > 0 && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80) --n;
  }
  std::string out(body.substr(0, n));
  for (char& ch : out) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) ch = ' ';
  }
  if (n < body.size()) out += "...";
  return "'" + out + "'";
}

}  // namespace earshot::delivery
