// Identifier and secret shapes (control/ids.h): every generator produces what
// its validator accepts, in the documented alphabet, without repeats; the
// validators refuse near misses.
#include "control/ids.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace earshot::control {
namespace {

constexpr std::string_view kLowerAlnum = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

struct Shape {
  std::string name;
  std::function<std::string()> make;
  std::function<bool(std::string_view)> is;
  std::string_view prefix;
  size_t random_chars;
  std::string_view alphabet;
};

std::string Must(Result<std::string> r) {
  EXPECT_TRUE(r.has_value()) << r.error().ToString();
  return r.value_or("");
}

std::vector<Shape> AllShapes() {
  return {
      {"channel id", NewChannelId, IsChannelId, "ch-", 12, kLowerAlnum},
      {"stream id", NewStreamId, IsStreamId, "st-", 23, kBase62},
      {"stream key", [] { return Must(NewStreamKey()); }, IsStreamKey, "sk_", 40, kBase62},
      {"api key", [] { return Must(NewApiKey()); }, IsApiKey, "ek_", 40, kBase62},
      {"api key id", NewApiKeyId, IsApiKeyId, "ak-", 12, kLowerAlnum},
      {"subscription id", NewSubscriptionId, IsSubscriptionId, "sub-", 12, kLowerAlnum},
  };
}

TEST(IdsTest, GeneratedValuesHaveTheDocumentedShape) {
  for (const Shape& shape : AllShapes()) {
    SCOPED_TRACE(shape.name);
    for (int i = 0; i < 200; ++i) {
      const std::string value = shape.make();
      ASSERT_EQ(value.size(), shape.prefix.size() + shape.random_chars) << value;
      ASSERT_TRUE(value.starts_with(shape.prefix)) << value;
      ASSERT_EQ(value.substr(shape.prefix.size()).find_first_not_of(shape.alphabet),
                std::string::npos)
          << value;
      ASSERT_TRUE(shape.is(value)) << value;
    }
  }
}

TEST(IdsTest, GeneratedValuesDoNotRepeat) {
  for (const Shape& shape : AllShapes()) {
    SCOPED_TRACE(shape.name);
    std::set<std::string> seen;
    for (int i = 0; i < 2000; ++i) seen.insert(shape.make());
    EXPECT_EQ(seen.size(), 2000u);
  }
}

// Every symbol of the alphabet shows up: the generator draws from all of it,
// not from a subset (8000 draws, each symbol expected ~129 times for base62).
TEST(IdsTest, SecretsUseTheWholeBase62Alphabet) {
  std::set<char> used;
  for (int i = 0; i < 200; ++i) {
    const std::string key = Must(NewStreamKey());
    for (char c : key.substr(3)) used.insert(c);
  }
  EXPECT_EQ(used.size(), kBase62.size());
}

TEST(IdsTest, ChannelIdsUseOnlyLowercaseLettersAndDigits) {
  std::set<char> used;
  for (int i = 0; i < 500; ++i) {
    const std::string id = NewChannelId();
    for (char c : id.substr(3)) used.insert(c);
  }
  EXPECT_EQ(used.size(), kLowerAlnum.size());  // all 36, and nothing else (the shape test)
}

TEST(IdsTest, ValidatorsAcceptTheDocumentedExamples) {
  EXPECT_TRUE(IsChannelId("ch-4k9x0q2m7ahd"));
  EXPECT_TRUE(IsStreamId("st-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8O"));
  EXPECT_TRUE(IsStreamKey("sk_" + std::string(40, 'a')));
  EXPECT_TRUE(IsApiKey("ek_" + std::string(20, 'Z') + std::string(20, '9')));
  EXPECT_TRUE(IsApiKeyId("ak-000000000000"));
  EXPECT_TRUE(IsSubscriptionId("sub-abcdefghijkl"));
}

TEST(IdsTest, ValidatorsRefuseNearMisses) {
  // Channel ids name folders and nginx applications: lowercase only.
  EXPECT_FALSE(IsChannelId(""));
  EXPECT_FALSE(IsChannelId("ch-"));
  EXPECT_FALSE(IsChannelId("ch-4k9x0q2m7ah"));     // 11 chars
  EXPECT_FALSE(IsChannelId("ch-4k9x0q2m7ahdd"));   // 13 chars
  EXPECT_FALSE(IsChannelId("ch-4K9x0q2m7ahd"));    // uppercase
  EXPECT_FALSE(IsChannelId("ch-4k9x0q2m7a-d"));    // '-' in the random part
  EXPECT_FALSE(IsChannelId("ch_4k9x0q2m7ahd"));    // wrong separator
  EXPECT_FALSE(IsChannelId("CH-4k9x0q2m7ahd"));
  EXPECT_FALSE(IsChannelId("ch-4k9x0q2m7ah/"));
  EXPECT_FALSE(IsChannelId("../4k9x0q2m7ahd"));
  EXPECT_FALSE(IsChannelId(std::string_view("ch-4k9x0q2m7a\0d", 15)));

  EXPECT_FALSE(IsStreamId("st-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8"));    // 22
  EXPECT_FALSE(IsStreamId("st-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8O9"));  // 24
  EXPECT_FALSE(IsStreamId("st-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8_"));
  EXPECT_FALSE(IsStreamId("ch-1Ab2Cd3Ef4Gh5Ij6Kl7Mn8O"));

  const std::string body(40, 'x');
  EXPECT_FALSE(IsStreamKey("ek_" + body));  // an API key is not a stream key
  EXPECT_FALSE(IsApiKey("sk_" + body));     // and the reverse
  EXPECT_FALSE(IsStreamKey("sk_" + body.substr(1)));
  EXPECT_FALSE(IsStreamKey("sk_" + body + "x"));
  EXPECT_FALSE(IsStreamKey("sk_" + body.substr(1) + "+"));
  EXPECT_FALSE(IsStreamKey("sk_" + body.substr(1) + "-"));
  EXPECT_FALSE(IsStreamKey(""));

  EXPECT_FALSE(IsApiKeyId("ak-00000000000"));
  EXPECT_FALSE(IsApiKeyId("ak-00000000000A"));
  EXPECT_FALSE(IsSubscriptionId("sub-ABCDEFGHIJKL"));
  EXPECT_FALSE(IsSubscriptionId("sb-abcdefghijkl"));
}

TEST(IdsTest, ValidatorsDoNotConfuseKinds) {
  const std::string channel = NewChannelId();
  const std::string stream = NewStreamId();
  const std::string key = Must(NewStreamKey());
  const std::string api_key = Must(NewApiKey());
  const std::string api_key_id = NewApiKeyId();
  const std::string subscription = NewSubscriptionId();
  const std::vector<std::function<bool(std::string_view)>> validators = {
      IsChannelId, IsStreamId, IsStreamKey, IsApiKey, IsApiKeyId, IsSubscriptionId};
  const std::vector<std::string> values = {channel, stream, key, api_key, api_key_id, subscription};
  for (size_t v = 0; v < validators.size(); ++v) {
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(validators[v](values[i]), v == i) << "validator " << v << " on " << values[i];
    }
  }
}

}  // namespace
}  // namespace earshot::control
