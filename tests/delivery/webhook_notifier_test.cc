// The webhook notifier against a real HTTP server on 127.0.0.1
// (tests/support/http_listener.h).
#include "delivery/webhook_notifier.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "delivery/webhook_signature.h"
#include "support/http_listener.h"

namespace earshot::delivery {
namespace {

using std::chrono::milliseconds;
using testing::HttpListener;
using testing::HttpReply;

constexpr std::int64_t kT = 1750000000;
constexpr milliseconds kWait(10000);
const char* const kSecretVar = "EARSHOT_TEST_WEBHOOK_SECRET";
const char* const kSecret = "whsec-notifier-test";

Notification SampleNotification() {
  Notification n;
  n.event_type = "identification.started";
  n.idempotency_key = "st-1/match-0001-started.json";
  n.stream_id = "st-1";
  n.channel_id = "ch-7";
  n.subject = "earshot: 'Battle Theme' (block) in stream st-1";
  n.body =
      R"({"input":"rtmp://127.0.0.1/live/st-1","status":"match_found",)"
      R"("matches":[{"track_id":2,"rule":"block","metadata":{"title":"Battle Theme \u00e9"}}]})";
  return n;
}

class WebhookNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv(kSecretVar, kSecret, 1); }
  void TearDown() override { ::unsetenv(kSecretVar); }

  static Result<std::unique_ptr<Notifier>> Make(
      const std::string& spec_text, UnixClock clock = [] { return kT; }) {
    auto spec = ParseTargetSpec(spec_text);
    if (!spec) return std::unexpected(spec.error());
    return MakeWebhookNotifier(*spec, std::move(clock));
  }
  static std::string Spec(const HttpListener& hook, const std::string& extra = "") {
    return "webhook:url=" + hook.Url("/hooks/earshot") + ",secret_env=" + kSecretVar + extra;
  }
};

TEST_F(WebhookNotifierTest, DeliversSignedJsonWithTheDocumentedHeaders) {
  auto hook = HttpListener::Start();
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto notifier = Make(Spec(**hook, ",header_X-Tenant=acme"));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  EXPECT_EQ((*notifier)->name(), "webhook");

  const Notification n = SampleNotification();
  auto sent = (*notifier)->Notify(n);
  ASSERT_TRUE(sent) << sent.error().ToString();
  ASSERT_TRUE((*hook)->WaitForRequests(1, kWait));
  const auto requests = (*hook)->Requests();
  ASSERT_EQ(requests.size(), 1u);
  const testing::RecordedRequest& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/earshot");
  EXPECT_EQ(r.body, n.body);
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  EXPECT_EQ(r.Header("User-Agent"), "earshot/" + std::string(kEarshotVersion));
  EXPECT_EQ(r.Header("X-Earshot-Event"), "identification.started");
  EXPECT_EQ(r.Header("Idempotency-Key"), "st-1/match-0001-started.json");
  EXPECT_EQ(r.Header("X-Tenant"), "acme");
  EXPECT_FALSE(r.HasHeader("Expect"));

  // The receiver's side: verify the signature over the raw body it got.
  const std::string signature = r.Header("X-Earshot-Signature");
  EXPECT_TRUE(signature.starts_with("t=" + std::to_string(kT) + ",v1=")) << signature;
  auto verified = VerifyWebhookSignature(kSecret, signature, r.body, kT);
  EXPECT_TRUE(verified) << verified.error().ToString();
  EXPECT_FALSE(VerifyWebhookSignature("not-the-secret", signature, r.body, kT));
}

TEST(WebhookVersionTest, UserAgentVersionMatchesTheProject) {
  std::ifstream in(std::string(EARSHOT_TEST_SOURCE_DIR) + "/CMakeLists.txt");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  std::smatch match;
  const std::string cmake = text.str();
  ASSERT_TRUE(std::regex_search(cmake, match, std::regex(R"(project\(earshot VERSION ([0-9.]+))")));
  EXPECT_EQ(match[1].str(), kEarshotVersion) << "update kEarshotVersion in webhook_notifier.h";
}

