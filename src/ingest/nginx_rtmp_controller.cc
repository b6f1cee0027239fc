#include "ingest/nginx_rtmp_controller.h"

#include <charconv>

#include "common/log.h"
#include "delivery/http_client.h"
#include "ingest/hook_form.h"
#include "ingest/names.h"
#include "ingest/nginx_hook.h"

namespace earshot::ingest {
namespace {

constexpr int kMaxTimeoutMs = 600000;

Status BadOption(std::string_view option, std::string_view why) {
  return MakeError(ErrorCode::kInvalidArgument,
                   "nginx-rtmp controller: " + std::string(option) + " " + std::string(why));
}

// Checks `url` starts with one of `schemes` and has a host, and drops trailing
// slashes. No query, fragment, whitespace or control characters.
Status NormaliseUrl(std::string_view option, std::string& url,
                    std::initializer_list<std::string_view> schemes) {
  std::string_view scheme_found;
  for (std::string_view scheme : schemes) {
    if (url.starts_with(scheme)) scheme_found = scheme;
  }
  std::string expected;
  for (std::string_view scheme : schemes) {
    if (!expected.empty()) expected += " or ";
    expected += std::string(scheme);
  }
  if (scheme_found.empty()) {
    return BadOption(option, "must start with " + expected + ", got '" + url + "'");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      return BadOption(option, "must not contain whitespace or control characters");
    }
    if (c == '?' || c == '#') {
      return BadOption(option, "must not have a query string or fragment, got '" + url + "'");
    }
  }
  while (url.size() > scheme_found.size() && url.back() == '/') url.pop_back();
  const std::string_view rest = std::string_view(url).substr(scheme_found.size());
  if (rest.empty() || rest.front() == '/' || rest.front() == ':') {
    return BadOption(option, "has no host: '" + url + "'");
  }
  return Ok();
}



// "app=ingest name=abc*** clientid=12", for messages and logs (no key).
std::string Describe(const PublisherRef& p) {
  std::string out = "app=" + p.app;
  if (!p.name.empty()) out += " name=" + RedactStreamKey(p.name);
  if (!p.clientid.empty()) out += " clientid=" + p.clientid;
  return out;
}

}  // namespace

Result<std::unique_ptr<NginxRtmpController>> NginxRtmpController::Create(
    NginxRtmpControllerOptions options) {
  if (Status s = NormaliseUrl("control_url", options.control_url, {"http://", "https://"}); !s) {
    return std::unexpected(s.error());
  }
  if (Status s = NormaliseUrl("rtmp_url", options.rtmp_url, {"rtmp://", "rtmps://"}); !s) {
    return std::unexpected(s.error());
  }
  if (Status s = NormaliseUrl("playback_url", options.playback_url, {"http://", "https://"}); !s) {
    return std::unexpected(s.error());
  }
  if (!IsAppName(options.relay_app)) {
    return std::unexpected(
        BadOption("relay_app", "must be 1-128 of A-Z a-z 0-9 _ - . (an RTMP application name), "
                               "got '" + options.relay_app + "'")
            .error());
  }
  for (auto [option, value] : {std::pair<std::string_view, int>{"connect_timeout_ms",
                                                                options.connect_timeout_ms},
                               {"request_timeout_ms", options.request_timeout_ms}}) {
    if (value < 1 || value > kMaxTimeoutMs) {
      return std::unexpected(BadOption(option, "must be 1.." + std::to_string(kMaxTimeoutMs) +
                                                   " ms, got " + std::to_string(value))
                                 .error());
    }
  }
  return std::unique_ptr<NginxRtmpController>(new NginxRtmpController(std::move(options)));
}

Status NginxRtmpController::DropPublisher(const PublisherRef& publisher) {
  if (publisher.app.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "drop publisher: the RTMP application (app) is required");
  }
  if (publisher.name.empty() && publisher.clientid.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "drop publisher: a stream name or a clientid is required (without either "
                     "nginx-rtmp would drop every publisher of application " +
                         publisher.app + ")");
  }
  if (!publisher.clientid.empty() && !IsClientId(publisher.clientid)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "drop publisher: clientid must be nginx's decimal connection number");
  }
  std::string url =
      options_.control_url + "/drop/publisher?app=" + PercentEncode(publisher.app);
  if (!publisher.name.empty()) url += "&name=" + PercentEncode(publisher.name);
  if (!publisher.clientid.empty()) url += "&clientid=" + publisher.clientid;

  delivery::HttpRequest request;
  request.method = "GET";
  request.url = std::move(url);
  request.connect_timeout_ms = options_.connect_timeout_ms;
  request.timeout_ms = options_.request_timeout_ms;
  const std::string what = "drop publisher " + Describe(publisher);
  // SendHttp's messages name the URL without its query, so never the key.
  auto response = delivery::SendHttp(request);
  if (!response) {
    return std::unexpected(response.error().Wrap(what + " via nginx-rtmp control " +
                                                 options_.control_url));
  }
  const long status = response->status;
  if (status >= 500) {
    return MakeError(ErrorCode::kUnavailable, what + ": nginx-rtmp control " +
                                                  options_.control_url + " answered HTTP " +
                                                  std::to_string(status));
  }
  if (status != 200) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     what + ": nginx-rtmp control " + options_.control_url + " answered HTTP " +
                         std::to_string(status) +
                         " (is `rtmp_control all;` configured at that location, and is earshot "
                         "allowed to reach it?)");
  }
  std::string_view body = response->body;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) {
    body.remove_suffix(1);
  }
  long long dropped = 0;
  const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), dropped);
  if (body.empty() || ec != std::errc() || end != body.data() + body.size() || dropped < 0) {
    return MakeError(ErrorCode::kCorruptData,
                     what + ": nginx-rtmp control answered 200 without a count (is " +
                         options_.control_url + " an rtmp_control location?)");
  }
  if (dropped == 0) {
    return MakeError(ErrorCode::kNotFound,
                     what + ": no such publisher on nginx-rtmp (the stream has ended already)");
  }
  nlohmann::json fields = {{"ingest", std::string(kKind)}, {"app", publisher.app},
                           {"dropped", dropped}};
  if (!publisher.name.empty()) fields["name"] = RedactStreamKey(publisher.name);
  if (!publisher.clientid.empty()) fields["clientid"] = publisher.clientid;
  Log(LogLevel::kInfo, "publisher dropped", fields);
  return Ok();
}

std::string NginxRtmpController::RelayUrl(std::string_view channel_id) const {
  return options_.rtmp_url + "/" + options_.relay_app + "/" + PercentEncode(channel_id);
}

std::string NginxRtmpController::ScanInputUrl(std::string_view channel_id) const {
  return RelayUrl(channel_id);
}

std::string NginxRtmpController::PlaybackUrl(std::string_view channel_id) const {
  return options_.playback_url + "/" + PercentEncode(channel_id) + ".m3u8";
}

}  // namespace earshot::ingest
