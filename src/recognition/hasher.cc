#include "recognition/hasher.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace earshot::recognition {

namespace {

constexpr int kMaxDt = 255;

// Time-step cell of an integer frame step, precomputed for 1..kMaxDt.
const std::array<uint8_t, kMaxDt + 1>& TimeCells() {
  static const std::array<uint8_t, kMaxDt + 1> cells = [] {
    std::array<uint8_t, kMaxDt + 1> c{};
    for (int dt = 1; dt <= kMaxDt; ++dt) {
      c[static_cast<size_t>(dt)] =
          static_cast<uint8_t>(std::min(127L, std::lround(kTimeCellsPerLn * std::log(dt))));
    }
    return c;
  }();
  return cells;
}

int AnchorCell(float unit) { return std::clamp(static_cast<int>(unit / kAnchorCellUnits), 0, 127); }

int StepCell(float du) {
  return std::clamp(static_cast<int>((du + 48.0f) / kStepCellUnits), 0, kStepCells - 1);
}

}  // namespace

HashKey PackHash(int anchor_cell, int step_cell, int time_cell) {
  return (static_cast<HashKey>(anchor_cell) << 13) | (static_cast<HashKey>(step_cell) << 7) |
         static_cast<HashKey>(time_cell);
}

std::vector<HashEntry> ReferenceHashes(std::span<const Peak> peaks, const FingerprintParams& params) {
  std::vector<HashEntry> out;
  out.reserve(peaks.size() * static_cast<size_t>(params.reference_fanout));
  const auto& tcells = TimeCells();
  ForEachPair(peaks, params.reference_fanout, params, [&](size_t i, size_t j) {
    const Peak& a = peaks[i];
    const Peak& b = peaks[j];
    const uint32_t dt = std::min<uint32_t>(b.frame - a.frame, kMaxDt);
    out.push_back({PackHash(AnchorCell(a.unit), StepCell(b.unit - a.unit), tcells[dt]), a.frame});
  });
  return out;
}

void ExpandQueryPair(const Peak& a, const Peak& b, const QueryParams& query,
                     const FingerprintParams& params, std::vector<HashKey>& keys) {
  const float kUnitJitter = query.unit_jitter;
  const double kFrameJitter = query.time_jitter_frames;
  const float pitch_units =
      kUnitsPerOctave * static_cast<float>(std::log2(1.0 + query.max_pitch_change));
  const int a_lo = AnchorCell(a.unit - pitch_units - kUnitJitter);
  const int a_hi = AnchorCell(a.unit + pitch_units + kUnitJitter);
  const float du = b.unit - a.unit;
  const int s_lo = StepCell(du - kUnitJitter * 1.5f);
  const int s_hi = StepCell(du + kUnitJitter * 1.5f);

  const double dt = static_cast<double>(b.frame - a.frame);
  const int dt_lo = std::max(params.pair_min_dt,
                             static_cast<int>(std::floor(dt * (1.0 - query.max_tempo_change) - kFrameJitter)));
  const int dt_hi = std::min(std::min(params.pair_max_dt, kMaxDt),
                             static_cast<int>(std::ceil(dt * (1.0 + query.max_tempo_change) + kFrameJitter)));
  const auto& tcells = TimeCells();
  std::array<uint8_t, 64> time_cells{};
  size_t n_time = 0;
  for (int d = dt_lo; d <= dt_hi; ++d) {
    const uint8_t c = tcells[static_cast<size_t>(d)];
    if (n_time == 0 || time_cells[n_time - 1] != c) {
      if (n_time == time_cells.size()) break;
      time_cells[n_time++] = c;
    }
  }
  for (int ac = a_lo; ac <= a_hi; ++ac) {
    for (int sc = s_lo; sc <= s_hi; ++sc) {
      for (size_t t = 0; t < n_time; ++t) keys.push_back(PackHash(ac, sc, time_cells[t]));
    }
  }
}

}  // namespace earshot::recognition
