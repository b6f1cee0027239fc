#include "recognition/matcher.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <span>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
// Stage-1 vote counting (RankCandidates) goes a group of tracks at a time,
// with about this many votes per group: each group's table of (track, offset
// bin) counts (16 bytes per distinct key, at most half full) then stays in
// the per-core cache.
constexpr size_t kVotesPerGroup = 8192;
constexpr size_t kMaxVoteGroups = 4096;
// Dense counting: (track, bin) cells per group (4 bytes each), and how many
// cells per vote the dense arrays may hold in all before the hash tables
// are cheaper (the arrays are cleared and scanned whole).
constexpr uint64_t kDenseCellsPerGroup = 65536;  // 256 KB: half the per-core L2 here
constexpr uint64_t kDenseCellsPerVote = 8;

constexpr size_t kRowWords = kMaxUnits / 64;  // 64-bit words per frame of the occupancy grid
// The frame's own chance of a coincidence: set cells of the grid row among
// the kRingCells units 3..18 away on either side of the peak's unit (the
// unit itself and its neighbours are left out: they hold the coinciding
// peak when there is one).
constexpr int kRingGap = 2;
constexpr int kRingReach = 18;
constexpr int kRingCells = 2 * (kRingReach - kRingGap);  // 32: a power of two keeps sums exact

// 64 cells of `row` (kRowWords words) from unit `lo` on (bit 0 = unit lo);
// units outside the row read as empty.
uint64_t RowBits(const uint64_t* row, int lo) {
  if (lo <= -64 || lo >= kMaxUnits) return 0;
  if (lo < 0) return row[0] << -lo;
  const int word = lo >> 6;
  const int shift = lo & 63;
  uint64_t bits = row[word] >> shift;
  if (shift != 0 && word + 1 < static_cast<int>(kRowWords)) bits |= row[word + 1] << (64 - shift);
  return bits;
}

// The cells kRingGap + 1 .. kRingReach units away on either side of the
// middle of a 2 * kRingReach + 1 unit window.
constexpr uint64_t kRingMask = ((uint64_t{1} << (2 * kRingReach + 1)) - 1) &
                               ~(((uint64_t{1} << (2 * kRingGap + 1)) - 1) << (kRingReach - kRingGap));
static_assert(std::popcount(kRingMask) == kRingCells);

// The chance that a query peak at unit `u` of grid row `row` coincides with
// a reference peak by accident: the larger of the row's density over the
// surrounding blocks (`block_density`) and the share of set cells around
// `u` in this very frame. The second one matters where the reference is
// busy across the spectrum at once (a drum hit sets cells in every band):
// a query whose own hits fall on those frames (another drum pattern at a
// matching tempo) would otherwise collect coincidences that say nothing
// about the music, up to scores of 10 on non-catalogued drum loops.
float CoincidenceChance(const uint64_t* row, float block_density, int u) {
  const int around = std::popcount(RowBits(row, u - kRingReach) & kRingMask);
  return std::max(block_density, static_cast<float>(around) / kRingCells);
}

int64_t OffsetBin(int32_t d) { return static_cast<int64_t>(d) >> kOffsetBinShift; }

// std::lround (half away from zero) without the library call that g++ emits
// for it. Exact wherever the result fits: x - trunc(x) is exact in floating
// point. Used on frame numbers and frequency units, far from the limits.
long RoundToLong(double x) {
  const long i = static_cast<long>(x);
  const double f = x - static_cast<double>(i);
  return i + static_cast<long>(f >= 0.5) - static_cast<long>(f <= -0.5);
}
int RoundToInt(float x) {
  const int i = static_cast<int>(x);
  const float f = x - static_cast<float>(i);
  return i + static_cast<int>(f >= 0.5f) - static_cast<int>(f <= -0.5f);
}

// Per-thread buffers of the verification (a Matcher is shared by threads):
// reused from call to call instead of allocated for each alignment scored.
struct ScoreScratch {
  std::vector<uint64_t> grid;         // occupancy bits, kRowWords per reference frame
  std::vector<uint32_t> block_count;  // set cells per (block, row)
  std::vector<float> density;         // chance of a coincidence per (block, row)
  std::vector<long> ref_t;            // grid frame of each query peak, -1 outside
  std::vector<uint8_t> peak_hit;      // per query peak, at the best pitch step
  std::vector<float> peak_chance;
  std::vector<std::pair<float, double>> pitch_scores;  // (pitch step, z)
  std::vector<float> steps;                            // pitch steps searched, units
  std::vector<int> step_units;                         // a query peak's row at each pitch step
  std::vector<uint32_t> step_hits;                     // per pitch step: coincidences,
  std::vector<double> step_expected;                   // their expected number by chance
  std::vector<double> step_variance;                   // and its variance
  std::vector<uint16_t> hough;                         // offset histogram of the time-scale search
  std::vector<double> vote_ref;                        // the candidate's votes: reference frames,
  std::vector<double> vote_query;                      // query frames
  std::vector<int32_t> vote_offset;                    // and histogram bins under one scale
};

