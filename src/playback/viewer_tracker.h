// Concurrent viewers per channel, and the per-minute maximum of that count for
// the viewer series (state::RecordViewerMinutes) and the anomaly detector.
//
// A viewer is a key the caller derives from an authorised HLS request (a
// token's viewer id, or a hash of address + user agent): Seen() marks it
// active at `now_ms`; it stays active while now_ms - last_seen_ms <=
// idle_timeout_ms and is gone after that. Count() is the number of active
// viewers of a channel at `now_ms`.
//
// Per-minute maximum: minute = floor(now_s / 60) * 60 (UTC, Unix seconds).
// The maximum of Count over a minute is exact: the count only rises at a
// Seen() and only falls when a viewer's idle timeout passes, so the maximum is
// the largest of the count at the start of the minute and the counts right
// after each Seen() in it. A viewer who joins and leaves inside one minute is
// counted in that minute. TakeClosedMinutes() hands out every minute that has
// ended, once:
//   - a minute in which the channel had >= 1 viewer, whether or not it is live;
//   - a minute with no viewer only for a channel listed in `live_channels` (a
//     live channel with no viewers gives 0s). Zero minutes are filled from
//     the minute the channel was first tracked (its first Seen(), or the call
//     that first listed it live), at most kMaxBackfillMinutes back.
//   Minutes of a channel that is neither live nor watched are not returned.
// Minutes waiting to be taken are kept at most kMaxPendingMinutes per channel
// (the oldest are dropped): call TakeClosedMinutes at least once a day, in
// practice every few seconds.
//
// Times: Unix milliseconds (the caller's clock; tests pass explicit times).
// Calls whose now_ms is a little earlier than an earlier call's (two threads
// that read the clock, then raced for the lock) are fine: a viewer keeps its
// latest time, and an event that arrives after its minute was closed counts in
// the current minute. Minutes never go backwards.
//
// Bounded memory:
//   - expired viewers are dropped as they expire, in time order, by every call
//     that touches their channel (Seen, Count, Counts, TakeClosedMinutes), and
//     every kSweepEvery Seen() calls of a shard sweep all of its channels, so a
//     channel nobody calls about any more is emptied too;
//   - a channel with no viewer, nothing pending and not live is removed;
//   - max_viewers_per_channel caps one channel: when it holds that many
//     active viewers, a new key replaces the viewer seen least recently, so
//     the count saturates at the cap (the true number is at least the cap) and
//     the tracked set stays the most recently seen viewers. About 100 bytes
//     plus the key per viewer.
//
// Thread safety: every method may be called from many threads at once.
// Channels are spread over kShards shards, each with its own mutex; Seen and
// Count lock one shard for O(1) amortised work (a hash lookup, a list splice,
// dropping the viewers that expired since). Counts and TakeClosedMinutes lock
// one shard at a time. No I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace earshot::playback {

// The maximum number of concurrent viewers of one channel during the minute
// [minute_start_s, minute_start_s + 60).
struct ViewerMinute {
  std::string channel_id;
  int64_t minute_start_s = 0;  // Unix seconds, a multiple of 60
  int64_t max_viewers = 0;

  friend bool operator==(const ViewerMinute&, const ViewerMinute&) = default;
};

class ViewerTracker {
 public:
  static constexpr size_t kShards = 16;
  static constexpr int64_t kMaxPendingMinutes = 24 * 60;
  static constexpr int64_t kMaxBackfillMinutes = 24 * 60;
  static constexpr uint64_t kSweepEvery = 4096;

  // idle_timeout_ms: how long after its last request a viewer still counts
  // (>= 1; smaller values are taken as 1). max_viewers_per_channel: the cap
  // described above (>= 1; 0 is taken as 1).
  explicit ViewerTracker(int64_t idle_timeout_ms = 60000, size_t max_viewers_per_channel = 1000000);

  ViewerTracker(const ViewerTracker&) = delete;
  ViewerTracker& operator=(const ViewerTracker&) = delete;

  // Marks `viewer_key` of `channel_id` active at now_ms.
  void Seen(std::string_view channel_id, std::string_view viewer_key, int64_t now_ms);

  // Active viewers of the channel at now_ms (0 for an unknown channel).
  int64_t Count(std::string_view channel_id, int64_t now_ms);

  // Every channel with >= 1 active viewer at now_ms, with its count.
  std::map<std::string, int64_t> Counts(int64_t now_ms);

  // Every minute that ended by now_ms and was not returned before (see the
  // rules above), ordered by channel id, then minute.
  std::vector<ViewerMinute> TakeClosedMinutes(int64_t now_ms,
                                              std::span<const std::string> live_channels);

  // Drops everything about the channel (deleted): its viewers and its minutes
  // not yet taken.
  void Forget(std::string_view channel_id);

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  struct Viewer {
    std::string key;
    int64_t last_seen_ms = 0;
  };
  using ViewerList = std::list<Viewer>;  // ordered by last_seen_ms, oldest first

  struct Channel {
    ViewerList viewers;
    std::unordered_map<std::string_view, ViewerList::iterator, StringHash, std::equal_to<>>
        by_key;                                       // views into the list's keys
    int64_t minute = 0;                               // the current (open) minute, Unix minutes
    int64_t minute_max = 0;                           // max of the count so far in `minute`
    int64_t next_report = 0;                          // the first minute not yet returned
    std::deque<std::pair<int64_t, int64_t>> pending;  // closed (minute, max > 0)
    bool live = false;                                // listed live by the latest TakeClosedMinutes
  };

  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Channel, StringHash, std::equal_to<>>
        channels;             // guarded by mu
    uint64_t seen_calls = 0;  // guarded by mu
  };

  Shard& ShardOf(std::string_view channel_id);
  // Drops the viewers of `c` gone at now_ms (REQUIRES: the shard's mutex).
  void Expire(Channel& c, int64_t now_ms) const;
  // Moves `c` to now_ms: closes the minutes that ended, then expires
  // (REQUIRES: the shard's mutex).
  void Advance(Channel& c, int64_t now_ms) const;
  // True when `c` holds nothing worth keeping.
  static bool Idle(const Channel& c);
  Channel NewChannel(int64_t now_ms) const;

  const int64_t idle_timeout_ms_;
  const size_t max_viewers_per_channel_;
  std::array<Shard, kShards> shards_;
};

}  // namespace earshot::playback
