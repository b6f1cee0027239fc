// The viewer-count anomaly detector on synthetic channels (fixed seeds):
// raids, sustained jumps, gaps, tiny channels, new channels, frozen learning,
// serialisation.
#include "anomaly/viewer_anomaly_detector.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "synthetic_channel.h"

namespace earshot::anomaly {
namespace {

using testing::kDay;
using testing::kT0;
using testing::Sample;
using testing::SyntheticChannel;

struct RunStats {
  int alarm_edges = 0;
  std::optional<int64_t> first_alarm;
  std::optional<int64_t> first_auto_stop;
  DetectorPoint last;
};

RunStats Feed(ViewerAnomalyDetector& d, const std::string& channel,
              const std::vector<Sample>& samples) {
  RunStats s;
  bool was = d.Find(channel) && d.Find(channel)->evaluator().state() == AlarmState::kAlarm;
  for (const Sample& x : samples) {
    s.last = d.Update(channel, x.t, x.value);
    if (s.last.alarm() && !was) {
      ++s.alarm_edges;
      if (!s.first_alarm) s.first_alarm = x.t;
    }
    if (s.last.auto_stop && !s.first_auto_stop) s.first_auto_stop = x.t;
    was = s.last.alarm();
  }
  return s;
}

std::pair<double, double> None(double) { return {0, 0}; }

TEST(ViewerAnomalyDetectorTest, RaidThatFadesDoesNotAlarm) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    SyntheticChannel ch(200, seed);
    ViewerAnomalyDetector d;
    Feed(d, "c", ch.History(0, 14));
    // 3000 viewers (15x) arrive at once 60 minutes in and leave with a
    // 12-minute time constant.
    auto raid = ch.Session(kT0 + 14 * kDay + 19 * 3600, 180, [](double m) {
      return std::pair<double, double>{m >= 60 ? 3000 * std::exp(-(m - 60) / 12.0) : 0.0, 0};
    });
    const RunStats s = Feed(d, "c", raid);
    EXPECT_EQ(s.alarm_edges, 0) << "seed " << seed;
    // The raid did go above the band: it is the shape that kept it quiet.
    bool above = false;
    for (const Sample& x : raid) above = above || x.value > 5 * 200 * 3;
    EXPECT_TRUE(above);
  }
}

TEST(ViewerAnomalyDetectorTest, SustainedTwentyTimesJumpAlarmsWithinTenMinutes) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    SyntheticChannel ch(200, seed);
    ViewerAnomalyDetector d;
    Feed(d, "c", ch.History(0, 14));
    const int64_t start = kT0 + 14 * kDay + 19 * 3600;
    const int64_t onset = start + 45 * 60;
    auto abuse = ch.Session(start, 240, [](double m) {
      return std::pair<double, double>{0, m >= 45 ? 4000 * (1 - std::exp(-(m - 44) / 3.0)) : 0.0};
    });
    const RunStats s = Feed(d, "c", abuse);
    ASSERT_TRUE(s.first_alarm) << "seed " << seed;
    EXPECT_GE(*s.first_alarm, onset);
    EXPECT_LE(*s.first_alarm - onset, 10 * 60) << "seed " << seed;
    EXPECT_EQ(s.alarm_edges, 1) << "one alarm for one jump, seed " << seed;
    ASSERT_TRUE(s.first_auto_stop) << "a 20x jump held for hours is safe to stop";
    EXPECT_GE(*s.first_auto_stop - onset, 8 * 60) << "auto-stop waits for the jump to hold";
  }
}

TEST(ViewerAnomalyDetectorTest, StreamOffForDaysAndMissingMinutesDoNotAlarm) {
  SyntheticChannel ch(300, 7);
  ViewerAnomalyDetector d;
  Feed(d, "c", ch.History(0, 10));
  // Off for 6 days, then sessions losing 10% of their samples and a
  // 12-minute hole each.
  for (int day = 16; day < 21; ++day) {
    auto s = ch.Session(kT0 + day * kDay + 19 * 3600, 180, None, 0.10);
    std::erase_if(s, [&](const Sample& x) {
      const int64_t m = (x.t - (kT0 + day * kDay + 19 * 3600)) / 60;
      return m >= 60 && m < 72;
    });
    EXPECT_EQ(Feed(d, "c", s).alarm_edges, 0) << "day " << day;
  }
  // The model still knows the channel after the gap: a 30x jump alarms.
  auto abuse = ch.Session(
      kT0 + 21 * kDay + 19 * 3600, 180,
      [](double m) {
        return std::pair<double, double>{0, m >= 30 ? 9000.0 : 0.0};
      },
      0.10);
  EXPECT_EQ(Feed(d, "c", abuse).alarm_edges, 1);
}

