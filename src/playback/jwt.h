// Compact JWS (JSON Web Token) decoding for playback tokens, strictly:
//
//   token = base64url(header) "." base64url(payload) "." base64url(signature)
//
// - at most kMaxJwtBytes characters, exactly three non-empty parts;
// - base64url without padding, only [A-Za-z0-9_-], canonical (the unused low
//   bits of the last character are zero), so one token has one spelling;
// - header and payload are UTF-8 JSON objects, nested at most kMaxJwtJsonDepth
//   deep, with no member name given twice at any level (a JSON parser that
//   keeps the last of two "exp" members would let a token mean two things);
// - header "alg" is exactly "ES384" (none, HS*, RS*, PS*, ES256, ES512 or a
//   missing alg are refused), "typ" if present is "JWT", "kid" if present is a
//   non-empty string, "crit" is refused (we understand no extension).
//   Other header members (jku, x5u, jwk, ...) are ignored: keys come only from
//   the key set the operator imported.
//
// Verification of the signature is PlaybackPublicKey::VerifyEs384 over
// SigningInput(); claims are parsed by playback_token.h.
//
// Pure functions, no I/O. Thread safety: reentrant.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::playback {

inline constexpr size_t kMaxJwtBytes = 8 * 1024;
inline constexpr int kMaxJwtJsonDepth = 16;

struct Jwt {
  nlohmann::json header;   // a JSON object
  nlohmann::json payload;  // a JSON object (the claims)
  std::string signature;   // decoded bytes of the third part
  std::string kid;         // the header's "kid", empty when absent
  // token.substr(0, signing_input_size) is "header.payload", the signed bytes.
  size_t signing_input_size = 0;
};

// Strict base64url without padding. kInvalidArgument naming the first bad
// character and its position, an impossible length, or non-zero unused bits.
Result<std::string> Base64UrlDecode(std::string_view text);
// Base64url without padding.
std::string Base64UrlEncode(std::string_view bytes);

// Decodes and checks the structure and header of `token` (see above).
// Errors: kUnsupported when the header's "alg" is anything but "ES384"
// (message names it), kInvalidArgument for everything else that is wrong
// (message names the part and the problem; never echoes the token).
Result<Jwt> DecodeJwt(std::string_view token);

// Parses one JSON object strictly (duplicate names refused, depth limited).
// `what` names it in messages ("JWT header"). kInvalidArgument on failure.
Result<nlohmann::json> ParseStrictJsonObject(std::string_view text, std::string_view what);

}  // namespace earshot::playback
