// The MANIFEST of an index directory: which segment files are live, which of
// their tracks are removed, the algorithm version and a generation number.
//
// Text format (version 1), one item per line, fields separated by one space,
// every line ending in '\n':
//
//   earshot-index-manifest 1
//   algorithm 4
//   generation 17
//   next-segment 42
//   segment seg-0000000000000029.eseg 1048576 3,17,99
//   segment seg-000000000000002a.eseg 2048 -
//   crc32c 1a2b3c4d
//
// A segment line gives the file name, its size in bytes and its removed
// track ids (ascending, comma-separated; "-" for none). The last line is the
// CRC-32C of every byte before it, in 8 lowercase hex digits. next-segment is
// the number of the next segment file to create (numbers are never reused).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "recognition/types.h"

namespace earshot::index {

inline constexpr uint32_t kManifestFormatVersion = 1;

struct ManifestSegment {
  std::string file;                           // "seg-<16 hex digits>.eseg"
  uint64_t size = 0;                          // bytes
  std::vector<recognition::TrackId> removed;  // ascending
  friend bool operator==(const ManifestSegment&, const ManifestSegment&) = default;
};

struct Manifest {
  uint32_t algorithm_version = 0;
  uint64_t generation = 0;    // bumped by every change
  uint64_t next_segment = 1;  // number of the next segment file
  std::vector<ManifestSegment> segments;
  friend bool operator==(const Manifest&, const Manifest&) = default;
};

std::string EncodeManifest(const Manifest& manifest);

// kCorruptData naming the line and what is wrong; kVersionMismatch for
// another manifest format version.
Result<Manifest> DecodeManifest(std::string_view text);

// "seg-000000000000002a.eseg" for 42, and back (nullopt for other names).
std::string SegmentFileName(uint64_t number);
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

}  // namespace earshot::index
