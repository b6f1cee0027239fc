// The backend-independent parts of the queue: state names, the backoff
// policy and opening a queue by URL.
#include "queue/job_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <limits>

#include "queue/registry.h"
#include "queue_test_util.h"

namespace earshot::queue {
namespace {

using std::chrono::milliseconds;
using testing::TempDir;

TEST(JobStateTest, NamesRoundTrip) {
  for (JobState state : {JobState::kQueued, JobState::kLeased, JobState::kDone, JobState::kDead,
                         JobState::kCancelled}) {
    auto parsed = ParseJobState(JobStateName(state));
    ASSERT_TRUE(parsed) << JobStateName(state);
    EXPECT_EQ(*parsed, state);
  }
  EXPECT_EQ(JobStateName(JobState::kCancelled), "cancelled");
  auto bad = ParseJobState("running");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("queued"), std::string::npos) << bad.error().message();
}

TEST(BackoffPolicyTest, GrowsGeometricallyUpToTheMaximum) {
  BackoffPolicy policy{milliseconds(1000), milliseconds(5000), 2.0};
  EXPECT_EQ(policy.DelayForAttempt(1), milliseconds(1000));
  EXPECT_EQ(policy.DelayForAttempt(2), milliseconds(2000));
  EXPECT_EQ(policy.DelayForAttempt(3), milliseconds(4000));
  EXPECT_EQ(policy.DelayForAttempt(4), milliseconds(5000));
  EXPECT_EQ(policy.DelayForAttempt(1000000), milliseconds(5000));
  EXPECT_EQ(policy.DelayForAttempt(0), milliseconds(1000)) << "below 1 counts as 1";
}

TEST(BackoffPolicyTest, DefaultsAndEdgeCases) {
  BackoffPolicy defaults;
  EXPECT_EQ(defaults.DelayForAttempt(1), milliseconds(2000));
  EXPECT_EQ(defaults.DelayForAttempt(3), milliseconds(8000));
  EXPECT_EQ(defaults.DelayForAttempt(std::numeric_limits<int>::max()), milliseconds(300000));
  BackoffPolicy constant{milliseconds(700), milliseconds(10000), 1.0};
  EXPECT_EQ(constant.DelayForAttempt(9), milliseconds(700));
  BackoffPolicy zero{milliseconds(0), milliseconds(10000), 2.0};
  EXPECT_EQ(zero.DelayForAttempt(5000), milliseconds(0));
  BackoffPolicy shrinking{milliseconds(1000), milliseconds(10000), 0.5};
  EXPECT_EQ(shrinking.DelayForAttempt(3), milliseconds(1000)) << "a multiplier below 1 counts as 1";
}

TEST(OpenJobQueueTest, OpensSqliteFiles) {
  TempDir dir;
  const auto path = dir / "sub" / "state.db";
  auto queue = OpenJobQueue("sqlite:" + path.string(), {});
  ASSERT_TRUE(queue) << queue.error().ToString();
  JobSpec spec;
  spec.kind = "scan";
  spec.dedup_key = "st-1";
  ASSERT_TRUE((*queue)->Enqueue(spec));
  EXPECT_TRUE(std::filesystem::exists(path));

  // The same file through the URL form with an authority part.
  auto again = OpenJobQueue("sqlite://" + path.string(), {});
  ASSERT_TRUE(again) << again.error().ToString();
  auto job = (*again)->GetByKey("st-1");
  ASSERT_TRUE(job);
  EXPECT_TRUE(job->has_value());
}

TEST(OpenJobQueueTest, MemoryQueuesArePrivate) {
  auto a = OpenJobQueue("sqlite::memory:", {});
  auto b = OpenJobQueue("sqlite::memory:", {});
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_TRUE(b) << b.error().ToString();
  JobSpec spec;
  spec.kind = "scan";
  spec.dedup_key = "st-1";
  ASSERT_TRUE((*a)->Enqueue(spec));
  auto lease = (*a)->Lease("w1", milliseconds(1000));
  ASSERT_TRUE(lease);
  EXPECT_TRUE(lease->has_value());
  auto counts = (*b)->Counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->queued + counts->leased, 0);
}

TEST(OpenJobQueueTest, UnknownSchemesListTheKnownOnes) {
  auto unknown = OpenJobQueue("redis://user:secret@127.0.0.1/0", {});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kInvalidArgument);
  const std::string message = unknown.error().message();
  EXPECT_NE(message.find("\"redis\""), std::string::npos) << message;
  EXPECT_NE(message.find("sqlite"), std::string::npos) << message;
  EXPECT_NE(message.find("nats"), std::string::npos) << message;
  EXPECT_EQ(message.find("secret"), std::string::npos) << "credentials leaked: " << message;
}

TEST(OpenJobQueueTest, NatsIsReservedForLater) {
  auto nats = OpenJobQueue("nats://user:secret@127.0.0.1:4222/scan", {});
  ASSERT_FALSE(nats);
  EXPECT_EQ(nats.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(nats.error().message().find("later"), std::string::npos) << nats.error().message();
  EXPECT_EQ(nats.error().message().find("secret"), std::string::npos) << nats.error().message();
}

TEST(OpenJobQueueTest, MalformedUrls) {
  for (const char* url : {"", "/var/lib/earshot/state.db", ":memory:", "1x:foo"}) {
    auto queue = OpenJobQueue(url, {});
    ASSERT_FALSE(queue) << url;
    EXPECT_EQ(queue.error().code(), ErrorCode::kInvalidArgument) << url;
    EXPECT_NE(queue.error().message().find("sqlite"), std::string::npos)
        << url << ": " << queue.error().message();
  }
  auto no_path = OpenJobQueue("sqlite:", {});
  ASSERT_FALSE(no_path);
  EXPECT_EQ(no_path.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(no_path.error().message().find("path"), std::string::npos) << no_path.error().message();
}

TEST(OpenJobQueueTest, SchemesAreCaseInsensitiveAndRegistrable) {
  auto upper = OpenJobQueue("SQLite::memory:", {});
  EXPECT_TRUE(upper) << upper.error().ToString();

  std::string seen;
  RegisterJobQueueScheme("fake", [&seen](std::string_view rest, const QueueOptions&)
                                     -> Result<std::unique_ptr<JobQueue>> {
    seen = std::string(rest);
    return MakeError(ErrorCode::kUnavailable, "fake backend is down");
  });
  auto fake = OpenJobQueue("fake:somewhere", {});
  ASSERT_FALSE(fake);
  EXPECT_EQ(fake.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(seen, "somewhere");
  const auto schemes = JobQueueSchemes();
  EXPECT_NE(std::find(schemes.begin(), schemes.end(), "fake"), schemes.end());
  EXPECT_NE(std::find(schemes.begin(), schemes.end(), "sqlite"), schemes.end());
}

}  // namespace
}  // namespace earshot::queue
