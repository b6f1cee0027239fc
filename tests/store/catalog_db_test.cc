#include "store/catalog_db.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite.h"
#include "temp_dir.h"

namespace earshot::store {
namespace {

using testing::TempDir;
using testing::WriteFile;

// A distinct, valid digest per n.
std::string Sha(int n) {
  std::string hex = std::to_string(n);
  return std::string(64 - hex.size(), '0') + hex;
}

CatalogEntry MakeEntry(std::string title, BusinessRule rule = BusinessRule::kTrack,
                       MediaKind kind = MediaKind::kAudio) {
  CatalogEntry entry;
  entry.kind = kind;
  entry.source = "/refs/" + title + ".flac";
  entry.metadata.title = std::move(title);
  entry.rule = rule;
  entry.duration_s = 180.5;
  entry.added_at_unix_ms = 1'700'000'000'000;
  entry.algorithm_version = 1;
  return entry;
}

// Builds a ListFilter one field at a time (designated initializers that skip
// fields trip -Wmissing-field-initializers).
struct Filter {
  Filter& Rule(BusinessRule r) {
    f.rule = r;
    return *this;
  }
  Filter& Kind(MediaKind k) {
    f.kind = k;
    return *this;
  }
  Filter& Text(std::string t) {
    f.text = std::move(t);
    return *this;
  }
  Filter& Limit(size_t n) {
    f.limit = n;
    return *this;
  }
  Filter& Offset(size_t n) {
    f.offset = n;
    return *this;
  }
  operator const CatalogDb::ListFilter&() const { return f; }  // NOLINT: implicit on purpose
  CatalogDb::ListFilter f;
};

class CatalogDbTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    db_.reset();
    auto db = CatalogDb::Open(path());
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
  }

  TrackId InsertOrDie(CatalogEntry entry) {
    auto id = db_->Insert(std::move(entry));
    EXPECT_TRUE(id) << id.error().ToString();
    return id.value_or(0);
  }

  std::vector<TrackId> ListIds(const CatalogDb::ListFilter& filter) {
    auto entries = db_->List(filter);
    EXPECT_TRUE(entries) << entries.error().ToString();
    std::vector<TrackId> ids;
    if (entries) {
      for (const CatalogEntry& e : *entries) ids.push_back(e.id);
    }
    return ids;
  }

  std::filesystem::path path() const { return dir_ / "catalog" / "catalog.db"; }

  TempDir dir_;
  std::unique_ptr<CatalogDb> db_;
};

TEST_F(CatalogDbTest, OpenCreatesTheFolderAndFile) {
  EXPECT_TRUE(std::filesystem::exists(path()));
  EXPECT_EQ(db_->path(), path());
}

TEST_F(CatalogDbTest, InsertThenGetRoundTripsEveryField) {
  CatalogEntry entry = MakeEntry("Song", BusinessRule::kMute, MediaKind::kVideo);
  entry.content_sha256 = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
  entry.metadata.artist = "Artist";
  entry.metadata.rights_holder = "Label Ltd";
  entry.metadata.isrc = "us-rc1-76-07839";
  entry.metadata.tags = {{"album", "First"}, {"year", "2001"}, {"empty", ""}};
  entry.id = 999;  // ignored

  TrackId id = InsertOrDie(entry);
  EXPECT_EQ(id, 1u);
  auto got = db_->Get(id);
  ASSERT_TRUE(got) << got.error().ToString();

  CatalogEntry expected = entry;
  expected.id = id;
  expected.metadata.isrc = "USRC17607839";
  expected.content_sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(*got, expected);
}

