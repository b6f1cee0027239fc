// A real nginx with the RTMP module (Debian's nginx + libnginx-mod-rtmp) for
// end-to-end tests: its own run folder, free ports on 127.0.0.1, HLS served
// over HTTP, and rtmp_control / rtmp_stat.
//
//   auto nginx = NginxRtmp::Start();                 // no hooks: publish freely
//   ASSERT_TRUE(nginx) << nginx.error().ToString();
//   ... publish to (*nginx)->rtmp_url("live", "stream") ...
//   auto playlist = (*nginx)->WaitForHlsSegments("live", "stream", 2, 20s);
//
// Run folder (removed at destruction unless EARSHOT_KEEP_TEST_DIRS=1):
//   nginx.conf, logs/ (error.log, access.log, nginx.out), tmp/,
//   hls/ (HLS of application `live`), ch/ (HLS of application `hls`, hooks mode).
//
// Two configurations:
//  * hooks off (default): application `live` with HLS (fragment 1 s, playlist
//    6 s), no on_* notifications. nginx-rtmp rejects publishers when a hook's
//    server is down, so this is what tests without a control plane want.
//  * hooks on (`hook_port` set): the layout of
//    /work/shared/reference/nginx-rtmp.example.conf — `live` (on_publish,
//    on_publish_done, on_play, on_play_done, on_update to http://127.0.0.1:
//    hook_port/<hook name>), `ingest` (on_publish may 302 to
//    rtmp://127.0.0.1:<rtmp_port>/hls/<channel>), `hls` (HLS under ch/), and
//    HTTP /hls/ and /ch/ behind auth_request to hook_port/auth.
// Both have /control (rtmp_control) and /stat (rtmp_stat), loopback only, and
// `worker_processes 1` so that control and stat see every session.
//
// When run as root, workers run as root too (`user` directive), so HLS can be
// written into a private temp folder that `nobody` could not reach.
//
// Thread safety: not thread-safe; HttpGet and the URL accessors are const and
// may be used concurrently with each other.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "support/ports.h"
#include "support/process.h"

namespace earshot::testing {

struct NginxRtmpOptions {
  // Port on 127.0.0.1 of the hook server (notifications and /auth). Unset:
  // no hooks at all (see above).
  std::optional<uint16_t> hook_port;
  int hls_fragment_s = 1;
  int hls_playlist_length_s = 6;
  // nginx-rtmp drops a publisher that sent nothing for this long (half-open
  // connections would otherwise hold the stream name).
  int drop_idle_publisher_s = 10;
  // Until both ports accept connections (and the HTTP port is this nginx).
  std::chrono::milliseconds start_timeout{15000};
  // SIGTERM, then this long, then SIGKILL.
  std::chrono::milliseconds stop_timeout{5000};
  // Empty: `nginx` from PATH or /usr/sbin.
  std::filesystem::path nginx_binary;
  std::filesystem::path rtmp_module = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
  // Writes the whole config instead of the built-in ones (e.g. the output of
  // `earshot nginx-config`), given the chosen ports and the run folder. The
  // config must run in the foreground (`daemon off`) with its pid and logs
  // under the run folder; readiness is then "both ports accept connections".
  std::function<Result<std::string>(uint16_t rtmp_port, uint16_t http_port,
                                    const std::filesystem::path& run_dir)>
      config_generator;
};

// A parsed HLS media playlist (only what tests look at).
struct HlsPlaylist {
  std::string text;
  int64_t media_sequence = 0;         // #EXT-X-MEDIA-SEQUENCE
  std::vector<std::string> segments;  // segment URIs, in order
  std::vector<double> durations_s;    // #EXTINF of each segment
  bool ended = false;                 // #EXT-X-ENDLIST (nginx-rtmp never writes it)

  // Sequence number of the last segment (media_sequence - 1 when empty).
  int64_t last_sequence() const {
    return media_sequence + static_cast<int64_t>(segments.size()) - 1;
  }
};
HlsPlaylist ParseHlsPlaylist(std::string_view text);

class NginxRtmp {
 public:
  // Writes the config and starts `nginx -p RUN/ -c RUN/nginx.conf` (daemon
  // off) as a child process; returns once both ports accept connections. A
  // port taken between choosing and binding is retried with new ports (3
  // tries). Fails with kFailedPrecondition, naming
  // `apt-get install nginx libnginx-mod-rtmp`, when nginx or the module is
  // missing; with the error log's tail when nginx does not come up.
  static Result<std::unique_ptr<NginxRtmp>> Start(NginxRtmpOptions options = {});

