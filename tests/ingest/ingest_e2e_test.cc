// End to end: the config GenerateNginxConfig writes, in a real nginx 1.22 +
// libnginx-mod-rtmp, with earshot's side played by HttpListeners on
// 127.0.0.1 (the hooks, answered with src/ingest's HookAnswer; the playback
// authorisation) and a real ffmpeg publishing with a secret stream key.
//
// What it proves:
//  * `nginx -t` accepts the generated config (and the check can fail);
//  * a publisher on ingest/KEY answered 302 to RelayUrl(channel) is relayed to
//    the relay application: HLS named by channel id, served at PlaybackUrl
//    behind the playback authorisation (the token carried onto segments, the
//    viewer's headers forwarded, a 403 blocking playlist and segments),
//    readable by a scanner at ScanInputUrl, and the key appears in no file of
//    the HLS folder (nor, with error_log at crit, in any file nginx writes);
//    on_publish_done / hls_publish_done when it stops;
//  * a 403 to on_publish rejects the publisher, a 403 to on_update cuts it;
//  * NginxRtmpController::DropPublisher drops a live publisher (by name or by
//    clientid), answers kNotFound when nothing matches and kUnavailable when
//    nginx is down, and never logs the key.
//
// Needs nginx, libnginx-mod-rtmp, ffmpeg (ffprobe) and wesnoth-1.16-music.
// Every wait is bounded; everything listens on and connects to 127.0.0.1.
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "delivery/http_client.h"
#include "ingest/hook_form.h"
#include "ingest/ingest_controller.h"
#include "ingest/nginx_config.h"
#include "ingest/nginx_hook.h"
#include "ingest/registry.h"
#include "support/ffmpeg_publisher.h"
#include "support/http_listener.h"
#include "support/nginx_rtmp.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/test_media.h"

namespace earshot::ingest {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using testing::FfmpegPublisher;
using testing::FfmpegPublisherOptions;
using testing::HlsPlaylist;
using testing::HttpListener;
using testing::HttpReply;
using testing::NginxRtmp;
using testing::NginxRtmpOptions;
using testing::RecordedRequest;

constexpr std::string_view kChannel = "ch-test1";
constexpr std::string_view kToken = "tok-viewer-1";
constexpr std::string_view kOrigin = "https://viewer.example";
constexpr milliseconds kPoll(100);
// Publish → relay → first HLS segments: a few seconds; generous for a busy
// machine.
constexpr milliseconds kLongWait(30000);
constexpr milliseconds kShortWait(15000);

// A stream key unique to the run: "sk_live_" + 24 hex digits.
std::string MakeStreamKey() {
  std::random_device random;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "sk_live_";
  for (int i = 0; i < 24; ++i) key += kHex[random() % 16];
  return key;
}

// `user NAME GROUP` when running as root: the workers then keep root's rights
// and can write HLS into the private temp run folder (as `nobody` they could
// not). "" otherwise (nginx does not switch users).
std::string WorkerUser() {
  if (::geteuid() != 0) return "";
  const passwd* user = ::getpwuid(::geteuid());
  const group* grp = ::getgrgid(::getegid());
  if (user == nullptr || grp == nullptr) return "root root";
  return std::string(user->pw_name) + " " + std::string(grp->gr_name);
}

// The options the tests run nginx with: everything on 127.0.0.1.
NginxConfigOptions LoopbackOptions(uint16_t rtmp_port, uint16_t http_port, const fs::path& run_dir,
                                   const std::string& hook_base_url,
                                   const std::string& playback_auth_url) {
  NginxConfigOptions o;
  o.run_dir = run_dir.string();
  o.hls_dir = (run_dir / "ch").string();
  o.user = WorkerUser();
  o.error_log_level = "info";  // for failure messages (ErrorLogTail)
  o.rtmp_listen = "127.0.0.1";
  o.rtmp_port = rtmp_port;
  o.http_listen = "127.0.0.1";
  o.http_port = http_port;
  o.publish_allow = {"127.0.0.1"};
  o.hook_base_url = hook_base_url;
  o.notify_update_timeout_s = 2;
  o.hls_fragment_s = 1;
  o.hls_playlist_length_s = 6;
  o.playback_auth_url = playback_auth_url;
  return o;
}

HttpReply ToReply(const HookAnswer& answer) {
  HttpReply reply;
  reply.status = answer.status;
  reply.body = answer.body;
  reply.headers.emplace_back("Content-Type", "text/plain");
  if (!answer.location.empty()) reply.headers.emplace_back("Location", answer.location);
  return reply;
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// Every regular file under `dir` (recursively).
std::vector<fs::path> FilesUnder(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  return files;
}

// `nginx -t` of `config` written as RUN/nginx.conf (RUN/logs and RUN/tmp made).
Result<testing::CommandResult> NginxTest(const fs::path& run_dir, const std::string& config) {
  const auto nginx = testing::FindExecutable("nginx");
  if (!nginx) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "nginx not found: apt-get install nginx libnginx-mod-rtmp");
  }
  std::error_code ec;
  fs::create_directories(run_dir / "logs", ec);
  fs::create_directories(run_dir / "tmp", ec);
  const fs::path conf = run_dir / "nginx.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    out << config;
    if (!out.good()) return MakeError(ErrorCode::kIoError, "writing " + conf.string());
  }
  return testing::RunCommand({nginx->string(), "-t", "-p", run_dir.string() + "/", "-e",
                              (run_dir / "logs" / "error.log").string(), "-c", conf.string()},
                             seconds(30));
}

