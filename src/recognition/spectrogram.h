// Streaming short-time Fourier transform: mono PCM in, log-power frames out.
//
// Frames are produced every `hop` samples once `fft_size` samples have been
// seen; frame n covers samples [n*hop, n*hop + fft_size). Each frame holds the
// log2 power of bins [first_bin, last_bin] (see FingerprintParams::min_hz and
// max_hz), so consumers never see bins outside the fingerprinted range.
//
// Thread safety: a Spectrogram is used by one thread at a time; separate
// instances may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "recognition/fingerprint_params.h"

namespace earshot::recognition {

class Spectrogram {
 public:
  explicit Spectrogram(const FingerprintParams& params);
  ~Spectrogram();
  Spectrogram(const Spectrogram&) = delete;
  Spectrogram& operator=(const Spectrogram&) = delete;

  // Consumer of frames: (frame index, log2 power of bins first_bin..last_bin).
  // The span is only valid during the call.
  using FrameSink = std::function<void(uint32_t frame, std::span<const float> log_power)>;

  // Feeds samples (any chunk size) and calls `sink` for every completed frame.
  void Push(std::span<const float> samples, const FrameSink& sink);

  int first_bin() const { return first_bin_; }
  int last_bin() const { return last_bin_; }
  int bin_count() const { return last_bin_ - first_bin_ + 1; }
  uint32_t frames_emitted() const { return next_frame_; }
  // Frequency of a (fractional) FFT bin, in Hz.
  double BinToHz(double bin) const { return bin * params_.sample_rate / params_.fft_size; }

 private:
  struct Fft;
  FingerprintParams params_;
  int first_bin_ = 0;
  int last_bin_ = 0;
  std::vector<float> window_;
  std::vector<float> pending_;  // samples not yet consumed by a frame (< fft_size + hop)
  size_t pending_start_ = 0;    // index of the first unconsumed sample in pending_
  std::vector<float> log_power_;
  std::unique_ptr<Fft> fft_;
  uint32_t next_frame_ = 0;
};

// Fast log2 of a positive float (max abs error about 0.003), used on spectral
// power where full precision buys nothing.
float FastLog2(float x);

}  // namespace earshot::recognition
