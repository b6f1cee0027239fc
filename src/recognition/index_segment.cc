#include "recognition/index_segment.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

namespace earshot::recognition {
namespace {

constexpr std::array<uint8_t, 8> kMagic = {'e', 'a', 'r', 's', 'h', 's', 'e', 'g'};
constexpr uint32_t kKeysPerBucket = 4;   // target; a bucket then holds 4-8 keys
constexpr uint32_t kMaxBucketBits = 26;  // caps the builder's bucket table at 512 MiB
constexpr size_t kSinkChunk = size_t{1} << 20;
constexpr uint64_t kTrackRowBytes = 4 + 4 + 8 + 8;  // id, frames, count, side offset

// Footer field offsets (see the layout in the header).
constexpr size_t kFSideOffset = 0;
constexpr size_t kFPostingsOffset = 8;
constexpr size_t kFTracksOffset = 16;
constexpr size_t kFBucketsOffset = 24;
constexpr size_t kFTrackCount = 32;
constexpr size_t kFKeyCount = 40;
constexpr size_t kFPostingCount = 48;
constexpr size_t kFBucketCount = 56;
constexpr size_t kFMaxKey = 64;
constexpr size_t kFKeyShift = 68;
constexpr size_t kFOffsetWidth = 69;
constexpr size_t kFTimeWidth = 70;
constexpr size_t kFFormatVersion = 72;
constexpr size_t kFAlgorithmVersion = 76;
constexpr size_t kFBodyCrc = 80;
constexpr size_t kFDirectoryCrc = 84;
constexpr size_t kFFooterCrc = 112;
constexpr size_t kFMagic = 120;

// ---------------------------------------------------------------------------
// Little-endian loads and stores on unaligned bytes.

inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  return v;
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  return v;
}

inline void Store32(uint8_t* p, uint32_t v) {
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  std::memcpy(p, &v, sizeof v);
}

inline void Store64(uint8_t* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  std::memcpy(p, &v, sizeof v);
}

inline void Put32(std::vector<uint8_t>& out, uint32_t v) {
  const size_t at = out.size();
  out.resize(at + 4);
  Store32(out.data() + at, v);
}

inline void Put64(std::vector<uint8_t>& out, uint64_t v) {
  const size_t at = out.size();
  out.resize(at + 8);
  Store64(out.data() + at, v);
}

inline void PutVarint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

// Reads a varint from [p, end). False if it runs past `end` or is longer
// than 10 bytes.
inline bool GetVarint(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
  if (p < end && *p < 0x80) {
    v = *p++;
    return true;
  }
  uint64_t result = 0;
  for (uint32_t shift = 0; shift < 64 && p < end; shift += 7) {
    const uint8_t byte = *p++;
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      v = result;
      return true;
    }
  }
  return false;
}

inline uint64_t LowMask(uint32_t bits) {
  return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
}

// ---------------------------------------------------------------------------
// Bit streams (least significant bit first).

class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}

  // REQUIRES: bits <= 56, value < 2^bits.
  void Put(uint64_t value, uint32_t bits) {
    acc_ |= value << filled_;
    filled_ += bits;
    Drain();
  }

  void PutZeros(uint64_t count) {
    while (count > 0) {
      const uint32_t step = static_cast<uint32_t>(std::min<uint64_t>(count, 48));
      filled_ += step;
      count -= step;
      Drain();
    }
  }

  void Finish() {
    if (filled_ > 0) out_.push_back(static_cast<uint8_t>(acc_));
    acc_ = 0;
    filled_ = 0;
  }

 private:
  void Drain() {
    while (filled_ >= 8) {
      out_.push_back(static_cast<uint8_t>(acc_));
      acc_ >>= 8;
      filled_ -= 8;
    }
  }

  std::vector<uint8_t>& out_;
  uint64_t acc_ = 0;
  uint32_t filled_ = 0;  // < 8 between calls
};

// Reads a bit stream of `nbytes` bytes at `begin`. Loads may look at bytes
// after the stream but never at or past `safe_end`.
class BitReader {
 public:
  BitReader(const uint8_t* begin, uint64_t nbytes, const uint8_t* safe_end)
      : begin_(begin), total_bits_(nbytes * 8), safe_end_(safe_end) {}

  // Reads a unary number: q zero bits then a one bit.
  bool ReadUnary(uint64_t& q) {
    uint64_t count = 0;
    for (;;) {
      if (pos_ >= total_bits_) return false;
      const uint64_t window = Window();
      if (window != 0) {
        const uint32_t zeros = static_cast<uint32_t>(std::countr_zero(window));
        pos_ += zeros + 1;
        if (pos_ > total_bits_) return false;
        q = count + zeros;
        return true;
      }
      // A window holds at least 57 bits of the stream, or all of what is left.
      count += 57;
      pos_ += 57;
    }
  }

  // REQUIRES: bits <= 56.
  bool Read(uint32_t bits, uint64_t& value) {
    if (bits == 0) {
      value = 0;
      return pos_ <= total_bits_;
    }
    value = Window() & LowMask(bits);
    pos_ += bits;
    return pos_ <= total_bits_;
  }

  uint64_t position() const { return pos_; }
  uint64_t total_bits() const { return total_bits_; }
  void Skip(uint64_t bits) { pos_ += bits; }

  // The bits from position() on; at least 57 are valid unless the stream
  // ends first (bits past its end are unspecified).
  uint64_t Window() const {
    const uint8_t* at = begin_ + (pos_ >> 3);
    uint64_t word = 0;
    if (safe_end_ - at >= 8) {
      word = Load64(at);
    } else {
      for (int i = 0; at + i < safe_end_; ++i) word |= static_cast<uint64_t>(at[i]) << (8 * i);
    }
    return word >> (pos_ & 7);
  }

 private:
  const uint8_t* begin_;
  uint64_t total_bits_;
  const uint8_t* safe_end_;
  uint64_t pos_ = 0;
};

// What a list decoder needs to know about its segment.
struct ListContext {
  uint64_t track_count;
  uint32_t time_width;
  const uint8_t* safe_end;  // end of the segment's bytes
};

