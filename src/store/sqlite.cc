#include "store/sqlite.h"

#include <chrono>
#include <thread>

#include <sqlite3.h>

#include <cassert>
#include <limits>
#include <utility>

namespace earshot::store {
namespace internal {

void SqliteCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void SqliteFinalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

}  // namespace internal

namespace {

// Longest SQL excerpt quoted in an error message.
constexpr size_t kMaxQuotedSql = 80;

ErrorCode CodeFor(int rc) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return ErrorCode::kAlreadyExists;
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return ErrorCode::kCorruptData;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return ErrorCode::kIoError;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return ErrorCode::kResourceExhausted;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return ErrorCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return ErrorCode::kInvalidArgument;
    default:
      return ErrorCode::kInternal;
  }
}

std::string Quote(std::string_view sql) {
  std::string out = "\"";
  if (sql.size() > kMaxQuotedSql) {
    out.append(sql.substr(0, kMaxQuotedSql)).append("...");
  } else {
    out.append(sql);
  }
  out.append("\"");
  return out;
}

// Builds the error text. `detail` is SQLite's message for the connection when
// one exists, else the generic text for `rc`.
Error SqliteError(int rc, std::string_view db_path, std::string_view what, const char* detail) {
  std::string message = "sqlite database ";
  message.append(db_path).append(": ").append(what).append(": ");
  message.append(detail != nullptr ? detail : sqlite3_errstr(rc));
  return Error(CodeFor(rc), std::move(message));
}

const char* ModeSql(Transaction::Mode mode) {
  switch (mode) {
    case Transaction::Mode::kDeferred:
      return "BEGIN DEFERRED";
    case Transaction::Mode::kImmediate:
      return "BEGIN IMMEDIATE";
    case Transaction::Mode::kExclusive:
      return "BEGIN EXCLUSIVE";
  }
  return "BEGIN";
}

}  // namespace

// ---------------------------------------------------------------- Statement

Statement::Statement(std::unique_ptr<sqlite3_stmt, internal::SqliteFinalizer> stmt,
                     std::string db_path)
    : stmt_(std::move(stmt)), db_path_(std::move(db_path)) {}

Error Statement::MakeSqliteError(int rc, std::string_view what) const {
  std::string context(what);
  context.append(" ").append(Quote(Sql()));
  return SqliteError(rc, db_path_, context, sqlite3_errmsg(sqlite3_db_handle(stmt_.get())));
}

Status Statement::BindInt64(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_.get(), index, value);
  if (rc != SQLITE_OK) return std::unexpected(MakeSqliteError(rc, "binding parameter of"));
  return Ok();
}

Status Statement::BindDouble(int index, double value) {
  int rc = sqlite3_bind_double(stmt_.get(), index, value);
  if (rc != SQLITE_OK) return std::unexpected(MakeSqliteError(rc, "binding parameter of"));
  return Ok();
}

Status Statement::BindText(int index, std::string_view value) {
  // sqlite3_bind_text64 accepts a null pointer only for NULL; an empty view
  // may have one, so bind a real empty string instead.
  const char* data = value.data() != nullptr ? value.data() : "";
  int rc =
      sqlite3_bind_text64(stmt_.get(), index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return std::unexpected(MakeSqliteError(rc, "binding parameter of"));
  return Ok();
}

Status Statement::BindBlob(int index, std::span<const uint8_t> value) {
  int rc = value.empty() ? sqlite3_bind_zeroblob(stmt_.get(), index, 0)
                         : sqlite3_bind_blob64(stmt_.get(), index, value.data(), value.size(),
                                               SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) return std::unexpected(MakeSqliteError(rc, "binding parameter of"));
  return Ok();
}

Status Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_.get(), index);
  if (rc != SQLITE_OK) return std::unexpected(MakeSqliteError(rc, "binding parameter of"));
  return Ok();
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return std::unexpected(MakeSqliteError(rc, "executing"));
}

Status Statement::Run() {
  while (true) {
    auto row = Step();
    if (!row) return std::unexpected(std::move(row).error());
    if (!*row) return Ok();
  }
}

Status Statement::Reset() {
  // sqlite3_reset returns the error of the last step, which the caller has
  // already seen, so its result is not an error of the reset itself.
  sqlite3_reset(stmt_.get());
  int rc = sqlite3_clear_bindings(stmt_.get());
  if (rc != SQLITE_OK) return std::unexpected(MakeSqliteError(rc, "resetting"));
  return Ok();
}

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_.get()); }

bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

int64_t Statement::ColumnInt64(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}

double Statement::ColumnDouble(int column) const {
  return sqlite3_column_double(stmt_.get(), column);
}

std::string Statement::ColumnText(int column) const {
  // Call text before bytes, as the SQLite docs recommend.
  const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
  int size = sqlite3_column_bytes(stmt_.get(), column);
  if (text == nullptr || size <= 0) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

std::vector<uint8_t> Statement::ColumnBlob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_.get(), column);
  int size = sqlite3_column_bytes(stmt_.get(), column);
  if (blob == nullptr || size <= 0) return {};
  const auto* bytes = static_cast<const uint8_t*>(blob);
  return std::vector<uint8_t>(bytes, bytes + size);
}

std::string_view Statement::Sql() const {
  const char* sql = sqlite3_sql(stmt_.get());
  return sql != nullptr ? std::string_view(sql) : std::string_view();
}

// ----------------------------------------------------------------- Database

Database::Database(std::unique_ptr<sqlite3, internal::SqliteCloser> db, std::filesystem::path path)
    : db_(std::move(db)), path_(std::move(path)) {}

Result<Database> Database::Open(const std::filesystem::path& path, const OpenOptions& options) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  const std::string path_string = path.string();
  if (!options.create_if_missing && path_string != ":memory:" && !std::filesystem::exists(path)) {
    return MakeError(ErrorCode::kNotFound,
                     "sqlite database " + path_string + ": file does not exist");
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path_string.c_str(), &raw, flags, nullptr);
  // Even on failure SQLite usually returns a handle (carrying the message)
  // that must be closed.
  std::unique_ptr<sqlite3, internal::SqliteCloser> handle(raw);
  if (rc != SQLITE_OK) {
    return std::unexpected(
        SqliteError(rc, path_string, "opening", handle ? sqlite3_errmsg(handle.get()) : nullptr));
  }
  sqlite3_extended_result_codes(handle.get(), 1);
  Database db(std::move(handle), path);
  if (auto status = db.Configure(options); !status) return std::unexpected(status.error());
  return db;
}

Status Database::Configure(const OpenOptions& options) {
  int rc = sqlite3_busy_timeout(db_.get(), options.busy_timeout_ms);
  if (rc != SQLITE_OK) return std::unexpected(MakeSqliteError(rc, "setting busy_timeout"));
  if (options.wal && path_.string() != ":memory:") {
    // journal_mode answers with the mode in effect; a file system without
    // shared memory support keeps the old one, which still works (slower).
    // Switching to WAL takes an exclusive lock and SQLite may answer BUSY at
    // once, without its busy handler, while another process or thread
    // creates the same new file: retry for up to busy_timeout_ms.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.busy_timeout_ms);
    for (;;) {
      auto stmt = Prepare("PRAGMA journal_mode=WAL");
      Status status = stmt ? stmt->Run() : Status(std::unexpected(stmt.error()));
      if (status) break;
      if (status.error().code() != ErrorCode::kUnavailable || std::chrono::steady_clock::now() >= deadline) {
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } else {
    // Still read the file now, so a damaged one is reported by Open().
    auto stmt = Prepare("PRAGMA schema_version");
    if (!stmt) return std::unexpected(stmt.error());
    if (auto status = stmt->Run(); !status) return status;
  }
  if (options.foreign_keys) {
    if (auto status = Exec("PRAGMA foreign_keys=ON"); !status) return status;
  }
  return Ok();
}

Error Database::MakeSqliteError(int rc, std::string_view what) const {
  return SqliteError(rc, path_.string(), what, db_ ? sqlite3_errmsg(db_.get()) : nullptr);
}

Status Database::Exec(std::string_view sql) {
  // sqlite3_exec needs a NUL-terminated string.
  const std::string text(sql);
  char* raw_message = nullptr;
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &raw_message);
  std::unique_ptr<char, decltype(&sqlite3_free)> message(raw_message, &sqlite3_free);
  if (rc != SQLITE_OK) {
    return std::unexpected(
        SqliteError(rc, path_.string(), "executing " + Quote(sql), message.get()));
  }
  return Ok();
}

Result<Statement> Database::Prepare(std::string_view sql) {
  if (sql.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "sqlite database " + path_.string() + ": SQL text too long");
  }
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, &tail);
  std::unique_ptr<sqlite3_stmt, internal::SqliteFinalizer> stmt(raw);
  if (rc != SQLITE_OK) return std::unexpected(MakeSqliteError(rc, "preparing " + Quote(sql)));
  if (stmt == nullptr) {
    return MakeError(ErrorCode::kInternal, "sqlite database " + path_.string() + ": preparing " +
                                               Quote(sql) + ": no statement in the text");
  }
  std::string_view rest = sql.substr(static_cast<size_t>(tail - sql.data()));
  if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    return MakeError(ErrorCode::kInternal, "sqlite database " + path_.string() + ": preparing " +
                                               Quote(sql) + ": more than one statement");
  }
  return Statement(std::move(stmt), path_.string());
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_.get()); }

