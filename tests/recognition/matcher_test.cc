#include "recognition/matcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "recognition/fingerprinter.h"
#include "recognition/hasher.h"
#include "recognition/memory_index.h"
#include "test_audio.h"

namespace earshot::recognition {
namespace {

using test_audio::Catalog;
using test_audio::SharedCatalog;

struct Excerpt {
  TrackId track = 0;
  double from = 0;  // seconds into the reference track
};

// A random excerpt of `seconds` from a random track of `catalog`.
Excerpt RandomExcerpt(const Catalog& catalog, std::mt19937& rng, double seconds) {
  Excerpt e;
  e.track = catalog.first_id + static_cast<TrackId>(rng() % catalog.scores.size());
  const double room = catalog.score(e.track).seconds - seconds - 0.5;
  e.from = std::uniform_real_distribution<double>(0.0, room)(rng);
  return e;
}

std::vector<Peak> QueryPeaks(std::span<const float> pcm, const Matcher& matcher) {
  return ExtractPeaks(pcm, matcher.params(), matcher.query_params().query_peaks_per_band);
}

double OffsetSeconds(const MatchResult& r, const FingerprintParams& params) {
  return r.reference_offset * params.hop_seconds();
}

std::string Describe(const Excerpt& e, const std::vector<MatchResult>& results) {
  std::string s = "excerpt of track " + std::to_string(e.track) + " from " + std::to_string(e.from) + " s; results:";
  for (const MatchResult& r : results) {
    s += " [track " + std::to_string(r.track) + " score " + std::to_string(r.score) + " offset " +
         std::to_string(r.reference_offset) + " scale " + std::to_string(r.time_scale) + " pitch " +
         std::to_string(r.pitch_factor) + "]";
  }
  return s;
}

// Checks that `results` lead with the excerpt's track at the right offset.
void ExpectFound(const Excerpt& e, const std::vector<MatchResult>& results, const Matcher& matcher,
                 double offset_tolerance_seconds = 0.1) {
  ASSERT_FALSE(results.empty()) << Describe(e, results);
  const MatchResult& best = results.front();
  EXPECT_EQ(best.track, e.track) << Describe(e, results);
  EXPECT_GE(best.score, matcher.query_params().min_score);
  EXPECT_NEAR(OffsetSeconds(best, matcher.params()), e.from, offset_tolerance_seconds) << Describe(e, results);
}

TEST(MatcherTest, FindsCleanExcerptsWithTrackAndOffset) {
  const Catalog& catalog = SharedCatalog();
  const Matcher matcher(catalog.index, FingerprintParams(), QueryParams());
  std::mt19937 rng(100);
  for (double seconds : {5.0, 10.0}) {
    for (int i = 0; i < 12; ++i) {
      const Excerpt e = RandomExcerpt(catalog, rng, seconds);
      SCOPED_TRACE(Describe(e, {}));
      const std::vector<Peak> peaks = QueryPeaks(test_audio::Render(catalog.score(e.track), e.from, seconds), matcher);
      const std::vector<MatchResult> results = matcher.Match(peaks, 5);
      ExpectFound(e, results, matcher);
      if (results.empty()) continue;
      const MatchResult& best = results.front();
      EXPECT_NEAR(best.time_scale, 1.0, 0.01);
      EXPECT_LE(best.hits, best.query_peaks);
      EXPECT_EQ(best.query_peaks, peaks.size());
      EXPECT_GT(best.votes, 0u);
      // The coinciding peaks span most of the excerpt.
      EXPECT_LE(best.query_first_frame, best.query_last_frame);
      EXPECT_LE(best.query_last_frame, peaks.back().frame);
      EXPECT_GT((best.query_last_frame - best.query_first_frame) * matcher.params().hop_seconds(), seconds * 0.6);
    }
  }
}

TEST(MatcherTest, NoiseSpeechAndSilenceGiveNoResult) {
  const Catalog& catalog = SharedCatalog();
  const Matcher matcher(catalog.index, FingerprintParams(), QueryParams());
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    const std::vector<float> noise = test_audio::WhiteNoise(seed, 80000, 0.01 * seed);
    std::vector<MatchResult> results = matcher.Match(QueryPeaks(noise, matcher), 5);
    EXPECT_TRUE(results.empty()) << "noise " << seed << ": " << Describe({}, results);
    results = matcher.Match(QueryPeaks(test_audio::SpeechLike(seed, 10.0), matcher), 5);
    EXPECT_TRUE(results.empty()) << "speech " << seed << ": " << Describe({}, results);
  }
  const std::vector<float> silence(80000, 0.0f);
  EXPECT_TRUE(matcher.Match(QueryPeaks(silence, matcher), 5).empty());
  EXPECT_TRUE(matcher.Match({}, 5).empty());
}

// Unrelated music and the score threshold. Generated music (test_audio) is a
// hard case for "no match": every generated track shares one equal-tempered
// scale and one pulse, so the alignment search finds partial coincidences
// and its best alignment against an unrelated generated track can come
// close to min_score (best of these ten: 5.6 on 2026-11-22, min_score 6;
// 7-14 before the chance of a coincidence was also taken from the aligned
// frame). Real catalogues do not share a beat grid: real non-catalogued
// music stays below 4.3 (1,488 negative clips, ACR benchmark and more) and
// is tested with real recordings in
// tests/catalog/real_music_negatives_e2e_test.cc. What holds here, and is
// tested, is the ordering: unrelated generated music never outranks the
// true track and scores far below true matches. See docs/identification.md,
// "Known limitations".
TEST(MatcherTest, TrueMatchesOutscoreUnrelatedMusic) {
  const Catalog& catalog = SharedCatalog();
  QueryParams query;
  query.min_score = -1e9;  // report every candidate
  const Matcher matcher(catalog.index, FingerprintParams(), query);
  std::mt19937 rng(201);
  double best_unrelated = -1e9, worst_true = 1e9;
  for (int i = 0; i < 10; ++i) {
    const test_audio::Score other = test_audio::ComposeMusic(static_cast<uint32_t>(rng()), 10.0);
    for (const MatchResult& r : matcher.Match(QueryPeaks(test_audio::Render(other, 0, 10.0), matcher), 1)) {
      best_unrelated = std::max(best_unrelated, r.score);
    }
    const Excerpt e = RandomExcerpt(catalog, rng, 10.0);
    const std::vector<MatchResult> results =
        matcher.Match(QueryPeaks(test_audio::Render(catalog.score(e.track), e.from, 10.0), matcher), 1);
    ASSERT_FALSE(results.empty());
    EXPECT_EQ(results.front().track, e.track);
    worst_true = std::min(worst_true, results.front().score);
  }
  EXPECT_GT(worst_true, 2 * best_unrelated);
  RecordProperty("best_unrelated", std::to_string(best_unrelated));
  RecordProperty("worst_true", std::to_string(worst_true));
}

// Another piece's percussion alone (noise bursts on its own beat grid), a
// little faster or slower: the tempo search can line its hits up with the
// bursts of a catalogued piece whose beat is within a few percent, and
// bursts set peaks across the spectrum, so the hits also coincide in
// frequency. Those coincidences must not count as evidence (the chance of
// one is taken from the aligned frame itself): nothing reaches min_score.
// Without that, some of these clips scored above it (as drum loops of real
// non-catalogued tracks did, up to 10).
TEST(MatcherTest, OtherPercussionAtANearbyTempoDoesNotMatch) {
  const Catalog& catalog = SharedCatalog();
  QueryParams all = QueryParams();
  all.min_score = -1e9;  // to see the best score of each clip
  const Matcher matcher(catalog.index, FingerprintParams(), all);
  const double threshold = QueryParams().min_score;
  std::mt19937 rng(404);
  double best = -1e9;
  for (int i = 0; i < 12; ++i) {
    test_audio::Score drums = test_audio::ComposeMusic(static_cast<uint32_t>(rng()), 16.0);
    drums.tones.clear();
    const double tempo = 0.97 + 0.03 * (i % 3);
    const std::vector<MatchResult> results =
        matcher.Match(QueryPeaks(test_audio::Render(drums, 0, 10.0, 1.0, tempo), matcher), 1);
    const double score = results.empty() ? -1e9 : results.front().score;
    EXPECT_LT(score, threshold) << "clip " << i << " (tempo " << tempo << ") matched track "
                                << results.front().track << " at scale " << results.front().time_scale;
    best = std::max(best, score);
  }
  RecordProperty("best_score", std::to_string(best));
}

TEST(MatcherTest, FindsExcerptsUnderSpeechAndNoise) {
  const Catalog& catalog = SharedCatalog();
  const Matcher matcher(catalog.index, FingerprintParams(), QueryParams());
  std::mt19937 rng(300);
  for (int i = 0; i < 24; ++i) {
    const double seconds = 10.0;
    const Excerpt e = RandomExcerpt(catalog, rng, seconds);
    const std::vector<float> music = test_audio::Render(catalog.score(e.track), e.from, seconds);
    std::vector<float> mixed;
    std::string what;
    switch (i % 3) {
      case 0:  // a streamer talking over the music, as loud as it
        mixed = test_audio::MixAtSnr(music, test_audio::SpeechLike(static_cast<uint32_t>(rng()), seconds), 0.0);
        what = "speech at 0 dB";
        break;
      case 1:
        mixed = test_audio::MixAtSnr(music, test_audio::WhiteNoise(static_cast<uint32_t>(rng()), music.size(), 1.0), 5.0);
        what = "white noise at 5 dB";
        break;
      default: {
        const std::vector<float> both = test_audio::MixAtSnr(
            test_audio::SpeechLike(static_cast<uint32_t>(rng()), seconds),
            test_audio::WhiteNoise(static_cast<uint32_t>(rng()), music.size(), 1.0), 10.0);
        mixed = test_audio::MixAtSnr(music, both, 3.0);
        what = "speech and noise at 3 dB";
      }
    }
    SCOPED_TRACE(what);
    ExpectFound(e, matcher.Match(QueryPeaks(mixed, matcher), 5), matcher);
  }
}

// Frequencies multiplied by `pitch` (query = reference * pitch) and/or every
// duration multiplied by `tempo`: the excerpt is still found, and the
// reported factors (reference / query) are the inverse of the applied ones.
struct Transform {
  double pitch = 1;
  double tempo = 1;
  double speed = 1;  // resampling: both at once
};

void CheckTransformed(const Transform& t, double pitch_tolerance, int count, uint32_t seed) {
  const Catalog& catalog = SharedCatalog();
  const Matcher matcher(catalog.index, FingerprintParams(), QueryParams());
  std::mt19937 rng(seed);
  for (int i = 0; i < count; ++i) {
    const double seconds = 10.0;
    const Excerpt e = RandomExcerpt(catalog, rng, seconds * 1.1);
    std::vector<float> pcm = test_audio::Render(catalog.score(e.track), e.from, seconds * t.tempo, t.pitch, t.tempo);
    if (t.speed != 1) pcm = test_audio::Resample(pcm, t.speed);
    const std::vector<MatchResult> results = matcher.Match(QueryPeaks(pcm, matcher), 5);
    ExpectFound(e, results, matcher);
    if (results.empty() || results.front().track != e.track) continue;
    const MatchResult& best = results.front();
    const double applied_pitch = t.pitch * t.speed;  // query / reference frequency
    const double applied_scale = t.speed / t.tempo;  // reference frames per query frame
    EXPECT_NEAR(best.time_scale * (1 / applied_scale), 1.0, 0.01) << Describe(e, results);
    EXPECT_NEAR(best.pitch_factor * applied_pitch, 1.0, pitch_tolerance) << Describe(e, results);
  }
}

TEST(MatcherTest, FindsPitchShiftedExcerpts) {
  CheckTransformed({.pitch = 1.03}, 0.01, 6, 400);
  CheckTransformed({.pitch = 0.97}, 0.01, 6, 401);
  CheckTransformed({.pitch = 1.05}, 0.01, 6, 402);
  // 5 % lower is a factor 1 / 0.95 = 1.0526 in the matcher's terms
  // (reference / query), just outside the 1 +- 0.05 searched: still found,
  // but the shifts tried stop at 3 units (1.044) and the estimate, the
  // centre of the best-scoring shifts, lands 0.5-0.8 units inside.
  CheckTransformed({.pitch = 0.95}, 0.015, 6, 403);
}

TEST(MatcherTest, FindsTempoChangedExcerpts) {
  CheckTransformed({.tempo = 1.05}, 0.01, 6, 500);
  CheckTransformed({.tempo = 0.95}, 0.01, 6, 501);
}

TEST(MatcherTest, FindsSpeedChangedExcerpts) {
  // Resampling changes pitch and tempo together, as a sped-up video does.
  CheckTransformed({.speed = 1.03}, 0.01, 6, 600);
  CheckTransformed({.speed = 0.97}, 0.01, 6, 601);
}

TEST(MatcherTest, ResultsAreBestFirstOnePerTrackAndCapped) {
  const Catalog& catalog = SharedCatalog();
  const Matcher matcher(catalog.index, FingerprintParams(), QueryParams());
  // 6 s of track 3 then 6 s of track 8, louder: both are in the query.
  std::vector<float> pcm = test_audio::Render(catalog.score(3), 10.0, 6.0);
  const std::vector<float> second = test_audio::Render(catalog.score(8), 20.0, 6.0);
  std::vector<float> louder(second);
  for (float& v : louder) v *= 2.0f;
  test_audio::Append(pcm, louder);
  const std::vector<Peak> peaks = QueryPeaks(pcm, matcher);
  MatchStats stats;
  const std::vector<MatchResult> all = matcher.Match(peaks, 10, &stats);
  ASSERT_GE(all.size(), 2u);
  std::vector<TrackId> tracks;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) {
      EXPECT_GE(all[i - 1].score, all[i].score);
    }
    tracks.push_back(all[i].track);
  }
  EXPECT_NE(std::find(tracks.begin(), tracks.end(), 3u), tracks.end());
  EXPECT_NE(std::find(tracks.begin(), tracks.end(), 8u), tracks.end());
  std::sort(tracks.begin(), tracks.end());
  EXPECT_EQ(std::adjacent_find(tracks.begin(), tracks.end()), tracks.end()) << "a track reported twice";
  // Each is aligned on its own part: track 3 at 10 s, track 8 at 20 - 6 s.
  for (const MatchResult& r : all) {
    if (r.track == 3) {
      EXPECT_NEAR(OffsetSeconds(r, matcher.params()), 10.0, 0.1);
    } else if (r.track == 8) {
      EXPECT_NEAR(OffsetSeconds(r, matcher.params()), 14.0, 0.1);
    }
  }
  EXPECT_GT(stats.pairs, 0u);
  EXPECT_GE(stats.lookups, stats.pairs);
  EXPECT_GE(stats.candidates, 2u);
  EXPECT_LE(stats.candidates, static_cast<uint32_t>(matcher.query_params().candidates));

  const std::vector<MatchResult> one = matcher.Match(peaks, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].track, all[0].track);
  EXPECT_EQ(one[0].score, all[0].score);
  EXPECT_TRUE(matcher.Match(peaks, 0).empty());
}

