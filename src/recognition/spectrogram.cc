#include "recognition/spectrogram.h"

#include <fftw3.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <mutex>
#include <numbers>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace earshot::recognition {

namespace {
// FFTW's planner keeps global state and is not thread-safe; execution of a
// created plan is. Plans are created under this lock.
std::mutex& FftwPlannerMutex() {
  static std::mutex mutex;
  return mutex;
}
}  // namespace

struct Spectrogram::Fft {
  explicit Fft(int n) : size(n) {
    in = fftwf_alloc_real(static_cast<size_t>(n));
    out = fftwf_alloc_complex(static_cast<size_t>(n / 2 + 1));
    std::lock_guard lock(FftwPlannerMutex());
    plan = fftwf_plan_dft_r2c_1d(n, in, out, FFTW_ESTIMATE);
  }
  ~Fft() {
    std::lock_guard lock(FftwPlannerMutex());
    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(out);
  }
  Fft(const Fft&) = delete;
  Fft& operator=(const Fft&) = delete;
  int size;
  float* in;
  fftwf_complex* out;
  fftwf_plan plan;
};

float FastLog2(float x) {
  // Split into exponent and mantissa m in [1,2); log2(m) by a cubic fit.
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const float exponent = static_cast<float>(static_cast<int>((bits >> 23) & 0xff) - 127);
  const float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f800000u);
  const float p = ((0.15824871f * m - 1.05187502f) * m + 3.04788415f) * m - 2.15444590f;
  return exponent + p;
}

#if defined(__SSE2__)
namespace {
// FastLog2 of four floats, operation for operation.
__m128 FastLog2x4(__m128 x) {
  const __m128i bits = _mm_castps_si128(x);
  const __m128 exponent = _mm_cvtepi32_ps(_mm_sub_epi32(
      _mm_and_si128(_mm_srli_epi32(bits, 23), _mm_set1_epi32(0xff)), _mm_set1_epi32(127)));
  const __m128 m = _mm_castsi128_ps(
      _mm_or_si128(_mm_and_si128(bits, _mm_set1_epi32(0x007fffff)), _mm_set1_epi32(0x3f800000)));
  __m128 p = _mm_sub_ps(_mm_mul_ps(_mm_set1_ps(0.15824871f), m), _mm_set1_ps(1.05187502f));
  p = _mm_add_ps(_mm_mul_ps(p, m), _mm_set1_ps(3.04788415f));
  p = _mm_sub_ps(_mm_mul_ps(p, m), _mm_set1_ps(2.15444590f));
  return _mm_add_ps(exponent, p);
}
}  // namespace
#endif

Spectrogram::Spectrogram(const FingerprintParams& params)
    : params_(params), fft_(std::make_unique<Fft>(params.fft_size)) {
  const int n = params_.fft_size;
  window_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    window_[static_cast<size_t>(i)] =
        static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / n));
  }
  const double bin_hz = static_cast<double>(params_.sample_rate) / n;
  first_bin_ = std::max(1, static_cast<int>(std::floor(params_.min_hz / bin_hz)));
  last_bin_ = std::min(n / 2 - 1, static_cast<int>(std::ceil(params_.max_hz / bin_hz)));
  log_power_.resize(static_cast<size_t>(bin_count()));
  pending_.reserve(static_cast<size_t>(n + params_.hop) * 2);
}

Spectrogram::~Spectrogram() = default;

void Spectrogram::Push(std::span<const float> samples, const FrameSink& sink) {
  const size_t n = static_cast<size_t>(params_.fft_size);
  const size_t hop = static_cast<size_t>(params_.hop);
  size_t consumed = 0;
  while (consumed < samples.size()) {
    // Top up the pending buffer to one full window, then emit frames.
    const size_t have = pending_.size() - pending_start_;
    const size_t want = n > have ? n - have : 0;
    const size_t take = std::min(want, samples.size() - consumed);
    pending_.insert(pending_.end(), samples.begin() + static_cast<ptrdiff_t>(consumed),
                    samples.begin() + static_cast<ptrdiff_t>(consumed + take));
    consumed += take;
    if (pending_.size() - pending_start_ < n) break;

    const float* src = pending_.data() + pending_start_;
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 4 <= n; i += 4) {
      _mm_storeu_ps(fft_->in + i,
                    _mm_mul_ps(_mm_loadu_ps(src + i), _mm_loadu_ps(window_.data() + i)));
    }
#endif
    for (; i < n; ++i) fft_->in[i] = src[i] * window_[i];
    fftwf_execute(fft_->plan);
    // Power floor at about -150 dB keeps log2 finite for digital silence.
    constexpr float kFloor = 1e-15f;
    int b = first_bin_;
#if defined(__SSE2__)
    // Four bins at a time: the same operations as FastLog2, in SSE2 lanes.
    const float* out = &fft_->out[0][0];
    for (; b + 4 <= last_bin_ + 1; b += 4) {
      const __m128 lo = _mm_loadu_ps(out + 2 * b);      // re0 im0 re1 im1
      const __m128 hi = _mm_loadu_ps(out + 2 * b + 4);  // re2 im2 re3 im3
      const __m128 re = _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
      const __m128 im = _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
      const __m128 power =
          _mm_add_ps(_mm_add_ps(_mm_mul_ps(re, re), _mm_mul_ps(im, im)), _mm_set1_ps(kFloor));
      _mm_storeu_ps(log_power_.data() + (b - first_bin_), FastLog2x4(power));
    }
#endif
    for (; b <= last_bin_; ++b) {
      const float re = fft_->out[b][0];
      const float im = fft_->out[b][1];
      log_power_[static_cast<size_t>(b - first_bin_)] = FastLog2(re * re + im * im + kFloor);
    }
    sink(next_frame_++, log_power_);
    pending_start_ += hop;
    if (pending_start_ >= n) {
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pending_start_));
      pending_start_ = 0;
    }
  }
}

}  // namespace earshot::recognition
