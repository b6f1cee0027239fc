// The control plane's decisions: what an ingest hook is answered, what a
// stop does, what a match's business rule does. HTTP-free (the routes in
// http_api.cc translate), and used by both `earshot
// serve` (hooks, API, in-process workers) and `earshot worker` (rules only).
//
// Publishing (nginx-rtmp, see docs/control-plane.md):
//   on_publish (app = ingest_app, name = the stream key)
//     → key unknown: 403 · channel already live: 403, unless the live
//       session is stale (no on_update for 3 update intervals: ended first)
//     → a stream session (events Session Created, Stream Start), a scan job
//       (dedup key = stream id), and 302 to {rtmp_url}/{relay_app}/{channel}
//       so HLS is named by channel id and the key never becomes public.
//   on_update → 403 when the session was stopped or the key reset.
//   on_publish_done → the session ends (Stream End, Session Ended), its scan
//       job is cancelled. Hooks can come late, twice or out of order: a
//       publish_done for a client that never published is remembered (by
//       client id and key, for kTombstoneTtl) so that its late publish is
//       refused.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "common/time_format.h"
#include "control/rules.h"
#include "ingest/ingest_controller.h"
#include "ingest/nginx_hook.h"
#include "queue/job_queue.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/scan_workers.h"
#include "state/state_store.h"

namespace earshot::server {

struct ControlPlaneDeps {
  const ServeConfig* config = nullptr;
  state::StateStore* state = nullptr;
  queue::JobQueue* queue = nullptr;
  ingest::IngestController* ingest = nullptr;
  Metrics* metrics = nullptr;
  const catalog::Catalog* catalog = nullptr;  // for the track rule of a match
  std::function<void()> job_enqueued;         // optional: wake local workers
  // optional: a thumbnail was stored (e.g. the moderation hook)
  std::function<void(const ScanJob&, const scan::ThumbnailInfo&)> thumbnail_stored;
};

class ControlPlane : public ScanJobObserver {
 public:
  // How long a publish_done for an unknown client is remembered.
  // Reordered hooks are requests nginx has in flight at once: seconds apart.
  static constexpr std::chrono::seconds kTombstoneTtl{60};
  // A live session without on_update for this many update intervals is stale.
  static constexpr int kStaleUpdates = 3;

  explicit ControlPlane(ControlPlaneDeps deps);

  // --- nginx-rtmp hooks --------------------------------------------------
  ingest::HookAnswer OnPublish(const ingest::NginxHook& hook);
  ingest::HookAnswer OnPublishDone(const ingest::NginxHook& hook);
  ingest::HookAnswer OnUpdate(const ingest::NginxHook& hook);
  ingest::HookAnswer OnPlay(const ingest::NginxHook& hook);

  // --- API actions ---------------------------------------------------------
  // Stops the channel's live stream: the session is marked stopped (its
  // next on_update is refused), the publisher dropped through the ingest
  // server, the session ended and its scan cancelled. With `reset_key` the
  // key is replaced first, so the encoder's automatic reconnect fails.
  // kNotFound when the channel does not exist or is not live, or when
  // `only_stream_id` is given and is not the live stream (it ended; the
  // channel may be live again under a new stream id).
  Status StopStream(const std::string& channel_id, bool reset_key, const std::string& reason,
                    std::string_view only_stream_id = {});

  // The URL a scanner reads for a channel, and its public playback URL.
  std::string ScanInputUrl(const std::string& channel_id) const;
  std::string PlaybackUrl(const std::string& channel_id) const {
    return deps_.ingest->PlaybackUrl(channel_id);
  }

  // --- ScanJobObserver (worker loop thread) ---------------------------------
  void OnScanStarted(const ScanJob& job, int attempt) override;
  void OnConnected(const ScanJob& job, const media::AudioStreamInfo& info) override;
  void OnInputLost(const ScanJob& job, const std::string& reason) override;
  void OnResponse(const ScanJob& job, const nlohmann::json& response) override;
  void OnScanFinished(const ScanJob& job, const scan::ScanReport& report) override;
  // Records the stream's latest thumbnail (the stream resource shows it).
  void OnThumbnail(const ScanJob& job, const scan::ThumbnailInfo& info) override;

  // Ingest's update interval (on_update period), for staleness.
  void set_update_interval(std::chrono::seconds s) { update_interval_ = s; }

 private:
  ingest::HookAnswer PublishToIngest(const ingest::NginxHook& hook);
  // Applies the business rule of a match that just started.
  void ApplyRule(const ScanJob& job, const nlohmann::json& response);
  // Appends an event; a failure (database busy or full) is logged, not
  // returned: the caller's work (a scan, a hook) goes on.
  void AppendEventOrLog(control::EventType type, const std::string& channel_id,
                        const std::string& stream_id, const nlohmann::json& detail);
  static std::string TombstoneKey(const ingest::NginxHook& hook);
  bool Tombstoned(const ingest::NginxHook& hook);
  void Forget(const std::string& stream_id);  // an ended session's last update
  void Bury(const ingest::NginxHook& hook);
  control::BlockAction DefaultBlockAction() const;
  // For video matches and moderation verdicts (video.block_action).
  control::BlockAction VideoBlockAction() const;

  ControlPlaneDeps deps_;
  std::chrono::seconds update_interval_{10};
  std::mutex mutex_;
  std::map<std::string, std::chrono::steady_clock::time_point> tombstones_;  // GUARDED_BY(mutex_)
  std::map<std::string, int64_t> last_update_ms_;  // by stream id; GUARDED_BY(mutex_)
  const int64_t created_ms_ = UnixMillisNow();  // when this control plane started
};

}  // namespace earshot::server