// out[i] = RoundToLong(ref[i] - scale * query[i]) - base for every vote (the
// Hough transform's inner loop, two votes at a time where SSE2 is there:
// the same IEEE operations, so the same results). REQUIRES: results fit in
// 32 bits (frame numbers do).
void VoteOffsets(std::span<const double> ref, std::span<const double> query, double scale,
                 int32_t base, int32_t* out) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128d s = _mm_set1_pd(scale);
  const __m128d half = _mm_set1_pd(0.5);
  const __m128d minus_half = _mm_set1_pd(-0.5);
  const __m128i b = _mm_set1_epi32(base);
  for (; i + 2 <= ref.size(); i += 2) {
    const __m128d x = _mm_sub_pd(_mm_loadu_pd(&ref[i]), _mm_mul_pd(s, _mm_loadu_pd(&query[i])));
    const __m128i t = _mm_cvttpd_epi32(x);  // truncated, in the two low lanes
    const __m128d f = _mm_sub_pd(x, _mm_cvtepi32_pd(t));
    // Comparison masks (all ones where true) moved from 64-bit to the two
    // low 32-bit lanes: subtracting an all-ones lane adds 1.
    const __m128i up =
        _mm_shuffle_epi32(_mm_castpd_si128(_mm_cmpge_pd(f, half)), _MM_SHUFFLE(3, 3, 2, 0));
    const __m128i down =
        _mm_shuffle_epi32(_mm_castpd_si128(_mm_cmple_pd(f, minus_half)), _MM_SHUFFLE(3, 3, 2, 0));
    const __m128i o = _mm_sub_epi32(_mm_add_epi32(_mm_sub_epi32(t, up), down), b);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), o);
  }
#endif
  for (; i < ref.size(); ++i)
    out[i] = static_cast<int32_t>(RoundToLong(ref[i] - scale * query[i]) - base);
}

ScoreScratch& Scratch() {
  thread_local ScoreScratch scratch;
  return scratch;
}

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
  // All keys first. About a third of a query's keys repeat (the pitch and
  // tempo expansion cells of neighbouring pairs overlap), so each distinct
  // key is looked up once; the votes are then made in the order of the keys,
  // exactly as if every key had been looked up.
  std::vector<HashKey> keys;
  std::vector<int32_t> anchor_frames;  // per key
  MatchStats local;
  ForEachPair(std::span<const Peak>(retrieval), query_.query_fanout, params_, [&](size_t i, size_t j) {
    const Peak& anchor = retrieval[i];
    if (anchor.frame < anchor_begin || anchor.frame >= anchor_end) return;
    ++local.pairs;
    ExpandQueryPair(anchor, retrieval[j], query_, params_, keys);
    anchor_frames.resize(keys.size(), static_cast<int32_t>(anchor.frame));
  });
  // Open addressing from key to the votes its first occurrence made (at
  // most half full). A repeated key copies those votes with its own anchor
  // frame; a new key's postings go through a small buffer that stays in
  // the cache, straight into votes.
  size_t table_size = 16;
  while (table_size < 2 * keys.size()) table_size *= 2;
  constexpr uint32_t kFree = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> slots(table_size, kFree);  // index into `ranges`
  struct Range {
    HashKey key;
    size_t begin, end;  // in `votes`
  };
  std::vector<Range> ranges;
  ranges.reserve(keys.size());
  thread_local std::vector<Posting> list;  // one key's postings
  const size_t first_vote = votes.size();
  // Room for n more votes (push_back then never reallocates, and votes
  // already made may be read while appending).
  const auto make_room = [&votes](size_t n) {
    if (votes.capacity() < votes.size() + n) {
      votes.reserve(std::max({votes.size() + n, 2 * votes.capacity(), size_t{4096}}));
    }
  };
  for (size_t k = 0; k < keys.size(); ++k) {
    const HashKey key = keys[k];
    const int32_t anchor_frame = anchor_frames[k];
    size_t slot = (uint64_t{key} * 0x9E3779B97F4A7C15ull >> 32) & (table_size - 1);
    while (slots[slot] != kFree && ranges[slots[slot]].key != key) slot = (slot + 1) & (table_size - 1);
    if (slots[slot] == kFree) {
      list.clear();
      index_.Lookup(key, list);
      ++local.lookups;
      slots[slot] = static_cast<uint32_t>(ranges.size());
      ranges.push_back({key, votes.size(), votes.size() + list.size()});
      make_room(list.size());
      for (const Posting& p : list) {
        votes.push_back(Vote{p.track, anchor_frame, static_cast<int32_t>(p.time)});
      }
    } else {
      const Range r = ranges[slots[slot]];
      make_room(r.end - r.begin);
      for (size_t i = r.begin; i < r.end; ++i) {
        votes.push_back(Vote{votes[i].track, anchor_frame, votes[i].ref_frame});
      }
    }
  }
  local.postings += votes.size() - first_vote;
  if (stats) {
    stats->pairs += local.pairs;
    stats->lookups += local.lookups;
    stats->postings += local.postings;
  }
}

VoteCounts::VoteCounts() { Resize(4096); }

uint64_t VoteCounts::KeyOf(const Vote& v) { return Key(v.track, OffsetBin(v.ref_frame - v.query_frame)); }

size_t VoteCounts::SlotOf(uint64_t key) const {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 24) & mask_;
}

