#include "recognition/index_segment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "recognition/memory_index.h"

namespace earshot::recognition {
namespace {

constexpr uint32_t kAlgo = 7;

struct Shape {
  size_t tracks = 50;
  size_t hashes_per_track = 500;
  uint32_t hash_bits = 20;
  uint32_t max_time = 20000;
  size_t max_side = 64;
  double duplicate_rate = 0.02;  // fraction of hash entries repeated exactly
};

std::vector<TrackFingerprint> RandomTracks(uint64_t seed, const Shape& shape) {
  std::mt19937_64 rng(seed);
  std::set<TrackId> ids;
  while (ids.size() < shape.tracks) {
    // Mostly ids below 2^24, sometimes tiny or huge ones.
    const uint32_t kind = rng() % 10;
    ids.insert(kind == 0   ? static_cast<TrackId>(rng() % 16)
               : kind == 1 ? static_cast<TrackId>(rng())
                           : static_cast<TrackId>(rng() % (1u << 24)));
  }
  std::vector<TrackFingerprint> tracks;
  for (TrackId id : ids) {
    TrackFingerprint t;
    t.track = id;
    t.frame_count = static_cast<uint32_t>(rng() % (uint64_t{shape.max_time} + 1));
    const size_t n = shape.hashes_per_track == 0 ? 0 : rng() % (2 * shape.hashes_per_track + 1);
    const uint64_t key_mask = shape.hash_bits >= 32 ? 0xffffffffu : (1u << shape.hash_bits) - 1;
    for (size_t i = 0; i < n; ++i) {
      if (!t.hashes.empty() &&
          std::uniform_real_distribution<double>()(rng) < shape.duplicate_rate) {
        t.hashes.push_back(t.hashes[rng() % t.hashes.size()]);
        continue;
      }
      t.hashes.push_back({static_cast<HashKey>(rng() & key_mask),
                          static_cast<uint32_t>(rng() % (uint64_t{shape.max_time} + 1))});
    }
    t.side_data.resize(rng() % (shape.max_side + 1));
    for (uint8_t& b : t.side_data) b = static_cast<uint8_t>(rng());
    tracks.push_back(std::move(t));
  }
  std::shuffle(tracks.begin(), tracks.end(), rng);
  return tracks;
}

MemoryIndex Reference(const std::vector<TrackFingerprint>& tracks) {
  MemoryIndex index;
  for (const TrackFingerprint& t : tracks) EXPECT_TRUE(index.Add(t).has_value());
  return index;
}

// Every answer of `index` equals the reference's: all keys, random probes,
// every track and some absent ones.
void ExpectSameIndex(const IndexReader& index, const MemoryIndex& ref, uint64_t seed) {
  ASSERT_EQ(index.TrackCount(), ref.TrackCount());
  ASSERT_EQ(index.PostingCount(), ref.PostingCount());
  std::vector<Posting> got;
  std::vector<Posting> want;
  std::vector<HashKey> probes = ref.Keys();
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) probes.push_back(static_cast<HashKey>(rng()));
  for (int i = 0; i < 2000; ++i) probes.push_back(static_cast<HashKey>(rng() % (1u << 20)));
  probes.push_back(0);
  probes.push_back(0xffffffffu);
  for (HashKey key : probes) {
    got.assign(3, Posting{99, 99});  // Lookup appends
    want.assign(3, Posting{99, 99});
    index.Lookup(key, got);
    ref.Lookup(key, want);
    ASSERT_EQ(got, want) << "key " << key;
  }
  for (TrackId id : ref.Tracks()) {
    ASSERT_TRUE(index.HasTrack(id));
    ASSERT_EQ(index.FrameCount(id), ref.FrameCount(id));
    const auto a = index.SideData(id);
    const auto b = ref.SideData(id);
    ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << "track " << id;
  }
  for (int i = 0; i < 200; ++i) {
    const TrackId id = static_cast<TrackId>(rng());
    ASSERT_EQ(index.HasTrack(id), ref.HasTrack(id));
    ASSERT_EQ(index.FrameCount(id), ref.FrameCount(id));
    ASSERT_EQ(index.SideData(id).size(), ref.SideData(id).size());
  }
}

SegmentView OpenOrDie(const std::vector<uint8_t>& bytes, uint32_t algo = kAlgo) {
  Result<SegmentView> view = SegmentView::Open(bytes, algo);
  EXPECT_TRUE(view.has_value()) << view.error().ToString();
  return *view;
}

uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

void Store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Recomputes every checksum of a (possibly tampered) segment, so that only
// the structural checks stand between the bytes and the decoder.
void FixChecksums(std::vector<uint8_t>& seg) {
  const size_t footer = seg.size() - kSegmentFooterSize;
  uint8_t* f = seg.data() + footer;
  const uint64_t side = Load64(f);
  const uint64_t tracks = Load64(f + 16);
  if (side <= tracks && tracks <= footer) {
    Store32(f + 80, Crc32c(std::span(seg.data() + side, tracks - side)));
    Store32(f + 84, Crc32c(std::span(seg.data() + tracks, footer - tracks)));
  }
  Store32(f + 112, Crc32c(std::span(f, 112), Crc32c(std::span(seg.data(), 16))));
}

// Runs every kind of read on a view that opened; under ASan this proves no
// out-of-bounds access.
void ExerciseView(const SegmentView& view, const std::vector<HashKey>& probes) {
  std::vector<Posting> out;
  for (HashKey key : probes) view.Lookup(key, out);
  for (uint64_t i = 0; i < view.TrackCount(); ++i) {
    const TrackId id = view.TrackAt(static_cast<uint32_t>(i));
    (void)view.SideData(id);
    (void)view.FrameCount(id);
  }
  (void)view.Verify();
  SegmentCursor cursor(view);
  std::vector<SegmentPosting> list;
  for (int guard = 0; guard < 1000000; ++guard) {
    Result<bool> more = cursor.Next();
    if (!more || !*more) break;
    (void)cursor.ReadPostings(list);
  }
}

TEST(Crc32cTest, KnownValuesAndExtension) {
  const std::string check = "123456789";
  const auto bytes = std::span(reinterpret_cast<const uint8_t*>(check.data()), check.size());
  EXPECT_EQ(Crc32c(bytes), 0xe3069283u);
  EXPECT_EQ(Crc32c({}), 0u);
  std::vector<uint8_t> data(1000);
  std::mt19937 rng(1);
  for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
  const uint32_t whole = Crc32c(data);
  for (size_t cut : {0, 1, 7, 8, 9, 63, 500, 999, 1000}) {
    EXPECT_EQ(Crc32c(std::span(data).subspan(cut), Crc32c(std::span(data).first(cut))), whole);
  }
}

TEST(IndexSegmentTest, EmptySegment) {
  const std::vector<uint8_t> bytes = BuildSegment({}, kAlgo);
  EXPECT_EQ(bytes.size(), kSegmentPreambleSize + kSegmentFooterSize + 8 + 2 * 4);
  SegmentView view = OpenOrDie(bytes);
  EXPECT_EQ(view.TrackCount(), 0u);
  EXPECT_EQ(view.PostingCount(), 0u);
  EXPECT_EQ(view.key_count(), 0u);
  std::vector<Posting> out;
  view.Lookup(0, out);
  view.Lookup(12345, out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(view.HasTrack(0));
  EXPECT_TRUE(view.Verify().has_value());
}

TEST(IndexSegmentTest, TracksWithoutHashes) {
  std::vector<TrackFingerprint> tracks(3);
  tracks[0] = {.track = 9, .frame_count = 100, .hashes = {}, .side_data = {1, 2, 3}};
  tracks[1] = {.track = 2, .frame_count = 0, .hashes = {}, .side_data = {}};
  tracks[2] = {.track = 0xffffffffu, .frame_count = 0xffffffffu, .hashes = {}, .side_data = {7}};
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  SegmentView view = OpenOrDie(bytes);
  EXPECT_TRUE(view.Verify().has_value());
  ExpectSameIndex(view, Reference(tracks), 1);
}

TEST(IndexSegmentTest, RoundTripMatchesMemoryIndex) {
  const Shape shapes[] = {
      {.tracks = 40, .hashes_per_track = 400, .hash_bits = 20},
      {.tracks = 200, .hashes_per_track = 100, .hash_bits = 24, .max_time = (1u << 20) - 1},
      {.tracks = 30, .hashes_per_track = 300, .hash_bits = 8},  // long lists
      {.tracks = 10, .hashes_per_track = 300, .hash_bits = 32, .max_time = 0xffffffffu},
      {.tracks = 1, .hashes_per_track = 2000, .hash_bits = 12, .duplicate_rate = 0.3},
      {.tracks = 300, .hashes_per_track = 10, .hash_bits = 4, .max_time = 0},
  };
  uint64_t seed = 1;
  for (const Shape& shape : shapes) {
    for (int repeat = 0; repeat < 3; ++repeat, ++seed) {
      SCOPED_TRACE("seed " + std::to_string(seed));
      const std::vector<TrackFingerprint> tracks = RandomTracks(seed, shape);
      const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
      SegmentView view = OpenOrDie(bytes);
      ASSERT_TRUE(view.Verify().has_value());
      const MemoryIndex ref = Reference(tracks);
      ExpectSameIndex(view, ref, seed);

      // The cursor walks exactly the reference's keys.
      SegmentCursor cursor(view);
      std::vector<HashKey> keys;
      for (;;) {
        Result<bool> more = cursor.Next();
        ASSERT_TRUE(more.has_value());
        if (!*more) break;
        keys.push_back(cursor.key());
      }
      EXPECT_EQ(keys, ref.Keys());
    }
  }
}

TEST(IndexSegmentTest, SegmentOfAnyAlignmentReads) {
  const std::vector<TrackFingerprint> tracks = RandomTracks(3, {.tracks = 20});
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  std::vector<uint8_t> shifted(bytes.size() + 3);
  std::copy(bytes.begin(), bytes.end(), shifted.begin() + 3);
  Result<SegmentView> view = SegmentView::Open(std::span(shifted).subspan(3), kAlgo);
  ASSERT_TRUE(view.has_value());
  ExpectSameIndex(*view, Reference(tracks), 3);
}

TEST(IndexSegmentTest, HugePostingListsAndLongUnaryRuns) {
  // Key 5: 200,000 postings over 2,000 tracks. Key 6: thousands of postings
  // in the first track then one in the last (a Rice quotient of ~100,000
  // bits). Key 7: one posting per track.
  std::vector<TrackFingerprint> tracks(100000);
  std::mt19937 rng(5);
  for (uint32_t i = 0; i < tracks.size(); ++i) {
    tracks[i].track = i * 3 + 1;
    tracks[i].frame_count = 1000;
    tracks[i].hashes.push_back({7, i % 1000});
  }
  for (int i = 0; i < 200000; ++i) {
    tracks[rng() % 2000].hashes.push_back({5, static_cast<uint32_t>(rng() % (1u << 20))});
  }
  for (uint32_t i = 0; i < 5000; ++i) tracks[0].hashes.push_back({6, i});
  tracks.back().hashes.push_back({6, 3});
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  SegmentView view = OpenOrDie(bytes);
  ASSERT_TRUE(view.Verify().has_value());
  const MemoryIndex ref = Reference(tracks);
  for (HashKey key : {5u, 6u, 7u, 8u}) {
    std::vector<Posting> got;
    std::vector<Posting> want;
    view.Lookup(key, got);
    ref.Lookup(key, want);
    ASSERT_EQ(got, want) << "key " << key;
  }
  std::vector<Posting> six;
  view.Lookup(6, six);
  ASSERT_EQ(six.size(), 5001u);
  EXPECT_EQ(six.back(), (Posting{tracks.back().track, 3}));
  EXPECT_EQ(view.PostingCount(), ref.PostingCount());
}

TEST(IndexSegmentTest, SideDataRoundTrip) {
  std::vector<TrackFingerprint> tracks;
  std::mt19937 rng(9);
  for (uint32_t i = 0; i < 40; ++i) {
    TrackFingerprint t{.track = i * 1000, .frame_count = i, .hashes = {{i, i}}, .side_data = {}};
    const size_t size = i == 7 ? (size_t{1} << 20) + 13 : i % 5 == 0 ? 0 : rng() % 5000;
    t.side_data.resize(size);
    for (uint8_t& b : t.side_data) b = static_cast<uint8_t>(rng());
    tracks.push_back(std::move(t));
  }
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  SegmentView view = OpenOrDie(bytes);
  ASSERT_TRUE(view.Verify().has_value());
  for (const TrackFingerprint& t : tracks) {
    const auto side = view.SideData(t.track);
    ASSERT_TRUE(std::equal(side.begin(), side.end(), t.side_data.begin(), t.side_data.end()));
    EXPECT_EQ(view.FrameCount(t.track), t.frame_count);
  }
}

TEST(IndexSegmentTest, DuplicateEntriesAreKeptAndRepeatedTrackIdsKeepTheFirst) {
  std::vector<TrackFingerprint> tracks = {
      {.track = 4, .frame_count = 10, .hashes = {{1, 5}, {1, 5}, {1, 2}}, .side_data = {1}},
      {.track = 4, .frame_count = 99, .hashes = {{2, 5}}, .side_data = {2}},
  };
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  SegmentView view = OpenOrDie(bytes);
  std::vector<Posting> out;
  view.Lookup(1, out);
  EXPECT_EQ(out, (std::vector<Posting>{{4, 2}, {4, 5}, {4, 5}}));
  out.clear();
  view.Lookup(2, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(view.FrameCount(4), 10u);
  EXPECT_EQ(view.TrackCount(), 1u);
}

TEST(IndexSegmentTest, AlgorithmVersionMismatch) {
  const std::vector<uint8_t> bytes = BuildSegment(RandomTracks(1, {.tracks = 3}), 3);
  Result<SegmentView> view = SegmentView::Open(bytes, 4);
  ASSERT_FALSE(view.has_value());
  EXPECT_EQ(view.error().code(), ErrorCode::kVersionMismatch);
  EXPECT_NE(view.error().message().find("algorithm version 3"), std::string::npos);
  EXPECT_NE(view.error().message().find("uses 4"), std::string::npos);
}

TEST(IndexSegmentTest, FormatVersionMismatch) {
  std::vector<uint8_t> bytes = BuildSegment(RandomTracks(1, {.tracks = 3}), kAlgo);
  Store32(bytes.data() + 8, kSegmentFormatVersion + 1);
  Store32(bytes.data() + bytes.size() - kSegmentFooterSize + 72, kSegmentFormatVersion + 1);
  FixChecksums(bytes);
  Result<SegmentView> view = SegmentView::Open(bytes, kAlgo);
  ASSERT_FALSE(view.has_value());
  EXPECT_EQ(view.error().code(), ErrorCode::kVersionMismatch);
  EXPECT_NE(view.error().message().find("format version 2"), std::string::npos);
}

std::vector<HashKey> ProbesFor(const std::vector<TrackFingerprint>& tracks) {
  std::vector<HashKey> probes;
  for (const TrackFingerprint& t : tracks) {
    for (const HashEntry& h : t.hashes) probes.push_back(h.hash);
  }
  std::sort(probes.begin(), probes.end());
  probes.erase(std::unique(probes.begin(), probes.end()), probes.end());
  return probes;
}

TEST(IndexSegmentCorruptionTest, TruncationIsAlwaysAnError) {
  const std::vector<TrackFingerprint> tracks =
      RandomTracks(11, {.tracks = 6, .hashes_per_track = 40, .hash_bits = 10, .max_side = 20});
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  for (size_t length = 0; length < bytes.size(); ++length) {
    // A fresh copy of exactly `length` bytes, so ASan catches any over-read.
    const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(length));
    Result<SegmentView> view = SegmentView::Open(cut, kAlgo);
    ASSERT_FALSE(view.has_value()) << "length " << length;
    EXPECT_EQ(view.error().code(), ErrorCode::kCorruptData);
  }
  // Extra bytes after a valid segment are damage too.
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_FALSE(SegmentView::Open(longer, kAlgo).has_value());
}

TEST(IndexSegmentCorruptionTest, EveryByteFlipIsDetected) {
  const std::vector<TrackFingerprint> tracks =
      RandomTracks(12, {.tracks = 5, .hashes_per_track = 30, .hash_bits = 9, .max_side = 16});
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  const std::vector<HashKey> probes = ProbesFor(tracks);
  for (size_t at = 0; at < bytes.size(); ++at) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::vector<uint8_t> damaged = bytes;
      damaged[at] ^= mask;
      Result<SegmentView> view = SegmentView::Open(damaged, kAlgo);
      if (view.has_value()) {
        // Only the body is not checked at open; Verify must notice.
        EXPECT_FALSE(view->Verify().has_value()) << "byte " << at;
        ExerciseView(*view, probes);
      } else {
        EXPECT_TRUE(view.error().code() == ErrorCode::kCorruptData ||
                    view.error().code() == ErrorCode::kVersionMismatch)
            << view.error().ToString();
      }
    }
  }
}