TEST(MatcherTest, VerifyScoresTheTrueAlignmentHighAndOthersLow) {
  const Catalog& catalog = SharedCatalog();
  const FingerprintParams params;
  const Matcher matcher(catalog.index, params, QueryParams());
  const double from = 12.0;
  const std::vector<Peak> peaks = QueryPeaks(test_audio::Render(catalog.score(5), from, 8.0), matcher);
  const double offset = from * params.frames_per_second();
  const MatchResult right = matcher.Verify(peaks, 5, offset + 1, 1.0, 1.0);
  EXPECT_GE(right.score, matcher.query_params().min_score);
  EXPECT_NEAR(right.reference_offset, offset, 1.5);
  EXPECT_GT(right.hits, right.query_peaks / 4);
  // Wrong offset, wrong track, unknown track: chance level.
  EXPECT_LT(matcher.Verify(peaks, 5, offset + 300, 1.0, 1.0).score, 5.0);
  EXPECT_LT(matcher.Verify(peaks, 6, offset, 1.0, 1.0).score, 5.0);
  EXPECT_LT(matcher.Verify(peaks, 9999, offset, 1.0, 1.0).score, 0.0);
}

TEST(MatcherTest, RankCandidatesCountsOffsetBinsPlusTheBetterNeighbour) {
  // Offset bins are 32 frames (ref_frame - query_frame >> 5).
  MemoryIndex empty;
  QueryParams query;
  query.candidates = 3;
  const Matcher matcher(empty, FingerprintParams(), query);
  std::vector<Vote> votes;
  const auto add = [&votes](TrackId track, int32_t offset, int n) {
    for (int i = 0; i < n; ++i) votes.push_back({track, 10 * i, offset + 10 * i});
  };
  add(1, 320, 10);   // track 1, bin 10
  add(1, 352, 4);    // track 1, bin 11: next to the best, not a candidate of its own
  add(1, 1600, 6);   // track 1, bin 50
  add(2, 640, 5);    // track 2, bin 20
  add(2, 704, 2);    // track 2, bin 22 (not a neighbour of bin 20)
  add(3, 0, 2);      // track 3: two votes, below the minimum of three
  add(4, 960, 1);    // track 4, bins 30 and 31: 1 + 2 = 3 with the neighbour
  add(4, 992, 2);
  const std::vector<Candidate> candidates = matcher.RankCandidates(votes);
  ASSERT_EQ(candidates.size(), 3u);  // capped at QueryParams::candidates
  EXPECT_EQ(candidates[0].track, 1u);
  EXPECT_EQ(candidates[0].strength, 14u);
  EXPECT_EQ(candidates[0].votes.size(), 14u);  // bins 10 and 11 (within +-2)
  EXPECT_EQ(candidates[1].track, 1u);
  EXPECT_EQ(candidates[1].strength, 6u);
  EXPECT_EQ(candidates[2].track, 2u);
  EXPECT_EQ(candidates[2].strength, 5u);
  EXPECT_EQ(candidates[2].votes.size(), 7u);  // bins 20 and 22

  query.candidates = 10;
  const Matcher more(empty, FingerprintParams(), query);
  const std::vector<Candidate> all = more.RankCandidates(votes);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[3].track, 4u);
  EXPECT_EQ(all[3].strength, 3u);
  for (const Candidate& c : all) EXPECT_NE(c.track, 3u);
  EXPECT_TRUE(more.RankCandidates({}).empty());
}

