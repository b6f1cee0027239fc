#include "playback/playback_token.h"

#include <cmath>

#include "control/restriction_policy.h"

namespace earshot::playback {
namespace {

constexpr std::string_view kChannelArn = "aws:channel-arn";
constexpr std::string_view kExp = "exp";
constexpr std::string_view kAllowOrigin = "aws:access-control-allow-origin";
constexpr std::string_view kStrictOrigin = "aws:strict-origin-enforcement";
constexpr std::string_view kSingleUse = "aws:single-use-uuid";
constexpr std::string_view kViewerId = "aws:viewer-id";
constexpr std::string_view kSessionVersion = "aws:viewer-session-version";
constexpr std::string_view kMaxResolution = "aws:maximum-resolution";

TokenError Fault(TokenFault fault, std::string message) { return {fault, std::move(message)}; }

std::unexpected<TokenError> Malformed(std::string message) {
  return std::unexpected(Fault(TokenFault::kMalformed, "malformed token: " + std::move(message)));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Optional string claim: nullptr when absent or null.
TokenResult<const std::string*> OptionalString(const nlohmann::json& payload,
                                               std::string_view name) {
  auto it = payload.find(name);
  if (it == payload.end() || it->is_null()) return nullptr;
  if (!it->is_string()) {
    return Malformed("claim \"" + std::string(name) + "\" must be a string, found " +
                     std::string(it->type_name()));
  }
  return &it->get_ref<const std::string&>();
}

TokenResult<int64_t> ParseExp(const nlohmann::json& payload) {
  auto it = payload.find(kExp);
  if (it == payload.end() || it->is_null()) {
    return Malformed("claim \"exp\" (expiry, Unix seconds) is required");
  }
  if (!it->is_number()) {
    return Malformed("claim \"exp\" must be a number of Unix seconds, found " +
                     std::string(it->type_name()));
  }
  double value = 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(kMaxExpSeconds))
      value = static_cast<double>(kMaxExpSeconds) + 1;
    else
      value = static_cast<double>(u);
  } else if (it->is_number_integer()) {
    value = static_cast<double>(it->get<int64_t>());
  } else {
    value = it->get<double>();
  }
  if (!std::isfinite(value) || value < 0) {
    return Malformed("claim \"exp\" must be a non-negative number of Unix seconds");
  }
  if (value > static_cast<double>(kMaxExpSeconds)) {
    return std::unexpected(Fault(
        TokenFault::kExpInMilliseconds,
        "token \"exp\" " + it->dump() +
            " is in milliseconds (it would be after the year 5000 as seconds); JWT exp is Unix "
            "time in SECONDS: divide by 1000 when minting"));
  }
  return static_cast<int64_t>(std::floor(value));
}

}  // namespace

std::string_view TokenFaultName(TokenFault fault) {
  switch (fault) {
    case TokenFault::kMalformed:
      return "malformed";
    case TokenFault::kAlgorithmNotAllowed:
      return "algorithm_not_allowed";
    case TokenFault::kUnknownKey:
      return "unknown_key";
    case TokenFault::kBadSignature:
      return "bad_signature";
    case TokenFault::kExpInMilliseconds:
      return "exp_in_milliseconds";
  }
  return "unknown";
}

