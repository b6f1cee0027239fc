// Business rule decisions (control/rules.h): every track rule × channel
// override × channel block action × deployment default, plus the names.
#include "control/rules.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace earshot::control {
namespace {

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(RuleNamesTest, AreExactlyTheFourLowercaseRules) {
  for (std::string_view name : {"block", "mute", "allow", "track"}) EXPECT_TRUE(IsRuleName(name));
  for (std::string_view name : {"", "Block", "BLOCK", "blok", "none", " block", "block "}) {
    EXPECT_FALSE(IsRuleName(name)) << name;
  }
}

TEST(BlockActionTest, NamesRoundTrip) {
  std::set<std::string_view> names;
  for (BlockAction action : kAllBlockActions) {
    names.insert(BlockActionName(action));
    auto parsed = ParseBlockAction(BlockActionName(action));
    ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString();
    EXPECT_EQ(*parsed, action);
  }
  EXPECT_EQ(names, (std::set<std::string_view>{"notify", "stop", "stop_and_reset_key"}));
  for (std::string_view bad : {"", "Stop", "reset", "stop-and-reset-key", "notify "}) {
    auto parsed = ParseBlockAction(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(Contains(parsed.error().message(), "stop_and_reset_key"));
  }
}

TEST(RuleActionTest, NamesAreDistinct) {
  std::set<std::string_view> names;
  for (RuleAction action : {RuleAction::kNone, RuleAction::kRecord, RuleAction::kMute,
                            RuleAction::kNotify, RuleAction::kStop, RuleAction::kStopAndResetKey}) {
    names.insert(ActionName(action));
  }
  EXPECT_EQ(names, (std::set<std::string_view>{"none", "record", "mute", "notify", "stop",
                                                "stop_and_reset_key"}));
}

TEST(RuleOverridesTest, Validation) {
  EXPECT_TRUE(ValidateRuleOverrides({}).has_value());
  EXPECT_TRUE(ValidateRuleOverrides({{"block", "allow"}, {"mute", "track"}}).has_value());
  for (std::string_view from : kRuleNames) {
    for (std::string_view to : kRuleNames) {
      EXPECT_TRUE(ValidateRuleOverrides({{std::string(from), std::string(to)}}).has_value());
    }
  }
  auto bad_key = ValidateRuleOverrides({{"block", "allow"}, {"Blok", "allow"}});
  ASSERT_FALSE(bad_key.has_value());
  EXPECT_EQ(bad_key.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad_key.error().message(), "\"Blok\"")) << bad_key.error().message();

  auto bad_value = ValidateRuleOverrides({{"block", "permit"}});
  ASSERT_FALSE(bad_value.has_value());
  EXPECT_EQ(bad_value.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad_value.error().message(), "\"permit\"")) << bad_value.error().message();
}

// A few decisions spelled out in full.
TEST(DecideTest, ExamplesSpelledOut) {
  const TrackLabel battle{"Battle", "Label"};
  RuleDecision d = Decide("block", {}, BlockAction::kStop, battle);
  EXPECT_EQ(d.track_rule, "block");
  EXPECT_EQ(d.effective_rule, "block");
  EXPECT_FALSE(d.overridden);
  EXPECT_EQ(d.action, RuleAction::kStop);
  EXPECT_EQ(d.reason, "track 'Battle' (rights holder Label) has rule block: stop the stream "
                      "(deployment default)");

  d = Decide("block", {{}, BlockAction::kNotify}, BlockAction::kStop, battle);
  EXPECT_EQ(d.action, RuleAction::kNotify);
  EXPECT_TRUE(Contains(d.reason, "(channel block action)")) << d.reason;

  // A licensed channel.
  d = Decide("block", {{{"block", "allow"}}, std::nullopt}, BlockAction::kStopAndResetKey, battle);
  EXPECT_EQ(d.effective_rule, "allow");
  EXPECT_TRUE(d.overridden);
  EXPECT_EQ(d.action, RuleAction::kNone);
  EXPECT_TRUE(Contains(d.reason, "overrides block to allow")) << d.reason;

  EXPECT_EQ(Decide("mute", {}, BlockAction::kStop).action, RuleAction::kMute);
  EXPECT_EQ(Decide("allow", {}, BlockAction::kStop).action, RuleAction::kNone);
  EXPECT_EQ(Decide("track", {}, BlockAction::kStop).action, RuleAction::kRecord);

  // Case is ignored; the reason names the track without a label as "track".
  d = Decide("BLOCK", {}, BlockAction::kStopAndResetKey);
  EXPECT_EQ(d.track_rule, "block");
  EXPECT_EQ(d.action, RuleAction::kStopAndResetKey);
  EXPECT_TRUE(d.reason.starts_with("track has rule block")) << d.reason;

  // Only a rights holder.
  d = Decide("track", {}, BlockAction::kStop, {"", "Holder"});
  EXPECT_TRUE(d.reason.starts_with("track (rights holder Holder) has rule track")) << d.reason;
}

