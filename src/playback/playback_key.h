// Playback key pairs: the public half of an operator's P-384 (ES384) key pair,
// which verifies the signatures of playback tokens (playback_token.h).
//
// The operator keeps the private key and imports only the public key, as PEM
// "-----BEGIN PUBLIC KEY-----" (a DER SubjectPublicKeyInfo), e.g. made with
//   openssl ecparam -name secp384r1 -genkey -noout -out private.pem
//   openssl ec -in private.pem -pubout -out public.pem
// Anything else (an RSA or P-256 key, a private key, a certificate, garbage)
// is refused with a message saying what it is and what is expected.
//
// Ownership: a PlaybackPublicKey shares one immutable OpenSSL EVP_PKEY between
// its copies (reference counted); copying is cheap.
// Thread safety: const methods may be called from any number of threads at
// once (verification only reads the key).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace earshot::playback {

// Size of an ES384 JWS signature: r || s, each 48 big-endian bytes (RFC 7518 3.4).
inline constexpr size_t kEs384SignatureBytes = 96;
// A PEM text larger than this is refused before parsing.
inline constexpr size_t kMaxPublicKeyPemBytes = 16 * 1024;

class PlaybackPublicKey {
 public:
  // Imports a P-384 public key from PEM "PUBLIC KEY" text (surrounding
  // whitespace allowed; exactly one PEM block).
  // Errors: kInvalidArgument naming what was found (empty text, no PEM block,
  // a private key, a certificate, an RSA key, another curve, a damaged key)
  // and what is expected.
  static Result<PlaybackPublicKey> FromPem(std::string_view pem);

  // SHA-256 of the DER SubjectPublicKeyInfo as lowercase hex pairs joined by
  // ':' ("ab:01:...", 95 characters); identifies the key in the API and logs.
  const std::string& fingerprint() const { return fingerprint_; }

  // The key as PEM "PUBLIC KEY" text (normalised by OpenSSL).
  const std::string& pem() const { return pem_; }

  // Verifies an ES384 signature over `data`: ECDSA P-384 with SHA-384,
  // `raw_signature` being the JWS form r || s (96 bytes), which is converted
  // to DER for OpenSSL. Errors: kInvalidArgument when the signature is not
  // 96 bytes (a DER-encoded signature is refused here), kCorruptData when it
  // does not verify (data altered or signed by another key), kInternal when
  // OpenSSL fails.
  Status VerifyEs384(std::string_view data, std::string_view raw_signature) const;

 private:
  PlaybackPublicKey() = default;

  std::shared_ptr<evp_pkey_st> pkey_;  // never null after FromPem
  std::string fingerprint_;
  std::string pem_;
};

// A key the authorizer trusts, under the id that a token's "kid" header may
// name (e.g. the key pair's ARN or API id). Used by playback_authorizer.h.
struct KeyEntry {
  std::string id;
  PlaybackPublicKey key;
};

}  // namespace earshot::playback