TokenResult<PlaybackClaims> ParsePlaybackClaims(const nlohmann::json& payload) {
  if (!payload.is_object()) return Malformed("the payload is not a JSON object");
  PlaybackClaims claims;

  auto arn = OptionalString(payload, kChannelArn);
  if (!arn) return std::unexpected(arn.error());
  if (*arn == nullptr || (*arn)->empty()) {
    return Malformed("claim \"aws:channel-arn\" (the channel this token plays) is required");
  }
  claims.channel_arn = **arn;

  auto exp = ParseExp(payload);
  if (!exp) return std::unexpected(exp.error());
  claims.exp_s = *exp;

  auto origins = OptionalString(payload, kAllowOrigin);
  if (!origins) return std::unexpected(origins.error());
  if (*origins != nullptr) {
    std::string_view rest = **origins;
    while (true) {
      const size_t comma = rest.find(',');
      const std::string_view item = Trim(rest.substr(0, comma));
      if (!item.empty()) {
        std::string pattern = Lower(item);
        if (!control::IsOriginPattern(pattern)) {
          std::string shown(item.substr(0, 60));
          return Malformed(
              "claim \"aws:access-control-allow-origin\": " +
              nlohmann::json(shown).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
              " is not an origin (use \"*\" or scheme://host[:port], e.g. "
              "https://*.example.com)");
        }
        if (claims.allowed_origins.size() >= control::kMaxAllowedOrigins) {
          return Malformed("claim \"aws:access-control-allow-origin\" lists more than " +
                           std::to_string(control::kMaxAllowedOrigins) + " origins");
        }
        claims.allowed_origins.push_back(std::move(pattern));
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }

  if (auto it = payload.find(kStrictOrigin); it != payload.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return Malformed("claim \"aws:strict-origin-enforcement\" must be true or false");
    }
    claims.strict_origin_enforcement = it->get<bool>();
  }

  auto uuid = OptionalString(payload, kSingleUse);
  if (!uuid) return std::unexpected(uuid.error());
  if (*uuid != nullptr) {
    if ((*uuid)->empty() || (*uuid)->size() > kMaxSingleUseUuidBytes) {
      return Malformed("claim \"aws:single-use-uuid\" must be 1 to " +
                       std::to_string(kMaxSingleUseUuidBytes) + " bytes");
    }
    claims.single_use_uuid = **uuid;
  }

  auto viewer = OptionalString(payload, kViewerId);
  if (!viewer) return std::unexpected(viewer.error());
  if (*viewer != nullptr) {
    if ((*viewer)->size() > kMaxViewerIdBytes) {
      return Malformed("claim \"aws:viewer-id\" is " + std::to_string((*viewer)->size()) +
                       " bytes (at most " + std::to_string(kMaxViewerIdBytes) + ")");
    }
    claims.viewer_id = **viewer;
  }

  if (auto it = payload.find(kSessionVersion); it != payload.end() && !it->is_null()) {
    if (it->is_number_integer() && !it->is_number_unsigned()) {
      claims.viewer_session_version = it->get<int64_t>();
    } else if (it->is_number_unsigned() &&
               it->get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) {
      claims.viewer_session_version = static_cast<int64_t>(it->get<uint64_t>());
    } else {
      return Malformed("claim \"aws:viewer-session-version\" must be an integer");
    }
  }

  auto resolution = OptionalString(payload, kMaxResolution);
  if (!resolution) return std::unexpected(resolution.error());
  if (*resolution != nullptr) claims.maximum_resolution = **resolution;
  return claims;
}

TokenResult<VerifiedToken> VerifyPlaybackToken(std::string_view token,
                                               std::span<const KeyEntry> keys) {
  auto jwt = DecodeJwt(token);
  if (!jwt) {
    const TokenFault fault = jwt.error().code() == ErrorCode::kUnsupported
                                 ? TokenFault::kAlgorithmNotAllowed
                                 : TokenFault::kMalformed;
    return std::unexpected(Fault(fault, jwt.error().message()));
  }
  const std::string_view signing_input = token.substr(0, jwt->signing_input_size);
  const KeyEntry* verified_by = nullptr;
  if (keys.empty()) {
    return std::unexpected(
        Fault(TokenFault::kUnknownKey, "no playback key is configured to verify tokens"));
  }
  if (!jwt->kid.empty()) {
    const KeyEntry* named = nullptr;
    for (const KeyEntry& entry : keys) {
      if (entry.id == jwt->kid) {
        named = &entry;
        break;
      }
    }
    if (named == nullptr) {
      std::string kid = jwt->kid.substr(0, 80);
      return std::unexpected(Fault(
          TokenFault::kUnknownKey,
          "token header \"kid\" " +
              nlohmann::json(kid).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
              " names no current playback key (deleted, or never imported)"));
    }
    if (Status ok = named->key.VerifyEs384(signing_input, jwt->signature); !ok) {
      return std::unexpected(
          Fault(TokenFault::kBadSignature,
                "bad token signature: key \"" + named->id + "\": " + ok.error().message()));
    }
    verified_by = named;
  } else {
    std::string last_error;
    for (const KeyEntry& entry : keys) {
      Status ok = entry.key.VerifyEs384(signing_input, jwt->signature);
      if (ok) {
        verified_by = &entry;
        break;
      }
      last_error = ok.error().message();
      // A signature of the wrong size fails alike for every key.
      if (ok.error().code() == ErrorCode::kInvalidArgument) break;
    }
    if (verified_by == nullptr) {
      return std::unexpected(Fault(TokenFault::kBadSignature,
                                   "bad token signature: none of the " +
                                       std::to_string(keys.size()) +
                                       " current playback keys verifies it (" + last_error + ")"));
    }
  }
  auto claims = ParsePlaybackClaims(jwt->payload);
  if (!claims) return std::unexpected(claims.error());
  return VerifiedToken{std::move(*claims), verified_by->id, verified_by->key.fingerprint()};
}

}  // namespace earshot::playback
