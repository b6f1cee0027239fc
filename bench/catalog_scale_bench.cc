// Whole-query cost against catalog size: does a query get dearer in
// proportion to the catalog, or more slowly?
//
// A query here is what `earshot identify` does with 10 s of audio: the
// query-density peaks from the real Fingerprinter (ExtractPeaks), then
// Matcher::Match (candidate search over the index, verification of the best
// candidates against their peak maps). It runs against three synthetic
// reference indexes of 1,000, 10,000 and 100,000 tracks, each one segment
// file streamed through SegmentBuilder into $TMPDIR (default /var/tmp),
// memory-mapped and opened as a SegmentView (as index/index_store.h does for
// a merged catalog), then deleted.
//
// The catalog. Its postings keep the key distribution of real fingerprints:
//  - 32 "seed" tracks of generated music (tests/recognition/test_audio.h,
//    2.5-4.5 min) are fingerprinted with the reference parameters exactly as
//    the catalog does (FingerprintTrack: hashes and peak map);
//  - every synthetic track is one seed transposed by -6..+6 semitones (the
//    anchor-cell field of each key and the units of each peak-map peak move
//    together; hashes and peaks pushed out of the analysed band are dropped)
//    and cut into blocks of 256 frames (4.1 s) put in another order (a
//    per-track affine permutation; the tail block stays), so that keys and
//    their local time structure are real while every track differs from
//    every other and from its seed;
//  - 6 more generated tracks (the "queried" tracks, never used as seeds) are
//    stored unchanged, spread over the track table, in every catalog size.
//    The 24 queries are excerpts of them: 10 s from a random point, clean,
//    3 % higher in pitch, 4 % slower, and under speech at 6 dB SNR. Each
//    answer is checked (track, offset within 0.1 s, time scale and pitch
//    within 1 %); a wrong or missing answer fails the run (exit status 1).
// Synthetic tracks get peak maps (the seed's, transformed like the
// postings), so candidates that are synthetic are verified at full cost.
//
// Density. EARSHOT_BENCH_DENSITY (0 < d <= 1, default 0.02) is the share of
// each synthetic track's postings that is kept (a deterministic hash of
// track, key and time picks them); 1 is the real reference density (the
// hashes per second of the fingerprinted tracks, printed at the end: 131
// for this generated music, 151 for the real music of the ACR corpus). The
// queried tracks always keep all their postings, and peak maps are always
// complete (they alone make the 100,000-track file 3.4 GB). The default runs
// the three sizes in about 2 minutes on 2 cores.
//
// Memory. Match holds every posting a query visits with its vote (about 35
// bytes each) and a 10 s query visits about 0.3 of the catalog's postings,
// so one query on 100,000 tracks at density 1 would need some 25 GB; a size
// whose estimate exceeds half of MemAvailable is refused (SkipWithError).
// 0.25 is the most that ran here (23 GB machine: 10.3 GB peak RSS).
//
// Per size: one untimed warm-up query, then the 24 queries once (the
// Google Benchmark iterations), then 8 of them again timed stage by stage.
// Counters: query_cpu_ms (thread CPU per query: peaks + Match),
// match_cpu_ms, peaks_cpu_ms, lookups and postings (visited per query,
// MatchStats), votes_ms / rank_ms / verify_ms (Matcher::CollectVotes,
// RankCandidates, VerifyCandidate: what Match does, stage by stage),
// open_ms (SegmentView::Open of the mapped file), file_MB,
// postings_bytes_per_posting, other_matches (other tracks reported per
// query), cost_ratio and postings_ratio (over the 1,000-track catalog of
// the same run). A table of the same numbers is printed at the end.
//
//   build/bench/catalog_scale_bench
//   EARSHOT_BENCH_DENSITY=0.25 build/bench/catalog_scale_bench
//   EARSHOT_BENCH_DENSITY=1 build/bench/catalog_scale_bench --benchmark_filter=/10000?/
#include <benchmark/benchmark.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <unistd.h>
#include <vector>

#include "../tests/recognition/test_audio.h"
#include "common/error.h"
#include "common/file_util.h"
#include "recognition/fingerprint_params.h"
#include "recognition/fingerprinter.h"
#include "recognition/hasher.h"
#include "recognition/index_segment.h"
#include "recognition/matcher.h"
#include "recognition/types.h"

