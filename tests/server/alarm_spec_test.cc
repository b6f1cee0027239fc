// Alarm settings as the API takes them: defaults, every member, refusals
// naming the member, and the detector options they become. The alarm service
// itself runs end to end in playback_e2e_test.cc (real nginx, real viewers).
#include <gtest/gtest.h>

#include "server/alarm_service.h"

namespace earshot::server {
namespace {

TEST(AlarmSpecTest, DefaultsAreTheManagedServiceOnes) {
  auto s = AlarmSpecFromJson(nlohmann::json::object());
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->channel_id, "");  // every channel
  EXPECT_EQ(s->band_width, 3);
  EXPECT_EQ(s->period_s, 60);
  EXPECT_EQ(s->datapoints_to_alarm, 2);
  EXPECT_EQ(s->evaluation_periods, 3);
  EXPECT_TRUE(s->notify);
  EXPECT_FALSE(s->stop_stream);  // auto-stop is opt-in
  EXPECT_EQ(s->auto_stop_min_learned_minutes, 120);  // and never on a channel it has just met
  const nlohmann::json j = AlarmSpecToJson(*s);
  EXPECT_TRUE(j["channel_id"].is_null());
  EXPECT_EQ(j["treat_missing_data"], "missing");
}

TEST(AlarmSpecTest, EveryMemberIsReadAndRoundTrips) {
  const nlohmann::json in = {{"name", "spikes"},
                             {"channel_id", "ch-abcdefghijkl"},
                             {"band_width", 2.5},
                             {"period_s", 30},
                             {"datapoints_to_alarm", 3},
                             {"evaluation_periods", 5},
                             {"treat_missing_data", "notBreaching"},
                             {"min_sustain_s", 120},
                             {"actions", {{"notify", false}, {"stop_stream", true}, {"reset_key", false}}},
                             {"auto_stop", {{"ratio", 12}, {"sustain_s", 600}, {"min_learned_minutes", 30}}}};
  auto s = AlarmSpecFromJson(in);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(AlarmSpecToJson(*s), in);
  const anomaly::DetectorOptions o = DetectorOptionsFor(*s);
  EXPECT_EQ(o.model.band_width, 2.5);
  EXPECT_EQ(o.alarm.period_s, 30);
  EXPECT_EQ(o.alarm.datapoints_to_alarm, 3);
  EXPECT_EQ(o.alarm.evaluation_periods, 5);
  EXPECT_EQ(o.alarm.missing_data, anomaly::MissingData::kNotBreaching);
  EXPECT_EQ(o.min_sustain_s, 120);
  EXPECT_EQ(o.auto_stop.ratio, 12);
  EXPECT_EQ(o.auto_stop.sustain_s, 600);
}

TEST(AlarmSpecTest, BadSettingsAreRefusedNamingTheMember) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"period_s", 0}}, "period_s"},
      {{{"period_s", 1.5}}, "period_s"},
      {{{"band_width", "3"}}, "band_width"},
      {{{"datapoints_to_alarm", 4}, {"evaluation_periods", 3}}, "datapoints_to_alarm"},
      {{{"treat_missing_data", "sometimes"}}, "treat_missing_data"},
      {{{"actions", {{"notify", "yes"}}}}, "actions.notify"},
      {{{"actions", {{"page_oncall", true}}}}, "actions.page_oncall"},
      {{{"auto_stop", {{"ratio", 1}}}}, "auto_stop.ratio"},
      {{{"bandwidth", 3}}, "bandwidth"},  // a typo must not keep the default silently
      {{{"channel_id", 7}}, "channel_id"},
  };
  for (const auto& [json, member] : cases) {
    auto s = AlarmSpecFromJson(json);
    ASSERT_FALSE(s) << json.dump();
    EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument) << json.dump();
    EXPECT_NE(s.error().message().find(member), std::string::npos) << s.error().message();
  }
  EXPECT_FALSE(AlarmSpecFromJson(nlohmann::json::array()));
}

}  // namespace
}  // namespace earshot::server
