#include "server/http_json.h"

#include <charconv>
#include <ctime>

namespace earshot::server {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kAlreadyExists: return 409;
    case ErrorCode::kFailedPrecondition: return 409;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kCancelled: return 503;
    case ErrorCode::kResourceExhausted: return 507;
    case ErrorCode::kUnsupported: return 501;
    case ErrorCode::kCorruptData:
    case ErrorCode::kVersionMismatch:
    case ErrorCode::kIoError:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

void WriteJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

void WriteError(httplib::Response& res, int status, std::string_view code, std::string_view message) {
  WriteJson(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

void WriteError(httplib::Response& res, const Error& error) {
  WriteError(res, HttpStatusFor(error.code()), ErrorCodeName(error.code()), error.message());
}

Result<nlohmann::json> ParseJsonObject(const httplib::Request& req) {
  if (req.body.empty()) return nlohmann::json::object();
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return MakeError(ErrorCode::kInvalidArgument, "request body is not valid JSON");
  }
  if (!body.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "request body must be a JSON object");
  }
  return body;
}

std::optional<std::string> QueryText(const httplib::Request& req, const std::string& name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

Result<std::optional<int64_t>> QueryInt(const httplib::Request& req, const std::string& name,
                                        int64_t min, int64_t max) {
  auto text = QueryText(req, name);
  if (!text) return std::optional<int64_t>();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size() || v < min || v > max) {
    return MakeError(ErrorCode::kInvalidArgument, "query parameter " + name + " must be an integer in " +
                                                      std::to_string(min) + ".." + std::to_string(max) +
                                                      ", got \"" + *text + "\"");
  }
  return std::optional<int64_t>(v);
}

std::optional<int64_t> ParseIsoTimeMs(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.mmm]Z
  auto num = [&](size_t pos, size_t len, int& out) {
    if (pos + len > t.size()) return false;
    // Digits only: from_chars would take a sign ("T-1:00:00Z").
    for (size_t i = pos; i < pos + len; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
    }
    auto [end, ec] = std::from_chars(t.data() + pos, t.data() + pos + len, out);
    return ec == std::errc() && end == t.data() + pos + len;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':') {
    return std::nullopt;
  }
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, s)) {
    return std::nullopt;
  }
  size_t pos = 19;
  if (t[pos] == '.') {
    size_t digits = 0;
    ++pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      if (digits < 3) ms = ms * 10 + (t[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (size_t i = digits; i < 3; ++i) ms *= 10;
  }
  if (pos + 1 != t.size() || t[pos] != 'Z') return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const time_t secs = timegm(&tm);
  return static_cast<int64_t>(secs) * 1000 + ms;
}

Result<std::optional<int64_t>> QueryTimeMs(const httplib::Request& req, const std::string& name) {
  auto text = QueryText(req, name);
  if (!text) return std::optional<int64_t>();
  if (auto iso = ParseIsoTimeMs(*text)) return std::optional<int64_t>(*iso);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec == std::errc() && end == text->data() + text->size() && v >= 0) return std::optional<int64_t>(v);
  return MakeError(ErrorCode::kInvalidArgument,
                   "query parameter " + name +
                       " must be Unix milliseconds or ISO 8601 UTC (2026-11-21T10:00:00Z), got \"" +
                       *text + "\"");
}

std::string BearerToken(const httplib::Request& req) {
  const std::string value = req.get_header_value("Authorization");
  constexpr std::string_view kPrefix = "Bearer ";
  if (value.size() <= kPrefix.size()) return "";
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) !=
        std::tolower(static_cast<unsigned char>(kPrefix[i]))) {
      return "";
    }
  }
  return value.substr(kPrefix.size());
}

}  // namespace earshot::server
