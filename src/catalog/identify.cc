#include "catalog/identify.h"

#include <chrono>
#include <cmath>
#include <map>
#include <thread>

#include "media/audio_decoder.h"
#include "recognition/fingerprinter.h"
#include "recognition/matcher.h"

namespace earshot::catalog {

namespace {

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }
double Round4(double v) { return std::round(v * 10000.0) / 10000.0; }

// Metadata lookups for the tracks a recording matched, cached per call.

Status RequireTracks(const Catalog& catalog, const recognition::IndexReader& snapshot) {
  if (snapshot.TrackCount() > 0) return Ok();
  return MakeError(ErrorCode::kFailedPrecondition,
                   "the catalog at " + catalog.dir().string() +
                       " is empty: add reference recordings with `earshot catalog add`");
}

IdentifiedMatch MatchFromEvent(const store::CatalogEntry& entry, const recognition::StreamEvent& e) {
  IdentifiedMatch m;
  m.entry = entry;
  m.time_in_file_s = e.start_seconds;
  m.duration_s = e.end_seconds - e.start_seconds;
  m.time_in_reference_s = e.reference_seconds;
  m.score = e.score;
  m.time_scale = e.time_scale;
  m.pitch_factor = e.pitch_factor;
  return m;
}

}  // namespace

Result<IdentifyResponse> IdentifyAudio(const Catalog& catalog, std::span<const float> pcm,
                                       const IdentifyOptions& options) {
  const recognition::FingerprintParams& params = catalog.params();
  const auto snapshot = catalog.Snapshot();
  if (auto s = RequireTracks(catalog, *snapshot); !s) return std::unexpected(s.error());
  recognition::Matcher matcher(*snapshot, params, options.query);
  IdentifyResponse response;
  response.duration_s = static_cast<double>(pcm.size()) / params.sample_rate;
  EntryCache entries(catalog);
  const double hop = params.hop_seconds();

  if (response.duration_s <= options.clip_max_seconds) {
    const auto peaks = recognition::ExtractPeaks(pcm, params, options.query.query_peaks_per_band);
    for (const recognition::MatchResult& r : matcher.Match(peaks, options.max_matches)) {
      const store::CatalogEntry* entry = entries.Find(r.track);
      if (!entry) continue;
      IdentifiedMatch m;
      m.entry = *entry;
      m.time_in_file_s = r.query_first_frame * hop;
      m.duration_s = (r.query_last_frame - r.query_first_frame) * hop;
      m.time_in_reference_s = (r.reference_offset + r.time_scale * r.query_first_frame) * hop;
      m.score = r.score;
      m.time_scale = r.time_scale;
      m.pitch_factor = r.pitch_factor;
      response.matches.push_back(std::move(m));
    }
    return response;
  }

  recognition::StreamRecognizer recognizer(matcher, options.stream);
  std::vector<recognition::StreamEvent> events;
  constexpr size_t kChunk = 8192;
  for (size_t i = 0; i < pcm.size(); i += kChunk) {
    recognizer.Push(pcm.subspan(i, std::min(kChunk, pcm.size() - i)), events);
  }
  recognizer.Finish(events);
  for (const recognition::StreamEvent& e : events) {
    if (e.type != recognition::StreamEvent::Type::kEnded) continue;
    const store::CatalogEntry* entry = entries.Find(e.track);
    if (!entry) continue;
    response.matches.push_back(MatchFromEvent(*entry, e));
  }
  std::sort(response.matches.begin(), response.matches.end(),
            [](const IdentifiedMatch& a, const IdentifiedMatch& b) { return a.time_in_file_s < b.time_in_file_s; });
  return response;
}

Result<IdentifyResponse> IdentifyFile(const Catalog& catalog, const std::filesystem::path& file,
                                      const IdentifyOptions& options) {
  media::AudioDecodeOptions decode;
  decode.sample_rate = catalog.params().sample_rate;
  auto audio = media::DecodeFile(file.string(), decode);
  if (!audio) return std::unexpected(audio.error());
  auto response = IdentifyAudio(catalog, audio->samples, options);
  if (!response) return std::unexpected(response.error());
  response->file = file.string();
  return response;
}

