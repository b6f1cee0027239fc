// Opening state stores: URLs (sqlite:, sqlite::memory:, postgres:), the
// schema (own version row, prefixed tables, newer versions refused, damaged
// files), durability across a reopen, and sharing one SQLite file with the
// job queue.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "queue/registry.h"
#include "state/state_store.h"
#include "state_test_util.h"
#include "store/sqlite.h"

namespace earshot::state {
namespace {

using control::EventType;
using testing::FailsWith;
using testing::Must;
using testing::StateStoreTest;
using testing::TempDir;

TEST(OpenStateStoreTest, SqliteFileUrls) {
  TempDir dir;
  const std::filesystem::path file = dir / "nested" / "folder" / "state.db";
  {
    auto store = Must(OpenStateStore("sqlite:" + file.string()));
    Must(store->Check());
    Must(store->CreateChannel({}));
  }
  EXPECT_TRUE(std::filesystem::exists(file)) << "the folder is created when missing";
  // sqlite:///abs/path names the same file.
  auto again = Must(OpenStateStore("sqlite://" + file.string()));
  EXPECT_EQ(Must(again->ListChannels({})).channels.size(), 1u);
}

TEST(OpenStateStoreTest, MemoryStoresArePrivate) {
  auto a = Must(OpenStateStore("sqlite::memory:"));
  auto b = Must(OpenStateStore("sqlite::memory:"));
  Must(a->Check());
  const CreatedChannel created = Must(a->CreateChannel({}));
  EXPECT_EQ(Must(a->FindChannelByStreamKey(created.stream_key)).id, created.channel.id);
  EXPECT_TRUE(Must(b->ListChannels({})).channels.empty());
  EXPECT_TRUE(FailsWith(b->GetChannel(created.channel.id), ErrorCode::kNotFound));
}

TEST(OpenStateStoreTest, PostgresIsPlannedAndOtherUrlsAreRefused) {
  for (std::string_view url : {"postgres://earshot@127.0.0.1/earshot",
                               "postgresql://earshot@127.0.0.1:5432/earshot", "postgres:"}) {
    EXPECT_TRUE(FailsWith(OpenStateStore(url), ErrorCode::kUnsupported, "planned")) << url;
  }
  for (std::string_view url : {"", "sqlite:", "sqlite://", "mysql://127.0.0.1/x", "/tmp/state.db",
                               "state.db"}) {
    auto opened = OpenStateStore(url);
    ASSERT_TRUE(FailsWith(opened, ErrorCode::kInvalidArgument, "sqlite:")) << url;
  }
}

TEST(OpenStateStoreTest, DamagedAndNewerFilesAreRefused) {
  TempDir dir;
  const std::filesystem::path junk = dir / "junk.db";
  store::testing::WriteFile(junk, std::string(8192, 'x'));
  EXPECT_TRUE(FailsWith(SqliteStateStore::Open(junk), ErrorCode::kCorruptData, "junk.db"));

  const std::filesystem::path newer = dir / "newer.db";
  Must(SqliteStateStore::Open(newer));
  {
    auto db = Must(store::Database::Open(newer));
    Must(db.Exec("UPDATE state_schema SET version = 99 WHERE component = 'state'"));
  }
  EXPECT_TRUE(FailsWith(SqliteStateStore::Open(newer), ErrorCode::kVersionMismatch, "99"));
}

TEST(OpenStateStoreTest, SchemaLivesInItsOwnRowAndTables) {
  TempDir dir;
  const std::filesystem::path file = dir / "state.db";
  Must(SqliteStateStore::Open(file));
  Must(SqliteStateStore::Open(file));  // a second open migrates nothing
  auto db = Must(store::Database::Open(file));
  // PRAGMA user_version belongs to the whole file: left alone.
  EXPECT_EQ(Must(db.UserVersion()), 0);
  auto version = Must(db.Prepare("SELECT component, version FROM state_schema"));
  ASSERT_TRUE(Must(version.Step()));
  EXPECT_EQ(version.ColumnText(0), "state");
  EXPECT_EQ(version.ColumnInt64(1), SqliteStateStore::SchemaVersion());
  EXPECT_FALSE(Must(version.Step())) << "one row per component";

  auto tables = Must(db.Prepare("SELECT name FROM sqlite_master WHERE type = 'table'"));
  std::set<std::string> names;
  while (Must(tables.Step())) names.insert(tables.ColumnText(0));
  EXPECT_EQ(names,
            (std::set<std::string>{"state_schema", "channels", "stream_keys", "stream_sessions",
                                   "events", "identifications", "api_keys", "subscriptions",
                                   "playback_keys", "single_use_tokens", "revoked_viewers",
                                   "viewer_minutes", "alarms", "alarm_channel_states",
                                   "alarm_points", "sqlite_sequence"}));
  for (const std::string& name : names) EXPECT_FALSE(name.starts_with("queue_")) << name;
}

class ReopenTest : public StateStoreTest {};

TEST_F(ReopenTest, EverythingIsStillThereAfterAReopen) {
  ChannelSpec spec;
  spec.name = "Radio";
  spec.tags = {{"team", "music"}};
  spec.policy = {{"FR"}, {"https://example.com"}, true};
  spec.rule_overrides = {{"block", "mute"}};
  spec.block_action = control::BlockAction::kStopAndResetKey;
  const CreatedChannel channel = Must(store_->CreateChannel(spec));
  const CreatedChannel other = CreateChannel("Other");
  const std::string reset_key = Must(store_->ResetStreamKey(other.channel.id));
  const StreamSession ended = Must(store_->StartSession(channel.channel.id, {{"app", "live"}}));
  Must(store_->EndSession(ended.stream_id, "done"));
  const StreamSession live = Must(store_->StartSession(channel.channel.id, {{"app", "live"}}));
  Must(store_->RequestStop(live.stream_id, "blocked"));
  Must(store_->SetHealth(live.stream_id, StreamHealth::kStarving));
  IdentificationRecord match;
  match.stream_id = live.stream_id;
  match.channel_id = channel.channel.id;
  match.match_id = "m-1";
  match.status = std::string(kMatchEnded);
  match.rule = "mute";
  match.track_id = 3;
  match.started_at_ms = testing::kStartMs;
  match.duration_s = 31.5;
  Must(store_->RecordIdentification(match));
  const CreatedApiKey api_key = Must(store_->CreateApiKey("ops"));
  const CreatedApiKey revoked = Must(store_->CreateApiKey("old"));
  Must(store_->RevokeApiKey(revoked.info.id));
  const Subscription sub =
      Must(store_->CreateSubscription({"webhook", "url=https://example.com/h",
                                       {EventType::kRuleApplied}, {channel.channel.id}}));

  const auto channels = Must(store_->ListChannels({})).channels;
  const auto sessions = Must(store_->ListSessions(channel.channel.id, 10));
  const auto events = testing::AllEvents(*store_);
  const auto identifications = Must(store_->ListIdentifications({}));
  const auto keys = Must(store_->ListApiKeys());
  const int64_t last_seq = Must(store_->LastEventSeq());

  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);

