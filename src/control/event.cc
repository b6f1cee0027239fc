#include "control/event.h"

#include <algorithm>

#include "common/time_format.h"

namespace earshot::control {
namespace {

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

std::string_view Trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

std::string KnownNames() {
  std::string names;
  for (EventType type : kAllEventTypes) {
    if (!names.empty()) names += ", ";
    names += EventTypeName(type);
  }
  return names;
}

}  // namespace

std::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kSessionCreated:
      return "Session Created";
    case EventType::kSessionEnded:
      return "Session Ended";
    case EventType::kStreamStart:
      return "Stream Start";
    case EventType::kStreamEnd:
      return "Stream End";
    case EventType::kStreamFailure:
      return "Stream Failure";
    case EventType::kIdentification:
      return "Identification";
    case EventType::kRuleApplied:
      return "Rule Applied";
    case EventType::kAlarm:
      return "Alarm";
  }
  return "Alarm";
}

Result<EventType> ParseEventType(std::string_view name) {
  const std::string_view trimmed = Trim(name);
  for (EventType type : kAllEventTypes) {
    if (EqualsIgnoringAsciiCase(trimmed, EventTypeName(type))) return type;
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown event type \"" + std::string(name) +
                                                    "\" (known: " + KnownNames() + ")");
}

Result<std::vector<EventType>> ParseEventTypeList(std::string_view comma_separated) {
  std::vector<EventType> types;
  size_t start = 0;
  while (start <= comma_separated.size()) {
    size_t comma = comma_separated.find(',', start);
    if (comma == std::string_view::npos) comma = comma_separated.size();
    const std::string_view item = Trim(comma_separated.substr(start, comma - start));
    if (!item.empty()) {
      auto type = ParseEventType(item);
      if (!type) return std::unexpected(type.error());
      if (std::ranges::find(types, *type) == types.end()) types.push_back(*type);
    }
    start = comma + 1;
  }
  return types;
}

nlohmann::json EventToJson(const Event& event) {
  nlohmann::json detail = event.detail.is_object() ? event.detail
                          : event.detail.is_null() ? nlohmann::json::object()
                                                   : nlohmann::json{{"value", event.detail}};
  return {{"seq", event.seq},
          {"time", IsoTimeUtc(event.time_ms)},
          {"event_name", EventTypeName(event.type)},
          {"channel_id", event.channel_id},
          {"stream_id", event.stream_id},
          {"detail", std::move(detail)}};
}

}  // namespace earshot::control
