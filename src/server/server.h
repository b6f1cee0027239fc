// One earshot control-plane process, assembled from its parts:
//
//   kServe   HTTP API + ingest hooks + metrics, and `workers` in-process scan
//            workers (the embedded default: one binary, SQLite, local folders).
//   kWorker  scan workers only, against the same state database and queue
//            (`earshot worker`): more processes = more streams scanned.
//
// Owns (in construction order): state store, job queue, ingest controller,
// catalog, outbox, control plane, event dispatcher, scan workers, scanner,
// HTTP server.
//
// Thread safety: Open/Start/Shutdown from one thread.
#pragma once

#include <memory>
#include <string>

#include "catalog/catalog.h"
#include "common/error.h"
#include "delivery/outbox.h"
#include "ingest/ingest_controller.h"
#include "queue/job_queue.h"
#include "scan/scanner.h"
#include "server/config.h"
#include "server/control_plane.h"
#include "server/moderation_service.h"
#include "server/event_dispatcher.h"
#include "server/http_api.h"
#include "server/metrics.h"
#include "server/scan_workers.h"
#include "state/state_store.h"

namespace earshot::server {

enum class ServerRole { kServe, kWorker };

class EarshotServer {
 public:
  // Opens every store (creating data_dir and the catalog folder when
  // missing). Errors name the setting to fix.
  static Result<std::unique_ptr<EarshotServer>> Open(const ServeConfig& config, ServerRole role);
  ~EarshotServer();  // Shutdown()

  // Binds the HTTP port (kServe) and starts the workers.
  Status Start();
  // Stops taking work, lets running scans flush for shutdown_grace_s, gives
  // their jobs back to the queue, drains deliveries briefly. Idempotent.
  void Shutdown();

  int http_port() const { return http_ ? http_->port() : 0; }
  const ServeConfig& config() const { return config_; }
  state::StateStore& state() { return *state_; }
  queue::JobQueue& queue() { return *queue_; }

 private:
  EarshotServer(ServeConfig config, ServerRole role);
  std::shared_ptr<const recognition::Matcher> NewMatcher();

  ServeConfig config_;
  ServerRole role_;
  Metrics metrics_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<queue::JobQueue> queue_;
  std::unique_ptr<ingest::IngestController> ingest_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::shared_ptr<const void> fallback_matcher_;  // ScanShared needs one; jobs bring their own
  std::unique_ptr<delivery::Outbox> outbox_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<ModerationService> moderation_;  // when video.moderation_url is set
  std::unique_ptr<PlaybackService> playback_;  // serve role only
  std::unique_ptr<AlarmService> alarms_;       // serve role only
  std::unique_ptr<EventDispatcher> dispatcher_;
  std::unique_ptr<ScanWorkers> workers_;
  std::unique_ptr<scan::Scanner> scanner_;  // after workers_: destroyed first (its sessions call workers_)
  std::unique_ptr<HttpApi> http_;
  bool shut_down_ = false;
};

}  // namespace earshot::server