TEST_F(CatalogDbTest, InsertStampsTheCurrentTimeWhenUnset) {
  CatalogEntry entry = MakeEntry("Now");
  entry.added_at_unix_ms = 0;
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  TrackId id = InsertOrDie(entry);
  const int64_t stamped = db_->Get(id).value().added_at_unix_ms;
  EXPECT_GE(stamped, before);
  EXPECT_LT(stamped, before + 60'000);
}

TEST_F(CatalogDbTest, GetMissingIsNotFoundNamingTheId) {
  auto got = db_->Get(4242);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(got.error().message().find("4242"), std::string::npos) << got.error().message();
}

TEST_F(CatalogDbTest, InsertValidatesMetadata) {
  struct Case {
    const char* name;
    void (*mutate)(CatalogEntry&);
    const char* message_part;
  };
  const Case cases[] = {
      {"empty title", [](CatalogEntry& e) { e.metadata.title = ""; }, "title is required"},
      {"blank title", [](CatalogEntry& e) { e.metadata.title = "  \t"; }, "title is required"},
      {"bad isrc", [](CatalogEntry& e) { e.metadata.isrc = "XX123"; }, "invalid ISRC \"XX123\""},
      {"bad sha", [](CatalogEntry& e) { e.content_sha256 = "abc"; }, "invalid SHA-256"},
      {"empty tag key", [](CatalogEntry& e) { e.metadata.tags[""] = "v"; }, "empty key"},
      {"negative duration", [](CatalogEntry& e) { e.duration_s = -1; }, "duration"},
      {"nan duration",
       [](CatalogEntry& e) { e.duration_s = std::numeric_limits<double>::quiet_NaN(); },
       "duration"},
  };
  for (const Case& c : cases) {
    CatalogEntry entry = MakeEntry("Valid");
    c.mutate(entry);
    auto id = db_->Insert(entry);
    ASSERT_FALSE(id) << c.name;
    EXPECT_EQ(id.error().code(), ErrorCode::kInvalidArgument) << c.name;
    EXPECT_NE(id.error().message().find(c.message_part), std::string::npos)
        << c.name << ": " << id.error().message();
    EXPECT_NE(id.error().message().find("/refs/Valid.flac"), std::string::npos) << c.name;
  }
  EXPECT_EQ(db_->GetStats().value().tracks, 0u);
}

TEST_F(CatalogDbTest, DuplicateContentIsAlreadyExistsNamingTheFirstTrack) {
  CatalogEntry first = MakeEntry("First");
  first.content_sha256 = Sha(1);
  TrackId id = InsertOrDie(first);
  CatalogEntry second = MakeEntry("Second");
  second.content_sha256 = Sha(1);
  auto dup = db_->Insert(second);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(dup.error().message().find("track " + std::to_string(id)), std::string::npos)
      << dup.error().message();
  EXPECT_NE(dup.error().message().find("/refs/First.flac"), std::string::npos);
  // Entries without a digest never collide.
  InsertOrDie(MakeEntry("NoDigest1"));
  InsertOrDie(MakeEntry("NoDigest2"));
}

TEST_F(CatalogDbTest, FindBySha256) {
  CatalogEntry entry = MakeEntry("Hashed");
  entry.content_sha256 = Sha(7);
  entry.metadata.tags = {{"k", "v"}};
  TrackId id = InsertOrDie(entry);

  auto found = db_->FindBySha256(Sha(7));
  ASSERT_TRUE(found) << found.error().ToString();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, id);
  EXPECT_EQ((*found)->metadata.tags.at("k"), "v");

  std::string upper = Sha(7);
  upper[0] = 'A';  // a different digest, in uppercase
  auto missing = db_->FindBySha256(upper);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());

  auto invalid = db_->FindBySha256("xyz");
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(CatalogDbTest, FindBySha256IgnoresCase) {
  CatalogEntry entry = MakeEntry("Case");
  entry.content_sha256 = std::string(64, 'c');
  TrackId id = InsertOrDie(entry);
  auto found = db_->FindBySha256(std::string(64, 'C'));
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->id, id);
}