namespace {

using earshot::ErrorCode;
using earshot::FileWriter;
using earshot::MakeError;
using earshot::MappedFile;
using earshot::Result;
using earshot::recognition::Candidate;
using earshot::recognition::DecodePeakMap;
using earshot::recognition::EncodePeakMap;
using earshot::recognition::ExtractPeaks;
using earshot::recognition::FingerprintParams;
using earshot::recognition::FingerprintTrack;
using earshot::recognition::HashEntry;
using earshot::recognition::HashKey;
using earshot::recognition::kAlgorithmVersion;
using earshot::recognition::kAnchorCellUnits;
using earshot::recognition::kUnitsPerOctave;
using earshot::recognition::Matcher;
using earshot::recognition::MatchResult;
using earshot::recognition::MatchStats;
using earshot::recognition::Peak;
using earshot::recognition::PeakMap;
using earshot::recognition::QueryParams;
using earshot::recognition::SegmentBuilder;
using earshot::recognition::SegmentPosting;
using earshot::recognition::SegmentView;
using earshot::recognition::TrackFingerprint;
using earshot::recognition::TrackId;
using earshot::recognition::Vote;
namespace test_audio = earshot::recognition::test_audio;

constexpr double kQuerySeconds = 10.0;
constexpr int kSeedTracks = 32;
constexpr int kQueriedTracks = 6;
constexpr double kMinTrackSeconds = 150.0;
constexpr double kMaxTrackSeconds = 270.0;
constexpr int kTranspositions = 13;     // -6..+6 semitones
constexpr int kCellsPerSemitone = 2;    // anchor cells are 2 units = half a semitone
constexpr uint32_t kBlockFrames = 256;  // time blocks permuted per synthetic track
constexpr int kKeyAnchorShift = 13;     // hasher.cc PackHash: anchor cell in bits 13..19
constexpr uint32_t kKeySpace = 1u << 20;
constexpr int kTimedRounds = 1;         // timed passes over the query set
constexpr size_t kBreakdownQueries = 8;  // queries timed stage by stage
// Memory of one query per catalog posting: a query visits about 0.3 of the
// postings, and Match holds about 35 bytes per posting visited (the
// postings found, their votes, the vote counts; measured: 10.3 GB peak RSS,
// the mapped file included, for 190 M visited).
constexpr double kQueryBytesPerPosting = 0.3 * 35;
constexpr double kOffsetToleranceSeconds = 0.1;
constexpr double kFactorTolerance = 0.01;
constexpr double kDefaultDensity = 0.02;

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// MemAvailable of /proc/meminfo, in bytes (a large value when unknown).
double AvailableMemoryBytes() {
  double kib = 1e12;
  if (FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      unsigned long long value = 0;
      if (std::sscanf(line, "MemAvailable: %llu kB", &value) == 1) kib = static_cast<double>(value);
    }
    std::fclose(f);
  }
  return kib * 1024.0;
}

// splitmix64's finaliser: a well-mixed 64-bit hash of x.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double Density() {
  const char* env = std::getenv("EARSHOT_BENCH_DENSITY");
  if (env == nullptr || *env == '\0') return kDefaultDensity;
  const double d = std::strtod(env, nullptr);
  if (!(d > 0.0 && d <= 1.0)) {
    std::fprintf(stderr, "EARSHOT_BENCH_DENSITY must be in (0, 1], got '%s'\n", env);
    std::exit(2);
  }
  return d;
}

