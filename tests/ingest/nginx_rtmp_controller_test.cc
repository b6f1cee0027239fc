// NginxRtmpController against a scripted HTTP server on 127.0.0.1 standing in
// for nginx-rtmp's control endpoint (ingest_e2e_test has the real nginx), and
// the controller registry.
#include "ingest/nginx_rtmp_controller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "delivery/http_client.h"
#include "ingest/registry.h"
#include "support/http_listener.h"

namespace earshot::ingest {
namespace {

using std::chrono::milliseconds;
using testing::HttpListener;
using testing::HttpReply;

constexpr milliseconds kWait(10000);
const std::string kKey = "sk_live_Zq8d7XcV2mN4pL0w";

HttpReply Answer(int status, std::string body) {
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.headers.emplace_back("Content-Type", "text/plain");
  return reply;
}

class NginxRtmpControllerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { delivery::InitHttpClient(); }

  void SetUp() override {
    auto listener = HttpListener::Start();
    ASSERT_TRUE(listener) << listener.error().ToString();
    control_ = std::move(*listener);
  }

  std::unique_ptr<NginxRtmpController> Controller(int timeout_ms = 5000) {
    NginxRtmpControllerOptions options;
    options.control_url = control_->Url("/control");
    options.request_timeout_ms = timeout_ms;
    auto controller = NginxRtmpController::Create(options);
    EXPECT_TRUE(controller) << controller.error().ToString();
    return controller ? std::move(*controller) : nullptr;
  }

  std::unique_ptr<HttpListener> control_;
};

TEST_F(NginxRtmpControllerTest, DropsByAppAndNameWithTheKeyEncodedAndNeverLogged) {
  control_->SetScript({Answer(200, "1")});
  auto controller = Controller();
  ASSERT_NE(controller, nullptr);
  const std::string key = kKey + "/+&=";
  ::testing::internal::CaptureStderr();
  const Status dropped = controller->DropPublisher({"ingest", key, ""});
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(dropped) << dropped.error().ToString();
  ASSERT_TRUE(control_->WaitForRequests(1, kWait));
  const auto requests = control_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target,
            "/control/drop/publisher?app=ingest&name=" + kKey + "%2F%2B%26%3D");
  EXPECT_NE(log.find("publisher dropped"), std::string::npos) << log;
  EXPECT_NE(log.find("sk_***"), std::string::npos) << log;
  EXPECT_EQ(log.find(kKey), std::string::npos) << "the stream key was logged: " << log;
}

TEST_F(NginxRtmpControllerTest, DropsByClientIdAlone) {
  control_->SetScript({Answer(200, "1\n")});
  auto controller = Controller();
  ASSERT_NE(controller, nullptr);
  const Status dropped = controller->DropPublisher({"ingest", "", "42"});
  ASSERT_TRUE(dropped) << dropped.error().ToString();
  ASSERT_TRUE(control_->WaitForRequests(1, kWait));
  EXPECT_EQ(control_->Requests()[0].target, "/control/drop/publisher?app=ingest&clientid=42");
}

TEST_F(NginxRtmpControllerTest, NothingDroppedIsNotFoundWithoutTheKey) {
  control_->SetScript({Answer(200, "0")});
  auto controller = Controller();
  ASSERT_NE(controller, nullptr);
  const Status dropped = controller->DropPublisher({"ingest", kKey, "7"});
  ASSERT_FALSE(dropped);
  EXPECT_EQ(dropped.error().code(), ErrorCode::kNotFound) << dropped.error().ToString();
  EXPECT_EQ(dropped.error().message().find(kKey), std::string::npos) << dropped.error().message();
  EXPECT_NE(dropped.error().message().find("clientid=7"), std::string::npos);
  ASSERT_TRUE(control_->WaitForRequests(1, kWait));
  EXPECT_EQ(control_->Requests()[0].target,
            "/control/drop/publisher?app=ingest&name=" + kKey + "&clientid=7");
}

TEST_F(NginxRtmpControllerTest, AnswersMapToErrorCodes) {
  struct Case {
    HttpReply reply;
    ErrorCode code;
  };
  for (const Case& c : {Case{Answer(500, "oops"), ErrorCode::kUnavailable},
                        Case{Answer(503, ""), ErrorCode::kUnavailable},
                        Case{Answer(403, "forbidden"), ErrorCode::kFailedPrecondition},
                        Case{Answer(404, "not found"), ErrorCode::kFailedPrecondition},
                        Case{Answer(200, "<html>hello</html>"), ErrorCode::kCorruptData},
                        Case{Answer(200, ""), ErrorCode::kCorruptData},
                        Case{Answer(200, "-1"), ErrorCode::kCorruptData}}) {
    control_->SetScript({c.reply});
    auto controller = Controller();
    ASSERT_NE(controller, nullptr);
    const Status dropped = controller->DropPublisher({"ingest", kKey, ""});
    ASSERT_FALSE(dropped) << c.reply.status << " " << c.reply.body;
    EXPECT_EQ(dropped.error().code(), c.code) << dropped.error().ToString();
    EXPECT_EQ(dropped.error().message().find(kKey), std::string::npos)
        << dropped.error().message();
  }
}

TEST_F(NginxRtmpControllerTest, ServerDownOrSlowIsUnavailable) {
  HttpReply slow = Answer(200, "1");
  slow.delay = milliseconds(3000);
  control_->SetScript({slow});
  auto controller = Controller(/*timeout_ms=*/300);
  ASSERT_NE(controller, nullptr);
  const Status timed_out = controller->DropPublisher({"ingest", kKey, ""});
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error().code(), ErrorCode::kUnavailable) << timed_out.error().ToString();

  control_->Stop();  // the port now refuses connections
  const Status refused = controller->DropPublisher({"ingest", kKey, ""});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable) << refused.error().ToString();
  EXPECT_EQ(refused.error().message().find(kKey), std::string::npos) << refused.error().message();
}

