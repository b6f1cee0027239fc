#include "queue/sqlite_job_queue.h"

#include <openssl/rand.h>

#include <array>
#include <system_error>
#include <utility>

#include "common/time_format.h"

namespace earshot::queue {
namespace {

using store::Database;
using store::Statement;
using store::Transaction;

// The queue schema, one step per version. Append new steps; never edit a step
// that has shipped. Versions are kept in queue_schema, not PRAGMA user_version
// (see the header).
constexpr std::array<store::Migration, 1> kMigrations = {{
    {1, "create queue_jobs", R"sql(
CREATE TABLE queue_jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind <> ''),
  dedup_key TEXT NOT NULL UNIQUE CHECK (dedup_key <> ''),
  payload TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'done', 'dead', 'cancelled')),
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  lease_expiries INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_token TEXT NOT NULL DEFAULT '',
  lease_expires_ms INTEGER NOT NULL DEFAULT 0,
  not_before_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
-- Leasing searches the queued and leased jobs only (never the done ones, which
-- are kept forever for deduplication); List and Counts go by state too.
CREATE INDEX queue_jobs_by_state ON queue_jobs (state, id);
)sql",
     nullptr},
}};

constexpr std::string_view kJobColumns =
    "id, kind, dedup_key, payload, state, attempts, max_attempts, lease_expiries, lease_owner, "
    "lease_expires_ms, not_before_ms, last_error, cancel_requested, created_ms, updated_ms, "
    "lease_token";
// Column indexes in kJobColumns beyond the Job fields.
constexpr int kTokenColumn = 15;

// The jobs Lease() looks at: this term lets SQLite search queue_jobs_by_state
// for the two states instead of scanning the table.
constexpr std::string_view kActive = "state IN ('queued', 'leased')";

Status BindOne(Statement& stmt, int index, int64_t value) { return stmt.BindInt64(index, value); }
Status BindOne(Statement& stmt, int index, std::string_view value) {
  return stmt.BindText(index, value);
}

// Prepares `sql` and binds `args` to parameters 1, 2, ... in order.
template <class... Args>
Result<Statement> PrepareBound(Database& db, std::string_view sql, const Args&... args) {
  auto stmt = db.Prepare(sql);
  if (!stmt) return std::unexpected(stmt.error());
  int index = 0;
  Status status = Ok();
  ((status = status ? BindOne(*stmt, ++index, args) : status), ...);
  if (!status) return std::unexpected(status.error());
  return stmt;
}

template <class... Args>
Status RunSql(Database& db, std::string_view sql, const Args&... args) {
  auto stmt = PrepareBound(db, sql, args...);
  if (!stmt) return std::unexpected(stmt.error());
  return stmt->Run();
}

Result<Job> ReadJob(const Statement& stmt, const std::filesystem::path& db_path) {
  Job job;
  job.id = stmt.ColumnInt64(0);
  auto corrupt = [&](const std::string& what) {
    return std::unexpected(Error(ErrorCode::kCorruptData, "job queue " + db_path.string() +
                                                              ": job " + std::to_string(job.id) +
                                                              ": " + what));
  };
  job.kind = stmt.ColumnText(1);
  job.dedup_key = stmt.ColumnText(2);
  job.payload = nlohmann::json::parse(stmt.ColumnText(3), nullptr, /*allow_exceptions=*/false);
  if (job.payload.is_discarded()) return corrupt("payload is not valid JSON");
  auto state = ParseJobState(stmt.ColumnText(4));
  if (!state) return corrupt(state.error().message());
  job.state = *state;
  job.attempts = static_cast<int>(stmt.ColumnInt64(5));
  job.max_attempts = static_cast<int>(stmt.ColumnInt64(6));
  job.lease_expiries = static_cast<int>(stmt.ColumnInt64(7));
  job.lease_owner = stmt.ColumnText(8);
  job.lease_expires_ms = stmt.ColumnInt64(9);
  job.not_before_ms = stmt.ColumnInt64(10);
  job.last_error = stmt.ColumnText(11);
  job.cancel_requested = stmt.ColumnInt64(12) != 0;
  job.created_ms = stmt.ColumnInt64(13);
  job.updated_ms = stmt.ColumnInt64(14);
  return job;
}