std::filesystem::path WorkDir() {
  const char* env = std::getenv("TMPDIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env)
                                        : std::filesystem::path("/var/tmp");
}

// One fingerprinted generated track. Hashes are sorted by (key, time).
struct RealTrack {
  test_audio::Score score;
  double seconds = 0;
  TrackFingerprint print;
  PeakMap map;                     // decoded print.side_data
  std::vector<size_t> block_peak;  // first peak of each kBlockFrames block, plus the end
};

struct Query {
  int queried = 0;  // index into Reference::queried
  double from = 0;  // seconds into the track
  double pitch = 1, tempo = 1;
  const char* what = "";
  std::vector<float> pcm;
};

struct Reference {
  FingerprintParams params;
  std::vector<RealTrack> seeds;
  std::vector<RealTrack> queried;
  std::vector<Query> queries;
  int max_anchor_cell = 0;  // anchor cell of the highest analysed frequency
  float max_unit = 0;       // highest analysed frequency, units
  double hashes_per_second = 0;
  double peak_map_bytes_per_second = 0;
};

RealTrack MakeTrack(uint32_t seed, double seconds, const FingerprintParams& params) {
  RealTrack t;
  t.seconds = seconds;
  t.score = test_audio::ComposeMusic(seed, seconds);
  const std::vector<float> pcm = test_audio::Render(t.score, 0, seconds);
  t.print = FingerprintTrack(0, pcm, params);
  std::sort(t.print.hashes.begin(), t.print.hashes.end(),
            [](const HashEntry& a, const HashEntry& b) {
              return a.hash != b.hash ? a.hash < b.hash : a.time < b.time;
            });
  if (!DecodePeakMap(t.print.side_data, t.map)) std::abort();  // our own encoding
  const uint32_t blocks = t.print.frame_count / kBlockFrames + 1;
  size_t p = 0;
  for (uint32_t b = 0; b <= blocks; ++b) {
    while (p < t.map.frames.size() && t.map.frames[p] < b * kBlockFrames) ++p;
    t.block_peak.push_back(p);
  }
  return t;
}

const Reference& GetReference() {
  static const Reference ref = [] {
    Reference r;
    std::mt19937 rng(20261122);
    const auto length = [&rng] {
      return std::uniform_real_distribution<double>(kMinTrackSeconds, kMaxTrackSeconds)(rng);
    };
    double seconds = 0, hashes = 0, map_bytes = 0;
    for (int i = 0; i < kSeedTracks + kQueriedTracks; ++i) {
      const uint32_t seed = static_cast<uint32_t>(rng());
      RealTrack t = MakeTrack(seed, length(), r.params);
      seconds += t.seconds;
      hashes += static_cast<double>(t.print.hashes.size());
      map_bytes += static_cast<double>(t.print.side_data.size());
      (i < kSeedTracks ? r.seeds : r.queried).push_back(std::move(t));
    }
    r.hashes_per_second = hashes / seconds;
    r.peak_map_bytes_per_second = map_bytes / seconds;
    r.max_unit =
        kUnitsPerOctave * static_cast<float>(std::log2(r.params.max_hz / r.params.min_hz));
    r.max_anchor_cell = static_cast<int>(r.max_unit / kAnchorCellUnits);

    // Four variants of an excerpt of every queried track.
    struct Variant {
      double pitch, tempo;
      bool speech;
      const char* what;
    };
    static constexpr Variant kVariants[] = {{1.0, 1.0, false, "clean"},
                                            {1.03, 1.0, false, "pitch +3%"},
                                            {1.0, 1.04, false, "tempo -4%"},
                                            {1.0, 1.0, true, "speech 6 dB"}};
    for (int q = 0; q < kQueriedTracks; ++q) {
      for (const Variant& v : kVariants) {
        Query query;
        query.queried = q;
        query.pitch = v.pitch;
        query.tempo = v.tempo;
        query.what = v.what;
        const double room = r.queried[static_cast<size_t>(q)].seconds - 1.1 * kQuerySeconds - 5.0;
        query.from = std::uniform_real_distribution<double>(5.0, room)(rng);
        query.pcm = test_audio::Render(r.queried[static_cast<size_t>(q)].score, query.from,
                                       kQuerySeconds, v.pitch, v.tempo);
        if (v.speech) {
          query.pcm = test_audio::MixAtSnr(
              query.pcm, test_audio::SpeechLike(static_cast<uint32_t>(rng()), kQuerySeconds), 6.0);
        }
        r.queries.push_back(std::move(query));
      }
    }
    return r;
  }();
  return ref;
}

// Which track sits at each row of the track table (track id = row + 1).
// Synthetic row i belongs to the transform class class_of_residue[i % C],
// so that the rows of a class are every C-th row and a key's postings can be
// produced in row order without sorting.
struct Layout {
  uint32_t tracks = 0;
  uint32_t classes = 0;                    // C = seeds x transpositions
  std::vector<uint32_t> class_of_residue;  // a random permutation of the classes
  std::vector<int8_t> queried_at;          // row -> queried track, or -1
  std::vector<uint32_t> queried_row;       // queried track -> row
};

int SeedOf(uint32_t c) { return static_cast<int>(c / kTranspositions); }
int ShiftCellsOf(uint32_t c) {
  return (static_cast<int>(c % kTranspositions) - kTranspositions / 2) * kCellsPerSemitone;
}

Layout MakeLayout(uint32_t tracks) {
  Layout l;
  l.tracks = tracks;
  l.classes = kSeedTracks * kTranspositions;
  l.class_of_residue.resize(l.classes);
  std::iota(l.class_of_residue.begin(), l.class_of_residue.end(), 0u);
  std::mt19937 rng(tracks);
  std::shuffle(l.class_of_residue.begin(), l.class_of_residue.end(), rng);
  l.queried_at.assign(tracks, -1);
  for (int q = 0; q < kQueriedTracks; ++q) {
    const uint32_t row = static_cast<uint32_t>((2 * static_cast<uint64_t>(q) + 1) * tracks /
                                               (2 * kQueriedTracks));
    l.queried_at[row] = static_cast<int8_t>(q);
    l.queried_row.push_back(row);
  }
  return l;
}

// A synthetic track's block permutation: full block b goes to (a b + o) mod n.
struct BlockMap {
  uint32_t a = 1, o = 0, n = 0;
  uint32_t Map(uint32_t t) const {
    const uint32_t b = t / kBlockFrames;
    if (b >= n) return t;  // the tail block stays in place
    return (a * b + o) % n * kBlockFrames + t % kBlockFrames;
  }
};

BlockMap MakeBlockMap(uint32_t row, uint32_t frame_count) {
  BlockMap m;
  m.n = frame_count / kBlockFrames;
  if (m.n <= 1) return m;
  const uint64_t h = Mix(row * 0x2545F4914F6CDD1Dull + 17);
  m.a = static_cast<uint32_t>(1 + h % (m.n - 1));
  while (std::gcd(m.a, m.n) != 1) m.a = m.a % (m.n - 1) + 1;
  m.o = static_cast<uint32_t>((h >> 32) % m.n);
  return m;
}

// The peak map of synthetic row `row`: the seed's, blocks permuted and
// transposed by `shift_cells`.
std::vector<uint8_t> SyntheticPeakMap(const RealTrack& seed, const BlockMap& m, int shift_cells,
                                      float max_unit, std::vector<Peak>& peaks) {
  peaks.clear();
  const float shift = static_cast<float>(shift_cells) * kAnchorCellUnits;
  std::vector<uint32_t> source(m.n);
  for (uint32_t b = 0; b < m.n; ++b) source[(m.a * b + m.o) % m.n] = b;
  const auto copy = [&](uint32_t from_block, uint32_t to_block) {
    for (size_t i = seed.block_peak[from_block]; i < seed.block_peak[from_block + 1]; ++i) {
      const float unit = seed.map.units[i] + shift;
      if (unit < 0.0f || unit > max_unit) continue;
      Peak p;
      p.frame = to_block * kBlockFrames + seed.map.frames[i] % kBlockFrames;
      p.unit = unit;
      peaks.push_back(p);
    }
  };
  for (uint32_t j = 0; j < m.n; ++j) copy(source[j], j);
  for (uint32_t b = m.n; b + 1 < seed.block_peak.size(); ++b) copy(b, b);
  return EncodePeakMap(peaks);
}

struct Corpus {
  uint32_t tracks = 0;
  std::filesystem::path path;
  std::unique_ptr<MappedFile> file;
  std::unique_ptr<SegmentView> view;
  Layout layout;
  double build_seconds = 0;
  double open_ms = 0;
  ~Corpus() {
    view.reset();
    file.reset();
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove(path, ec);
  }
};

// Streams the catalog of `tracks` tracks into a segment file and maps it.
Result<std::unique_ptr<Corpus>> BuildCorpus(uint32_t tracks, double density) {
  const Reference& ref = GetReference();
  const double start = WallSeconds();
  auto corpus = std::make_unique<Corpus>();
  corpus->tracks = tracks;
  corpus->layout = MakeLayout(tracks);
  const Layout& layout = corpus->layout;
  const uint32_t classes = layout.classes;

  // Per class: the seed hashes whose transposed anchor stays in the band.
  struct ClassRange {
    const HashEntry* begin;
    const HashEntry* end;
    int64_t shift;  // added to the key
  };
  std::vector<ClassRange> ranges(classes);
  std::vector<uint64_t> present(kKeySpace / 64, 0);  // keys with postings
  const auto mark = [&present](uint64_t key) { present[key >> 6] |= uint64_t{1} << (key & 63); };
  for (uint32_t c = 0; c < classes; ++c) {
    const std::vector<HashEntry>& h = ref.seeds[static_cast<size_t>(SeedOf(c))].print.hashes;
    const int shift = ShiftCellsOf(c);
    const int lo_cell = std::max(0, -shift);
    const int hi_cell = std::min(ref.max_anchor_cell, ref.max_anchor_cell - shift);
    const auto by_key = [](const HashEntry& e, HashKey k) { return e.hash < k; };
    const auto first = std::lower_bound(h.begin(), h.end(),
                                        static_cast<HashKey>(lo_cell) << kKeyAnchorShift, by_key);
    const auto last = std::lower_bound(
        h.begin(), h.end(), static_cast<HashKey>(hi_cell + 1) << kKeyAnchorShift, by_key);
    ranges[c] = {h.data() + (first - h.begin()), h.data() + (last - h.begin()),
                 static_cast<int64_t>(shift) << kKeyAnchorShift};
    for (auto it = first; it != last; ++it) mark(static_cast<uint64_t>(it->hash + ranges[c].shift));
  }
  uint32_t max_time = 0;
  for (const RealTrack& t : ref.queried) {
    for (const HashEntry& e : t.print.hashes) mark(e.hash);
    max_time = std::max(max_time, t.print.frame_count - 1);
  }
  for (const RealTrack& t : ref.seeds) max_time = std::max(max_time, t.print.frame_count - 1);
  uint64_t key_count = 0;
  HashKey max_key = 0;
  for (size_t w = 0; w < present.size(); ++w) {
    if (present[w] == 0) continue;
    key_count += static_cast<uint64_t>(std::popcount(present[w]));
    max_key = static_cast<HashKey>(w * 64 + 63 - static_cast<size_t>(std::countl_zero(present[w])));
  }

  corpus->path = WorkDir() / ("earshot-catalog-scale-" + std::to_string(tracks) + "-" +
                              std::to_string(::getpid()) + ".eseg");
  std::error_code ec;
  std::filesystem::remove(corpus->path, ec);
  auto writer = FileWriter::Create(corpus->path);
  if (!writer) return std::unexpected(writer.error());
  SegmentBuilder builder({.algorithm_version = kAlgorithmVersion,
                          .max_key = max_key,
                          .max_time = max_time,
                          .key_count_hint = key_count},
                         [&](std::span<const uint8_t> bytes) { return (*writer)->Append(bytes); });

  // Track table and peak maps.
  std::vector<BlockMap> maps(tracks);
  std::vector<Peak> scratch;
  for (uint32_t row = 0; row < tracks; ++row) {
    earshot::Status added;
    if (const int q = layout.queried_at[row]; q >= 0) {
      const TrackFingerprint& p = ref.queried[static_cast<size_t>(q)].print;
      added = builder.AddTrack(row + 1, p.frame_count, p.side_data);
    } else {
      const uint32_t c = layout.class_of_residue[row % classes];
      const RealTrack& seed = ref.seeds[static_cast<size_t>(SeedOf(c))];
      maps[row] = MakeBlockMap(row, seed.print.frame_count);
      added = builder.AddTrack(
          row + 1, seed.print.frame_count,
          SyntheticPeakMap(seed, maps[row], ShiftCellsOf(c), ref.max_unit, scratch));
    }
    if (!added) return std::unexpected(added.error());
  }
  // The first synthetic peak maps must decode (frames ascending), or
  // verification would read them wrongly.
  PeakMap check;
  for (uint32_t row = 0; row < std::min<uint32_t>(tracks, 64); ++row) {
    if (layout.queried_at[row] >= 0) continue;
    const uint32_t c = layout.class_of_residue[row % classes];
    const RealTrack& seed = ref.seeds[static_cast<size_t>(SeedOf(c))];
    if (!DecodePeakMap(SyntheticPeakMap(seed, maps[row], ShiftCellsOf(c), ref.max_unit, scratch),
                       check)) {
      return MakeError(ErrorCode::kInternal, "synthetic peak map of row " + std::to_string(row) +
                                                 " does not decode");
    }
  }

  // Postings, key by key.
  const uint64_t keep_below =
      density >= 1.0 ? UINT64_MAX : static_cast<uint64_t>(density * 18446744073709551616.0);
  std::vector<const HashEntry*> cursor(classes);
  for (uint32_t c = 0; c < classes; ++c) cursor[c] = ranges[c].begin;
  std::vector<const HashEntry*> queried_cursor;
  for (const RealTrack& t : ref.queried) queried_cursor.push_back(t.print.hashes.data());
  struct Active {
    uint32_t residue;
    const HashEntry* begin;
    const HashEntry* end;
  };
  std::vector<Active> active;
  std::vector<SegmentPosting> list, queried_list, merged;
  const uint32_t rounds = (tracks + classes - 1) / classes;
  for (size_t w = 0; w < present.size(); ++w) {
    for (uint64_t bits = present[w]; bits != 0; bits &= bits - 1) {
      const HashKey key =
          static_cast<HashKey>(w * 64 + static_cast<size_t>(std::countr_zero(bits)));
      active.clear();
      for (uint32_t r = 0; r < classes; ++r) {
        const uint32_t c = layout.class_of_residue[r];
        const ClassRange& range = ranges[c];
        const HashEntry*& at = cursor[c];
        const int64_t source = static_cast<int64_t>(key) - range.shift;
        while (at != range.end && at->hash < source) ++at;
        if (at == range.end || at->hash != source) continue;
        const HashEntry* run_end = at;
        while (run_end != range.end && run_end->hash == source) ++run_end;
        active.push_back({r, at, run_end});
        at = run_end;
      }
      list.clear();
      for (uint32_t m = 0; m < rounds && !active.empty(); ++m) {
        for (const Active& a : active) {
          const uint32_t row = m * classes + a.residue;
          if (row >= tracks) break;
          if (layout.queried_at[row] >= 0) continue;
          const size_t group = list.size();
          for (const HashEntry* e = a.begin; e != a.end; ++e) {
            if (keep_below != UINT64_MAX &&
                Mix((uint64_t{row} << 40) ^ (uint64_t{key} << 20) ^ e->time) >= keep_below) {
              continue;
            }
            list.push_back({row, maps[row].Map(e->time)});
          }
          // Times of one track ascend (the block permutation reorders them).
          for (size_t i = group + 1; i < list.size(); ++i) {
            for (size_t j = i; j > group && list[j].time < list[j - 1].time; --j) {
              std::swap(list[j], list[j - 1]);
            }
          }
        }
      }
      queried_list.clear();
      for (size_t q = 0; q < ref.queried.size(); ++q) {
        const std::vector<HashEntry>& h = ref.queried[q].print.hashes;
        const HashEntry*& at = queried_cursor[q];
        const HashEntry* const end = h.data() + h.size();
        while (at != end && at->hash < key) ++at;
        for (; at != end && at->hash == key; ++at) {
          queried_list.push_back({layout.queried_row[q], at->time});
        }
      }
      std::span<const SegmentPosting> out = list;
      if (!queried_list.empty()) {
        std::sort(queried_list.begin(), queried_list.end(),
                  [](const SegmentPosting& a, const SegmentPosting& b) {
                    return a.track_index != b.track_index ? a.track_index < b.track_index
                                                          : a.time < b.time;
                  });
        merged.resize(list.size() + queried_list.size());
        std::merge(list.begin(), list.end(), queried_list.begin(), queried_list.end(),
                   merged.begin(), [](const SegmentPosting& a, const SegmentPosting& b) {
                     return a.track_index != b.track_index ? a.track_index < b.track_index
                                                           : a.time < b.time;
                   });
        out = merged;
      }
      if (out.empty()) continue;  // every posting of the key thinned out
      if (auto s = builder.AddList(key, out); !s) return std::unexpected(s.error());
    }
  }
  if (auto size = builder.Finish(); !size) return std::unexpected(size.error());
  if (auto s = (*writer)->Sync(); !s) return std::unexpected(s.error());
  if (auto s = (*writer)->Close(); !s) return std::unexpected(s.error());
  corpus->build_seconds = WallSeconds() - start;

  auto file = MappedFile::Open(corpus->path);
  if (!file) return std::unexpected(file.error());
  corpus->file = std::move(*file);
  const double open_start = WallSeconds();
  auto view = SegmentView::Open(corpus->file->bytes(), kAlgorithmVersion);
  corpus->open_ms = 1e3 * (WallSeconds() - open_start);
  if (!view) return std::unexpected(view.error());
  // Full check (checksums, every list decoded) where it is cheap.
  if (tracks <= 1000) {
    if (auto s = view->Verify(); !s) return std::unexpected(s.error());
  }
  corpus->view = std::make_unique<SegmentView>(*view);
  return corpus;
}

// One catalog at a time is kept (on disk and mapped).
std::unique_ptr<Corpus>& CurrentCorpus() {
  static std::unique_ptr<Corpus> corpus;
  return corpus;
}

Result<const Corpus*> GetCorpus(uint32_t tracks) {
  std::unique_ptr<Corpus>& current = CurrentCorpus();
  if (!current || current->tracks != tracks) {
    current.reset();  // deletes the previous file first
    auto built = BuildCorpus(tracks, Density());
    if (!built) return std::unexpected(built.error());
    current = std::move(*built);
  }
  return current.get();
}

// Whether `results` lead with the query's track at the right alignment; an
// empty string when right, else what is wrong.
std::string CheckAnswer(const Query& q, TrackId expected, const std::vector<MatchResult>& results,
                        const FingerprintParams& params) {
  char buffer[512];
  if (results.empty()) {
    std::snprintf(buffer, sizeof buffer, "no match for track %u from %.2f s (%s)", expected,
                  q.from, q.what);
    return buffer;
  }
  const MatchResult& r = results.front();
  const double offset_s = r.reference_offset * params.hop_seconds();
  const bool right = r.track == expected &&
                     std::abs(offset_s - q.from) <= kOffsetToleranceSeconds &&
                     std::abs(r.time_scale * q.tempo - 1.0) <= kFactorTolerance &&
                     std::abs(r.pitch_factor * q.pitch - 1.0) <= kFactorTolerance;
  if (right) return {};
  std::snprintf(buffer, sizeof buffer,
                "wrong answer for track %u from %.2f s (%s): track %u at %.2f s, scale %.4f, "
                "pitch %.4f, score %.1f",
                expected, q.from, q.what, r.track, offset_s, r.time_scale, r.pitch_factor,
                r.score);
  return buffer;
}

// The numbers of one catalog size, for the table printed at the end.
struct Row {
  uint32_t tracks = 0;
  uint64_t postings = 0;
  uint64_t keys = 0;
  double file_mb = 0;
  double open_ms = 0;
  double build_s = 0;
  double query_cpu_ms = 0, match_cpu_ms = 0, peaks_cpu_ms = 0, query_wall_ms = 0;
  double votes_ms = 0, rank_ms = 0, verify_ms = 0;
  double postings_bytes = 0;  // the postings region (the rest is peak maps and tables)
  double lookups = 0, visited = 0, candidates = 0, extra_results = 0;
  int correct = 0, queries = 0;
};

std::map<uint32_t, Row>& Rows() {
  static std::map<uint32_t, Row> rows;
  return rows;
}

int& Failures() {
  static int failures = 0;
  return failures;
}

void BM_Query(benchmark::State& state) {
  const Reference& ref = GetReference();
  const uint32_t tracks = static_cast<uint32_t>(state.range(0));
  // Match keeps every posting a query visits in memory: refuse sizes that
  // would crowd the machine, before building them.
  double seed_hashes = 0;
  for (const RealTrack& t : ref.seeds) seed_hashes += static_cast<double>(t.print.hashes.size());
  const double postings_estimate = tracks * Density() * seed_hashes / kSeedTracks;
  if (const double bytes = kQueryBytesPerPosting * postings_estimate;
      bytes > 0.5 * AvailableMemoryBytes()) {
    ++Failures();
    char message[256];
    std::snprintf(message, sizeof message,
                  "one query would need about %.1f GB (%.0f M postings), over half the memory "
                  "available; lower EARSHOT_BENCH_DENSITY",
                  bytes / 1e9, postings_estimate / 1e6);
    state.SkipWithError(message);
    return;
  }
  const Result<const Corpus*> got = GetCorpus(tracks);
  if (!got) {
    ++Failures();
    state.SkipWithError(("building the catalog failed: " + got.error().ToString()).c_str());
    return;
  }
  const Corpus& corpus = **got;
  const SegmentView& index = *corpus.view;
  const QueryParams query_params;
  const Matcher matcher(index, ref.params, query_params);
  const auto expected = [&](const Query& q) {
    return corpus.layout.queried_row[static_cast<size_t>(q.queried)] + 1;
  };

  // Warm-up query (page cache, per-thread scratch), answer checked.
  std::string error;
  {
    const Query& q = ref.queries.front();
    const auto results =
        matcher.Match(ExtractPeaks(q.pcm, ref.params, query_params.query_peaks_per_band), 5);
    error = CheckAnswer(q, expected(q), results, ref.params);
  }

  Row row;
  row.tracks = tracks;
  size_t next = 0;
  double cpu = 0, match_cpu = 0, peaks_cpu = 0, wall = 0;
  MatchStats total;
  for (auto _ : state) {
    const Query& q = ref.queries[next++ % ref.queries.size()];
    const double w0 = WallSeconds();
    const double t0 = ThreadCpuSeconds();
    const std::vector<Peak> peaks =
        ExtractPeaks(q.pcm, ref.params, query_params.query_peaks_per_band);
    const double t1 = ThreadCpuSeconds();
    MatchStats stats;
    const std::vector<MatchResult> results = matcher.Match(peaks, 5, &stats);
    const double t2 = ThreadCpuSeconds();
    wall += WallSeconds() - w0;
    cpu += t2 - t0;
    peaks_cpu += t1 - t0;
    match_cpu += t2 - t1;
    total.lookups += stats.lookups;
    total.postings += stats.postings;
    total.candidates += stats.candidates;
    ++row.queries;
    if (std::string e = CheckAnswer(q, expected(q), results, ref.params); e.empty()) {
      ++row.correct;
      row.extra_results += static_cast<double>(results.size() - 1);
    } else if (error.empty()) {
      error = e;
    }
  }
  const double n = static_cast<double>(row.queries);

  // Stage breakdown (not part of the timed loop): the same work as Match,
  // stage by stage.
  double votes_cpu = 0, rank_cpu = 0, verify_cpu = 0;
  std::vector<Vote> votes;
  const size_t breakdown = std::min<size_t>(kBreakdownQueries, ref.queries.size());
  for (const Query& q : std::span(ref.queries).first(breakdown)) {
    const std::vector<Peak> peaks =
        ExtractPeaks(q.pcm, ref.params, query_params.query_peaks_per_band);
    const double t0 = ThreadCpuSeconds();
    votes.clear();
    matcher.CollectVotes(peaks, 0, UINT32_MAX, votes);
    const double t1 = ThreadCpuSeconds();
    const std::vector<Candidate> candidates = matcher.RankCandidates(votes);
    const double t2 = ThreadCpuSeconds();
    double best = 0;
    for (const Candidate& c : candidates) {
      best = std::max(best, matcher.VerifyCandidate(peaks, c, query_params.min_score).score);
    }
    const double t3 = ThreadCpuSeconds();
    benchmark::DoNotOptimize(best);
    votes_cpu += t1 - t0;
    rank_cpu += t2 - t1;
    verify_cpu += t3 - t2;
  }
  const double nq = static_cast<double>(breakdown);

  row.postings = index.PostingCount();
  row.keys = index.key_count();
  row.file_mb = static_cast<double>(index.size_bytes()) / 1e6;
  row.postings_bytes =
      static_cast<double>(index.postings_bytes()) / static_cast<double>(row.postings);
  row.open_ms = corpus.open_ms;
  row.build_s = corpus.build_seconds;
  row.query_cpu_ms = 1e3 * cpu / n;
  row.match_cpu_ms = 1e3 * match_cpu / n;
  row.peaks_cpu_ms = 1e3 * peaks_cpu / n;
  row.query_wall_ms = 1e3 * wall / n;
  row.votes_ms = 1e3 * votes_cpu / nq;
  row.rank_ms = 1e3 * rank_cpu / nq;
  row.verify_ms = 1e3 * verify_cpu / nq;
  row.lookups = static_cast<double>(total.lookups) / n;
  row.visited = static_cast<double>(total.postings) / n;
  row.candidates = static_cast<double>(total.candidates) / n;
  row.extra_results = row.correct > 0 ? row.extra_results / row.correct : 0;
  Rows()[tracks] = row;

  state.counters["tracks"] = tracks;
  state.counters["postings_M"] = static_cast<double>(row.postings) / 1e6;
  state.counters["file_MB"] = row.file_mb;
  state.counters["postings_bytes_per_posting"] = row.postings_bytes;
  state.counters["open_ms"] = row.open_ms;
  state.counters["build_s"] = row.build_s;
  state.counters["query_cpu_ms"] = row.query_cpu_ms;
  state.counters["match_cpu_ms"] = row.match_cpu_ms;
  state.counters["peaks_cpu_ms"] = row.peaks_cpu_ms;
  state.counters["votes_ms"] = row.votes_ms;
  state.counters["rank_ms"] = row.rank_ms;
  state.counters["verify_ms"] = row.verify_ms;
  state.counters["lookups"] = row.lookups;
  state.counters["postings"] = row.visited;
  state.counters["candidates"] = row.candidates;
  state.counters["correct"] = static_cast<double>(row.correct) / n;
  state.counters["other_matches"] = row.extra_results;
  if (const auto base = Rows().find(1000); base != Rows().end() && tracks != 1000) {
    state.counters["cost_ratio"] = row.query_cpu_ms / base->second.query_cpu_ms;
    state.counters["postings_ratio"] =
        static_cast<double>(row.postings) / static_cast<double>(base->second.postings);
  }
  if (!error.empty()) {
    ++Failures();
    state.SkipWithError(error.c_str());
  }
}

int Iterations() { return kTimedRounds * kQueriedTracks * 4; }

BENCHMARK(BM_Query)
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Iterations(Iterations())
    ->Unit(benchmark::kMillisecond);

void PrintTable() {
  const std::map<uint32_t, Row>& rows = Rows();
  if (rows.empty()) return;
  const Reference& ref = GetReference();
  std::printf("\nCatalog scale: density %.3g of %.0f hashes per audio second, peak maps %.0f B/s; "
              "%zu queries of %.0f s, each run %d time(s)\n",
              Density(), ref.hashes_per_second, ref.peak_map_bytes_per_second,
              ref.queries.size(), kQuerySeconds, kTimedRounds);
  std::printf("%7s %10s %6s %8s %7s %8s %8s %6s %6s %7s %6s %10s %7s %7s %6s %6s %6s %6s\n",
              "tracks", "postings", "B/post", "file_MB", "open_ms", "query_ms", "match_ms",
              "peaks", "votes", "rank", "verify", "visited", "lookups", "correct", "others",
              "x_cost", "x_post", "x_visit");
  const auto base = rows.find(1000);
  for (const auto& [tracks, r] : rows) {
    char cost[16] = "n/a", postings[16] = "n/a", visit[16] = "n/a";
    if (base != rows.end()) {
      std::snprintf(cost, sizeof cost, "%.1f", r.query_cpu_ms / base->second.query_cpu_ms);
      std::snprintf(postings, sizeof postings, "%.1f",
                    static_cast<double>(r.postings) / static_cast<double>(base->second.postings));
      std::snprintf(visit, sizeof visit, "%.1f", r.visited / base->second.visited);
    }
    std::printf("%7u %10llu %6.2f %8.1f %7.2f %8.1f %8.1f %6.2f %6.1f %7.1f %6.2f %10.0f %7.0f "
                "%4d/%-2d %6.2f %6s %6s %6s\n",
                tracks, static_cast<unsigned long long>(r.postings), r.postings_bytes, r.file_mb,
                r.open_ms, r.query_cpu_ms, r.match_cpu_ms, r.peaks_cpu_ms, r.votes_ms, r.rank_ms,
                r.verify_ms, r.visited, r.lookups, r.correct, r.queries, r.extra_results, cost,
                postings, visit);
  }
  std::printf(
      "B/post: postings region bytes per posting (file_MB also holds the peak maps); query_ms: "
      "CPU per query = match_ms + peaks (ExtractPeaks); votes / rank / verify: Match's stages "
      "timed apart on %zu queries (ms); visited, lookups: per query (MatchStats); others: other "
      "tracks reported per query; x_*: over the 1,000-track catalog\n",
      std::min<size_t>(kBreakdownQueries, ref.queries.size()));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  CurrentCorpus().reset();  // deletes the last catalog file
  PrintTable();
  if (Failures() > 0) {
    std::fprintf(stderr, "catalog_scale_bench: %d catalog size(s) failed (see above)\n",
                 Failures());
    return 1;
  }
  return 0;
}