TEST_F(NginxRtmpControllerTest, IncompleteRefsAreRefusedWithoutARequest) {
  auto controller = Controller();
  ASSERT_NE(controller, nullptr);
  for (const PublisherRef& ref : {PublisherRef{"", kKey, ""}, PublisherRef{"ingest", "", ""},
                                  PublisherRef{"ingest", "", "12; drop"}}) {
    const Status dropped = controller->DropPublisher(ref);
    ASSERT_FALSE(dropped);
    EXPECT_EQ(dropped.error().code(), ErrorCode::kInvalidArgument) << dropped.error().ToString();
  }
  EXPECT_EQ(control_->request_count(), 0u);
}

TEST(NginxRtmpControllerOptionsTest, UrlsForAChannel) {
  NginxRtmpControllerOptions options;
  options.rtmp_url = "rtmp://127.0.0.1:19350/";
  options.relay_app = "hls";
  options.playback_url = "https://live.example.com/hls//";
  options.control_url = "http://127.0.0.1:8088/control/";
  auto controller = NginxRtmpController::Create(options);
  ASSERT_TRUE(controller) << controller.error().ToString();
  EXPECT_EQ((*controller)->kind(), "nginx-rtmp");
  EXPECT_EQ((*controller)->RelayUrl("ch-test1"), "rtmp://127.0.0.1:19350/hls/ch-test1");
  EXPECT_EQ((*controller)->ScanInputUrl("ch-test1"), "rtmp://127.0.0.1:19350/hls/ch-test1");
  EXPECT_EQ((*controller)->PlaybackUrl("ch-test1"),
            "https://live.example.com/hls/ch-test1.m3u8");
  EXPECT_EQ((*controller)->options().control_url, "http://127.0.0.1:8088/control");
  // Anything outside the unreserved set is percent-encoded.
  EXPECT_EQ((*controller)->RelayUrl("a/b c"), "rtmp://127.0.0.1:19350/hls/a%2Fb%20c");
}

TEST(NginxRtmpControllerOptionsTest, InvalidOptionsNameTheOption) {
  struct Case {
    std::string option;
    NginxRtmpControllerOptions options;
  };
  std::vector<Case> cases;
  auto add = [&](std::string option, auto change) {
    NginxRtmpControllerOptions o;
    change(o);
    cases.push_back({std::move(option), std::move(o)});
  };
  add("control_url", [](auto& o) { o.control_url = "127.0.0.1:8088/control"; });
  add("control_url", [](auto& o) { o.control_url = "http://"; });
  add("control_url", [](auto& o) { o.control_url = "http://h/control?x=1"; });
  add("rtmp_url", [](auto& o) { o.rtmp_url = "http://127.0.0.1:1935"; });
  add("rtmp_url", [](auto& o) { o.rtmp_url = "rtmp://host name"; });
  add("playback_url", [](auto& o) { o.playback_url = "rtmp://h/hls"; });
  add("relay_app", [](auto& o) { o.relay_app = ""; });
  add("relay_app", [](auto& o) { o.relay_app = "a/b"; });
  add("connect_timeout_ms", [](auto& o) { o.connect_timeout_ms = 0; });
  add("request_timeout_ms", [](auto& o) { o.request_timeout_ms = 600001; });
  for (const Case& c : cases) {
    auto controller = NginxRtmpController::Create(c.options);
    ASSERT_FALSE(controller) << c.option;
    EXPECT_EQ(controller.error().code(), ErrorCode::kInvalidArgument) << c.option;
    EXPECT_NE(controller.error().message().find(c.option), std::string::npos)
        << controller.error().message();
  }
}

TEST(IngestRegistryTest, MakesNginxRtmpAndSaysWhatIsNotImplemented) {
  IngestSettings settings;
  settings.rtmp_url = "rtmp://127.0.0.1:1935";
  settings.relay_app = "relay";
  settings.playback_url = "https://cdn.example.com/live";
  auto nginx = MakeIngestController("nginx-rtmp", settings);
  ASSERT_TRUE(nginx) << nginx.error().ToString();
  EXPECT_EQ((*nginx)->kind(), "nginx-rtmp");
  EXPECT_EQ((*nginx)->ScanInputUrl("ch-1"), "rtmp://127.0.0.1:1935/relay/ch-1");
  EXPECT_EQ((*nginx)->PlaybackUrl("ch-1"), "https://cdn.example.com/live/ch-1.m3u8");

  for (std::string_view kind : {"srs", "mediamtx"}) {
    auto planned = MakeIngestController(kind, settings);
    ASSERT_FALSE(planned) << kind;
    EXPECT_EQ(planned.error().code(), ErrorCode::kUnsupported) << kind;
    EXPECT_NE(planned.error().message().find("not yet implemented"), std::string::npos)
        << planned.error().message();
  }
  auto unknown = MakeIngestController("wowza", settings);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(unknown.error().message().find("nginx-rtmp"), std::string::npos)
      << unknown.error().message();

  settings.control_url = "ftp://x";
  auto bad = MakeIngestController("nginx-rtmp", settings);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("control_url"), std::string::npos);

  const auto kinds = IngestKinds();
  EXPECT_EQ(kinds, (std::vector<std::string>{"nginx-rtmp", "srs", "mediamtx"}));
}

}  // namespace
}  // namespace earshot::ingest
