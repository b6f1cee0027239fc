#include "support/nginx_rtmp.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace earshot::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kInstallHint = "apt-get install nginx libnginx-mod-rtmp";
constexpr int kStartAttempts = 3;
constexpr milliseconds kPollInterval(100);

// `user NAME GROUP;` when running as root: workers keep root's rights and can
// write HLS into the (private, mode 0700) temp folder. Without root nginx does
// not switch users and the directive would only draw a warning.
std::string UserDirective() {
  if (::geteuid() != 0) return "";
  const passwd* user = ::getpwuid(::geteuid());
  const group* grp = ::getgrgid(::getegid());
  if (user == nullptr || grp == nullptr) return "user root root;\n";
  return "user " + std::string(user->pw_name) + " " + std::string(grp->gr_name) + ";\n";
}

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The text between `open` and the matching `close` tags after `from`, one level.
std::vector<std::string_view> Blocks(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> blocks;
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  std::size_t at = 0;
  while ((at = xml.find(open, at)) != std::string_view::npos) {
    const std::size_t start = at + open.size();
    const std::size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    blocks.push_back(xml.substr(start, end - start));
    at = end + close.size();
  }
  return blocks;
}

std::string_view FirstName(std::string_view block) {
  const std::size_t start = block.find("<name>");
  if (start == std::string_view::npos) return {};
  const std::size_t end = block.find("</name>", start);
  if (end == std::string_view::npos) return {};
  return block.substr(start + 6, end - start - 6);
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Hooks off: one application, nothing that calls out.
constexpr std::string_view kPlainConfig = R"(
rtmp {
    server {
        listen 127.0.0.1:@RTMP_PORT@;
        chunk_size 4096;
        access_log logs/rtmp_access.log;  # the default is /var/log/nginx/access.log

        application live {
            live on;
            record off;
            allow publish 127.0.0.1;
            deny publish all;
            allow play 127.0.0.1;
            deny play all;
            drop_idle_publisher @DROP_IDLE@s;

            hls on;
            hls_path @RUN@/hls;
            hls_fragment @FRAGMENT@s;
            hls_playlist_length @PLAYLIST@s;
            hls_cleanup on;
        }
    }
}

http {
    access_log logs/access.log;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    default_type application/octet-stream;

    server {
        listen 127.0.0.1:@HTTP_PORT@;

        location = /earshot-ready { return 200 "@TOKEN@"; }

        location /hls/ {
            alias @RUN@/hls/;
            types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
            add_header Cache-Control no-cache;
        }
@COMMON_LOCATIONS@
    }
}
)";

// Hooks on: the layout of the reference config.
constexpr std::string_view kHooksConfig = R"(
rtmp {
    server {
        listen 127.0.0.1:@RTMP_PORT@;
        chunk_size 4096;
        access_log logs/rtmp_access.log;  # the default is /var/log/nginx/access.log
        notify_method post;

        application live {
            live on;
            record off;
            allow publish 127.0.0.1;
            deny publish all;
            allow play 127.0.0.1;
            deny play all;
            drop_idle_publisher @DROP_IDLE@s;

            on_publish      http://127.0.0.1:@HOOK_PORT@/on_publish;
            on_publish_done http://127.0.0.1:@HOOK_PORT@/on_publish_done;
            on_play         http://127.0.0.1:@HOOK_PORT@/on_play;
            on_play_done    http://127.0.0.1:@HOOK_PORT@/on_play_done;
            on_update       http://127.0.0.1:@HOOK_PORT@/on_update;
            notify_update_timeout 5s;

            hls on;
            hls_path @RUN@/hls;
            hls_fragment @FRAGMENT@s;
            hls_playlist_length @PLAYLIST@s;
            hls_cleanup on;
        }

        application ingest {
            live on;
            allow publish 127.0.0.1;
            deny publish all;
            deny play all;
            drop_idle_publisher @DROP_IDLE@s;
            on_publish      http://127.0.0.1:@HOOK_PORT@/on_publish;
            on_publish_done http://127.0.0.1:@HOOK_PORT@/on_publish_done;
            notify_relay_redirect off;
        }

        application hls {
            live on;
            allow publish 127.0.0.1;
            deny publish all;
            allow play 127.0.0.1;
            deny play all;
            on_publish_done http://127.0.0.1:@HOOK_PORT@/hls_publish_done;
            hls on;
            hls_path @RUN@/ch;
            hls_fragment @FRAGMENT@s;
            hls_playlist_length @PLAYLIST@s;
            hls_cleanup on;
        }
    }
}

