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

}  // namespace earshot::delivery
