#include "recognition/peak_picker.h"

#include <algorithm>
#include <bit>
#include <cmath>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace earshot::recognition {

namespace {
constexpr int kMeanRadius = 16;  // bins on each side for the local spectral mean
}

PeakPicker::PeakPicker(const FingerprintParams& params, int first_bin, int bin_count,
                       int peaks_per_band)
    : params_(params),
      first_bin_(first_bin),
      bins_(bin_count),
      quota_(std::clamp(peaks_per_band, 1, 255)),
      ring_size_(static_cast<size_t>(2 * params.peak_time_radius + 1)),
      power_(ring_size_ * static_cast<size_t>(bin_count)),
      fmax_(ring_size_ * static_cast<size_t>(bin_count)),
      band_of_bin_(static_cast<size_t>(bin_count)),
      max4_(static_cast<size_t>(bin_count)),
      prefix_(static_cast<size_t>(bin_count) + 1),
      per_band_(static_cast<size_t>(params.bands)) {
  const float octaves = std::log2(params_.max_hz / params_.min_hz);
  for (int b = 0; b < bins_; ++b) {
    const float unit = BinToUnit(static_cast<float>(b + first_bin_));
    const int band = static_cast<int>(unit / kUnitsPerOctave / octaves * params_.bands);
    band_of_bin_[static_cast<size_t>(b)] = std::clamp(band, 0, params_.bands - 1);
  }
}

float PeakPicker::BinToUnit(float bin) const {
  const float hz = bin * static_cast<float>(params_.sample_rate) / static_cast<float>(params_.fft_size);
  return kUnitsPerOctave * std::log2(std::max(hz, 1.0f) / params_.min_hz);
}

void PeakPicker::PushFrame(uint32_t frame, std::span<const float> log_power,
                           const PeakSink& sink) {
  const size_t slot = frame % ring_size_;
  float* p = power_.data() + slot * static_cast<size_t>(bins_);
  std::copy(log_power.begin(), log_power.begin() + bins_, p);
  // Frequency max filter over +-radius bins.
  float* m = fmax_.data() + slot * static_cast<size_t>(bins_);
  const int r = params_.peak_freq_radius;
  const auto direct = [&](int b) {
    const int lo = std::max(0, b - r);
    const int hi = std::min(bins_ - 1, b + r);
    float best = p[lo];
    for (int k = lo + 1; k <= hi; ++k) best = std::max(best, p[k]);
    m[b] = best;
  };
  if (r == 3 && bins_ > 8) {
    // The window of 7 bins around b is the union of the 4 bins from b - 3
    // and the 4 from b: two maxima of pairs, then one of quads (the same
    // maximum as the direct loop: only comparisons with it are made).
    // Each pass four bins at a time where SSE is there (max is exact, so the
    // lanes give the same values as the scalar tails).
    float* pair = max4_.data();
    int b = 0;
#if defined(__SSE2__)
    for (; b + 4 < bins_; b += 4) {
      _mm_storeu_ps(pair + b, _mm_max_ps(_mm_loadu_ps(p + b), _mm_loadu_ps(p + b + 1)));
    }
#endif
    for (; b + 1 < bins_; ++b) pair[b] = std::max(p[b], p[b + 1]);
    // quad[b] = max(pair[b], pair[b + 2]), in place: a step loads pair at
    // b..b+5 and stores quad at b..b+3, so the next step (loads from b+4)
    // still reads pair values, as the scalar loop does.
    float* quad = max4_.data();
    b = 0;
#if defined(__SSE2__)
    for (; b + 6 < bins_; b += 4) {
      _mm_storeu_ps(quad + b, _mm_max_ps(_mm_loadu_ps(pair + b), _mm_loadu_ps(pair + b + 2)));
    }
#endif
    for (; b + 3 < bins_; ++b) quad[b] = std::max(pair[b], pair[b + 2]);
    for (b = 0; b < 3; ++b) direct(b);
    b = 3;
#if defined(__SSE2__)
    for (; b + 7 <= bins_; b += 4) {
      _mm_storeu_ps(m + b, _mm_max_ps(_mm_loadu_ps(quad + b - 3), _mm_loadu_ps(quad + b)));
    }
#endif
    for (; b + 3 < bins_; ++b) m[b] = std::max(quad[b - 3], quad[b]);
    for (b = std::max(3, bins_ - 3); b < bins_; ++b) direct(b);
  } else {
    for (int b = 0; b < bins_; ++b) direct(b);
  }
  frames_seen_ = frame + 1;

  // A frame can be examined once peak_time_radius later frames exist.
  const uint32_t radius = static_cast<uint32_t>(params_.peak_time_radius);
  while (next_to_examine_ + radius < frames_seen_) {
    const uint32_t f = next_to_examine_++;
    if (f >= block_start_ + static_cast<uint32_t>(params_.block_frames)) EmitBlock(sink);
    ExamineFrame(f % ring_size_, f);
  }
}

