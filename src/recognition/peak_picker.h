// Streaming spectral peak picking with a per-band quota.
//
// A peak is a bin that is the strict maximum of its (2*peak_freq_radius+1) x
// (2*peak_time_radius+1) neighbourhood in the log-power spectrogram. Peaks are
// ranked by prominence (log power above the mean of the surrounding +-16 bins
// of the same frame: a local spectral whitening, so that quiet bands compete
// with loud ones) and, within each of `bands` log-spaced frequency bands and
// each block of `block_frames` frames, only the `peaks_per_band` most
// prominent survive. The quota keeps peaks in every band even when a voice or
// noise dominates some of them: that is what lets background music survive a
// streamer talking over it.
//
// Latency: a peak is emitted once its block and peak_time_radius further
// frames have been seen. Call Finish() at the end of input to flush.
//
// Thread safety: one thread at a time per instance.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "recognition/fingerprint_params.h"

namespace earshot::recognition {

// Frequencies are handled on a log scale: one unit is 1/48 octave (a quarter
// of a semitone), counted from FingerprintParams::min_hz.
inline constexpr float kUnitsPerOctave = 48.0f;

struct Peak {
  uint32_t frame = 0;     // spectrogram frame of the peak
  float unit = 0;         // log frequency in 1/48-octave units above min_hz (interpolated)
  float prominence = 0;   // log2 power above the local spectral mean
  uint8_t rank = 0;       // 0 = most prominent of its band and block
};

class PeakPicker {
 public:
  // `peaks_per_band` is the quota per band per block (at most 255).
  PeakPicker(const FingerprintParams& params, int first_bin, int bin_count, int peaks_per_band);

  using PeakSink = std::function<void(std::span<const Peak> peaks)>;

  // Adds one spectrogram frame (log2 power of bins first_bin..). Frames must
  // arrive in order. Calls `sink` with the peaks of each completed block,
  // sorted by frame then frequency.
  void PushFrame(uint32_t frame, std::span<const float> log_power, const PeakSink& sink);

  // Flushes the remaining peaks (end of input).
  void Finish(const PeakSink& sink);

 private:
  void ExamineFrame(size_t slot, uint32_t frame);
  void EmitBlock(const PeakSink& sink);
  float BinToUnit(float bin) const;

  FingerprintParams params_;
  int first_bin_;
  int bins_;
  int quota_;
  size_t ring_size_;
  std::vector<float> power_;    // ring of frames: power_[slot * bins_ + b]
  std::vector<float> fmax_;     // ring of frequency-max-filtered frames
  uint32_t frames_seen_ = 0;
  uint32_t next_to_examine_ = 0;
  std::vector<int> band_of_bin_;
  std::vector<float> max4_;           // scratch for the max filter
  std::vector<const float*> others_;  // scratch: rows of the neighbouring frames
  std::vector<float> prefix_;   // scratch for the local mean
  std::vector<Peak> block_candidates_;
  std::vector<std::vector<Peak>> per_band_;
  std::vector<Peak> out_;
  uint32_t block_start_ = 0;
};

}  // namespace earshot::recognition
