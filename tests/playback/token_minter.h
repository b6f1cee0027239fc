// Test helper: key pairs and playback tokens made with OpenSSL directly (not
// with the code under test), so tests can mint valid tokens and every kind of
// broken one: any header/payload JSON text, any alg, raw r||s or DER
// signatures, tampered parts.
//
// Thread safety: a TestKeyPair may be used from several threads (read-only).
#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_pkey_st;

namespace earshot::playback::testing {

enum class SignatureFormat { kRawRs, kDer };

class TestKeyPair {
 public:
  static TestKeyPair P384();
  static TestKeyPair P256();
  static TestKeyPair Rsa2048();

  std::string PublicPem() const;
  std::string PrivatePem() const;  // PKCS#8 "PRIVATE KEY"

  // Signature over `data` with SHA-384 (ECDSA: raw r||s padded to the curve
  // size, or DER; RSA: PKCS#1 v1.5 whatever `format`).
  std::string Sign(std::string_view data, SignatureFormat format = SignatureFormat::kRawRs) const;

 private:
  std::shared_ptr<evp_pkey_st> pkey_;
};

std::string B64Url(std::string_view bytes);

// base64url(header) "." base64url(payload) "." base64url(signature over the
// first two parts), both JSON texts used exactly as given.
std::string MintToken(const TestKeyPair& key, std::string_view header_json,
                      std::string_view payload_json,
                      SignatureFormat format = SignatureFormat::kRawRs);

// The usual header {"alg":"ES384","typ":"JWT"}, with "kid" when not empty.
std::string Es384Header(std::string_view kid = "");

// Flips one base64url character of part `part` (0 header, 1 payload,
// 2 signature) at `index` within that part, keeping it valid base64url.
std::string TamperPart(std::string token, int part, size_t index = 2);

}  // namespace earshot::playback::testing