// Decodes the postings of one entry whose header (key delta, n) has been read;
// `p` points at the rest of the entry inside [p, end). Calls out.Reserve(n)
// once, then out.Put(track_index, time) for each posting. On success `p`
// points after the entry. False on any inconsistency (some postings may have
// been put).
template <class Out>
bool DecodeList(const uint8_t*& p, const uint8_t* end, uint64_t n, const ListContext& ctx,
                Out& out) {
  const uint64_t time_limit = LowMask(ctx.time_width);
  if (n == 1) {
    uint64_t track = 0;
    uint64_t time = 0;
    if (!GetVarint(p, end, track) || !GetVarint(p, end, time)) return false;
    if (track >= ctx.track_count || time > time_limit) return false;
    out.Reserve(1);
    out.Put(static_cast<uint32_t>(track), static_cast<uint32_t>(time));
    return true;
  }
  if (n == 0 || p >= end) return false;
  const uint8_t params = *p++;
  const uint32_t rice = params & 31;
  const uint32_t width_drop = params >> 5;
  if (width_drop > ctx.time_width) return false;
  const uint32_t width = ctx.time_width - width_drop;
  uint64_t length = 0;
  if (!GetVarint(p, end, length) || length > static_cast<uint64_t>(end - p)) return false;
  // Every posting takes at least 1 + rice + width bits.
  if (n > length * 8 / (1 + rice + width)) return false;
  out.Reserve(n);
  BitReader bits(p, length, ctx.safe_end);
  const uint64_t quotient_limit = ctx.track_count >> rice;
  const uint64_t rice_mask = LowMask(rice);
  // Fast path: the unary quotient, the remainder and the time of a posting
  // usually fit in one 57-bit window, read with one load.
  const uint32_t fixed = rice + width;
  const uint64_t fixed_mask = LowMask(fixed);
  uint64_t track = 0;
  uint64_t previous_time = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t quotient = 0;
    uint64_t low = 0;
    uint64_t time = 0;
    if (bits.position() >= bits.total_bits()) return false;
    const uint64_t window = bits.Window();
    const uint32_t zeros = window == 0 ? 64 : static_cast<uint32_t>(std::countr_zero(window));
    if (zeros + 1 + fixed <= 57) {
      const uint64_t both = (window >> (zeros + 1)) & fixed_mask;
      bits.Skip(zeros + 1 + fixed);
      if (bits.position() > bits.total_bits()) return false;
      quotient = zeros;
      low = both & rice_mask;
      time = both >> rice;
    } else if (!bits.ReadUnary(quotient) || !bits.Read(rice, low) || !bits.Read(width, time)) {
      return false;
    }
    if (quotient > quotient_limit) return false;
    const uint64_t delta = (quotient << rice) | low;
    track += delta;
    if (track >= ctx.track_count) return false;
    if (delta == 0 && i > 0 && time < previous_time) return false;
    out.Put(static_cast<uint32_t>(track), static_cast<uint32_t>(time));
    previous_time = time;
  }
  if ((bits.position() + 7) / 8 != length) return false;  // no trailing bytes
  p += length;
  return true;
}

// DecodeList outputs. DecodeList calls Reserve once with the exact count, so the postings are
// written in place; on failure the caller shrinks `out` back.
struct PostingOut {  // track ids via the track table
  std::vector<Posting>& out;
  const uint8_t* ids;
  Posting* next = nullptr;
  void Reserve(uint64_t n) {
    const size_t at = out.size();
    out.resize(at + n);
    next = out.data() + at;
  }
  void Put(uint32_t track_index, uint32_t time) {
    *next++ = Posting{Load32(ids + 4 * size_t{track_index}), time};
  }
};

struct LocalOut {
  std::vector<SegmentPosting>& out;
  void Reserve(uint64_t n) { out.reserve(out.size() + n); }
  void Put(uint32_t track_index, uint32_t time) {
    out.push_back(SegmentPosting{track_index, time});
  }
};

// Skips the rest of an entry (see DecodeList).
bool SkipList(const uint8_t*& p, const uint8_t* end, uint64_t n) {
  uint64_t value = 0;
  if (n == 1) return GetVarint(p, end, value) && GetVarint(p, end, value);
  if (n == 0 || p >= end) return false;
  ++p;
  if (!GetVarint(p, end, value) || value > static_cast<uint64_t>(end - p)) return false;
  p += value;
  return true;
}

std::unexpected<Error> Corrupt(std::string message) {
  return MakeError(ErrorCode::kCorruptData, std::move(message));
}

// ---------------------------------------------------------------------------
// CRC-32C.

constexpr uint32_t kCrcPolynomial = 0x82f63b78;  // reflected Castagnoli

constexpr std::array<std::array<uint32_t, 256>, 8> MakeCrcTables() {
  std::array<std::array<uint32_t, 256>, 8> tables{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kCrcPolynomial : 0);
    tables[0][i] = crc;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (size_t t = 1; t < 8; ++t) {
      tables[t][i] = (tables[t - 1][i] >> 8) ^ tables[0][tables[t - 1][i] & 0xff];
    }
  }
  return tables;
}

constexpr auto kCrcTables = MakeCrcTables();

uint32_t Crc32cSoftware(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    const uint64_t word = Load64(p) ^ crc;
    crc = kCrcTables[7][word & 0xff] ^ kCrcTables[6][(word >> 8) & 0xff] ^
          kCrcTables[5][(word >> 16) & 0xff] ^ kCrcTables[4][(word >> 24) & 0xff] ^
          kCrcTables[3][(word >> 32) & 0xff] ^ kCrcTables[2][(word >> 40) & 0xff] ^
          kCrcTables[1][(word >> 48) & 0xff] ^ kCrcTables[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    crc = (crc >> 8) ^ kCrcTables[0][(crc ^ *p) & 0xff];
    ++p;
    --n;
  }
  return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(uint32_t crc, const uint8_t* p,
                                                          size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = __builtin_ia32_crc32qi(c32, *p);
    ++p;
    --n;
  }
  return c32;
}