  EXPECT_EQ(Must(store_->ListChannels({})).channels, channels);
  EXPECT_EQ(Must(store_->GetChannel(channel.channel.id)), channel.channel);
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(channel.stream_key)).id, channel.channel.id);
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(reset_key)).id, other.channel.id);
  EXPECT_TRUE(FailsWith(store_->FindChannelByStreamKey(other.stream_key), ErrorCode::kNotFound));
  EXPECT_EQ(Must(store_->ListSessions(channel.channel.id, 10)), sessions);
  const auto live_again = Must(store_->LiveSession(channel.channel.id));
  ASSERT_TRUE(live_again.has_value());
  EXPECT_TRUE(live_again->stop_requested);
  EXPECT_EQ(live_again->health, StreamHealth::kStarving);
  EXPECT_TRUE(FailsWith(store_->StartSession(channel.channel.id, {}), ErrorCode::kAlreadyExists));
  EXPECT_EQ(testing::AllEvents(*store_), events);
  EXPECT_EQ(Must(store_->LastEventSeq()), last_seq);
  EXPECT_EQ(Must(store_->ListIdentifications({})), identifications);
  EXPECT_EQ(Must(store_->ListApiKeys()), keys);
  EXPECT_EQ(Must(store_->VerifyApiKey(api_key.key)), api_key.info.id);
  EXPECT_TRUE(FailsWith(store_->VerifyApiKey(revoked.key), ErrorCode::kNotFound));
  EXPECT_EQ(Must(store_->ListSubscriptions()), std::vector<Subscription>{sub});
  // New events continue after the old ones.
  EXPECT_GT(Must(store_->AppendEvent(EventType::kAlarm, "", "", {})).seq, last_seq);
}

