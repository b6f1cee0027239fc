// Business rules: what the platform does when a stream plays a catalogued
// track. A track carries its rights holder's rule (store/catalog_types.h):
//   block  the track must not be streamed
//   mute   the matched audio must be silenced
//   allow  licensed: let it through
//   track  let it through and report the match (the catalog's default)
// A channel may override rules (e.g. {"block": "allow"} for a channel that
// holds a licence) and may choose its own block action; otherwise the
// deployment's default block action applies.
//
// Decide() is the one place that turns a match into an action. Pure: no I/O,
// no clock.
//
// Thread safety: plain value types and pure functions.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::control {

// The rule names, as stored in the catalog and used in the API.
inline constexpr std::array<std::string_view, 4> kRuleNames = {"block", "mute", "allow", "track"};

// True for exactly "block", "mute", "allow" or "track" (lowercase).
bool IsRuleName(std::string_view name);

// What a block does.
enum class BlockAction {
  kNotify,           // "notify": report it (events, subscriptions); the stream goes on
  kStop,             // "stop": stop the stream (the encoder may reconnect)
  kStopAndResetKey,  // "stop_and_reset_key": stop it and replace the channel's stream key
};

inline constexpr std::array<BlockAction, 3> kAllBlockActions = {
    BlockAction::kNotify, BlockAction::kStop, BlockAction::kStopAndResetKey};

// "notify", "stop", "stop_and_reset_key".
std::string_view BlockActionName(BlockAction action);
// Inverse of BlockActionName (exact names); kInvalidArgument listing them.
Result<BlockAction> ParseBlockAction(std::string_view name);

// The rule settings of one channel.
struct ChannelRules {
  // Track rule -> effective rule, e.g. {"block": "allow"}. Keys and values
  // are rule names (ValidateRuleOverrides); rules without a key apply as is.
  std::map<std::string, std::string> rule_overrides;
  // What a block does on this channel; unset: the deployment's default.
  std::optional<BlockAction> block_action;

  friend bool operator==(const ChannelRules&, const ChannelRules&) = default;
};

// kInvalidArgument naming the offending key or value unless every key and
// value is a rule name.
Status ValidateRuleOverrides(const std::map<std::string, std::string>& overrides);

// What to do about one match.
enum class RuleAction {
  kNone,             // allow: nothing to do
  kRecord,           // track: record and report the match
  kMute,             // mute: silence the matched interval
  kNotify,           // block with action notify: alert, the stream goes on
  kStop,             // block with action stop
  kStopAndResetKey,  // block with action stop_and_reset_key
};

// "none", "record", "mute", "notify", "stop", "stop_and_reset_key".
std::string_view ActionName(RuleAction action);

// Names the track in a decision's reason; both fields optional.
struct TrackLabel {
  std::string_view title;
  std::string_view rights_holder;
};

struct RuleDecision {
  std::string track_rule;      // the track's rule as given, lowercased ("" if none)
  std::string effective_rule;  // the rule that applies on this channel
  bool overridden = false;     // a channel override changed the rule
  RuleAction action = RuleAction::kRecord;
  // For people: "track 'Battle' (rights holder Label) has rule block: stop the
  // stream (deployment default)".
  std::string reason;

  friend bool operator==(const RuleDecision&, const RuleDecision&) = default;
};

// Decides what a match of a track with rule `track_rule` does on a channel.
// `track_rule` is matched ignoring ASCII case; an empty or unknown rule is
// treated as "track" (record only) and the reason says so. An override whose
// value is not a rule name (only possible if stored data was edited by hand)
// is ignored and the reason says so. A block uses the channel's block action
// when set, else `deployment_default`.
RuleDecision Decide(std::string_view track_rule, const ChannelRules& channel,
                    BlockAction deployment_default, const TrackLabel& track = {});

}  // namespace earshot::control
