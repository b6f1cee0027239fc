#include "recognition/spectrogram.h"

#include <fftw3.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <mutex>
#include <numbers>

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
    for (size_t i = 0; i < n; ++i) fft_->in[i] = src[i] * window_[i];
    fftwf_execute(fft_->plan);
    // Power floor at about -150 dB keeps log2 finite for digital silence.
    constexpr float kFloor = 1e-15f;
    for (int b = first_bin_; b <= last_bin_; ++b) {
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
