#include "scan/video_match_tracker.h"

#include <gtest/gtest.h>

namespace earshot::scan {
namespace {

using Type = recognition::StreamEvent::Type;

video::VideoMatch Report(uint32_t ref, double stream_s, double ref_s, bool ongoing, double score = 80) {
  video::VideoMatch m;
  m.ref_id = ref;
  m.stream_time_ms = static_cast<int64_t>(stream_s * 1000);
  m.ref_offset_ms = static_cast<int64_t>(ref_s * 1000);
  m.score = score;
  m.frames_matched = 3;
  m.ongoing = ongoing;
  return m;
}

TEST(VideoMatchTrackerTest, StartsExtendsAndEndsAQuietMatch) {
  VideoMatchTracker tracker(25.0);
  std::vector<recognition::StreamEvent> events;
  tracker.Update(1.0, {}, events);
  EXPECT_TRUE(events.empty());
  tracker.Update(3.0, {Report(7, 3.0, 10.0, false, 70)}, events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kStarted);
  EXPECT_EQ(events[0].track, 7u);
  EXPECT_EQ(events[0].match_id, 1u);
  EXPECT_DOUBLE_EQ(events[0].start_seconds, 3.0);
  EXPECT_DOUBLE_EQ(events[0].reference_seconds, 10.0);
  events.clear();
  tracker.Update(13.0, {Report(7, 13.0, 20.0, true, 90)}, events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kOngoing);
  EXPECT_DOUBLE_EQ(events[0].end_seconds, 13.0);
  EXPECT_DOUBLE_EQ(events[0].score, 90.0);
  events.clear();
  tracker.Update(38.0, {}, events);  // 25 s after the last report: still open
  EXPECT_TRUE(events.empty());
  tracker.Update(38.5, {}, events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kEnded);
  EXPECT_EQ(events[0].match_id, 1u);
  EXPECT_DOUBLE_EQ(events[0].start_seconds, 3.0);
  EXPECT_DOUBLE_EQ(events[0].end_seconds, 13.0);  // its last report, not now
  EXPECT_EQ(tracker.open_matches(), 0u);
}

TEST(VideoMatchTrackerTest, NewAlignmentEndsTheOldMatchAndStartsAnother) {
  VideoMatchTracker tracker;
  std::vector<recognition::StreamEvent> events;
  tracker.Update(5.0, {Report(2, 5.0, 0.0, false)}, events);
  tracker.Update(9.0, {Report(2, 9.0, 60.0, false)}, events);  // another excerpt
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].type, Type::kEnded);
  EXPECT_EQ(events[1].match_id, 1u);
  EXPECT_EQ(events[2].type, Type::kStarted);
  EXPECT_EQ(events[2].match_id, 2u);
  EXPECT_DOUBLE_EQ(events[2].reference_seconds, 60.0);
}

TEST(VideoMatchTrackerTest, OngoingReportForAClosedMatchStartsOne) {
  VideoMatchTracker tracker(25.0);
  std::vector<recognition::StreamEvent> events;
  tracker.Update(50.0, {Report(4, 50.0, 5.0, true)}, events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kStarted);
}

TEST(VideoMatchTrackerTest, FinishEndsEveryOpenMatchAndReferencesAreIndependent) {
  VideoMatchTracker tracker;
  std::vector<recognition::StreamEvent> events;
  tracker.Update(2.0, {Report(1, 2.0, 0.0, false), Report(3, 2.0, 7.0, false)}, events);
  EXPECT_EQ(tracker.open_matches(), 2u);
  events.clear();
  tracker.Finish(events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, Type::kEnded);
  EXPECT_EQ(events[1].type, Type::kEnded);
  EXPECT_NE(events[0].match_id, events[1].match_id);
  EXPECT_EQ(tracker.open_matches(), 0u);
}

}  // namespace
}  // namespace earshot::scan
