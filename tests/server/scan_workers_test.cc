// ScanWorkers with a real job queue (SQLite in memory) and a real Scanner
// over an empty catalog: what happens to jobs (Term, Nak, Ack, given back)
// and what the observer is told. Inputs are local files (a missing one, or a
// short FLAC from tests/support/test_media.h replayed at real time so a scan
// is still running when the test acts on it). Every wait is bounded.
#include "server/scan_workers.h"

#include <gtest/gtest.h>

#include <thread>

#include "catalog/catalog.h"
#include "queue/registry.h"
#include "recognition/matcher.h"
#include "support/process.h"
#include "support/test_media.h"

namespace earshot::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = 20s;

// Records what the workers report (called on their loop thread).
class RecordingObserver final : public ScanJobObserver {
 public:
  void OnScanStarted(const ScanJob& job, int attempt) override {
    std::lock_guard lock(mutex_);
    started_.emplace_back(job.stream_id, attempt);
    cv_.notify_all();
  }
  void OnConnected(const ScanJob& job, const media::AudioStreamInfo& info) override {
    std::lock_guard lock(mutex_);
    connected_.emplace_back(job.stream_id, info.codec);
    cv_.notify_all();
  }
  void OnInputLost(const ScanJob&, const std::string&) override {}
  void OnResponse(const ScanJob&, const nlohmann::json& response) override {
    std::lock_guard lock(mutex_);
    responses_.push_back(response);
    cv_.notify_all();
  }
  void OnScanFinished(const ScanJob&, const scan::ScanReport& report) override {
    std::lock_guard lock(mutex_);
    finished_.push_back(report);
    cv_.notify_all();
  }

  bool WaitConnected(size_t n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kWait, [&] { return connected_.size() >= n; });
  }
  bool WaitFinished(size_t n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kWait, [&] { return finished_.size() >= n; });
  }
  std::vector<std::pair<std::string, int>> started() const {
    std::lock_guard lock(mutex_);
    return started_;
  }
  std::vector<std::pair<std::string, std::string>> connected() const {
    std::lock_guard lock(mutex_);
    return connected_;
  }
  std::vector<scan::ScanReport> finished() const {
    std::lock_guard lock(mutex_);
    return finished_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, int>> started_;
  std::vector<std::pair<std::string, std::string>> connected_;
  std::vector<nlohmann::json> responses_;
  std::vector<scan::ScanReport> finished_;
};

class ScanWorkersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ::earshot::testing::ScopedTempDir::Create("earshot_workers");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_.emplace(std::move(*dir));
    catalog::CatalogOptions copts;
    copts.background_merge = false;
    auto catalog = catalog::Catalog::Open(dir_->path() / "catalog", copts);
    ASSERT_TRUE(catalog) << catalog.error().ToString();
    catalog_ = std::move(*catalog);
    snapshot_ = catalog_->Snapshot();
    matcher_ = std::make_unique<recognition::Matcher>(*snapshot_, catalog_->params(),
                                                      recognition::QueryParams::Streaming());
    queue::QueueOptions qopts;
    qopts.backoff.base = 10ms;  // retries come quickly
    auto queue = queue::OpenJobQueue("sqlite::memory:", qopts);
    ASSERT_TRUE(queue) << queue.error().ToString();
    queue_ = std::move(*queue);
  }

  void TearDown() override {
    // The order EarshotServer::Shutdown keeps: workers stop leasing, then the
    // scanner's sessions end, then the workers go.
    if (workers_) workers_->Stop(Clock::now() + 10s);
    scanner_.reset();
    workers_.reset();
  }

  ScanWorkerOptions Options() const {
    ScanWorkerOptions o;
    o.worker_id = "test-worker";
    o.max_jobs = 2;
    o.lease = 600ms;  // heartbeats every 200 ms
    o.poll = 20ms;
    o.scan.realtime = true;
    return o;
  }
  void StartWorkers(ScanWorkerOptions options) {
    workers_ = std::make_unique<ScanWorkers>(*queue_, observer_, std::move(options));
    scan::ScanShared shared;
    shared.catalog = catalog_.get();
    shared.matcher = matcher_.get();
    shared.results_dir = dir_->path() / "results";
    scan::ScannerOptions sopts;
    sopts.threads = 1;
    sopts.keep_reports = false;
    scanner_ = std::make_unique<scan::Scanner>(shared, sopts);
    workers_->Start(*scanner_);
  }
  void StartWorkers() { StartWorkers(Options()); }

  queue::Job Enqueue(const std::string& key, nlohmann::json payload, int max_attempts = 3) {
    queue::JobSpec spec;
    spec.kind = std::string(kScanJobKind);
    spec.dedup_key = key;
    spec.payload = std::move(payload);
    spec.max_attempts = max_attempts;
    auto r = queue_->Enqueue(spec);
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? r->job : queue::Job{};
  }
  std::optional<queue::Job> Get(int64_t id) {
    auto job = queue_->Get(id);
    EXPECT_TRUE(job) << job.error().ToString();
    return job ? *job : std::nullopt;
  }
  // The job once it reaches `state`, or nullopt after kWait.
  std::optional<queue::Job> WaitForState(int64_t id, queue::JobState state) {
    const auto deadline = Clock::now() + kWait;
    while (Clock::now() < deadline) {
      auto job = Get(id);
      if (job && job->state == state) return job;
      std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;
  }
  // A short FLAC: `silence_s` of silence then a second of music.
  Result<fs::path> Media(double silence_s) {
    auto music = ::earshot::testing::WesnothMusic("battle");
    if (!music) return std::unexpected(music.error());
    return ::earshot::testing::MakeSilenceThenMusic(dir_->path(), silence_s, *music, 0, 1);
  }

  std::optional<::earshot::testing::ScopedTempDir> dir_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::shared_ptr<const recognition::IndexReader> snapshot_;
  std::unique_ptr<recognition::Matcher> matcher_;
  std::unique_ptr<queue::JobQueue> queue_;
  RecordingObserver observer_;
  // Declared after the scanner's dependencies; destroyed in TearDown.
  std::unique_ptr<ScanWorkers> workers_;
  std::unique_ptr<scan::Scanner> scanner_;
};

