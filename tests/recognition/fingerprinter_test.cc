#include "recognition/fingerprinter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "recognition/hasher.h"
#include "test_audio.h"

namespace earshot::recognition {
namespace {

Peak MakePeak(uint32_t frame, float unit) {
  Peak p;
  p.frame = frame;
  p.unit = unit;
  return p;
}

std::vector<Peak> RandomSortedPeaks(std::mt19937& rng, size_t n) {
  std::vector<Peak> peaks;
  uint32_t frame = rng() % 100;
  for (size_t i = 0; i < n; ++i) {
    frame += rng() % 4;  // repeated frames too
    peaks.push_back(MakePeak(frame, std::uniform_real_distribution<float>(0.0f, 255.0f)(rng)));
  }
  return peaks;
}

void Put32(std::vector<uint8_t>& bytes, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

bool PeaksEqual(const std::vector<Peak>& a, const std::vector<Peak>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].frame != b[i].frame || a[i].unit != b[i].unit || a[i].prominence != b[i].prominence ||
        a[i].rank != b[i].rank) {
      return false;
    }
  }
  return true;
}

TEST(PeakMapTest, RoundTripKeepsFramesAndUnitsToAQuarterOf1Over256) {
  std::mt19937 rng(1);
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{1000}}) {
    const std::vector<Peak> peaks = RandomSortedPeaks(rng, n);
    const std::vector<uint8_t> bytes = EncodePeakMap(peaks);
    ASSERT_EQ(bytes.size(), 4 + 6 * n);
    PeakMap map;
    ASSERT_TRUE(DecodePeakMap(bytes, map));
    ASSERT_EQ(map.frames.size(), n);
    ASSERT_EQ(map.units.size(), n);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(map.frames[i], peaks[i].frame);
      EXPECT_NEAR(map.units[i], peaks[i].unit, 0.5 / 256 + 1e-6);
    }
  }
}

TEST(PeakMapTest, LayoutIsLittleEndianCountFramesThenUnits) {
  const std::vector<Peak> peaks = {MakePeak(0x01020304, 1.0f), MakePeak(0x01020305, 2.5f)};
  const std::vector<uint8_t> bytes = EncodePeakMap(peaks);
  const std::vector<uint8_t> expected = {2, 0, 0, 0,                  // count
                                         4, 3, 2, 1, 5, 3, 2, 1,      // frames
                                         0x00, 0x01, 0x80, 0x02};     // units * 256: 256, 640
  EXPECT_EQ(bytes, expected);
}

TEST(PeakMapTest, UnitsOutsideTheEncodableRangeAreClamped) {
  const std::vector<Peak> peaks = {MakePeak(1, -3.0f), MakePeak(2, 300.0f), MakePeak(3, 255.99f)};
  PeakMap map;
  ASSERT_TRUE(DecodePeakMap(EncodePeakMap(peaks), map));
  EXPECT_EQ(map.units[0], 0.0f);
  EXPECT_EQ(map.units[1], 65535.0f / 256.0f);
  EXPECT_NEAR(map.units[2], 255.99f, 0.5 / 256);
}