// ---- nginx -t ----

TEST(IngestNginxConfigE2eTest, NginxAcceptsTheGeneratedConfig) {
  auto dir = testing::ScopedTempDir::Create("earshot-ingest-conf");
  ASSERT_TRUE(dir) << dir.error().ToString();

  // `nginx -t` binds the listening sockets (it only tolerates "address in
  // use"), so every variant listens on loopback addresses and free ports.
  auto rtmp_port = testing::FreePort();
  ASSERT_TRUE(rtmp_port) << rtmp_port.error().ToString();
  auto http_port = testing::FreePort();
  ASSERT_TRUE(http_port) << http_port.error().ToString();

  // What the tests below run.
  NginxConfigOptions loopback = LoopbackOptions(*rtmp_port, *http_port, dir->path() / "loopback",
                                                "http://127.0.0.1:8080/hooks/nginx",
                                                "http://127.0.0.1:8080/v1/playback/auth");
  // The documented defaults (daemon on, no user, warn log, 10 s timers...)
  // with only the folders and the listens moved.
  NginxConfigOptions defaults;
  defaults.run_dir = (dir->path() / "defaults").string();
  defaults.hls_dir = (dir->path() / "defaults" / "hls").string();
  defaults.daemon = true;
  defaults.rtmp_listen = "127.0.0.1";
  defaults.rtmp_port = *rtmp_port;
  defaults.http_listen = "127.0.0.1";
  defaults.http_port = *http_port;
  // An address other than 127.0.0.1 (the extra `listen 127.0.0.1:PORT`
  // lines), a `user NAME GROUP`, CIDR allow entries, an https auth URL.
  NginxConfigOptions other_address = defaults;
  other_address.run_dir = (dir->path() / "other").string();
  other_address.hls_dir = (dir->path() / "other" / "hls").string();
  other_address.rtmp_listen = "127.0.0.2";
  other_address.http_listen = "127.0.0.2";
  other_address.user = "nobody nogroup";
  other_address.publish_allow = {"192.0.2.0/24", "2001:db8::/32"};
  // nginx resolves proxy_pass hosts when it loads the config: an address
  // keeps `nginx -t` off DNS.
  other_address.playback_auth_url = "https://127.0.0.1:8443/v1/playback/auth";

  for (const NginxConfigOptions* options : {&loopback, &defaults, &other_address}) {
    SCOPED_TRACE(options->run_dir);
    auto config = GenerateNginxConfig(*options);
    ASSERT_TRUE(config) << config.error().ToString();
    auto result = NginxTest(options->run_dir, *config);
    ASSERT_TRUE(result) << result.error().ToString();
    EXPECT_TRUE(result->ok()) << result->Describe() << "\nconfig:\n" << *config;
    EXPECT_NE(result->stderr_text.find("test is successful"), std::string::npos)
        << result->Describe();
  }

  // The check is not vacuous: nginx -t refuses a broken variant.
  auto config = GenerateNginxConfig(loopback);
  ASSERT_TRUE(config);
  auto broken = NginxTest(dir->path() / "broken", *config + "\nearshot_bogus_directive on;\n");
  ASSERT_TRUE(broken) << broken.error().ToString();
  EXPECT_FALSE(broken->ok()) << broken->Describe();
  EXPECT_NE(broken->stderr_text.find("earshot_bogus_directive"), std::string::npos)
      << broken->Describe();
}

