#include "catalog/identify.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <thread>

#include "media/audio_decoder.h"
#include "media/video_frame_reader.h"
#include "recognition/fingerprinter.h"
#include "recognition/matcher.h"
#include "video/frame_hash.h"
#include "video/video_matcher.h"

namespace earshot::catalog {

namespace {

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }
double Round4(double v) { return std::round(v * 10000.0) / 10000.0; }

// Metadata lookups for the tracks a recording matched, cached per call.

Error EmptyCatalogError(const Catalog& catalog) {
  return Error(ErrorCode::kFailedPrecondition,
               "the catalog at " + catalog.dir().string() +
                   " is empty: add reference recordings with `earshot catalog add`");
}

Status RequireTracks(const Catalog& catalog, const recognition::IndexReader& snapshot) {
  if (snapshot.TrackCount() > 0) return Ok();
  if (catalog.VideoSnapshot()->size() > 0) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "the catalog at " + catalog.dir().string() +
                         " has only video references: add audio references with `earshot "
                         "catalog add` to match audio");
  }
  return std::unexpected(EmptyCatalogError(catalog));
}

// --- Video -----------------------------------------------------------------

// One sampled frame of the recording: its time and the views worth comparing.
struct QueryFrame {
  int64_t time_ms = 0;
  std::vector<video::ViewHash> views;  // quality >= min_quality only
};

// The stored frames of one video reference, in time order.
using ReferenceFrames = std::vector<const video::IndexEntry*>;

struct Closest {
  int distance = 257;  // no comparable view within the window
  int64_t ref_ms = 0;
};

// The closest pair of views between a query frame and the reference frames
// within window_ms of ref_ms (inset views only against full reference views,
// as in VideoMatcher).
Closest ClosestReferenceFrame(const QueryFrame& frame, const ReferenceFrames& ref, int64_t ref_ms,
                              int64_t window_ms) {
  Closest best;
  auto it = std::lower_bound(ref.begin(), ref.end(), ref_ms - window_ms,
                             [](const video::IndexEntry* e, int64_t t) { return e->time_ms < t; });
  for (; it != ref.end() && (*it)->time_ms <= ref_ms + window_ms; ++it) {
    const video::IndexEntry& e = **it;
    for (const video::ViewHash& view : frame.views) {
      if (view.view == video::ViewKind::kInset && e.view != video::ViewKind::kFull) continue;
      const int d = video::HammingDistance(view.bits, e.hash);
      if (d < best.distance ||
          (d == best.distance && std::abs(e.time_ms - ref_ms) < std::abs(best.ref_ms - ref_ms))) {
        best = {d, e.time_ms};
      }
    }
  }
  return best;
}

// The stretch of the recording that shows one reference at one alignment.
struct Stretch {
  uint32_t ref_id = 0;
  size_t first = 0, last = 0;   // matched frames (indexes into the frames)
  int64_t first_offset_ms = 0;  // recording time - reference time at `first`
  int64_t last_offset_ms = 0;   // ... and at `last`
  double distance_sum = 0;
  int matched = 0;
  // Recording time - reference time of every matched frame, by frame index.
  std::map<size_t, int64_t> offsets;

  // The alignment at the start: the median over the first few matched
  // frames (one frame's closest reference frame can be a neighbour when the
  // picture changes slowly).
  int64_t StartOffsetMs() const {
    std::vector<int64_t> early;
    for (auto it = offsets.begin(); it != offsets.end() && early.size() < 9; ++it) {
      early.push_back(it->second);
    }
    if (early.empty()) return first_offset_ms;
    std::nth_element(early.begin(), early.begin() + static_cast<ptrdiff_t>(early.size() / 2),
                     early.end());
    return early[early.size() / 2];
  }
};

