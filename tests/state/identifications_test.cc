// Identifications in SqliteStateStore: upsert by (stream, match) keeping the
// latest state whatever the arrival order, filtered lists, and the usage
// report's sums.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "state_test_util.h"

namespace earshot::state {
namespace {

using testing::FailsWith;
using testing::kStartMs;
using testing::Must;
using testing::StateStoreTest;

constexpr std::string_view kChannelA = "ch-aaaaaaaaaaaa";
constexpr std::string_view kChannelB = "ch-bbbbbbbbbbbb";

IdentificationRecord Match(std::string_view stream, std::string_view match,
                           std::string_view status, double duration_s, int64_t track_id = 1,
                           int64_t started_at_ms = kStartMs, std::string_view channel = kChannelA) {
  IdentificationRecord r;
  r.stream_id = std::string(stream);
  r.channel_id = std::string(channel);
  r.match_id = std::string(match);
  r.status = std::string(status);
  r.rule = "track";
  r.track_rule = "track";
  r.track_id = track_id;
  r.title = "Track " + std::to_string(track_id);
  r.artist = "Artist " + std::to_string(track_id);
  r.rights_holder = "Holder " + std::to_string(track_id);
  r.isrc = "XX00000000" + std::to_string(10 + track_id);
  r.started_at_ms = started_at_ms;
  r.stream_offset_s = 12.25;
  r.duration_s = duration_s;
  r.reference_offset_s = 3.5;
  r.score = 0.875;
  return r;
}

class IdentificationsTest : public StateStoreTest {
 protected:
  IdentificationRecord Get(std::string_view stream, std::string_view match) {
    IdentificationFilter filter;
    filter.stream_id = std::string(stream);
    for (IdentificationRecord& r : Must(store_->ListIdentifications(filter))) {
      if (r.match_id == match) return r;
    }
    ADD_FAILURE() << "no identification " << stream << "/" << match;
    return {};
  }
  size_t Count(IdentificationFilter filter = {}) {
    return Must(store_->ListIdentifications(filter)).size();
  }
};

TEST_F(IdentificationsTest, RecordStoresEveryFieldAndStampsTheUpdateTime) {
  IdentificationRecord r = Match("st-1", "m-1", kMatchStarted, 3.0);
  r.rule = "block";
  r.track_rule = "block";
  r.updated_ms = 5;  // ignored: the store stamps it
  clock_.Advance(777);
  Must(store_->RecordIdentification(r));
  IdentificationRecord expected = r;
  expected.updated_ms = kStartMs + 777;
  EXPECT_EQ(Get("st-1", "m-1"), expected);
}

TEST_F(IdentificationsTest, UpsertKeepsTheLatestStateWhateverTheArrivalOrder) {
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchStarted, 0)));
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchOngoing, 10)));
  EXPECT_EQ(Get("st-1", "m-1").status, kMatchOngoing);
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchOngoing, 25)));
  EXPECT_EQ(Get("st-1", "m-1").duration_s, 25);
  // A late ongoing with a shorter duration changes nothing.
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchOngoing, 15)));
  EXPECT_EQ(Get("st-1", "m-1").duration_s, 25);
  // A late start changes nothing either.
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchStarted, 0)));
  EXPECT_EQ(Get("st-1", "m-1").status, kMatchOngoing);
  // The end is final, even when shorter than the last ongoing (the scanner's
  // final figure wins).
  clock_.Advance(1000);
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchEnded, 24)));
  IdentificationRecord ended = Get("st-1", "m-1");
  EXPECT_EQ(ended.status, kMatchEnded);
  EXPECT_EQ(ended.duration_s, 24);
  EXPECT_EQ(ended.updated_ms, kStartMs + 1000);
  // An ongoing or a start after the end changes nothing (not even updated_ms).
  clock_.Advance(1000);
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchOngoing, 40)));
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchStarted, 0)));
  EXPECT_EQ(Get("st-1", "m-1"), ended);
  // A repeated end replaces the previous one.
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchEnded, 23.5)));
  EXPECT_EQ(Get("st-1", "m-1").duration_s, 23.5);
  EXPECT_EQ(Count(), 1u);

  // The same match id in another stream is another record.
  Must(store_->RecordIdentification(Match("st-2", "m-1", kMatchStarted, 0)));
  EXPECT_EQ(Count(), 2u);
  EXPECT_EQ(Get("st-1", "m-1").status, kMatchEnded);
}