// The state store and the job queue share one SQLite file (and its WAL):
// each keeps its own tables and schema version, and both work side by side,
// whichever opened the file first.
class SharedFileTest : public StateStoreTest {
 protected:
  std::unique_ptr<queue::JobQueue> OpenQueue() {
    queue::QueueOptions options;
    options.now_ms = clock_.Function();
    auto q = queue::OpenJobQueue("sqlite:" + path_.string(), options);
    EXPECT_TRUE(q.has_value()) << q.error().ToString();
    return q ? std::move(*q) : nullptr;
  }

  // A session and a scan job for it, then the worker's side.
  void Exercise(StateStore& state, queue::JobQueue& jobs, const std::string& label) {
    const CreatedChannel channel = Must(state.CreateChannel({label, false, {}, {}, {}, {}}));
    const StreamSession session = Must(state.StartSession(channel.channel.id, {}));
    queue::JobSpec spec;
    spec.kind = "scan";
    spec.dedup_key = session.stream_id;
    spec.payload = {{"stream_id", session.stream_id}, {"channel_id", channel.channel.id}};
    const queue::EnqueueResult enqueued = Must(jobs.Enqueue(spec));
    EXPECT_TRUE(enqueued.created);
    const auto lease = Must(jobs.Lease("worker-1", std::chrono::milliseconds(30'000)));
    ASSERT_TRUE(lease.has_value());
    EXPECT_EQ(lease->job.dedup_key, session.stream_id);
    IdentificationRecord match;
    match.stream_id = session.stream_id;
    match.channel_id = channel.channel.id;
    match.match_id = "m-1";
    match.status = std::string(kMatchEnded);
    match.rule = "track";
    match.duration_s = 10;
    Must(state.RecordIdentification(match));
    Must(jobs.Ack(*lease));
    Must(state.EndSession(session.stream_id, "done"));
  }
};

TEST_F(SharedFileTest, StateFirstThenQueue) {
  auto jobs = OpenQueue();
  ASSERT_NE(jobs, nullptr);
  Exercise(*store_, *jobs, "one");
  Exercise(*store_, *jobs, "two");
  EXPECT_EQ(Must(jobs->Counts()).done, 2);
  EXPECT_EQ(Must(store_->ListChannels({})).channels.size(), 2u);
  EXPECT_EQ(Must(store_->ListIdentifications({})).size(), 2u);

  // Both reopen cleanly on the shared file, neither disturbed by the other.
  store_.reset();
  jobs.reset();
  jobs = OpenQueue();
  store_ = Open();
  ASSERT_NE(jobs, nullptr);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Must(jobs->Counts()).done, 2);
  EXPECT_EQ(Must(store_->ListChannels({})).channels.size(), 2u);
  Exercise(*store_, *jobs, "three");
  EXPECT_EQ(Must(jobs->Counts()).done, 3);

  auto db = Must(store::Database::Open(path_));
  EXPECT_EQ(Must(db.UserVersion()), 0);
  auto tables = Must(db.Prepare("SELECT name FROM sqlite_master WHERE type = 'table'"));
  std::set<std::string> names;
  while (Must(tables.Step())) names.insert(tables.ColumnText(0));
  EXPECT_TRUE(names.contains("queue_jobs"));
  EXPECT_TRUE(names.contains("channels"));
}

TEST(SharedFileOrderTest, QueueFirstThenState) {
  TempDir dir;
  const std::string url = "sqlite:" + (dir / "shared.db").string();
  auto jobs = Must(queue::OpenJobQueue(url, {}));
  queue::JobSpec spec;
  spec.kind = "scan";
  spec.dedup_key = "before-state";
  Must(jobs->Enqueue(spec));
  auto state = Must(OpenStateStore(url));
  const CreatedChannel channel = Must(state->CreateChannel({}));
  Must(state->StartSession(channel.channel.id, {}));
  spec.dedup_key = "after-state";
  Must(jobs->Enqueue(spec));
  EXPECT_EQ(Must(jobs->Counts()).queued, 2);
  EXPECT_EQ(Must(state->ListLiveSessions()).size(), 1u);
  EXPECT_TRUE(Must(jobs->GetByKey("before-state")).has_value());
}

}  // namespace
}  // namespace earshot::state
