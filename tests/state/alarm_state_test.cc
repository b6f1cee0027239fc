// Viewer-spike alarms in SqliteStateStore: alarms (create, get, list, delete,
// bound to a channel or to every channel, deleted with their channel, the
// input checks and the 1000-alarm limit), per-channel evaluator states
// (binary round trip, upsert, unknown alarms and deleted channels) and alarm
// points (upsert, order, ranges, skipped points, pruning of old points),
// a reopen and the migration of a version-2 file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
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

using AlarmsTest = StateStoreTest;
using AlarmChannelStatesTest = StateStoreTest;
using AlarmPointsTest = StateStoreTest;

using States = std::vector<std::pair<std::string, std::string>>;
using Points = std::vector<AlarmPointRecord>;

constexpr std::string_view kSpec = R"({"threshold":2.5,"evaluation_periods":3})";
constexpr int64_t kT0 = kStartMs / 1000;
constexpr int64_t kDayS = 24 * 3600;

// Rows of `table` in the database file, read on a connection of its own.
int64_t RowCount(const std::filesystem::path& path, std::string_view table) {
  auto db = Must(store::Database::Open(path));
  auto stmt = Must(db.Prepare("SELECT COUNT(*) FROM " + std::string(table)));
  EXPECT_TRUE(Must(stmt.Step()));
  return stmt.ColumnInt64(0);
}

AlarmPointRecord Point(std::string alarm_id, std::string channel_id, int64_t timestamp_s,
                       double value, std::string state = "OK") {
  return {std::move(alarm_id), std::move(channel_id), timestamp_s, value, value - 1, value + 1,
          std::move(state)};
}

// --- Alarms ----------------------------------------------------------------------

TEST_F(AlarmsTest, CreateGetListDelete) {
  const std::string ch = CreateChannel().channel.id;
  clock_.Advance(5);
  const AlarmRecord every = Must(store_->CreateAlarm("spikes", "", kSpec));
  EXPECT_TRUE(IsAlarmId(every.id)) << every.id;
  EXPECT_EQ(every.name, "spikes");
  EXPECT_EQ(every.channel_id, "");
  EXPECT_EQ(every.spec_json, kSpec);
  EXPECT_EQ(every.created_ms, kStartMs + 5);
  clock_.Advance(1);
  const AlarmRecord bound = Must(store_->CreateAlarm("", ch, "{}"));
  EXPECT_NE(every.id, bound.id);
  EXPECT_EQ(bound.channel_id, ch);
  EXPECT_EQ(bound.created_ms, kStartMs + 6);

  EXPECT_EQ(Must(store_->GetAlarm(every.id)), every);
  EXPECT_EQ(Must(store_->GetAlarm(bound.id)), bound);
  EXPECT_EQ(Must(store_->ListAlarms()), (std::vector<AlarmRecord>{every, bound}));
  // Another connection sees them.
  auto other = Open();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(Must(other->ListAlarms()), (std::vector<AlarmRecord>{every, bound}));

  Must(store_->DeleteAlarm(every.id));
  EXPECT_TRUE(FailsWith(store_->GetAlarm(every.id), ErrorCode::kNotFound, every.id));
  EXPECT_TRUE(FailsWith(store_->DeleteAlarm(every.id), ErrorCode::kNotFound, every.id));
  EXPECT_TRUE(FailsWith(store_->GetAlarm("al-000000000000"), ErrorCode::kNotFound));
  EXPECT_EQ(Must(store_->ListAlarms()), std::vector<AlarmRecord>{bound});
}

