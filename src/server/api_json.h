// Request bodies of the /v1 API → state records (docs/openapi.json:
// ChannelSpec, SubscriptionSpec). Unknown fields and wrong types are refused
// with kInvalidArgument naming the field; the state store validates values.
#pragma once

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "state/records.h"

namespace earshot::server {

Result<state::ChannelSpec> ChannelSpecFromJson(const nlohmann::json& body);
Result<state::ChannelUpdate> ChannelUpdateFromJson(const nlohmann::json& body);
Result<state::SubscriptionSpec> SubscriptionSpecFromJson(const nlohmann::json& body);

}  // namespace earshot::server