// Steps `stmt` and reads at most one job.
Result<std::optional<Job>> StepJob(Statement& stmt, const std::filesystem::path& db_path) {
  auto row = stmt.Step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<Job>();
  auto job = ReadJob(stmt, db_path);
  if (!job) return std::unexpected(job.error());
  return std::optional<Job>(std::move(*job));
}

Result<std::optional<Job>> SelectById(Database& db, int64_t id) {
  auto stmt = PrepareBound(db, "SELECT " + std::string(kJobColumns) + " FROM queue_jobs WHERE id = ?",
                           id);
  if (!stmt) return std::unexpected(stmt.error());
  return StepJob(*stmt, db.path());
}

Result<std::optional<Job>> SelectByKey(Database& db, std::string_view key) {
  auto stmt = PrepareBound(
      db, "SELECT " + std::string(kJobColumns) + " FROM queue_jobs WHERE dedup_key = ?", key);
  if (!stmt) return std::unexpected(stmt.error());
  return StepJob(*stmt, db.path());
}

// Brings the queue tables up to the last step of kMigrations, in one
// IMMEDIATE transaction (concurrent openers wait for each other).
Status MigrateSchema(Database& db) {
  constexpr int kLatest = static_cast<int>(kMigrations.size());
  auto txn = Transaction::Begin(db, Transaction::Mode::kImmediate);
  if (!txn) return std::unexpected(txn.error());
  if (auto s = db.Exec(
          "CREATE TABLE IF NOT EXISTS queue_schema ("
          "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
      !s) {
    return s;
  }
  auto select = db.Prepare("SELECT version FROM queue_schema WHERE id = 1");
  if (!select) return std::unexpected(select.error());
  auto row = select->Step();
  if (!row) return std::unexpected(row.error());
  const int current = *row ? static_cast<int>(select->ColumnInt64(0)) : 0;
  if (current > kLatest) {
    return MakeError(ErrorCode::kVersionMismatch,
                     "job queue " + db.path().string() + ": queue schema version " +
                         std::to_string(current) + " is newer than the latest this build knows (" +
                         std::to_string(kLatest) + "); it was written by a newer earshot");
  }
  if (current == kLatest) return txn->Commit();
  for (int v = current + 1; v <= kLatest; ++v) {
    const store::Migration& step = kMigrations[static_cast<size_t>(v - 1)];
    const std::string context = "applying queue schema migration " + std::to_string(v) + " (" +
                                std::string(step.description) + ")";
    if (auto s = db.Exec(step.sql); !s) return std::unexpected(s.error().Wrap(context));
    if (step.apply != nullptr) {
      if (auto s = step.apply(db); !s) return std::unexpected(s.error().Wrap(context));
    }
  }
  if (auto s = RunSql(db,
                      "INSERT INTO queue_schema (id, version) VALUES (1, ?) "
                      "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                      int64_t{kLatest});
      !s) {
    return s;
  }
  return txn->Commit();
}

// 128 random bits as 32 hex digits.
Result<std::string> NewLeaseToken() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return MakeError(ErrorCode::kInternal, "no random bytes for a lease token (OpenSSL RAND_bytes)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  token.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 0xf]);
  }
  return token;
}

std::string DescribeJob(const Job& job) {
  return "job " + std::to_string(job.id) + " (key \"" + job.dedup_key + "\")";
}

// The error for presenting `lease` when the job is now `current`.
Error LeaseLost(const Lease& lease, const Job& current) {
  std::string now;
  if (current.state == JobState::kLeased) {
    now = "was leased again by worker \"" + current.lease_owner + "\" (attempt " +
          std::to_string(current.attempts) + ")";
  } else {
    now = "is now " + std::string(JobStateName(current.state));
  }
  return Error(ErrorCode::kFailedPrecondition,
               "lease lost: " + DescribeJob(current) + " leased by worker \"" +
                   lease.job.lease_owner + "\" " + now);
}

}  // namespace

