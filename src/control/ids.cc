#include "control/ids.h"

#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <random>

namespace earshot::control {
namespace {

constexpr std::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kLowerAlnum = "0123456789abcdefghijklmnopqrstuvwxyz";

// Rounds of 64 random bytes before giving up. Rejection discards at most 12 %
// of the bytes (8/256 for base62, 4/256 for 36 symbols), so a 40-character
// secret needs one round in practice; 16 rounds failing means a broken RNG.
constexpr int kMaxRounds = 16;

// `n` characters drawn uniformly from `alphabet` with OpenSSL's CSPRNG.
Result<std::string> SecureRandomString(std::string_view alphabet, size_t n) {
  const size_t limit = 256 - 256 % alphabet.size();  // bytes >= limit would bias
  std::string out;
  out.reserve(n);
  std::array<unsigned char, 64> bytes{};
  for (int round = 0; round < kMaxRounds && out.size() < n; ++round) {
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
      return MakeError(ErrorCode::kUnavailable,
                       "the system's random number generator failed (OpenSSL RAND_bytes); "
                       "no secret was generated");
    }
    for (unsigned char b : bytes) {
      if (b >= limit) continue;
      out.push_back(alphabet[b % alphabet.size()]);
      if (out.size() == n) break;
    }
  }
  if (out.size() < n) {
    return MakeError(ErrorCode::kInternal, "random generator output is implausibly biased");
  }
  return out;
}

// For identifiers only: the CSPRNG, else std::random_device.
std::string RandomIdString(std::string_view alphabet, size_t n) {
  if (auto secure = SecureRandomString(alphabet, n)) return std::move(*secure);
  std::random_device device;
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(alphabet[pick(device)]);
  return out;
}

bool InAlphabet(std::string_view text, std::string_view alphabet) {
  return text.find_first_not_of(alphabet) == std::string_view::npos;
}

bool HasShape(std::string_view text, std::string_view prefix, size_t n,
              std::string_view alphabet) {
  return text.size() == prefix.size() + n && text.starts_with(prefix) &&
         InAlphabet(text.substr(prefix.size()), alphabet);
}

Result<std::string> NewSecret(std::string_view prefix) {
  auto body = SecureRandomString(kBase62, kSecretRandomChars);
  if (!body) return body;
  return std::string(prefix) + *body;
}

}  // namespace

std::string NewChannelId() {
  return std::string(kChannelIdPrefix) + RandomIdString(kLowerAlnum, kChannelIdRandomChars);
}

std::string NewStreamId() {
  return std::string(kStreamIdPrefix) + RandomIdString(kBase62, kStreamIdRandomChars);
}

std::string NewApiKeyId() {
  return std::string(kApiKeyIdPrefix) + RandomIdString(kLowerAlnum, kShortIdRandomChars);
}

std::string NewSubscriptionId() {
  return std::string(kSubscriptionIdPrefix) + RandomIdString(kLowerAlnum, kShortIdRandomChars);
}

Result<std::string> NewStreamKey() { return NewSecret(kStreamKeyPrefix); }

Result<std::string> NewApiKey() { return NewSecret(kApiKeyPrefix); }

bool IsChannelId(std::string_view id) {
  return HasShape(id, kChannelIdPrefix, kChannelIdRandomChars, kLowerAlnum);
}

bool IsStreamId(std::string_view id) {
  return HasShape(id, kStreamIdPrefix, kStreamIdRandomChars, kBase62);
}

bool IsStreamKey(std::string_view key) {
  return HasShape(key, kStreamKeyPrefix, kSecretRandomChars, kBase62);
}

bool IsApiKey(std::string_view key) {
  return HasShape(key, kApiKeyPrefix, kSecretRandomChars, kBase62);
}

bool IsApiKeyId(std::string_view id) {
  return HasShape(id, kApiKeyIdPrefix, kShortIdRandomChars, kLowerAlnum);
}

bool IsSubscriptionId(std::string_view id) {
  return HasShape(id, kSubscriptionIdPrefix, kShortIdRandomChars, kLowerAlnum);
}

}  // namespace earshot::control