TEST(ViewerAnomalyDetectorTest, TinyChannelPoissonNoiseNeverAlarms) {
  for (double level : {0.5, 2.0, 4.0}) {
    SyntheticChannel ch(level, 11);
    ViewerAnomalyDetector d;
    const RunStats s = Feed(d, "tiny", ch.History(0, 28, 240));
    EXPECT_EQ(s.alarm_edges, 0) << "level " << level;
  }
}

TEST(ViewerAnomalyDetectorTest, NewChannelQuietOnNormalSessionsAlarmsOnAbsurdJump) {
  {
    SyntheticChannel ch(20, 5);
    ViewerAnomalyDetector d;
    const RunStats s = Feed(d, "fresh", ch.History(0, 4, 120));
    EXPECT_EQ(s.alarm_edges, 0) << "a new channel's first normal sessions";
  }
  {
    SyntheticChannel ch(20, 5);
    ViewerAnomalyDetector d;
    // The very first session is a re-streamed match: 3000 viewers.
    auto abuse = ch.Session(kT0 + 19 * 3600, 150, [](double m) {
      return std::pair<double, double>{0, 3000 * (1 - std::exp(-(m + 1) / 4.0))};
    });
    const RunStats s = Feed(d, "fresh", abuse);
    ASSERT_TRUE(s.first_alarm) << "an absurd jump from the prior";
    EXPECT_LE(*s.first_alarm - (kT0 + 19 * 3600), 15 * 60);
  }
}

TEST(ViewerAnomalyDetectorTest, LearningIsFrozenWhileAlarming) {
  SyntheticChannel ch(500, 3);
  ViewerAnomalyDetector d;
  Feed(d, "c", ch.History(0, 14));
  const int64_t next = kT0 + 14 * kDay + 19 * 3600;
  const double high_before = d.Find("c")->model().Predict(next + 30 * 60).band_high;
  // (A 500-viewer channel is absurd for the prior: its first session alarmed
  // and the young model rebased then.)
  const uint32_t rebases_before = d.Find("c")->model().rebases();
  // A three-hour 20x jump, all of it alarmed after the first minutes.
  auto abuse = ch.Session(next, 200, [](double m) {
    return std::pair<double, double>{0, m >= 10 ? 10000.0 : 0.0};
  });
  const RunStats s = Feed(d, "c", abuse);
  ASSERT_TRUE(s.first_alarm);
  EXPECT_TRUE(s.last.alarm()) << "still alarming at the end of the jump";
  EXPECT_EQ(d.Find("c")->model().rebases(), rebases_before) << "3 hours is not a new normal";
  // Next day, same hour: the band has not absorbed the jump.
  const double high_after = d.Find("c")->model().Predict(next + kDay + 30 * 60).band_high;
  EXPECT_LT(high_after, high_before * 1.25);
  EXPECT_GT(high_after, high_before * 0.75);
  // And the following normal session is quiet.
  EXPECT_EQ(Feed(d, "c", ch.Session(next + kDay, 180)).alarm_edges, 0);
}

TEST(ViewerAnomalyDetectorTest, WorksAtOtherCadences) {
  for (int64_t step : {30, 300}) {
    SyntheticChannel ch(200, 9);
    ViewerAnomalyDetector d;
    for (int day = 0; day < 14; ++day) {
      auto s = ch.Session(kT0 + day * kDay + 19 * 3600, 180, None, 0.0, step);
      EXPECT_EQ(Feed(d, "c", s).alarm_edges, 0) << "step " << step << " day " << day;
    }
    const int64_t start = kT0 + 14 * kDay + 19 * 3600;
    auto abuse = ch.Session(
        start, 180,
        [](double m) {
          return std::pair<double, double>{0, m >= 30 ? 5000.0 : 0.0};
        },
        0.0, step);
    const RunStats s = Feed(d, "c", abuse);
    ASSERT_TRUE(s.first_alarm) << "step " << step;
    EXPECT_LE(*s.first_alarm - (start + 30 * 60), 12 * 60) << "step " << step;
  }
}