bool HasHardwareCrc() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

// ---------------------------------------------------------------------------

// Bucket geometry for a segment whose keys are at most max_key.
struct BucketGeometry {
  uint32_t shift = 0;
  uint64_t count = 1;
};

BucketGeometry ChooseBuckets(HashKey max_key, uint64_t key_count_hint) {
  const uint64_t keys =
      std::min<uint64_t>(std::max<uint64_t>(key_count_hint, 1), uint64_t{max_key} + 1);
  const uint64_t target = std::max<uint64_t>(keys / kKeysPerBucket, 1);
  const uint32_t bucket_bits =
      std::min<uint32_t>(static_cast<uint32_t>(std::bit_width(target)) - 1, kMaxBucketBits);
  const uint32_t key_bits = static_cast<uint32_t>(std::bit_width(max_key));
  BucketGeometry g;
  g.shift = key_bits > bucket_bits ? key_bits - bucket_bits : 0;
  g.count = (uint64_t{max_key} >> g.shift) + 1;
  return g;
}

// Picks the Rice parameter minimising the coded size of `deltas`.
uint32_t ChooseRice(const std::vector<uint64_t>& deltas) {
  uint64_t sum = 0;
  for (uint64_t d : deltas) sum += d;
  const uint64_t mean = sum / deltas.size();
  const int center = mean == 0 ? 0 : static_cast<int>(std::bit_width(mean)) - 1;
  uint32_t best = 0;
  uint64_t best_cost = std::numeric_limits<uint64_t>::max();
  for (int k = std::max(center - 2, 0); k <= std::min(center + 1, 31); ++k) {
    uint64_t cost = deltas.size() * static_cast<uint64_t>(k + 1);
    for (uint64_t d : deltas) cost += d >> k;
    if (cost < best_cost) {
      best_cost = cost;
      best = static_cast<uint32_t>(k);
    }
  }
  return best;
}

}  // namespace

uint32_t Crc32c(std::span<const uint8_t> data, uint32_t crc) {
  crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
  if (HasHardwareCrc()) return ~Crc32cHardware(crc, data.data(), data.size());
#endif
  return ~Crc32cSoftware(crc, data.data(), data.size());
}

// ---------------------------------------------------------------------------
// SegmentBuilder

class SegmentBuilder::Impl {
 public:
  Impl(const Params& params, SegmentSink sink)
      : params_(params),
        sink_(std::move(sink)),
        geometry_(ChooseBuckets(params.max_key, params.key_count_hint)),
        time_width_(static_cast<uint32_t>(std::bit_width(params.max_time))) {
    buffer_.reserve(kSinkChunk + 4096);
    std::vector<uint8_t> preamble(kMagic.begin(), kMagic.end());
    Put32(preamble, kSegmentFormatVersion);
    Put32(preamble, params_.algorithm_version);
    preamble_crc_ = Crc32c(preamble);
    Append(preamble);
    side_offsets_.push_back(0);
    bucket_offsets_.reserve(geometry_.count + 1);
  }

  Status AddTrack(TrackId track, uint32_t frame_count, std::span<const uint8_t> side_data) {
    if (!error_ && phase_ != Phase::kTracks) {
      Fail(ErrorCode::kInvalidArgument, "segment builder: AddTrack after AddList or Finish");
    }
    if (!error_ && !ids_.empty() && track <= ids_.back()) {
      Fail(ErrorCode::kInvalidArgument, "segment builder: track " + std::to_string(track) +
                                            " added after track " + std::to_string(ids_.back()) +
                                            " (ids must ascend)");
    }
    if (error_) return std::unexpected(*error_);
    ids_.push_back(track);
    frames_.push_back(frame_count);
    counts_.push_back(0);
    side_offsets_.push_back(side_offsets_.back() + side_data.size());
    body_crc_ = Crc32c(side_data, body_crc_);
    Append(side_data);
    return Ok();
  }

  Status AddList(HashKey key, std::span<const SegmentPosting> postings) {
    if (!error_ && phase_ == Phase::kFinished) {
      Fail(ErrorCode::kInvalidArgument, "segment builder: AddList after Finish");
    }
    if (!error_) CheckList(key, postings);
    if (error_) return std::unexpected(*error_);
    if (phase_ == Phase::kTracks) phase_ = Phase::kLists;

    const uint64_t bucket = uint64_t{key} >> geometry_.shift;
    const bool first_in_bucket = !have_key_ || (prev_key_ >> geometry_.shift) != bucket;
    while (bucket_offsets_.size() <= bucket) bucket_offsets_.push_back(postings_size_);
    const uint64_t delta = first_in_bucket ? key - (bucket << geometry_.shift) : key - prev_key_;

    entry_.clear();
    PutVarint(entry_, delta);
    PutVarint(entry_, postings.size());
    if (postings.size() == 1) {
      PutVarint(entry_, postings[0].track_index);
      PutVarint(entry_, postings[0].time);
    } else {
      EncodeBits(postings);
    }
    body_crc_ = Crc32c(entry_, body_crc_);
    Append(entry_);
    postings_size_ += entry_.size();
    for (const SegmentPosting& p : postings) ++counts_[p.track_index];
    posting_count_ += postings.size();
    ++key_count_;
    prev_key_ = key;
    have_key_ = true;
    return Ok();
  }