// Grows a confirmed match frame by frame in both directions while the
// recording keeps showing the reference: a frame matches when one of its
// views is within max_hamming of a reference frame near the expected time
// (the alignment follows the matched frames, so speed changes are followed).
// Flat frames count neither way; the walk stops after `max_misses` detailed
// frames in a row that do not match.
Stretch Extend(const std::vector<QueryFrame>& frames, size_t anchor, uint32_t ref_id,
               int64_t anchor_ref_ms, const ReferenceFrames& ref,
               const video::VideoMatcherOptions& options, int max_misses) {
  Stretch s;
  s.ref_id = ref_id;
  s.first = s.last = anchor;
  const int64_t window = options.offset_tolerance_ms;
  const Closest at_anchor = ClosestReferenceFrame(frames[anchor], ref, anchor_ref_ms, window);
  const bool anchor_ok = at_anchor.distance <= options.max_hamming;
  s.first_offset_ms = s.last_offset_ms =
      frames[anchor].time_ms - (anchor_ok ? at_anchor.ref_ms : anchor_ref_ms);
  s.distance_sum = anchor_ok ? at_anchor.distance : options.max_hamming;
  s.matched = 1;
  s.offsets[anchor] = s.first_offset_ms;
  for (const int dir : {-1, 1}) {
    int64_t offset = s.first_offset_ms;
    int misses = 0;
    for (ptrdiff_t j = static_cast<ptrdiff_t>(anchor) + dir;
         j >= 0 && j < static_cast<ptrdiff_t>(frames.size()) && misses < max_misses; j += dir) {
      const QueryFrame& f = frames[static_cast<size_t>(j)];
      if (f.views.empty()) continue;  // flat frame: no evidence either way
      const Closest c = ClosestReferenceFrame(f, ref, f.time_ms - offset, window);
      if (c.distance > options.max_hamming) {
        ++misses;
        continue;
      }
      misses = 0;
      offset = f.time_ms - c.ref_ms;
      s.distance_sum += c.distance;
      ++s.matched;
      s.offsets[static_cast<size_t>(j)] = offset;
      if (dir < 0) {
        s.first = static_cast<size_t>(j);
        s.first_offset_ms = offset;
      } else {
        s.last = static_cast<size_t>(j);
        s.last_offset_ms = offset;
      }
    }
  }
  return s;
}

