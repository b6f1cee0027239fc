// Strict compact-JWS decoding (playback/jwt.h): base64url, structure, JSON
// objects without duplicate names, the header's alg/typ/kid/crit, size cap.
#include "playback/jwt.h"

#include <gtest/gtest.h>

#include <string>

#include "token_minter.h"

namespace earshot::playback {
namespace {

using testing::B64Url;

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// A token with a well-formed (but meaningless) signature part.
std::string Unsigned(std::string_view header, std::string_view payload) {
  return B64Url(header) + "." + B64Url(payload) + "." + B64Url(std::string(96, 'x'));
}

constexpr std::string_view kHeader = R"({"alg":"ES384","typ":"JWT"})";
constexpr std::string_view kPayload = R"({"aws:channel-arn":"arn:x","exp":1800000000})";

void ExpectMalformed(std::string_view token, std::string_view says) {
  auto jwt = DecodeJwt(token);
  ASSERT_FALSE(jwt) << token;
  EXPECT_EQ(jwt.error().code(), ErrorCode::kInvalidArgument) << jwt.error().message();
  EXPECT_TRUE(Contains(jwt.error().message(), says)) << jwt.error().message();
}

TEST(Base64UrlTest, RoundTripsEveryLengthAndRefusesNonCanonicalText) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    auto decoded = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(decoded) << n;
    EXPECT_EQ(*decoded, bytes);
    EXPECT_EQ(Base64UrlEncode(bytes), B64Url(bytes));  // the independent encoder agrees
    bytes.push_back(static_cast<char>(n * 37 + 250));
  }
  EXPECT_EQ(*Base64UrlDecode("-_8"), std::string("\xfb\xff"));
  EXPECT_FALSE(Base64UrlDecode("QQ=="));  // padding
  EXPECT_TRUE(Contains(Base64UrlDecode("QQ==").error().message(), "padding"));
  EXPECT_FALSE(Base64UrlDecode("a+b/"));   // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("QU FB"));  // stray space
  EXPECT_FALSE(Base64UrlDecode("QUFBQ"));  // length % 4 == 1
  EXPECT_TRUE(Base64UrlDecode("QQ"));      // "A"
  EXPECT_FALSE(Base64UrlDecode("QR"));     // "A" with non-zero unused bits
}

TEST(JwtTest, DecodesAValidToken) {
  const std::string token = Unsigned(R"({"alg":"ES384","typ":"JWT","kid":"k1"})", kPayload);
  auto jwt = DecodeJwt(token);
  ASSERT_TRUE(jwt) << jwt.error().ToString();
  EXPECT_EQ(jwt->kid, "k1");
  EXPECT_EQ(jwt->payload["exp"], 1800000000);
  EXPECT_EQ(jwt->signature, std::string(96, 'x'));
  EXPECT_EQ(token.substr(0, jwt->signing_input_size),
            B64Url(R"({"alg":"ES384","typ":"JWT","kid":"k1"})") + "." + B64Url(kPayload));
  // typ may be absent.
  EXPECT_TRUE(DecodeJwt(Unsigned(R"({"alg":"ES384"})", kPayload)));
}

TEST(JwtTest, RefusesEveryOtherAlgorithm) {
  for (std::string_view header :
       {R"({"alg":"none"})", R"({"alg":"HS384","typ":"JWT"})", R"({"alg":"HS256"})",
        R"({"alg":"RS256"})", R"({"alg":"ES256"})", R"({"alg":"ES512"})", R"({"alg":"PS384"})",
        R"({"alg":"es384"})", R"({"alg":"ES384 "})", R"({"alg":null})", R"({"alg":["ES384"]})",
        R"({"typ":"JWT"})"}) {
    auto jwt = DecodeJwt(Unsigned(header, kPayload));
    ASSERT_FALSE(jwt) << header;
    EXPECT_EQ(jwt.error().code(), ErrorCode::kUnsupported) << header;
    EXPECT_TRUE(Contains(jwt.error().message(), "ES384")) << jwt.error().message();
  }
  // An unsigned "alg":"none" token with an empty signature part is malformed before that.
  ExpectMalformed(B64Url(R"({"alg":"none"})") + "." + B64Url(kPayload) + ".", "empty");
}