// RankCandidates counts votes a group of tracks at a time, in dense arrays
// or hash tables depending on how far the votes spread: against a plain
// count of every (track, offset bin) in a std::map, chosen the same way
// (strongest first, at least 3, the best candidates * 8 considered, a bin
// within 2 of a stronger chosen bin of its track skipped).
std::vector<Candidate> NaiveRank(const std::vector<Vote>& votes, size_t candidates) {
  std::map<std::pair<TrackId, int64_t>, uint32_t> count;
  const auto bin_of = [](const Vote& v) {
    return static_cast<int64_t>(v.ref_frame - v.query_frame) >> 5;
  };
  for (const Vote& v : votes) ++count[{v.track, bin_of(v)}];
  const auto at = [&count](TrackId t, int64_t b) {
    const auto it = count.find({t, b});
    return it == count.end() ? 0u : it->second;
  };
  struct Bin {
    TrackId track;
    int64_t bin;
    uint32_t strength;
  };
  std::vector<Bin> bins;
  for (const auto& [key, n] : count) {
    const uint32_t strength =
        n + std::max(at(key.first, key.second - 1), at(key.first, key.second + 1));
    if (strength >= 3) bins.push_back({key.first, key.second, strength});
  }
  std::sort(bins.begin(), bins.end(), [](const Bin& a, const Bin& b) {
    return std::tie(b.strength, a.track, a.bin) < std::tie(a.strength, b.track, b.bin);
  });
  if (bins.size() > candidates * 8) bins.resize(candidates * 8);
  std::vector<Bin> chosen;
  for (const Bin& b : bins) {
    if (chosen.size() == candidates) break;
    if (std::none_of(chosen.begin(), chosen.end(), [&](const Bin& c) {
          return c.track == b.track && std::abs(c.bin - b.bin) <= 2;
        })) {
      chosen.push_back(b);
    }
  }
  std::vector<Candidate> out(chosen.size());
  for (size_t k = 0; k < chosen.size(); ++k) {
    out[k].track = chosen[k].track;
    out[k].strength = chosen[k].strength;
    for (const Vote& v : votes) {
      if (v.track == chosen[k].track && std::abs(bin_of(v) - chosen[k].bin) <= 2)
        out[k].votes.push_back(v);
    }
  }
  return out;
}

