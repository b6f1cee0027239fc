// `earshot anomaly --detector` as a filter: output format, order, the
// auto-stop column, errors naming the line.
#include "cli/anomaly_command.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "synthetic_channel.h"

namespace earshot::cli {
namespace {

struct Outcome {
  int status = -1;
  std::string out, err;
};

std::string ReadAll(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

Outcome RunFilter(const AnomalyArgs& args, const std::string& input) {
  Outcome o;
  std::FILE* in = std::tmpfile();
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  EXPECT_TRUE(in && out && err);
  if (!in || !out || !err) return o;
  std::fwrite(input.data(), 1, input.size(), in);
  std::rewind(in);
  o.status = RunAnomalyDetector(args, in, out, err);
  o.out = ReadAll(out);
  o.err = ReadAll(err);
  std::fclose(in);
  std::fclose(out);
  std::fclose(err);
  return o;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream is(s);
  for (std::string l; std::getline(is, l);) lines.push_back(l);
  return lines;
}

AnomalyArgs Detector() {
  AnomalyArgs a;
  a.detector = true;
  return a;
}

// A channel "big" (2000 viewers) for 10 days, then a 20x jump on day 10; a
// channel "small" interleaved; returns the input and the jump's onset.
std::string Series(int64_t* onset) {
  using anomaly::testing::kDay;
  using anomaly::testing::kT0;
  anomaly::testing::SyntheticChannel big(2000, 1), small(12, 2);
  auto b = big.History(0, 10);
  auto s = small.History(0, 11);
  *onset = kT0 + 10 * kDay + 19 * 3600 + 30 * 60;
  auto jump = big.Session(kT0 + 10 * kDay + 19 * 3600, 120, [](double m) {
    return std::pair<double, double>{0, m >= 30 ? 40000.0 : 0.0};
  });
  b.insert(b.end(), jump.begin(), jump.end());
  std::vector<std::pair<int64_t, std::string>> rows;
  for (auto& x : b)
    rows.push_back(
        {x.t, std::to_string(x.t) + ",big," + std::to_string(static_cast<int>(x.value))});
  for (auto& x : s)
    rows.push_back({x.t, std::to_string(x.t) + ",small," + std::to_string(x.value)});
  std::stable_sort(rows.begin(), rows.end(), [](auto& l, auto& r) { return l.first < r.first; });
  std::string in;
  for (auto& r : rows) in += r.second + "\n";
  return in;
}

TEST(AnomalyCommandTest, OneLinePerInputLineInOrderWithAnAlarmOnTheJump) {
  int64_t onset = 0;
  const std::string input = Series(&onset);
  const Outcome o = RunFilter(Detector(), input);
  ASSERT_EQ(o.status, 0) << o.err;
  const auto in = Lines(input), out = Lines(o.out);
  ASSERT_EQ(in.size(), out.size());
  std::optional<int64_t> first_alarm;
  int small_alarms = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const auto a = in[i].find(','), b = in[i].find(',', a + 1);
    ASSERT_EQ(out[i].substr(0, b + 1), in[i].substr(0, b + 1)) << "line " << i + 1;
    double low = 0, high = 0;
    int alarm = -1;
    ASSERT_EQ(std::sscanf(out[i].c_str() + b + 1, "%d,%lf,%lf", &alarm, &low, &high), 3) << out[i];
    ASSERT_TRUE(alarm == 0 || alarm == 1);
    ASSERT_LE(low, high);
    const std::string channel = in[i].substr(a + 1, b - a - 1);
    // The first days are history (a brand-new channel with 2000 viewers is
    // itself suspicious for the prior, so day 0 may alarm).
    if (std::stoll(in[i].substr(0, a)) < anomaly::testing::kT0 + 3 * anomaly::testing::kDay)
      continue;
    if (alarm == 1 && channel == "big" && !first_alarm)
      first_alarm = std::stoll(in[i].substr(0, a));
    if (alarm == 1 && channel == "small") ++small_alarms;
  }
  ASSERT_TRUE(first_alarm);
  EXPECT_GE(*first_alarm, onset);
  EXPECT_LE(*first_alarm - onset, 10 * 60);
  EXPECT_EQ(small_alarms, 0);

  // --auto-stop: the verdict comes later than the alarm, and only on "big".
  AnomalyArgs stop = Detector();
  stop.auto_stop = true;
  const Outcome s = RunFilter(stop, input);
  ASSERT_EQ(s.status, 0) << s.err;
  const auto sout = Lines(s.out);
  ASSERT_EQ(sout.size(), in.size());
  std::optional<int64_t> first_stop;
  for (size_t i = 0; i < sout.size() && !first_stop; ++i) {
    if (sout[i].find(",big,1,") != std::string::npos && std::stoll(sout[i]) >= onset) {
      first_stop = std::stoll(sout[i]);
    }
  }
  ASSERT_TRUE(first_stop);
  EXPECT_GT(*first_stop, *first_alarm);
}

TEST(AnomalyCommandTest, AcceptsFractionsBlankLinesAndCrLf) {
  const Outcome o =
      RunFilter(Detector(), "1741000000,a,1.5\r\n\n1741000060,a,2.25\n1741000120,b,0");
  ASSERT_EQ(o.status, 0) << o.err;
  const auto out = Lines(o.out);
  ASSERT_EQ(out.size(), 3u) << o.out;
  EXPECT_EQ(out[0].rfind("1741000000,a,0,", 0), 0u) << out[0];
  EXPECT_EQ(out[2].rfind("1741000120,b,0,", 0), 0u) << out[2];
}

TEST(AnomalyCommandTest, MalformedLineIsNamedByNumber) {
  const Outcome o = RunFilter(Detector(), "1741000000,a,10\n1741000060,a,ten\n1741000120,a,10\n");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.err.find("line 2"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("\"ten\""), std::string::npos) << o.err;
  EXPECT_EQ(Lines(o.out).size(), 1u) << "lines before the bad one are answered";
  for (const char* bad : {"1741000000,a\n", "x,a,1\n", "1741000000,,1\n", "1741000000,a,-3\n",
                          "1741000000,a,1,2\n"}) {
    const Outcome b = RunFilter(Detector(), bad);
    EXPECT_EQ(b.status, 1) << bad;
    EXPECT_NE(b.err.find("line 1:"), std::string::npos) << b.err;
  }
}

TEST(AnomalyCommandTest, BadOptionsAreRejected) {
  AnomalyArgs a = Detector();
  a.datapoints = 5;
  a.evaluation_periods = 2;
  Outcome o = RunFilter(a, "");
  EXPECT_EQ(o.status, 2);
  EXPECT_NE(o.err.find("datapoints to alarm"), std::string::npos) << o.err;
  a = Detector();
  a.profile = "loose";
  o = RunFilter(a, "");
  EXPECT_EQ(o.status, 2);
  EXPECT_NE(o.err.find("--profile"), std::string::npos) << o.err;
  a = Detector();
  a.missing_data = "zero";
  EXPECT_EQ(RunFilter(a, "").status, 2);
  EXPECT_EQ(RunFilter(AnomalyArgs{}, "").status, 2) << "--detector is required";
}

}  // namespace
}  // namespace earshot::cli
