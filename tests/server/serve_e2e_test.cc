// End to end: the real `earshot serve` (and `earshot worker`) binary beside a
// real nginx with the RTMP module running the config `earshot nginx-config`
// generates, a real catalog of Debian's wesnoth music, streams pushed with
// ffmpeg, and the HTTP API driven over 127.0.0.1.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "delivery/http_client.h"
#include "support/ffmpeg_publisher.h"
#include "support/nginx_rtmp.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/test_media.h"

namespace earshot::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;
using support::ChildProcess;
using Clock = std::chrono::steady_clock;

struct ApiResponse {
  long status = 0;
  nlohmann::json body;
  std::string text;
};

// One deployment: nginx-rtmp (generated config) + earshot serve.
struct Deployment {
  fs::path dir;
  fs::path config;
  uint16_t api_port = 0;
  std::unique_ptr<support::NginxRtmp> nginx;
  std::optional<ChildProcess> serve;
  std::string api_key;
  int64_t cursor = 0;  // events seen so far

  std::string api_url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(api_port) + path;
  }

  ApiResponse Call(const std::string& method, const std::string& path, const nlohmann::json& body = nullptr,
                   bool auth = true) const {
    delivery::HttpRequest req;
    req.method = method;
    req.url = api_url(path);
    if (auth) req.headers.push_back({"Authorization", "Bearer " + api_key});
    if (!body.is_null()) {
      req.headers.push_back({"Content-Type", "application/json"});
      req.body = body.dump();
    }
    req.timeout_ms = 15000;
    ApiResponse out;
    auto r = delivery::SendHttp(req);
    if (!r) {
      out.text = r.error().ToString();
      return out;
    }
    out.status = r->status;
    out.text = r->body;
    out.body = nlohmann::json::parse(r->body, nullptr, false);
    return out;
  }

  // Posts an nginx-rtmp style hook form.
  long Hook(const std::string& name, const std::string& form) const {
    delivery::HttpRequest req;
    req.method = "POST";
    req.url = api_url("/hooks/nginx/" + name);
    req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    req.body = form;
    auto r = delivery::SendHttp(req);
    return r ? r->status : 0;
  }

  // Events after the cursor until one satisfies `want` (every event seen
  // goes into `seen`); nullopt after `timeout`.
  std::optional<nlohmann::json> WaitForEvent(const std::function<bool(const nlohmann::json&)>& want,
                                             std::chrono::milliseconds timeout,
                                             std::vector<nlohmann::json>* seen = nullptr) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      ApiResponse r = Call("GET", "/v1/events?limit=500&after=" + std::to_string(cursor));
      if (r.status == 200) {
        for (const auto& e : r.body["events"]) {
          cursor = std::max(cursor, e["seq"].get<int64_t>());
          if (seen) seen->push_back(e);
          if (want(e)) return e;
        }
      }
      std::this_thread::sleep_for(200ms);
    }
    return std::nullopt;
  }

  std::string rtmp_ingest_url(const std::string& key) const {
    return "rtmp://127.0.0.1:" + std::to_string(nginx->rtmp_port()) + "/ingest/" + key;
  }
};

