// End to end, playback protection through the real nginx (the config `earshot
// nginx-config` writes, auth_request to `earshot serve`): a private channel's
// HLS is refused without a token, played with one (segments carry it), refused
// from a wrong origin and from a blocked country (X-Forwarded-For believed
// from a trusted proxy, countries from a MaxMind database the test writes),
// the allowed origin comes back as Access-Control-Allow-Origin, the viewer
// count rises and falls as viewers come and go, a deleted key pair and a
// revoked viewer are refused, and a single-use token stays used after a
// restart of `earshot serve`. And the viewer-spike alarm on top of the viewer
// counts: simulated viewers push a channel's count up, the alarm fires, a
// webhook receives it, and auto-stop stops the stream and resets its key.
#include <gtest/gtest.h>

#include <atomic>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/time_format.h"
#include "playback/token_minter.h"
#include "server/serve_fixture.h"
#include "support/http_listener.h"
#include "support/ports.h"
#include "support/test_geoip.h"

namespace earshot::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;
using e2e::ApiResponse;
using e2e::Clock;
using e2e::Deployment;

constexpr const char* kFrance = "10.1.2.3";
constexpr const char* kFrance2 = "10.1.9.9";
constexpr const char* kUnitedStates = "10.2.0.5";
constexpr const char* kNowhere = "10.9.0.1";  // not in the database

struct Viewer {
  std::string address = kFrance;
  std::string origin;  // "" = none sent
  std::string user_agent = "e2e-player/1";
};

std::string Arn(const std::string& channel) { return "arn:earshot:channel/" + channel; }

// GET target from nginx's HTTP port as `viewer` (through the trusted proxy:
// X-Forwarded-For carries the viewer's address).
support::HttpResponse Get(const Deployment& d, const std::string& target, const Viewer& viewer) {
  std::vector<std::pair<std::string, std::string>> headers = {{"X-Forwarded-For", viewer.address},
                                                              {"User-Agent", viewer.user_agent}};
  if (!viewer.origin.empty()) headers.emplace_back("Origin", viewer.origin);
  auto r = d.nginx->HttpGet(target, 5s, headers);
  EXPECT_TRUE(r) << r.error().ToString();
  return r ? *r : support::HttpResponse{};
}

std::string Header(const support::HttpResponse& r, const std::string& name) {
  std::string lower_headers = r.headers;
  std::transform(lower_headers.begin(), lower_headers.end(), lower_headers.begin(), ::tolower);
  std::string lower_name = name;
  std::transform(lower_name.begin(), lower_name.end(), lower_name.begin(), ::tolower);
  const size_t at = lower_headers.find(lower_name + ":");
  if (at == std::string::npos) return {};
  size_t b = at + name.size() + 1;
  while (b < r.headers.size() && r.headers[b] == ' ') ++b;
  const size_t e = r.headers.find_first_of("\r\n", b);
  return r.headers.substr(b, e - b);
}

// The first segment URI of a playlist body ("ch-x-3.ts?token=...").
std::string FirstSegment(const std::string& playlist) {
  size_t pos = 0;
  while (pos < playlist.size()) {
    size_t end = playlist.find('\n', pos);
    if (end == std::string::npos) end = playlist.size();
    std::string line = playlist.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line[0] != '#') return line;
    pos = end + 1;
  }
  return {};
}

int64_t ViewerCount(const Deployment& d, const std::string& channel) {
  ApiResponse r = d.Call("GET", "/v1/channels/" + channel + "/stream");
  if (r.status != 200) return -1;
  return r.body.value("viewer_count", int64_t{-1});
}

// Polls until the channel's viewer count is `want`; the last count seen.
int64_t WaitForViewers(const Deployment& d, const std::string& channel, int64_t want,
                       std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int64_t n = ViewerCount(d, channel);
  while (n != want && Clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    n = ViewerCount(d, channel);
  }
  return n;
}

