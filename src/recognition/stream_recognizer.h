// Continuous recognition of catalogued music in a live audio stream.
//
// Feed mono PCM (FingerprintParams::sample_rate) in chunks of any size; get
// events: a match started, is still going on, has ended. Times are stream
// times in seconds from the first sample pushed.
//
// How it works: peaks are extracted incrementally; each query pair is looked
// up once, when its anchor becomes final, and its votes are kept for the
// last `window_seconds`. Every `hop_seconds` of audio the recogniser
//   - re-verifies each running match on the most recent audio under its
//     predicted alignment (cheap: one track, one alignment) and ends a match
//     that has not been confirmed for `end_after_seconds`;
//   - ranks the window's votes and verifies the best new candidates: one
//     that reaches QueryParams::min_score starts a new match.
//
// Memory is bounded: the peaks and votes of one window plus the running
// matches (a few per stream).
//
// Thread safety: one thread at a time per instance; the Matcher (and the
// index it reads) may be shared between recognisers on many threads and must
// outlive them.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <vector>

#include "recognition/fingerprinter.h"
#include "recognition/matcher.h"

namespace earshot::recognition {

struct StreamParams {
  double window_seconds = 10.0;     // audio (votes and peaks) a new identification looks at
  double hop_seconds = 1.0;         // identification runs after every hop of new audio
  double follow_seconds = 5.0;      // recent audio used to re-verify a running match
  double continue_score = 5.0;      // a running match is confirmed at this score or above
  double end_after_seconds = 3.0;   // unconfirmed this long: the match has ended
  double ongoing_every_seconds = 5.0;  // how often a running match reports kOngoing
};

struct StreamEvent {
  enum class Type { kStarted, kOngoing, kEnded };
  Type type = Type::kStarted;
  uint64_t match_id = 0;       // 1, 2, ... per recogniser; the same for all events of one match
  TrackId track = 0;
  double start_seconds = 0;    // stream time where the match begins
  double end_seconds = 0;      // stream time up to which it is confirmed (so far, or final)
  double reported_at_seconds = 0;  // stream time of the newest audio when this event was made
  double reference_seconds = 0;    // reference time at start_seconds
  double time_scale = 1;       // reference seconds per stream second
  double pitch_factor = 1;     // reference frequency / stream frequency
  double score = 0;            // best score seen for this match
};

const char* StreamEventTypeName(StreamEvent::Type type);  // "started", "ongoing", "ended"

class StreamRecognizer {
 public:
  StreamRecognizer(const Matcher& matcher, const StreamParams& params);

  // Consumes samples; appends the events they produced.
  void Push(std::span<const float> pcm, std::vector<StreamEvent>& events);
  // End of stream: processes what is buffered and ends every running match.
  void Finish(std::vector<StreamEvent>& events);

  // Stream time of the audio consumed so far, in seconds.
  double stream_seconds() const;
  size_t active_matches() const { return active_.size(); }

 private:
  struct Active {
    uint64_t id;
    TrackId track;
    double offset;       // reference frame = offset + scale * stream frame
    double scale;
    double pitch;
    uint32_t first_frame;
    uint32_t last_confirmed_frame;
    double best_score;
    uint32_t last_report_frame;
  };
  void Step(uint32_t now_frame, bool final_step, std::vector<StreamEvent>& events);
  void Prune(uint32_t now_frame);
  StreamEvent MakeEvent(StreamEvent::Type type, const Active& a, uint32_t now_frame) const;

  const Matcher& matcher_;
  StreamParams params_;
  FingerprintParams fp_params_;
  Fingerprinter fingerprinter_;
  std::vector<Peak> new_peaks_;
  std::deque<Peak> peaks_;    // peaks of the window, frame order
  VoteWindow votes_;          // votes of the window, counted and linked incrementally
  std::vector<Vote> new_votes_;
  uint32_t next_anchor_frame_ = 0;  // anchors before this frame have voted
  uint64_t samples_ = 0;
  uint64_t next_step_sample_ = 0;
  uint64_t next_match_id_ = 1;
  std::vector<Active> active_;
  std::map<TrackId, uint32_t> recently_ended_;  // track -> last confirmed frame, within a window
  std::vector<Peak> scratch_peaks_;
};

}  // namespace earshot::recognition
