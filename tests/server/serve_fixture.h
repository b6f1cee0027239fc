// The end-to-end fixture of `earshot serve`: real nginx-rtmp running the
// config `earshot nginx-config` generates, real `earshot serve` (and `earshot
// worker`) processes, ffmpeg publishers, and a catalog of Debian's wesnoth
// music with test media of it under a synthetic voice. Shared by the
// *_e2e_test.cc files of tests/server.
//
//   class MyE2eTest : public e2e::ServeE2eTest {};
//   TEST_F(MyE2eTest, Something) {
//     auto d = Deploy("something");                  // nginx + serve, an API key
//     auto [channel, key] = CreateChannel(*d, {{"name", "x"}});
//     auto publisher = Publish(*d, block_media_, key);
//     auto start = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream Start", channel);
//     }, 20s);
//   }
//
// The suite's folder, catalog (3 tracks) and media are made once per process,
// by the first test that runs (a failure there fails that test), and removed
// at process exit (unless EARSHOT_KEEP_TEST_DIRS=1). Every deployment lives in
// its own sub-folder and goes away (processes killed) with its Deployment.
//
// All traffic is on 127.0.0.1; every wait is bounded.
//
// Thread safety: tests run on gtest's main thread; a Deployment's methods
// may be called from one thread at a time. EventFeed is internally locked.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/ffmpeg_publisher.h"
#include "support/nginx_rtmp.h"
#include "support/process.h"

namespace earshot::server::e2e {

namespace support = ::earshot::testing;
using Clock = std::chrono::steady_clock;

struct ApiResponse {
  long status = 0;      // 0: no answer (transport error in `text`)
  nlohmann::json body;  // discarded (is_discarded()) when the body is not JSON
  std::string text;     // the raw body
  std::string content_type;
};

// One deployment: nginx-rtmp (generated config) + earshot serve.
struct Deployment {
  std::filesystem::path dir;     // this deployment's folder (config, logs, data, hls)
  std::filesystem::path config;  // dir/earshot.toml
  uint16_t api_port = 0;
  std::unique_ptr<support::NginxRtmp> nginx;
  std::optional<support::ChildProcess> serve;
  std::string api_key;
  int64_t cursor = 0;                   // events seen so far by WaitForEvent
  std::vector<nlohmann::json> history;  // every event WaitForEvent has read, in order

  std::filesystem::path data_dir() const { return dir / "data"; }
  std::string api_url(const std::string& path) const;

  // A JSON call (`body` null: none sent) with the API key unless !auth.
  ApiResponse Call(const std::string& method, const std::string& path,
                   const nlohmann::json& body = nullptr, bool auth = true) const;
  // A call with a body of any type (e.g. multipart/form-data), with the API key.
  ApiResponse CallRaw(const std::string& method, const std::string& path,
                      const std::string& content_type, const std::string& body) const;

  // Posts an nginx-rtmp style hook form; the HTTP status (0: no answer).
  long Hook(const std::string& name, const std::string& form) const;

  // Events after the cursor until one satisfies `want` (every event seen
  // goes into `seen`); nullopt after `timeout`.
  std::optional<nlohmann::json> WaitForEvent(const std::function<bool(const nlohmann::json&)>& want,
                                             std::chrono::milliseconds timeout,
                                             std::vector<nlohmann::json>* seen = nullptr);
  // The first event of `history` that satisfies `want`, else WaitForEvent(want, timeout).
  std::optional<nlohmann::json> FindOrWaitForEvent(
      const std::function<bool(const nlohmann::json&)>& want, std::chrono::milliseconds timeout);

  // rtmp://127.0.0.1:PORT/ingest/KEY
  std::string rtmp_ingest_url(const std::string& key) const;

  // serve.log, for failure messages.
  std::string ServeLog() const;
};

struct DeployOptions {
  int workers = 1;
  double lease_s = 30;
  std::string block_action = "stop";  // [rules] block_action
  // [server] catalog_dir; empty: the suite's catalog (shared by every
  // deployment of the process: tests must not change it).
  std::filesystem::path catalog_dir = {};
  // Appended to the generated earshot.toml verbatim (e.g. a [playback] table).
  std::string extra_toml = {};
};

// The Server-Sent Events feed GET /v1/events/stream{query}, read by a thread
// of its own (libcurl) from Open() until destruction, for at most
// `max_duration`. Each event is kept with the time it arrived.
class EventFeed {
 public:
  struct Received {
    int64_t id = 0;        // the SSE `id:` field
    std::string name;      // the SSE `event:` field
    nlohmann::json event;  // the `data:` field, parsed
    Clock::time_point at;  // when it arrived
  };