struct PlaybackSetup {
  std::string Token(nlohmann::json extra = nlohmann::json::object(), int64_t ttl_s = 300) const {
    nlohmann::json claims = {{"aws:channel-arn", Arn(channel)}, {"exp", UnixMillisNow() / 1000 + ttl_s}};
    for (auto& [k, v] : extra.items()) claims[k] = v;
    return playback::testing::MintToken(key, playback::testing::Es384Header(), claims.dump());
  }

  std::string Playlist(const std::string& token) const {
    return "/hls/" + channel + ".m3u8" + (token.empty() ? "" : "?token=" + token);
  }

  playback::testing::TestKeyPair key = playback::testing::TestKeyPair::P384();
  std::unique_ptr<Deployment> deployment;
  std::unique_ptr<support::FfmpegPublisher> publisher;
  std::string key_id;
  std::string channel;
};

class PlaybackE2eTest : public e2e::ServeE2eTest {
 protected:
  // A deployment with a country database (10.1/16 FR, 10.2/16 US) and a
  // trusted proxy (127.0.0.1: X-Forwarded-For is the viewer), a playback key
  // pair imported, and a private channel with `policy` publishing the suite's
  // track media in a loop until the end of the test.
  static std::unique_ptr<PlaybackSetup> Make(const std::string& name, const nlohmann::json& policy,
                                             bool private_channel = true) {
    const fs::path suite_dir = Dir();
    const fs::path media = track_media_;
    auto s = std::make_unique<PlaybackSetup>();
    fs::create_directories(suite_dir / name);
    const fs::path geo = suite_dir / name / "countries.mmdb";
    auto written = support::WriteTestGeoIpDatabase(geo, {{"10.1.0.0/16", "FR"}, {"10.2.0.0/16", "US"}});
    EXPECT_TRUE(written) << written.error().ToString();
    if (!written) return nullptr;
    e2e::DeployOptions o;
    o.workers = 0;
    o.extra_toml = "[playback]\ngeoip_database = \"" + geo.string() +
                   "\"\nviewer_idle_s = 3\ntrusted_proxies = [\"127.0.0.1\"]\n";
    s->deployment = Deploy(name, o);
    if (!s->deployment) return nullptr;
    Deployment& d = *s->deployment;
    ApiResponse key = d.Call("POST", "/v1/playback-keys",
                             {{"name", "site"}, {"public_key_pem", s->key.PublicPem()}});
    EXPECT_EQ(key.status, 201) << key.text;
    if (key.status != 201) return nullptr;
    s->key_id = key.body.value("id", "");
    auto [channel, stream_key] =
        CreateChannel(d, {{"name", "private"}, {"private", private_channel}, {"policy", policy}});
    if (channel.empty()) return nullptr;
    s->channel = channel;
    s->publisher = Publish(d, media, stream_key, /*loop=*/true);
    // Wait for nginx's playlist on disk (over HTTP it needs a token).
    const fs::path playlist = d.dir / "hls" / (channel + ".m3u8");
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      std::error_code ec;
      if (fs::exists(playlist, ec) && fs::file_size(playlist, ec) > 0) break;
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(fs::exists(playlist)) << "nginx wrote no HLS for the channel\n" << d.ServeLog();
    if (!fs::exists(playlist)) return nullptr;
    return s;
  }
};