// ---- nginx running the generated config ----

class IngestE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { delivery::InitHttpClient(); }

  void SetUp() override {
    auto music = testing::WesnothMusic("battle");
    ASSERT_TRUE(music) << music.error().ToString();
    media_ = *music;
    key_ = MakeStreamKey();

    auto hooks = HttpListener::Start();
    ASSERT_TRUE(hooks) << hooks.error().ToString();
    hooks_ = std::move(*hooks);
    auto auth = HttpListener::Start(HttpListener::StatusScript({200}));
    ASSERT_TRUE(auth) << auth.error().ToString();
    auth_ = std::move(*auth);

    NginxRtmpOptions nginx_options;
    nginx_options.config_generator = [this](uint16_t rtmp_port, uint16_t http_port,
                                            const fs::path& run_dir) -> Result<std::string> {
      config_options_ = LoopbackOptions(rtmp_port, http_port, run_dir, hooks_->Url("/hooks"),
                                        auth_->Url("/v1/playback/auth"));
      config_options_.error_log_level = error_log_level_;
      return GenerateNginxConfig(config_options_);
    };
    auto nginx = NginxRtmp::Start(nginx_options);
    ASSERT_TRUE(nginx) << nginx.error().ToString();
    nginx_ = std::move(*nginx);

    IngestSettings settings;
    settings.rtmp_url = "rtmp://127.0.0.1:" + std::to_string(nginx_->rtmp_port());
    settings.relay_app = config_options_.relay_app;
    settings.control_url = nginx_->http_url("/control");
    settings.playback_url = nginx_->http_url("/hls");
    auto controller = MakeIngestController("nginx-rtmp", settings);
    ASSERT_TRUE(controller) << controller.error().ToString();
    controller_ = std::move(*controller);
  }

  void TearDown() override {
    // Publishers first (their on_publish_done needs the hook listener).
    publishers_.clear();
    if (nginx_) static_cast<void>(nginx_->Stop());
  }

  fs::path hls_dir() const { return config_options_.hls_dir; }

  // Answers on_publish with `on_publish`, on_update with `on_update_status`,
  // every other hook 200.
  void AnswerHooks(HookAnswer on_publish, int on_update_status = 200) {
    const std::string publish_path = HookPath("on_publish");
    const std::string update_path = HookPath("on_update");
    hooks_->SetHandler(
        [publish_path, update_path, on_publish, on_update_status](const RecordedRequest& request) {
          const std::string_view path = PathOf(request.target);
          if (path == publish_path) return ToReply(on_publish);
          if (path == update_path && on_update_status != 200) {
            return ToReply(HookAnswer{on_update_status, "", "refused at update"});
          }
          return ToReply(HookAnswer::Allow());
        });
  }

  static std::string HookPath(std::string_view hook) { return "/hooks/" + std::string(hook); }

  // Starts ffmpeg publishing the music (looped) to ingest/KEY.
  FfmpegPublisher* Publish() {
    FfmpegPublisherOptions options;
    options.input = media_;
    options.url = nginx_->rtmp_url(config_options_.ingest_app, key_);
    options.loop = true;
    auto publisher = FfmpegPublisher::Start(options);
    EXPECT_TRUE(publisher) << publisher.error().ToString();
    if (!publisher) return nullptr;
    publishers_.push_back(std::move(*publisher));
    return publishers_.back().get();
  }

  // The hooks nginx sent to `path` ("/hooks/on_publish"), typed with
  // src/ingest's parser; a body that does not parse fails the test.
  std::vector<NginxHook> HooksAt(std::string_view path) const {
    std::vector<NginxHook> hooks;
    for (const RecordedRequest& request : hooks_->Requests()) {
      if (PathOf(request.target) != path) continue;
      EXPECT_EQ(request.method, "POST");
      EXPECT_EQ(request.Header("Content-Type"), "application/x-www-form-urlencoded");
      auto form = ParseFormBody(request.body);
      EXPECT_TRUE(form) << form.error().ToString();
      if (!form) continue;
      auto hook = NginxHook::FromForm(*form);
      EXPECT_TRUE(hook) << hook.error().ToString();
      if (hook) hooks.push_back(std::move(*hook));
    }
    return hooks;
  }

  // Waits for a hook at `path` about stream `name` (and `call`).
  std::optional<NginxHook> WaitForHook(std::string_view path, HookCall call, std::string_view name,
                                       milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      for (NginxHook& hook : HooksAt(path)) {
        if (hook.call == call && hook.name == name) return std::move(hook);
      }
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(kPoll);
    }
  }

  // Everything the hook listener saw, without bodies (they hold the key).
  std::string HookTargets() const {
    std::string text;
    for (const RecordedRequest& request : hooks_->Requests()) text += request.target + " ";
    return text.empty() ? "(none)" : text;
  }

  // GET of the channel's playlist as a viewer (token, Origin).
  Result<testing::HttpResponse> GetAsViewer(const std::string& target) const {
    return nginx_->HttpGet(target, milliseconds(5000), {{"Origin", std::string(kOrigin)}});
  }

  std::string PlaylistTarget() const {
    return "/hls/" + std::string(kChannel) + ".m3u8?token=" + std::string(kToken);
  }

  // Polls the playlist (as a viewer) until it lists `min_segments` segments.
  Result<HlsPlaylist> WaitForPlaylist(std::size_t min_segments, milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    std::string last = "nothing yet";
    while (true) {
      auto response = GetAsViewer(PlaylistTarget());
      if (!response) {
        last = response.error().ToString();
      } else if (response->status != 200) {
        last = "HTTP " + std::to_string(response->status);
      } else {
        HlsPlaylist playlist = testing::ParseHlsPlaylist(response->body);
        if (playlist.segments.size() >= min_segments) return playlist;
        last = "playlist:\n" + playlist.text;
      }
      if (Clock::now() >= deadline) {
        return MakeError(ErrorCode::kUnavailable, "waiting for " + PlaylistTarget() +
                                                      "; last: " + last + "\nnginx error log:\n" +
                                                      nginx_->ErrorLogTail(15));
      }
      std::this_thread::sleep_for(kPoll);
    }
  }

  // For failure messages: ffmpeg's and nginx's logs.
  std::string Logs(FfmpegPublisher* publisher) const {
    return "\nffmpeg:\n" + (publisher ? publisher->log_text(15) : std::string("-")) +
           "\nnginx error log:\n" + nginx_->ErrorLogTail(15) + "\nhooks: " + HookTargets();
  }

  // "info" helps failure messages; it logs stream keys (see nginx_config.h).
  std::string error_log_level_ = "info";
  fs::path media_;
  std::string key_;
  std::unique_ptr<HttpListener> hooks_;
  std::unique_ptr<HttpListener> auth_;
  NginxConfigOptions config_options_;  // written by the config generator
  std::unique_ptr<NginxRtmp> nginx_;
  std::unique_ptr<IngestController> controller_;
  std::vector<std::unique_ptr<FfmpegPublisher>> publishers_;
};