class ServeE2eTest : public ::testing::Test {
 protected:
  // The catalog and media are made once, by the first test that runs; a
  // failure there fails that test (gtest would only skip the tests of a
  // suite whose SetUpTestSuite failed, and ctest counts skips as passes).
  void SetUp() override {
    if (track_media_.empty()) PrepareSuite();
    ASSERT_FALSE(track_media_.empty()) << "the suite's catalog or media could not be made (see above)";
  }
  static void PrepareSuite() {
    auto dir = support::ScopedTempDir::Create("earshot_serve_e2e");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_ = new support::ScopedTempDir(std::move(*dir));
    auto battle = support::WesnothMusic("battle");
    auto knolls = support::WesnothMusic("knolls");
    auto wanderer = support::WesnothMusic("wanderer");
    ASSERT_TRUE(battle && knolls && wanderer) << "wesnoth-1.16-music missing";
    for (auto [path, rule] : {std::pair{*battle, "block"}, {*knolls, "mute"}, {*wanderer, "track"}}) {
      auto r = support::RunCommand({EARSHOT_BINARY, "--catalog", Catalog().string(), "catalog", "add",
                                    "--rule", rule, "--rights-holder", "Wesnoth Project", path.string()},
                                   120s);
      ASSERT_TRUE(r && r->ok()) << (r ? r->Describe() : r.error().ToString());
    }
    // `battle` (block) under a talking streamer, 24 s.
    auto block_media = support::MakeMusicUnderVoice(Dir(), *battle, 30, 24,
                                                    "welcome back everyone, today we try the hard level", -2);
    ASSERT_TRUE(block_media) << block_media.error().ToString();
    block_media_ = *block_media;
    // `wanderer` (track) for 60 s: long scans that must not be stopped.
    auto track_media = support::MakeMusicUnderVoice(Dir(), *wanderer, 10, 60,
                                                    "this one is fine to play, it is licensed", -4);
    ASSERT_TRUE(track_media) << track_media.error().ToString();
    track_media_ = *track_media;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static fs::path Dir() { return dir_->path(); }
  static fs::path Catalog() { return Dir() / "catalog"; }

  struct DeployOptions {
    int workers = 1;
    double lease_s = 30;
    std::string block_action = "stop";
  };

  // Writes the config for `d` with the current ports.
  static void WriteConfig(Deployment& d, const DeployOptions& o, uint16_t rtmp_port, uint16_t http_port) {
    std::ofstream out(d.config, std::ios::trunc);
    out << "[server]\nlisten = \"127.0.0.1:" << d.api_port << "\"\n"
        << "data_dir = \"" << (d.dir / "data").string() << "\"\n"
        << "catalog_dir = \"" << Catalog().string() << "\"\n"
        << "shutdown_grace_s = 10\n"
        << "[queue]\nlease_s = " << o.lease_s << "\nretry_backoff_s = 0.5\n"
        << "[workers]\nworkers = " << o.workers << "\npoll_s = 0.2\n"
        << "[scan]\nstall_timeout_s = 4\nreconnects = 2\nreconnect_backoff_s = 0.5\nongoing_every_s = 5\n"
        << "[ingest]\nrtmp_url = \"rtmp://127.0.0.1:" << rtmp_port << "\"\n"
        << "control_url = \"http://127.0.0.1:" << http_port << "/control\"\n"
        << "playback_url = \"http://127.0.0.1:" << http_port << "/hls\"\n"
        << "hls_dir = \"" << (d.dir / "hls").string() << "\"\n"
        << "[rules]\nblock_action = \"" << o.block_action << "\"\n";
  }

  static ChildProcess StartEarshot(const Deployment& d, const std::string& command, const std::string& log_name) {
    support::SpawnOptions spawn;
    spawn.argv = {EARSHOT_BINARY, command, "--config", d.config.string()};
    spawn.output_file = d.dir / log_name;
    auto child = ChildProcess::Spawn(spawn);
    EXPECT_TRUE(child) << child.error().ToString();
    return std::move(*child);
  }

  static bool WaitHealthy(const Deployment& d, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (d.Call("GET", "/healthz", nullptr, false).status == 200) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // nginx with the generated config, an API key, `earshot serve`.
  static std::unique_ptr<Deployment> Deploy(const std::string& name) { return Deploy(name, DeployOptions{}); }
  static std::unique_ptr<Deployment> Deploy(const std::string& name, const DeployOptions& o) {
    auto d = std::make_unique<Deployment>();
    d->dir = Dir() / name;
    fs::create_directories(d->dir / "hls");
    d->config = d->dir / "earshot.toml";
    auto port = support::FreePort();
    EXPECT_TRUE(port);
    if (!port) return nullptr;
    d->api_port = *port;
    support::NginxRtmpOptions nopts;
    Deployment* raw = d.get();
    nopts.config_generator = [raw, o](uint16_t rtmp_port, uint16_t http_port,
                                      const fs::path& run_dir) -> Result<std::string> {
      WriteConfig(*raw, o, rtmp_port, http_port);
      auto r = support::RunCommand({EARSHOT_BINARY, "nginx-config", "--config", raw->config.string(),
                                    "--run-dir", run_dir.string(), "--http-listen",
                                    "127.0.0.1:" + std::to_string(http_port)},
                                   30s);
      if (!r) return std::unexpected(r.error());
      if (!r->ok()) return MakeError(ErrorCode::kInternal, r->Describe());
      return r->stdout_text;
    };
    auto nginx = support::NginxRtmp::Start(nopts);
    EXPECT_TRUE(nginx) << nginx.error().ToString();
    if (!nginx) return nullptr;
    d->nginx = std::move(*nginx);
    auto key = support::RunCommand({EARSHOT_BINARY, "admin", "create-key", "--name", "e2e", "--config",
                                    d->config.string()},
                                   30s);
    EXPECT_TRUE(key && key->ok()) << (key ? key->Describe() : key.error().ToString());
    if (!key || !key->ok()) return nullptr;
    d->api_key = key->stdout_text.substr(0, key->stdout_text.find('\n'));
    d->serve = StartEarshot(*d, "serve", "serve.log");
    EXPECT_TRUE(WaitHealthy(*d, 20s)) << support::ReadTextFile(d->dir / "serve.log");
    return d;
  }

  // Creates a channel; returns {channel id, stream key}.
  static std::pair<std::string, std::string> CreateChannel(const Deployment& d, const nlohmann::json& spec) {
    ApiResponse r = d.Call("POST", "/v1/channels", spec);
    EXPECT_EQ(r.status, 201) << r.text;
    if (r.status != 201) return {};
    return {r.body["channel"]["id"], r.body["stream_key"]["value"]};
  }

  static std::unique_ptr<support::FfmpegPublisher> Publish(const Deployment& d, const fs::path& media,
                                                           const std::string& key, bool loop = false) {
    support::FfmpegPublisherOptions pub;
    pub.input = media;
    pub.url = d.rtmp_ingest_url(key);
    pub.loop = loop;
    auto p = support::FfmpegPublisher::Start(pub);
    EXPECT_TRUE(p) << p.error().ToString();
    return p ? std::move(*p) : nullptr;
  }

  static bool IsEvent(const nlohmann::json& e, const std::string& name, const std::string& channel) {
    return e.value("event_name", "") == name && e.value("channel_id", "") == channel;
  }

  static support::ScopedTempDir* dir_;
  static fs::path block_media_;
  static fs::path track_media_;
};

support::ScopedTempDir* ServeE2eTest::dir_ = nullptr;
fs::path ServeE2eTest::block_media_;
fs::path ServeE2eTest::track_media_;

// The demo path: a channel, a stream with a `block` track under a voice; the
// stream is identified and stopped by the rule, every step an event.
TEST_F(ServeE2eTest, BlockedMusicStopsTheStream) {
  auto d = Deploy("block");
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "speedrunner"}});
  ASSERT_FALSE(channel.empty());
  auto publisher = Publish(*d, block_media_, key);
  ASSERT_TRUE(publisher);

  std::vector<nlohmann::json> seen;
  auto start = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream Start", channel); }, 20s, &seen);
  ASSERT_TRUE(start) << support::ReadTextFile(d->dir / "serve.log");
  const std::string stream_id = (*start)["stream_id"];
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [&](const auto& e) { return IsEvent(e, "Session Created", channel); }));

  // Live: the stream resource exists, HLS is named by channel id.
  ApiResponse live = d->Call("GET", "/v1/channels/" + channel + "/stream");
  EXPECT_EQ(live.status, 200) << live.text;
  EXPECT_EQ(live.body.value("stream_id", ""), stream_id);

  auto ident = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Identification", channel); }, 40s, &seen);
  ASSERT_TRUE(ident) << support::ReadTextFile(d->dir / "serve.log");
  EXPECT_EQ((*ident)["detail"]["track"]["title"], "battle");
  EXPECT_EQ((*ident)["detail"]["rule"], "block");
  auto applied = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Rule Applied", channel); }, 20s, &seen);
  ASSERT_TRUE(applied);
  EXPECT_EQ((*applied)["detail"]["action"], "stop") << applied->dump();
  auto end = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream End", channel); }, 20s, &seen);
  ASSERT_TRUE(end);

  // The publisher was dropped long before its 24 s of media ran out.
  EXPECT_TRUE(publisher->Wait(15s).has_value()) << "the publisher is still connected";
  EXPECT_EQ(d->Call("GET", "/v1/channels/" + channel + "/stream").status, 404);
  ApiResponse session = d->Call("GET", "/v1/sessions/" + stream_id);
  ASSERT_EQ(session.status, 200) << session.text;
  EXPECT_EQ(session.body["state"], "ended");
  EXPECT_NE(session.body.value("end_reason", "").find("stopped"), std::string::npos) << session.text;

  // The identification responses are on disk, and the key never became a name.
  const fs::path results = d->dir / "data" / "results" / stream_id;
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(results)) files += e.path().extension() == ".json";
  EXPECT_GE(files, 1u);
  for (const auto& e : fs::recursive_directory_iterator(d->dir / "hls")) {
    EXPECT_EQ(e.path().string().find(key), std::string::npos) << e.path();
  }
  ApiResponse ids = d->Call("GET", "/v1/identifications?channel_id=" + channel);
  ASSERT_EQ(ids.status, 200);
  ASSERT_GE(ids.body["identifications"].size(), 1u);
  EXPECT_EQ(ids.body["identifications"][0]["title"], "battle");
  ApiResponse metrics = d->Call("GET", "/metrics", nullptr, false);
  EXPECT_NE(metrics.text.find("earshot_identifications_total{rule=\"block\"}"), std::string::npos) << metrics.text;
  EXPECT_NE(metrics.text.find("earshot_hook_duration_seconds_count{hook=\"on_publish\"}"), std::string::npos);
}

