// A thin RAII adapter over the SQLite C API: the only place in earshot that
// calls sqlite3_* functions.
//
// Database owns one connection, Statement one prepared statement, Transaction
// one BEGIN ... COMMIT span that rolls back unless committed. Every fallible
// call returns Status/Result; an Error names the database file, what was being
// done and SQLite's own message, e.g.
//   "sqlite database /var/lib/earshot/catalog.db: executing \"PRAGMA
//    journal_mode=WAL\": file is not a database"
// SQLite result codes map to ErrorCode as follows: CORRUPT/NOTADB ->
// kCorruptData, CANTOPEN/IOERR/READONLY/PERM -> kIoError, FULL/NOMEM/TOOBIG ->
// kResourceExhausted, BUSY/LOCKED -> kUnavailable, UNIQUE/PRIMARY KEY
// constraints -> kAlreadyExists, other constraints -> kInvalidArgument,
// anything else (SQL errors, misuse) -> kInternal.
//
// Thread safety: connections are opened in SQLite's multi-thread mode (no
// per-connection mutex). A Database, and every Statement and Transaction made
// from it, must be used by one thread at a time; callers that share a
// connection serialise access with their own mutex (see CatalogDb). Distinct
// Database objects, including ones on the same file, may be used concurrently;
// SQLite's file locks plus busy_timeout_ms arbitrate between them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

// Opaque SQLite handles (the real types from <sqlite3.h>), so that this header
// does not pull SQLite into its includers.
struct sqlite3;
struct sqlite3_stmt;

namespace earshot::store {

class Database;

namespace internal {
struct SqliteCloser {
  void operator()(sqlite3* db) const;
};
struct SqliteFinalizer {
  void operator()(sqlite3_stmt* stmt) const;
};
}  // namespace internal

// One prepared statement. Parameter indexes start at 1 (SQLite convention),
// column indexes at 0. Text and blob arguments are copied by SQLite, so the
// caller's buffers may go away right after Bind*().
//
// Lifetime: a Statement borrows its connection; destroy it before the
// Database it came from. Movable, not copyable.
class Statement {
 public:
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;
  ~Statement() = default;

  Status BindInt64(int index, int64_t value);
  Status BindDouble(int index, double value);
  Status BindText(int index, std::string_view value);
  Status BindBlob(int index, std::span<const uint8_t> value);
  Status BindNull(int index);

  // Advances to the next row: true when a row is available to the Column*()
  // accessors, false when the statement has finished.
  Result<bool> Step();

  // Steps until the statement finishes, ignoring any rows (INSERT, UPDATE...).
  Status Run();

  // Makes the statement runnable again and clears every binding.
  Status Reset();

  // Column accessors for the current row. REQUIRES: the last Step() returned
  // true and 0 <= column < ColumnCount(). NULL reads as 0, 0.0 or "".
  int ColumnCount() const;
  bool ColumnIsNull(int column) const;
  int64_t ColumnInt64(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  std::vector<uint8_t> ColumnBlob(int column) const;

  // The SQL text this statement was prepared from.
  std::string_view Sql() const;

 private:
  friend class Database;
  Statement(std::unique_ptr<sqlite3_stmt, internal::SqliteFinalizer> stmt, std::string db_path);

  // An Error for SQLite result code `rc` while doing `what`.
  Error MakeSqliteError(int rc, std::string_view what) const;

  std::unique_ptr<sqlite3_stmt, internal::SqliteFinalizer> stmt_;
  std::string db_path_;  // for error messages only
};

// How Database::Open configures a new connection.
struct OpenOptions {
  // Create the file when it does not exist (its folder must exist). When
  // false, a missing file is kNotFound.
  bool create_if_missing = true;
  // Write-ahead logging: readers do not block the writer and vice versa.
  // Ignored for ":memory:" databases.
  bool wal = true;
  // Enforce REFERENCES clauses (SQLite leaves them off by default).
  bool foreign_keys = true;
  // How long a statement waits for another connection's lock before failing
  // with kUnavailable, in milliseconds.
  int busy_timeout_ms = 5000;
};

// One SQLite connection. Movable, not copyable; closing happens in the
// destructor (statements still alive keep the connection open until they go).
class Database {
 public:
  // Opens (or creates) the database at `path` and applies `options`. The
  // special path ":memory:" opens a private in-memory database. Touches the
  // file, so a file that is not a SQLite database fails here with
  // kCorruptData naming `path`.
  static Result<Database> Open(const std::filesystem::path& path, const OpenOptions& options = {});

  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;
  ~Database() = default;

  // Runs one or more ';'-separated statements that return no rows needed by
  // the caller (DDL, PRAGMA, BEGIN...).
  Status Exec(std::string_view sql);

  // Compiles exactly one statement. Trailing text after it is an error.
  Result<Statement> Prepare(std::string_view sql);

  // The rowid of the most recent successful INSERT on this connection.
  int64_t LastInsertRowId() const;

  // Rows changed by the most recent INSERT, UPDATE or DELETE.
  int64_t Changes() const;

  // True outside an explicit transaction (SQLite's autocommit mode).
  bool InAutocommit() const;

  // PRAGMA user_version: the schema version the migrations have reached.
  Result<int> UserVersion();
  Status SetUserVersion(int version);

  const std::filesystem::path& path() const { return path_; }

  // An Error for SQLite result code `rc` while doing `what`, naming this
  // database and carrying SQLite's latest message for the connection.
  Error MakeSqliteError(int rc, std::string_view what) const;

 private:
  Database(std::unique_ptr<sqlite3, internal::SqliteCloser> db, std::filesystem::path path);
  Status Configure(const OpenOptions& options);

  std::unique_ptr<sqlite3, internal::SqliteCloser> db_;
  std::filesystem::path path_;
};

// A transaction on one Database: BEGIN at Begin(), COMMIT at Commit(), and
// ROLLBACK in the destructor when Commit() was not reached (early return on an
// error, exception). Movable, not copyable.
//
// Lifetime: borrows `db`, which must outlive the Transaction and must not be
// moved while it is open. Transactions do not nest.
class Transaction {
 public:
  enum class Mode {
    kDeferred,   // takes locks on first read/write
    kImmediate,  // takes the write lock now: use for read-modify-write, so a
                 // concurrent writer waits (busy timeout) instead of failing
    kExclusive,
  };

  static Result<Transaction> Begin(Database& db, Mode mode = Mode::kImmediate);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  // Makes the changes durable. After Commit() (successful or not) the
  // transaction is finished and the destructor does nothing more; a failed
  // COMMIT has been rolled back.
  Status Commit();

  // Undoes the changes now instead of in the destructor.
  Status Rollback();

 private:
  explicit Transaction(Database* db) : db_(db) {}

  Database* db_;  // null once finished; not owned
};

// One schema migration step. `version` numbers start at 1 and increase by one
// per step; a database at user_version N has applied steps 1..N.
struct Migration {
  int version = 0;
  std::string_view description;  // for error messages: "create tracks table"
  std::string_view sql;          // run with Database::Exec; may be empty
  // Optional code to run after `sql` (data migrations). Not owned.
  Status (*apply)(Database& db) = nullptr;
};

// Brings `db` up to the last step of `migrations`: in one IMMEDIATE
// transaction, reads user_version, applies every later step in order, sets
// user_version and commits. Applying to an up-to-date database changes
// nothing; a failing step rolls every step of this call back. A database whose
// user_version is above the last known step (written by a newer earshot) is
// kVersionMismatch.
// REQUIRES: migrations[i].version == i + 1.
Status ApplyMigrations(Database& db, std::span<const Migration> migrations);

}  // namespace earshot::store
