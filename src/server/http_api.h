// The HTTP surface of `earshot serve`: the /v1 JSON API (docs/openapi.json),
// the nginx-rtmp hooks (/hooks/nginx/...), /healthz, /readyz, /metrics.
//
// Authentication: every /v1 route except /v1/openapi.json needs
// `Authorization: Bearer <admin API key>`; hooks are accepted from the
// addresses in `hook_clients` only (nginx on the same machine by default).
//
// Thread safety: handlers run on cpp-httplib's worker threads and only
// touch thread-safe collaborators.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "common/error.h"
#include "queue/job_queue.h"
#include "server/config.h"
#include "server/control_plane.h"
#include "server/metrics.h"
#include "server/alarm_service.h"
#include "server/playback_service.h"
#include "state/state_store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace earshot::server {

struct HttpApiDeps {
  const ServeConfig* config = nullptr;
  state::StateStore* state = nullptr;
  queue::JobQueue* queue = nullptr;
  ControlPlane* control = nullptr;
  catalog::Catalog* catalog = nullptr;
  Metrics* metrics = nullptr;
  PlaybackService* playback = nullptr;
  AlarmService* alarms = nullptr;
  std::vector<std::string> hook_clients = {"127.0.0.1", "::1"};
};

// A route as registered: "GET", "/v1/channels/{channel_id}".
struct RouteInfo {
  std::string method;
  std::string path;
};

class HttpApi {
 public:
  explicit HttpApi(HttpApiDeps deps);
  ~HttpApi();  // Stop()
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Binds `host:port` (port 0: any free port) and serves on a background
  // thread. kUnavailable when the address cannot be bound.
  Status Start(const std::string& host, int port);
  // Stops accepting, ends live-event streams, joins the thread.
  void Stop();
  int port() const { return port_; }

  // Every route this server answers (for the OpenAPI check).
  const std::vector<RouteInfo>& routes() const { return routes_; }

 private:
  void Register();
  // Before a body is read: hooks only from hook_clients, /v1 only with a
  // valid API key, bodies at most 1 MiB but catalog uploads. False: `res`
  // holds the refusal.
  bool Screen(const httplib::Request& req, httplib::Response& res);
  bool IsHookClient(const httplib::Request& req) const;

  HttpApiDeps deps_;
  std::unique_ptr<httplib::Server> server_;
  std::vector<RouteInfo> routes_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> upload_counter_{0};
};

}  // namespace earshot::server
