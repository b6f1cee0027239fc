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
//     the same peaks would give (from the reference's peak density per
//     frequency row). A search over scales, offsets and pitch shifts finds
//     some coincidences in any music, so the same search is also run at
//     offsets where the query cannot match, and the score is the excess
//     over that: about 0 for unrelated audio whatever its length or style,
//     large for a true match. A result is reported when it reaches min_score.
//
// Thread safety: Match() is const and may run concurrently on one Matcher as
// long as the IndexReader it borrows outlives it.
#pragma once

#include <cstdint>
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

// Votes counted per (track, offset bin), kept up to date as votes enter and
// leave a sliding window (StreamRecognizer) or built once for a query.
// Open addressing with linear probing; holds one slot per distinct key seen
// (bounded by the catalog's offset bins), however many votes pass through.
// Thread safety: one thread at a time.
class VoteCounts {
 public:
  VoteCounts();
  void Add(const Vote& vote);
  // Takes back a vote that was added (ignored when it was not).
  void Remove(const Vote& vote);
  uint32_t Get(TrackId track, int64_t bin) const;
  uint64_t total() const { return total_; }
  // f(track, bin, count) for every key with a non-zero count.
  template <class F>
  void ForEach(F&& f) const {
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (keys_[i] != kEmpty && counts_[i] > 0) {
        f(static_cast<TrackId>(keys_[i] >> 32),
          static_cast<int64_t>(keys_[i] & 0xffffffffu) - kBinBias, counts_[i]);
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
  size_t Slot(uint64_t key) const;
  void Resize(size_t size);
  void Rehash(size_t size);
  void AddKey(uint64_t key, uint32_t n);
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> counts_;
  size_t mask_ = 0;
  size_t used_ = 0;    // slots holding a key (some may count zero)
  size_t live_ = 0;    // slots holding a key with a non-zero count
  uint64_t total_ = 0;  // votes counted
};

class Matcher {
 public:
  // `min_score`: results below it are dropped (see QueryParams).
  Matcher(const IndexReader& index, const FingerprintParams& params, const QueryParams& query);

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
  // QueryParams::candidates, strongest first.
  std::vector<Candidate> RankCandidates(std::span<const Vote> votes) const;
  // The same with the counts of `votes` already made (kept incrementally).
  std::vector<Candidate> RankCandidates(std::span<const Vote> votes, const VoteCounts& counts) const;
  // Stage 2: fits the alignment to the candidate's votes and scores it
  // against the query peaks (frames of votes and peaks on the same base).
  MatchResult VerifyCandidate(std::span<const Peak> peaks, const Candidate& candidate) const;

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
