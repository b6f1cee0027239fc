#include "server/metrics.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace earshot::server {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The value of the sample `series` (name plus labels exactly as rendered), or
// nullopt when it is not there.
std::optional<std::string> Sample(const std::string& text, const std::string& series) {
  for (const std::string& line : Lines(text)) {
    if (line.starts_with(series + " ")) return line.substr(series.size() + 1);
  }
  return std::nullopt;
}

// Checks the exposition format 0.0.4 as Prometheus reads it: every family has
// one HELP and one TYPE line before its samples, samples are
// name{label="value",...} value, and a histogram's samples are _bucket, _sum
// and _count. Returns "" or what is wrong.
std::string FormatProblems(const std::string& text) {
  // name, optional {label="value",...} (values escape only \\, \" and \n), value.
  static const std::string kName = R"([a-zA-Z_:][a-zA-Z0-9_:]*)";
  static const std::string kLabel = R"([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\["\\n])*")";
  static const std::regex kSample("^(" + kName + ")(\\{" + kLabel + "(," + kLabel + ")*\\})? " +
                                  R"(([-+]?[0-9.eE+-]+|\+Inf|-Inf|NaN)$)");
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  if (!text.empty() && text.back() != '\n') return "the text must end with a newline";
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  for (const std::string& line : Lines(text)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      if (!helped.insert(m[1]).second) return "second HELP for " + m[1].str();
    } else if (std::regex_match(line, m, kType)) {
      if (!helped.contains(m[1])) return "TYPE before HELP for " + m[1].str();
      if (!types.emplace(m[1], m[2]).second) return "second TYPE for " + m[1].str();
    } else if (std::regex_match(line, m, kSample)) {
      std::string family = m[1];
      auto it = types.find(family);
      if (it == types.end()) {
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
          if (family.ends_with(suffix)) {
            auto h = types.find(family.substr(0, family.size() - std::strlen(suffix)));
            if (h != types.end() && h->second == "histogram") it = h;
          }
        }
      }
      if (it == types.end()) return "sample before its TYPE: " + line;
    } else {
      return "not a valid line: " + line;
    }
  }
  return "";
}

TEST(MetricsTest, FormatCheckOfTheseTestsCatchesMistakes) {
  const std::string head = "# HELP x_total Things.\n# TYPE x_total counter\n";
  EXPECT_EQ(FormatProblems(head + "x_total{a=\"b\\\"c\"} 1\n"), "");
  EXPECT_NE(FormatProblems("x_total 1\n"), "") << "a sample without TYPE";
  EXPECT_NE(FormatProblems(head + "x_total{a=\"b\"c\"} 1\n"), "") << "an unescaped quote";
  EXPECT_NE(FormatProblems(head + head), "") << "a family declared twice";
  EXPECT_NE(FormatProblems(head + "x_total 1"), "") << "no final newline";
}

TEST(MetricsTest, EmptyRegistryStillDeclaresEveryFamily) {
  Metrics metrics;
  const std::string text = metrics.Render({});
  EXPECT_EQ(FormatProblems(text), "") << text;
  for (const char* family :
       {"earshot_identifications_total", "earshot_rule_actions_total", "earshot_hooks_total",
        "earshot_http_requests_total", "earshot_subscription_deliveries_total"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " counter\n"), std::string::npos)
        << family;
    EXPECT_NE(text.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
  }
  EXPECT_NE(text.find("# TYPE earshot_hook_duration_seconds histogram\n"), std::string::npos);
}

TEST(MetricsTest, CountersAddUpPerLabel) {
  Metrics metrics;
  metrics.CountMatch("block");
  metrics.CountMatch("block");
  metrics.CountMatch("mute");
  metrics.CountRuleAction("stop");
  metrics.CountRequest(200);
  metrics.CountRequest(200);
  metrics.CountRequest(404);
  metrics.CountSubscriptionDelivery("delivered");
  metrics.CountSubscriptionDelivery("gave_up");
  metrics.CountSubscriptionDelivery("delivered");
  const std::string text = metrics.Render({});
  EXPECT_EQ(FormatProblems(text), "") << text;
  EXPECT_EQ(Sample(text, R"(earshot_identifications_total{rule="block"})"), "2");
  EXPECT_EQ(Sample(text, R"(earshot_identifications_total{rule="mute"})"), "1");
  EXPECT_EQ(Sample(text, R"(earshot_identifications_total{rule="allow"})"), std::nullopt);
  EXPECT_EQ(Sample(text, R"(earshot_rule_actions_total{action="stop"})"), "1");
  EXPECT_EQ(Sample(text, R"(earshot_http_requests_total{status="200"})"), "2");
  EXPECT_EQ(Sample(text, R"(earshot_http_requests_total{status="404"})"), "1");
  EXPECT_EQ(Sample(text, R"(earshot_subscription_deliveries_total{outcome="delivered"})"), "2");
  EXPECT_EQ(Sample(text, R"(earshot_subscription_deliveries_total{outcome="gave_up"})"), "1");
}