// Damage with the checksums recomputed: only the structural checks and the
// bounds-checked decoder remain. Nothing may crash or read out of bounds.
TEST(IndexSegmentCorruptionTest, CraftedDamageNeverCrashes) {
  const std::vector<TrackFingerprint> tracks =
      RandomTracks(13, {.tracks = 8, .hashes_per_track = 60, .hash_bits = 8, .max_side = 16});
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  std::vector<HashKey> probes = ProbesFor(tracks);
  for (HashKey k = 0; k < 300; ++k) probes.push_back(k);
  std::mt19937_64 rng(13);
  int opened = 0;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::vector<uint8_t> damaged = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      // Mostly the postings and tables; sometimes the footer fields.
      const size_t at = rng() % 4 == 0 ? damaged.size() - kSegmentFooterSize + rng() % 80
                                       : rng() % (damaged.size() - kSegmentFooterSize);
      damaged[at] = rng() % 3 == 0 ? static_cast<uint8_t>(damaged[at] ^ (1u << (rng() % 8)))
                                   : static_cast<uint8_t>(rng());
    }
    FixChecksums(damaged);
    Result<SegmentView> view = SegmentView::Open(damaged, kAlgo);
    if (!view.has_value()) continue;
    ++opened;
    ExerciseView(*view, probes);
  }
  EXPECT_GT(opened, 100);
}