// ------------------------------------------------------------------- Open

int SqliteJobQueue::SchemaVersion() { return static_cast<int>(kMigrations.size()); }

Result<std::unique_ptr<SqliteJobQueue>> SqliteJobQueue::Open(const std::filesystem::path& path,
                                                             const QueueOptions& options) {
  const std::string context = "opening job queue " + path.string();
  if (options.busy_timeout_ms < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     context + ": busy_timeout_ms must be >= 0, got " +
                         std::to_string(options.busy_timeout_ms));
  }
  if (path != ":memory:" && path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return MakeError(ErrorCode::kIoError, context + ": creating folder " +
                                                path.parent_path().string() + ": " + ec.message());
    }
  }
  store::OpenOptions open_options;
  open_options.busy_timeout_ms = options.busy_timeout_ms;
  auto db = Database::Open(path, open_options);
  if (!db) return std::unexpected(db.error().Wrap(context));
  // Durable commits: a job acknowledged to its producer survives a power cut.
  if (auto s = db->Exec("PRAGMA synchronous=FULL"); !s) {
    return std::unexpected(s.error().Wrap(context));
  }
  if (auto s = MigrateSchema(*db); !s) return std::unexpected(s.error().Wrap(context));
  return std::make_unique<SqliteJobQueue>(PrivateTag{}, std::move(*db), options);
}

SqliteJobQueue::SqliteJobQueue(PrivateTag, Database db, const QueueOptions& options)
    : options_(options), db_(std::move(db)) {}

int64_t SqliteJobQueue::Now() const {
  return options_.now_ms ? options_.now_ms() : UnixMillisNow();
}

// ---------------------------------------------------------------- Enqueue

Result<EnqueueResult> SqliteJobQueue::Enqueue(const JobSpec& spec) {
  const std::string context = "enqueueing job \"" + spec.dedup_key + "\"";
  auto invalid = [&](const std::string& what) {
    return MakeError(ErrorCode::kInvalidArgument, context + ": " + what);
  };
  if (spec.kind.empty()) return invalid("a job kind is required");
  if (spec.dedup_key.empty()) return invalid("a dedup_key is required");
  if (spec.max_attempts < 1) {
    return invalid("max_attempts must be >= 1, got " + std::to_string(spec.max_attempts));
  }
  std::string payload;
  try {
    payload = spec.payload.dump();
  } catch (const nlohmann::json::exception& e) {
    return invalid(std::string("payload cannot be stored as JSON: ") + e.what());
  }
  auto fail = [&](const Error& error) { return std::unexpected(error.Wrap(context)); };

  std::lock_guard lock(mutex_);
  const int64_t now = Now();
  auto txn = Transaction::Begin(db_, Transaction::Mode::kImmediate);
  if (!txn) return fail(txn.error());
  auto existing = SelectByKey(db_, spec.dedup_key);
  if (!existing) return fail(existing.error());
  if (existing->has_value()) {
    if (auto s = txn->Commit(); !s) return fail(s.error());
    return EnqueueResult{std::move(**existing), false};
  }
  if (auto s = RunSql(db_,
                      "INSERT INTO queue_jobs (kind, dedup_key, payload, state, max_attempts, "
                      "not_before_ms, created_ms, updated_ms) "
                      "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                      std::string_view(spec.kind), std::string_view(spec.dedup_key),
                      std::string_view(payload), int64_t{spec.max_attempts}, now, now, now);
      !s) {
    return fail(s.error());
  }
  auto job = SelectById(db_, db_.LastInsertRowId());
  if (!job) return fail(job.error());
  if (!job->has_value()) {
    return fail(Error(ErrorCode::kInternal, "the inserted job is not in the table"));
  }
  if (auto s = txn->Commit(); !s) return fail(s.error());
  return EnqueueResult{std::move(**job), true};
}

