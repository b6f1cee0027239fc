// Maps stream time (seconds of audio since the scan started) to wall-clock
// time: when the scanner received the audio at that point of the stream.
//
// The scanner calls Record() as audio arrives; WallMillis() answers for any
// stream time, interpolating between recorded points and extrapolating at
// real-time rate outside them. Memory is bounded: at most one point per
// `resolution_s` over the last `retention_s` of stream time.
//
// Pure (no clock is read here: the caller passes wall times). Thread safety:
// one thread at a time.
#pragma once

#include <cstdint>
#include <deque>

namespace earshot::scan {

class StreamClock {
 public:
  explicit StreamClock(double resolution_s = 1.0, double retention_s = 3600.0)
      : resolution_s_(resolution_s), retention_s_(retention_s) {}

  // Audio up to `stream_s` had arrived at `wall_ms` (Unix milliseconds, UTC).
  // stream_s must not decrease between calls.
  void Record(double stream_s, int64_t wall_ms);

  // Wall-clock Unix milliseconds at which the audio at `stream_s` arrived;
  // 0 before anything was recorded.
  int64_t WallMillis(double stream_s) const;

 private:
  struct Point {
    double stream_s;
    int64_t wall_ms;
  };
  double resolution_s_;
  double retention_s_;
  std::deque<Point> points_;  // increasing stream_s
};

}  // namespace earshot::scan