TEST_F(AlarmsTest, DeletingAChannelDeletesItsAlarmsStatesAndPoints) {
  const std::string gone = CreateChannel("gone").channel.id;
  const std::string kept = CreateChannel("kept").channel.id;
  const AlarmRecord on_gone = Must(store_->CreateAlarm("on gone", gone, kSpec));
  const AlarmRecord on_kept = Must(store_->CreateAlarm("on kept", kept, kSpec));
  const AlarmRecord every = Must(store_->CreateAlarm("every", "", kSpec));
  Must(store_->SaveAlarmChannelState(on_gone.id, gone, "a"));
  Must(store_->SaveAlarmChannelState(on_kept.id, kept, "b"));
  Must(store_->SaveAlarmChannelState(every.id, gone, "c"));
  Must(store_->SaveAlarmChannelState(every.id, kept, "d"));
  const Points points = {Point(on_gone.id, gone, kT0, 1), Point(on_kept.id, kept, kT0, 2),
                         Point(every.id, gone, kT0, 3), Point(every.id, kept, kT0, 4)};
  Must(store_->RecordAlarmPoints(points));
  ASSERT_EQ(RowCount(path_, "alarm_points"), 4);

  Must(store_->DeleteChannel(gone));

  EXPECT_TRUE(FailsWith(store_->GetAlarm(on_gone.id), ErrorCode::kNotFound));
  // The every-channel alarm stays, without its state and points of the channel.
  EXPECT_EQ(Must(store_->ListAlarms()), (std::vector<AlarmRecord>{on_kept, every}));
  EXPECT_EQ(Must(store_->LoadAlarmChannelStates(every.id)), (States{{kept, "d"}}));
  EXPECT_EQ(Must(store_->LoadAlarmChannelStates(on_kept.id)), (States{{kept, "b"}}));
  EXPECT_TRUE(Must(store_->ListAlarmPoints(gone, 0, kT0 * 2)).empty());
  Points expected = {Point(on_kept.id, kept, kT0, 2), Point(every.id, kept, kT0, 4)};
  std::ranges::sort(expected, {}, &AlarmPointRecord::alarm_id);
  EXPECT_EQ(Must(store_->ListAlarmPoints(kept, 0, kT0 * 2)), expected);
  // No rows are left behind for the deleted channel.
  EXPECT_EQ(RowCount(path_, "alarm_points"), 2);
  EXPECT_EQ(RowCount(path_, "alarm_channel_states"), 2);
  EXPECT_EQ(RowCount(path_, "alarms"), 2);
}

TEST_F(AlarmsTest, DeletingAnAlarmDeletesItsStatesAndPoints) {
  const std::string ch = CreateChannel().channel.id;
  const AlarmRecord doomed = Must(store_->CreateAlarm("doomed", "", kSpec));
  const AlarmRecord kept = Must(store_->CreateAlarm("kept", ch, kSpec));
  Must(store_->SaveAlarmChannelState(doomed.id, ch, "x"));
  Must(store_->SaveAlarmChannelState(kept.id, ch, "y"));
  const Points points = {Point(doomed.id, ch, kT0, 1), Point(doomed.id, ch, kT0 + 60, 1),
                         Point(kept.id, ch, kT0, 2)};
  Must(store_->RecordAlarmPoints(points));

  Must(store_->DeleteAlarm(doomed.id));
  EXPECT_EQ(Must(store_->ListAlarmPoints(ch, 0, kT0 * 2)), (Points{Point(kept.id, ch, kT0, 2)}));
  EXPECT_TRUE(FailsWith(store_->LoadAlarmChannelStates(doomed.id), ErrorCode::kNotFound));
  EXPECT_EQ(RowCount(path_, "alarm_channel_states"), 1);
  EXPECT_EQ(RowCount(path_, "alarm_points"), 1);
  // The channel is untouched.
  Must(store_->GetChannel(ch));
}

