// Identification of recordings against a catalog: the `identify` use case.
//
// Audio: a short recording (a clip, up to clip_max_seconds) is matched as a
// whole; a longer one is followed with the streaming recogniser, which
// reports every catalogued segment it contains. Video (when the catalog holds
// video references): the recording's frames are sampled at
// VideoParams::query_fps and followed with the video matcher; each match is
// then extended frame by frame, forwards and backwards from where it was
// confirmed, to the stretch the reference shows. Either way the answer is an
// IdentifyResponse: the matches with their type, business rule and metadata,
// where they are in the recording and in the reference, and how sure we are.
//
// Thread safety: the functions are reentrant; a Catalog may be shared.
#pragma once

#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "recognition/fingerprint_params.h"
#include "recognition/stream_recognizer.h"

namespace earshot::catalog {

struct IdentifyOptions {
  double clip_max_seconds = 30.0;  // longer recordings are followed as streams
  size_t max_matches = 10;         // per clip
  recognition::QueryParams query;  // clips
  // Recordings longer than clip_max_seconds and FollowInput (the streaming
  // recogniser).
  recognition::QueryParams stream_query = recognition::QueryParams::Streaming();
  recognition::StreamParams stream;
};

struct IdentifiedMatch {
  store::MediaKind type = store::MediaKind::kAudio;  // which fingerprints matched
  store::CatalogEntry entry;         // the reference (rule and metadata)
  double time_in_file_s = 0;         // where the match starts in the recording
  double duration_s = 0;             // how long it matches
  double time_in_reference_s = 0;    // reference time at time_in_file_s
  // Audio: z-score over chance (unrelated audio ~2.5, threshold 7). Video:
  // 0..100, 100 * (1 - mean Hamming distance / 128) over the matched frames
  // (unrelated footage ~0, re-encoded copies 60..95).
  double score = 0;
  double time_scale = 1;    // reference seconds per recording second (video: 1)
  double pitch_factor = 1;  // reference frequency / recording frequency (video: 1)
};

struct IdentifyResponse {
  std::string file;
  double duration_s = 0;  // audio decoded, or video sampled when longer
  std::vector<IdentifiedMatch> matches;
};

// Identifies mono PCM (at the catalog's sample rate). Matches on tracks that
// are no longer in the metadata (removed meanwhile) are dropped.
Result<IdentifyResponse> IdentifyAudio(const Catalog& catalog, std::span<const float> pcm,
                                       const IdentifyOptions& options);

// Decodes a file (any format FFmpeg reads) and identifies it: its audio
// against the audio references, and, when the catalog has video references,
// its video against those (video matches follow the audio ones, in time
// order). A file without audio is fine when the catalog has video references
// and the file has video; a file without video is fine when the catalog has
// audio references and the file has audio. Errors: the decoder's (kNotFound,
// kCorruptData, kUnsupported: no stream of a kind the catalog holds),
// kFailedPrecondition for an empty catalog.
Result<IdentifyResponse> IdentifyFile(const Catalog& catalog, const std::filesystem::path& file,
                                      const IdentifyOptions& options);

// Matches the video of a file against the catalog's video references only
// (matches of type video, in time order; successive reports of one reference
// at one alignment are one match). duration_s of the response is the
// seconds of video sampled. Keeps the hashes of every sampled frame until
// the end (about 0.5 KB per frame, 3.6 MB per hour of input) to measure the
// matches. Errors: kFailedPrecondition when the catalog has
// no video references; the reader's (kNotFound, kCorruptData, kUnsupported
// for a file without a video stream, ...).
Result<IdentifyResponse> IdentifyVideoFile(const Catalog& catalog,
                                           const std::filesystem::path& file,
                                           const IdentifyOptions& options);

// Follows a recording or live input (file, URL, or "-" for standard input)
// and calls `emit` with one JSON event per recogniser event (started,
// ongoing, ended) as it happens. With `realtime`, input is paced at real
// time (for replaying files as if live).
Status FollowInput(const Catalog& catalog, const std::string& input, bool realtime,
                   const IdentifyOptions& options,
                   const std::function<void(const nlohmann::json&)>& emit);

// JSON forms (the identification response schema, docs/identification.md).
nlohmann::json MatchToJson(const IdentifiedMatch& match);
nlohmann::json ResponseToJson(const IdentifyResponse& response);
nlohmann::json ErrorToJson(const std::string& file, const Error& error);
nlohmann::json EntryToJson(const store::CatalogEntry& entry);

}  // namespace earshot::catalog
