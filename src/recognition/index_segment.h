// The on-disk segment format of the reference index: an immutable, compact,
// checksummed inverted file from landmark hashes to postings. This file does
// no I/O: segments are built into a caller-supplied sink (SegmentSink) and read
// from a caller-supplied byte span (typically an mmap, see index/index_store.h).
//
// Byte layout (version 1). All integers are little-endian and unaligned;
// "varint" is LEB128 (7 bits per byte, low groups first).
//
//   offset             size            content
//   0                  16              preamble: magic "earshseg" (8 bytes),
//                                      u32 format_version, u32 algorithm_version
//   16                 S               side data region: the tracks' side data
//                                      concatenated in track order
//   16+S               Q               postings region: one block per bucket,
//                                      buckets in order (see below)
//   tracks_offset      24*T + 8        track table (T = track count):
//                                        T  x u32 track id, strictly ascending
//                                        T  x u32 frame count
//                                        T  x u64 posting count
//                                        T+1 x u64 side data offset (relative
//                                             to the side region; [0] = 0,
//                                             [T] = S)
//   buckets_offset     (B+1) * W       bucket table: B+1 offsets into the
//                                      postings region, W = 4 if Q < 2^32
//                                      else 8; bucket b spans
//                                      [table[b], table[b+1]); table[B] = Q
//   file_size - 128    128             footer (kSegmentFooterSize):
//      0 u64 side_offset (16)     8 u64 postings_offset  16 u64 tracks_offset
//     24 u64 buckets_offset      32 u64 track_count T    40 u64 key_count K
//     48 u64 posting_count P     56 u64 bucket_count B   64 u32 max_key
//     68 u8 key_shift s          69 u8 offset_width W    70 u8 time_width
//     71 u8 0                    72 u32 format_version   76 u32 algorithm_version
//     80 u32 body_crc: CRC-32C of [side_offset, tracks_offset)
//     84 u32 directory_crc: CRC-32C of [tracks_offset, file_size - 128)
//     88..111 zero
//    112 u32 footer_crc: CRC-32C of the preamble then footer bytes [0, 112)
//    116 u32 0                  120 magic "earshseg" (8 bytes)
//
// Buckets: key k lives in bucket k >> s; B = (max_key >> s) + 1. The builder
// picks s so that a bucket holds 4-8 keys on average, so finding a key is one
// table read plus a scan of a few entry headers. Every byte of the file is
// covered by a checksum or must hold a fixed value (magic, zero padding).
//
// A bucket block is its keys' entries in ascending key order. One entry:
//   varint  key delta: key - (b << s) for the bucket's first key, else
//           key - previous key (>= 1)
//   varint  n, the number of postings (>= 1)
//   n == 1: varint track_index, varint time
//   n >= 2: u8 params: bits 0-4 = Rice parameter r, bits 5-7 = d, and the
//             time width is w = time_width - d
//           varint byte length L of the bit stream, then L bytes: for each
//             posting (ascending track_index, then time), the track_index
//             delta from the previous posting (from 0 for the first) Rice
//             coded with parameter r (quotient in unary as q zero bits then
//             a one bit, then r low bits), then the time in w bits; bits
//             are packed from the least significant bit of each byte up.
// track_index is the posting's row in the track table, so the ascending
// (track_index, time) order is the ascending (track id, time) order.
//
// Size: the Rice-coded track gap costs about log2(tracks / list length) + 1.5
// bits and the time about log2(track length in frames) bits, plus ~4 bytes
// per distinct key. Measured (bench/index_bench.cc, 20-bit keys, 4-minute
// tracks): 2.7 bytes/posting for 1,000 tracks, 3.0 for 100,000.
//
// Checking: SegmentView::Open checks the preamble, footer checksum, versions,
// region sizes, the directory checksum and the track table in O(tracks +
// buckets) time without touching the postings; Verify() checks the body
// checksum and decodes every list. Lookups on a segment whose body is damaged
// never read outside the span and never crash; they return what they can
// decode (possibly nothing for the damaged list).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/error.h"
#include "recognition/index_reader.h"
#include "recognition/types.h"