// Licensed (`track`) music: the stream goes on past nginx-rtmp's update
// interval (each update is checked, and the relay's own updates must not cut
// it), the match is recorded, nothing is stopped, and the usage report
// counts the seconds played once the stream has ended.
TEST_F(ServeE2eTest, LicensedMusicIsTrackedAndTheStreamGoesOn) {
  auto d = Deploy("track");
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "licensed"}});
  ASSERT_FALSE(channel.empty());
  auto publisher = Publish(*d, track_media_, key);
  ASSERT_TRUE(publisher);
  std::vector<nlohmann::json> seen;
  auto start = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream Start", channel); }, 20s, &seen);
  ASSERT_TRUE(start) << support::ReadTextFile(d->dir / "serve.log");
  const auto started = Clock::now();
  auto ident = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Identification", channel); }, 40s, &seen);
  ASSERT_TRUE(ident) << support::ReadTextFile(d->dir / "serve.log");
  EXPECT_EQ((*ident)["detail"]["track"]["title"], "wanderer");
  EXPECT_EQ((*ident)["detail"]["rule"], "track");
  // Past two update intervals (10 s each), still live.
  std::this_thread::sleep_until(started + 25s);
  ApiResponse live = d->Call("GET", "/v1/channels/" + channel + "/stream");
  EXPECT_EQ(live.status, 200) << live.text << support::ReadTextFile(d->dir / "serve.log");
  EXPECT_TRUE(publisher->running()) << "the publisher was dropped";
  publisher->Stop();
  ASSERT_TRUE(d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream End", channel); }, 20s, &seen));
  auto ended = d->WaitForEvent(
      [&](const auto& e) {
        return IsEvent(e, "Identification", channel) && e["detail"].value("status", "") == "match_ended";
      },
      40s, &seen);
  ASSERT_TRUE(ended) << support::ReadTextFile(d->dir / "serve.log");
  EXPECT_FALSE(std::any_of(seen.begin(), seen.end(), [&](const auto& e) { return IsEvent(e, "Rule Applied", channel); }));
  ApiResponse usage = d->Call("GET", "/v1/channels/" + channel + "/reports/usage");
  ASSERT_EQ(usage.status, 200) << usage.text;
  ASSERT_EQ(usage.body["tracks"].size(), 1u) << usage.text;
  EXPECT_EQ(usage.body["tracks"][0]["title"], "wanderer");
  EXPECT_GE(usage.body["tracks"][0]["seconds_played"].get<double>(), 15.0) << usage.text;
  EXPECT_EQ(usage.body["tracks"][0]["streams"], 1);
}

