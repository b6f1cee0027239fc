#include "recognition/peak_picker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <utility>
#include <vector>

#include "recognition/fingerprint_params.h"
#include "recognition/spectrogram.h"
#include "test_audio.h"

namespace earshot::recognition {
namespace {

// What the picker emitted: each sink call, and the number of frames pushed
// when it happened (-1: during Finish).
struct Emitted {
  std::vector<std::vector<Peak>> calls;
  std::vector<long> pushed_when;
  std::vector<Peak> All() const {
    std::vector<Peak> all;
    for (const auto& c : calls) all.insert(all.end(), c.begin(), c.end());
    return all;
  }
};

Emitted Pick(std::span<const float> pcm, int peaks_per_band, const FingerprintParams& params = {},
             bool finish = true) {
  Spectrogram spectrogram(params);
  PeakPicker picker(params, spectrogram.first_bin(), spectrogram.bin_count(), peaks_per_band);
  Emitted emitted;
  long pushed = 0;
  const auto sink = [&](std::span<const Peak> peaks) {
    emitted.calls.emplace_back(peaks.begin(), peaks.end());
    emitted.pushed_when.push_back(pushed);
  };
  spectrogram.Push(pcm, [&](uint32_t frame, std::span<const float> log_power) {
    ++pushed;
    picker.PushFrame(frame, log_power, sink);
  });
  if (finish) {
    pushed = -1;
    picker.Finish(sink);
  }
  return emitted;
}

float ExpectedUnit(double hz, const FingerprintParams& params = {}) {
  return static_cast<float>(kUnitsPerOctave * std::log2(hz / params.min_hz));
}

// The band of a peak: bands split [min_hz, max_hz] evenly on a log scale and
// a peak belongs to the band of its (integer) bin.
int BandOf(const Peak& peak, const FingerprintParams& params) {
  const double bin_hz = static_cast<double>(params.sample_rate) / params.fft_size;
  const double hz = params.min_hz * std::exp2(peak.unit / kUnitsPerOctave);
  const double bin = std::round(hz / bin_hz);
  const double octaves = std::log2(static_cast<double>(params.max_hz) / params.min_hz);
  const double unit_of_bin = kUnitsPerOctave * std::log2(bin * bin_hz / params.min_hz);
  return std::clamp(static_cast<int>(unit_of_bin / kUnitsPerOctave / octaves * params.bands), 0, params.bands - 1);
}

using Group = std::pair<uint32_t, int>;  // (block, band)

std::map<Group, std::vector<Peak>> ByBlockAndBand(const std::vector<Peak>& peaks, const FingerprintParams& params) {
  std::map<Group, std::vector<Peak>> groups;
  for (const Peak& p : peaks) {
    groups[{p.frame / static_cast<uint32_t>(params.block_frames), BandOf(p, params)}].push_back(p);
  }
  return groups;
}

std::vector<float> Sine(double hz, double seconds, double amplitude = 0.5) {
  std::vector<float> out(static_cast<size_t>(seconds * test_audio::kRate));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<float>(amplitude * std::sin(2 * std::numbers::pi * hz * static_cast<double>(i) / test_audio::kRate));
  }
  return out;
}

TEST(PeakPickerTest, StationarySineYieldsPeaksAtItsFrequency) {
  const FingerprintParams params;
  for (double hz : {200.0, 262.0, 440.0, 1000.0, 1777.0, 2500.0, 3500.0}) {
    SCOPED_TRACE(hz);
    // A faint noise floor (-60 dB) stands in for the rest of the spectrum.
    const std::vector<float> pcm =
        test_audio::MixAtSnr(Sine(hz, 5.0), test_audio::WhiteNoise(9, 40000, 1.0), 60.0);
    const std::vector<Peak> peaks = Pick(pcm, 4).All();
    const float expected = ExpectedUnit(hz);
    size_t at_sine = 0;
    for (const Peak& p : peaks) {
      if (std::abs(p.unit - expected) <= 0.3f) {
        ++at_sine;
        // The sine stands far above the noise floor.
        EXPECT_GT(p.prominence, 10.0f);
      } else {
        // Anything else is the faint noise floor, far less prominent.
        EXPECT_LT(p.prominence, 8.0f) << "unit " << p.unit << " expected " << expected;
      }
    }
    // Several peaks at the sine (not one per frame: the sine is stationary,
    // so it is a strict time maximum only where its power ripples).
    EXPECT_GE(at_sine, 5u);
  }
}

TEST(PeakPickerTest, NoMoreThanTheQuotaPerBandPerBlock) {
  const FingerprintParams params;
  const std::vector<float> noise = test_audio::WhiteNoise(4, 20 * 8000, 0.2);
  for (int quota : {1, 3, 8}) {
    SCOPED_TRACE(quota);
    const std::vector<Peak> peaks = Pick(noise, quota).All();
    const auto groups = ByBlockAndBand(peaks, params);
    const uint32_t full_blocks = static_cast<uint32_t>((noise.size() - 1024) / 128 + 1) / 32;
    size_t at_quota = 0, full_groups = 0;
    for (const auto& [group, members] : groups) {
      EXPECT_LE(members.size(), static_cast<size_t>(quota)) << "block " << group.first << " band " << group.second;
      if (group.first < full_blocks) {
        ++full_groups;
        at_quota += members.size() == static_cast<size_t>(quota);
      }
    }
    // Every band of every block has peaks in white noise, and the bound is
    // reached (not vacuous): the narrow low bands have fewer local maxima
    // than a large quota, the others fill it.
    EXPECT_EQ(full_groups, static_cast<size_t>(full_blocks * static_cast<uint32_t>(params.bands)));
    EXPECT_GE(at_quota, full_groups / 2);
  }
}

TEST(PeakPickerTest, RanksAreZeroToKMinusOneInOrderOfProminence) {
  const FingerprintParams params;
  const test_audio::Score score = test_audio::ComposeMusic(21, 20.0);
  const std::vector<float> pcm = test_audio::MixAtSnr(test_audio::Render(score, 0, 20.0),
                                                      test_audio::WhiteNoise(2, 160000, 1.0), 20.0);
  for (int quota : {1, 4, 8}) {
    SCOPED_TRACE(quota);
    for (const auto& [group, members] : ByBlockAndBand(Pick(pcm, quota).All(), params)) {
      std::vector<Peak> by_rank = members;
      std::sort(by_rank.begin(), by_rank.end(), [](const Peak& a, const Peak& b) { return a.rank < b.rank; });
      for (size_t i = 0; i < by_rank.size(); ++i) {
        ASSERT_EQ(by_rank[i].rank, i) << "block " << group.first << " band " << group.second;
        if (i > 0) {
          ASSERT_GE(by_rank[i - 1].prominence, by_rank[i].prominence);
        }
      }
    }
  }
}

TEST(PeakPickerTest, QuotaKeepsTheMostProminentPeaksOfEachBandAndBlock) {
  // The peaks kept under a quota of k are the k most prominent of those kept
  // without a (practical) quota, and carry the same ranks.
  const FingerprintParams params;
  const test_audio::Score score = test_audio::ComposeMusic(22, 15.0);
  const std::vector<float> pcm = test_audio::Render(score, 0, 15.0);
  const auto all = ByBlockAndBand(Pick(pcm, 255).All(), params);
  for (int quota : {2, 5}) {
    SCOPED_TRACE(quota);
    const auto kept = ByBlockAndBand(Pick(pcm, quota).All(), params);
    for (const auto& [group, members] : all) {
      std::vector<Peak> expected = members;
      std::sort(expected.begin(), expected.end(), [](const Peak& a, const Peak& b) { return a.rank < b.rank; });
      expected.resize(std::min(expected.size(), static_cast<size_t>(quota)));
      const auto it = kept.find(group);
      ASSERT_NE(it, kept.end());
      std::vector<Peak> got = it->second;
      std::sort(got.begin(), got.end(), [](const Peak& a, const Peak& b) { return a.rank < b.rank; });
      ASSERT_EQ(got.size(), expected.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].frame, expected[i].frame);
        EXPECT_EQ(got[i].unit, expected[i].unit);
        EXPECT_EQ(got[i].prominence, expected[i].prominence);
        EXPECT_EQ(got[i].rank, expected[i].rank);
      }
    }
  }
}

