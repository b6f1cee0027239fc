// Playback token claims and whole-token verification (playback/playback_token.h).
#include "playback/playback_token.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "token_minter.h"

namespace earshot::playback {
namespace {

using nlohmann::json;
using testing::Es384Header;
using testing::MintToken;
using testing::SignatureFormat;
using testing::TestKeyPair;

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

json Base() { return {{"aws:channel-arn", "arn:aws:ivs:eu:1:channel/a"}, {"exp", 1800000000}}; }

void ExpectFault(const json& payload, TokenFault fault, std::string_view says) {
  auto claims = ParsePlaybackClaims(payload);
  ASSERT_FALSE(claims) << payload.dump();
  EXPECT_EQ(claims.error().fault, fault) << claims.error().message;
  EXPECT_TRUE(Contains(claims.error().message, says)) << claims.error().message;
}

TEST(PlaybackClaimsTest, ParsesEveryClaim) {
  json payload = Base();
  payload["aws:access-control-allow-origin"] = "https://Example.com, https://*.example.org:8443,,";
  payload["aws:strict-origin-enforcement"] = true;
  payload["aws:single-use-uuid"] = "2a4b6c8d-0000-4000-8000-000000000001";
  payload["aws:viewer-id"] = std::string(40, 'v');
  payload["aws:viewer-session-version"] = 3;
  payload["aws:maximum-resolution"] = "HD";
  payload["iat"] = 1700000000;  // ignored
  auto claims = ParsePlaybackClaims(payload);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->channel_arn, "arn:aws:ivs:eu:1:channel/a");
  EXPECT_EQ(claims->exp_s, 1800000000);
  EXPECT_EQ(claims->allowed_origins,
            (std::vector<std::string>{"https://example.com", "https://*.example.org:8443"}));
  EXPECT_TRUE(claims->strict_origin_enforcement);
  EXPECT_EQ(claims->single_use_uuid, "2a4b6c8d-0000-4000-8000-000000000001");
  EXPECT_EQ(claims->viewer_id, std::string(40, 'v'));
  EXPECT_EQ(claims->viewer_session_version, 3);
  EXPECT_EQ(claims->maximum_resolution, "HD");

  auto minimal = ParsePlaybackClaims(Base());
  ASSERT_TRUE(minimal);
  EXPECT_TRUE(minimal->allowed_origins.empty());
  EXPECT_FALSE(minimal->strict_origin_enforcement);
  EXPECT_TRUE(minimal->single_use_uuid.empty());
  EXPECT_EQ(minimal->viewer_session_version, 0);

  json fractional = Base();
  fractional["exp"] = 1800000000.75;
  EXPECT_EQ(ParsePlaybackClaims(fractional)->exp_s, 1800000000);
}

TEST(PlaybackClaimsTest, RefusesMissingOrMistypedClaims) {
  json no_arn = Base();
  no_arn.erase("aws:channel-arn");
  ExpectFault(no_arn, TokenFault::kMalformed, "aws:channel-arn");
  json no_exp = Base();
  no_exp.erase("exp");
  ExpectFault(no_exp, TokenFault::kMalformed, "\"exp\"");
  const std::vector<std::pair<std::string, json>> wrong = {
      {"aws:channel-arn", 5},
      {"aws:channel-arn", ""},
      {"exp", "1800000000"},
      {"exp", -1},
      {"exp", true},
      {"aws:access-control-allow-origin", json::array({"https://a.com"})},
      {"aws:access-control-allow-origin", "https://a.com/path"},
      {"aws:strict-origin-enforcement", "true"},
      {"aws:single-use-uuid", 12},
      {"aws:single-use-uuid", ""},
      {"aws:viewer-id", 12},
      {"aws:viewer-id", std::string(41, 'v')},
      {"aws:viewer-session-version", 1.5},
      {"aws:viewer-session-version", "2"},
      {"aws:maximum-resolution", 1080},
  };
  for (const auto& [name, value] : wrong) {
    json payload = Base();
    payload[name] = value;
    ExpectFault(payload, TokenFault::kMalformed, name);
  }
}

TEST(PlaybackClaimsTest, RefusesExpInMillisecondsSayingSo) {
  json ms = Base();
  ms["exp"] = 1800000000000;
  ExpectFault(ms, TokenFault::kExpInMilliseconds, "milliseconds");
  ms["exp"] = 18446744073709551615u;
  ExpectFault(ms, TokenFault::kExpInMilliseconds, "SECONDS");
  json edge = Base();
  edge["exp"] = kMaxExpSeconds;
  EXPECT_TRUE(ParsePlaybackClaims(edge));
}

class VerifyTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_.push_back({"k1", *PlaybackPublicKey::FromPem(k1_.PublicPem())});
    keys_.push_back({"k2", *PlaybackPublicKey::FromPem(k2_.PublicPem())});
  }
  TestKeyPair k1_ = TestKeyPair::P384();
  TestKeyPair k2_ = TestKeyPair::P384();
  std::vector<KeyEntry> keys_;
};