TEST_F(PlaybackE2eTest, PrivateChannelNeedsAValidTokenFromAnAllowedPlace) {
  auto s = Make("playback-private", {{"allowedCountries", {"FR"}}, {"allowedOrigins", {"https://*.example.com"}}});
  ASSERT_NE(s, nullptr);
  const Deployment& d = *s->deployment;
  const Viewer france;

  // No token: 401; a token: the playlist, whose segment URLs carry it.
  EXPECT_EQ(Get(d, s->Playlist(""), france).status, 401);
  const std::string token = s->Token({{"aws:viewer-id", "alice"}});
  support::HttpResponse playlist = Get(d, s->Playlist(token), france);
  ASSERT_EQ(playlist.status, 200) << playlist.body << d.ServeLog();
  const std::string segment = FirstSegment(playlist.body);
  ASSERT_NE(segment.find("?token=" + token), std::string::npos) << playlist.body;
  support::HttpResponse seg = Get(d, "/hls/" + segment, france);
  EXPECT_EQ(seg.status, 200);
  EXPECT_GT(seg.body.size(), 188u);  // MPEG-TS packets
  // The segment without the token is refused.
  EXPECT_EQ(Get(d, "/hls/" + segment.substr(0, segment.find('?')), france).status, 401);

  // A token for another channel, an expired one, a forged one.
  const nlohmann::json other_claims = {{"aws:channel-arn", Arn("ch-000000000000")},
                                      {"exp", UnixMillisNow() / 1000 + 300}};
  const std::string other =
      playback::testing::MintToken(s->key, playback::testing::Es384Header(), other_claims.dump());
  EXPECT_EQ(Get(d, s->Playlist(other), france).status, 403);
  EXPECT_EQ(Get(d, s->Playlist(s->Token({}, -10)), france).status, 403);
  const auto stranger = playback::testing::TestKeyPair::P384();
  const nlohmann::json mine = {{"aws:channel-arn", Arn(s->channel)}, {"exp", UnixMillisNow() / 1000 + 300}};
  EXPECT_EQ(Get(d, s->Playlist(playback::testing::MintToken(stranger, playback::testing::Es384Header(), mine.dump())),
                france).status,
            403);

  // Origins: the channel allows https://*.example.com; the allowed one comes
  // back for CORS, a wrong one is refused on the playlist.
  Viewer browser = france;
  browser.origin = "https://shop.example.com";
  support::HttpResponse ok = Get(d, s->Playlist(token), browser);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(Header(ok, "Access-Control-Allow-Origin"), "https://shop.example.com") << ok.headers;
  Viewer evil = france;
  evil.origin = "https://evil.example.org";
  EXPECT_EQ(Get(d, s->Playlist(token), evil).status, 403);
  // Not strict: segments are not origin-checked.
  EXPECT_EQ(Get(d, "/hls/" + segment, evil).status, 200);

  // A raw '#' must not make nginx serve this channel while earshot checks
  // another (public) one: earshot sees the path nginx serves.
  ApiResponse pub = d.Call("POST", "/v1/channels", {{"name", "public"}});
  ASSERT_EQ(pub.status, 201) << pub.text;
  const std::string public_id = pub.body["channel"]["id"];
  EXPECT_NE(Get(d, "/hls/" + s->channel + ".m3u8#/" + public_id + ".m3u8", france).status, 200);
  EXPECT_NE(Get(d, "/hls/" + segment.substr(0, segment.find('?')) + "#/x/" + public_id + "-1.ts", france).status, 200);

  // Countries: the US is not allowed; an address the database lacks neither.
  Viewer us = france;
  us.address = kUnitedStates;
  EXPECT_EQ(Get(d, s->Playlist(token), us).status, 403);
  Viewer nowhere = france;
  nowhere.address = kNowhere;
  EXPECT_EQ(Get(d, s->Playlist(token), nowhere).status, 403);

  // The refusals were counted by reason (never sent to the viewer).
  ApiResponse metrics = d.Call("GET", "/metrics", nullptr, false);
  for (const char* reason : {"no_token", "wrong_channel", "token_expired", "bad_signature",
                             "origin_not_allowed", "country_not_allowed", "country_unknown"}) {
    EXPECT_NE(metrics.text.find(std::string("reason=\"") + reason + "\""), std::string::npos)
        << reason << "\n" << metrics.text;
  }

  // Revoke alice: her token dies; a newer session version plays.
  ApiResponse revoke = d.Call("POST", "/v1/channels/" + s->channel + "/revoke-viewer",
                              {{"viewer_id", "alice"}, {"viewer_session_versions_less_than_or_equal_to", 1}});
  EXPECT_EQ(revoke.status, 204) << revoke.text;
  EXPECT_EQ(Get(d, s->Playlist(token), france).status, 403);
  EXPECT_EQ(Get(d, s->Playlist(s->Token({{"aws:viewer-id", "alice"}, {"aws:viewer-session-version", 2}})),
                france).status,
            200);

  // Deleting the key pair kills every token it signed.
  const std::string bob = s->Token({{"aws:viewer-id", "bob"}});
  EXPECT_EQ(Get(d, s->Playlist(bob), france).status, 200);
  EXPECT_EQ(d.Call("DELETE", "/v1/playback-keys/" + s->key_id).status, 204);
  EXPECT_EQ(Get(d, s->Playlist(bob), france).status, 403);
}

