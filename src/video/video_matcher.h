// Live matching of sampled stream frames against a HashIndex of catalogued
// videos (no I/O), with temporal verification.
//
// Per fed frame, every view hash of sufficient quality is searched in the
// index; a hit (ref_id, ref_time) proposes "the stream shows ref_id, offset
// stream_time - ref_time". Single-frame hits are weak evidence (similar shots
// exist everywhere), so a match is declared only when at least min_frames
// distinct stream frames hit the same reference with times that agree: for
// any two of them, the step in reference time equals the step in stream time
// within offset_tolerance_ms + max_speed_deviation * step (so sped-up or
// slowed-down copies at 0.9..1.1x still line up). A match is reported once;
// the same reference is reported again after it has gone unconfirmed for
// rearm_after_ms, or when it is confirmed at another position (a different
// excerpt: the offset jumped by more than realign_ms).
//
// Inset (picture-in-picture) views are only compared with full reference
// views: an inset shows the whole picture.
//
// Memory is bounded: hits older than window_ms (stream time) are dropped, and
// at most max_stored_hits are kept.
//
// Thread safety: a VideoMatcher must not be used from several threads at once;
// the borrowed index may be shared by many matchers (Search is const).
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <unordered_map>
#include <vector>

#include "video/frame_hash.h"
#include "video/hash_index.h"

namespace earshot::video {

struct VideoMatcherOptions {
  // A view hit counts when its Hamming distance is at most this (of 256).
  // Unrelated frames sit around 128 +- 8 (on the dev corpus, 99 % of frames
  // of unrelated streams are >= 82 from every reference frame); copies
  // under overlays and crops 20..80.
  int max_hamming = 64;
  // HashIndex search radius per 16-bit chunk (see SearchOptions). 1 finds a
  // single hit at distance 56 with probability ~0.83 (2: ~0.99) at 1/8 of
  // the cost of 2 (about 1 ms per hash at 1M index entries vs 8 ms); the
  // temporal verification sees several hits per copied frame and several
  // frames, and on the dev corpus radius 1 and 2 gave the same detections.
  int max_chunk_radius = 1;
  // Views with a quality below this are not searched (flat, black frames).
  int min_quality = 30;
  // Distinct, time-consistent stream frames needed for a match (>= 2).
  int min_frames = 3;
  // Fewer frames (but >= 2) suffice when their mean distance is at most
  // strong_max_hamming: near-identical copies are confirmed sooner (this
  // matters when only key frames, one per GOP, are decoded). 0 disables.
  int strong_min_frames = 2;
  int strong_max_hamming = 24;
  // Allowed disagreement of two hits' offsets, milliseconds, plus
  // max_speed_deviation times their distance in stream time.
  int64_t offset_tolerance_ms = 800;
  double max_speed_deviation = 0.1;
  // How far back (stream time, ms) hits are kept for verification.
  int64_t window_ms = 12000;
  // A confirmed reference is reported again after this long (stream time,
  // ms) without confirmation, or at once when it is confirmed at another
  // position: its offset (stream time - reference time) moved by more than
  // realign_ms (another excerpt of the same reference).
  int64_t rearm_after_ms = 30000;
  int64_t realign_ms = 3000;
  // While a reference stays confirmed at the same alignment, it is reported
  // again (VideoMatch::ongoing) every repeat_ms of stream time; 0 = never.
  int64_t repeat_ms = 10000;
  // Per fed frame and reference, only the closest hits are kept.
  int max_hits_per_ref_per_frame = 4;
  // Upper bound on stored hits (the oldest go first).
  size_t max_stored_hits = 8192;
};

struct VideoMatch {
  uint32_t ref_id = 0;
  int64_t ref_offset_ms = 0;    // position in the reference of the frame shown at stream_time_ms
  int64_t stream_time_ms = 0;   // stream time of the frame that confirmed the match
  double score = 0;             // 0..100: 100 * (1 - mean distance / 128) over the frames matched
  int frames_matched = 0;       // consistent stream frames behind the match
  bool ongoing = false;         // a periodic report of an alignment reported before
};

class VideoMatcher {
 public:
  // `index` is borrowed: it must be built, unchanged and outlive the matcher.
  VideoMatcher(const HashIndex& index, const VideoMatcherOptions& options);

  // Feeds one sampled frame; returns the matches it confirms (usually none).
  // stream_time_ms should not decrease; if it does (a restarted stream), the
  // history is cleared first.
  std::vector<VideoMatch> Feed(int64_t stream_time_ms, const FrameHashes& frame);

  // Forgets all hits and confirmed references.
  void Reset();

  size_t stored_hits() const { return hits_.size(); }
  // Index hits examined by the last Feed (for cost accounting).
  size_t last_hit_count() const { return last_hit_count_; }

 private:
  struct Hit {
    uint32_t ref_id;
    int64_t stream_ms;
    int64_t ref_ms;
    int distance;
  };

  const HashIndex& index_;
  VideoMatcherOptions options_;
  std::deque<Hit> hits_;  // in feed order (non-decreasing stream_ms)
  struct Confirmed {
    int64_t stream_ms;  // last confirmation
    int64_t offset_ms;  // its stream time - reference time
    int64_t reported_ms;  // stream time of the last report
  };
  std::unordered_map<uint32_t, Confirmed> confirmed_;  // by ref_id
  int64_t last_time_ms_ = std::numeric_limits<int64_t>::min();
  size_t last_hit_count_ = 0;
};

}  // namespace earshot::video
