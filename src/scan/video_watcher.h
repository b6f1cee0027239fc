// The video side of one stream scan: a thread that reads the stream's video
// (sampled, low-resolution decode), fingerprints and matches the frames
// against the catalog's video references, and hands what it found to the
// scan session: match events (started / ongoing / ended, as VideoMatchTracker
// makes them) and, every thumbnail_every_ms, a JPEG thumbnail.
//
// Why a thread of its own: the session's audio side is driven by the
// scanner's pool without blocking; the video reader blocks on its input
// (with a stall timeout and cancellation), so it gets a thread, and the
// session picks up its events when `wake` says there are some.
//
// Stream time: for a file, the frames' presentation time. For a network
// input, the time since the watcher started when each connection was made
// plus the frames' presentation time in that connection, so a reconnect keeps
// stream time moving forward (as the audio side does, within the
// reconnect's gap).
//
// Sampling: with params.adaptive and matching on, only key frames are
// decoded until a frame has an index hit; then frames are sampled at
// params.query_fps for params.dense_hold_s of stream time after the last hit
// and while a match is open. Thumbnail-only watchers decode key frames only,
// at most one per thumbnail interval.
//
// Network inputs are reconnected like the audio side (backoff doubling up to
// max_backoff_s, at most max_reconnects failed attempts in a row). A file
// input read `realtime` is paced at real time.
//
// Thread safety: all public methods may be called from any thread. The
// index is shared (read only); it must not change while the watcher runs
// (the catalog hands out immutable snapshots).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "recognition/stream_recognizer.h"
#include "video/hash_index.h"
#include "video/video_params.h"

namespace earshot::scan {

struct VideoWatchOptions {
  std::string url;                 // what VideoFrameReader opens ("pipe:0" for stdin)
  std::string display_name;        // for logs (redacted URL)
  std::string stream_id;           // for logs
  bool network = false;
  bool realtime = false;           // file input: pace at real time
  double stall_timeout_s = 10;
  int max_reconnects = 3;
  double reconnect_backoff_s = 1;
  double max_backoff_s = 16;
  std::map<std::string, std::string> format_options;
  video::VideoParams params;
  // Match against the index (false: thumbnails only).
  bool match = true;
  int64_t thumbnail_every_ms = 0;  // 0: no thumbnails
  int thumbnail_width = 320;
};

// One thing the watcher found, in stream order.
struct VideoWatchItem {
  enum class Kind { kMatch, kThumbnail };
  Kind kind = Kind::kMatch;
  recognition::StreamEvent event;  // kMatch: track = video reference id
  int64_t start_wall_ms = 0;       // kMatch: when the frame at event.start_seconds arrived
  int64_t end_wall_ms = 0;         // kMatch: ... at event.end_seconds
  double stream_s = 0;             // kThumbnail: stream time of the frame
  int64_t wall_ms = 0;             // kThumbnail: when it arrived (Unix ms)
  std::vector<uint8_t> jpeg;       // kThumbnail
};

struct VideoWatchStats {
  uint64_t frames = 0;           // sampled frames hashed
  uint64_t damaged_packets = 0;
  uint64_t reconnects = 0;
  double stream_seconds = 0;     // stream time of the newest frame
};

class VideoWatcher {
 public:
  // Starts the thread. `index` must be non-null when options.match; `wake`
  // is called (from the watcher thread) after items were queued and when the
  // watcher ends; it must be cheap and thread-safe.
  static std::unique_ptr<VideoWatcher> Start(VideoWatchOptions options,
                                             std::shared_ptr<const video::HashIndex> index,
                                             std::function<void()> wake);
  // Cancels and joins.
  ~VideoWatcher();
  VideoWatcher(const VideoWatcher&) = delete;
  VideoWatcher& operator=(const VideoWatcher&) = delete;

  // Asks the thread to stop soon (blocking reads are abandoned); open
  // matches are ended. Does not wait.
  void Cancel();
  // Cancels and waits for the thread to end.
  void Join();

  // Takes everything queued so far (oldest first).
  std::vector<VideoWatchItem> Take();

  // True once the thread has ended (input over, cancelled or failed) and
  // queued its last items.
  bool done() const { return done_.load(); }
  // Why the watcher ended early: the input had no video, or could not be
  // read at all. nullopt after a normal end or a cancel.
  std::optional<Error> error() const;
  VideoWatchStats stats() const;

 private:
  VideoWatcher(VideoWatchOptions options, std::shared_ptr<const video::HashIndex> index,
               std::function<void()> wake);
  void Run();
  void Push(std::vector<VideoWatchItem> items);
  bool SleepFor(double seconds);  // false when cancelled meanwhile

  VideoWatchOptions options_;
  std::shared_ptr<const video::HashIndex> index_;
  std::function<void()> wake_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> done_{false};
  mutable std::mutex mutex_;
  std::condition_variable cancelled_;
  std::deque<VideoWatchItem> queue_;  // GUARDED_BY(mutex_)
  std::optional<Error> error_;        // GUARDED_BY(mutex_)
  VideoWatchStats stats_;             // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace earshot::scan
