// The playback authorisation decision (playback/playback_authorizer.h) with an
// in-memory PlaybackAuthState and tokens minted by token_minter.
#include "playback/playback_authorizer.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "token_minter.h"

namespace earshot::playback {
namespace {

using nlohmann::json;
using testing::B64Url;
using testing::Es384Header;
using testing::MintToken;
using testing::SignatureFormat;
using testing::TestKeyPair;

constexpr int64_t kNow = 1'800'000'000;
constexpr std::string_view kArn = "arn:aws:ivs:eu-west-1:123456789012:channel/abc";

// The server's store, in memory.
class FakeAuthState final : public PlaybackAuthState {
 public:
  bool ClaimSingleUse(std::string_view uuid, std::string_view binding, int64_t exp_s) override {
    std::lock_guard lock(mutex_);
    ++claims_;
    last_exp_ = exp_s;
    auto [it, inserted] = single_use_.try_emplace(std::string(uuid), std::string(binding));
    return inserted || it->second == binding;
  }
  bool IsViewerRevoked(std::string_view channel_id, std::string_view viewer_id,
                       int64_t session_version) override {
    std::lock_guard lock(mutex_);
    auto it = revoked_.find(std::string(channel_id) + "/" + std::string(viewer_id));
    return it != revoked_.end() && session_version <= it->second;
  }
  void Revoke(std::string_view channel_id, std::string_view viewer_id, int64_t version) {
    std::lock_guard lock(mutex_);
    revoked_[std::string(channel_id) + "/" + std::string(viewer_id)] = version;
  }
  int claims() {
    std::lock_guard lock(mutex_);
    return claims_;
  }
  int64_t last_exp() {
    std::lock_guard lock(mutex_);
    return last_exp_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> single_use_;
  std::map<std::string, int64_t> revoked_;
  int claims_ = 0;
  int64_t last_exp_ = 0;
};

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = {{"k1", *PlaybackPublicKey::FromPem(k1_.PublicPem())},
             {"k2", *PlaybackPublicKey::FromPem(k2_.PublicPem())}};
    authorizer_.SetKeys(keys_);
    channel_.channel_id = "ch-1";
    channel_.channel_arn = std::string(kArn);
    channel_.is_private = true;
  }

  static json Claims(int64_t exp = kNow + 3600) {
    return {{"aws:channel-arn", kArn}, {"exp", exp}};
  }
  std::string Mint(const json& claims, std::string_view kid = "") {
    return MintToken(k1_, Es384Header(kid), claims.dump());
  }
  PlaybackRequest Request(std::string_view token, RequestKind kind = RequestKind::kPlaylist) {
    PlaybackRequest request;
    request.kind = kind;
    request.token = token;
    request.client_address = "203.0.113.7";
    request.user_agent = "Mozilla/5.0 test";
    request.now_s = kNow;
    return request;
  }
  PlaybackDecision Decide(const PlaybackRequest& request) {
    return authorizer_.Decide(channel_, request);
  }
  DenyReason ReasonFor(std::string_view token) { return Decide(Request(token)).reason; }

  TestKeyPair k1_ = TestKeyPair::P384();
  TestKeyPair k2_ = TestKeyPair::P384();
  std::vector<KeyEntry> keys_;
  FakeAuthState state_;
  PlaybackAuthorizer authorizer_{state_};
  ChannelAccess channel_;
};

std::string Sha256Hex(std::string_view data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    snprintf(buf, sizeof buf, "%02x", md[i]);
    hex += buf;
  }
  return hex;
}

TEST(DenyReasonTest, NamesAreSnakeCase) {
  EXPECT_EQ(DenyReasonName(DenyReason::kNone), "none");
  EXPECT_EQ(DenyReasonName(DenyReason::kNoToken), "no_token");
  EXPECT_EQ(DenyReasonName(DenyReason::kTokenMalformed), "token_malformed");
  EXPECT_EQ(DenyReasonName(DenyReason::kExpInMilliseconds), "exp_in_milliseconds");
  EXPECT_EQ(DenyReasonName(DenyReason::kSingleUseExpTooFar), "single_use_exp_too_far");
  EXPECT_EQ(DenyReasonName(DenyReason::kCountryUnknown), "country_unknown");
}