TEST(DecideTest, MissingOrUnknownRulesAreTrack) {
  RuleDecision d = Decide("", {}, BlockAction::kStop, {"Song", ""});
  EXPECT_EQ(d.track_rule, "");
  EXPECT_EQ(d.effective_rule, "track");
  EXPECT_EQ(d.action, RuleAction::kRecord);
  EXPECT_TRUE(Contains(d.reason, "track 'Song' has no rule, treated as track")) << d.reason;

  d = Decide("Forbid", {}, BlockAction::kStop, {"Song", ""});
  EXPECT_EQ(d.track_rule, "forbid");
  EXPECT_EQ(d.effective_rule, "track");
  EXPECT_EQ(d.action, RuleAction::kRecord);
  EXPECT_TRUE(Contains(d.reason, "unknown rule 'Forbid', treated as track")) << d.reason;

  // The channel's override of "track" applies to them as to any "track".
  d = Decide("", {{{"track", "block"}}, BlockAction::kNotify}, BlockAction::kStop);
  EXPECT_EQ(d.effective_rule, "block");
  EXPECT_TRUE(d.overridden);
  EXPECT_EQ(d.action, RuleAction::kNotify);
}

TEST(DecideTest, InvalidOverridesAreIgnoredAndSaid) {
  RuleDecision d = Decide("block", {{{"block", "permit"}}, std::nullopt}, BlockAction::kStop);
  EXPECT_EQ(d.effective_rule, "block");
  EXPECT_FALSE(d.overridden);
  EXPECT_EQ(d.action, RuleAction::kStop);
  EXPECT_TRUE(Contains(d.reason, "override to unknown rule 'permit' is ignored")) << d.reason;

  // An override to the same rule is no override.
  d = Decide("mute", {{{"mute", "mute"}}, std::nullopt}, BlockAction::kStop);
  EXPECT_FALSE(d.overridden);
  EXPECT_EQ(d.action, RuleAction::kMute);
  EXPECT_FALSE(Contains(d.reason, "overrides")) << d.reason;
}

// The whole table: track rule × override map × channel block action ×
// deployment default, against the documented semantics.
TEST(DecideTest, AllRulesOverridesAndBlockActions) {
  const std::vector<std::string> track_rules = {"block", "mute", "allow", "track", "", "Bogus"};
  // No override, every single override, and a licensed channel that also
  // mutes what it may not play.
  std::vector<std::map<std::string, std::string>> override_maps = {{}};
  for (std::string_view from : kRuleNames) {
    for (std::string_view to : kRuleNames) {
      override_maps.push_back({{std::string(from), std::string(to)}});
    }
  }
  override_maps.push_back({{"block", "mute"}, {"mute", "allow"}, {"track", "allow"}});
  std::vector<std::optional<BlockAction>> channel_actions = {std::nullopt};
  for (BlockAction a : kAllBlockActions) channel_actions.push_back(a);

  const TrackLabel label{"Ode", "Rights Co"};
  int cases = 0;
  for (const std::string& track_rule : track_rules) {
    const std::string rule = IsRuleName(track_rule) ? track_rule : "track";
    for (const auto& overrides : override_maps) {
      auto it = overrides.find(rule);
      const std::string effective = it == overrides.end() ? rule : it->second;
      for (const auto& channel_action : channel_actions) {
        for (BlockAction deployment : kAllBlockActions) {
          SCOPED_TRACE("track rule '" + track_rule + "', overrides " +
                       nlohmann::json(overrides).dump() + ", channel action " +
                       (channel_action ? std::string(BlockActionName(*channel_action)) : "-") +
                       ", default " + std::string(BlockActionName(deployment)));
          const RuleDecision d = Decide(track_rule, {overrides, channel_action}, deployment, label);
          ++cases;
          EXPECT_EQ(d.effective_rule, effective);
          EXPECT_EQ(d.overridden, effective != rule);
          RuleAction expected = RuleAction::kRecord;
          if (effective == "block") {
            switch (channel_action.value_or(deployment)) {
              case BlockAction::kNotify:
                expected = RuleAction::kNotify;
                break;
              case BlockAction::kStop:
                expected = RuleAction::kStop;
                break;
              case BlockAction::kStopAndResetKey:
                expected = RuleAction::kStopAndResetKey;
                break;
            }
            EXPECT_TRUE(Contains(d.reason, channel_action ? "(channel block action)"
                                                          : "(deployment default)"))
                << d.reason;
          } else if (effective == "mute") {
            expected = RuleAction::kMute;
          } else if (effective == "allow") {
            expected = RuleAction::kNone;
          }
          EXPECT_EQ(d.action, expected) << ActionName(d.action) << ": " << d.reason;
          // The reason names the track, its rights holder, and its rule.
          EXPECT_TRUE(d.reason.starts_with("track 'Ode' (rights holder Rights Co)")) << d.reason;
          if (!track_rule.empty() && IsRuleName(track_rule)) {
            EXPECT_TRUE(Contains(d.reason, "has rule " + track_rule)) << d.reason;
          }
          if (d.overridden) {
            EXPECT_TRUE(Contains(d.reason, "overrides " + rule + " to " + effective)) << d.reason;
          }
          // Decisions are pure: the same question, the same answer.
          EXPECT_EQ(Decide(track_rule, {overrides, channel_action}, deployment, label), d);
        }
      }
    }
  }
  EXPECT_EQ(cases, 6 * 18 * 4 * 3);
}

}  // namespace
}  // namespace earshot::control
