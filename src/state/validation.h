// Checks on what callers hand to a StateStore, shared by every
// implementation so that SQLite and (later) PostgreSQL refuse the same input
// with the same messages. Every refusal is kInvalidArgument naming the field.
//
// Text that ends up in JSON must be valid UTF-8 (nlohmann::json::dump throws
// otherwise): names, tags and targets are refused when they are not;
// free-form text from other components (reasons, track metadata) is repaired
// with SanitizeUtf8 instead.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "common/error.h"
#include "state/records.h"

namespace earshot::state {

bool IsValidUtf8(std::string_view text);
// Code points in valid UTF-8 text.
size_t Utf8Length(std::string_view text);
// `text` with every invalid UTF-8 sequence replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view text);

// Valid UTF-8, at most `max_chars` code points, no control characters.
Status ValidateLabel(std::string_view what, std::string_view text, size_t max_chars);

Status ValidateChannelName(std::string_view name);
Status ValidateTags(const std::map<std::string, std::string>& tags);
Status ValidateChannelSpec(const ChannelSpec& spec);
Status ValidateChannelUpdate(const ChannelUpdate& update);
Status ValidateApiKeyName(std::string_view name);
// Kind "webhook" or "email"; target non-empty, <= 2048 characters, no control
// characters; channel ids shaped like control::NewChannelId, at most 100.
Status ValidateSubscriptionSpec(const SubscriptionSpec& spec);
// Non-empty stream and match ids, a known status, the effective rule a rule
// name, the track rule empty or a rule name, finite numbers.
Status ValidateIdentification(const IdentificationRecord& record);
// A label name (<= 128 characters); a PEM of 1..16 KiB of printable ASCII
// and line breaks; a fingerprint of 1..256 printable ASCII characters.
Status ValidatePlaybackKey(std::string_view name, std::string_view public_key_pem,
                           std::string_view fingerprint);
// A token id of 1..128 printable ASCII characters; a binding of at most 512
// bytes (any bytes: it is compared, never shown).
Status ValidateSingleUseToken(std::string_view uuid, std::string_view viewer_binding);
// A viewer id of 1..256 characters (a label); a version >= 0.
Status ValidateRevokedViewer(std::string_view viewer_id, int64_t up_to_session_version);
// A non-empty channel id, a minute start that is a multiple of 60, a maximum
// >= 0.
Status ValidateViewerMinute(const ViewerMinuteRecord& record);
// A label name (<= 128 characters); a spec that is a JSON object of at most
// 64 KiB (its fields are the server's to check).
Status ValidateAlarm(std::string_view name, std::string_view spec_json);
// A known state name (IsAlarmStateName); value and band not NaN.
Status ValidateAlarmPoint(const AlarmPointRecord& point);

}  // namespace earshot::state
