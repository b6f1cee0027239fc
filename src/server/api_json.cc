#include "server/api_json.h"

#include <set>

namespace earshot::server {
namespace {

Error Bad(const std::string& field, const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, "field " + field + ": " + what);
}

Status CheckFields(const nlohmann::json& body, const std::set<std::string>& known) {
  for (const auto& [key, value] : body.items()) {
    if (!known.contains(key)) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      return std::unexpected(Bad(key, "unknown (known: " + list + ")"));
    }
  }
  return Ok();
}

Result<std::map<std::string, std::string>> StringMap(const nlohmann::json& v, const std::string& field) {
  if (!v.is_object()) return std::unexpected(Bad(field, "must be an object of strings"));
  std::map<std::string, std::string> out;
  for (const auto& [k, item] : v.items()) {
    if (!item.is_string()) return std::unexpected(Bad(field + "." + k, "must be a string"));
    out[k] = item.get<std::string>();
  }
  return out;
}

const std::set<std::string> kChannelFields = {"name", "private", "policy", "tags", "rule_overrides",
                                              "block_action"};

}  // namespace

Result<state::ChannelUpdate> ChannelUpdateFromJson(const nlohmann::json& body) {
  if (!body.is_object()) return MakeError(ErrorCode::kInvalidArgument, "the body must be a JSON object");
  if (Status s = CheckFields(body, kChannelFields); !s) return std::unexpected(s.error());
  state::ChannelUpdate u;
  if (body.contains("name")) {
    if (!body["name"].is_string()) return std::unexpected(Bad("name", "must be a string"));
    u.name = body["name"].get<std::string>();
  }
  if (body.contains("private")) {
    if (!body["private"].is_boolean()) return std::unexpected(Bad("private", "must be true or false"));
    u.is_private = body["private"].get<bool>();
  }
  if (body.contains("policy")) {
    auto p = control::RestrictionPolicyFromJson(body["policy"]);
    if (!p) return std::unexpected(p.error().Wrap("field policy"));
    u.policy = *p;
  }
  if (body.contains("tags")) {
    auto t = StringMap(body["tags"], "tags");
    if (!t) return std::unexpected(t.error());
    u.tags = *t;
  }
  if (body.contains("rule_overrides")) {
    auto r = StringMap(body["rule_overrides"], "rule_overrides");
    if (!r) return std::unexpected(r.error());
    u.rule_overrides = *r;
  }
  if (body.contains("block_action")) {
    const auto& v = body["block_action"];
    if (v.is_null()) {
      u.block_action = std::optional<control::BlockAction>();
    } else if (!v.is_string()) {
      return std::unexpected(Bad("block_action", "must be notify, stop, stop_and_reset_key or null"));
    } else {
      auto a = control::ParseBlockAction(v.get<std::string>());
      if (!a) return std::unexpected(a.error().Wrap("field block_action"));
      u.block_action = std::optional<control::BlockAction>(*a);
    }
  }
  return u;
}

Result<state::ChannelSpec> ChannelSpecFromJson(const nlohmann::json& body) {
  auto u = ChannelUpdateFromJson(body);
  if (!u) return std::unexpected(u.error());
  state::ChannelSpec spec;
  if (u->name) spec.name = *u->name;
  if (u->is_private) spec.is_private = *u->is_private;
  if (u->policy) spec.policy = *u->policy;
  if (u->tags) spec.tags = *u->tags;
  if (u->rule_overrides) spec.rule_overrides = *u->rule_overrides;
  if (u->block_action) spec.block_action = *u->block_action;
  return spec;
}

Result<state::SubscriptionSpec> SubscriptionSpecFromJson(const nlohmann::json& body) {
  if (!body.is_object()) return MakeError(ErrorCode::kInvalidArgument, "the body must be a JSON object");
  if (Status s = CheckFields(body, {"kind", "target", "event_types", "channel_ids"}); !s) {
    return std::unexpected(s.error());
  }
  state::SubscriptionSpec spec;
  if (!body.contains("kind") || !body["kind"].is_string()) {
    return std::unexpected(Bad("kind", "required: webhook or email"));
  }
  spec.kind = body["kind"].get<std::string>();
  if (!body.contains("target") || !body["target"].is_string()) {
    return std::unexpected(Bad("target", "required: delivery options, e.g. url=https://example.com/hook"));
  }
  spec.target = body["target"].get<std::string>();
  if (body.contains("event_types")) {
    if (!body["event_types"].is_array()) return std::unexpected(Bad("event_types", "must be an array of event names"));
    for (const auto& t : body["event_types"]) {
      if (!t.is_string()) return std::unexpected(Bad("event_types", "must be an array of event names"));
      auto type = control::ParseEventType(t.get<std::string>());
      if (!type) return std::unexpected(type.error().Wrap("field event_types"));
      spec.event_types.push_back(*type);
    }
  }
  if (body.contains("channel_ids")) {
    if (!body["channel_ids"].is_array()) return std::unexpected(Bad("channel_ids", "must be an array of channel ids"));
    for (const auto& c : body["channel_ids"]) {
      if (!c.is_string()) return std::unexpected(Bad("channel_ids", "must be an array of channel ids"));
      spec.channel_ids.push_back(c.get<std::string>());
    }
  }
  return spec;
}

}  // namespace earshot::server