TEST_F(AlarmsTest, BadInputIsRefused) {
  EXPECT_TRUE(FailsWith(store_->CreateAlarm("a", "ch-000000000000", kSpec), ErrorCode::kNotFound,
                        "ch-000000000000"));
  EXPECT_TRUE(FailsWith(store_->CreateAlarm(std::string(129, 'n'), "", kSpec),
                        ErrorCode::kInvalidArgument, "alarm name"));
  EXPECT_TRUE(FailsWith(store_->CreateAlarm("tab\there", "", kSpec), ErrorCode::kInvalidArgument,
                        "alarm name"));
  EXPECT_TRUE(FailsWith(store_->CreateAlarm("\xff", "", kSpec), ErrorCode::kInvalidArgument,
                        "alarm name"));
  for (std::string_view spec : {"", "[]", "[1]", "\"text\"", "42", "null", "{", "{\"a\":1} x",
                                "{\"a\":\"\xff\"}"}) {
    EXPECT_TRUE(FailsWith(store_->CreateAlarm("a", "", spec), ErrorCode::kInvalidArgument,
                          "JSON object"))
        << spec;
  }
  // At most 64 KiB of JSON.
  const std::string padding(kMaxAlarmSpecBytes - 8, 'p');
  const std::string largest = "{\"p\":\"" + padding + "\"}";
  ASSERT_EQ(largest.size(), kMaxAlarmSpecBytes);
  const std::string too_large = "{\"p\":\"" + padding + "x\"}";
  EXPECT_TRUE(FailsWith(store_->CreateAlarm("a", "", too_large), ErrorCode::kInvalidArgument,
                        "65537 bytes"));
  EXPECT_TRUE(Must(store_->ListAlarms()).empty()) << "nothing is stored by a refusal";
  // The largest spec and the longest name are accepted.
  const std::string name(128, 'n');
  const AlarmRecord big = Must(store_->CreateAlarm(name, "", largest));
  EXPECT_EQ(Must(store_->GetAlarm(big.id)).spec_json, largest);
  EXPECT_EQ(Must(store_->GetAlarm(big.id)).name, name);
}

TEST(AlarmLimitTest, AtMostAThousandAlarms) {
  auto store = Must(SqliteStateStore::Open(":memory:"));
  std::vector<std::string> ids;
  for (size_t i = 0; i < kMaxAlarms; ++i) {
    ids.push_back(Must(store->CreateAlarm("a" + std::to_string(i), "", "{}")).id);
  }
  EXPECT_TRUE(FailsWith(store->CreateAlarm("one too many", "", "{}"),
                        ErrorCode::kFailedPrecondition, "limit is 1000"));
  EXPECT_EQ(Must(store->ListAlarms()).size(), kMaxAlarms);
  // Ids are distinct and the list keeps creation order.
  std::vector<std::string> listed;
  for (const AlarmRecord& a : Must(store->ListAlarms())) listed.push_back(a.id);
  EXPECT_EQ(listed, ids);
  std::ranges::sort(listed);
  EXPECT_EQ(std::ranges::unique(listed).begin(), listed.end());
  // A deletion makes room for one more.
  Must(store->DeleteAlarm(ids[500]));
  Must(store->CreateAlarm("room again", "", "{}"));
  EXPECT_TRUE(
      FailsWith(store->CreateAlarm("full again", "", "{}"), ErrorCode::kFailedPrecondition));
}

TEST(AlarmIdTest, Shape) {
  EXPECT_TRUE(IsAlarmId("al-0123456789az"));
  EXPECT_FALSE(IsAlarmId("al-0123456789aZ"));
  EXPECT_FALSE(IsAlarmId("al-0123456789a"));
  EXPECT_FALSE(IsAlarmId("pk-0123456789az"));
  EXPECT_FALSE(IsAlarmId(""));
}

// --- Per-channel evaluator states ---------------------------------------------------

TEST_F(AlarmChannelStatesTest, BinaryBytesRoundTripAndUpsert) {
  const std::string a = CreateChannel("a").channel.id;
  const std::string b = CreateChannel("b").channel.id;
  const AlarmRecord alarm = Must(store_->CreateAlarm("every", "", kSpec));
  EXPECT_TRUE(Must(store_->LoadAlarmChannelStates(alarm.id)).empty());

  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  binary += std::string("\0\0tail\0", 7);
  ASSERT_EQ(binary.size(), 263u);
  Must(store_->SaveAlarmChannelState(alarm.id, b, binary));
  Must(store_->SaveAlarmChannelState(alarm.id, a, std::string("\0", 1)));
  States expected = {{a, std::string("\0", 1)}, {b, binary}};
  std::ranges::sort(expected);
  EXPECT_EQ(Must(store_->LoadAlarmChannelStates(alarm.id)), expected);

  // Saving again replaces; empty bytes are bytes too.
  Must(store_->SaveAlarmChannelState(alarm.id, a, ""));
  Must(store_->SaveAlarmChannelState(alarm.id, b, "v2"));
  expected = {{a, ""}, {b, "v2"}};
  std::ranges::sort(expected);
  EXPECT_EQ(Must(store_->LoadAlarmChannelStates(alarm.id)), expected);
  EXPECT_EQ(RowCount(path_, "alarm_channel_states"), 2);

  // Another connection reads the same bytes.
  Must(store_->SaveAlarmChannelState(alarm.id, b, binary));
  auto other = Open();
  ASSERT_NE(other, nullptr);
  expected = {{a, ""}, {b, binary}};
  std::ranges::sort(expected);
  EXPECT_EQ(Must(other->LoadAlarmChannelStates(alarm.id)), expected);
}

