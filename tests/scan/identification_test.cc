#include "scan/identification.h"

#include <gtest/gtest.h>

#include "scan/stream_clock.h"

namespace earshot::scan {
namespace {

using recognition::StreamEvent;

store::CatalogEntry Entry(store::BusinessRule rule) {
  store::CatalogEntry e;
  e.id = 7;
  e.metadata.title = "Battle Theme";
  e.metadata.artist = "Ana";
  e.metadata.rights_holder = "Label Ltd";
  e.metadata.isrc = "GBAAA2400001";
  e.metadata.tags = {{"album", "Wars"}};
  e.rule = rule;
  return e;
}

StreamEvent Event(StreamEvent::Type type) {
  StreamEvent e;
  e.type = type;
  e.match_id = 3;
  e.track = 7;
  e.start_seconds = 12.25;
  e.end_seconds = 20.5;
  e.reported_at_seconds = 21;
  e.reference_seconds = 61.125;
  e.time_scale = 1.05;
  e.pitch_factor = 0.97;
  e.score = 14.2;
  return e;
}

TEST(StreamIdTest, AcceptsSafeIdsAndExplainsBadOnes) {
  EXPECT_TRUE(ValidateStreamId("st-AbC_1.2"));
  EXPECT_TRUE(ValidateStreamId(std::string(128, 'a')));
  for (const std::string& bad : std::vector<std::string>{"", ".hidden", "a/b", "../x", "a b", "ä", std::string(129, 'a')}) {
    SCOPED_TRACE(bad);
    auto s = ValidateStreamId(bad);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(s.error().message().find("A-Z a-z 0-9 . _ -"), std::string::npos);
  }
  auto channel = ValidateStreamId("x/y", "channel id");
  ASSERT_FALSE(channel);
  EXPECT_EQ(channel.error().message().rfind("channel id", 0), 0u);
}

TEST(IdentificationTest, MatchResponseCarriesEveryField) {
  ScanIdentity scan{"st-1", "ch-9", "20261121T101500Z-0000abcd", 1};
  ResponseTimes times{1'763'720'100'250, 1'763'720'108'500, 1'763'720'109'000};
  auto j = MatchResponse(scan, 4, Event(StreamEvent::Type::kStarted),
                         Entry(store::BusinessRule::kBlock), times);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["type"], "identification");
  EXPECT_EQ(j["status"], "match_started");
  EXPECT_EQ(j["stream_id"], "st-1");
  EXPECT_EQ(j["channel_id"], "ch-9");
  EXPECT_EQ(j["match_id"], "20261121T101500Z-0000abcd-m3");
  EXPECT_EQ(j["sequence"], 4);
  EXPECT_EQ(j["rule"], "block");
  EXPECT_EQ(j["track"]["title"], "Battle Theme");
  EXPECT_EQ(j["track"]["rights_holder"], "Label Ltd");
  EXPECT_EQ(j["track"]["isrc"], "GBAAA2400001");
  EXPECT_EQ(j["track"]["tags"]["album"], "Wars");
  EXPECT_DOUBLE_EQ(j["stream"]["start_s"], 12.25);
  EXPECT_DOUBLE_EQ(j["stream"]["duration_s"], 8.25);
  EXPECT_EQ(j["stream"]["start_time"], IsoTime(times.start_ms));
  EXPECT_EQ(j["stream"]["reported_at"], IsoTime(times.reported_ms));
  EXPECT_DOUBLE_EQ(j["reference"]["start_s"], 61.125);
  EXPECT_DOUBLE_EQ(j["reference"]["time_scale"], 1.05);
  EXPECT_DOUBLE_EQ(j["score"], 14.2);
  EXPECT_EQ(j["algorithm_version"], 1);
  EXPECT_EQ(ResponseFileName(4, j), "000004-match_started-20261121T101500Z-0000abcd-m3.json");