// nginx's error log at `crit`, the level at which it writes no stream keys
// (nginx_config.h): then no file nginx writes may contain the key.
class IngestE2eQuietLogTest : public IngestE2eTest {
 protected:
  IngestE2eQuietLogTest() { error_log_level_ = "crit"; }
};

TEST_F(IngestE2eQuietLogTest, RelayedStreamIsServedAsHlsUnderTheChannelIdAndNeverShowsTheKey) {
  const std::string relay_url = controller_->RelayUrl(kChannel);
  EXPECT_EQ(relay_url, nginx_->rtmp_url("hls", kChannel));
  AnswerHooks(HookAnswer::Redirect(relay_url));
  FfmpegPublisher* publisher = Publish();
  ASSERT_NE(publisher, nullptr);

  // nginx asks earshot, with the key as the stream name.
  auto on_publish = WaitForHook("/hooks/on_publish", HookCall::kPublish, key_, kShortWait);
  ASSERT_TRUE(on_publish) << "no on_publish for the key; " << Logs(publisher);
  EXPECT_EQ(on_publish->app, "ingest");
  EXPECT_EQ(on_publish->addr, "127.0.0.1");
  EXPECT_EQ(on_publish->type, "live");
  EXPECT_FALSE(on_publish->clientid.empty());

  // The relay publishes under the channel id; HLS appears under that name,
  // served at the controller's playback URL behind the authorisation.
  ASSERT_TRUE(nginx_->WaitForPublishing("hls", kChannel, true, kLongWait)) << Logs(publisher);
  auto playlist = WaitForPlaylist(2, kLongWait);
  ASSERT_TRUE(playlist) << playlist.error().ToString() << Logs(publisher);
  EXPECT_EQ(controller_->PlaybackUrl(kChannel),
            nginx_->http_url("/hls/" + std::string(kChannel) + ".m3u8"));
  EXPECT_EQ(playlist->text.find(key_), std::string::npos) << playlist->text;
  const std::string token_suffix = ".ts?token=" + std::string(kToken);
  for (const std::string& segment : playlist->segments) {
    EXPECT_TRUE(segment.starts_with(std::string(kChannel) + "-")) << segment;
    EXPECT_TRUE(segment.ends_with(token_suffix))
        << "sub_filter should carry the token: " << segment;
  }
  const std::string segment_target = "/hls/" + playlist->segments.front();
  auto segment = GetAsViewer(segment_target);
  ASSERT_TRUE(segment) << segment.error().ToString();
  ASSERT_EQ(segment->status, 200) << segment_target;
  ASSERT_GE(segment->body.size(), 188u);
  EXPECT_EQ(segment->body[0], 0x47) << "not an MPEG-TS segment";

  // The authorisation saw the viewer's request: the path nginx serves (no
  // query), the token apart, address, Origin; for the playlist and for the
  // segment.
  bool saw_playlist = false;
  bool saw_segment = false;
  for (const RecordedRequest& request : auth_->Requests()) {
    EXPECT_EQ(PathOf(request.target), "/v1/playback/auth");
    EXPECT_EQ(request.Header("X-Real-IP"), "127.0.0.1");
    EXPECT_EQ(request.Header("Origin"), kOrigin);
    EXPECT_TRUE(request.body.empty());
    const std::string uri = request.Header("X-Original-URI");
    EXPECT_EQ(uri.find('?'), std::string::npos) << uri;
    EXPECT_EQ(request.Header("X-Playback-Token"), kToken);
    saw_playlist = saw_playlist || uri == PathOf(PlaylistTarget());
    saw_segment = saw_segment || uri == PathOf(segment_target);
  }
  EXPECT_TRUE(saw_playlist) << "no authorisation request for " << PlaylistTarget();
  EXPECT_TRUE(saw_segment) << "no authorisation request for " << segment_target;

  // A 403 from the authorisation blocks the playlist and the segments.
  const std::size_t auth_before = auth_->request_count();
  auth_->SetScript(HttpListener::StatusScript({403}));
  auto denied_playlist = GetAsViewer(PlaylistTarget());
  ASSERT_TRUE(denied_playlist) << denied_playlist.error().ToString();
  EXPECT_EQ(denied_playlist->status, 403);
  EXPECT_EQ(denied_playlist->body.find("#EXTM3U"), std::string::npos);
  auto denied_segment = GetAsViewer(segment_target);
  ASSERT_TRUE(denied_segment) << denied_segment.error().ToString();
  EXPECT_EQ(denied_segment->status, 403);
  EXPECT_GE(auth_->request_count(), auth_before + 2);
  auth_->SetScript(HttpListener::StatusScript({200}));

  // A scanner reads the relayed copy at ScanInputUrl; the key's own stream
  // cannot be played.
  auto streams = testing::ProbeStreams(controller_->ScanInputUrl(kChannel), kShortWait);
  ASSERT_TRUE(streams) << streams.error().ToString();
  EXPECT_TRUE(std::any_of(streams->begin(), streams->end(),
                          [](const testing::ProbedStream& s) { return s.codec_type == "audio"; }));
  auto keyed = testing::ProbeStreams(nginx_->rtmp_url("ingest", key_), kShortWait);
  EXPECT_FALSE(keyed) << "the ingest application must not be playable";

  // The HLS folder: files named by channel id, the key nowhere (names or
  // contents).
  const std::vector<fs::path> files = FilesUnder(hls_dir());
  bool has_playlist = false;
  int ts_files = 0;
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    EXPECT_TRUE(name.starts_with(std::string(kChannel))) << file;
    EXPECT_EQ(file.string().find(key_), std::string::npos) << file;
    EXPECT_EQ(testing::ReadTextFile(file).find(key_), std::string::npos)
        << "the stream key is inside " << file;
    has_playlist = has_playlist || name == std::string(kChannel) + ".m3u8";
    ts_files += name.ends_with(".ts") ? 1 : 0;
  }
  EXPECT_TRUE(has_playlist) << hls_dir();
  EXPECT_GE(ts_files, 2) << hls_dir();

  // The publisher stops: on_publish_done for the key, hls_publish_done for
  // the channel.
  publisher->Stop();
  auto done = WaitForHook("/hooks/on_publish_done", HookCall::kPublishDone, key_, kShortWait);
  ASSERT_TRUE(done) << Logs(publisher);
  EXPECT_EQ(done->app, "ingest");
  EXPECT_EQ(done->clientid, on_publish->clientid);
  auto relay_done =
      WaitForHook("/hooks/hls_publish_done", HookCall::kPublishDone, kChannel, kShortWait);
  ASSERT_TRUE(relay_done) << Logs(publisher);
  EXPECT_EQ(relay_done->app, "hls");
  EXPECT_TRUE(nginx_->WaitForPublishing("ingest", key_, false, kShortWait));
  EXPECT_TRUE(nginx_->WaitForPublishing("hls", kChannel, false, kShortWait));

  // Every session has ended (the access logs are written at disconnect): no
  // file in nginx's run folder (HLS, RTMP and HTTP access logs, error log,
  // config) holds the key.
  ASSERT_TRUE(nginx_->Stop());
  const std::vector<fs::path> nginx_files = FilesUnder(nginx_->run_dir());
  EXPECT_TRUE(std::any_of(nginx_files.begin(), nginx_files.end(), [](const fs::path& file) {
    return file.filename() == "rtmp_access.log";
  })) << "no RTMP access log was written";
  // Nor the viewer's playback token: the HTTP access log has no queries.
  const fs::path http_log = nginx_->run_dir() / "logs" / "access.log";
  const std::string http_log_text = testing::ReadTextFile(http_log);
  EXPECT_NE(http_log_text.find(".m3u8"), std::string::npos) << "no HTTP access log line in " << http_log;
  EXPECT_EQ(http_log_text.find(kToken), std::string::npos) << http_log_text;
  for (const fs::path& file : nginx_files) {
    const std::string text = testing::ReadTextFile(file);
    const std::size_t at = text.find(key_);
    EXPECT_EQ(at, std::string::npos)
        << "the stream key is in " << file << ": ..."
        << text.substr(at == std::string::npos ? 0 : at - std::min<std::size_t>(at, 80), 80)
        << "...";
  }
}

