#include "server/api_json.h"

#include <gtest/gtest.h>

namespace earshot::server {
namespace {

using nlohmann::json;

// The message of the error `r` holds; fails the test when `r` succeeded.
template <class T>
std::string ErrorOf(const Result<T>& r) {
  EXPECT_FALSE(r.has_value()) << "accepted";
  if (r) return "";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().ToString();
  return r.error().message();
}

TEST(ApiJsonTest, ChannelSpecTakesEveryDocumentedField) {
  auto spec = ChannelSpecFromJson(json::parse(R"({
      "name": "studio",
      "private": true,
      "policy": {"allowedCountries": ["FR"], "allowedOrigins": ["https://example.com"]},
      "tags": {"team": "music"},
      "rule_overrides": {"block": "allow"},
      "block_action": "notify"})"));
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->name, "studio");
  EXPECT_TRUE(spec->is_private);
  EXPECT_EQ(spec->policy.allowed_countries, std::vector<std::string>{"FR"});
  EXPECT_EQ(spec->policy.allowed_origins, std::vector<std::string>{"https://example.com"});
  EXPECT_EQ(spec->tags, (std::map<std::string, std::string>{{"team", "music"}}));
  EXPECT_EQ(spec->rule_overrides, (std::map<std::string, std::string>{{"block", "allow"}}));
  EXPECT_EQ(spec->block_action, control::BlockAction::kNotify);
}

TEST(ApiJsonTest, EmptyChannelSpecTakesTheDefaults) {
  auto spec = ChannelSpecFromJson(json::object());
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->name, "");
  EXPECT_FALSE(spec->is_private);
  EXPECT_TRUE(spec->tags.empty());
  EXPECT_EQ(spec->block_action, std::nullopt) << "unset: the deployment's default";
  auto null_action = ChannelSpecFromJson(json{{"block_action", nullptr}});
  ASSERT_TRUE(null_action) << null_action.error().ToString();
  EXPECT_EQ(null_action->block_action, std::nullopt);
}

TEST(ApiJsonTest, UnknownChannelFieldIsRefusedListingTheKnownOnes) {
  const std::string m = ErrorOf(ChannelSpecFromJson(json{{"name", "a"}, {"colour", "red"}}));
  EXPECT_TRUE(m.starts_with("field colour: unknown")) << m;
  for (const char* known :
       {"name", "private", "policy", "tags", "rule_overrides", "block_action"}) {
    EXPECT_NE(m.find(known), std::string::npos) << m;
  }
}

TEST(ApiJsonTest, MistypedChannelFieldsAreRefusedNamingTheField) {
  struct Case {
    json body;
    std::string starts;
  };
  const std::vector<Case> cases = {
      {{{"name", 5}}, "field name: must be a string"},
      {{{"private", "yes"}}, "field private: must be true or false"},
      {{{"tags", json::array({"a"})}}, "field tags: must be an object of strings"},
      {{{"tags", {{"team", 3}}}}, "field tags.team: must be a string"},
      {{{"rule_overrides", {{"block", nullptr}}}}, "field rule_overrides.block: must be a string"},
      {{{"block_action", 1}}, "field block_action: must be"},
      {{{"block_action", "explode"}}, "field block_action"},
      {{{"policy", {{"allowedCountrys", json::array()}}}}, "field policy"},
      {{{"policy", "FR"}}, "field policy"},
  };
  for (const Case& c : cases) {
    const std::string m = ErrorOf(ChannelSpecFromJson(c.body));
    EXPECT_TRUE(m.starts_with(c.starts)) << c.body.dump() << " -> " << m;
  }
  EXPECT_NE(ErrorOf(ChannelSpecFromJson(json::array())).find("JSON object"), std::string::npos);
}

