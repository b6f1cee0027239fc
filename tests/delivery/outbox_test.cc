// The outbox's retry and spool logic, with in-memory targets (a fake sink
// and notifier that fail on command). The real backends are tested against
// real servers in s3_sink_test, webhook_notifier_test, email_notifier_test
// and end to end in tests/scan.
#include "delivery/outbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "common/file_util.h"

namespace earshot::delivery {
namespace {

namespace fs = std::filesystem;

class FakeSink final : public ResultSink {
 public:
  explicit FakeSink(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  Status Put(const ResultFile& file) override {
    std::lock_guard lock(mutex_);
    ++attempts_;
    if (fail_next_ > 0) {
      --fail_next_;
      return MakeError(ErrorCode::kUnavailable, "bucket down");
    }
    stored_[file.stream_id + "/" + file.name] = file.body;
    return Ok();
  }
  void FailNext(int n) {
    std::lock_guard lock(mutex_);
    fail_next_ = n;
  }
  std::map<std::string, std::string> stored() {
    std::lock_guard lock(mutex_);
    return stored_;
  }
  int attempts() {
    std::lock_guard lock(mutex_);
    return attempts_;
  }

 private:
  std::string name_;
  std::mutex mutex_;
  int fail_next_ = 0;
  int attempts_ = 0;
  std::map<std::string, std::string> stored_;
};

class FakeNotifier final : public Notifier {
 public:
  const std::string& name() const override { return name_; }
  Status Notify(const Notification& n) override {
    std::lock_guard lock(mutex_);
    received.push_back(n);
    return Ok();
  }
  std::mutex mutex_;
  std::vector<Notification> received;

 private:
  std::string name_ = "fake-notify";
};

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "earshot_outbox_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  void WriteResult(const std::string& stream, const std::string& file, const std::string& body) {
    fs::create_directories(dir_ / stream);
    ASSERT_TRUE(WriteFileAtomically(dir_ / stream / file, body));
  }
  OutboxOptions Options() {
    OutboxOptions o;
    o.results_dir = dir_;
    o.initial_backoff_s = 0.01;
    o.max_backoff_s = 0.05;
    return o;
  }
  static auto Soon(double seconds = 20) {
    return std::chrono::steady_clock::now() +
           std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  }
  size_t SpoolEntries() {
    size_t n = 0;
    if (!fs::exists(dir_ / ".outbox")) return 0;
    for (auto& e : fs::recursive_directory_iterator(dir_ / ".outbox")) {
      n += e.is_regular_file() ? 1 : 0;
    }
    return n;
  }