TEST(ScanJobTest, PayloadRoundTripsAndMissingFieldsAreNamed) {
  const ScanJob job{"st-abc", "ch-abcdefghijkl", "rtmp://127.0.0.1:1935/hls/ch-abcdefghijkl"};
  auto back = ScanJob::FromJson(job.ToJson());
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->stream_id, job.stream_id);
  EXPECT_EQ(back->channel_id, job.channel_id);
  EXPECT_EQ(back->input, job.input);
  auto no_channel = ScanJob::FromJson({{"stream_id", "st-abc"}, {"input", "a.flac"}});
  ASSERT_TRUE(no_channel) << "a scan without a channel is allowed";
  EXPECT_EQ(no_channel->channel_id, "");
  for (const nlohmann::json& bad :
       {nlohmann::json{{"input", "a.flac"}}, nlohmann::json{{"stream_id", "st-abc"}},
        nlohmann::json{{"stream_id", 5}, {"input", "a.flac"}}, nlohmann::json("st-abc"),
        nlohmann::json()}) {
    auto r = ScanJob::FromJson(bad);
    ASSERT_FALSE(r) << bad.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("stream_id and input"), std::string::npos)
        << r.error().message();
  }
}

TEST(ScanJobTest, IdsThatCannotNameAResultsFolderAreMalformed) {
  for (const char* id : {"../etc", "st abc", ".hidden", "st/1"}) {
    auto r = ScanJob::FromJson({{"stream_id", id}, {"input", "a.flac"}});
    ASSERT_FALSE(r) << "stream id '" << id << "' was accepted";
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(id), std::string::npos) << r.error().message();
  }
  auto r =
      ScanJob::FromJson({{"stream_id", "st-1"}, {"channel_id", "ch/../x"}, {"input", "a.flac"}});
  ASSERT_FALSE(r) << "a bad channel id was accepted";
  EXPECT_NE(r.error().message().find("channel id"), std::string::npos) << r.error().message();
}

TEST_F(ScanWorkersTest, MalformedJobIsDeadAtOnceWithTheReason) {
  const queue::Job no_input =
      Enqueue("bad-1", {{"stream_id", "st-1"}, {"channel_id", "ch-abcdefghijkl"}});
  const queue::Job not_object = Enqueue("bad-2", "just text");
  const queue::Job bad_id = Enqueue("bad-3", {{"stream_id", "../../etc"}, {"input", "a.flac"}});
  StartWorkers();
  for (const queue::Job& j : {no_input, not_object, bad_id}) {
    auto dead = WaitForState(j.id, queue::JobState::kDead);
    ASSERT_TRUE(dead.has_value()) << "job " << j.dedup_key << " is "
                                  << queue::JobStateName(Get(j.id)->state);
    EXPECT_EQ(dead->attempts, 1) << "a malformed job is not retried";
    EXPECT_FALSE(dead->last_error.empty());
  }
  EXPECT_NE(Get(no_input.id)->last_error.find("stream_id and input"), std::string::npos)
      << Get(no_input.id)->last_error;
  EXPECT_NE(Get(bad_id.id)->last_error.find("../../etc"), std::string::npos)
      << Get(bad_id.id)->last_error;
  EXPECT_TRUE(observer_.started().empty()) << "no scan was started";
  EXPECT_EQ(workers_->running(), 0u);
}

