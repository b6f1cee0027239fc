// Finds which reference tracks a query's peaks come from.
//
// Two stages:
//  1. Retrieval. Every query pair is looked up in the index under all keys it
//     may have had in the reference (hasher.h: pitch and tempo tolerance);
//     each posting votes for (track, reference frame - query frame) in coarse
//     offset bins. The best-voted (track, offset) candidates go on.
//  2. Verification. For each candidate a time-scale factor and offset are
//     fitted to its votes (a Hough transform over the scale range searched),
//     then every query peak is checked against the track's peak map under
//     that alignment, for each pitch shift in the range searched. The score
//     is a z-score of the peak coincidences over what chance alignment of
//     the same peaks would give: from the reference's peak density per
//     frequency row around the aligned time or, where larger, the share of
//     the aligned frame's own cells set around the peak's frequency (a drum
//     hit sets cells across the spectrum, so landing on one says little
//     about the music). A search over scales, offsets and pitch shifts finds
//     some coincidences in any music, so the same search is also run at
//     offsets where the query cannot match, and the score is the excess
//     over that: about 0 for unrelated audio whatever its length or style,
//     large for a true match. A result is reported when it reaches min_score.
//
// Thread safety: Match() is const and may run concurrently on one Matcher as
// long as the IndexReader it borrows outlives it. Verification keeps its
// working buffers per thread (tens of KB for a 10 s query; they grow with
// the longest query a thread has verified and are reused), and so does the
// ranking of stage 1 (a copy of the votes, 12 bytes each, sorted by group
// of tracks, and one group's counts).
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "recognition/fingerprint_params.h"
#include "recognition/index_reader.h"
#include "recognition/peak_picker.h"
#include "recognition/types.h"

