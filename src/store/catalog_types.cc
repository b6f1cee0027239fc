#include "store/catalog_types.h"

#include <algorithm>

namespace earshot::store {
namespace {

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
char AsciiUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
bool IsUpperLetter(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return AsciiLower(x) == AsciiLower(y);
         });
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view BusinessRuleName(BusinessRule rule) {
  switch (rule) {
    case BusinessRule::kBlock:
      return "block";
    case BusinessRule::kMute:
      return "mute";
    case BusinessRule::kAllow:
      return "allow";
    case BusinessRule::kTrack:
      return "track";
  }
  return "unknown";
}

Result<BusinessRule> ParseBusinessRule(std::string_view name) {
  std::string allowed;
  for (BusinessRule rule : kAllBusinessRules) {
    if (EqualsIgnoreCase(name, BusinessRuleName(rule))) return rule;
    if (!allowed.empty()) allowed.append(", ");
    allowed.append(BusinessRuleName(rule));
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown business rule \"" + std::string(name) +
                                                    "\" (allowed: " + allowed + ")");
}

std::string_view MediaKindName(MediaKind kind) {
  switch (kind) {
    case MediaKind::kAudio:
      return "audio";
    case MediaKind::kVideo:
      return "video";
  }
  return "unknown";
}

Result<MediaKind> ParseMediaKind(std::string_view name) {
  for (MediaKind kind : {MediaKind::kAudio, MediaKind::kVideo}) {
    if (EqualsIgnoreCase(name, MediaKindName(kind))) return kind;
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown media kind \"" + std::string(name) + "\" (allowed: audio, video)");
}

Result<std::string> NormalizeIsrc(std::string_view isrc) {
  std::string_view trimmed = TrimSpaces(isrc);
  if (trimmed.empty()) return std::string();
  std::string code;
  code.reserve(12);
  for (char c : trimmed) {
    if (c != '-') code.push_back(AsciiUpper(c));
  }
  auto invalid = [&](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid ISRC \"" + std::string(isrc) + "\": " + std::string(why) +
                         " (expected 12 characters: 2-letter country code, 3-character "
                         "registrant code, 7 digits, e.g. USRC17607839)");
  };
  if (code.size() != 12) {
    return invalid("has " + std::to_string(code.size()) + " characters without hyphens");
  }
  if (!IsUpperLetter(code[0]) || !IsUpperLetter(code[1])) {
    return invalid("country code \"" + code.substr(0, 2) + "\" is not two letters");
  }
  for (size_t i = 2; i < 5; ++i) {
    if (!IsUpperLetter(code[i]) && !IsDigit(code[i])) {
      return invalid("registrant code \"" + code.substr(2, 3) + "\" is not letters and digits");
    }
  }
  for (size_t i = 5; i < 12; ++i) {
    if (!IsDigit(code[i])) {
      return invalid("year and designation \"" + code.substr(5) + "\" are not 7 digits");
    }
  }
  return code;
}

Result<std::string> NormalizeSha256(std::string_view hex) {
  std::string out;
  out.reserve(hex.size());
  for (char c : hex) {
    char lower = AsciiLower(c);
    if (!IsDigit(lower) && !(lower >= 'a' && lower <= 'f')) {
      out.clear();
      break;
    }
    out.push_back(lower);
  }
  if (out.size() != 64) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid SHA-256 digest \"" + std::string(hex) + "\": expected 64 hex digits");
  }
  return out;
}

}  // namespace earshot::store
