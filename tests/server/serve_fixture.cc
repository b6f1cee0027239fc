#include "server/serve_fixture.h"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "delivery/http_client.h"
#include "support/ports.h"
#include "support/test_media.h"

namespace earshot::server::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using support::ChildProcess;

namespace {

// The suite's folder: made by the first test of the process, removed at exit.
std::unique_ptr<support::ScopedTempDir>& SuiteDir() {
  static std::unique_ptr<support::ScopedTempDir> dir;
  return dir;
}

// `first` then `second` (same format: FLAC 44.1 kHz stereo) into `out`.
Result<fs::path> Concatenate(const fs::path& first, const fs::path& second, const fs::path& out) {
  if (fs::exists(out)) return out;
  const fs::path partial = out.string() + ".partial.flac";
  auto r = support::RunCommand({"ffmpeg",
                                "-hide_banner",
                                "-nostdin",
                                "-loglevel",
                                "error",
                                "-y",
                                "-i",
                                first.string(),
                                "-i",
                                second.string(),
                                "-filter_complex",
                                "[0:a][1:a]concat=n=2:v=0:a=1",
                                "-ar",
                                "44100",
                                "-ac",
                                "2",
                                "-sample_fmt",
                                "s16",
                                "-c:a",
                                "flac",
                                partial.string()},
                               120s);
  if (!r) return std::unexpected(r.error());
  if (!r->ok()) return MakeError(ErrorCode::kInternal, r->Describe());
  std::error_code ec;
  fs::rename(partial, out, ec);
  if (ec) return MakeError(ErrorCode::kIoError, "rename " + partial.string() + ": " + ec.message());
  return out;
}

}  // namespace

// --- Deployment ----------------------------------------------------------------

std::string Deployment::api_url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(api_port) + path;
}

ApiResponse Deployment::Call(const std::string& method, const std::string& path,
                             const nlohmann::json& body, bool auth) const {
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
  out.content_type = r->Header("content-type");
  out.body = nlohmann::json::parse(r->body, nullptr, false);
  return out;
}

ApiResponse Deployment::CallRaw(const std::string& method, const std::string& path,
                                const std::string& content_type, const std::string& body) const {
  delivery::HttpRequest req;
  req.method = method;
  req.url = api_url(path);
  req.headers.push_back({"Authorization", "Bearer " + api_key});
  req.headers.push_back({"Content-Type", content_type});
  req.body = body;
  req.timeout_ms = 60000;
  ApiResponse out;
  auto r = delivery::SendHttp(req);
  if (!r) {
    out.text = r.error().ToString();
    return out;
  }
  out.status = r->status;
  out.text = r->body;
  out.content_type = r->Header("content-type");
  out.body = nlohmann::json::parse(r->body, nullptr, false);
  return out;
}

long Deployment::Hook(const std::string& name, const std::string& form) const {
  delivery::HttpRequest req;
  req.method = "POST";
  req.url = api_url("/hooks/nginx/" + name);
  req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
  req.body = form;
  auto r = delivery::SendHttp(req);
  return r ? r->status : 0;
}

