#include "video/video_matcher.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "synthetic_frames.h"

namespace earshot::video {
namespace {

using testing::Blank;
using testing::Image;
using testing::Mirror;
using testing::Reencode;
using testing::Scene;

// Synthetic "videos": reference r shows a new picture every 500 ms,
// Scene(1000 * r + k) during [500k, 500k + 500) ms, for 30 s.
constexpr int64_t kShotMs = 500;
constexpr int kShots = 60;

Image Shot(uint32_t ref, int k) { return Scene(1000 * ref + static_cast<uint32_t>(k), 160, 90); }

class VideoMatcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    index_ = new HashIndex();
    for (uint32_t ref = 1; ref <= 3; ++ref) {
      for (int64_t t = 0; t < kShots * kShotMs; t += 250) {  // catalog samples at 4 fps
        auto h = HashReferenceFrame(Shot(ref, static_cast<int>(t / kShotMs)).plane(), {});
        ASSERT_TRUE(h);
        for (const ViewHash& v : h->views) index_->Add(ref, t, v.bits, v.view);
      }
    }
    index_->Build();
  }
  static void TearDownTestSuite() {
    delete index_;
    index_ = nullptr;
  }

  static FrameHashes QueryOf(const Image& img) {
    auto h = HashQueryFrame(img.plane(), {});
    EXPECT_TRUE(h);
    return h ? *h : FrameHashes{};
  }

  static HashIndex* index_;
};
HashIndex* VideoMatcherTest::index_ = nullptr;

// Options without the two-frame shortcut for near-identical copies.
VideoMatcherOptions ThreeFrames() {
  VideoMatcherOptions o;
  o.strong_max_hamming = 0;
  return o;
}

// Default options without the periodic "ongoing" reports.
VideoMatcherOptions NoRepeats() {
  VideoMatcherOptions o;
  o.repeat_ms = 0;
  return o;
}

TEST_F(VideoMatcherTest, FindsInOrderSequenceAfterEnoughFrames) {
  VideoMatcher matcher(*index_, ThreeFrames());
  std::vector<VideoMatch> all;
  int first_match_frame = -1;
  // The stream shows reference 2 from 5 s on, starting at stream time 60 s,
  // sampled every 500 ms, re-encoded.
  for (int i = 0; i < 16; ++i) {
    const int64_t stream_ms = 60000 + i * kShotMs + 120;
    const int shot = 10 + i;
    auto m = matcher.Feed(stream_ms, QueryOf(Reencode(Shot(2, shot), static_cast<uint32_t>(i))));
    if (!m.empty() && first_match_frame < 0) first_match_frame = i;
    all.insert(all.end(), m.begin(), m.end());
  }
  ASSERT_EQ(all.size(), 1u) << "one match event, not one per frame";
  EXPECT_EQ(all[0].ref_id, 2u);
  EXPECT_EQ(first_match_frame, VideoMatcherOptions{}.min_frames - 1);
  EXPECT_GE(all[0].frames_matched, VideoMatcherOptions{}.min_frames);
  // The confirming frame shows shot 10 + first_match_frame: [5000, 5500) ms + 500 per frame.
  const int64_t expected_ref = (10 + first_match_frame) * kShotMs;
  EXPECT_GE(all[0].ref_offset_ms, expected_ref - 250);
  EXPECT_LE(all[0].ref_offset_ms, expected_ref + kShotMs);
  EXPECT_EQ(all[0].stream_time_ms, 60000 + first_match_frame * kShotMs + 120);
  EXPECT_GT(all[0].score, 60);
  EXPECT_LE(all[0].score, 100);
}

TEST_F(VideoMatcherTest, NearIdenticalCopyConfirmedByTwoFrames) {
  // Exact frames: distance ~0, so two consistent frames are enough ...
  VideoMatcher fast(*index_, {});
  EXPECT_TRUE(fast.Feed(0, QueryOf(Shot(1, 20))).empty());
  const auto m = fast.Feed(kShotMs, QueryOf(Shot(1, 21)));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].frames_matched, 2);
  EXPECT_EQ(m[0].ref_id, 1u);
  // ... unless the shortcut is disabled.
  VideoMatcher strict(*index_, ThreeFrames());
  EXPECT_TRUE(strict.Feed(0, QueryOf(Shot(1, 20))).empty());
  EXPECT_TRUE(strict.Feed(kShotMs, QueryOf(Shot(1, 21))).empty());
  EXPECT_EQ(strict.Feed(2 * kShotMs, QueryOf(Shot(1, 22))).size(), 1u);
}

TEST_F(VideoMatcherTest, FindsMirroredAndSpedUpCopy) {
  VideoMatcher matcher(*index_, {});
  std::vector<VideoMatch> all;
  for (int i = 0; i < 12; ++i) {
    // 1.1x: each 500 ms of stream advances 550 ms of reference.
    const int64_t ref_ms = 2000 + i * 550;
    auto m = matcher.Feed(i * kShotMs, QueryOf(Mirror(Shot(3, static_cast<int>(ref_ms / kShotMs)))));
    all.insert(all.end(), m.begin(), m.end());
  }
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].ref_id, 3u);
}