void VoteCounts::Resize(size_t size) {
  slots_.assign(size, Slot{});
  mask_ = size - 1;
  used_ = 0;
}

void VoteCounts::Clear() {
  std::fill(slots_.begin(), slots_.end(), Slot{});
  used_ = 0;
  total_ = 0;
}

void VoteCounts::Add(const Vote& v) {
  const uint64_t key = KeyOf(v);
  size_t i = SlotOf(key);
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
  Slot& s = slots_[i];
  if (s.key == kEmpty) {
    s.key = key;
    ++used_;
  }
  ++s.count;
  ++total_;
  if (used_ * 2 > slots_.size()) Rehash(slots_.size() * 2);  // at half load
}

void VoteCounts::Rehash(size_t size) {
  std::vector<Slot> old = std::move(slots_);
  Resize(size);
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = SlotOf(s.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i] = s;
    ++used_;
  }
}

uint32_t VoteCounts::Get(TrackId track, int64_t bin) const {
  const uint64_t key = Key(track, bin);
  size_t i = SlotOf(key);
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) return slots_[i].count;
    i = (i + 1) & mask_;
  }
  return 0;
}

VoteWindow::VoteWindow() {
  blocks_.resize(1024);
  mask_ = blocks_.size() - 1;
}

size_t VoteWindow::Slot(uint64_t key) const {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 24) & mask_;
}

size_t VoteWindow::Find(uint64_t key) const {
  size_t i = Slot(key);
  while (blocks_[i].key != kEmpty) {
    if (blocks_[i].key == key) return i;
    i = (i + 1) & mask_;
  }
  return kNone;
}

uint32_t VoteWindow::CountAt(TrackId track, int64_t block, int index) const {
  const size_t i = Find(BlockKey(track, block));
  return i == kNone ? 0 : blocks_[i].counts[index];
}

size_t VoteWindow::Insert(uint64_t key, size_t slot) {
  // First make room (at most half full), dropping the blocks that hold no
  // vote any more (a sliding window leaves many behind).
  if ((used_ + 1) * 2 > blocks_.size()) {
    // At most 3/8 full afterwards: small enough to stay in the cache, with
    // room for a good number of new blocks before the next rebuild.
    size_t size = 1024;
    while (size * 3 < 8 * (live_ + 1)) size *= 2;
    Rehash(size);
    slot = Slot(key);
    while (blocks_[slot].key != kEmpty) slot = (slot + 1) & mask_;
  }
  blocks_[slot].key = key;
  ++used_;
  return slot;
}

void VoteWindow::Rehash(size_t size) {
  std::vector<Block> old = std::move(blocks_);
  blocks_.assign(size, Block{});
  mask_ = size - 1;
  used_ = 0;
  std::vector<uint32_t> moved(old.size(), 0);
  for (size_t j = 0; j < old.size(); ++j) {
    if (old[j].key == kEmpty || old[j].total == 0) continue;
    size_t i = Slot(old[j].key);
    while (blocks_[i].key != kEmpty) i = (i + 1) & mask_;
    blocks_[i] = old[j];
    moved[j] = static_cast<uint32_t>(i);
    ++used_;
  }
  live_ = used_;
  for (uint64_t e = first_; e < end_; ++e) At(e).block = moved[At(e).block];
}

void VoteWindow::Add(std::span<const Vote> votes) {
  if (size() + votes.size() > entries_.size()) GrowRing(size() + votes.size());
  // A vote's block is usually not in the cache (the votes are scattered over
  // the table): the blocks of the votes kAhead further on are fetched
  // meanwhile. Their keys wait in a small ring.
  constexpr size_t kAhead = 8;
  struct Pending {
    uint64_t key;
    int64_t bin;
  };
  std::array<Pending, 2 * kAhead> ring;
  const auto pend = [&](size_t i) {
    const Vote& v = votes[i];
    const int64_t bin = OffsetBin(v.ref_frame - v.query_frame);
    const uint64_t key = BlockKey(v.track, bin >> kBlockShift);
    ring[i % ring.size()] = {key, bin};
    __builtin_prefetch(&blocks_[Slot(key)]);
  };
  for (size_t i = 0; i < std::min(kAhead, votes.size()); ++i) pend(i);
  for (size_t i = 0; i < votes.size(); ++i) {
    if (i + kAhead < votes.size()) pend(i + kAhead);
    const Pending& p = ring[i % ring.size()];
    size_t slot = Slot(p.key);
    while (blocks_[slot].key != p.key) {
      if (blocks_[slot].key == kEmpty) {
        slot = Insert(p.key, slot);
        break;
      }
      slot = (slot + 1) & mask_;
    }
    Block& b = blocks_[slot];
    uint32_t previous = 0;
    if (b.total == 0) {
      ++live_;
    } else {
      previous = static_cast<uint32_t>(end_) - b.newest;
    }
    b.newest = static_cast<uint32_t>(end_);
    ++b.total;
    ++b.counts[p.bin & (kBlockBins - 1)];
    At(end_++) = {votes[i].query_frame, votes[i].ref_frame, static_cast<uint32_t>(slot), previous};
  }
}