TEST_F(AlarmChannelStatesTest, UnknownAlarmsDeletedChannelsAndOversizedStates) {
  const std::string ch = CreateChannel().channel.id;
  const std::string gone = CreateChannel("gone").channel.id;
  const AlarmRecord alarm = Must(store_->CreateAlarm("a", "", kSpec));
  EXPECT_TRUE(FailsWith(store_->SaveAlarmChannelState("al-000000000000", ch, "x"),
                        ErrorCode::kNotFound, "al-000000000000"));
  EXPECT_TRUE(FailsWith(store_->LoadAlarmChannelStates("al-000000000000"), ErrorCode::kNotFound,
                        "al-000000000000"));
  // A channel deleted meanwhile: skipped without an error.
  Must(store_->DeleteChannel(gone));
  Must(store_->SaveAlarmChannelState(alarm.id, gone, "x"));
  Must(store_->SaveAlarmChannelState(alarm.id, "ch-000000000000", "x"));
  EXPECT_TRUE(Must(store_->LoadAlarmChannelStates(alarm.id)).empty());
  EXPECT_EQ(RowCount(path_, "alarm_channel_states"), 0);

  const std::string largest(kMaxAlarmChannelStateBytes, '\0');
  Must(store_->SaveAlarmChannelState(alarm.id, ch, largest));
  EXPECT_TRUE(FailsWith(store_->SaveAlarmChannelState(alarm.id, ch, largest + "x"),
                        ErrorCode::kInvalidArgument, "bytes"));
  EXPECT_EQ(Must(store_->LoadAlarmChannelStates(alarm.id)), (States{{ch, largest}}));
}

// --- Alarm points ---------------------------------------------------------------------

TEST_F(AlarmPointsTest, UpsertOrderAndRanges) {
  const std::string ch = CreateChannel("a").channel.id;
  const std::string other = CreateChannel("b").channel.id;
  const AlarmRecord x = Must(store_->CreateAlarm("x", "", kSpec));
  const AlarmRecord y = Must(store_->CreateAlarm("y", ch, kSpec));
  // Sorted by id (ids are random), whatever the creation order.
  const std::string first = std::min(x.id, y.id);
  const std::string second = std::max(x.id, y.id);

  const Points batch = {Point(second, ch, kT0 + 120, 9, "ALARM"), Point(first, ch, kT0 + 60, 2),
                        Point(second, ch, kT0, 1, "INSUFFICIENT_DATA"), Point(first, ch, kT0, 3),
                        Point(x.id, other, kT0, 7)};
  Must(store_->RecordAlarmPoints(batch));
  Must(store_->RecordAlarmPoints({}));
  EXPECT_EQ(Must(store_->ListAlarmPoints(ch, kT0, kT0 + 180)),
            (Points{Point(first, ch, kT0, 3), Point(first, ch, kT0 + 60, 2),
                    Point(second, ch, kT0, 1, "INSUFFICIENT_DATA"),
                    Point(second, ch, kT0 + 120, 9, "ALARM")}));

  // The same (alarm, channel, timestamp) again: the later point replaces it,
  // every field (not the larger value).
  AlarmPointRecord replaced = {first, ch, kT0 + 60, 1.5, -std::numeric_limits<double>::infinity(),
                               4.25, "ALARM"};
  const Points again = {replaced};
  Must(store_->RecordAlarmPoints(again));

  // from_s <= timestamp_s < to_s.
  EXPECT_EQ(Must(store_->ListAlarmPoints(ch, kT0 + 60, kT0 + 120)), (Points{replaced}));
  EXPECT_EQ(Must(store_->ListAlarmPoints(ch, kT0 + 1, kT0 + 121)),
            (Points{replaced, Point(second, ch, kT0 + 120, 9, "ALARM")}));
  EXPECT_TRUE(Must(store_->ListAlarmPoints(ch, kT0 + 180, kT0 + 600)).empty());
  EXPECT_TRUE(Must(store_->ListAlarmPoints(ch, kT0, kT0)).empty());
  EXPECT_EQ(Must(store_->ListAlarmPoints(other, 0, kT0 * 2)), (Points{Point(x.id, other, kT0, 7)}));
  EXPECT_TRUE(Must(store_->ListAlarmPoints("ch-000000000000", 0, kT0 * 2)).empty());
  EXPECT_TRUE(FailsWith(store_->ListAlarmPoints(ch, kT0 + 60, kT0), ErrorCode::kInvalidArgument,
                        "after it ends"));
  EXPECT_EQ(RowCount(path_, "alarm_points"), 5);
}