TEST(MatcherTest, RankCandidatesAgreesWithANaiveCountWhateverTheCatalogSize) {
  MemoryIndex empty;
  QueryParams query;
  query.candidates = 8;
  const Matcher matcher(empty, FingerprintParams(), query);
  struct Case {
    const char* what;
    TrackId tracks;      // track ids 1..tracks
    int32_t ref_frames;  // reference frames spread over 0..ref_frames,
    int32_t far_frames;  // and one noise vote in 100 over 0..far_frames
    size_t votes;
  };
  const Case cases[] = {
      {"few votes, one group", 30, 8000, 8000, 3000},
      {"many tracks, short spread: dense groups", 5000, 16000, 16000, 400000},
      {"a track hours long: hash-table groups", 300, 16000, 2000000, 300000},
  };
  std::mt19937 rng(21);
  for (const Case& c : cases) {
    std::vector<Vote> votes;
    for (size_t i = 0; i < c.votes; ++i) {
      Vote v;
      v.query_frame = static_cast<int32_t>(rng() % 625);
      if (i % 5 == 0) {  // three true matches among the noise
        v.track = std::array<TrackId, 3>{7, c.tracks / 2, c.tracks}[rng() % 3];
        v.ref_frame = v.query_frame + 3000 + static_cast<int32_t>(v.track % 7) * 100 +
                      static_cast<int32_t>(rng() % 48);  // over two offset bins
      } else {
        v.track = 1 + static_cast<TrackId>(rng() % c.tracks);
        const int32_t spread = i % 100 == 1 ? c.far_frames : c.ref_frames;
        v.ref_frame = static_cast<int32_t>(rng() % static_cast<uint32_t>(spread));
      }
      votes.push_back(v);
    }
    const std::vector<Candidate> expected = NaiveRank(votes, 8);
    const std::vector<Candidate> got = matcher.RankCandidates(votes);
    ASSERT_EQ(got.size(), expected.size()) << c.what;
    ASSERT_GE(got.size(), 3u) << c.what;
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].track, expected[k].track) << c.what << ", candidate " << k;
      EXPECT_EQ(got[k].strength, expected[k].strength) << c.what << ", candidate " << k;
      ASSERT_EQ(got[k].votes.size(), expected[k].votes.size()) << c.what << ", candidate " << k;
      for (size_t i = 0; i < got[k].votes.size(); ++i) {  // in the order given
        EXPECT_EQ(got[k].votes[i].query_frame, expected[k].votes[i].query_frame) << c.what;
        EXPECT_EQ(got[k].votes[i].ref_frame, expected[k].votes[i].ref_frame) << c.what;
      }
    }
  }
}

