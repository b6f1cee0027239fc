// Deterministic synthetic audio for the recognition tests and benchmarks.
//
// Nothing here reads a file: every signal is generated in memory from a seed
// (std::mt19937 for the composition, a counter-based hash for noise samples,
// so that any window of a signal can be rendered on its own and agrees with
// the same window of the whole signal).
//
//   Music      ComposeMusic(seed, seconds) -> Score: a melody of harmonic
//              notes with attack/decay envelopes, a chord layer, a bass line
//              and percussive noise bursts on a beat grid, in a random key.
//              Render(score, from, length, pitch, tempo) renders any window,
//              optionally with every frequency multiplied by `pitch` (noise
//              bursts included) and every time (onsets, durations,
//              envelopes) multiplied by `tempo`.
//   Speech     SpeechLike(seed, seconds): voiced syllables with gliding pitch
//              and moving formants, fricative noise bursts and pauses.
//   Noise      WhiteNoise(seed, n, rms), Rms, MixAtSnr, Resample (speed change
//              by linear interpolation: pitch and tempo together).
//   Catalog    BuildCatalog(...) / SharedCatalog(): generated tracks
//              fingerprinted into a MemoryIndex, built once per test binary.
//
// All rates are FingerprintParams().sample_rate (8 kHz). Header-only and
// free of GoogleTest so that bench/recognition_bench.cc can use it too.
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdlib>
#include <numbers>
#include <random>
#include <span>
#include <vector>

#include "recognition/fingerprint_params.h"
#include "recognition/fingerprinter.h"
#include "recognition/memory_index.h"
#include "recognition/types.h"