// A bad key is refused; a reset key can no longer publish; the new one can.
TEST_F(ServeE2eTest, BadAndResetKeysAreRefused) {
  auto d = Deploy("keys", {.workers = 0});
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "keys"}});
  ASSERT_FALSE(channel.empty());

  auto bad = Publish(*d, block_media_, "sk_not-a-real-key");
  ASSERT_TRUE(bad);
  auto bad_exit = bad->Wait(20s);
  ASSERT_TRUE(bad_exit.has_value()) << "a bad key was accepted";
  EXPECT_FALSE(bad_exit->success());

  ApiResponse reset = d->Call("POST", "/v1/channels/" + channel + "/stream-key/reset");
  ASSERT_EQ(reset.status, 200) << reset.text;
  const std::string new_key = reset.body["value"];
  EXPECT_NE(new_key, key);
  auto old = Publish(*d, block_media_, key);
  ASSERT_TRUE(old);
  auto old_exit = old->Wait(20s);
  ASSERT_TRUE(old_exit.has_value()) << "the old key still publishes";
  EXPECT_FALSE(old_exit->success());
  EXPECT_EQ(d->Call("GET", "/v1/channels/" + channel + "/stream").status, 404);

  auto good = Publish(*d, block_media_, new_key);
  ASSERT_TRUE(good);
  EXPECT_TRUE(d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream Start", channel); }, 20s));
  // Stop + reset through the API: the publisher goes and cannot come back.
  ApiResponse stop = d->Call("POST", "/v1/channels/" + channel + "/stream/stop", {{"reset_key", true}});
  EXPECT_EQ(stop.status, 200) << stop.text;
  EXPECT_TRUE(good->Wait(15s).has_value());
  auto again = Publish(*d, block_media_, new_key);
  ASSERT_TRUE(again);
  auto again_exit = again->Wait(20s);
  ASSERT_TRUE(again_exit.has_value());
  EXPECT_FALSE(again_exit->success());
  EXPECT_EQ(d->Call("POST", "/v1/channels/" + channel + "/stream/stop").status, 404);
}

