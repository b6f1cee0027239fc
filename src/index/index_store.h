// IndexStore: the on-disk reference index. A directory of immutable segment
// files (recognition/index_segment.h) plus a MANIFEST (index/manifest.h)
// naming the live segments, the removed tracks of each, the algorithm version
// and a generation number.
//
// Directory layout:
//   MANIFEST                    current manifest, replaced atomically
//   LOCK                        flock(2)-ed by the one writer process
//   seg-<16 hex digits>.eseg    segment files, never modified once written
//   *.tmp                       files being written (deleted on the next open)
//
// Writes: Add writes one new segment (temp file, fsync, rename, fsync dir),
// then a new MANIFEST the same way, then publishes a new snapshot. Remove
// only rewrites the MANIFEST (tombstones); merging drops removed tracks
// physically. A crash at any point leaves the previous or the new state;
// files not named by the MANIFEST are deleted by the next writer Open.
//
// Reads: Snapshot() returns an immutable IndexReader over the segments live at
// that moment, memory-mapped. Segments are unmapped (and, once dropped from
// the MANIFEST, deleted) when the last snapshot using them is destroyed, so a
// reader may keep a snapshot for as long as it likes while writers add, remove
// and merge. (The thread that drops the last reference does the munmap and
// unlink.) Taking a snapshot is one load of a std::atomic<std::shared_ptr>:
// readers never take the writers' mutexes, so readers never block writers and
// writers never block readers (libstdc++ guards the atomic with a spin bit
// held for a few instructions, never across I/O).
//
// Merging: a background thread (options.background_merge) merges small
// segments into bigger ones (index/merge_policy.h) and rewrites segments with
// many removed tracks. Merges build the new segment without holding the
// writer lock, so Add and Remove are not blocked while a merge runs.
//
// Processes: one writer process at a time holds LOCK; a second writer gets
// kUnavailable "index DIR is locked by another process". Any number of other
// processes may Open with read_only = true and call Refresh() to see the
// writer's changes.
//
// Thread safety: every method may be called from any thread concurrently.
// Add, Remove, CompactNow and Refresh serialise with each other; Snapshot and
// GetStats never wait for them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "common/error.h"
#include "recognition/index_reader.h"
#include "recognition/types.h"

namespace earshot {
class LockFile;
}  // namespace earshot

namespace earshot::index {

struct IndexStoreOptions {
  // The fingerprint algorithm version (recognition::kAlgorithmVersion). A new
  // index records it; an existing index built with another version is refused
  // with kVersionMismatch.
  uint32_t algorithm_version = 0;

  // Create the directory and an empty index when there is none (writers only).
  bool create_if_missing = true;

  // Open without the writer lock: Add, Remove and CompactNow fail with
  // kFailedPrecondition; call Refresh() to pick up another process's changes.
  bool read_only = false;

  // Merge segments in a background thread (writers only). Without it segments
  // only merge on CompactNow().
  bool background_merge = true;

  // Tiered merging (index/merge_policy.h): merge when there are more than
  // merge_trigger_segments segments, merge_factor of the smallest at a time;
  // rewrite a segment once more than max_removed_fraction of its postings
  // belong to removed tracks. More segments = cheaper adds, slower lookups.
  size_t merge_trigger_segments = 8;
  size_t merge_factor = 4;
  double max_removed_fraction = 0.3;

  // Segments up to this size get a full checksum and structure check when
  // opened; bigger ones only the header/directory check (use Verify()).
  uint64_t full_verify_max_bytes = uint64_t{64} << 20;

  // How long a writer Open waits for another process to release LOCK.
  std::chrono::milliseconds lock_timeout{0};
};

class StoreSnapshot;
struct LiveSegment;

class IndexStore {
 public:
  struct Stats {
    uint64_t tracks = 0;         // live tracks
    uint64_t postings = 0;       // postings of live tracks
    uint64_t segments = 0;       // live segment files
    uint64_t bytes_on_disk = 0;  // size of the live segment files
    uint64_t frames = 0;         // total length of the live tracks, in frames
    uint64_t generation = 0;     // manifest generation of the current snapshot
  };

