// Turns the video matcher's reports into match events shaped like the audio
// recogniser's (started, ongoing, ended), so video matches flow through the
// same identification responses, summaries and rules (no I/O).
//
// VideoMatcher reports a reference when it is first confirmed, again every
// VideoMatcherOptions::repeat_ms while it stays confirmed at the same
// alignment (VideoMatch::ongoing), and anew when it is confirmed at another
// alignment. The tracker keeps one open match per reference:
//   - a first report (or an ongoing one for a reference not open) starts a
//     match at the stream time of the confirming frame;
//   - an ongoing report extends it (an "ongoing" event);
//   - a new report at another alignment ends the open match and starts one;
//   - a match that got no report for end_after_s of stream time ends at its
//     last report; Finish() ends all open matches.
//
// Match ids are 1, 2, ... per tracker (the scanner prefixes them so they do
// not collide with audio match ids).
//
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "recognition/stream_recognizer.h"
#include "video/video_matcher.h"

namespace earshot::scan {

class VideoMatchTracker {
 public:
  // end_after_s should exceed twice the matcher's repeat interval.
  explicit VideoMatchTracker(double end_after_s = 25.0) : end_after_s_(end_after_s) {}

  // A frame at `stream_s` (seconds, non-decreasing) was matched and gave
  // `matches` (usually none); appends the events it causes.
  void Update(double stream_s, const std::vector<video::VideoMatch>& matches,
              std::vector<recognition::StreamEvent>& events);

  // End of the stream: ends every open match.
  void Finish(std::vector<recognition::StreamEvent>& events);

  size_t open_matches() const { return open_.size(); }

 private:
  struct Open {
    uint64_t match_id = 0;
    double start_s = 0;
    double last_s = 0;        // stream time of the newest report
    double reference_s = 0;   // reference time at start_s
    double score = 0;         // best score so far
  };
  recognition::StreamEvent Event(recognition::StreamEvent::Type type, uint32_t ref,
                                 const Open& open, double reported_s) const;

  double end_after_s_;
  uint64_t next_match_id_ = 1;
  std::map<uint32_t, Open> open_;  // by reference (track) id
};

}  // namespace earshot::scan