std::optional<nlohmann::json> Deployment::WaitForEvent(
    const std::function<bool(const nlohmann::json&)>& want, std::chrono::milliseconds timeout,
    std::vector<nlohmann::json>* seen) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    ApiResponse r = Call("GET", "/v1/events?limit=500&after=" + std::to_string(cursor));
    if (r.status == 200) {
      for (const auto& e : r.body["events"]) {
        cursor = std::max(cursor, e["seq"].get<int64_t>());
        history.push_back(e);
        if (seen) seen->push_back(e);
        if (want(e)) return e;
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  return std::nullopt;
}

std::optional<nlohmann::json> Deployment::FindOrWaitForEvent(
    const std::function<bool(const nlohmann::json&)>& want, std::chrono::milliseconds timeout) {
  for (const nlohmann::json& e : history) {
    if (want(e)) return e;
  }
  return WaitForEvent(want, timeout);
}

std::string Deployment::rtmp_ingest_url(const std::string& key) const {
  return "rtmp://127.0.0.1:" + std::to_string(nginx->rtmp_port()) + "/ingest/" + key;
}

std::string Deployment::ServeLog() const { return support::ReadTextFile(dir / "serve.log"); }

// --- EventFeed -------------------------------------------------------------------

std::unique_ptr<EventFeed> EventFeed::Open(const Deployment& d, const std::string& query,
                                           std::vector<std::string> headers,
                                           std::chrono::milliseconds max_duration) {
  delivery::InitHttpClient();
  std::unique_ptr<EventFeed> feed(new EventFeed());
  EventFeed* raw = feed.get();
  headers.push_back("Authorization: Bearer " + d.api_key);
  headers.push_back("Accept: text/event-stream");
  feed->thread_ =
      std::thread([raw, url = d.api_url("/v1/events/stream" + query), headers = std::move(headers),
                   max_duration] { raw->Run(url, headers, max_duration); });
  return feed;
}

EventFeed::~EventFeed() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void EventFeed::Run(const std::string& url, const std::vector<std::string>& headers,
                    std::chrono::milliseconds max_duration) {
  std::string reason;
  CURL* h = curl_easy_init();
  if (h == nullptr) {
    reason = "curl_easy_init failed";
  } else {
    curl_slist* list = nullptr;
    for (const std::string& header : headers) list = curl_slist_append(list, header.c_str());
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(max_duration.count()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &EventFeed::WriteCallback);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &EventFeed::HeaderCallback);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &EventFeed::ProgressCallback);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, this);
    const CURLcode rc = curl_easy_perform(h);
    reason = stopping_.load() ? "closed by the test" : std::string(curl_easy_strerror(rc));
    curl_slist_free_all(list);
    curl_easy_cleanup(h);
  }
  std::lock_guard lock(mu_);
  end_reason_ = reason.empty() ? "ended" : reason;
  cv_.notify_all();
}

size_t EventFeed::WriteCallback(char* data, size_t size, size_t count, void* self) {
  auto* feed = static_cast<EventFeed*>(self);
  if (feed->stopping_.load()) return 0;  // aborts the transfer
  feed->OnBytes(data, size * count);
  return size * count;
}

size_t EventFeed::HeaderCallback(char* data, size_t size, size_t count, void* self) {
  auto* feed = static_cast<EventFeed*>(self);
  const std::string line(data, size * count);
  std::lock_guard lock(feed->mu_);
  if (line.starts_with("HTTP/")) {
    const size_t space = line.find(' ');
    if (space != std::string::npos)
      feed->status_ = std::strtol(line.c_str() + space + 1, nullptr, 10);
  } else if (line.size() > 13 && strncasecmp(line.c_str(), "content-type:", 13) == 0) {
    std::string v = line.substr(13);
    v.erase(0, v.find_first_not_of(' '));
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
    feed->content_type_ = v;
  } else if (line == "\r\n" || line == "\n") {
    feed->connected_ = true;
    feed->cv_.notify_all();
  }
  return size * count;
}

int EventFeed::ProgressCallback(void* self, int64_t, int64_t, int64_t, int64_t) {
  return static_cast<EventFeed*>(self)->stopping_.load() ? 1 : 0;
}

void EventFeed::OnBytes(const char* data, size_t size) {
  pending_.append(data, size);
  // Events end with a blank line; fields are "name: value" lines.
  while (true) {
    const size_t end = pending_.find("\n\n");
    if (end == std::string::npos) return;
    const std::string block = pending_.substr(0, end);
    pending_.erase(0, end + 2);
    Received r;
    std::string data_text;
    size_t pos = 0;
    while (pos <= block.size()) {
      size_t nl = block.find('\n', pos);
      if (nl == std::string::npos) nl = block.size();
      const std::string line = block.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty() || line[0] == ':') continue;  // comment (keep-alive)
      const size_t colon = line.find(':');
      const std::string field = line.substr(0, colon);
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
      if (field == "id") r.id = std::strtoll(value.c_str(), nullptr, 10);
      if (field == "event") r.name = value;
      if (field == "data") data_text += value;
    }
    if (data_text.empty()) continue;
    r.event = nlohmann::json::parse(data_text, nullptr, false);
    r.at = Clock::now();
    std::lock_guard lock(mu_);
    events_.push_back(std::move(r));
    cv_.notify_all();
  }
}

bool EventFeed::WaitConnected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return connected_ || !end_reason_.empty(); }) &&
         connected_;
}

long EventFeed::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

std::string EventFeed::content_type() const {
  std::lock_guard lock(mu_);
  return content_type_;
}

