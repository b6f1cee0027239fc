#include "store/sqlite.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace earshot::store {
namespace {

using testing::TempDir;
using testing::WriteFile;

Database OpenOrDie(const std::filesystem::path& path) {
  auto db = Database::Open(path);
  EXPECT_TRUE(db.has_value()) << db.error().ToString();
  return std::move(*db);
}

int64_t QueryInt(Database& db, std::string_view sql) {
  auto stmt = db.Prepare(sql);
  EXPECT_TRUE(stmt.has_value()) << stmt.error().ToString();
  auto row = stmt->Step();
  EXPECT_TRUE(row.has_value() && *row) << sql;
  return stmt->ColumnInt64(0);
}

std::string QueryText(Database& db, std::string_view sql) {
  auto stmt = db.Prepare(sql);
  EXPECT_TRUE(stmt.has_value()) << stmt.error().ToString();
  auto row = stmt->Step();
  EXPECT_TRUE(row.has_value() && *row) << sql;
  return stmt->ColumnText(0);
}

TEST(SqliteTest, OpenConfiguresWalForeignKeysAndBusyTimeout) {
  TempDir dir;
  Database db = OpenOrDie(dir / "a.db");
  EXPECT_EQ(QueryText(db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryInt(db, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(QueryInt(db, "PRAGMA busy_timeout"), 5000);
  EXPECT_EQ(db.path(), dir / "a.db");
}

TEST(SqliteTest, MemoryDatabaseWorks) {
  Database db = OpenOrDie(":memory:");
  ASSERT_TRUE(db.Exec("CREATE TABLE t (x INTEGER)"));
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM t"), 0);
}

TEST(SqliteTest, TypedBindAndColumnRoundTrip) {
  Database db = OpenOrDie(":memory:");
  ASSERT_TRUE(db.Exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n TEXT)"));
  auto insert = db.Prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)");
  ASSERT_TRUE(insert) << insert.error().ToString();
  const std::vector<uint8_t> blob = {0, 1, 2, 255};
  const std::string text_with_nul("a\0b", 3);
  ASSERT_TRUE(insert->BindInt64(1, -(int64_t{1} << 40)));
  ASSERT_TRUE(insert->BindDouble(2, 2.5));
  ASSERT_TRUE(insert->BindText(3, text_with_nul));
  ASSERT_TRUE(insert->BindBlob(4, blob));
  ASSERT_TRUE(insert->BindNull(5));
  ASSERT_TRUE(insert->Run());
  EXPECT_EQ(db.LastInsertRowId(), 1);
  EXPECT_EQ(db.Changes(), 1);

  auto select = db.Prepare("SELECT i, d, s, b, n FROM t");
  ASSERT_TRUE(select);
  EXPECT_EQ(select->ColumnCount(), 5);
  auto row = select->Step();
  ASSERT_TRUE(row && *row);
  EXPECT_EQ(select->ColumnInt64(0), -(int64_t{1} << 40));
  EXPECT_DOUBLE_EQ(select->ColumnDouble(1), 2.5);
  EXPECT_EQ(select->ColumnText(2), text_with_nul);
  EXPECT_EQ(select->ColumnBlob(3), blob);
  EXPECT_TRUE(select->ColumnIsNull(4));
  EXPECT_EQ(select->ColumnText(4), "");
  row = select->Step();
  ASSERT_TRUE(row);
  EXPECT_FALSE(*row);
}

TEST(SqliteTest, ResetClearsBindingsAndAllowsReuse) {
  Database db = OpenOrDie(":memory:");
  ASSERT_TRUE(db.Exec("CREATE TABLE t (x INTEGER)"));
  auto insert = db.Prepare("INSERT INTO t VALUES (?)");
  ASSERT_TRUE(insert);
  for (int64_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE(insert->Reset());
    ASSERT_TRUE(insert->BindInt64(1, i));
    ASSERT_TRUE(insert->Run());
  }
  ASSERT_TRUE(insert->Reset());
  ASSERT_TRUE(insert->Run());  // unbound parameter = NULL
  EXPECT_EQ(QueryInt(db, "SELECT SUM(x) FROM t"), 6);
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM t WHERE x IS NULL"), 1);
}

TEST(SqliteTest, ErrorsCarryPathCodeAndSqliteMessage) {
  TempDir dir;
  Database db = OpenOrDie(dir / "e.db");
  auto bad = db.Prepare("SELEKT 1");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInternal);
  EXPECT_NE(bad.error().message().find((dir / "e.db").string()), std::string::npos);
  EXPECT_NE(bad.error().message().find("syntax error"), std::string::npos);
  EXPECT_NE(bad.error().message().find("SELEKT 1"), std::string::npos);

  ASSERT_TRUE(db.Exec("CREATE TABLE t (x INTEGER UNIQUE, y TEXT NOT NULL)"));
  ASSERT_TRUE(db.Exec("INSERT INTO t VALUES (1, 'a')"));
  auto dup = db.Exec("INSERT INTO t VALUES (1, 'b')");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(dup.error().message().find("UNIQUE constraint failed: t.x"), std::string::npos)
      << dup.error().message();

  auto stmt = db.Prepare("INSERT INTO t VALUES (2, NULL)");
  ASSERT_TRUE(stmt);
  auto null = stmt->Run();
  ASSERT_FALSE(null);
  EXPECT_EQ(null.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(null.error().message().find("NOT NULL constraint failed"), std::string::npos);
  EXPECT_NE(null.error().message().find((dir / "e.db").string()), std::string::npos);
}

TEST(SqliteTest, PrepareRejectsSecondStatement) {
  Database db = OpenOrDie(":memory:");
  auto two = db.Prepare("SELECT 1; SELECT 2");
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().code(), ErrorCode::kInternal);
  EXPECT_TRUE(db.Prepare("SELECT 1;  "));
}

TEST(SqliteTest, OpenMissingFileWithoutCreateIsNotFound) {
  TempDir dir;
  OpenOptions options;
  options.create_if_missing = false;
  auto db = Database::Open(dir / "missing.db", options);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(db.error().message().find("missing.db"), std::string::npos);
}

TEST(SqliteTest, OpenInMissingFolderIsIoError) {
  TempDir dir;
  auto db = Database::Open(dir / "no" / "such" / "folder.db");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kIoError);
  EXPECT_NE(db.error().message().find("folder.db"), std::string::npos);
}

TEST(SqliteTest, RandomBytesAreCorruptDataNamingThePath) {
  TempDir dir;
  std::mt19937 rng(7);
  std::string junk(8192, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  WriteFile(dir / "junk.db", junk);
  auto db = Database::Open(dir / "junk.db");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kCorruptData) << db.error().ToString();
  EXPECT_NE(db.error().message().find((dir / "junk.db").string()), std::string::npos);
  EXPECT_NE(db.error().message().find("not a database"), std::string::npos);
}

TEST(SqliteTest, TransactionRollsBackUnlessCommitted) {
  Database db = OpenOrDie(":memory:");
  ASSERT_TRUE(db.Exec("CREATE TABLE t (x INTEGER)"));
  {
    auto txn = Transaction::Begin(db);
    ASSERT_TRUE(txn);
    EXPECT_FALSE(db.InAutocommit());
    ASSERT_TRUE(db.Exec("INSERT INTO t VALUES (1)"));
  }  // destroyed without Commit
  EXPECT_TRUE(db.InAutocommit());
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM t"), 0);

  {
    auto txn = Transaction::Begin(db, Transaction::Mode::kDeferred);
    ASSERT_TRUE(txn);
    ASSERT_TRUE(db.Exec("INSERT INTO t VALUES (2)"));
    ASSERT_TRUE(txn->Commit());
    EXPECT_FALSE(txn->Commit());  // already finished
  }
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM t"), 1);

  auto txn = Transaction::Begin(db, Transaction::Mode::kExclusive);
  ASSERT_TRUE(txn);
  ASSERT_TRUE(db.Exec("INSERT INTO t VALUES (3)"));
  ASSERT_TRUE(txn->Rollback());
  EXPECT_TRUE(txn->Rollback());  // no-op once finished
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM t"), 1);
}

TEST(SqliteTest, MovedTransactionRollsBackOnce) {
  Database db = OpenOrDie(":memory:");
  ASSERT_TRUE(db.Exec("CREATE TABLE t (x INTEGER)"));
  {
    auto txn = Transaction::Begin(db);
    ASSERT_TRUE(txn);
    Transaction moved = std::move(*txn);
    ASSERT_TRUE(db.Exec("INSERT INTO t VALUES (1)"));
  }
  EXPECT_TRUE(db.InAutocommit());
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM t"), 0);
}

// ---------------------------------------------------------------- migrations

Status FillV3(Database& db) { return db.Exec("INSERT INTO c VALUES ('from code')"); }

constexpr std::array<Migration, 3> kSteps = {{
    {1, "create a", "CREATE TABLE a (x INTEGER)", nullptr},
    {2, "create b", "CREATE TABLE b (y TEXT)", nullptr},
    {3, "create and fill c", "CREATE TABLE c (z TEXT)", &FillV3},
}};

TEST(SqliteMigrationTest, AppliesStepsInOrderAndIsIdempotent) {
  TempDir dir;
  {
    Database db = OpenOrDie(dir / "m.db");
    EXPECT_EQ(db.UserVersion().value(), 0);
    ASSERT_TRUE(ApplyMigrations(db, std::span(kSteps).first(1)));
    EXPECT_EQ(db.UserVersion().value(), 1);
    ASSERT_TRUE(db.Exec("INSERT INTO a VALUES (42)"));
  }
  for (int round = 0; round < 2; ++round) {
    Database db = OpenOrDie(dir / "m.db");
    auto status = ApplyMigrations(db, kSteps);
    ASSERT_TRUE(status) << status.error().ToString();
    EXPECT_EQ(db.UserVersion().value(), 3);
    EXPECT_EQ(QueryInt(db, "SELECT x FROM a"), 42);
    EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM c"), 1);  // data step ran exactly once
    EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"), 3);
  }
}

TEST(SqliteMigrationTest, FailingStepRollsBackTheWholeBatch) {
  TempDir dir;
  Database db = OpenOrDie(dir / "m.db");
  constexpr std::array<Migration, 2> kBroken = {{
      {1, "create a", "CREATE TABLE a (x INTEGER)", nullptr},
      {2, "broken step", "CREATE TABLE b (", nullptr},
  }};
  auto status = ApplyMigrations(db, kBroken);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().message().find("migration 2 (broken step)"), std::string::npos)
      << status.error().message();
  EXPECT_EQ(db.UserVersion().value(), 0);
  EXPECT_EQ(QueryInt(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'a'"), 0);
  EXPECT_TRUE(db.InAutocommit());
}

TEST(SqliteMigrationTest, NewerDatabaseIsVersionMismatch) {
  TempDir dir;
  Database db = OpenOrDie(dir / "m.db");
  ASSERT_TRUE(db.SetUserVersion(9));
  auto status = ApplyMigrations(db, kSteps);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), ErrorCode::kVersionMismatch);
  EXPECT_NE(status.error().message().find("schema version 9"), std::string::npos);
  EXPECT_EQ(db.UserVersion().value(), 9);
}

}  // namespace
}  // namespace earshot::store
