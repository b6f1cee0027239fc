// The read side of a reference index, as the matcher sees it.
//
// Implementations: MemoryIndex (in memory, for tests and small catalogs) and
// the on-disk segmented index (index/index_store.h), which hands out
// immutable snapshots implementing this interface.
//
// Thread safety: every const method may be called from many threads at once.
// An IndexReader never changes while a caller holds it: writers publish new
// snapshots instead of mutating a live one.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "recognition/types.h"

namespace earshot::recognition {

class IndexReader {
 public:
  virtual ~IndexReader() = default;

  // Appends to `out` every posting of `hash` that belongs to a live (not
  // removed) track. Order within one hash: ascending (track, time).
  virtual void Lookup(HashKey hash, std::vector<Posting>& out) const = 0;

  // True when `track` is in the index and not removed.
  virtual bool HasTrack(TrackId track) const = 0;

  // The track's side data (TrackFingerprint::side_data); empty when the track
  // is unknown or removed. The span stays valid as long as this reader lives.
  virtual std::span<const uint8_t> SideData(TrackId track) const = 0;

  // The track's length in frames; 0 when unknown or removed.
  virtual uint32_t FrameCount(TrackId track) const = 0;

  // Number of live tracks and of their postings.
  virtual uint64_t TrackCount() const = 0;
  virtual uint64_t PostingCount() const = 0;
};

}  // namespace earshot::recognition