// A worker killed with SIGKILL mid-scan: its lease expires and another
// worker resumes the stream.
TEST_F(ServeE2eTest, KilledWorkerIsReplacedAndTheScanResumes) {
  auto d = Deploy("kill9", {.workers = 0, .lease_s = 3});
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "kill9"}});
  ChildProcess first = StartEarshot(*d, "worker", "worker1.log");
  auto publisher = Publish(*d, track_media_, key, /*loop=*/true);
  ASSERT_TRUE(publisher);
  auto start = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream Start", channel); }, 20s);
  ASSERT_TRUE(start);
  const std::string stream_id = (*start)["stream_id"];
  auto ident = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Identification", channel); }, 60s);
  ASSERT_TRUE(ident) << support::ReadTextFile(d->dir / "worker1.log");
  first.Kill();
  ChildProcess second = StartEarshot(*d, "worker", "worker2.log");
  // The job is leased again (attempt 2) by the second worker and finds the music again.
  auto resumed = d->WaitForEvent(
      [&](const auto& e) { return IsEvent(e, "Alarm", channel) && e["detail"].value("alarm", "") == "scan resumed"; },
      60s);
  ASSERT_TRUE(resumed) << support::ReadTextFile(d->dir / "worker2.log");
  auto again = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Identification", channel); }, 60s);
  EXPECT_TRUE(again) << support::ReadTextFile(d->dir / "worker2.log");
  ApiResponse jobs = d->Call("GET", "/v1/jobs");
  ASSERT_EQ(jobs.status, 200);
  bool found = false;
  for (const auto& j : jobs.body["jobs"]) {
    if (j["key"] == stream_id) {
      found = true;
      EXPECT_GE(j["attempts"].get<int>(), 2) << j.dump();
    }
  }
  EXPECT_TRUE(found) << jobs.text;
  publisher->Stop();
  EXPECT_TRUE(d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream End", channel); }, 20s));
  second.Stop(SIGTERM, 15s);
}

// A job queued while no worker runs survives a restart of `earshot serve`.
TEST_F(ServeE2eTest, QueuedJobSurvivesARestart) {
  auto d = Deploy("restart", {.workers = 0});
  ASSERT_TRUE(d);
  auto [channel, key] = CreateChannel(*d, {{"name", "restart"}});
  auto publisher = Publish(*d, track_media_, key, /*loop=*/true);
  ASSERT_TRUE(publisher);
  auto start = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Stream Start", channel); }, 20s);
  ASSERT_TRUE(start);
  ApiResponse jobs = d->Call("GET", "/v1/jobs?state=queued");
  ASSERT_EQ(jobs.status, 200);
  EXPECT_EQ(jobs.body["jobs"].size(), 1u) << jobs.text;
  // Restart with a worker (the publisher keeps streaming through nginx).
  auto status = d->serve->Stop(SIGTERM, 20s);
  EXPECT_TRUE(status.success()) << status.ToString();
  {
    std::ifstream in(d->config);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find("workers = 0");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 11, "workers = 1");
    std::ofstream(d->config, std::ios::trunc) << text;
  }
  d->serve = StartEarshot(*d, "serve", "serve2.log");
  ASSERT_TRUE(WaitHealthy(*d, 20s));
  auto ident = d->WaitForEvent([&](const auto& e) { return IsEvent(e, "Identification", channel); }, 60s);
  EXPECT_TRUE(ident) << support::ReadTextFile(d->dir / "serve2.log");
  if (ident) {
    EXPECT_EQ((*ident)["detail"]["track"]["title"], "wanderer");
  }
  publisher->Stop();
}