namespace earshot::recognition {

// Version of the byte layout above. A reader refuses other versions with
// kVersionMismatch.
inline constexpr uint32_t kSegmentFormatVersion = 1;
inline constexpr size_t kSegmentPreambleSize = 16;
inline constexpr size_t kSegmentFooterSize = 128;

// CRC-32C (Castagnoli). Extends `crc`: Crc32c(b, Crc32c(a)) == Crc32c(a ++ b).
// Uses the SSE4.2 instruction when the CPU has it. Thread safety: pure.
uint32_t Crc32c(std::span<const uint8_t> data, uint32_t crc = 0);

// A posting as stored inside one segment: the track is a row of the segment's
// track table (0 <= track_index < track_count).
struct SegmentPosting {
  uint32_t track_index = 0;
  uint32_t time = 0;  // anchor frame
  friend bool operator==(const SegmentPosting&, const SegmentPosting&) = default;
};

// Receives the bytes of a segment being built, in file order, in chunks of up
// to about 1 MiB. An error stops the build and is returned by the builder.
using SegmentSink = std::function<Status(std::span<const uint8_t>)>;

// Streams a segment into a sink in one pass with memory proportional to the
// track and bucket tables (not to the postings). Used by BuildSegment and by
// MergeSegments.
//
// Call order: AddTrack for every track in ascending id order, then AddList for
// every key in ascending key order, then Finish once. A misuse or a sink error
// is sticky: every later call returns the same error.
//
// Thread safety: not thread-safe; use from one thread.
class SegmentBuilder {
 public:
  struct Params {
    uint32_t algorithm_version = 0;
    HashKey max_key = 0;          // REQUIRES: every key added is <= max_key
    uint32_t max_time = 0;        // REQUIRES: every posting time is <= max_time
    uint64_t key_count_hint = 0;  // expected distinct keys; sizes the bucket table
                                  // (a wrong hint only costs space or speed)
  };

  SegmentBuilder(const Params& params, SegmentSink sink);
  ~SegmentBuilder();
  SegmentBuilder(const SegmentBuilder&) = delete;
  SegmentBuilder& operator=(const SegmentBuilder&) = delete;

  // Adds the next track; its track_index is the number of tracks added before.
  // kInvalidArgument unless `track` is greater than the previous track's id.
  Status AddTrack(TrackId track, uint32_t frame_count, std::span<const uint8_t> side_data);

  // Adds the postings of `key`. REQUIRES: key > previous key, key <= max_key,
  // postings non-empty, sorted by (track_index, time), track_index < tracks
  // added, time <= max_time (violations give kInvalidArgument).
  Status AddList(HashKey key, std::span<const SegmentPosting> postings);