  fs::path dir_;
};

TEST_F(OutboxTest, DeliversEveryFileToEveryTargetWithAStableIdempotencyKey) {
  auto sink = std::make_unique<FakeSink>("fake-s3");
  auto notifier = std::make_unique<FakeNotifier>();
  FakeSink* s = sink.get();
  FakeNotifier* n = notifier.get();
  std::vector<std::unique_ptr<ResultSink>> sinks;
  sinks.push_back(std::move(sink));
  std::vector<std::unique_ptr<Notifier>> notifiers;
  notifiers.push_back(std::move(notifier));
  auto outbox = Outbox::Open(Options(), std::move(sinks), std::move(notifiers));
  ASSERT_TRUE(outbox) << outbox.error().ToString();
  WriteResult("st-1", "000001-match_started-x.json", "{\"a\":1}\n");
  ASSERT_TRUE((*outbox)->Enqueue({"st-1", "ch-1", "000001-match_started-x.json",
                                  "identification.match_started", "subject"}));
  EXPECT_EQ((*outbox)->Drain(Soon()), 0u);
  EXPECT_EQ(s->stored().at("st-1/000001-match_started-x.json"), "{\"a\":1}\n");
  ASSERT_EQ(n->received.size(), 1u);
  EXPECT_EQ(n->received[0].idempotency_key, "st-1/000001-match_started-x.json");
  EXPECT_EQ(n->received[0].event_type, "identification.match_started");
  EXPECT_EQ(n->received[0].channel_id, "ch-1");
  EXPECT_EQ(n->received[0].body, "{\"a\":1}\n");
  EXPECT_EQ(SpoolEntries(), 0u);  // delivered entries are removed
  EXPECT_EQ((*outbox)->stats().delivered, 2u);
}

TEST_F(OutboxTest, RetriesWithBackoffUntilTheTargetComesBack) {
  auto sink = std::make_unique<FakeSink>("fake-s3");
  FakeSink* s = sink.get();
  s->FailNext(3);
  std::vector<std::unique_ptr<ResultSink>> sinks;
  sinks.push_back(std::move(sink));
  auto outbox = Outbox::Open(Options(), std::move(sinks), {});
  ASSERT_TRUE(outbox);
  WriteResult("st-1", "f.json", "x");
  ASSERT_TRUE((*outbox)->Enqueue({"st-1", "", "f.json", "identification.match_ended", ""}));
  EXPECT_EQ((*outbox)->Drain(Soon()), 0u);
  EXPECT_EQ(s->attempts(), 4);
  EXPECT_EQ(s->stored().count("st-1/f.json"), 1u);
  EXPECT_EQ((*outbox)->stats().failed_attempts, 3u);
}

TEST_F(OutboxTest, UndeliveredEntriesSurviveARestart) {
  {
    auto sink = std::make_unique<FakeSink>("fake-s3");
    sink->FailNext(1'000'000);  // down for the whole first run
    std::vector<std::unique_ptr<ResultSink>> sinks;
    sinks.push_back(std::move(sink));
    auto outbox = Outbox::Open(Options(), std::move(sinks), {});
    ASSERT_TRUE(outbox);
    for (int i = 0; i < 5; ++i) {
      const std::string file = "00000" + std::to_string(i) + ".json";
      WriteResult("st-2", file, "body" + std::to_string(i));
      ASSERT_TRUE((*outbox)->Enqueue({"st-2", "", file, "identification.match_started", ""}));
    }
    EXPECT_EQ((*outbox)->Drain(Soon(0.2)), 5u);
  }
  EXPECT_EQ(SpoolEntries(), 5u);  // still spooled after the outbox is gone
  auto sink = std::make_unique<FakeSink>("fake-s3");
  FakeSink* s = sink.get();
  std::vector<std::unique_ptr<ResultSink>> sinks;
  sinks.push_back(std::move(sink));
  auto outbox = Outbox::Open(Options(), std::move(sinks), {});
  ASSERT_TRUE(outbox);
  EXPECT_EQ((*outbox)->Drain(Soon()), 0u);
  EXPECT_EQ(s->stored().size(), 5u);
  EXPECT_EQ(s->stored().at("st-2/000003.json"), "body3");
  EXPECT_EQ(SpoolEntries(), 0u);
}

TEST_F(OutboxTest, TargetsNeedDistinctNames) {
  std::vector<std::unique_ptr<ResultSink>> sinks;
  sinks.push_back(std::make_unique<FakeSink>("same"));
  sinks.push_back(std::make_unique<FakeSink>("same"));
  auto outbox = Outbox::Open(Options(), std::move(sinks), {});
  ASSERT_FALSE(outbox);
  EXPECT_NE(outbox.error().message().find("name="), std::string::npos);
}

TEST_F(OutboxTest, WithoutTargetsEnqueueIsANoOp) {
  auto outbox = Outbox::Open(Options(), {}, {});
  ASSERT_TRUE(outbox);
  EXPECT_FALSE((*outbox)->has_targets());
  EXPECT_TRUE((*outbox)->Enqueue({"st-1", "", "f.json", "x", ""}));
  EXPECT_EQ((*outbox)->Drain(Soon(0.1)), 0u);
}

}  // namespace
}  // namespace earshot::delivery