// ------------------------------------------------------------------ Lease

Result<std::optional<Lease>> SqliteJobQueue::Lease(std::string_view worker_id,
                                                   std::chrono::milliseconds visibility,
                                                   std::span<const std::string> kinds) {
  const std::string context = "leasing a job for worker \"" + std::string(worker_id) + "\"";
  if (worker_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "leasing a job: a worker id is required");
  }
  if (visibility.count() <= 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     context + ": the visibility timeout must be > 0 ms, got " +
                         std::to_string(visibility.count()));
  }
  auto token = NewLeaseToken();
  if (!token) return std::unexpected(token.error().Wrap(context));
  auto fail = [&](const Error& error) { return std::unexpected(error.Wrap(context)); };

  std::lock_guard lock(mutex_);
  const int64_t now = Now();
  auto txn = Transaction::Begin(db_, Transaction::Mode::kImmediate);
  if (!txn) return fail(txn.error());

  // Settle expired leases that must not be leased again (every kind: this is
  // housekeeping of the whole queue, and the result only depends on time).
  if (auto s = RunSql(db_,
                      "UPDATE queue_jobs SET state = 'cancelled', lease_token = '', "
                      "lease_expires_ms = 0, lease_expiries = lease_expiries + 1, "
                      "last_error = 'cancelled after the lease of worker \"' || lease_owner || "
                      "'\" expired', updated_ms = ?1 "
                      "WHERE state = 'leased' AND lease_expires_ms <= ?1 AND cancel_requested = 1",
                      now);
      !s) {
    return fail(s.error());
  }
  if (auto s = RunSql(db_,
                      "UPDATE queue_jobs SET state = 'dead', lease_token = '', "
                      "lease_expires_ms = 0, lease_expiries = lease_expiries + 1, "
                      "last_error = 'lease expired ' || (lease_expiries + 1) || "
                      "CASE WHEN lease_expiries = 0 THEN ' time' ELSE ' times' END || "
                      "' (last held by worker \"' || lease_owner || '\"); all ' || max_attempts || "
                      "' attempts used', updated_ms = ?1 "
                      "WHERE state = 'leased' AND lease_expires_ms <= ?1 AND cancel_requested = 0 "
                      "AND attempts >= max_attempts",
                      now);
      !s) {
    return fail(s.error());
  }

  // Parameter 1 is now; the kinds, if any, are 2, 3, ...
  std::string sql = "SELECT id FROM queue_jobs WHERE " + std::string(kActive) +
                    " AND ((state = 'queued' AND not_before_ms <= ?1) OR "
                    "(state = 'leased' AND lease_expires_ms <= ?1))";
  if (!kinds.empty()) {
    sql += " AND kind IN (";
    for (size_t i = 0; i < kinds.size(); ++i) {
      sql += (i == 0 ? "?" : ", ?") + std::to_string(i + 2);
    }
    sql += ")";
  }
  sql += " ORDER BY id LIMIT 1";
  auto select = PrepareBound(db_, sql, now);
  if (!select) return fail(select.error());
  for (size_t i = 0; i < kinds.size(); ++i) {
    if (auto s = select->BindText(static_cast<int>(i) + 2, kinds[i]); !s) return fail(s.error());
  }
  auto row = select->Step();
  if (!row) return fail(row.error());
  if (!*row) {
    if (auto s = txn->Commit(); !s) return fail(s.error());
    return std::optional<queue::Lease>();
  }
  const int64_t id = select->ColumnInt64(0);

  // A job taken over from a silent worker records why its attempt ended.
  if (auto s = RunSql(db_,
                      "UPDATE queue_jobs SET "
                      "lease_expiries = lease_expiries + (state = 'leased'), "
                      "last_error = CASE WHEN state = 'leased' THEN 'lease of worker \"' || "
                      "lease_owner || '\" expired on attempt ' || attempts ELSE last_error END, "
                      "state = 'leased', attempts = attempts + 1, lease_owner = ?1, "
                      "lease_token = ?2, lease_expires_ms = ?3, updated_ms = ?4 WHERE id = ?5",
                      worker_id, std::string_view(*token), now + visibility.count(), now, id);
      !s) {
    return fail(s.error());
  }
  auto job = SelectById(db_, id);
  if (!job) return fail(job.error());
  if (!job->has_value()) return fail(Error(ErrorCode::kInternal, "the leased job vanished"));
  if (auto s = txn->Commit(); !s) return fail(s.error());
  return std::optional<queue::Lease>(queue::Lease{std::move(**job), std::move(*token)});
}

