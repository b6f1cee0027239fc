#include "scan/identification.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "common/time_format.h"

namespace earshot::scan {
namespace {

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }
double Round4(double v) { return std::round(v * 10000.0) / 10000.0; }

nlohmann::json TrackJson(const store::CatalogEntry& entry) {
  return {{"track_id", entry.id},
          {"title", entry.metadata.title},
          {"artist", entry.metadata.artist},
          {"rights_holder", entry.metadata.rights_holder},
          {"isrc", entry.metadata.isrc},
          {"tags", entry.metadata.tags}};
}

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

}  // namespace

Status ValidateStreamId(std::string_view id, std::string_view what) {
  const bool ok = !id.empty() && id.size() <= 128 && id.front() != '.' &&
                  std::all_of(id.begin(), id.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' ||
                           c == '_' || c == '-';
                  });
  if (ok) return Ok();
  return MakeError(ErrorCode::kInvalidArgument,
                   std::string(what) + " '" + std::string(id.substr(0, 140)) +
                       "' is not valid: use 1-128 characters of A-Z a-z 0-9 . _ - "
                       "(not starting with '.')");
}

std::string ResponseStatus(recognition::StreamEvent::Type type) {
  return std::string("match_") + recognition::StreamEventTypeName(type);
}

std::string_view MatchTypeName(MatchType type) {
  return type == MatchType::kVideo ? "video" : "audio";
}

std::string MatchId(const ScanIdentity& scan, uint64_t recognizer_match_id, MatchType type) {
  return scan.scan_id + (type == MatchType::kVideo ? "-v" : "-m") +
         std::to_string(recognizer_match_id);
}

std::string IsoTime(int64_t unix_ms) { return IsoTimeUtc(unix_ms); }

nlohmann::json MatchResponse(const ScanIdentity& scan, uint64_t sequence,
                             const recognition::StreamEvent& event,
                             const store::CatalogEntry& entry, const ResponseTimes& times,
                             MatchType type) {
  nlohmann::json j;
  j["schema_version"] = kResponseSchemaVersion;
  j["type"] = "identification";
  j["status"] = ResponseStatus(event.type);
  j["stream_id"] = scan.stream_id;
  j["channel_id"] = NullIfEmpty(scan.channel_id);
  j["scan_id"] = scan.scan_id;
  j["match_id"] = MatchId(scan, event.match_id, type);
  j["sequence"] = sequence;
  j["match_type"] = MatchTypeName(type);
  j["rule"] = store::BusinessRuleName(entry.rule);
  j["track"] = TrackJson(entry);
  j["stream"] = {{"start_s", Round3(event.start_seconds)},
                 {"end_s", Round3(event.end_seconds)},
                 {"duration_s", Round3(std::max(0.0, event.end_seconds - event.start_seconds))},
                 {"reported_at_s", Round3(event.reported_at_seconds)},
                 {"start_time", IsoTime(times.start_ms)},
                 {"end_time", IsoTime(times.end_ms)},
                 {"reported_at", IsoTime(times.reported_ms)}};
  j["reference"] = {{"start_s", Round3(event.reference_seconds)},
                    {"time_scale", Round4(event.time_scale)},
                    {"pitch_factor", Round4(event.pitch_factor)}};
  j["score"] = Round3(event.score);
  j["algorithm_version"] = scan.algorithm_version;
  return j;
}

std::string ResponseFileName(uint64_t sequence, const nlohmann::json& response) {
  char seq[24];
  std::snprintf(seq, sizeof(seq), "%06llu", static_cast<unsigned long long>(sequence));
  return std::string(seq) + "-" + response.value("status", "response") + "-" +
         response.value("match_id", "") + ".json";
}

nlohmann::json StreamSummary(const ScanIdentity& scan, const SummaryInfo& info,
                             const std::vector<Segment>& segments) {
  nlohmann::json j;
  j["schema_version"] = kResponseSchemaVersion;
  j["type"] = "stream_summary";
  j["stream_id"] = scan.stream_id;
  j["channel_id"] = NullIfEmpty(scan.channel_id);
  j["scan_id"] = scan.scan_id;
  j["status"] = info.status;
  if (!info.error_code.empty()) {
    j["error"] = {{"code", info.error_code}, {"message", info.error_message}};
  }
  j["started_at"] = IsoTime(info.started_ms);
  j["ended_at"] = IsoTime(info.ended_ms);
  j["stream_seconds"] = Round3(info.stream_seconds);
  j["reconnects"] = info.reconnects;
  j["damaged_packets"] = info.damaged_packets;
  j["algorithm_version"] = scan.algorithm_version;
  nlohmann::json list = nlohmann::json::array();
  nlohmann::json mute = nlohmann::json::array();
  nlohmann::json cut = nlohmann::json::array();
  for (const Segment& s : segments) {
    nlohmann::json seg;
    seg["match_id"] = s.match_id;
    seg["match_type"] = MatchTypeName(s.type);
    seg["rule"] = store::BusinessRuleName(s.entry.rule);
    seg["track"] = TrackJson(s.entry);
    seg["start_s"] = Round3(s.start_s);
    seg["end_s"] = Round3(s.end_s);
    seg["duration_s"] = Round3(std::max(0.0, s.end_s - s.start_s));
    seg["start_time"] = IsoTime(s.start_ms);
    seg["end_time"] = IsoTime(s.end_ms);
    seg["reference_start_s"] = Round3(s.reference_start_s);
    seg["score"] = Round3(s.score);
    list.push_back(seg);
    nlohmann::json interval = {{"start_s", Round3(s.start_s)}, {"end_s", Round3(s.end_s)},
                               {"match_id", s.match_id}};
    if (s.entry.rule == store::BusinessRule::kMute) mute.push_back(interval);
    if (s.entry.rule == store::BusinessRule::kBlock) cut.push_back(interval);
  }
  j["segments"] = list;
  j["edits"] = {{"mute", mute}, {"cut", cut}};
  return j;
}

}  // namespace earshot::scan
