#include "token_minter.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdexcept>
#include <vector>

namespace earshot::playback::testing {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

TestKeyPair TestKeyPair::P384() {
  TestKeyPair pair;
  pair.pkey_.reset(EVP_EC_gen("P-384"), EVP_PKEY_free);
  if (!pair.pkey_) throw std::runtime_error("EVP_EC_gen(P-384) failed");
  return pair;
}

TestKeyPair TestKeyPair::P256() {
  TestKeyPair pair;
  pair.pkey_.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!pair.pkey_) throw std::runtime_error("EVP_EC_gen(P-256) failed");
  return pair;
}

TestKeyPair TestKeyPair::Rsa2048() {
  TestKeyPair pair;
  pair.pkey_.reset(EVP_RSA_gen(2048), EVP_PKEY_free);
  if (!pair.pkey_) throw std::runtime_error("EVP_RSA_gen failed");
  return pair;
}

std::string TestKeyPair::PublicPem() const {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) throw std::runtime_error("PEM pub");
  return BioText(bio.get());
}

std::string TestKeyPair::PrivatePem() const {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
      1) {
    throw std::runtime_error("PEM private");
  }
  return BioText(bio.get());
}

std::string TestKeyPair::Sign(std::string_view data, SignatureFormat format) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    throw std::runtime_error("EVP_DigestSign setup failed");
  }
  std::vector<unsigned char> der(len);
  if (EVP_DigestSign(ctx.get(), der.data(), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    throw std::runtime_error("EVP_DigestSign failed");
  }
  der.resize(len);
  if (format == SignatureFormat::kDer || EVP_PKEY_get_base_id(pkey_.get()) != EVP_PKEY_EC) {
    return std::string(der.begin(), der.end());
  }
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, SigDeleter> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (!sig) throw std::runtime_error("d2i_ECDSA_SIG failed");
  const int half = (EVP_PKEY_get_bits(pkey_.get()) + 7) / 8;
  std::string raw(static_cast<size_t>(2 * half), '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, half) != half ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + half, half) != half) {
    throw std::runtime_error("BN_bn2binpad failed");
  }
  return raw;
}

std::string B64Url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::string MintToken(const TestKeyPair& key, std::string_view header_json,
                      std::string_view payload_json, SignatureFormat format) {
  const std::string input = B64Url(header_json) + "." + B64Url(payload_json);
  return input + "." + B64Url(key.Sign(input, format));
}

std::string Es384Header(std::string_view kid) {
  if (kid.empty()) return R"({"alg":"ES384","typ":"JWT"})";
  return R"({"alg":"ES384","typ":"JWT","kid":")" + std::string(kid) + "\"}";
}

std::string TamperPart(std::string token, int part, size_t index) {
  size_t start = 0;
  for (int i = 0; i < part; ++i) start = token.find('.', start) + 1;
  char& c = token[start + index];
  // Swap between two letters whose low bits are both used (not the last char).
  c = c == 'A' ? 'B' : 'A';
  return token;
}

}  // namespace earshot::playback::testing
