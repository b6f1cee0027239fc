// Signing and verifying webhook bodies, so a receiver can tell that a POST
// came from this earshot (it knows the shared secret) and is not a replay of
// an old one.
//
// The header (name kWebhookSignatureHeader) is
//   X-Earshot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
// t is when the request was signed (each retry is signed anew, so t moves
// while the Idempotency-Key stays). v1 is the lower-case hex of the 32-byte
// MAC over the decimal timestamp, one '.', and the exact body bytes. A header
// may carry several v1= values (a sender rotating secrets signs with both);
// it verifies when any of them matches. Unknown items ("v0=...", "x=...") are
// ignored so later schemes can be added without breaking receivers.
//
// Receiver recipe (any language): split the header on ',', take t and every
// v1; reject if |now - t| > tolerance; compute the HMAC over "<t>.<raw body>"
// (the raw bytes, before any JSON parsing) and compare in constant time.
//
// Pure functions: no I/O, no clock (the caller passes the time).
// Thread safety: all functions are reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::delivery {

inline constexpr std::string_view kWebhookSignatureHeader = "X-Earshot-Signature";

// Default accepted clock difference between sender and receiver, in seconds.
inline constexpr std::int64_t kWebhookSignatureToleranceS = 300;

// The header value "t=<unix_seconds>,v1=<64 hex digits>" for `body`.
// REQUIRES: unix_seconds >= 0.
// Errors: kInvalidArgument for a negative time, kInternal if OpenSSL fails.
Result<std::string> SignWebhookBody(std::string_view secret, std::string_view body,
                                    std::int64_t unix_seconds);

// Lower-case hex of HMAC-SHA256(secret, "<unix_seconds>.<body>") (64 chars);
// what v1= carries. Errors as for SignWebhookBody.
Result<std::string> WebhookSignatureHex(std::string_view secret, std::string_view body,
                                        std::int64_t unix_seconds);

// Checks `header` (the value of X-Earshot-Signature, without the name) for
// `body` at time `now_unix_s`, accepting timestamps within `tolerance_s`
// seconds either side of now. MACs are compared with CRYPTO_memcmp.
// Errors, each with a message saying which check failed:
//   kInvalidArgument     malformed header: no t=, t= not a decimal number or
//                        given twice, no v1=, a v1= that is not 64 hex digits,
//                        or a negative tolerance or now
//   kFailedPrecondition  stale (or future) timestamp: |now - t| > tolerance_s
//   kCorruptData         no v1= matches: body or header altered, or the
//                        receiver holds a different secret
//   kInternal            OpenSSL failed
// The timestamp is checked before the MAC, so a stale request is reported as
// stale even when its MAC would not match.
Status VerifyWebhookSignature(std::string_view secret, std::string_view header,
                              std::string_view body, std::int64_t now_unix_s,
                              std::int64_t tolerance_s = kWebhookSignatureToleranceS);

}  // namespace earshot::delivery
