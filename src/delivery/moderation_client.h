// The moderation hook client: sends a stream's JPEG thumbnail to an
// operator's own image-recognition service and returns its verdict (allow,
// flag or block), which the caller then acts on like a rule.
//
// Wire protocol (one HTTP exchange per attempt):
//
//   POST <url>                                 (the configured URL, as given)
//   Content-Type: image/jpeg
//   Accept: application/json
//   User-Agent: earshot/<version>
//   X-Earshot-Stream-Id: <stream id>
//   X-Earshot-Channel-Id: <channel id>         (omitted when the stream has none)
//   X-Earshot-Stream-Time: <seconds>           stream time of the frame, decimal with
//                                              3 decimals, e.g. "62.500"
//   X-Earshot-Captured-At: <ISO 8601 UTC>      when the frame arrived, with
//                                              milliseconds, e.g. "2026-11-21T10:15:00.250Z"
//   X-Earshot-Thumbnail-Key: <key>             where earshot stored the thumbnail
//                                              (folder path or S3 key; omitted when empty)
//   X-Earshot-Signature: t=<unix s>,v1=<hex>   only when a secret is configured
//   body: the JPEG file, byte for byte
//
// The signature is the webhook signature (webhook_signature.h) over the raw
// JPEG bytes: v1 = lower-case hex HMAC-SHA256(secret, "<t>.<body bytes>"),
// t = Unix seconds when the attempt was signed (each attempt is signed
// anew). A service verifies it exactly as a webhook receiver does.
//
// The service answers 2xx with a JSON object (Content-Type is not checked):
//   {"verdict": "allow" | "flag" | "block",    required, ASCII case-insensitive
//    "label": "nudity",                        optional string (null = absent)
//    "score": 0.97}                            optional number in [0, 1] (null = absent)
// Other members are ignored (room for later additions).
//
// Outcomes of Classify (errors carry a message naming the service URL
// without user info, query or fragment, and for HTTP errors the status and
// at most 200 characters of the answer):
//   2xx with a valid body                 the verdict
//   transport failure (refused, reset,    kUnavailable, retried
//     DNS, timeout)
//   HTTP 408, 429, 5xx                    kUnavailable, retried
//   any other status (3xx, 4xx, 1xx)      kFailedPrecondition, not retried
//                                         (redirects are not followed)
//   2xx body not JSON, not an object, no  kCorruptData, not retried
//     or unknown verdict, bad label/score,
//     or larger than 1 MiB
//   empty JPEG, ids with control chars    kInvalidArgument, nothing sent
// Retries: up to max_attempts attempts in all, with a pause of 100 ms before
// the second, doubling (at most 2 s) before each later one. So one call
// takes at most about max_attempts * timeout_s plus the pauses.
//
// Thread safety: a client is immutable after Create; Classify may be called
// from several threads at once (each call uses its own connection).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::delivery {

enum class ModerationVerdict { kAllow, kFlag, kBlock };

// "allow" | "flag" | "block".
std::string_view ModerationVerdictName(ModerationVerdict verdict);

// The verdict named `name` (ASCII case-insensitive), or nullopt.
std::optional<ModerationVerdict> ParseModerationVerdict(std::string_view name);

struct ModerationResult {
  ModerationVerdict verdict = ModerationVerdict::kAllow;
  std::string label;     // "" when the service sent none
  double score = 0;      // 0 when the service sent none; else in [0, 1]
  std::string raw_body;  // the service's answer, as received
};

struct ModerationRequest {
  std::string stream_id;         // required; no control characters
  std::string channel_id;        // optional
  double stream_time_s = 0;      // stream time of the thumbnail's frame, seconds (>= 0)
  int64_t captured_unix_ms = 0;  // wall time the frame arrived, Unix ms; <= 0: now
  std::string thumbnail_key;     // optional: where the thumbnail was stored
};

struct ModerationClientOptions {
  std::string url;       // http:// or https:// with a host; may carry user:password@
                         // (sent as Basic auth) and a query (e.g. an API key)
  std::string secret;    // optional HMAC key; empty: requests are not signed
  double timeout_s = 5;  // per attempt, connect included; (0, 600]
  int max_attempts = 2;  // attempts in all, 1..10
};

class ModerationClient {
 public:
  // Validates the options. Errors: kInvalidArgument naming what is wrong
  // (not an http(s) URL, no host, white space or control characters in the
  // URL, timeout not in (0, 600], max_attempts not in 1..10). The secret is
  // never echoed.
  static Result<ModerationClient> Create(ModerationClientOptions options);

  // Sends `jpeg` (a complete JPEG file) with the metadata of `request` and
  // returns the service's verdict. Blocks for the exchange (and retries);
  // see the header comment for the protocol and the errors.
  Result<ModerationResult> Classify(std::span<const uint8_t> jpeg,
                                    const ModerationRequest& request) const;

  // The service URL without user info, query or fragment (safe to log).
  const std::string& display_url() const { return shown_url_; }

 private:
  explicit ModerationClient(ModerationClientOptions options);

  ModerationClientOptions options_;
  std::string shown_url_;
};

}  // namespace earshot::delivery
