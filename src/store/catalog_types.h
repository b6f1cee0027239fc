// Vocabulary of the reference catalog: what a rights holder registers with a
// reference recording (metadata and a business rule), shared by the catalog
// database (catalog_db.h) and manifest parsing (manifest.h).
//
// Thread safety: plain value types and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/error.h"
#include "recognition/types.h"

namespace earshot::store {

using recognition::TrackId;

// What the platform does when a stream matches a reference.
enum class BusinessRule {
  kBlock,  // stop the stream
  kMute,   // silence the matched audio
  kAllow,  // licensed: let it through
  kTrack,  // let it through and report the match (default)
};

inline constexpr std::array<BusinessRule, 4> kAllBusinessRules = {
    BusinessRule::kBlock, BusinessRule::kMute, BusinessRule::kAllow, BusinessRule::kTrack};

// "block", "mute", "allow" or "track": the stable name used in manifests, the
// database and the API.
std::string_view BusinessRuleName(BusinessRule rule);

// Inverse of BusinessRuleName, ignoring ASCII case. Anything else is
// kInvalidArgument: `unknown business rule "blok" (allowed: block, mute,
// allow, track)`.
Result<BusinessRule> ParseBusinessRule(std::string_view name);

enum class MediaKind { kAudio, kVideo };

// "audio" or "video".
std::string_view MediaKindName(MediaKind kind);
Result<MediaKind> ParseMediaKind(std::string_view name);

// Descriptive metadata of a reference recording.
struct TrackMetadata {
  std::string title;                        // required when stored (CatalogDb::Insert)
  std::string artist;                       // optional
  std::string rights_holder;                // optional: who registered the reference
  std::string isrc;                         // optional; normalised form, see NormalizeIsrc
  std::map<std::string, std::string> tags;  // free-form; keys non-empty

  friend bool operator==(const TrackMetadata&, const TrackMetadata&) = default;
};

// One registered reference recording.
struct CatalogEntry {
  TrackId id = 0;  // assigned by CatalogDb::Insert; ids are never reused
  MediaKind kind = MediaKind::kAudio;
  std::string source;          // path or name the reference came from
  std::string content_sha256;  // lowercase hex digest of the source bytes, or empty
  TrackMetadata metadata;
  BusinessRule rule = BusinessRule::kTrack;
  double duration_s = 0;           // seconds of decoded audio
  int64_t added_at_unix_ms = 0;    // milliseconds since the Unix epoch, UTC
  uint32_t algorithm_version = 0;  // fingerprint algorithm the index holds it under

  friend bool operator==(const CatalogEntry&, const CatalogEntry&) = default;
};

// Normalises an International Standard Recording Code: strips hyphens and
// surrounding spaces, upper-cases, and checks the 12-character form
//   CC XXX YY NNNNN
//   2 letters (country), 3 letters/digits (registrant), 7 digits (year, designation)
// e.g. "us-rc1-76-07839" -> "USRC17607839". An empty string stays empty (no
// ISRC); anything else malformed is kInvalidArgument saying what is wrong.
Result<std::string> NormalizeIsrc(std::string_view isrc);

// Normalises a SHA-256 hex digest to lowercase; kInvalidArgument unless it is
// exactly 64 hex digits.
Result<std::string> NormalizeSha256(std::string_view hex);

}  // namespace earshot::store