TEST(MetricsTest, HookLatencyIsACumulativeHistogram) {
  Metrics metrics;
  metrics.ObserveHook("publish", "redirected", 0.003);
  metrics.ObserveHook("publish", "denied", 0.2);
  metrics.ObserveHook("publish", "redirected", 0.7);  // above every bound
  metrics.ObserveHook("update", "allowed", 0.001);    // exactly on a bound: le is inclusive
  const std::string text = metrics.Render({});
  EXPECT_EQ(FormatProblems(text), "") << text;
  EXPECT_EQ(Sample(text, R"(earshot_hooks_total{hook="publish",outcome="redirected"})"), "2");
  EXPECT_EQ(Sample(text, R"(earshot_hooks_total{hook="publish",outcome="denied"})"), "1");
  EXPECT_EQ(Sample(text, R"(earshot_hooks_total{hook="update",outcome="allowed"})"), "1");

  const std::map<std::string, std::string> publish = {
      {"0.001", "0"}, {"0.0025", "0"}, {"0.005", "1"}, {"0.01", "1"}, {"0.025", "1"},
      {"0.05", "1"},  {"0.1", "1"},    {"0.5", "2"},   {"+Inf", "3"}};
  for (const auto& [le, n] : publish) {
    EXPECT_EQ(
        Sample(text, R"(earshot_hook_duration_seconds_bucket{hook="publish",le=")" + le + "\"}"), n)
        << "le=" << le;
  }
  EXPECT_EQ(Sample(text, R"(earshot_hook_duration_seconds_count{hook="publish"})"), "3");
  const double sum =
      std::stod(Sample(text, R"(earshot_hook_duration_seconds_sum{hook="publish"})").value_or("0"));
  EXPECT_NEAR(sum, 0.903, 1e-9);
  EXPECT_EQ(Sample(text, R"(earshot_hook_duration_seconds_bucket{hook="update",le="0.001"})"), "1");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
  Metrics metrics;
  metrics.CountRuleAction("we\"ird\\\n");
  const std::string text = metrics.Render({});
  EXPECT_EQ(FormatProblems(text), "") << text;
  EXPECT_EQ(Sample(text, R"(earshot_rule_actions_total{action="we\"ird\\\n"})"), "1") << text;
}

TEST(MetricsTest, GaugesOfOneNameShareTheirHeader) {
  Metrics metrics;
  const std::string text = metrics.Render({
      {"earshot_live_streams", "Live stream sessions.", {}, 3},
      {"earshot_jobs", "Scan jobs by state.", {{"state", "queued"}}, 2},
      {"earshot_jobs", "Scan jobs by state.", {{"state", "dead"}}, 0},
      {"earshot_jobs", "Scan jobs by state.", {{"state", "leased"}}, 1.5},
  });
  EXPECT_EQ(FormatProblems(text), "") << text;
  EXPECT_EQ(Sample(text, "earshot_live_streams"), "3");
  EXPECT_EQ(Sample(text, R"(earshot_jobs{state="queued"})"), "2");
  EXPECT_EQ(Sample(text, R"(earshot_jobs{state="dead"})"), "0");
  EXPECT_EQ(Sample(text, R"(earshot_jobs{state="leased"})"), "1.5");
  EXPECT_NE(text.find("# TYPE earshot_jobs gauge\n"), std::string::npos);
}

TEST(MetricsTest, CountsFromManyThreadsAreNotLost) {
  Metrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < 500; ++i) {
        metrics.CountRequest(200);
        metrics.ObserveHook("publish", "redirected", 0.002);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const std::string text = metrics.Render({});
  EXPECT_EQ(Sample(text, R"(earshot_http_requests_total{status="200"})"), "2000");
  EXPECT_EQ(Sample(text, R"(earshot_hook_duration_seconds_count{hook="publish"})"), "2000");
  EXPECT_EQ(Sample(text, R"(earshot_hook_duration_seconds_bucket{hook="publish",le="0.0025"})"),
            "2000");
}

}  // namespace
}  // namespace earshot::server