TEST(SegmentBuilderTest, MisuseIsAnErrorAndSticky) {
  std::vector<uint8_t> out;
  const SegmentSink sink = [&](std::span<const uint8_t> b) {
    out.insert(out.end(), b.begin(), b.end());
    return Ok();
  };
  {
    SegmentBuilder builder({.algorithm_version = 1, .max_key = 100, .max_time = 10}, sink);
    ASSERT_TRUE(builder.AddTrack(5, 1, {}).has_value());
    EXPECT_EQ(builder.AddTrack(5, 1, {}).error().code(), ErrorCode::kInvalidArgument);
    EXPECT_FALSE(builder.Finish().has_value());  // sticky
  }
  {
    SegmentBuilder builder({.algorithm_version = 1, .max_key = 100, .max_time = 10}, sink);
    ASSERT_TRUE(builder.AddTrack(5, 1, {}).has_value());
    const std::vector<SegmentPosting> one = {{0, 3}};
    const std::vector<SegmentPosting> bad_track = {{1, 3}};
    const std::vector<SegmentPosting> bad_time = {{0, 11}};
    const std::vector<SegmentPosting> unsorted = {{0, 4}, {0, 3}};
    ASSERT_TRUE(builder.AddList(10, one).has_value());
    EXPECT_FALSE(SegmentBuilder({.algorithm_version = 1}, sink).AddList(0, {}).has_value());
    SegmentBuilder b2({.algorithm_version = 1, .max_key = 100, .max_time = 10}, sink);
    ASSERT_TRUE(b2.AddTrack(1, 1, {}).has_value());
    EXPECT_FALSE(b2.AddList(101, one).has_value());
    SegmentBuilder b3({.algorithm_version = 1, .max_key = 100, .max_time = 10}, sink);
    ASSERT_TRUE(b3.AddTrack(1, 1, {}).has_value());
    EXPECT_FALSE(b3.AddList(3, bad_track).has_value());
    SegmentBuilder b4({.algorithm_version = 1, .max_key = 100, .max_time = 10}, sink);
    ASSERT_TRUE(b4.AddTrack(1, 1, {}).has_value());
    EXPECT_FALSE(b4.AddList(3, bad_time).has_value());
    SegmentBuilder b5({.algorithm_version = 1, .max_key = 100, .max_time = 10}, sink);
    ASSERT_TRUE(b5.AddTrack(1, 1, {}).has_value());
    EXPECT_FALSE(b5.AddList(3, unsorted).has_value());
    EXPECT_EQ(builder.AddList(10, one).error().code(),
              ErrorCode::kInvalidArgument);  // not ascending
    EXPECT_FALSE(builder.AddTrack(9, 1, {}).has_value());
  }
}