TEST_F(ScanWorkersTest, FailingScanIsRetriedThenDead) {
  const fs::path missing = dir_->path() / "no-such-file.flac";
  const queue::Job job =
      Enqueue("st-missing", ScanJob{"st-missing", "", missing.string()}.ToJson(), 2);
  StartWorkers();
  auto dead = WaitForState(job.id, queue::JobState::kDead);
  ASSERT_TRUE(dead.has_value()) << "state " << queue::JobStateName(Get(job.id)->state);
  EXPECT_EQ(dead->attempts, 2);
  EXPECT_NE(dead->last_error.find("no-such-file.flac"), std::string::npos) << dead->last_error;
  ASSERT_TRUE(observer_.WaitFinished(2));
  EXPECT_EQ(observer_.started(),
            (std::vector<std::pair<std::string, int>>{{"st-missing", 1}, {"st-missing", 2}}));
  for (const scan::ScanReport& r : observer_.finished()) EXPECT_EQ(r.status, "failed");
}

TEST_F(ScanWorkersTest, FinishedScanIsAcked) {
  auto media = Media(0.5);
  if (!media) GTEST_SKIP() << media.error().ToString();
  ScanWorkerOptions o = Options();
  o.scan.realtime = false;
  const queue::Job job = Enqueue("st-file", ScanJob{"st-file", "", media->string()}.ToJson());
  StartWorkers(o);
  auto done = WaitForState(job.id, queue::JobState::kDone);
  ASSERT_TRUE(done.has_value()) << "state " << queue::JobStateName(Get(job.id)->state);
  EXPECT_EQ(done->attempts, 1);
  ASSERT_TRUE(observer_.WaitFinished(1));
  EXPECT_EQ(observer_.finished()[0].status, "ended");
  EXPECT_GT(observer_.finished()[0].stream_seconds, 1.0);
  ASSERT_EQ(observer_.connected().size(), 1u);
  EXPECT_EQ(observer_.connected()[0].second, "flac");
}

TEST_F(ScanWorkersTest, CancelRequestStopsTheRunningScan) {
  auto media = Media(30);  // 31 s at real time: still running when cancelled
  if (!media) GTEST_SKIP() << media.error().ToString();
  const queue::Job job = Enqueue("st-cancel", ScanJob{"st-cancel", "", media->string()}.ToJson());
  StartWorkers();
  ASSERT_TRUE(observer_.WaitConnected(1));
  EXPECT_EQ(workers_->running(), 1u);
  const auto t0 = Clock::now();
  auto cancelled = queue_->RequestCancel("st-cancel");
  ASSERT_TRUE(cancelled && *cancelled);
  ASSERT_TRUE(observer_.WaitFinished(1));
  EXPECT_LT(Clock::now() - t0, 10s);
  EXPECT_EQ(observer_.finished()[0].status, "cancelled");
  auto done = WaitForState(job.id, queue::JobState::kDone);
  ASSERT_TRUE(done.has_value()) << "a cancelled scan is acknowledged; state "
                                << queue::JobStateName(Get(job.id)->state);
  EXPECT_EQ(done->attempts, 1);
  const auto deadline = Clock::now() + kWait;
  while (workers_->running() != 0 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(workers_->running(), 0u);
}

TEST_F(ScanWorkersTest, ShutdownGivesTheJobBackForAnotherWorker) {
  auto media = Media(30);
  if (!media) GTEST_SKIP() << media.error().ToString();
  const queue::Job job = Enqueue("st-resume", ScanJob{"st-resume", "", media->string()}.ToJson());
  StartWorkers();
  ASSERT_TRUE(observer_.WaitConnected(1));
  workers_->Stop(Clock::now() + 10s);
  auto queued = Get(job.id);
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->state, queue::JobState::kQueued);
  EXPECT_EQ(queued->attempts, 0) << "a shutdown does not use up an attempt";
  ASSERT_TRUE(observer_.WaitFinished(1));
  EXPECT_EQ(observer_.finished()[0].status, "cancelled");
  // Due at once: the next worker resumes it, still its first attempt.
  auto lease =
      queue_->Lease("other-worker", 1s, std::vector<std::string>{std::string(kScanJobKind)});
  ASSERT_TRUE(lease) << lease.error().ToString();
  ASSERT_TRUE(lease->has_value()) << "the job was not leasable again at once";
  EXPECT_EQ((*lease)->job.id, job.id);
  EXPECT_EQ((*lease)->job.attempts, 1);
}

}  // namespace
}  // namespace earshot::server
