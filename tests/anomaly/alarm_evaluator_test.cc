// AlarmEvaluator: M of N, missing-data treatments, periods, history.
#include "anomaly/alarm_evaluator.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace earshot::anomaly {
namespace {

constexpr int64_t kT = 1741000020;  // 20 s into a minute

AlarmOptions Opts(int m, int n, MissingData missing = MissingData::kMissing) {
  AlarmOptions o;
  o.datapoints_to_alarm = m;
  o.evaluation_periods = n;
  o.missing_data = missing;
  return o;
}

// Feeds one datapoint per minute ('1' breaching, '0' not, '.' missing) and
// returns the state after each minute ('A' ALARM, 'O' OK, 'I' INSUFFICIENT_DATA),
// evaluating missing minutes with Advance().
std::string Trace(AlarmEvaluator& e, const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const int64_t t = kT + static_cast<int64_t>(i) * 60;
    AlarmState s = pattern[i] == '.' ? e.Advance(t) : e.Observe(t, pattern[i] == '1');
    out.push_back(s == AlarmState::kAlarm ? 'A' : s == AlarmState::kOk ? 'O' : 'I');
  }
  return out;
}

TEST(AlarmEvaluatorTest, StartsWithInsufficientData) {
  AlarmEvaluator e;
  EXPECT_EQ(e.state(), AlarmState::kInsufficientData);
  EXPECT_TRUE(e.history().empty());
}

TEST(AlarmEvaluatorTest, MOfN) {
  AlarmEvaluator e(Opts(3, 5));
  EXPECT_EQ(Trace(e, "0011100000"), "OOOOAAAOOO");
  AlarmEvaluator flapping(Opts(3, 5));
  EXPECT_EQ(Trace(flapping, "0101010101"), "OOOOOAOAOA");
  AlarmEvaluator one(Opts(1, 1));
  EXPECT_EQ(Trace(one, "0110"), "OAAO");
  AlarmEvaluator all(Opts(3, 3));
  EXPECT_EQ(Trace(all, "11011100"), "OOOOOAOO");
}

TEST(AlarmEvaluatorTest, PeriodMaximumMergesSamplesOfAPeriod) {
  AlarmOptions o = Opts(2, 2);
  o.period_s = 300;
  AlarmEvaluator e(o);
  const int64_t p0 = 1741000200;  // a multiple of 300
  EXPECT_EQ(e.Observe(p0, false), AlarmState::kOk);
  EXPECT_EQ(e.Observe(p0 + 60, true), AlarmState::kOk);      // period 0 now breaching (max)
  EXPECT_EQ(e.Observe(p0 + 120, false), AlarmState::kOk);    // still 1 datapoint
  EXPECT_EQ(e.Observe(p0 + 300, true), AlarmState::kAlarm);  // 2 of 2 periods
}

TEST(AlarmEvaluatorTest, MissingDataTreatments) {
  // 2 of 3; breach, then a hole of three minutes, then a breach.
  const std::string pattern = "1...1";
  {
    AlarmEvaluator e(Opts(2, 3, MissingData::kMissing));
    // Missing periods are skipped: the two breaches are the last datapoints.
    EXPECT_EQ(Trace(e, pattern), "OOOOA");
  }
  {
    AlarmEvaluator e(Opts(2, 3, MissingData::kNotBreaching));
    EXPECT_EQ(Trace(e, pattern), "OOOOO");
  }
  {
    AlarmEvaluator e(Opts(2, 3, MissingData::kBreaching));
    EXPECT_EQ(Trace(e, pattern), "OAAAA");
  }
  {
    AlarmEvaluator e(Opts(2, 3, MissingData::kIgnore));
    EXPECT_EQ(Trace(e, pattern), "OOOOA");
  }
}

