#include "video/hash_index.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace earshot::video {
namespace {

constexpr size_t kBuckets = size_t{1} << 16;
constexpr std::array<uint8_t, 4> kMagic = {'E', 'S', 'V', 'H'};
constexpr size_t kHeaderBytes = 4 + 4 + 4 + 8;
constexpr size_t kEntryBytes = 4 + 1 + 8 + 32;

// Fixed permutation of the 256 bit positions (part of the format: chunk c
// holds bits kPermutation[16c .. 16c + 15]). Fisher-Yates with a fixed LCG.
const std::array<uint8_t, 256>& Permutation() {
  static const auto perm = [] {
    std::array<uint8_t, 256> p{};
    for (int i = 0; i < 256; ++i) p[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (int i = 255; i > 0; --i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      const int j = static_cast<int>((state >> 33) % static_cast<uint64_t>(i + 1));
      std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
    }
    return p;
  }();
  return perm;
}

// Calls fn(value) for every 16-bit value within `radius` bits of `key`.
template <class Fn>
void ForEachNeighbour(uint16_t key, int radius, int first_bit, Fn&& fn) {
  fn(key);
  if (radius == 0) return;
  for (int b = first_bit; b < 16; ++b) {
    ForEachNeighbour(static_cast<uint16_t>(key ^ (1u << b)), radius - 1, b + 1, fn);
  }
}

void PutBytes(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}
uint64_t GetBytes(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

bool HitOrder(const IndexHit& a, const IndexHit& b) {
  return a.distance != b.distance ? a.distance < b.distance : a.entry < b.entry;
}

}  // namespace

std::array<uint16_t, HashIndex::kChunks> HashIndex::Chunks(const Hash256& hash) {
  const auto& perm = Permutation();
  std::array<uint16_t, kChunks> chunks{};
  for (int c = 0; c < kChunks; ++c) {
    uint32_t v = 0;
    for (int i = 0; i < 16; ++i) {
      const int bit = perm[static_cast<size_t>(c * 16 + i)];
      v |= static_cast<uint32_t>((hash[static_cast<size_t>(bit / 64)] >> (bit % 64)) & 1u) << i;
    }
    chunks[static_cast<size_t>(c)] = static_cast<uint16_t>(v);
  }
  return chunks;
}

void HashIndex::Add(uint32_t ref_id, int64_t time_ms, const Hash256& hash, ViewKind view) {
  entries_.push_back({ref_id, time_ms, hash, view});
  built_ = false;
}

void HashIndex::Build() {
  offsets_.assign(kChunks, std::vector<uint32_t>(kBuckets + 1, 0));
  ids_.assign(kChunks, std::vector<uint32_t>(entries_.size()));
  std::vector<std::array<uint16_t, kChunks>> chunks(entries_.size());
  for (size_t e = 0; e < entries_.size(); ++e) {
    chunks[e] = Chunks(entries_[e].hash);
    for (int c = 0; c < kChunks; ++c) ++offsets_[static_cast<size_t>(c)][chunks[e][static_cast<size_t>(c)] + 1u];
  }
  for (int c = 0; c < kChunks; ++c) {
    auto& off = offsets_[static_cast<size_t>(c)];
    for (size_t b = 0; b < kBuckets; ++b) off[b + 1] += off[b];
    std::vector<uint32_t> fill(off.begin(), off.end() - 1);
    auto& ids = ids_[static_cast<size_t>(c)];
    for (size_t e = 0; e < entries_.size(); ++e) {
      ids[fill[chunks[e][static_cast<size_t>(c)]]++] = static_cast<uint32_t>(e);
    }
  }
  built_ = true;
}

std::vector<IndexHit> HashIndex::BruteForceSearch(const Hash256& query, int max_hamming) const {
  std::vector<IndexHit> hits;
  for (size_t e = 0; e < entries_.size(); ++e) {
    const int d = HammingDistance(query, entries_[e].hash);
    if (d <= max_hamming) {
      const IndexEntry& x = entries_[e];
      hits.push_back({static_cast<uint32_t>(e), x.ref_id, x.time_ms, x.view, d});
    }
  }
  std::sort(hits.begin(), hits.end(), HitOrder);
  return hits;
}

std::vector<IndexHit> HashIndex::Search(const Hash256& query, const SearchOptions& options) const {
  if (!built_) return BruteForceSearch(query, options.max_hamming);
  int radius = std::max(0, options.max_hamming) / kChunks;
  if (options.max_chunk_radius >= 0) radius = std::min(radius, options.max_chunk_radius);
  radius = std::min(radius, 4);
  std::vector<IndexHit> hits;
  const auto chunks = Chunks(query);
  for (int c = 0; c < kChunks; ++c) {
    const auto& off = offsets_[static_cast<size_t>(c)];
    const auto& ids = ids_[static_cast<size_t>(c)];
    ForEachNeighbour(chunks[static_cast<size_t>(c)], radius, 0, [&](uint16_t value) {
      for (uint32_t i = off[value]; i < off[value + 1u]; ++i) {
        const IndexEntry& x = entries_[ids[i]];
        const int d = HammingDistance(query, x.hash);
        if (d <= options.max_hamming) hits.push_back({ids[i], x.ref_id, x.time_ms, x.view, d});
      }
    });
  }
  std::sort(hits.begin(), hits.end(), HitOrder);
  hits.erase(std::unique(hits.begin(), hits.end(),
                         [](const IndexHit& a, const IndexHit& b) { return a.entry == b.entry; }),
             hits.end());
  return hits;
}

std::vector<uint8_t> HashIndex::Serialize() const {
  std::vector<uint8_t> out;
  out.reserve(kHeaderBytes + entries_.size() * kEntryBytes);
  out.insert(out.end(), kMagic.begin(), kMagic.end());
  PutBytes(out, kFormatVersion, 4);
  PutBytes(out, kFrameHashVersion, 4);
  PutBytes(out, entries_.size(), 8);
  for (const IndexEntry& e : entries_) {
    PutBytes(out, e.ref_id, 4);
    PutBytes(out, static_cast<uint8_t>(e.view), 1);
    PutBytes(out, static_cast<uint64_t>(e.time_ms), 8);
    for (uint64_t w : e.hash) PutBytes(out, w, 8);
  }
  return out;
}

Result<HashIndex> HashIndex::Deserialize(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderBytes || !std::equal(kMagic.begin(), kMagic.end(), bytes.begin())) {
    return MakeError(ErrorCode::kCorruptData,
                     "video hash index: not an index file (bad magic or shorter than its header)");
  }
  const uint8_t* p = bytes.data();
  const auto format = static_cast<uint32_t>(GetBytes(p + 4, 4));
  const auto algorithm = static_cast<uint32_t>(GetBytes(p + 8, 4));
  const uint64_t count = GetBytes(p + 12, 8);
  if (format != kFormatVersion || algorithm != kFrameHashVersion) {
    return MakeError(ErrorCode::kVersionMismatch,
                     "video hash index: written with format " + std::to_string(format) +
                         " / hash version " + std::to_string(algorithm) + ", this build reads " +
                         std::to_string(kFormatVersion) + " / " +
                         std::to_string(kFrameHashVersion) + "; rebuild the index");
  }
  const size_t body = bytes.size() - kHeaderBytes;
  if (count > body / kEntryBytes || body != count * kEntryBytes) {
    return MakeError(ErrorCode::kCorruptData,
                     "video hash index: header says " + std::to_string(count) + " entries but " +
                         std::to_string(body) + " bytes follow (" + std::to_string(kEntryBytes) +
                         " per entry): truncated or damaged");
  }
  HashIndex index;
  index.entries_.reserve(count);
  p += kHeaderBytes;
  for (uint64_t i = 0; i < count; ++i, p += kEntryBytes) {
    IndexEntry e;
    e.ref_id = static_cast<uint32_t>(GetBytes(p, 4));
    const uint8_t view = p[4];
    if (view >= kViewKindCount) {
      return MakeError(ErrorCode::kCorruptData, "video hash index: entry " + std::to_string(i) +
                                                    " has unknown view " + std::to_string(view));
    }
    e.view = static_cast<ViewKind>(view);
    e.time_ms = static_cast<int64_t>(GetBytes(p + 5, 8));
    for (int w = 0; w < 4; ++w) e.hash[static_cast<size_t>(w)] = GetBytes(p + 13 + 8 * w, 8);
    index.entries_.push_back(e);
  }
  index.Build();
  return index;
}

}  // namespace earshot::video
