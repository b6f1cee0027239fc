// The durable job queue: scan jobs (and later other kinds) handed from the
// control plane to scanner workers that may live in other threads or other
// processes on the same machine.
//
// Model (at-least-once, leases with a visibility timeout):
//   Enqueue ──► queued ──Lease──► leased ──Ack──► done
//                 ▲  │              │ │ └─Term / Nak with no attempts left──► dead
//                 │  │              │ └─lease expired, attempts left: leasable again
//                 │  │              └─Nak (attempts left): queued after a delay
//                 │  └─RequestCancel──► cancelled
//                 └──────Requeue (operator) ◄── dead
// - A lease lasts `visibility`; Heartbeat extends it ("in progress"). A worker
//   that dies stops heartbeating, its lease expires and the job is leased again
//   by someone else. Every lease counts one attempt; a job that has used
//   max_attempts and fails again (Nak, or its lease expires) is dead.
// - Each lease carries a random token. Ack/Nak/Term/Heartbeat must present it;
//   once the job was leased again by someone else (or finished, or dead) the
//   old token is refused with kFailedPrecondition ("lease lost ...") and
//   nothing changes. A lease that expired but was not yet taken by anyone is
//   still honoured (nobody else holds the job).
// - dedup_key is unique forever: enqueueing a key that exists in any state
//   returns the existing job, so duplicate and late events are harmless.
// - Release gives a leased job back without a verdict (a worker shutting
//   down): queued, due now, the attempt not counted.
// - RequestCancel cancels a queued job at once; a leased job gets
//   cancel_requested, which its worker sees in the next HeartbeatReply (it
//   then stops and Acks). If that worker died instead, the expired lease makes
//   the job cancelled rather than leased again.
//
// The interface is shaped so that a NATS JetStream backend (AckWait =
// visibility, InProgress = Heartbeat, Nak with delay, Term, MaxDeliver = dead)
// and a PostgreSQL one (FOR UPDATE SKIP LOCKED on a lease column) fit behind
// it. Backends are opened by URL (registry.h); sqlite_job_queue.h is the first.
//
// Times are Unix milliseconds (UTC) from QueueOptions::now_ms, the clock seam
// tests replace; durations are std::chrono::milliseconds.
//
// Thread safety: every JobQueue method may be called from any thread, and
// several JobQueue objects (in one or several processes) may share one
// backing store; the backend arbitrates.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace earshot::queue {

enum class JobState {
  kQueued,     // waiting; leasable once not_before_ms has passed
  kLeased,     // a worker holds it until lease_expires_ms (or heartbeats)
  kDone,       // acknowledged by its worker (final)
  kDead,       // failed max_attempts times or terminated; only Requeue revives it
  kCancelled,  // cancelled before or while running (final)
};

// "queued", "leased", "done", "dead", "cancelled" (stable: stored and shown
// in the API).
std::string_view JobStateName(JobState state);
// The inverse of JobStateName; kInvalidArgument listing the names otherwise.
Result<JobState> ParseJobState(std::string_view name);

// What to run. `payload` is opaque to the queue (stored as JSON text).
struct JobSpec {
  std::string kind;       // e.g. "scan"; workers lease by kind. Required.
  std::string dedup_key;  // unique forever, e.g. the stream id. Required.
  nlohmann::json payload;
  int max_attempts = 5;   // leases before the job is dead; >= 1
};

// A snapshot of one job.
struct Job {
  int64_t id = 0;  // assigned by the queue, increasing with creation order
  std::string kind;
  std::string dedup_key;
  nlohmann::json payload;
  JobState state = JobState::kQueued;
  int attempts = 0;      // leases so far (the current one included)
  int max_attempts = 0;
  int lease_expiries = 0;        // leases that ended by expiring (the worker went silent)
  std::string lease_owner;       // worker of the current or the last lease; "" if never leased
  int64_t lease_expires_ms = 0;  // when state is kLeased; 0 otherwise
  int64_t not_before_ms = 0;     // a queued job is not leased before this (retry backoff)
  std::string last_error;        // why the last attempt failed; "" if none did
  bool cancel_requested = false;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// A job held by one worker. The token is the proof of holding it; copy the
// Lease around freely, it is a plain value.
struct Lease {
  Job job;            // as it was when leased
  std::string token;  // random; presented by Heartbeat/Ack/Nak/Term
};

struct EnqueueResult {
  Job job;       // the new job, or the existing one with the same dedup_key
  bool created;  // false when the dedup_key already existed
};

struct HeartbeatReply {
  int64_t lease_expires_ms = 0;   // the extended expiry
  bool cancel_requested = false;  // stop the work and Ack
};

// Jobs per state. `leased` includes leases that expired and were not yet
// picked up again; `retrying` counts queued jobs that failed before
// (attempts > 0) and is a subset of `queued`.
struct QueueCounts {
  int64_t queued = 0;
  int64_t leased = 0;
  int64_t retrying = 0;
  int64_t done = 0;
  int64_t dead = 0;
  int64_t cancelled = 0;
};

// Delay before a Nak'ed job is leasable again when the worker gives no delay:
// base * multiplier^(attempt - 1), at most `max`. Deterministic (no jitter:
// jobs fail for reasons of their own, not in synchronised bursts).
// Example with the defaults: attempt 1 -> 2 s, 2 -> 4 s, 3 -> 8 s ... 300 s.
struct BackoffPolicy {
  std::chrono::milliseconds base{2000};
  std::chrono::milliseconds max{300000};
  double multiplier = 2.0;  // >= 1

