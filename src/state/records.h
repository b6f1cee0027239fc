// The control plane's records: channels, stream sessions, identifications,
// admin API keys, event subscriptions, playback's key pairs, revoked
// viewers and viewer series, and viewer-spike alarms, as plain structs with the JSON
// forms the HTTP API returns (docs/openapi.json). Times are Unix
// milliseconds UTC in the structs and ISO 8601 strings in JSON.
//
// Thread safety: plain value types and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "control/event.h"
#include "control/restriction_policy.h"
#include "control/rules.h"

namespace earshot::state {

// ---------------------------------------------------------------------------
// Channels

// Limits checked by ValidateChannelSpec and friends (validation.h).
inline constexpr size_t kMaxChannelNameChars = 128;
inline constexpr size_t kMaxTags = 50;
inline constexpr size_t kMaxTagKeyChars = 128;
inline constexpr size_t kMaxTagValueChars = 256;

// What a caller asks for when creating a channel. Names are labels, not
// identifiers: they need not be unique (as in IVS); the id identifies.
struct ChannelSpec {
  std::string name;  // 0..128 characters of valid UTF-8, no control characters
  bool is_private = false;  // playback needs a token (enforced by the playback issue)
  control::RestrictionPolicy policy;
  std::map<std::string, std::string> tags;            // <= 50; key 1..128, value <= 256 chars
  std::map<std::string, std::string> rule_overrides;  // control::ValidateRuleOverrides
  std::optional<control::BlockAction> block_action;   // unset: the deployment's default
};

struct Channel {
  std::string id;  // control::NewChannelId(): "ch-" + 12 of [a-z0-9]
  std::string name;
  bool is_private = false;
  control::RestrictionPolicy policy;
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> rule_overrides;
  std::optional<control::BlockAction> block_action;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;

  // The channel's rule settings, for control::Decide.
  control::ChannelRules rules() const { return {rule_overrides, block_action}; }

  friend bool operator==(const Channel&, const Channel&) = default;
};

// {"id", "name", "private", "policy", "tags", "rule_overrides",
//  "block_action" (only when set), "created", "updated"}.
nlohmann::json ChannelToJson(const Channel& channel);

// A partial update: only the fields that hold a value change.
struct ChannelUpdate {
  std::optional<std::string> name;
  std::optional<bool> is_private;
  std::optional<control::RestrictionPolicy> policy;
  std::optional<std::map<std::string, std::string>> tags;            // replaces every tag
  std::optional<std::map<std::string, std::string>> rule_overrides;  // replaces every override
  // Outer: change it or not. Inner nullopt: back to the deployment's default.
  std::optional<std::optional<control::BlockAction>> block_action;
};

// A new channel and its stream key: the only time the plaintext key exists
// outside the encoder (the store keeps control::HashSecret of it).
struct CreatedChannel {
  Channel channel;
  std::string stream_key;
};

struct ChannelListOptions {
  int limit = 100;         // 1..1000; values outside are clamped
  std::string next_token;  // "" for the first page, else ChannelPage::next_token
};

// Channels in creation order.
struct ChannelPage {
  std::vector<Channel> channels;
  std::string next_token;  // opaque; "" when this is the last page
};

// ---------------------------------------------------------------------------
// Stream sessions

enum class SessionState { kLive, kEnded };
// "live", "ended".
std::string_view SessionStateName(SessionState state);
Result<SessionState> ParseSessionState(std::string_view name);

enum class StreamHealth { kHealthy, kStarving, kUnknown };
// "HEALTHY", "STARVING", "UNKNOWN" (IVS names).
std::string_view StreamHealthName(StreamHealth health);
Result<StreamHealth> ParseStreamHealth(std::string_view name);

// One publish of one channel, from the accepted publish to its end.
struct StreamSession {
  std::string stream_id;  // control::NewStreamId(): "st-" + 23 alphanumerics
  std::string channel_id;
  SessionState state = SessionState::kLive;
  StreamHealth health = StreamHealth::kUnknown;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;    // 0 while live
  std::string end_reason;  // "" while live
  bool stop_requested = false;  // the ingest must refuse this publisher (on_update)
  std::string stop_reason;
  // What the ingest reported (app, clientid, addr, ...) and what the scanner
  // learnt later (codec information), merged by UpdateSessionIngest.
  nlohmann::json ingest = nlohmann::json::object();
  nlohmann::json channel = nlohmann::json::object();  // ChannelToJson at the start