void PeakPicker::Finish(const PeakSink& sink) {
  while (next_to_examine_ < frames_seen_) {
    const uint32_t f = next_to_examine_++;
    if (f >= block_start_ + static_cast<uint32_t>(params_.block_frames)) EmitBlock(sink);
    ExamineFrame(f % ring_size_, f);
  }
  EmitBlock(sink);
}

void PeakPicker::ExamineFrame(size_t slot, uint32_t frame) {
  const float* p = power_.data() + slot * static_cast<size_t>(bins_);
  const float* own_max = fmax_.data() + slot * static_cast<size_t>(bins_);
  // Neighbouring frames available in the ring (fewer at the edges of the input).
  const uint32_t radius = static_cast<uint32_t>(params_.peak_time_radius);
  const uint32_t lo = frame >= radius ? frame - radius : 0;
  const uint32_t hi = std::min(frame + radius, frames_seen_ - 1);

  prefix_[0] = 0;
  for (int b = 0; b < bins_; ++b) prefix_[static_cast<size_t>(b) + 1] = prefix_[static_cast<size_t>(b)] + p[b];

  // The frequency-max-filtered rows of the other frames in reach.
  others_.clear();
  for (uint32_t f = lo; f <= hi; ++f) {
    if (f != frame) others_.push_back(fmax_.data() + (f % ring_size_) * static_cast<size_t>(bins_));
  }
  const auto examine = [&](int b) {
    const float v = p[b];
    for (const float* other : others_) {
      if (other[b] >= v) return;
    }
    const int mlo = std::max(0, b - kMeanRadius);
    const int mhi = std::min(bins_ - 1, b + kMeanRadius);
    const float mean = (prefix_[static_cast<size_t>(mhi) + 1] - prefix_[static_cast<size_t>(mlo)]) /
                       static_cast<float>(mhi - mlo + 1);
    // Parabolic interpolation of the peak position on the log spectrum.
    const float a = p[b - 1], c = p[b + 1];
    const float denom = a - 2 * v + c;
    const float delta = denom < 0 ? 0.5f * (a - c) / denom : 0.0f;
    Peak peak;
    peak.frame = frame;
    peak.unit = BinToUnit(static_cast<float>(b + first_bin_) + delta);
    peak.prominence = v - mean;
    per_band_[static_cast<size_t>(band_of_bin_[static_cast<size_t>(b)])].push_back(peak);
  };
  // A bin is a candidate when it is the maximum of its frequency window and
  // above both neighbours; the few candidates are then checked in time.
  int b = 1;
#if defined(__SSE2__)
  // Four bins at a time: a mask of the candidates, then each of them.
  for (; b + 4 < bins_; b += 4) {
    const __m128 v = _mm_loadu_ps(p + b);
    const __m128 candidate = _mm_and_ps(_mm_cmpge_ps(v, _mm_loadu_ps(own_max + b)),
                                        _mm_and_ps(_mm_cmpgt_ps(v, _mm_loadu_ps(p + b - 1)),
                                                   _mm_cmpgt_ps(v, _mm_loadu_ps(p + b + 1))));
    for (int mask = _mm_movemask_ps(candidate); mask != 0; mask &= mask - 1)
      examine(b + std::countr_zero(static_cast<unsigned>(mask)));
  }
#endif
  for (; b + 1 < bins_; ++b) {
    const float v = p[b];
    if (v < own_max[b] || v <= p[b - 1] || v <= p[b + 1]) continue;
    examine(b);
  }
}

void PeakPicker::EmitBlock(const PeakSink& sink) {
  out_.clear();
  for (auto& band : per_band_) {
    const size_t keep = std::min(band.size(), static_cast<size_t>(quota_));
    std::partial_sort(band.begin(), band.begin() + static_cast<ptrdiff_t>(keep), band.end(),
                      [](const Peak& x, const Peak& y) { return x.prominence > y.prominence; });
    for (size_t i = 0; i < keep; ++i) {
      band[i].rank = static_cast<uint8_t>(i);
      out_.push_back(band[i]);
    }
    band.clear();
  }
  block_start_ += static_cast<uint32_t>(params_.block_frames);
  std::sort(out_.begin(), out_.end(), [](const Peak& x, const Peak& y) {
    return x.frame != y.frame ? x.frame < y.frame : x.unit < y.unit;
  });
  if (!out_.empty()) sink(out_);
}

}  // namespace earshot::recognition
