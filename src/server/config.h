// Settings of `earshot serve` and `earshot worker`: one declarative table
// (config.cc) gives every key its TOML name, its environment variable, its
// default and its help text; the reference config (docs/earshot.toml) is
// generated from it and a test checks that the file in the repository matches.
//
// Precedence: built-in defaults < the TOML file < EARSHOT_* environment
// variables (EARSHOT_<SECTION>_<KEY>, upper case, e.g. EARSHOT_SERVER_LISTEN).
// List values in the environment are comma-separated.
//
// Thread safety: ServeConfig is a plain value; load it once and share it const.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace earshot::server {

struct ServeConfig {
  // [server]
  std::string listen = "127.0.0.1:8080";   // HOST:PORT of the HTTP API and the ingest hooks
  std::string data_dir = "earshot-data";    // state.db, results/, spool; created if missing
  std::string catalog_dir = "earshot-catalog";
  int http_threads = 16;                    // HTTP request threads (SSE clients and nginx's kept-alive auth connections each hold one)
  double shutdown_grace_s = 20;             // SIGTERM: how long running scans get to flush

  // [state] and [queue]
  std::string state_url;                    // "" = sqlite:{data_dir}/state.db
  std::string queue_url;                    // "" = the state database
  double lease_s = 30;                      // job visibility timeout; heartbeats every lease_s/3
  int max_attempts = 5;                     // scan attempts before a job is dead
  double retry_backoff_s = 2;               // first retry delay; doubles, at most 5 minutes

  // [workers]
  int workers = 4;                          // scan jobs this process runs at once; 0 = API only
  int scan_threads = 2;                     // scanner pool threads (decode + recognise)
  double poll_s = 1;                        // idle workers look for jobs this often

  // [scan]
  double stall_timeout_s = 10;
  int reconnects = 5;
  double reconnect_backoff_s = 1;
  double ongoing_every_s = 30;

  // [ingest]
  std::string ingest_kind = "nginx-rtmp";
  std::string rtmp_url = "rtmp://127.0.0.1:1935";        // the ingest server's RTMP base URL
  std::string rtmp_listen = "0.0.0.0";                    // nginx's RTMP listen address
  std::string ingest_app = "ingest";                      // publishers connect here with their key
  std::string relay_app = "hls";                          // relayed copy, named by channel id
  std::string control_url = "http://127.0.0.1:8088/control";
  std::string playback_url = "http://127.0.0.1:8088/hls";  // public HLS base (for the API)
  std::string hls_dir = "earshot-data/hls";               // where nginx writes HLS (nginx-config)

  // [playback]
  int max_playback_keys = 3;                // imported playback public keys at most
  std::string geoip_database;               // MaxMind country DB (.mmdb); "" = no country checks
  double viewer_idle_s = 60;                // a viewer unseen this long has left
  std::vector<std::string> trusted_proxies; // proxies whose X-Forwarded-For nginx believes

  // [rules]
  std::string block_action = "stop";        // notify | stop | stop_and_reset_key

  // [video]
  double thumbnail_every_s = 10;            // a JPEG thumbnail of every live stream this often; 0 = none
  int thumbnail_width = 320;                // pixels
  std::string video_block_action = "stop_and_reset_key";  // a `block` video match or moderation verdict
  std::string moderation_url;               // POST thumbnails here for a verdict; "" = no moderation
  std::string moderation_secret_env;        // EARSHOT_* variable holding the HMAC key (optional)
  double moderation_timeout_s = 5;

  // [delivery]
  std::vector<std::string> sinks;           // result sinks, as `earshot scan --sink`
  std::vector<std::string> notify;          // notifiers, as `earshot scan --notify`

  // [log]
  std::string log_level = "info";

  // Derived: the state/queue URLs with their defaults applied.
  std::string StateUrl() const;
  std::string QueueUrl() const;
  std::filesystem::path ResultsDir() const { return std::filesystem::path(data_dir) / "results"; }
};

// Loads `path` (may be empty: defaults + environment only) and applies
// `env` (pass the process environment; tests pass their own). Errors name the
// file, the key and what is wrong: unknown keys, wrong types, bad values.
Result<ServeConfig> LoadServeConfig(const std::filesystem::path& path,
                                    const std::map<std::string, std::string>& env);

// The process environment's EARSHOT_* variables.
std::map<std::string, std::string> EarshotEnvironment();

// Checks values that have a fixed vocabulary or range.
Status ValidateServeConfig(const ServeConfig& config);

// The reference config: every key, commented, with its default and its
// environment variable (docs/earshot.toml).
std::string ReferenceConfig();

// `config` as TOML (every key), for `earshot serve --print-config`.
std::string ConfigToToml(const ServeConfig& config);

}  // namespace earshot::server