  friend bool operator==(const StreamSession&, const StreamSession&) = default;
};

// {"stream_id", "channel_id", "state", "health", "start_time", "end_time" and
//  "end_reason" (once ended), "stop_requested", "stop_reason" (when
//  requested), "ingest", "channel"}.
nlohmann::json StreamSessionToJson(const StreamSession& session);

// ---------------------------------------------------------------------------
// Events

struct EventFilter {
  int64_t after_seq = 0;  // events with seq > after_seq (a cursor)
  int limit = 100;        // 1..1000; values outside are clamped
  std::optional<std::vector<control::EventType>> types;  // nullopt or empty: every type
  std::optional<std::string> channel_id;
  std::optional<std::string> stream_id;
};

// ---------------------------------------------------------------------------
// Identifications

// "match_started", "match_ongoing", "match_ended" (scan responses).
inline constexpr std::string_view kMatchStarted = "match_started";
inline constexpr std::string_view kMatchOngoing = "match_ongoing";
inline constexpr std::string_view kMatchEnded = "match_ended";
bool IsMatchStatus(std::string_view status);

// The latest state of one match of one stream (key: stream_id + match_id).
struct IdentificationRecord {
  std::string stream_id;
  std::string channel_id;  // "" when the scan had no channel
  std::string match_id;    // scan::MatchId: unique within the stream
  std::string status;      // kMatchStarted, kMatchOngoing or kMatchEnded
  std::string rule;        // the effective rule (after channel overrides)
  std::string track_rule;  // the track's own rule; "" when unknown
  int64_t track_id = 0;
  std::string title;
  std::string artist;
  std::string rights_holder;
  std::string isrc;
  int64_t started_at_ms = 0;      // wall clock of the match start in the stream
  double stream_offset_s = 0;     // where the match starts in the stream
  double duration_s = 0;          // matched so far (final once ended)
  double reference_offset_s = 0;  // where it starts in the reference recording
  double score = 0;
  int64_t updated_ms = 0;  // set by the store

  friend bool operator==(const IdentificationRecord&, const IdentificationRecord&) = default;
};

// {"stream_id", "channel_id", "match_id", "status", "rule", "track_rule",
//  "track_id", "title", "artist", "rights_holder", "isrc", "started_at",
//  "stream_offset_s", "duration_s", "reference_offset_s", "score", "updated"}.
nlohmann::json IdentificationToJson(const IdentificationRecord& record);

// Filters combine with AND.
struct IdentificationFilter {
  std::optional<std::string> stream_id;
  std::optional<std::string> channel_id;
  std::optional<int64_t> from_ms;  // started_at_ms >= from_ms
  std::optional<int64_t> to_ms;    // started_at_ms < to_ms
  std::optional<std::string> rule;  // the effective rule
  int limit = 1000;                 // 1..10000; values outside are clamped
};

// Music usage of one track on one channel over a time range.
struct TrackUsage {
  int64_t track_id = 0;
  std::string title;
  std::string artist;
  std::string rights_holder;
  std::string isrc;
  double seconds_played = 0;  // sum of the matches' latest (final once ended) durations
  int64_t streams = 0;        // distinct streams it played in
  int64_t plays = 0;          // matches

  friend bool operator==(const TrackUsage&, const TrackUsage&) = default;
};

// {"channel_id", "from", "to", "tracks": [{"track_id", "title", "artist",
//  "rights_holder", "isrc", "seconds_played", "streams", "plays"}]}.
nlohmann::json UsageReportToJson(std::string_view channel_id, int64_t from_ms, int64_t to_ms,
                                 const std::vector<TrackUsage>& tracks);

// ---------------------------------------------------------------------------
// Admin API keys

inline constexpr size_t kMaxApiKeyNameChars = 128;

// An API key as listed: never the secret.
struct ApiKeyInfo {
  std::string id;    // control::NewApiKeyId(): "ak-" + 12 of [a-z0-9]
  std::string name;  // 0..128 characters, for people
  std::string hint;  // control::RedactSecret of the key: "ek_Ab…(43 chars)"
  int64_t created_ms = 0;
  int64_t revoked_ms = 0;  // 0 while valid

  friend bool operator==(const ApiKeyInfo&, const ApiKeyInfo&) = default;
};

// {"id", "name", "hint", "created", "revoked" (when revoked)}.
nlohmann::json ApiKeyInfoToJson(const ApiKeyInfo& info);

struct CreatedApiKey {
  ApiKeyInfo info;
  std::string key;  // the plaintext: shown once, never stored
};

// ---------------------------------------------------------------------------
// Event subscriptions

inline constexpr size_t kMaxSubscriptionTargetChars = 2048;
inline constexpr size_t kMaxSubscriptionChannels = 100;

struct SubscriptionSpec {
  std::string kind;    // "webhook" or "email"
  std::string target;  // delivery spec options (delivery/target_spec.h) without the
                       // kind: "url=https://example.com/hook,secret_env=HOOK_SECRET"
  std::vector<control::EventType> event_types;  // empty: every type
  std::vector<std::string> channel_ids;         // empty: every channel
};

struct Subscription {
  std::string id;  // control::NewSubscriptionId()
  std::string kind;
  std::string target;
  std::vector<control::EventType> event_types;
  std::vector<std::string> channel_ids;
  int64_t created_ms = 0;

