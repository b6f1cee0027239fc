// The catalog: metadata of every registered reference recording, in SQLite.
//
// The catalog assigns TrackIds (SQLite INTEGER PRIMARY KEY AUTOINCREMENT, so
// an id is never handed out twice, even after Remove) and is the source of
// truth for metadata and business rules; the fingerprint index only stores
// prints under those ids.
//
// Schema: tracks(id, kind, source, content_sha256, title, artist,
// rights_holder, isrc, rule, duration_s, added_at_unix_ms, algorithm_version)
// and track_tags(track_id -> tracks.id ON DELETE CASCADE, key, value). Enums
// are stored by their names ("block", "audio"). The schema evolves through the
// ordered migration list in catalog_db.cc (PRAGMA user_version); add a step
// there to add tables.
//
// Thread safety: one connection guarded by a mutex; every method may be called
// from many threads at once. Several CatalogDb objects (or processes) may open
// the same file: SQLite's locks and a 5 s busy timeout arbitrate, and a
// timeout is kUnavailable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "store/catalog_types.h"
#include "store/sqlite.h"

namespace earshot::store {

class CatalogDb {
 public:
  // Opens the catalog at `db_path`, creating the file (and its folder) when
  // missing, and migrates its schema to the latest version. A file that is
  // not a SQLite database, or a damaged one, is kCorruptData naming the path;
  // one written by a newer earshot is kVersionMismatch.
  static Result<std::unique_ptr<CatalogDb>> Open(const std::filesystem::path& db_path);

  // Registers `entry` and returns its new id; entry.id is ignored. When
  // entry.added_at_unix_ms is 0 the current time is stored. Normalises the
  // ISRC and digest (see NormalizeIsrc, NormalizeSha256) before storing.
  // Errors: kInvalidArgument for an empty title, a malformed ISRC or digest,
  // an empty tag key or a negative/non-finite duration; kAlreadyExists when
  // a non-empty content_sha256 is already registered (the message names that
  // track); kResourceExhausted once ids pass the TrackId range.
  Result<TrackId> Insert(CatalogEntry entry);

  // The entry with `id`; kNotFound with the id in the message.
  Result<CatalogEntry> Get(TrackId id) const;

  // Filters combine with AND; unset filters match everything.
  struct ListFilter {
    std::optional<BusinessRule> rule;
    std::optional<MediaKind> kind;
    // Substring of the title, artist or rights holder, ignoring ASCII case.
    std::string text;
    size_t limit = 0;   // at most this many entries; 0 = no limit
    size_t offset = 0;  // skip this many matching entries first
  };
  // Matching entries in ascending id order (registration order).
  Result<std::vector<CatalogEntry>> List(const ListFilter& filter) const;

  // The entry whose content has this digest (either case), or nullopt.
  // kInvalidArgument when `sha` is not 64 hex digits.
  Result<std::optional<CatalogEntry>> FindBySha256(const std::string& sha) const;

  // Deletes the entry and its tags; kNotFound if absent. The id is retired.
  Status Remove(TrackId id);

  // Changes the business rule of one entry; kNotFound if absent.
  Status UpdateRule(TrackId id, BusinessRule rule);

  struct Stats {
    uint64_t tracks = 0;  // entries of every kind
    double total_duration_s = 0;
    std::map<BusinessRule, uint64_t> by_rule;  // every rule, zero counts included
    // Per media kind (both kinds present, zero counts included).
    std::map<MediaKind, uint64_t> tracks_by_kind;
    std::map<MediaKind, double> duration_s_by_kind;
  };
  Result<Stats> GetStats() const;

  const std::filesystem::path& path() const { return path_; }

 private:
  // Lets Open() use std::make_unique while keeping the constructor out of
  // reach of everyone else.
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  CatalogDb(PrivateTag, Database db, std::filesystem::path path);

 private:
  // REQUIRES: mu_ held.
  Result<std::vector<CatalogEntry>> LoadTags(std::vector<CatalogEntry> entries) const;

  const std::filesystem::path path_;
  mutable std::mutex mu_;
  mutable Database db_;  // guarded by mu_
};

}  // namespace earshot::store