TEST_F(AlarmPointsTest, BadPointsRefuseTheWholeBatch) {
  const std::string ch = CreateChannel().channel.id;
  const AlarmRecord alarm = Must(store_->CreateAlarm("a", "", kSpec));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  AlarmPointRecord nan_value = Point(alarm.id, ch, kT0 + 60, 1);
  nan_value.value = nan;
  AlarmPointRecord nan_band = Point(alarm.id, ch, kT0 + 60, 1);
  nan_band.band_high = nan;
  const std::vector<Points> bad = {
      {Point(alarm.id, ch, kT0, 1), Point(alarm.id, ch, kT0 + 60, 1, "ok")},
      {Point(alarm.id, ch, kT0, 1), Point(alarm.id, ch, kT0 + 60, 1, "")},
      {Point(alarm.id, ch, kT0, 1), Point(alarm.id, ch, kT0 + 60, 1, "PENDING")},
      {Point(alarm.id, ch, kT0, 1), nan_value},
      {Point(alarm.id, ch, kT0, 1), nan_band}};
  for (const Points& batch : bad) {
    EXPECT_TRUE(FailsWith(store_->RecordAlarmPoints(batch), ErrorCode::kInvalidArgument,
                          alarm.id));
  }
  EXPECT_TRUE(FailsWith(store_->RecordAlarmPoints(bad[2]), ErrorCode::kInvalidArgument,
                        "unknown state \"PENDING\""));
  EXPECT_TRUE(Must(store_->ListAlarmPoints(ch, 0, kT0 * 2)).empty());
  EXPECT_EQ(RowCount(path_, "alarm_points"), 0);
}

TEST_F(AlarmPointsTest, PointsOfDeletedAlarmsAndChannelsAreSkipped) {
  const std::string ch = CreateChannel().channel.id;
  const std::string gone = CreateChannel("gone").channel.id;
  const AlarmRecord alarm = Must(store_->CreateAlarm("a", "", kSpec));
  const AlarmRecord deleted = Must(store_->CreateAlarm("b", "", kSpec));
  Must(store_->DeleteAlarm(deleted.id));
  Must(store_->DeleteChannel(gone));
  const Points points = {Point(deleted.id, ch, kT0, 1), Point(alarm.id, gone, kT0, 2),
                         Point(alarm.id, "ch-000000000000", kT0, 3), Point(alarm.id, ch, kT0, 4)};
  Must(store_->RecordAlarmPoints(points));
  EXPECT_EQ(Must(store_->ListAlarmPoints(ch, 0, kT0 * 2)), (Points{Point(alarm.id, ch, kT0, 4)}));
  EXPECT_EQ(RowCount(path_, "alarm_points"), 1);
}