http {
    access_log logs/access.log;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    default_type application/octet-stream;

    server {
        listen 127.0.0.1:@HTTP_PORT@;

        location = /earshot-ready { return 200 "@TOKEN@"; }

        location /hls/ {
            alias @RUN@/hls/;
            types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
            add_header Cache-Control no-cache;
            auth_request /_auth;
            sub_filter_types application/vnd.apple.mpegurl;
            sub_filter_once off;
            sub_filter '.ts' '.ts?token=$arg_token';
        }

        location /ch/ {
            alias @RUN@/ch/;
            types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
            add_header Cache-Control no-cache;
            auth_request /_auth;
            sub_filter_types application/vnd.apple.mpegurl;
            sub_filter_once off;
            sub_filter '.ts' '.ts?token=$arg_token';
        }

        location = /_auth {
            internal;
            proxy_pass http://127.0.0.1:@HOOK_PORT@/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Real-IP $remote_addr;
        }
@COMMON_LOCATIONS@
    }
}
)";

constexpr std::string_view kCommonLocations = R"(
        location /control {
            allow 127.0.0.1;
            deny all;
            rtmp_control all;
        }

        location /stat {
            allow 127.0.0.1;
            deny all;
            rtmp_stat all;
        }
)";

}  // namespace

HlsPlaylist ParseHlsPlaylist(std::string_view text) {
  HlsPlaylist playlist;
  playlist.text = std::string(text);
  std::istringstream in(playlist.text);
  std::string line;
  double pending_duration = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line.starts_with("#EXT-X-MEDIA-SEQUENCE:")) {
      const std::string_view value = std::string_view(line).substr(22);
      std::from_chars(value.data(), value.data() + value.size(), playlist.media_sequence);
    } else if (line.starts_with("#EXTINF:")) {
      double duration = 0;
      const std::string_view value = std::string_view(line).substr(8);
      std::from_chars(value.data(), value.data() + value.size(), duration);
      pending_duration = duration;  // applies to the next URI line
    } else if (line.starts_with("#EXT-X-ENDLIST")) {
      playlist.ended = true;
    } else if (line[0] != '#') {
      playlist.segments.push_back(line);
      playlist.durations_s.push_back(pending_duration);
      pending_duration = 0;
    }
  }
  return playlist;
}

Result<std::unique_ptr<NginxRtmp>> NginxRtmp::Start(NginxRtmpOptions options) {
  std::filesystem::path nginx = options.nginx_binary;
  if (nginx.empty()) {
    auto found = FindExecutable("nginx");
    if (!found) {
      return MakeError(
          ErrorCode::kFailedPrecondition,
          "nginx is not installed (not in PATH nor /usr/sbin): " + std::string(kInstallHint));
    }
    nginx = *found;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(nginx, ec)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "nginx " + nginx.string() + " does not exist: " + std::string(kInstallHint));
  }
  if (!std::filesystem::is_regular_file(options.rtmp_module, ec)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "the nginx RTMP module " + options.rtmp_module.string() +
                         " is missing: " + std::string(kInstallHint));
  }
  auto dir = ScopedTempDir::Create("earshot-nginx");
  if (!dir) return std::unexpected(dir.error().Wrap("nginx run folder"));
  std::unique_ptr<NginxRtmp> server(new NginxRtmp(std::move(options), std::move(*dir)));
  for (const char* sub : {"logs", "tmp", "hls", "ch"}) {
    std::filesystem::create_directories(server->run_dir() / sub, ec);
    if (ec) {
      return MakeError(ErrorCode::kIoError,
                       "creating " + (server->run_dir() / sub).string() + ": " + ec.message());
    }
  }
  std::random_device random;
  server->ready_token_ = "earshot-" + std::to_string(random()) + std::to_string(::getpid());

  Status started;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    auto rtmp = FreePort();
    if (!rtmp) return std::unexpected(rtmp.error());
    auto http = FreePort();
    // The kernel may hand out the same port twice (the first one is closed).
    for (int pick = 0; http && *http == *rtmp && pick < 10; ++pick) http = FreePort();
    if (!http) return std::unexpected(http.error());
    if (*http == *rtmp) {
      return MakeError(ErrorCode::kUnavailable, "no two distinct free ports on 127.0.0.1");
    }
    server->rtmp_port_ = *rtmp;
    server->http_port_ = *http;
    bool retry = false;
    started = server->StartOnce(nginx, retry);
    if (started || !retry) break;
  }
  if (!started) return std::unexpected(started.error());
  return server;
}