TEST(PeakPickerTest, OutputIsSortedByFrameThenFrequencyOneBlockPerCall) {
  const FingerprintParams params;
  const test_audio::Score score = test_audio::ComposeMusic(23, 12.0);
  const Emitted emitted = Pick(test_audio::Render(score, 0, 12.0), 8);
  ASSERT_GT(emitted.calls.size(), 10u);
  uint32_t last_frame = 0;
  for (const auto& call : emitted.calls) {
    ASSERT_FALSE(call.empty());
    const uint32_t block = call.front().frame / static_cast<uint32_t>(params.block_frames);
    for (size_t i = 0; i < call.size(); ++i) {
      EXPECT_EQ(call[i].frame / static_cast<uint32_t>(params.block_frames), block);
      EXPECT_GE(call[i].frame, last_frame);
      if (i > 0 && call[i].frame == call[i - 1].frame) {
        EXPECT_LT(call[i - 1].unit, call[i].unit);
      }
      last_frame = call[i].frame;
    }
  }
}

TEST(PeakPickerTest, BlockIsEmittedOncePeakTimeRadiusFramesFollowIt) {
  // Block k (frames [32k, 32k+32)) comes out when frame 32(k+1) + radius has
  // been pushed: that is the picker's documented latency.
  const FingerprintParams params;
  const test_audio::Score score = test_audio::ComposeMusic(24, 8.0);
  const Emitted emitted = Pick(test_audio::Render(score, 0, 8.0), 4);
  ASSERT_GT(emitted.calls.size(), 3u);
  const long block = params.block_frames;
  const long radius = params.peak_time_radius;
  for (size_t c = 0; c < emitted.calls.size(); ++c) {
    const long k = emitted.calls[c].front().frame / block;
    if (emitted.pushed_when[c] < 0) continue;  // flushed by Finish
    EXPECT_EQ(emitted.pushed_when[c], block * (k + 1) + radius + 1) << "block " << k;
  }
}

