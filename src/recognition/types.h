// Vocabulary types shared by the fingerprinter, the index and the matcher.
//
// Units: a "frame" is one hop of the fingerprinter's spectrogram (see
// FingerprintParams::hop_seconds()); times in postings are frame numbers
// counted from the first sample of the reference track.
#pragma once

#include <cstdint>
#include <vector>

namespace earshot::recognition {

// Identifier of a reference track. Assigned by the catalog (SQLite rowid,
// never reused), so an id removed from the index never comes back.
using TrackId = uint32_t;

// A landmark hash: a quantised pair of spectral peaks (see hasher.h).
using HashKey = uint32_t;

// One occurrence of a hash in a reference track.
struct Posting {
  TrackId track = 0;
  uint32_t time = 0;  // anchor frame in the reference track
  friend bool operator==(const Posting&, const Posting&) = default;
};

// One hash emitted by the fingerprinter, at the frame of its anchor peak.
struct HashEntry {
  HashKey hash = 0;
  uint32_t time = 0;  // anchor frame
  friend bool operator==(const HashEntry&, const HashEntry&) = default;
};

// Everything the index stores for one reference track.
struct TrackFingerprint {
  TrackId track = 0;
  uint32_t frame_count = 0;       // length of the track in frames
  std::vector<HashEntry> hashes;  // any order; duplicates allowed
  // Opaque per-track bytes owned by the matcher (its peak map, used to verify
  // candidates). The index stores and returns them unchanged.
  std::vector<uint8_t> side_data;
};

}  // namespace earshot::recognition