std::string NginxRtmp::ConfigText() const {
  std::string head = "# written by earshot's tests/support/nginx_rtmp.cc\n";
  head += "load_module " + options_.rtmp_module.string() + ";\n";
  head += UserDirective();
  head +=
      "daemon off;\n"
      "master_process on;\n"
      "worker_processes 1;\n"
      "error_log logs/error.log info;\n"
      "pid logs/nginx.pid;\n"
      "events { worker_connections 256; }\n";
  std::string body(options_.hook_port ? kHooksConfig : kPlainConfig);
  body = Replace(std::move(body), "@COMMON_LOCATIONS@", kCommonLocations);
  body = Replace(std::move(body), "@RTMP_PORT@", std::to_string(rtmp_port_));
  body = Replace(std::move(body), "@HTTP_PORT@", std::to_string(http_port_));
  if (options_.hook_port) {
    body = Replace(std::move(body), "@HOOK_PORT@", std::to_string(*options_.hook_port));
  }
  body = Replace(std::move(body), "@RUN@", run_dir().string());
  body = Replace(std::move(body), "@TOKEN@", ready_token_);
  body = Replace(std::move(body), "@FRAGMENT@", std::to_string(options_.hls_fragment_s));
  body = Replace(std::move(body), "@PLAYLIST@", std::to_string(options_.hls_playlist_length_s));
  body = Replace(std::move(body), "@DROP_IDLE@", std::to_string(options_.drop_idle_publisher_s));
  return head + body;
}