TEST_F(CatalogDbTest, ListFiltersCombinePagesAndLoadTags) {
  CatalogEntry a = MakeEntry("Blue Monday", BusinessRule::kBlock);
  a.metadata.artist = "New Order";
  a.metadata.tags = {{"genre", "synth"}};
  CatalogEntry b = MakeEntry("Love Will Tear Us Apart", BusinessRule::kMute);
  b.metadata.artist = "Joy Division";
  b.metadata.rights_holder = "Factory Records";
  CatalogEntry c = MakeEntry("Temptation", BusinessRule::kBlock, MediaKind::kVideo);
  c.metadata.artist = "New Order";
  c.metadata.rights_holder = "Factory Records";
  CatalogEntry d = MakeEntry("100% Pure_Love", BusinessRule::kAllow);
  const TrackId ia = InsertOrDie(a), ib = InsertOrDie(b), ic = InsertOrDie(c), id = InsertOrDie(d);

  EXPECT_EQ(ListIds(Filter()), (std::vector<TrackId>{ia, ib, ic, id}));
  EXPECT_EQ(ListIds(Filter().Rule(BusinessRule::kBlock)), (std::vector<TrackId>{ia, ic}));
  EXPECT_EQ(ListIds(Filter().Rule(BusinessRule::kTrack)), std::vector<TrackId>{});
  EXPECT_EQ(ListIds(Filter().Kind(MediaKind::kVideo)), std::vector<TrackId>{ic});
  EXPECT_EQ(ListIds(Filter().Rule(BusinessRule::kBlock).Kind(MediaKind::kAudio)),
            std::vector<TrackId>{ia});
  // Text matches title, artist or rights holder, ignoring ASCII case.
  EXPECT_EQ(ListIds(Filter().Text("new order")), (std::vector<TrackId>{ia, ic}));
  EXPECT_EQ(ListIds(Filter().Text("FACTORY")), (std::vector<TrackId>{ib, ic}));
  EXPECT_EQ(ListIds(Filter().Text("tear")), std::vector<TrackId>{ib});
  EXPECT_EQ(ListIds(Filter().Rule(BusinessRule::kMute).Text("factory")), std::vector<TrackId>{ib});
  // LIKE wildcards in the text are literal.
  EXPECT_EQ(ListIds(Filter().Text("100%")), std::vector<TrackId>{id});
  EXPECT_EQ(ListIds(Filter().Text("e_")), std::vector<TrackId>{id});
  EXPECT_EQ(ListIds(Filter().Text("%")), std::vector<TrackId>{id});
  EXPECT_EQ(ListIds(Filter().Text("no such thing")), std::vector<TrackId>{});
  // Paging.
  EXPECT_EQ(ListIds(Filter().Limit(2)), (std::vector<TrackId>{ia, ib}));
  EXPECT_EQ(ListIds(Filter().Limit(2).Offset(2)), (std::vector<TrackId>{ic, id}));
  EXPECT_EQ(ListIds(Filter().Offset(3)), std::vector<TrackId>{id});
  EXPECT_EQ(ListIds(Filter().Limit(10).Offset(10)), std::vector<TrackId>{});
  EXPECT_EQ(ListIds(Filter().Rule(BusinessRule::kBlock).Limit(1).Offset(1)),
            std::vector<TrackId>{ic});

  auto all = db_->List(Filter());
  ASSERT_TRUE(all);
  EXPECT_EQ((*all)[0].metadata.tags, (std::map<std::string, std::string>{{"genre", "synth"}}));
  EXPECT_TRUE((*all)[1].metadata.tags.empty());
  EXPECT_EQ((*all)[2].metadata.rights_holder, "Factory Records");
}