TEST_F(IdentificationsTest, RecordRefusesInvalidRecordsAndRepairsText) {
  IdentificationRecord bad = Match("st-1", "m-1", "match_found", 1);
  EXPECT_TRUE(FailsWith(store_->RecordIdentification(bad), ErrorCode::kInvalidArgument,
                        "match_found"));
  bad = Match("", "m-1", kMatchStarted, 1);
  EXPECT_TRUE(FailsWith(store_->RecordIdentification(bad), ErrorCode::kInvalidArgument,
                        "required"));
  bad = Match("st-1", "m-1", kMatchStarted, std::numeric_limits<double>::infinity());
  EXPECT_TRUE(FailsWith(store_->RecordIdentification(bad), ErrorCode::kInvalidArgument, "finite"));
  bad = Match("st-1", "m-1", kMatchStarted, 1);
  bad.rule = "Block";
  EXPECT_TRUE(FailsWith(store_->RecordIdentification(bad), ErrorCode::kInvalidArgument,
                        "unknown rule"));
  EXPECT_EQ(Count(), 0u);

  IdentificationRecord odd = Match("st-1", "m-1", kMatchStarted, 1);
  odd.title = "T\xFFtle";
  odd.artist = "\xC3";
  Must(store_->RecordIdentification(odd));
  const IdentificationRecord got = Get("st-1", "m-1");
  EXPECT_EQ(got.title, "T\xEF\xBF\xBDtle");
  EXPECT_EQ(got.artist, "\xEF\xBF\xBD");
  EXPECT_NO_THROW((void)IdentificationToJson(got).dump());
}

TEST_F(IdentificationsTest, ListFiltersCombineAndOrderByStartTime) {
  // started_at: t0 + 0, 1, 2, ... minutes, across two streams and channels.
  const int64_t minute = 60'000;
  Must(store_->RecordIdentification(Match("st-b", "m-2", kMatchEnded, 5, 1, kStartMs + 2 * minute)));
  Must(store_->RecordIdentification(Match("st-a", "m-1", kMatchEnded, 5, 1, kStartMs + 0)));
  IdentificationRecord blocked = Match("st-a", "m-3", kMatchStarted, 0, 2, kStartMs + minute);
  blocked.rule = "block";
  Must(store_->RecordIdentification(blocked));
  Must(store_->RecordIdentification(
      Match("st-c", "m-9", kMatchOngoing, 5, 3, kStartMs + 3 * minute, kChannelB)));
  // Same start time: stream id, then match id, decide.
  Must(store_->RecordIdentification(Match("st-b", "m-1", kMatchEnded, 5, 1, kStartMs + 2 * minute)));
  Must(store_->RecordIdentification(Match("st-a", "m-5", kMatchEnded, 5, 1, kStartMs + 2 * minute)));

  auto ids = [&](const IdentificationFilter& filter) {
    std::vector<std::string> out;
    for (const auto& r : Must(store_->ListIdentifications(filter))) {
      out.push_back(r.stream_id + "/" + r.match_id);
    }
    return out;
  };
  EXPECT_EQ(ids({}), (std::vector<std::string>{"st-a/m-1", "st-a/m-3", "st-a/m-5", "st-b/m-1",
                                               "st-b/m-2", "st-c/m-9"}));
  IdentificationFilter f;
  f.stream_id = "st-a";
  EXPECT_EQ(ids(f), (std::vector<std::string>{"st-a/m-1", "st-a/m-3", "st-a/m-5"}));
  f = {};
  f.channel_id = std::string(kChannelB);
  EXPECT_EQ(ids(f), (std::vector<std::string>{"st-c/m-9"}));
  f = {};
  f.from_ms = kStartMs + minute;  // inclusive
  f.to_ms = kStartMs + 3 * minute;  // exclusive
  EXPECT_EQ(ids(f), (std::vector<std::string>{"st-a/m-3", "st-a/m-5", "st-b/m-1", "st-b/m-2"}));
  f.rule = "block";
  EXPECT_EQ(ids(f), (std::vector<std::string>{"st-a/m-3"}));
  f = {};
  f.rule = "mute";
  EXPECT_TRUE(ids(f).empty());
  f = {};
  f.channel_id = std::string(kChannelA);
  f.stream_id = "st-b";
  f.limit = 1;
  EXPECT_EQ(ids(f), (std::vector<std::string>{"st-b/m-1"}));
  f.limit = 0;  // the default (1000)
  EXPECT_EQ(ids(f).size(), 2u);
}