// -------------------------------------------------------------- Heartbeat

namespace {

// Reads the job `lease` is for, inside the caller's transaction, and checks
// that the lease is still held. REQUIRES: an IMMEDIATE transaction on `db`.
Result<Job> CheckLease(Database& db, const Lease& lease) {
  auto stmt = PrepareBound(
      db, "SELECT " + std::string(kJobColumns) + " FROM queue_jobs WHERE id = ?", lease.job.id);
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  if (!*row) {
    return MakeError(ErrorCode::kNotFound, "job " + std::to_string(lease.job.id) +
                                               " is not in job queue " + db.path().string());
  }
  auto job = ReadJob(*stmt, db.path());
  if (!job) return std::unexpected(job.error());
  if (job->state != JobState::kLeased || stmt->ColumnText(kTokenColumn) != lease.token) {
    return std::unexpected(LeaseLost(lease, *job));
  }
  return job;
}

}  // namespace

Result<HeartbeatReply> SqliteJobQueue::Heartbeat(const queue::Lease& lease,
                                                 std::chrono::milliseconds visibility) {
  const std::string context = "heartbeat for " + DescribeJob(lease.job);
  if (visibility.count() <= 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     context + ": the visibility timeout must be > 0 ms, got " +
                         std::to_string(visibility.count()));
  }
  auto fail = [&](const Error& error) { return std::unexpected(error.Wrap(context)); };
  std::lock_guard lock(mutex_);
  const int64_t now = Now();
  auto txn = Transaction::Begin(db_, Transaction::Mode::kImmediate);
  if (!txn) return fail(txn.error());
  auto job = CheckLease(db_, lease);
  if (!job) return fail(job.error());
  const int64_t expires = now + visibility.count();
  if (auto s = RunSql(db_, "UPDATE queue_jobs SET lease_expires_ms = ?, updated_ms = ? WHERE id = ?",
                      expires, now, job->id);
      !s) {
    return fail(s.error());
  }
  if (auto s = txn->Commit(); !s) return fail(s.error());
  return HeartbeatReply{expires, job->cancel_requested};
}

// ------------------------------------------------------ Ack / Nak / Term

Status SqliteJobQueue::Ack(const queue::Lease& lease) {
  return SettleLease(lease, Settle::kAck, "", std::nullopt);
}

Status SqliteJobQueue::Nak(const queue::Lease& lease, std::string_view error,
                           std::optional<std::chrono::milliseconds> delay) {
  if (delay && delay->count() < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "nak of " + DescribeJob(lease.job) + ": the delay must be >= 0 ms, got " +
                         std::to_string(delay->count()));
  }
  return SettleLease(lease, Settle::kNak, error, delay);
}

Status SqliteJobQueue::Term(const queue::Lease& lease, std::string_view error) {
  return SettleLease(lease, Settle::kTerm, error, std::nullopt);
}

Status SqliteJobQueue::Release(const queue::Lease& lease) {
  return SettleLease(lease, Settle::kRelease, {}, std::nullopt);
}

