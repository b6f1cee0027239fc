// SqliteJobQueue on real SQLite files: the queue's contract (dedup, order,
// leases, retries, dead jobs, cancel, requeue, counts), durability across a
// reopen, and concurrent leasing from several connections, threads and
// processes on one file. Time is a FakeClock except in the concurrency tests.
#include "queue/sqlite_job_queue.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queue_test_util.h"
#include "store/sqlite.h"

namespace earshot::queue {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;
using testing::TempDir;

constexpr milliseconds kVisibility{30'000};

JobSpec Spec(std::string key, std::string kind = "scan", int max_attempts = 5) {
  JobSpec spec;
  spec.kind = std::move(kind);
  spec.dedup_key = key;
  spec.payload = {{"stream_id", key}, {"input", "rtmp://127.0.0.1/live/" + key}};
  spec.max_attempts = max_attempts;
  return spec;
}

class SqliteJobQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { queue_ = Open(); }

  QueueOptions Options() const {
    QueueOptions options;
    options.now_ms = clock_.Function();
    options.backoff.base = milliseconds(1000);
    options.backoff.max = milliseconds(5000);
    options.backoff.multiplier = 2.0;
    return options;
  }

  std::unique_ptr<SqliteJobQueue> Open() {
    auto queue = SqliteJobQueue::Open(path_, Options());
    EXPECT_TRUE(queue) << queue.error().ToString();
    return queue ? std::move(*queue) : nullptr;
  }

  Job Enqueue(JobSpec spec) {
    auto result = queue_->Enqueue(spec);
    EXPECT_TRUE(result) << result.error().ToString();
    if (!result) return {};
    EXPECT_TRUE(result->created) << spec.dedup_key;
    return result->job;
  }

  // Leases one job, which the test expects to be there.
  queue::Lease MustLease(std::string_view worker, milliseconds visibility = kVisibility,
                         SqliteJobQueue* queue = nullptr) {
    auto lease = (queue ? queue : queue_.get())->Lease(worker, visibility);
    EXPECT_TRUE(lease) << lease.error().ToString();
    if (!lease || !lease->has_value()) {
      ADD_FAILURE() << "worker " << worker << " found no job to lease";
      return {};
    }
    return std::move(**lease);
  }

  // True when a Lease() now finds nothing (and fails the test on an error).
  bool NothingDue(SqliteJobQueue* queue = nullptr) {
    auto lease = (queue ? queue : queue_.get())->Lease("probe", kVisibility);
    EXPECT_TRUE(lease) << lease.error().ToString();
    return lease && !lease->has_value();
  }

  Job MustGet(int64_t id) {
    auto job = queue_->Get(id);
    EXPECT_TRUE(job) << job.error().ToString();
    if (!job || !job->has_value()) {
      ADD_FAILURE() << "job " << id << " not found";
      return {};
    }
    return **job;
  }

  QueueCounts MustCount() {
    auto counts = queue_->Counts();
    EXPECT_TRUE(counts) << counts.error().ToString();
    return counts ? *counts : QueueCounts{};
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_ / "state.db";
  FakeClock clock_;
  std::unique_ptr<SqliteJobQueue> queue_;
};

// ------------------------------------------------------------- Enqueue

TEST_F(SqliteJobQueueTest, EnqueueStoresTheSpec) {
  const Job job = Enqueue(Spec("st-1", "scan", 3));
  EXPECT_GT(job.id, 0);
  EXPECT_EQ(job.kind, "scan");
  EXPECT_EQ(job.dedup_key, "st-1");
  EXPECT_EQ(job.payload["input"], "rtmp://127.0.0.1/live/st-1");
  EXPECT_EQ(job.state, JobState::kQueued);
  EXPECT_EQ(job.attempts, 0);
  EXPECT_EQ(job.max_attempts, 3);
  EXPECT_EQ(job.created_ms, clock_.now());
  EXPECT_EQ(job.not_before_ms, clock_.now());
  EXPECT_FALSE(job.cancel_requested);
  EXPECT_EQ(MustGet(job.id).payload, job.payload);
}

TEST_F(SqliteJobQueueTest, EnqueueSameKeyTwiceGivesOneJob) {
  const Job first = Enqueue(Spec("st-1"));
  JobSpec again = Spec("st-1");
  again.payload = {{"something", "else"}};
  auto second = queue_->Enqueue(again);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->job.id, first.id);
  EXPECT_EQ(second->job.payload, first.payload) << "the existing job's spec wins";
  EXPECT_EQ(MustCount().queued, 1);
}

TEST_F(SqliteJobQueueTest, EnqueueOfAFinishedKeyIsStillADuplicate) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease lease = MustLease("w1");
  ASSERT_TRUE(queue_->Ack(lease));
  // A late "stream start" for a stream that was already scanned.
  auto late = queue_->Enqueue(Spec("st-1"));
  ASSERT_TRUE(late) << late.error().ToString();
  EXPECT_FALSE(late->created);
  EXPECT_EQ(late->job.id, job.id);
  EXPECT_EQ(late->job.state, JobState::kDone);
  EXPECT_TRUE(NothingDue());
}

