// The moderation service against a real classifier stand-in: an HTTP
// listener on 127.0.0.1, thumbnails read from a real results folder.
#include "server/moderation_service.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "support/http_listener.h"
#include "support/process.h"

namespace earshot::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;

class ModerationServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = support::ScopedTempDir::Create("earshot_moderation");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<support::ScopedTempDir>(std::move(*dir));
    auto listener = support::HttpListener::Start();
    ASSERT_TRUE(listener);
    listener_ = std::move(*listener);
  }

  // A stored thumbnail of `stream` at `stream_s` (bytes made up: the
  // service sends what the file holds).
  scan::ThumbnailInfo Thumbnail(const std::string& stream, double stream_s) {
    const std::string file = "thumb-" + std::to_string(static_cast<int>(stream_s * 1000)) + ".jpg";
    fs::create_directories(dir_->path() / stream);
    std::ofstream(dir_->path() / stream / file, std::ios::binary) << "\xFF\xD8jpeg of " << stream << "\xFF\xD9";
    scan::ThumbnailInfo t;
    t.stream_id = stream;
    t.file = file;
    t.stream_s = stream_s;
    t.captured_ms = 1'700'000'000'000;
    return t;
  }

  std::unique_ptr<ModerationService> Service() {
    auto client = delivery::ModerationClient::Create({listener_->Url("/classify"), "", 5, 1});
    EXPECT_TRUE(client);
    return std::make_unique<ModerationService>(
        std::move(*client), dir_->path(), [this](const ScanJob& job, const nlohmann::json& r) {
          std::lock_guard lock(mu_);
          verdicts_.emplace_back(job, r);
          cv_.notify_all();
        });
  }

  bool WaitVerdicts(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return verdicts_.size() >= n; });
  }

  static support::HttpReply Answer(const std::string& json) {
    support::HttpReply r;
    r.body = json;
    r.headers = {{"Content-Type", "application/json"}};
    return r;
  }

  std::unique_ptr<support::ScopedTempDir> dir_;
  std::unique_ptr<support::HttpListener> listener_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<ScanJob, nlohmann::json>> verdicts_;
};

TEST_F(ModerationServiceTest, FlagAndBlockBecomeResponsesAllowDoesNot) {
  listener_->SetScript({Answer(R"({"verdict":"allow"})"),
                        Answer(R"({"verdict":"flag","label":"smoke","score":0.5})"),
                        Answer(R"({"verdict":"block","label":"weapon","score":0.97})")});
  auto service = Service();
  service->Start();
  const ScanJob job{"st-1", "ch-1", "rtmp://127.0.0.1/hls/ch-1"};
  for (double t : {0.0, 10.0, 20.0}) {
    service->Submit(job, Thumbnail("st-1", t));
    ASSERT_TRUE(listener_->WaitForRequests(static_cast<size_t>(t / 10) + 1, 10s));
  }
  ASSERT_TRUE(WaitVerdicts(2));
  service->Stop();
  ASSERT_EQ(verdicts_.size(), 2u);
  const nlohmann::json& flag = verdicts_[0].second;
  EXPECT_EQ(flag["match_type"], "moderation");
  EXPECT_EQ(flag["status"], "match_started");
  EXPECT_EQ(flag["verdict"], "flag");
  EXPECT_EQ(flag["rule"], "track");
  EXPECT_EQ(flag["track"]["title"], "moderation: smoke");
  EXPECT_EQ(flag["thumbnail"], "thumb-10000.jpg");
  EXPECT_DOUBLE_EQ(flag["stream"]["start_s"].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(flag["score"].get<double>(), 50.0);
  const nlohmann::json& block = verdicts_[1].second;
  EXPECT_EQ(block["verdict"], "block");
  EXPECT_EQ(block["rule"], "block");
  EXPECT_NE(block["match_id"], flag["match_id"]);
  EXPECT_EQ(verdicts_[1].first.channel_id, "ch-1");
  // The file's bytes were what the classifier got.
  const auto requests = listener_->Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].body, "\xFF\xD8jpeg of st-1\xFF\xD9");
  EXPECT_EQ(requests[2].Header("X-Earshot-Stream-Id"), "st-1");
  const ModerationStats stats = service->stats();
  EXPECT_EQ(stats.allow, 1u);
  EXPECT_EQ(stats.flag, 1u);
  EXPECT_EQ(stats.block, 1u);
}

TEST_F(ModerationServiceTest, BlockedStreamIsNotSentAgainAndOnlyTheNewestWaitingThumbnailGoes) {
  // The first answer is slow: thumbnails of st-2 pile up meanwhile.
  support::HttpReply slow = Answer(R"({"verdict":"block"})");
  slow.delay = 1500ms;
  listener_->SetScript({slow, Answer(R"({"verdict":"allow"})")});
  auto service = Service();
  service->Start();
  const ScanJob a{"st-1", "ch-1", ""};
  const ScanJob b{"st-2", "ch-2", ""};
  service->Submit(a, Thumbnail("st-1", 0));
  ASSERT_TRUE(listener_->WaitForRequests(1, 10s));
  for (double t : {1.0, 2.0, 3.0}) service->Submit(b, Thumbnail("st-2", t));
  ASSERT_TRUE(WaitVerdicts(1));
  ASSERT_TRUE(listener_->WaitForRequests(2, 10s));
  service->Submit(a, Thumbnail("st-1", 10));  // blocked: dropped
  std::this_thread::sleep_for(300ms);
  service->Stop();
  const auto requests = listener_->Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].Header("X-Earshot-Stream-Id"), "st-2");
  EXPECT_EQ(requests[1].Header("X-Earshot-Thumbnail-Key"), "thumb-3000.jpg");
  EXPECT_EQ(service->stats().skipped, 2u);
}

TEST_F(ModerationServiceTest, ServiceDownOrMissingFileCostsTheThumbnailOnly) {
  auto service = Service();
  listener_->Stop();  // connection refused from now on
  service->Start();
  const ScanJob job{"st-1", "", ""};
  scan::ThumbnailInfo gone = Thumbnail("st-1", 0);
  gone.file = "thumb-missing.jpg";
  service->Submit(job, gone);
  service->Submit(ScanJob{"st-3", "", ""}, Thumbnail("st-3", 5));
  for (int i = 0; i < 100 && service->stats().failed < 2; ++i) std::this_thread::sleep_for(50ms);
  service->Stop();
  EXPECT_EQ(service->stats().failed, 2u);
  EXPECT_TRUE(verdicts_.empty());
}

}  // namespace
}  // namespace earshot::server