Status SqliteJobQueue::SettleLease(const queue::Lease& lease, Settle how, std::string_view error,
                                   std::optional<std::chrono::milliseconds> delay) {
  static constexpr std::array<std::string_view, 4> kVerbs = {"ack", "nak", "term", "release"};
  const std::string context =
      std::string(kVerbs[static_cast<size_t>(how)]) + " of " + DescribeJob(lease.job);
  auto fail = [&](const Error& e) { return std::unexpected(e.Wrap(context)); };
  const std::string reason = error.empty() ? "failed (no reason given)" : std::string(error);

  std::lock_guard lock(mutex_);
  const int64_t now = Now();
  auto txn = Transaction::Begin(db_, Transaction::Mode::kImmediate);
  if (!txn) return fail(txn.error());
  auto job = CheckLease(db_, lease);
  if (!job) return fail(job.error());

  JobState next = JobState::kDone;
  std::string last_error = job->last_error;
  int64_t not_before = job->not_before_ms;
  int attempts = job->attempts;
  switch (how) {
    case Settle::kRelease:
      next = job->cancel_requested ? JobState::kCancelled : JobState::kQueued;
      not_before = now;
      attempts = std::max(0, attempts - 1);
      break;
    case Settle::kAck:
      break;
    case Settle::kTerm:
      next = JobState::kDead;
      last_error = reason;
      break;
    case Settle::kNak:
      last_error = reason;
      if (job->cancel_requested) {
        next = JobState::kCancelled;
      } else if (job->attempts >= job->max_attempts) {
        next = JobState::kDead;
      } else {
        next = JobState::kQueued;
        not_before = now + (delay ? *delay : options_.backoff.DelayForAttempt(job->attempts)).count();
      }
      break;
  }
  if (auto s = RunSql(db_,
                      "UPDATE queue_jobs SET state = ?, last_error = ?, not_before_ms = ?, attempts = ?, "
                      "lease_token = '', lease_expires_ms = 0, updated_ms = ? WHERE id = ?",
                      JobStateName(next), std::string_view(last_error), not_before, attempts, now,
                      job->id);
      !s) {
    return fail(s.error());
  }
  if (auto s = txn->Commit(); !s) return fail(s.error());
  return Ok();
}

// ---------------------------------------------------------- RequestCancel

Result<bool> SqliteJobQueue::RequestCancel(std::string_view dedup_key) {
  const std::string context = "cancelling job \"" + std::string(dedup_key) + "\"";
  auto fail = [&](const Error& e) { return std::unexpected(e.Wrap(context)); };
  std::lock_guard lock(mutex_);
  const int64_t now = Now();
  auto txn = Transaction::Begin(db_, Transaction::Mode::kImmediate);
  if (!txn) return fail(txn.error());
  auto job = SelectByKey(db_, dedup_key);
  if (!job) return fail(job.error());
  if (!job->has_value()) return false;
  const Job& j = **job;
  std::string_view next;
  if (j.state == JobState::kQueued) {
    next = "cancelled";
  } else if (j.state == JobState::kLeased) {
    // Nobody holds an expired lease: cancel at once rather than wait for the
    // next Lease() to notice.
    next = j.lease_expires_ms <= now ? "cancelled" : "leased";
  } else {
    return false;
  }
  if (auto s = RunSql(db_,
                      "UPDATE queue_jobs SET state = ?1, cancel_requested = 1, updated_ms = ?2, "
                      "lease_token = CASE WHEN ?1 = 'leased' THEN lease_token ELSE '' END, "
                      "lease_expires_ms = CASE WHEN ?1 = 'leased' THEN lease_expires_ms ELSE 0 END "
                      "WHERE id = ?3",
                      next, now, j.id);
      !s) {
    return fail(s.error());
  }
  if (auto s = txn->Commit(); !s) return fail(s.error());
  return true;
}

// ------------------------------------------------------------------ Reads

Result<std::optional<Job>> SqliteJobQueue::Get(int64_t id) {
  std::lock_guard lock(mutex_);
  auto job = SelectById(db_, id);
  if (!job) return std::unexpected(job.error().Wrap("reading job " + std::to_string(id)));
  return job;
}

