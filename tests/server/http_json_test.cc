#include "server/http_json.h"

#include <gtest/gtest.h>

#include <map>

namespace earshot::server {
namespace {

httplib::Request RequestWith(std::initializer_list<std::pair<const char*, const char*>> params) {
  httplib::Request req;
  for (const auto& [k, v] : params) req.params.emplace(k, v);
  return req;
}

TEST(HttpJsonTest, EveryErrorCodeHasItsStatus) {
  const std::map<ErrorCode, int> expected = {
      {ErrorCode::kInvalidArgument, 400},    {ErrorCode::kNotFound, 404},
      {ErrorCode::kAlreadyExists, 409},      {ErrorCode::kCorruptData, 500},
      {ErrorCode::kUnsupported, 501},        {ErrorCode::kVersionMismatch, 500},
      {ErrorCode::kFailedPrecondition, 409}, {ErrorCode::kIoError, 500},
      {ErrorCode::kUnavailable, 503},        {ErrorCode::kResourceExhausted, 507},
      {ErrorCode::kCancelled, 503},          {ErrorCode::kInternal, 500},
  };
  EXPECT_EQ(expected.size(), static_cast<size_t>(ErrorCode::kInternal) + 1)
      << "a code is missing here";
  for (const auto& [code, status] : expected) {
    EXPECT_EQ(HttpStatusFor(code), status) << ErrorCodeName(code);
  }
}

TEST(HttpJsonTest, ErrorBodyCarriesTheStableCodeAndTheMessage) {
  httplib::Response res;
  WriteError(res, Error(ErrorCode::kNotFound, "channel ch-x not found"));
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.get_header_value("Content-Type"), "application/json");
  const auto body = nlohmann::json::parse(res.body);
  EXPECT_EQ(
      body,
      (nlohmann::json{{"error", {{"code", "not_found"}, {"message", "channel ch-x not found"}}}}));
}

TEST(HttpJsonTest, JsonWithInvalidUtf8IsStillSent) {
  httplib::Response res;
  WriteJson(res, 200, {{"title", std::string("caf\xe9")}});  // Latin-1 from a tag, not UTF-8
  EXPECT_EQ(res.status, 200);
  auto body = nlohmann::json::parse(res.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << res.body;
  EXPECT_EQ(body.value("title", ""), "caf\xef\xbf\xbd");  // U+FFFD
}

TEST(HttpJsonTest, BodyMustBeAJsonObject) {
  httplib::Request req;
  auto empty = ParseJsonObject(req);
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, nlohmann::json::object());

  req.body = R"({"name":"studio"})";
  auto ok = ParseJsonObject(req);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->value("name", ""), "studio");

  req.body = R"({"name":)";
  auto broken = ParseJsonObject(req);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(broken.error().message().find("not valid JSON"), std::string::npos);

  for (const char* not_object : {"[1,2]", "\"x\"", "null", "3"}) {
    req.body = not_object;
    auto r = ParseJsonObject(req);
    ASSERT_FALSE(r) << not_object;
    EXPECT_NE(r.error().message().find("JSON object"), std::string::npos) << r.error().message();
  }
}

TEST(HttpJsonTest, IntegerParametersAreCheckedAndNamed) {
  auto absent = QueryInt(RequestWith({}), "limit", 1, 1000);
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->has_value());

  for (auto [text, value] :
       std::vector<std::pair<const char*, int64_t>>{{"1", 1}, {"1000", 1000}, {"42", 42}}) {
    auto r = QueryInt(RequestWith({{"limit", text}}), "limit", 1, 1000);
    ASSERT_TRUE(r) << text << ": " << r.error().ToString();
    EXPECT_EQ(r->value_or(-1), value);
  }
  for (const char* bad :
       {"0", "1001", "-5", "abc", "5x", "", " 5", "+5", "1.5", "99999999999999999999"}) {
    auto r = QueryInt(RequestWith({{"limit", bad}}), "limit", 1, 1000);
    ASSERT_FALSE(r) << "'" << bad << "' was accepted";
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    const std::string& m = r.error().message();
    EXPECT_NE(m.find("limit"), std::string::npos) << m;
    EXPECT_NE(m.find("1..1000"), std::string::npos) << m;
    EXPECT_NE(m.find(std::string("\"") + bad + "\""), std::string::npos) << m;
  }
}

