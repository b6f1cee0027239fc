#include "recognition/matcher.h"

#include <algorithm>
#include <cmath>

#include "recognition/fingerprinter.h"
#include "recognition/hasher.h"

namespace earshot::recognition {

namespace {

constexpr int kOffsetBinShift = 5;  // stage-1 offset bins of 32 frames (about 0.5 s)
constexpr double kScaleStep = 0.0025;
constexpr float kPitchStepUnits = 0.5f;
constexpr int kMaxUnits = 256;  // peak-map rows (units above min_hz)
constexpr size_t kDensityBlock = 64;  // frames per block of the local chance estimate
constexpr double kNullGapFrames = 125;  // gap between a query's alignment and the null alignments (2 s)

int64_t OffsetBin(int32_t d) { return static_cast<int64_t>(d) >> kOffsetBinShift; }

// The stretch of the query that matches: the run of consecutive peaks with
// the largest excess of hits, where each peak weighs hit - penalty. Inside
// matching audio hits come far more often than the penalty and the sum
// grows; outside, it drifts down, so coincidences before or after the music
// do not stretch the match. The penalty is twice a peak's chance of a
// coincidence, and (second pass) at least 0.4 of the hit rate inside
// the first pass's stretch: a clear match is not stretched by the few extra
// coincidences of audio that merely resembles it.
// `hit` and `chance` are per peak, in frame order; returns frames.
void MatchingStretch(std::span<const Peak> peaks, const std::vector<uint8_t>& hit,
                     const std::vector<float>& chance, uint32_t& first, uint32_t& last) {
  first = last = 0;
  size_t begin = 0, end = 0;  // inclusive peak indexes of the stretch
  double floor_penalty = 0;
  for (int pass = 0; pass < 2; ++pass) {
    double best = 0, run = 0;
    size_t run_start = 0;
    bool found = false;
    for (size_t i = 0; i < peaks.size(); ++i) {
      if (run <= 0) {
        run = 0;
        run_start = i;
      }
      run += (hit[i] ? 1.0 : 0.0) - std::max(2.0 * chance[i], floor_penalty);
      if (run > best) {
        best = run;
        begin = run_start;
        end = i;
        found = true;
      }
    }
    if (!found) return;
    size_t hits = 0;
    for (size_t i = begin; i <= end; ++i) hits += hit[i];
    floor_penalty = 0.4 * static_cast<double>(hits) / static_cast<double>(end - begin + 1);
  }
  // Trim to the first and last hit inside the stretch.
  while (begin < end && !hit[begin]) ++begin;
  while (end > begin && !hit[end]) --end;
  first = peaks[begin].frame;
  last = peaks[end].frame;
}

}  // namespace

Matcher::Matcher(const IndexReader& index, const FingerprintParams& params,
                 const QueryParams& query)
    : index_(index), params_(params), query_(query) {}

void Matcher::CollectVotes(std::span<const Peak> peaks, uint32_t anchor_begin, uint32_t anchor_end,
                           std::vector<Vote>& votes, MatchStats* stats) const {
  // Retrieval uses the most prominent peaks only; verification uses them all.
  std::vector<Peak> retrieval;
  retrieval.reserve(peaks.size());
  for (const Peak& p : peaks) {
    if (p.rank < query_.retrieval_peaks_per_band) retrieval.push_back(p);
  }
  std::vector<HashKey> keys;
  std::vector<Posting> postings;
  MatchStats local;
  ForEachPair(std::span<const Peak>(retrieval), query_.query_fanout, params_, [&](size_t i, size_t j) {
    const Peak& anchor = retrieval[i];
    if (anchor.frame < anchor_begin || anchor.frame >= anchor_end) return;
    ++local.pairs;
    keys.clear();
    ExpandQueryPair(anchor, retrieval[j], query_, params_, keys);
    for (HashKey key : keys) {
      postings.clear();
      index_.Lookup(key, postings);
      ++local.lookups;
      local.postings += postings.size();
      for (const Posting& p : postings) {
        votes.push_back({p.track, static_cast<int32_t>(anchor.frame), static_cast<int32_t>(p.time)});
      }
    }
  });
  if (stats) {
    stats->pairs += local.pairs;
    stats->lookups += local.lookups;
    stats->postings += local.postings;
  }
}

VoteCounts::VoteCounts() { Resize(4096); }

uint64_t VoteCounts::KeyOf(const Vote& v) { return Key(v.track, OffsetBin(v.ref_frame - v.query_frame)); }

size_t VoteCounts::Slot(uint64_t key) const {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 24) & mask_;
}