TEST_F(SqliteJobQueueTest, EnqueueRefusesBadSpecs) {
  JobSpec no_kind = Spec("k1", "");
  JobSpec no_key = Spec("");
  JobSpec no_attempts = Spec("k3", "scan", 0);
  JobSpec bad_utf8 = Spec("k4");
  bad_utf8.payload = {{"title", std::string("\xff\xfe")}};
  for (const JobSpec* spec : {&no_kind, &no_key, &no_attempts, &bad_utf8}) {
    auto result = queue_->Enqueue(*spec);
    ASSERT_FALSE(result) << "key " << spec->dedup_key;
    EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument) << result.error().ToString();
  }
  EXPECT_EQ(MustCount().queued, 0);
}

// --------------------------------------------------------------- Lease

TEST_F(SqliteJobQueueTest, LeasesInCreationOrder) {
  std::vector<int64_t> ids;
  for (const char* key : {"a", "b", "c"}) {
    ids.push_back(Enqueue(Spec(key)).id);
    clock_.Advance(1);
  }
  std::vector<int64_t> leased;
  for (int i = 0; i < 3; ++i) leased.push_back(MustLease("w1").job.id);
  EXPECT_EQ(leased, ids);
  EXPECT_TRUE(NothingDue());
}

TEST_F(SqliteJobQueueTest, LeaseFillsInTheLease) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease lease = MustLease("worker-7", milliseconds(12'000));
  EXPECT_EQ(lease.job.id, job.id);
  EXPECT_EQ(lease.job.state, JobState::kLeased);
  EXPECT_EQ(lease.job.attempts, 1);
  EXPECT_EQ(lease.job.lease_owner, "worker-7");
  EXPECT_EQ(lease.job.lease_expires_ms, clock_.now() + 12'000);
  EXPECT_EQ(lease.token.size(), 32u);
  EXPECT_EQ(MustCount().leased, 1);
}

TEST_F(SqliteJobQueueTest, LeaseOnlyTakesTheRequestedKinds) {
  Enqueue(Spec("report-1", "report"));
  const Job scan = Enqueue(Spec("st-1", "scan"));
  const std::vector<std::string> kinds = {"scan", "fingerprint"};
  auto lease = queue_->Lease("w1", kVisibility, kinds);
  ASSERT_TRUE(lease) << lease.error().ToString();
  ASSERT_TRUE(lease->has_value());
  EXPECT_EQ((*lease)->job.id, scan.id);
  auto none = queue_->Lease("w1", kVisibility, kinds);
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_FALSE(none->has_value()) << "the report job must wait for a report worker";
  EXPECT_EQ(MustLease("w2").job.kind, "report");
}

TEST_F(SqliteJobQueueTest, LeaseRefusesBadArguments) {
  Enqueue(Spec("st-1"));
  auto no_worker = queue_->Lease("", kVisibility);
  ASSERT_FALSE(no_worker);
  EXPECT_EQ(no_worker.error().code(), ErrorCode::kInvalidArgument);
  auto no_visibility = queue_->Lease("w1", milliseconds(0));
  ASSERT_FALSE(no_visibility);
  EXPECT_EQ(no_visibility.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(MustCount().queued, 1) << "a refused call leases nothing";
}

TEST_F(SqliteJobQueueTest, ExpiredLeaseGoesToAnotherWorkerAndTheOldTokenIsRefused) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease old_lease = MustLease("w1", milliseconds(30'000));
  clock_.Advance(29'999);
  EXPECT_TRUE(NothingDue()) << "the lease is still valid";

  clock_.Advance(1);
  queue::Lease new_lease = MustLease("w2", milliseconds(30'000));
  EXPECT_EQ(new_lease.job.id, job.id);
  EXPECT_EQ(new_lease.job.attempts, 2);
  EXPECT_EQ(new_lease.job.lease_owner, "w2");
  EXPECT_EQ(new_lease.job.lease_expiries, 1);
  EXPECT_NE(new_lease.job.last_error.find("w1"), std::string::npos) << new_lease.job.last_error;
  EXPECT_NE(new_lease.token, old_lease.token);

  // The first worker wakes up: every call with its token fails and changes nothing.
  auto ack = queue_->Ack(old_lease);
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(ack.error().message().find("lease lost"), std::string::npos) << ack.error().message();
  EXPECT_NE(ack.error().message().find("w2"), std::string::npos) << ack.error().message();
  auto beat = queue_->Heartbeat(old_lease, kVisibility);
  ASSERT_FALSE(beat);
  EXPECT_EQ(beat.error().code(), ErrorCode::kFailedPrecondition);
  auto nak = queue_->Nak(old_lease, "boom", milliseconds(0));
  ASSERT_FALSE(nak);
  EXPECT_EQ(nak.error().code(), ErrorCode::kFailedPrecondition);
  auto term = queue_->Term(old_lease, "boom");
  ASSERT_FALSE(term);
  EXPECT_EQ(term.error().code(), ErrorCode::kFailedPrecondition);

  const Job now = MustGet(job.id);
  EXPECT_EQ(now.state, JobState::kLeased);
  EXPECT_EQ(now.lease_owner, "w2");
  EXPECT_EQ(now.attempts, 2);
  EXPECT_EQ(now.lease_expires_ms, new_lease.job.lease_expires_ms);

  ASSERT_TRUE(queue_->Ack(new_lease));
  EXPECT_EQ(MustGet(job.id).state, JobState::kDone);
}

TEST_F(SqliteJobQueueTest, AnExpiredLeaseNobodyTookIsStillHonoured) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease lease = MustLease("w1", milliseconds(1000));
  clock_.Advance(5000);  // the worker was paused, but nobody took the job meanwhile
  auto beat = queue_->Heartbeat(lease, milliseconds(1000));
  ASSERT_TRUE(beat) << beat.error().ToString();
  EXPECT_EQ(beat->lease_expires_ms, clock_.now() + 1000);
  EXPECT_TRUE(NothingDue());
  ASSERT_TRUE(queue_->Ack(lease));
  EXPECT_EQ(MustGet(job.id).state, JobState::kDone);
}

TEST_F(SqliteJobQueueTest, HeartbeatExtendsTheLease) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease lease = MustLease("w1", milliseconds(30'000));
  const int64_t leased_at = clock_.now();
  clock_.Advance(20'000);
  auto beat = queue_->Heartbeat(lease, milliseconds(30'000));
  ASSERT_TRUE(beat) << beat.error().ToString();
  EXPECT_EQ(beat->lease_expires_ms, leased_at + 50'000);
  EXPECT_FALSE(beat->cancel_requested);
  EXPECT_EQ(MustGet(job.id).lease_expires_ms, leased_at + 50'000);

  clock_.Advance(20'000);  // 40 s after leasing: past the first expiry, before the new one
  EXPECT_TRUE(NothingDue());
  clock_.Advance(10'000);  // 50 s: expired
  queue::Lease taken = MustLease("w2");
  EXPECT_EQ(taken.job.id, job.id);
  EXPECT_EQ(taken.job.attempts, 2);
}

// ----------------------------------------------------------- Nak / Term

TEST_F(SqliteJobQueueTest, NakRetriesAfterTheBackoffDelay) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease lease = MustLease("w1");
  ASSERT_TRUE(queue_->Nak(lease, "rtmp connect refused"));
  Job now = MustGet(job.id);
  EXPECT_EQ(now.state, JobState::kQueued);
  EXPECT_EQ(now.attempts, 1);
  EXPECT_EQ(now.last_error, "rtmp connect refused");
  EXPECT_EQ(now.not_before_ms, clock_.now() + 1000);  // backoff base for attempt 1
  QueueCounts counts = MustCount();
  EXPECT_EQ(counts.queued, 1);
  EXPECT_EQ(counts.retrying, 1);
  EXPECT_EQ(counts.leased, 0);

  clock_.Advance(999);
  EXPECT_TRUE(NothingDue()) << "leasable before its backoff delay";
  clock_.Advance(1);
  lease = MustLease("w1");
  EXPECT_EQ(lease.job.attempts, 2);

  ASSERT_TRUE(queue_->Nak(lease, "again"));
  EXPECT_EQ(MustGet(job.id).not_before_ms, clock_.now() + 2000);  // doubled for attempt 2
  clock_.Advance(1999);
  EXPECT_TRUE(NothingDue());
  clock_.Advance(1);
  lease = MustLease("w1");
  EXPECT_EQ(lease.job.attempts, 3);
}

TEST_F(SqliteJobQueueTest, NakWithAnExplicitDelay) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease lease = MustLease("w1");
  ASSERT_TRUE(queue_->Nak(lease, "worker shutting down", milliseconds(0)));
  lease = MustLease("w2");  // due at once
  EXPECT_EQ(lease.job.id, job.id);
  ASSERT_TRUE(queue_->Nak(lease, "later", milliseconds(60'000)));
  clock_.Advance(59'999);
  EXPECT_TRUE(NothingDue());
  clock_.Advance(1);
  EXPECT_EQ(MustLease("w3").job.attempts, 3);

  auto negative = queue_->Nak(lease, "x", milliseconds(-1));
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(SqliteJobQueueTest, ReleaseQueuesAtOnceWithoutUsingAnAttempt) {
  // One attempt only, and released five times (five worker restarts): still
  // queued, due at once, its last error untouched.
  const Job job = Enqueue(Spec("st-1", "scan", 1));
  for (int i = 0; i < 5; ++i) {
    const queue::Lease lease = MustLease("w" + std::to_string(i));
    EXPECT_EQ(lease.job.attempts, 1);
    ASSERT_TRUE(queue_->Release(lease));
    const Job released = MustGet(job.id);
    EXPECT_EQ(released.state, JobState::kQueued);
    EXPECT_EQ(released.attempts, 0);
    EXPECT_EQ(released.last_error, "");
  }
  // The old lease is spent; a cancel requested while leased wins.
  const queue::Lease lease = MustLease("w9");
  EXPECT_FALSE(queue_->Release(queue::Lease{lease.job, "stale-token"}));
  ASSERT_TRUE(queue_->RequestCancel("st-1"));
  ASSERT_TRUE(queue_->Release(lease));
  EXPECT_EQ(MustGet(job.id).state, JobState::kCancelled);
}

TEST_F(SqliteJobQueueTest, DeadAfterMaxAttemptsOfNak) {
  const Job job = Enqueue(Spec("st-1", "scan", 2));
  ASSERT_TRUE(queue_->Nak(MustLease("w1"), "first failure", milliseconds(0)));
  EXPECT_EQ(MustGet(job.id).state, JobState::kQueued);
  ASSERT_TRUE(queue_->Nak(MustLease("w1"), "second failure", milliseconds(0)));
  const Job dead = MustGet(job.id);
  EXPECT_EQ(dead.state, JobState::kDead);
  EXPECT_EQ(dead.attempts, 2);
  EXPECT_EQ(dead.last_error, "second failure");
  EXPECT_TRUE(NothingDue());
  QueueCounts counts = MustCount();
  EXPECT_EQ(counts.dead, 1);
  EXPECT_EQ(counts.queued, 0);
}

TEST_F(SqliteJobQueueTest, DeadAfterMaxAttemptsOfExpiredLeases) {
  const Job job = Enqueue(Spec("st-1", "scan", 2));
  MustLease("w1", milliseconds(1000));
  clock_.Advance(1000);
  EXPECT_EQ(MustLease("w2", milliseconds(1000)).job.attempts, 2);
  clock_.Advance(1000);
  EXPECT_TRUE(NothingDue()) << "a third lease would exceed max_attempts";
  const Job dead = MustGet(job.id);
  EXPECT_EQ(dead.state, JobState::kDead);
  EXPECT_EQ(dead.attempts, 2);
  EXPECT_EQ(dead.lease_expiries, 2);
  EXPECT_NE(dead.last_error.find("lease expired 2 times"), std::string::npos) << dead.last_error;
  EXPECT_NE(dead.last_error.find("w2"), std::string::npos) << dead.last_error;
  EXPECT_EQ(MustCount().dead, 1);
}

TEST_F(SqliteJobQueueTest, TermKillsTheJobAtOnce) {
  const Job job = Enqueue(Spec("st-1", "scan", 5));
  queue::Lease lease = MustLease("w1");
  ASSERT_TRUE(queue_->Term(lease, "payload has no input URL"));
  const Job dead = MustGet(job.id);
  EXPECT_EQ(dead.state, JobState::kDead);
  EXPECT_EQ(dead.attempts, 1);
  EXPECT_EQ(dead.last_error, "payload has no input URL");
  EXPECT_TRUE(NothingDue());
  auto ack = queue_->Ack(lease);
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(ack.error().message().find("is now dead"), std::string::npos) << ack.error().message();
}

// -------------------------------------------------------------- Cancel

TEST_F(SqliteJobQueueTest, CancelOfAQueuedJobIsImmediate) {
  const Job job = Enqueue(Spec("st-1"));
  auto cancelled = queue_->RequestCancel("st-1");
  ASSERT_TRUE(cancelled) << cancelled.error().ToString();
  EXPECT_TRUE(*cancelled);
  EXPECT_EQ(MustGet(job.id).state, JobState::kCancelled);
  EXPECT_TRUE(NothingDue());
  EXPECT_EQ(MustCount().cancelled, 1);

  auto again = queue_->RequestCancel("st-1");
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again) << "already finished";
  auto unknown = queue_->RequestCancel("no-such-stream");
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(*unknown);
}

TEST_F(SqliteJobQueueTest, CancelOfALeasedJobReachesTheWorkerAtItsHeartbeat) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease lease = MustLease("w1");
  auto beat = queue_->Heartbeat(lease, kVisibility);
  ASSERT_TRUE(beat);
  EXPECT_FALSE(beat->cancel_requested);

  auto cancelled = queue_->RequestCancel("st-1");
  ASSERT_TRUE(cancelled) << cancelled.error().ToString();
  EXPECT_TRUE(*cancelled);
  Job now = MustGet(job.id);
  EXPECT_EQ(now.state, JobState::kLeased) << "the worker still runs it";
  EXPECT_TRUE(now.cancel_requested);

  beat = queue_->Heartbeat(lease, kVisibility);
  ASSERT_TRUE(beat) << beat.error().ToString();
  EXPECT_TRUE(beat->cancel_requested);
  ASSERT_TRUE(queue_->Ack(lease));
  EXPECT_EQ(MustGet(job.id).state, JobState::kDone);
}

TEST_F(SqliteJobQueueTest, NakOfACancelledJobDoesNotRetryIt) {
  const Job job = Enqueue(Spec("st-1"));
  queue::Lease lease = MustLease("w1");
  ASSERT_TRUE(queue_->RequestCancel("st-1"));
  ASSERT_TRUE(queue_->Nak(lease, "stopped", milliseconds(0)));
  EXPECT_EQ(MustGet(job.id).state, JobState::kCancelled);
  EXPECT_TRUE(NothingDue());
}

TEST_F(SqliteJobQueueTest, CancelledJobOfADeadWorkerIsNotLeasedAgain) {
  const Job job = Enqueue(Spec("st-1"));
  MustLease("w1", milliseconds(1000));
  ASSERT_TRUE(queue_->RequestCancel("st-1"));
  clock_.Advance(1000);  // w1 died: no heartbeat, no ack
  EXPECT_TRUE(NothingDue());
  EXPECT_EQ(MustGet(job.id).state, JobState::kCancelled);
}

TEST_F(SqliteJobQueueTest, CancelAfterTheLeaseExpiredIsImmediate) {
  const Job job = Enqueue(Spec("st-1"));
  MustLease("w1", milliseconds(1000));
  clock_.Advance(2000);
  auto cancelled = queue_->RequestCancel("st-1");
  ASSERT_TRUE(cancelled);
  EXPECT_TRUE(*cancelled);
  EXPECT_EQ(MustGet(job.id).state, JobState::kCancelled);
}

// ------------------------------------------------ Requeue, Counts, List

TEST_F(SqliteJobQueueTest, RequeueRevivesADeadJob) {
  const Job job = Enqueue(Spec("st-1", "scan", 1));
  ASSERT_TRUE(queue_->Nak(MustLease("w1"), "bucket down", milliseconds(0)));
  ASSERT_EQ(MustGet(job.id).state, JobState::kDead);

  auto requeued = queue_->Requeue(job.id);
  ASSERT_TRUE(requeued) << requeued.error().ToString();
  EXPECT_EQ(*requeued, 1);
  const Job again = MustGet(job.id);
  EXPECT_EQ(again.state, JobState::kQueued);
  EXPECT_EQ(again.attempts, 0);
  EXPECT_EQ(again.last_error, "bucket down") << "the history stays";
  queue::Lease lease = MustLease("w2");
  EXPECT_EQ(lease.job.id, job.id);
  EXPECT_EQ(lease.job.attempts, 1);

  auto not_dead = queue_->Requeue(job.id);
  ASSERT_TRUE(not_dead);
  EXPECT_EQ(*not_dead, 0);
  EXPECT_EQ(MustGet(job.id).state, JobState::kLeased);
  auto unknown = queue_->Requeue(job.id + 100);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kNotFound);
}

TEST_F(SqliteJobQueueTest, CountsEveryState) {
  for (const char* key : {"done", "dead", "cancelled", "leased", "retrying", "queued"}) {
    Enqueue(Spec(key, "scan", 2));
  }
  ASSERT_TRUE(queue_->Ack(MustLease("w")));  // "done"
  ASSERT_TRUE(queue_->Term(MustLease("w"), "bad"));  // "dead"
  ASSERT_TRUE(queue_->RequestCancel("cancelled"));
  MustLease("w");  // "leased"
  ASSERT_TRUE(queue_->Nak(MustLease("w"), "later", milliseconds(60'000)));  // "retrying"
  const QueueCounts counts = MustCount();
  EXPECT_EQ(counts.queued, 2);
  EXPECT_EQ(counts.retrying, 1);
  EXPECT_EQ(counts.leased, 1);
  EXPECT_EQ(counts.done, 1);
  EXPECT_EQ(counts.dead, 1);
  EXPECT_EQ(counts.cancelled, 1);
}

TEST_F(SqliteJobQueueTest, ListFiltersByStateNewestFirst) {
  std::vector<int64_t> ids;
  for (const char* key : {"a", "b", "c", "d"}) ids.push_back(Enqueue(Spec(key)).id);
  ASSERT_TRUE(queue_->Ack(MustLease("w")));  // a

  auto queued = queue_->List(JobState::kQueued, 10);
  ASSERT_TRUE(queued) << queued.error().ToString();
  ASSERT_EQ(queued->size(), 3u);
  EXPECT_EQ((*queued)[0].dedup_key, "d");
  EXPECT_EQ((*queued)[2].dedup_key, "b");

  auto all = queue_->List(std::nullopt, 2);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, ids[3]);
  EXPECT_EQ((*all)[1].id, ids[2]);

  auto done = queue_->List(JobState::kDone, 10);
  ASSERT_TRUE(done);
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].id, ids[0]);

  auto bad = queue_->List(std::nullopt, 0);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(SqliteJobQueueTest, GetByKeyAndUnknownIds) {
  const Job job = Enqueue(Spec("st-1"));
  auto by_key = queue_->GetByKey("st-1");
  ASSERT_TRUE(by_key) << by_key.error().ToString();
  ASSERT_TRUE(by_key->has_value());
  EXPECT_EQ((*by_key)->id, job.id);
  auto missing_key = queue_->GetByKey("st-2");
  ASSERT_TRUE(missing_key);
  EXPECT_FALSE(missing_key->has_value());
  auto missing_id = queue_->Get(job.id + 1);
  ASSERT_TRUE(missing_id);
  EXPECT_FALSE(missing_id->has_value());
}

// ---------------------------------------------------- Files and restarts

TEST_F(SqliteJobQueueTest, ARestartLosesNoJob) {
  const Job done = Enqueue(Spec("done"));
  const Job leased = Enqueue(Spec("leased"));
  const Job retrying = Enqueue(Spec("retrying"));
  const Job queued = Enqueue(Spec("queued"));
  ASSERT_TRUE(queue_->Ack(MustLease("w1")));
  queue::Lease held = MustLease("w1");
  ASSERT_TRUE(queue_->Nak(MustLease("w1"), "oops", milliseconds(5000)));

  queue_.reset();  // the process stops
  queue_ = Open();
  ASSERT_NE(queue_, nullptr);

  EXPECT_EQ(MustGet(done.id).state, JobState::kDone);
  EXPECT_EQ(MustGet(leased.id).state, JobState::kLeased);
  EXPECT_EQ(MustGet(retrying.id).state, JobState::kQueued);
  EXPECT_EQ(MustGet(retrying.id).last_error, "oops");
  EXPECT_EQ(MustGet(queued.id).payload, queued.payload);
  // The worker's lease survived the restart of the queue's owner.
  auto beat = queue_->Heartbeat(held, kVisibility);
  ASSERT_TRUE(beat) << beat.error().ToString();
  // And the queue order is kept.
  EXPECT_EQ(MustLease("w2").job.id, queued.id);
  clock_.Advance(5000);
  EXPECT_EQ(MustLease("w2").job.id, retrying.id);
  auto dup = queue_->Enqueue(Spec("done"));
  ASSERT_TRUE(dup);
  EXPECT_FALSE(dup->created);
}

TEST_F(SqliteJobQueueTest, SharesTheFileWithOtherComponents) {
  queue_.reset();
  {
    // Another component owns user_version and tables of its own in this file.
    auto db = store::Database::Open(path_);
    ASSERT_TRUE(db) << db.error().ToString();
    ASSERT_TRUE(db->Exec("CREATE TABLE channels (id TEXT PRIMARY KEY)"));
    ASSERT_TRUE(db->SetUserVersion(7));
  }
  queue_ = Open();
  ASSERT_NE(queue_, nullptr);
  Enqueue(Spec("st-1"));
  queue_.reset();
  queue_ = Open();  // reopening applies nothing twice
  ASSERT_NE(queue_, nullptr);
  EXPECT_EQ(MustCount().queued, 1);

  auto db = store::Database::Open(path_);
  ASSERT_TRUE(db);
  auto version = db->UserVersion();
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, 7) << "the queue must not touch PRAGMA user_version";
  auto row = db->Prepare("SELECT version FROM queue_schema");
  ASSERT_TRUE(row) << row.error().ToString();
  ASSERT_TRUE(row->Step().value_or(false));
  EXPECT_EQ(row->ColumnInt64(0), SqliteJobQueue::SchemaVersion());
  auto other = db->Prepare("SELECT COUNT(*) FROM channels");
  ASSERT_TRUE(other) << "the other component's table is still there";
}

TEST_F(SqliteJobQueueTest, RefusesAQueueSchemaFromANewerBuild) {
  queue_.reset();
  {
    auto db = store::Database::Open(path_);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->Exec("UPDATE queue_schema SET version = 99"));
  }
  auto queue = SqliteJobQueue::Open(path_, Options());
  ASSERT_FALSE(queue);
  EXPECT_EQ(queue.error().code(), ErrorCode::kVersionMismatch);
  EXPECT_NE(queue.error().message().find("newer earshot"), std::string::npos)
      << queue.error().message();
}

TEST_F(SqliteJobQueueTest, CreatesMissingFolders) {
  const std::filesystem::path nested = dir_ / "var" / "lib" / "earshot" / "queue.db";
  auto queue = SqliteJobQueue::Open(nested, Options());
  ASSERT_TRUE(queue) << queue.error().ToString();
  EXPECT_TRUE(std::filesystem::exists(nested));
}

TEST_F(SqliteJobQueueTest, ANonDatabaseFileIsReported) {
  const std::filesystem::path junk = dir_ / "junk.db";
  {
    std::ofstream out(junk);
    out << "this is not a database, just some text that is long enough to have a header";
  }
  auto queue = SqliteJobQueue::Open(junk, Options());
  ASSERT_FALSE(queue);
  EXPECT_EQ(queue.error().code(), ErrorCode::kCorruptData) << queue.error().ToString();
  EXPECT_NE(queue.error().message().find("junk.db"), std::string::npos);
}

// ----------------------------------------------------------- Concurrency

// Leases from `queue` until the queue has nothing queued or leased, or the
// deadline; acks every job and records its id.
void LeaseUntilEmpty(JobQueue& queue, const std::string& worker,
                     std::chrono::steady_clock::time_point deadline, std::vector<int64_t>* leased,
                     std::string* error) {
  while (std::chrono::steady_clock::now() < deadline) {
    auto lease = queue.Lease(worker, std::chrono::minutes(5));
    if (!lease) {
      *error = lease.error().ToString();
      return;
    }
    if (!lease->has_value()) {
      auto counts = queue.Counts();
      if (!counts) {
        *error = counts.error().ToString();
        return;
      }
      if (counts->queued == 0 && counts->leased == 0) return;
      std::this_thread::sleep_for(milliseconds(2));
      continue;
    }
    leased->push_back((*lease)->job.id);
    if (auto ack = queue.Ack(**lease); !ack) {
      *error = ack.error().ToString();
      return;
    }
  }
  *error = "deadline passed before the queue was empty";
}

// Fills the queue at `path` with `n` jobs; returns their ids.
std::set<int64_t> FillQueue(const std::filesystem::path& path, int n) {
  std::set<int64_t> ids;
  auto queue = SqliteJobQueue::Open(path);
  EXPECT_TRUE(queue) << queue.error().ToString();
  if (!queue) return ids;
  for (int i = 0; i < n; ++i) {
    auto result = (*queue)->Enqueue(Spec("job-" + std::to_string(i)));
    EXPECT_TRUE(result) << result.error().ToString();
    if (result) ids.insert(result->job.id);
  }
  return ids;
}

TEST(SqliteJobQueueConcurrencyTest, ThreadsOnTwoConnectionsLeaseEveryJobExactlyOnce) {
  TempDir dir;
  const auto path = dir / "state.db";
  constexpr int kJobs = 200;
  const std::set<int64_t> ids = FillQueue(path, kJobs);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kJobs));

  auto a = SqliteJobQueue::Open(path);
  auto b = SqliteJobQueue::Open(path);
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_TRUE(b) << b.error().ToString();
  constexpr int kThreads = 4;
  std::vector<std::vector<int64_t>> leased(kThreads);
  std::vector<std::string> errors(kThreads);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    JobQueue& queue = t % 2 == 0 ? **a : **b;
    threads.emplace_back(LeaseUntilEmpty, std::ref(queue), "w" + std::to_string(t), deadline,
                         &leased[t], &errors[t]);
  }
  for (auto& thread : threads) thread.join();

  std::map<int64_t, int> times;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    for (int64_t id : leased[t]) ++times[id];
  }
  EXPECT_EQ(times.size(), ids.size());
  for (const auto& [id, n] : times) EXPECT_EQ(n, 1) << "job " << id << " leased " << n << " times";
  auto counts = (*a)->Counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->done, kJobs);
}

// A worker process: leases from its own connection and writes the ids it
// acked to `fd`. Never returns.
[[noreturn]] void WorkerProcess(const std::filesystem::path& path, const std::string& worker,
                                int fd) {
  int code = 0;
  {
    auto queue = SqliteJobQueue::Open(path);
    if (!queue) {
      code = 2;
    } else {
      std::vector<int64_t> leased;
      std::string error;
      LeaseUntilEmpty(**queue, worker, std::chrono::steady_clock::now() + std::chrono::seconds(60),
                      &leased, &error);
      for (int64_t id : leased) {
        if (write(fd, &id, sizeof(id)) != static_cast<ssize_t>(sizeof(id))) code = 3;
      }
      if (!error.empty()) code = 4;
    }
  }
  close(fd);
  _exit(code);  // no gtest teardown in the child
}

TEST(SqliteJobQueueConcurrencyTest, WorkerProcessesOnOneFileLeaseEveryJobExactlyOnce) {
  TempDir dir;
  const auto path = dir / "state.db";
  constexpr int kJobs = 150;
  const std::set<int64_t> ids = FillQueue(path, kJobs);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kJobs));

  // Fork while this process is single-threaded and holds no connection.
  constexpr int kChildren = 2;
  std::vector<pid_t> pids;
  std::vector<int> fds;
  for (int c = 0; c < kChildren; ++c) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork failed";
    if (pid == 0) {
      close(pipe_fds[0]);
      WorkerProcess(path, "process-" + std::to_string(c), pipe_fds[1]);
    }
    close(pipe_fds[1]);
    pids.push_back(pid);
    fds.push_back(pipe_fds[0]);
  }

  // This process leases too, on its own connection.
  std::vector<int64_t> mine;
  std::string error;
  {
    auto queue = SqliteJobQueue::Open(path);
    ASSERT_TRUE(queue) << queue.error().ToString();
    LeaseUntilEmpty(**queue, "parent", std::chrono::steady_clock::now() + std::chrono::seconds(60),
                    &mine, &error);
  }
  EXPECT_EQ(error, "");

  // Collect the children (bounded: they stop at their own deadline; this one
  // is a little later and kills what is left).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(70);
  std::map<int64_t, int> times;
  for (int64_t id : mine) ++times[id];
  for (int c = 0; c < kChildren; ++c) {
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(pids[c], &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (done == 0) {
      kill(pids[c], SIGKILL);
      waitpid(pids[c], &status, 0);
      ADD_FAILURE() << "worker process " << c << " did not finish in time";
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "worker process " << c << " status " << status;
    }
    int64_t id = 0;
    while (read(fds[c], &id, sizeof(id)) == static_cast<ssize_t>(sizeof(id))) ++times[id];
    close(fds[c]);
  }

  EXPECT_EQ(times.size(), ids.size());
  for (const auto& [id, n] : times) EXPECT_EQ(n, 1) << "job " << id << " leased " << n << " times";
  auto queue = SqliteJobQueue::Open(path);
  ASSERT_TRUE(queue);
  auto counts = (*queue)->Counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->done, kJobs);
}

}  // namespace
}  // namespace earshot::queue