TEST_F(VideoMatcherTest, IgnoresShuffledFramesOfAReference) {
  // Three frames: this shuffle happens to put two frames 7.5 s apart at
  // their true 7.5 s distance (shots 8 and 23), which the two-frame shortcut
  // rightly accepts.
  VideoMatcher matcher(*index_, ThreeFrames());
  size_t hits = 0;
  for (int i = 0; i < 40; ++i) {
    const int shot = (i * 17) % kShots;  // every frame of ref 1, but out of order
    auto m = matcher.Feed(i * kShotMs, QueryOf(Shot(1, shot)));
    EXPECT_TRUE(m.empty()) << "frame " << i;
    hits += matcher.last_hit_count();
  }
  EXPECT_GT(hits, 40u) << "the single frames do hit the index; only their order is wrong";
}

TEST_F(VideoMatcherTest, IgnoresUnrelatedAndFlatFootage) {
  VideoMatcher matcher(*index_, {});
  for (int i = 0; i < 60; ++i) {
    const Image frame = (i % 3 == 0) ? Blank(160, 90, 16) : Scene(50000 + static_cast<uint32_t>(i), 160, 90);
    EXPECT_TRUE(matcher.Feed(i * kShotMs, QueryOf(frame)).empty()) << i;
  }
  EXPECT_EQ(matcher.stored_hits(), 0u);
}

TEST_F(VideoMatcherTest, ReportsAgainOnlyAfterAGapAndMemoryStaysBounded) {
  VideoMatcherOptions options = NoRepeats();
  options.max_stored_hits = 64;
  VideoMatcher matcher(*index_, options);
  std::map<uint32_t, int> events;
  int64_t t = 0;
  // Reference 1 played twice in a row: one event per pass (the second pass
  // is another alignment), not one per frame. Then 40 s of flat frames, then
  // the same alignment as the second pass would continue: a new event
  // because the reference went unconfirmed for longer than rearm_after_ms.
  for (int pass = 0; pass < 2; ++pass) {
    for (int k = 0; k < kShots; ++k, t += kShotMs) {
      for (const VideoMatch& m : matcher.Feed(t, QueryOf(Shot(1, k)))) ++events[m.ref_id];
      EXPECT_LE(matcher.stored_hits(), 64u);
    }
  }
  EXPECT_EQ(events[1], 2);
  for (int k = 0; k < 80; ++k, t += kShotMs) matcher.Feed(t, QueryOf(Blank(160, 90, 0)));
  for (int k = 0; k < 10; ++k, t += kShotMs) {
    for (const VideoMatch& m : matcher.Feed(t, QueryOf(Shot(1, k)))) ++events[m.ref_id];
  }
  EXPECT_EQ(events[1], 3);
  EXPECT_EQ(events.size(), 1u);
}

TEST_F(VideoMatcherTest, OngoingMatchIsReportedPeriodically) {
  VideoMatcher matcher(*index_, {});  // repeat_ms = 10 s
  std::vector<VideoMatch> all;
  for (int k = 0; k < kShots; ++k) {  // 30 s of reference 2
    for (const VideoMatch& m : matcher.Feed(k * kShotMs, QueryOf(Shot(2, k)))) all.push_back(m);
  }
  ASSERT_EQ(all.size(), 3u);  // first report, then after 10 s and 20 s
  EXPECT_FALSE(all[0].ongoing);
  EXPECT_TRUE(all[1].ongoing);
  EXPECT_TRUE(all[2].ongoing);
  EXPECT_EQ(all[1].stream_time_ms - all[0].stream_time_ms, 10000);
  for (const VideoMatch& m : all) {
    EXPECT_EQ(m.ref_id, 2u);
    EXPECT_NEAR(static_cast<double>(m.ref_offset_ms), static_cast<double>(m.stream_time_ms), 300);
  }
}

TEST_F(VideoMatcherTest, TimeGoingBackwardsClearsHistory) {
  VideoMatcher matcher(*index_, ThreeFrames());
  matcher.Feed(10000, QueryOf(Shot(2, 0)));
  matcher.Feed(10500, QueryOf(Shot(2, 1)));
  EXPECT_GT(matcher.stored_hits(), 0u);
  // A restarted stream: the two earlier frames must not count.
  EXPECT_TRUE(matcher.Feed(0, QueryOf(Shot(2, 2))).empty());
  EXPECT_TRUE(matcher.Feed(500, QueryOf(Shot(2, 3))).empty());
  EXPECT_FALSE(matcher.Feed(1000, QueryOf(Shot(2, 4))).empty());
}

}  // namespace
}  // namespace earshot::video