  NginxRtmp(const NginxRtmp&) = delete;
  NginxRtmp& operator=(const NginxRtmp&) = delete;
  // Stop(), then removes the run folder unless EARSHOT_KEEP_TEST_DIRS=1.
  ~NginxRtmp();

  uint16_t rtmp_port() const { return rtmp_port_; }
  uint16_t http_port() const { return http_port_; }
  const NginxRtmpOptions& options() const { return options_; }

  // rtmp://127.0.0.1:RTMP_PORT/APP/NAME
  std::string rtmp_url(std::string_view app, std::string_view name) const;
  // http://127.0.0.1:HTTP_PORT/hls/NAME.m3u8 for app `live`, .../ch/NAME.m3u8
  // for app `hls` (hooks mode); "" for an application without HLS.
  std::string hls_url(std::string_view app, std::string_view name) const;
  // http://127.0.0.1:HTTP_PORT + target (e.g. "/stat").
  std::string http_url(std::string_view target) const;

  // Where nginx writes the HLS of `app` ("" for an application without HLS).
  std::filesystem::path hls_dir(std::string_view app = "live") const;
  const std::filesystem::path& run_dir() const { return run_dir_.path(); }
  std::filesystem::path config_path() const { return run_dir() / "nginx.conf"; }
  std::filesystem::path error_log_path() const { return run_dir() / "logs" / "error.log"; }
  // The last lines of error.log, for failure messages.
  std::string ErrorLogTail(std::size_t lines = 30) const;

  // True while the nginx master process is alive.
  bool running();
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  // GET on the HTTP port (see HttpGet in ports.h).
  Result<HttpResponse> HttpGet(
      std::string_view target, std::chrono::milliseconds timeout = std::chrono::seconds(5),
      const std::vector<std::pair<std::string, std::string>>& extra_headers = {}) const;

  // Polls the playlist of APP/NAME over HTTP (every 100 ms, `query` appended to
  // the URL, e.g. "?token=...") until `done` accepts it. Fails with
  // kUnavailable after `timeout`, saying what it saw last.
  Result<HlsPlaylist> WaitForHls(std::string_view app, std::string_view name,
                                 const std::function<bool(const HlsPlaylist&)>& done,
                                 std::chrono::milliseconds timeout,
                                 std::string_view query = {}) const;
  // WaitForHls until the playlist lists at least `min_segments` segments.
  Result<HlsPlaylist> WaitForHlsSegments(std::string_view app, std::string_view name,
                                         std::size_t min_segments,
                                         std::chrono::milliseconds timeout) const;

  // Whether /stat shows a publisher on APP/NAME.
  Result<bool> IsPublishing(std::string_view app, std::string_view name) const;
  // Polls IsPublishing every 100 ms until it equals `publishing`.
  Status WaitForPublishing(std::string_view app, std::string_view name, bool publishing,
                           std::chrono::milliseconds timeout) const;

  // GET /control/drop/publisher?app=APP&name=NAME: the number of publishers
  // dropped (nginx-rtmp answers with it).
  Result<int> DropPublisher(std::string_view app, std::string_view name) const;

  // SIGTERM (fast shutdown), up to stop_timeout, then SIGKILL to the process
  // group. Fails (after killing it) when nginx had to be killed or exited
  // non-zero. Idempotent.
  Status Stop();

 private:
  NginxRtmp(NginxRtmpOptions options, ScopedTempDir run_dir)
      : options_(std::move(options)), run_dir_(std::move(run_dir)) {}

  std::string ConfigText() const;
  // One start attempt on the current ports. `retry` is set when the failure
  // was a port already in use.
  Status StartOnce(const std::filesystem::path& nginx, bool& retry);

  NginxRtmpOptions options_;
  ScopedTempDir run_dir_;
  std::string ready_token_;
  uint16_t rtmp_port_ = 0;
  uint16_t http_port_ = 0;
  std::optional<ChildProcess> process_;
};

}  // namespace earshot::testing
