#include "store/catalog_types.h"

#include <gtest/gtest.h>

#include <string>

namespace earshot::store {
namespace {

TEST(BusinessRuleTest, NamesRoundTripIgnoringCase) {
  for (BusinessRule rule : kAllBusinessRules) {
    auto parsed = ParseBusinessRule(BusinessRuleName(rule));
    ASSERT_TRUE(parsed) << BusinessRuleName(rule);
    EXPECT_EQ(*parsed, rule);
  }
  EXPECT_EQ(ParseBusinessRule("block").value(), BusinessRule::kBlock);
  EXPECT_EQ(ParseBusinessRule("MUTE").value(), BusinessRule::kMute);
  EXPECT_EQ(BusinessRuleName(BusinessRule::kAllow), "allow");
  EXPECT_EQ(BusinessRuleName(BusinessRule::kTrack), "track");
}

TEST(BusinessRuleTest, UnknownNameListsAllowedValues) {
  auto parsed = ParseBusinessRule("blok");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parsed.error().message(),
            "unknown business rule \"blok\" (allowed: block, mute, allow, track)");
  EXPECT_FALSE(ParseBusinessRule(""));
  EXPECT_FALSE(ParseBusinessRule(" block"));
}

TEST(MediaKindTest, NamesRoundTrip) {
  EXPECT_EQ(ParseMediaKind(MediaKindName(MediaKind::kAudio)).value(), MediaKind::kAudio);
  EXPECT_EQ(ParseMediaKind("Video").value(), MediaKind::kVideo);
  auto bad = ParseMediaKind("image");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("audio, video"), std::string::npos);
}

TEST(IsrcTest, NormalisesValidCodes) {
  EXPECT_EQ(NormalizeIsrc("USRC17607839").value(), "USRC17607839");
  EXPECT_EQ(NormalizeIsrc("us-rc1-76-07839").value(), "USRC17607839");
  EXPECT_EQ(NormalizeIsrc("  GB-A1B-23-00001 ").value(), "GBA1B2300001");
  EXPECT_EQ(NormalizeIsrc("QZ9XY2412345").value(), "QZ9XY2412345");
  EXPECT_EQ(NormalizeIsrc("").value(), "");
  EXPECT_EQ(NormalizeIsrc("   ").value(), "");
}

TEST(IsrcTest, RejectsMalformedCodesSayingWhy) {
  struct Case {
    const char* isrc;
    const char* reason;
  };
  const Case cases[] = {
      {"USRC1760783", "has 11 characters"},
      {"USRC176078391", "has 13 characters"},
      {"-", "has 0 characters"},
      {"U1RC17607839", "country code \"U1\""},
      {"US-R_1-76-07839", "registrant code \"R_1\""},
      {"USRC1760783X", "7 digits"},
      {"USRC1A607839", "7 digits"},
      {"USRC 17607839", "has 13 characters"},
  };
  for (const Case& c : cases) {
    auto result = NormalizeIsrc(c.isrc);
    ASSERT_FALSE(result) << c.isrc;
    EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument);
    const std::string& message = result.error().message();
    EXPECT_NE(message.find(std::string("\"") + c.isrc + "\""), std::string::npos) << message;
    EXPECT_NE(message.find(c.reason), std::string::npos) << message;
    EXPECT_NE(message.find("e.g. USRC17607839"), std::string::npos) << message;
  }
}

TEST(Sha256HexTest, NormalisesToLowercaseAndChecksLength) {
  const std::string upper(64, 'A');
  EXPECT_EQ(NormalizeSha256(upper).value(), std::string(64, 'a'));
  EXPECT_FALSE(NormalizeSha256(std::string(63, 'a')));
  EXPECT_FALSE(NormalizeSha256(std::string(65, 'a')));
  EXPECT_FALSE(NormalizeSha256(std::string(63, 'a') + "g"));
  EXPECT_FALSE(NormalizeSha256(""));
}

}  // namespace
}  // namespace earshot::store
