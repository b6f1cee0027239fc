// JobQueue on a SQLite file, which it may share with other components (the
// control-plane state lives in the same file by default).
//
// Storage: the table queue_jobs, one row per job, and queue_schema, one row
// with this component's schema version. The version is NOT PRAGMA
// user_version, which belongs to the whole file (and so to whichever component
// migrates it); each component sharing a file keeps its own version row.
//
// Every state change runs in one IMMEDIATE transaction (the write lock is
// taken first, then the row is read and changed), so two connections, in one
// process or in several, never lease the same job while its lease is valid.
// The connection uses WAL and synchronous=FULL: a committed change survives a
// crash of the process or the machine. Busy waits last
// QueueOptions::busy_timeout_ms, then fail with kUnavailable.
//
// Thread safety: one connection per object, used under a mutex; any method
// may be called from any thread. Several objects (and processes) may open the
// same file.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "queue/job_queue.h"
#include "store/sqlite.h"

namespace earshot::queue {

class SqliteJobQueue final : public JobQueue {
  struct PrivateTag {};

 public:
  // Opens (or creates) the queue in the SQLite file `path`, creating missing
  // parent folders, and brings its tables up to date. ":memory:" gives a
  // private in-memory queue (one per object; for tests). kVersionMismatch when
  // the file holds a queue schema from a newer earshot.
  static Result<std::unique_ptr<SqliteJobQueue>> Open(const std::filesystem::path& path,
                                                      const QueueOptions& options = {});

  SqliteJobQueue(PrivateTag, store::Database db, const QueueOptions& options);
  ~SqliteJobQueue() override = default;
  SqliteJobQueue(const SqliteJobQueue&) = delete;
  SqliteJobQueue& operator=(const SqliteJobQueue&) = delete;

  Result<EnqueueResult> Enqueue(const JobSpec& spec) override;
  Result<std::optional<queue::Lease>> Lease(std::string_view worker_id,
                                            std::chrono::milliseconds visibility,
                                            std::span<const std::string> kinds = {}) override;
  Result<HeartbeatReply> Heartbeat(const queue::Lease& lease,
                                   std::chrono::milliseconds visibility) override;
  Status Ack(const queue::Lease& lease) override;
  Status Nak(const queue::Lease& lease, std::string_view error,
             std::optional<std::chrono::milliseconds> delay = {}) override;
  Status Term(const queue::Lease& lease, std::string_view error) override;
  Status Release(const queue::Lease& lease) override;
  Result<bool> RequestCancel(std::string_view dedup_key) override;
  Result<std::optional<Job>> Get(int64_t id) override;
  Result<std::optional<Job>> GetByKey(std::string_view dedup_key) override;
  Result<std::vector<Job>> List(std::optional<JobState> state, int limit) override;
  Result<QueueCounts> Counts() override;
  Result<int> Requeue(int64_t id) override;

  // The schema version this build writes (the row in queue_schema).
  static int SchemaVersion();

 private:
  // How a lease holder's operation ends the lease.
  enum class Settle { kAck, kNak, kTerm, kRelease };

  int64_t Now() const;
  // Ack/Nak/Term/Release: checks the token and moves the job out of kLeased.
  Status SettleLease(const queue::Lease& lease, Settle how, std::string_view error,
                     std::optional<std::chrono::milliseconds> delay);

  const QueueOptions options_;
  std::mutex mutex_;
  store::Database db_;  // GUARDED_BY(mutex_)
};

}  // namespace earshot::queue