  friend bool operator==(const Subscription&, const Subscription&) = default;
};

// {"id", "kind", "target", "event_types": [names], "channel_ids", "created"}.
nlohmann::json SubscriptionToJson(const Subscription& subscription);

// True when `subscription` wants `event`: its type and channel are in the
// lists (an empty list matches everything). Events without a channel match
// only subscriptions without a channel list.
bool SubscriptionMatches(const Subscription& subscription, const control::Event& event);

// ---------------------------------------------------------------------------
// Playback key pairs: the public halves of the key pairs customers sign
// playback tokens with (the private halves never reach earshot).

inline constexpr std::string_view kPlaybackKeyIdPrefix = "pk-";
inline constexpr size_t kMaxPlaybackKeyNameChars = 128;
inline constexpr size_t kMaxPlaybackKeyPemBytes = 16 * 1024;
inline constexpr size_t kMaxPlaybackKeyFingerprintChars = 256;

// "pk-" + 12 of [a-z0-9] (the alphabet and generator of channel ids).
bool IsPlaybackKeyId(std::string_view id);

struct PlaybackKey {
  std::string id;              // "pk-" + 12 of [a-z0-9], made by the store
  std::string name;            // 0..128 characters, for people
  std::string public_key_pem;  // as imported (the caller validated it)
  std::string fingerprint;     // the caller's fingerprint of the key; unique
  int64_t created_ms = 0;

  friend bool operator==(const PlaybackKey&, const PlaybackKey&) = default;
};

// ---------------------------------------------------------------------------
// Single-use playback tokens (ClaimSingleUseToken)

inline constexpr size_t kMaxSingleUseTokenIdChars = 128;
inline constexpr size_t kMaxViewerBindingChars = 512;

// ---------------------------------------------------------------------------
// Revoked viewers: a viewer's tokens of one channel up to a session version
// are refused.

inline constexpr size_t kMaxViewerIdChars = 256;

struct RevokedViewer {
  std::string channel_id;
  std::string viewer_id;              // 1..256 characters
  int64_t up_to_session_version = 0;  // tokens with a version <= this are refused
  int64_t revoked_ms = 0;             // when this version was recorded

  friend bool operator==(const RevokedViewer&, const RevokedViewer&) = default;
};

// ---------------------------------------------------------------------------
// Viewer series: the maximum of concurrent viewers per channel and minute
// (playback::ViewerTracker::TakeClosedMinutes).

struct ViewerMinuteRecord {
  std::string channel_id;
  int64_t minute_start_s = 0;  // Unix seconds, a multiple of 60
  int64_t max_viewers = 0;     // >= 0

  friend bool operator==(const ViewerMinuteRecord&, const ViewerMinuteRecord&) = default;
};

// ---------------------------------------------------------------------------
// Viewer-spike alarms: their settings (validated by the server), each
// channel's evaluator state (opaque bytes) and the evaluated datapoints.

inline constexpr std::string_view kAlarmIdPrefix = "al-";
inline constexpr size_t kMaxAlarmNameChars = 128;
inline constexpr size_t kMaxAlarmSpecBytes = 64 * 1024;
// Alarms a store holds at most (CreateAlarm's kFailedPrecondition).
inline constexpr size_t kMaxAlarms = 1000;
// The largest evaluator state SaveAlarmChannelState accepts, in bytes.
inline constexpr size_t kMaxAlarmChannelStateBytes = 1024 * 1024;
// Points older than this before the newest point of their (alarm, channel)
// are deleted (RecordAlarmPoints), in seconds: 14 days.
inline constexpr int64_t kAlarmPointRetentionS = 14 * 24 * 3600;

// Alarm states of AlarmPointRecord::state.
inline constexpr std::string_view kAlarmStateOk = "OK";
inline constexpr std::string_view kAlarmStateAlarm = "ALARM";
inline constexpr std::string_view kAlarmStateInsufficientData = "INSUFFICIENT_DATA";
bool IsAlarmStateName(std::string_view name);

// "al-" + 12 of [a-z0-9] (the alphabet and generator of channel ids).
bool IsAlarmId(std::string_view id);

struct AlarmRecord {
  std::string id;          // "al-" + 12 of [a-z0-9], made by the store
  std::string name;        // 0..128 characters (like channel names)
  std::string channel_id;  // "" = every channel
  std::string spec_json;   // the alarm's settings: a JSON object of <= 64 KiB
  int64_t created_ms = 0;

  friend bool operator==(const AlarmRecord&, const AlarmRecord&) = default;
};

// One evaluated period of one alarm on one channel.
struct AlarmPointRecord {
  std::string alarm_id;
  std::string channel_id;
  int64_t timestamp_s = 0;  // start of the period, Unix seconds
  double value = 0;         // the period's maximum of concurrent viewers
  double band_low = 0;      // the expected band (not NaN; infinities allowed)
  double band_high = 0;
  std::string state;  // kAlarmStateOk, kAlarmStateAlarm or kAlarmStateInsufficientData

  friend bool operator==(const AlarmPointRecord&, const AlarmPointRecord&) = default;
};

}  // namespace earshot::state
