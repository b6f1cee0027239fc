#include "recognition/memory_index.h"

#include <gtest/gtest.h>

#include <vector>

namespace earshot::recognition {
namespace {

TrackFingerprint Track(TrackId id, std::vector<HashEntry> hashes, std::vector<uint8_t> side = {}) {
  return {.track = id,
          .frame_count = id * 10,
          .hashes = std::move(hashes),
          .side_data = std::move(side)};
}

TEST(MemoryIndexTest, EmptyIndex) {
  MemoryIndex index;
  std::vector<Posting> out;
  index.Lookup(1, out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(index.HasTrack(1));
  EXPECT_EQ(index.FrameCount(1), 0u);
  EXPECT_TRUE(index.SideData(1).empty());
  EXPECT_EQ(index.TrackCount(), 0u);
  EXPECT_EQ(index.PostingCount(), 0u);
  EXPECT_TRUE(index.Keys().empty());
}

TEST(MemoryIndexTest, LookupIsSortedByTrackThenTimeAndAppends) {
  MemoryIndex index;
  ASSERT_TRUE(index.Add(Track(5, {{1, 30}, {1, 10}, {2, 4}, {1, 10}})).has_value());
  ASSERT_TRUE(index.Add(Track(3, {{1, 50}})).has_value());
  ASSERT_TRUE(index.Add(Track(9, {{1, 0}})).has_value());
  std::vector<Posting> out = {{77, 77}};
  index.Lookup(1, out);
  EXPECT_EQ(out, (std::vector<Posting>{{77, 77}, {3, 50}, {5, 10}, {5, 10}, {5, 30}, {9, 0}}));
  EXPECT_EQ(index.PostingCount(), 6u);
  EXPECT_EQ(index.TrackCount(), 3u);
  EXPECT_EQ(index.Keys(), (std::vector<HashKey>{1, 2}));
  EXPECT_EQ(index.Tracks(), (std::vector<TrackId>{3, 5, 9}));
}

TEST(MemoryIndexTest, AddTwiceIsAlreadyExists) {
  MemoryIndex index;
  ASSERT_TRUE(index.Add(Track(5, {{1, 30}})).has_value());
  Status again = index.Add(Track(5, {{2, 30}}));
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  std::vector<Posting> out;
  index.Lookup(2, out);
  EXPECT_TRUE(out.empty());
}

TEST(MemoryIndexTest, RemoveDropsPostingsAndSideData) {
  MemoryIndex index;
  ASSERT_TRUE(index.Add(Track(5, {{1, 30}, {2, 1}}, {1, 2, 3})).has_value());
  ASSERT_TRUE(index.Add(Track(6, {{1, 31}})).has_value());
  EXPECT_EQ(index.SideData(5).size(), 3u);
  EXPECT_EQ(index.FrameCount(5), 50u);
  ASSERT_TRUE(index.Remove(5).has_value());
  EXPECT_FALSE(index.HasTrack(5));
  EXPECT_TRUE(index.SideData(5).empty());
  EXPECT_EQ(index.FrameCount(5), 0u);
  std::vector<Posting> out;
  index.Lookup(1, out);
  EXPECT_EQ(out, (std::vector<Posting>{{6, 31}}));
  out.clear();
  index.Lookup(2, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(index.Keys(), (std::vector<HashKey>{1}));
  EXPECT_EQ(index.PostingCount(), 1u);
  Status missing = index.Remove(5);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  // A removed id may be added again.
  ASSERT_TRUE(index.Add(Track(5, {{2, 9}})).has_value());
  out.clear();
  index.Lookup(2, out);
  EXPECT_EQ(out, (std::vector<Posting>{{5, 9}}));
}

}  // namespace
}  // namespace earshot::recognition