Result<std::optional<Job>> SqliteJobQueue::GetByKey(std::string_view dedup_key) {
  std::lock_guard lock(mutex_);
  auto job = SelectByKey(db_, dedup_key);
  if (!job) {
    return std::unexpected(job.error().Wrap("reading job \"" + std::string(dedup_key) + "\""));
  }
  return job;
}

Result<std::vector<Job>> SqliteJobQueue::List(std::optional<JobState> state, int limit) {
  const std::string context = "listing jobs";
  if (limit < 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     context + ": limit must be >= 1, got " + std::to_string(limit));
  }
  auto fail = [&](const Error& e) { return std::unexpected(e.Wrap(context)); };
  std::lock_guard lock(mutex_);
  std::string sql = "SELECT " + std::string(kJobColumns) + " FROM queue_jobs";
  auto stmt = state ? PrepareBound(db_, sql + " WHERE state = ? ORDER BY id DESC LIMIT ?",
                                   JobStateName(*state), int64_t{limit})
                    : PrepareBound(db_, sql + " ORDER BY id DESC LIMIT ?", int64_t{limit});
  if (!stmt) return fail(stmt.error());
  std::vector<Job> jobs;
  while (true) {
    auto job = StepJob(*stmt, db_.path());
    if (!job) return fail(job.error());
    if (!job->has_value()) break;
    jobs.push_back(std::move(**job));
  }
  return jobs;
}

Result<QueueCounts> SqliteJobQueue::Counts() {
  auto fail = [](const Error& e) { return std::unexpected(e.Wrap("counting jobs")); };
  std::lock_guard lock(mutex_);
  auto stmt = db_.Prepare(
      "SELECT state, COUNT(*), SUM(attempts > 0) FROM queue_jobs GROUP BY state");
  if (!stmt) return fail(stmt.error());
  QueueCounts counts;
  while (true) {
    auto row = stmt->Step();
    if (!row) return fail(row.error());
    if (!*row) break;
    auto state = ParseJobState(stmt->ColumnText(0));
    if (!state) return fail(Error(ErrorCode::kCorruptData, "job queue " + db_.path().string() +
                                                               ": " + state.error().message()));
    const int64_t n = stmt->ColumnInt64(1);
    switch (*state) {
      case JobState::kQueued:
        counts.queued = n;
        counts.retrying = stmt->ColumnInt64(2);
        break;
      case JobState::kLeased: counts.leased = n; break;
      case JobState::kDone: counts.done = n; break;
      case JobState::kDead: counts.dead = n; break;
      case JobState::kCancelled: counts.cancelled = n; break;
    }
  }
  return counts;
}

Result<int> SqliteJobQueue::Requeue(int64_t id) {
  const std::string context = "requeueing job " + std::to_string(id);
  auto fail = [&](const Error& e) { return std::unexpected(e.Wrap(context)); };
  std::lock_guard lock(mutex_);
  const int64_t now = Now();
  auto txn = Transaction::Begin(db_, Transaction::Mode::kImmediate);
  if (!txn) return fail(txn.error());
  auto job = SelectById(db_, id);
  if (!job) return fail(job.error());
  if (!job->has_value()) {
    return MakeError(ErrorCode::kNotFound,
                     context + ": no such job in job queue " + db_.path().string());
  }
  if ((*job)->state != JobState::kDead) return 0;
  if (auto s = RunSql(db_,
                      "UPDATE queue_jobs SET state = 'queued', attempts = 0, lease_expiries = 0, "
                      "cancel_requested = 0, lease_token = '', lease_expires_ms = 0, "
                      "not_before_ms = ?, updated_ms = ? WHERE id = ?",
                      now, now, id);
      !s) {
    return fail(s.error());
  }
  if (auto s = txn->Commit(); !s) return fail(s.error());
  return 1;
}

}  // namespace earshot::queue
