#include "state/records.h"

#include <algorithm>

#include "common/time_format.h"

namespace earshot::state {

nlohmann::json ChannelToJson(const Channel& channel) {
  nlohmann::json json = {{"id", channel.id},
                         {"name", channel.name},
                         {"private", channel.is_private},
                         {"policy", control::RestrictionPolicyToJson(channel.policy)},
                         {"tags", channel.tags},
                         {"rule_overrides", channel.rule_overrides},
                         {"created", IsoTimeUtc(channel.created_ms)},
                         {"updated", IsoTimeUtc(channel.updated_ms)}};
  if (channel.block_action) json["block_action"] = control::BlockActionName(*channel.block_action);
  return json;
}

std::string_view SessionStateName(SessionState state) {
  return state == SessionState::kLive ? "live" : "ended";
}

Result<SessionState> ParseSessionState(std::string_view name) {
  if (name == "live") return SessionState::kLive;
  if (name == "ended") return SessionState::kEnded;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown session state \"" + std::string(name) + "\" (live, ended)");
}

std::string_view StreamHealthName(StreamHealth health) {
  switch (health) {
    case StreamHealth::kHealthy:
      return "HEALTHY";
    case StreamHealth::kStarving:
      return "STARVING";
    case StreamHealth::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

Result<StreamHealth> ParseStreamHealth(std::string_view name) {
  for (StreamHealth h : {StreamHealth::kHealthy, StreamHealth::kStarving, StreamHealth::kUnknown}) {
    if (name == StreamHealthName(h)) return h;
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown stream health \"" + std::string(name) +
                                                    "\" (HEALTHY, STARVING, UNKNOWN)");
}

nlohmann::json StreamSessionToJson(const StreamSession& session) {
  nlohmann::json json = {{"stream_id", session.stream_id},
                         {"channel_id", session.channel_id},
                         {"state", SessionStateName(session.state)},
                         {"health", StreamHealthName(session.health)},
                         {"start_time", IsoTimeUtc(session.started_ms)},
                         {"stop_requested", session.stop_requested},
                         {"ingest", session.ingest},
                         {"channel", session.channel}};
  if (session.state == SessionState::kEnded) {
    json["end_time"] = IsoTimeUtc(session.ended_ms);
    json["end_reason"] = session.end_reason;
  }
  if (session.stop_requested) json["stop_reason"] = session.stop_reason;
  return json;
}

bool IsMatchStatus(std::string_view status) {
  return status == kMatchStarted || status == kMatchOngoing || status == kMatchEnded;
}

nlohmann::json IdentificationToJson(const IdentificationRecord& r) {
  return {{"stream_id", r.stream_id},
          {"channel_id", r.channel_id},
          {"match_id", r.match_id},
          {"status", r.status},
          {"rule", r.rule},
          {"track_rule", r.track_rule},
          {"track_id", r.track_id},
          {"title", r.title},
          {"artist", r.artist},
          {"rights_holder", r.rights_holder},
          {"isrc", r.isrc},
          {"started_at", IsoTimeUtc(r.started_at_ms)},
          {"stream_offset_s", r.stream_offset_s},
          {"duration_s", r.duration_s},
          {"reference_offset_s", r.reference_offset_s},
          {"score", r.score},
          {"updated", IsoTimeUtc(r.updated_ms)}};
}

nlohmann::json UsageReportToJson(std::string_view channel_id, int64_t from_ms, int64_t to_ms,
                                 const std::vector<TrackUsage>& tracks) {
  nlohmann::json list = nlohmann::json::array();
  for (const TrackUsage& t : tracks) {
    list.push_back({{"track_id", t.track_id},
                    {"title", t.title},
                    {"artist", t.artist},
                    {"rights_holder", t.rights_holder},
                    {"isrc", t.isrc},
                    {"seconds_played", t.seconds_played},
                    {"streams", t.streams},
                    {"plays", t.plays}});
  }
  return {{"channel_id", channel_id},
          {"from", IsoTimeUtc(from_ms)},
          {"to", IsoTimeUtc(to_ms)},
          {"tracks", std::move(list)}};
}

nlohmann::json ApiKeyInfoToJson(const ApiKeyInfo& info) {
  nlohmann::json json = {{"id", info.id},
                         {"name", info.name},
                         {"hint", info.hint},
                         {"created", IsoTimeUtc(info.created_ms)}};
  if (info.revoked_ms != 0) json["revoked"] = IsoTimeUtc(info.revoked_ms);
  return json;
}

nlohmann::json SubscriptionToJson(const Subscription& s) {
  nlohmann::json types = nlohmann::json::array();
  for (control::EventType type : s.event_types) types.push_back(control::EventTypeName(type));
  return {{"id", s.id},
          {"kind", s.kind},
          {"target", s.target},
          {"event_types", std::move(types)},
          {"channel_ids", s.channel_ids},
          {"created", IsoTimeUtc(s.created_ms)}};
}

bool SubscriptionMatches(const Subscription& subscription, const control::Event& event) {
  if (!subscription.event_types.empty() &&
      std::ranges::find(subscription.event_types, event.type) == subscription.event_types.end()) {
    return false;
  }
  if (subscription.channel_ids.empty()) return true;
  return !event.channel_id.empty() &&
         std::ranges::find(subscription.channel_ids, event.channel_id) !=
             subscription.channel_ids.end();
}

bool IsPlaybackKeyId(std::string_view id) {
  constexpr size_t kRandomChars = 12;
  if (id.size() != kPlaybackKeyIdPrefix.size() + kRandomChars ||
      !id.starts_with(kPlaybackKeyIdPrefix)) {
    return false;
  }
  return id.substr(kPlaybackKeyIdPrefix.size())
             .find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz") == std::string_view::npos;
}

bool IsAlarmStateName(std::string_view name) {
  return name == kAlarmStateOk || name == kAlarmStateAlarm || name == kAlarmStateInsufficientData;
}

bool IsAlarmId(std::string_view id) {
  constexpr size_t kRandomChars = 12;
  if (id.size() != kAlarmIdPrefix.size() + kRandomChars || !id.starts_with(kAlarmIdPrefix)) {
    return false;
  }
  return id.substr(kAlarmIdPrefix.size())
             .find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz") == std::string_view::npos;
}

}  // namespace earshot::state
