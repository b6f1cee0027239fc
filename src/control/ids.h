// Identifiers and secrets of the control plane, in the shapes of the managed
// service we follow (Amazon IVS):
//   channel id        "ch-" + 12 of [a-z0-9]        e.g. ch-4k9x0q2m7ahd
//   stream id         "st-" + 23 of [A-Za-z0-9]     e.g. st-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8O
//   stream key        "sk_" + 40 base62 (~238 bits) the encoder's secret
//   admin API key     "ek_" + 40 base62 (~238 bits) the API's bearer secret
//   API key id        "ak-" + 12 of [a-z0-9]        names a key without revealing it
//   subscription id   "sub-" + 12 of [a-z0-9]
// Channel ids also name nginx applications, HLS playlists and folders, so
// they are lowercase letters, digits and '-' only.
//
// Randomness comes from OpenSSL's CSPRNG (RAND_bytes), characters are drawn
// uniformly (rejection sampling). Ids are not secrets: should the CSPRNG fail,
// they fall back to std::random_device. Secrets never fall back: the New*Key
// functions fail instead.
//
// Thread safety: all functions are thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::control {

inline constexpr std::string_view kChannelIdPrefix = "ch-";
inline constexpr std::string_view kStreamIdPrefix = "st-";
inline constexpr std::string_view kStreamKeyPrefix = "sk_";
inline constexpr std::string_view kApiKeyPrefix = "ek_";
inline constexpr std::string_view kApiKeyIdPrefix = "ak-";
inline constexpr std::string_view kSubscriptionIdPrefix = "sub-";

inline constexpr size_t kChannelIdRandomChars = 12;
inline constexpr size_t kStreamIdRandomChars = 23;
inline constexpr size_t kSecretRandomChars = 40;  // 40 * log2(62) = 238 bits
inline constexpr size_t kShortIdRandomChars = 12;

std::string NewChannelId();
std::string NewStreamId();
std::string NewApiKeyId();
std::string NewSubscriptionId();

// A fresh secret. kUnavailable when the system's random generator fails (the
// message says so; nothing is generated from a weaker source).
Result<std::string> NewStreamKey();
Result<std::string> NewApiKey();

// Shape checks (prefix, length, alphabet). They say nothing about existence.
bool IsChannelId(std::string_view id);
bool IsStreamId(std::string_view id);
bool IsStreamKey(std::string_view key);
bool IsApiKey(std::string_view key);
bool IsApiKeyId(std::string_view id);
bool IsSubscriptionId(std::string_view id);

}  // namespace earshot::control