void VoteWindow::DropBefore(int32_t frame) {
  constexpr uint64_t kAhead = 8;  // as in Add
  while (first_ < end_ && At(first_).query_frame < frame) {
    if (first_ + kAhead < end_) __builtin_prefetch(&blocks_[At(first_ + kAhead).block]);
    const Entry& e = At(first_);
    Block& b = blocks_[e.block];
    --b.counts[OffsetBin(e.ref_frame - e.query_frame) & (kBlockBins - 1)];
    if (--b.total == 0) --live_;
    ++first_;
  }
}

void VoteWindow::GrowRing(size_t votes) {
  size_t capacity = std::max<size_t>(entries_.size(), 4096);
  while (capacity < votes) capacity *= 2;
  std::vector<Entry> grown(capacity);
  for (uint64_t e = first_; e < end_; ++e) grown[static_cast<size_t>(e) & (capacity - 1)] = At(e);
  entries_ = std::move(grown);
  ring_mask_ = capacity - 1;
}

uint32_t VoteWindow::Count(TrackId track, int64_t bin) const {
  return CountAt(track, bin >> kBlockShift, static_cast<int>(bin & (kBlockBins - 1)));
}

void VoteWindow::AppendVotes(std::span<const VoteRegion> regions,
                             std::span<std::vector<Vote>> out) const {
  // Each block the regions cover is walked once, back from its newest vote
  // to the first that has left. The walks go in turns, one vote each, so
  // that their cache misses overlap.
  struct Walk {
    TrackId track;
    int64_t block;
    uint64_t sequence;
  };
  std::vector<Walk> walks;
  for (const VoteRegion& r : regions) {
    for (int64_t block = r.bin_lo >> kBlockShift; block <= r.bin_hi >> kBlockShift; ++block) {
      if (std::any_of(walks.begin(), walks.end(),
                      [&](const Walk& w) { return w.track == r.track && w.block == block; })) {
        continue;
      }
      const size_t slot = Find(BlockKey(r.track, block));
      if (slot == kNone || blocks_[slot].total == 0) continue;
      // The newest vote's full sequence number: the last one with those low bits.
      walks.push_back(
          {r.track, block, end_ - 1 - (static_cast<uint32_t>(end_ - 1) - blocks_[slot].newest)});
    }
  }
  const uint64_t first_live = first_;
  size_t active = walks.size();
  while (active > 0) {
    for (size_t w = 0; w < active;) {
      Walk& walk = walks[w];
      const Entry& e = At(walk.sequence);
      const int64_t bin = OffsetBin(e.ref_frame - e.query_frame);
      for (size_t k = 0; k < regions.size(); ++k) {
        if (regions[k].track == walk.track && bin >= regions[k].bin_lo &&
            bin <= regions[k].bin_hi) {
          out[k].push_back({walk.track, e.query_frame, e.ref_frame});
        }
      }
      if (e.previous == 0 || walk.sequence - e.previous < first_live) {
        walk = walks[--active];
        continue;
      }
      walk.sequence -= e.previous;
      __builtin_prefetch(&At(walk.sequence));
      ++w;
    }
  }
}

namespace {

// A (track, offset bin) and its strength: its count plus the better
// neighbour bin's (a tempo change spreads votes over two bins).
struct RankedBin {
  TrackId track;
  int64_t bin;
  uint32_t strength;
};

bool Stronger(const RankedBin& a, const RankedBin& b) {
  if (a.strength != b.strength) return a.strength > b.strength;
  return a.track != b.track ? a.track < b.track : a.bin < b.bin;
}

// The candidates among the bins that `for_each_bin(f, floor)` offers as
// f(track, bin, count, neighbour count): at most `candidates`, strongest
// first, one per track region (a bin within 2 of a stronger chosen bin of
// the same track is skipped).
template <class ForEachBin>
std::vector<RankedBin> ChooseBins(ForEachBin&& for_each_bin, size_t candidates) {
  // Only the strongest few can be chosen (neighbours of a chosen bin are
  // skipped, so keep a margin): a heap keeps them as the bins go by, its
  // weakest on top.
  const size_t keep = candidates * 8;
  std::vector<RankedBin> strongest;
  strongest.reserve(keep);
  // The least strength a bin needs to be kept now: callers may skip weaker
  // bins without offering them.
  const auto floor = [&]() -> uint32_t {
    return strongest.size() < keep ? 3 : std::max<uint32_t>(3, strongest.front().strength);
  };
  for_each_bin(
      [&](TrackId track, int64_t bin, uint32_t count, uint32_t neighbour) {
        const RankedBin c{track, bin, count + neighbour};
        if (c.strength < 3 || keep == 0) return;
        if (strongest.size() < keep) {
          strongest.push_back(c);
          std::push_heap(strongest.begin(), strongest.end(), Stronger);
        } else if (Stronger(c, strongest.front())) {
          std::pop_heap(strongest.begin(), strongest.end(), Stronger);
          strongest.back() = c;
          std::push_heap(strongest.begin(), strongest.end(), Stronger);
        }
      },
      floor);
  std::sort(strongest.begin(), strongest.end(), Stronger);
  // Keep the best bin per track region: skip candidates next to a better one.
  std::vector<RankedBin> chosen;
  for (const RankedBin& c : strongest) {
    if (chosen.size() >= candidates) break;
    const bool near_better = std::any_of(chosen.begin(), chosen.end(), [&](const RankedBin& o) {
      return o.track == c.track && std::abs(o.bin - c.bin) <= 2;
    });
    if (!near_better) chosen.push_back(c);
  }
  return chosen;
}

std::vector<Candidate> EmptyCandidates(const std::vector<RankedBin>& chosen) {
  std::vector<Candidate> out(chosen.size());
  for (size_t k = 0; k < chosen.size(); ++k) {
    out[k].track = chosen[k].track;
    out[k].strength = chosen[k].strength;
  }
  return out;
}

}  // namespace