TEST_F(WebhookNotifierTest, SystemClockSignaturesVerifyNow) {
  auto hook = HttpListener::Start();
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto spec = ParseTargetSpec(Spec(**hook));
  ASSERT_TRUE(spec);
  auto notifier = MakeWebhookNotifier(*spec);  // default clock
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  ASSERT_TRUE((*notifier)->Notify(SampleNotification()));
  ASSERT_TRUE((*hook)->WaitForRequests(1, kWait));
  const auto r = (*hook)->Requests().at(0);
  auto verified =
      VerifyWebhookSignature(kSecret, r.Header("X-Earshot-Signature"), r.body, SystemUnixSeconds());
  EXPECT_TRUE(verified) << verified.error().ToString();
}

TEST_F(WebhookNotifierTest, RetriesKeepTheIdempotencyKeyAndAreSignedAnew) {
  auto hook = HttpListener::Start(HttpListener::StatusScript({500, 503, 200}));
  ASSERT_TRUE(hook) << hook.error().ToString();
  std::atomic<std::int64_t> now{kT};
  auto notifier = Make(Spec(**hook), [&now] { return now.load(); });
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  const Notification n = SampleNotification();

  auto first = (*notifier)->Notify(n);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(first.error().message().find("receiver answered HTTP 500: 'status 500'"),
            std::string::npos)
      << first.error().message();
  now += 30;
  auto second = (*notifier)->Notify(n);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kUnavailable);
  now += 30;
  auto third = (*notifier)->Notify(n);
  ASSERT_TRUE(third) << third.error().ToString();

  ASSERT_TRUE((*hook)->WaitForRequests(3, kWait));
  const auto requests = (*hook)->Requests();
  ASSERT_EQ(requests.size(), 3u);
  std::set<std::string> signatures;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].Header("Idempotency-Key"), n.idempotency_key);
    EXPECT_EQ(requests[i].body, n.body);
    const std::string sig = requests[i].Header("X-Earshot-Signature");
    signatures.insert(sig);
    const std::int64_t t = kT + 30 * static_cast<std::int64_t>(i);
    EXPECT_TRUE(sig.starts_with("t=" + std::to_string(t) + ",")) << sig;
    EXPECT_TRUE(VerifyWebhookSignature(kSecret, sig, requests[i].body, t));
  }
  EXPECT_EQ(signatures.size(), 3u);
}

TEST_F(WebhookNotifierTest, ClientErrorsAreFailedPreconditionWithTheAnswer) {
  HttpReply not_found;
  not_found.status = 404;
  not_found.body = "no such hook\r\n" + std::string(400, 'x');
  auto hook = HttpListener::Start({not_found});
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto notifier = Make(Spec(**hook));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto result = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kFailedPrecondition);
  const std::string& message = result.error().message();
  EXPECT_NE(message.find("receiver answered HTTP 404: 'no such hook  xxx"), std::string::npos)
      << message;
  // First 200 bytes only, on one line.
  EXPECT_NE(message.find(std::string(186, 'x') + "...'"), std::string::npos) << message;
  EXPECT_EQ(message.find(std::string(187, 'x')), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_NE(message.find((*hook)->Url("/hooks/earshot")), std::string::npos) << message;

  for (int status : {400, 401, 403, 410, 422}) {
    (*hook)->SetScript(HttpListener::StatusScript({status}));
    auto r = (*notifier)->Notify(SampleNotification());
    ASSERT_FALSE(r) << status;
    EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition) << status;
  }
  (*hook)->SetScript(HttpListener::StatusScript({301}));
  auto redirect = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(redirect);
  EXPECT_EQ(redirect.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(redirect.error().message().find("redirects are not followed"), std::string::npos);
}

