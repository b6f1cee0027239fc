#include "index/manifest.h"

#include <gtest/gtest.h>

#include <string>

#include "index/merge_policy.h"

namespace earshot::index {
namespace {

Manifest Sample() {
  return Manifest{
      .algorithm_version = 4,
      .generation = 17,
      .next_segment = 43,
      .segments = {{.file = SegmentFileName(41), .size = 1048576, .removed = {3, 17, 99}},
                   {.file = SegmentFileName(42), .size = 2048, .removed = {}}}};
}

TEST(ManifestTest, RoundTrip) {
  const std::string text = EncodeManifest(Sample());
  EXPECT_TRUE(text.starts_with("earshot-index-manifest 1\nalgorithm 4\ngeneration 17\n"));
  EXPECT_NE(text.find("segment seg-0000000000000029.eseg 1048576 3,17,99\n"), std::string::npos);
  EXPECT_NE(text.find("segment seg-000000000000002a.eseg 2048 -\n"), std::string::npos);
  Result<Manifest> decoded = DecodeManifest(text);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(*decoded, Sample());
  Manifest empty{.algorithm_version = 1, .generation = 1, .next_segment = 1, .segments = {}};
  EXPECT_EQ(*DecodeManifest(EncodeManifest(empty)), empty);
}

TEST(ManifestTest, EveryDamageIsAnError) {
  const std::string text = EncodeManifest(Sample());
  for (size_t at = 0; at < text.size(); ++at) {
    std::string bad = text;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    EXPECT_FALSE(DecodeManifest(bad).has_value()) << "byte " << at;
  }
  for (size_t length = 0; length < text.size(); ++length) {
    Result<Manifest> cut = DecodeManifest(text.substr(0, length));
    ASSERT_FALSE(cut.has_value()) << "length " << length;
    EXPECT_EQ(cut.error().code(), ErrorCode::kCorruptData);
  }
}

TEST(ManifestTest, OtherFormatVersionIsVersionMismatch) {
  std::string text = EncodeManifest(Sample());
  text.replace(0, 24, "earshot-index-manifest 2");
  Result<Manifest> decoded = DecodeManifest(text);
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code(), ErrorCode::kVersionMismatch);
}

TEST(ManifestTest, SegmentFileNames) {
  EXPECT_EQ(SegmentFileName(42), "seg-000000000000002a.eseg");
  EXPECT_EQ(ParseSegmentFileName("seg-000000000000002a.eseg"), 42u);
  EXPECT_FALSE(ParseSegmentFileName("seg-000000000000002A.eseg"));
  EXPECT_FALSE(ParseSegmentFileName("seg-000000000000002a.eseg.tmp"));
  EXPECT_FALSE(ParseSegmentFileName("../../etc/passwd"));
  EXPECT_FALSE(ParseSegmentFileName("MANIFEST"));
}

TEST(MergePolicyTest, NothingToDoBelowTheTrigger) {
  const SegmentSummary s[] = {{.bytes = 10, .postings = 5}, {.bytes = 20, .postings = 5}};
  EXPECT_TRUE(PickMerge(s, {.max_segments = 2}).empty());
  EXPECT_TRUE(PickMerge({}, {}).empty());
}

TEST(MergePolicyTest, MergesTheSmallestWhenAboveTheTrigger) {
  const SegmentSummary s[] = {
      {.bytes = 1000}, {.bytes = 10}, {.bytes = 30}, {.bytes = 20}, {.bytes = 5000}};
  EXPECT_EQ(PickMerge(s, {.max_segments = 4, .merge_factor = 3}), (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(PickMerge(s, {.max_segments = 4, .merge_factor = 1}), (std::vector<size_t>{1, 3}));
  EXPECT_EQ(PickMerge(s, {.max_segments = 4, .merge_factor = 9}).size(), 5u);
}

TEST(MergePolicyTest, RewritesTheSegmentWithTheMostRemovedPostings) {
  const SegmentSummary s[] = {{.bytes = 10, .postings = 100, .removed_postings = 31},
                              {.bytes = 10, .postings = 100, .removed_postings = 90},
                              {.bytes = 10, .postings = 100, .removed_postings = 10}};
  EXPECT_EQ(PickMerge(s, {.max_segments = 8, .max_removed_fraction = 0.3}),
            (std::vector<size_t>{1}));
  EXPECT_TRUE(PickMerge(s, {.max_segments = 8, .max_removed_fraction = 0.95}).empty());
}

}  // namespace
}  // namespace earshot::index