TEST_F(AuthorizerTest, ValidTokenIsAllowedAndKeyedByTokenHash) {
  const std::string token = Mint(Claims());
  for (int i = 0; i < 3; ++i) {  // the second and third come from the cache
    const PlaybackDecision decision = Decide(Request(token));
    EXPECT_EQ(decision.http_status, 200);
    EXPECT_EQ(decision.reason, DenyReason::kNone);
    EXPECT_EQ(decision.viewer_key, "t:" + Sha256Hex(token).substr(0, 16));
    EXPECT_EQ(decision.cors_origin, "");
  }
  json with_viewer = Claims();
  with_viewer["aws:viewer-id"] = "viewer-42";
  EXPECT_EQ(Decide(Request(Mint(with_viewer))).viewer_key, "v:viewer-42");
}

TEST_F(AuthorizerTest, PrivateChannelWithoutTokenIs401) {
  const PlaybackDecision decision = Decide(Request(""));
  EXPECT_EQ(decision.http_status, 401);
  EXPECT_EQ(decision.reason, DenyReason::kNoToken);
  EXPECT_EQ(decision.viewer_key, "a:" + Sha256Hex("203.0.113.7\nMozilla/5.0 test").substr(0, 16));
}

TEST_F(AuthorizerTest, ExpiryIsCheckedOnEveryRequestEvenWhenCached) {
  const std::string token = Mint(Claims(kNow + 10));
  EXPECT_EQ(ReasonFor(token), DenyReason::kNone);
  PlaybackRequest later = Request(token);
  later.now_s = kNow + 9;
  EXPECT_EQ(Decide(later).reason, DenyReason::kNone);
  later.now_s = kNow + 10;  // exp itself is expired: no skew
  const PlaybackDecision expired = Decide(later);
  EXPECT_EQ(expired.http_status, 403);
  EXPECT_EQ(expired.reason, DenyReason::kTokenExpired);
  EXPECT_EQ(ReasonFor(Mint(Claims(kNow - 1))), DenyReason::kTokenExpired);
}

TEST_F(AuthorizerTest, ExpInMillisecondsIsRefusedAsSuch) {
  EXPECT_EQ(ReasonFor(Mint(Claims(kNow * 1000 + 3600000))), DenyReason::kExpInMilliseconds);
}

TEST_F(AuthorizerTest, WrongChannelIsRefused) {
  json other = Claims();
  other["aws:channel-arn"] = "arn:aws:ivs:eu-west-1:123456789012:channel/other";
  EXPECT_EQ(ReasonFor(Mint(other)), DenyReason::kWrongChannel);
}

TEST_F(AuthorizerTest, SignatureChecks) {
  // A key that is not in the set.
  EXPECT_EQ(ReasonFor(MintToken(TestKeyPair::P384(), Es384Header(), Claims().dump())),
            DenyReason::kBadSignature);
  // kid picks the key: right key, wrong key, unknown key.
  EXPECT_EQ(ReasonFor(MintToken(k2_, Es384Header("k2"), Claims().dump())), DenyReason::kNone);
  EXPECT_EQ(ReasonFor(MintToken(k2_, Es384Header("k1"), Claims().dump())),
            DenyReason::kBadSignature);
  EXPECT_EQ(ReasonFor(MintToken(k1_, Es384Header("nope"), Claims().dump())),
            DenyReason::kUnknownKey);
  // DER instead of raw r||s.
  EXPECT_EQ(ReasonFor(MintToken(k1_, Es384Header(), Claims().dump(), SignatureFormat::kDer)),
            DenyReason::kBadSignature);
  // Tampering with any part (a valid token first, so the cache holds it).
  const std::string token = Mint(Claims());
  ASSERT_EQ(ReasonFor(token), DenyReason::kNone);
  json changed = Claims();
  changed["aws:channel-arn"] = std::string(kArn);
  changed["exp"] = kNow + 7200;  // a longer life, same signature
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  const std::string swapped_payload =
      token.substr(0, dot1) + "." + B64Url(changed.dump()) + token.substr(dot2);
  EXPECT_EQ(ReasonFor(swapped_payload), DenyReason::kBadSignature);
  const std::string swapped_header = B64Url(R"({"typ":"JWT","alg":"ES384"})") + token.substr(dot1);
  EXPECT_EQ(ReasonFor(swapped_header), DenyReason::kBadSignature);
  EXPECT_EQ(ReasonFor(testing::TamperPart(token, 2, 10)), DenyReason::kBadSignature);
  EXPECT_EQ(ReasonFor(testing::TamperPart(token, 2, 70)), DenyReason::kBadSignature);
}

