#include "video/hash_index.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace earshot::video {
namespace {

Hash256 RandomHash(std::mt19937_64& rng) { return {rng(), rng(), rng(), rng()}; }

// `base` with `bits` distinct random bits flipped.
Hash256 Flip(Hash256 base, int bits, std::mt19937_64& rng) {
  std::vector<int> positions(256);
  for (int i = 0; i < 256; ++i) positions[static_cast<size_t>(i)] = i;
  std::shuffle(positions.begin(), positions.end(), rng);
  for (int i = 0; i < bits; ++i) {
    const int b = positions[static_cast<size_t>(i)];
    base[static_cast<size_t>(b / 64)] ^= uint64_t{1} << (b % 64);
  }
  return base;
}

// An index of `n` random entries, plus clusters of near copies of `queries`.
struct Fixture {
  HashIndex index;
  std::vector<Hash256> queries;
};
Fixture MakeFixture(size_t n, int n_queries, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Fixture f;
  for (size_t i = 0; i < n; ++i) {
    f.index.Add(static_cast<uint32_t>(i % 50), static_cast<int64_t>(i) * 40, RandomHash(rng),
                static_cast<ViewKind>(i % kViewKindCount));
  }
  for (int q = 0; q < n_queries; ++q) {
    const Hash256 center = RandomHash(rng);
    f.queries.push_back(center);
    for (int d : {0, 3, 12, 16, 17, 31, 32, 40, 47, 48, 60, 64, 70}) {
      f.index.Add(1000 + static_cast<uint32_t>(q), d, Flip(center, d, rng));
    }
  }
  f.index.Build();
  return f;
}

void ExpectSameHits(const std::vector<IndexHit>& a, const std::vector<IndexHit>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].entry, b[i].entry);
    EXPECT_EQ(a[i].distance, b[i].distance);
    EXPECT_EQ(a[i].ref_id, b[i].ref_id);
    EXPECT_EQ(a[i].time_ms, b[i].time_ms);
    EXPECT_EQ(a[i].view, b[i].view);
  }
}

TEST(HashIndexTest, ExactSearchEqualsBruteForce) {
  Fixture f = MakeFixture(20000, 20, 7);
  std::mt19937_64 rng(99);
  size_t total_hits = 0;
  for (int radius : {0, 10, 16, 31, 32, 47, 64, 70}) {
    for (const Hash256& q : f.queries) {
      const auto fast = f.index.Search(q, {radius, -1});
      const auto slow = f.index.BruteForceSearch(q, radius);
      ExpectSameHits(fast, slow);
      total_hits += fast.size();
    }
    // Unplanted queries: random hashes have no neighbours this close.
    const Hash256 random = RandomHash(rng);
    ExpectSameHits(f.index.Search(random, {radius, -1}), f.index.BruteForceSearch(random, radius));
  }
  // The planted clusters were found (13 per query at radius 70, fewer below).
  EXPECT_GT(total_hits, 20u * 40u);
}

TEST(HashIndexTest, HitsAreOrderedAndCarryEntryData) {
  HashIndex index;
  std::mt19937_64 rng(3);
  const Hash256 q = RandomHash(rng);
  index.Add(7, 1500, Flip(q, 20, rng), ViewKind::kCropCenter);
  index.Add(8, 2500, Flip(q, 5, rng), ViewKind::kFull);
  index.Add(9, 3500, Flip(q, 100, rng), ViewKind::kFull);
  index.Build();
  const auto hits = index.Search(q, {32, -1});
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].ref_id, 8u);
  EXPECT_EQ(hits[0].distance, 5);
  EXPECT_EQ(hits[0].time_ms, 2500);
  EXPECT_EQ(hits[1].ref_id, 7u);
  EXPECT_EQ(hits[1].view, ViewKind::kCropCenter);
}

