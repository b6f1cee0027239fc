#include "index/manifest.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <span>

#include "recognition/index_segment.h"

namespace earshot::index {
namespace {

constexpr std::string_view kHeader = "earshot-index-manifest";
constexpr std::string_view kSegmentPrefix = "seg-";
constexpr std::string_view kSegmentSuffix = ".eseg";

uint32_t TextCrc(std::string_view text) {
  return recognition::Crc32c(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::vector<std::string_view> Split(std::string_view line, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = line.find(separator, start);
    parts.push_back(
        line.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

template <class T>
bool ParseNumber(std::string_view text, T& value, int base = 10) {
  if (text.empty() || text.size() > 20) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  return ec == std::errc() && end == text.data() + text.size();
}

std::unexpected<Error> Corrupt(size_t line, std::string what) {
  return MakeError(ErrorCode::kCorruptData, "line " + std::to_string(line) + ": " + what);
}

}  // namespace

std::string SegmentFileName(uint64_t number) {
  char name[64];
  std::snprintf(name, sizeof name, "seg-%016llx.eseg", static_cast<unsigned long long>(number));
  return name;
}

std::optional<uint64_t> ParseSegmentFileName(std::string_view name) {
  if (name.size() != kSegmentPrefix.size() + 16 + kSegmentSuffix.size() ||
      !name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) {
    return std::nullopt;
  }
  const std::string_view digits = name.substr(kSegmentPrefix.size(), 16);
  if (!std::all_of(digits.begin(), digits.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return std::nullopt;
  }
  uint64_t number = 0;
  if (!ParseNumber(digits, number, 16)) return std::nullopt;
  return number;
}

std::string EncodeManifest(const Manifest& m) {
  std::string out;
  out.append(kHeader).append(" ").append(std::to_string(kManifestFormatVersion)).append("\n");
  out.append("algorithm ").append(std::to_string(m.algorithm_version)).append("\n");
  out.append("generation ").append(std::to_string(m.generation)).append("\n");
  out.append("next-segment ").append(std::to_string(m.next_segment)).append("\n");
  for (const ManifestSegment& s : m.segments) {
    out.append("segment ").append(s.file).append(" ").append(std::to_string(s.size)).append(" ");
    if (s.removed.empty()) out.append("-");
    for (size_t i = 0; i < s.removed.size(); ++i) {
      if (i > 0) out.append(",");
      out.append(std::to_string(s.removed[i]));
    }
    out.append("\n");
  }
  char crc[32];
  std::snprintf(crc, sizeof crc, "crc32c %08x\n", TextCrc(out));
  out.append(crc);
  return out;
}

Result<Manifest> DecodeManifest(std::string_view text) {
  if (text.empty()) return MakeError(ErrorCode::kCorruptData, "empty file");
  if (text.back() != '\n')
    return MakeError(ErrorCode::kCorruptData, "truncated (no final newline)");
  std::vector<std::string_view> lines = Split(text.substr(0, text.size() - 1), '\n');

  // The first line decides the format version; the checksum covers the rest.
  const std::vector<std::string_view> head = Split(lines[0], ' ');
  if (head.size() != 2 || head[0] != kHeader) return Corrupt(1, "not an earshot index manifest");
  uint32_t version = 0;
  if (!ParseNumber(head[1], version)) return Corrupt(1, "bad format version");

  const std::string_view last = lines.back();
  const size_t body_size = text.size() - last.size() - 1;
  uint32_t stored_crc = 0;
  const bool crc_ok = lines.size() >= 2 && last.starts_with("crc32c ") && last.size() == 15 &&
                      ParseNumber(last.substr(7), stored_crc, 16) &&
                      stored_crc == TextCrc(text.substr(0, body_size));
  if (version != kManifestFormatVersion) {
    return MakeError(ErrorCode::kVersionMismatch,
                     "manifest format version " + std::to_string(version) +
                         ", this earshot reads version " + std::to_string(kManifestFormatVersion));
  }
  if (!crc_ok)
    return MakeError(ErrorCode::kCorruptData, "checksum mismatch: file damaged or truncated");

  Manifest m;
  const char* const fields[] = {"algorithm", "generation", "next-segment"};
  if (lines.size() < 5) return Corrupt(lines.size(), "missing lines");
  for (size_t i = 0; i < 3; ++i) {
    const std::vector<std::string_view> parts = Split(lines[i + 1], ' ');
    uint64_t value = 0;
    if (parts.size() != 2 || parts[0] != fields[i] || !ParseNumber(parts[1], value)) {
      return Corrupt(i + 2, std::string("expected \"") + fields[i] + " <number>\"");
    }
    if (i == 0) {
      if (value > UINT32_MAX) return Corrupt(2, "algorithm version out of range");
      m.algorithm_version = static_cast<uint32_t>(value);
    } else if (i == 1) {
      m.generation = value;
    } else {
      m.next_segment = value;
    }
  }
  for (size_t i = 4; i + 1 < lines.size(); ++i) {
    const std::vector<std::string_view> parts = Split(lines[i], ' ');
    ManifestSegment s;
    if (parts.size() != 4 || parts[0] != "segment") {
      return Corrupt(i + 1, "expected \"segment <file> <bytes> <removed ids>\"");
    }
    const std::optional<uint64_t> number = ParseSegmentFileName(parts[1]);
    if (!number) return Corrupt(i + 1, "bad segment file name");
    if (*number >= m.next_segment) return Corrupt(i + 1, "segment number not below next-segment");
    s.file = std::string(parts[1]);
    if (!ParseNumber(parts[2], s.size)) return Corrupt(i + 1, "bad segment size");
    if (parts[3] != "-") {
      for (std::string_view id : Split(parts[3], ',')) {
        recognition::TrackId track = 0;
        if (!ParseNumber(id, track)) return Corrupt(i + 1, "bad removed track id");
        if (!s.removed.empty() && track <= s.removed.back()) {
          return Corrupt(i + 1, "removed track ids not ascending");
        }
        s.removed.push_back(track);
      }
    }
    for (const ManifestSegment& other : m.segments) {
      if (other.file == s.file) return Corrupt(i + 1, "segment listed twice");
    }
    m.segments.push_back(std::move(s));
  }
  return m;
}

}  // namespace earshot::index
