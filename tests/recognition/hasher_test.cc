#include "recognition/hasher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "recognition/fingerprint_params.h"

namespace earshot::recognition {
namespace {

Peak MakePeak(uint32_t frame, float unit, uint8_t rank = 0) {
  Peak p;
  p.frame = frame;
  p.unit = unit;
  p.prominence = 1.0f;
  p.rank = rank;
  return p;
}

// The key of a pair as the header describes it: anchor cells of 2 units,
// steps of 2 units from -48, time cells round(20 ln dt).
HashKey DocumentedKey(const Peak& a, const Peak& b) {
  const int anchor = std::clamp(static_cast<int>(a.unit / 2.0f), 0, 127);
  const int step = std::clamp(static_cast<int>((b.unit - a.unit + 48.0f) / 2.0f), 0, kStepCells - 1);
  const int time = static_cast<int>(std::lround(kTimeCellsPerLn * std::log(static_cast<double>(b.frame - a.frame))));
  return PackHash(anchor, step, time);
}

// Naive enumeration of the reference pairs: each anchor with its first
// `fanout` targets that are pair_min_dt..pair_max_dt frames later and at most
// pair_max_octaves away.
std::vector<HashEntry> NaiveReferenceHashes(const std::vector<Peak>& peaks, const FingerprintParams& params) {
  std::vector<HashEntry> out;
  for (size_t i = 0; i < peaks.size(); ++i) {
    int taken = 0;
    for (size_t j = i + 1; j < peaks.size() && taken < params.reference_fanout; ++j) {
      const long dt = static_cast<long>(peaks[j].frame) - static_cast<long>(peaks[i].frame);
      if (dt < params.pair_min_dt || dt > params.pair_max_dt) continue;
      if (std::abs(peaks[j].unit - peaks[i].unit) > params.pair_max_octaves * kUnitsPerOctave) continue;
      out.push_back({DocumentedKey(peaks[i], peaks[j]), peaks[i].frame});
      ++taken;
    }
  }
  return out;
}

std::vector<Peak> RandomPeaks(std::mt19937& rng, size_t n, uint32_t frames) {
  std::vector<Peak> peaks;
  for (size_t i = 0; i < n; ++i) {
    peaks.push_back(MakePeak(static_cast<uint32_t>(rng() % frames),
                             std::uniform_real_distribution<float>(0.0f, 235.0f)(rng)));
  }
  std::sort(peaks.begin(), peaks.end(), [](const Peak& a, const Peak& b) {
    return a.frame != b.frame ? a.frame < b.frame : a.unit < b.unit;
  });
  return peaks;
}

bool Contains(const std::vector<HashKey>& keys, HashKey key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

TEST(HasherTest, PackHashFieldsDoNotCollide) {
  std::vector<bool> seen(1u << 20, false);
  for (int a = 0; a < 128; ++a) {
    for (int s = 0; s < kStepCells; ++s) {
      for (int t = 0; t < 128; ++t) {
        const HashKey key = PackHash(a, s, t);
        ASSERT_LT(key, 1u << 20);
        ASSERT_FALSE(seen[key]) << a << " " << s << " " << t;
        seen[key] = true;
        // Each field is recoverable: anchor 7 bits, step 6 bits, time 7 bits.
        ASSERT_EQ(static_cast<int>(key >> 13), a);
        ASSERT_EQ(static_cast<int>((key >> 7) & 63), s);
        ASSERT_EQ(static_cast<int>(key & 127), t);
      }
    }
  }
}

TEST(HasherTest, ReferenceHashesPairsAnchorWithFirstFanoutTargetsInTheZone) {
  const FingerprintParams params;  // fanout 5, dt 2..60, one octave (48 units)
  ASSERT_EQ(params.reference_fanout, 5);
  const std::vector<Peak> peaks = {
      MakePeak(10, 101),  // the anchor A (cell 50)
      MakePeak(11, 111),  // dt 1: too close
      MakePeak(12, 161),  // 60 units: more than an octave
      MakePeak(15, 111),  // dt 5, +10 units
      MakePeak(20, 91),   // dt 10, -10
      MakePeak(30, 141),  // dt 20, +40
      MakePeak(40, 55),   // dt 30, -46
      MakePeak(50, 121),  // dt 40, +20
      MakePeak(60, 101),  // dt 50: a sixth target, beyond the fanout
      MakePeak(71, 101),  // dt 61: too far
  };
  std::vector<HashEntry> of_a;
  for (const HashEntry& h : ReferenceHashes(peaks, params)) {
    if (h.time == 10) of_a.push_back(h);
  }
  const auto key = [](int step_units, int dt) {
    return PackHash(50, (step_units + 48) / 2, static_cast<int>(std::lround(20 * std::log(dt))));
  };
  const std::vector<HashEntry> expected = {
      {key(10, 5), 10}, {key(-10, 10), 10}, {key(40, 20), 10}, {key(-46, 30), 10}, {key(20, 40), 10}};
  EXPECT_EQ(of_a, expected);

  // A smaller fanout keeps the first targets only.
  FingerprintParams two = params;
  two.reference_fanout = 2;
  of_a.clear();
  for (const HashEntry& h : ReferenceHashes(peaks, two)) {
    if (h.time == 10) of_a.push_back(h);
  }
  EXPECT_EQ(of_a, (std::vector<HashEntry>{{key(10, 5), 10}, {key(-10, 10), 10}}));
}

TEST(HasherTest, ReferenceHashesEqualNaiveEnumeration) {
  std::mt19937 rng(31);
  for (int fanout : {1, 3, 5, 12}) {
    for (int trial = 0; trial < 20; ++trial) {
      FingerprintParams params;
      params.reference_fanout = fanout;
      const std::vector<Peak> peaks = RandomPeaks(rng, 400, 2000);
      std::vector<HashEntry> got = ReferenceHashes(peaks, params);
      std::vector<HashEntry> want = NaiveReferenceHashes(peaks, params);
      ASSERT_FALSE(want.empty());
      const auto order = [](const HashEntry& a, const HashEntry& b) {
        return a.time != b.time ? a.time < b.time : a.hash < b.hash;
      };
      std::sort(got.begin(), got.end(), order);
      std::sort(want.begin(), want.end(), order);
      ASSERT_EQ(got, want) << "fanout " << fanout << " trial " << trial;
      for (const HashEntry& h : got) {
        // No anchor has more than `fanout` pairs.
        ASSERT_LE(std::count_if(got.begin(), got.end(), [&](const HashEntry& o) { return o.time == h.time; }),
                  static_cast<long>(fanout) *
                      std::count_if(peaks.begin(), peaks.end(), [&](const Peak& p) { return p.frame == h.time; }));
      }
    }
  }
}

// A reference pair played back with a pitch factor and a time scale, picked
// with realistic jitter: is it looked up under its reference key? Returns the
// number of pairs tested and reports (up to 5) misses as failures.
// `tempo_corners`: time scales exactly at 1 +- max_tempo_change only.
int CheckExpansionCoversReferenceKeys(uint32_t seed, int trials, bool tempo_corners, int* missed) {
  const FingerprintParams params;
  const QueryParams query;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<HashKey> keys;
  int tested = 0;
  *missed = 0;
  for (int trial = 0; trial < trials; ++trial) {
    const uint32_t fa = 100 + static_cast<uint32_t>(rng() % 5000);
    const int dt = params.pair_min_dt + static_cast<int>(rng() % static_cast<uint32_t>(params.pair_max_dt - params.pair_min_dt + 1));
    const float ua = static_cast<float>(6.0 + uniform(rng) * 225.0);
    const float ub = std::clamp(ua + static_cast<float>(uniform(rng) * 96.0 - 48.0), 0.0f, 234.0f);
    const Peak ra = MakePeak(fa, ua), rb = MakePeak(fa + static_cast<uint32_t>(dt), ub);
    const std::vector<Peak> ref_pair = {ra, rb};
    const std::vector<HashEntry> ref = ReferenceHashes(ref_pair, params);
    if (std::abs(ub - ua) > 48.0f) continue;
    EXPECT_EQ(ref.size(), 1u);
    if (ref.size() != 1) continue;

    // Reference frequency / query frequency, and reference frames per query
    // frame, in the searched ranges; every fourth pitch on an end of its range.
    const auto signed_unit = [&] { return rng() % 2 ? 1.0 : -1.0; };
    const double pitch =
        1.0 + query.max_pitch_change * (trial % 4 == 0 ? signed_unit() : 2 * uniform(rng) - 1);
    // Corners: exactly +-5 %, the tempo change earshot must find (the range
    // searched, max_tempo_change, is wider so that frame rounding at the
    // required corners loses nothing).
    const double scale = tempo_corners ? 1.0 + 0.05 * signed_unit()
                                       : 1.0 + query.max_tempo_change * (2 * uniform(rng) - 1);
    const float shift = static_cast<float>(-kUnitsPerOctave * std::log2(pitch));
    // Peak frequencies jitter by a fraction of the tolerance the query allows
    // for (0.4 * unit_jitter); frames are rounded.
    const float amplitude = 0.4f * query.unit_jitter;
    const auto jitter = [&] { return static_cast<float>((2 * uniform(rng) - 1) * amplitude); };
    const Peak qa = MakePeak(static_cast<uint32_t>(std::lround(fa / scale)), ua + shift + jitter());
    const Peak qb = MakePeak(static_cast<uint32_t>(std::lround((fa + dt) / scale)), ub + shift + jitter());
    keys.clear();
    ExpandQueryPair(qa, qb, query, params, keys);
    ++tested;
    if (!Contains(keys, ref[0].hash)) {
      if (++*missed <= 5) {
        ADD_FAILURE() << "reference frames " << fa << "->" << fa + static_cast<uint32_t>(dt) << " units " << ua
                      << "->" << ub << "; pitch " << pitch << " scale " << scale << "; query frames " << qa.frame
                      << "->" << qb.frame;
      }
    }
  }
  return tested;
}

// The heart of the pitch/tempo tolerance: a reference pair, played back with
// a pitch factor and a tempo factor within the searched ranges, is looked up
// under (among others) its reference key.
TEST(HasherTest, ExpandQueryPairContainsTheReferenceKeyUnderPitchAndTempoChanges) {
  int missed = 0;
  EXPECT_GT(CheckExpansionCoversReferenceKeys(17, 50000, /*tempo_corners=*/false, &missed), 40000);
  EXPECT_EQ(missed, 0);
}

// At a tempo change of exactly +-5 % every reference pair is among the keys a
// query looks up, with no time jitter allowed (time_jitter_frames 0): the
// searched range (+-6 %) absorbs the frame rounding. At +-6 % itself about
// 0.1 % of pairs would be lost to rounding (documented in fingerprint_params.h).
TEST(HasherTest, ExpandQueryPairCoversTheRequiredTempoCorners) {
  int missed = 0;
  EXPECT_GT(CheckExpansionCoversReferenceKeys(18, 50000, /*tempo_corners=*/true, &missed), 40000);
  EXPECT_EQ(missed, 0);
}

TEST(HasherTest, ExpandQueryPairKeysAreDistinct) {
  // A key listed twice would make the matcher count the same posting twice.
  const FingerprintParams params;
  const QueryParams query;
  std::mt19937 rng(5);
  const std::vector<Peak> peaks = RandomPeaks(rng, 300, 1500);
  std::vector<HashKey> keys;
  size_t pairs = 0;
  ForEachPair(std::span<const Peak>(peaks), query.query_fanout, params, [&](size_t i, size_t j) {
    keys.clear();
    ExpandQueryPair(peaks[i], peaks[j], query, params, keys);
    ++pairs;
    ASSERT_FALSE(keys.empty());
    std::set<HashKey> distinct(keys.begin(), keys.end());
    ASSERT_EQ(distinct.size(), keys.size());
  });
  EXPECT_GT(pairs, 500u);
}

TEST(HasherTest, ExpandQueryPairIsNarrowerWithoutPitchOrTempoRange) {
  const FingerprintParams params;
  const QueryParams wide;
  QueryParams no_pitch = wide;
  no_pitch.max_pitch_change = 0;
  QueryParams no_tempo = wide;
  no_tempo.max_tempo_change = 0;
  QueryParams narrow = no_pitch;
  narrow.max_tempo_change = 0;
  std::mt19937 rng(8);
  const std::vector<Peak> peaks = RandomPeaks(rng, 300, 1500);
  std::vector<HashKey> k_wide, k_no_pitch, k_no_tempo, k_narrow;
  size_t pairs = 0, strictly_fewer = 0, shifted_found = 0;
  ForEachPair(std::span<const Peak>(peaks), 5, params, [&](size_t i, size_t j) {
    const Peak& a = peaks[i];
    const Peak& b = peaks[j];
    k_wide.clear(), k_no_pitch.clear(), k_no_tempo.clear(), k_narrow.clear();
    ExpandQueryPair(a, b, wide, params, k_wide);
    ExpandQueryPair(a, b, no_pitch, params, k_no_pitch);
    ExpandQueryPair(a, b, no_tempo, params, k_no_tempo);
    ExpandQueryPair(a, b, narrow, params, k_narrow);
    ++pairs;
    // Narrower ranges give subsets...
    for (HashKey k : k_narrow) {
      ASSERT_TRUE(Contains(k_no_pitch, k));
      ASSERT_TRUE(Contains(k_no_tempo, k));
    }
    for (HashKey k : k_no_pitch) ASSERT_TRUE(Contains(k_wide, k));
    for (HashKey k : k_no_tempo) ASSERT_TRUE(Contains(k_wide, k));
    // ...that still hold the pair's own key (no change at all)...
    const std::vector<Peak> pair = {a, b};
    const std::vector<HashEntry> own = ReferenceHashes(pair, params);
    ASSERT_EQ(own.size(), 1u);
    ASSERT_TRUE(Contains(k_narrow, own[0].hash));
    // ...and are strictly smaller.
    ASSERT_LT(k_no_pitch.size(), k_wide.size());
    strictly_fewer += k_narrow.size() < k_no_pitch.size() && k_narrow.size() < k_no_tempo.size();
    // Without a pitch range, a pair shifted by 5 % is mostly not found.
    const Peak sa = MakePeak(a.frame, a.unit + 3.4f), sb = MakePeak(b.frame, b.unit + 3.4f);
    k_narrow.clear();
    ExpandQueryPair(sa, sb, narrow, params, k_narrow);
    shifted_found += Contains(k_narrow, own[0].hash);
  });
  ASSERT_GT(pairs, 500u);
  // Short pairs have a single time cell whatever the tempo range.
  EXPECT_GT(strictly_fewer, pairs / 2);
  EXPECT_LT(shifted_found, pairs / 10);
}

}  // namespace
}  // namespace earshot::recognition
