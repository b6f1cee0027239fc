#include "server/config.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>
#include <variant>

#include <toml++/toml.h>

extern char** environ;

namespace earshot::server {
namespace {

using Member = std::variant<std::string ServeConfig::*, int ServeConfig::*, double ServeConfig::*,
                            std::vector<std::string> ServeConfig::*>;

struct Setting {
  std::string_view section;
  std::string_view key;
  Member member;
  std::string_view help;
};

// The one table of settings. Order = order in the reference config.
const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = {
      {"server", "listen", &ServeConfig::listen,
       "HOST:PORT of the HTTP API (/v1), the ingest hooks (/hooks) and /metrics"},
      {"server", "data_dir", &ServeConfig::data_dir,
       "state database, results/ (identification responses) and the delivery spool"},
      {"server", "catalog_dir", &ServeConfig::catalog_dir,
       "the reference catalog (`earshot catalog add --catalog DIR`)"},
      {"server", "http_threads", &ServeConfig::http_threads,
       "HTTP request threads; each live-event (SSE) client holds one, and so does each of "
       "nginx's kept-alive playback-auth connections (at most 8 idle) while open"},
      {"server", "shutdown_grace_s", &ServeConfig::shutdown_grace_s,
       "on SIGTERM, seconds running scans get to end their matches and flush results"},
      {"state", "url", &ServeConfig::state_url,
       "state store: sqlite:PATH (empty = sqlite:{data_dir}/state.db)"},
      {"queue", "url", &ServeConfig::queue_url,
       "job queue: sqlite:PATH (empty = the state database)"},
      {"queue", "lease_s", &ServeConfig::lease_s,
       "visibility timeout of a scan job: a worker that stops heart-beating for this long "
       "loses the job to another worker"},
      {"queue", "max_attempts", &ServeConfig::max_attempts,
       "attempts (incl. lost leases) before a scan job is dead"},
      {"queue", "retry_backoff_s", &ServeConfig::retry_backoff_s,
       "first retry delay of a failed scan job; doubles per attempt, at most 300 s"},
      {"workers", "workers", &ServeConfig::workers,
       "scan jobs this process runs at once (0: API and hooks only; run `earshot worker`)"},
      {"workers", "scan_threads", &ServeConfig::scan_threads,
       "scanner threads shared by those jobs (decode + recognition)"},
      {"workers", "poll_s", &ServeConfig::poll_s, "how often an idle worker looks for jobs"},
      {"scan", "stall_timeout_s", &ServeConfig::stall_timeout_s,
       "no data from a live stream for this long = a stall (reconnect)"},
      {"scan", "reconnects", &ServeConfig::reconnects,
       "failed reconnects in a row before a scan ends"},
      {"scan", "reconnect_backoff_s", &ServeConfig::reconnect_backoff_s,
       "first wait before a reconnect; doubles per failure"},
      {"scan", "ongoing_every_s", &ServeConfig::ongoing_every_s,
       "a match_ongoing identification this often while a match lasts (0: none)"},
      {"ingest", "kind", &ServeConfig::ingest_kind, "ingest server: nginx-rtmp"},
      {"ingest", "rtmp_url", &ServeConfig::rtmp_url,
       "the ingest server's RTMP base URL (scanners read {rtmp_url}/{relay_app}/{channel_id})"},
      {"ingest", "rtmp_listen", &ServeConfig::rtmp_listen,
       "address nginx takes publishers on (`earshot nginx-config`; its port is rtmp_url's)"},
      {"ingest", "ingest_app", &ServeConfig::ingest_app,
       "RTMP application publishers connect to with their stream key"},
      {"ingest", "relay_app", &ServeConfig::relay_app,
       "RTMP application a publish is relayed to, named by channel id (the key never becomes a "
       "public name)"},
      {"ingest", "control_url", &ServeConfig::control_url,
       "nginx-rtmp control endpoint (rtmp_control), used to stop streams"},
      {"ingest", "playback_url", &ServeConfig::playback_url,
       "public HLS base URL: playback URL = {playback_url}/{channel_id}.m3u8"},
      {"ingest", "hls_dir", &ServeConfig::hls_dir,
       "folder nginx writes HLS into (used by `earshot nginx-config`)"},
      {"playback", "max_keys", &ServeConfig::max_playback_keys,
       "playback key pairs (public keys that sign viewers' tokens) that may be imported"},
      {"playback", "geoip_database", &ServeConfig::geoip_database,
       "MaxMind-format country database (.mmdb) for allowedCountries; empty: a channel "
       "whose policy lists countries refuses every viewer (country unknown)"},
      {"playback", "viewer_idle_s", &ServeConfig::viewer_idle_s,
       "a viewer whose player made no request for this long has left (concurrent viewers)"},
      {"playback", "trusted_proxies", &ServeConfig::trusted_proxies,
       "addresses/CIDRs of proxies in front of nginx whose X-Forwarded-For gives the viewer's "
       "address (`earshot nginx-config`); empty: the TCP peer is the viewer"},
      {"rules", "block_action", &ServeConfig::block_action,
       "what a `block` match does: notify | stop | stop_and_reset_key (channels may override)"},
      {"video", "thumbnail_every_s", &ServeConfig::thumbnail_every_s,
       "a JPEG thumbnail of every live stream this often (stream seconds), stored beside its "
       "results and shown on the stream resource; 0: none (streams are then decoded only when "
       "the catalog has video references)"},
      {"video", "thumbnail_width", &ServeConfig::thumbnail_width, "thumbnail width in pixels"},
      {"video", "block_action", &ServeConfig::video_block_action,
       "what a `block` video match or moderation verdict does: notify | stop | "
       "stop_and_reset_key (channels may override)"},
      {"video", "moderation_url", &ServeConfig::moderation_url,
       "an operator's image-classification service: every thumbnail is POSTed there and its "
       "verdict (allow | flag | block) is acted on like a rule; empty: no moderation"},
      {"video", "moderation_secret_env", &ServeConfig::moderation_secret_env,
       "EARSHOT_* environment variable holding the key that signs moderation requests "
       "(X-Earshot-Signature, as webhooks); empty: unsigned"},
      {"video", "moderation_timeout_s", &ServeConfig::moderation_timeout_s,
       "seconds a moderation request may take"},
      {"delivery", "sinks", &ServeConfig::sinks,
       "where identification responses go besides {data_dir}/results, e.g. "
       "\"s3:bucket=b,endpoint=http://127.0.0.1:9000,access_key_env=K,secret_key_env=S\""},
      {"delivery", "notify", &ServeConfig::notify,
       "notifiers for every response, e.g. \"webhook:url=https://example.com/hook,secret_env=W\""},
      {"log", "level", &ServeConfig::log_level, "debug | info | warn | error"},
  };
  return settings;
}

std::string EnvName(const Setting& s) {
  std::string name = "EARSHOT_";
  for (char c : s.section) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  name += '_';
  for (char c : s.key) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

std::string QuoteToml(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string FormatDouble(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string ValueToml(const ServeConfig& config, const Member& member) {
  return std::visit(
      [&](auto ptr) -> std::string {
        const auto& value = config.*ptr;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return QuoteToml(value);
        } else if constexpr (std::is_same_v<T, int>) {
          return std::to_string(value);
        } else if constexpr (std::is_same_v<T, double>) {
          return FormatDouble(value);
        } else {
          std::string out = "[";
          for (size_t i = 0; i < value.size(); ++i) out += (i ? ", " : "") + QuoteToml(value[i]);
          return out + "]";
        }
      },
      member);
}

// Sets one setting from a TOML node.
Status SetFromToml(ServeConfig& config, const Setting& s, const toml::node& node,
                   const std::string& where) {
  return std::visit(
      [&](auto ptr) -> Status {
        auto& value = config.*ptr;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::string>) {
          auto v = node.value<std::string>();
          if (!node.is_string() || !v) return MakeError(ErrorCode::kInvalidArgument, where + ": expected a string");
          value = *v;
        } else if constexpr (std::is_same_v<T, int>) {
          auto v = node.value<int64_t>();
          if (!node.is_integer() || !v || *v < -1000000000 || *v > 1000000000) {
            return MakeError(ErrorCode::kInvalidArgument, where + ": expected an integer");
          }
          value = static_cast<int>(*v);
        } else if constexpr (std::is_same_v<T, double>) {
          auto v = node.value<double>();
          if (!(node.is_integer() || node.is_floating_point()) || !v) {
            return MakeError(ErrorCode::kInvalidArgument, where + ": expected a number");
          }
          value = *v;
        } else {
          const toml::array* array = node.as_array();
          if (array == nullptr) {
            return MakeError(ErrorCode::kInvalidArgument, where + ": expected an array of strings");
          }
          value.clear();
          for (const toml::node& item : *array) {
            auto v = item.value<std::string>();
            if (!item.is_string() || !v) {
              return MakeError(ErrorCode::kInvalidArgument, where + ": expected an array of strings");
            }
            value.push_back(*v);
          }
        }
        return Ok();
      },
      s.member);
}

// Sets one setting from an environment variable's text.
Status SetFromText(ServeConfig& config, const Setting& s, const std::string& text,
                   const std::string& where) {
  return std::visit(
      [&](auto ptr) -> Status {
        auto& value = config.*ptr;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::string>) {
          value = text;
        } else if constexpr (std::is_same_v<T, int>) {
          int v = 0;
          auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
          if (ec != std::errc() || end != text.data() + text.size()) {
            return MakeError(ErrorCode::kInvalidArgument, where + ": expected an integer, got \"" + text + "\"");
          }
          value = v;
        } else if constexpr (std::is_same_v<T, double>) {
          double v = 0;
          auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
          if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
            return MakeError(ErrorCode::kInvalidArgument, where + ": expected a number, got \"" + text + "\"");
          }
          value = v;
        } else {
          value.clear();
          std::string item;
          std::istringstream in(text);
          while (std::getline(in, item, ',')) {
            if (!item.empty()) value.push_back(item);
          }
        }
        return Ok();
      },
      s.member);
}

}  // namespace

