// Playback restriction policies (control/restriction_policy.h): country and
// origin syntax, validation messages, the IVS-named JSON and its round trip.
#include "control/restriction_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace earshot::control {
namespace {

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(CountryCodeTest, TwoUppercaseLetters) {
  for (std::string_view ok : {"FR", "BE", "US", "ZZ", "AA"}) EXPECT_TRUE(IsCountryCode(ok)) << ok;
  for (std::string_view bad : {"", "F", "fr", "Fr", "FRA", "F1", "12", " FR", "F-", "É"}) {
    EXPECT_FALSE(IsCountryCode(bad)) << bad;
  }
}

TEST(OriginPatternTest, AcceptsWhatBrowsersSendAndWildcards) {
  for (std::string_view ok : {
           "*",
           "https://example.com",
           "http://example.com",
           "https://www.example.co.uk",
           "https://example.com:8443",
           "https://*.example.com",
           "https://*.example.com:8443",
           "https://*",
           "http://localhost",
           "http://localhost:3000",
           "http://127.0.0.1:8080",
           "http://[::1]",
           "http://[::1]:8080",
           "http://[2001:db8::ffff:192.0.2.1]:443",
           "https://xn--bcher-kva.example",
           "https://a-b.example.com",
           "chrome-extension://abcdefghijklmnop",
           "app+x.y://host",
           "https://example.com:65535",
       }) {
    EXPECT_TRUE(IsOriginPattern(ok)) << ok;
  }
}

TEST(OriginPatternTest, RefusesPathsCaseAndMalformedHosts) {
  const std::string long_label(64, 'a');
  for (std::string_view bad : {
           "",
           "**",
           "example.com",
           "//example.com",
           "https://",
           "https:/example.com",
           "https://example.com/",
           "https://example.com/path",
           "https://example.com?x=1",
           "HTTPS://example.com",
           "https://Example.com",
           "https://example.com.",
           "https://.example.com",
           "https://a..example.com",
           "https://-a.example.com",
           "https://a-.example.com",
           "https://exa mple.com",
           "https://exa_mple.com",
           "https://user@example.com",
           "https://*.*.example.com",
           "https://a.*.example.com",
           "https://*example.com",
           "https://example.com:",
           "https://example.com:0",
           "https://example.com:08443",
           "https://example.com:65536",
           "https://example.com:99999",
           "https://example.com:port",
           "https://example.com:-1",
           "http://[::1",
           "http://[]",
           "http://[localhost]",
           "http://[::1]:",
           "http://[::1]x",
           "1http://example.com",
       }) {
    EXPECT_FALSE(IsOriginPattern(bad)) << bad;
  }
  EXPECT_FALSE(IsOriginPattern("https://" + long_label + ".example.com"));
  EXPECT_TRUE(IsOriginPattern("https://" + long_label.substr(1) + ".example.com"));
  std::string too_long = "https://";
  while (too_long.size() <= kMaxOriginLength) too_long += "abcdefghi.";
  too_long += "com";
  EXPECT_FALSE(IsOriginPattern(too_long));
}

TEST(RestrictionPolicyTest, EmptyPolicyAllowsEverythingAndIsValid) {
  RestrictionPolicy policy;
  EXPECT_TRUE(policy.allowed_countries.empty());
  EXPECT_TRUE(policy.allowed_origins.empty());
  EXPECT_FALSE(policy.strict_origin_enforcement);
  EXPECT_TRUE(ValidateRestrictionPolicy(policy).has_value());
}

TEST(RestrictionPolicyTest, ValidationNamesTheFirstBadEntry) {
  RestrictionPolicy policy;
  policy.allowed_countries = {"FR", "be", "XX1"};
  auto bad = ValidateRestrictionPolicy(policy);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.error().message(), "allowedCountries[1] \"be\"")) << bad.error().message();

  policy.allowed_countries = {"FR"};
  policy.allowed_origins = {"https://example.com", "https://example.com/"};
  bad = ValidateRestrictionPolicy(policy);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.error().message(), "allowedOrigins[1] \"https://example.com/\""))
      << bad.error().message();

  policy.allowed_origins = {"https://example.com", "*"};
  EXPECT_TRUE(ValidateRestrictionPolicy(policy).has_value());
}

TEST(RestrictionPolicyTest, ListsHaveLimits) {
  RestrictionPolicy policy;
  for (size_t i = 0; i < kMaxAllowedCountries; ++i) {
    policy.allowed_countries.push_back(
        std::string{static_cast<char>('A' + i / 26 % 26), static_cast<char>('A' + i % 26)});
  }
  EXPECT_TRUE(ValidateRestrictionPolicy(policy).has_value());
  policy.allowed_countries.push_back("FR");
  auto bad = ValidateRestrictionPolicy(policy);
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(Contains(bad.error().message(), "at most 300")) << bad.error().message();

  policy.allowed_countries.clear();
  for (size_t i = 0; i < kMaxAllowedOrigins; ++i) {
    policy.allowed_origins.push_back("https://site" + std::to_string(i) + ".example");
  }
  EXPECT_TRUE(ValidateRestrictionPolicy(policy).has_value());
  policy.allowed_origins.push_back("https://one-more.example");
  bad = ValidateRestrictionPolicy(policy);
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(Contains(bad.error().message(), "at most 100")) << bad.error().message();
}