// 1,000 publish / publish_done hooks in random order (duplicates and
// done-before-publish included) end in a consistent state: every channel has
// at most one live session, and a live session's job is still active.
TEST_F(ServeE2eTest, HookFloodEndsConsistent) {
  auto d = Deploy("flood", {.workers = 0});
  ASSERT_TRUE(d);
  std::vector<std::pair<std::string, std::string>> channels;
  for (int i = 0; i < 5; ++i) channels.push_back(CreateChannel(*d, {{"name", "flood" + std::to_string(i)}}));
  struct HookCall {
    std::string name;
    std::string form;
  };
  std::vector<HookCall> calls;
  std::mt19937 rng(20261121);
  for (int client = 1; calls.size() < 1000; ++client) {
    const auto& [channel, key] = channels[rng() % channels.size()];
    const std::string base = "app=ingest&flashver=FMLE&tcurl=rtmp://127.0.0.1/ingest&addr=127.0.0.1&clientid=" +
                             std::to_string(client) + "&name=" + key + "&type=live";
    calls.push_back({"on_publish", "call=publish&" + base});
    if (rng() % 10 != 0) calls.push_back({"on_publish_done", "call=publish_done&" + base});
    if (rng() % 5 == 0) calls.push_back({"on_publish", "call=publish&" + base});  // duplicate
  }
  std::shuffle(calls.begin(), calls.end(), rng);
  std::map<long, int> answers;
  for (const HookCall& c : calls) ++answers[d->Hook(c.name, c.form)];
  EXPECT_EQ(answers[0], 0) << "hooks that got no answer";
  EXPECT_EQ(answers[500], 0) << "hooks that failed";
  for (const auto& [channel, key] : channels) {
    ApiResponse sessions = d->Call("GET", "/v1/channels/" + channel + "/sessions?limit=1000");
    ASSERT_EQ(sessions.status, 200);
    int live = 0;
    for (const auto& s : sessions.body["sessions"]) {
      const std::string stream_id = s["stream_id"];
      ApiResponse events = d->Call("GET", "/v1/events?limit=1000&stream_id=" + stream_id);
      ASSERT_EQ(events.status, 200);
      std::set<std::string> names;
      for (const auto& e : events.body["events"]) names.insert(e["event_name"].get<std::string>());
      EXPECT_TRUE(names.contains("Stream Start")) << stream_id;
      if (s["state"] == "live") {
        ++live;
        EXPECT_FALSE(names.contains("Stream End")) << stream_id;
      } else {
        EXPECT_TRUE(names.contains("Stream End")) << stream_id;
      }
    }
    EXPECT_LE(live, 1) << "channel " << channel << " has " << live << " live sessions";
    ApiResponse stream = d->Call("GET", "/v1/channels/" + channel + "/stream");
    EXPECT_EQ(stream.status == 200, live == 1) << stream.text;
  }
  // Every job of an ended session was cancelled; live ones are still queued.
  ApiResponse jobs = d->Call("GET", "/v1/jobs?limit=1000");
  ASSERT_EQ(jobs.status, 200);
  int active = 0;
  for (const auto& j : jobs.body["jobs"]) active += j["state"] == "queued" || j["state"] == "leased";
  ApiResponse streams = d->Call("GET", "/v1/streams");
  ASSERT_EQ(streams.status, 200);
  EXPECT_EQ(active, static_cast<int>(streams.body["streams"].size())) << jobs.text;
}

// The API refuses requests without a valid key, and the OpenAPI document
// lists what the server answers.
TEST_F(ServeE2eTest, ApiNeedsAKeyAndDescribesItself) {
  auto d = Deploy("api", {.workers = 0});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->Call("GET", "/v1/channels", nullptr, false).status, 401);
  Deployment wrong = Deployment{};
  wrong.api_port = d->api_port;
  wrong.api_key = "ek_wrong";
  EXPECT_EQ(wrong.Call("GET", "/v1/channels").status, 401);
  ApiResponse doc = d->Call("GET", "/v1/openapi.json", nullptr, false);
  ASSERT_EQ(doc.status, 200);
  EXPECT_EQ(doc.body["openapi"], "3.0.3");
  EXPECT_TRUE(doc.body["paths"].contains("/v1/channels"));
  ApiResponse bad = d->Call("POST", "/v1/channels", nlohmann::json("not an object"));
  EXPECT_EQ(bad.status, 400) << bad.text;
  EXPECT_EQ(bad.body["error"]["code"], "invalid_argument");
  EXPECT_EQ(d->Call("GET", "/v1/channels/ch-doesnotexist").status, 404);
  EXPECT_EQ(d->Hook("on_publish", "%zz"), 400);
}

}  // namespace
}  // namespace earshot::server