Status FollowInput(const Catalog& catalog, const std::string& input, bool realtime,
                   const IdentifyOptions& options,
                   const std::function<void(const nlohmann::json&)>& emit) {
  const recognition::FingerprintParams& params = catalog.params();
  const auto snapshot = catalog.Snapshot();
  if (auto s = RequireTracks(catalog, *snapshot); !s) return std::unexpected(s.error());
  recognition::Matcher matcher(*snapshot, params, options.query);
  recognition::StreamRecognizer recognizer(matcher, options.stream);
  media::AudioDecodeOptions decode;
  decode.sample_rate = params.sample_rate;
  auto decoder = media::AudioDecoder::Open(input == "-" ? "pipe:0" : input, decode);
  if (!decoder) return std::unexpected(decoder.error());
  EntryCache entries(catalog);
  std::vector<float> pcm;
  std::vector<recognition::StreamEvent> events;
  const auto started = std::chrono::steady_clock::now();
  auto publish = [&] {
    for (const recognition::StreamEvent& e : events) {
      const store::CatalogEntry* entry = entries.Find(e.track);
      if (!entry) continue;
      const IdentifiedMatch m = MatchFromEvent(*entry, e);
      nlohmann::json j;
      j["event"] = recognition::StreamEventTypeName(e.type);
      j["match_id"] = e.match_id;
      j["input"] = input;
      j["reported_at_s"] = Round3(e.reported_at_seconds);
      j["match"] = MatchToJson(m);
      emit(j);
    }
    events.clear();
  };
  const size_t chunk = static_cast<size_t>(params.sample_rate) / 10;  // 100 ms
  while (true) {
    pcm.clear();
    auto n = (*decoder)->Read(pcm, chunk);
    if (!n) return std::unexpected(n.error());
    if (*n == 0) break;
    recognizer.Push(pcm, events);
    publish();
    if (realtime) {
      const auto due = started + std::chrono::duration<double>(recognizer.stream_seconds());
      std::this_thread::sleep_until(due);
    }
  }
  recognizer.Finish(events);
  publish();
  return Ok();
}

nlohmann::json EntryToJson(const store::CatalogEntry& entry) {
  nlohmann::json j;
  j["track_id"] = entry.id;
  j["kind"] = store::MediaKindName(entry.kind);
  j["title"] = entry.metadata.title;
  j["artist"] = entry.metadata.artist;
  j["rights_holder"] = entry.metadata.rights_holder;
  j["isrc"] = entry.metadata.isrc;
  j["tags"] = entry.metadata.tags;
  j["rule"] = store::BusinessRuleName(entry.rule);
  j["duration_s"] = Round3(entry.duration_s);
  j["source"] = entry.source;
  j["added_at_unix_ms"] = entry.added_at_unix_ms;
  return j;
}

nlohmann::json MatchToJson(const IdentifiedMatch& match) {
  nlohmann::json j;
  j["match_type"] = "audio";
  j["track_id"] = match.entry.id;
  j["rule"] = store::BusinessRuleName(match.entry.rule);
  j["metadata"] = {{"title", match.entry.metadata.title},
                   {"artist", match.entry.metadata.artist},
                   {"rights_holder", match.entry.metadata.rights_holder},
                   {"isrc", match.entry.metadata.isrc},
                   {"tags", match.entry.metadata.tags}};
  j["time_in_input_s"] = Round3(match.time_in_file_s);
  j["duration_s"] = Round3(match.duration_s);
  j["time_in_reference_s"] = Round3(match.time_in_reference_s);
  j["score"] = Round3(match.score);
  j["time_scale"] = Round4(match.time_scale);
  j["pitch_factor"] = Round4(match.pitch_factor);
  return j;
}

nlohmann::json ResponseToJson(const IdentifyResponse& response) {
  nlohmann::json j;
  j["input"] = response.file;
  j["status"] = response.matches.empty() ? "no_match" : "match_found";
  j["duration_s"] = Round3(response.duration_s);
  j["algorithm_version"] = recognition::kAlgorithmVersion;
  j["matches"] = nlohmann::json::array();
  for (const IdentifiedMatch& m : response.matches) j["matches"].push_back(MatchToJson(m));
  return j;
}

nlohmann::json ErrorToJson(const std::string& file, const Error& error) {
  nlohmann::json j;
  j["input"] = file;
  j["status"] = "error";
  j["error"] = {{"code", ErrorCodeName(error.code())}, {"message", error.message()}};
  return j;
}

}  // namespace earshot::catalog