  // REQUIRES: attempt >= 1 (values below count as 1).
  std::chrono::milliseconds DelayForAttempt(int attempt) const;
};

struct QueueOptions {
  BackoffPolicy backoff;
  // The clock, Unix milliseconds. Empty: the system clock. Tests inject their
  // own; every JobQueue sharing a store must see the same clock.
  std::function<int64_t()> now_ms;
  // How long an operation waits for another connection or process holding the
  // store's write lock before failing with kUnavailable, in milliseconds.
  int busy_timeout_ms = 10000;
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // Adds a job, or returns the existing job with spec.dedup_key (whatever its
  // state; its kind, payload and max_attempts are kept). kInvalidArgument for
  // an empty kind or dedup_key, max_attempts < 1, or a payload that is not
  // valid JSON text (invalid UTF-8).
  virtual Result<EnqueueResult> Enqueue(const JobSpec& spec) = 0;

  // Leases the oldest due job (lowest id) of one of `kinds` (any kind when
  // empty) to `worker_id` for `visibility`: a queued job whose not_before has
  // passed, or a leased job whose lease expired. attempts goes up by one.
  // Expired leases are settled first: a job with cancel_requested becomes
  // cancelled, one that has used max_attempts becomes dead ("lease expired N
  // times"). nullopt when nothing is due.
  // REQUIRES: worker_id not empty, visibility > 0 (kInvalidArgument).
  virtual Result<std::optional<queue::Lease>> Lease(std::string_view worker_id,
                                                    std::chrono::milliseconds visibility,
                                                    std::span<const std::string> kinds = {}) = 0;

  // Extends the lease to now + visibility. kFailedPrecondition ("lease lost")
  // when the lease is no longer held (see the file comment).
  virtual Result<HeartbeatReply> Heartbeat(const queue::Lease& lease,
                                           std::chrono::milliseconds visibility) = 0;

  // The work is finished: the job is done (also after cancel_requested).
  virtual Status Ack(const queue::Lease& lease) = 0;

  // The attempt failed with `error`: the job is queued again, leasable after
  // `delay` (or the backoff policy's delay for this attempt), or dead when it
  // has used max_attempts, or cancelled when a cancel was requested.
  virtual Status Nak(const queue::Lease& lease, std::string_view error,
                     std::optional<std::chrono::milliseconds> delay = {}) = 0;

  // The job can never succeed (malformed payload...): dead now with `error`.
  virtual Status Term(const queue::Lease& lease, std::string_view error) = 0;

  // The worker gives the job back without a verdict (it is shutting down):
  // queued again, due now, and this lease does not count as an attempt
  // (cancelled instead when a cancel was requested). Restarts of workers
  // thus never use up a long job's attempts.
  virtual Status Release(const queue::Lease& lease) = 0;

  // Asks the job with `dedup_key` to stop: a queued job is cancelled at once,
  // a leased one gets cancel_requested. True when the job was cancelled or
  // is (now or already) marked; false when it is already finished (done,
  // dead, cancelled) or no such job exists.
  virtual Result<bool> RequestCancel(std::string_view dedup_key) = 0;

  // One job by id or by dedup key; nullopt when unknown.
  virtual Result<std::optional<Job>> Get(int64_t id) = 0;
  virtual Result<std::optional<Job>> GetByKey(std::string_view dedup_key) = 0;

  // Up to `limit` jobs in `state` (every state when nullopt), newest first.
  // REQUIRES: limit >= 1 (kInvalidArgument).
  virtual Result<std::vector<Job>> List(std::optional<JobState> state, int limit) = 0;

  virtual Result<QueueCounts> Counts() = 0;

  // Operator action: a dead job is queued again, due now, with attempts,
  // lease_expiries and cancel_requested reset (last_error is kept). Returns
  // the number of jobs requeued: 1, or 0 when job `id` exists but is not
  // dead. kNotFound for an unknown id.
  virtual Result<int> Requeue(int64_t id) = 0;
};

}  // namespace earshot::queue