TEST_F(AlarmPointsTest, PointsOlderThanFourteenDaysBeforeTheNewestArePruned) {
  const std::string ch = CreateChannel("a").channel.id;
  const std::string other = CreateChannel("b").channel.id;
  const AlarmRecord alarm = Must(store_->CreateAlarm("a", "", kSpec));
  const AlarmRecord second = Must(store_->CreateAlarm("b", "", kSpec));
  // Old points: pruning follows the series' newest point, not the clock.
  Points old;
  for (int64_t day = 0; day < 5; ++day) {
    old.push_back(Point(alarm.id, ch, kT0 + day * kDayS, 1));
    old.push_back(Point(second.id, ch, kT0 + day * kDayS, 2));
    old.push_back(Point(alarm.id, other, kT0 + day * kDayS, 3));
  }
  Must(store_->RecordAlarmPoints(old));
  EXPECT_EQ(RowCount(path_, "alarm_points"), 15);

  // The newest point of (alarm, ch) is 14 days after day 2: days 0 and 1 go;
  // day 2 (exactly 14 days before) stays.
  const int64_t newest = kT0 + 2 * kDayS + kAlarmPointRetentionS;
  const Points fresh = {Point(alarm.id, ch, newest, 5)};
  Must(store_->RecordAlarmPoints(fresh));
  EXPECT_EQ(Must(store_->ListAlarmPoints(ch, 0, newest + 1)).size(), 3u + 1u + 5u);
  Points expected;
  for (int64_t day = 2; day < 5; ++day) {
    expected.push_back(Point(alarm.id, ch, kT0 + day * kDayS, 1));
  }
  expected.push_back(Point(alarm.id, ch, newest, 5));
  Points listed = Must(store_->ListAlarmPoints(ch, 0, newest + 1));
  std::erase_if(listed, [&](const AlarmPointRecord& p) { return p.alarm_id != alarm.id; });
  EXPECT_EQ(listed, expected);
  // Other series (another alarm, another channel) keep every point.
  EXPECT_EQ(Must(store_->ListAlarmPoints(other, 0, newest + 1)).size(), 5u);
  EXPECT_EQ(RowCount(path_, "alarm_points"), 15 - 2 + 1);
}

TEST_F(AlarmPointsTest, ALargeBacklogIsPrunedOverSeveralCalls) {
  const std::string ch = CreateChannel().channel.id;
  const AlarmRecord alarm = Must(store_->CreateAlarm("a", "", kSpec));
  constexpr int64_t kOld = 2000;
  Points old;
  for (int64_t i = 0; i < kOld; ++i) old.push_back(Point(alarm.id, ch, kT0 + i * 60, 1));
  Must(store_->RecordAlarmPoints(old));
  ASSERT_EQ(RowCount(path_, "alarm_points"), kOld);

  // Every later point is more than 14 days after all of them.
  int64_t t = kT0 + kOld * 60 + kAlarmPointRetentionS;
  int64_t remaining = kOld + 1;
  int calls = 0;
  while (remaining > 1 && calls < 100) {
    const Points next = {Point(alarm.id, ch, t, 2)};
    Must(store_->RecordAlarmPoints(next));
    ++calls;
    const int64_t now_remaining = RowCount(path_, "alarm_points") - calls;  // new points stay
    EXPECT_LT(now_remaining, remaining) << "each call deletes some of the backlog";
    remaining = now_remaining;
    t += 60;
  }
  EXPECT_EQ(remaining, 0) << "the backlog is gone after " << calls << " calls";
  EXPECT_GT(calls, 1) << "one call deletes a bounded batch, not the whole backlog";
  EXPECT_EQ(Must(store_->ListAlarmPoints(ch, 0, t)).size(), static_cast<size_t>(calls));
}

