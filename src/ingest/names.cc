#include "ingest/names.h"

namespace earshot::ingest {

bool IsNginxName(std::string_view text, std::size_t max_size) {
  if (text.empty() || text.size() > max_size) return false;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool IsAppName(std::string_view app) { return IsNginxName(app, 128); }

bool IsClientId(std::string_view text) {
  constexpr std::size_t kMaxDigits = 20;
  if (text.empty() || text.size() > kMaxDigits) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace earshot::ingest