TEST(ViewerAnomalyDetectorTest, ChannelsAreIndependent) {
  SyntheticChannel a(200, 1), b(5000, 2);
  ViewerAnomalyDetector d;
  auto ha = a.History(0, 7), hb = b.History(0, 7);
  // Interleave by time.
  std::vector<std::pair<std::string, Sample>> all;
  for (auto& x : ha) all.push_back({"a", x});
  for (auto& x : hb) all.push_back({"b", x});
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& l, const auto& r) { return l.second.t < r.second.t; });
  for (auto& [c, x] : all) d.Update(c, x.t, x.value);
  EXPECT_EQ(d.size(), 2u);
  const double ea = d.Find("a")->model().Predict(kT0 + 7 * kDay + 20 * 3600).expected;
  const double eb = d.Find("b")->model().Predict(kT0 + 7 * kDay + 20 * 3600).expected;
  EXPECT_NEAR(ea, 200, 80);
  EXPECT_NEAR(eb, 5000, 2000);
  EXPECT_EQ(d.Find("zzz"), nullptr);
}

TEST(ViewerAnomalyDetectorTest, SerializationRoundTripContinuesIdentically) {
  SyntheticChannel ch(300, 4);
  auto history = ch.History(0, 10);
  auto abuse = ch.Session(kT0 + 10 * kDay + 19 * 3600, 180, [](double m) {
    return std::pair<double, double>{0, m >= 20 ? 8000.0 : 0.0};
  });
  ViewerAnomalyDetector a, b;
  Feed(a, "c", history);
  // Stop in the middle of an alarm so every part of the state matters.
  std::vector<Sample> first(abuse.begin(), abuse.begin() + 60),
      rest(abuse.begin() + 60, abuse.end());
  Feed(a, "c", first);
  ASSERT_TRUE(a.Find("c")->evaluator().state() == AlarmState::kAlarm);
  auto bytes = a.SerializeChannel("c");
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  EXPECT_LT(bytes->size(), 4096u) << "a few KB per channel";
  ASSERT_TRUE(b.RestoreChannel("c", *bytes));
  EXPECT_EQ(*b.SerializeChannel("c"), *bytes);
  EXPECT_EQ(b.Find("c")->evaluator().history().size(), a.Find("c")->evaluator().history().size());
  for (const Sample& x : rest) {
    const DetectorPoint pa = a.Update("c", x.t, x.value);
    const DetectorPoint pb = b.Update("c", x.t, x.value);
    ASSERT_EQ(pa.state, pb.state);
    ASSERT_EQ(pa.auto_stop, pb.auto_stop);
    ASSERT_EQ(pa.band.band_high, pb.band.band_high);
    ASSERT_EQ(pa.band.band_low, pb.band.band_low);
  }
  EXPECT_FALSE(a.SerializeChannel("nope"));
}

TEST(ViewerAnomalyDetectorTest, CorruptStateIsRejected) {
  SyntheticChannel ch(300, 4);
  ViewerAnomalyDetector d;
  Feed(d, "c", ch.History(0, 3));
  const std::string good = *d.SerializeChannel("c");
  // Every single-byte change is caught (checksums on each layer).
  for (size_t i = 0; i < good.size(); i += 7) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    auto s = d.RestoreChannel("x", bad);
    ASSERT_FALSE(s) << "flipped byte " << i;
    EXPECT_TRUE(s.error().code() == ErrorCode::kCorruptData ||
                s.error().code() == ErrorCode::kVersionMismatch)
        << s.error().ToString();
  }
  auto truncated = d.RestoreChannel("x", good.substr(0, good.size() / 2));
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().code(), ErrorCode::kCorruptData);
  auto empty = d.RestoreChannel("x", "");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message().find("truncated"), std::string::npos)
      << empty.error().message();
  EXPECT_EQ(d.Find("x"), nullptr) << "a failed restore adds nothing";
  // A model state is not a detector state.
  auto model_bytes = d.Find("c")->model().Serialize();
  auto wrong = d.RestoreChannel("x", model_bytes);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kCorruptData);
}

TEST(ViewerAnomalyDetectorTest, OptionsAreValidated) {
  DetectorOptions o;
  o.alarm.datapoints_to_alarm = 5;
  o.alarm.evaluation_periods = 3;
  auto d = ViewerAnomalyDetector::Create(o);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
  o = {};
  o.model.fade_ratio = 1.5;
  EXPECT_FALSE(ViewerAnomalyDetector::Create(o));
  EXPECT_TRUE(ViewerAnomalyDetector::Create({}));
}

}  // namespace
}  // namespace earshot::anomaly