TEST_F(AlarmsTest, TheSchemaCascadesOnItsOwn) {
  // ON DELETE CASCADE, not only the store's own deletes: rows removed by
  // another client of the file take their alarm rows with them.
  const std::string ch = CreateChannel("a").channel.id;
  const std::string other = CreateChannel("b").channel.id;
  const AlarmRecord bound = Must(store_->CreateAlarm("bound", ch, kSpec));
  const AlarmRecord every = Must(store_->CreateAlarm("every", "", kSpec));
  Must(store_->SaveAlarmChannelState(bound.id, ch, "s"));
  Must(store_->SaveAlarmChannelState(every.id, ch, "s"));
  Must(store_->SaveAlarmChannelState(every.id, other, "s"));
  const Points points = {Point(bound.id, ch, kT0, 1), Point(every.id, ch, kT0, 1),
                         Point(every.id, other, kT0, 1)};
  Must(store_->RecordAlarmPoints(points));
  {
    auto db = Must(store::Database::Open(path_));  // foreign keys on
    auto del = Must(db.Prepare("DELETE FROM channels WHERE id = ?"));
    Must(del.BindText(1, ch));
    Must(del.Run());
  }
  EXPECT_EQ(Must(store_->ListAlarms()), std::vector<AlarmRecord>{every});
  EXPECT_EQ(Must(store_->LoadAlarmChannelStates(every.id)), (States{{other, "s"}}));
  EXPECT_EQ(RowCount(path_, "alarm_points"), 1);
  {
    auto db = Must(store::Database::Open(path_));
    Must(db.Exec("DELETE FROM alarms"));
  }
  EXPECT_EQ(RowCount(path_, "alarm_points"), 0);
  EXPECT_EQ(RowCount(path_, "alarm_channel_states"), 0);
}

// --- Durability and migration -----------------------------------------------------------

TEST_F(AlarmsTest, EverythingIsStillThereAfterAReopen) {
  const std::string ch = CreateChannel().channel.id;
  const AlarmRecord every = Must(store_->CreateAlarm("every", "", kSpec));
  const AlarmRecord bound = Must(store_->CreateAlarm("bound", ch, "{\"n\":1}"));
  const std::string bytes("state\0with\0NULs\xff", 16);
  Must(store_->SaveAlarmChannelState(every.id, ch, bytes));
  const Points points = {Point(every.id, ch, kT0, 1.25, "ALARM"), Point(bound.id, ch, kT0, 2)};
  Must(store_->RecordAlarmPoints(points));
  const auto points_before = Must(store_->ListAlarmPoints(ch, 0, kT0 + 1));
  ASSERT_EQ(points_before.size(), 2u);

  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);

  EXPECT_EQ(Must(store_->ListAlarms()), (std::vector<AlarmRecord>{every, bound}));
  EXPECT_EQ(Must(store_->LoadAlarmChannelStates(every.id)), (States{{ch, bytes}}));
  EXPECT_TRUE(Must(store_->LoadAlarmChannelStates(bound.id)).empty());
  EXPECT_EQ(Must(store_->ListAlarmPoints(ch, 0, kT0 + 1)), points_before);
}

TEST_F(AlarmsTest, ASchemaVersion2FileIsMigrated) {
  // A store written before alarms existed: version 2 without their tables.
  const std::filesystem::path old = dir_ / "old.db";
  {
    auto store = Must(SqliteStateStore::Open(old));
    Must(store->CreateChannel({}));
  }
  {
    auto db = Must(store::Database::Open(old));
    Must(
        db.Exec("DROP TABLE alarm_points; DROP TABLE alarm_channel_states; DROP TABLE alarms; "
                "UPDATE state_schema SET version = 2 WHERE component = 'state'"));
  }
  auto store = Must(SqliteStateStore::Open(old));
  EXPECT_EQ(SqliteStateStore::SchemaVersion(), 3);
  const std::string ch = Must(store->ListChannels({})).channels.at(0).id;
  const AlarmRecord alarm = Must(store->CreateAlarm("a", ch, kSpec));
  Must(store->SaveAlarmChannelState(alarm.id, ch, "s"));
  const Points points = {Point(alarm.id, ch, kT0, 1)};
  Must(store->RecordAlarmPoints(points));
  EXPECT_EQ(Must(store->ListAlarmPoints(ch, 0, kT0 + 1)), points);
  // The migrated schema cascades like a new one.
  Must(store->DeleteChannel(ch));
  EXPECT_TRUE(Must(store->ListAlarms()).empty());
}

}  // namespace
}  // namespace earshot::state