TEST_F(WebhookNotifierTest, TimeoutAndThrottlingAnswersAreUnavailable) {
  HttpReply throttled;
  throttled.status = 429;
  throttled.body = "slow down";
  throttled.headers.emplace_back("Retry-After", "30");
  auto hook = HttpListener::Start({throttled});
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto notifier = Make(Spec(**hook));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto r429 = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(r429);
  EXPECT_EQ(r429.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r429.error().message().find("(Retry-After: 30)"), std::string::npos)
      << r429.error().message();

  for (int status : {408, 500, 502, 503, 504}) {
    (*hook)->SetScript(HttpListener::StatusScript({status}));
    auto r = (*notifier)->Notify(SampleNotification());
    ASSERT_FALSE(r) << status;
    EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << status;
  }
  (*hook)->SetScript(HttpListener::StatusScript({204}));
  EXPECT_TRUE((*notifier)->Notify(SampleNotification()));
}

TEST_F(WebhookNotifierTest, NothingListeningIsUnavailable) {
  auto hook = HttpListener::Start();
  ASSERT_TRUE(hook) << hook.error().ToString();
  const std::string spec = Spec(**hook);
  (*hook)->Stop();  // the port now refuses connections
  auto notifier = Make(spec);
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto result = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable) << result.error().ToString();
}

TEST_F(WebhookNotifierTest, SlowReceiverTimesOutAsUnavailable) {
  HttpReply slow;
  slow.delay = milliseconds(20000);  // cut short when the listener stops
  auto hook = HttpListener::Start({slow});
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto notifier = Make(Spec(**hook, ",timeout_ms=300"));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto result = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable) << result.error().ToString();
}

TEST_F(WebhookNotifierTest, UnsignedOnlyWhenAskedFor) {
  auto hook = HttpListener::Start();
  ASSERT_TRUE(hook) << hook.error().ToString();
  ::unsetenv(kSecretVar);
  auto refused = Make(Spec(**hook));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message().find(kSecretVar), std::string::npos)
      << refused.error().message();
  EXPECT_NE(refused.error().message().find("unsigned=true"), std::string::npos);

  // The default variable name is EARSHOT_WEBHOOK_SECRET.
  ::unsetenv("EARSHOT_WEBHOOK_SECRET");
  auto default_var = Make("webhook:url=" + (*hook)->Url("/h"));
  ASSERT_FALSE(default_var);
  EXPECT_NE(default_var.error().message().find("EARSHOT_WEBHOOK_SECRET"), std::string::npos);

  auto unsigned_notifier = Make("webhook:url=" + (*hook)->Url("/h") + ",unsigned=true");
  ASSERT_TRUE(unsigned_notifier) << unsigned_notifier.error().ToString();
  ASSERT_TRUE((*unsigned_notifier)->Notify(SampleNotification()));
  ASSERT_TRUE((*hook)->WaitForRequests(1, kWait));
  EXPECT_FALSE((*hook)->Requests().at(0).HasHeader("X-Earshot-Signature"));
  EXPECT_EQ((*hook)->Requests().at(0).Header("Idempotency-Key"),
            SampleNotification().idempotency_key);
}

TEST_F(WebhookNotifierTest, HeaderFromEnvironment) {
  auto hook = HttpListener::Start();
  ASSERT_TRUE(hook) << hook.error().ToString();
  const std::string spec = Spec(**hook, ",header_Authorization_env=EARSHOT_TEST_HOOK_TOKEN");
  ::unsetenv("EARSHOT_TEST_HOOK_TOKEN");
  auto missing = Make(spec);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("EARSHOT_TEST_HOOK_TOKEN"), std::string::npos);
  ::setenv("EARSHOT_TEST_HOOK_TOKEN", "Bearer t0ken", 1);
  auto notifier = Make(spec);
  ::unsetenv("EARSHOT_TEST_HOOK_TOKEN");
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  ASSERT_TRUE((*notifier)->Notify(SampleNotification()));
  ASSERT_TRUE((*hook)->WaitForRequests(1, kWait));
  EXPECT_EQ((*hook)->Requests().at(0).Header("Authorization"), "Bearer t0ken");
}