TEST_F(IngestE2eTest, ForbiddenOnPublishRejectsThePublisher) {
  AnswerHooks(HookAnswer::Deny("unknown stream key"));
  FfmpegPublisher* publisher = Publish();
  ASSERT_NE(publisher, nullptr);

  auto exit = publisher->Wait(kLongWait);
  ASSERT_TRUE(exit) << "ffmpeg still publishing after a 403; " << Logs(publisher);
  EXPECT_FALSE(exit->success()) << exit->ToString();
  auto on_publish = WaitForHook("/hooks/on_publish", HookCall::kPublish, key_, kShortWait);
  EXPECT_TRUE(on_publish) << Logs(publisher);
  auto publishing = nginx_->IsPublishing("ingest", key_);
  ASSERT_TRUE(publishing) << publishing.error().ToString();
  EXPECT_FALSE(*publishing);
  EXPECT_TRUE(FilesUnder(hls_dir()).empty()) << "HLS written for a rejected publisher";
  EXPECT_TRUE(HooksAt("/hooks/hls_publish_done").empty()) << "nothing was relayed";
}

TEST_F(IngestE2eTest, ForbiddenOnUpdateCutsThePublisher) {
  AnswerHooks(HookAnswer::Redirect(controller_->RelayUrl(kChannel)), 403);
  FfmpegPublisher* publisher = Publish();
  ASSERT_NE(publisher, nullptr);

  // notify_update_timeout is 2 s: the first update is refused.
  auto update = WaitForHook("/hooks/on_update", HookCall::kUpdatePublish, key_, kLongWait);
  ASSERT_TRUE(update) << Logs(publisher);
  auto exit = publisher->Wait(kShortWait);
  ASSERT_TRUE(exit) << "ffmpeg still publishing after a refused update; " << Logs(publisher);
  EXPECT_TRUE(WaitForHook("/hooks/on_publish_done", HookCall::kPublishDone, key_, kShortWait))
      << Logs(publisher);
  EXPECT_TRUE(nginx_->WaitForPublishing("ingest", key_, false, kShortWait));
}

