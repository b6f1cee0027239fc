// Wall-clock helpers shared by logs and result documents.
// Thread safety: all functions are thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace earshot {

// Milliseconds since the Unix epoch, UTC, from the system clock.
int64_t UnixMillisNow();

// ISO 8601 UTC with milliseconds: "2026-11-21T10:15:00.250Z".
std::string IsoTimeUtc(int64_t unix_ms);

// Compact UTC timestamp for ids: "20261121T101500Z".
std::string CompactTimeUtc(int64_t unix_ms);

}  // namespace earshot
