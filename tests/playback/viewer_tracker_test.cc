// ViewerTracker with explicit times: active viewers and their idle timeout,
// the exact per-minute maximum (viewers who join and leave inside a minute,
// viewers spanning minutes, long gaps), each closed minute handed out once,
// live channels without viewers, the per-channel cap, out-of-order times,
// Forget, and many threads at once.
#include "playback/viewer_tracker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace earshot::playback {
namespace {

// 2027-01-15T08:00:00Z, the start of a minute.
constexpr int64_t kT0 = 1'800'000'000'000;
constexpr int64_t kT0s = kT0 / 1000;
constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;

std::vector<ViewerMinute> Take(ViewerTracker& t, int64_t now_ms,
                               std::vector<std::string> live = {}) {
  return t.TakeClosedMinutes(now_ms, live);
}

TEST(ViewerTrackerTest, CountsDistinctActiveViewersUntilTheirIdleTimeout) {
  ViewerTracker t(10 * kSecond);
  EXPECT_EQ(t.Count("ch-a", kT0), 0);
  t.Seen("ch-a", "alice", kT0);
  t.Seen("ch-a", "bob", kT0 + 1 * kSecond);
  t.Seen("ch-a", "alice", kT0 + 5 * kSecond);  // the same viewer again
  t.Seen("ch-a", "alice", kT0 + 5 * kSecond);
  EXPECT_EQ(t.Count("ch-a", kT0 + 5 * kSecond), 2);
  // bob's last request was at +1 s: still active at exactly +11 s, gone after.
  EXPECT_EQ(t.Count("ch-a", kT0 + 11 * kSecond), 2);
  EXPECT_EQ(t.Count("ch-a", kT0 + 11 * kSecond + 1), 1);
  EXPECT_EQ(t.Count("ch-a", kT0 + 15 * kSecond), 1);
  EXPECT_EQ(t.Count("ch-a", kT0 + 15 * kSecond + 1), 0);
  // A viewer who comes back after leaving counts again.
  t.Seen("ch-a", "bob", kT0 + 20 * kSecond);
  EXPECT_EQ(t.Count("ch-a", kT0 + 20 * kSecond), 1);
}

TEST(ViewerTrackerTest, ChannelsAreCountedSeparately) {
  ViewerTracker t(10 * kSecond);
  t.Seen("ch-a", "v1", kT0);
  t.Seen("ch-a", "v2", kT0);
  t.Seen("ch-b", "v1", kT0 + 8 * kSecond);  // the same key on another channel
  t.Seen("ch-c", "v9", kT0);
  EXPECT_EQ(t.Count("ch-a", kT0 + 8 * kSecond), 2);
  EXPECT_EQ(t.Count("ch-b", kT0 + 8 * kSecond), 1);
  EXPECT_EQ(t.Count("ch-unknown", kT0 + 8 * kSecond), 0);
  EXPECT_EQ(t.Counts(kT0 + 8 * kSecond),
            (std::map<std::string, int64_t>{{"ch-a", 2}, {"ch-b", 1}, {"ch-c", 1}}));
  // ch-a and ch-c have expired; channels without viewers are not listed.
  EXPECT_EQ(t.Counts(kT0 + 15 * kSecond), (std::map<std::string, int64_t>{{"ch-b", 1}}));
  EXPECT_TRUE(t.Counts(kT0 + kMinute).empty());
}

TEST(ViewerTrackerTest, MinuteMaximumCountsViewersWhoJoinAndLeaveInsideIt) {
  ViewerTracker t(5 * kSecond);
  // Minute 0: one viewer for 5 s; nobody is left when the minute ends.
  t.Seen("ch-a", "alice", kT0 + 10 * kSecond);
  // Minute 1: two at once around +62 s, then one at a time.
  t.Seen("ch-a", "alice", kT0 + 61 * kSecond);
  t.Seen("ch-a", "bob", kT0 + 62 * kSecond);
  t.Seen("ch-a", "carol", kT0 + 90 * kSecond);
  t.Seen("ch-a", "dave", kT0 + 100 * kSecond);
  EXPECT_EQ(t.Count("ch-a", kT0 + 100 * kSecond), 1);
  EXPECT_EQ(Take(t, kT0 + 2 * kMinute),
            (std::vector<ViewerMinute>{{"ch-a", kT0s, 1}, {"ch-a", kT0s + 60, 2}}));
}

TEST(ViewerTrackerTest, EachClosedMinuteIsReturnedOnceAndOpenMinutesWait) {
  ViewerTracker t(5 * kSecond);
  t.Seen("ch-a", "alice", kT0 + 1 * kSecond);
  EXPECT_TRUE(Take(t, kT0 + 59 * kSecond).empty()) << "minute 0 has not ended";
  t.Seen("ch-a", "bob", kT0 + 59 * kSecond);
  t.Seen("ch-a", "carol", kT0 + 61 * kSecond);
  const std::vector<ViewerMinute> first = Take(t, kT0 + 61 * kSecond);
  EXPECT_EQ(first, (std::vector<ViewerMinute>{{"ch-a", kT0s, 1}}));
  EXPECT_TRUE(Take(t, kT0 + 61 * kSecond).empty());
  EXPECT_TRUE(Take(t, kT0 + 119 * kSecond).empty());
  // Minute 1 started with bob (seen at 59 s, active until 64 s) and carol.
  EXPECT_EQ(Take(t, kT0 + 120 * kSecond), (std::vector<ViewerMinute>{{"ch-a", kT0s + 60, 2}}));
  EXPECT_TRUE(Take(t, kT0 + 10 * kMinute).empty());
}

TEST(ViewerTrackerTest, ViewersCarryIntoTheNextMinutesAndLongGapsAreSkipped) {
  ViewerTracker t(60 * kSecond);
  t.Seen("ch-a", "alice", kT0 + 50 * kSecond);  // active until +110 s
  t.Seen("ch-a", "bob", kT0 + 55 * kSecond);    // active until +115 s
  // Ten days later (the loop over minutes must not walk them all).
  const int64_t later = kT0 + 10LL * 24 * 60 * kMinute;
  t.Seen("ch-a", "carol", later + 5 * kSecond);
  EXPECT_EQ(t.Count("ch-a", later + 5 * kSecond), 1);
  EXPECT_EQ(Take(t, later + kMinute),
            (std::vector<ViewerMinute>{
                {"ch-a", kT0s, 2}, {"ch-a", kT0s + 60, 2}, {"ch-a", later / 1000, 1}}));
}

TEST(ViewerTrackerTest, LiveChannelsWithoutViewersGiveZeros) {
  ViewerTracker t(5 * kSecond);
  // First listed live during minute 0: its minutes count from there.
  EXPECT_TRUE(Take(t, kT0 + 5 * kSecond, {"ch-live"}).empty());
  t.Seen("ch-live", "alice", kT0 + 70 * kSecond);               // minute 1
  t.Seen("ch-quiet", "bob", kT0 + 10 * kSecond);                // not live: minute 0
  t.Seen("ch-quiet", "bob", kT0 + 3 * kMinute + 10 * kSecond);  // and minute 3 only
  EXPECT_EQ(Take(t, kT0 + 4 * kMinute + 1, {"ch-live"}),
            (std::vector<ViewerMinute>{{"ch-live", kT0s, 0},
                                       {"ch-live", kT0s + 60, 1},
                                       {"ch-live", kT0s + 120, 0},
                                       {"ch-live", kT0s + 180, 0},
                                       {"ch-quiet", kT0s, 1},
                                       {"ch-quiet", kT0s + 180, 1}}));
  // Still live: the next closed minute is a 0, returned once.
  EXPECT_EQ(Take(t, kT0 + 5 * kMinute, {"ch-live"}),
            (std::vector<ViewerMinute>{{"ch-live", kT0s + 240, 0}}));
  EXPECT_TRUE(Take(t, kT0 + 5 * kMinute + 30 * kSecond, {"ch-live"}).empty());
  // No longer live: no more zeros.
  EXPECT_TRUE(Take(t, kT0 + 9 * kMinute).empty());
}

TEST(ViewerTrackerTest, ACappedChannelKeepsTheMostRecentlySeenViewers) {
  ViewerTracker t(100, /*max_viewers_per_channel=*/3);
  t.Seen("ch-a", "a", kT0 + 1);
  t.Seen("ch-a", "b", kT0 + 2);
  t.Seen("ch-a", "c", kT0 + 3);
  t.Seen("ch-a", "a", kT0 + 10);  // a is now the most recent
  EXPECT_EQ(t.Count("ch-a", kT0 + 10), 3);
  t.Seen("ch-a", "d", kT0 + 11);  // beyond the cap: b (least recent) makes room
  t.Seen("ch-a", "e", kT0 + 12);  // and then c
  EXPECT_EQ(t.Count("ch-a", kT0 + 12), 3) << "the count saturates at the cap";
  EXPECT_EQ(t.Counts(kT0 + 12), (std::map<std::string, int64_t>{{"ch-a", 3}}));
  // a (10), d (11) and e (12) are the ones tracked: they expire in that order.
  EXPECT_EQ(t.Count("ch-a", kT0 + 111), 2);
  EXPECT_EQ(t.Count("ch-a", kT0 + 112), 1);
  EXPECT_EQ(t.Count("ch-a", kT0 + 113), 0);
  // Other channels have their own cap.
  t.Seen("ch-b", "x", kT0 + 200);
  EXPECT_EQ(t.Count("ch-b", kT0 + 200), 1);
}

TEST(ViewerTrackerTest, TimesSlightlyOutOfOrderStillExpireExactly) {
  ViewerTracker t(100);
  t.Seen("ch-a", "a", kT0 + 1000);
  t.Seen("ch-a", "b", kT0 + 900);  // a caller that read the clock earlier
  t.Seen("ch-a", "c", kT0 + 950);
  t.Seen("ch-a", "a", kT0 + 990);  // older than a's latest: a keeps 1000
  EXPECT_EQ(t.Count("ch-a", kT0 + 1000), 3);
  EXPECT_EQ(t.Count("ch-a", kT0 + 1001), 2);  // b (900) is gone
  EXPECT_EQ(t.Count("ch-a", kT0 + 1051), 1);  // c (950) too
  EXPECT_EQ(t.Count("ch-a", kT0 + 1100), 1);
  EXPECT_EQ(t.Count("ch-a", kT0 + 1101), 0);
}

TEST(ViewerTrackerTest, AnEventArrivingAfterItsMinuteClosedCountsInTheCurrentOne) {
  ViewerTracker t(5 * kSecond);
  t.Seen("ch-a", "a", kT0 + 61 * kSecond);
  t.Seen("ch-a", "b", kT0 + 59 * kSecond);  // raced past the minute boundary
  EXPECT_EQ(Take(t, kT0 + 2 * kMinute), (std::vector<ViewerMinute>{{"ch-a", kT0s + 60, 2}}));
}

TEST(ViewerTrackerTest, ForgetDropsViewersAndMinutesNotYetTaken) {
  ViewerTracker t(10 * kSecond);
  t.Seen("ch-a", "a", kT0);
  t.Seen("ch-b", "a", kT0);
  t.Seen("ch-a", "b", kT0 + kMinute);  // closes minute 0 of ch-a
  t.Forget("ch-a");
  t.Forget("ch-never-seen");
  EXPECT_EQ(t.Count("ch-a", kT0 + kMinute), 0);
  EXPECT_EQ(Take(t, kT0 + 2 * kMinute), (std::vector<ViewerMinute>{{"ch-b", kT0s, 1}}));
  // The channel can come back.
  t.Seen("ch-a", "c", kT0 + 2 * kMinute);
  EXPECT_EQ(t.Count("ch-a", kT0 + 2 * kMinute), 1);
}

TEST(ViewerTrackerTest, ManyThreadsAtOnce) {
  ViewerTracker t(kMinute);
  constexpr int kThreads = 8;
  constexpr int kChannels = 5;
  constexpr int kViewersPerThread = 2000;
  std::atomic<bool> done{false};
  std::vector<ViewerMinute> taken;
  // A reader that takes minutes and counts while the writers run.
  std::thread reader([&] {
    for (int i = 0; i < 10000 && !done.load(); ++i) {
      (void)t.Counts(kT0 + 30 * kSecond);
      auto minutes = t.TakeClosedMinutes(kT0 + 30 * kSecond, std::vector<std::string>{"ch-0"});
      taken.insert(taken.end(), minutes.begin(), minutes.end());
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kThreads; ++w) {
    writers.emplace_back([&t, w] {
      for (int i = 0; i < kViewersPerThread; ++i) {
        const std::string channel = "ch-" + std::to_string(i % kChannels);
        const std::string viewer = "w" + std::to_string(w) + "-" + std::to_string(i);
        t.Seen(channel, viewer, kT0 + 1 + i);
        t.Seen(channel, viewer, kT0 + 1 + i);  // again: no double count
      }
    });
  }
  for (std::thread& w : writers) w.join();
  done = true;
  reader.join();
  EXPECT_TRUE(taken.empty()) << "no minute had ended at +30 s";
  const auto counts = t.Counts(kT0 + 30 * kSecond);
  ASSERT_EQ(counts.size(), static_cast<size_t>(kChannels));
  for (const auto& [channel, count] : counts) {
    EXPECT_EQ(count, kThreads * kViewersPerThread / kChannels) << channel;
  }
  const std::vector<ViewerMinute> minutes = Take(t, kT0 + kMinute);
  ASSERT_EQ(minutes.size(), static_cast<size_t>(kChannels));
  for (const ViewerMinute& m : minutes) {
    EXPECT_EQ(m.minute_start_s, kT0s);
    EXPECT_EQ(m.max_viewers, kThreads * kViewersPerThread / kChannels) << m.channel_id;
  }
}

}  // namespace
}  // namespace earshot::playback
