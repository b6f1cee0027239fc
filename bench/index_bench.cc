// Lookup cost of the segment format on synthetic reference indexes.
//
// Two segments are generated straight into files under $TMPDIR (streamed
// through SegmentBuilder, so memory stays small) and memory-mapped:
//   small: 1,000 tracks x 60,000 postings (about 4 min of audio each at the
//          hasher's ~250 hashes/s): 60 M postings
//   large: 100,000 tracks x EARSHOT_BENCH_LARGE_POSTINGS postings per track
//          (default 6,000, a tenth of real density, to fit a 2-core laptop
//          run in a minute; set 60000 for a full-size catalog, ~20 GB)
// Keys are 20-bit (hasher.h), postings spread uniformly over keys and tracks,
// times uniform over each track's length (2.5-6 min at 62.5 frames/s).
//
// Counters: bytes_per_posting (whole file / postings), open_ms
// (SegmentView::Open on the mapped file: header, directory checksum, track
// table), postings_per_lookup, ns_per_posting; the time column is per lookup.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "recognition/index_segment.h"

namespace {

using earshot::FileWriter;
using earshot::MappedFile;
using earshot::recognition::HashKey;
using earshot::recognition::Posting;
using earshot::recognition::SegmentBuilder;
using earshot::recognition::SegmentPosting;
using earshot::recognition::SegmentView;

constexpr uint32_t kHashBits = 20;
constexpr uint32_t kAlgorithm = 1;

struct Corpus {
  std::filesystem::path path;
  std::unique_ptr<MappedFile> file;
  std::unique_ptr<SegmentView> view;
  double build_seconds = 0;
  double open_ms = 0;
  ~Corpus() {
    view.reset();
    file.reset();
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

uint64_t LargePostingsPerTrack() {
  const char* env = std::getenv("EARSHOT_BENCH_LARGE_POSTINGS");
  return env ? std::strtoull(env, nullptr, 10) : 6000;
}

// Streams a synthetic segment of `tracks` x `per_track` postings to a file.
std::unique_ptr<Corpus> Build(uint32_t tracks, uint64_t per_track) {
  auto corpus = std::make_unique<Corpus>();
  corpus->path =
      std::filesystem::temp_directory_path() / ("earshot-index-bench-" + std::to_string(tracks) +
                                                "-" + std::to_string(::getpid()) + ".eseg");
  std::filesystem::remove(corpus->path);
  const auto start = std::chrono::steady_clock::now();
  auto writer = FileWriter::Create(corpus->path);
  if (!writer) return nullptr;

  std::mt19937_64 rng(tracks);
  std::vector<uint32_t> frames(tracks);
  for (uint32_t& f : frames) f = 9375 + static_cast<uint32_t>(rng() % 13125);  // 2.5-6 min
  const uint32_t keys = 1u << kHashBits;
  const double mean = static_cast<double>(tracks) * static_cast<double>(per_track) / keys;
  SegmentBuilder builder({.algorithm_version = kAlgorithm,
                          .max_key = keys - 1,
                          .max_time = 22500,
                          .key_count_hint = keys},
                         [&](std::span<const uint8_t> bytes) { return (*writer)->Append(bytes); });
  for (uint32_t t = 0; t < tracks; ++t) {
    if (!builder.AddTrack(t * 7 + 3, frames[t], {})) return nullptr;
  }
  std::poisson_distribution<uint64_t> count(mean);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<SegmentPosting> list;
  for (uint32_t key = 0; key < keys; ++key) {
    const uint64_t n = count(rng);
    if (n == 0) continue;
    // Sorted uniform track sample by geometric gaps.
    list.clear();
    const double p = std::min(1.0, static_cast<double>(n) / tracks);
    std::geometric_distribution<uint32_t> gap(p);
    uint64_t track = gap(rng);
    while (track < tracks && list.size() < n) {
      uint32_t time = static_cast<uint32_t>(unit(rng) * frames[track]);
      if (!list.empty() && list.back().track_index == track && time < list.back().time) {
        time = list.back().time;
      }
      list.push_back({static_cast<uint32_t>(track), time});
      track += gap(rng);
    }
    if (!list.empty() && !builder.AddList(key, list)) return nullptr;
  }
  if (!builder.Finish() || !(*writer)->Sync() || !(*writer)->Close()) return nullptr;
  corpus->build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  auto file = MappedFile::Open(corpus->path);
  if (!file) return nullptr;
  corpus->file = std::move(*file);
  const auto open_start = std::chrono::steady_clock::now();
  auto view = SegmentView::Open(corpus->file->bytes(), kAlgorithm);
  corpus->open_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - open_start)
          .count();
  if (!view) return nullptr;
  corpus->view = std::make_unique<SegmentView>(*view);
  return corpus;
}

const Corpus* GetCorpus(uint32_t tracks) {
  static std::map<uint32_t, std::unique_ptr<Corpus>> cache;
  auto it = cache.find(tracks);
  if (it == cache.end()) {
    const uint64_t per_track = tracks >= 100000 ? LargePostingsPerTrack() : 60000;
    it = cache.emplace(tracks, Build(tracks, per_track)).first;
  }
  return it->second.get();
}

void AddCorpusCounters(benchmark::State& state, const Corpus& c) {
  const SegmentView& v = *c.view;
  state.counters["tracks"] = static_cast<double>(v.TrackCount());
  state.counters["postings_M"] = static_cast<double>(v.PostingCount()) / 1e6;
  state.counters["file_MB"] = static_cast<double>(v.size_bytes()) / 1e6;
  state.counters["bytes_per_posting"] =
      static_cast<double>(v.size_bytes()) / static_cast<double>(v.PostingCount());
  state.counters["open_ms"] = c.open_ms;
  state.counters["build_s"] = c.build_seconds;
}

// Random present-or-absent 20-bit keys, as a query's hashes would be.
void BM_Lookup(benchmark::State& state) {
  const Corpus* c = GetCorpus(static_cast<uint32_t>(state.range(0)));
  if (c == nullptr) {
    state.SkipWithError("building the synthetic segment failed");
    return;
  }
  std::mt19937 rng(42);
  std::vector<HashKey> keys(1 << 16);
  for (HashKey& k : keys) k = rng() & ((1u << kHashBits) - 1);
  std::vector<Posting> out;
  uint64_t postings = 0;
  size_t i = 0;
  for (auto _ : state) {
    out.clear();
    c->view->Lookup(keys[i++ & (keys.size() - 1)], out);
    postings += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  AddCorpusCounters(state, *c);
  state.SetItemsProcessed(state.iterations());  // lookups/s
  state.counters["postings_per_lookup"] =
      static_cast<double>(postings) / static_cast<double>(state.iterations());
  state.counters["ns_per_posting"] = benchmark::Counter(
      static_cast<double>(postings), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Lookup)->Arg(1000)->Arg(100000)->Unit(benchmark::kNanosecond);

// The same 64 keys over and over: lists and directory stay in cache, so this
// is the pure decoding cost.
void BM_LookupHot(benchmark::State& state) {
  const Corpus* c = GetCorpus(static_cast<uint32_t>(state.range(0)));
  if (c == nullptr) {
    state.SkipWithError("building the synthetic segment failed");
    return;
  }
  std::vector<Posting> out;
  uint64_t postings = 0;
  HashKey key = 0;
  for (auto _ : state) {
    out.clear();
    c->view->Lookup(key++ & 63, out);
    postings += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["postings_per_lookup"] =
      static_cast<double>(postings) / static_cast<double>(state.iterations());
  state.counters["ns_per_posting"] = benchmark::Counter(
      static_cast<double>(postings), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_LookupHot)->Arg(1000)->Arg(100000)->Unit(benchmark::kNanosecond);

void BM_Open(benchmark::State& state) {
  const Corpus* c = GetCorpus(static_cast<uint32_t>(state.range(0)));
  if (c == nullptr) {
    state.SkipWithError("building the synthetic segment failed");
    return;
  }
  for (auto _ : state) {
    auto view = SegmentView::Open(c->file->bytes(), kAlgorithm);
    benchmark::DoNotOptimize(view);
  }
  AddCorpusCounters(state, *c);
}
BENCHMARK(BM_Open)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_Verify(benchmark::State& state) {
  const Corpus* c = GetCorpus(static_cast<uint32_t>(state.range(0)));
  if (c == nullptr) {
    state.SkipWithError("building the synthetic segment failed");
    return;
  }
  for (auto _ : state) {
    if (!c->view->Verify()) state.SkipWithError("verify failed");
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(c->view->size_bytes()));
}
BENCHMARK(BM_Verify)->Arg(1000)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