std::string ServeConfig::StateUrl() const {
  if (!state_url.empty()) return state_url;
  return "sqlite:" + (std::filesystem::path(data_dir) / "state.db").string();
}

std::string ServeConfig::QueueUrl() const { return queue_url.empty() ? StateUrl() : queue_url; }

std::map<std::string, std::string> EarshotEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (!entry.starts_with("EARSHOT_")) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

Result<ServeConfig> LoadServeConfig(const std::filesystem::path& path,
                                    const std::map<std::string, std::string>& env) {
  ServeConfig config;
  if (!path.empty()) {
    toml::table table;
    try {
      table = toml::parse_file(path.string());
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      std::string message = "config " + path.string();
      if (where) message += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
      message += ": " + std::string(e.description());
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) {
        return MakeError(ErrorCode::kNotFound, "config " + path.string() + ": no such file");
      }
      return MakeError(ErrorCode::kInvalidArgument, message);
    }
    for (auto&& [section_key, section_node] : table) {
      const std::string section(section_key.str());
      const toml::table* section_table = section_node.as_table();
      bool known_section = false;
      for (const Setting& s : Settings()) known_section = known_section || s.section == section;
      if (!known_section || section_table == nullptr) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "config " + path.string() + ": unknown section [" + section +
                             "] (see `earshot serve --reference-config`)");
      }
      for (auto&& [key, node] : *section_table) {
        const Setting* setting = nullptr;
        for (const Setting& s : Settings()) {
          if (s.section == section && s.key == key.str()) setting = &s;
        }
        const std::string where = "config " + path.string() + ": " + section + "." + std::string(key.str());
        if (setting == nullptr) {
          return MakeError(ErrorCode::kInvalidArgument,
                           where + ": unknown key (see `earshot serve --reference-config`)");
        }
        if (Status st = SetFromToml(config, *setting, node, where); !st) return std::unexpected(st.error());
      }
    }
  }
  for (const Setting& s : Settings()) {
    auto it = env.find(EnvName(s));
    if (it == env.end()) continue;
    if (Status st = SetFromText(config, s, it->second, "environment " + it->first); !st) {
      return std::unexpected(st.error());
    }
  }
  if (Status st = ValidateServeConfig(config); !st) return std::unexpected(st.error());
  return config;
}