std::vector<Candidate> Matcher::RankCandidates(std::span<const Vote> votes) const {
  // Votes are counted a group of tracks at a time (tracks whose ids share
  // their low bits), each group in a table small enough for the per-core
  // cache: one table for all of a large catalog's (track, offset bin) keys
  // outgrows the caches, and then every vote counted is a cache miss. A
  // counting sort by group comes first (two sequential passes). Where the
  // votes' tracks and offsets span a range not much larger than the votes
  // themselves, a group's table is a dense array of counts per (track, bin),
  // else a hash table. The bins offered to ChooseBins, and so the
  // candidates, are the same in any order (Stronger is a total order).
  TrackId max_track = 0;
  int64_t min_bin = 0, max_bin = 0;
  if (!votes.empty()) {
    min_bin = max_bin = OffsetBin(votes[0].ref_frame - votes[0].query_frame);
    for (const Vote& v : votes) {
      max_track = std::max(max_track, v.track);
      const int64_t bin = OffsetBin(v.ref_frame - v.query_frame);
      min_bin = std::min(min_bin, bin);
      max_bin = std::max(max_bin, bin);
    }
  }
  const uint64_t span = static_cast<uint64_t>(max_bin - min_bin) + 3;  // an empty bin either side
  const uint64_t dense_cells = (uint64_t{max_track} + 1) * span;
  const bool dense = dense_cells <= kDenseCellsPerVote * votes.size() + kDenseCellsPerGroup;
  const uint64_t wanted = dense ? dense_cells / kDenseCellsPerGroup : votes.size() / kVotesPerGroup;
  const size_t groups =
      std::bit_ceil(static_cast<size_t>(std::clamp<uint64_t>(wanted, 1, kMaxVoteGroups)));
  const int group_shift = std::countr_zero(groups);
  const uint32_t group_mask = static_cast<uint32_t>(groups - 1);

  thread_local std::vector<Vote> grouped;
  thread_local std::vector<uint32_t> group_start;
  std::span<const Vote> by_group = votes;
  group_start.assign(groups + 1, 0);
  if (groups > 1) {
    for (const Vote& v : votes) ++group_start[(v.track & group_mask) + 1];
    for (size_t g = 0; g < groups; ++g) group_start[g + 1] += group_start[g];
    grouped.resize(votes.size());
    std::vector<uint32_t> at(group_start.begin(), group_start.end() - 1);
    for (const Vote& v : votes) grouped[at[v.track & group_mask]++] = v;
    by_group = grouped;
  } else {
    group_start[1] = static_cast<uint32_t>(votes.size());
  }
  auto group_votes = [&](size_t g) {
    return by_group.subspan(group_start[g], group_start[g + 1] - group_start[g]);
  };

  thread_local std::vector<uint32_t> cells;  // dense counts of one group: (track, bin)
  VoteCounts counts;
  const std::vector<RankedBin> chosen = ChooseBins(
      [&](auto&& f, auto&& floor) {
        for (size_t g = 0; g < groups; ++g) {
          const std::span<const Vote> group = group_votes(g);
          if (group.empty()) continue;
          if (!dense) {
            counts.Clear();
            for (const Vote& v : group) counts.Add(v);
            counts.ForEach([&](TrackId track, int64_t bin, uint32_t count) {
              f(track, bin, count,
                std::max(counts.Get(track, bin - 1), counts.Get(track, bin + 1)));
            });
            continue;
          }
          const size_t rows = static_cast<size_t>(max_track >> group_shift) + 1;
          cells.assign(rows * span, 0);
          for (const Vote& v : group) {
            const int64_t bin = OffsetBin(v.ref_frame - v.query_frame);
            ++cells[static_cast<size_t>(v.track >> group_shift) * span +
                    static_cast<size_t>(bin - min_bin + 1)];
          }
          // Most cells are empty or too weak to be kept: runs of kScanRun
          // cells are tested at once (a loop the compiler vectorises) and
          // only runs holding a bin strong enough are looked at one by one.
          constexpr size_t kScanRun = 16;
          for (size_t row = 0; row < rows; ++row) {
            const uint32_t* c = cells.data() + row * span;
            const TrackId track = static_cast<TrackId>((row << group_shift) | g);
            for (size_t run = 1; run + 1 < span; run += kScanRun) {
              const size_t end = std::min(run + kScanRun, span - 1);
              const uint32_t least = floor();
              uint32_t any = 0;
              for (size_t i = run; i < end; ++i) {
                any |= static_cast<uint32_t>(c[i] != 0) &
                       static_cast<uint32_t>(c[i] + std::max(c[i - 1], c[i + 1]) >= least);
              }
              if (any == 0) continue;
              for (size_t i = run; i < end; ++i) {
                if (c[i] != 0)
                  f(track, static_cast<int64_t>(i) - 1 + min_bin, c[i],
                    std::max(c[i - 1], c[i + 1]));
              }
            }
          }
        }
      },
      static_cast<size_t>(std::max(0, query_.candidates)));
  // Gather each chosen candidate's votes (its bin +-2) from its group.
  std::vector<Candidate> out = EmptyCandidates(chosen);
  for (size_t k = 0; k < chosen.size(); ++k) {
    const bool group_done = std::any_of(
        chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(k), [&](const RankedBin& c) {
          return (c.track & group_mask) == (chosen[k].track & group_mask);
        });
    if (group_done) continue;
    // Most of a group's votes belong to tracks that were not chosen: a
    // 64-bit mask of the chosen tracks of the group rejects nearly all of
    // them with one test.
    uint64_t track_mask = 0;
    for (size_t j = k; j < chosen.size(); ++j) {
      if ((chosen[j].track & group_mask) == (chosen[k].track & group_mask)) {
        track_mask |= uint64_t{1} << ((chosen[j].track >> group_shift) & 63);
      }
    }
    for (const Vote& v : group_votes(chosen[k].track & group_mask)) {
      if (!(track_mask & (uint64_t{1} << ((v.track >> group_shift) & 63)))) continue;
      const int64_t bin = OffsetBin(v.ref_frame - v.query_frame);
      for (size_t j = k; j < chosen.size(); ++j) {
        if (chosen[j].track == v.track && std::abs(chosen[j].bin - bin) <= 2)
          out[j].votes.push_back(v);
      }
    }
  }
  return out;
}

