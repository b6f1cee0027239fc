// VoteWindow (matcher.h) against a plain list of the window's votes: counts,
// neighbour counts, the votes of regions and the ranked candidates must be
// what a scan of the list gives, while votes enter and leave.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

#include "recognition/matcher.h"
#include "recognition/memory_index.h"

namespace earshot::recognition {
namespace {

int64_t Bin(const Vote& v) { return static_cast<int64_t>(v.ref_frame - v.query_frame) >> 5; }

using VoteTuple = std::tuple<TrackId, int32_t, int32_t>;

std::vector<VoteTuple> Sorted(std::span<const Vote> votes) {
  std::vector<VoteTuple> out;
  for (const Vote& v : votes) out.emplace_back(v.track, v.query_frame, v.ref_frame);
  std::sort(out.begin(), out.end());
  return out;
}

// The reference: the window's votes in a list, everything found by scanning it.
struct Reference {
  std::deque<Vote> votes;

  void DropBefore(int32_t frame) {
    while (!votes.empty() && votes.front().query_frame < frame) votes.pop_front();
  }
  std::map<std::pair<TrackId, int64_t>, uint32_t> Counts() const {
    std::map<std::pair<TrackId, int64_t>, uint32_t> counts;
    for (const Vote& v : votes) ++counts[{v.track, Bin(v)}];
    return counts;
  }
  std::vector<Vote> Region(const VoteRegion& r) const {
    std::vector<Vote> out;
    for (const Vote& v : votes) {
      if (v.track == r.track && Bin(v) >= r.bin_lo && Bin(v) <= r.bin_hi) out.push_back(v);
    }
    return out;
  }
};

void ExpectSameContent(const VoteWindow& window, const Reference& reference) {
  ASSERT_EQ(window.size(), reference.votes.size());
  ASSERT_EQ(window.empty(), reference.votes.empty());
  if (!reference.votes.empty()) {
    EXPECT_EQ(window.first_query_frame(), reference.votes.front().query_frame);
  }
  const auto counts = reference.Counts();
  const auto count = [&counts](TrackId track, int64_t bin) -> uint32_t {
    const auto it = counts.find({track, bin});
    return it == counts.end() ? 0 : it->second;
  };
  std::map<std::pair<TrackId, int64_t>, std::pair<uint32_t, uint32_t>> seen;
  window.ForEachBin([&](TrackId track, int64_t bin, uint32_t n, uint32_t neighbour) {
    EXPECT_TRUE(seen.emplace(std::make_pair(track, bin), std::make_pair(n, neighbour)).second)
        << "bin offered twice: track " << track << " bin " << bin;
  });
  ASSERT_EQ(seen.size(), counts.size());
  for (const auto& [key, n] : counts) {
    const auto [track, bin] = key;
    ASSERT_TRUE(seen.contains(key)) << "track " << track << " bin " << bin;
    EXPECT_EQ(seen[key].first, n);
    EXPECT_EQ(seen[key].second, std::max(count(track, bin - 1), count(track, bin + 1)));
    EXPECT_EQ(window.Count(track, bin), n);
    EXPECT_EQ(window.Count(track, bin + 1000), count(track, bin + 1000));
  }
}

TEST(VoteWindowTest, AgreesWithAScanWhileVotesEnterAndLeave) {
  std::mt19937 rng(11);
  VoteWindow window;
  Reference reference;
  int32_t frame = 0;
  // Many tracks and offsets (the table grows, then shrinks back when the
  // offsets drift), some dense regions (long chains), negative offsets.
  for (int hop = 0; hop < 60; ++hop) {
    std::vector<Vote> batch;
    const int n = hop < 30 ? 3000 : 300;
    for (int i = 0; i < n; ++i) {
      frame += static_cast<int32_t>(rng() % 2);
      Vote v;
      if (rng() % 4 == 0) {  // a true match: constant offset
        v.track = 7;
        v.ref_frame = frame + 1000 + static_cast<int32_t>(rng() % 40);
      } else {
        v.track = static_cast<TrackId>(1 + rng() % (hop < 30 ? 200 : 20));
        v.ref_frame = static_cast<int32_t>(rng() % 20000) - 3000;
      }
      v.query_frame = frame;
      batch.push_back(v);
    }
    window.Add(batch);
    reference.votes.insert(reference.votes.end(), batch.begin(), batch.end());
    const int32_t horizon = frame - 2500;
    window.DropBefore(horizon);
    reference.DropBefore(horizon);
    ASSERT_NO_FATAL_FAILURE(ExpectSameContent(window, reference)) << "hop " << hop;

    // Regions: around the true match, random ones, overlapping ones, empty ones.
    std::vector<VoteRegion> regions = {
        {7, Bin({7, frame, frame + 1000}) - 2, Bin({7, frame, frame + 1000}) + 2},
        {7, Bin({7, frame, frame + 1000}), Bin({7, frame, frame + 1000}) + 4},
        {999, 0, 10}};
    for (int k = 0; k < 5; ++k) {
      const TrackId track = static_cast<TrackId>(1 + rng() % 20);
      const int64_t bin = static_cast<int64_t>(rng() % 700) - 200;
      regions.push_back({track, bin - 2, bin + 2});
    }
    std::vector<std::vector<Vote>> got(regions.size());
    window.AppendVotes(regions, got);
    for (size_t k = 0; k < regions.size(); ++k) {
      EXPECT_EQ(Sorted(got[k]), Sorted(reference.Region(regions[k])))
          << "hop " << hop << " region " << k;
    }
  }
  // Everything leaves.
  window.DropBefore(frame + 1);
  reference.DropBefore(frame + 1);
  ExpectSameContent(window, reference);
  EXPECT_TRUE(window.empty());
  std::vector<std::vector<Vote>> got(1);
  const VoteRegion all{7, -100000, 100000};
  window.AppendVotes(std::span(&all, 1), got);
  EXPECT_TRUE(got[0].empty());
}

TEST(VoteWindowTest, RanksTheSameCandidatesAsTheVotesThemselves) {
  MemoryIndex empty;
  const Matcher matcher(empty, FingerprintParams(), QueryParams());
  std::mt19937 rng(12);
  VoteWindow window;
  Reference reference;
  int32_t frame = 0;
  for (int hop = 0; hop < 20; ++hop) {
    std::vector<Vote> batch;
    for (int i = 0; i < 4000; ++i) {
      frame += static_cast<int32_t>(rng() % 2);
      Vote v;
      v.query_frame = frame;
      if (rng() % 3 == 0) {  // two true matches, one with a tempo change
        v.track = 3 + 2 * (rng() % 2);
        v.ref_frame = v.track == 3 ? frame + 500 : static_cast<int32_t>(frame * 1.04) + 9000;
      } else {
        v.track = static_cast<TrackId>(1 + rng() % 30);
        v.ref_frame = static_cast<int32_t>(rng() % 8000);
      }
      batch.push_back(v);
    }
    window.Add(batch);
    reference.votes.insert(reference.votes.end(), batch.begin(), batch.end());
    window.DropBefore(frame - 1500);
    reference.DropBefore(frame - 1500);
    const std::vector<Vote> all(reference.votes.begin(), reference.votes.end());
    const std::vector<Candidate> expected = matcher.RankCandidates(all);
    const std::vector<Candidate> got = matcher.RankWindowCandidates(window);
    ASSERT_EQ(got.size(), expected.size()) << "hop " << hop;
    ASSERT_FALSE(got.empty());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].track, expected[k].track) << "hop " << hop << " candidate " << k;
      EXPECT_EQ(got[k].strength, expected[k].strength) << "hop " << hop << " candidate " << k;
      EXPECT_EQ(Sorted(got[k].votes), Sorted(expected[k].votes))
          << "hop " << hop << " candidate " << k;
    }
  }
}

}  // namespace
}  // namespace earshot::recognition
