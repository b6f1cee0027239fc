#include "control/rules.h"

#include <algorithm>

namespace earshot::control {
namespace {

std::string LowerAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string RuleList() {
  std::string out;
  for (std::string_view name : kRuleNames) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string DescribeTrack(const TrackLabel& track) {
  std::string out = "track";
  if (!track.title.empty()) out += " '" + std::string(track.title) + "'";
  if (!track.rights_holder.empty()) {
    out += " (rights holder " + std::string(track.rights_holder) + ")";
  }
  return out;
}

RuleAction BlockRuleAction(BlockAction action) {
  switch (action) {
    case BlockAction::kNotify:
      return RuleAction::kNotify;
    case BlockAction::kStop:
      return RuleAction::kStop;
    case BlockAction::kStopAndResetKey:
      return RuleAction::kStopAndResetKey;
  }
  return RuleAction::kStop;
}

std::string_view ActionPhrase(RuleAction action) {
  switch (action) {
    case RuleAction::kNone:
      return "let it through";
    case RuleAction::kRecord:
      return "let it through and record the match";
    case RuleAction::kMute:
      return "mute the matched audio";
    case RuleAction::kNotify:
      return "notify, the stream goes on";
    case RuleAction::kStop:
      return "stop the stream";
    case RuleAction::kStopAndResetKey:
      return "stop the stream and reset its stream key";
  }
  return "";
}

}  // namespace

bool IsRuleName(std::string_view name) {
  return std::ranges::find(kRuleNames, name) != kRuleNames.end();
}

std::string_view BlockActionName(BlockAction action) {
  switch (action) {
    case BlockAction::kNotify:
      return "notify";
    case BlockAction::kStop:
      return "stop";
    case BlockAction::kStopAndResetKey:
      return "stop_and_reset_key";
  }
  return "stop";
}

Result<BlockAction> ParseBlockAction(std::string_view name) {
  for (BlockAction action : kAllBlockActions) {
    if (name == BlockActionName(action)) return action;
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown block action \"" + std::string(name) +
                       "\" (allowed: notify, stop, stop_and_reset_key)");
}

Status ValidateRuleOverrides(const std::map<std::string, std::string>& overrides) {
  for (const auto& [from, to] : overrides) {
    if (!IsRuleName(from)) {
      return MakeError(ErrorCode::kInvalidArgument, "rule override for unknown rule \"" + from +
                                                        "\" (rules: " + RuleList() + ")");
    }
    if (!IsRuleName(to)) {
      return MakeError(ErrorCode::kInvalidArgument, "rule override " + from +
                                                        " -> unknown rule \"" + to +
                                                        "\" (rules: " + RuleList() + ")");
    }
  }
  return Ok();
}

std::string_view ActionName(RuleAction action) {
  switch (action) {
    case RuleAction::kNone:
      return "none";
    case RuleAction::kRecord:
      return "record";
    case RuleAction::kMute:
      return "mute";
    case RuleAction::kNotify:
      return "notify";
    case RuleAction::kStop:
      return "stop";
    case RuleAction::kStopAndResetKey:
      return "stop_and_reset_key";
  }
  return "record";
}

RuleDecision Decide(std::string_view track_rule, const ChannelRules& channel,
                    BlockAction deployment_default, const TrackLabel& track) {
  RuleDecision decision;
  decision.track_rule = LowerAscii(track_rule);
  std::string reason = DescribeTrack(track);
  std::string rule = decision.track_rule;
  if (rule.empty()) {
    reason += " has no rule, treated as track";
    rule = "track";
  } else if (!IsRuleName(rule)) {
    reason += " has an unknown rule '" + std::string(track_rule) + "', treated as track";
    rule = "track";
  } else {
    reason += " has rule " + rule;
  }
  if (auto it = channel.rule_overrides.find(rule); it != channel.rule_overrides.end()) {
    if (!IsRuleName(it->second)) {
      reason += ", the channel's override to unknown rule '" + it->second + "' is ignored";
    } else if (it->second != rule) {
      reason += ", the channel overrides " + rule + " to " + it->second;
      rule = it->second;
      decision.overridden = true;
    }
  }
  decision.effective_rule = rule;
  std::string_view source;
  if (rule == "block") {
    decision.action = BlockRuleAction(channel.block_action.value_or(deployment_default));
    source = channel.block_action ? " (channel block action)" : " (deployment default)";
  } else if (rule == "mute") {
    decision.action = RuleAction::kMute;
  } else if (rule == "allow") {
    decision.action = RuleAction::kNone;
  } else {
    decision.action = RuleAction::kRecord;
  }
  reason += ": ";
  reason += ActionPhrase(decision.action);
  reason += source;
  decision.reason = std::move(reason);
  return decision;
}

}  // namespace earshot::control