// The fast path (hash index lookups) against a naive reference: every query
// pair expanded by hand and compared with every reference hash of every
// track by a linear scan.
using VoteTuple = std::tuple<TrackId, int32_t, int32_t>;

std::vector<VoteTuple> BruteForceVotes(const std::vector<Peak>& peaks, uint32_t anchor_begin, uint32_t anchor_end,
                                       const Catalog& catalog, const FingerprintParams& params,
                                       const QueryParams& query, uint64_t* pairs) {
  std::vector<Peak> retrieval;
  for (const Peak& p : peaks) {
    if (p.rank < query.retrieval_peaks_per_band) retrieval.push_back(p);
  }
  std::vector<VoteTuple> votes;
  std::vector<HashKey> keys;
  for (size_t i = 0; i < retrieval.size(); ++i) {
    int taken = 0;
    for (size_t j = i + 1; j < retrieval.size() && taken < query.query_fanout; ++j) {
      const long dt = static_cast<long>(retrieval[j].frame) - static_cast<long>(retrieval[i].frame);
      if (dt < params.pair_min_dt || dt > params.pair_max_dt) continue;
      if (std::abs(retrieval[j].unit - retrieval[i].unit) > params.pair_max_octaves * kUnitsPerOctave) continue;
      ++taken;
      const Peak& anchor = retrieval[i];
      if (anchor.frame < anchor_begin || anchor.frame >= anchor_end) continue;
      ++*pairs;
      keys.clear();
      ExpandQueryPair(anchor, retrieval[j], query, params, keys);
      // Each key counts once per occurrence in the expansion (the index is
      // looked up once per key).
      std::sort(keys.begin(), keys.end());
      for (const TrackFingerprint& print : catalog.prints) {
        for (const HashEntry& h : print.hashes) {
          const auto [lo, hi] = std::equal_range(keys.begin(), keys.end(), h.hash);
          for (auto k = lo; k != hi; ++k) {
            votes.emplace_back(print.track, static_cast<int32_t>(anchor.frame), static_cast<int32_t>(h.time));
          }
        }
      }
    }
  }
  std::sort(votes.begin(), votes.end());
  return votes;
}

