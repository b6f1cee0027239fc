// The moderation hook client against a real HTTP server on 127.0.0.1
// (tests/support/http_listener.h) playing the operator's image-recognition
// service.
#include "delivery/moderation_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/time_format.h"
#include "delivery/webhook_notifier.h"
#include "delivery/webhook_signature.h"
#include "support/http_listener.h"

namespace earshot::delivery {
namespace {

using std::chrono::milliseconds;
using testing::HttpListener;
using testing::HttpReply;

constexpr int64_t kCapturedMs = 1750000000250;  // 2025-06-15T15:06:40.250Z
const char* const kSecret = "modsec-test";

// Stand-in JPEG bytes: markers around every byte value, NUL and CR LF
// included, so the test sees the body is sent as binary, untouched.
std::vector<uint8_t> SampleJpeg() {
  std::vector<uint8_t> bytes = {0xFF, 0xD8, 0xFF, 0xE0};
  for (int i = 0; i < 1024; ++i) bytes.push_back(static_cast<uint8_t>(i * 37 + i / 256));
  bytes.push_back('\r');
  bytes.push_back('\n');
  bytes.push_back(0);
  bytes.push_back(0xFF);
  bytes.push_back(0xD9);
  return bytes;
}

std::string AsString(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

ModerationRequest SampleRequest() {
  ModerationRequest r;
  r.stream_id = "st-1";
  r.channel_id = "ch-7";
  r.stream_time_s = 62.5;
  r.captured_unix_ms = kCapturedMs;
  r.thumbnail_key = "st-1/thumbnails/000062500.jpg";
  return r;
}

HttpReply Json(std::string body, int status = 200) {
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.headers.emplace_back("Content-Type", "application/json");
  return reply;
}

ModerationClientOptions Options(std::string url, std::string secret = "", double timeout_s = 5,
                                int max_attempts = 2) {
  ModerationClientOptions o;
  o.url = std::move(url);
  o.secret = std::move(secret);
  o.timeout_s = timeout_s;
  o.max_attempts = max_attempts;
  return o;
}

ModerationClient MakeClient(const std::string& url, std::string secret = "", int max_attempts = 2,
                            double timeout_s = 5) {
  auto client = ModerationClient::Create(Options(url, std::move(secret), timeout_s, max_attempts));
  if (!client) {
    ADD_FAILURE() << client.error().ToString();
    return *ModerationClient::Create(Options("http://127.0.0.1:1/unused"));
  }
  return std::move(*client);
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ModerationVerdictTest, NamesRoundTrip) {
  for (ModerationVerdict v :
       {ModerationVerdict::kAllow, ModerationVerdict::kFlag, ModerationVerdict::kBlock}) {
    EXPECT_EQ(ParseModerationVerdict(ModerationVerdictName(v)), v);
  }
  EXPECT_EQ(ModerationVerdictName(ModerationVerdict::kAllow), "allow");
  EXPECT_EQ(ModerationVerdictName(ModerationVerdict::kFlag), "flag");
  EXPECT_EQ(ModerationVerdictName(ModerationVerdict::kBlock), "block");
  EXPECT_EQ(ParseModerationVerdict("BLOCK"), ModerationVerdict::kBlock);
  EXPECT_FALSE(ParseModerationVerdict("mute"));
  EXPECT_FALSE(ParseModerationVerdict(""));
}

TEST(ModerationClientTest, ParsesEachVerdict) {
  auto service = HttpListener::Start({
      Json(R"({"verdict": "allow"})"),
      Json(R"({"verdict": "flag", "label": "weapon", "score": 0.61, "model": "v3"})"),
      Json(R"({"verdict": "Block", "label": "nudity", "score": 1})", 201),
      Json(R"({"verdict": "allow", "label": null, "score": null})"),
  });
  ASSERT_TRUE(service) << service.error().ToString();
  const ModerationClient client = MakeClient((*service)->Url("/classify"));
  const auto jpeg = SampleJpeg();

  auto allow = client.Classify(jpeg, SampleRequest());
  ASSERT_TRUE(allow) << allow.error().ToString();
  EXPECT_EQ(allow->verdict, ModerationVerdict::kAllow);
  EXPECT_EQ(allow->label, "");
  EXPECT_EQ(allow->score, 0);
  EXPECT_EQ(allow->raw_body, R"({"verdict": "allow"})");

  auto flag = client.Classify(jpeg, SampleRequest());
  ASSERT_TRUE(flag) << flag.error().ToString();
  EXPECT_EQ(flag->verdict, ModerationVerdict::kFlag);
  EXPECT_EQ(flag->label, "weapon");
  EXPECT_DOUBLE_EQ(flag->score, 0.61);

  auto block = client.Classify(jpeg, SampleRequest());
  ASSERT_TRUE(block) << block.error().ToString();
  EXPECT_EQ(block->verdict, ModerationVerdict::kBlock);
  EXPECT_EQ(block->label, "nudity");
  EXPECT_DOUBLE_EQ(block->score, 1.0);

  auto nulls = client.Classify(jpeg, SampleRequest());
  ASSERT_TRUE(nulls) << nulls.error().ToString();
  EXPECT_EQ(nulls->verdict, ModerationVerdict::kAllow);
  EXPECT_EQ(nulls->label, "");
  EXPECT_EQ((*service)->request_count(), 4u);
}

TEST(ModerationClientTest, SendsTheJpegAndTheDocumentedHeaders) {
  auto service = HttpListener::Start({Json(R"({"verdict":"allow"})")});
  ASSERT_TRUE(service) << service.error().ToString();
  // The query (an API key, say) is part of the request, not of messages.
  const ModerationClient client = MakeClient((*service)->Url("/v1/classify?key=abc"));
  EXPECT_EQ(client.display_url(), (*service)->Url("/v1/classify"));
  const auto jpeg = SampleJpeg();
  ASSERT_TRUE(client.Classify(jpeg, SampleRequest()));

  const auto requests = (*service)->Requests();
  ASSERT_EQ(requests.size(), 1u);
  const testing::RecordedRequest& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/v1/classify?key=abc");
  EXPECT_EQ(r.body, AsString(jpeg));  // every byte, NULs included
  EXPECT_EQ(r.Header("Content-Length"), std::to_string(jpeg.size()));
  EXPECT_EQ(r.Header("Content-Type"), "image/jpeg");
  EXPECT_EQ(r.Header("Accept"), "application/json");
  EXPECT_EQ(r.Header("User-Agent"), "earshot/" + std::string(kEarshotVersion));
  EXPECT_EQ(r.Header("X-Earshot-Stream-Id"), "st-1");
  EXPECT_EQ(r.Header("X-Earshot-Channel-Id"), "ch-7");
  EXPECT_EQ(r.Header("X-Earshot-Stream-Time"), "62.500");
  EXPECT_EQ(r.Header("X-Earshot-Captured-At"), "2025-06-15T15:06:40.250Z");
  EXPECT_EQ(r.Header("X-Earshot-Thumbnail-Key"), "st-1/thumbnails/000062500.jpg");
  EXPECT_FALSE(r.HasHeader("X-Earshot-Signature"));  // no secret: unsigned
  EXPECT_FALSE(r.HasHeader("Expect"));

  // Optional fields left out are not sent; no capture time means now.
  ModerationRequest bare;
  bare.stream_id = "st-2";
  const int64_t before = UnixMillisNow();
  ASSERT_TRUE(client.Classify(jpeg, bare));
  const auto second = (*service)->Requests().at(1);
  EXPECT_EQ(second.Header("X-Earshot-Stream-Id"), "st-2");
  EXPECT_FALSE(second.HasHeader("X-Earshot-Channel-Id"));
  EXPECT_FALSE(second.HasHeader("X-Earshot-Thumbnail-Key"));
  EXPECT_EQ(second.Header("X-Earshot-Stream-Time"), "0.000");
  const std::string captured = second.Header("X-Earshot-Captured-At");
  EXPECT_GE(captured, IsoTimeUtc(before - 1000)) << captured;  // ISO strings sort by time
  EXPECT_LE(captured, IsoTimeUtc(UnixMillisNow() + 1000)) << captured;
}

TEST(ModerationClientTest, SignedLikeAWebhookWhenASecretIsSet) {
  auto service = HttpListener::Start({Json(R"({"verdict":"allow"})")});
  ASSERT_TRUE(service) << service.error().ToString();
  const ModerationClient client = MakeClient((*service)->Url("/classify"), kSecret);
  const auto jpeg = SampleJpeg();
  ASSERT_TRUE(client.Classify(jpeg, SampleRequest()));
  const auto r = (*service)->Requests().at(0);
  const std::string signature = r.Header("X-Earshot-Signature");
  ASSERT_TRUE(signature.starts_with("t=")) << signature;
  // The service's side: the webhook receiver recipe over the raw JPEG bytes.
  auto verified = VerifyWebhookSignature(kSecret, signature, r.body, SystemUnixSeconds());
  EXPECT_TRUE(verified) << verified.error().ToString();
  auto wrong = VerifyWebhookSignature("another-secret", signature, r.body, SystemUnixSeconds());
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kCorruptData);
  std::string altered = r.body;
  altered[100] = static_cast<char>(altered[100] ^ 1);
  EXPECT_FALSE(VerifyWebhookSignature(kSecret, signature, altered, SystemUnixSeconds()));
}

TEST(ModerationClientTest, ServerErrorsAreRetried) {
  std::vector<HttpReply> script = HttpListener::StatusScript({500});
  script.push_back(Json(R"({"verdict":"flag","label":"smoke"})"));
  auto service = HttpListener::Start(script);
  ASSERT_TRUE(service) << service.error().ToString();
  const ModerationClient client = MakeClient((*service)->Url("/classify"), kSecret);
  const auto jpeg = SampleJpeg();
  auto result = client.Classify(jpeg, SampleRequest());
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_EQ(result->verdict, ModerationVerdict::kFlag);
  EXPECT_EQ(result->label, "smoke");
  const auto requests = (*service)->Requests();
  ASSERT_EQ(requests.size(), 2u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.body, AsString(jpeg));
    EXPECT_EQ(r.Header("X-Earshot-Stream-Id"), "st-1");
    EXPECT_TRUE(VerifyWebhookSignature(kSecret, r.Header("X-Earshot-Signature"), r.body,
                                       SystemUnixSeconds()));
  }