TEST_F(CatalogDbTest, RemoveDeletesTheEntryAndItsTags) {
  CatalogEntry entry = MakeEntry("Gone");
  entry.metadata.tags = {{"a", "1"}, {"b", "2"}};
  TrackId gone = InsertOrDie(entry);
  TrackId kept = InsertOrDie(MakeEntry("Kept"));

  ASSERT_TRUE(db_->Remove(gone));
  EXPECT_EQ(db_->Get(gone).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(db_->Get(kept));
  auto again = db_->Remove(gone);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(again.error().message().find(std::to_string(gone)), std::string::npos);

  // The tags went with it (foreign key cascade).
  auto raw = Database::Open(path());
  ASSERT_TRUE(raw);
  auto count = raw->Prepare("SELECT COUNT(*) FROM track_tags");
  ASSERT_TRUE(count);
  ASSERT_TRUE(count->Step().value());
  EXPECT_EQ(count->ColumnInt64(0), 0);
}

TEST_F(CatalogDbTest, IdsAreNeverReusedAfterRemove) {
  TrackId first = InsertOrDie(MakeEntry("One"));
  TrackId last = InsertOrDie(MakeEntry("Two"));
  ASSERT_TRUE(db_->Remove(last));
  TrackId next = InsertOrDie(MakeEntry("Three"));
  EXPECT_GT(next, last);
  ASSERT_TRUE(db_->Remove(next));
  ASSERT_TRUE(db_->Remove(first));
  Reopen();  // the high-water mark survives reopening, even with an empty table
  TrackId after_reopen = InsertOrDie(MakeEntry("Four"));
  EXPECT_GT(after_reopen, next);
}

TEST_F(CatalogDbTest, UpdateRule) {
  TrackId id = InsertOrDie(MakeEntry("Rule", BusinessRule::kTrack));
  ASSERT_TRUE(db_->UpdateRule(id, BusinessRule::kBlock));
  EXPECT_EQ(db_->Get(id).value().rule, BusinessRule::kBlock);
  auto missing = db_->UpdateRule(id + 1, BusinessRule::kAllow);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find(std::to_string(id + 1)), std::string::npos);
}

TEST_F(CatalogDbTest, StatsCountEveryRule) {
  auto empty = db_->GetStats();
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->tracks, 0u);
  EXPECT_EQ(empty->total_duration_s, 0);
  EXPECT_EQ(empty->by_rule.size(), 4u);

  CatalogEntry a = MakeEntry("A", BusinessRule::kBlock);
  a.duration_s = 10;
  CatalogEntry b = MakeEntry("B", BusinessRule::kBlock);
  b.duration_s = 20.5;
  CatalogEntry c = MakeEntry("C", BusinessRule::kAllow);
  c.duration_s = 1;
  InsertOrDie(a);
  InsertOrDie(b);
  TrackId ic = InsertOrDie(c);
  ASSERT_TRUE(db_->UpdateRule(ic, BusinessRule::kMute));

  auto stats = db_->GetStats();
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->tracks, 3u);
  EXPECT_DOUBLE_EQ(stats->total_duration_s, 31.5);
  EXPECT_EQ(stats->by_rule, (std::map<BusinessRule, uint64_t>{{BusinessRule::kBlock, 2},
                                                              {BusinessRule::kMute, 1},
                                                              {BusinessRule::kAllow, 0},
                                                              {BusinessRule::kTrack, 0}}));
}

TEST_F(CatalogDbTest, ReopenPersistsEverything) {
  CatalogEntry entry = MakeEntry("Persist", BusinessRule::kAllow);
  entry.metadata.tags = {{"x", "y"}};
  entry.content_sha256 = Sha(3);
  TrackId id = InsertOrDie(entry);
  auto before = db_->List(Filter());
  ASSERT_TRUE(before);
  Reopen();
  auto after = db_->List(Filter());
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(db_->Get(id).value().metadata.tags.at("x"), "y");
}

TEST_F(CatalogDbTest, MigrationsAreIdempotentOnReopen) {
  InsertOrDie(MakeEntry("Before"));
  auto schema = [&]() {
    auto raw = Database::Open(path());
    EXPECT_TRUE(raw);
    auto stmt = raw->Prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name");
    EXPECT_TRUE(stmt);
    std::string out;
    while (stmt->Step().value()) {
      out += stmt->ColumnText(0) + " " + stmt->ColumnText(1) + " " + stmt->ColumnText(2) + "\n";
    }
    int version = raw->UserVersion().value();
    return std::make_pair(version, out);
  };
  const auto first = schema();
  EXPECT_GE(first.first, 1);
  for (int i = 0; i < 3; ++i) {
    Reopen();
    EXPECT_EQ(schema(), first);
  }
  EXPECT_EQ(db_->GetStats().value().tracks, 1u);
}