std::vector<VoteTuple> Sorted(const std::vector<Vote>& votes) {
  std::vector<VoteTuple> out;
  for (const Vote& v : votes) out.emplace_back(v.track, v.query_frame, v.ref_frame);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(MatcherTest, StageOneVotesEqualABruteForceScan) {
  const FingerprintParams params;
  const QueryParams query;
  const Catalog catalog = test_audio::BuildCatalog(77, 4, 20.0, 25.0, params, 11);
  const Matcher matcher(catalog.index, params, query);
  // Part of track 12 under speech, so that both true and chance votes occur.
  const std::vector<float> pcm = test_audio::MixAtSnr(test_audio::Render(catalog.score(12), 4.0, 8.0),
                                                      test_audio::SpeechLike(5, 8.0), 5.0);
  const std::vector<Peak> peaks = QueryPeaks(pcm, matcher);
  size_t all_votes = 0;
  for (const auto& [begin, end] : {std::pair<uint32_t, uint32_t>{0, UINT32_MAX}, {100, 300}, {0, 1}}) {
    SCOPED_TRACE(std::to_string(begin) + ".." + std::to_string(end));
    std::vector<Vote> votes;
    MatchStats stats;
    matcher.CollectVotes(peaks, begin, end, votes, &stats);
    uint64_t pairs = 0;
    const std::vector<VoteTuple> expected = BruteForceVotes(peaks, begin, end, catalog, params, query, &pairs);
    EXPECT_EQ(Sorted(votes), expected);
    if (end == UINT32_MAX) all_votes = expected.size();
    EXPECT_EQ(stats.pairs, pairs);
    EXPECT_EQ(stats.postings, votes.size());
    if (end == UINT32_MAX) {
      // Chance votes outnumber true ones (each pair is looked up under many
      // keys), but the densest (track, offset) is the true one: track 12 at
      // 4 s = 250 frames.
      ASSERT_GT(expected.size(), 1000u);
      std::map<std::pair<TrackId, int32_t>, int> per_offset;
      for (const VoteTuple& v : expected) ++per_offset[{std::get<0>(v), std::get<2>(v) - std::get<1>(v)}];
      std::pair<TrackId, int32_t> densest{};
      int densest_votes = 0;
      for (const auto& [key, n] : per_offset) {
        int around = 0;  // votes within +-2 frames of this offset
        for (int32_t d = -2; d <= 2; ++d) {
          const auto it = per_offset.find({key.first, key.second + d});
          if (it != per_offset.end()) around += it->second;
        }
        if (around > densest_votes) {
          densest_votes = around;
          densest = key;
        }
      }
      EXPECT_EQ(densest.first, 12u);
      EXPECT_NEAR(densest.second, 250, 2);
      EXPECT_GT(densest_votes, 50);
    }
  }
  // Votes are appended, not replaced.
  std::vector<Vote> votes(3);
  matcher.CollectVotes(peaks, 0, UINT32_MAX, votes);
  EXPECT_EQ(votes.size(), 3 + all_votes);
}

TEST(MatcherTest, RemovedTrackIsNoLongerFound) {
  const FingerprintParams params;
  Catalog catalog = test_audio::BuildCatalog(78, 3, 20.0, 20.0, params, 1);
  const Matcher matcher(catalog.index, params, QueryParams());
  const std::vector<Peak> peaks = QueryPeaks(test_audio::Render(catalog.score(2), 5.0, 8.0), matcher);
  const std::vector<MatchResult> before = matcher.Match(peaks, 3);
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(before[0].track, 2u);
  ASSERT_TRUE(catalog.index.Remove(2).has_value());
  for (const MatchResult& r : matcher.Match(peaks, 3)) EXPECT_NE(r.track, 2u);
}

}  // namespace
}  // namespace earshot::recognition
