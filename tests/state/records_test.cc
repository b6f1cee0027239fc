// The pure parts of src/state: record names and JSON forms, subscription
// matching, input validation and the UTF-8 helpers.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "state/records.h"
#include "state/validation.h"
#include "state_test_util.h"
#include "store/catalog_types.h"

namespace earshot::state {
namespace {

using control::Event;
using control::EventType;
using testing::FailsWith;

std::set<std::string> Keys(const nlohmann::json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

TEST(RecordNamesTest, SessionStatesAndHealthRoundTrip) {
  for (SessionState s : {SessionState::kLive, SessionState::kEnded}) {
    EXPECT_EQ(ParseSessionState(SessionStateName(s)).value(), s);
  }
  EXPECT_EQ(SessionStateName(SessionState::kLive), "live");
  EXPECT_EQ(SessionStateName(SessionState::kEnded), "ended");
  EXPECT_TRUE(FailsWith(ParseSessionState("LIVE"), ErrorCode::kInvalidArgument, "\"LIVE\""));

  for (StreamHealth h : {StreamHealth::kHealthy, StreamHealth::kStarving, StreamHealth::kUnknown}) {
    EXPECT_EQ(ParseStreamHealth(StreamHealthName(h)).value(), h);
  }
  EXPECT_EQ(StreamHealthName(StreamHealth::kStarving), "STARVING");
  EXPECT_TRUE(FailsWith(ParseStreamHealth("healthy"), ErrorCode::kInvalidArgument, "HEALTHY"));
}

// The rules a channel override names are the catalog's rules.
TEST(RecordNamesTest, RuleNamesAreTheCatalogsBusinessRules) {
  std::set<std::string_view> catalog;
  for (store::BusinessRule rule : store::kAllBusinessRules) {
    catalog.insert(store::BusinessRuleName(rule));
  }
  EXPECT_EQ(catalog, std::set<std::string_view>(control::kRuleNames.begin(),
                                                control::kRuleNames.end()));
}

TEST(RecordJsonTest, Channel) {
  Channel c;
  c.id = "ch-4k9x0q2m7ahd";
  c.name = "Radio";
  c.is_private = true;
  c.policy.allowed_countries = {"FR"};
  c.tags = {{"team", "music"}};
  c.rule_overrides = {{"block", "allow"}};
  c.created_ms = testing::kStartMs;
  c.updated_ms = testing::kStartMs + 1500;
  nlohmann::json json = ChannelToJson(c);
  EXPECT_EQ(Keys(json), (std::set<std::string>{"id", "name", "private", "policy", "tags",
                                               "rule_overrides", "created", "updated"}));
  EXPECT_EQ(json["private"], true);
  EXPECT_EQ(json["policy"]["allowedCountries"], nlohmann::json::array({"FR"}));
  EXPECT_EQ(json["tags"]["team"], "music");
  EXPECT_EQ(json["rule_overrides"]["block"], "allow");
  EXPECT_EQ(json["created"], "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(json["updated"], "2027-01-15T08:00:01.500Z");

  c.block_action = control::BlockAction::kStopAndResetKey;
  json = ChannelToJson(c);
  EXPECT_EQ(json["block_action"], "stop_and_reset_key");
  EXPECT_EQ(c.rules(), (control::ChannelRules{{{"block", "allow"}},
                                             control::BlockAction::kStopAndResetKey}));
}

TEST(RecordJsonTest, StreamSession) {
  StreamSession s;
  s.stream_id = "st-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8O";
  s.channel_id = "ch-4k9x0q2m7ahd";
  s.started_ms = testing::kStartMs;
  s.ingest = {{"app", "live"}};
  nlohmann::json json = StreamSessionToJson(s);
  EXPECT_EQ(Keys(json), (std::set<std::string>{"stream_id", "channel_id", "state", "health",
                                               "start_time", "stop_requested", "ingest",
                                               "channel"}));
  EXPECT_EQ(json["state"], "live");
  EXPECT_EQ(json["health"], "UNKNOWN");
  EXPECT_EQ(json["ingest"]["app"], "live");

  s.state = SessionState::kEnded;
  s.ended_ms = testing::kStartMs + 60'000;
  s.end_reason = "publisher left";
  s.stop_requested = true;
  s.stop_reason = "blocked track";
  json = StreamSessionToJson(s);
  EXPECT_EQ(json["end_time"], "2027-01-15T08:01:00.000Z");
  EXPECT_EQ(json["end_reason"], "publisher left");
  EXPECT_EQ(json["stop_requested"], true);
  EXPECT_EQ(json["stop_reason"], "blocked track");
}

TEST(RecordJsonTest, IdentificationAndUsage) {
  IdentificationRecord r;
  r.stream_id = "st-1";
  r.match_id = "m-1";
  r.status = "match_ended";
  r.rule = "block";
  r.track_id = 7;
  r.title = "Ode";
  r.started_at_ms = testing::kStartMs;
  r.duration_s = 12.5;
  const nlohmann::json json = IdentificationToJson(r);
  EXPECT_EQ(Keys(json), (std::set<std::string>{"stream_id", "channel_id", "match_id", "status",
                                               "rule", "track_rule", "track_id", "title", "artist",
                                               "rights_holder", "isrc", "started_at",
                                               "stream_offset_s", "duration_s",
                                               "reference_offset_s", "score", "updated"}));
  EXPECT_EQ(json["track_id"], 7);
  EXPECT_EQ(json["duration_s"], 12.5);
  EXPECT_EQ(json["started_at"], "2027-01-15T08:00:00.000Z");

  TrackUsage u{7, "Ode", "Composer", "Label", "XX0000000001", 42.5, 2, 3};
  const nlohmann::json usage =
      UsageReportToJson("ch-4k9x0q2m7ahd", testing::kStartMs, testing::kStartMs + 3'600'000, {u});
  EXPECT_EQ(usage["channel_id"], "ch-4k9x0q2m7ahd");
  EXPECT_EQ(usage["to"], "2027-01-15T09:00:00.000Z");
  ASSERT_EQ(usage["tracks"].size(), 1u);
  EXPECT_EQ(usage["tracks"][0],
            (nlohmann::json{{"track_id", 7}, {"title", "Ode"}, {"artist", "Composer"},
                            {"rights_holder", "Label"}, {"isrc", "XX0000000001"},
                            {"seconds_played", 42.5}, {"streams", 2}, {"plays", 3}}));
  EXPECT_EQ(UsageReportToJson("ch-x", 0, 0, {})["tracks"], nlohmann::json::array());
}

TEST(RecordJsonTest, ApiKeyInfoAndSubscription) {
  ApiKeyInfo info{"ak-000000000001", "ci", "ek_Ab\u2026(43 chars)", testing::kStartMs, 0};
  nlohmann::json json = ApiKeyInfoToJson(info);
  EXPECT_EQ(Keys(json), (std::set<std::string>{"id", "name", "hint", "created"}));
  info.revoked_ms = testing::kStartMs + 1;
  json = ApiKeyInfoToJson(info);
  EXPECT_EQ(json["revoked"], "2027-01-15T08:00:00.001Z");

  Subscription s{"sub-000000000001", "webhook", "url=https://example.com/hook",
                 {EventType::kStreamStart, EventType::kRuleApplied}, {"ch-4k9x0q2m7ahd"},
                 testing::kStartMs};
  json = SubscriptionToJson(s);
  EXPECT_EQ(json["event_types"], nlohmann::json::array({"Stream Start", "Rule Applied"}));
  EXPECT_EQ(json["channel_ids"], nlohmann::json::array({"ch-4k9x0q2m7ahd"}));
  EXPECT_EQ(json["kind"], "webhook");
  EXPECT_EQ(json["target"], "url=https://example.com/hook");
}

TEST(SubscriptionMatchesTest, TypesAndChannels) {
  const std::string a = "ch-aaaaaaaaaaaa";
  const std::string b = "ch-bbbbbbbbbbbb";
  const Subscription all{"sub-1", "webhook", "url=x", {}, {}, 0};
  const Subscription starts{"sub-2", "webhook", "url=x", {EventType::kStreamStart}, {}, 0};
  const Subscription on_a{"sub-3", "email", "to=x@example.com", {}, {a}, 0};
  const Subscription starts_on_a_or_b{
      "sub-4", "webhook", "url=x", {EventType::kStreamStart, EventType::kAlarm}, {a, b}, 0};

  auto event = [](EventType type, std::string channel) {
    Event e;
    e.type = type;
    e.channel_id = std::move(channel);
    return e;
  };
  struct Row {
    Event event;
    bool all, starts, on_a, starts_on_a_or_b;
  };
  const std::vector<Row> rows = {
      {event(EventType::kStreamStart, a), true, true, true, true},
      {event(EventType::kStreamStart, b), true, true, false, true},
      {event(EventType::kStreamEnd, a), true, false, true, false},
      {event(EventType::kAlarm, b), true, false, false, true},
      // No channel: only subscriptions without a channel list.
      {event(EventType::kAlarm, ""), true, false, false, false},
      {event(EventType::kStreamStart, ""), true, true, false, false},
      {event(EventType::kStreamStart, "ch-cccccccccccc"), true, true, false, false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(std::string(control::EventTypeName(row.event.type)) + " on '" +
                 row.event.channel_id + "'");
    EXPECT_EQ(SubscriptionMatches(all, row.event), row.all);
    EXPECT_EQ(SubscriptionMatches(starts, row.event), row.starts);
    EXPECT_EQ(SubscriptionMatches(on_a, row.event), row.on_a);
    EXPECT_EQ(SubscriptionMatches(starts_on_a_or_b, row.event), row.starts_on_a_or_b);
  }
}

TEST(Utf8Test, ValidityLengthAndRepair) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xB5"));  // é € 🎵
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xFF"));

  EXPECT_EQ(Utf8Length("caf\xC3\xA9"), 4u);
  EXPECT_EQ(Utf8Length("\xF0\x9F\x8E\xB5"), 1u);

  EXPECT_EQ(SanitizeUtf8("ok"), "ok");
  EXPECT_EQ(SanitizeUtf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(SanitizeUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_TRUE(IsValidUtf8(SanitizeUtf8("\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80x")));
}

TEST(ValidationTest, ChannelNames) {
  EXPECT_TRUE(ValidateChannelName("").has_value());  // names are optional labels
  EXPECT_TRUE(ValidateChannelName(std::string(128, 'n')).has_value());
  // The limit counts characters, not bytes.
  std::string accented;
  for (int i = 0; i < 128; ++i) accented += "\xC3\xA9";
  EXPECT_TRUE(ValidateChannelName(accented).has_value());
  EXPECT_TRUE(FailsWith(ValidateChannelName(std::string(129, 'n')), ErrorCode::kInvalidArgument,
                        "channel name has 129 characters (at most 128)"));
  EXPECT_TRUE(FailsWith(ValidateChannelName("a\nb"), ErrorCode::kInvalidArgument,
                        "control character"));
  EXPECT_TRUE(FailsWith(ValidateChannelName("a\x7f"), ErrorCode::kInvalidArgument,
                        "control character"));
  EXPECT_TRUE(FailsWith(ValidateChannelName("\xFF"), ErrorCode::kInvalidArgument, "UTF-8"));
}

TEST(ValidationTest, Tags) {
  std::map<std::string, std::string> tags;
  for (int i = 0; i < 50; ++i) tags["k" + std::to_string(i)] = "v";
  EXPECT_TRUE(ValidateTags(tags).has_value());
  tags["one-more"] = "v";
  EXPECT_TRUE(FailsWith(ValidateTags(tags), ErrorCode::kInvalidArgument, "at most 50 tags"));

  EXPECT_TRUE(ValidateTags({{std::string(128, 'k'), std::string(256, 'v')}}).has_value());
  EXPECT_TRUE(FailsWith(ValidateTags({{std::string(129, 'k'), "v"}}),
                        ErrorCode::kInvalidArgument, "tag key has 129 characters"));
  EXPECT_TRUE(FailsWith(ValidateTags({{"team", std::string(257, 'v')}}),
                        ErrorCode::kInvalidArgument, "tag \"team\" value has 257 characters"));
  EXPECT_TRUE(FailsWith(ValidateTags({{"", "v"}}), ErrorCode::kInvalidArgument, "empty key"));
  EXPECT_TRUE(FailsWith(ValidateTags({{"k", "\xFF"}}), ErrorCode::kInvalidArgument, "UTF-8"));
}

TEST(ValidationTest, ChannelSpecAndUpdate) {
  ChannelSpec spec;
  spec.name = "Radio";
  EXPECT_TRUE(ValidateChannelSpec(spec).has_value());
  spec.policy.allowed_origins = {"https://example.com/"};
  EXPECT_TRUE(FailsWith(ValidateChannelSpec(spec), ErrorCode::kInvalidArgument, "allowedOrigins"));
  spec.policy = {};
  spec.rule_overrides = {{"block", "permit"}};
  EXPECT_TRUE(FailsWith(ValidateChannelSpec(spec), ErrorCode::kInvalidArgument, "\"permit\""));

  EXPECT_TRUE(ValidateChannelUpdate({}).has_value());
  ChannelUpdate update;
  update.tags = std::map<std::string, std::string>{{"", "x"}};
  EXPECT_TRUE(FailsWith(ValidateChannelUpdate(update), ErrorCode::kInvalidArgument, "empty key"));
  update = {};
  update.name = std::string(129, 'x');
  EXPECT_TRUE(FailsWith(ValidateChannelUpdate(update), ErrorCode::kInvalidArgument, "129"));
  update = {};
  update.rule_overrides = std::map<std::string, std::string>{{"Block", "allow"}};
  EXPECT_TRUE(FailsWith(ValidateChannelUpdate(update), ErrorCode::kInvalidArgument, "\"Block\""));
  update = {};
  update.policy = control::RestrictionPolicy{{"fr"}, {}, false};
  EXPECT_TRUE(FailsWith(ValidateChannelUpdate(update), ErrorCode::kInvalidArgument, "\"fr\""));
}

TEST(ValidationTest, Subscriptions) {
  SubscriptionSpec spec{"webhook", "url=https://example.com/hook", {}, {}};
  EXPECT_TRUE(ValidateSubscriptionSpec(spec).has_value());
  spec.kind = "email";
  EXPECT_TRUE(ValidateSubscriptionSpec(spec).has_value());
  spec.kind = "sms";
  EXPECT_TRUE(FailsWith(ValidateSubscriptionSpec(spec), ErrorCode::kInvalidArgument,
                        "unknown subscription kind \"sms\""));
  spec.kind = "webhook";
  spec.target = "";
  EXPECT_TRUE(FailsWith(ValidateSubscriptionSpec(spec), ErrorCode::kInvalidArgument,
                        "needs a target"));
  spec.target = std::string(2049, 'x');
  EXPECT_TRUE(FailsWith(ValidateSubscriptionSpec(spec), ErrorCode::kInvalidArgument, "2049"));
  spec.target = "url=x\r\nHost: evil";
  EXPECT_TRUE(FailsWith(ValidateSubscriptionSpec(spec), ErrorCode::kInvalidArgument,
                        "control character"));
  spec.target = "url=x";
  spec.channel_ids = {"ch-aaaaaaaaaaaa", "Radio"};
  EXPECT_TRUE(FailsWith(ValidateSubscriptionSpec(spec), ErrorCode::kInvalidArgument,
                        "\"Radio\" is not a channel id"));
  spec.channel_ids.assign(101, "ch-aaaaaaaaaaaa");
  EXPECT_TRUE(FailsWith(ValidateSubscriptionSpec(spec), ErrorCode::kInvalidArgument,
                        "at most 100 channels"));
}

TEST(ValidationTest, Identifications) {
  IdentificationRecord r;
  r.stream_id = "st-1";
  r.match_id = "m-1";
  r.status = "match_started";
  r.rule = "track";
  EXPECT_TRUE(ValidateIdentification(r).has_value());
  r.track_rule = "block";
  EXPECT_TRUE(ValidateIdentification(r).has_value());

  IdentificationRecord bad = r;
  bad.match_id = "";
  EXPECT_TRUE(FailsWith(ValidateIdentification(bad), ErrorCode::kInvalidArgument, "required"));
  bad = r;
  bad.status = "match_found";
  EXPECT_TRUE(FailsWith(ValidateIdentification(bad), ErrorCode::kInvalidArgument,
                        "unknown status \"match_found\""));
  bad = r;
  bad.rule = "";
  EXPECT_TRUE(FailsWith(ValidateIdentification(bad), ErrorCode::kInvalidArgument, "unknown rule"));
  bad = r;
  bad.track_rule = "Block";
  EXPECT_TRUE(FailsWith(ValidateIdentification(bad), ErrorCode::kInvalidArgument,
                        "unknown track rule"));
  bad = r;
  bad.duration_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(FailsWith(ValidateIdentification(bad), ErrorCode::kInvalidArgument, "finite"));
  bad = r;
  bad.score = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(FailsWith(ValidateIdentification(bad), ErrorCode::kInvalidArgument, "finite"));
  for (std::string_view status : {kMatchStarted, kMatchOngoing, kMatchEnded}) {
    EXPECT_TRUE(IsMatchStatus(status));
  }
}

TEST(ValidationTest, ApiKeyNames) {
  EXPECT_TRUE(ValidateApiKeyName("").has_value());
  EXPECT_TRUE(ValidateApiKeyName(std::string(128, 'n')).has_value());
  EXPECT_TRUE(FailsWith(ValidateApiKeyName(std::string(129, 'n')), ErrorCode::kInvalidArgument,
                        "API key name"));
}

}  // namespace
}  // namespace earshot::state
