// Parameters of the audio fingerprinting algorithm.
//
// Everything that changes what is stored in an index (spectrogram, peak
// picking on the reference side, hash layout, peak map) is frozen per
// algorithm version: an index records the version it was built with and
// refuses to be queried by another (see kAlgorithmVersion). Query-side knobs
// (query peak density, search ranges, thresholds) may change between releases
// without a rebuild because they only affect how an index is searched.
#pragma once

#include <cstdint>

namespace earshot::recognition {

// Bump whenever a reference-side parameter below, the hash layout or the peak
// map encoding changes. Stored in every index segment and manifest.
inline constexpr uint32_t kAlgorithmVersion = 1;

struct FingerprintParams {
  // --- Spectrogram (reference and query) ---
  int sample_rate = 8000;  // Hz; input PCM must be mono at this rate
  int fft_size = 1024;     // samples per analysis window (Hann)
  int hop = 128;           // samples between frames: 16 ms at 8 kHz
  float min_hz = 130.0f;   // lowest frequency a peak may have
  float max_hz = 3900.0f;  // highest frequency a peak may have

  // --- Peak picking ---
  int peak_freq_radius = 3;  // bins: a peak is the maximum of +-radius bins...
  int peak_time_radius = 4;  // frames: ...and +-radius frames around it
  int bands = 8;             // log-spaced frequency bands with their own quota
  int block_frames = 32;     // frames per quota block (0.512 s)
  // Peaks kept per band per block on the reference side: all of them go into
  // the peak map (verification), the most prominent into hashes (retrieval).
  int reference_peaks_per_band = 2;
  int reference_hash_peaks_per_band = 2;

  // --- Hashing (landmark pairs) ---
  int pair_min_dt = 2;       // frames between anchor and target peak
  int pair_max_dt = 60;      // (about 0.96 s)
  float pair_max_octaves = 1.0f;  // |log2(f_target / f_anchor)| at most
  int reference_fanout = 5;  // targets paired with each reference anchor

  // Frames per second of the spectrogram.
  double frames_per_second() const { return static_cast<double>(sample_rate) / hop; }
  double hop_seconds() const { return static_cast<double>(hop) / sample_rate; }
};

// Query-side knobs: how hard a query searches. Changing them needs no rebuild.
struct QueryParams {
  int query_peaks_per_band = 4;   // query peak density (per band per block)
  // Of those, the most prominent used to form pairs, each anchor with its
  // first query_fanout targets. For clips (matched whole), all four peaks
  // with three targets each rather than two with five keep pairs in bands
  // where a voice takes the strongest peaks, for 12 % less work (ACR dev
  // and held-out corpora, 2026-11-22: same overall recall, speech under a
  // voice better). Streams use Streaming().
  int retrieval_peaks_per_band = 4;
  int query_fanout = 3;           // targets paired with each query anchor
  // Time-scale factors 1 +- this are searched. With no time jitter allowed,
  // frame rounding loses about 0.1 % of pairs at the very ends of the range,
  // so the range is set above the +-5 % that must be found.
  double max_tempo_change = 0.06;
  double max_pitch_change = 0.05; // search frequency factors 1 +- this
  double time_jitter_frames = 0.0; // tolerance for peak time jitter, frames
  float unit_jitter = 0.3f;       // tolerance for peak frequency jitter, units (1/48 octave)
  int candidates = 8;             // (track, offset) candidates verified per query
  // Matches scoring below this are "no match". Calibrated on negatives
  // (2026-11-22): of 1,488 clips of 5-20 s (non-catalogued music of eight
  // Debian game-music packages, alone and under a voice, speech, room
  // noise) the best scores 4.2, of 9,622 10 and 20 s windows of 99
  // non-catalogued tracks 4.3, drum loops that used to reach 10 included
  // (see Matcher); correct answers in the ACR benchmark score 6.4 and
  // more at 10 s (median 34.5), the weakest ones under loud noise.
  double min_score = 6.0;

  // The settings of the streaming recogniser (StreamRecognizer), which
  // decides every second on a short, growing window: pairs from the two
  // strongest peaks per band with five targets each confirm a match sooner
  // (median detection latency 2.9-3.0 s against 3.4-3.5 s with the clip
  // settings on the ACR dev and held-out streams, 2026-11-22).
  static QueryParams Streaming() {
    QueryParams q;
    q.retrieval_peaks_per_band = 2;
    q.query_fanout = 5;
    return q;
  }
};

}  // namespace earshot::recognition
