// The webhook notifier: POSTs each notification's JSON body to a URL,
// signed with HMAC-SHA256 (webhook_signature.h).
//
// Spec (target_spec.h):
//   webhook:url=https://hooks.example.com/earshot[,secret_env=VAR][,unsigned=true]
//           [,timeout_ms=N][,header_<Name>=VALUE][,header_<Name>_env=VAR]
//   url           required; http:// or https:// with a host
//   secret_env    environment variable holding the signing secret; default
//                 EARSHOT_WEBHOOK_SECRET. If it is unset or empty the notifier
//                 refuses to start: an unsigned webhook lets anyone who learns
//                 the URL forge matches.
//   unsigned      "true" sends no signature and reads no secret (for receivers
//                 that authenticate otherwise); "false" is the default.
//                 Contradicts secret_env.
//   timeout_ms    whole request including connect; default 10000, 1..600000
//   header_<Name> an extra request header sent as given (e.g.
//                 header_X-Tenant=acme). <Name> is letters, digits and '-';
//                 the headers earshot sets itself cannot be overridden.
//   header_<Name>_env  the same, with the value read from environment
//                 variable VAR at start (for an "Authorization" token).
//
// Each request:
//   POST <url>
//   Content-Type: application/json
//   User-Agent: earshot/<kEarshotVersion>
//   X-Earshot-Event: <notification.event_type>
//   Idempotency-Key: <notification.idempotency_key>   (identical on every retry:
//       delivery is at-least-once, receivers dedupe on this key)
//   X-Earshot-Signature: t=<now>,v1=<hex HMAC>           (re-signed per attempt)
//   body: notification.body, byte for byte
// Redirects are not followed.
//
// Outcome of Notify (one attempt):
//   2xx                              delivered
//   408, 429, 5xx; transport failure kUnavailable (retry later); the message
//                                    carries Retry-After when the receiver sent one
//   any other status                 kFailedPrecondition, with the status and
//                                    the first 200 bytes of the receiver's answer
//   event type or idempotency key with control characters: kInvalidArgument
//
// Thread safety: the notifier is immutable after construction; Notify may be
// called from several threads at once (the clock must allow that too).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "common/error.h"
#include "delivery/sink.h"
#include "delivery/target_spec.h"

namespace earshot::delivery {

// Sent in User-Agent. Keep in step with project(VERSION) in CMakeLists.txt.
inline constexpr std::string_view kEarshotVersion = "0.1.0";

// Seconds since the Unix epoch; the time a request is signed at.
using UnixClock = std::function<std::int64_t()>;

// The system clock as a UnixClock.
std::int64_t SystemUnixSeconds();

// Builds a webhook notifier from `spec` (spec.kind must be "webhook").
// Errors: kInvalidArgument naming the bad or missing key (unknown key, bad
// URL, unset secret variable, bad timeout, bad header name or value).
// `clock` stamps signatures (tests pin it); it must be callable concurrently.
Result<std::unique_ptr<Notifier>> MakeWebhookNotifier(const TargetSpec& spec,
                                                      UnixClock clock = SystemUnixSeconds);

}  // namespace earshot::delivery
