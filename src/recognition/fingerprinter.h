// From PCM to peaks and reference fingerprints: the spectrogram and the peak
// picker chained, streaming or in one call.
//
// Thread safety: a Fingerprinter is used by one thread at a time; the free
// functions are reentrant.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "recognition/fingerprint_params.h"
#include "recognition/peak_picker.h"
#include "recognition/spectrogram.h"
#include "recognition/types.h"

namespace earshot::recognition {

class Fingerprinter {
 public:
  // `peaks_per_band`: density of the peaks produced (reference or query side).
  Fingerprinter(const FingerprintParams& params, int peaks_per_band);

  // Feeds mono PCM at params.sample_rate, any chunk size. Appends the peaks
  // that became final to `out` (in frame order).
  void Push(std::span<const float> pcm, std::vector<Peak>& out);
  // End of input: appends the remaining peaks.
  void Finish(std::vector<Peak>& out);

  uint32_t frames() const { return spectrogram_.frames_emitted(); }

 private:
  FingerprintParams params_;
  Spectrogram spectrogram_;
  PeakPicker picker_;
};

// All peaks of a whole signal at the given density.
std::vector<Peak> ExtractPeaks(std::span<const float> pcm, const FingerprintParams& params,
                               int peaks_per_band);

// The reference fingerprint of a whole track: hashes plus the peak map
// (side data) that the matcher uses to verify candidates.
TrackFingerprint FingerprintTrack(TrackId track, std::span<const float> pcm,
                                  const FingerprintParams& params);

// Peak map encoding (TrackFingerprint::side_data): little-endian
//   u32 count, then count x u32 frame, then count x u16 (unit * 256).
std::vector<uint8_t> EncodePeakMap(std::span<const Peak> peaks);

// A decoded view of a peak map; frames ascending.
struct PeakMap {
  std::vector<uint32_t> frames;
  std::vector<float> units;
};
// Returns false when `bytes` is not a well-formed peak map.
bool DecodePeakMap(std::span<const uint8_t> bytes, PeakMap& out);

// Reads an encoded peak map in place, without decoding the whole track: the
// records are fixed-width, so a range of frames is found by binary search.
// Borrows the bytes (they must outlive the view). Only the size is checked;
// frames out of order (damage the index checksums did not catch) give wrong
// answers, never out-of-bounds reads.
class PeakMapView {
 public:
  // False (and an empty view) when the size does not match the count.
  bool Reset(std::span<const uint8_t> bytes);
  size_t size() const { return count_; }
  uint32_t frame(size_t i) const;
  float unit(size_t i) const;
  // Index of the first peak at or after `frame`.
  size_t LowerBound(uint32_t frame) const;

 private:
  std::span<const uint8_t> bytes_;
  size_t count_ = 0;
};

}  // namespace earshot::recognition
