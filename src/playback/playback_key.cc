#include "playback/playback_key.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>

namespace earshot::playback {
namespace {

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};
struct BnDeleter {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

constexpr std::string_view kExpected =
    "expected an EC P-384 (secp384r1) public key as PEM \"-----BEGIN PUBLIC KEY-----\"";

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::unique_ptr<BIO, BioDeleter> MemoryBio(std::string_view text) {
  return std::unique_ptr<BIO, BioDeleter>(
      BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

Status Refuse(std::string what) {
  return MakeError(ErrorCode::kInvalidArgument,
                   "playback key: " + what + "; " + std::string(kExpected));
}

// The label of the first "-----BEGIN <label>-----" line, or empty.
std::string_view PemLabel(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  const size_t begin = pem.find(kBegin);
  if (begin == std::string_view::npos) return {};
  const size_t start = begin + kBegin.size();
  const size_t end = pem.find("-----", start);
  if (end == std::string_view::npos) return {};
  return pem.substr(start, end - start);
}

Status CheckLabel(std::string_view pem) {
  const std::string_view label = PemLabel(pem);
  if (label.empty()) return Refuse("the text is not PEM (no \"-----BEGIN ...-----\" line)");
  if (label == "PUBLIC KEY") return Ok();
  if (label.find("PRIVATE KEY") != std::string_view::npos) {
    return Refuse("this is a private key (PEM \"" + std::string(label) +
                  "\"): import only the public half, never the private key");
  }
  if (label == "CERTIFICATE") return Refuse("this is a certificate, not a bare public key");
  if (label == "RSA PUBLIC KEY") return Refuse("this is an RSA public key");
  if (label == "EC PARAMETERS") return Refuse("this is a block of EC parameters, not a key");
  return Refuse("found PEM \"" + std::string(label.substr(0, 40)) + "\"");
}

Result<std::string> Fingerprint(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int der_len = i2d_PUBKEY(pkey, &der);
  if (der_len <= 0) return MakeError(ErrorCode::kInternal, "playback key: DER encoding failed");
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_len = 0;
  const int ok =
      EVP_Digest(der, static_cast<size_t>(der_len), md.data(), &md_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  if (ok != 1 || md_len != 32) {
    return MakeError(ErrorCode::kInternal, "playback key: SHA-256 failed in OpenSSL");
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(md_len * 3);
  for (unsigned int i = 0; i < md_len; ++i) {
    if (i > 0) out.push_back(':');
    out.push_back(kDigits[md[i] >> 4]);
    out.push_back(kDigits[md[i] & 0xf]);
  }
  return out;
}

Result<std::string> ToPem(EVP_PKEY* pkey) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey) != 1) {
    return MakeError(ErrorCode::kInternal, "playback key: PEM encoding failed");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) {
    return MakeError(ErrorCode::kInternal, "playback key: PEM encoding failed");
  }
  return std::string(data, static_cast<size_t>(len));
}

// Raw r || s (48 + 48 bytes) to a DER ECDSA-Sig-Value.
Result<std::string> RawSignatureToDer(std::string_view raw) {
  constexpr int kHalf = static_cast<int>(kEs384SignatureBytes / 2);
  BnPtr r(BN_bin2bn(Bytes(raw), kHalf, nullptr));
  BnPtr s(BN_bin2bn(Bytes(raw) + kHalf, kHalf, nullptr));
  std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return MakeError(ErrorCode::kInternal, "playback key: out of memory converting a signature");
  }
  static_cast<void>(r.release());  // owned by sig now
  static_cast<void>(s.release());
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) {
    return MakeError(ErrorCode::kInternal, "playback key: DER encoding of a signature failed");
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(der_len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

Result<PlaybackPublicKey> PlaybackPublicKey::FromPem(std::string_view text) {
  if (text.size() > kMaxPublicKeyPemBytes) {
    return std::unexpected(Refuse("the text is " + std::to_string(text.size()) +
                                  " bytes, far more than a public key (at most " +
                                  std::to_string(kMaxPublicKeyPemBytes) + ")")
                               .error());
  }
  const std::string_view pem = TrimSpace(text);
  if (pem.empty()) return std::unexpected(Refuse("the text is empty").error());
  if (Status label = CheckLabel(pem); !label) return std::unexpected(label.error());
  if (pem.find("-----BEGIN ", 1) != std::string_view::npos || !pem.starts_with("-----BEGIN ")) {
    return std::unexpected(
        Refuse("the text must hold exactly one PEM block and nothing around it").error());
  }
  auto bio = MemoryBio(pem);
  if (!bio) return MakeError(ErrorCode::kInternal, "playback key: out of memory");
  std::shared_ptr<EVP_PKEY> pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                 EVP_PKEY_free);
  if (!pkey) {
    ERR_clear_error();
    return std::unexpected(
        Refuse("the PEM \"PUBLIC KEY\" block does not decode (damaged base64 or DER)").error());
  }
  const int type = EVP_PKEY_get_base_id(pkey.get());
  if (type != EVP_PKEY_EC) {
    const char* name = OBJ_nid2sn(type);
    std::string kind = type == EVP_PKEY_RSA ? std::string("an RSA key")
                                            : "a " + std::string(name ? name : "non-EC") + " key";
    return std::unexpected(Refuse("this is " + kind).error());
  }
  std::array<char, 64> group{};
  size_t group_len = 0;
  if (EVP_PKEY_get_group_name(pkey.get(), group.data(), group.size(), &group_len) != 1) {
    return std::unexpected(Refuse("the EC key has no named curve").error());
  }
  const std::string curve(group.data(), group_len);
  if (curve != "secp384r1") {
    const std::string alias = curve == "prime256v1"  ? " (P-256)"
                              : curve == "secp521r1" ? " (P-521)"
                                                     : "";
    return std::unexpected(Refuse("this is an EC key on curve " + curve + alias).error());
  }
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    return std::unexpected(Refuse("the P-384 public point is not valid").error());
  }
  PlaybackPublicKey key;
  auto fingerprint = Fingerprint(pkey.get());
  if (!fingerprint) return std::unexpected(fingerprint.error());
  auto normalised = ToPem(pkey.get());
  if (!normalised) return std::unexpected(normalised.error());
  key.pkey_ = std::move(pkey);
  key.fingerprint_ = std::move(*fingerprint);
  key.pem_ = std::move(*normalised);
  return key;
}

Status PlaybackPublicKey::VerifyEs384(std::string_view data, std::string_view raw_signature) const {
  if (raw_signature.size() != kEs384SignatureBytes) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "ES384 signature is " + std::to_string(raw_signature.size()) +
                         " bytes; JWS needs the raw r||s form of exactly 96 bytes (a DER-encoded "
                         "signature is not accepted)");
  }
  auto der = RawSignatureToDer(raw_signature);
  if (!der) return std::unexpected(der.error());
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, pkey_.get()) != 1) {
    return MakeError(ErrorCode::kInternal, "ES384 verification could not start in OpenSSL");
  }
  const int rc = EVP_DigestVerify(ctx.get(), Bytes(*der), der->size(), Bytes(data), data.size());
  if (rc == 1) return Ok();
  ERR_clear_error();  // leave no stale entries in this thread's OpenSSL error queue
  if (rc == 0) {
    return MakeError(ErrorCode::kCorruptData,
                     "ES384 signature does not verify with key " + fingerprint_.substr(0, 23) +
                         "...: the token was altered or signed by another key");
  }
  // rc < 0: OpenSSL refused the input (e.g. r or s out of range) - still a bad signature.
  return MakeError(ErrorCode::kCorruptData,
                   "ES384 signature is not a valid P-384 signature (r or s out of range)");
}

}  // namespace earshot::playback