void VoteCounts::Resize(size_t size) {
  keys_.assign(size, kEmpty);
  counts_.assign(size, 0);
  mask_ = size - 1;
  used_ = 0;
  live_ = 0;
}

void VoteCounts::Add(const Vote& v) { AddKey(KeyOf(v), 1); }

void VoteCounts::AddKey(uint64_t key, uint32_t n) {
  size_t i = Slot(key);
  while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
  if (keys_[i] == kEmpty) {
    keys_[i] = key;
    ++used_;
  }
  if (counts_[i] == 0) ++live_;
  counts_[i] += n;
  total_ += n;
  // At half load: drop the keys whose count fell to zero (a sliding window
  // leaves many behind) or, when most keys are live, double the table.
  // Rehash keeps only live keys, so this runs after counting.
  if (used_ * 2 > keys_.size()) Rehash(live_ * 2 < used_ ? keys_.size() : keys_.size() * 2);
}

void VoteCounts::Remove(const Vote& v) {
  const uint64_t key = KeyOf(v);
  size_t i = Slot(key);
  while (keys_[i] != kEmpty) {
    if (keys_[i] == key) {
      if (counts_[i] > 0) {
        --total_;
        if (--counts_[i] == 0) --live_;
      }
      return;
    }
    i = (i + 1) & mask_;
  }
}

void VoteCounts::Rehash(size_t size) {
  std::vector<uint64_t> old_keys = std::move(keys_);
  std::vector<uint32_t> old_counts = std::move(counts_);
  Resize(size);
  total_ = 0;
  for (size_t j = 0; j < old_keys.size(); ++j) {
    if (old_keys[j] == kEmpty || old_counts[j] == 0) continue;
    size_t i = Slot(old_keys[j]);
    while (keys_[i] != kEmpty) i = (i + 1) & mask_;
    keys_[i] = old_keys[j];
    counts_[i] = old_counts[j];
    total_ += old_counts[j];
    ++used_;
  }
  live_ = used_;
}

uint32_t VoteCounts::Get(TrackId track, int64_t bin) const {
  const uint64_t key = Key(track, bin);
  size_t i = Slot(key);
  while (keys_[i] != kEmpty) {
    if (keys_[i] == key) return counts_[i];
    i = (i + 1) & mask_;
  }
  return 0;
}

std::vector<Candidate> Matcher::RankCandidates(std::span<const Vote> votes) const {
  VoteCounts counts;
  for (const Vote& v : votes) counts.Add(v);
  return RankCandidates(votes, counts);
}

