// JSON-over-HTTP helpers shared by the API and hook routes: how an Error
// becomes a status and a body, how request bodies and query parameters are
// read. The one place that maps ErrorCode to HTTP status.
//
// Error body: {"error": {"code": "not_found", "message": "channel ch-x not found"}}
//
// Thread safety: stateless functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace earshot::server {

// kNotFound → 404, kInvalidArgument → 400, kAlreadyExists → 409,
// kFailedPrecondition → 409, kUnavailable → 503, kResourceExhausted → 507,
// kUnsupported → 501, kCancelled → 503, everything else → 500.
int HttpStatusFor(ErrorCode code);

void WriteJson(httplib::Response& res, int status, const nlohmann::json& body);
void WriteError(httplib::Response& res, const Error& error);
void WriteError(httplib::Response& res, int status, std::string_view code, std::string_view message);

// The body as a JSON object; an empty body is `{}`. kInvalidArgument with
// the parser's message otherwise.
Result<nlohmann::json> ParseJsonObject(const httplib::Request& req);

// Query parameter helpers: absent → nullopt; present but malformed →
// kInvalidArgument naming the parameter.
std::optional<std::string> QueryText(const httplib::Request& req, const std::string& name);
Result<std::optional<int64_t>> QueryInt(const httplib::Request& req, const std::string& name,
                                        int64_t min, int64_t max);
// A time parameter: Unix milliseconds, or ISO 8601 UTC ("2026-11-21T10:00:00Z").
Result<std::optional<int64_t>> QueryTimeMs(const httplib::Request& req, const std::string& name);

// "2026-11-21T10:00:00Z" / "2026-11-21T10:00:00.250Z" → Unix ms.
std::optional<int64_t> ParseIsoTimeMs(std::string_view text);

// The bearer token of an `Authorization: Bearer ...` header, or "".
std::string BearerToken(const httplib::Request& req);

}  // namespace earshot::server