  // Out of attempts: the last answer, as kUnavailable.
  for (int status : {503, 429}) {
    (*service)->SetScript(HttpListener::StatusScript({status}));
    const size_t before = (*service)->request_count();
    auto failed = client.Classify(jpeg, SampleRequest());
    ASSERT_FALSE(failed) << status;
    EXPECT_EQ(failed.error().code(), ErrorCode::kUnavailable) << status;
    const std::string& m = failed.error().message();
    EXPECT_TRUE(Contains(m, "moderation service " + (*service)->Url("/classify"))) << m;
    EXPECT_TRUE(Contains(m, "answered HTTP " + std::to_string(status))) << m;
    EXPECT_TRUE(Contains(m, "after 2 attempts")) << m;
    EXPECT_TRUE(Contains(m, "'status " + std::to_string(status) + "'")) << m;
    EXPECT_EQ((*service)->request_count(), before + 2) << status;
  }

  // max_attempts = 1: no retry.
  (*service)->SetScript(HttpListener::StatusScript({502, 200}));
  const ModerationClient once = MakeClient((*service)->Url("/classify"), "", 1);
  const size_t before = (*service)->request_count();
  auto single = once.Classify(jpeg, SampleRequest());
  ASSERT_FALSE(single);
  EXPECT_EQ(single.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ((*service)->request_count(), before + 1);
}

TEST(ModerationClientTest, ClientErrorsAreNotRetried) {
  HttpReply not_found;
  not_found.status = 404;
  not_found.body = "no such model\r\n" + std::string(400, 'x');
  auto service = HttpListener::Start({not_found, Json(R"({"verdict":"allow"})")});
  ASSERT_TRUE(service) << service.error().ToString();
  const ModerationClient client = MakeClient((*service)->Url("/classify?token=t0p"), "", 3);
  auto result = client.Classify(SampleJpeg(), SampleRequest());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ((*service)->request_count(), 1u);
  const std::string& m = result.error().message();
  EXPECT_TRUE(Contains(m, "moderation service " + (*service)->Url("/classify") +
                              " answered HTTP 404: 'no such model  xxx"))
      << m;
  EXPECT_TRUE(Contains(m, std::string(185, 'x') + "...'")) << m;  // 200 bytes at most
  EXPECT_FALSE(Contains(m, std::string(186, 'x'))) << m;
  EXPECT_FALSE(Contains(m, "t0p")) << m;
  EXPECT_FALSE(Contains(m, "\n")) << m;

  for (int status : {400, 401, 403, 413, 422}) {
    (*service)->SetScript(HttpListener::StatusScript({status, 200}));
    const size_t before = (*service)->request_count();
    auto r = client.Classify(SampleJpeg(), SampleRequest());
    ASSERT_FALSE(r) << status;
    EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition) << status;
    EXPECT_EQ((*service)->request_count(), before + 1) << status;
  }
  (*service)->SetScript(HttpListener::StatusScript({302}));
  auto redirect = client.Classify(SampleJpeg(), SampleRequest());
  ASSERT_FALSE(redirect);
  EXPECT_EQ(redirect.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(redirect.error().message(), "redirects are not followed"));
}

TEST(ModerationClientTest, BadAnswersAreCorruptData) {
  const std::string long_junk = "<html>" + std::string(300, 'j') + "</html>";
  struct Case {
    std::string body;
    std::string says;  // part of the message
  };
  const std::vector<Case> cases = {
      {"{\"verdict\": \"allow\"", "no JSON"},
      {long_junk, "no JSON"},
      {"[\"allow\"]", "no JSON object"},
      {"{\"label\": \"x\"}", "no \"verdict\" string"},
      {"{\"verdict\": 1}", "no \"verdict\" string"},
      {"{\"verdict\": \"maybe\"}", "unknown verdict"},
      {"{\"verdict\": \"block\", \"score\": 1.5}", "outside [0, 1]"},
      {"{\"verdict\": \"block\", \"score\": \"high\"}", "not a number"},
      {"{\"verdict\": \"block\", \"label\": 7}", "not a string"},
      {"", "(empty body)"},
  };
  auto service = HttpListener::Start();
  ASSERT_TRUE(service) << service.error().ToString();
  const ModerationClient client = MakeClient((*service)->Url("/classify"), "", 3);
  for (const Case& c : cases) {
    (*service)->SetScript({Json(c.body), Json(R"({"verdict":"allow"})")});
    const size_t before = (*service)->request_count();
    auto r = client.Classify(SampleJpeg(), SampleRequest());
    ASSERT_FALSE(r) << c.body;
    EXPECT_EQ(r.error().code(), ErrorCode::kCorruptData) << c.body;
    const std::string& m = r.error().message();
    EXPECT_TRUE(Contains(m, c.says)) << m;
    EXPECT_TRUE(Contains(m, "moderation service " + (*service)->Url("/classify"))) << m;
    EXPECT_LE(m.size(), 200 + 200u) << m;
    EXPECT_EQ((*service)->request_count(), before + 1) << "not retried: " << c.body;
  }
  // The body is quoted (at most 200 characters of it).
  (*service)->SetScript({Json("{\"verdict\": \"maybe\"}")});
  auto quoted = client.Classify(SampleJpeg(), SampleRequest());
  ASSERT_FALSE(quoted);
  EXPECT_TRUE(Contains(quoted.error().message(), "'{\"verdict\": \"maybe\"}'"))
      << quoted.error().message();
  (*service)->SetScript({Json(long_junk)});
  auto cut = client.Classify(SampleJpeg(), SampleRequest());
  ASSERT_FALSE(cut);
  EXPECT_TRUE(Contains(cut.error().message(), "'<html>" + std::string(194, 'j') + "...'"))
      << cut.error().message();
}

TEST(ModerationClientTest, UnreachableServiceIsUnavailableAndNamed) {
  auto service = HttpListener::Start();
  ASSERT_TRUE(service) << service.error().ToString();
  const uint16_t port = (*service)->port();
  (*service)->Stop();  // the port now refuses connections
  const std::string url =
      "http://user:pa55@127.0.0.1:" + std::to_string(port) + "/classify?token=t0p";
  const ModerationClient client = MakeClient(url);
  const auto start = std::chrono::steady_clock::now();
  auto r = client.Classify(SampleJpeg(), SampleRequest());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  const std::string& m = r.error().message();
  EXPECT_TRUE(Contains(m, "moderation service http://127.0.0.1:" + std::to_string(port) +
                              "/classify is unreachable (after 2 attempts)"))
      << m;
  EXPECT_FALSE(Contains(m, "pa55")) << m;
  EXPECT_FALSE(Contains(m, "t0p")) << m;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(ModerationClientTest, ASlowServiceTimesOut) {
  HttpReply slow = Json(R"({"verdict":"allow"})");
  slow.delay = milliseconds(3000);
  auto service = HttpListener::Start({slow});
  ASSERT_TRUE(service) << service.error().ToString();
  const ModerationClient client = MakeClient((*service)->Url("/classify"), "", 1, 0.3);
  const auto start = std::chrono::steady_clock::now();
  auto r = client.Classify(SampleJpeg(), SampleRequest());
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(r.error().message(), "is unreachable")) << r.error().message();
  EXPECT_LT(took, milliseconds(2000));
  (*service)->Stop();  // cut the scripted delay short
}

TEST(ModerationClientTest, BadRequestsSendNothing) {
  auto service = HttpListener::Start();
  ASSERT_TRUE(service) << service.error().ToString();
  const ModerationClient client = MakeClient((*service)->Url("/classify"));
  auto empty = client.Classify({}, SampleRequest());
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(empty.error().message(), "empty thumbnail"));

