#include "ingest/nginx_config.h"

#include <array>
#include <string_view>

#include "ingest/names.h"

namespace earshot::ingest {
namespace {

constexpr int kMaxPort = 65535;

Status Bad(std::string_view option, std::string_view why) {
  return MakeError(ErrorCode::kInvalidArgument,
                   "nginx config: " + std::string(option) + " " + std::string(why));
}

// Characters that would end or split an nginx directive argument (or start a
// variable), and anything outside printable ASCII.
bool SafeToken(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return false;
    if (c == ';' || c == '{' || c == '}' || c == '#' || c == '$' || c == '"' || c == '\'' ||
        c == '\\') {
      return false;
    }
  }
  return true;
}


bool IsUserName(std::string_view name) { return IsNginxName(name, 64); }

// An IPv4/IPv6 literal, a host name, or "*".
bool IsListenAddress(std::string_view address) {
  if (address.empty() || address.size() > 255) return false;
  for (char c : address) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == ':' || c == '[' || c == ']' || c == '-' || c == '*';
    if (!ok) return false;
  }
  return true;
}

// An `allow` argument: "all", an address or a CIDR.
bool IsAllowEntry(std::string_view entry) {
  if (entry == "all") return true;
  if (entry.empty() || entry.size() > 64) return false;
  for (char c : entry) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                    c == '.' || c == ':' || c == '/';
    if (!ok) return false;
  }
  return true;
}

// Whether a listen on `address` also accepts connections to 127.0.0.1.
bool CoversLoopback(std::string_view address) {
  return address == "0.0.0.0" || address == "*" || address == "127.0.0.1";
}

Status CheckPath(std::string_view option, const std::string& path, bool may_be_empty) {
  if (path.empty() && may_be_empty) return Ok();
  if (path.empty() || path.front() != '/') {
    return Bad(option, "must be an absolute path, got '" + path + "'");
  }
  if (!SafeToken(path)) {
    return Bad(option, "must not contain spaces, quotes, ; { } # $ or non-ASCII characters");
  }
  return Ok();
}

Status CheckUrl(std::string_view option, const std::string& url,
                std::initializer_list<std::string_view> schemes, std::string_view hint) {
  std::string_view scheme_found;
  for (std::string_view scheme : schemes) {
    if (url.starts_with(scheme)) scheme_found = scheme;
  }
  if (scheme_found.empty()) {
    return Bad(option, "must start with " + std::string(*schemes.begin()) +
                           (schemes.size() > 1 ? " or " + std::string(*(schemes.begin() + 1)) : "") +
                           std::string(hint) + ", got '" + url + "'");
  }
  if (!SafeToken(url)) {
    return Bad(option, "must not contain spaces, quotes, ; { } # $ or non-ASCII characters");
  }
  if (url.find('?') != std::string::npos) return Bad(option, "must not have a query string");
  const std::string_view rest = std::string_view(url).substr(scheme_found.size());
  if (rest.empty() || rest.front() == '/' || rest.front() == ':') {
    return Bad(option, "has no host: '" + url + "'");
  }
  return Ok();
}

Status CheckRange(std::string_view option, int value, int min, int max, std::string_view unit) {
  if (value < min || value > max) {
    return Bad(option, "must be " + std::to_string(min) + ".." + std::to_string(max) +
                           std::string(unit) + ", got " + std::to_string(value));
  }
  return Ok();
}

std::string WithoutTrailingSlash(std::string text) {
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

// "    listen ADDR:PORT;\n" plus a loopback listen when ADDR does not cover it.
std::string ListenLines(const std::string& address, int port, std::string_view why_loopback) {
  const std::string p = std::to_string(port);
  std::string out = "        listen " + address + ":" + p + ";\n";
  if (!CoversLoopback(address)) {
    out += "        listen 127.0.0.1:" + p + ";  # " + std::string(why_loopback) + "\n";
  }
  return out;
}

}  // namespace