TEST(AlarmEvaluatorTest, LongSilenceMeansInsufficientDataUnlessIgnored) {
  AlarmOptions o = Opts(1, 2, MissingData::kMissing);
  o.max_lookback_s = 600;
  AlarmEvaluator missing(o);
  EXPECT_EQ(missing.Observe(kT, true), AlarmState::kAlarm);
  EXPECT_EQ(missing.Advance(kT + 300), AlarmState::kAlarm);  // within the lookback
  EXPECT_EQ(missing.Advance(kT + 3 * 3600), AlarmState::kInsufficientData);
  o.missing_data = MissingData::kIgnore;
  AlarmEvaluator ignore(o);
  EXPECT_EQ(ignore.Observe(kT, true), AlarmState::kAlarm);
  EXPECT_EQ(ignore.Advance(kT + 3 * 3600), AlarmState::kAlarm);  // state kept
  EXPECT_EQ(ignore.Observe(kT + 3 * 3600 + 60, false), AlarmState::kOk);
}

TEST(AlarmEvaluatorTest, HistoryRecordsEveryChange) {
  AlarmOptions o = Opts(2, 3);
  o.max_history = 3;
  AlarmEvaluator e(o);
  Trace(e, "0110001100");
  // Changes: I->O (t0), O->A (t2), A->O (t5 ... when 1 of 3), O->A, A->O; 3 kept.
  ASSERT_EQ(e.history().size(), 3u);
  const StateChange& last = e.history().back();
  EXPECT_EQ(last.from, AlarmState::kAlarm);
  EXPECT_EQ(last.to, AlarmState::kOk);
  EXPECT_EQ(e.state_since(), last.timestamp_s);
  EXPECT_NE(last.reason.find("of the last 3 datapoints"), std::string::npos) << last.reason;
  const StateChange& raise = e.history()[1];
  EXPECT_EQ(raise.to, AlarmState::kAlarm);
  EXPECT_EQ(raise.timestamp_s, kT + 7 * 60);
  EXPECT_NE(raise.reason.find("2 of the last 3"), std::string::npos) << raise.reason;
  AlarmEvaluator fresh(Opts(2, 3));
  Trace(fresh, "011");
  ASSERT_EQ(fresh.history().size(), 2u);
  EXPECT_EQ(fresh.history()[0].from, AlarmState::kInsufficientData);
  EXPECT_EQ(fresh.history()[0].to, AlarmState::kOk);
  EXPECT_EQ(fresh.history()[0].timestamp_s, kT);
  EXPECT_EQ(AlarmStateName(fresh.history()[1].to), "ALARM");
}

TEST(AlarmEvaluatorTest, SerializationRoundTrip) {
  AlarmEvaluator e(Opts(2, 3));
  Trace(e, "0110");
  auto back = AlarmEvaluator::Deserialize(e.Serialize(), Opts(2, 3));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->state(), e.state());
  EXPECT_EQ(back->Serialize(), e.Serialize());
  ASSERT_EQ(back->history().size(), e.history().size());
  EXPECT_EQ(back->history().back().reason, e.history().back().reason);
  // Same next verdicts.
  EXPECT_EQ(back->Observe(kT + 4 * 60, true), e.Observe(kT + 4 * 60, true));
  std::string bad = e.Serialize();
  bad[bad.size() / 2] ^= 1;
  auto rejected = AlarmEvaluator::Deserialize(bad, Opts(2, 3));
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().code(), ErrorCode::kCorruptData);
}

TEST(AlarmEvaluatorTest, ParsesCloudWatchNames) {
  for (const char* name : {"missing", "notBreaching", "breaching", "ignore"}) {
    auto m = ParseMissingData(name);
    ASSERT_TRUE(m) << name;
    EXPECT_EQ(MissingDataName(*m), name);
  }
  auto bad = ParseMissingData("NotBreaching");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("notBreaching"), std::string::npos);
  AlarmOptions o = Opts(4, 3);
  EXPECT_FALSE(ValidateAlarmOptions(o));
  EXPECT_TRUE(ValidateAlarmOptions(Opts(3, 3)));
}

}  // namespace
}  // namespace earshot::anomaly