namespace earshot::recognition::test_audio {

inline constexpr int kRate = 8000;
inline constexpr double kNyquistGuardHz = 3950.0;  // harmonics above this are dropped

// A harmonic note: `harmonics` partials at h * f0 with amplitude
// amp * brightness^(h-1), an 8 ms attack, exponential decay and a 20 ms release.
struct Tone {
  double start = 0;     // seconds (score time)
  double duration = 0;  // seconds
  double f0 = 440;      // Hz
  int harmonics = 4;
  double amp = 0.2;
  double brightness = 0.6;
  double decay = 0.5;  // seconds (time constant of the exponential decay)
  uint32_t phase_seed = 0;
};

// A percussive burst of white noise with an exponential decay.
struct Burst {
  double start = 0;     // seconds (score time)
  double duration = 0;  // seconds
  double amp = 0.2;
  double decay = 0.03;  // seconds
  uint32_t seed = 0;
};

struct Score {
  double seconds = 0;
  std::vector<Tone> tones;
  std::vector<Burst> bursts;
};

// Uniform value in [-1, 1) from (seed, index): random access white noise.
inline float HashNoise(uint64_t seed, uint64_t index) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + index * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(static_cast<double>(z >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

inline double MidiToHz(int midi) { return 440.0 * std::exp2((midi - 69) / 12.0); }

// A random piece of music `seconds` long (notes may ring a little past it).
inline Score ComposeMusic(uint32_t seed, double seconds) {
  std::mt19937 rng(seed);
  auto uniform = [&rng](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Score score;
  score.seconds = seconds;
  const double beat = uniform(0.35, 0.65);
  const int root = pick(45, 57);  // MIDI note of the key's root (110..220 Hz)
  static constexpr int kMajor[7] = {0, 2, 4, 5, 7, 9, 11};
  static constexpr int kMinor[7] = {0, 2, 3, 5, 7, 8, 10};
  const int* scale = pick(0, 1) ? kMajor : kMinor;
  auto degree_to_midi = [&](int degree) {
    const int octave = degree >= 0 ? degree / 7 : -((-degree + 6) / 7);
    return root + 12 * octave + scale[((degree % 7) + 7) % 7];
  };

  // Chords and bass: a chord every 2 or 4 beats.
  for (double t = 0; t < seconds;) {
    const double length = beat * (pick(0, 1) ? 2 : 4);
    const int chord_root = pick(0, 6);
    for (int k = 0; k < 3; ++k) {
      score.tones.push_back({.start = t,
                             .duration = length,
                             .f0 = MidiToHz(degree_to_midi(chord_root + 2 * k) + 12),
                             .harmonics = pick(3, 5),
                             .amp = uniform(0.05, 0.09),
                             .brightness = uniform(0.4, 0.6),
                             .decay = uniform(0.8, 2.0),
                             .phase_seed = static_cast<uint32_t>(rng())});
    }
    for (double b = 0; b + 1e-9 < length; b += beat * pick(1, 2)) {
      score.tones.push_back({.start = t + b,
                             .duration = beat * 0.9,
                             .f0 = MidiToHz(degree_to_midi(chord_root) - 12),
                             .harmonics = 8,
                             .amp = uniform(0.08, 0.12),
                             .brightness = 0.75,
                             .decay = uniform(0.2, 0.5),
                             .phase_seed = static_cast<uint32_t>(rng())});
    }
    t += length;
  }
  // Melody: a random walk on the scale, with rests.
  int degree = pick(7, 14);
  for (double t = 0; t < seconds;) {
    static constexpr double kBeats[] = {0.5, 0.5, 1.0, 1.0, 1.5, 2.0};
    const double length = beat * kBeats[pick(0, 5)];
    if (uniform(0, 1) > 0.15) {
      degree = std::clamp(degree + pick(-3, 3), 3, 20);
      score.tones.push_back({.start = t,
                             .duration = length,
                             .f0 = MidiToHz(degree_to_midi(degree)),
                             .harmonics = pick(4, 8),
                             .amp = uniform(0.12, 0.2),
                             .brightness = uniform(0.5, 0.8),
                             .decay = uniform(0.15, 0.8),
                             .phase_seed = static_cast<uint32_t>(rng())});
    }
    t += length;
  }
  // Percussion: hi-hat-like ticks on (most) half beats, snare-like bursts on
  // beats 2 and 4.
  int step = 0;
  for (double t = 0; t < seconds; t += beat / 2, ++step) {
    if (uniform(0, 1) < 0.7) {
      score.bursts.push_back({.start = t, .duration = 0.05, .amp = uniform(0.05, 0.1), .decay = 0.012,
                              .seed = static_cast<uint32_t>(rng())});
    }
    if (step % 4 == 2) {
      score.bursts.push_back({.start = t, .duration = 0.15, .amp = uniform(0.1, 0.15), .decay = 0.05,
                              .seed = static_cast<uint32_t>(rng())});
    }
  }
  return score;
}

// Renders `length` seconds of `score` starting at score time `from`. With
// `tempo` != 1 every note onset, duration and envelope is stretched by
// `tempo` (output time t shows score time from + t / tempo; bursts keep
// their length); with `pitch` != 1 every frequency is multiplied by `pitch`,
// including the spectra of the noise bursts.
inline std::vector<float> Render(const Score& score, double from, double length, double pitch = 1.0,
                                 double tempo = 1.0) {
  const size_t n = static_cast<size_t>(std::max(0.0, std::floor(length * kRate)));
  std::vector<double> out(n, 0.0);
  std::vector<double> env;
  for (const Tone& tone : score.tones) {
    const double start = (tone.start - from) * tempo;
    const double dur = tone.duration * tempo;
    if (start + dur <= 0 || start >= length) continue;
    const long first = std::max(0L, static_cast<long>(std::ceil(start * kRate)));
    const long last = std::min(static_cast<long>(n), static_cast<long>(std::ceil((start + dur) * kRate)));
    if (last <= first) continue;
    const double attack = 0.008 * tempo;
    const double release = std::min(0.02 * tempo, dur / 2);
    const double decay = tone.decay * tempo;
    env.resize(static_cast<size_t>(last - first));
    for (long i = first; i < last; ++i) {
      const double tau = static_cast<double>(i) / kRate - start;
      double e = tau < attack ? tau / attack : std::exp(-(tau - attack) / decay);
      if (tau > dur - release) e *= std::max(0.0, (dur - tau) / release);
      env[static_cast<size_t>(i - first)] = tone.amp * e;
    }
    std::mt19937 phase_rng(tone.phase_seed);
    double amp = 1.0;
    for (int h = 1; h <= tone.harmonics; ++h, amp *= tone.brightness) {
      const double f = h * tone.f0 * pitch;
      const double phase0 = std::uniform_real_distribution<double>(0, 2 * std::numbers::pi)(phase_rng);
      if (f >= kNyquistGuardHz) continue;
      const double w = 2 * std::numbers::pi * f / kRate;
      // Phase at the first rendered sample, then a complex rotation per sample.
      const double tau0 = static_cast<double>(first) / kRate - start;
      const std::complex<double> z = std::polar(1.0, phase0 + 2 * std::numbers::pi * f * tau0);
      const std::complex<double> step = std::polar(1.0, w);
      // z *= step written out (the same products and sums, so the same
      // samples): unoptimised sanitizer builds would otherwise call a
      // function per operator and per sample.
      double zr = z.real(), zi = z.imag();
      const double sr = step.real(), si = step.imag();
      double* const o = out.data();
      const double* const e = env.data();
      for (long i = first; i < last; ++i) {
        o[i] += amp * e[i - first] * zi;
        const double next_r = zr * sr - zi * si;
        zi = zr * si + zi * sr;
        zr = next_r;
      }
    }
  }
  for (const Burst& burst : score.bursts) {
    const double start = (burst.start - from) * tempo;
    if (start + burst.duration <= 0 || start >= length) continue;
    const long first = std::max(0L, static_cast<long>(std::ceil(start * kRate)));
    const long last =
        std::min(static_cast<long>(n), static_cast<long>(std::ceil((start + burst.duration) * kRate)));
    for (long i = first; i < last; ++i) {
      const double tau = static_cast<double>(i) / kRate - start;
      // The noise is read `pitch` times faster (interpolated), so that its
      // spectrum moves with the pitch like everything else.
      const double x = std::max(0.0, tau * kRate * pitch);
      const uint64_t k = static_cast<uint64_t>(x);
      const double frac = x - static_cast<double>(k);
      const double noise = (1 - frac) * HashNoise(burst.seed, k) + frac * HashNoise(burst.seed, k + 1);
      out[static_cast<size_t>(i)] += burst.amp * std::exp(-tau / burst.decay) * noise;
    }
  }
  return std::vector<float>(out.begin(), out.end());
}

// Speech-like interference: voiced syllables (harmonics of a gliding f0 shaped
// by three gliding formants), fricative noise bursts and pauses.
inline std::vector<float> SpeechLike(uint32_t seed, double seconds, double rms = 0.1) {
  std::mt19937 rng(seed);
  auto uniform = [&rng](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  const size_t n = static_cast<size_t>(seconds * kRate);
  std::vector<double> out(n, 0.0);
  const double speaker_f0 = uniform(100, 200);
  size_t pos = 0;
  while (pos < n) {
    const double length = uniform(0.08, 0.3);
    const size_t len = std::min(n - pos, static_cast<size_t>(length * kRate));
    const double f0_a = speaker_f0 * uniform(0.8, 1.25), f0_b = speaker_f0 * uniform(0.8, 1.25);
    const double formants_a[3] = {uniform(300, 800), uniform(900, 2300), uniform(2300, 3000)};
    const double formants_b[3] = {uniform(300, 800), uniform(900, 2300), uniform(2300, 3000)};
    double phase = uniform(0, 2 * std::numbers::pi);
    for (size_t i = 0; i < len; ++i) {
      const double x = static_cast<double>(i) / static_cast<double>(len);
      const double f0 = f0_a + (f0_b - f0_a) * x;
      phase += 2 * std::numbers::pi * f0 / kRate;
      const double envelope = std::sin(std::numbers::pi * x);
      double v = 0;
      for (int h = 1; h * f0 < 3500; ++h) {
        double gain = 0.05;
        for (int k = 0; k < 3; ++k) {
          const double formant = formants_a[k] + (formants_b[k] - formants_a[k]) * x;
          const double d = (h * f0 - formant) / (60.0 + 40.0 * k);
          gain += std::exp(-0.5 * d * d) / (1 + k);
        }
        v += gain * std::sin(h * phase);
      }
      out[pos + i] += envelope * v;
    }
    pos += len;
    if (uniform(0, 1) < 0.3 && pos < n) {  // fricative
      const size_t flen = std::min(n - pos, static_cast<size_t>(uniform(0.05, 0.15) * kRate));
      const uint32_t noise_seed = static_cast<uint32_t>(rng());
      for (size_t i = 0; i < flen; ++i) {
        const double x = static_cast<double>(i) / static_cast<double>(flen);
        out[pos + i] += 0.6 * std::sin(std::numbers::pi * x) * HashNoise(noise_seed, i);
      }
      pos += flen;
    }
    const double pause = uniform(0, 1) < 0.15 ? uniform(0.3, 0.6) : uniform(0.03, 0.12);
    pos += static_cast<size_t>(pause * kRate);
  }
  double sum = 0;
  for (double v : out) sum += v * v;
  const double gain = sum > 0 ? rms / std::sqrt(sum / static_cast<double>(n)) : 0;
  std::vector<float> result(n);
  for (size_t i = 0; i < n; ++i) result[i] = static_cast<float>(out[i] * gain);
  return result;
}

inline std::vector<float> WhiteNoise(uint32_t seed, size_t n, double rms) {
  std::vector<float> out(n);
  // HashNoise is uniform on [-1, 1): its rms is 1/sqrt(3).
  const double gain = rms * std::sqrt(3.0);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(gain * HashNoise(seed, i));
  return out;
}

inline double Rms(std::span<const float> x) {
  if (x.empty()) return 0;
  double sum = 0;
  for (float v : x) sum += static_cast<double>(v) * v;
  return std::sqrt(sum / static_cast<double>(x.size()));
}

// signal + g * interference, g chosen so that rms(signal) / rms(g * interference)
// is `snr_db`; the result has the length of `signal` (interference is cycled).
inline std::vector<float> MixAtSnr(std::span<const float> signal, std::span<const float> interference,
                                   double snr_db) {
  std::vector<float> out(signal.begin(), signal.end());
  const double ri = Rms(interference);
  if (ri == 0 || interference.empty()) return out;
  const double g = Rms(signal) / ri / std::pow(10.0, snr_db / 20.0);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] += static_cast<float>(g * interference[i % interference.size()]);
  }
  return out;
}

// Plays `x` `speed` times faster (speed 1.05: 5 % faster and 5 % higher),
// by linear interpolation.
inline std::vector<float> Resample(std::span<const float> x, double speed) {
  if (x.empty()) return {};
  const size_t n = static_cast<size_t>(std::floor(static_cast<double>(x.size() - 1) / speed)) + 1;
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const double pos = static_cast<double>(i) * speed;
    const size_t k = static_cast<size_t>(pos);
    const double frac = pos - static_cast<double>(k);
    const float a = x[k];
    const float b = k + 1 < x.size() ? x[k + 1] : a;
    out[i] = static_cast<float>(a + (b - a) * frac);
  }
  return out;
}

inline void Append(std::vector<float>& to, std::span<const float> x) { to.insert(to.end(), x.begin(), x.end()); }

// Generated tracks, fingerprinted into a MemoryIndex. Track i has id
// first_id + i and score scores[i].
struct Catalog {
  TrackId first_id = 1;
  std::vector<Score> scores;
  std::vector<TrackFingerprint> prints;  // as added to the index (side data included)
  MemoryIndex index;

  const Score& score(TrackId id) const { return scores[id - first_id]; }
};

inline Catalog BuildCatalog(uint32_t seed, size_t tracks, double min_seconds, double max_seconds,
                            const FingerprintParams& params, TrackId first_id = 1) {
  Catalog catalog;
  std::mt19937 rng(seed);
  catalog.first_id = first_id;
  for (size_t i = 0; i < tracks; ++i) {
    const double seconds = std::uniform_real_distribution<double>(min_seconds, max_seconds)(rng);
    catalog.scores.push_back(ComposeMusic(static_cast<uint32_t>(rng()), seconds));
    const std::vector<float> pcm = Render(catalog.scores.back(), 0, seconds);
    TrackFingerprint print = FingerprintTrack(first_id + static_cast<TrackId>(i), pcm, params);
    catalog.prints.push_back(print);
    const Status added = catalog.index.Add(std::move(print));
    if (!added) std::abort();  // duplicate id: a bug in the caller
  }
  return catalog;
}

// 30 tracks of 40-60 s (seed 2024), built on first use and shared by every
// test of the binary.
inline const Catalog& SharedCatalog() {
  static const Catalog catalog = BuildCatalog(2024, 30, 40.0, 60.0, FingerprintParams());
  return catalog;
}

}  // namespace earshot::recognition::test_audio
