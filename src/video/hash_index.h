// Nearest-neighbour search over 256-bit frame hashes in Hamming space (no I/O).
//
// Multi-index hashing (Norouzi et al.): every hash is cut into 16 chunks of
// 16 bits (taken from a fixed pseudo-random permutation of the 256 bits, so
// that correlated neighbouring DCT bits land in different chunks), and each
// chunk has its own table chunk value -> entries. By the pigeonhole
// principle, a hash within distance d of the query agrees with it within
// floor(d / 16) bits on at least one chunk, so probing every chunk value within
// that radius finds every such hash; candidates are then checked on all 256
// bits. Search time grows with the number of entries sharing probed chunk
// values, not with the index size as a whole (about 1 / 65536 of the entries
// per probed value when chunk values are spread evenly).
//
// A chunk radius below floor(d / 16) (SearchOptions::max_chunk_radius) gives a
// much faster approximate search: with radius 2 a hash at distance 60 is still
// found with probability ~0.99 (some chunk has <= 2 of its ~3.75 expected
// differing bits), at 1/18 of the probes of radius 3.
//
// Serialised form (little-endian): "ESVH", format version u32,
// kFrameHashVersion u32, entry count u64, then per entry ref_id u32,
// view u8, time_ms i64, hash 4 x u64. The tables are rebuilt on load.
//
// Thread safety: const methods may run concurrently; Add/Build/Load must not
// run concurrently with anything else on the same index.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/error.h"
#include "video/frame_hash.h"

namespace earshot::video {

struct IndexEntry {
  uint32_t ref_id = 0;   // the catalogued video
  int64_t time_ms = 0;   // position of the frame in that video, milliseconds
  Hash256 hash{};
  ViewKind view = ViewKind::kFull;
};

struct IndexHit {
  uint32_t entry = 0;  // position in entries()
  uint32_t ref_id = 0;
  int64_t time_ms = 0;
  ViewKind view = ViewKind::kFull;
  int distance = 0;    // Hamming distance to the query, 0..256
};

struct SearchOptions {
  int max_hamming = 32;  // hits have distance <= this (0..256)
  // Probe chunk values within this many bits of the query's (0..4); the search
  // is exact when >= max_hamming / 16. -1: always exact.
  int max_chunk_radius = -1;
};

class HashIndex {
 public:
  static constexpr int kChunks = 16;
  static constexpr uint32_t kFormatVersion = 1;

  HashIndex() = default;

  // Appends an entry. Invalidates the tables: call Build() before Search().
  void Add(uint32_t ref_id, int64_t time_ms, const Hash256& hash, ViewKind view = ViewKind::kFull);

  // Builds the chunk tables (O(entries)). Memory: 64 bytes per entry plus a
  // fixed 4 MiB.
  void Build();
  bool built() const { return built_; }

  // Every entry within options.max_hamming of `query`, ordered by (distance,
  // entry). Before Build() (or after a later Add) it falls back to
  // BruteForceSearch, so results are always complete for the exact setting.
  std::vector<IndexHit> Search(const Hash256& query, const SearchOptions& options) const;

  // Reference implementation: compares the query with every entry. Same order.
  std::vector<IndexHit> BruteForceSearch(const Hash256& query, int max_hamming) const;

  size_t size() const { return entries_.size(); }
  const std::vector<IndexEntry>& entries() const { return entries_; }

  // The serialised form described above.
  std::vector<uint8_t> Serialize() const;
  // Parses Serialize() output and builds the tables. Errors: kCorruptData
  // (bad magic, truncated, trailing bytes, invalid view), kVersionMismatch
  // (another format or hash version).
  static Result<HashIndex> Deserialize(std::span<const uint8_t> bytes);

 private:
  // The 16-bit value of every chunk of `hash`.
  static std::array<uint16_t, kChunks> Chunks(const Hash256& hash);

  std::vector<IndexEntry> entries_;
  bool built_ = false;
  // Per chunk: offsets_[c] has 65537 bounds into ids_[c] (counting sort).
  std::vector<std::vector<uint32_t>> offsets_;
  std::vector<std::vector<uint32_t>> ids_;
};

}  // namespace earshot::video