TEST(RestrictionPolicyJsonTest, UsesTheIvsNamesAndAlwaysAllThreeMembers) {
  EXPECT_EQ(RestrictionPolicyToJson({}),
            (nlohmann::json{{"allowedCountries", nlohmann::json::array()},
                            {"allowedOrigins", nlohmann::json::array()},
                            {"enableStrictOriginEnforcement", false}}));
  RestrictionPolicy policy{{"FR", "BE"}, {"https://example.com", "https://*.example.com:8443"},
                           true};
  EXPECT_EQ(RestrictionPolicyToJson(policy),
            nlohmann::json::parse(R"({"allowedCountries": ["FR", "BE"],
              "allowedOrigins": ["https://example.com", "https://*.example.com:8443"],
              "enableStrictOriginEnforcement": true})"));
}

TEST(RestrictionPolicyJsonTest, RoundTrips) {
  const std::vector<RestrictionPolicy> policies = {
      {},
      {{"FR"}, {}, false},
      {{}, {"*"}, true},
      {{"US", "CA", "MX"}, {"http://[::1]:8080", "https://a.example"}, false},
  };
  for (const RestrictionPolicy& policy : policies) {
    const nlohmann::json json = RestrictionPolicyToJson(policy);
    auto back = RestrictionPolicyFromJson(json);
    ASSERT_TRUE(back.has_value()) << json.dump() << ": " << back.error().ToString();
    EXPECT_EQ(*back, policy) << json.dump();
    // Through text too, as the API and the database carry it.
    auto reparsed = RestrictionPolicyFromJson(nlohmann::json::parse(json.dump()));
    ASSERT_TRUE(reparsed.has_value());
    EXPECT_EQ(*reparsed, policy);
  }
}

TEST(RestrictionPolicyJsonTest, NullAndOmittedMembersAreDefaults) {
  EXPECT_EQ(RestrictionPolicyFromJson(nullptr).value(), RestrictionPolicy{});
  EXPECT_EQ(RestrictionPolicyFromJson(nlohmann::json::object()).value(), RestrictionPolicy{});
  auto partial = RestrictionPolicyFromJson(nlohmann::json::parse(
      R"({"allowedCountries": ["FR"], "allowedOrigins": null})"));
  ASSERT_TRUE(partial.has_value()) << partial.error().ToString();
  EXPECT_EQ(partial->allowed_countries, std::vector<std::string>{"FR"});
  EXPECT_TRUE(partial->allowed_origins.empty());
  EXPECT_FALSE(partial->strict_origin_enforcement);
}

TEST(RestrictionPolicyJsonTest, RefusesWhatItCannotTrust) {
  struct Case {
    const char* json;
    const char* message_part;
  };
  for (const Case& c : std::vector<Case>{
           {R"([])", "must be a JSON object"},
           {R"("FR")", "must be a JSON object"},
           {R"(7)", "must be a JSON object"},
           // A typo must not silently allow everyone.
           {R"({"allowedCountry": ["FR"]})", "unknown member \"allowedCountry\""},
           {R"({"allowed_countries": ["FR"]})", "unknown member \"allowed_countries\""},
           {R"({"allowedCountries": "FR"})", "allowedCountries must be an array of strings"},
           {R"({"allowedCountries": ["FR", 1]})", "found 1"},
           {R"({"allowedOrigins": {"a": 1}})", "allowedOrigins must be an array of strings"},
           {R"({"allowedOrigins": [null]})", "allowedOrigins must be an array of strings"},
           {R"({"enableStrictOriginEnforcement": "yes"})", "must be true or false"},
           {R"({"enableStrictOriginEnforcement": 1})", "must be true or false"},
           {R"({"allowedCountries": ["fr"]})", "allowedCountries[0] \"fr\""},
           {R"({"allowedOrigins": ["https://example.com/"]})", "allowedOrigins[0]"},
       }) {
    auto parsed = RestrictionPolicyFromJson(nlohmann::json::parse(c.json));
    ASSERT_FALSE(parsed.has_value()) << c.json;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument) << c.json;
    EXPECT_TRUE(Contains(parsed.error().message(), c.message_part))
        << c.json << " -> " << parsed.error().message();
  }
}

}  // namespace
}  // namespace earshot::control
