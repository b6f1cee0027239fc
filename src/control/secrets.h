// Handling of the control plane's secrets (stream keys, admin API keys):
// how they are stored, compared and shown in logs.
//
// Storage: only HashSecret(secret) is stored, never the secret. The hash is a
// plain SHA-256, deliberately fast: earshot's secrets are 40 random base62
// characters (~238 bits, ids.h), so guessing one from its hash is out of
// reach whatever the hash speed. Slow password hashes (bcrypt, scrypt,
// Argon2) protect low-entropy passwords, would cost tens of milliseconds of
// CPU on every nginx hook and API request, and need a per-row salt, which
// rules out finding the row by its hash (an indexed lookup). The input is
// domain-separated ("earshot-secret-v1\n" + secret) so that these hashes
// never coincide with a SHA-256 of the same bytes used elsewhere.
//
// Thread safety: all functions are thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace earshot::control {

// Lowercase hex SHA-256 (64 characters) of the domain-separated secret.
// Returns "" only if OpenSSL fails (memory exhaustion); callers treat an
// empty hash as an internal error and never store or compare it.
std::string HashSecret(std::string_view secret);

// True when `a` and `b` are equal, in time that depends only on their length
// (CRYPTO_memcmp). Lengths are not secret: different lengths return false at
// once. Use it to compare hashes or MACs, never operator==.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// A log-safe stand-in for a secret: at most its first 5 characters, an
// ellipsis and the length, e.g. "sk_Ab…(43 chars)". Short inputs show less
// (a quarter of their length at most), so the result never contains the
// whole secret; characters other than printable ASCII show as '?', so the
// result is always valid UTF-8 (attacker-supplied stream names included).
std::string RedactSecret(std::string_view secret);

}  // namespace earshot::control
