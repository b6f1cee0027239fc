#include "recognition/fingerprinter.h"

#include <cmath>
#include <cstring>

#include "recognition/hasher.h"

namespace earshot::recognition {

Fingerprinter::Fingerprinter(const FingerprintParams& params, int peaks_per_band)
    : params_(params),
      spectrogram_(params),
      picker_(params, spectrogram_.first_bin(), spectrogram_.bin_count(), peaks_per_band) {}

void Fingerprinter::Push(std::span<const float> pcm, std::vector<Peak>& out) {
  const auto sink = [&out](std::span<const Peak> peaks) {
    out.insert(out.end(), peaks.begin(), peaks.end());
  };
  spectrogram_.Push(pcm, [&](uint32_t frame, std::span<const float> log_power) {
    picker_.PushFrame(frame, log_power, sink);
  });
}

void Fingerprinter::Finish(std::vector<Peak>& out) {
  picker_.Finish([&out](std::span<const Peak> peaks) {
    out.insert(out.end(), peaks.begin(), peaks.end());
  });
}

std::vector<Peak> ExtractPeaks(std::span<const float> pcm, const FingerprintParams& params,
                               int peaks_per_band) {
  Fingerprinter fp(params, peaks_per_band);
  std::vector<Peak> peaks;
  fp.Push(pcm, peaks);
  fp.Finish(peaks);
  return peaks;
}

TrackFingerprint FingerprintTrack(TrackId track, std::span<const float> pcm,
                                  const FingerprintParams& params) {
  Fingerprinter fp(params, params.reference_peaks_per_band);
  std::vector<Peak> peaks;
  fp.Push(pcm, peaks);
  fp.Finish(peaks);
  TrackFingerprint print;
  print.track = track;
  print.frame_count = fp.frames();
  std::vector<Peak> hash_peaks;
  for (const Peak& p : peaks) {
    if (p.rank < params.reference_hash_peaks_per_band) hash_peaks.push_back(p);
  }
  print.hashes = ReferenceHashes(hash_peaks, params);
  print.side_data = EncodePeakMap(peaks);
  return print;
}

std::vector<uint8_t> EncodePeakMap(std::span<const Peak> peaks) {
  const uint32_t n = static_cast<uint32_t>(peaks.size());
  std::vector<uint8_t> out(4 + static_cast<size_t>(n) * 6);
  uint8_t* p = out.data();
  auto put32 = [&p](uint32_t v) {
    for (int i = 0; i < 4; ++i) *p++ = static_cast<uint8_t>(v >> (8 * i));
  };
  put32(n);
  for (const Peak& peak : peaks) put32(peak.frame);
  for (const Peak& peak : peaks) {
    const long q = std::lround(std::max(0.0f, peak.unit) * 256.0f);
    const uint16_t v = static_cast<uint16_t>(std::min(q, 65535L));
    *p++ = static_cast<uint8_t>(v);
    *p++ = static_cast<uint8_t>(v >> 8);
  }
  return out;
}

bool DecodePeakMap(std::span<const uint8_t> bytes, PeakMap& out) {
  out.frames.clear();
  out.units.clear();
  PeakMapView view;
  if (!view.Reset(bytes)) return false;
  out.frames.resize(view.size());
  out.units.resize(view.size());
  for (size_t i = 0; i < view.size(); ++i) {
    out.frames[i] = view.frame(i);
    if (i > 0 && out.frames[i] < out.frames[i - 1]) {
      out.frames.clear();
      out.units.clear();
      return false;
    }
    out.units[i] = view.unit(i);
  }
  return true;
}

}  // namespace earshot::recognition

namespace earshot::recognition {

bool PeakMapView::Reset(std::span<const uint8_t> bytes) {
  bytes_ = {};
  count_ = 0;
  if (bytes.size() < 4) return false;
  const uint64_t n = static_cast<uint64_t>(bytes[0]) | (static_cast<uint64_t>(bytes[1]) << 8) |
                     (static_cast<uint64_t>(bytes[2]) << 16) | (static_cast<uint64_t>(bytes[3]) << 24);
  if (bytes.size() != 4 + n * 6) return false;
  bytes_ = bytes;
  count_ = static_cast<size_t>(n);
  return true;
}

uint32_t PeakMapView::frame(size_t i) const {
  const uint8_t* p = bytes_.data() + 4 + 4 * i;
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

float PeakMapView::unit(size_t i) const {
  const uint8_t* p = bytes_.data() + 4 + 4 * count_ + 2 * i;
  return static_cast<float>(static_cast<uint16_t>(p[0] | (p[1] << 8))) / 256.0f;
}

size_t PeakMapView::LowerBound(uint32_t target) const {
  size_t lo = 0, hi = count_;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (frame(mid) < target) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

}  // namespace earshot::recognition