TEST_F(PlaybackE2eTest, ViewerCountRisesAndFallsAsViewersComeAndGo) {
  auto s = Make("playback-viewers", nlohmann::json::object());
  ASSERT_NE(s, nullptr);
  const Deployment& d = *s->deployment;
  EXPECT_EQ(ViewerCount(d, s->channel), 0);
  // Three viewers (three viewer ids) play for a while.
  std::vector<std::string> tokens;
  for (const char* id : {"v1", "v2", "v3"}) tokens.push_back(s->Token({{"aws:viewer-id", id}}));
  for (int round = 0; round < 3; ++round) {
    for (const std::string& t : tokens) EXPECT_EQ(Get(d, s->Playlist(t), Viewer{}).status, 200);
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_EQ(ViewerCount(d, s->channel), 3);
  // One keeps watching, two leave: after viewer_idle_s (3 s) only one is left.
  const auto until = Clock::now() + 5s;
  while (Clock::now() < until) {
    EXPECT_EQ(Get(d, s->Playlist(tokens[0]), Viewer{}).status, 200);
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(WaitForViewers(d, s->channel, 1, 3s), 1);
  // Everyone gone.
  EXPECT_EQ(WaitForViewers(d, s->channel, 0, 8s), 0);
  // /metrics showed the gauge while viewers were there, and the per-minute
  // series has the maximum of 3 once its minute closed (or the open one is
  // flushed when it closes; wait for the minute boundary at most 65 s).
  const auto deadline = Clock::now() + 70s;
  int64_t max_seen = 0;
  while (Clock::now() < deadline && max_seen < 3) {
    ApiResponse series = d.Call("GET", "/v1/channels/" + s->channel + "/viewers");
    ASSERT_EQ(series.status, 200) << series.text;
    for (const auto& m : series.body["series"]) max_seen = std::max(max_seen, m.value("max_viewers", int64_t{0}));
    if (max_seen < 3) std::this_thread::sleep_for(1s);
  }
  EXPECT_EQ(max_seen, 3);
}

TEST_F(PlaybackE2eTest, StrictOriginAndSingleUseTokensSurviveARestart) {
  auto s = Make("playback-strict", {{"allowedOrigins", {"https://tv.example.com"}}, {"enableStrictOriginEnforcement", true}});
  ASSERT_NE(s, nullptr);
  Deployment& d = *s->deployment;
  Viewer browser;
  browser.origin = "https://tv.example.com";
  const std::string token = s->Token();
  support::HttpResponse playlist = Get(d, s->Playlist(token), browser);
  ASSERT_EQ(playlist.status, 200) << d.ServeLog();
  const std::string segment = FirstSegment(playlist.body);
  EXPECT_EQ(Get(d, "/hls/" + segment, browser).status, 200);
  // Strict: a segment without Origin (or with another) is refused too.
  EXPECT_EQ(Get(d, "/hls/" + segment, Viewer{}).status, 403);
  Viewer other = browser;
  other.origin = "https://evil.example.com";
  EXPECT_EQ(Get(d, "/hls/" + segment, other).status, 403);

  // A single-use token: its first viewer keeps playing, a second is refused,
  // also after earshot restarts.
  const std::string once = s->Token({{"aws:single-use-uuid", "8b5e1a8e-e2e0-4f4e-9d1b-5f0c2a7d1e01"}}, 300);
  EXPECT_EQ(Get(d, s->Playlist(once), browser).status, 200);
  EXPECT_EQ(Get(d, s->Playlist(once), browser).status, 200);
  Viewer thief = browser;
  thief.address = kFrance2;
  EXPECT_EQ(Get(d, s->Playlist(once), thief).status, 403);
  d.serve->Stop(SIGTERM, 15s);
  d.serve = StartEarshot(d, "serve", "serve-2.log");
  ASSERT_TRUE(WaitHealthy(d, 20s));
  EXPECT_EQ(Get(d, s->Playlist(once), thief).status, 403);
  EXPECT_EQ(Get(d, s->Playlist(once), browser).status, 200);
}

TEST_F(PlaybackE2eTest, PublicChannelPlaysWithoutTokenButKeepsItsPolicy) {
  auto s = Make("playback-public", nlohmann::json::object());
  ASSERT_NE(s, nullptr);
  Deployment& d = *s->deployment;
  ApiResponse patch = d.Call("PATCH", "/v1/channels/" + s->channel,
                             {{"private", false}, {"policy", {{"allowedCountries", {"US"}}}}});
  ASSERT_EQ(patch.status, 200) << patch.text;
  Viewer us;
  us.address = kUnitedStates;
  EXPECT_EQ(Get(d, s->Playlist(""), us).status, 200);
  EXPECT_EQ(Get(d, s->Playlist(""), Viewer{}).status, 403);  // France
  // Public viewers are counted by address + user agent.
  EXPECT_EQ(ViewerCount(d, s->channel), 1);
}

// Viewers (distinct viewer ids) that keep requesting the playlist, each about
// every `every`, from a few threads, until stopped.
class ViewerCrowd {
 public:
  ViewerCrowd(const Deployment& d, const PlaybackSetup& s, const std::string& prefix, int viewers,
              std::chrono::milliseconds every, int threads = 4) {
    for (int i = 0; i < viewers; ++i) tokens_.push_back(s.Token({{"aws:viewer-id", prefix + std::to_string(i)}}, 900));
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, &d, &s, t, threads, every] {
        const auto deadline = Clock::now() + 180s;  // bounded whatever happens
        while (!stop_.load() && Clock::now() < deadline) {
          const auto round = Clock::now();
          for (size_t i = static_cast<size_t>(t); i < tokens_.size() && !stop_.load(); i += static_cast<size_t>(threads)) {
            std::vector<std::pair<std::string, std::string>> h = {{"X-Forwarded-For", kFrance}, {"User-Agent", "crowd"}};
            auto r = d.nginx->HttpGet(s.Playlist(tokens_[i]), 5s, h);
            if (r && r->status == 200) ok_.fetch_add(1);
          }
          std::this_thread::sleep_until(round + every);
        }
      });
    }
  }
  ~ViewerCrowd() { Stop(); }
  void Stop() {
    stop_.store(true);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int64_t ok() const { return ok_.load(); }

 private:
  std::vector<std::string> tokens_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> ok_{0};
  std::vector<std::thread> threads_;
};