TEST_F(AuthorizerTest, OtherAlgorithmsAreRefused) {
  const std::string claims = Claims().dump();
  // none: empty signature part, and with a signature part.
  EXPECT_EQ(ReasonFor(B64Url(R"({"alg":"none"})") + "." + B64Url(claims) + "."),
            DenyReason::kTokenMalformed);
  EXPECT_EQ(ReasonFor(B64Url(R"({"alg":"none"})") + "." + B64Url(claims) + ".AAAA"),
            DenyReason::kAlgorithmNotAllowed);
  // HS384 with the public key PEM as the HMAC secret (the classic confusion attack).
  const std::string input = B64Url(R"({"alg":"HS384","typ":"JWT"})") + "." + B64Url(claims);
  const std::string secret = k1_.PublicPem();
  unsigned char mac[48];
  unsigned int mac_len = 0;
  HMAC(EVP_sha384(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  const std::string hs384 =
      input + "." + B64Url(std::string(reinterpret_cast<const char*>(mac), mac_len));
  EXPECT_EQ(ReasonFor(hs384), DenyReason::kAlgorithmNotAllowed);
  EXPECT_EQ(ReasonFor(MintToken(TestKeyPair::Rsa2048(), R"({"alg":"RS256","typ":"JWT"})", claims)),
            DenyReason::kAlgorithmNotAllowed);
  EXPECT_EQ(ReasonFor(MintToken(TestKeyPair::P256(), R"({"alg":"ES256","typ":"JWT"})", claims)),
            DenyReason::kAlgorithmNotAllowed);
  // ES384 signed by the right key but claiming ES256 is still refused.
  EXPECT_EQ(ReasonFor(MintToken(k1_, R"({"alg":"ES256"})", claims)),
            DenyReason::kAlgorithmNotAllowed);
}

TEST_F(AuthorizerTest, MalformedOversizedAndDuplicateClaimTokens) {
  EXPECT_EQ(ReasonFor("garbage"), DenyReason::kTokenMalformed);
  EXPECT_EQ(ReasonFor("a.b.c"), DenyReason::kTokenMalformed);
  const std::string good = Mint(Claims());
  EXPECT_EQ(ReasonFor(good + "="), DenyReason::kTokenMalformed);
  EXPECT_EQ(ReasonFor("*" + good), DenyReason::kTokenMalformed);
  EXPECT_EQ(ReasonFor(MintToken(k1_, Es384Header(), "{not json")), DenyReason::kTokenMalformed);
  json big = Claims();
  big["padding"] = std::string(kMaxJwtBytes, 'x');
  EXPECT_EQ(ReasonFor(Mint(big)), DenyReason::kTokenMalformed);
  // A duplicate exp, validly signed: one parser would see the first, another the last.
  const std::string dup =
      R"({"aws:channel-arn":")" + std::string(kArn) + R"(","exp":1800003600,"exp":4000000000})";
  EXPECT_EQ(ReasonFor(MintToken(k1_, Es384Header(), dup)), DenyReason::kTokenMalformed);
  json mistyped = Claims();
  mistyped["aws:strict-origin-enforcement"] = "yes";
  EXPECT_EQ(ReasonFor(Mint(mistyped)), DenyReason::kTokenMalformed);
}

TEST_F(AuthorizerTest, DeletedKeyInvalidatesCachedTokensAtOnce) {
  const std::string by_k1 = Mint(Claims());
  const std::string by_k2 = MintToken(k2_, Es384Header(), Claims().dump());
  ASSERT_EQ(ReasonFor(by_k1), DenyReason::kNone);
  ASSERT_EQ(ReasonFor(by_k2), DenyReason::kNone);
  authorizer_.SetKeys({keys_[1]});  // k1 deleted
  EXPECT_EQ(ReasonFor(by_k1), DenyReason::kBadSignature);
  EXPECT_EQ(ReasonFor(by_k2), DenyReason::kNone);
  // A key re-imported under the same id but with other material does not
  // keep the old tokens alive either.
  authorizer_.SetKeys({keys_[1], {"k1", *PlaybackPublicKey::FromPem(k2_.PublicPem())}});
  EXPECT_EQ(ReasonFor(by_k1), DenyReason::kBadSignature);
  authorizer_.SetKeys({});
  EXPECT_EQ(ReasonFor(by_k2), DenyReason::kUnknownKey);
  authorizer_.SetKeys(keys_);
  EXPECT_EQ(ReasonFor(by_k1), DenyReason::kNone);
}

TEST_F(AuthorizerTest, SingleUseTokenBindsToTheFirstViewer) {
  json claims = Claims(kNow + 300);
  claims["aws:single-use-uuid"] = "8b1c1b3e-2f5e-4a7e-9a55-3f1d2c4b5a69";
  const std::string token = Mint(claims);
  EXPECT_EQ(Decide(Request(token)).reason, DenyReason::kNone);
  EXPECT_EQ(state_.last_exp(), kNow + 300);
  // The same viewer keeps playing: playlist refreshes and segments.
  EXPECT_EQ(Decide(Request(token, RequestKind::kSegment)).reason, DenyReason::kNone);
  EXPECT_EQ(Decide(Request(token)).reason, DenyReason::kNone);
  // Another address or another browser is another viewer.
  PlaybackRequest other = Request(token);
  other.client_address = "198.51.100.9";
  const PlaybackDecision replay = Decide(other);
  EXPECT_EQ(replay.http_status, 403);
  EXPECT_EQ(replay.reason, DenyReason::kSingleUseReplayed);
  PlaybackRequest other_agent = Request(token);
  other_agent.user_agent = "curl/8";
  EXPECT_EQ(Decide(other_agent).reason, DenyReason::kSingleUseReplayed);
}

TEST_F(AuthorizerTest, SingleUseTokenMustExpireWithinTenMinutes) {
  json claims = Claims(kNow + kMaxSingleUseLifetimeS + 1);
  claims["aws:single-use-uuid"] = "u-1";
  EXPECT_EQ(ReasonFor(Mint(claims)), DenyReason::kSingleUseExpTooFar);
  claims["exp"] = kNow + kMaxSingleUseLifetimeS;
  EXPECT_EQ(ReasonFor(Mint(claims)), DenyReason::kNone);
  EXPECT_EQ(state_.claims(), 1);  // the refused one never claimed its uuid
}

TEST_F(AuthorizerTest, RefusedRequestsDoNotUseUpSingleUseTokens) {
  channel_.policy.allowed_origins = {"https://example.com"};
  json claims = Claims(kNow + 300);
  claims["aws:single-use-uuid"] = "u-2";
  const std::string token = Mint(claims);
  PlaybackRequest wrong_origin = Request(token);
  wrong_origin.client_address = "198.51.100.9";
  wrong_origin.origin = "https://evil.example.net";
  EXPECT_EQ(Decide(wrong_origin).reason, DenyReason::kOriginNotAllowed);
  EXPECT_EQ(state_.claims(), 0);
  EXPECT_EQ(ReasonFor(token), DenyReason::kNone);  // the real viewer still gets it
}

TEST_F(AuthorizerTest, RevokedViewerIsRefusedUpToItsSessionVersion) {
  json claims = Claims();
  claims["aws:viewer-id"] = "alice";
  claims["aws:viewer-session-version"] = 2;
  const std::string v2 = Mint(claims);
  claims["aws:viewer-session-version"] = 3;
  const std::string v3 = Mint(claims);
  json no_version = Claims();
  no_version["aws:viewer-id"] = "alice";
  const std::string v0 = Mint(no_version);
  EXPECT_EQ(ReasonFor(v2), DenyReason::kNone);
  state_.Revoke("ch-1", "alice", 2);
  const PlaybackDecision revoked = Decide(Request(v2));  // cached, still re-checked
  EXPECT_EQ(revoked.http_status, 403);
  EXPECT_EQ(revoked.reason, DenyReason::kViewerRevoked);
  EXPECT_EQ(revoked.viewer_key, "v:alice");
  EXPECT_EQ(ReasonFor(v0), DenyReason::kViewerRevoked);
  EXPECT_EQ(ReasonFor(v3), DenyReason::kNone);
  // Revocation is per channel.
  state_.Revoke("ch-other", "bob", 100);
  json bob = Claims();
  bob["aws:viewer-id"] = "bob";
  EXPECT_EQ(ReasonFor(Mint(bob)), DenyReason::kNone);
}

TEST_F(AuthorizerTest, NonStrictOriginChecksOnlyPlaylistsThatCarryAnOrigin) {
  json claims = Claims();
  claims["aws:access-control-allow-origin"] = "https://example.com,https://*.example.org";
  const std::string token = Mint(claims);
  PlaybackRequest request = Request(token);
  request.origin = "https://example.com";
  PlaybackDecision ok = Decide(request);
  EXPECT_EQ(ok.reason, DenyReason::kNone);
  EXPECT_EQ(ok.cors_origin, "https://example.com");
  request.origin = "https://player.example.org";  // wildcard
  EXPECT_EQ(Decide(request).cors_origin, "https://player.example.org");
  request.origin = "https://example.org";  // the wildcard needs a label
  EXPECT_EQ(Decide(request).reason, DenyReason::kOriginNotAllowed);
  request.origin = "https://evil.net";
  const PlaybackDecision denied = Decide(request);
  EXPECT_EQ(denied.http_status, 403);
  EXPECT_EQ(denied.reason, DenyReason::kOriginNotAllowed);
  EXPECT_EQ(denied.cors_origin, "");
  // Segments are not checked in non-strict mode, nor requests without Origin.
  request.kind = RequestKind::kSegment;
  const PlaybackDecision segment = Decide(request);
  EXPECT_EQ(segment.reason, DenyReason::kNone);
  EXPECT_EQ(segment.cors_origin, "");  // not allowed, so not echoed
  EXPECT_EQ(Decide(Request(token)).reason, DenyReason::kNone);
}

TEST_F(AuthorizerTest, TokenAndPolicyOriginListsMustBothAllow) {
  channel_.policy.allowed_origins = {"https://*.example.com"};
  json claims = Claims();
  claims["aws:access-control-allow-origin"] = "https://a.example.com,https://b.example.net";
  const std::string token = Mint(claims);
  PlaybackRequest request = Request(token);
  request.origin = "https://a.example.com";
  EXPECT_EQ(Decide(request).reason, DenyReason::kNone);
  request.origin = "https://b.example.net";  // token allows, policy does not
  EXPECT_EQ(Decide(request).reason, DenyReason::kOriginNotAllowed);
  request.origin = "https://c.example.com";  // policy allows, token does not
  EXPECT_EQ(Decide(request).reason, DenyReason::kOriginNotAllowed);
}

TEST_F(AuthorizerTest, StrictOriginFromTokenOrPolicyChecksEveryRequest) {
  json claims = Claims();
  claims["aws:access-control-allow-origin"] = "https://example.com";
  claims["aws:strict-origin-enforcement"] = true;
  const std::string strict_token = Mint(claims);
  PlaybackRequest segment = Request(strict_token, RequestKind::kSegment);
  const PlaybackDecision missing = Decide(segment);
  EXPECT_EQ(missing.http_status, 403);
  EXPECT_EQ(missing.reason, DenyReason::kOriginMissing);
  segment.origin = "https://evil.net";
  EXPECT_EQ(Decide(segment).reason, DenyReason::kOriginNotAllowed);
  segment.origin = "https://EXAMPLE.com";
  const PlaybackDecision ok = Decide(segment);
  EXPECT_EQ(ok.reason, DenyReason::kNone);
  EXPECT_EQ(ok.cors_origin, "https://EXAMPLE.com");

  // The policy's flag makes a non-strict token strict.
  claims.erase("aws:strict-origin-enforcement");
  const std::string plain_token = Mint(claims);
  EXPECT_EQ(Decide(Request(plain_token, RequestKind::kSegment)).reason, DenyReason::kNone);
  channel_.policy.strict_origin_enforcement = true;
  EXPECT_EQ(Decide(Request(plain_token, RequestKind::kSegment)).reason, DenyReason::kOriginMissing);
  EXPECT_EQ(Decide(Request(plain_token)).reason, DenyReason::kOriginMissing);
}

TEST_F(AuthorizerTest, CountryAllowedBlockedOrUnknown) {
  channel_.policy.allowed_countries = {"FR", "BE"};
  const std::string token = Mint(Claims());
  PlaybackRequest request = Request(token);
  request.country = "FR";
  EXPECT_EQ(Decide(request).reason, DenyReason::kNone);
  request.country = "be";
  EXPECT_EQ(Decide(request).reason, DenyReason::kNone);
  request.country = "US";
  const PlaybackDecision blocked = Decide(request);
  EXPECT_EQ(blocked.http_status, 403);
  EXPECT_EQ(blocked.reason, DenyReason::kCountryNotAllowed);
  request.country = "";
  EXPECT_EQ(Decide(request).reason, DenyReason::kCountryUnknown);
  channel_.policy.allowed_countries.clear();
  EXPECT_EQ(Decide(request).reason, DenyReason::kNone);
}

TEST_F(AuthorizerTest, PublicChannelNeedsNoTokenButKeepsItsPolicy) {
  channel_.is_private = false;
  EXPECT_EQ(Decide(Request("")).http_status, 200);
  const PlaybackDecision with_garbage = Decide(Request("not-a-token"));
  EXPECT_EQ(with_garbage.http_status, 200);
  EXPECT_EQ(with_garbage.viewer_key,
            "a:" + Sha256Hex("203.0.113.7\nMozilla/5.0 test").substr(0, 16));
  // A token for a viewer is ignored too (no "v:" key, no revocation).
  json claims = Claims();
  claims["aws:viewer-id"] = "alice";
  state_.Revoke("ch-1", "alice", 100);
  const PlaybackDecision ignored = Decide(Request(Mint(claims)));
  EXPECT_EQ(ignored.reason, DenyReason::kNone);
  EXPECT_TRUE(ignored.viewer_key.starts_with("a:"));

  channel_.policy.allowed_countries = {"DE"};
  channel_.policy.allowed_origins = {"https://example.com"};
  PlaybackRequest request = Request("");
  request.country = "FR";
  EXPECT_EQ(Decide(request).reason, DenyReason::kCountryNotAllowed);
  request.country = "DE";
  request.origin = "https://evil.net";
  EXPECT_EQ(Decide(request).reason, DenyReason::kOriginNotAllowed);
  request.origin = "https://example.com";
  EXPECT_EQ(Decide(request).cors_origin, "https://example.com");
}

TEST_F(AuthorizerTest, WorksWithoutACache) {
  PlaybackAuthorizer uncached(state_, 0);
  uncached.SetKeys(keys_);
  const std::string token = Mint(Claims());
  for (int i = 0; i < 2; ++i) EXPECT_EQ(uncached.Decide(channel_, Request(token)).http_status, 200);
  uncached.SetKeys({});
  EXPECT_EQ(uncached.Decide(channel_, Request(token)).reason, DenyReason::kUnknownKey);
}

TEST_F(AuthorizerTest, TinyCacheEvictsAndStillDecidesCorrectly) {
  PlaybackAuthorizer small(state_, 2);
  small.SetKeys(keys_);
  std::vector<std::string> tokens;
  for (int i = 0; i < 6; ++i) tokens.push_back(Mint(Claims(kNow + 100 + i)));
  for (int round = 0; round < 2; ++round) {
    for (const std::string& token : tokens) {
      EXPECT_EQ(small.Decide(channel_, Request(token)).reason, DenyReason::kNone);
    }
  }
}

TEST_F(AuthorizerTest, ConcurrentDecisionsAndKeyChanges) {
  const std::string by_k1 = Mint(Claims());
  const std::string by_k2 = MintToken(k2_, Es384Header(), Claims().dump());
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        // k2 is in every key set, so its token must always pass.
        if (Decide(Request(by_k2)).reason != DenyReason::kNone) ++wrong;
        const DenyReason r = Decide(Request(by_k1)).reason;
        if (r != DenyReason::kNone && r != DenyReason::kBadSignature) ++wrong;
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    authorizer_.SetKeys(i % 2 ? keys_ : std::vector<KeyEntry>{keys_[1]});
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  authorizer_.SetKeys({keys_[1]});
  // Once SetKeys returned, k1's token is refused by every thread.
  EXPECT_EQ(ReasonFor(by_k1), DenyReason::kBadSignature);
  stop = true;
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ReasonFor(by_k1), DenyReason::kBadSignature);
}

}  // namespace
}  // namespace earshot::playback