TEST_F(WebhookNotifierTest, SpecErrorsNameTheProblem) {
  struct Case {
    std::string spec;
    std::string expected;
  };
  const std::string url = "url=http://127.0.0.1:9/h,secret_env=" + std::string(kSecretVar);
  const Case cases[] = {
      {"webhook", "missing url="},
      {"webhook:url=ftp://127.0.0.1/h", "not an http:// or https:// URL"},
      {"webhook:url=127.0.0.1:8080/h", "not an http:// or https:// URL"},
      {"webhook:url=http:///h", "has no host"},
      {"webhook:url=https://user:pw@example.com/h", "user:password@"},
      {"webhook:" + url + ",timeout_ms=0", "timeout_ms='0'"},
      {"webhook:" + url + ",timeout_ms=abc", "timeout_ms='abc'"},
      {"webhook:" + url + ",timeout_ms=600001", "timeout_ms='600001'"},
      {"webhook:" + url + ",unsigned=yes", "unsigned='yes' must be true or false"},
      {"webhook:" + url + ",unsigned=true", "contradicts secret_env"},
      {"webhook:" + url + ",retries=3", "unknown option 'retries'"},
      {"webhook:" + url + ",header_Content-Type=text/plain", "cannot be overridden"},
      {"webhook:" + url + ",header_X-Earshot-Event=x", "cannot be overridden"},
      {"webhook:" + url + ",header_Idempotency-Key=x", "cannot be overridden"},
      {"webhook:" + url + ",header_X_Y=1", "letters, digits and '-'"},
      {"webhook:" + url + ",header_=1", "letters, digits and '-'"},
  };
  for (const Case& c : cases) {
    auto notifier = Make(c.spec);
    ASSERT_FALSE(notifier) << c.spec;
    EXPECT_EQ(notifier.error().code(), ErrorCode::kInvalidArgument) << c.spec;
    EXPECT_NE(notifier.error().message().find(c.expected), std::string::npos)
        << c.spec << " -> " << notifier.error().message();
  }
  TargetSpec wrong_kind{"email", {{"url", "http://127.0.0.1/h"}}};
  EXPECT_FALSE(MakeWebhookNotifier(wrong_kind));
}

TEST_F(WebhookNotifierTest, HeaderInjectionThroughTheNotificationIsRefused) {
  auto hook = HttpListener::Start();
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto notifier = Make(Spec(**hook));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  Notification bad_event = SampleNotification();
  bad_event.event_type = "identification.started\r\nX-Evil: 1";
  auto r1 = (*notifier)->Notify(bad_event);
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.error().code(), ErrorCode::kInvalidArgument);
  Notification bad_key = SampleNotification();
  bad_key.idempotency_key = "st-1/x\nX-Evil: 1";
  auto r2 = (*notifier)->Notify(bad_key);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code(), ErrorCode::kInvalidArgument);
  Notification no_key = SampleNotification();
  no_key.idempotency_key.clear();
  EXPECT_EQ((*notifier)->Notify(no_key).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*hook)->request_count(), 0u);
}

TEST_F(WebhookNotifierTest, ConcurrentNotifyCallsAllArrive) {
  auto hook = HttpListener::Start();
  ASSERT_TRUE(hook) << hook.error().ToString();
  auto notifier = Make(Spec(**hook));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  constexpr int kThreads = 4;
  constexpr int kEach = 5;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        Notification n = SampleNotification();
        n.idempotency_key = "st-1/thread-" + std::to_string(t) + "-" + std::to_string(i);
        if (!(*notifier)->Notify(n)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE((*hook)->WaitForRequests(kThreads * kEach, kWait));
  std::set<std::string> keys;
  for (const auto& r : (*hook)->Requests()) {
    keys.insert(r.Header("Idempotency-Key"));
    EXPECT_TRUE(VerifyWebhookSignature(kSecret, r.Header("X-Earshot-Signature"), r.body, kT));
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace earshot::delivery