  Result<uint64_t> Finish() {
    if (!error_ && phase_ == Phase::kFinished) {
      Fail(ErrorCode::kInvalidArgument, "segment builder: Finish called twice");
    }
    if (error_) return std::unexpected(*error_);
    phase_ = Phase::kFinished;
    const uint64_t side_size = side_offsets_.back();
    const uint64_t postings_offset = kSegmentPreambleSize + side_size;
    const uint64_t tracks_offset = postings_offset + postings_size_;
    while (bucket_offsets_.size() <= geometry_.count) bucket_offsets_.push_back(postings_size_);

    // Track table.
    uint32_t directory_crc = 0;
    std::vector<uint8_t> table;
    table.reserve(ids_.size() * kTrackRowBytes + 8);
    for (TrackId id : ids_) Put32(table, id);
    for (uint32_t f : frames_) Put32(table, f);
    for (uint64_t c : counts_) Put64(table, c);
    for (uint64_t o : side_offsets_) Put64(table, o);
    directory_crc = Crc32c(table, directory_crc);
    Append(table);
    const uint64_t buckets_offset = tracks_offset + table.size();
    table = {};

    // Bucket table, in chunks.
    const uint32_t width = postings_size_ <= std::numeric_limits<uint32_t>::max() ? 4 : 8;
    std::vector<uint8_t> chunk;
    chunk.reserve(64 * 1024);
    for (uint64_t offset : bucket_offsets_) {
      if (width == 4) {
        Put32(chunk, static_cast<uint32_t>(offset));
      } else {
        Put64(chunk, offset);
      }
      if (chunk.size() >= 64 * 1024 - 8) {
        directory_crc = Crc32c(chunk, directory_crc);
        Append(chunk);
        chunk.clear();
      }
    }
    directory_crc = Crc32c(chunk, directory_crc);
    Append(chunk);

    // Footer.
    std::vector<uint8_t> footer(kSegmentFooterSize, 0);
    uint8_t* f = footer.data();
    Store64(f + kFSideOffset, kSegmentPreambleSize);
    Store64(f + kFPostingsOffset, postings_offset);
    Store64(f + kFTracksOffset, tracks_offset);
    Store64(f + kFBucketsOffset, buckets_offset);
    Store64(f + kFTrackCount, ids_.size());
    Store64(f + kFKeyCount, key_count_);
    Store64(f + kFPostingCount, posting_count_);
    Store64(f + kFBucketCount, geometry_.count);
    Store32(f + kFMaxKey, params_.max_key);
    f[kFKeyShift] = static_cast<uint8_t>(geometry_.shift);
    f[kFOffsetWidth] = static_cast<uint8_t>(width);
    f[kFTimeWidth] = static_cast<uint8_t>(time_width_);
    Store32(f + kFFormatVersion, kSegmentFormatVersion);
    Store32(f + kFAlgorithmVersion, params_.algorithm_version);
    Store32(f + kFBodyCrc, body_crc_);
    Store32(f + kFDirectoryCrc, directory_crc);
    Store32(f + kFFooterCrc, Crc32c(std::span(footer).first(kFFooterCrc), preamble_crc_));
    std::memcpy(f + kFMagic, kMagic.data(), kMagic.size());
    Append(footer);
    Flush();
    if (error_) return std::unexpected(*error_);
    return written_;
  }

 private:
  enum class Phase { kTracks, kLists, kFinished };

  void Fail(ErrorCode code, std::string message) {
    if (!error_) error_ = Error(code, std::move(message));
  }

  void CheckList(HashKey key, std::span<const SegmentPosting> postings) {
    const std::string where = "segment builder: key " + std::to_string(key) + ": ";
    if (have_key_ && key <= prev_key_) {
      return Fail(ErrorCode::kInvalidArgument,
                  where + "keys must ascend (previous " + std::to_string(prev_key_) + ")");
    }
    if (key > params_.max_key) {
      return Fail(ErrorCode::kInvalidArgument,
                  where + "above max_key " + std::to_string(params_.max_key));
    }
    if (postings.empty()) return Fail(ErrorCode::kInvalidArgument, where + "no postings");
    for (size_t i = 0; i < postings.size(); ++i) {
      const SegmentPosting& p = postings[i];
      if (p.track_index >= ids_.size()) {
        return Fail(ErrorCode::kInvalidArgument,
                    where + "track index " + std::to_string(p.track_index) + " out of range");
      }
      if (p.time > params_.max_time) {
        return Fail(ErrorCode::kInvalidArgument,
                    where + "time " + std::to_string(p.time) + " above max_time");
      }
      if (i > 0) {
        const SegmentPosting& q = postings[i - 1];
        if (p.track_index < q.track_index || (p.track_index == q.track_index && p.time < q.time)) {
          return Fail(ErrorCode::kInvalidArgument, where + "postings not sorted");
        }
      }
    }
  }

  void EncodeBits(std::span<const SegmentPosting> postings) {
    deltas_.clear();
    uint32_t previous = 0;
    uint32_t max_time = 0;
    for (const SegmentPosting& p : postings) {
      deltas_.push_back(p.track_index - previous);
      previous = p.track_index;
      max_time = std::max(max_time, p.time);
    }
    const uint32_t rice = ChooseRice(deltas_);
    const uint32_t needed = static_cast<uint32_t>(std::bit_width(max_time));
    const uint32_t drop = std::min<uint32_t>(7, time_width_ - needed);
    const uint32_t width = time_width_ - drop;
    bits_.clear();
    BitWriter writer(bits_);
    for (size_t i = 0; i < postings.size(); ++i) {
      writer.PutZeros(deltas_[i] >> rice);
      writer.Put(1, 1);
      writer.Put(deltas_[i] & LowMask(rice), rice);
      writer.Put(postings[i].time, width);
    }
    writer.Finish();
    entry_.push_back(static_cast<uint8_t>(rice | (drop << 5)));
    PutVarint(entry_, bits_.size());
    entry_.insert(entry_.end(), bits_.begin(), bits_.end());
  }

  void Append(std::span<const uint8_t> bytes) {
    written_ += bytes.size();
    if (error_) return;
    if (buffer_.size() + bytes.size() > kSinkChunk && !buffer_.empty()) Flush();
    if (bytes.size() >= kSinkChunk) {
      if (!error_) {
        if (Status s = sink_(bytes); !s) error_ = s.error();
      }
      return;
    }
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  }

  void Flush() {
    if (error_ || buffer_.empty()) return;
    if (Status s = sink_(buffer_); !s) error_ = s.error();
    buffer_.clear();
  }

  Params params_;
  SegmentSink sink_;
  BucketGeometry geometry_;
  uint32_t time_width_;
  Phase phase_ = Phase::kTracks;
  std::optional<Error> error_;