TEST(PeakPickerTest, FinishFlushesTheLastBlock) {
  const FingerprintParams params;
  const test_audio::Score score = test_audio::ComposeMusic(25, 5.0);
  const std::vector<float> pcm = test_audio::Render(score, 0, 5.0);
  const uint32_t frames = static_cast<uint32_t>((pcm.size() - 1024) / 128 + 1);
  const uint32_t last_block_start = (frames - 1) / 32 * 32;

  const std::vector<Peak> unfinished = Pick(pcm, 4, params, /*finish=*/false).All();
  ASSERT_FALSE(unfinished.empty());
  for (const Peak& p : unfinished) EXPECT_LT(p.frame, last_block_start);

  const Emitted finished = Pick(pcm, 4, params, /*finish=*/true);
  const std::vector<Peak> all = finished.All();
  ASSERT_GT(all.size(), unfinished.size());
  EXPECT_GE(all.back().frame, last_block_start);
  EXPECT_LT(all.back().frame, frames);
  // What was emitted before Finish is unchanged by it.
  for (size_t i = 0; i < unfinished.size(); ++i) {
    EXPECT_EQ(all[i].frame, unfinished[i].frame);
    EXPECT_EQ(all[i].unit, unfinished[i].unit);
  }

  // Input shorter than one block: nothing until Finish.
  const std::vector<float> short_pcm(pcm.begin(), pcm.begin() + 3000);
  EXPECT_TRUE(Pick(short_pcm, 4, params, false).calls.empty());
  const Emitted short_finished = Pick(short_pcm, 4, params, true);
  ASSERT_EQ(short_finished.calls.size(), 1u);
  EXPECT_EQ(short_finished.pushed_when[0], -1);
}

}  // namespace
}  // namespace earshot::recognition