Status ValidateNginxConfigOptions(const NginxConfigOptions& o) {
  if (Status s = CheckPath("run_dir", o.run_dir, false); !s) return s;
  if (Status s = CheckPath("hls_dir", o.hls_dir, false); !s) return s;
  if (Status s = CheckPath("rtmp_module", o.rtmp_module, true); !s) return s;
  if (!o.user.empty()) {
    const std::size_t space = o.user.find(' ');
    const bool ok = space == std::string::npos
                        ? IsUserName(o.user)
                        : IsUserName(std::string_view(o.user).substr(0, space)) &&
                              IsUserName(std::string_view(o.user).substr(space + 1));
    if (!ok) return Bad("user", "must be \"NAME\" or \"NAME GROUP\", got '" + o.user + "'");
  }
  static constexpr std::array<std::string_view, 8> kLevels = {
      "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"};
  bool level_ok = false;
  for (std::string_view level : kLevels) level_ok = level_ok || o.error_log_level == level;
  if (!level_ok) {
    return Bad("error_log_level",
               "must be one of debug, info, notice, warn, error, crit, alert, emerg, got '" +
                   o.error_log_level + "'");
  }
  if (Status s = CheckRange("worker_connections", o.worker_connections, 16, 65535, ""); !s) {
    return s;
  }

  if (!IsListenAddress(o.rtmp_listen)) {
    return Bad("rtmp_listen", "must be an IP address, a host name or *, got '" + o.rtmp_listen + "'");
  }
  if (!IsListenAddress(o.http_listen)) {
    return Bad("http_listen", "must be an IP address, a host name or *, got '" + o.http_listen + "'");
  }
  if (Status s = CheckRange("rtmp_port", o.rtmp_port, 1, kMaxPort, ""); !s) return s;
  if (Status s = CheckRange("http_port", o.http_port, 1, kMaxPort, ""); !s) return s;
  if (o.rtmp_port == o.http_port) {
    return Bad("http_port", "must differ from rtmp_port (both are " + std::to_string(o.rtmp_port) +
                                ")");
  }
  if (!IsAppName(o.ingest_app)) {
    return Bad("ingest_app", "must be 1-128 of A-Z a-z 0-9 _ - ., got '" + o.ingest_app + "'");
  }
  if (!IsAppName(o.relay_app)) {
    return Bad("relay_app", "must be 1-128 of A-Z a-z 0-9 _ - ., got '" + o.relay_app + "'");
  }
  if (o.ingest_app == o.relay_app) {
    return Bad("relay_app", "must differ from ingest_app (the relay is what hides the key)");
  }
  if (o.publish_allow.empty()) {
    return Bad("publish_allow", "must not be empty (\"all\" lets anyone with a key publish)");
  }
  for (const std::string& entry : o.publish_allow) {
    if (!IsAllowEntry(entry)) {
      return Bad("publish_allow", "entries must be \"all\", an address or a CIDR, got '" + entry +
                                      "'");
    }
  }
  if (Status s = CheckUrl("hook_base_url", o.hook_base_url, {"http://"},
                          " (nginx-rtmp sends hooks over plain HTTP only)");
      !s) {
    return s;
  }
  if (Status s = CheckUrl("playback_auth_url", o.playback_auth_url, {"http://", "https://"}, "");
      !s) {
    return s;
  }
  for (const std::string& entry : o.trusted_proxies) {
    if (entry == "all" || !IsAllowEntry(entry) || entry.ends_with("/0")) {
      return Bad("trusted_proxies", "entries must be an address or a CIDR narrower than /0 (every "
                                    "client could choose its address), got '" + entry + "'");
    }
  }
  if (Status s = CheckRange("notify_update_timeout_s", o.notify_update_timeout_s, 1, 3600, " s");
      !s) {
    return s;
  }
  if (Status s = CheckRange("drop_idle_publisher_s", o.drop_idle_publisher_s, 1, 3600, " s"); !s) {
    return s;
  }
  if (Status s = CheckRange("hls_fragment_s", o.hls_fragment_s, 1, 60, " s"); !s) return s;
  if (Status s = CheckRange("hls_playlist_length_s", o.hls_playlist_length_s, o.hls_fragment_s,
                            3600, " s (at least hls_fragment_s)");
      !s) {
    return s;
  }
  if (o.hls_location.size() < 3 || o.hls_location.front() != '/' ||
      o.hls_location.back() != '/' || !SafeToken(o.hls_location)) {
    return Bad("hls_location", "must be a URL path like /hls/ (leading and trailing '/'), got '" +
                                   o.hls_location + "'");
  }
  if (o.hls_location == "/control/" || o.hls_location == "/stat/" ||
      o.hls_location.starts_with("/_earshot")) {
    return Bad("hls_location", "must not clash with /control, /stat or /_earshot");
  }
  return Ok();
}

