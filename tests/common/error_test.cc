#include "common/error.h"

#include <gtest/gtest.h>

#include <set>

namespace earshot {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return MakeError(ErrorCode::kInvalidArgument, "value must be positive, got " + std::to_string(v));
  return v;
}

TEST(ErrorTest, WrapPrependsContextAndKeepsCode) {
  Error e(ErrorCode::kCorruptData, "bad magic");
  Error w = e.Wrap("segment 3").Wrap("opening index /tmp/x");
  EXPECT_EQ(w.code(), ErrorCode::kCorruptData);
  EXPECT_EQ(w.message(), "opening index /tmp/x: segment 3: bad magic");
  EXPECT_EQ(w.ToString(), "corrupt_data: opening index /tmp/x: segment 3: bad magic");
  EXPECT_EQ(e.message(), "bad magic");  // the const& overload leaves the original alone
}

TEST(ErrorTest, ResultCarriesValueOrError) {
  auto ok = ParsePositive(4);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 4);
  auto bad = ParsePositive(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "value must be positive, got -1");
}

TEST(ErrorTest, EveryCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    names.insert(ErrorCodeName(static_cast<ErrorCode>(c)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(ErrorCode::kInternal) + 1);
  EXPECT_EQ(names.count("unknown"), 0u);
}

}  // namespace
}  // namespace earshot