TEST(SegmentBuilderTest, SinkErrorIsReturned) {
  int calls = 0;
  SegmentBuilder builder({.algorithm_version = 1, .max_key = 1u << 20, .max_time = 1000},
                         [&](std::span<const uint8_t>) -> Status {
                           ++calls;
                           return MakeError(ErrorCode::kResourceExhausted, "disk full");
                         });
  ASSERT_TRUE(builder.AddTrack(1, 1, {}).has_value());
  Result<uint64_t> size = builder.Finish();
  ASSERT_FALSE(size.has_value());
  EXPECT_EQ(size.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(calls, 1);
}

TEST(MergeSegmentsTest, MergeMatchesMemoryIndexWithoutRemovedTracks) {
  for (uint64_t seed = 20; seed < 24; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<TrackFingerprint> all = RandomTracks(
        seed, {.tracks = 120, .hashes_per_track = 200, .hash_bits = seed % 2 ? 12u : 20u});
    // Split into 4 segments; remove every 5th track.
    std::vector<std::vector<TrackFingerprint>> parts(4);
    for (size_t i = 0; i < all.size(); ++i) parts[i % 4].push_back(all[i]);
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<SegmentView> views;
    for (const auto& part : parts) bytes.push_back(BuildSegment(part, kAlgo));
    for (const auto& b : bytes) views.push_back(OpenOrDie(b));
    std::vector<std::vector<TrackId>> removed(4);
    MemoryIndex ref;
    for (size_t i = 0; i < all.size(); ++i) {
      if (i % 5 == 0) {
        removed[i % 4].push_back(all[i].track);
      } else {
        ASSERT_TRUE(ref.Add(all[i]).has_value());
      }
    }
    std::vector<MergeSource> sources;
    for (size_t s = 0; s < 4; ++s) {
      std::sort(removed[s].begin(), removed[s].end());
      sources.push_back({&views[s], removed[s]});
    }
    std::vector<uint8_t> merged;
    ASSERT_TRUE(MergeSegments(sources, kAlgo, [&](std::span<const uint8_t> b) {
                  merged.insert(merged.end(), b.begin(), b.end());
                  return Ok();
                }).has_value());
    SegmentView view = OpenOrDie(merged);
    ASSERT_TRUE(view.Verify().has_value());
    ExpectSameIndex(view, ref, seed);
  }
}

TEST(MergeSegmentsTest, TrackLiveInTwoSourcesIsRefused) {
  const std::vector<TrackFingerprint> tracks = RandomTracks(30, {.tracks = 5});
  const std::vector<uint8_t> a = BuildSegment(tracks, kAlgo);
  SegmentView va = OpenOrDie(a);
  const MergeSource sources[] = {{&va, {}}, {&va, {}}};
  Status s = MergeSegments(sources, kAlgo, [](std::span<const uint8_t>) { return Ok(); });
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  // With the tracks removed from one copy the merge is fine.
  std::vector<TrackId> ids;
  for (const auto& t : tracks) ids.push_back(t.track);
  std::sort(ids.begin(), ids.end());
  const MergeSource ok_sources[] = {{&va, {}}, {&va, ids}};
  EXPECT_TRUE(
      MergeSegments(ok_sources, kAlgo, [](std::span<const uint8_t>) { return Ok(); }).has_value());
}

TEST(MergeSegmentsTest, CancelledMergeStops) {
  const std::vector<uint8_t> a = BuildSegment(RandomTracks(31, {.tracks = 5}), kAlgo);
  SegmentView va = OpenOrDie(a);
  const MergeSource sources[] = {{&va, {}}};
  Status s = MergeSegments(
      sources, kAlgo, [](std::span<const uint8_t>) { return Ok(); }, [] { return true; });
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable);
}

