// Internal helpers of src/anomaly: a little-endian byte writer/reader for the
// persisted per-channel state, framed as
//   magic (4 bytes) | version (1 byte) | payload | FNV-1a 64 of all before (8 bytes).
// Independent of the host's byte order. Not part of the public API.
//
// Thread safety: plain values, one per caller.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::anomaly::internal {

inline uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

class ByteWriter {
 public:
  ByteWriter(std::string_view magic, uint8_t version) {
    out_.append(magic);
    out_.push_back(static_cast<char>(version));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void F64(double v) { U64(std::bit_cast<uint64_t>(v)); }
  void F32(float v) { U32(std::bit_cast<uint32_t>(v)); }
  void Bytes(std::string_view b) {
    U32(static_cast<uint32_t>(b.size()));
    out_.append(b);
  }
  // Appends the checksum and returns the bytes.
  std::string Finish() && {
    U64(Fnv1a64(out_));
    return std::move(out_);
  }

 private:
  std::string out_;
};

class ByteReader {
 public:
  // Checks framing, magic, version (<= max_version) and checksum; `what`
  // names the state in error messages.
  static Result<ByteReader> Open(std::string_view bytes, std::string_view magic,
                                 uint8_t max_version, std::string_view what) {
    const size_t frame = magic.size() + 1 + 8;
    if (bytes.size() < frame) {
      return MakeError(ErrorCode::kCorruptData, std::string(what) + " state is truncated (" +
                                                    std::to_string(bytes.size()) + " bytes)");
    }
    if (bytes.substr(0, magic.size()) != magic) {
      return MakeError(ErrorCode::kCorruptData,
                       std::string(what) + " state does not start with \"" + std::string(magic) +
                           "\": not a saved " + std::string(what) + " state");
    }
    const uint8_t version = static_cast<uint8_t>(bytes[magic.size()]);
    if (version == 0 || version > max_version) {
      return MakeError(ErrorCode::kVersionMismatch,
                       std::string(what) + " state has format version " + std::to_string(version) +
                           "; this build reads up to " + std::to_string(max_version));
    }
    ByteReader tail(bytes.substr(bytes.size() - 8));
    const uint64_t stored = tail.U64();
    if (stored != Fnv1a64(bytes.substr(0, bytes.size() - 8))) {
      return MakeError(ErrorCode::kCorruptData,
                       std::string(what) + " state fails its checksum (damaged bytes)");
    }
    ByteReader r(bytes.substr(magic.size() + 1, bytes.size() - frame));
    r.version_ = version;
    return r;
  }

  explicit ByteReader(std::string_view payload) : in_(payload) {}

  uint8_t version() const { return version_; }
  bool ok() const { return ok_; }
  bool AtEnd() const { return pos_ == in_.size(); }

  uint64_t U64() {
    uint64_t v = 0;
    if (!Need(8)) return 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(in_[pos_ + i])} << (8 * i);
    pos_ += 8;
    return v;
  }
  uint32_t U32() {
    uint32_t v = 0;
    if (!Need(4)) return 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(in_[pos_ + i])} << (8 * i);
    pos_ += 4;
    return v;
  }
  uint8_t U8() {
    if (!Need(1)) return 0;
    return static_cast<uint8_t>(in_[pos_++]);
  }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  double F64() { return std::bit_cast<double>(U64()); }
  float F32() { return std::bit_cast<float>(U32()); }
  std::string_view Bytes() {
    const uint32_t n = U32();
    if (!Need(n)) return {};
    std::string_view b = in_.substr(pos_, n);
    pos_ += n;
    return b;
  }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
  uint8_t version_ = 0;
};

}  // namespace earshot::anomaly::internal