TEST_F(PlaybackE2eTest, ViewerSpikeRaisesTheAlarmNotifiesAndStopsTheStream) {
  auto hook = support::HttpListener::Start();
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto s = Make("alarm-spike", nlohmann::json::object());
  ASSERT_NE(s, nullptr);
  Deployment& d = *s->deployment;
  ApiResponse sub = d.Call("POST", "/v1/subscriptions",
                           {{"kind", "webhook"},
                            {"target", "url=" + (*hook)->Url("/alarms") + ",unsigned=true"},
                            {"event_types", {"Alarm"}}});
  ASSERT_EQ(sub.status, 201) << sub.text;
  // Bad settings are refused naming the member.
  ApiResponse bad = d.Call("POST", "/v1/alarms", {{"channel_id", s->channel}, {"evaluation_periods", 2},
                                                  {"datapoints_to_alarm", 3}});
  EXPECT_EQ(bad.status, 400) << bad.text;
  EXPECT_NE(bad.text.find("datapoints_to_alarm"), std::string::npos) << bad.text;
  EXPECT_EQ(d.Call("POST", "/v1/alarms", {{"channel_id", "ch-000000000000"}}).status, 404);
  // One-second periods so that the test runs in seconds; the jump must hold
  // 3 s to breach and 5 s (at >= 4x the expected audience) to stop.
  ApiResponse alarm = d.Call("POST", "/v1/alarms",
                             {{"name", "spike"},
                              {"channel_id", s->channel},
                              {"period_s", 1},
                              {"datapoints_to_alarm", 2},
                              {"evaluation_periods", 3},
                              {"min_sustain_s", 3},
                              {"actions", {{"notify", true}, {"stop_stream", true}, {"reset_key", true}}},
                              // A brand-new channel: the test waives the learning time.
                              {"auto_stop", {{"ratio", 4}, {"sustain_s", 5}, {"min_learned_minutes", 0}}}});
  ASSERT_EQ(alarm.status, 201) << alarm.text;
  const std::string alarm_id = alarm.body.value("id", "");

  // The usual audience: two viewers for a while. No alarm.
  {
    ViewerCrowd usual(d, *s, "regular", 2, 1s, 1);
    std::this_thread::sleep_for(12s);
    EXPECT_GT(usual.ok(), 10);
    ApiResponse a = d.Call("GET", "/v1/alarms/" + alarm_id);
    ASSERT_EQ(a.status, 200) << a.text;
    EXPECT_NE(a.body.value("state", ""), "ALARM") << a.text;
    // The crowd arrives (a re-streamed match): 200 viewers and staying.
    ViewerCrowd crowd(d, *s, "fan", 200, 1500ms);
    const auto deadline = Clock::now() + 60s;
    bool stopped = false;
    while (Clock::now() < deadline && !stopped) {
      std::this_thread::sleep_for(500ms);
      stopped = d.Call("GET", "/v1/channels/" + s->channel + "/stream").status == 404;
    }
    crowd.Stop();
    EXPECT_TRUE(stopped) << "the stream was not stopped\n" << d.Call("GET", "/v1/alarms/" + alarm_id).text;
  }
  // The webhook got the ALARM event.
  ASSERT_TRUE((*hook)->WaitForRequests(1, 20s));
  bool alarm_seen = false;
  for (const auto& r : (*hook)->Requests()) {
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (body.is_discarded()) continue;
    const nlohmann::json& e = body.contains("event") ? body["event"] : body;
    if (e.value("event_name", "") == "Alarm" && e["detail"].value("alarm_id", "") == alarm_id &&
        e["detail"].value("state", "") == "ALARM") {
      alarm_seen = true;
      EXPECT_GT(e["detail"].value("viewers", 0.0), e["detail"].value("band_high", 1e9));
    }
  }
  EXPECT_TRUE(alarm_seen) << (*hook)->Requests().size() << " webhook requests, none an ALARM";
  // The stop reset the key: the encoder's reconnect is refused.
  auto rule = d.FindOrWaitForEvent(
      [&](const nlohmann::json& e) {
        return e.value("event_name", "") == "Rule Applied" && e["detail"].value("alarm_id", "") == alarm_id;
      },
      10s);
  ASSERT_TRUE(rule);
  EXPECT_EQ((*rule)["detail"].value("action", ""), "stop_and_reset_key");
  // The series for plots: the band and the alarm period.
  ApiResponse viewers = d.Call("GET", "/v1/channels/" + s->channel + "/viewers");
  ASSERT_EQ(viewers.status, 200) << viewers.text;
  ASSERT_TRUE(viewers.body["bands"].contains(alarm_id)) << viewers.text;
  EXPECT_GT(viewers.body["bands"][alarm_id].size(), 10u);
  ASSERT_GE(viewers.body["alarm_periods"].size(), 1u) << viewers.text;
  EXPECT_EQ(viewers.body["alarm_periods"][0].value("alarm_id", ""), alarm_id);
  ApiResponse a = d.Call("GET", "/v1/alarms/" + alarm_id);
  ASSERT_EQ(a.status, 200);
  bool history_has_alarm = false;
  for (const auto& c : a.body["channels"]) {
    for (const auto& h : c["history"]) history_has_alarm |= h.value("to", "") == "ALARM";
  }
  EXPECT_TRUE(history_has_alarm) << a.text;
}

}  // namespace
}  // namespace earshot::server