TEST_F(IdentificationsTest, UsageReportSumsLatestDurationsPerTrack) {
  const int64_t hour = 3'600'000;
  // Track 1: three plays over two streams, the first one updated several times.
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchStarted, 0, 1)));
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchOngoing, 20, 1)));
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchEnded, 30, 1)));
  Must(store_->RecordIdentification(Match("st-1", "m-1", kMatchOngoing, 45, 1)));  // late: ignored
  Must(store_->RecordIdentification(Match("st-1", "m-2", kMatchOngoing, 12, 1, kStartMs + 10)));
  Must(store_->RecordIdentification(Match("st-2", "m-1", kMatchEnded, 20, 1, kStartMs + hour - 1)));
  // Track 2: one long play.
  Must(store_->RecordIdentification(Match("st-2", "m-2", kMatchEnded, 100, 2, kStartMs + 20)));
  // Excluded: another channel, and starts outside [from, to).
  Must(store_->RecordIdentification(
      Match("st-9", "m-1", kMatchEnded, 500, 1, kStartMs + 30, kChannelB)));
  Must(store_->RecordIdentification(Match("st-3", "m-1", kMatchEnded, 500, 1, kStartMs + hour)));
  Must(store_->RecordIdentification(Match("st-3", "m-2", kMatchEnded, 500, 2, kStartMs - 1)));

  const auto usage = Must(store_->UsageReport(kChannelA, kStartMs, kStartMs + hour));
  ASSERT_EQ(usage.size(), 2u);
  // Most played first.
  EXPECT_EQ(usage[0], (TrackUsage{2, "Track 2", "Artist 2", "Holder 2", "XX0000000012", 100, 1, 1}));
  EXPECT_EQ(usage[1], (TrackUsage{1, "Track 1", "Artist 1", "Holder 1", "XX0000000011",
                                  30 + 12 + 20, 2, 3}));

  // The other channel has its own report; an empty range or channel has none.
  const auto other = Must(store_->UsageReport(kChannelB, kStartMs, kStartMs + hour));
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].seconds_played, 500);
  EXPECT_TRUE(Must(store_->UsageReport(kChannelA, kStartMs, kStartMs)).empty());
  EXPECT_TRUE(Must(store_->UsageReport("ch-000000000000", 0, kStartMs * 2)).empty());
  // A wider range takes in the excluded plays.
  const auto wide = Must(store_->UsageReport(kChannelA, kStartMs - 1, kStartMs + hour + 1));
  ASSERT_EQ(wide.size(), 2u);
  EXPECT_EQ(wide[0].track_id, 2);
  EXPECT_EQ(wide[0].seconds_played, 600);
  EXPECT_EQ(wide[0].plays, 2);
  EXPECT_EQ(wide[0].streams, 2);
  EXPECT_EQ(wide[1].track_id, 1);
  EXPECT_EQ(wide[1].seconds_played, 562);
  EXPECT_EQ(wide[1].plays, 4);
  EXPECT_EQ(wide[1].streams, 3);
}

TEST_F(IdentificationsTest, UsageReportRefusesAnInvertedRange) {
  EXPECT_TRUE(FailsWith(store_->UsageReport(kChannelA, kStartMs + 1, kStartMs),
                        ErrorCode::kInvalidArgument, "after it ends"));
}

}  // namespace
}  // namespace earshot::state