// Whether a report (or stretch) at `offset_ms` belongs to stretch `s`.
bool SameAlignment(const Stretch& s, int64_t offset_ms, int64_t realign_ms) {
  return std::abs(offset_ms - s.first_offset_ms) <= realign_ms ||
         std::abs(offset_ms - s.last_offset_ms) <= realign_ms;
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
  IdentifyResponse response;
  response.duration_s = static_cast<double>(pcm.size()) / params.sample_rate;
  EntryCache entries(catalog);
  const double hop = params.hop_seconds();

  if (response.duration_s <= options.clip_max_seconds) {
    const recognition::Matcher matcher(*snapshot, params, options.query);
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

  const recognition::Matcher matcher(*snapshot, params, options.stream_query);
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

Result<IdentifyResponse> IdentifyVideoFile(const Catalog& catalog,
                                           const std::filesystem::path& file,
                                           const IdentifyOptions& options) {
  (void)options;  // the video side has no per-call options yet
  const video::VideoParams& params = catalog.video_params();
  const auto index = catalog.VideoSnapshot();
  if (index->size() == 0) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "the catalog at " + catalog.dir().string() +
                         " has no video references: add some with `earshot catalog add --video`");
  }
  media::VideoReadOptions read;
  read.fps = params.query_fps;
  read.max_width = params.max_width;
  // Predicting where the next GOP starts fails at irregular key frames
  // (scene cuts) and loses the samples up to it; a file is read whole.
  read.skip_gop_tail = false;
  auto reader = media::VideoFrameReader::Open(file.string(), read);
  if (!reader) return std::unexpected(reader.error());

  // Follow the recording as a live scan would, keeping every frame's views
  // for the extension of the matches afterwards.
  video::VideoMatcher matcher(*index, params.matcher);
  video::ContentTracker tracker;
  std::vector<QueryFrame> frames;
  std::vector<video::VideoMatch> reports;
  media::VideoFrame frame;
  while (true) {
    auto more = (*reader)->Next(frame);
    if (!more) return std::unexpected(more.error());
    if (!*more) break;
    // Times must increase for the walk below; a frame going back (a damaged
    // timestamp) is skipped.
    if (!frames.empty() && frame.pts_ms <= frames.back().time_ms) continue;
    const video::LumaPlane plane{frame.luma.data(), frame.width, frame.height, frame.width};
    const video::PixelRect content = tracker.Update(plane);
    auto hashes = video::HashQueryFrame(plane, params.hash, &content);
    if (!hashes) return std::unexpected(hashes.error().Wrap(file.string()));
    for (video::VideoMatch& m : matcher.Feed(frame.pts_ms, *hashes)) reports.push_back(m);
    QueryFrame q;
    q.time_ms = frame.pts_ms;
    for (const video::ViewHash& v : hashes->views) {
      if (v.quality >= params.matcher.min_quality) q.views.push_back(v);
    }
    frames.push_back(std::move(q));
  }

  IdentifyResponse response;
  response.file = file.string();
  const double interval_s = 1.0 / params.query_fps;
  const double sampled_s =
      frames.empty() ? 0.0 : static_cast<double>(frames.back().time_ms) / 1000.0 + interval_s;
  const double declared_s = (*reader)->info().duration_s;
  response.duration_s = declared_s > 0 ? declared_s : sampled_s;
  if (reports.empty()) return response;

  // The stored frames of every reported reference, by time.
  std::map<uint32_t, ReferenceFrames> refs;
  for (const video::VideoMatch& m : reports) refs[m.ref_id];
  for (const video::IndexEntry& e : index->entries()) {
    auto it = refs.find(e.ref_id);
    if (it != refs.end()) it->second.push_back(&e);
  }
  for (auto& [id, list] : refs) {
    std::stable_sort(list.begin(), list.end(),
                     [](const video::IndexEntry* a, const video::IndexEntry* b) {
                       return a->time_ms < b->time_ms;
                     });
  }

  // One stretch per reference and alignment: a report inside (or next to) a
  // stretch of the same alignment is part of it.
  const int max_misses = std::max(2, static_cast<int>(std::lround(3.0 * params.query_fps)));
  const int64_t near_ms = static_cast<int64_t>(max_misses * 1000.0 / params.query_fps);
  std::vector<Stretch> stretches;
  for (const video::VideoMatch& m : reports) {
    const int64_t offset = m.stream_time_ms - m.ref_offset_ms;
    const bool known = std::any_of(stretches.begin(), stretches.end(), [&](const Stretch& s) {
      return s.ref_id == m.ref_id && SameAlignment(s, offset, params.matcher.realign_ms) &&
             m.stream_time_ms >= frames[s.first].time_ms - near_ms &&
             m.stream_time_ms <= frames[s.last].time_ms + near_ms;
    });
    if (known) continue;
    auto at = std::lower_bound(frames.begin(), frames.end(), m.stream_time_ms,
                               [](const QueryFrame& f, int64_t t) { return f.time_ms < t; });
    if (at == frames.end()) continue;  // cannot happen: the report came from a kept frame
    Stretch fresh = Extend(frames, static_cast<size_t>(at - frames.begin()), m.ref_id,
                           m.ref_offset_ms, refs[m.ref_id], params.matcher, max_misses);
    // Two stretches of one alignment that overlap are one.
    auto same = std::find_if(stretches.begin(), stretches.end(), [&](const Stretch& s) {
      return s.ref_id == fresh.ref_id &&
             SameAlignment(s, fresh.first_offset_ms, params.matcher.realign_ms) &&
             fresh.first <= s.last && s.first <= fresh.last;
    });
    if (same == stretches.end()) {
      stretches.push_back(fresh);
      continue;
    }
    if (fresh.first < same->first) {
      same->first = fresh.first;
      same->first_offset_ms = fresh.first_offset_ms;
    }
    same->offsets.insert(fresh.offsets.begin(), fresh.offsets.end());
    if (fresh.last > same->last) {
      same->last = fresh.last;
      same->last_offset_ms = fresh.last_offset_ms;
    }
    same->distance_sum += fresh.distance_sum;
    same->matched += fresh.matched;
  }

  EntryCache entries(catalog);
  for (const Stretch& s : stretches) {
    const store::CatalogEntry* entry = entries.Find(s.ref_id);
    if (!entry) continue;  // removed meanwhile
    IdentifiedMatch m;
    m.type = store::MediaKind::kVideo;
    m.entry = *entry;
    m.time_in_file_s = static_cast<double>(frames[s.first].time_ms) / 1000.0;
    const double end_s = std::min(static_cast<double>(frames[s.last].time_ms) / 1000.0 + interval_s,
                                  std::max(response.duration_s, m.time_in_file_s));
    m.duration_s = std::max(0.0, end_s - m.time_in_file_s);
    m.time_in_reference_s =
        std::max(0.0, static_cast<double>(frames[s.first].time_ms - s.StartOffsetMs()) / 1000.0);
    m.score = std::clamp(100.0 * (1.0 - s.distance_sum / s.matched / 128.0), 0.0, 100.0);
    response.matches.push_back(std::move(m));
  }
  std::sort(response.matches.begin(), response.matches.end(),
            [](const IdentifiedMatch& a, const IdentifiedMatch& b) {
              return a.time_in_file_s < b.time_in_file_s;
            });
  return response;
}

