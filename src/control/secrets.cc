#include "control/secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

namespace earshot::control {
namespace {

constexpr std::string_view kDomain = "earshot-secret-v1\n";
constexpr size_t kMaxShownChars = 5;

}  // namespace

std::string HashSecret(std::string_view secret) {
  std::string input;
  input.reserve(kDomain.size() + secret.size());
  input.append(kDomain).append(secret);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr) != 1 ||
      length != 32) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0F]);
  }
  return hex;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RedactSecret(std::string_view secret) {
  const size_t shown = std::min(kMaxShownChars, secret.size() / 4);
  std::string out;
  for (size_t i = 0; i < shown; ++i) {
    const char c = secret[i];
    out.push_back(c >= 0x20 && c < 0x7F ? c : '?');
  }
  out += "\u2026(" + std::to_string(secret.size()) + " chars)";
  return out;
}

}  // namespace earshot::control
