// Playback tokens: the claims of an IVS-style playback authorisation JWT, and
// the whole check of one token against a key set (decode, signature, claims).
// Per-request checks (expiry against now, channel, origin, country,
// single-use, revocation) are the authorizer's (playback_authorizer.h).
//
// Claims (IVS names; other claims such as iat are ignored):
//   aws:channel-arn                  string, required, non-empty
//   exp                              number, required: Unix time in SECONDS.
//                                    A value above kMaxExpSeconds (year 5138)
//                                    can only be milliseconds and is refused
//                                    as such (TokenFault::kExpInMilliseconds).
//   aws:access-control-allow-origin  string, optional: comma-separated origin
//                                    patterns (control/restriction_policy.h
//                                    syntax, compared case-insensitively);
//                                    absent or blank: every origin
//   aws:strict-origin-enforcement    bool, optional (default false)
//   aws:single-use-uuid              string, optional, 1..128 bytes
//   aws:viewer-id                    string, optional, at most 40 bytes
//                                    (empty is the same as absent)
//   aws:viewer-session-version       integer, optional (default 0)
//   aws:maximum-resolution           string, optional, kept as given
// A claim of the wrong type is TokenFault::kMalformed.
//
// Pure functions, no I/O. Thread safety: reentrant.
#pragma once

#include <cstdint>
#include <expected>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "playback/jwt.h"
#include "playback/playback_key.h"

namespace earshot::playback {

inline constexpr int64_t kMaxExpSeconds = 100'000'000'000;  // 1e11 s
inline constexpr size_t kMaxViewerIdBytes = 40;
inline constexpr size_t kMaxSingleUseUuidBytes = 128;
// A single-use token must expire within this many seconds of the request.
inline constexpr int64_t kMaxSingleUseLifetimeS = 600;

struct PlaybackClaims {
  std::string channel_arn;
  int64_t exp_s = 0;                         // Unix seconds (fractions dropped)
  std::vector<std::string> allowed_origins;  // lowercase patterns; empty: every origin
  bool strict_origin_enforcement = false;
  std::string single_use_uuid;  // empty: not single-use
  std::string viewer_id;        // empty: none
  int64_t viewer_session_version = 0;
  std::string maximum_resolution;  // empty: none
};

// Why a token was refused before any per-request check.
enum class TokenFault {
  kMalformed,            // structure, base64url, JSON, header or a claim is wrong
  kAlgorithmNotAllowed,  // "alg" is not ES384
  kUnknownKey,           // "kid" names no current key, or there are no keys
  kBadSignature,         // no current key verifies the signature (or not 96 raw bytes)
  kExpInMilliseconds,    // exp > kMaxExpSeconds
};
// "malformed", "algorithm_not_allowed", "unknown_key", "bad_signature",
// "exp_in_milliseconds".
std::string_view TokenFaultName(TokenFault fault);

struct TokenError {
  TokenFault fault = TokenFault::kMalformed;
  std::string message;  // for logs and API errors; never contains the token
};
template <class T>
using TokenResult = std::expected<T, TokenError>;

// The claims of a decoded (not necessarily verified) payload object.
// Errors: kMalformed or kExpInMilliseconds.
TokenResult<PlaybackClaims> ParsePlaybackClaims(const nlohmann::json& payload);

struct VerifiedToken {
  PlaybackClaims claims;
  std::string key_id;           // the KeyEntry whose key verified the signature
  std::string key_fingerprint;  // its PlaybackPublicKey::fingerprint()
};

// Decodes `token` (jwt.h), picks the key - the one whose id the "kid" header
// names when present, else each key in turn - verifies the ES384 signature,
// then parses the claims. Expiry is NOT compared with any clock here.
// Errors: every TokenFault; kUnknownKey when "kid" names no key in `keys` or
// `keys` is empty, kBadSignature when the named key (or, without kid, every
// key) rejects the signature.
TokenResult<VerifiedToken> VerifyPlaybackToken(std::string_view token,
                                               std::span<const KeyEntry> keys);

}  // namespace earshot::playback
