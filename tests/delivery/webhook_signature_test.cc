#include "delivery/webhook_signature.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace earshot::delivery {
namespace {

constexpr std::int64_t kT = 1700000000;
const std::string kSecret = "whsec-test-0123456789";
const std::string kBody = R"({"input":"live","status":"match_found","matches":[{"track_id":2}]})";

TEST(WebhookSignatureTest, KnownAnswer) {
  // Computed independently with the OpenSSL CLI (which gives RFC 4231 test
  // case 2, 5bdcc146..., for the bare message):
  //   printf '0.what do ya want for nothing?' | openssl dgst -sha256 -hmac Jefe
  auto hex = WebhookSignatureHex("Jefe", "what do ya want for nothing?", 0);
  ASSERT_TRUE(hex) << hex.error().ToString();
  EXPECT_EQ(*hex, "37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc");
  auto header = SignWebhookBody("Jefe", "what do ya want for nothing?", 0);
  ASSERT_TRUE(header);
  EXPECT_EQ(*header, "t=0,v1=" + *hex);
}

TEST(WebhookSignatureTest, SignThenVerifyRoundTrip) {
  auto header = SignWebhookBody(kSecret, kBody, kT);
  ASSERT_TRUE(header) << header.error().ToString();
  EXPECT_TRUE(header->starts_with("t=1700000000,v1="));
  EXPECT_EQ(header->size(), std::string("t=1700000000,v1=").size() + 64);
  auto ok = VerifyWebhookSignature(kSecret, *header, kBody, kT);
  EXPECT_TRUE(ok) << ok.error().ToString();
  // Within the tolerance either side.
  EXPECT_TRUE(VerifyWebhookSignature(kSecret, *header, kBody, kT + 300, 300));
  EXPECT_TRUE(VerifyWebhookSignature(kSecret, *header, kBody, kT - 300, 300));
  // An empty body signs too.
  auto empty = SignWebhookBody(kSecret, "", kT);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(VerifyWebhookSignature(kSecret, *empty, "", kT));
}

TEST(WebhookSignatureTest, TamperedBodyOrWrongSecretIsAMismatch) {
  auto header = SignWebhookBody(kSecret, kBody, kT);
  ASSERT_TRUE(header);
  std::string tampered = kBody;
  tampered[tampered.find("match_found")] = 'M';
  auto bad_body = VerifyWebhookSignature(kSecret, *header, tampered, kT);
  ASSERT_FALSE(bad_body);
  EXPECT_EQ(bad_body.error().code(), ErrorCode::kCorruptData);
  EXPECT_NE(bad_body.error().message().find("mismatch"), std::string::npos);

  auto bad_secret = VerifyWebhookSignature("another-secret", *header, kBody, kT);
  ASSERT_FALSE(bad_secret);
  EXPECT_EQ(bad_secret.error().code(), ErrorCode::kCorruptData);

  // Moving the timestamp without re-signing breaks the MAC too.
  std::string moved = *header;
  moved.replace(2, 10, std::to_string(kT + 1));
  auto bad_time = VerifyWebhookSignature(kSecret, moved, kBody, kT);
  ASSERT_FALSE(bad_time);
  EXPECT_EQ(bad_time.error().code(), ErrorCode::kCorruptData);

  // One flipped hex digit of the MAC.
  std::string flipped = *header;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_EQ(VerifyWebhookSignature(kSecret, flipped, kBody, kT).error().code(),
            ErrorCode::kCorruptData);
}

TEST(WebhookSignatureTest, StaleOrFutureTimestampIsRejected) {
  auto header = SignWebhookBody(kSecret, kBody, kT);
  ASSERT_TRUE(header);
  auto stale = VerifyWebhookSignature(kSecret, *header, kBody, kT + 301, 300);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(stale.error().message().find("stale"), std::string::npos);
  EXPECT_NE(stale.error().message().find("301 s ago"), std::string::npos);
  auto future = VerifyWebhookSignature(kSecret, *header, kBody, kT - 3600, 300);
  ASSERT_FALSE(future);
  EXPECT_EQ(future.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(future.error().message().find("in the future"), std::string::npos);
}

TEST(WebhookSignatureTest, MalformedHeadersAreNamed) {
  auto hex = WebhookSignatureHex(kSecret, kBody, kT);
  ASSERT_TRUE(hex);
  const std::string v1 = "v1=" + *hex;
  struct Case {
    std::string header;
    std::string reason;
  };
  const Case cases[] = {
      {"", "no t="},
      {v1, "no t="},
      {"t=1700000000", "no v1="},
      {"t=," + v1, "t= is not a unix time"},
      {"t=-5," + v1, "t= is not a unix time"},
      {"t=17e8," + v1, "t= is not a unix time"},
      {"t=1700000000,t=1700000000," + v1, "t= given twice"},
      {"t=1700000000,v1=abc", "v1= is not 64 hex digits"},
      {"t=1700000000,v1=" + std::string(64, 'g'), "v1= is not 64 hex digits"},
      {"t=1700000000;" + v1, "is not a unix time"},
      {"garbage", "is not KEY=VALUE"},
  };
  for (const Case& c : cases) {
    auto result = VerifyWebhookSignature(kSecret, c.header, kBody, kT);
    ASSERT_FALSE(result) << c.header;
    EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument) << c.header;
    EXPECT_NE(result.error().message().find("malformed X-Earshot-Signature header"),
              std::string::npos)
        << result.error().message();
    EXPECT_NE(result.error().message().find(c.reason), std::string::npos)
        << c.header << " -> " << result.error().message();
  }
}

TEST(WebhookSignatureTest, ToleratesSpacesUnknownSchemesAndRotatedSecrets) {
  auto hex = WebhookSignatureHex(kSecret, kBody, kT);
  auto old_hex = WebhookSignatureHex("the-old-secret", kBody, kT);
  ASSERT_TRUE(hex && old_hex);
  // Upper-case hex, spaces, an unknown v0 item, and two v1 values (rotation).
  std::string upper = *hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(
      VerifyWebhookSignature(kSecret, " t=1700000000 , v0=whatever, v1=" + upper, kBody, kT));
  const std::string both = "t=1700000000,v1=" + *old_hex + ",v1=" + *hex;
  EXPECT_TRUE(VerifyWebhookSignature(kSecret, both, kBody, kT));
  EXPECT_TRUE(VerifyWebhookSignature("the-old-secret", both, kBody, kT));
}

TEST(WebhookSignatureTest, RejectsEmptySecretAndNegativeInputs) {
  EXPECT_EQ(SignWebhookBody("", kBody, kT).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(SignWebhookBody(kSecret, kBody, -1).error().code(), ErrorCode::kInvalidArgument);
  auto header = SignWebhookBody(kSecret, kBody, kT);
  ASSERT_TRUE(header);
  EXPECT_EQ(VerifyWebhookSignature("", *header, kBody, kT).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(VerifyWebhookSignature(kSecret, *header, kBody, kT, -1).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(VerifyWebhookSignature(kSecret, *header, kBody, -1).error().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace earshot::delivery