  std::vector<uint8_t> buffer_;
  uint64_t written_ = 0;
  uint32_t preamble_crc_ = 0;
  uint32_t body_crc_ = 0;

  std::vector<TrackId> ids_;
  std::vector<uint32_t> frames_;
  std::vector<uint64_t> counts_;
  std::vector<uint64_t> side_offsets_;

  std::vector<uint64_t> bucket_offsets_;
  uint64_t postings_size_ = 0;
  uint64_t key_count_ = 0;
  uint64_t posting_count_ = 0;
  uint64_t prev_key_ = 0;
  bool have_key_ = false;

  std::vector<uint8_t> entry_;
  std::vector<uint8_t> bits_;
  std::vector<uint64_t> deltas_;
};

SegmentBuilder::SegmentBuilder(const Params& params, SegmentSink sink)
    : impl_(std::make_unique<Impl>(params, std::move(sink))) {}
SegmentBuilder::~SegmentBuilder() = default;

Status SegmentBuilder::AddTrack(TrackId track, uint32_t frame_count,
                                std::span<const uint8_t> side_data) {
  return impl_->AddTrack(track, frame_count, side_data);
}

Status SegmentBuilder::AddList(HashKey key, std::span<const SegmentPosting> postings) {
  return impl_->AddList(key, postings);
}

Result<uint64_t> SegmentBuilder::Finish() { return impl_->Finish(); }

// ---------------------------------------------------------------------------
// BuildSegment

namespace {

struct Entry {
  HashKey hash;
  uint32_t track_index;
  uint32_t time;
};

// Stable LSD radix sort of `entries` by hash, 16 bits per pass.
void SortByHash(std::vector<Entry>& entries, HashKey max_key) {
  std::vector<Entry> scratch(entries.size());
  const int passes = max_key >> 16 ? 2 : 1;
  std::vector<size_t> counts(size_t{1} << 16);
  for (int pass = 0; pass < passes; ++pass) {
    const int shift = 16 * pass;
    std::fill(counts.begin(), counts.end(), 0);
    for (const Entry& e : entries) ++counts[(e.hash >> shift) & 0xffff];
    size_t sum = 0;
    for (size_t& c : counts) {
      const size_t n = c;
      c = sum;
      sum += n;
    }
    for (const Entry& e : entries) scratch[counts[(e.hash >> shift) & 0xffff]++] = e;
    entries.swap(scratch);
  }
}

}  // namespace

Status WriteSegment(const std::vector<TrackFingerprint>& tracks, uint32_t algorithm_version,
                    const SegmentSink& sink) {
  // Tracks in id order; the first occurrence of a repeated id wins.
  std::vector<size_t> order(tracks.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tracks[a].track < tracks[b].track; });
  order.erase(std::unique(order.begin(), order.end(),
                          [&](size_t a, size_t b) { return tracks[a].track == tracks[b].track; }),
              order.end());

  // Entries in (track, time) order, then stably sorted by hash.
  size_t total = 0;
  for (size_t i : order) total += tracks[i].hashes.size();
  std::vector<Entry> entries;
  entries.reserve(total);
  HashKey max_key = 0;
  uint32_t max_time = 0;
  std::vector<HashEntry> sorted;
  for (uint32_t local = 0; local < order.size(); ++local) {
    sorted = tracks[order[local]].hashes;
    std::sort(sorted.begin(), sorted.end(),
              [](const HashEntry& a, const HashEntry& b) { return a.time < b.time; });
    for (const HashEntry& h : sorted) {
      entries.push_back({h.hash, local, h.time});
      max_key = std::max(max_key, h.hash);
      max_time = std::max(max_time, h.time);
    }
  }
  sorted = {};
  SortByHash(entries, max_key);
  uint64_t keys = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i == 0 || entries[i].hash != entries[i - 1].hash) ++keys;
  }

  SegmentBuilder builder({.algorithm_version = algorithm_version,
                          .max_key = max_key,
                          .max_time = max_time,
                          .key_count_hint = keys},
                         sink);
  for (size_t i : order) {
    const TrackFingerprint& t = tracks[i];
    if (Status s = builder.AddTrack(t.track, t.frame_count, t.side_data); !s) return s;
  }
  std::vector<SegmentPosting> list;
  for (size_t i = 0; i < entries.size();) {
    size_t j = i;
    list.clear();
    while (j < entries.size() && entries[j].hash == entries[i].hash) {
      list.push_back({entries[j].track_index, entries[j].time});
      ++j;
    }
    if (Status s = builder.AddList(entries[i].hash, list); !s) return s;
    i = j;
  }
  if (Result<uint64_t> size = builder.Finish(); !size) return std::unexpected(size.error());
  return Ok();
}

std::vector<uint8_t> BuildSegment(const std::vector<TrackFingerprint>& tracks,
                                  uint32_t algorithm_version) {
  std::vector<uint8_t> out;
  Status s = WriteSegment(tracks, algorithm_version, [&](std::span<const uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
    return Ok();
  });
  (void)s;  // the sink never fails and the input is always valid
  return out;
}

// ---------------------------------------------------------------------------
// SegmentView