Result<IdentifyResponse> IdentifyFile(const Catalog& catalog, const std::filesystem::path& file,
                                      const IdentifyOptions& options) {
  const bool audio_refs = catalog.Snapshot()->TrackCount() > 0;
  const bool video_refs = catalog.VideoSnapshot()->size() > 0;
  if (!audio_refs && !video_refs) return std::unexpected(EmptyCatalogError(catalog));

  IdentifyResponse response;
  response.file = file.string();
  // Why the file's audio was not matched (no audio stream), if it was not.
  std::optional<Error> no_audio;
  if (audio_refs) {
    media::AudioDecodeOptions decode;
    decode.sample_rate = catalog.params().sample_rate;
    auto audio = media::DecodeFile(file.string(), decode);
    if (audio) {
      auto matched = IdentifyAudio(catalog, audio->samples, options);
      if (!matched) return std::unexpected(matched.error());
      response.matches = std::move(matched->matches);
      response.duration_s = matched->duration_s;
    } else if (video_refs && audio.error().code() == ErrorCode::kUnsupported) {
      no_audio = audio.error();  // perhaps a video without sound: its video may match
    } else {
      return std::unexpected(audio.error());
    }
  }
  if (video_refs) {
    auto matched = IdentifyVideoFile(catalog, file, options);
    if (matched) {
      for (IdentifiedMatch& m : matched->matches) response.matches.push_back(std::move(m));
      response.duration_s = std::max(response.duration_s, matched->duration_s);
    } else if (audio_refs && !no_audio &&
               (matched.error().code() == ErrorCode::kUnsupported ||
                matched.error().code() == ErrorCode::kCorruptData)) {
      // No (decodable) video, e.g. an audio file or its cover art: the audio
      // was matched, and that is the answer.
    } else if (no_audio && matched.error().code() == ErrorCode::kUnsupported) {
      return MakeError(ErrorCode::kUnsupported,
                       file.string() + " has neither an audio nor a video stream to identify (" +
                           no_audio->message() + "; " + matched.error().message() + ")");
    } else if (!audio_refs && matched.error().code() == ErrorCode::kUnsupported) {
      return MakeError(ErrorCode::kUnsupported,
                       matched.error().message() + ", and the catalog at " +
                           catalog.dir().string() + " has only video references");
    } else {
      return std::unexpected(matched.error());
    }
  }
  return response;
}

Status FollowInput(const Catalog& catalog, const std::string& input, bool realtime,
                   const IdentifyOptions& options,
                   const std::function<void(const nlohmann::json&)>& emit) {
  const recognition::FingerprintParams& params = catalog.params();
  const auto snapshot = catalog.Snapshot();
  if (auto s = RequireTracks(catalog, *snapshot); !s) return std::unexpected(s.error());
  recognition::Matcher matcher(*snapshot, params, options.stream_query);
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
  j["match_type"] = store::MediaKindName(match.type);
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