std::vector<Candidate> Matcher::RankWindowCandidates(const VoteWindow& window) const {
  const std::vector<RankedBin> chosen =
      ChooseBins([&window](auto&& f, auto&&) { window.ForEachBin(f); },
                 static_cast<size_t>(std::max(0, query_.candidates)));
  std::vector<Candidate> out = EmptyCandidates(chosen);
  std::vector<VoteRegion> regions;
  std::vector<std::vector<Vote>> votes(chosen.size());
  for (const RankedBin& c : chosen) regions.push_back({c.track, c.bin - 2, c.bin + 2});
  window.AppendVotes(regions, votes);
  for (size_t k = 0; k < chosen.size(); ++k) out[k].votes = std::move(votes[k]);
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
    MatchResult r = VerifyCandidate(peaks, c, query_.min_score);
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

MatchResult Matcher::VerifyCandidate(std::span<const Peak> peaks, const Candidate& candidate,
                                     double reject_below) const {
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
  int32_t qmin = INT32_MAX, dmin = INT32_MAX, dmax = INT32_MIN;
  for (const Vote& v : votes) {
    qmin = std::min(qmin, v.query_frame);
    dmin = std::min(dmin, v.ref_frame - v.query_frame);
    dmax = std::max(dmax, v.ref_frame - v.query_frame);
  }
  const double tmax = query_.max_tempo_change;
  const int32_t slack = static_cast<int32_t>(std::ceil(tmax * qmax)) + 2;
  const int32_t base = dmin - slack;
  ScoreScratch& scratch = Scratch();
  std::vector<uint16_t>& hist = scratch.hough;
  hist.assign(static_cast<size_t>(dmax - dmin + 2 * slack + 3), 0);
  scratch.vote_ref.resize(votes.size());
  scratch.vote_query.resize(votes.size());
  scratch.vote_offset.resize(votes.size());
  for (size_t i = 0; i < votes.size(); ++i) {
    scratch.vote_ref[i] = votes[i].ref_frame;
    scratch.vote_query[i] = votes[i].query_frame;
  }
  double best_scale = 1.0, best_offset = 0;
  int best_count = -1;
  const int steps = static_cast<int>(std::round(tmax / kScaleStep));
  for (int k = -steps; k <= steps; ++k) {
    const double scale = 1.0 + k * kScaleStep;
    VoteOffsets(scratch.vote_ref, scratch.vote_query, scale, base, scratch.vote_offset.data());
    for (const int32_t o : scratch.vote_offset) {
      if (static_cast<uint32_t>(o) < hist.size()) ++hist[static_cast<size_t>(o)];
    }
    // Only the bins the votes can fall in (ref - query + (1 - scale) *
    // query, with a margin for rounding) and their neighbours can hold the
    // best count: the scan covers those, and they are cleared afterwards.
    const double spread_a = (1.0 - scale) * qmin, spread_b = (1.0 - scale) * qmax;
    const long x_lo = static_cast<long>(std::floor(dmin + std::min(spread_a, spread_b))) - 2 - base;
    const long x_hi = static_cast<long>(std::ceil(dmax + std::max(spread_a, spread_b))) + 2 - base;
    const size_t lo = static_cast<size_t>(std::max(0L, x_lo));
    const size_t hi = std::min(hist.size() - 1, static_cast<size_t>(std::max(0L, x_hi)));
    if (lo > hi) continue;
    const size_t scan_end = std::min(hi + 2, hist.size() - 1);
    for (size_t i = std::max<size_t>(lo, 2) - 1; i < scan_end; ++i) {
      const int count = hist[i - 1] + hist[i] + hist[i + 1];
      // Prefer scale 1 on ties (k iterates outward-in order is irrelevant: strict >).
      if (count > best_count || (count == best_count && std::abs(k) == 0)) {
        best_count = count;
        best_scale = scale;
        best_offset = static_cast<double>(static_cast<int64_t>(i) + base);
      }
    }
    std::fill(hist.begin() + static_cast<ptrdiff_t>(lo),
              hist.begin() + static_cast<ptrdiff_t>(hi) + 1, 0);
  }
  const float pitch_units =
      kUnitsPerOctave * static_cast<float>(std::log2(1.0 + query_.max_pitch_change));
  MatchResult r = ScoreAlignment(peaks, track, best_offset, best_scale, -pitch_units, pitch_units);
  r.votes = candidate.strength;
  // The correction below only lowers the score: a candidate already below
  // the bar is rejected without it.
  if (r.score < reject_below) return r;
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
  const long t0 = std::max(0L, RoundToLong(offset + scale * q0) - 2);
  const long t1 = RoundToLong(offset + scale * q1) + 2;
  if (t1 <= t0) return result;
  const size_t width = static_cast<size_t>(t1 - t0 + 1);
  ScoreScratch& s = Scratch();
  // Dilated occupancy grid, one bit per cell: cell (t, u) is set when a
  // reference peak lies within +-1 frame and +-1 unit.
  s.grid.assign(width * kRowWords, 0);
  // Set cells per (block of kDensityBlock frames, row): the chance of a
  // coincidence is estimated locally, since the reference's density changes
  // along the track (a sustained bass line here, silence there).
  const size_t blocks = (width + kDensityBlock - 1) / kDensityBlock;
  s.block_count.assign(blocks * kMaxUnits, 0);
  for (size_t idx = map.LowerBound(static_cast<uint32_t>(std::max(0L, t0 - 1)));
       idx < map.size() && static_cast<long>(map.frame(idx)) <= t1 + 1; ++idx) {
    const long t = static_cast<long>(map.frame(idx));
    const int u = RoundToInt(map.unit(idx));
    for (long dt = -1; dt <= 1; ++dt) {
      const long tt = t + dt - t0;
      if (tt < 0 || tt >= static_cast<long>(width)) continue;
      uint64_t* row = s.grid.data() + static_cast<size_t>(tt) * kRowWords;
      uint32_t* counts = s.block_count.data() + static_cast<size_t>(tt) / kDensityBlock * kMaxUnits;
      for (int du = -1; du <= 1; ++du) {
        const int uu = u + du;
        if (uu < 0 || uu >= kMaxUnits) continue;
        uint64_t& word = row[static_cast<size_t>(uu) >> 6];
        const uint64_t bit = uint64_t{1} << (uu & 63);
        if (!(word & bit)) {
          word |= bit;
          ++counts[uu];
        }
      }
    }
  }
  // density[b][u]: share of set cells of row u over blocks b-1..b+1.
  s.density.resize(blocks * kMaxUnits);
  static constexpr std::array<uint32_t, kMaxUnits> kNoCells{};
  for (size_t b = 0; b < blocks; ++b) {
    const size_t lo = b > 0 ? b - 1 : 0;
    const size_t hi = std::min(blocks - 1, b + 1);
    const float frames =
        static_cast<float>(std::min(width, (hi + 1) * kDensityBlock) - lo * kDensityBlock);
    const uint32_t* before = b > 0 ? &s.block_count[(b - 1) * kMaxUnits] : kNoCells.data();
    const uint32_t* own = &s.block_count[b * kMaxUnits];
    const uint32_t* after = b + 1 < blocks ? &s.block_count[(b + 1) * kMaxUnits] : kNoCells.data();
    float* density = &s.density[b * kMaxUnits];
    for (size_t u = 0; u < kMaxUnits; ++u) {
      density[u] = static_cast<float>(before[u] + own[u] + after[u]) / frames;
    }
  }

  // Reference frame of each query peak under the alignment, as its rows of
  // the grid and of the density table (-1: outside the reference window).
  s.ref_t.resize(peaks.size());
  for (size_t i = 0; i < peaks.size(); ++i) {
    const long t = RoundToLong(offset + scale * peaks[i].frame) - t0;
    s.ref_t[i] = t >= 0 && t < static_cast<long>(width) ? t : -1;
  }
  const auto coincides = [&s](long t, int u) {
    return (s.grid[static_cast<size_t>(t) * kRowWords + (static_cast<size_t>(u) >> 6)] >>
            (u & 63)) &
           1;
  };
  const auto chance = [&s](long t, int u) {
    return CoincidenceChance(
        s.grid.data() + static_cast<size_t>(t) * kRowWords,
        s.density[static_cast<size_t>(t) / kDensityBlock * kMaxUnits + static_cast<size_t>(u)], u);
  };

  // The grid is dilated by one unit, so neighbouring pitch steps score
  // alike; the reported pitch is the centre of the steps scoring within 10 %
  // of the best one.
  std::vector<std::pair<float, double>>& pitch_scores = s.pitch_scores;
  pitch_scores.clear();
  // Pitch steps on a grid through 0 (no shift is always among them) that
  // covers the whole range searched.
  const float c_first = std::floor(pitch_lo / kPitchStepUnits + 1e-3f) * kPitchStepUnits;
  const float c_last = std::ceil(pitch_hi / kPitchStepUnits - 1e-3f) * kPitchStepUnits;
  s.steps.clear();
  for (float c = c_first; c <= c_last + 1e-3f; c += kPitchStepUnits) s.steps.push_back(c);
  const size_t n_steps = s.steps.size();
  // Padded to whole groups of 4 for the vector loop below.
  const size_t padded_steps = (n_steps + 3) / 4 * 4;
  if (n_steps > 0) s.steps.resize(padded_steps, s.steps.back());
  // Peak by peak: the peak's rows of the grid and of the density table stay
  // at hand. Its row u is non-decreasing with the step, so the steps go by
  // in runs of one row, each added to per-step sums as a difference (+ at
  // its first step, - after its last). The sums come out exact, whatever
  // their order: every chance is 0 or at least 1/(3 * kDensityBlock), a
  // float, so every term is a multiple of 2^-31 and a double holds every
  // partial sum exactly.
  s.step_hits.assign(n_steps + 1, 0);
  s.step_expected.assign(n_steps + 1, 0.0);
  s.step_variance.assign(n_steps + 1, 0.0);
  s.step_units.resize(padded_steps + 1);
  for (size_t i = 0; i < peaks.size() && n_steps > 0; ++i) {
    const long t = s.ref_t[i];
    if (t < 0) continue;
    const float unit = peaks[i].unit;
    int* units = s.step_units.data();
    if (unit + s.steps[0] >= 1.0f) {
      // x >= 1: x + 0.5 is exact or rounds without crossing an integer, so
      // truncating it rounds x half away from zero, as RoundToInt does.
#if defined(__SSE2__)
      const __m128 unit4 = _mm_set1_ps(unit);
      const __m128 half4 = _mm_set1_ps(0.5f);
      for (size_t k = 0; k < padded_steps; k += 4) {
        const __m128 x = _mm_add_ps(_mm_add_ps(unit4, _mm_loadu_ps(&s.steps[k])), half4);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(units + k), _mm_cvttps_epi32(x));
      }
#else
      for (size_t k = 0; k < n_steps; ++k) units[k] = static_cast<int>(unit + s.steps[k] + 0.5f);
#endif
    } else {
      for (size_t k = 0; k < n_steps; ++k) units[k] = RoundToInt(unit + s.steps[k]);
    }
    units[n_steps] = INT32_MIN;  // ends the last run
    const uint64_t* grid_row = s.grid.data() + static_cast<size_t>(t) * kRowWords;
    const float* density_row =
        s.density.data() + static_cast<size_t>(t) / kDensityBlock * kMaxUnits;
    for (size_t k = 0; k < n_steps;) {
      const int u = units[k];
      size_t end = k + 1;
      while (units[end] == u) ++end;
      if (u >= 0 && u < kMaxUnits) {
        const float p = CoincidenceChance(grid_row, density_row[u], u);
        const double share = p;
        const double variance = p * (1 - p);
        const uint32_t hit =
            static_cast<uint32_t>((grid_row[static_cast<size_t>(u) >> 6] >> (u & 63)) & 1);
        s.step_expected[k] += share;
        s.step_expected[end] -= share;
        s.step_variance[k] += variance;
        s.step_variance[end] -= variance;
        s.step_hits[k] += hit;
        s.step_hits[end] -= hit;
      }
      k = end;
    }
  }
  for (size_t k = 1; k < n_steps; ++k) {
    s.step_expected[k] += s.step_expected[k - 1];
    s.step_variance[k] += s.step_variance[k - 1];
    s.step_hits[k] += s.step_hits[k - 1];
  }
  float best_c = 0;
  for (size_t k = 0; k < n_steps; ++k) {
    const float c = s.steps[k];
    const uint32_t hits = s.step_hits[k];
    const double z = (hits - s.step_expected[k]) / std::sqrt(s.step_variance[k] + 1.0);
    pitch_scores.emplace_back(c, z);
    if (z > result.score) {
      result.score = z;
      result.hits = hits;
      result.pitch_factor = std::exp2(c / kUnitsPerOctave);
      best_c = c;
    }
  }
  if (pitch_scores.empty()) return result;
  // The matching stretch of the best pitch step.
  s.peak_hit.assign(peaks.size(), 0);
  s.peak_chance.assign(peaks.size(), 0.0f);
  for (size_t i = 0; i < peaks.size(); ++i) {
    const long t = s.ref_t[i];
    if (t < 0) continue;
    const int u = RoundToInt(peaks[i].unit + best_c);
    if (u < 0 || u >= kMaxUnits) continue;
    s.peak_chance[i] = chance(t, u);
    s.peak_hit[i] = static_cast<uint8_t>(coincides(t, u));
  }
  MatchingStretch(peaks, s.peak_hit, s.peak_chance, result.query_first_frame,
                  result.query_last_frame);
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
