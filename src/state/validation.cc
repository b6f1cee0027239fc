#include "state/validation.h"

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

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

namespace {

bool IsPrintableAscii(std::string_view text, bool allow_line_breaks) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (allow_line_breaks && (c == '\n' || c == '\r')) continue;
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}

}  // namespace

Status ValidatePlaybackKey(std::string_view name, std::string_view public_key_pem,
                           std::string_view fingerprint) {
  if (Status s = ValidateLabel("playback key name", name, kMaxPlaybackKeyNameChars); !s) return s;
  if (public_key_pem.empty() || public_key_pem.size() > kMaxPlaybackKeyPemBytes ||
      !IsPrintableAscii(public_key_pem, true)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a playback public key must be 1.." + std::to_string(kMaxPlaybackKeyPemBytes) +
                         " bytes of PEM text (printable ASCII and line breaks)");
  }
  if (fingerprint.empty() || fingerprint.size() > kMaxPlaybackKeyFingerprintChars ||
      !IsPrintableAscii(fingerprint, false)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a playback key fingerprint must be 1.." +
                         std::to_string(kMaxPlaybackKeyFingerprintChars) +
                         " printable ASCII characters");
  }
  return Ok();
}

Status ValidateSingleUseToken(std::string_view uuid, std::string_view viewer_binding) {
  if (uuid.empty() || uuid.size() > kMaxSingleUseTokenIdChars || !IsPrintableAscii(uuid, false)) {
    return MakeError(ErrorCode::kInvalidArgument, "a single-use token id must be 1.." +
                                                      std::to_string(kMaxSingleUseTokenIdChars) +
                                                      " printable ASCII characters");
  }
  if (viewer_binding.size() > kMaxViewerBindingChars) {
    return MakeError(ErrorCode::kInvalidArgument, "a single-use token's viewer binding has " +
                                                      std::to_string(viewer_binding.size()) +
                                                      " bytes (at most " +
                                                      std::to_string(kMaxViewerBindingChars) + ")");
  }
  return Ok();
}

Status ValidateRevokedViewer(std::string_view viewer_id, int64_t up_to_session_version) {
  if (viewer_id.empty()) return MakeError(ErrorCode::kInvalidArgument, "viewer id is empty");
  if (Status s = ValidateLabel("viewer id", viewer_id, kMaxViewerIdChars); !s) return s;
  if (up_to_session_version < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "revoking viewer " + std::string(viewer_id) + ": session version " +
                         std::to_string(up_to_session_version) + " is negative");
  }
  return Ok();
}

Status ValidateViewerMinute(const ViewerMinuteRecord& record) {
  const std::string who = "viewer count of channel \"" +
                          SanitizeUtf8(record.channel_id.substr(0, 128)) + "\" at " +
                          std::to_string(record.minute_start_s);
  if (record.channel_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "viewer count without a channel id");
  }
  if (record.minute_start_s % 60 != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     who + ": the minute start is not a multiple of 60 s");
  }
  if (record.max_viewers < 0) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        who + ": the viewer count " + std::to_string(record.max_viewers) + " is negative");
  }
  return Ok();
}

Status ValidateAlarm(std::string_view name, std::string_view spec_json) {
  if (Status s = ValidateLabel("alarm name", name, kMaxAlarmNameChars); !s) return s;
  if (spec_json.size() > kMaxAlarmSpecBytes) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "alarm settings have " + std::to_string(spec_json.size()) +
                         " bytes of JSON (at most " + std::to_string(kMaxAlarmSpecBytes) + ")");
  }
  // The parser refuses invalid UTF-8 too, so stored settings dump safely.
  const nlohmann::json spec = nlohmann::json::parse(spec_json, nullptr, false);
  if (spec.is_discarded() || !spec.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "alarm settings must be a JSON object");
  }
  return Ok();
}

Status ValidateAlarmPoint(const AlarmPointRecord& point) {
  const std::string who = "alarm point of alarm \"" + SanitizeUtf8(point.alarm_id.substr(0, 128)) +
                          "\" on channel \"" + SanitizeUtf8(point.channel_id.substr(0, 128)) +
                          "\" at " + std::to_string(point.timestamp_s);
  if (!IsAlarmStateName(point.state)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     who + ": unknown state \"" + SanitizeUtf8(point.state.substr(0, 64)) +
                         "\" (expected OK, ALARM or INSUFFICIENT_DATA)");
  }
  if (std::isnan(point.value) || std::isnan(point.band_low) || std::isnan(point.band_high)) {
    return MakeError(ErrorCode::kInvalidArgument, who + ": value and band must not be NaN");
  }
  return Ok();
}

}  // namespace earshot::state