  // Writes the tables and the footer. Returns the segment's size in bytes.
  Result<uint64_t> Finish();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Builds a segment holding `tracks` (in any order; hashes in any order,
// duplicates kept as separate postings). REQUIRES: distinct track ids; if an id
// repeats, only its first occurrence is stored. Memory: about 2 x 12 bytes per
// posting while sorting, plus the output.
std::vector<uint8_t> BuildSegment(const std::vector<TrackFingerprint>& tracks,
                                  uint32_t algorithm_version);

// Same, streaming the bytes into `sink`; returns the sink's first error.
Status WriteSegment(const std::vector<TrackFingerprint>& tracks, uint32_t algorithm_version,
                    const SegmentSink& sink);

// A parsed, read-only view of a segment's bytes. Does not own the bytes:
// REQUIRES the span to stay valid and unchanged while the view (or any copy,
// cursor or span it returned) is used. Cheap to copy.
//
// Thread safety: all methods are const and may be called from many threads.
class SegmentView final : public IndexReader {
 public:
  // Checks everything but the postings (see the file comment) in time
  // proportional to the track and bucket tables. Errors: kCorruptData saying
  // what is damaged; kVersionMismatch when the format version is not
  // kSegmentFormatVersion or the segment was built with another
  // algorithm_version (the message names both versions).
  static Result<SegmentView> Open(std::span<const uint8_t> bytes, uint32_t algorithm_version);

  // Full check: body checksum, then decodes every list and checks keys,
  // buckets and per-track posting counts. Reads the whole segment.
  Status Verify() const;

  // IndexReader. Every track of a segment is live (tombstones are kept by the
  // index store, outside segments).
  void Lookup(HashKey hash, std::vector<Posting>& out) const override;
  bool HasTrack(TrackId track) const override;
  std::span<const uint8_t> SideData(TrackId track) const override;
  uint32_t FrameCount(TrackId track) const override;
  uint64_t TrackCount() const override { return track_count_; }
  uint64_t PostingCount() const override { return posting_count_; }

  // Like Lookup but with track table rows instead of track ids.
  void LookupLocal(HashKey hash, std::vector<SegmentPosting>& out) const;

  // The row of `track` in the track table, if present. O(log tracks).
  std::optional<uint32_t> FindTrack(TrackId track) const;

  // Track table rows. REQUIRES: index < TrackCount().
  TrackId TrackAt(uint32_t index) const;
  uint32_t FrameCountAt(uint32_t index) const;
  uint64_t PostingCountAt(uint32_t index) const;
  std::span<const uint8_t> SideDataAt(uint32_t index) const;

  uint32_t algorithm_version() const { return algorithm_version_; }
  uint64_t key_count() const { return key_count_; }
  uint64_t bucket_count() const { return bucket_count_; }
  HashKey max_key() const { return max_key_; }
  uint32_t time_width() const { return time_width_; }  // bits of the largest time
  uint64_t size_bytes() const { return size_; }
  uint64_t postings_bytes() const { return postings_size_; }  // the postings region

 private:
  friend class SegmentCursor;
  SegmentView() = default;

  uint64_t BucketOffset(uint64_t bucket) const;
  // Decodes the postings of `hash` into `out` (see DecodeList in the .cc);
  // false if the list is damaged (some postings may have been added).
  template <class Out>
  bool LookupImpl(HashKey hash, Out& out) const;

  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  const uint8_t* side_ = nullptr;
  uint64_t side_size_ = 0;
  const uint8_t* postings_ = nullptr;
  uint64_t postings_size_ = 0;
  const uint8_t* ids_ = nullptr;
  const uint8_t* frames_ = nullptr;
  const uint8_t* counts_ = nullptr;
  const uint8_t* side_offsets_ = nullptr;
  const uint8_t* buckets_ = nullptr;
  uint64_t track_count_ = 0;
  uint64_t key_count_ = 0;
  uint64_t posting_count_ = 0;
  uint64_t bucket_count_ = 0;
  HashKey max_key_ = 0;
  uint32_t key_shift_ = 0;
  uint32_t offset_width_ = 4;
  uint32_t time_width_ = 0;
  uint32_t algorithm_version_ = 0;
  uint32_t body_crc_ = 0;
};

// Walks a segment's keys in ascending order (for merging and checking).
// REQUIRES: the segment's bytes outlive the cursor. Not thread-safe.
class SegmentCursor {
 public:
  explicit SegmentCursor(const SegmentView& segment);

  // Moves to the next key (the first one on the first call). Returns false at
  // the end; kCorruptData when the bucket or entry structure is damaged.
  Result<bool> Next();

  // The current key and its number of postings. REQUIRES: Next() returned true.
  HashKey key() const { return static_cast<HashKey>(key_); }
  uint64_t posting_count() const { return count_; }

  // Appends the current key's postings. kCorruptData when the list is damaged
  // (then `out` is left as it was). REQUIRES: Next() returned true.
  Status ReadPostings(std::vector<SegmentPosting>& out) const;

 private:
  SegmentView segment_;
  uint64_t bucket_ = 0;            // bucket of the current entry
  const uint8_t* next_ = nullptr;  // next entry header
  const uint8_t* bucket_end_ = nullptr;
  const uint8_t* payload_ = nullptr;  // current entry's list
  const uint8_t* payload_end_ = nullptr;
  uint64_t key_ = 0;
  uint64_t count_ = 0;
  bool in_bucket_ = false;  // next_ points into bucket_ (some entry already read)
  bool done_ = false;
};

// One input of MergeSegments: a segment and the ids of its tracks that are
// removed (sorted ascending; ids not in the segment are ignored).
struct MergeSource {
  const SegmentView* segment = nullptr;
  std::span<const TrackId> removed;
};

// Writes into `sink` one segment holding the live tracks of all sources.
// kInvalidArgument if a live track id appears in two sources; kCorruptData if
// a source turns out to be damaged; kUnavailable("merge cancelled") when
// `cancelled` returns true (it is polled every few thousand keys).
Status MergeSegments(std::span<const MergeSource> sources, uint32_t algorithm_version,
                     const SegmentSink& sink, const std::function<bool()>& cancelled = {});

}  // namespace earshot::recognition