TEST_F(IngestE2eTest, DropPublisherDropsTheLivePublisherAndThenFindsNothing) {
  AnswerHooks(HookAnswer::Redirect(controller_->RelayUrl(kChannel)));
  FfmpegPublisher* publisher = Publish();
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(nginx_->WaitForPublishing("ingest", key_, true, kLongWait)) << Logs(publisher);
  ASSERT_TRUE(nginx_->WaitForPublishing("hls", kChannel, true, kLongWait)) << Logs(publisher);

  ::testing::internal::CaptureStderr();
  Status dropped = controller_->DropPublisher({"ingest", key_, ""});
  const std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(dropped) << dropped.error().ToString();
  EXPECT_EQ(logged.find(key_), std::string::npos) << "the stream key was logged";
  EXPECT_NE(logged.find(RedactStreamKey(key_)), std::string::npos) << logged;

  auto exit = publisher->Wait(kShortWait);
  EXPECT_TRUE(exit) << "ffmpeg still running after the drop; " << Logs(publisher);
  auto done = WaitForHook("/hooks/on_publish_done", HookCall::kPublishDone, key_, kShortWait);
  EXPECT_TRUE(done) << Logs(publisher);
  EXPECT_TRUE(WaitForHook("/hooks/hls_publish_done", HookCall::kPublishDone, kChannel, kShortWait))
      << Logs(publisher);
  EXPECT_TRUE(nginx_->WaitForPublishing("ingest", key_, false, kShortWait));

  // Nothing left to drop: the same key, an unknown one, an unknown clientid.
  Status again = controller_->DropPublisher({"ingest", key_, ""});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound) << again.error().ToString();
  EXPECT_EQ(again.error().ToString().find(key_), std::string::npos) << again.error().ToString();
  Status unknown = controller_->DropPublisher({"ingest", "sk_live_nobody_has_this_key", ""});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kNotFound) << unknown.error().ToString();
  Status unknown_client = controller_->DropPublisher({"ingest", "", "987654"});
  ASSERT_FALSE(unknown_client);
  EXPECT_EQ(unknown_client.error().code(), ErrorCode::kNotFound)
      << unknown_client.error().ToString();
}

