// The control plane's event log vocabulary. Stream state events carry the
// managed service's names (Amazon IVS "IVS Stream State Change": Session
// Created, Session Ended, Stream Start, Stream End, Stream Failure); earshot
// adds its own: Identification (a match started or ended), Rule Applied (what
// a business rule did), Alarm (something an operator should look at).
//
// JSON form of an event (the API's event log, the live feed, webhooks):
//   {"seq": 42, "time": "2026-11-21T10:15:00.250Z", "event_name": "Stream Start",
//    "channel_id": "ch-...", "stream_id": "st-...", "detail": {...}}
// channel_id and stream_id are "" when the event concerns none. Consumers must
// be idempotent (dedupe on seq): delivery can repeat an event.
//
// Thread safety: plain value types and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace earshot::control {

enum class EventType {
  kSessionCreated,  // "Session Created": a publisher's key was accepted
  kSessionEnded,    // "Session Ended"
  kStreamStart,     // "Stream Start": media is flowing
  kStreamEnd,       // "Stream End"
  kStreamFailure,   // "Stream Failure": detail.reason says why
  kIdentification,  // "Identification": a catalogued track was recognised
  kRuleApplied,     // "Rule Applied": a business rule acted (stop, mute, notify)
  kAlarm,           // "Alarm": needs an operator's attention
};

inline constexpr std::array<EventType, 8> kAllEventTypes = {
    EventType::kSessionCreated, EventType::kSessionEnded,   EventType::kStreamStart,
    EventType::kStreamEnd,      EventType::kStreamFailure,  EventType::kIdentification,
    EventType::kRuleApplied,    EventType::kAlarm};

// The display name: "Session Created", ..., "Rule Applied", "Alarm".
std::string_view EventTypeName(EventType type);

// Inverse of EventTypeName, ignoring ASCII case and surrounding spaces.
// kInvalidArgument naming the input and listing the known names.
Result<EventType> ParseEventType(std::string_view name);

// A comma-separated list of names ("Stream Start,Identification"), as the
// API's `type` query parameter takes it. Empty items are skipped; duplicates
// kept once, in first-seen order. kInvalidArgument for an unknown name.
Result<std::vector<EventType>> ParseEventTypeList(std::string_view comma_separated);

// One entry of the append-only event log.
struct Event {
  int64_t seq = 0;      // position in the log: increases with every append, never reused
  int64_t time_ms = 0;  // when it was appended, Unix milliseconds UTC
  EventType type = EventType::kAlarm;
  std::string channel_id;  // "" when the event concerns no channel
  std::string stream_id;   // "" when the event concerns no stream
  nlohmann::json detail = nlohmann::json::object();  // a JSON object

  friend bool operator==(const Event&, const Event&) = default;
};

// The JSON form above. A null detail becomes {}; any other detail that is not
// an object is wrapped as {"value": detail}, so consumers can always index it.
nlohmann::json EventToJson(const Event& event);

}  // namespace earshot::control