  ScanIdentity no_channel{"st-1", "", "s", 1};
  auto ended = MatchResponse(no_channel, 5, Event(StreamEvent::Type::kEnded),
                             Entry(store::BusinessRule::kTrack), times);
  EXPECT_TRUE(ended["channel_id"].is_null());
  EXPECT_EQ(ended["status"], "match_ended");
}

TEST(IdentificationTest, SummaryListsSegmentsAndTheEditsTheyNeed) {
  ScanIdentity scan{"st-1", "", "scan", 1};
  std::vector<Segment> segments = {
      {"scan-m1", Entry(store::BusinessRule::kBlock), 10, 40, 5, 20, 1000, 31000},
      {"scan-m2", Entry(store::BusinessRule::kMute), 50, 70, 0, 12, 41000, 61000},
      {"scan-m3", Entry(store::BusinessRule::kAllow), 80, 90, 0, 9, 71000, 81000},
  };
  SummaryInfo info;
  info.status = "ended";
  info.started_ms = 0;
  info.ended_ms = 100000;
  info.stream_seconds = 100;
  info.reconnects = 2;
  auto j = StreamSummary(scan, info, segments);
  EXPECT_EQ(j["type"], "stream_summary");
  EXPECT_EQ(j["status"], "ended");
  EXPECT_FALSE(j.contains("error"));
  ASSERT_EQ(j["segments"].size(), 3u);
  EXPECT_EQ(j["segments"][1]["rule"], "mute");
  EXPECT_DOUBLE_EQ(j["segments"][0]["duration_s"], 30);
  ASSERT_EQ(j["edits"]["cut"].size(), 1u);
  EXPECT_EQ(j["edits"]["cut"][0]["match_id"], "scan-m1");
  ASSERT_EQ(j["edits"]["mute"].size(), 1u);
  EXPECT_DOUBLE_EQ(j["edits"]["mute"][0]["start_s"], 50);
  EXPECT_EQ(j["reconnects"], 2);

  info.status = "failed";
  info.error_code = "unavailable";
  info.error_message = "rtmp://127.0.0.1/live/x: connection refused";
  auto failed = StreamSummary(scan, info, {});
  EXPECT_EQ(failed["error"]["code"], "unavailable");
  EXPECT_TRUE(failed["segments"].empty());
}

TEST(IdentificationTest, IsoTimeIsUtcWithMilliseconds) {
  EXPECT_EQ(IsoTime(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(IsoTime(1'763'720'100'250), "2025-11-21T10:15:00.250Z");
}

TEST(StreamClockTest, InterpolatesBetweenArrivalsAndExtrapolatesOutside) {
  StreamClock clock(1.0, 60.0);
  EXPECT_EQ(clock.WallMillis(5), 0);
  clock.Record(0.5, 10'000);
  clock.Record(1.5, 11'000);
  clock.Record(2.0, 20'000);  // a 8.5 s gap in arrival (a reconnect)
  clock.Record(3.0, 21'000);
  EXPECT_EQ(clock.WallMillis(0.5), 10'000);
  EXPECT_EQ(clock.WallMillis(1.0), 10'500);
  EXPECT_EQ(clock.WallMillis(0.0), 9'500);   // before the first point: real-time rate
  EXPECT_EQ(clock.WallMillis(4.0), 22'000);  // after the last one: real-time rate
  EXPECT_GE(clock.WallMillis(1.75), 11'000);
  EXPECT_LE(clock.WallMillis(1.75), 20'000);
}

TEST(StreamClockTest, MemoryIsBoundedByRetention) {
  StreamClock clock(1.0, 30.0);
  for (int i = 0; i < 100000; ++i) clock.Record(i * 0.1, 1000 + i * 100);
  // Old times are extrapolated from the oldest point kept, new ones are exact.
  EXPECT_EQ(clock.WallMillis(9999.9), 1000 + 99999 * 100);
  EXPECT_NEAR(static_cast<double>(clock.WallMillis(9990.0)), 1000 + 99900 * 100, 1);
}

}  // namespace
}  // namespace earshot::scan
