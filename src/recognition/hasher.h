// Landmark hashes: pairs of spectral peaks quantised into 20-bit keys.
//
// A pair joins an anchor peak to a later target peak at most pair_max_dt
// frames and pair_max_octaves away. Its key packs three quantised values:
//   anchor frequency  7 bits  cells of 2 units (1/24 octave)
//   frequency step    6 bits  cells of 2 units, -1..+1 octave
//   time step         7 bits  cells of 5 % (logarithmic), so a tempo change
//                             moves a time step by about one cell at most
// A pitch change shifts every frequency by the same number of units: the step
// is unchanged and only the anchor cell moves. A tempo change scales every
// time step. The reference side stores each pair under its one key; a query
// looks each of its pairs up under every key the pair could have had in the
// reference given the pitch and tempo ranges searched (ExpandQueryPair), which
// makes the search tolerant of both without storing anything extra.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "recognition/fingerprint_params.h"
#include "recognition/peak_picker.h"
#include "recognition/types.h"

namespace earshot::recognition {

inline constexpr float kAnchorCellUnits = 2.0f;
inline constexpr float kStepCellUnits = 2.0f;
inline constexpr int kStepCells = 49;          // steps of -48..+48 units in cells of 2
inline constexpr double kTimeCellsPerLn = 20.0;  // time-step cell = round(20 * ln(dt))

// The key of one pair given its quantised parts (exposed for tests).
HashKey PackHash(int anchor_cell, int step_cell, int time_cell);

// Hashes of a reference track: each peak (already at reference density) is
// paired with its first `reference_fanout` targets in time.
std::vector<HashEntry> ReferenceHashes(std::span<const Peak> peaks, const FingerprintParams& params);

// Appends to `keys` every key a query pair (anchor a, target b) may have had
// in the reference under time-scale factors 1 +- max_tempo_change and
// frequency factors 1 +- max_pitch_change, allowing for the jitter of peak
// positions (QueryParams::time_jitter_frames and unit_jitter).
void ExpandQueryPair(const Peak& a, const Peak& b, const QueryParams& query,
                     const FingerprintParams& params, std::vector<HashKey>& keys);

// Calls visit(anchor_index, target_index) for every query pair: each anchor
// with its first `fanout` targets in time inside the target zone.
template <class Visit>
void ForEachPair(std::span<const Peak> peaks, int fanout, const FingerprintParams& params,
                 Visit&& visit) {
  const float max_units = params.pair_max_octaves * kUnitsPerOctave;
  for (size_t i = 0; i < peaks.size(); ++i) {
    int taken = 0;
    for (size_t j = i + 1; j < peaks.size() && taken < fanout; ++j) {
      const uint32_t dt = peaks[j].frame - peaks[i].frame;
      if (dt > static_cast<uint32_t>(params.pair_max_dt)) break;
      if (dt < static_cast<uint32_t>(params.pair_min_dt)) continue;
      const float du = peaks[j].unit - peaks[i].unit;
      if (du > max_units || du < -max_units) continue;
      visit(i, j);
      ++taken;
    }
  }
}

}  // namespace earshot::recognition
