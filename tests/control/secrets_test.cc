// Secret handling (control/secrets.h): the stored hash, constant-time
// comparison and log redaction.
#include "control/secrets.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "control/ids.h"

namespace earshot::control {
namespace {

bool IsLowerHex(std::string_view text) {
  return text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// The stored format: changing it would lock out every existing stream key and
// API key, so a known answer pins it. Computed independently with
//   printf 'earshot-secret-v1\nabc' | sha256sum
TEST(HashSecretTest, IsDomainSeparatedSha256InLowercaseHex) {
  EXPECT_EQ(HashSecret("abc"), "95a79cd8c5db072460c1b92eb6e96958222d0fab45adba358d9c926653f7a7a0");
  // Not the plain SHA-256 of the same bytes (FIPS 180-2 test vector "abc").
  EXPECT_NE(HashSecret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashSecretTest, IsDeterministicAndSeparatesSecrets) {
  std::set<std::string> hashes;
  for (int i = 0; i < 500; ++i) {
    auto key = NewStreamKey();
    ASSERT_TRUE(key.has_value()) << key.error().ToString();
    const std::string hash = HashSecret(*key);
    ASSERT_EQ(hash.size(), 64u);
    ASSERT_TRUE(IsLowerHex(hash)) << hash;
    EXPECT_EQ(HashSecret(*key), hash);
    EXPECT_EQ(hash.find(*key), std::string::npos);
    hashes.insert(hash);
  }
  EXPECT_EQ(hashes.size(), 500u);
  // One character apart, and the empty secret, hash to different values.
  EXPECT_NE(HashSecret("sk_a"), HashSecret("sk_b"));
  EXPECT_NE(HashSecret(""), HashSecret(" "));
  EXPECT_EQ(HashSecret("").size(), 64u);
  // Embedded NUL bytes are part of the secret, not its end.
  EXPECT_NE(HashSecret(std::string_view("a\0b", 3)), HashSecret("a"));
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));  // last byte
  EXPECT_FALSE(ConstantTimeEquals("xbc", "abc"));  // first byte
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));   // a prefix
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_FALSE(ConstantTimeEquals("a", ""));
  EXPECT_TRUE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));

  const std::string hash = HashSecret("secret");
  std::string copy = hash;  // a different buffer, same bytes
  EXPECT_TRUE(ConstantTimeEquals(hash, copy));
  for (size_t i = 0; i < copy.size(); ++i) {
    std::string changed = hash;
    changed[i] = changed[i] == '0' ? '1' : '0';
    EXPECT_FALSE(ConstantTimeEquals(hash, changed)) << "differs at " << i;
  }
}

TEST(RedactSecretTest, ShowsAShortPrefixAndTheLength) {
  const std::string key = "sk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
  ASSERT_EQ(key.size(), 43u);
  EXPECT_EQ(RedactSecret(key), "sk_Ab\u2026(43 chars)");
  EXPECT_EQ(RedactSecret(""), "\u2026(0 chars)");
  EXPECT_EQ(RedactSecret("abc"), "\u2026(3 chars)");       // 3 / 4 = 0 shown
  EXPECT_EQ(RedactSecret("abcdefgh"), "ab\u2026(8 chars)");  // a quarter at most
}

// Whatever the secret, its redaction never contains the whole of it, shows at
// most 5 characters and a quarter of its length, and is printable ASCII
// apart from the ellipsis.
TEST(RedactSecretTest, NeverContainsTheWholeSecret) {
  std::mt19937 rng(12345);
  const std::string ellipsis = "\u2026";
  for (size_t length = 1; length <= 120; ++length) {
    for (int round = 0; round < 20; ++round) {
      std::string secret(length, ' ');
      for (char& c : secret) c = static_cast<char>(rng() % 256);
      const std::string redacted = RedactSecret(secret);
      // (A 1..3 byte secret may coincide with part of "(N chars)": what
      // matters is the bound on the shown prefix below.)
      if (length >= 4) {
        ASSERT_EQ(redacted.find(secret), std::string::npos) << "length " << length;
      }
      const size_t cut = redacted.find(ellipsis);
      ASSERT_NE(cut, std::string::npos) << redacted;
      EXPECT_LE(cut, 5u);
      EXPECT_LE(cut, length / 4);  // so always less than the whole secret
      EXPECT_EQ(redacted.substr(cut + ellipsis.size()),
                "(" + std::to_string(length) + " chars)");
      for (size_t i = 0; i < cut; ++i) {
        const auto u = static_cast<unsigned char>(redacted[i]);
        ASSERT_TRUE(u >= 0x20 && u < 0x7F) << "byte " << int{u} << " in " << redacted;
        if (u != '?') {
          ASSERT_EQ(redacted[i], secret[i]);
        }
      }
    }
  }
  // Real secrets too.
  for (int i = 0; i < 100; ++i) {
    auto key = NewApiKey();
    ASSERT_TRUE(key.has_value());
    const std::string redacted = RedactSecret(*key);
    EXPECT_EQ(redacted.find(*key), std::string::npos);
    EXPECT_EQ(redacted.find(key->substr(0, 6)), std::string::npos);  // 5 characters at most
    EXPECT_TRUE(redacted.starts_with(key->substr(0, 5))) << redacted;
  }
}

TEST(RedactSecretTest, ReplacesUnprintableBytes) {
  EXPECT_EQ(RedactSecret(std::string("\x01\xff\x7f" "a\n" "bcdefghijklmnop")),
            "???a?\u2026(20 chars)");
}

}  // namespace
}  // namespace earshot::control