TEST(HashIndexTest, ApproximateSearchIsASubsetWithHighRecall) {
  Fixture f = MakeFixture(20000, 200, 11);
  size_t exact = 0, approx = 0;
  for (const Hash256& q : f.queries) {
    const auto all = f.index.BruteForceSearch(q, 64);
    const auto some = f.index.Search(q, {64, 2});
    for (const IndexHit& h : some) {
      EXPECT_TRUE(std::any_of(all.begin(), all.end(), [&](const IndexHit& x) { return x.entry == h.entry; }));
    }
    exact += all.size();
    approx += some.size();
  }
  ASSERT_GT(exact, 0u);
  // Hits at distance <= 64 with chunk radius 2: the analysis predicts >= 97 %.
  EXPECT_GE(static_cast<double>(approx) / static_cast<double>(exact), 0.95);
}

TEST(HashIndexTest, SearchBeforeBuildFallsBackToBruteForce) {
  Fixture f = MakeFixture(1000, 3, 5);
  std::mt19937_64 rng(1);
  f.index.Add(5000, 1, Flip(f.queries[0], 2, rng));  // invalidates the tables
  EXPECT_FALSE(f.index.built());
  ExpectSameHits(f.index.Search(f.queries[0], {40, -1}), f.index.BruteForceSearch(f.queries[0], 40));
  f.index.Build();
  ExpectSameHits(f.index.Search(f.queries[0], {40, -1}), f.index.BruteForceSearch(f.queries[0], 40));
}

TEST(HashIndexTest, SerializeRoundTrip) {
  Fixture f = MakeFixture(3000, 5, 13);
  const std::vector<uint8_t> bytes = f.index.Serialize();
  auto loaded = HashIndex::Deserialize(bytes);
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  ASSERT_EQ(loaded->size(), f.index.size());
  EXPECT_TRUE(loaded->built());
  for (size_t i = 0; i < f.index.size(); ++i) {
    EXPECT_EQ(loaded->entries()[i].hash, f.index.entries()[i].hash);
    EXPECT_EQ(loaded->entries()[i].time_ms, f.index.entries()[i].time_ms);
    EXPECT_EQ(loaded->entries()[i].view, f.index.entries()[i].view);
  }
  for (const Hash256& q : f.queries) ExpectSameHits(loaded->Search(q, {48, -1}), f.index.Search(q, {48, -1}));
  // An empty index round-trips too.
  auto empty = HashIndex::Deserialize(HashIndex().Serialize());
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->size(), 0u);
}

TEST(HashIndexTest, DeserializeRejectsDamage) {
  Fixture f = MakeFixture(10, 1, 17);
  const std::vector<uint8_t> good = f.index.Serialize();

  std::vector<uint8_t> truncated(good.begin(), good.end() - 3);
  auto r = HashIndex::Deserialize(truncated);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kCorruptData);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos);

  std::vector<uint8_t> magic = good;
  magic[0] = 'X';
  EXPECT_EQ(HashIndex::Deserialize(magic).error().code(), ErrorCode::kCorruptData);

  std::vector<uint8_t> version = good;
  version[8] = 99;  // hash algorithm version
  auto v = HashIndex::Deserialize(version);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kVersionMismatch);
  EXPECT_NE(v.error().message().find("rebuild"), std::string::npos);

  std::vector<uint8_t> view = good;
  view[20 + 4] = 200;  // first entry's view
  EXPECT_EQ(HashIndex::Deserialize(view).error().code(), ErrorCode::kCorruptData);

  std::vector<uint8_t> huge_count = good;
  huge_count[19] = 0x7f;  // entry count far beyond the bytes present
  EXPECT_EQ(HashIndex::Deserialize(huge_count).error().code(), ErrorCode::kCorruptData);
  EXPECT_EQ(HashIndex::Deserialize(std::vector<uint8_t>{}).error().code(), ErrorCode::kCorruptData);
}

}  // namespace
}  // namespace earshot::video