Result<SegmentView> SegmentView::Open(std::span<const uint8_t> bytes, uint32_t algorithm_version) {
  const uint64_t size = bytes.size();
  if (size < kSegmentPreambleSize + kSegmentFooterSize) {
    return Corrupt(
        "segment is " + std::to_string(size) + " bytes, shorter than the smallest valid segment (" +
        std::to_string(kSegmentPreambleSize + kSegmentFooterSize) + " bytes): truncated?");
  }
  const uint8_t* d = bytes.data();
  if (std::memcmp(d, kMagic.data(), kMagic.size()) != 0) {
    return Corrupt("bad magic at the start: not an earshot index segment");
  }
  const uint64_t footer_start = size - kSegmentFooterSize;
  const uint8_t* f = d + footer_start;
  if (std::memcmp(f + kFMagic, kMagic.data(), kMagic.size()) != 0) {
    return Corrupt("bad magic at the end: segment truncated or damaged");
  }
  const uint32_t footer_crc =
      Crc32c(std::span(f, kFFooterCrc), Crc32c(bytes.first(kSegmentPreambleSize)));
  const bool footer_ok = footer_crc == Load32(f + kFFooterCrc);
  const uint32_t format_version = Load32(d + 8);
  if (format_version != kSegmentFormatVersion) {
    return MakeError(ErrorCode::kVersionMismatch,
                     "segment has format version " + std::to_string(format_version) +
                         ", this earshot reads version " + std::to_string(kSegmentFormatVersion) +
                         (footer_ok ? "" : " (or the segment is damaged)"));
  }
  if (!footer_ok) return Corrupt("footer checksum mismatch: segment damaged");
  if (Load32(f + kFFormatVersion) != format_version ||
      Load32(f + kFAlgorithmVersion) != Load32(d + 12)) {
    return Corrupt("footer and preamble disagree on versions");
  }

  SegmentView v;
  v.algorithm_version_ = Load32(d + 12);
  if (v.algorithm_version_ != algorithm_version) {
    return MakeError(ErrorCode::kVersionMismatch,
                     "segment was built with algorithm version " +
                         std::to_string(v.algorithm_version_) + ", this earshot uses " +
                         std::to_string(algorithm_version) + ": rebuild the catalog");
  }
  if (f[71] != 0 || Load32(f + 116) != 0 ||
      !std::all_of(f + 88, f + kFFooterCrc, [](uint8_t b) { return b == 0; })) {
    return Corrupt("reserved footer bytes are not zero");
  }

  const uint64_t side_offset = Load64(f + kFSideOffset);
  const uint64_t postings_offset = Load64(f + kFPostingsOffset);
  const uint64_t tracks_offset = Load64(f + kFTracksOffset);
  const uint64_t buckets_offset = Load64(f + kFBucketsOffset);
  v.track_count_ = Load64(f + kFTrackCount);
  v.key_count_ = Load64(f + kFKeyCount);
  v.posting_count_ = Load64(f + kFPostingCount);
  v.bucket_count_ = Load64(f + kFBucketCount);
  v.max_key_ = Load32(f + kFMaxKey);
  v.key_shift_ = f[kFKeyShift];
  v.offset_width_ = f[kFOffsetWidth];
  v.time_width_ = f[kFTimeWidth];
  v.body_crc_ = Load32(f + kFBodyCrc);

  if (side_offset != kSegmentPreambleSize || postings_offset < side_offset ||
      tracks_offset < postings_offset || buckets_offset < tracks_offset ||
      buckets_offset > footer_start) {
    return Corrupt("region offsets out of order or out of range");
  }
  if (v.track_count_ > std::numeric_limits<uint32_t>::max() ||
      v.track_count_ > size / kTrackRowBytes ||
      buckets_offset - tracks_offset != v.track_count_ * kTrackRowBytes + 8) {
    return Corrupt("track table size does not match the track count");
  }
  if (v.offset_width_ != 4 && v.offset_width_ != 8) return Corrupt("bad bucket offset width");
  if (v.bucket_count_ > size / v.offset_width_ ||
      footer_start - buckets_offset != (v.bucket_count_ + 1) * v.offset_width_) {
    return Corrupt("bucket table size does not match the bucket count");
  }
  if (v.key_shift_ > 32 || v.bucket_count_ != (uint64_t{v.max_key_} >> v.key_shift_) + 1) {
    return Corrupt("bucket count does not match the key range");
  }
  if (v.time_width_ > 32) return Corrupt("bad time width");
  if (v.key_count_ > v.posting_count_ || (v.posting_count_ > 0 && v.key_count_ == 0) ||
      v.key_count_ > uint64_t{v.max_key_} + 1) {
    return Corrupt("key and posting counts are inconsistent");
  }
  v.data_ = d;
  v.size_ = size;
  v.side_ = d + side_offset;
  v.side_size_ = postings_offset - side_offset;
  v.postings_ = d + postings_offset;
  v.postings_size_ = tracks_offset - postings_offset;
  if (v.offset_width_ == 4 && v.postings_size_ > std::numeric_limits<uint32_t>::max()) {
    return Corrupt("bucket offset width too small for the postings region");
  }
  const uint64_t t = v.track_count_;
  v.ids_ = d + tracks_offset;
  v.frames_ = v.ids_ + 4 * t;
  v.counts_ = v.frames_ + 4 * t;
  v.side_offsets_ = v.counts_ + 8 * t;
  v.buckets_ = d + buckets_offset;

  if (Crc32c(std::span(d + tracks_offset, footer_start - tracks_offset)) !=
      Load32(f + kFDirectoryCrc)) {
    return Corrupt("track or bucket table checksum mismatch: segment damaged");
  }
  if (v.BucketOffset(0) != 0 || v.BucketOffset(v.bucket_count_) != v.postings_size_) {
    return Corrupt("bucket table does not span the postings region");
  }
  uint64_t postings = 0;
  for (uint64_t i = 0; i < t; ++i) {
    if (i > 0 && Load32(v.ids_ + 4 * i) <= Load32(v.ids_ + 4 * (i - 1))) {
      return Corrupt("track ids are not ascending");
    }
    const uint64_t count = Load64(v.counts_ + 8 * i);
    if (count > v.posting_count_ - postings) return Corrupt("track posting counts too large");
    postings += count;
    if (Load64(v.side_offsets_ + 8 * (i + 1)) < Load64(v.side_offsets_ + 8 * i)) {
      return Corrupt("side data offsets are not ascending");
    }
  }
  if (postings != v.posting_count_) return Corrupt("track posting counts do not add up");
  if (Load64(v.side_offsets_) != 0 || Load64(v.side_offsets_ + 8 * t) != v.side_size_) {
    return Corrupt("side data offsets do not span the side data region");
  }
  return v;
}

uint64_t SegmentView::BucketOffset(uint64_t bucket) const {
  return offset_width_ == 4 ? Load32(buckets_ + 4 * bucket) : Load64(buckets_ + 8 * bucket);
}

