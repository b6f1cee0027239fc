#include "recognition/spectrogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "recognition/fingerprint_params.h"
#include "test_audio.h"

namespace earshot::recognition {
namespace {

using Frames = std::vector<std::vector<float>>;

// Pushes `pcm` in chunks of `chunk` samples (0: all at once) and collects the
// frames, checking that frame indices count up from 0.
Frames Collect(std::span<const float> pcm, size_t chunk, const FingerprintParams& params = {}) {
  Spectrogram spectrogram(params);
  Frames frames;
  const auto sink = [&frames](uint32_t frame, std::span<const float> log_power) {
    EXPECT_EQ(frame, frames.size());
    frames.emplace_back(log_power.begin(), log_power.end());
  };
  if (chunk == 0) chunk = std::max<size_t>(1, pcm.size());
  for (size_t i = 0; i < pcm.size(); i += chunk) {
    spectrogram.Push(pcm.subspan(i, std::min(chunk, pcm.size() - i)), sink);
  }
  EXPECT_EQ(spectrogram.frames_emitted(), frames.size());
  return frames;
}

std::vector<float> Sine(double hz, double seconds, double amplitude = 0.5, double phase = 0.3) {
  std::vector<float> out(static_cast<size_t>(seconds * test_audio::kRate));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<float>(amplitude * std::sin(2 * std::numbers::pi * hz * static_cast<double>(i) / test_audio::kRate + phase));
  }
  return out;
}

TEST(SpectrogramTest, BinRangeCoversMinToMaxHz) {
  const FingerprintParams params;
  Spectrogram spectrogram(params);
  EXPECT_LE(spectrogram.BinToHz(spectrogram.first_bin()), params.min_hz);
  EXPECT_GT(spectrogram.BinToHz(spectrogram.first_bin() + 1), params.min_hz);
  EXPECT_GE(spectrogram.BinToHz(spectrogram.last_bin()), params.max_hz);
  EXPECT_LT(spectrogram.last_bin(), params.fft_size / 2);
  EXPECT_EQ(spectrogram.bin_count(), spectrogram.last_bin() - spectrogram.first_bin() + 1);
  const Frames frames = Collect(Sine(440, 0.2), 0);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames[0].size(), static_cast<size_t>(spectrogram.bin_count()));
}

TEST(SpectrogramTest, SineHasItsMaximumInTheNearestBin) {
  const FingerprintParams params;
  Spectrogram spectrogram(params);
  const double bin_hz = static_cast<double>(params.sample_rate) / params.fft_size;
  for (double hz : {150.3, 262.0, 440.0, 1000.0, 1234.5, 2000.0, 2999.0, 3333.3, 3850.0}) {
    SCOPED_TRACE(hz);
    const Frames frames = Collect(Sine(hz, 1.0), 0);
    ASSERT_GT(frames.size(), 50u);
    const long nearest = std::lround(hz / bin_hz);
    for (const auto& frame : frames) {
      const long argmax = std::max_element(frame.begin(), frame.end()) - frame.begin();
      ASSERT_EQ(argmax + spectrogram.first_bin(), nearest);
    }
  }
}

TEST(SpectrogramTest, FrameCountIsFloorOfSamplesMinusWindowOverHopPlusOne) {
  const FingerprintParams params;
  const std::vector<float> pcm = test_audio::WhiteNoise(1, 80037, 0.1);
  for (size_t n : {size_t{0}, size_t{1}, size_t{1023}, size_t{1024}, size_t{1025}, size_t{1151}, size_t{1152},
                   size_t{1153}, size_t{8000}, size_t{80037}}) {
    SCOPED_TRACE(n);
    const size_t expected = n < static_cast<size_t>(params.fft_size)
                                ? 0
                                : (n - static_cast<size_t>(params.fft_size)) / static_cast<size_t>(params.hop) + 1;
    EXPECT_EQ(Collect(std::span(pcm).first(n), 0).size(), expected);
    EXPECT_EQ(Collect(std::span(pcm).first(n), 100).size(), expected);
  }
}

TEST(SpectrogramTest, ChunkSizeDoesNotChangeFrames) {
  const test_audio::Score score = test_audio::ComposeMusic(7, 4.0);
  const std::vector<float> pcm = test_audio::Render(score, 0, 4.0);
  const Frames whole = Collect(pcm, 0);
  ASSERT_EQ(whole.size(), (pcm.size() - 1024) / 128 + 1);
  for (size_t chunk : {1, 7, 127, 128, 129, 1000, 1024, 5000}) {
    SCOPED_TRACE(chunk);
    EXPECT_EQ(Collect(pcm, chunk), whole);
  }
  // Irregular chunks, including empty ones.
  Spectrogram spectrogram{FingerprintParams()};
  Frames frames;
  std::mt19937 rng(3);
  for (size_t i = 0; i < pcm.size();) {
    const size_t n = std::min<size_t>(pcm.size() - i, rng() % 700);
    spectrogram.Push(std::span(pcm).subspan(i, n), [&frames](uint32_t, std::span<const float> p) {
      frames.emplace_back(p.begin(), p.end());
    });
    i += n;
  }
  EXPECT_EQ(frames, whole);
}