std::optional<EventFeed::Received> EventFeed::WaitFor(
    const std::function<bool(const nlohmann::json&)>& want, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::unique_lock lock(mu_);
  size_t checked = 0;
  while (true) {
    for (; checked < events_.size(); ++checked) {
      if (want(events_[checked].event)) return events_[checked];
    }
    if (!end_reason_.empty()) return std::nullopt;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && checked == events_.size()) {
      return std::nullopt;
    }
  }
}

std::vector<EventFeed::Received> EventFeed::Events() const {
  std::lock_guard lock(mu_);
  return events_;
}

std::string EventFeed::end_reason() const {
  std::lock_guard lock(mu_);
  return end_reason_;
}

// --- ServeE2eTest ----------------------------------------------------------------------

fs::path ServeE2eTest::block_media_;
fs::path ServeE2eTest::track_media_;
fs::path ServeE2eTest::mute_media_;

// The catalog and media are made once, by the first test that runs; a
// failure there fails that test (gtest would only skip the tests of a
// suite whose SetUpTestSuite failed, and ctest counts skips as passes).
void ServeE2eTest::SetUp() {
  if (mute_media_.empty()) PrepareSuite();
  ASSERT_FALSE(mute_media_.empty()) << "the suite's catalog or media could not be made (see above)";
}

void ServeE2eTest::PrepareSuite() {
  if (!SuiteDir()) {
    auto dir = support::ScopedTempDir::Create("earshot_serve_e2e");
    ASSERT_TRUE(dir) << dir.error().ToString();
    SuiteDir() = std::make_unique<support::ScopedTempDir>(std::move(*dir));
  }
  auto battle = support::WesnothMusic("battle");
  auto knolls = support::WesnothMusic("knolls");
  auto wanderer = support::WesnothMusic("wanderer");
  ASSERT_TRUE(battle && knolls && wanderer) << "wesnoth-1.16-music missing";
  if (!fs::exists(Catalog())) {
    const fs::path partial = Dir() / "catalog.partial";
    fs::remove_all(partial);
    for (auto [path, rule] :
         {std::pair{*battle, "block"}, {*knolls, "mute"}, {*wanderer, "track"}}) {
      auto r =
          support::RunCommand({EARSHOT_BINARY, "--catalog", partial.string(), "catalog", "add",
                               "--rule", rule, "--rights-holder", "Wesnoth Project", path.string()},
                              120s);
      ASSERT_TRUE(r && r->ok()) << (r ? r->Describe() : r.error().ToString());
    }
    fs::rename(partial, Catalog());
  }
  // `battle` (block) under a talking streamer, 24 s.
  auto block_media = support::MakeMusicUnderVoice(
      Dir(), *battle, 30, 24, "welcome back everyone, today we try the hard level", -2);
  ASSERT_TRUE(block_media) << block_media.error().ToString();
  // `wanderer` (track) for 60 s: long scans that must not be stopped.
  auto track_media = support::MakeMusicUnderVoice(Dir(), *wanderer, 10, 60,
                                                  "this one is fine to play, it is licensed", -4);
  ASSERT_TRUE(track_media) << track_media.error().ToString();
  // `knolls` (mute) under a voice, then the voice alone.
  auto mute_music = support::MakeMusicUnderVoice(Dir(), *knolls, 40, kMuteMusicS,
                                                 "let me read the chat while this plays", -4);
  ASSERT_TRUE(mute_music) << mute_music.error().ToString();
  auto mute_tail =
      support::MakeVoice(Dir(), "okay the song is over, back to the game now", kMuteTailS);
  ASSERT_TRUE(mute_tail) << mute_tail.error().ToString();
  auto mute_media = Concatenate(*mute_music, *mute_tail, Dir() / "mute-then-voice.flac");
  ASSERT_TRUE(mute_media) << mute_media.error().ToString();
  block_media_ = *block_media;
  track_media_ = *track_media;
  mute_media_ = *mute_media;  // last: SetUp() takes it as "prepared"
}

fs::path ServeE2eTest::Dir() { return SuiteDir()->path(); }
fs::path ServeE2eTest::Catalog() { return Dir() / "catalog"; }

