// A catalog directory: reference metadata (SQLite) beside the fingerprint
// index, plus the work that fills them (decode, fingerprint).
//
//   DIR/catalog.db       track metadata and business rules (store::CatalogDb)
//   DIR/index/           the segmented audio fingerprint index (index::IndexStore)
//   DIR/video/{id}.vfp   the frame hashes of one video reference
//                        (video::HashIndex::Serialize, ref_id = track id)
//
// Track ids come from the metadata database (never reused) and key the index
// and the video files; a row's `kind` says which of the two holds its prints.
// Adding is two-phase: rows are inserted, then the fingerprints are stored
// (audio: the batch's prints go into the index in one segment; video: each
// reference's file is written atomically, temp + fsync + rename); if that
// fails the rows are removed again. A crash between the two leaves rows
// without fingerprints: the next writable Open removes them and says so
// (`repaired`), and deletes video files that have no row (an interrupted
// Remove).
//
// Video references are hashed with the frozen parameters of
// video::VideoParams (default-constructed): frames sampled at reference_fps,
// scaled to max_width, every view of quality >= matcher.min_quality stored.
// All of them are loaded into memory at Open and held in one search index
// (about 160 bytes per stored view; 8 views per frame at 4 frames per second
// is about 18 MB per hour of video).
//
// Thread safety: all methods may be called from several threads; Add,
// AddVideo and Remove serialise on an internal lock. Snapshot() readers never
// block; VideoSnapshot() blocks only while the combined video index is rebuilt
// after a change.
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
#include "video/hash_index.h"
#include "video/video_params.h"

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
  double audio_seconds = 0;  // audio (AddVideo: video) fingerprinted so far
};

struct CatalogStats {
  uint64_t tracks = 0;       // audio references
  double audio_seconds = 0;  // their length
  uint64_t postings = 0;
  uint64_t index_bytes = 0;
  uint64_t segments = 0;
  std::map<store::BusinessRule, uint64_t> by_rule;  // references of both kinds
  uint32_t algorithm_version = 0;
  uint64_t video_references = 0;
  double video_seconds = 0;          // their length
  uint64_t video_index_entries = 0;  // frame hashes (views) stored for them
};

class Catalog {
 public:
  // Opens (or creates) a catalog directory and loads the video references.
  // Repairs interrupted adds and removes unless read-only; `repaired`
  // (optional) receives a line per repaired track or deleted file. Read-only,
  // a damaged video file (or one of another hash version) is kCorruptData
  // (kVersionMismatch) naming the track.
  static Result<std::unique_ptr<Catalog>> Open(const std::filesystem::path& dir,
                                               const CatalogOptions& options,
                                               std::vector<std::string>* repaired = nullptr);

  // Decodes and fingerprints the items on `jobs` threads and adds them.
  // Items are independent: one bad file does not stop the others. A file
  // whose content is already catalogued is refused (kAlreadyExists).
  // `progress` (optional) is called from the calling thread after each item.
  std::vector<AddOutcome> Add(const std::vector<AddItem>& items, int jobs,
                              const std::function<void(const AddProgress&)>& progress = {});

  // Decodes and fingerprints video references on `jobs` threads and adds them (kind video).
  // Same outcome/progress contract as Add (AddProgress::audio_seconds counts video seconds here).
  // Per item errors: kAlreadyExists (same content as a catalogued reference of
  // either kind), kUnsupported (no video stream, e.g. an audio file),
  // kCorruptData (not a media file, nothing decodable), kInvalidArgument
  // (shorter than 1 s, or no frame with enough picture detail: black or flat
  // video), kFailedPrecondition (catalog opened read-only). duration_s of an
  // entry is seconds of video.
  std::vector<AddOutcome> AddVideo(const std::vector<AddItem>& items, int jobs,
                                   const std::function<void(const AddProgress&)>& progress = {});

  // Removes references of either kind (metadata and fingerprints); repeated
  // ids count once. Unknown ids: kNotFound, and nothing is removed.
  Status Remove(const std::vector<TrackId>& ids);

  Result<std::vector<store::CatalogEntry>> List(const store::CatalogDb::ListFilter& filter) const;
  Result<store::CatalogEntry> Get(TrackId id) const;
  Result<CatalogStats> Stats() const;

  // The fingerprint index as of now (immutable; see IndexReader).
  std::shared_ptr<const recognition::IndexReader> Snapshot() const;
  // Every video reference's hashes in one built HashIndex (ref_id = track id), as of now.
  // Never null (empty index when there are none). Immutable; cheap to call repeatedly
  // (cached; rebuilt only after AddVideo/Remove/Refresh changed the set).
  std::shared_ptr<const video::HashIndex> VideoSnapshot() const;
  // Picks up references (audio and video) added or removed by another process
  // since Open. A video reference whose file is not written yet (the other
  // process is between the two phases of its add) is picked up by a later
  // Refresh. Errors: the index's, or a video file that cannot be read.
  Status Refresh();

  const recognition::FingerprintParams& params() const { return params_; }
  const video::VideoParams& video_params() const { return video_params_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  Catalog(std::filesystem::path dir, std::unique_ptr<store::CatalogDb> db,
          std::unique_ptr<index::IndexStore> index, bool read_only);
  Status Repair(std::vector<std::string>* repaired);
  // Brings the loaded video references in line with the video rows: loads new
  // ones, drops removed ones. With `repair` (writable Open), rows whose file
  // is missing, damaged or of another hash version are removed and reported,
  // and files without a row are deleted; otherwise such rows are skipped
  // (missing) or an error (damaged, other version) that says how to replace
  // them.
  Status SyncVideo(bool repair, std::vector<std::string>* repaired);
  std::filesystem::path VideoFile(TrackId id) const;

  using VideoEntries = std::shared_ptr<const std::vector<video::IndexEntry>>;

  std::filesystem::path dir_;
  recognition::FingerprintParams params_;
  video::VideoParams video_params_;
  bool read_only_ = false;
  std::unique_ptr<store::CatalogDb> db_;
  std::unique_ptr<index::IndexStore> index_;
  std::mutex write_mu_;  // serialises Add, AddVideo and Remove
  mutable std::mutex video_mu_;
  std::map<TrackId, VideoEntries> video_refs_;  // GUARDED_BY(video_mu_)
  // All of video_refs_ in one built index; null when stale. GUARDED_BY(video_mu_)
  mutable std::shared_ptr<const video::HashIndex> video_snapshot_;
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

// Video files a folder holds (recursively), by extension (mp4 mkv mov webm flv
// ts m4v avi mpg mpeg, any case), sorted by path.
std::vector<std::filesystem::path> FindVideoFiles(const std::filesystem::path& folder);

}  // namespace earshot::catalog
