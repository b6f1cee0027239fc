// Playback public keys (playback/playback_key.h): P-384 PEM import, refusals
// of every other kind of key with a message saying what was found, the
// fingerprint, and ES384 verification (raw r||s; DER refused).
#include "playback/playback_key.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

#include "token_minter.h"

namespace earshot::playback {
namespace {

using testing::SignatureFormat;
using testing::TestKeyPair;

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

void ExpectRefused(std::string_view pem, std::string_view says) {
  auto key = PlaybackPublicKey::FromPem(pem);
  ASSERT_FALSE(key) << "accepted: " << pem.substr(0, 60);
  EXPECT_EQ(key.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(key.error().message(), says)) << key.error().message();
  EXPECT_TRUE(Contains(key.error().message(), "P-384")) << key.error().message();
}

TEST(PlaybackKeyTest, ImportsP384PublicKeyAndFingerprintsItsDer) {
  const TestKeyPair pair = TestKeyPair::P384();
  const std::string pem = pair.PublicPem();
  auto key = PlaybackPublicKey::FromPem("\n  " + pem + "\n\n");
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(key->pem(), pem);

  // Fingerprint: SHA-256 of the DER SubjectPublicKeyInfo, computed here from
  // the PEM body independently of the code under test.
  std::string body;
  for (size_t pos = pem.find('\n') + 1; pos < pem.size();) {
    const size_t nl = pem.find('\n', pos);
    const std::string line = pem.substr(pos, nl - pos);
    if (line.starts_with("-----END")) break;
    body += line;
    pos = nl + 1;
  }
  std::string der(body.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(der.data()),
                                reinterpret_cast<const unsigned char*>(body.data()),
                                static_cast<int>(body.size()));
  ASSERT_GT(n, 0);
  der.resize(static_cast<size_t>(n) - (body.ends_with("==") ? 2 : body.ends_with("=") ? 1 : 0));
  unsigned char md[32];
  unsigned int md_len = 0;
  ASSERT_EQ(EVP_Digest(der.data(), der.size(), md, &md_len, EVP_sha256(), nullptr), 1);
  std::string expected;
  char buf[4];
  for (unsigned int i = 0; i < md_len; ++i) {
    snprintf(buf, sizeof buf, i ? ":%02x" : "%02x", md[i]);
    expected += buf;
  }
  EXPECT_EQ(key->fingerprint(), expected);
  EXPECT_EQ(key->fingerprint().size(), 95u);

  // Copies share the key and verify alike.
  PlaybackPublicKey copy = *key;
  EXPECT_EQ(copy.fingerprint(), key->fingerprint());
  EXPECT_TRUE(copy.VerifyEs384("hello", pair.Sign("hello")));

  // Another key has another fingerprint.
  auto other = PlaybackPublicKey::FromPem(TestKeyPair::P384().PublicPem());
  ASSERT_TRUE(other);
  EXPECT_NE(other->fingerprint(), key->fingerprint());
}

TEST(PlaybackKeyTest, RefusesEverythingElseSayingWhatItIs) {
  const TestKeyPair p384 = TestKeyPair::P384();
  ExpectRefused("", "empty");
  ExpectRefused("   \n", "empty");
  ExpectRefused("not a key at all", "not PEM");
  ExpectRefused(p384.PrivatePem(), "private key");
  ExpectRefused(TestKeyPair::P256().PublicPem(), "prime256v1 (P-256)");
  ExpectRefused(TestKeyPair::Rsa2048().PublicPem(), "RSA");
  ExpectRefused("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "certificate");
  ExpectRefused("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "does not decode");
  // Two keys in one text.
  ExpectRefused(p384.PublicPem() + p384.PublicPem(), "exactly one PEM block");
  // Damage inside the base64 body.
  std::string damaged = p384.PublicPem();
  damaged[40] = damaged[40] == 'A' ? 'B' : 'A';
  damaged[41] = damaged[41] == 'A' ? 'B' : 'A';
  auto key = PlaybackPublicKey::FromPem(damaged);
  EXPECT_FALSE(key);  // a different point, almost surely not on the curve
}

TEST(PlaybackKeyTest, VerifiesRawSignaturesOnly) {
  const TestKeyPair pair = TestKeyPair::P384();
  auto key = PlaybackPublicKey::FromPem(pair.PublicPem());
  ASSERT_TRUE(key);
  const std::string raw = pair.Sign("header.payload");
  ASSERT_EQ(raw.size(), kEs384SignatureBytes);
  EXPECT_TRUE(key->VerifyEs384("header.payload", raw));

  auto altered = key->VerifyEs384("header.payloaD", raw);
  ASSERT_FALSE(altered);
  EXPECT_EQ(altered.error().code(), ErrorCode::kCorruptData);

  const std::string der = pair.Sign("header.payload", SignatureFormat::kDer);
  auto der_result = key->VerifyEs384("header.payload", der);
  ASSERT_FALSE(der_result);
  EXPECT_EQ(der_result.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(der_result.error().message(), "96 bytes")) << der_result.error().message();

  // Signed by another key; all-zero and all-0xff r||s (out of range).
  EXPECT_FALSE(key->VerifyEs384("header.payload", TestKeyPair::P384().Sign("header.payload")));
  EXPECT_FALSE(key->VerifyEs384("header.payload", std::string(96, '\0')));
  EXPECT_FALSE(key->VerifyEs384("header.payload", std::string(96, '\xff')));
}

}  // namespace
}  // namespace earshot::playback