TEST(ApiJsonTest, ChannelUpdateChangesOnlyTheFieldsGiven) {
  auto u = ChannelUpdateFromJson(json{{"name", "renamed"}});
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->name, "renamed");
  EXPECT_FALSE(u->is_private.has_value());
  EXPECT_FALSE(u->policy.has_value());
  EXPECT_FALSE(u->tags.has_value());
  EXPECT_FALSE(u->rule_overrides.has_value());
  EXPECT_FALSE(u->block_action.has_value());

  // null block_action: back to the deployment default (set, holding nullopt).
  auto reset = ChannelUpdateFromJson(json{{"block_action", nullptr}});
  ASSERT_TRUE(reset) << reset.error().ToString();
  ASSERT_TRUE(reset->block_action.has_value());
  EXPECT_FALSE(reset->block_action->has_value());

  auto set =
      ChannelUpdateFromJson(json{{"block_action", "stop_and_reset_key"}, {"tags", json::object()}});
  ASSERT_TRUE(set) << set.error().ToString();
  EXPECT_EQ(set->block_action,
            std::optional<control::BlockAction>(control::BlockAction::kStopAndResetKey));
  ASSERT_TRUE(set->tags.has_value());
  EXPECT_TRUE(set->tags->empty()) << "{} removes every tag";
}

TEST(ApiJsonTest, SubscriptionSpecReadsKindTargetAndFilters) {
  auto spec = SubscriptionSpecFromJson(json::parse(R"({
      "kind": "webhook",
      "target": "url=https://example.com/hook,secret_env=HOOK_SECRET",
      "event_types": ["Stream Start", "identification"],
      "channel_ids": ["ch-abcdefghijkl"]})"));
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->kind, "webhook");
  EXPECT_EQ(spec->target, "url=https://example.com/hook,secret_env=HOOK_SECRET");
  EXPECT_EQ(spec->event_types,
            (std::vector<control::EventType>{control::EventType::kStreamStart,
                                             control::EventType::kIdentification}));
  EXPECT_EQ(spec->channel_ids, std::vector<std::string>{"ch-abcdefghijkl"});

  auto minimal =
      SubscriptionSpecFromJson(json{{"kind", "email"}, {"target", "to=ops@example.com"}});
  ASSERT_TRUE(minimal) << minimal.error().ToString();
  EXPECT_TRUE(minimal->event_types.empty()) << "no filter: every type";
  EXPECT_TRUE(minimal->channel_ids.empty());
}

TEST(ApiJsonTest, BadSubscriptionSpecsAreRefusedNamingTheField) {
  const json target = "url=https://example.com/hook";
  struct Case {
    json body;
    std::string starts;
  };
  const std::vector<Case> cases = {
      {{{"target", target}}, "field kind: required"},
      {{{"kind", 1}, {"target", target}}, "field kind: required"},
      {{{"kind", "webhook"}}, "field target: required"},
      {{{"kind", "webhook"}, {"target", {{"url", "x"}}}}, "field target: required"},
      {{{"kind", "webhook"}, {"target", target}, {"events", json::array()}},
       "field events: unknown"},
      {{{"kind", "webhook"}, {"target", target}, {"event_types", "Stream Start"}},
       "field event_types: must be an array"},
      {{{"kind", "webhook"}, {"target", target}, {"event_types", json::array({1})}},
       "field event_types: must be an array"},
      {{{"kind", "webhook"}, {"target", target}, {"event_types", json::array({"Stream Begin"})}},
       "field event_types"},
      {{{"kind", "webhook"}, {"target", target}, {"channel_ids", "ch-abcdefghijkl"}},
       "field channel_ids: must be an array"},
      {{{"kind", "webhook"}, {"target", target}, {"channel_ids", json::array({7})}},
       "field channel_ids: must be an array"},
  };
  for (const Case& c : cases) {
    const std::string m = ErrorOf(SubscriptionSpecFromJson(c.body));
    EXPECT_TRUE(m.starts_with(c.starts)) << c.body.dump() << " -> " << m;
  }
  // An unknown event name is quoted so the caller sees the typo.
  const std::string m = ErrorOf(SubscriptionSpecFromJson(json{
      {"kind", "webhook"}, {"target", target}, {"event_types", json::array({"Stream Begin"})}}));
  EXPECT_NE(m.find("Stream Begin"), std::string::npos) << m;
}

}  // namespace
}  // namespace earshot::server
