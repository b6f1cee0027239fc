// Playback's state in SqliteStateStore: key pairs (create, get, list, delete,
// the duplicate-fingerprint and max-keys refusals), single-use token claims
// (same/other binding, expiry, purging, a restart, concurrent claimers on
// several connections), revoked viewers (upsert keeping the max, deleted with
// the channel) and the per-minute viewer series (upsert keeping the max,
// ranges, deleted with the channel).
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "state/validation.h"
#include "state_test_util.h"
#include "store/sqlite.h"

namespace earshot::state {
namespace {

using testing::FailsWith;
using testing::kStartMs;
using testing::Must;
using testing::StateStoreTest;

using PlaybackKeysTest = StateStoreTest;
using SingleUseTokensTest = StateStoreTest;
using RevokedViewersTest = StateStoreTest;
using ViewerMinutesTest = StateStoreTest;

constexpr std::string_view kPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEexample\n"
    "-----END PUBLIC KEY-----\n";

// Rows of `table` in the database file, read on a connection of its own.
int64_t RowCount(const std::filesystem::path& path, std::string_view table) {
  auto db = Must(store::Database::Open(path));
  auto stmt = Must(db.Prepare("SELECT COUNT(*) FROM " + std::string(table)));
  EXPECT_TRUE(Must(stmt.Step()));
  return stmt.ColumnInt64(0);
}

// --- Playback key pairs --------------------------------------------------------

TEST_F(PlaybackKeysTest, CreateGetListDelete) {
  clock_.Advance(5);
  const PlaybackKey first = Must(store_->CreatePlaybackKey("prod signer", kPem, "sha256:aa", 10));
  EXPECT_TRUE(IsPlaybackKeyId(first.id)) << first.id;
  EXPECT_EQ(first.name, "prod signer");
  EXPECT_EQ(first.public_key_pem, kPem);
  EXPECT_EQ(first.fingerprint, "sha256:aa");
  EXPECT_EQ(first.created_ms, kStartMs + 5);
  clock_.Advance(1);
  const PlaybackKey second = Must(store_->CreatePlaybackKey("", kPem, "sha256:bb", 10));
  EXPECT_NE(first.id, second.id);

  EXPECT_EQ(Must(store_->GetPlaybackKey(first.id)), first);
  EXPECT_EQ(Must(store_->ListPlaybackKeys()), (std::vector<PlaybackKey>{first, second}));
  // Another connection sees them.
  auto other = Open();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(Must(other->GetPlaybackKey(second.id)), second);

  Must(store_->DeletePlaybackKey(first.id));
  EXPECT_TRUE(FailsWith(store_->GetPlaybackKey(first.id), ErrorCode::kNotFound, first.id));
  EXPECT_TRUE(FailsWith(store_->DeletePlaybackKey(first.id), ErrorCode::kNotFound, first.id));
  EXPECT_EQ(Must(store_->ListPlaybackKeys()), std::vector<PlaybackKey>{second});
  // Its fingerprint can be imported again.
  const PlaybackKey again = Must(store_->CreatePlaybackKey("back", kPem, "sha256:aa", 10));
  EXPECT_NE(again.id, first.id);
}

TEST_F(PlaybackKeysTest, TheSameFingerprintIsRefused) {
  const PlaybackKey first = Must(store_->CreatePlaybackKey("a", kPem, "sha256:aa", 10));
  auto dup = store_->CreatePlaybackKey("b", kPem, "sha256:aa", 10);
  EXPECT_TRUE(FailsWith(dup, ErrorCode::kAlreadyExists, first.id));
  EXPECT_EQ(Must(store_->ListPlaybackKeys()).size(), 1u);
}

TEST_F(PlaybackKeysTest, AtMostMaxKeys) {
  Must(store_->CreatePlaybackKey("a", kPem, "fp-1", 2));
  const PlaybackKey b = Must(store_->CreatePlaybackKey("b", kPem, "fp-2", 2));
  EXPECT_TRUE(FailsWith(store_->CreatePlaybackKey("c", kPem, "fp-3", 2),
                        ErrorCode::kResourceExhausted, "limit is 2"));
  // A larger limit, or a deletion, makes room.
  Must(store_->CreatePlaybackKey("c", kPem, "fp-3", 3));
  Must(store_->DeletePlaybackKey(b.id));
  Must(store_->CreatePlaybackKey("d", kPem, "fp-4", 3));
  EXPECT_TRUE(
      FailsWith(store_->CreatePlaybackKey("e", kPem, "fp-5", 0), ErrorCode::kResourceExhausted));
  EXPECT_EQ(Must(store_->ListPlaybackKeys()).size(), 3u);
}

TEST_F(PlaybackKeysTest, BadInputIsRefused) {
  EXPECT_TRUE(FailsWith(store_->CreatePlaybackKey(std::string(129, 'n'), kPem, "fp", 10),
                        ErrorCode::kInvalidArgument, "playback key name"));
  EXPECT_TRUE(
      FailsWith(store_->CreatePlaybackKey("n", "", "fp", 10), ErrorCode::kInvalidArgument, "PEM"));
  EXPECT_TRUE(FailsWith(store_->CreatePlaybackKey("n", std::string(20000, 'A'), "fp", 10),
                        ErrorCode::kInvalidArgument, "PEM"));
  EXPECT_TRUE(FailsWith(store_->CreatePlaybackKey("n", kPem, "", 10), ErrorCode::kInvalidArgument,
                        "fingerprint"));
  EXPECT_TRUE(FailsWith(store_->CreatePlaybackKey("n", kPem, "a\nb", 10),
                        ErrorCode::kInvalidArgument, "fingerprint"));
  EXPECT_TRUE(Must(store_->ListPlaybackKeys()).empty());
}

TEST(PlaybackKeyIdTest, Shape) {
  EXPECT_TRUE(IsPlaybackKeyId("pk-0123456789az"));
  EXPECT_FALSE(IsPlaybackKeyId("pk-0123456789aZ"));
  EXPECT_FALSE(IsPlaybackKeyId("pk-0123456789a"));
  EXPECT_FALSE(IsPlaybackKeyId("ch-0123456789az"));
  EXPECT_FALSE(IsPlaybackKeyId(""));
}

// --- Single-use tokens ---------------------------------------------------------

constexpr int64_t kNowS = kStartMs / 1000;

TEST_F(SingleUseTokensTest, FirstClaimWinsAndItsHolderMayComeBack) {
  EXPECT_TRUE(Must(store_->ClaimSingleUseToken("u-1", "viewer-a", kNowS + 60, kNowS)));
  EXPECT_TRUE(Must(store_->ClaimSingleUseToken("u-1", "viewer-a", kNowS + 60, kNowS + 10)));
  EXPECT_FALSE(Must(store_->ClaimSingleUseToken("u-1", "viewer-b", kNowS + 60, kNowS + 10)));
  EXPECT_FALSE(Must(store_->ClaimSingleUseToken("u-1", "", kNowS + 60, kNowS + 59)));
  // Other tokens are independent.
  EXPECT_TRUE(Must(store_->ClaimSingleUseToken("u-2", "viewer-b", kNowS + 60, kNowS + 10)));
  // Another connection sees the claim at once.
  auto other = Open();
  ASSERT_NE(other, nullptr);
  EXPECT_FALSE(Must(other->ClaimSingleUseToken("u-1", "viewer-c", kNowS + 60, kNowS + 20)));
  EXPECT_TRUE(Must(other->ClaimSingleUseToken("u-1", "viewer-a", kNowS + 60, kNowS + 20)));
}

TEST_F(SingleUseTokensTest, AnExpiredClaimCountsAsNew) {
  EXPECT_TRUE(Must(store_->ClaimSingleUseToken("u-1", "viewer-a", kNowS + 60, kNowS)));
  EXPECT_FALSE(Must(store_->ClaimSingleUseToken("u-1", "viewer-b", kNowS + 60, kNowS + 59)));
  // At exp_s the claim has expired (JWT exp): the uuid is new again.
  EXPECT_TRUE(Must(store_->ClaimSingleUseToken("u-1", "viewer-b", kNowS + 120, kNowS + 60)));
  EXPECT_FALSE(Must(store_->ClaimSingleUseToken("u-1", "viewer-a", kNowS + 120, kNowS + 61)));
}

TEST_F(SingleUseTokensTest, ExpiredClaimsArePurged) {
  for (int i = 0; i < 100; ++i) {
    Must(store_->ClaimSingleUseToken("old-" + std::to_string(i), "v", kNowS + 10, kNowS));
  }
  EXPECT_EQ(RowCount(path_, "single_use_tokens"), 100);
  // Later claims purge the expired ones a few at a time.
  for (int i = 0; i < 20; ++i) {
    Must(store_->ClaimSingleUseToken("new-" + std::to_string(i), "v", kNowS + 1000, kNowS + 100));
  }
  EXPECT_EQ(RowCount(path_, "single_use_tokens"), 20);
}

TEST_F(SingleUseTokensTest, ClaimsSurviveARestart) {
  EXPECT_TRUE(Must(store_->ClaimSingleUseToken("u-1", "viewer-a", kNowS + 3600, kNowS)));
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_FALSE(Must(store_->ClaimSingleUseToken("u-1", "viewer-b", kNowS + 3600, kNowS + 5)));
  EXPECT_TRUE(Must(store_->ClaimSingleUseToken("u-1", "viewer-a", kNowS + 3600, kNowS + 5)));
}

TEST_F(SingleUseTokensTest, ConcurrentClaimersOnSeveralConnections) {
  constexpr int kClaimers = 8;
  constexpr int kTokens = 20;
  std::vector<std::unique_ptr<SqliteStateStore>> stores;
  for (int i = 0; i < kClaimers; ++i) {
    stores.push_back(Open());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<std::vector<int>> won(kTokens, std::vector<int>(kClaimers, 0));
  std::atomic<int> errors{0};
  std::latch start(kClaimers);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClaimers; ++c) {
    threads.emplace_back([&, c] {
      start.arrive_and_wait();
      for (int t = 0; t < kTokens; ++t) {
        auto claimed = stores[static_cast<size_t>(c)]->ClaimSingleUseToken(
            "tok-" + std::to_string(t), "viewer-" + std::to_string(c), kNowS + 60, kNowS);
        if (!claimed) {
          ++errors;
        } else if (*claimed) {
          won[static_cast<size_t>(t)][static_cast<size_t>(c)] = 1;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (int t = 0; t < kTokens; ++t) {
    int winners = 0;
    for (int c = 0; c < kClaimers; ++c)
      winners += won[static_cast<size_t>(t)][static_cast<size_t>(c)];
    EXPECT_EQ(winners, 1) << "token " << t;
  }
}

TEST_F(SingleUseTokensTest, BadInputIsRefused) {
  EXPECT_TRUE(FailsWith(store_->ClaimSingleUseToken("", "v", kNowS + 60, kNowS),
                        ErrorCode::kInvalidArgument, "token id"));
  EXPECT_TRUE(FailsWith(store_->ClaimSingleUseToken(std::string(129, 'u'), "v", kNowS + 60, kNowS),
                        ErrorCode::kInvalidArgument, "token id"));
  EXPECT_TRUE(FailsWith(store_->ClaimSingleUseToken("u", std::string(513, 'v'), kNowS + 60, kNowS),
                        ErrorCode::kInvalidArgument, "binding"));
}

// --- Revoked viewers -----------------------------------------------------------

TEST_F(RevokedViewersTest, UpsertKeepsTheHighestVersion) {
  const std::string ch = CreateChannel("a").channel.id;
  const std::string other = CreateChannel("b").channel.id;
  EXPECT_TRUE(Must(store_->ListRevokedViewers()).empty());
  clock_.Advance(10);
  Must(store_->RevokeViewer(ch, "viewer-1", 3));
  clock_.Advance(10);
  Must(store_->RevokeViewer(ch, "viewer-1", 2));  // lower: changes nothing
  Must(store_->RevokeViewer(other, "viewer-1", 1));
  Must(store_->RevokeViewer(ch, "viewer-0", 0));
  std::vector<RevokedViewer> expected = {{ch, "viewer-0", 0, kStartMs + 20},
                                         {ch, "viewer-1", 3, kStartMs + 10},
                                         {other, "viewer-1", 1, kStartMs + 20}};
  std::sort(expected.begin(), expected.end(), [](const auto& x, const auto& y) {
    return std::tie(x.channel_id, x.viewer_id) < std::tie(y.channel_id, y.viewer_id);
  });
  EXPECT_EQ(Must(store_->ListRevokedViewers()), expected);
  clock_.Advance(10);
  Must(store_->RevokeViewer(ch, "viewer-1", 7));  // higher: raised and restamped
  for (const RevokedViewer& r : Must(store_->ListRevokedViewers())) {
    if (r.channel_id == ch && r.viewer_id == "viewer-1") {
      EXPECT_EQ(r.up_to_session_version, 7);
      EXPECT_EQ(r.revoked_ms, kStartMs + 30);
    }
  }
  // Still there after a reopen.
  const auto before = Must(store_->ListRevokedViewers());
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Must(store_->ListRevokedViewers()), before);
}

TEST_F(RevokedViewersTest, UnknownChannelsAndBadInputAreRefused) {
  const std::string ch = CreateChannel().channel.id;
  EXPECT_TRUE(FailsWith(store_->RevokeViewer("ch-000000000000", "v", 1), ErrorCode::kNotFound,
                        "ch-000000000000"));
  EXPECT_TRUE(FailsWith(store_->RevokeViewer(ch, "", 1), ErrorCode::kInvalidArgument, "viewer id"));
  EXPECT_TRUE(FailsWith(store_->RevokeViewer(ch, std::string(257, 'v'), 1),
                        ErrorCode::kInvalidArgument, "viewer id"));
  EXPECT_TRUE(
      FailsWith(store_->RevokeViewer(ch, "v", -1), ErrorCode::kInvalidArgument, "negative"));
  EXPECT_TRUE(Must(store_->ListRevokedViewers()).empty());
}

TEST_F(RevokedViewersTest, DeletedWithTheChannel) {
  const std::string gone = CreateChannel("gone").channel.id;
  const std::string kept = CreateChannel("kept").channel.id;
  Must(store_->RevokeViewer(gone, "v", 1));
  Must(store_->RevokeViewer(kept, "v", 2));
  Must(store_->DeleteChannel(gone));
  EXPECT_EQ(Must(store_->ListRevokedViewers()),
            (std::vector<RevokedViewer>{{kept, "v", 2, kStartMs}}));
}

// --- Viewer series -------------------------------------------------------------

constexpr int64_t kMinuteS = (kStartMs / 1000) / 60 * 60;

TEST_F(ViewerMinutesTest, UpsertKeepsTheMaximumAndListsARange) {
  const std::string ch = CreateChannel("a").channel.id;
  const std::string other = CreateChannel("b").channel.id;
  const std::vector<ViewerMinuteRecord> first = {
      {ch, kMinuteS + 60, 5}, {ch, kMinuteS, 3}, {other, kMinuteS, 9}, {ch, kMinuteS + 120, 0}};
  Must(store_->RecordViewerMinutes(first));
  // The same minutes again (another process flushed them too): max wins.
  const std::vector<ViewerMinuteRecord> second = {{ch, kMinuteS, 4}, {ch, kMinuteS + 60, 2}};
  Must(store_->RecordViewerMinutes(second));
  Must(store_->RecordViewerMinutes({}));
  EXPECT_EQ(Must(store_->ListViewerMinutes(ch, kMinuteS, kMinuteS + 180)),
            (std::vector<ViewerMinuteRecord>{
                {ch, kMinuteS, 4}, {ch, kMinuteS + 60, 5}, {ch, kMinuteS + 120, 0}}));
  // [from, to): to is excluded, from included.
  EXPECT_EQ(Must(store_->ListViewerMinutes(ch, kMinuteS + 60, kMinuteS + 120)),
            (std::vector<ViewerMinuteRecord>{{ch, kMinuteS + 60, 5}}));
  EXPECT_TRUE(Must(store_->ListViewerMinutes(ch, kMinuteS + 180, kMinuteS + 600)).empty());
  EXPECT_TRUE(Must(store_->ListViewerMinutes(ch, kMinuteS, kMinuteS)).empty());
  EXPECT_EQ(Must(store_->ListViewerMinutes(other, 0, kMinuteS * 2)),
            (std::vector<ViewerMinuteRecord>{{other, kMinuteS, 9}}));
  EXPECT_TRUE(FailsWith(store_->ListViewerMinutes(ch, kMinuteS + 60, kMinuteS),
                        ErrorCode::kInvalidArgument, "after it ends"));
}

TEST_F(ViewerMinutesTest, BadRecordsRefuseTheWholeBatch) {
  const std::string ch = CreateChannel().channel.id;
  const std::vector<std::vector<ViewerMinuteRecord>> bad = {
      {{ch, kMinuteS, 1}, {ch, kMinuteS + 30, 1}},
      {{ch, kMinuteS, 1}, {ch, kMinuteS + 60, -1}},
      {{ch, kMinuteS, 1}, {"", kMinuteS, 1}}};
  for (const auto& batch : bad) {
    EXPECT_TRUE(FailsWith(store_->RecordViewerMinutes(batch), ErrorCode::kInvalidArgument));
  }
  EXPECT_TRUE(Must(store_->ListViewerMinutes(ch, 0, kMinuteS * 2)).empty());
}

TEST_F(ViewerMinutesTest, UnknownChannelsAreSkippedAndSeriesGoWithTheirChannel) {
  const std::string gone = CreateChannel("gone").channel.id;
  const std::string kept = CreateChannel("kept").channel.id;
  const std::vector<ViewerMinuteRecord> records = {
      {gone, kMinuteS, 1}, {kept, kMinuteS, 2}, {"ch-000000000000", kMinuteS, 3}};
  Must(store_->RecordViewerMinutes(records));
  EXPECT_EQ(RowCount(path_, "viewer_minutes"), 2);
  Must(store_->DeleteChannel(gone));
  EXPECT_TRUE(Must(store_->ListViewerMinutes(gone, 0, kMinuteS * 2)).empty());
  EXPECT_EQ(Must(store_->ListViewerMinutes(kept, 0, kMinuteS * 2)),
            (std::vector<ViewerMinuteRecord>{{kept, kMinuteS, 2}}));
  // Counts still in flight for the deleted channel are dropped.
  const std::vector<ViewerMinuteRecord> late = {{gone, kMinuteS + 60, 4}};
  Must(store_->RecordViewerMinutes(late));
  EXPECT_EQ(RowCount(path_, "viewer_minutes"), 1);
}

TEST_F(ViewerMinutesTest, ASchemaVersion1FileIsMigrated) {
  // A store written before playback existed: version 1 with its tables only.
  const std::filesystem::path old = dir_ / "old.db";
  {
    auto store = Must(SqliteStateStore::Open(old));
    Must(store->CreateChannel({}));
  }
  {
    auto db = Must(store::Database::Open(old));
    Must(
        db.Exec("DROP TABLE playback_keys; DROP TABLE single_use_tokens; "
                "DROP TABLE revoked_viewers; DROP TABLE viewer_minutes; "
                "UPDATE state_schema SET version = 1 WHERE component = 'state'"));
  }
  auto store = Must(SqliteStateStore::Open(old));
  const std::string ch = Must(store->ListChannels({})).channels.at(0).id;
  const std::vector<ViewerMinuteRecord> records = {{ch, kMinuteS, 7}};
  Must(store->RecordViewerMinutes(records));
  EXPECT_EQ(Must(store->ListViewerMinutes(ch, kMinuteS, kMinuteS + 60)), records);
  EXPECT_TRUE(Must(store->ClaimSingleUseToken("u", "v", kNowS + 60, kNowS)));
}

}  // namespace
}  // namespace earshot::state
