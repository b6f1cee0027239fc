#include "server/http_api.h"

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <httplib.h>

#include "common/file_util.h"
#include "common/log.h"
#include "common/time_format.h"
#include "control/event.h"
#include "delivery/registry.h"
#include "delivery/target_spec.h"
#include "ingest/hook_form.h"
#include "ingest/nginx_hook.h"
#include "server/api_json.h"
#include "server/http_json.h"
#include "server/openapi_doc.h"
#include "store/catalog_types.h"

namespace earshot::server {
namespace {

using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

std::string Iso(int64_t ms) { return ms > 0 ? IsoTimeUtc(ms) : std::string(); }

nlohmann::json TrackToJson(const store::CatalogEntry& e) {
  return {{"track_id", e.id},
          {"title", e.metadata.title},
          {"artist", e.metadata.artist},
          {"rights_holder", e.metadata.rights_holder},
          {"isrc", e.metadata.isrc},
          {"rule", store::BusinessRuleName(e.rule)},
          {"tags", e.metadata.tags},
          {"duration_s", e.duration_s}};
}

// "a,b , c" → {"a","b","c"}
std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    const size_t b = item.find_first_not_of(' ');
    const size_t e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::string CsvField(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

HttpApi::HttpApi(HttpApiDeps deps) : deps_(std::move(deps)), server_(std::make_unique<httplib::Server>()) {
  Register();
}

HttpApi::~HttpApi() { Stop(); }

Status HttpApi::Start(const std::string& host, int port) {
  const int threads = deps_.config->http_threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // Catalog uploads may be large; every other body is refused above
  // kMaxBodyBytes before it is read (Screen), and no body is read before
  // the caller was authenticated.
  server_->set_payload_max_length(512ull << 20);
  server_->set_read_timeout(std::chrono::seconds(30));
  // nginx keeps its playback-auth connections alive (an upstream with
  // keepalive, closed after 4 s idle): serve many requests per connection.
  // A kept-alive connection holds a thread while it waits (at most 5 s).
  server_->set_keep_alive_max_count(100000);
  server_->set_keep_alive_timeout(5);
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
    if (port_ <= 0) return MakeError(ErrorCode::kUnavailable, "cannot bind an HTTP port on " + host);
  } else {
    if (!server_->bind_to_port(host, port)) {
      return MakeError(ErrorCode::kUnavailable,
                       "cannot listen on " + host + ":" + std::to_string(port) +
                           " (in use, or not an address of this machine); set server.listen");
    }
    port_ = port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Ok();
}

void HttpApi::Stop() {
  stopping_.store(true);
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

namespace {

constexpr size_t kMaxBodyBytes = 1 << 20;  // every request body but a catalog upload

// /v1 needs an API key, except the API's own description.
bool RequiresApiKey(const std::string& path) {
  return path.starts_with("/v1/") && path != "/v1/openapi.json";
}

}  // namespace

bool HttpApi::IsHookClient(const httplib::Request& req) const {
  for (const std::string& a : deps_.hook_clients) {
    if (a == req.remote_addr) return true;
  }
  return false;
}

bool HttpApi::Screen(const httplib::Request& req, httplib::Response& res) {
  // Runs before cpp-httplib reads the body: who may send one, and how big.
  if (req.path.starts_with("/hooks/") && !IsHookClient(req)) {
    res.status = 403;
    res.set_content("hooks are accepted from the ingest server only\n", "text/plain");
    return false;
  }
  if (RequiresApiKey(req.path)) {
    const std::string token = BearerToken(req);
    if (token.empty()) {
      res.set_header("WWW-Authenticate", "Bearer");
      WriteError(res, 401, "unauthenticated",
                 "missing `Authorization: Bearer <API key>`; create a key with `earshot admin create-key`");
      return false;
    }
    auto key = deps_.state->VerifyApiKey(token);
    if (!key) {
      res.set_header("WWW-Authenticate", "Bearer");
      if (key.error().code() == ErrorCode::kNotFound) {
        WriteError(res, 401, "unauthenticated", "unknown or revoked API key");
      } else {
        WriteError(res, key.error());
      }
      return false;
    }
  }
  const bool upload = req.method == "POST" && req.path == "/v1/catalog";
  if (!upload && req.has_header("Content-Length")) {
    const std::string length = req.get_header_value("Content-Length");
    if (length.size() > 9 || std::strtoull(length.c_str(), nullptr, 10) > kMaxBodyBytes) {
      WriteError(res, 413, "invalid_argument",
                 "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes");
      return false;
    }
  }
  return true;
}

void HttpApi::Register() {
  httplib::Server& srv = *server_;
  srv.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (Screen(req, res)) return httplib::Server::HandlerResponse::Unhandled;
    if (deps_.metrics) deps_.metrics->CountRequest(res.status);
    return httplib::Server::HandlerResponse::Handled;
  });
  // `path` uses OpenAPI templates ({name}); each becomes a capture group.
  auto route = [this, &srv](const std::string& method, const std::string& path, bool auth,
                            Handler handler) {
    routes_.push_back({method, path});
    const std::string pattern = std::regex_replace(path, std::regex(R"(\{[a-z_]+\})"), "([^/]+)");
    // The API key was checked by Screen, before the body was read; `auth`
    // states it beside each route, and must agree with RequiresApiKey.
    if (auth != RequiresApiKey(path)) {
      throw std::logic_error("route " + path + ": auth flag disagrees with RequiresApiKey");
    }
    Handler wrapped = [this, handler = std::move(handler)](const httplib::Request& req,
                                                            httplib::Response& res) {
      handler(req, res);
      if (deps_.metrics) deps_.metrics->CountRequest(res.status);
    };
    if (method == "GET") srv.Get(pattern, wrapped);
    if (method == "POST") srv.Post(pattern, wrapped);
    if (method == "PATCH") srv.Patch(pattern, wrapped);
    if (method == "DELETE") srv.Delete(pattern, wrapped);
  };
  srv.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    Log(LogLevel::kError, "HTTP handler failed (a bug)", {{"path", req.path}, {"error", what}});
    WriteError(res, 500, "internal", "internal error: " + what);
  });
  srv.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    // Playback refusals go out without a body: nginx reads only the header of
    // an auth_request answer, and a body left unread would close the
    // kept-alive connection (and the viewer learns nothing from it anyway).
    if (req.path == "/hooks/nginx/playback_auth") return;
    if (res.body.empty()) {
      WriteError(res, res.status, res.status == 404 ? "not_found" : "error",
                 res.status == 404 ? "no such route (see /v1/openapi.json)" : "request failed");
    }
  });

  // --- operations -----------------------------------------------------------
  route("GET", "/healthz", false, [](const httplib::Request&, httplib::Response& res) {
    WriteJson(res, 200, {{"status", "ok"}});
  });
  route("GET", "/readyz", false, [this](const httplib::Request&, httplib::Response& res) {
    auto counts = deps_.queue->Counts();
    Status state = deps_.state->Check();
    if (!counts || !state) {
      WriteJson(res, 503, {{"status", "unavailable"},
                           {"error", !counts ? counts.error().ToString() : state.error().ToString()}});
      return;
    }
    WriteJson(res, 200, {{"status", "ready"}});
  });
  route("GET", "/metrics", false, [this](const httplib::Request&, httplib::Response& res) {
    std::vector<GaugeSample> gauges;
    if (auto live = deps_.state->ListLiveSessions(); live) {
      gauges.push_back({"earshot_live_streams", "Streams live now.", {}, static_cast<double>(live->size())});
    }
    if (auto c = deps_.queue->Counts(); c) {
      const std::string help = "Scan jobs by state (retrying = queued after a failed attempt).";
      gauges.push_back({"earshot_jobs", help, {{"state", "queued"}}, static_cast<double>(c->queued)});
      gauges.push_back({"earshot_jobs", help, {{"state", "running"}}, static_cast<double>(c->leased)});
      gauges.push_back({"earshot_jobs", help, {{"state", "retrying"}}, static_cast<double>(c->retrying)});
      gauges.push_back({"earshot_jobs", help, {{"state", "dead"}}, static_cast<double>(c->dead)});
      gauges.push_back({"earshot_jobs", help, {{"state", "done"}}, static_cast<double>(c->done)});
      gauges.push_back({"earshot_jobs", help, {{"state", "cancelled"}}, static_cast<double>(c->cancelled)});
    }
    if (deps_.playback) {
      for (const auto& [channel, n] : deps_.playback->ViewerCounts()) {
        gauges.push_back({"earshot_channel_viewers", "Concurrent viewers now (authorised in the last playback.viewer_idle_s).",
                          {{"channel_id", channel}}, static_cast<double>(n)});
      }
    }
    res.status = 200;
    res.set_content(deps_.metrics->Render(gauges), "text/plain; version=0.0.4");
  });
  route("GET", "/v1/openapi.json", false, [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(std::string(OpenApiDocument()), "application/json");
  });

  // --- channels -------------------------------------------------------------
  auto channel_json = [this](const state::Channel& c) {
    nlohmann::json j = state::ChannelToJson(c);
    j["ingest_endpoint"] = deps_.config->rtmp_url + "/" + deps_.config->ingest_app;
    j["playback_url"] = deps_.control->PlaybackUrl(c.id);
    return j;
  };
  route("POST", "/v1/channels", true, [this, channel_json](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseJsonObject(req);
    if (!body) return WriteError(res, body.error());
    auto spec = ChannelSpecFromJson(*body);
    if (!spec) return WriteError(res, spec.error());
    auto created = deps_.state->CreateChannel(*spec);
    if (!created) return WriteError(res, created.error());
    Log(LogLevel::kInfo, "channel created", {{"channel_id", created->channel.id}, {"name", created->channel.name}});
    WriteJson(res, 201, {{"channel", channel_json(created->channel)},
                         {"stream_key", {{"channel_id", created->channel.id}, {"value", created->stream_key}}}});
  });
  route("GET", "/v1/channels", true, [this, channel_json](const httplib::Request& req, httplib::Response& res) {
    auto limit = QueryInt(req, "limit", 1, 1000);
    if (!limit) return WriteError(res, limit.error());
    state::ChannelListOptions options;
    options.limit = static_cast<int>(limit->value_or(100));
    options.next_token = QueryText(req, "next_token").value_or("");
    auto page = deps_.state->ListChannels(options);
    if (!page) return WriteError(res, page.error());
    nlohmann::json list = nlohmann::json::array();
    for (const state::Channel& c : page->channels) list.push_back(channel_json(c));
    nlohmann::json out = {{"channels", list}};
    if (!page->next_token.empty()) out["next_token"] = page->next_token;
    WriteJson(res, 200, out);
  });
  route("GET", "/v1/channels/{channel_id}", true, [this, channel_json](const httplib::Request& req, httplib::Response& res) {
    auto c = deps_.state->GetChannel(req.matches[1].str());
    if (!c) return WriteError(res, c.error());
    WriteJson(res, 200, channel_json(*c));
  });
  route("PATCH", "/v1/channels/{channel_id}", true, [this, channel_json](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseJsonObject(req);
    if (!body) return WriteError(res, body.error());
    auto update = ChannelUpdateFromJson(*body);
    if (!update) return WriteError(res, update.error());
    auto c = deps_.state->UpdateChannel(req.matches[1].str(), *update);
    if (!c) return WriteError(res, c.error());
    if (deps_.playback) deps_.playback->InvalidateChannel(c->id);
    WriteJson(res, 200, channel_json(*c));
  });
  route("DELETE", "/v1/channels/{channel_id}", true, [this](const httplib::Request& req, httplib::Response& res) {
    if (Status s = deps_.state->DeleteChannel(req.matches[1].str()); !s) return WriteError(res, s.error());
    if (deps_.playback) deps_.playback->InvalidateChannel(req.matches[1].str());
    res.status = 204;
  });
  route("POST", "/v1/channels/{channel_id}/stream-key/reset", true, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    auto key = deps_.state->ResetStreamKey(id);
    if (!key) return WriteError(res, key.error());
    Log(LogLevel::kInfo, "stream key reset", {{"channel_id", id}});
    WriteJson(res, 200, {{"channel_id", id}, {"value", *key}});
  });

  // --- playback protection --------------------------------------------------
  auto key_json = [](const state::PlaybackKey& k) {
    return nlohmann::json{{"id", k.id}, {"name", k.name}, {"fingerprint", k.fingerprint}, {"created", Iso(k.created_ms)}};
  };
  route("POST", "/v1/playback-keys", true, [this, key_json](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseJsonObject(req);
    if (!body) return WriteError(res, body.error());
    const auto pem = body->find("public_key_pem");
    if (pem == body->end() || !pem->is_string()) {
      return WriteError(res, 400, "invalid_argument", "public_key_pem: a P-384 public key in PEM is required");
    }
    const auto name = body->find("name");
    if (name != body->end() && !name->is_string()) return WriteError(res, 400, "invalid_argument", "name must be a string");
    auto key = deps_.playback->ImportKey(name == body->end() ? "" : name->get<std::string>(), pem->get<std::string>());
    if (!key) return WriteError(res, key.error());
    WriteJson(res, 201, key_json(*key));
  });
  route("GET", "/v1/playback-keys", true, [this, key_json](const httplib::Request&, httplib::Response& res) {
    auto keys = deps_.playback->ListKeys();
    if (!keys) return WriteError(res, keys.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& k : *keys) list.push_back(key_json(k));
    WriteJson(res, 200, {{"playback_keys", list}});
  });
  route("GET", "/v1/playback-keys/{key_id}", true, [this, key_json](const httplib::Request& req, httplib::Response& res) {
    auto key = deps_.playback->GetKey(req.matches[1].str());
    if (!key) return WriteError(res, key.error());
    WriteJson(res, 200, key_json(*key));
  });
  route("DELETE", "/v1/playback-keys/{key_id}", true, [this](const httplib::Request& req, httplib::Response& res) {
    if (Status s = deps_.playback->DeleteKey(req.matches[1].str()); !s) return WriteError(res, s.error());
    res.status = 204;
  });
  route("POST", "/v1/channels/{channel_id}/revoke-viewer", true, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    auto body = ParseJsonObject(req);
    if (!body) return WriteError(res, body.error());
    const auto viewer = body->find("viewer_id");
    if (viewer == body->end() || !viewer->is_string() || viewer->get<std::string>().empty() ||
        viewer->get<std::string>().size() > 40) {
      return WriteError(res, 400, "invalid_argument", "viewer_id: 1..40 characters, as in the tokens' aws:viewer-id");
    }
    int64_t up_to = 0;
    if (const auto v = body->find("viewer_session_versions_less_than_or_equal_to"); v != body->end()) {
      if (!v->is_number_integer()) {
        return WriteError(res, 400, "invalid_argument", "viewer_session_versions_less_than_or_equal_to must be an integer");
      }
      up_to = v->get<int64_t>();
    }
    auto c = deps_.state->GetChannel(id);
    if (!c) return WriteError(res, c.error());
    if (Status s = deps_.playback->RevokeViewer(id, viewer->get<std::string>(), up_to); !s) return WriteError(res, s.error());
    res.status = 204;
  });
  route("GET", "/v1/channels/{channel_id}/viewers", true, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    auto c = deps_.state->GetChannel(id);
    if (!c) return WriteError(res, c.error());
    const int64_t now_s = UnixMillisNow() / 1000;
    auto from = QueryInt(req, "from", 0, INT64_MAX);
    if (!from) return WriteError(res, from.error());
    auto to = QueryInt(req, "to", 0, INT64_MAX);
    if (!to) return WriteError(res, to.error());
    const int64_t to_s = to->value_or(now_s);
    const int64_t from_s = from->value_or(to_s - 24 * 3600);
    if (from_s > to_s) return WriteError(res, 400, "invalid_argument", "from must not be after to");
    // The minutes closed since the last periodic flush, so the answer is current.
    if (Status f = deps_.playback->FlushViewerMinutes(); !f) {
      Log(LogLevel::kWarn, "viewer counts not stored before answering", {{"error", f.error().ToString()}});
    }
    auto minutes = deps_.playback->ViewerMinutes(id, from_s, to_s);
    if (!minutes) return WriteError(res, minutes.error());
    nlohmann::json series = nlohmann::json::array();
    for (const auto& m : *minutes) {
      series.push_back({{"time", Iso(m.minute_start_s * 1000)}, {"timestamp", m.minute_start_s}, {"max_viewers", m.max_viewers}});
    }
    // The alarms' bands for plots, and the periods each alarm spent in ALARM.
    auto points = deps_.state->ListAlarmPoints(id, from_s, to_s);
    if (!points) return WriteError(res, points.error());
    nlohmann::json bands = nlohmann::json::object();
    nlohmann::json alarm_periods = nlohmann::json::array();
    std::string open_alarm;
    int64_t open_start = 0;
    int64_t last_t = 0;
    auto close_open = [&](int64_t end) {
      if (!open_alarm.empty()) {
        alarm_periods.push_back({{"alarm_id", open_alarm}, {"start", Iso(open_start * 1000)}, {"end", Iso(end * 1000)}});
      }
      open_alarm.clear();
    };
    for (const state::AlarmPointRecord& p : *points) {
      if (!open_alarm.empty() && open_alarm != p.alarm_id) close_open(last_t);
      bands[p.alarm_id].push_back({{"timestamp", p.timestamp_s}, {"value", p.value}, {"band_low", p.band_low},
                                   {"band_high", p.band_high}, {"state", p.state}});
      if (p.state == "ALARM" && open_alarm.empty()) {
        open_alarm = p.alarm_id;
        open_start = p.timestamp_s;
      } else if (p.state != "ALARM" && open_alarm == p.alarm_id) {
        close_open(p.timestamp_s);
      }
      last_t = p.timestamp_s;
    }
    if (!open_alarm.empty()) {
      alarm_periods.push_back({{"alarm_id", open_alarm}, {"start", Iso(open_start * 1000)}, {"end", nullptr}});
    }
    WriteJson(res, 200, {{"channel_id", id},
                         {"viewer_count", deps_.playback->ViewerCount(id)},
                         {"period_s", 60},
                         {"series", series},
                         {"bands", bands},
                         {"alarm_periods", alarm_periods}});
  });

  // --- viewer-spike alarms -----------------------------------------------------
  route("POST", "/v1/alarms", true, [this](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseJsonObject(req);
    if (!body) return WriteError(res, body.error());
    auto a = deps_.alarms->Create(*body);
    if (!a) return WriteError(res, a.error());
    WriteJson(res, 201, *a);
  });
  route("GET", "/v1/alarms", true, [this](const httplib::Request&, httplib::Response& res) {
    auto a = deps_.alarms->List();
    if (!a) return WriteError(res, a.error());
    WriteJson(res, 200, *a);
  });
  route("GET", "/v1/alarms/{alarm_id}", true, [this](const httplib::Request& req, httplib::Response& res) {
    auto a = deps_.alarms->Get(req.matches[1].str());
    if (!a) return WriteError(res, a.error());
    WriteJson(res, 200, *a);
  });
  route("DELETE", "/v1/alarms/{alarm_id}", true, [this](const httplib::Request& req, httplib::Response& res) {
    if (Status s = deps_.alarms->Delete(req.matches[1].str()); !s) return WriteError(res, s.error());
    res.status = 204;
  });

  // --- streams and sessions -------------------------------------------------
  auto stream_json = [this](const state::StreamSession& s) {
    return nlohmann::json{{"channel_id", s.channel_id},
                          {"stream_id", s.stream_id},
                          {"state", "LIVE"},
                          {"health", state::StreamHealthName(s.health)},
                          {"start_time", Iso(s.started_ms)},
                          {"playback_url", deps_.control->PlaybackUrl(s.channel_id)},
                          {"viewer_count", deps_.playback ? deps_.playback->ViewerCount(s.channel_id) : 0},
                          {"ingest", s.ingest}};
  };
  route("GET", "/v1/channels/{channel_id}/stream", true, [this, stream_json](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    auto c = deps_.state->GetChannel(id);
    if (!c) return WriteError(res, c.error());
    auto live = deps_.state->LiveSession(id);
    if (!live) return WriteError(res, live.error());
    if (!live->has_value()) return WriteError(res, 404, "not_found", "channel " + id + " is not live");
    WriteJson(res, 200, stream_json(**live));
  });
  route("POST", "/v1/channels/{channel_id}/stream/stop", true, [this](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseJsonObject(req);
    if (!body) return WriteError(res, body.error());
    const auto reset = body->find("reset_key");
    if (reset != body->end() && !reset->is_boolean()) {
      return WriteError(res, 400, "invalid_argument", "reset_key must be true or false");
    }
    const bool reset_key = reset != body->end() && reset->get<bool>();
    const std::string reason = body->contains("reason") && (*body)["reason"].is_string()
                                   ? (*body)["reason"].get<std::string>()
                                   : "stopped by the API";
    if (Status s = deps_.control->StopStream(req.matches[1].str(), reset_key, reason); !s) {
      return WriteError(res, s.error());
    }
    WriteJson(res, 200, nlohmann::json::object());
  });
  route("GET", "/v1/channels/{channel_id}/sessions", true, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    auto limit = QueryInt(req, "limit", 1, 1000);
    if (!limit) return WriteError(res, limit.error());
    if (auto c = deps_.state->GetChannel(id); !c) return WriteError(res, c.error());
    auto sessions = deps_.state->ListSessions(id, static_cast<int>(limit->value_or(50)));
    if (!sessions) return WriteError(res, sessions.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : *sessions) list.push_back(state::StreamSessionToJson(s));
    WriteJson(res, 200, {{"sessions", list}});
  });
  route("GET", "/v1/streams", true, [this, stream_json](const httplib::Request&, httplib::Response& res) {
    auto live = deps_.state->ListLiveSessions();
    if (!live) return WriteError(res, live.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : *live) list.push_back(stream_json(s));
    WriteJson(res, 200, {{"streams", list}});
  });
  route("GET", "/v1/sessions/{stream_id}/thumbnail", true, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    auto s = deps_.state->GetSession(id);
    if (!s) return WriteError(res, s.error());
    const nlohmann::json ingest = state::StreamSessionToJson(*s).value("ingest", nlohmann::json::object());
    const nlohmann::json thumb = ingest.is_object() ? ingest.value("thumbnail", nlohmann::json()) : nlohmann::json();
    const std::string file = thumb.is_object() ? thumb.value("file", "") : "";
    if (file.empty() || file.find('/') != std::string::npos || file.rfind("thumb-", 0) != 0) {
      return WriteError(res, 404, "not_found",
                        "stream " + id + " has no thumbnail (video.thumbnail_every_s = 0, no video, "
                        "or the stream has not run long enough)");
    }
    auto bytes = ReadFile(deps_.config->ResultsDir() / id / file);
    if (!bytes) {
      return WriteError(res, 404, "not_found",
                        "the thumbnail " + file + " of stream " + id +
                            " is not in this server's results folder (written by a worker on another "
                            "machine, or deleted)");
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(*bytes, "image/jpeg");
  });
  route("GET", "/v1/sessions/{stream_id}", true, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    auto s = deps_.state->GetSession(id);
    if (!s) return WriteError(res, s.error());
    nlohmann::json j = state::StreamSessionToJson(*s);
    state::EventFilter filter;
    filter.limit = 1000;
    filter.stream_id = id;
    auto events = deps_.state->ListEvents(filter);
    if (!events) return WriteError(res, events.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : *events) list.push_back(control::EventToJson(e));
    j["events"] = list;
    WriteJson(res, 200, j);
  });

  // --- catalog --------------------------------------------------------------
  route("GET", "/v1/catalog", true, [this](const httplib::Request& req, httplib::Response& res) {
    store::CatalogDb::ListFilter filter;
    if (auto rule = QueryText(req, "rule")) {
      auto r = store::ParseBusinessRule(*rule);
      if (!r) return WriteError(res, r.error());
      filter.rule = *r;
    }
    if (auto search = QueryText(req, "search")) filter.text = *search;
    auto limit = QueryInt(req, "limit", 1, 100000);
    if (!limit) return WriteError(res, limit.error());
    filter.limit = static_cast<size_t>(limit->value_or(0));
    auto list = deps_.catalog->List(filter);
    if (!list) return WriteError(res, list.error());
    nlohmann::json tracks = nlohmann::json::array();
    for (const auto& e : *list) tracks.push_back(TrackToJson(e));
    WriteJson(res, 200, {{"tracks", tracks}});
  });
  route("POST", "/v1/catalog", true, [this](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_file("file")) {
      return WriteError(res, 400, "invalid_argument",
                        "upload the recording as multipart/form-data field `file` (and `metadata` JSON)");
    }
    const httplib::MultipartFormData file = req.get_file_value("file");
    nlohmann::json meta = nlohmann::json::object();
    if (req.has_file("metadata")) {
      meta = nlohmann::json::parse(req.get_file_value("metadata").content, nullptr, false);
      if (meta.is_discarded() || !meta.is_object()) {
        return WriteError(res, 400, "invalid_argument", "`metadata` must be a JSON object");
      }
    }
    catalog::AddItem item;
    auto text = [&](const char* key) {
      return meta.contains(key) && meta[key].is_string() ? meta[key].get<std::string>() : std::string();
    };
    item.metadata.title = text("title");
    if (item.metadata.title.empty()) {
      item.metadata.title = std::filesystem::path(file.filename).stem().string();
    }
    item.metadata.artist = text("artist");
    item.metadata.rights_holder = text("rights_holder");
    item.metadata.isrc = text("isrc");
    if (meta.contains("tags") && meta["tags"].is_object()) {
      for (const auto& [k, v] : meta["tags"].items()) {
        if (v.is_string()) item.metadata.tags[k] = v.get<std::string>();
      }
    }
    const std::string rule = text("rule").empty() ? "track" : text("rule");
    auto parsed_rule = store::ParseBusinessRule(rule);
    if (!parsed_rule) return WriteError(res, parsed_rule.error());
    item.rule = *parsed_rule;
    // The decoder reads files: stage the upload in the data folder.
    const std::filesystem::path staging = std::filesystem::path(deps_.config->data_dir) / "uploads";
    std::error_code ec;
    std::filesystem::create_directories(staging, ec);
    const std::filesystem::path staged =
        staging / (std::to_string(UnixMillisNow()) + "-" + std::to_string(upload_counter_.fetch_add(1)) +
                   std::filesystem::path(file.filename).extension().string());
    if (Status w = WriteFileAtomically(staged, file.content); !w) return WriteError(res, w.error());
    item.path = staged;
    auto outcomes = deps_.catalog->Add({item}, 1);
    std::filesystem::remove(staged, ec);
    if (outcomes.empty()) return WriteError(res, 500, "internal", "catalog add returned nothing");
    if (!outcomes[0].entry) {
      // Messages name the staged copy: name the upload instead (the server's
      // folders are none of the client's business). An upload that does not
      // decode is the client's error (400), not the server's.
      const Error& e = outcomes[0].entry.error();
      std::string message = e.message();
      const std::string staged_name = staged.string();
      const std::string upload_name = "upload \"" + file.filename + "\"";
      for (size_t at = message.find(staged_name); at != std::string::npos;
           at = message.find(staged_name, at + upload_name.size())) {
        message.replace(at, staged_name.size(), upload_name);
      }
      if (e.code() == ErrorCode::kCorruptData || e.code() == ErrorCode::kUnsupported) {
        return WriteError(res, 400, "invalid_argument",
                          "not a readable audio recording: " + message);
      }
      return WriteError(res, Error(e.code(), message));
    }
    Log(LogLevel::kInfo, "catalog: track added",
        {{"track_id", outcomes[0].entry->id}, {"title", outcomes[0].entry->metadata.title}});
    WriteJson(res, 201, TrackToJson(*outcomes[0].entry));
  });
  route("DELETE", "/v1/catalog/{track_id}", true, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string text = req.matches[1].str();
    uint32_t id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return WriteError(res, 400, "invalid_argument", "track id must be an integer, got \"" + text + "\"");
    }
    if (Status s = deps_.catalog->Remove({id}); !s) return WriteError(res, s.error());
    res.status = 204;
  });

  // --- identifications and reports -----------------------------------------
  route("GET", "/v1/identifications", true, [this](const httplib::Request& req, httplib::Response& res) {
    state::IdentificationFilter f;
    f.stream_id = QueryText(req, "stream_id");
    f.channel_id = QueryText(req, "channel_id");
    auto from = QueryTimeMs(req, "from");
    auto to = QueryTimeMs(req, "to");
    auto limit = QueryInt(req, "limit", 1, 10000);
    if (!from) return WriteError(res, from.error());
    if (!to) return WriteError(res, to.error());
    if (!limit) return WriteError(res, limit.error());
    f.from_ms = *from;
    f.to_ms = *to;
    f.rule = QueryText(req, "rule");
    f.limit = static_cast<int>(limit->value_or(1000));
    auto list = deps_.state->ListIdentifications(f);
    if (!list) return WriteError(res, list.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *list) out.push_back(state::IdentificationToJson(r));
    WriteJson(res, 200, {{"identifications", out}});
  });
  route("GET", "/v1/channels/{channel_id}/reports/usage", true, [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    if (auto c = deps_.state->GetChannel(id); !c) return WriteError(res, c.error());
    auto from = QueryTimeMs(req, "from");
    auto to = QueryTimeMs(req, "to");
    if (!from) return WriteError(res, from.error());
    if (!to) return WriteError(res, to.error());
    const std::string format = QueryText(req, "format").value_or("json");
    if (format != "json" && format != "csv") {
      return WriteError(res, 400, "invalid_argument", "format must be json or csv");
    }
    auto report = deps_.state->UsageReport(id, from->value_or(0), to->value_or(INT64_MAX));
    if (!report) return WriteError(res, report.error());
    if (format == "csv") {
      std::string csv = "track_id,title,artist,rights_holder,isrc,seconds_played,streams,plays\n";
      for (const auto& row : *report) {
        std::ostringstream seconds;
        seconds.precision(3);
        seconds << std::fixed << row.seconds_played;
        csv += std::to_string(row.track_id) + "," + CsvField(row.title) + "," + CsvField(row.artist) + "," +
               CsvField(row.rights_holder) + "," + CsvField(row.isrc) + "," + seconds.str() + "," +
               std::to_string(row.streams) + "," + std::to_string(row.plays) + "\n";
      }
      res.status = 200;
      res.set_content(csv, "text/csv");
      return;
    }
    WriteJson(res, 200, state::UsageReportToJson(id, from->value_or(0), to->value_or(INT64_MAX), *report));
  });

  // --- events -----------------------------------------------------------------
  auto event_filter = [](const httplib::Request& req) -> Result<state::EventFilter> {
    state::EventFilter f;
    auto after = QueryInt(req, "after", 0, INT64_MAX);
    if (!after) return std::unexpected(after.error());
    auto limit = QueryInt(req, "limit", 1, 1000);
    if (!limit) return std::unexpected(limit.error());
    f.after_seq = after->value_or(0);
    f.limit = static_cast<int>(limit->value_or(100));
    if (auto types = QueryText(req, "type")) {
      std::vector<control::EventType> list;
      for (const std::string& name : SplitList(*types)) {
        auto t = control::ParseEventType(name);
        if (!t) return std::unexpected(t.error());
        list.push_back(*t);
      }
      f.types = list;
    }
    if (auto c = QueryText(req, "channel_id")) f.channel_id = *c;
    if (auto s = QueryText(req, "stream_id")) f.stream_id = *s;
    return f;
  };
  route("GET", "/v1/events", true, [this, event_filter](const httplib::Request& req, httplib::Response& res) {
    auto f = event_filter(req);
    if (!f) return WriteError(res, f.error());
    auto events = deps_.state->ListEvents(*f);
    if (!events) return WriteError(res, events.error());
    nlohmann::json list = nlohmann::json::array();
    int64_t cursor = f->after_seq;
    for (const auto& e : *events) {
      list.push_back(control::EventToJson(e));
      cursor = std::max(cursor, e.seq);
    }
    WriteJson(res, 200, {{"events", list}, {"next_cursor", cursor}});
  });
  route("GET", "/v1/events/stream", true, [this, event_filter](const httplib::Request& req, httplib::Response& res) {
    auto f = event_filter(req);
    if (!f) return WriteError(res, f.error());
    state::EventFilter filter = *f;
    if (req.has_header("Last-Event-ID")) {
      const std::string last = req.get_header_value("Last-Event-ID");
      int64_t v = 0;
      auto [end, ec] = std::from_chars(last.data(), last.data() + last.size(), v);
      if (ec == std::errc() && end == last.data() + last.size()) filter.after_seq = v;
    }
    filter.limit = 200;
    res.set_header("Cache-Control", "no-cache");
    auto cursor = std::make_shared<int64_t>(filter.after_seq);
    auto last_write = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, filter, cursor, last_write](size_t, httplib::DataSink& sink) mutable {
          if (stopping_.load()) {
            sink.done();
            return true;
          }
          filter.after_seq = *cursor;
          auto events = deps_.state->ListEvents(filter);
          if (!events) {
            const std::string msg = "event: error\ndata: " +
                                    nlohmann::json({{"error", events.error().ToString()}}).dump() + "\n\n";
            sink.write(msg.data(), msg.size());
            sink.done();
            return true;
          }
          for (const auto& e : *events) {
            const std::string msg = "id: " + std::to_string(e.seq) + "\nevent: " +
                                    std::string(control::EventTypeName(e.type)) +
                                    "\ndata: " + control::EventToJson(e).dump() + "\n\n";
            if (!sink.write(msg.data(), msg.size())) return false;
            *cursor = e.seq;
            *last_write = std::chrono::steady_clock::now();
          }
          if (events->empty()) {
            if (std::chrono::steady_clock::now() - *last_write > std::chrono::seconds(15)) {
              static constexpr char kKeepAlive[] = ": keep-alive\n\n";
              if (!sink.write(kKeepAlive, sizeof(kKeepAlive) - 1)) return false;
              *last_write = std::chrono::steady_clock::now();
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
          }
          return true;
        });
  });

  // --- subscriptions -----------------------------------------------------------
  route("POST", "/v1/subscriptions", true, [this](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseJsonObject(req);
    if (!body) return WriteError(res, body.error());
    auto spec = SubscriptionSpecFromJson(*body);
    if (!spec) return WriteError(res, spec.error());
    // Secrets of a target come from the server's environment (`*_env=NAME`):
    // over the API only variables named EARSHOT_*, so a caller cannot have
    // another of the server's secrets sent to a host of its choosing.
    if (auto parsed = delivery::ParseTargetSpec(spec->kind + ":" + spec->target); parsed) {
      for (const auto& [key, value] : parsed->options) {
        if (key.ends_with("_env") && !value.starts_with("EARSHOT_")) {
          return WriteError(res, 400, "invalid_argument",
                            "field target: " + key + " must name an EARSHOT_* environment variable");
        }
      }
    }
    if ((spec->kind == "webhook" || spec->kind == "email") && !spec->target.empty()) {
      // The dispatcher (in this process) builds the same notifier: a target
      // it cannot build would never be delivered to, its events skipped.
      auto notifier = delivery::MakeNotifier(spec->kind + ":" + spec->target);
      if (!notifier) return WriteError(res, notifier.error().Wrap("field target"));
    }
    auto sub = deps_.state->CreateSubscription(*spec);
    if (!sub) return WriteError(res, sub.error());
    WriteJson(res, 201, state::SubscriptionToJson(*sub));
  });
  route("GET", "/v1/subscriptions", true, [this](const httplib::Request&, httplib::Response& res) {
    auto subs = deps_.state->ListSubscriptions();
    if (!subs) return WriteError(res, subs.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : *subs) list.push_back(state::SubscriptionToJson(s));
    WriteJson(res, 200, {{"subscriptions", list}});
  });
  route("DELETE", "/v1/subscriptions/{subscription_id}", true, [this](const httplib::Request& req, httplib::Response& res) {
    if (Status s = deps_.state->DeleteSubscription(req.matches[1].str()); !s) return WriteError(res, s.error());
    res.status = 204;
  });

  // --- jobs -----------------------------------------------------------------------
  auto job_json = [](const queue::Job& j) {
    return nlohmann::json{{"id", j.id},
                          {"kind", j.kind},
                          {"key", j.dedup_key},
                          {"state", queue::JobStateName(j.state)},
                          {"attempts", j.attempts},
                          {"max_attempts", j.max_attempts},
                          {"lease_owner", j.lease_owner},
                          {"last_error", j.last_error},
                          {"payload", j.payload},
                          {"created", Iso(j.created_ms)},
                          {"updated", Iso(j.updated_ms)}};
  };
  route("GET", "/v1/jobs", true, [this, job_json](const httplib::Request& req, httplib::Response& res) {
    std::optional<queue::JobState> state;
    if (auto s = QueryText(req, "state")) {
      auto parsed = queue::ParseJobState(*s);
      if (!parsed) return WriteError(res, parsed.error());
      state = *parsed;
    }
    auto limit = QueryInt(req, "limit", 1, 1000);
    if (!limit) return WriteError(res, limit.error());
    auto jobs = deps_.queue->List(state, static_cast<int>(limit->value_or(100)));
    if (!jobs) return WriteError(res, jobs.error());
    auto counts = deps_.queue->Counts();
    if (!counts) return WriteError(res, counts.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& j : *jobs) list.push_back(job_json(j));
    WriteJson(res, 200, {{"jobs", list},
                         {"counts", {{"queued", counts->queued}, {"leased", counts->leased},
                                     {"retrying", counts->retrying}, {"done", counts->done},
                                     {"dead", counts->dead}, {"cancelled", counts->cancelled}}}});
  });
  route("POST", "/v1/jobs/{job_id}/requeue", true, [this, job_json](const httplib::Request& req, httplib::Response& res) {
    const std::string text = req.matches[1].str();
    int64_t id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return WriteError(res, 400, "invalid_argument", "job id must be an integer");
    }
    auto requeued = deps_.queue->Requeue(id);
    if (!requeued) return WriteError(res, requeued.error());
    if (*requeued == 0) {
      return WriteError(res, 409, "failed_precondition", "job " + text + " is not dead: only dead jobs are requeued");
    }
    auto job = deps_.queue->Get(id);
    if (!job) return WriteError(res, job.error());
    if (!job->has_value()) return WriteError(res, 404, "not_found", "job " + text + " not found");
    WriteJson(res, 200, job_json(**job));
  });

  // --- nginx-rtmp hooks ----------------------------------------------------------
  auto hook = [this, &route](const std::string& name,
                             std::function<ingest::HookAnswer(const ingest::NginxHook&)> act) {
    route("POST", "/hooks/nginx/" + name, false, [this, name, act](const httplib::Request& req, httplib::Response& res) {
      const auto started = std::chrono::steady_clock::now();
      std::string outcome;
      if (!IsHookClient(req)) {
        res.status = 403;
        res.set_content("hooks are accepted from the ingest server only\n", "text/plain");
        outcome = "forbidden";
      } else {
        auto form = ingest::ParseFormBody(req.body);
        auto parsed = form ? ingest::NginxHook::FromForm(*form) : Result<ingest::NginxHook>(std::unexpected(form.error()));
        if (!parsed && name == "on_update" && form && form->Get("call") != "update_publish") {
          // nginx-rtmp's own relay session (ingest -> channel app) reports
          // update_play without an app: refusing it would cut the relay.
          res.status = 200;
          outcome = "allowed";
        } else if (!parsed) {
          Log(LogLevel::kWarn, "malformed hook body", {{"hook", name}, {"error", parsed.error().ToString()}});
          res.status = 400;
          res.set_content(parsed.error().message() + "\n", "text/plain");
          outcome = "malformed";
        } else {
          const ingest::HookAnswer answer = act(*parsed);
          res.status = answer.status;
          if (!answer.location.empty()) res.set_header("Location", answer.location);
          res.set_content(answer.body.empty() ? std::string() : answer.body + "\n", "text/plain");
          outcome = answer.status == 302 ? "redirected" : answer.status < 300 ? "allowed" : "refused";
        }
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (deps_.metrics) deps_.metrics->ObserveHook(name, outcome, seconds);
    });
  };
  hook("on_publish", [this](const ingest::NginxHook& h) { return deps_.control->OnPublish(h); });
  hook("on_publish_done", [this](const ingest::NginxHook& h) { return deps_.control->OnPublishDone(h); });
  hook("on_update", [this](const ingest::NginxHook& h) { return deps_.control->OnUpdate(h); });
  hook("on_play", [this](const ingest::NginxHook& h) {
    // A player that brings ?token= is a viewer: the channel's playback rules
    // decide. Without one, only earshot's scanners (loopback) may play.
    const std::string token = h.Arg("token");
    // Only the relayed application is named by channel id (in the ingest
    // application the name is a secret stream key).
    if (token.empty() || h.app != deps_.config->relay_app) return deps_.control->OnPlay(h);
    const PlaybackOutcome o = deps_.playback->AuthorizeRtmpPlay(h.name, token, h.addr);
    if (o.http_status == 200) return ingest::HookAnswer::Allow();
    return ingest::HookAnswer{o.http_status, "", "playback refused"};
  });
  hook("on_play_done", [](const ingest::NginxHook&) { return ingest::HookAnswer::Allow(); });
  hook("hls_publish_done", [](const ingest::NginxHook&) { return ingest::HookAnswer::Allow(); });
  // nginx auth_request for HLS playback: every playlist and segment request.
  // 200 plays; 401 (private channel, no token) and 403 refuse. The reason is
  // logged and counted, never sent to the viewer.
  route("GET", "/hooks/nginx/playback_auth", false, [this](const httplib::Request& req, httplib::Response& res) {
    PlaybackHttpRequest r;
    r.original_uri = req.get_header_value("X-Original-URI");
    r.token = req.get_header_value("X-Playback-Token");
    r.client_address = req.get_header_value("X-Real-IP");
    r.origin = req.get_header_value("Origin");
    r.user_agent = req.get_header_value("User-Agent");
    const PlaybackOutcome outcome = deps_.playback->AuthorizeHls(r);
    res.status = outcome.http_status;
    if (!outcome.cors_origin.empty()) res.set_header("X-Earshot-Cors-Origin", outcome.cors_origin);
  });
}

}  // namespace earshot::server