namespace earshot::recognition {

struct MatchResult {
  TrackId track = 0;
  double score = 0;             // z-score of peak coincidences, less chance_score (see above)
  double chance_score = 0;      // what the same search scores where the query cannot match
  double reference_offset = 0;  // frames: reference time of query frame 0
  double time_scale = 1;        // reference frames per query frame (tempo)
  double pitch_factor = 1;      // reference frequency / query frequency
  uint32_t query_first_frame = 0;  // first and last query frames with a coinciding peak
  uint32_t query_last_frame = 0;
  uint32_t hits = 0;            // query peaks coinciding with reference peaks
  uint32_t query_peaks = 0;     // query peaks examined
  uint32_t votes = 0;           // stage-1 votes of the candidate
};

// Work counters of one Match() call (for benchmarks and diagnostics).
struct MatchStats {
  uint64_t pairs = 0;
  uint64_t lookups = 0;
  uint64_t postings = 0;
  uint32_t candidates = 0;
};

// One stage-1 vote: a posting of `track` at `ref_frame` found by a query pair
// anchored at `query_frame`.
struct Vote {
  TrackId track = 0;
  int32_t query_frame = 0;
  int32_t ref_frame = 0;
};

// A (track, offset) region that collected many votes, with those votes.
struct Candidate {
  TrackId track = 0;
  uint32_t strength = 0;  // votes in its offset bin plus the better neighbour bin
  std::vector<Vote> votes;
};

// Votes counted per (track, offset bin): RankCandidates counts one group of
// tracks of a query in it at a time, where a dense array would be too large
// (VoteWindow is the sliding-window counterpart). Open addressing with
// linear probing; holds one slot per distinct key seen since the last Clear.
// Thread safety: one thread at a time.
class VoteCounts {
 public:
  VoteCounts();
  void Add(const Vote& vote);
  // Forgets every count; keeps the table's size (for counting again).
  void Clear();
  uint32_t Get(TrackId track, int64_t bin) const;
  uint64_t total() const { return total_; }
  // f(track, bin, count) for every key with a non-zero count.
  template <class F>
  void ForEach(F&& f) const {
    for (const Slot& s : slots_) {
      if (s.key != kEmpty && s.count > 0) {
        f(static_cast<TrackId>(s.key >> 32), static_cast<int64_t>(s.key & 0xffffffffu) - kBinBias,
          s.count);
      }
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static constexpr int64_t kBinBias = int64_t{1} << 30;  // keeps offset bins non-negative in a key
  static uint64_t Key(TrackId track, int64_t bin) {
    return (static_cast<uint64_t>(track) << 32) | static_cast<uint64_t>(bin + kBinBias);
  }
  static uint64_t KeyOf(const Vote& vote);
  // A key and its count side by side: one cache line per vote counted.
  struct Slot {
    uint64_t key = kEmpty;
    uint32_t count = 0;
  };
  size_t SlotOf(uint64_t key) const;
  void Resize(size_t size);
  void Rehash(size_t size);
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t used_ = 0;     // slots holding a key
  uint64_t total_ = 0;  // votes counted
};

// The votes of one (track, offset) region: offset bins bin_lo..bin_hi.
struct VoteRegion {
  TrackId track = 0;
  int64_t bin_lo = 0;
  int64_t bin_hi = 0;
};

// The votes of a sliding window (StreamRecognizer), counted per (track,
// offset bin) as they enter and leave, and linked so that the votes of one
// (track, offset) region are found without scanning the window.
//
// Votes enter in query_frame order and leave oldest first. Counts live in
// blocks of kBlockBins neighbouring offset bins of one track, one hash slot
// (open addressing, linear probing) per block: the neighbours of a bin are
// mostly in its own block. Each vote records its block and the previous vote
// of the same block, so leaving costs no lookup and a region's votes are a
// walk back from its block's newest vote.
// Memory: 16 bytes per vote of the largest window seen (a ring), plus two
// to four slots of 48 bytes per block that holds votes. A window holds fewer
// than 2^32 votes.
// Thread safety: one thread at a time.
class VoteWindow {
 public:
  VoteWindow();
  // REQUIRES: votes in query_frame order, none before the newest vote
  // already in the window.
  void Add(std::span<const Vote> votes);
  // Removes the votes with query_frame < `frame` (the oldest ones).
  void DropBefore(int32_t frame);
  size_t size() const { return static_cast<size_t>(end_ - first_); }
  bool empty() const { return first_ == end_; }
  // The oldest vote's query_frame. REQUIRES: !empty().
  int32_t first_query_frame() const { return At(first_).query_frame; }
  uint32_t Count(TrackId track, int64_t bin) const;
  // f(track, bin, count, neighbour) for every (track, bin) with a non-zero
  // count; neighbour is the larger count of bin - 1 and bin + 1. Any order.
  template <class F>
  void ForEachBin(F&& f) const;
  // Appends to out[k] (in no particular order) the votes of regions[k].
  // REQUIRES: out.size() >= regions.size().
  void AppendVotes(std::span<const VoteRegion> regions, std::span<std::vector<Vote>> out) const;

 private:
  static constexpr int kBlockShift = 3;
  static constexpr int kBlockBins = 1 << kBlockShift;
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static constexpr int64_t kBlockBias = int64_t{1}
                                        << 30;  // keeps block numbers non-negative in a key
  struct Block {
    uint64_t key = kEmpty;  // (track << 32) | (block number + kBlockBias)
    uint32_t newest =
        0;  // sequence number of the block's newest vote, modulo 2^32 (valid while total > 0)
    uint32_t total = 0;  // votes in the block
    uint32_t counts[kBlockBins] = {};
  };
  struct Entry {
    int32_t query_frame;
    int32_t ref_frame;
    uint32_t block;     // slot of the vote's block
    uint32_t previous;  // sequence distance to the previous vote of the block; 0: none
  };
  static uint64_t BlockKey(TrackId track, int64_t block) {
    return (static_cast<uint64_t>(track) << 32) | static_cast<uint64_t>(block + kBlockBias);
  }
  size_t Slot(uint64_t key) const;
  // The slot of `key`, or kNone.
  static constexpr size_t kNone = ~size_t{0};
  size_t Find(uint64_t key) const;
  // Stores `key` at `slot`, the empty slot that ends its probe sequence, or
  // elsewhere when the table is rebuilt first; returns where it went.
  size_t Insert(uint64_t key, size_t slot);
  uint32_t CountAt(TrackId track, int64_t block, int index) const;
  void Rehash(size_t size);
  const Entry& At(uint64_t sequence) const {
    return entries_[static_cast<size_t>(sequence) & ring_mask_];
  }
  Entry& At(uint64_t sequence) { return entries_[static_cast<size_t>(sequence) & ring_mask_]; }
  // Makes the ring hold at least `votes` votes.
  void GrowRing(size_t votes);

  std::vector<Block> blocks_;  // the hash table
  size_t mask_ = 0;
  size_t used_ = 0;  // slots holding a key (some may hold no vote)
  size_t live_ = 0;  // slots holding votes
  // The votes in the window: a ring indexed by sequence number (the number
  // of votes added before), holding those numbered first_ to end_ - 1.
  std::vector<Entry> entries_;
  size_t ring_mask_ = 0;
  uint64_t first_ = 0;
  uint64_t end_ = 0;
};

template <class F>
void VoteWindow::ForEachBin(F&& f) const {
  for (const Block& b : blocks_) {
    if (b.total == 0) continue;
    const TrackId track = static_cast<TrackId>(b.key >> 32);
    const int64_t block = static_cast<int64_t>(b.key & 0xffffffffu) - kBlockBias;
    const int64_t first_bin = block * kBlockBins;
    for (int i = 0; i < kBlockBins; ++i) {
      const uint32_t count = b.counts[i];
      if (count == 0) continue;
      const uint32_t left = i > 0 ? b.counts[i - 1] : CountAt(track, block - 1, kBlockBins - 1);
      const uint32_t right = i + 1 < kBlockBins ? b.counts[i + 1] : CountAt(track, block + 1, 0);
      f(track, first_bin + i, count, left > right ? left : right);
    }
  }
}

class Matcher {
 public:
  // `min_score`: results below it are dropped (see QueryParams).
  Matcher(const IndexReader& index, const FingerprintParams& params, const QueryParams& query);
  // The index this matcher reads (borrowed).
  const IndexReader& index() const { return index_; }

  // `peaks` are query peaks (at query density, frames counted from the start
  // of the query, sorted by frame). Returns results with score >= min_score,
  // best first, at most one per track, at most `max_results`.
  std::vector<MatchResult> Match(std::span<const Peak> peaks, size_t max_results,
                                 MatchStats* stats = nullptr) const;

  // Verifies one (track, alignment guess) directly: used by the stream
  // recogniser to follow a known match cheaply. `offset` and `scale` as in
  // MatchResult; searches pitch and a small neighbourhood of the alignment.
  MatchResult Verify(std::span<const Peak> peaks, TrackId track, double offset, double scale,
                     double pitch_factor) const;

  // --- The stages, for callers that run them incrementally (StreamRecognizer) ---

  // Stage 1a: appends the votes of the pairs anchored at peaks with frame in
  // [anchor_begin, anchor_end) (targets may lie beyond anchor_end). Only
  // peaks of rank < retrieval_peaks_per_band take part.
  void CollectVotes(std::span<const Peak> peaks, uint32_t anchor_begin, uint32_t anchor_end,
                    std::vector<Vote>& votes, MatchStats* stats = nullptr) const;
  // Stage 1b: the best (track, offset) candidates among `votes`, at most
  // QueryParams::candidates, strongest first. Counts a group of tracks at a
  // time so that the counts stay in the cache however large the catalog.
  std::vector<Candidate> RankCandidates(std::span<const Vote> votes) const;
  // The same for the votes of a sliding window (the same candidates as
  // RankCandidates given the window's votes; their votes in another order).
  std::vector<Candidate> RankWindowCandidates(const VoteWindow& window) const;
  // Stage 2: fits the alignment to the candidate's votes and scores it
  // against the query peaks (frames of votes and peaks on the same base).
  // A candidate scoring below `reject_below` before the chance correction
  // (which only lowers scores) is returned without it: chance_score 0 and
  // score the uncorrected one, still below `reject_below`. Callers that only
  // keep results at or above a bar pass it and save the null search.
  MatchResult VerifyCandidate(std::span<const Peak> peaks, const Candidate& candidate,
                              double reject_below = -std::numeric_limits<double>::infinity()) const;

  const FingerprintParams& params() const { return params_; }
  const QueryParams& query_params() const { return query_; }

 private:
  MatchResult ScoreAlignment(std::span<const Peak> peaks, TrackId track, double offset,
                             double scale, float pitch_lo, float pitch_hi) const;

  const IndexReader& index_;
  FingerprintParams params_;
  QueryParams query_;
};

}  // namespace earshot::recognition
