// Origin matching (playback/origin_match.h).
#include "playback/origin_match.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace earshot::playback {
namespace {

TEST(OriginMatchTest, ExactOriginsCompareSchemeAndHostCaseInsensitivelyPortExactly) {
  EXPECT_TRUE(OriginMatches("https://example.com", "https://example.com"));
  EXPECT_TRUE(OriginMatches("HTTPS://Example.COM", "https://example.com"));
  EXPECT_TRUE(OriginMatches("https://example.com", "https://EXAMPLE.com"));
  EXPECT_FALSE(OriginMatches("http://example.com", "https://example.com"));
  EXPECT_FALSE(OriginMatches("https://example.com.evil.net", "https://example.com"));
  EXPECT_FALSE(OriginMatches("https://www.example.com", "https://example.com"));
  EXPECT_TRUE(OriginMatches("https://example.com:8443", "https://example.com:8443"));
  EXPECT_FALSE(OriginMatches("https://example.com:8443", "https://example.com"));
  EXPECT_FALSE(OriginMatches("https://example.com", "https://example.com:8443"));
  EXPECT_FALSE(OriginMatches("https://example.com:8444", "https://example.com:8443"));
  // Default ports are the same as none.
  EXPECT_TRUE(OriginMatches("https://example.com:443", "https://example.com"));
  EXPECT_TRUE(OriginMatches("http://example.com", "http://example.com:80"));
  EXPECT_FALSE(OriginMatches("http://example.com:443", "http://example.com"));
  EXPECT_TRUE(OriginMatches("http://[::1]:8080", "http://[::1]:8080"));
  EXPECT_FALSE(OriginMatches("http://[::1]:8081", "http://[::1]:8080"));
}

TEST(OriginMatchTest, WildcardLabelMatchesOneOrMoreLabels) {
  EXPECT_TRUE(OriginMatches("https://a.example.com", "https://*.example.com"));
  EXPECT_TRUE(OriginMatches("https://a.b.example.com", "https://*.example.com"));
  EXPECT_TRUE(OriginMatches("https://A.Example.com", "https://*.example.com"));
  EXPECT_FALSE(OriginMatches("https://example.com", "https://*.example.com"));
  EXPECT_FALSE(OriginMatches("https://badexample.com", "https://*.example.com"));
  EXPECT_FALSE(OriginMatches("https://.example.com", "https://*.example.com"));
  EXPECT_FALSE(OriginMatches("https://a..example.com", "https://*.example.com"));
  EXPECT_FALSE(OriginMatches("http://a.example.com", "https://*.example.com"));
  EXPECT_FALSE(OriginMatches("https://a.example.com:8443", "https://*.example.com"));
  EXPECT_TRUE(OriginMatches("https://a.example.com:8443", "https://*.example.com:8443"));
  EXPECT_TRUE(OriginMatches("https://anything.net", "https://*"));
  EXPECT_TRUE(OriginMatches("https://[::1]", "https://*"));
  EXPECT_FALSE(OriginMatches("http://anything.net", "https://*"));
  EXPECT_FALSE(OriginMatches("https://anything.net:8443", "https://*"));
  EXPECT_TRUE(OriginMatches("null", "*"));
  EXPECT_TRUE(OriginMatches("https://x.y", "*"));
}

TEST(OriginMatchTest, MalformedOriginsMatchNothingButStar) {
  for (std::string_view bad :
       {"", "null", "example.com", "https://", "https://example.com/", "https://example.com/a",
        "https://user@example.com", "https://example.com?x", "https://exa mple.com",
        "https://*.example.com", "https://example.com:", "https://example.com:8x",
        "https://example.com\r\n"}) {
    EXPECT_FALSE(OriginMatches(bad, "https://example.com")) << bad;
    EXPECT_FALSE(OriginMatches(bad, "https://*.example.com")) << bad;
    EXPECT_TRUE(OriginMatches(bad, "*")) << bad;
  }
}

TEST(OriginMatchTest, AllowedWhenAnyPatternMatchesOrTheListIsEmpty) {
  const std::vector<std::string> patterns = {"https://example.com", "https://*.example.org"};
  EXPECT_TRUE(OriginAllowed("https://example.com", patterns));
  EXPECT_TRUE(OriginAllowed("https://www.example.org", patterns));
  EXPECT_FALSE(OriginAllowed("https://example.org", patterns));
  EXPECT_TRUE(OriginAllowed("https://whatever.net", {}));
}

}  // namespace
}  // namespace earshot::playback
