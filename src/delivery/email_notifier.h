// The email notifier: sends each notification as a plain-text message over
// SMTP (libcurl's SMTP client; not the HTTP client).
//
// Spec (target_spec.h):
//   email:url=smtp://mail.example.com:587,from=earshot@example.com,
//         to=ops@example.com;legal@example.com[,username=U][,password_env=VAR]
//         [,tls=try|required|none][,ca_file=PATH][,timeout_ms=N]
//   url          required; smtp://host[:port][/ehlo-name] (STARTTLS per tls=)
//                or smtps://host[:port] (TLS from the first byte). The path,
//                when given, is the name sent in EHLO (default: this machine's
//                host name). No user:password@ and no query.
//   from         required; one bare address (local@domain, ASCII)
//   to           required; bare addresses separated by ';' (at most 100)
//   username     SMTP AUTH user; with it the password is read from the
//                environment variable named by password_env (default
//                EARSHOT_SMTP_PASSWORD) and the notifier refuses to start if
//                that is unset. password_env without username is an error.
//   tls          try       STARTTLS when the server offers it, else plain text
//                          (the default without username)
//                required  fail unless STARTTLS succeeds (the default WITH a
//                          username, so a password is never sent in clear
//                          unless tls=none says so)
//                none      never STARTTLS (not allowed with smtps://)
//                Whenever TLS is used the server certificate is verified.
//   ca_file      PEM file of CA certificates to trust instead of the system
//                store (a private CA or a self-signed test certificate)
//   timeout_ms   whole session, connect included; default 30000, 1..600000
//
// The message (FormatEmailMessage): RFC 5322 headers (Date, From, To,
// Subject, Message-ID, MIME-Version, Content-Type text/plain; charset=utf-8,
// Content-Transfer-Encoding, Auto-Submitted, X-Earshot-Event,
// X-Earshot-Idempotency-Key), then a short summary (subject, event, stream,
// channel, idempotency key) and the notification body (the JSON) verbatim
// except that every line break becomes CRLF.
// Lines end in CRLF. The Message-ID is derived from the idempotency key, so
// every retry of one notification carries the same Message-ID and duplicates
// (delivery is at-least-once) are recognisable. A non-ASCII subject becomes
// RFC 2047 encoded words; a body that is not 7-bit ASCII with lines of at
// most 998 bytes is sent quoted-printable.
//
// Header injection: the subject, event type and idempotency key must not
// contain CR, LF or other control characters (Notify returns
// kInvalidArgument); addresses are validated when the notifier is made.
//
// Outcome of Notify (one attempt; success = 250 after the message data):
//   connection refused, DNS failure, timeout, TLS handshake or connection
//   broken, any 4xx reply (transient by RFC 5321)        kUnavailable
//   a 5xx reply (sender/recipient rejected, auth failed),
//   untrusted server certificate, tls=required but no
//   STARTTLS                                              kFailedPrecondition
// Messages include the server's (last error) reply line. If any recipient is
// rejected nothing is sent (all or none).
//
// Thread safety: immutable after construction; Notify may be called from
// several threads (each call uses its own libcurl handle and connection).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "delivery/sink.h"
#include "delivery/target_spec.h"

namespace earshot::delivery {

// Builds an email notifier from `spec` (spec.kind must be "email").
// Errors: kInvalidArgument naming the bad or missing key.
Result<std::unique_ptr<Notifier>> MakeEmailNotifier(const TargetSpec& spec);

// The complete message text (headers, blank line, body; CRLF line endings;
// no SMTP dot-stuffing, which libcurl does) for `notification` sent at
// `unix_seconds`. Pure.
// Errors: kInvalidArgument for a subject, event type or idempotency key with
// control characters, an empty idempotency key, or an invalid address.
Result<std::string> FormatEmailMessage(const Notification& notification, const std::string& from,
                                       const std::vector<std::string>& to,
                                       std::int64_t unix_seconds);

// True for a bare ASCII address local@domain that is safe in headers and
// SMTP commands (no spaces, quotes, brackets, commas or controls).
bool IsPlainEmailAddress(std::string_view address);

}  // namespace earshot::delivery