int64_t Database::Changes() const { return sqlite3_changes64(db_.get()); }

bool Database::InAutocommit() const { return sqlite3_get_autocommit(db_.get()) != 0; }

Result<int> Database::UserVersion() {
  auto stmt = Prepare("PRAGMA user_version");
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  if (!*row) {
    return MakeError(ErrorCode::kInternal,
                     "sqlite database " + path_.string() + ": PRAGMA user_version returned no row");
  }
  return static_cast<int>(stmt->ColumnInt64(0));
}

Status Database::SetUserVersion(int version) {
  // PRAGMA arguments cannot be bound parameters.
  return Exec("PRAGMA user_version=" + std::to_string(version));
}

// -------------------------------------------------------------- Transaction

Result<Transaction> Transaction::Begin(Database& db, Mode mode) {
  if (auto status = db.Exec(ModeSql(mode)); !status) return std::unexpected(status.error());
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  // Nothing can report a failure from here; SQLite rolls back on close anyway.
  if (db_ != nullptr) (void)Rollback();
}

Status Transaction::Commit() {
  Database* db = std::exchange(db_, nullptr);
  if (db == nullptr) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "commit of a transaction that is already finished");
  }
  auto status = db->Exec("COMMIT");
  if (!status && !db->InAutocommit()) (void)db->Exec("ROLLBACK");
  return status;
}

Status Transaction::Rollback() {
  Database* db = std::exchange(db_, nullptr);
  if (db == nullptr) return Ok();
  // Some errors (SQLITE_FULL, IOERR, BUSY in COMMIT...) make SQLite roll the
  // transaction back by itself; a second ROLLBACK would then fail.
  if (db->InAutocommit()) return Ok();
  return db->Exec("ROLLBACK");
}

// --------------------------------------------------------------- Migrations

Status ApplyMigrations(Database& db, std::span<const Migration> migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    assert(migrations[i].version == static_cast<int>(i) + 1 && "migration versions must be 1..N");
  }
  const int latest = static_cast<int>(migrations.size());
  auto txn = Transaction::Begin(db, Transaction::Mode::kImmediate);
  if (!txn) return std::unexpected(txn.error().Wrap("migrating schema"));
  auto current = db.UserVersion();
  if (!current) return std::unexpected(current.error().Wrap("migrating schema"));
  if (*current > latest) {
    return MakeError(ErrorCode::kVersionMismatch,
                     "sqlite database " + db.path().string() + ": schema version " +
                         std::to_string(*current) + " is newer than the latest this build knows (" +
                         std::to_string(latest) + "); it was written by a newer earshot");
  }
  if (*current == latest) return txn->Commit();
  for (int v = *current + 1; v <= latest; ++v) {
    const Migration& step = migrations[static_cast<size_t>(v - 1)];
    const std::string context = "applying schema migration " + std::to_string(v) + " (" +
                                std::string(step.description) + ")";
    if (!step.sql.empty()) {
      if (auto status = db.Exec(step.sql); !status) {
        return std::unexpected(status.error().Wrap(context));
      }
    }
    if (step.apply != nullptr) {
      if (auto status = step.apply(db); !status)
        return std::unexpected(status.error().Wrap(context));
    }
  }
  if (auto status = db.SetUserVersion(latest); !status) {
    return std::unexpected(status.error().Wrap("migrating schema"));
  }
  if (auto status = txn->Commit(); !status) {
    return std::unexpected(status.error().Wrap("migrating schema"));
  }
  return Ok();
}

}  // namespace earshot::store
