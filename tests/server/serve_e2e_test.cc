// End to end: the real `earshot serve` (and `earshot worker`) binary beside a
// real nginx with the RTMP module running the config `earshot nginx-config`
// generates, a real catalog of Debian's wesnoth music, streams pushed with
// ffmpeg, and the HTTP API driven over 127.0.0.1. The fixture is in
// serve_fixture.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/serve_fixture.h"
#include "support/ffmpeg_publisher.h"
#include "support/process.h"

namespace earshot::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;
using e2e::ApiResponse;
using e2e::Clock;
using e2e::Deployment;
using e2e::ServeE2eTest;
using support::ChildProcess;

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
  // Bodies: refused before they are read when the caller has no key, and
  // above 1 MiB for anything but a catalog upload.
  const nlohmann::json big = std::string(2 << 20, 'a');
  EXPECT_EQ(wrong.Call("POST", "/v1/channels", big).status, 401);
  ApiResponse too_big = d->Call("POST", "/v1/channels", big);
  EXPECT_EQ(too_big.status, 413) << too_big.text;
  // A subscription target names only EARSHOT_* variables for its secrets.
  ApiResponse exfiltrate = d->Call(
      "POST", "/v1/subscriptions",
      {{"kind", "webhook"}, {"target", "url=http://127.0.0.1:9/x,secret_env=HOME"}});
  EXPECT_EQ(exfiltrate.status, 400) << exfiltrate.text;
  EXPECT_NE(exfiltrate.text.find("EARSHOT_"), std::string::npos) << exfiltrate.text;
}

}  // namespace
}  // namespace earshot::server
