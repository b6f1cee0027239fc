#include "scan/video_watcher.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/log.h"
#include "common/time_format.h"
#include "media/video_frame_reader.h"
#include "scan/stream_clock.h"
#include "scan/video_match_tracker.h"
#include "video/frame_hash.h"
#include "video/video_matcher.h"

namespace earshot::scan {
namespace {

using Clock = std::chrono::steady_clock;

// Thumbnails waiting for the session beyond this many are dropped (oldest
// first); match events are never dropped.
constexpr size_t kMaxQueuedThumbnails = 16;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

std::unique_ptr<VideoWatcher> VideoWatcher::Start(VideoWatchOptions options,
                                                  std::shared_ptr<const video::HashIndex> index,
                                                  std::function<void()> wake) {
  std::unique_ptr<VideoWatcher> w(
      new VideoWatcher(std::move(options), std::move(index), std::move(wake)));
  w->thread_ = std::thread([raw = w.get()] { raw->Run(); });
  return w;
}

VideoWatcher::VideoWatcher(VideoWatchOptions options,
                           std::shared_ptr<const video::HashIndex> index,
                           std::function<void()> wake)
    : options_(std::move(options)), index_(std::move(index)), wake_(std::move(wake)) {
  if (options_.match && index_ == nullptr) options_.match = false;
}

VideoWatcher::~VideoWatcher() { Join(); }

void VideoWatcher::Cancel() {
  cancel_.store(true);
  std::lock_guard lock(mutex_);
  cancelled_.notify_all();
}

void VideoWatcher::Join() {
  Cancel();
  if (thread_.joinable()) thread_.join();
}

std::vector<VideoWatchItem> VideoWatcher::Take() {
  std::lock_guard lock(mutex_);
  std::vector<VideoWatchItem> out(std::make_move_iterator(queue_.begin()),
                                  std::make_move_iterator(queue_.end()));
  queue_.clear();
  return out;
}

std::optional<Error> VideoWatcher::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

VideoWatchStats VideoWatcher::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void VideoWatcher::Push(std::vector<VideoWatchItem> items) {
  if (items.empty()) return;
  {
    std::lock_guard lock(mutex_);
    for (VideoWatchItem& item : items) queue_.push_back(std::move(item));
    size_t thumbnails = 0;
    for (const VideoWatchItem& item : queue_) thumbnails += item.kind == VideoWatchItem::Kind::kThumbnail;
    for (auto it = queue_.begin(); thumbnails > kMaxQueuedThumbnails && it != queue_.end();) {
      if (it->kind == VideoWatchItem::Kind::kThumbnail) {
        it = queue_.erase(it);
        --thumbnails;
      } else {
        ++it;
      }
    }
  }
  if (wake_) wake_();
}

bool VideoWatcher::SleepFor(double seconds) {
  std::unique_lock lock(mutex_);
  cancelled_.wait_for(lock, std::chrono::duration<double>(std::max(0.0, seconds)),
                      [this] { return cancel_.load(); });
  return !cancel_.load();
}

void VideoWatcher::Run() {
  const auto started = Clock::now();
  const video::VideoParams& params = options_.params;
  std::optional<video::VideoMatcher> matcher;
  if (options_.match) matcher.emplace(*index_, params.matcher);
  const double end_after_s =
      std::max(25.0, 2.5 * static_cast<double>(params.matcher.repeat_ms) / 1000.0);
  VideoMatchTracker tracker(end_after_s);
  StreamClock clock;
  std::vector<recognition::StreamEvent> events;
  std::optional<Error> failure;
  int failed_attempts = 0;
  bool connected_before = false;
  double last_s = 0;
  uint64_t damaged = 0;
  // Adaptive sampling (see VideoParams::adaptive): key frames only, dense
  // until this stream time after an index hit. Thumbnail-only watchers
  // decode key frames only, too. Either only while key frames come often
  // enough (each connection starts dense until two were seen).
  const bool adaptive = matcher.has_value() && params.adaptive;
  const bool thumbnails_only = !matcher && options_.thumbnail_every_ms > 0;
  double max_key_interval_ms = 0;
  if (adaptive) max_key_interval_ms = params.adaptive_max_key_interval_s * 1000.0;
  if (thumbnails_only) {
    max_key_interval_ms = std::max(static_cast<double>(options_.thumbnail_every_ms),
                                   params.adaptive_max_key_interval_s * 1000.0);
  }
  double dense_until_s = -1;

  auto match_items = [&](std::vector<VideoWatchItem>& items) {
    for (const recognition::StreamEvent& e : events) {
      VideoWatchItem item;
      item.kind = VideoWatchItem::Kind::kMatch;
      item.event = e;
      item.start_wall_ms = clock.WallMillis(e.start_seconds);
      item.end_wall_ms = clock.WallMillis(e.end_seconds);
      items.push_back(std::move(item));
    }
    events.clear();
  };

  while (!cancel_.load()) {
    media::VideoReadOptions read;
    read.fps = params.query_fps;
    // Thumbnails only: as few frames as the thumbnail cadence needs.
    if (thumbnails_only) read.fps = 1000.0 / static_cast<double>(options_.thumbnail_every_ms);
    read.max_width = params.max_width;
    read.threads = 1;
    read.cancel = &cancel_;
    read.format_options = options_.format_options;
    read.thumbnail_every_ms = options_.thumbnail_every_ms;
    read.thumbnail_width = options_.thumbnail_width;
    if (options_.network) read.stall_timeout_s = options_.stall_timeout_s;
    // Stream time of this connection's first frame.
    const double base_s = options_.network ? std::max(last_s, SecondsSince(started)) : 0.0;
    auto reader = media::VideoFrameReader::Open(options_.url, read);
    bool lost = false;
    if (!reader) {
      if (cancel_.load()) break;
      // No video stream, or a file that cannot be read: nothing to retry.
      if (!options_.network || reader.error().code() == ErrorCode::kUnsupported) {
        failure = reader.error();
        break;
      }
      lost = true;
      failure = reader.error();
    } else {
      if (connected_before) {
        std::lock_guard lock(mutex_);
        ++stats_.reconnects;
      }
      connected_before = true;
      video::ContentTracker content;
      double last_hashed_s = -1;
      media::VideoFrame frame;
      while (!cancel_.load()) {
        auto more = (*reader)->Next(frame);
        if (!more) {
          if (cancel_.load() || more.error().code() == ErrorCode::kCancelled) break;
          failure = more.error();
          lost = true;
          break;
        }
        if (!*more) {
          lost = true;
          failure.reset();
          break;
        }
        failed_attempts = 0;
        const double t = std::max(last_s, base_s + static_cast<double>(frame.pts_ms) / 1000.0);
        last_s = t;
        if (options_.realtime && !options_.network) {
          const double ahead = t - SecondsSince(started);
          if (ahead > 0 && !SleepFor(ahead)) break;
        }
        clock.Record(t, UnixMillisNow());
        std::vector<VideoWatchItem> items;
        if (!frame.thumbnail_jpeg.empty()) {
          VideoWatchItem thumb;
          thumb.kind = VideoWatchItem::Kind::kThumbnail;
          thumb.stream_s = t;
          thumb.wall_ms = UnixMillisNow();
          thumb.jpeg = std::move(frame.thumbnail_jpeg);
          frame.thumbnail_jpeg.clear();
          items.push_back(std::move(thumb));
        }
        if (matcher) {
          const video::LumaPlane plane{frame.luma.data(), frame.width, frame.height, frame.width};
          if (frame.width >= video::kMinPlaneSide && frame.height >= video::kMinPlaneSide) {
            // The border tracker follows about a fixed stretch of stream
            // time: a frame stands for the query_fps samples it replaces
            // (several in key-frame mode).
            const double since_s = last_hashed_s < 0 ? 0 : t - last_hashed_s;
            const long weight = std::clamp(std::lround(since_s * params.query_fps), 1L, 8L);
            for (long i = 1; i < weight; ++i) content.Update(plane);
            const video::PixelRect rect = content.Update(plane);
            last_hashed_s = t;
            auto hashes = video::HashQueryFrame(plane, params.hash, &rect);
            if (hashes) {
              const auto found = matcher->Feed(static_cast<int64_t>(std::llround(t * 1000.0)), *hashes);
              tracker.Update(t, found, events);
              match_items(items);
              if (matcher->last_hit_count() > 0) dense_until_s = t + params.dense_hold_s;
            }
          }
        }
        if (adaptive || thumbnails_only) {
          const int64_t key_interval_ms = (*reader)->key_interval_ms();
          const bool keys_often = key_interval_ms > 0 &&
                                  static_cast<double>(key_interval_ms) <= max_key_interval_ms;
          const bool hold = adaptive && (tracker.open_matches() > 0 || t < dense_until_s);
          const bool keys_only = keys_often && !hold;
          if (keys_only != (*reader)->keyframes_only()) (*reader)->SetKeyframesOnly(keys_only);
        }
        {
          std::lock_guard lock(mutex_);
          ++stats_.frames;
          stats_.stream_seconds = t;
        }
        Push(std::move(items));
      }
      damaged += (*reader)->damaged_packets();
      {
        std::lock_guard lock(mutex_);
        stats_.damaged_packets = damaged;
      }
      reader->reset();
    }
    if (cancel_.load() || !options_.network) break;
    if (!lost) break;
    ++failed_attempts;
    if (failed_attempts > options_.max_reconnects) break;
    const double backoff =
        std::min(options_.max_backoff_s,
                 options_.reconnect_backoff_s * std::pow(2.0, std::min(failed_attempts - 1, 30)));
    Log(LogLevel::kDebug, "video input lost; reconnecting",
        {{"stream_id", options_.stream_id}, {"attempt", failed_attempts}, {"in_s", backoff},
         {"reason", failure ? failure->ToString() : options_.display_name + " ended"}});
    if (!SleepFor(backoff)) break;
  }
  tracker.Finish(events);
  std::vector<VideoWatchItem> items;
  match_items(items);
  {
    std::lock_guard lock(mutex_);
    for (VideoWatchItem& item : items) queue_.push_back(std::move(item));
    // A normal end (input over, cancelled) is no error; a network input that
    // stayed away after frames came is an end too.
    if (failure && !(connected_before && options_.network) && !cancel_.load()) error_ = failure;
    if (failure && failure->code() == ErrorCode::kUnsupported) error_ = failure;
  }
  done_.store(true);
  if (wake_) wake_();
}

}  // namespace earshot::scan