TEST(PeakMapTest, MalformedBytesAreRejected) {
  std::mt19937 rng(2);
  const std::vector<uint8_t> good = EncodePeakMap(RandomSortedPeaks(rng, 10));
  PeakMap map;
  ASSERT_TRUE(DecodePeakMap(good, map));

  // Shorter than the count.
  for (size_t n = 0; n < 4; ++n) {
    EXPECT_FALSE(DecodePeakMap(std::span(good).first(n), map)) << n;
  }
  // Truncated anywhere, or with trailing bytes.
  for (size_t n = 4; n < good.size(); ++n) {
    EXPECT_FALSE(DecodePeakMap(std::span(good).first(n), map)) << n;
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_FALSE(DecodePeakMap(longer, map));
  // A count that disagrees with the size, including ones whose byte size
  // would overflow 32 bits.
  for (uint32_t count : {9u, 11u, 0u, 0x2AAAAAABu, 0xFFFFFFFFu}) {
    std::vector<uint8_t> bad = good;
    Put32(bad, 0, count);
    EXPECT_FALSE(DecodePeakMap(bad, map)) << count;
  }
  // 0x2AAAAAAB * 6 wraps to 2 in 32 bits: a 6-byte buffer must not pass.
  std::vector<uint8_t> wrapping(6, 0);
  Put32(wrapping, 0, 0x2AAAAAABu);
  EXPECT_FALSE(DecodePeakMap(wrapping, map));
  // Frames that go backwards.
  std::vector<uint8_t> unsorted = good;
  Put32(unsorted, 4 + 4 * 5, 0xFFFFFFFFu);
  EXPECT_FALSE(DecodePeakMap(unsorted, map));

  // After all this, a good map still decodes into the same PeakMap object.
  ASSERT_TRUE(DecodePeakMap(good, map));
  EXPECT_EQ(map.frames.size(), 10u);
}

// Fuzz-style: random bytes and random mutations of valid maps never crash
// (run under ASan), and whatever decodes is a well-formed map that encodes
// back to the same bytes.
TEST(PeakMapTest, DecodingArbitraryBytesIsSafeAndConsistent) {
  std::mt19937 rng(3);
  PeakMap map;
  size_t accepted = 0;
  const auto check = [&](const std::vector<uint8_t>& bytes) {
    if (!DecodePeakMap(bytes, map)) return;
    ++accepted;
    ASSERT_EQ(bytes.size(), 4 + 6 * map.frames.size());
    ASSERT_EQ(map.units.size(), map.frames.size());
    ASSERT_TRUE(std::is_sorted(map.frames.begin(), map.frames.end()));
    std::vector<Peak> peaks;
    for (size_t i = 0; i < map.frames.size(); ++i) peaks.push_back(MakePeak(map.frames[i], map.units[i]));
    ASSERT_EQ(EncodePeakMap(peaks), bytes);
  };
  for (int trial = 0; trial < 20000; ++trial) {
    std::vector<uint8_t> bytes(rng() % 64);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    if (trial % 2 == 0 && bytes.size() >= 4) {
      Put32(bytes, 0, static_cast<uint32_t>((bytes.size() - 4) / 6));  // plausible count
    }
    check(bytes);
  }
  for (int trial = 0; trial < 5000; ++trial) {
    std::vector<uint8_t> bytes = EncodePeakMap(RandomSortedPeaks(rng, rng() % 20));
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 3) {
        case 0:
          if (!bytes.empty()) bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          if (!bytes.empty()) bytes.resize(rng() % bytes.size());
          break;
        default:
          bytes.push_back(static_cast<uint8_t>(rng()));
      }
    }
    check(bytes);
  }
  EXPECT_GT(accepted, 500u);  // enough well-formed inputs for the round trip to mean something
}

TEST(FingerprinterTest, ChunkedPushGivesTheSamePeaksAsOneCall) {
  const FingerprintParams params;
  const test_audio::Score score = test_audio::ComposeMusic(41, 12.0);
  const std::vector<float> pcm = test_audio::Render(score, 0, 12.0);
  const std::vector<Peak> whole = ExtractPeaks(pcm, params, 8);
  ASSERT_GT(whole.size(), 200u);
  for (size_t chunk : {1, 160, 4097}) {
    Fingerprinter fp(params, 8);
    std::vector<Peak> peaks;
    for (size_t i = 0; i < pcm.size(); i += chunk) {
      fp.Push(std::span(pcm).subspan(i, std::min(chunk, pcm.size() - i)), peaks);
      // Peaks come out in frame order as they become final.
      ASSERT_TRUE(std::is_sorted(peaks.begin(), peaks.end(),
                                 [](const Peak& a, const Peak& b) { return a.frame < b.frame; }));
    }
    fp.Finish(peaks);
    EXPECT_EQ(fp.frames(), (pcm.size() - 1024) / 128 + 1);
    EXPECT_TRUE(PeaksEqual(peaks, whole)) << "chunk " << chunk;
  }
}