template <class Out>
bool SegmentView::LookupImpl(HashKey hash, Out& out) const {
  if (key_count_ == 0 || hash > max_key_) return true;
  const uint64_t bucket = uint64_t{hash} >> key_shift_;
  const uint64_t start = BucketOffset(bucket);
  const uint64_t stop = BucketOffset(bucket + 1);
  if (start > stop || stop > postings_size_) return false;
  const uint8_t* p = postings_ + start;
  const uint8_t* const end = postings_ + stop;
  uint64_t key = bucket << key_shift_;
  bool first = true;
  while (p < end) {
    uint64_t delta = 0;
    uint64_t n = 0;
    if (!GetVarint(p, end, delta) || !GetVarint(p, end, n)) return false;
    if ((!first && delta == 0) || delta > std::numeric_limits<uint32_t>::max()) return false;
    first = false;
    key += delta;
    if (key > hash) return true;
    if (key == hash) {
      return DecodeList(p, end, n, ListContext{track_count_, time_width_, data_ + size_}, out);
    }
    if (!SkipList(p, end, n)) return false;
  }
  return true;
}

void SegmentView::Lookup(HashKey hash, std::vector<Posting>& out) const {
  const size_t before = out.size();
  PostingOut sink{out, ids_};
  if (!LookupImpl(hash, sink)) out.resize(before);
}

void SegmentView::LookupLocal(HashKey hash, std::vector<SegmentPosting>& out) const {
  const size_t before = out.size();
  LocalOut sink{out};
  if (!LookupImpl(hash, sink)) out.resize(before);
}

std::optional<uint32_t> SegmentView::FindTrack(TrackId track) const {
  uint64_t lo = 0;
  uint64_t hi = track_count_;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (Load32(ids_ + 4 * mid) < track) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < track_count_ && Load32(ids_ + 4 * lo) == track) return static_cast<uint32_t>(lo);
  return std::nullopt;
}

TrackId SegmentView::TrackAt(uint32_t index) const { return Load32(ids_ + 4 * size_t{index}); }

uint32_t SegmentView::FrameCountAt(uint32_t index) const {
  return Load32(frames_ + 4 * size_t{index});
}

uint64_t SegmentView::PostingCountAt(uint32_t index) const {
  return Load64(counts_ + 8 * size_t{index});
}

std::span<const uint8_t> SegmentView::SideDataAt(uint32_t index) const {
  const uint64_t begin = Load64(side_offsets_ + 8 * size_t{index});
  const uint64_t end = Load64(side_offsets_ + 8 * (size_t{index} + 1));
  return std::span(side_ + begin, end - begin);
}

bool SegmentView::HasTrack(TrackId track) const { return FindTrack(track).has_value(); }

std::span<const uint8_t> SegmentView::SideData(TrackId track) const {
  const std::optional<uint32_t> index = FindTrack(track);
  return index ? SideDataAt(*index) : std::span<const uint8_t>();
}

uint32_t SegmentView::FrameCount(TrackId track) const {
  const std::optional<uint32_t> index = FindTrack(track);
  return index ? FrameCountAt(*index) : 0;
}

Status SegmentView::Verify() const {
  const uint64_t body_size = static_cast<uint64_t>(postings_ + postings_size_ - side_);
  if (Crc32c(std::span(side_, body_size)) != body_crc_) {
    return Corrupt("side data or postings checksum mismatch: segment damaged");
  }
  std::vector<uint64_t> counts(track_count_, 0);
  std::vector<SegmentPosting> list;
  uint64_t keys = 0;
  uint64_t postings = 0;
  SegmentCursor cursor(*this);
  for (;;) {
    Result<bool> more = cursor.Next();
    if (!more) return std::unexpected(more.error());
    if (!*more) break;
    list.clear();
    if (Status s = cursor.ReadPostings(list); !s) return s;
    for (const SegmentPosting& p : list) ++counts[p.track_index];
    postings += list.size();
    ++keys;
  }
  if (keys != key_count_) {
    return Corrupt("segment holds " + std::to_string(keys) + " keys, footer says " +
                   std::to_string(key_count_));
  }
  if (postings != posting_count_) {
    return Corrupt("segment holds " + std::to_string(postings) + " postings, footer says " +
                   std::to_string(posting_count_));
  }
  for (uint64_t i = 0; i < track_count_; ++i) {
    if (counts[i] != PostingCountAt(static_cast<uint32_t>(i))) {
      return Corrupt("posting count of track " + std::to_string(TrackAt(static_cast<uint32_t>(i))) +
                     " does not match its postings");
    }
  }
  return Ok();
}

// ---------------------------------------------------------------------------
// SegmentCursor

SegmentCursor::SegmentCursor(const SegmentView& segment) : segment_(segment) {}

Result<bool> SegmentCursor::Next() {
  if (done_) return false;
  const SegmentView& s = segment_;
  for (;;) {
    if (!in_bucket_) {
      if (bucket_ >= s.bucket_count_) {
        done_ = true;
        return false;
      }
      const uint64_t start = s.BucketOffset(bucket_);
      const uint64_t stop = s.BucketOffset(bucket_ + 1);
      if (start > stop || stop > s.postings_size_) {
        done_ = true;
        return Corrupt("bucket " + std::to_string(bucket_) + " offsets out of range");
      }
      next_ = s.postings_ + start;
      bucket_end_ = s.postings_ + stop;
      in_bucket_ = true;
      key_ = bucket_ << s.key_shift_;
      count_ = 0;  // no entry read in this bucket yet
    }
    if (next_ == bucket_end_) {
      ++bucket_;
      in_bucket_ = false;
      continue;
    }
    const bool first = count_ == 0;
    uint64_t delta = 0;
    const uint8_t* p = next_;
    if (!GetVarint(p, bucket_end_, delta) || !GetVarint(p, bucket_end_, count_) || count_ == 0 ||
        (!first && delta == 0) || delta > std::numeric_limits<uint32_t>::max()) {
      done_ = true;
      return Corrupt("damaged key entry in bucket " + std::to_string(bucket_));
    }
    key_ += delta;
    if ((key_ >> s.key_shift_) != bucket_ || key_ > s.max_key_) {
      done_ = true;
      return Corrupt("key " + std::to_string(key_) + " stored in the wrong bucket");
    }
    payload_ = p;
    if (!SkipList(p, bucket_end_, count_)) {
      done_ = true;
      return Corrupt("postings of key " + std::to_string(key_) + " run past their bucket");
    }
    payload_end_ = p;
    next_ = p;
    return true;
  }
}

