// Catalog manifests: a list of reference files to register, each with its
// metadata and business rule, written by a rights holder.
//
// TSV (.tsv): the first non-blank, non-comment line is a header naming the
// columns, separated by tabs, in any order:
//   path  title  artist  rights_holder  isrc  rule  tags
// Only `path` is required. Every following line has exactly one field per
// column. Fields are trimmed of surrounding spaces; there is no quoting, so
// fields cannot contain tabs. `tags` is `key=value;key2=value2` (values cannot
// contain ';'; use JSON for that). Blank lines and lines starting with '#' are
// skipped; CRLF line ends and a UTF-8 byte-order mark are accepted.
//
// JSON (.json): an array of objects with the same keys; `tags` is an object of
// string values. Only `path` is required; null counts as absent.
//
// In both formats: unknown columns/keys are errors (they are usually typos);
// an empty title stays empty (the caller defaults it to the file stem); an
// empty rule is nullopt (the caller applies its default); ISRCs are
// normalised (NormalizeIsrc); relative paths are resolved against the
// manifest's folder. Files are not opened or checked here.
//
// Errors are kInvalidArgument and say where and what, e.g.
//   "manifest /m/a.tsv: line 4: unknown business rule \"blok\" (allowed:
//    block, mute, allow, track)"
//   "manifest /m/a.json: element [2]: \"path\" is missing"
//
// Thread safety: free functions without shared state.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "store/catalog_types.h"

namespace earshot::store {

enum class ManifestFormat { kTsv, kJson };

// One reference file listed in a manifest.
struct ManifestItem {
  std::filesystem::path path;        // absolute when the manifest's folder is
  TrackMetadata metadata;            // title may be empty
  std::optional<BusinessRule> rule;  // nullopt when the manifest gives none

  friend bool operator==(const ManifestItem&, const ManifestItem&) = default;
};

// The format for a manifest file name: ".tsv" or ".json", ignoring case;
// anything else is kInvalidArgument.
Result<ManifestFormat> ManifestFormatFromPath(const std::filesystem::path& path);

// Reads and parses the manifest at `manifest_path`, choosing the format by
// extension and resolving relative paths against the manifest's folder.
// Errors start with "manifest <path>: "; a missing file is kNotFound, an
// unreadable one kIoError.
Result<std::vector<ManifestItem>> ParseManifest(const std::filesystem::path& manifest_path);

// The I/O-free core of ParseManifest: parses `text` and resolves relative
// paths against `base_dir` (left relative when `base_dir` is empty). Error
// messages start with "line N: " (TSV, counting from 1) or "element [i]: "
// (JSON, counting from 0).
Result<std::vector<ManifestItem>> ParseManifestText(std::string_view text, ManifestFormat format,
                                                    const std::filesystem::path& base_dir);

}  // namespace earshot::store