// Frame n covers samples [n * hop, n * hop + fft_size): a burst of noise in
// samples [4000, 4100) is seen by exactly the frames whose window overlaps it.
TEST(SpectrogramTest, FrameNCoversItsWindowOfSamples) {
  std::vector<float> pcm(12000, 0.0f);
  const std::vector<float> burst = test_audio::WhiteNoise(5, 100, 0.3);
  std::copy(burst.begin(), burst.end(), pcm.begin() + 4000);
  const Frames frames = Collect(pcm, 0);
  for (size_t n = 0; n < frames.size(); ++n) {
    const size_t begin = n * 128, end = begin + 1024;
    const bool overlaps = begin < 4100 && end > 4000;
    const float loudest = *std::max_element(frames[n].begin(), frames[n].end());
    // Hann window: the edge samples get weight ~0, so look well inside.
    const bool clearly_inside = begin + 20 < 4100 && end > 4000 + 20;
    if (!overlaps) {
      EXPECT_LT(loudest, -40.0f) << "frame " << n;
    } else if (clearly_inside) {
      EXPECT_GT(loudest, -20.0f) << "frame " << n;
    }
  }
}

TEST(SpectrogramTest, SilenceGivesFiniteFloorValues) {
  const std::vector<float> silence(16000, 0.0f);
  const Frames frames = Collect(silence, 0);
  ASSERT_EQ(frames.size(), 118u);  // (16000 - 1024) / 128 + 1
  for (const auto& frame : frames) {
    for (float v : frame) {
      ASSERT_TRUE(std::isfinite(v));
      // The floor is about -150 dB of power (log2 of ~1e-15).
      EXPECT_NEAR(v, std::log2(1e-15), 0.1);
    }
  }
  // Tiny and huge amplitudes stay finite too.
  for (double amplitude : {1e-20, 1e-8, 1e4}) {
    for (const auto& frame : Collect(Sine(1000, 0.3, amplitude), 0)) {
      for (float v : frame) ASSERT_TRUE(std::isfinite(v)) << amplitude;
    }
  }
}

TEST(SpectrogramTest, LouderSineGivesProportionallyMorePower) {
  // Power goes with amplitude squared: 2x amplitude is +2 in log2 power.
  const Frames quiet = Collect(Sine(1000, 0.5, 0.1), 0);
  const Frames loud = Collect(Sine(1000, 0.5, 0.2), 0);
  ASSERT_EQ(quiet.size(), loud.size());
  for (size_t n = 0; n < quiet.size(); ++n) {
    const float q = *std::max_element(quiet[n].begin(), quiet[n].end());
    const float l = *std::max_element(loud[n].begin(), loud[n].end());
    EXPECT_NEAR(l - q, 2.0f, 0.01f);
  }
}

TEST(FastLog2Test, AccurateOverAWideRange) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  double worst = 0;
  for (int e = -120; e <= 120; ++e) {
    for (int k = 0; k < 200; ++k) {
      const float x = std::ldexp(mantissa(rng), e);
      worst = std::max(worst, std::abs(static_cast<double>(FastLog2(x)) - std::log2(static_cast<double>(x))));
    }
    EXPECT_NEAR(FastLog2(std::ldexp(1.0f, e)), e, 0.003);
  }
  // The header promises "about 0.003".
  EXPECT_LT(worst, 0.004);
  // Values met in practice: the power floor and full-scale bins.
  for (float x : {1e-15f, 1e-6f, 0.5f, 1.0f, 3.0f, 1e3f, 1e6f, 2.6e5f}) {
    EXPECT_NEAR(FastLog2(x), std::log2(x), 0.004) << x;
  }
}

TEST(FastLog2Test, IsNonDecreasing) {
  // Peak picking compares log values: the approximation must keep the order.
  float prev_x = 1e-20f;
  float prev = FastLog2(prev_x);
  for (float x = prev_x; x < 1e20f; x = std::nextafter(x * 1.0001f, 1e30f)) {
    const float v = FastLog2(x);
    ASSERT_GE(v, prev) << prev_x << " -> " << x;
    prev = v;
    prev_x = x;
  }
  // Across each exponent boundary, at full float resolution.
  for (int e = -60; e <= 60; ++e) {
    const float at = std::ldexp(1.0f, e);
    const float below = std::nextafter(at, 0.0f);
    EXPECT_LE(FastLog2(below), FastLog2(at)) << e;
  }
}

}  // namespace
}  // namespace earshot::recognition
