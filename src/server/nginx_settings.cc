#include "server/nginx_settings.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>

namespace earshot::server {
namespace {

Result<std::pair<std::string, int>> HostPort(const std::string& text, const std::string& what) {
  const size_t colon = text.rfind(':');
  int port = 0;
  if (colon != std::string::npos) {
    auto [end, ec] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
    if (ec == std::errc() && end == text.data() + text.size() && port > 0 && port < 65536) {
      return std::make_pair(text.substr(0, colon), port);
    }
  }
  return MakeError(ErrorCode::kInvalidArgument, what + ": expected HOST:PORT, got \"" + text + "\"");
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

}  // namespace

Result<ingest::NginxConfigOptions> NginxOptionsFor(const ServeConfig& config, const std::string& run_dir,
                                                   const std::string& http_listen) {
  ingest::NginxConfigOptions o;
  o.run_dir = Absolute(run_dir.empty() ? (std::filesystem::path(config.data_dir) / "nginx").string() : run_dir);
  o.hls_dir = Absolute(config.hls_dir);
  // rtmp://HOST[:PORT]
  const std::string prefix = "rtmp://";
  if (!config.rtmp_url.starts_with(prefix)) {
    return MakeError(ErrorCode::kInvalidArgument, "ingest.rtmp_url must start with rtmp://, got \"" + config.rtmp_url + "\"");
  }
  const std::string authority = config.rtmp_url.substr(prefix.size());
  if (authority.find(':') == std::string::npos) {
    o.rtmp_port = 1935;
  } else {
    auto hp = HostPort(authority, "ingest.rtmp_url");
    if (!hp) return std::unexpected(hp.error());
    o.rtmp_port = hp->second;
  }
  o.rtmp_listen = config.rtmp_listen;
  o.ingest_app = config.ingest_app;
  o.relay_app = config.relay_app;
  // By default nginx's HTTP server is where ingest.control_url points.
  std::string listen = http_listen;
  if (listen.empty()) {
    const std::string scheme = "http://";
    if (!config.control_url.starts_with(scheme)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "ingest.control_url must start with http://, got \"" + config.control_url + "\"");
    }
    listen = config.control_url.substr(scheme.size());
    listen = listen.substr(0, listen.find('/'));
    if (listen.find(':') == std::string::npos) listen += ":80";
  }
  auto http = HostPort(listen, http_listen.empty() ? "ingest.control_url" : "--http-listen");
  if (!http) return std::unexpected(http.error());
  o.http_listen = http->first;
  o.http_port = http->second;
  auto api = HostPort(config.listen, "server.listen");
  if (!api) return std::unexpected(api.error());
  std::string api_host = api->first;
  if (api_host == "0.0.0.0" || api_host == "*" || api_host.empty()) api_host = "127.0.0.1";
  if (api_host == "::" || api_host == "[::]") api_host = "[::1]";
  const std::string base = "http://" + api_host + ":" + std::to_string(api->second) + "/hooks/nginx";
  o.hook_base_url = base;
  o.playback_auth_url = base + "/playback_auth";
  o.trusted_proxies = config.trusted_proxies;
  if (::geteuid() == 0) {
    const passwd* user = ::getpwuid(::geteuid());
    const group* grp = ::getgrgid(::getegid());
    if (user != nullptr && grp != nullptr) o.user = std::string(user->pw_name) + " " + grp->gr_name;
  }
  return o;
}

Result<std::string> NginxConfigFor(const ServeConfig& config, const std::string& run_dir,
                                   const std::string& http_listen) {
  auto o = NginxOptionsFor(config, run_dir, http_listen);
  if (!o) return std::unexpected(o.error());
  return ingest::GenerateNginxConfig(*o);
}

}  // namespace earshot::server