Status ValidateServeConfig(const ServeConfig& c) {
  auto bad = [](std::string key, std::string what) {
    return MakeError(ErrorCode::kInvalidArgument, "config " + key + ": " + what);
  };
  const size_t colon = c.listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("server.listen", "expected HOST:PORT, got \"" + c.listen + "\"");
  int port = -1;
  const std::string port_text = c.listen.substr(colon + 1);
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return bad("server.listen", "port must be 0..65535, got \"" + port_text + "\"");
  }
  if (c.data_dir.empty()) return bad("server.data_dir", "must not be empty");
  if (c.http_threads < 1 || c.http_threads > 1024) return bad("server.http_threads", "must be 1..1024");
  if (c.shutdown_grace_s < 0) return bad("server.shutdown_grace_s", "must be >= 0");
  if (c.lease_s < 1 || c.lease_s > 3600) return bad("queue.lease_s", "must be 1..3600 seconds");
  if (c.max_attempts < 1 || c.max_attempts > 100) return bad("queue.max_attempts", "must be 1..100");
  if (c.retry_backoff_s < 0 || c.retry_backoff_s > 300) return bad("queue.retry_backoff_s", "must be 0..300 seconds");
  if (c.workers < 0 || c.workers > 10000) return bad("workers.workers", "must be 0..10000");
  if (c.scan_threads < 1 || c.scan_threads > 1024) return bad("workers.scan_threads", "must be 1..1024");
  if (c.poll_s <= 0 || c.poll_s > 60) return bad("workers.poll_s", "must be > 0 and <= 60 seconds");
  if (c.stall_timeout_s <= 0) return bad("scan.stall_timeout_s", "must be > 0");
  if (c.reconnects < 0) return bad("scan.reconnects", "must be >= 0");
  if (c.reconnect_backoff_s < 0) return bad("scan.reconnect_backoff_s", "must be >= 0");
  if (c.ongoing_every_s < 0) return bad("scan.ongoing_every_s", "must be >= 0");
  if (c.ingest_kind.empty()) return bad("ingest.kind", "must not be empty");
  if (c.max_playback_keys < 1 || c.max_playback_keys > 1000) return bad("playback.max_keys", "must be 1..1000");
  if (c.viewer_idle_s < 1 || c.viewer_idle_s > 3600) return bad("playback.viewer_idle_s", "must be 1..3600 seconds");
  if (c.block_action != "notify" && c.block_action != "stop" && c.block_action != "stop_and_reset_key") {
    return bad("rules.block_action", "must be notify, stop or stop_and_reset_key, got \"" + c.block_action + "\"");
  }
  if (c.thumbnail_every_s < 0 || (c.thumbnail_every_s > 0 && c.thumbnail_every_s < 1)) {
    return bad("video.thumbnail_every_s", "must be 0 (none) or >= 1 second");
  }
  if (c.thumbnail_width < 16 || c.thumbnail_width > 4096) return bad("video.thumbnail_width", "must be 16..4096");
  if (c.video_block_action != "notify" && c.video_block_action != "stop" &&
      c.video_block_action != "stop_and_reset_key") {
    return bad("video.block_action",
               "must be notify, stop or stop_and_reset_key, got \"" + c.video_block_action + "\"");
  }
  if (!c.moderation_url.empty() && c.moderation_url.rfind("http://", 0) != 0 &&
      c.moderation_url.rfind("https://", 0) != 0) {
    return bad("video.moderation_url", "must be an http:// or https:// URL");
  }
  if (!c.moderation_secret_env.empty() && c.moderation_secret_env.rfind("EARSHOT_", 0) != 0) {
    return bad("video.moderation_secret_env", "must name an EARSHOT_* environment variable");
  }
  if (c.moderation_timeout_s <= 0 || c.moderation_timeout_s > 120) {
    return bad("video.moderation_timeout_s", "must be > 0 and <= 120 seconds");
  }
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" && c.log_level != "error") {
    return bad("log.level", "must be debug, info, warn or error, got \"" + c.log_level + "\"");
  }
  return Ok();
}

std::string ReferenceConfig() {
  const ServeConfig defaults;
  std::string out =
      "# earshot reference configuration: every key with its default.\n"
      "# Generated by `earshot serve --reference-config`; a test keeps this file in step with\n"
      "# the code. Every key can also be set in the environment: EARSHOT_<SECTION>_<KEY>\n"
      "# (lists comma-separated). Precedence: defaults < this file < environment.\n";
  std::string_view section;
  for (const Setting& s : Settings()) {
    if (s.section != section) {
      section = s.section;
      out += "\n[" + std::string(section) + "]\n";
    }
    out += "# " + std::string(s.help) + " (env " + EnvName(s) + ")\n";
    out += std::string(s.key) + " = " + ValueToml(defaults, s.member) + "\n";
  }
  return out;
}

std::string ConfigToToml(const ServeConfig& config) {
  std::string out;
  std::string_view section;
  for (const Setting& s : Settings()) {
    if (s.section != section) {
      section = s.section;
      out += (out.empty() ? "[" : "\n[") + std::string(section) + "]\n";
    }
    out += std::string(s.key) + " = " + ValueToml(config, s.member) + "\n";
  }
  return out;
}

}  // namespace earshot::server