Status SegmentCursor::ReadPostings(std::vector<SegmentPosting>& out) const {
  const size_t before = out.size();
  const uint8_t* p = payload_;
  LocalOut sink{out};
  const bool ok = DecodeList(
      p, payload_end_, count_,
      ListContext{segment_.track_count_, segment_.time_width_, segment_.data_ + segment_.size_},
      sink);
  if (!ok || p != payload_end_) {
    out.resize(before);
    return Corrupt("postings of key " + std::to_string(key_) + " are damaged");
  }
  return Ok();
}

// ---------------------------------------------------------------------------
// MergeSegments

Status MergeSegments(std::span<const MergeSource> sources, uint32_t algorithm_version,
                     const SegmentSink& sink, const std::function<bool()>& cancelled) {
  constexpr uint32_t kDropped = std::numeric_limits<uint32_t>::max();
  struct Live {
    TrackId id;
    uint32_t source;
    uint32_t index;
  };
  std::vector<Live> live;
  std::vector<std::vector<uint32_t>> remap(sources.size());
  HashKey max_key = 0;
  uint32_t max_time = 0;
  double union_keys_missing = 1.0;  // estimate of the fraction of keys no source has
  uint64_t max_keys = 0;
  uint64_t sum_keys = 0;
  for (uint32_t s = 0; s < sources.size(); ++s) {
    const SegmentView& seg = *sources[s].segment;
    const std::span<const TrackId> removed = sources[s].removed;
    remap[s].assign(seg.TrackCount(), kDropped);
    for (uint32_t i = 0; i < seg.TrackCount(); ++i) {
      const TrackId id = seg.TrackAt(i);
      if (!std::binary_search(removed.begin(), removed.end(), id)) live.push_back({id, s, i});
    }
    if (seg.key_count() > 0) max_key = std::max(max_key, seg.max_key());
    max_time = std::max(max_time, static_cast<uint32_t>(LowMask(seg.time_width())));
    max_keys = std::max(max_keys, seg.key_count());
    sum_keys += seg.key_count();
  }
  for (uint32_t s = 0; s < sources.size(); ++s) {
    union_keys_missing *= 1.0 - static_cast<double>(sources[s].segment->key_count()) /
                                    (static_cast<double>(max_key) + 1.0);
  }
  const double estimate = (static_cast<double>(max_key) + 1.0) * (1.0 - union_keys_missing);
  const uint64_t hint = std::clamp<uint64_t>(static_cast<uint64_t>(std::max(estimate, 0.0)),
                                             max_keys, std::max(sum_keys, max_keys));

  std::sort(live.begin(), live.end(), [](const Live& a, const Live& b) { return a.id < b.id; });
  for (size_t i = 1; i < live.size(); ++i) {
    if (live[i].id == live[i - 1].id) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "merge: track " + std::to_string(live[i].id) + " is live in two segments");
    }
  }

  SegmentBuilder builder({.algorithm_version = algorithm_version,
                          .max_key = max_key,
                          .max_time = max_time,
                          .key_count_hint = hint},
                         sink);
  for (uint32_t i = 0; i < live.size(); ++i) {
    const Live& t = live[i];
    const SegmentView& seg = *sources[t.source].segment;
    remap[t.source][t.index] = i;
    if (Status s = builder.AddTrack(t.id, seg.FrameCountAt(t.index), seg.SideDataAt(t.index)); !s) {
      return s;
    }
  }

  std::vector<SegmentCursor> cursors;
  std::vector<bool> active(sources.size());
  cursors.reserve(sources.size());
  for (uint32_t s = 0; s < sources.size(); ++s) {
    cursors.emplace_back(*sources[s].segment);
    Result<bool> more = cursors[s].Next();
    if (!more) return std::unexpected(more.error().Wrap("merge source " + std::to_string(s)));
    active[s] = *more;
  }
  const auto by_track_time = [](const SegmentPosting& a, const SegmentPosting& b) {
    return a.track_index != b.track_index ? a.track_index < b.track_index : a.time < b.time;
  };
  std::vector<SegmentPosting> merged;
  std::vector<SegmentPosting> list;
  for (uint64_t step = 0;; ++step) {
    if (cancelled && step % 4096 == 0 && cancelled()) {
      return MakeError(ErrorCode::kUnavailable, "merge cancelled");
    }
    bool any = false;
    HashKey key = 0;
    for (uint32_t s = 0; s < sources.size(); ++s) {
      if (active[s] && (!any || cursors[s].key() < key)) {
        key = cursors[s].key();
        any = true;
      }
    }
    if (!any) break;
    merged.clear();
    for (uint32_t s = 0; s < sources.size(); ++s) {
      if (!active[s] || cursors[s].key() != key) continue;
      list.clear();
      if (Status st = cursors[s].ReadPostings(list); !st) {
        return std::unexpected(st.error().Wrap("merge source " + std::to_string(s)));
      }
      const size_t run = merged.size();
      for (const SegmentPosting& p : list) {
        const uint32_t to = remap[s][p.track_index];
        if (to != kDropped) merged.push_back({to, p.time});
      }
      if (run > 0 && merged.size() > run) {
        std::inplace_merge(merged.begin(), merged.begin() + static_cast<ptrdiff_t>(run),
                           merged.end(), by_track_time);
      }
      Result<bool> more = cursors[s].Next();
      if (!more) return std::unexpected(more.error().Wrap("merge source " + std::to_string(s)));
      active[s] = *more;
    }
    if (!merged.empty()) {
      if (Status st = builder.AddList(key, merged); !st) return st;
    }
  }
  if (Result<uint64_t> size = builder.Finish(); !size) return std::unexpected(size.error());
  return Ok();
}

}  // namespace earshot::recognition
