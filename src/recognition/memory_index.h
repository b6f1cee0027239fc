// MemoryIndex: the simplest possible reference index, held in memory.
//
// A hash map from key to its postings, kept sorted by (track, time). It is the
// brute-force reference the on-disk index is tested against, and is fine for
// tests and small catalogs. Like a segment it keeps every hash entry it is
// given, duplicates included.
//
// Thread safety: the const methods (the IndexReader interface, Keys, Tracks)
// may run concurrently with each other; Add and Remove need exclusive access
// (no reader may run at the same time).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "recognition/index_reader.h"
#include "recognition/types.h"

namespace earshot::recognition {

class MemoryIndex final : public IndexReader {
 public:
  MemoryIndex() = default;

  // Adds a track. kAlreadyExists when a track with this id is in the index.
  // Cost: O(hashes x length of the touched posting lists).
  Status Add(TrackFingerprint track);

  // Removes a track and its postings. kNotFound when it is not in the index.
  Status Remove(TrackId track);

  // Every key with at least one posting, ascending.
  std::vector<HashKey> Keys() const;

  // Every track id, ascending.
  std::vector<TrackId> Tracks() const;

  // IndexReader.
  void Lookup(HashKey hash, std::vector<Posting>& out) const override;
  bool HasTrack(TrackId track) const override;
  std::span<const uint8_t> SideData(TrackId track) const override;
  uint32_t FrameCount(TrackId track) const override;
  uint64_t TrackCount() const override { return tracks_.size(); }
  uint64_t PostingCount() const override { return posting_count_; }

 private:
  struct Track {
    uint32_t frame_count = 0;
    std::vector<uint8_t> side_data;
    std::vector<HashKey> keys;  // distinct keys of the track's postings
    uint64_t postings = 0;
  };

  std::map<TrackId, Track> tracks_;
  std::unordered_map<HashKey, std::vector<Posting>> postings_;  // sorted by (track, time)
  uint64_t posting_count_ = 0;
};

}  // namespace earshot::recognition