TEST_F(IngestE2eTest, DropPublisherByClientIdFromThePublishHook) {
  AnswerHooks(HookAnswer::Redirect(controller_->RelayUrl(kChannel)));
  FfmpegPublisher* publisher = Publish();
  ASSERT_NE(publisher, nullptr);
  auto on_publish = WaitForHook("/hooks/on_publish", HookCall::kPublish, key_, kShortWait);
  ASSERT_TRUE(on_publish) << Logs(publisher);
  ASSERT_TRUE(nginx_->WaitForPublishing("ingest", key_, true, kLongWait)) << Logs(publisher);

  // Another client's id drops nothing; the publisher's own drops it.
  const std::string other = std::to_string(std::stoll(on_publish->clientid) + 1000);
  Status wrong = controller_->DropPublisher({"ingest", "", other});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kNotFound) << wrong.error().ToString();
  ASSERT_TRUE(publisher->running()) << Logs(publisher);

  Status dropped = controller_->DropPublisher({"ingest", "", on_publish->clientid});
  ASSERT_TRUE(dropped) << dropped.error().ToString();
  EXPECT_TRUE(publisher->Wait(kShortWait))
      << "ffmpeg still running after the drop; " << Logs(publisher);
  EXPECT_TRUE(WaitForHook("/hooks/on_publish_done", HookCall::kPublishDone, key_, kShortWait))
      << Logs(publisher);
}

TEST_F(IngestE2eTest, ControllerAnswersUnavailableWhenNginxIsStopped) {
  // Up: an unknown name is kNotFound (nginx answered "0").
  Status up = controller_->DropPublisher({"ingest", key_, ""});
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().code(), ErrorCode::kNotFound) << up.error().ToString();

  ASSERT_TRUE(nginx_->Stop());
  const auto start = Clock::now();
  Status down = controller_->DropPublisher({"ingest", key_, ""});
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), ErrorCode::kUnavailable) << down.error().ToString();
  EXPECT_EQ(down.error().ToString().find(key_), std::string::npos) << down.error().ToString();
  // Refused at once, well within the request timeout.
  EXPECT_LT(Clock::now() - start, seconds(5));
}

}  // namespace
}  // namespace earshot::ingest