  // `query` starts with '?' or is empty; `headers` are extra "Name: value"
  // request headers (e.g. "Last-Event-ID: 12").
  static std::unique_ptr<EventFeed> Open(
      const Deployment& d, const std::string& query, std::vector<std::string> headers = {},
      std::chrono::milliseconds max_duration = std::chrono::minutes(3));
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;
  ~EventFeed();  // aborts the transfer and joins the thread

  // True once the response header came (with `status`), false after `timeout`.
  bool WaitConnected(std::chrono::milliseconds timeout);
  long status() const;
  std::string content_type() const;
  // The first received event (from the start of the feed) that satisfies
  // `want`, waiting up to `timeout` for it.
  std::optional<Received> WaitFor(const std::function<bool(const nlohmann::json&)>& want,
                                  std::chrono::milliseconds timeout);
  std::vector<Received> Events() const;
  // Why the transfer ended, once it has ("" while it runs).
  std::string end_reason() const;

 private:
  EventFeed() = default;
  void Run(const std::string& url, const std::vector<std::string>& headers,
           std::chrono::milliseconds max_duration);
  void OnBytes(const char* data, size_t size);
  static size_t WriteCallback(char* data, size_t size, size_t count, void* self);
  static size_t HeaderCallback(char* data, size_t size, size_t count, void* self);
  static int ProgressCallback(void* self, int64_t, int64_t, int64_t, int64_t);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};
  long status_ = 0;               // guarded by mu_
  std::string content_type_;      // guarded by mu_
  bool connected_ = false;        // guarded by mu_
  std::string pending_;           // bytes of an incomplete event; feed thread only
  std::vector<Received> events_;  // guarded by mu_
  std::string end_reason_;        // guarded by mu_
  std::thread thread_;
};

class ServeE2eTest : public ::testing::Test {
 protected:
  // Makes the suite's catalog and media on first use in this process.
  void SetUp() override;

  static void PrepareSuite();

  static std::filesystem::path Dir();  // the suite's folder
  static std::filesystem::path
  Catalog();  // Dir()/catalog: battle (block), knolls (mute), wanderer (track)

  // Writes the config for `d` with the current ports.
  static void WriteConfig(Deployment& d, const DeployOptions& o, uint16_t rtmp_port,
                          uint16_t http_port);
  static support::ChildProcess StartEarshot(const Deployment& d, const std::string& command,
                                            const std::string& log_name);
  static bool WaitHealthy(const Deployment& d, std::chrono::milliseconds timeout);

  // nginx with the generated config, an API key, `earshot serve`; null (and
  // a failed expectation) when a step fails.
  static std::unique_ptr<Deployment> Deploy(const std::string& name, const DeployOptions& o = {});

  // Creates a channel; returns {channel id, stream key} ({} on failure).
  static std::pair<std::string, std::string> CreateChannel(const Deployment& d,
                                                           const nlohmann::json& spec);

  static std::unique_ptr<support::FfmpegPublisher> Publish(const Deployment& d,
                                                           const std::filesystem::path& media,
                                                           const std::string& key,
                                                           bool loop = false);

  static bool IsEvent(const nlohmann::json& e, const std::string& name, const std::string& channel);

  // The suite's media (FLAC, 44.1 kHz stereo):
  static std::filesystem::path block_media_;  // `battle` (block) under a talking streamer, 24 s
  static std::filesystem::path track_media_;  // `wanderer` (track) under a voice, 60 s
  // `knolls` (mute) under a voice for kMuteMusicS, then the voice alone for
  // kMuteTailS: the match ends while the stream goes on.
  static std::filesystem::path mute_media_;
  static constexpr double kMuteMusicS = 14;
  static constexpr double kMuteTailS = 10;
};

}  // namespace earshot::server::e2e