  // Opens (or creates) the index in `dir`. Errors: kNotFound (no index and
  // not allowed to create one); kUnavailable (another process holds the
  // writer lock); kVersionMismatch (other algorithm or format version: "index
  // DIR was built with algorithm version 3, this earshot uses 4: rebuild the
  // catalog"); kCorruptData naming the damaged file and what is wrong;
  // kIoError.
  static Result<std::unique_ptr<IndexStore>> Open(const std::filesystem::path& dir,
                                                  const IndexStoreOptions& options);

  // Stops the merge thread (an unfinished merge is abandoned and its temp
  // file deleted) and releases the lock. Snapshots handed out stay valid.
  ~IndexStore();

  IndexStore(const IndexStore&) = delete;
  IndexStore& operator=(const IndexStore&) = delete;

  // Adds tracks as one new segment and publishes a new snapshot. All or
  // nothing. kAlreadyExists if a track id is live in the index;
  // kInvalidArgument if an id repeats within `tracks`. An empty batch is a
  // no-op. A removed id may be added again.
  Status Add(std::vector<recognition::TrackFingerprint> tracks);

  // Removes tracks (tombstones in the MANIFEST; merges reclaim the space).
  // Ids that are not live are ignored.
  Status Remove(const std::vector<recognition::TrackId>& tracks);

  // The current state as an immutable reader; lock-free.
  std::shared_ptr<const recognition::IndexReader> Snapshot() const;

  // Re-reads the MANIFEST if another process changed it (read-only stores;
  // a no-op for the writer, which is the only one who changes it).
  Status Refresh();

  // Merges every segment into one, dropping removed tracks. Waits for a
  // running background merge first.
  Status CompactNow();

  // Fully checks every live segment (checksums and every posting list).
  Status Verify() const;

  // Waits until the background merge thread is idle; returns (and clears)
  // the error of its last failed merge, if any. For tests and tools.
  Status WaitForMerges();

  Stats GetStats() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  IndexStore(std::filesystem::path dir, const IndexStoreOptions& options);

  // Reads the MANIFEST and maps its segments, reusing those of `reuse`.
  // Returns `reuse` itself when the generation is unchanged.
  Result<std::shared_ptr<const StoreSnapshot>> LoadFromManifest(
      const std::shared_ptr<const StoreSnapshot>& reuse, uint64_t* next_segment);
  Status InitializeWriter();
  Status CheckWritable() const;
  // Writes a MANIFEST for `segments`, publishes them as the new snapshot and
  // marks the segments of `old_snapshot` that are gone as obsolete.
  // REQUIRES: write_mu_ held.
  Status Commit(const std::shared_ptr<const StoreSnapshot>& old_snapshot,
                std::vector<LiveSegment> segments);
  Status MergeOnce(bool everything, std::stop_token stop, bool* merged);
  void RequestMerge();
  void MergeLoop(std::stop_token stop);

  const std::filesystem::path dir_;
  const IndexStoreOptions options_;
  std::unique_ptr<LockFile> lock_;  // held by writers for the store's lifetime

  // The published state. Readers only load it; writers store a new snapshot
  // while holding write_mu_.
  std::atomic<std::shared_ptr<const StoreSnapshot>> current_;

  // Serialises MANIFEST changes (Add, Remove, Refresh, merge commits).
  // Lock order: merge_mu_, then write_mu_, then bg_mu_.
  std::mutex write_mu_;
  uint64_t next_segment_ = 1;  // guarded by write_mu_

  // One merge at a time (background or CompactNow).
  std::mutex merge_mu_;

  // Background merge thread state.
  std::mutex bg_mu_;
  std::condition_variable_any bg_cv_;
  bool bg_pending_ = false;        // guarded by bg_mu_: more merging may be needed
  bool bg_busy_ = false;           // guarded by bg_mu_: the thread is merging
  std::optional<Error> bg_error_;  // guarded by bg_mu_: last failed merge
  std::jthread merge_thread_;      // last member: stopped and joined first
};

}  // namespace earshot::index