TEST(HttpJsonTest, IsoTimesParseToUnixMilliseconds) {
  EXPECT_EQ(ParseIsoTimeMs("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseIsoTimeMs("2026-11-21T10:00:00Z"), int64_t{1795255200000});
  EXPECT_EQ(ParseIsoTimeMs("2026-11-21T10:00:00.250Z"), int64_t{1795255200250});
  EXPECT_EQ(ParseIsoTimeMs("2026-11-21T10:00:00.5Z"), int64_t{1795255200500});
  EXPECT_EQ(ParseIsoTimeMs("2026-11-21T10:00:00.123456Z"), int64_t{1795255200123});
  EXPECT_EQ(ParseIsoTimeMs("2024-02-29T23:59:59Z"), int64_t{1709251199000});
}

TEST(HttpJsonTest, MalformedIsoTimesAreRefused) {
  for (const char* bad : {
           "",
           "2026-11-21",
           "2026-11-21T10:00:00",        // no zone
           "2026-11-21T10:00:00+01:00",  // only UTC
           "2026-11-21 10:00:00Z",
           "2026-13-21T10:00:00Z",
           "2026-00-21T10:00:00Z",
           "2026-11-32T10:00:00Z",
           "2026-11-21T24:00:00Z",
           "2026-11-21T10:60:00Z",
           "2026-11-21T10:00:00.Z",
           "2026-11-21T10:00:00ZZ",
           "2026-11-21T-1:00:00Z",  // signed fields
           "2026-11-21T10:-1:00Z",
           "2026-11-21T10:00:-1Z",
           "2026-+1-21T10:00:00Z",
           "2026-11-21T10:00:00.-5Z",
           "20261121T100000Z",
       }) {
    EXPECT_EQ(ParseIsoTimeMs(bad), std::nullopt) << "'" << bad << "' was accepted";
  }
}

TEST(HttpJsonTest, TimeParametersTakeIsoOrMillisecondsAndNameTheParameter) {
  auto iso = QueryTimeMs(RequestWith({{"from", "2026-11-21T10:00:00Z"}}), "from");
  ASSERT_TRUE(iso);
  EXPECT_EQ(iso->value_or(-1), 1795255200000);
  auto ms = QueryTimeMs(RequestWith({{"from", "1795255200123"}}), "from");
  ASSERT_TRUE(ms);
  EXPECT_EQ(ms->value_or(-1), 1795255200123);
  auto absent = QueryTimeMs(RequestWith({}), "from");
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->has_value());
  for (const char* bad : {"yesterday", "-1", "2026-11-21", ""}) {
    auto r = QueryTimeMs(RequestWith({{"to", bad}}), "to");
    ASSERT_FALSE(r) << "'" << bad << "' was accepted";
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(r.error().message().starts_with("query parameter to ")) << r.error().message();
  }
}

TEST(HttpJsonTest, QueryTextIsAbsentOrTheValue) {
  EXPECT_EQ(QueryText(RequestWith({}), "type"), std::nullopt);
  EXPECT_EQ(QueryText(RequestWith({{"type", ""}}), "type"), "");
  EXPECT_EQ(QueryText(RequestWith({{"type", "Stream Start"}}), "type"), "Stream Start");
}

TEST(HttpJsonTest, BearerTokenIsReadCaseInsensitively) {
  auto with = [](const char* value) {
    httplib::Request req;
    req.headers.emplace("Authorization", value);
    return BearerToken(req);
  };
  EXPECT_EQ(BearerToken(httplib::Request{}), "");
  EXPECT_EQ(with("Bearer ek_abc"), "ek_abc");
  EXPECT_EQ(with("bearer ek_abc"), "ek_abc");
  EXPECT_EQ(with("BEARER ek_abc"), "ek_abc");
  EXPECT_EQ(with("Bearer "), "");
  EXPECT_EQ(with("Basic dXNlcjpwYXNz"), "");
  EXPECT_EQ(with("Bearerek_abc"), "");
}

}  // namespace
}  // namespace earshot::server
