// Speed of video fingerprinting: hashing one sampled frame (reference and
// query side) and searching a HashIndex of 1M frames, multi-index hashing vs
// brute force.
//
//   build/bench/video_bench --benchmark_counters_tabular=true
//
// The index holds uniformly random hashes plus, for each query, planted
// copies at distances 8..64; real frame hashes are less uniform, so chunk
// buckets are uneven and searches slower than here (see bench/video/eval_dev
// for the cost on real footage).
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "video/frame_hash.h"
#include "video/hash_index.h"

namespace {

using earshot::video::Hash256;
using earshot::video::HashIndex;

// A 160x90 frame (the size VideoFrameReader returns for 16:9 by default):
// gradients plus blocks, so that border and inset search do real work.
std::vector<uint8_t> Frame(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> f(160 * 90);
  for (int y = 0; y < 90; ++y) {
    for (int x = 0; x < 160; ++x) f[static_cast<size_t>(y * 160 + x)] = static_cast<uint8_t>((x + 2 * y) % 200);
  }
  for (int b = 0; b < 10; ++b) {
    const int x0 = static_cast<int>(rng() % 140), y0 = static_cast<int>(rng() % 80);
    const int v = static_cast<int>(rng() % 256);
    for (int y = y0; y < std::min(90, y0 + 20); ++y) {
      for (int x = x0; x < std::min(160, x0 + 30); ++x) f[static_cast<size_t>(y * 160 + x)] = static_cast<uint8_t>(v);
    }
  }
  return f;
}

void BM_HashQueryFrame(benchmark::State& state) {
  const auto frame = Frame(1);
  earshot::video::FrameHashOptions options;
  options.max_insets = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto h = earshot::video::HashQueryFrame({frame.data(), 160, 90, 160}, options);
    benchmark::DoNotOptimize(h);
  }
}
BENCHMARK(BM_HashQueryFrame)->Arg(0)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_HashReferenceFrame(benchmark::State& state) {
  const auto frame = Frame(2);
  earshot::video::FrameHashOptions options;
  options.reference_crops = state.range(0) != 0;
  for (auto _ : state) {
    auto h = earshot::video::HashReferenceFrame({frame.data(), 160, 90, 160}, options);
    benchmark::DoNotOptimize(h);
  }
}
BENCHMARK(BM_HashReferenceFrame)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

constexpr size_t kIndexSize = 1'000'000;
constexpr int kQueries = 64;

struct BigIndex {
  HashIndex index;
  std::vector<Hash256> queries;
};

const BigIndex& Index() {
  static const std::unique_ptr<BigIndex> big = [] {
    auto b = std::make_unique<BigIndex>();
    std::mt19937_64 rng(42);
    for (size_t i = 0; i < kIndexSize - kQueries * 8; ++i) {
      b->index.Add(static_cast<uint32_t>(i / 10000), static_cast<int64_t>(i % 10000) * 250,
                   {rng(), rng(), rng(), rng()});
    }
    for (int q = 0; q < kQueries; ++q) {
      const Hash256 center{rng(), rng(), rng(), rng()};
      b->queries.push_back(center);
      for (int d = 8; d <= 64; d += 8) {
        Hash256 h = center;
        for (int k = 0; k < d; ++k) {
          const int bit = static_cast<int>(rng() % 256);
          h[static_cast<size_t>(bit / 64)] ^= uint64_t{1} << (bit % 64);
        }
        b->index.Add(100000 + static_cast<uint32_t>(q), d, h);
      }
    }
    b->index.Build();
    return b;
  }();
  return *big;
}

// Multi-index search; range(0) = max Hamming distance, range(1) = chunk
// radius (-1 exact).
void BM_IndexSearch(benchmark::State& state) {
  const BigIndex& b = Index();
  const earshot::video::SearchOptions options{static_cast<int>(state.range(0)),
                                              static_cast<int>(state.range(1))};
  size_t q = 0, hits = 0;
  for (auto _ : state) {
    auto r = b.index.Search(b.queries[q++ % b.queries.size()], options);
    hits += r.size();
    benchmark::DoNotOptimize(r);
  }
  state.counters["hits_per_query"] = benchmark::Counter(static_cast<double>(hits) / static_cast<double>(state.iterations()));
  state.counters["entries"] = static_cast<double>(b.index.size());
}
BENCHMARK(BM_IndexSearch)
    ->Args({31, -1})
    ->Args({56, 1})
    ->Args({56, 2})
    ->Args({64, 2})
    ->Args({64, -1})
    ->Unit(benchmark::kMicrosecond);

void BM_BruteForceSearch(benchmark::State& state) {
  const BigIndex& b = Index();
  size_t q = 0;
  for (auto _ : state) {
    auto r = b.index.BruteForceSearch(b.queries[q++ % b.queries.size()], static_cast<int>(state.range(0)));
    benchmark::DoNotOptimize(r);
  }
  state.counters["entries"] = static_cast<double>(b.index.size());
}
BENCHMARK(BM_BruteForceSearch)->Arg(64)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