std::vector<Candidate> Matcher::RankCandidates(std::span<const Vote> votes, const VoteCounts& counter) const {
  // A candidate's strength is its (track, offset bin) count plus the better
  // neighbour bin's (a tempo change spreads votes over two bins).
  struct Ranked {
    TrackId track;
    int64_t bin;
    uint32_t strength;
  };
  std::vector<Ranked> ranked;
  counter.ForEach([&](TrackId track, int64_t bin, uint32_t count) {
    const uint32_t neighbour = std::max(counter.Get(track, bin - 1), counter.Get(track, bin + 1));
    if (count + neighbour >= 3) ranked.push_back({track, bin, count + neighbour});
  });
  const auto stronger = [](const Ranked& a, const Ranked& b) {
    if (a.strength != b.strength) return a.strength > b.strength;
    return a.track != b.track ? a.track < b.track : a.bin < b.bin;
  };
  // Only the strongest few can be chosen (neighbours of a chosen bin are
  // skipped, so keep a margin): select them before sorting.
  const size_t keep = std::min(ranked.size(), static_cast<size_t>(query_.candidates) * 8);
  std::nth_element(ranked.begin(), ranked.begin() + static_cast<ptrdiff_t>(keep), ranked.end(), stronger);
  ranked.resize(keep);
  std::sort(ranked.begin(), ranked.end(), stronger);
  // Keep the best bin per track region: skip candidates next to a better one.
  std::vector<Ranked> chosen;
  for (const Ranked& c : ranked) {
    if (chosen.size() >= static_cast<size_t>(query_.candidates)) break;
    const bool near_better = std::any_of(chosen.begin(), chosen.end(), [&](const Ranked& o) {
      return o.track == c.track && std::abs(o.bin - c.bin) <= 2;
    });
    if (!near_better) chosen.push_back(c);
  }
  // Gather each chosen candidate's votes (its bin +-2).
  std::vector<Candidate> out(chosen.size());
  for (size_t k = 0; k < chosen.size(); ++k) {
    out[k].track = chosen[k].track;
    out[k].strength = chosen[k].strength;
  }
  // Most votes belong to tracks that were not chosen: a 64-bit mask of the
  // chosen tracks' ids rejects nearly all of them with one test.
  uint64_t track_mask = 0;
  for (const Ranked& c : chosen) track_mask |= uint64_t{1} << (c.track & 63);
  for (const Vote& v : votes) {
    if (!(track_mask & (uint64_t{1} << (v.track & 63)))) continue;
    const int64_t bin = OffsetBin(v.ref_frame - v.query_frame);
    for (size_t k = 0; k < chosen.size(); ++k) {
      if (chosen[k].track == v.track && std::abs(chosen[k].bin - bin) <= 2) out[k].votes.push_back(v);
    }
  }
  return out;
}

std::vector<MatchResult> Matcher::Match(std::span<const Peak> peaks, size_t max_results,
                                        MatchStats* stats) const {
  MatchStats local;
  // Per-thread scratch: a query collects about a million votes, and fresh
  // allocations of that size cost page faults on every call.
  thread_local std::vector<Vote> votes;
  votes.clear();
  CollectVotes(peaks, 0, UINT32_MAX, votes, &local);
  const std::vector<Candidate> candidates = RankCandidates(votes);
  std::vector<MatchResult> results;
  for (const Candidate& c : candidates) {
    ++local.candidates;
    MatchResult r = VerifyCandidate(peaks, c);
    if (r.score >= query_.min_score) results.push_back(r);
  }
  std::sort(results.begin(), results.end(),
            [](const MatchResult& a, const MatchResult& b) { return a.score > b.score; });
  // One result per track (the best alignment).
  std::vector<MatchResult> unique;
  for (const MatchResult& r : results) {
    if (unique.size() >= max_results) break;
    if (std::none_of(unique.begin(), unique.end(), [&](const MatchResult& u) { return u.track == r.track; })) {
      unique.push_back(r);
    }
  }
  if (stats) *stats = local;
  return unique;
}

