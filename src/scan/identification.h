// Identification responses and stream summaries: the JSON documents a scan
// writes into RESULTS/{stream_id}/ (schema: docs/schema/*.schema.json,
// described in docs/identification.md).
//
// Pure functions: no I/O, no clock (wall times are passed in).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "recognition/stream_recognizer.h"
#include "store/catalog_types.h"

namespace earshot::scan {

inline constexpr int kResponseSchemaVersion = 1;

// Who and what a scan is about; the same for every document of one scan.
struct ScanIdentity {
  std::string stream_id;   // validated by ValidateStreamId
  std::string channel_id;  // may be empty (no channel)
  std::string scan_id;     // unique per scan run, e.g. "20261121T101500Z-3f9a1c2e"
  uint32_t algorithm_version = 0;
};

// Stream and channel ids name folders and object keys: 1..128 characters of
// [A-Za-z0-9._-], not starting with '.'. kInvalidArgument otherwise.
Status ValidateStreamId(std::string_view id, std::string_view what = "stream id");

// "match_started", "match_ongoing", "match_ended".
std::string ResponseStatus(recognition::StreamEvent::Type type);

// How a match was found: "audio" (the recogniser) or "video" (frame
// fingerprints); the response's match_type.
enum class MatchType { kAudio, kVideo };
std::string_view MatchTypeName(MatchType type);

// The match id of a match within a scan: "{scan_id}-m{n}" for audio,
// "{scan_id}-v{n}" for video.
std::string MatchId(const ScanIdentity& scan, uint64_t recognizer_match_id,
                    MatchType type = MatchType::kAudio);

// Wall-clock times of a response, Unix milliseconds UTC.
struct ResponseTimes {
  int64_t start_ms = 0;     // when the matched audio's first second arrived
  int64_t end_ms = 0;       // when the audio up to end_seconds arrived
  int64_t reported_ms = 0;  // when this response was made
};

// One identification response (a match started, is going on, or ended). For
// video matches, event.track is the video reference and time_scale /
// pitch_factor are 1.
nlohmann::json MatchResponse(const ScanIdentity& scan, uint64_t sequence,
                             const recognition::StreamEvent& event,
                             const store::CatalogEntry& entry, const ResponseTimes& times,
                             MatchType type = MatchType::kAudio);

// "000012-match_started-{match_id}.json": sorts in write order.
std::string ResponseFileName(uint64_t sequence, const nlohmann::json& response);

// A catalogued segment of the stream, for the summary.
struct Segment {
  std::string match_id;
  store::CatalogEntry entry;
  double start_s = 0;             // stream time
  double end_s = 0;
  double reference_start_s = 0;
  double score = 0;
  int64_t start_ms = 0;           // wall clock, Unix ms
  int64_t end_ms = 0;
  MatchType type = MatchType::kAudio;
};

struct SummaryInfo {
  std::string status;             // "ended" | "cancelled" | "failed"
  std::string error_code;         // with "failed" (or an end after lost input): ErrorCodeName
  std::string error_message;
  int64_t started_ms = 0;         // scan start, wall clock
  int64_t ended_ms = 0;
  double stream_seconds = 0;      // audio scanned
  uint64_t reconnects = 0;
  uint64_t damaged_packets = 0;
};

// The per-stream summary written at the end: every segment with its rule, and
// the intervals a VOD editor must mute (rule mute) or cut (rule block).
nlohmann::json StreamSummary(const ScanIdentity& scan, const SummaryInfo& info,
                             const std::vector<Segment>& segments);

// ISO 8601 UTC with milliseconds: "2026-11-21T10:15:00.250Z".
std::string IsoTime(int64_t unix_ms);

}  // namespace earshot::scan
