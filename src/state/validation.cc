#include "state/validation.h"

#include <cmath>

#include "control/ids.h"

namespace earshot::state {
namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF included).
size_t SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

bool HasControlCharacter(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return true;
  }
  return false;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = SequenceLength(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t Utf8Length(std::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

std::string SanitizeUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

Status ValidateLabel(std::string_view what, std::string_view text, size_t max_chars) {
  if (!IsValidUtf8(text)) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " is not valid UTF-8");
  }
  if (HasControlCharacter(text)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(what) + " contains a control character");
  }
  if (const size_t n = Utf8Length(text); n > max_chars) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(what) + " has " + std::to_string(n) + " characters (at most " +
                         std::to_string(max_chars) + ")");
  }
  return Ok();
}

Status ValidateChannelName(std::string_view name) {
  return ValidateLabel("channel name", name, kMaxChannelNameChars);
}

Status ValidateTags(const std::map<std::string, std::string>& tags) {
  if (tags.size() > kMaxTags) {
    return MakeError(ErrorCode::kInvalidArgument, "a channel has at most " +
                                                      std::to_string(kMaxTags) + " tags, got " +
                                                      std::to_string(tags.size()));
  }
  for (const auto& [key, value] : tags) {
    if (key.empty()) return MakeError(ErrorCode::kInvalidArgument, "tag with an empty key");
    if (Status s = ValidateLabel("tag key", key, kMaxTagKeyChars); !s) return s;
    if (Status s = ValidateLabel("tag \"" + key + "\" value", value, kMaxTagValueChars); !s) {
      return s;
    }
  }
  return Ok();
}

Status ValidateChannelSpec(const ChannelSpec& spec) {
  if (Status s = ValidateChannelName(spec.name); !s) return s;
  if (Status s = control::ValidateRestrictionPolicy(spec.policy); !s) return s;
  if (Status s = ValidateTags(spec.tags); !s) return s;
  return control::ValidateRuleOverrides(spec.rule_overrides);
}

Status ValidateChannelUpdate(const ChannelUpdate& update) {
  if (update.name) {
    if (Status s = ValidateChannelName(*update.name); !s) return s;
  }
  if (update.policy) {
    if (Status s = control::ValidateRestrictionPolicy(*update.policy); !s) return s;
  }
  if (update.tags) {
    if (Status s = ValidateTags(*update.tags); !s) return s;
  }
  if (update.rule_overrides) {
    if (Status s = control::ValidateRuleOverrides(*update.rule_overrides); !s) return s;
  }
  return Ok();
}

Status ValidateApiKeyName(std::string_view name) {
  return ValidateLabel("API key name", name, kMaxApiKeyNameChars);
}

Status ValidateSubscriptionSpec(const SubscriptionSpec& spec) {
  if (spec.kind != "webhook" && spec.kind != "email") {
    return MakeError(ErrorCode::kInvalidArgument, "unknown subscription kind \"" +
                                                      SanitizeUtf8(spec.kind) +
                                                      "\" (allowed: webhook, email)");
  }
  if (spec.target.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a subscription needs a target, e.g. url=https://example.com/hook");
  }
  if (Status s = ValidateLabel("subscription target", spec.target, kMaxSubscriptionTargetChars);
      !s) {
    return s;
  }
  if (spec.channel_ids.size() > kMaxSubscriptionChannels) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a subscription names at most " + std::to_string(kMaxSubscriptionChannels) +
                         " channels, got " + std::to_string(spec.channel_ids.size()));
  }
  for (const std::string& id : spec.channel_ids) {
    if (!control::IsChannelId(id)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "subscription: \"" + SanitizeUtf8(id) + "\" is not a channel id (ch-...)");
    }
  }
  return Ok();
}

Status ValidateIdentification(const IdentificationRecord& record) {
  const std::string who = "identification " + SanitizeUtf8(record.stream_id) + "/" +
                          SanitizeUtf8(record.match_id);
  if (record.stream_id.empty() || record.match_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, who + ": stream_id and match_id are required");
  }
  if (!IsMatchStatus(record.status)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     who + ": unknown status \"" + SanitizeUtf8(record.status) +
                         "\" (allowed: match_started, match_ongoing, match_ended)");
  }
  if (!control::IsRuleName(record.rule)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     who + ": unknown rule \"" + SanitizeUtf8(record.rule) + "\"");
  }
  if (!record.track_rule.empty() && !control::IsRuleName(record.track_rule)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     who + ": unknown track rule \"" + SanitizeUtf8(record.track_rule) + "\"");
  }
  for (double v : {record.stream_offset_s, record.duration_s, record.reference_offset_s,
                   record.score}) {
    if (!std::isfinite(v)) {
      return MakeError(ErrorCode::kInvalidArgument, who + ": offsets, duration and score must "
                                                          "be finite numbers");
    }
  }
  return Ok();
}

}  // namespace earshot::state