MatchResult Matcher::VerifyCandidate(std::span<const Peak> peaks, const Candidate& candidate) const {
  const std::vector<Vote>& votes = candidate.votes;
  const TrackId track = candidate.track;
  if (votes.empty()) {
    MatchResult none;
    none.track = track;
    none.score = -1e9;
    return none;
  }
  // Hough transform over the time-scale factor: for each scale, the offsets
  // implied by the votes are histogrammed (1-frame bins, 3-bin window).
  int32_t qmax = 0;
  for (const Vote& v : votes) qmax = std::max(qmax, v.query_frame);
  int32_t dmin = INT32_MAX, dmax = INT32_MIN;
  for (const Vote& v : votes) {
    dmin = std::min(dmin, v.ref_frame - v.query_frame);
    dmax = std::max(dmax, v.ref_frame - v.query_frame);
  }
  const double tmax = query_.max_tempo_change;
  const int32_t slack = static_cast<int32_t>(std::ceil(tmax * qmax)) + 2;
  const int32_t base = dmin - slack;
  std::vector<uint16_t> hist(static_cast<size_t>(dmax - dmin + 2 * slack + 3), 0);
  double best_scale = 1.0, best_offset = 0;
  int best_count = -1;
  const int steps = static_cast<int>(std::round(tmax / kScaleStep));
  for (int k = -steps; k <= steps; ++k) {
    const double scale = 1.0 + k * kScaleStep;
    std::fill(hist.begin(), hist.end(), 0);
    for (const Vote& v : votes) {
      const long o = std::lround(v.ref_frame - scale * v.query_frame) - base;
      if (o >= 0 && static_cast<size_t>(o) < hist.size()) ++hist[static_cast<size_t>(o)];
    }
    for (size_t i = 1; i + 1 < hist.size(); ++i) {
      const int count = hist[i - 1] + hist[i] + hist[i + 1];
      // Prefer scale 1 on ties (k iterates outward-in order is irrelevant: strict >).
      if (count > best_count || (count == best_count && std::abs(k) == 0)) {
        best_count = count;
        best_scale = scale;
        best_offset = static_cast<double>(static_cast<int64_t>(i) + base);
      }
    }
  }
  const float pitch_units =
      kUnitsPerOctave * static_cast<float>(std::log2(1.0 + query_.max_pitch_change));
  MatchResult r = ScoreAlignment(peaks, track, best_offset, best_scale, -pitch_units, pitch_units);
  r.votes = candidate.strength;
  // The best of a search over scales, offsets and pitch shifts scores above
  // zero even for unrelated audio, and more so for music that shares this
  // track's key and pulse. The same search at offsets where the query cannot
  // match measures that: the score reported is the excess over it.
  const double span = (peaks.empty() ? 0.0 : peaks.back().frame - peaks.front().frame) + kNullGapFrames;
  double null_sum = 0;
  int null_n = 0;
  for (const double shift : {span, -span, 2 * span, -2 * span}) {
    if (null_n == 2) break;
    const double start = best_offset + shift;
    if (start + best_scale * span < 0 || start > index_.FrameCount(track)) continue;  // off the track
    null_sum += std::max(0.0, ScoreAlignment(peaks, track, start, best_scale, -pitch_units, pitch_units).score);
    ++null_n;
  }
  r.chance_score = null_n ? null_sum / null_n : 0.0;
  r.score -= r.chance_score;
  return r;
}

MatchResult Matcher::Verify(std::span<const Peak> peaks, TrackId track, double offset, double scale,
                            double pitch_factor) const {
  const float c = kUnitsPerOctave * static_cast<float>(std::log2(pitch_factor));
  MatchResult best;
  best.track = track;
  best.score = -1e9;
  for (int d = -1; d <= 1; ++d) {
    MatchResult r = ScoreAlignment(peaks, track, offset + d, scale, c - 1.0f, c + 1.0f);
    if (r.score > best.score) best = r;
  }
  return best;
}