TEST(MergeSegmentsTest, MergeOfDamagedSourceIsCorruptData) {
  const std::vector<TrackFingerprint> tracks = RandomTracks(32, {.tracks = 5, .hash_bits = 8});
  std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  // Damage the first posting list and re-seal the checksums.
  std::vector<uint8_t> damaged = bytes;
  const uint64_t postings_offset = Load64(damaged.data() + damaged.size() - kSegmentFooterSize + 8);
  for (size_t i = 0; i < 8; ++i) damaged[postings_offset + i] = 0xff;
  FixChecksums(damaged);
  Result<SegmentView> view = SegmentView::Open(damaged, kAlgo);
  ASSERT_TRUE(view.has_value());
  EXPECT_FALSE(view->Verify().has_value());
  const MergeSource sources[] = {{&*view, {}}};
  Status s = MergeSegments(sources, kAlgo, [](std::span<const uint8_t>) { return Ok(); });
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kCorruptData);
}

// The size target: realistic lists (a few dozen postings per 20-bit key)
// cost well under 4 bytes per posting.
TEST(IndexSegmentTest, CompactForRealisticLists) {
  const std::vector<TrackFingerprint> tracks = RandomTracks(40, {.tracks = 400,
                                                                 .hashes_per_track = 5000,
                                                                 .hash_bits = 16,
                                                                 .max_time = 15000,
                                                                 .max_side = 0,
                                                                 .duplicate_rate = 0.0});
  const std::vector<uint8_t> bytes = BuildSegment(tracks, kAlgo);
  SegmentView view = OpenOrDie(bytes);
  const double per_posting =
      static_cast<double>(bytes.size()) / static_cast<double>(view.PostingCount());
  RecordProperty("bytes_per_posting", std::to_string(per_posting));
  EXPECT_LT(per_posting, 3.5);
}

}  // namespace
}  // namespace earshot::recognition