TEST(FingerprinterTest, DensityFollowsPeaksPerBand) {
  const FingerprintParams params;
  const test_audio::Score score = test_audio::ComposeMusic(42, 20.0);
  const std::vector<float> pcm = test_audio::Render(score, 0, 20.0);
  const std::vector<Peak> sparse = ExtractPeaks(pcm, params, 2);
  const std::vector<Peak> dense = ExtractPeaks(pcm, params, 8);
  const size_t blocks = ((pcm.size() - 1024) / 128 + 1 + 31) / 32;
  const size_t bands = static_cast<size_t>(params.bands);
  EXPECT_LE(sparse.size(), blocks * bands * 2);
  EXPECT_LE(dense.size(), blocks * bands * 8);
  EXPECT_GT(dense.size(), sparse.size() * 2);
  // The sparse peaks are exactly the dense ones of rank < 2.
  std::vector<Peak> top;
  for (const Peak& p : dense) {
    if (p.rank < 2) top.push_back(p);
  }
  EXPECT_TRUE(PeaksEqual(top, sparse));
}

TEST(FingerprinterTest, FingerprintTrackHoldsHashesAndPeakMapOfTheReferencePeaks) {
  const FingerprintParams params;
  const test_audio::Score score = test_audio::ComposeMusic(43, 25.0);
  const std::vector<float> pcm = test_audio::Render(score, 0, 25.0);
  const TrackFingerprint print = FingerprintTrack(77, pcm, params);
  EXPECT_EQ(print.track, 77u);
  EXPECT_EQ(print.frame_count, (pcm.size() - 1024) / 128 + 1);

  const std::vector<Peak> peaks = ExtractPeaks(pcm, params, params.reference_peaks_per_band);
  PeakMap map;
  ASSERT_TRUE(DecodePeakMap(print.side_data, map));
  ASSERT_EQ(map.frames.size(), peaks.size());
  for (size_t i = 0; i < peaks.size(); ++i) {
    EXPECT_EQ(map.frames[i], peaks[i].frame);
    EXPECT_NEAR(map.units[i], peaks[i].unit, 0.5 / 256 + 1e-6);
  }
  std::vector<Peak> hash_peaks;
  for (const Peak& p : peaks) {
    if (p.rank < params.reference_hash_peaks_per_band) hash_peaks.push_back(p);
  }
  ASSERT_LE(hash_peaks.size(), peaks.size());
  ASSERT_FALSE(hash_peaks.empty());
  EXPECT_EQ(print.hashes, ReferenceHashes(hash_peaks, params));
  // About fanout hashes per hash peak, every one anchored at a peak.
  EXPECT_GT(print.hashes.size(), hash_peaks.size() * 3);
  for (const HashEntry& h : print.hashes) {
    ASSERT_LT(h.time, print.frame_count);
    ASSERT_TRUE(std::binary_search(map.frames.begin(), map.frames.end(), h.time));
  }
}

TEST(FingerprinterTest, ShortAndSilentInputs) {
  const FingerprintParams params;
  // Shorter than one window: no frames, no peaks, a valid empty print.
  const std::vector<float> tiny(1000, 0.1f);
  EXPECT_TRUE(ExtractPeaks(tiny, params, 4).empty());
  const TrackFingerprint print = FingerprintTrack(1, tiny, params);
  EXPECT_EQ(print.frame_count, 0u);
  EXPECT_TRUE(print.hashes.empty());
  PeakMap map;
  ASSERT_TRUE(DecodePeakMap(print.side_data, map));
  EXPECT_TRUE(map.frames.empty());
  // Digital silence: a flat power floor has no strict maxima, so no peaks.
  const std::vector<float> silence(40000, 0.0f);
  EXPECT_TRUE(ExtractPeaks(silence, params, 4).empty());
}

}  // namespace
}  // namespace earshot::recognition