void ServeE2eTest::WriteConfig(Deployment& d, const DeployOptions& o, uint16_t rtmp_port,
                               uint16_t http_port) {
  const fs::path catalog = o.catalog_dir.empty() ? Catalog() : o.catalog_dir;
  std::ofstream out(d.config, std::ios::trunc);
  out << "[server]\nlisten = \"127.0.0.1:" << d.api_port << "\"\n"
      << "data_dir = \"" << d.data_dir().string() << "\"\n"
      << "catalog_dir = \"" << catalog.string() << "\"\n"
      << "shutdown_grace_s = 10\n"
      << "[queue]\nlease_s = " << o.lease_s << "\nretry_backoff_s = 0.5\n"
      << "[workers]\nworkers = " << o.workers << "\npoll_s = 0.2\n"
      << "[scan]\nstall_timeout_s = 4\nreconnects = 2\nreconnect_backoff_s = 0.5\nongoing_every_s "
         "= 5\n"
      << "[ingest]\nrtmp_url = \"rtmp://127.0.0.1:" << rtmp_port << "\"\n"
      << "control_url = \"http://127.0.0.1:" << http_port << "/control\"\n"
      << "playback_url = \"http://127.0.0.1:" << http_port << "/hls\"\n"
      << "hls_dir = \"" << (d.dir / "hls").string() << "\"\n"
      << "[rules]\nblock_action = \"" << o.block_action << "\"\n"
      << o.extra_toml;
}

ChildProcess ServeE2eTest::StartEarshot(const Deployment& d, const std::string& command,
                                        const std::string& log_name) {
  support::SpawnOptions spawn;
  spawn.argv = {EARSHOT_BINARY, command, "--config", d.config.string()};
  spawn.output_file = d.dir / log_name;
  auto child = ChildProcess::Spawn(spawn);
  EXPECT_TRUE(child) << child.error().ToString();
  return std::move(*child);
}

bool ServeE2eTest::WaitHealthy(const Deployment& d, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (d.Call("GET", "/healthz", nullptr, false).status == 200) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::unique_ptr<Deployment> ServeE2eTest::Deploy(const std::string& name, const DeployOptions& o) {
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
    // The kernel may hand out a port again once it was released: the API
    // must not get one of nginx's (nginx binds first and would answer).
    for (int i = 0; i < 20 && (raw->api_port == rtmp_port || raw->api_port == http_port); ++i) {
      auto other = support::FreePort();
      if (!other) return std::unexpected(other.error());
      raw->api_port = *other;
    }
    WriteConfig(*raw, o, rtmp_port, http_port);
    auto r = support::RunCommand(
        {EARSHOT_BINARY, "nginx-config", "--config", raw->config.string(), "--run-dir",
         run_dir.string(), "--http-listen", "127.0.0.1:" + std::to_string(http_port)},
        30s);
    if (!r) return std::unexpected(r.error());
    if (!r->ok()) return MakeError(ErrorCode::kInternal, r->Describe());
    return r->stdout_text;
  };
  auto nginx = support::NginxRtmp::Start(nopts);
  EXPECT_TRUE(nginx) << nginx.error().ToString();
  if (!nginx) return nullptr;
  d->nginx = std::move(*nginx);
  auto key = support::RunCommand(
      {EARSHOT_BINARY, "admin", "create-key", "--name", "e2e", "--config", d->config.string()},
      30s);
  EXPECT_TRUE(key && key->ok()) << (key ? key->Describe() : key.error().ToString());
  if (!key || !key->ok()) return nullptr;
  d->api_key = key->stdout_text.substr(0, key->stdout_text.find('\n'));
  d->serve = StartEarshot(*d, "serve", "serve.log");
  EXPECT_TRUE(WaitHealthy(*d, 20s)) << d->ServeLog();
  return d;
}

std::pair<std::string, std::string> ServeE2eTest::CreateChannel(const Deployment& d,
                                                                const nlohmann::json& spec) {
  ApiResponse r = d.Call("POST", "/v1/channels", spec);
  EXPECT_EQ(r.status, 201) << r.text;
  if (r.status != 201) return {};
  return {r.body["channel"]["id"], r.body["stream_key"]["value"]};
}

std::unique_ptr<support::FfmpegPublisher> ServeE2eTest::Publish(const Deployment& d,
                                                                const fs::path& media,
                                                                const std::string& key, bool loop) {
  support::FfmpegPublisherOptions pub;
  pub.input = media;
  pub.url = d.rtmp_ingest_url(key);
  pub.loop = loop;
  auto p = support::FfmpegPublisher::Start(pub);
  EXPECT_TRUE(p) << p.error().ToString();
  return p ? std::move(*p) : nullptr;
}

bool ServeE2eTest::IsEvent(const nlohmann::json& e, const std::string& name,
                           const std::string& channel) {
  return e.value("event_name", "") == name && e.value("channel_id", "") == channel;
}

}  // namespace earshot::server::e2e
