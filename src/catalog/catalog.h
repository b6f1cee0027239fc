// A catalog directory: reference metadata (SQLite) beside the fingerprint
// index, plus the work that fills them (decode, fingerprint).
//
//   DIR/catalog.db   track metadata and business rules (store::CatalogDb)
//   DIR/index/       the segmented fingerprint index (index::IndexStore)
//
// Track ids come from the metadata database (never reused) and key the index.
// Adding is two-phase: rows are inserted, then the batch's fingerprints are
// added to the index in one segment; if that fails the rows are removed
// again. A crash between the two leaves rows without fingerprints: the next
// writable Open removes them and says so (see OpenReport).
//
// Thread safety: all methods may be called from several threads; Add and
// Remove serialise on an internal lock. Snapshot() readers never block.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "index/index_store.h"
#include "recognition/fingerprint_params.h"
#include "recognition/index_reader.h"
#include "store/catalog_db.h"

namespace earshot::catalog {

using recognition::TrackId;

struct CatalogOptions {
  bool create_if_missing = true;
  bool read_only = false;     // open for identification only (no add/remove, no repair)
  bool background_merge = true;
};

// One reference recording to add.
struct AddItem {
  std::filesystem::path path;
  store::TrackMetadata metadata;  // empty title: the file name without extension
  store::BusinessRule rule = store::BusinessRule::kTrack;
};

// What happened to one AddItem: the stored entry, or why it was refused.
struct AddOutcome {
  std::filesystem::path path;
  Result<store::CatalogEntry> entry;
};

struct AddProgress {
  size_t done = 0;               // items finished (added or failed)
  size_t total = 0;
  double audio_seconds = 0;      // audio fingerprinted so far
};

struct CatalogStats {
  uint64_t tracks = 0;
  double audio_seconds = 0;
  uint64_t postings = 0;
  uint64_t index_bytes = 0;
  uint64_t segments = 0;
  std::map<store::BusinessRule, uint64_t> by_rule;
  uint32_t algorithm_version = 0;
};

class Catalog {
 public:
  // Opens (or creates) a catalog directory. Repairs interrupted adds unless
  // read-only; `repaired` (optional) receives a line per repaired track.
  static Result<std::unique_ptr<Catalog>> Open(const std::filesystem::path& dir,
                                               const CatalogOptions& options,
                                               std::vector<std::string>* repaired = nullptr);

  // Decodes and fingerprints the items on `jobs` threads and adds them.
  // Items are independent: one bad file does not stop the others. A file
  // whose content is already catalogued is refused (kAlreadyExists).
  // `progress` (optional) is called from the calling thread after each item.
  std::vector<AddOutcome> Add(const std::vector<AddItem>& items, int jobs,
                              const std::function<void(const AddProgress&)>& progress = {});

  // Removes tracks (metadata and fingerprints); repeated ids count once.
  // Unknown ids: kNotFound, and nothing is removed.
  Status Remove(const std::vector<TrackId>& ids);

  Result<std::vector<store::CatalogEntry>> List(const store::CatalogDb::ListFilter& filter) const;
  Result<store::CatalogEntry> Get(TrackId id) const;
  Result<CatalogStats> Stats() const;

  // The fingerprint index as of now (immutable; see IndexReader).
  std::shared_ptr<const recognition::IndexReader> Snapshot() const;
  // Picks up tracks added by another process since Open.
  Status Refresh();

  const recognition::FingerprintParams& params() const { return params_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  Catalog(std::filesystem::path dir, std::unique_ptr<store::CatalogDb> db,
          std::unique_ptr<index::IndexStore> index);
  Status Repair(std::vector<std::string>* repaired);

  std::filesystem::path dir_;
  recognition::FingerprintParams params_;
  std::unique_ptr<store::CatalogDb> db_;
  std::unique_ptr<index::IndexStore> index_;
  std::mutex write_mu_;  // serialises Add and Remove
};

// Catalog entries by track id, read from the metadata once each (a track
// removed meanwhile is remembered as absent). For one identification or one
// stream scan; the catalog is borrowed. Thread safety: one thread at a time.
class EntryCache {
 public:
  explicit EntryCache(const Catalog& catalog) : catalog_(catalog) {}
  // The entry, or nullptr when the track is not (or no longer) catalogued.
  const store::CatalogEntry* Find(TrackId id) {
    auto it = cache_.find(id);
    if (it == cache_.end()) {
      auto entry = catalog_.Get(id);
      it = cache_
               .emplace(id, entry ? std::optional<store::CatalogEntry>(std::move(*entry))
                                  : std::nullopt)
               .first;
    }
    return it->second ? &*it->second : nullptr;
  }

 private:
  const Catalog& catalog_;
  std::map<TrackId, std::optional<store::CatalogEntry>> cache_;
};

// Audio files a folder holds (recursively), by extension, sorted by path.
std::vector<std::filesystem::path> FindAudioFiles(const std::filesystem::path& folder);

}  // namespace earshot::catalog