Result<std::string> GenerateNginxConfig(const NginxConfigOptions& o) {
  if (Status s = ValidateNginxConfigOptions(o); !s) return std::unexpected(s.error());
  const std::string hook = WithoutTrailingSlash(o.hook_base_url);
  const std::string hls_dir = WithoutTrailingSlash(o.hls_dir);
  const std::string run_dir = WithoutTrailingSlash(o.run_dir);
  const std::string fragment = std::to_string(o.hls_fragment_s) + "s";
  const std::string playlist = std::to_string(o.hls_playlist_length_s) + "s";
  const std::string idle = std::to_string(o.drop_idle_publisher_s) + "s";
  // http://HOST:PORT/PATH -> an upstream with keepalive; https:// stays a
  // plain proxy_pass (no upstream TLS settings here).
  std::string auth_upstream;
  std::string auth_path = "/";
  if (o.playback_auth_url.starts_with("http://")) {
    std::string rest = o.playback_auth_url.substr(7);
    const size_t slash = rest.find('/');
    if (slash != std::string::npos) {
      auth_path = rest.substr(slash);
      rest = rest.substr(0, slash);
    }
    auth_upstream = rest.find(':') == std::string::npos || rest.back() == ']' ? rest + ":80" : rest;
  }

  std::string c;
  c += "# nginx + nginx-rtmp for earshot, written by `earshot nginx-config`.\n";
  c += "# Start (relative paths below are relative to the prefix -p):\n";
  c += "#   mkdir -p " + run_dir + "/logs " + run_dir + "/tmp " + hls_dir + "\n";
  c += "#   nginx -p " + run_dir + "/ -e " + run_dir + "/logs/error.log -c " + run_dir +
       "/nginx.conf\n";
  if (!o.rtmp_module.empty()) c += "load_module " + o.rtmp_module + ";\n";
  if (!o.user.empty()) {
    c += "user " + o.user + ";  # workers' user: must be able to write " + hls_dir + "\n";
  }
  c += std::string("daemon ") + (o.daemon ? "on" : "off") + ";\n";
  c += "master_process on;\n";
  c +=
      "# One worker: nginx-rtmp keeps live streams per worker, so rtmp_control (stopping\n"
      "# a stream) and rtmp_stat only see the sessions of the worker that answers the\n"
      "# HTTP request, and the on_publish relay only reaches streams of its own worker.\n";
  c += "worker_processes 1;\n";
  c += "error_log logs/error.log " + o.error_log_level + ";\n";
  c += "pid logs/nginx.pid;\n";
  c += "\n";
  c += "events {\n    worker_connections " + std::to_string(o.worker_connections) + ";\n}\n";

  c += "\nrtmp {\n";
  c += "    # nginx-rtmp's default access log format has the stream name, which in the\n";
  c += "    # " + o.ingest_app +
       " application is the secret key: that application logs this one.\n";
  c += "    log_format earshot_no_key '$remote_addr [$time_local] $command \"$app\" "
       "clientid=$connection - $bytes_received $bytes_sent \"$flashver\" "
       "($session_readable_time)';\n";
  c += "    server {\n";
  c += ListenLines(o.rtmp_listen, o.rtmp_port, "the relay and the scanners connect here");
  c += "        chunk_size 4096;\n";
  c += "        access_log logs/rtmp_access.log;\n";
  c += "        notify_method post;  # hook bodies: application/x-www-form-urlencoded\n";
  c += "\n";
  c += "        # Publishers: rtmp://HOST:" + std::to_string(o.rtmp_port) + "/" + o.ingest_app +
       "/<stream key>. earshot's on_publish answers\n";
  c += "        # 302 rtmp://127.0.0.1:" + std::to_string(o.rtmp_port) + "/" + o.relay_app +
       "/<channel id> (relayed there) or 403.\n";
  c += "        application " + o.ingest_app + " {\n";
  c += "            live on;\n";
  c += "            record off;\n";
  for (const std::string& entry : o.publish_allow) {
    c += "            allow publish " + entry + ";\n";
  }
  c += "            deny publish all;\n";
  c += "            deny play all;  # the stream name is the secret key: nobody plays it\n";
  c += "            access_log logs/rtmp_access.log earshot_no_key;\n";
  c += "            drop_idle_publisher " + idle + ";\n";
  c += "            on_publish      " + hook + "/on_publish;\n";
  c += "            on_publish_done " + hook + "/on_publish_done;\n";
  c += "            on_update       " + hook + "/on_update;\n";
  c += "            notify_update_timeout " + std::to_string(o.notify_update_timeout_s) + "s;\n";
  c += "            # Relay to the 302's rtmp:// URL; the local stream keeps its (secret) name.\n";
  c += "            notify_relay_redirect off;\n";
  c += "        }\n";
  c += "\n";
  c += "        # The relayed copy, named by channel id: HLS for viewers, RTMP for scanners.\n";
  c += "        application " + o.relay_app + " {\n";
  c += "            live on;\n";
  c += "            record off;\n";
  c += "            allow publish 127.0.0.1;  # only the local relay may publish\n";
  c += "            deny publish all;\n";
  c += "            allow play 127.0.0.1;     # earshot's scanners\n";
  c += "            deny play all;\n";
  c += "            drop_idle_publisher " + idle + ";\n";
  c += "            # Players of a stream that is not (or no longer) published are cut off.\n";
  c += "            idle_streams off;\n";
  c += "            on_publish_done " + hook + "/hls_publish_done;\n";
  c += "            hls on;\n";
  c += "            hls_path " + hls_dir + ";\n";
  c += "            hls_fragment " + fragment + ";\n";
  c += "            hls_playlist_length " + playlist + ";\n";
  c += "            hls_cleanup on;\n";
  c += "        }\n";
  c += "    }\n}\n";

  c += "\nhttp {\n";
  c += "    # The default format logs the request line, whose ?token= is a viewer's\n";
  c += "    # playback token: this one logs the path without the query.\n";
  c += "    log_format earshot_no_query '$remote_addr [$time_local] \"$request_method $uri\" "
       "$status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"';\n";
  c += "    access_log logs/access.log earshot_no_query;\n";
  c += "    client_body_temp_path tmp/body;\n";
  c += "    proxy_temp_path tmp/proxy;\n";
  c += "    fastcgi_temp_path tmp/fastcgi;\n";
  c += "    uwsgi_temp_path tmp/uwsgi;\n";
  c += "    scgi_temp_path tmp/scgi;\n";
  c += "    default_type application/octet-stream;\n";
  c += "    server_tokens off;\n";
  if (!auth_upstream.empty()) {
    c += "\n    # earshot's playback authorisation (every HLS request), over kept-alive\n";
    c += "    # connections; nginx closes idle ones before earshot does.\n";
    c += "    upstream earshot_playback_auth {\n";
    c += "        server " + auth_upstream + ";\n";
    c += "        keepalive 8;\n";
    c += "        keepalive_timeout 4s;\n";
    c += "    }\n";
  }
  c += "\n    server {\n";
  c += ListenLines(o.http_listen, o.http_port, "earshot reaches /control here");
  if (!o.trusted_proxies.empty()) {
    c += "        # The viewer's address (X-Real-IP for earshot, country checks) is taken from\n";
    c += "        # X-Forwarded-For when the request comes through one of these proxies.\n";
    for (const std::string& p : o.trusted_proxies) c += "        set_real_ip_from " + p + ";\n";
    c += "        real_ip_header X-Forwarded-For;\n";
    c += "        real_ip_recursive on;\n";
  }
  c += "\n";
  c += "        # Viewers: " + o.hls_location + "<channel id>.m3u8?token=...; every playlist and\n";
  c += "        # segment request is authorised by earshot.\n";
  c += "        location " + o.hls_location + " {\n";
  c += "            alias " + hls_dir + "/;\n";
  c += "            types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }\n";
  c += "            add_header Cache-Control no-cache always;\n";
  c += "            log_not_found off;  # error.log lines carry the request line (?token=)\n";
  c += "            # What earshot decides on, taken here (rewrite phase): inside the auth\n";
  c += "            # subrequest $uri and $args are the subrequest's own.\n";
  c += "            set $earshot_path $uri;\n";
  c += "            set $earshot_token $arg_token;\n";
  c += "            auth_request /_earshot/playback_auth;\n";
  c += "            # CORS: the origin earshot allowed (none: no header, the browser refuses).\n";
  c += "            auth_request_set $earshot_cors_origin $upstream_http_x_earshot_cors_origin;\n";
  c += "            add_header Access-Control-Allow-Origin $earshot_cors_origin always;\n";
  c += "            add_header Vary Origin always;\n";
  c += "            # Carry the playlist's ?token= onto every segment URL.\n";
  c += "            sub_filter_types application/vnd.apple.mpegurl;\n";
  c += "            sub_filter_once off;\n";
  c += "            sub_filter '.ts' '.ts?token=$arg_token';\n";
  c += "        }\n";
  c += "\n";
  c += "        location = /_earshot/playback_auth {\n";
  c += "            internal;\n";
  if (!auth_upstream.empty()) {
    // Kept-alive connections to earshot: a new TCP connection per request
    // costs more than the decision (and fills listen queues under load).
    c += "            proxy_pass http://earshot_playback_auth" + auth_path + ";\n";
    c += "            proxy_http_version 1.1;\n";
    c += "            proxy_set_header Connection \"\";\n";
  } else {
    c += "            proxy_pass " + o.playback_auth_url + ";\n";
  }
  c += "            proxy_pass_request_body off;\n";
  c += "            proxy_set_header Content-Length \"\";\n";
  c += "            # The path nginx serves (the viewer's $uri: decoded, normalised, cut at\n";
  c += "            # '#'), never the raw request line, which could name another channel.\n";
  c += "            proxy_set_header X-Original-URI $earshot_path;\n";
  c += "            proxy_set_header X-Playback-Token $earshot_token;\n";
  c += "            proxy_set_header X-Real-IP $remote_addr;\n";
  c += "            proxy_set_header Origin $http_origin;\n";
  c += "            proxy_set_header User-Agent $http_user_agent;\n";
  c += "            proxy_connect_timeout 2s;\n";
  c += "            proxy_read_timeout 5s;\n";
  c += "        }\n";
  c += "\n";
  c += "        # earshot stops streams here: /control/drop/publisher?app=...&name=...\n";
  c += "        location /control {\n";
  c += "            allow 127.0.0.1;\n";
  c += "            allow ::1;\n";
  c += "            deny all;\n";
  c += "            rtmp_control all;\n";
  c += "        }\n";
  c += "\n";
  c += "        # RTMP sessions as XML (publishers only: HLS viewers do not appear here).\n";
  c += "        location /stat {\n";
  c += "            allow 127.0.0.1;\n";
  c += "            allow ::1;\n";
  c += "            deny all;\n";
  c += "            rtmp_stat all;\n";
  c += "        }\n";
  c += "    }\n}\n";
  return c;
}

}  // namespace earshot::ingest