TEST_F(VerifyTokenTest, AnyCurrentKeyVerifiesWithoutKid) {
  for (const TestKeyPair* pair : {&k1_, &k2_}) {
    auto token = VerifyPlaybackToken(MintToken(*pair, Es384Header(), Base().dump()), keys_);
    ASSERT_TRUE(token) << token.error().message;
    EXPECT_EQ(token->key_id, pair == &k1_ ? "k1" : "k2");
    EXPECT_EQ(token->key_fingerprint, keys_[pair == &k1_ ? 0 : 1].key.fingerprint());
    EXPECT_EQ(token->claims.exp_s, 1800000000);
  }
}

TEST_F(VerifyTokenTest, KidSelectsTheKey) {
  auto ok = VerifyPlaybackToken(MintToken(k2_, Es384Header("k2"), Base().dump()), keys_);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->key_id, "k2");
  // kid names k1 but k2 signed: only k1 is tried.
  auto wrong = VerifyPlaybackToken(MintToken(k2_, Es384Header("k1"), Base().dump()), keys_);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().fault, TokenFault::kBadSignature);
  EXPECT_TRUE(Contains(wrong.error().message, "\"k1\"")) << wrong.error().message;
  auto unknown = VerifyPlaybackToken(MintToken(k1_, Es384Header("k9"), Base().dump()), keys_);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().fault, TokenFault::kUnknownKey);
  EXPECT_TRUE(Contains(unknown.error().message, "\"k9\"")) << unknown.error().message;
}

TEST_F(VerifyTokenTest, RefusesForeignKeysTamperingAndDer) {
  auto foreign =
      VerifyPlaybackToken(MintToken(TestKeyPair::P384(), Es384Header(), Base().dump()), keys_);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().fault, TokenFault::kBadSignature);
  auto no_keys = VerifyPlaybackToken(MintToken(k1_, Es384Header(), Base().dump()), {});
  ASSERT_FALSE(no_keys);
  EXPECT_EQ(no_keys.error().fault, TokenFault::kUnknownKey);

  const std::string token = MintToken(k1_, Es384Header(), Base().dump());
  for (int part = 0; part < 3; ++part) {
    auto tampered = VerifyPlaybackToken(testing::TamperPart(token, part), keys_);
    ASSERT_FALSE(tampered) << part;
    // A flipped header or payload character may also break its JSON.
    EXPECT_TRUE(tampered.error().fault == TokenFault::kBadSignature ||
                tampered.error().fault == TokenFault::kMalformed)
        << part << ": " << tampered.error().message;
  }
  auto der = VerifyPlaybackToken(
      MintToken(k1_, Es384Header(), Base().dump(), SignatureFormat::kDer), keys_);
  ASSERT_FALSE(der);
  EXPECT_EQ(der.error().fault, TokenFault::kBadSignature);
  EXPECT_TRUE(Contains(der.error().message, "DER")) << der.error().message;
}

}  // namespace
}  // namespace earshot::playback