  ModerationRequest no_id = SampleRequest();
  no_id.stream_id.clear();
  ModerationRequest injected = SampleRequest();
  injected.channel_id = "ch\r\nX-Evil: 1";
  ModerationRequest bad_time = SampleRequest();
  bad_time.stream_time_s = std::numeric_limits<double>::quiet_NaN();
  for (const ModerationRequest& req : {no_id, injected, bad_time}) {
    auto r = client.Classify(SampleJpeg(), req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ((*service)->request_count(), 0u);
}

TEST(ModerationClientTest, CreateRejectsBadOptions) {
  auto bad = [](ModerationClientOptions o) {
    auto c = ModerationClient::Create(std::move(o));
    EXPECT_FALSE(c);
    return c ? Error(ErrorCode::kInternal, "created") : c.error();
  };
  for (const std::string url :
       {"", "ftp://127.0.0.1/x", "127.0.0.1:8080/classify", "http://", "https://:443/x",
        "http://user@/x", "http://127.0.0.1/a b", "http://127.0.0.1/\r\nx", "file:///etc/passwd"}) {
    const Error e = bad(Options(url));
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << url;
    EXPECT_TRUE(Contains(e.message(), "moderation")) << e.message();
  }
  const std::string good = "https://mod.example.com/classify";
  for (double t : {0.0, -1.0, 601.0, std::nan("")}) {
    const Error e = bad(Options(good, "s3cr3t-value", t));
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << t;
    EXPECT_TRUE(Contains(e.message(), "timeout")) << e.message();
    EXPECT_FALSE(Contains(e.message(), "s3cr3t")) << e.message();
  }
  for (int n : {0, -1, 11}) {
    const Error e = bad(Options(good, "", 5, n));
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << n;
    EXPECT_TRUE(Contains(e.message(), "max_attempts")) << e.message();
  }
  // The URL in messages loses user info and query.
  const Error e = bad(Options("gopher://me:pw@mod.example.com/x?key=k3y"));
  EXPECT_FALSE(Contains(e.message(), "pw")) << e.message();
  EXPECT_FALSE(Contains(e.message(), "k3y")) << e.message();

  EXPECT_TRUE(ModerationClient::Create(Options(good)));
  EXPECT_TRUE(
      ModerationClient::Create(Options("HTTP://user:pw@127.0.0.1:9/x?key=1", "s", 600, 10)));
}

}  // namespace
}  // namespace earshot::delivery
