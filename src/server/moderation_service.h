// The moderation hook: every stored thumbnail of a live stream is sent to the
// operator's own image-classification service (delivery::ModerationClient)
// and its verdict is acted on like a business rule.
//
//   allow  nothing happens (counted)
//   flag   an identification with match_type "moderation" and rule "track":
//          recorded and sent to subscribers, the stream goes on
//   block  the same with rule "block": the control plane applies the video
//          block action (video.block_action, default stop_and_reset_key;
//          a channel's own rules still win)
//
// One thread sends requests; per stream only the newest waiting thumbnail is
// kept (a slow service sees the latest picture, never a backlog), and a
// stream that was blocked is not sent again. A service that is down costs a
// log line (at most one per stream per minute) and the thumbnail: the next
// one is tried.
//
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "delivery/moderation_client.h"
#include "scan/scan_session.h"
#include "server/scan_workers.h"

namespace earshot::server {

struct ModerationStats {
  uint64_t sent = 0;
  uint64_t failed = 0;
  uint64_t allow = 0;
  uint64_t flag = 0;
  uint64_t block = 0;
  uint64_t skipped = 0;  // replaced by a newer thumbnail before it was sent
};

// The identification response a flag or block verdict becomes (pure).
// `sequence` numbers the verdicts of one stream.
nlohmann::json ModerationResponse(const ScanJob& job, const scan::ThumbnailInfo& thumbnail,
                                  const delivery::ModerationResult& result, uint64_t sequence);

class ModerationService {
 public:
  // `on_verdict` gets the response of every flag/block verdict (from the
  // service's thread); `results_dir` is where thumbnails are read from
  // (RESULTS/{stream_id}/{file}).
  ModerationService(delivery::ModerationClient client, std::filesystem::path results_dir,
                    std::function<void(const ScanJob&, const nlohmann::json&)> on_verdict);
  ~ModerationService();  // Stop()
  ModerationService(const ModerationService&) = delete;
  ModerationService& operator=(const ModerationService&) = delete;

  void Start();
  // Ends the thread; thumbnails still waiting are dropped.
  void Stop();

  // Queues the stored thumbnail (replacing one of the same stream still
  // waiting).
  void Submit(const ScanJob& job, const scan::ThumbnailInfo& thumbnail);

  ModerationStats stats() const;

 private:
  struct Pending {
    ScanJob job;
    scan::ThumbnailInfo thumbnail;  // jpeg span empty: read from the file
  };
  void Run();
  void Handle(const Pending& pending);

  delivery::ModerationClient client_;
  std::filesystem::path results_dir_;
  std::function<void(const ScanJob&, const nlohmann::json&)> on_verdict_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Pending> pending_;   // by stream id; GUARDED_BY(mutex_)
  std::set<std::string> blocked_;            // streams blocked; GUARDED_BY(mutex_)
  std::map<std::string, uint64_t> verdicts_;  // flag/block count per stream; GUARDED_BY(mutex_)
  // Last warning per stream; GUARDED_BY(mutex_), at most ~10,000 streams.
  std::map<std::string, std::chrono::steady_clock::time_point> last_error_log_;
  ModerationStats stats_;                    // GUARDED_BY(mutex_)
  bool stopping_ = false;                    // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace earshot::server