TEST_F(CatalogDbTest, NewerSchemaIsVersionMismatch) {
  db_.reset();
  {
    auto raw = Database::Open(path());
    ASSERT_TRUE(raw);
    ASSERT_TRUE(raw->SetUserVersion(1000));
  }
  auto db = CatalogDb::Open(path());
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kVersionMismatch);
  EXPECT_NE(db.error().message().find(path().string()), std::string::npos);
}

TEST(CatalogDbCorruptionTest, RandomBytesAreCorruptDataNamingThePath) {
  TempDir dir;
  std::mt19937 rng(42);
  std::string junk(16384, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  WriteFile(dir / "catalog.db", junk);
  auto db = CatalogDb::Open(dir / "catalog.db");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kCorruptData) << db.error().ToString();
  EXPECT_NE(db.error().message().find((dir / "catalog.db").string()), std::string::npos)
      << db.error().message();
}

TEST(CatalogDbCorruptionTest, DamagedSchemaPageIsCorruptData) {
  TempDir dir;
  const auto path = dir / "catalog.db";
  {
    auto db = CatalogDb::Open(path);
    ASSERT_TRUE(db);
    ASSERT_TRUE((*db)->Insert(MakeEntry("x")));
  }  // closing the last connection checkpoints the WAL into the file
  ASSERT_FALSE(std::filesystem::exists(dir / "catalog.db-wal"));
  // Keep the 100-byte header, scramble the rest of page 1 (the schema).
  std::string bytes = testing::ReadFile(path);
  ASSERT_GT(bytes.size(), 4096u);
  std::mt19937 rng(1);
  for (size_t i = 100; i < 4096; ++i) bytes[i] = static_cast<char>(rng());
  WriteFile(path, bytes);
  auto db = CatalogDb::Open(path);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kCorruptData) << db.error().ToString();
  EXPECT_NE(db.error().message().find(path.string()), std::string::npos);
}

TEST(CatalogDbOpenTest, FolderThatCannotBeCreatedIsIoError) {
  TempDir dir;
  WriteFile(dir / "file", "not a folder");
  auto db = CatalogDb::Open(dir / "file" / "catalog.db");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kIoError);
  EXPECT_NE(db.error().message().find((dir / "file").string()), std::string::npos);
}

TEST_F(CatalogDbTest, ConcurrentInsertsFromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::vector<TrackId>> ids(kThreads);
  std::vector<std::string> errors(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          CatalogEntry entry = MakeEntry("t" + std::to_string(t) + "-" + std::to_string(i));
          entry.content_sha256 = Sha(t * 1000 + i);
          entry.metadata.tags = {{"thread", std::to_string(t)}};
          auto id = db_->Insert(entry);
          if (!id) {
            errors[t] = id.error().ToString();
            return;
          }
          ids[t].push_back(*id);
          // Mix in reads while others write.
          if (!db_->Get(*id)) errors[t] = "get failed";
        }
      });
    }
  }
  std::set<TrackId> all;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    all.insert(ids[t].begin(), ids[t].end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(db_->GetStats().value().tracks, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(ListIds(Filter()).size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(CatalogDbTest, SeparateConnectionsOnOneFileWaitForEachOther) {
  // Two CatalogDb objects = two connections, as two processes would have;
  // the busy timeout makes writers queue instead of failing.
  auto other = CatalogDb::Open(path());
  ASSERT_TRUE(other);
  CatalogDb* dbs[2] = {db_.get(), other->get()};
  constexpr int kPerThread = 40;
  std::vector<std::string> errors(4);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto id =
              dbs[t % 2]->Insert(MakeEntry("c" + std::to_string(t) + "-" + std::to_string(i)));
          if (!id) {
            errors[t] = id.error().ToString();
            return;
          }
        }
      });
    }
  }
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ((*other)->GetStats().value().tracks, 4u * kPerThread);
}

}  // namespace
}  // namespace earshot::store