MatchResult Matcher::ScoreAlignment(std::span<const Peak> peaks, TrackId track, double offset,
                                    double scale, float pitch_lo, float pitch_hi) const {
  MatchResult result;
  result.track = track;
  result.reference_offset = offset;
  result.time_scale = scale;
  result.query_peaks = static_cast<uint32_t>(peaks.size());
  result.score = -1e9;
  if (peaks.empty()) return result;

  PeakMapView map;
  if (!map.Reset(index_.SideData(track))) return result;

  // Reference window covered by the query under this alignment.
  const double q0 = peaks.front().frame, q1 = peaks.back().frame;
  const long t0 = std::max(0L, std::lround(offset + scale * q0) - 2);
  const long t1 = std::lround(offset + scale * q1) + 2;
  if (t1 <= t0) return result;
  const size_t width = static_cast<size_t>(t1 - t0 + 1);
  // Dilated occupancy grid: cell (t, u) is set when a reference peak lies
  // within +-1 frame and +-1 unit.
  std::vector<uint8_t> grid(width * kMaxUnits, 0);
  // Set cells per (block of kDensityBlock frames, row): the chance of a
  // coincidence is estimated locally, since the reference's density changes
  // along the track (a sustained bass line here, silence there).
  const size_t blocks = (width + kDensityBlock - 1) / kDensityBlock;
  std::vector<uint32_t> block_count(blocks * kMaxUnits, 0);
  for (size_t idx = map.LowerBound(static_cast<uint32_t>(std::max(0L, t0 - 1)));
       idx < map.size() && static_cast<long>(map.frame(idx)) <= t1 + 1; ++idx) {
    const long t = static_cast<long>(map.frame(idx));
    const int u = static_cast<int>(std::lround(map.unit(idx)));
    for (long dt = -1; dt <= 1; ++dt) {
      const long tt = t + dt - t0;
      if (tt < 0 || tt >= static_cast<long>(width)) continue;
      for (int du = -1; du <= 1; ++du) {
        const int uu = u + du;
        if (uu < 0 || uu >= kMaxUnits) continue;
        uint8_t& cell = grid[static_cast<size_t>(tt) * kMaxUnits + static_cast<size_t>(uu)];
        if (!cell) {
          cell = 1;
          ++block_count[static_cast<size_t>(tt) / kDensityBlock * kMaxUnits + static_cast<size_t>(uu)];
        }
      }
    }
  }
  // density[b][u]: share of set cells of row u over blocks b-1..b+1.
  std::vector<float> density(blocks * kMaxUnits, 0.0f);
  for (size_t b = 0; b < blocks; ++b) {
    const size_t lo = b > 0 ? b - 1 : 0;
    const size_t hi = std::min(blocks - 1, b + 1);
    const size_t frames = std::min(width, (hi + 1) * kDensityBlock) - lo * kDensityBlock;
    for (size_t u = 0; u < kMaxUnits; ++u) {
      uint32_t n = 0;
      for (size_t k = lo; k <= hi; ++k) n += block_count[k * kMaxUnits + u];
      density[b * kMaxUnits + u] = static_cast<float>(n) / static_cast<float>(frames);
    }
  }

  // Reference frame of each query peak under the alignment.
  std::vector<long> ref_t(peaks.size());
  for (size_t i = 0; i < peaks.size(); ++i) ref_t[i] = std::lround(offset + scale * peaks[i].frame) - t0;

  std::vector<uint8_t> peak_hit(peaks.size());
  std::vector<float> peak_chance(peaks.size());
  // The grid is dilated by one unit, so neighbouring pitch steps score
  // alike; the reported pitch is the centre of the steps scoring within 10 %
  // of the best one.
  std::vector<std::pair<float, double>> pitch_scores;
  // Pitch steps on a grid through 0 (no shift is always among them) that
  // covers the whole range searched.
  const float c_first = std::floor(pitch_lo / kPitchStepUnits + 1e-3f) * kPitchStepUnits;
  const float c_last = std::ceil(pitch_hi / kPitchStepUnits - 1e-3f) * kPitchStepUnits;
  for (float c = c_first; c <= c_last + 1e-3f; c += kPitchStepUnits) {
    uint32_t hits = 0;
    double expected = 0, variance = 0;
    for (size_t i = 0; i < peaks.size(); ++i) {
      peak_hit[i] = 0;
      peak_chance[i] = 0;
      const int u = static_cast<int>(std::lround(peaks[i].unit + c));
      if (u < 0 || u >= kMaxUnits) continue;
      const long t = ref_t[i];
      if (t < 0 || t >= static_cast<long>(width)) continue;
      const float p = density[static_cast<size_t>(t) / kDensityBlock * kMaxUnits + static_cast<size_t>(u)];
      peak_chance[i] = p;
      expected += p;
      variance += p * (1 - p);
      if (grid[static_cast<size_t>(t) * kMaxUnits + static_cast<size_t>(u)]) {
        ++hits;
        peak_hit[i] = 1;
      }
    }
    const double z = (hits - expected) / std::sqrt(variance + 1.0);
    pitch_scores.emplace_back(c, z);
    if (z > result.score) {
      result.score = z;
      result.hits = hits;
      result.pitch_factor = std::exp2(c / kUnitsPerOctave);
      MatchingStretch(peaks, peak_hit, peak_chance, result.query_first_frame, result.query_last_frame);
    }
  }
  if (result.score > 0) {
    size_t best = 0;
    for (size_t k = 1; k < pitch_scores.size(); ++k) {
      if (pitch_scores[k].second > pitch_scores[best].second) best = k;
    }
    size_t lo = best, hi = best;
    const double near = 0.9 * result.score;
    while (lo > 0 && pitch_scores[lo - 1].second >= near) --lo;
    while (hi + 1 < pitch_scores.size() && pitch_scores[hi + 1].second >= near) ++hi;
    const float centre = 0.5f * (pitch_scores[lo].first + pitch_scores[hi].first);
    result.pitch_factor = std::exp2(centre / kUnitsPerOctave);
  }
  return result;
}

}  // namespace earshot::recognition
