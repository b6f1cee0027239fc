#include "delivery/target_spec.h"

#include <cstdlib>

#include <gtest/gtest.h>

namespace earshot::delivery {
namespace {

TEST(TargetSpecTest, ParsesKindAndOptions) {
  auto spec = ParseTargetSpec("s3:endpoint=http://127.0.0.1:4569,bucket=b,prefix=");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->kind, "s3");
  EXPECT_EQ(spec->options.at("endpoint"), "http://127.0.0.1:4569");
  EXPECT_EQ(spec->options.at("bucket"), "b");
  EXPECT_EQ(spec->options.at("prefix"), "");
  EXPECT_EQ(OptionOr(*spec, "region", "us-east-1"), "us-east-1");
}

TEST(TargetSpecTest, KindAloneHasNoOptions) {
  auto spec = ParseTargetSpec("webhook");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->kind, "webhook");
  EXPECT_TRUE(spec->options.empty());
}

TEST(TargetSpecTest, RejectsMalformedSpecsWithTheReason) {
  EXPECT_EQ(ParseTargetSpec(":a=b").error().code(), ErrorCode::kInvalidArgument);
  auto no_eq = ParseTargetSpec("s3:bucket");
  ASSERT_FALSE(no_eq);
  EXPECT_NE(no_eq.error().message().find("'bucket' is not KEY=VALUE"), std::string::npos);
  auto twice = ParseTargetSpec("s3:bucket=a,bucket=b");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message().find("given twice"), std::string::npos);
}

TEST(TargetSpecTest, UnknownAndMissingOptionsAreNamed) {
  auto spec = ParseTargetSpec("webhook:ulr=http://x");
  ASSERT_TRUE(spec);
  auto known = CheckKnownOptions(*spec, {"url", "secret_env"});
  ASSERT_FALSE(known);
  EXPECT_NE(known.error().message().find("unknown option 'ulr' (known: url, secret_env)"),
            std::string::npos);
  auto url = RequiredOption(*spec, "url");
  ASSERT_FALSE(url);
  EXPECT_NE(url.error().message().find("missing url="), std::string::npos);
}

TEST(TargetSpecTest, SecretsComeFromTheNamedEnvironmentVariable) {
  auto spec = ParseTargetSpec("webhook:url=http://x,secret_env=EARSHOT_TEST_SECRET_A");
  ASSERT_TRUE(spec);
  ::unsetenv("EARSHOT_TEST_SECRET_A");
  auto missing = SecretOption(*spec, "secret", "EARSHOT_WEBHOOK_SECRET");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("EARSHOT_TEST_SECRET_A"), std::string::npos);
  ::setenv("EARSHOT_TEST_SECRET_A", "s3cr3t", 1);
  auto secret = SecretOption(*spec, "secret", "EARSHOT_WEBHOOK_SECRET");
  ASSERT_TRUE(secret);
  EXPECT_EQ(*secret, "s3cr3t");
  ::unsetenv("EARSHOT_TEST_SECRET_A");
}

}  // namespace
}  // namespace earshot::delivery