Status NginxRtmp::StartOnce(const std::filesystem::path& nginx, bool& retry) {
  retry = false;
  std::string config_text = ConfigText();
  if (options_.config_generator) {
    auto generated = options_.config_generator(rtmp_port_, http_port_, run_dir());
    if (!generated) return std::unexpected(generated.error().Wrap("generating the nginx config"));
    config_text = std::move(*generated);
  }
  {
    std::ofstream out(config_path(), std::ios::trunc);
    out << config_text;
    if (!out.good()) {
      return MakeError(ErrorCode::kIoError, "writing " + config_path().string());
    }
  }
  // A fresh error log per attempt, so that the "in use" check sees only this one.
  std::error_code ec;
  std::filesystem::remove(error_log_path(), ec);

  SpawnOptions spawn;
  spawn.argv = {
      nginx.string(),        "-p", run_dir().string() + "/", "-e", error_log_path().string(), "-c",
      config_path().string()};
  spawn.output_file = run_dir() / "logs" / "nginx.out";
  spawn.working_dir = run_dir();
  auto child = ChildProcess::Spawn(spawn);
  if (!child) return std::unexpected(child.error().Wrap("starting nginx"));
  process_.emplace(std::move(*child));

  const auto deadline = Clock::now() + options_.start_timeout;
  while (true) {
    if (!process_->running()) {
      const std::string log =
          ReadTextFile(error_log_path()) + ReadTextFile(run_dir() / "logs" / "nginx.out");
      retry = log.find("Address already in use") != std::string::npos;
      const std::string status = process_->exit_status()->ToString();
      process_.reset();
      return MakeError(ErrorCode::kUnavailable, "nginx exited at start (" + status + "); config " +
                                                    config_path().string() + "; log:\n" +
                                                    TailLines(log, 30));
    }
    // The readiness token proves the HTTP port is this nginx, and nginx binds
    // every listening socket (RTMP included) before any worker serves HTTP.
    if (options_.config_generator) {
      if (WaitForTcpPort(http_port_, milliseconds(500)) && WaitForTcpPort(rtmp_port_, milliseconds(500))) {
        return Ok();
      }
    } else {
      auto ready = HttpGet("/earshot-ready", milliseconds(1000));
      if (ready && ready->status == 200 && ready->body == ready_token_ &&
          WaitForTcpPort(rtmp_port_, milliseconds(500))) {
        return Ok();
      }
    }
    if (Clock::now() >= deadline) {
      process_->Kill();
      process_.reset();
      return MakeError(
          ErrorCode::kUnavailable,
          "nginx did not accept connections on 127.0.0.1:" + std::to_string(rtmp_port_) +
              " (RTMP) and :" + std::to_string(http_port_) + " (HTTP) within " +
              std::to_string(options_.start_timeout.count()) + " ms; error log:\n" +
              ErrorLogTail());
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
}

NginxRtmp::~NginxRtmp() { static_cast<void>(Stop()); }

std::string NginxRtmp::rtmp_url(std::string_view app, std::string_view name) const {
  return "rtmp://127.0.0.1:" + std::to_string(rtmp_port_) + "/" + std::string(app) + "/" +
         std::string(name);
}

std::string NginxRtmp::hls_url(std::string_view app, std::string_view name) const {
  std::string location;
  if (app == "live") {
    location = "/hls/";
  } else if (app == "hls" && options_.hook_port) {
    location = "/ch/";
  } else {
    return "";
  }
  return http_url(location + std::string(name) + ".m3u8");
}

std::string NginxRtmp::http_url(std::string_view target) const {
  return "http://127.0.0.1:" + std::to_string(http_port_) + std::string(target);
}

std::filesystem::path NginxRtmp::hls_dir(std::string_view app) const {
  if (app == "live") return run_dir() / "hls";
  if (app == "hls" && options_.hook_port) return run_dir() / "ch";
  return {};
}

std::string NginxRtmp::ErrorLogTail(std::size_t lines) const {
  return TailLines(ReadTextFile(error_log_path()), lines);
}

bool NginxRtmp::running() { return process_ && process_->running(); }

Result<HttpResponse> NginxRtmp::HttpGet(
    std::string_view target, std::chrono::milliseconds timeout,
    const std::vector<std::pair<std::string, std::string>>& extra_headers) const {
  return earshot::testing::HttpGet(http_port_, target, timeout, extra_headers);
}

Result<HlsPlaylist> NginxRtmp::WaitForHls(std::string_view app, std::string_view name,
                                          const std::function<bool(const HlsPlaylist&)>& done,
                                          std::chrono::milliseconds timeout,
                                          std::string_view query) const {
  const std::string url = hls_url(app, name);
  if (url.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "application '" + std::string(app) + "' has no HLS in this nginx");
  }
  const std::string target = url.substr(http_url("").size()) + std::string(query);
  const auto deadline = Clock::now() + timeout;
  std::string last_seen = "nothing yet";
  while (true) {
    auto response = HttpGet(target, milliseconds(2000));
    if (!response) {
      last_seen = response.error().ToString();
    } else if (response->status != 200) {
      last_seen = "HTTP " + std::to_string(response->status);
    } else {
      HlsPlaylist playlist = ParseHlsPlaylist(response->body);
      if (done(playlist)) return playlist;
      last_seen = "playlist:\n" + playlist.text;
    }
    if (Clock::now() >= deadline) {
      return MakeError(ErrorCode::kUnavailable, "waiting " + std::to_string(timeout.count()) +
                                                    " ms for " + url + "; last seen: " + last_seen +
                                                    "\nnginx error log:\n" + ErrorLogTail(15));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

Result<HlsPlaylist> NginxRtmp::WaitForHlsSegments(std::string_view app, std::string_view name,
                                                  std::size_t min_segments,
                                                  std::chrono::milliseconds timeout) const {
  return WaitForHls(
      app, name,
      [min_segments](const HlsPlaylist& playlist) {
        return playlist.segments.size() >= min_segments;
      },
      timeout);
}

Result<bool> NginxRtmp::IsPublishing(std::string_view app, std::string_view name) const {
  auto response = HttpGet("/stat");
  if (!response) return std::unexpected(response.error());
  if (response->status != 200) {
    return MakeError(ErrorCode::kUnavailable,
                     "GET /stat answered HTTP " + std::to_string(response->status));
  }
  for (std::string_view application : Blocks(response->body, "application")) {
    if (FirstName(application) != app) continue;
    for (std::string_view stream : Blocks(application, "stream")) {
      if (FirstName(stream) == name && stream.find("<publishing/>") != std::string_view::npos) {
        return true;
      }
    }
  }
  return false;
}

Status NginxRtmp::WaitForPublishing(std::string_view app, std::string_view name, bool publishing,
                                    std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  std::string last = "no answer";
  while (true) {
    auto now_publishing = IsPublishing(app, name);
    if (now_publishing && *now_publishing == publishing) return Ok();
    last = now_publishing ? (*now_publishing ? "publishing" : "not publishing")
                          : now_publishing.error().ToString();
    if (Clock::now() >= deadline) {
      return MakeError(ErrorCode::kUnavailable,
                       "waiting " + std::to_string(timeout.count()) + " ms for " +
                           std::string(app) + "/" + std::string(name) + " to be " +
                           (publishing ? "publishing" : "not publishing") + "; last: " + last);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

Result<int> NginxRtmp::DropPublisher(std::string_view app, std::string_view name) const {
  auto response =
      HttpGet("/control/drop/publisher?app=" + UrlEncode(app) + "&name=" + UrlEncode(name));
  if (!response) return std::unexpected(response.error());
  if (response->status != 200) {
    return MakeError(ErrorCode::kUnavailable,
                     "drop publisher answered HTTP " + std::to_string(response->status));
  }
  int count = 0;
  const std::string& body = response->body;
  std::from_chars(body.data(), body.data() + body.size(), count);
  return count;
}

Status NginxRtmp::Stop() {
  if (!process_) return Ok();
  const bool was_running = process_->running();
  const ExitStatus status = process_->Stop(SIGTERM, options_.stop_timeout);
  process_.reset();
  if (!was_running) {
    return MakeError(ErrorCode::kInternal, "nginx had exited before Stop (" + status.ToString() +
                                               "); error log:\n" + ErrorLogTail());
  }
  if (!status.success()) {
    return MakeError(ErrorCode::kInternal,
                     "nginx did not stop cleanly on SIGTERM (" + status.ToString() + ")");
  }
  return Ok();
}

}  // namespace earshot::testing
