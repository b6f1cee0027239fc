// The event vocabulary (control/event.h): names, parsing and the JSON form.
#include "control/event.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace earshot::control {
namespace {

TEST(EventTypeTest, NamesAreTheManagedServiceNamesPlusEarshotOnes) {
  std::vector<std::string> names;
  for (EventType type : kAllEventTypes) names.emplace_back(EventTypeName(type));
  EXPECT_EQ(names, (std::vector<std::string>{"Session Created", "Session Ended", "Stream Start",
                                             "Stream End", "Stream Failure", "Identification",
                                             "Rule Applied", "Alarm"}));
}

TEST(EventTypeTest, NamesRoundTrip) {
  std::set<std::string_view> seen;
  for (EventType type : kAllEventTypes) {
    const std::string_view name = EventTypeName(type);
    EXPECT_TRUE(seen.insert(name).second) << "duplicate name " << name;
    auto parsed = ParseEventType(name);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString();
    EXPECT_EQ(*parsed, type) << name;
  }
}

TEST(EventTypeTest, ParsingIgnoresAsciiCaseAndSurroundingSpace) {
  EXPECT_EQ(ParseEventType("stream start").value(), EventType::kStreamStart);
  EXPECT_EQ(ParseEventType("  RULE APPLIED\t").value(), EventType::kRuleApplied);
  EXPECT_EQ(ParseEventType("sEsSiOn EnDeD").value(), EventType::kSessionEnded);
}

TEST(EventTypeTest, UnknownNamesAreRefusedWithTheKnownOnes) {
  for (std::string_view bad : {"", "Stream", "StreamStart", "Stream  Start", "Stream Start2",
                               "stream_start"}) {
    auto parsed = ParseEventType(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message().find("\"" + std::string(bad) + "\""), std::string::npos)
        << parsed.error().message();
    EXPECT_NE(parsed.error().message().find("Stream Failure"), std::string::npos);
    EXPECT_NE(parsed.error().message().find("Alarm"), std::string::npos);
  }
}

TEST(EventTypeTest, ListsAreCommaSeparatedWithoutDuplicates) {
  auto list = ParseEventTypeList("Stream Start, identification,Stream Start,,Alarm, ");
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(*list, (std::vector<EventType>{EventType::kStreamStart, EventType::kIdentification,
                                           EventType::kAlarm}));

  EXPECT_TRUE(ParseEventTypeList("").value().empty());
  EXPECT_TRUE(ParseEventTypeList(" , ,").value().empty());
  EXPECT_EQ(ParseEventTypeList("Alarm").value(), std::vector<EventType>{EventType::kAlarm});

  auto bad = ParseEventTypeList("Stream Start,Stream Sart");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("Stream Sart"), std::string::npos);
}

TEST(EventJsonTest, HasTheDocumentedShape) {
  Event event;
  event.seq = 42;
  event.time_ms = 1'795'256'100'250;  // 2026-11-21T10:15:00.250Z
  event.type = EventType::kStreamStart;
  event.channel_id = "ch-4k9x0q2m7ahd";
  event.stream_id = "st-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8O";
  event.detail = {{"channel_name", "Radio"}, {"n", 3}};
  const nlohmann::json json = EventToJson(event);
  EXPECT_EQ(json, (nlohmann::json{{"seq", 42},
                                  {"time", "2026-11-21T10:15:00.250Z"},
                                  {"event_name", "Stream Start"},
                                  {"channel_id", "ch-4k9x0q2m7ahd"},
                                  {"stream_id", "st-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8O"},
                                  {"detail", {{"channel_name", "Radio"}, {"n", 3}}}}))
      << json.dump();
}

TEST(EventJsonTest, DetailIsAlwaysAnObject) {
  Event event;
  event.type = EventType::kAlarm;
  event.detail = nullptr;
  EXPECT_EQ(EventToJson(event)["detail"], nlohmann::json::object());
  event.detail = "disk full";
  EXPECT_EQ(EventToJson(event)["detail"], (nlohmann::json{{"value", "disk full"}}));
  event.detail = nlohmann::json::array({1, 2});
  EXPECT_EQ(EventToJson(event)["detail"], (nlohmann::json{{"value", {1, 2}}}));
  event.detail = nlohmann::json::object();
  EXPECT_EQ(EventToJson(event)["detail"], nlohmann::json::object());
}

TEST(EventJsonTest, EventsWithoutChannelOrStreamHaveEmptyIds) {
  Event event;
  event.type = EventType::kAlarm;
  const nlohmann::json json = EventToJson(event);
  EXPECT_EQ(json["channel_id"], "");
  EXPECT_EQ(json["stream_id"], "");
  EXPECT_EQ(json["event_name"], "Alarm");
  EXPECT_EQ(json["time"], "1970-01-01T00:00:00.000Z");
}

TEST(EventJsonTest, EveryTypeIsNamedByItsDisplayName) {
  for (EventType type : kAllEventTypes) {
    Event event;
    event.type = type;
    const nlohmann::json json = EventToJson(event);
    EXPECT_EQ(ParseEventType(json["event_name"].get<std::string>()).value(), type);
  }
}

}  // namespace
}  // namespace earshot::control
