// The nginx + nginx-rtmp configuration that `earshot nginx-config` prints:
// a complete nginx.conf (Debian nginx 1.22 + libnginx-mod-rtmp 1.2.2) for
// running nginx beside `earshot serve`:
//
//   rtmp, listen RTMP_LISTEN:RTMP_PORT
//     application INGEST_APP   publishers connect with their stream key as the
//         stream name; on_publish / on_publish_done / on_update go to
//         {hook_base_url}/on_publish ... earshot answers on_publish with a 302
//         to rtmp://127.0.0.1:PORT/RELAY_APP/<channel id> and nginx relays the
//         stream there (notify_relay_redirect off: the key stays a local name,
//         no HLS, no recording); a non-2xx on_update answer cuts the stream.
//     application RELAY_APP    only 127.0.0.1 (the relay) may publish, and
//         play (scanners); HLS into HLS_DIR named by channel id;
//         on_publish_done → {hook_base_url}/hls_publish_done.
//   http, listen HTTP_LISTEN:HTTP_PORT
//     HLS_LOCATION  the HLS folder, every request (playlist and segments)
//         behind auth_request to playback_auth_url, which sees X-Original-URI
//         (with ?token=), X-Real-IP and the viewer's Origin and User-Agent;
//         the playlist's segment URLs get the playlist's ?token= appended;
//         Access-Control-Allow-Origin is the origin earshot allowed (its
//         X-Earshot-Cors-Origin answer header), none when it allowed none.
//         With trusted_proxies, the viewer's address comes from
//         X-Forwarded-For (realip module).
//     /control (rtmp_control) and /stat (rtmp_stat): loopback only.
//
// Relative paths in the config (logs/, tmp/, the pid file) are relative to
// the prefix: start nginx with
//   mkdir -p RUN_DIR/logs RUN_DIR/tmp HLS_DIR
//   nginx -p RUN_DIR/ -e RUN_DIR/logs/error.log -c RUN_DIR/nginx.conf
// (-e keeps nginx from touching /var/log/nginx before it reads the config).
//
// Pure: builds text, no I/O. Thread safety: the functions are thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"

namespace earshot::ingest {

struct NginxConfigOptions {
  // --- files ------------------------------------------------------------
  // nginx's prefix (-p): logs/error.log, logs/access.log, logs/nginx.pid and
  // tmp/ live here. Absolute.
  std::string run_dir = "/var/lib/earshot/nginx";
  // Where the relay application writes HLS (<channel id>.m3u8, <channel
  // id>-N.ts). Absolute; the workers' user must be able to write it.
  std::string hls_dir = "/var/lib/earshot/hls";
  // load_module line; "" leaves it out (when the including nginx.conf loads
  // the module already). Absolute.
  std::string rtmp_module = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
  // `user` directive: "NAME" or "NAME GROUP"; "" leaves it out. Matters only
  // when nginx starts as root (workers otherwise run as `nobody`).
  std::string user;
  // false: `daemon off`, nginx stays in the foreground (systemd Type=simple,
  // or earshot supervising it).
  bool daemon = false;
  // error_log level. Every level below "crit" writes stream keys into
  // error.log: nginx-rtmp 1.2.2 logs each relayed publish ("notify: push
  // 'KEY' to 'rtmp://...'") at level "error", and "info" adds every publish
  // and play with its name. "crit" keeps keys out of it, at the cost of
  // nginx's ordinary error messages. (The RTMP access log never has the
  // key: the ingest application logs in a format without the stream name.)
  // The default is "crit" because stream keys are secrets and never logged;
  // raise it only while debugging nginx, then delete the log.
  std::string error_log_level = "crit";
  // events { worker_connections }: RTMP clients + HTTP viewers + hook calls
  // of the single worker; 16..65535.
  int worker_connections = 1024;

  // --- RTMP -------------------------------------------------------------
  // Address publishers reach. The relay and the scanners connect to
  // 127.0.0.1, so any address but 0.0.0.0, * or 127.0.0.1 gets a second
  // `listen 127.0.0.1:PORT`.
  std::string rtmp_listen = "0.0.0.0";
  int rtmp_port = 1935;
  std::string ingest_app = "ingest";  // A-Z a-z 0-9 _ - .
  std::string relay_app = "hls";      // A-Z a-z 0-9 _ - .; not ingest_app
  // Who may publish to ingest_app (`allow publish` entries: an address, a
  // CIDR or "all"); everyone else is denied. The stream key is the real
  // check. Not empty.
  std::vector<std::string> publish_allow = {"all"};
  // earshot's hook base URL; nginx-rtmp speaks plain http:// only. Hooks go
  // to {hook_base_url}/on_publish, /on_publish_done, /on_update and
  // /hls_publish_done.
  std::string hook_base_url = "http://127.0.0.1:8080/hooks/nginx";
  // Seconds between on_update calls for a live publisher (how fast a
  // revoked key or a stop cuts the stream at the latest); 1..3600.
  int notify_update_timeout_s = 10;
  // Seconds of silence after which nginx drops a publisher (half-open
  // connections would hold the channel); 1..3600.
  int drop_idle_publisher_s = 10;
  // HLS fragment length and playlist length, seconds. Shorter fragments:
  // lower latency, more requests (each one an auth request).
  // fragment 1..60, playlist fragment..3600.
  int hls_fragment_s = 2;
  int hls_playlist_length_s = 12;

  // --- HTTP -------------------------------------------------------------
  // Address viewers reach; like rtmp_listen, a non-wildcard address other
  // than 127.0.0.1 gets a second `listen 127.0.0.1:PORT` (for /control).
  std::string http_listen = "0.0.0.0";
  int http_port = 8088;
  // URL path prefix of the HLS folder ("/hls/": /hls/<channel id>.m3u8).
  std::string hls_location = "/hls/";
  // earshot's playback authorisation endpoint: 2xx lets a request through,
  // 401/403 refuse it. http:// or https://.
  std::string playback_auth_url = "http://127.0.0.1:8080/v1/playback/auth";
  // Reverse proxies / load balancers in front of nginx whose X-Forwarded-For
  // is believed (addresses or CIDRs; nginx's realip module). Empty: the
  // viewer's address is the TCP peer's. The address decides the country of
  // a restriction policy, so list only proxies you run.
  std::vector<std::string> trusted_proxies;
};

// kInvalidArgument naming the first bad option: relative paths, ports out of
// 1..65535 or equal, bad application names, URLs with the wrong scheme,
// values that could break out of an nginx directive (whitespace, ; { } # $
// quotes), numbers out of range.
Status ValidateNginxConfigOptions(const NginxConfigOptions& options);

// The whole nginx.conf (see above), after ValidateNginxConfigOptions.
Result<std::string> GenerateNginxConfig(const NginxConfigOptions& options);

}  // namespace earshot::ingest
