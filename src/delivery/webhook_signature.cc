#include "delivery/webhook_signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <charconv>
#include <memory>
#include <vector>

namespace earshot::delivery {
namespace {

constexpr size_t kMacBytes = 32;  // SHA-256
using Mac = std::array<unsigned char, kMacBytes>;

struct MacDeleter {
  void operator()(EVP_MAC* mac) const { EVP_MAC_free(mac); }
};
struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// HMAC-SHA256(secret, "<t>.<body>") without copying the body.
Result<Mac> ComputeMac(std::string_view secret, std::string_view body, std::int64_t t) {
  if (secret.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "webhook signature: the secret is empty");
  }
  if (t < 0) {
    return MakeError(ErrorCode::kInvalidArgument, "webhook signature: negative timestamp");
  }
  std::string prefix = std::to_string(t) + ".";
  std::unique_ptr<EVP_MAC, MacDeleter> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return MakeError(ErrorCode::kInternal, "webhook signature: OpenSSL has no HMAC");
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return MakeError(ErrorCode::kInternal, "webhook signature: out of memory");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  Mac out{};
  size_t out_len = 0;
  bool ok = EVP_MAC_init(ctx.get(), Bytes(secret), secret.size(), params) == 1 &&
            EVP_MAC_update(ctx.get(), Bytes(prefix), prefix.size()) == 1 &&
            (body.empty() || EVP_MAC_update(ctx.get(), Bytes(body), body.size()) == 1) &&
            EVP_MAC_final(ctx.get(), out.data(), &out_len, out.size()) == 1;
  if (!ok || out_len != kMacBytes) {
    return MakeError(ErrorCode::kInternal, "webhook signature: HMAC-SHA256 failed in OpenSSL");
  }
  return out;
}

std::string ToHex(const Mac& mac) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(mac.size() * 2);
  for (unsigned char b : mac) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0xf]);
  }
  return hex;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool FromHex(std::string_view hex, Mac& out) {
  if (hex.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status Malformed(std::string_view why) {
  return MakeError(
      ErrorCode::kInvalidArgument,
      "malformed " + std::string(kWebhookSignatureHeader) + " header: " + std::string(why));
}

}  // namespace

Result<std::string> WebhookSignatureHex(std::string_view secret, std::string_view body,
                                        std::int64_t unix_seconds) {
  auto mac = ComputeMac(secret, body, unix_seconds);
  if (!mac) return std::unexpected(mac.error());
  return ToHex(*mac);
}

Result<std::string> SignWebhookBody(std::string_view secret, std::string_view body,
                                    std::int64_t unix_seconds) {
  auto hex = WebhookSignatureHex(secret, body, unix_seconds);
  if (!hex) return std::unexpected(hex.error());
  return "t=" + std::to_string(unix_seconds) + ",v1=" + *hex;
}

Status VerifyWebhookSignature(std::string_view secret, std::string_view header,
                              std::string_view body, std::int64_t now_unix_s,
                              std::int64_t tolerance_s) {
  if (tolerance_s < 0 || now_unix_s < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "webhook signature: negative tolerance or current time");
  }
  bool have_t = false;
  std::int64_t t = 0;
  std::vector<Mac> candidates;
  std::string_view rest = header;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (!item.empty()) {
      size_t eq = item.find('=');
      if (eq == std::string_view::npos)
        return Malformed("item '" + std::string(item) + "' is not KEY=VALUE");
      std::string_view key = item.substr(0, eq);
      std::string_view value = item.substr(eq + 1);
      if (key == "t") {
        if (have_t) return Malformed("t= given twice");
        const char* end = value.data() + value.size();
        auto [ptr, ec] = std::from_chars(value.data(), end, t);
        if (value.empty() || value.size() > 18 || ec != std::errc() || ptr != end || t < 0 ||
            value.front() == '-' || value.front() == '+') {
          return Malformed("t= is not a unix time in seconds");
        }
        have_t = true;
      } else if (key == "v1") {
        Mac mac{};
        if (!FromHex(value, mac)) return Malformed("v1= is not 64 hex digits");
        candidates.push_back(mac);
      }
      // Other keys: a scheme this version does not know; ignored.
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!have_t) return Malformed("no t= timestamp");
  if (candidates.empty()) return Malformed("no v1= signature");

  // Both are non-negative, so the difference cannot overflow.
  std::int64_t age = now_unix_s >= t ? now_unix_s - t : t - now_unix_s;
  if (age > tolerance_s) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "stale webhook signature: signed at t=" + std::to_string(t) + ", " +
                         std::to_string(age) + " s " + (now_unix_s >= t ? "ago" : "in the future") +
                         " (tolerance " + std::to_string(tolerance_s) + " s)");
  }

  auto expected = ComputeMac(secret, body, t);
  if (!expected) return std::unexpected(expected.error());
  bool match = false;
  for (const Mac& candidate : candidates) {
    // Every candidate is compared (no early exit) in constant time.
    match |= CRYPTO_memcmp(candidate.data(), expected->data(), kMacBytes) == 0;
  }
  if (!match) {
    return MakeError(ErrorCode::kCorruptData,
                     "webhook signature mismatch: the body or the signature header was altered, "
                     "or the receiver's secret differs from the sender's");
  }
  return Ok();
}

}  // namespace earshot::delivery