TEST(JwtTest, RefusesBrokenStructureAndEncoding) {
  const std::string good = Unsigned(kHeader, kPayload);
  ExpectMalformed("", "three");
  ExpectMalformed("abc", "three");
  ExpectMalformed("a.b", "three");
  ExpectMalformed(good + ".x", "three");
  ExpectMalformed("." + B64Url(kPayload) + ".AAAA", "header part is empty");
  ExpectMalformed(B64Url(kHeader) + "==." + B64Url(kPayload) + ".AAAA", "padding");
  ExpectMalformed(B64Url(kHeader) + "." + B64Url(kPayload) + "+/.AAAA", "alphabet");
  ExpectMalformed(B64Url(kHeader) + " ." + B64Url(kPayload) + ".AAAA", "alphabet");
  ExpectMalformed(good + "\n", "alphabet");
  ExpectMalformed(Unsigned("not json", kPayload), "not valid UTF-8 JSON");
  ExpectMalformed(Unsigned(kHeader, "{\"exp\":1"), "payload is not valid");
  ExpectMalformed(Unsigned(kHeader, "[1,2]"), "must be a JSON object");
  ExpectMalformed(Unsigned(kHeader, "\"text\""), "must be a JSON object");
  ExpectMalformed(Unsigned(kHeader, "{\"a\":\"\xff\xfe\"}"), "UTF-8");
  ExpectMalformed(Unsigned(R"({"alg":"ES384","typ":"JWS"})", kPayload), "typ");
  ExpectMalformed(Unsigned(R"({"alg":"ES384","kid":7})", kPayload), "kid");
  ExpectMalformed(Unsigned(R"({"alg":"ES384","kid":""})", kPayload), "kid");
  ExpectMalformed(Unsigned(R"({"alg":"ES384","crit":["b64"],"b64":false})", kPayload), "crit");
  std::string deep(40, '[');
  ExpectMalformed(Unsigned(kHeader, "{\"x\":" + deep + std::string(40, ']') + "}"), "nested");
}

TEST(JwtTest, RefusesDuplicateMemberNamesAtAnyLevel) {
  ExpectMalformed(Unsigned(kHeader, R"({"aws:channel-arn":"a","exp":1800000000,"exp":1})"),
                  "\"exp\" more than once");
  ExpectMalformed(Unsigned(R"({"alg":"ES384","alg":"none"})", kPayload), "\"alg\" more than once");
  ExpectMalformed(Unsigned(R"({"alg":"none","alg":"ES384"})", kPayload), "\"alg\" more than once");
  ExpectMalformed(Unsigned(kHeader, R"({"x":{"a":1,"a":2},"exp":1})"), "\"a\" more than once");
  ExpectMalformed(Unsigned(kHeader, R"({"x":[{"a":1,"a":2}]})"), "\"a\" more than once");
  // The same name in sibling objects is not a duplicate.
  EXPECT_TRUE(DecodeJwt(Unsigned(kHeader, R"({"x":{"a":1},"y":{"a":2},"a":[{"a":3}]})")));
}

TEST(JwtTest, RefusesOversizedTokens) {
  const std::string padding(kMaxJwtBytes, 'p');
  const std::string big = Unsigned(kHeader, R"({"pad":")" + padding + "\"}");
  ASSERT_GT(big.size(), kMaxJwtBytes);
  ExpectMalformed(big, "at most 8192");
  // Just under the cap decodes.
  const size_t room = kMaxJwtBytes - Unsigned(kHeader, R"({"pad":""})").size();
  const std::string fits =
      Unsigned(kHeader, R"({"pad":")" + std::string(room * 3 / 4 - 2, 'p') + "\"}");
  ASSERT_LE(fits.size(), kMaxJwtBytes);
  EXPECT_TRUE(DecodeJwt(fits));
}

}  // namespace
}  // namespace earshot::playback
