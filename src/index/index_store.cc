#include "index/index_store.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <string>
#include <utility>

#include "common/file_util.h"
#include "index/manifest.h"
#include "index/merge_policy.h"
#include "recognition/index_segment.h"

namespace earshot::index {

using recognition::HashKey;
using recognition::Posting;
using recognition::SegmentView;
using recognition::TrackFingerprint;
using recognition::TrackId;

namespace {

constexpr char kManifestName[] = "MANIFEST";
constexpr char kLockName[] = "LOCK";
constexpr int kMissingSegmentRetries = 20;  // read-only opens racing a merge
constexpr int kMergesPerWakeup = 16;        // bounded work between stop checks

bool ByTrackTime(const Posting& a, const Posting& b) {
  return a.track != b.track ? a.track < b.track : a.time < b.time;
}

std::string Where(const std::filesystem::path& dir) { return "index " + dir.string(); }

}  // namespace

// One mapped segment file. Unmapped when the last snapshot using it dies;
// deleted then too if it was dropped from the MANIFEST (MarkObsolete).
// Thread safety: immutable after Open except for the obsolete flag.
class MappedSegment {
 public:
  static Result<std::shared_ptr<MappedSegment>> Open(const std::filesystem::path& path,
                                                     uint64_t expected_size,
                                                     uint32_t algorithm_version, bool full_check) {
    const std::string name = path.filename().string();
    Result<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
    if (!file) return std::unexpected(file.error());
    const std::span<const uint8_t> bytes = (*file)->bytes();
    if (bytes.size() != expected_size) {
      return MakeError(ErrorCode::kCorruptData,
                       "segment " + name + " is " + std::to_string(bytes.size()) +
                           " bytes, MANIFEST says " + std::to_string(expected_size) +
                           ": truncated or replaced");
    }
    Result<SegmentView> view = SegmentView::Open(bytes, algorithm_version);
    if (!view) return std::unexpected(view.error().Wrap("segment " + name));
    if (full_check) {
      if (Status s = view->Verify(); !s) return std::unexpected(s.error().Wrap("segment " + name));
    }
    uint64_t frames = 0;
    for (uint32_t i = 0; i < view->TrackCount(); ++i) frames += view->FrameCountAt(i);
    return std::shared_ptr<MappedSegment>(
        new MappedSegment(path, name, std::move(*file), *view, frames));
  }

  ~MappedSegment() {
    file_.reset();
    if (obsolete_.load()) ::unlink(path_.c_str());  // best effort; the next Open retries
  }

  const SegmentView& view() const { return view_; }
  const std::string& name() const { return name_; }
  uint64_t size() const { return view_.size_bytes(); }
  uint64_t frames() const { return frames_; }
  void MarkObsolete() const { obsolete_.store(true); }

 private:
  MappedSegment(std::filesystem::path path, std::string name, std::unique_ptr<MappedFile> file,
                const SegmentView& view, uint64_t frames)
      : path_(std::move(path)),
        name_(std::move(name)),
        file_(std::move(file)),
        view_(view),
        frames_(frames) {}

  std::filesystem::path path_;
  std::string name_;
  std::unique_ptr<MappedFile> file_;
  SegmentView view_;  // points into file_
  uint64_t frames_;
  mutable std::atomic<bool> obsolete_{false};
};

// A segment as part of a snapshot: the file plus its removed tracks.
struct LiveSegment {
  std::shared_ptr<const MappedSegment> segment;
  std::shared_ptr<const std::vector<TrackId>> removed;  // ascending, all in the segment
  uint64_t live_tracks = 0;
  uint64_t live_postings = 0;
  uint64_t live_frames = 0;
  uint64_t removed_postings = 0;
};

namespace {

LiveSegment MakeLive(std::shared_ptr<const MappedSegment> segment, std::vector<TrackId> removed) {
  LiveSegment live;
  const SegmentView& view = segment->view();
  std::sort(removed.begin(), removed.end());
  removed.erase(std::unique(removed.begin(), removed.end()), removed.end());
  std::erase_if(removed, [&](TrackId id) { return !view.HasTrack(id); });
  uint64_t removed_frames = 0;
  for (TrackId id : removed) {
    const uint32_t index = *view.FindTrack(id);
    live.removed_postings += view.PostingCountAt(index);
    removed_frames += view.FrameCountAt(index);
  }
  live.live_tracks = view.TrackCount() - removed.size();
  live.live_postings = view.PostingCount() - live.removed_postings;
  live.live_frames = segment->frames() - removed_frames;
  live.segment = std::move(segment);
  live.removed = std::make_shared<const std::vector<TrackId>>(std::move(removed));
  return live;
}

}  // namespace

// An immutable view over the segments live at one MANIFEST generation.
// Thread safety: immutable; every method may run on many threads.
class StoreSnapshot final : public recognition::IndexReader {
 public:
  StoreSnapshot(std::vector<LiveSegment> segments, uint64_t generation)
      : segments_(std::move(segments)), generation_(generation) {
    for (const LiveSegment& s : segments_) {
      tracks_ += s.live_tracks;
      postings_ += s.live_postings;
    }
  }

  void Lookup(HashKey hash, std::vector<Posting>& out) const override {
    const size_t base = out.size();
    for (const LiveSegment& s : segments_) {
      const size_t before = out.size();
      s.segment->view().Lookup(hash, out);
      if (out.size() == before) continue;
      if (!s.removed->empty()) {
        const std::vector<TrackId>& removed = *s.removed;
        out.erase(std::remove_if(out.begin() + static_cast<ptrdiff_t>(before), out.end(),
                                 [&removed](const Posting& p) {
                                   return std::binary_search(removed.begin(), removed.end(),
                                                             p.track);
                                 }),
                  out.end());
      }
      if (before > base && out.size() > before) {
        std::inplace_merge(out.begin() + static_cast<ptrdiff_t>(base),
                           out.begin() + static_cast<ptrdiff_t>(before), out.end(), ByTrackTime);
      }
    }
  }

  bool HasTrack(TrackId track) const override { return FindLive(track, nullptr) != nullptr; }

  std::span<const uint8_t> SideData(TrackId track) const override {
    uint32_t index = 0;
    const LiveSegment* s = FindLive(track, &index);
    return s ? s->segment->view().SideDataAt(index) : std::span<const uint8_t>();
  }

  uint32_t FrameCount(TrackId track) const override {
    uint32_t index = 0;
    const LiveSegment* s = FindLive(track, &index);
    return s ? s->segment->view().FrameCountAt(index) : 0;
  }

  uint64_t TrackCount() const override { return tracks_; }
  uint64_t PostingCount() const override { return postings_; }

  const std::vector<LiveSegment>& segments() const { return segments_; }
  uint64_t generation() const { return generation_; }

  std::shared_ptr<const MappedSegment> FindSegment(const std::string& name) const {
    for (const LiveSegment& s : segments_) {
      if (s.segment->name() == name) return s.segment;
    }
    return nullptr;
  }

  const LiveSegment* FindSegment(const MappedSegment* segment) const {
    for (const LiveSegment& s : segments_) {
      if (s.segment.get() == segment) return &s;
    }
    return nullptr;
  }

 private:
  // The segment in which `track` is live (at most one is), and its row.
  const LiveSegment* FindLive(TrackId track, uint32_t* index) const {
    for (const LiveSegment& s : segments_) {
      const std::optional<uint32_t> row = s.segment->view().FindTrack(track);
      if (row && !std::binary_search(s.removed->begin(), s.removed->end(), track)) {
        if (index != nullptr) *index = *row;
        return &s;
      }
    }
    return nullptr;
  }

  std::vector<LiveSegment> segments_;
  uint64_t generation_;
  uint64_t tracks_ = 0;
  uint64_t postings_ = 0;
};

namespace {

Result<Manifest> ReadManifest(const std::filesystem::path& dir) {
  Result<std::string> text = ReadFile(dir / kManifestName);
  if (!text) return std::unexpected(text.error());
  Result<Manifest> manifest = DecodeManifest(*text);
  if (!manifest) return std::unexpected(manifest.error().Wrap(kManifestName));
  return manifest;
}

// Writes a segment file through `write` (temp file, fsync, rename, directory
// fsync) and maps it.
Result<std::shared_ptr<MappedSegment>> WriteSegmentFile(
    const std::filesystem::path& dir, uint64_t number, const IndexStoreOptions& options,
    const std::function<Status(const recognition::SegmentSink&)>& write) {
  const std::filesystem::path path = dir / SegmentFileName(number);
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  ::unlink(tmp.c_str());
  Result<std::unique_ptr<FileWriter>> writer = FileWriter::Create(tmp);
  if (!writer) return std::unexpected(writer.error());
  FileWriter& file = **writer;
  Status s = write([&file](std::span<const uint8_t> bytes) { return file.Append(bytes); });
  if (s) s = file.Sync();
  if (s) s = file.Close();
  if (s && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = std::unexpected(PosixError("rename to " + path.string(), tmp, errno));
  }
  if (!s) {
    ::unlink(tmp.c_str());
    return std::unexpected(s.error());
  }
  Result<std::shared_ptr<MappedSegment>> segment;
  if (Status synced = SyncDirectory(dir); !synced) {
    segment = std::unexpected(synced.error());
  } else {
    segment = MappedSegment::Open(path, file.size(), options.algorithm_version,
                                  file.size() <= options.full_verify_max_bytes);
  }
  if (!segment) ::unlink(path.c_str());
  return segment;
}

}  // namespace

IndexStore::IndexStore(std::filesystem::path dir, const IndexStoreOptions& options)
    : dir_(std::move(dir)), options_(options) {}

IndexStore::~IndexStore() {
  if (merge_thread_.joinable()) {
    merge_thread_.request_stop();
    merge_thread_.join();
  }
}

Result<std::unique_ptr<IndexStore>> IndexStore::Open(const std::filesystem::path& dir,
                                                     const IndexStoreOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    if (options.read_only || !options.create_if_missing) {
      return MakeError(ErrorCode::kNotFound, Where(dir) + " does not exist");
    }
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return MakeError(ErrorCode::kIoError,
                       Where(dir) + ": cannot create the directory: " + ec.message());
    }
  }
  std::unique_ptr<IndexStore> store(new IndexStore(dir, options));
  if (options.read_only) {
    Result<std::shared_ptr<const StoreSnapshot>> snapshot =
        store->LoadFromManifest(nullptr, nullptr);
    if (!snapshot) {
      if (snapshot.error().code() == ErrorCode::kNotFound) {
        return MakeError(ErrorCode::kNotFound,
                         Where(dir) + " has no MANIFEST: not an index, or not created yet");
      }
      return std::unexpected(snapshot.error());
    }
    store->current_.store(*snapshot);
    return store;
  }

  Result<std::unique_ptr<LockFile>> lock = LockFile::Acquire(dir / kLockName, options.lock_timeout);
  if (!lock) {
    if (lock.error().code() == ErrorCode::kUnavailable) {
      return MakeError(ErrorCode::kUnavailable, Where(dir) + " is locked by another process");
    }
    return std::unexpected(lock.error().Wrap(Where(dir)));
  }
  store->lock_ = std::move(*lock);
  if (Status s = store->InitializeWriter(); !s) return std::unexpected(s.error());
  if (options.background_merge) {
    IndexStore* self = store.get();
    store->merge_thread_ = std::jthread([self](std::stop_token stop) { self->MergeLoop(stop); });
    store->RequestMerge();
  }
  return store;
}

Status IndexStore::InitializeWriter() {
  std::error_code ec;
  Result<std::string> existing = ReadFile(dir_ / kManifestName);
  if (!existing) {
    if (existing.error().code() != ErrorCode::kNotFound) {
      return std::unexpected(existing.error().Wrap(Where(dir_)));
    }
    if (!options_.create_if_missing) {
      return MakeError(ErrorCode::kNotFound, Where(dir_) + " has no MANIFEST: not an index");
    }
    // A new index, unless segment files say the MANIFEST was lost.
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
      if (ParseSegmentFileName(entry.path().filename().string())) {
        return MakeError(ErrorCode::kCorruptData,
                         Where(dir_) +
                             ": MANIFEST is missing but the directory holds segment "
                             "files (" +
                             entry.path().filename().string() + ")");
      }
    }
    const Manifest empty{.algorithm_version = options_.algorithm_version,
                         .generation = 1,
                         .next_segment = 1,
                         .segments = {}};
    if (Status s = WriteFileAtomically(dir_ / kManifestName, EncodeManifest(empty)); !s) {
      return std::unexpected(s.error().Wrap(Where(dir_)));
    }
  }
  uint64_t next_segment = 1;
  Result<std::shared_ptr<const StoreSnapshot>> snapshot = LoadFromManifest(nullptr, &next_segment);
  if (!snapshot) return std::unexpected(snapshot.error());
  next_segment_ = next_segment;
  current_.store(*snapshot);

  // Delete what a crash left behind: temp files and segments not in the MANIFEST.
  bool deleted = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    const bool temp = name.ends_with(".tmp");
    const bool stray = ParseSegmentFileName(name) && !(*snapshot)->FindSegment(name);
    if (temp || stray) {
      ::unlink(entry.path().c_str());
      deleted = true;
    }
  }
  if (ec) {
    return MakeError(ErrorCode::kIoError, Where(dir_) + ": listing the directory: " + ec.message());
  }
  if (deleted) {
    if (Status s = SyncDirectory(dir_); !s) return std::unexpected(s.error().Wrap(Where(dir_)));
  }
  return Ok();
}

Result<std::shared_ptr<const StoreSnapshot>> IndexStore::LoadFromManifest(
    const std::shared_ptr<const StoreSnapshot>& reuse, uint64_t* next_segment) {
  for (int attempt = 0;; ++attempt) {
    Result<Manifest> manifest = ReadManifest(dir_);
    if (!manifest) return std::unexpected(manifest.error().Wrap(Where(dir_)));
    if (manifest->algorithm_version != options_.algorithm_version) {
      return MakeError(ErrorCode::kVersionMismatch,
                       Where(dir_) + " was built with algorithm version " +
                           std::to_string(manifest->algorithm_version) + ", this earshot uses " +
                           std::to_string(options_.algorithm_version) + ": rebuild the catalog");
    }
    if (next_segment != nullptr) *next_segment = manifest->next_segment;
    if (reuse && reuse->generation() == manifest->generation) return reuse;

    std::vector<LiveSegment> segments;
    std::optional<Error> missing;
    for (const ManifestSegment& entry : manifest->segments) {
      std::shared_ptr<const MappedSegment> segment =
          reuse ? reuse->FindSegment(entry.file) : nullptr;
      if (!segment) {
        Result<std::shared_ptr<MappedSegment>> opened =
            MappedSegment::Open(dir_ / entry.file, entry.size, options_.algorithm_version,
                                entry.size <= options_.full_verify_max_bytes);
        if (!opened && opened.error().code() == ErrorCode::kNotFound) {
          missing = opened.error();
          break;
        }
        if (!opened) return std::unexpected(opened.error().Wrap(Where(dir_)));
        segment = *opened;
      }
      segments.push_back(MakeLive(std::move(segment), entry.removed));
    }
    if (!missing) {
      return std::make_shared<const StoreSnapshot>(std::move(segments), manifest->generation);
    }
    // A read-only opener may race the writer deleting a merged-away segment
    // after we read the MANIFEST: read it again.
    if (!options_.read_only || attempt >= kMissingSegmentRetries) {
      return MakeError(
          ErrorCode::kCorruptData,
          Where(dir_) + ": a segment listed in MANIFEST is missing: " + missing->message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status IndexStore::CheckWritable() const {
  if (options_.read_only) {
    return MakeError(ErrorCode::kFailedPrecondition, Where(dir_) + " was opened read-only");
  }
  return Ok();
}

Status IndexStore::Commit(const std::shared_ptr<const StoreSnapshot>& old_snapshot,
                          std::vector<LiveSegment> segments) {
  Manifest manifest{.algorithm_version = options_.algorithm_version,
                    .generation = old_snapshot->generation() + 1,
                    .next_segment = next_segment_,
                    .segments = {}};
  for (const LiveSegment& s : segments) {
    manifest.segments.push_back(
        {.file = s.segment->name(), .size = s.segment->size(), .removed = *s.removed});
  }
  bool renamed = false;
  Status written = WriteFileAtomically(dir_ / kManifestName, EncodeManifest(manifest), &renamed);
  if (!written && !renamed) return std::unexpected(written.error().Wrap(Where(dir_)));
  // Renamed: the new MANIFEST is what the next Open sees, so publish it even
  // if the directory sync failed (and report that).
  auto snapshot = std::make_shared<const StoreSnapshot>(std::move(segments), manifest.generation);
  for (const LiveSegment& s : old_snapshot->segments()) {
    if (!snapshot->FindSegment(s.segment.get())) s.segment->MarkObsolete();
  }
  current_.store(std::move(snapshot));
  if (!written) {
    return std::unexpected(written.error().Wrap(
        Where(dir_) + ": MANIFEST replaced but not synced; the change may not survive a crash"));
  }
  return Ok();
}

Status IndexStore::Add(std::vector<TrackFingerprint> tracks) {
  if (Status s = CheckWritable(); !s) return s;
  if (tracks.empty()) return Ok();
  std::vector<TrackId> ids;
  ids.reserve(tracks.size());
  for (const TrackFingerprint& t : tracks) ids.push_back(t.track);
  std::sort(ids.begin(), ids.end());
  if (auto twice = std::adjacent_find(ids.begin(), ids.end()); twice != ids.end()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "track " + std::to_string(*twice) + " appears twice in one Add");
  }

  std::lock_guard lock(write_mu_);
  const std::shared_ptr<const StoreSnapshot> old = current_.load();
  for (TrackId id : ids) {
    if (old->HasTrack(id)) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "track " + std::to_string(id) + " is already in " + Where(dir_));
    }
  }
  const uint64_t number = next_segment_++;
  Result<std::shared_ptr<MappedSegment>> segment =
      WriteSegmentFile(dir_, number, options_, [&](const recognition::SegmentSink& sink) {
        return recognition::WriteSegment(tracks, options_.algorithm_version, sink);
      });
  if (!segment) {
    return std::unexpected(segment.error().Wrap(Where(dir_) + ": adding " +
                                                std::to_string(tracks.size()) + " tracks"));
  }
  tracks = {};
  std::vector<LiveSegment> segments = old->segments();
  segments.push_back(MakeLive(*segment, {}));
  if (Status s = Commit(old, std::move(segments)); !s) {
    if (current_.load() == old) (*segment)->MarkObsolete();
    return s;
  }
  RequestMerge();
  return Ok();
}

Status IndexStore::Remove(const std::vector<TrackId>& tracks) {
  if (Status s = CheckWritable(); !s) return s;
  if (tracks.empty()) return Ok();
  std::lock_guard lock(write_mu_);
  const std::shared_ptr<const StoreSnapshot> old = current_.load();
  const std::vector<LiveSegment>& current = old->segments();
  std::vector<std::vector<TrackId>> removed(current.size());
  bool changed = false;
  for (TrackId id : tracks) {
    for (size_t i = 0; i < current.size(); ++i) {
      const LiveSegment& s = current[i];
      if (s.segment->view().HasTrack(id) &&
          !std::binary_search(s.removed->begin(), s.removed->end(), id)) {
        removed[i].push_back(id);
        changed = true;
        break;
      }
    }
  }
  if (!changed) return Ok();
  std::vector<LiveSegment> segments;
  for (size_t i = 0; i < current.size(); ++i) {
    if (removed[i].empty()) {
      segments.push_back(current[i]);
      continue;
    }
    std::vector<TrackId> all = *current[i].removed;
    all.insert(all.end(), removed[i].begin(), removed[i].end());
    LiveSegment live = MakeLive(current[i].segment, std::move(all));
    if (live.live_tracks > 0) segments.push_back(std::move(live));  // else drop the file
  }
  if (Status s = Commit(old, std::move(segments)); !s) return s;
  RequestMerge();
  return Ok();
}

std::shared_ptr<const recognition::IndexReader> IndexStore::Snapshot() const {
  return current_.load();
}

Status IndexStore::Refresh() {
  if (!options_.read_only) return Ok();  // the writer is the only one changing the index
  std::lock_guard lock(write_mu_);
  Result<std::shared_ptr<const StoreSnapshot>> snapshot =
      LoadFromManifest(current_.load(), nullptr);
  if (!snapshot) return std::unexpected(snapshot.error());
  current_.store(std::move(*snapshot));
  return Ok();
}

Status IndexStore::CompactNow() {
  if (Status s = CheckWritable(); !s) return s;
  bool merged = false;
  return MergeOnce(true, std::stop_token(), &merged);
}

Status IndexStore::MergeOnce(bool everything, std::stop_token stop, bool* merged) {
  *merged = false;
  std::lock_guard merge_lock(merge_mu_);
  std::shared_ptr<const StoreSnapshot> base;
  std::vector<size_t> pick;
  uint64_t number = 0;
  {
    std::lock_guard lock(write_mu_);
    base = current_.load();
    const std::vector<LiveSegment>& segments = base->segments();
    if (everything) {
      if (segments.size() > 1 || (segments.size() == 1 && !segments[0].removed->empty())) {
        for (size_t i = 0; i < segments.size(); ++i) pick.push_back(i);
      }
    } else {
      std::vector<SegmentSummary> summaries;
      for (const LiveSegment& s : segments) {
        summaries.push_back({.bytes = s.segment->size(),
                             .postings = s.segment->view().PostingCount(),
                             .removed_postings = s.removed_postings});
      }
      pick = PickMerge(summaries, {.max_segments = options_.merge_trigger_segments,
                                   .merge_factor = options_.merge_factor,
                                   .max_removed_fraction = options_.max_removed_fraction});
    }
    if (pick.empty()) return Ok();
    number = next_segment_++;
  }

  // Build the merged segment without holding write_mu_.
  std::vector<recognition::MergeSource> sources;
  for (size_t i : pick) {
    const LiveSegment& s = base->segments()[i];
    sources.push_back({.segment = &s.segment->view(), .removed = *s.removed});
  }
  Result<std::shared_ptr<MappedSegment>> segment =
      WriteSegmentFile(dir_, number, options_, [&](const recognition::SegmentSink& sink) {
        return recognition::MergeSegments(sources, options_.algorithm_version, sink,
                                          [&stop] { return stop.stop_requested(); });
      });
  if (!segment) {
    return std::unexpected(segment.error().Wrap(Where(dir_) + ": merging " +
                                                std::to_string(pick.size()) + " segments"));
  }

  std::lock_guard lock(write_mu_);
  const std::shared_ptr<const StoreSnapshot> now = current_.load();
  // Tracks removed while the merge ran are live in the merged segment:
  // carry their tombstones over.
  std::vector<TrackId> removed_since;
  std::vector<const MappedSegment*> merged_away;
  for (size_t i : pick) {
    const LiveSegment& before = base->segments()[i];
    merged_away.push_back(before.segment.get());
    const LiveSegment* after = now->FindSegment(before.segment.get());
    if (after == nullptr) {  // dropped meanwhile: all its tracks were removed
      const SegmentView& view = before.segment->view();
      for (uint32_t t = 0; t < view.TrackCount(); ++t) removed_since.push_back(view.TrackAt(t));
    } else {
      std::set_difference(after->removed->begin(), after->removed->end(), before.removed->begin(),
                          before.removed->end(), std::back_inserter(removed_since));
    }
  }
  std::vector<LiveSegment> segments;
  for (const LiveSegment& s : now->segments()) {
    if (std::find(merged_away.begin(), merged_away.end(), s.segment.get()) == merged_away.end()) {
      segments.push_back(s);
    }
  }
  LiveSegment fresh = MakeLive(*segment, std::move(removed_since));
  if (fresh.live_tracks > 0) {
    segments.push_back(std::move(fresh));
  } else {
    (*segment)->MarkObsolete();  // everything in it was removed
  }
  if (Status s = Commit(now, std::move(segments)); !s) {
    if (current_.load() == now) (*segment)->MarkObsolete();
    return s;
  }
  *merged = true;
  return Ok();
}

void IndexStore::RequestMerge() {
  if (!merge_thread_.joinable()) return;
  std::lock_guard lock(bg_mu_);
  bg_pending_ = true;
  bg_cv_.notify_all();
}

void IndexStore::MergeLoop(std::stop_token stop) {
  std::unique_lock lock(bg_mu_);
  for (;;) {
    bg_busy_ = false;
    bg_cv_.notify_all();
    if (!bg_cv_.wait(lock, stop, [this] { return bg_pending_; })) return;  // stop requested
    bg_pending_ = false;
    bg_busy_ = true;
    lock.unlock();
    std::optional<Error> error;
    bool more = false;
    for (int i = 0; i < kMergesPerWakeup && !stop.stop_requested(); ++i) {
      bool merged = false;
      if (Status s = MergeOnce(false, stop, &merged); !s) {
        error = s.error();
        break;
      }
      if (!merged) break;
      more = i + 1 == kMergesPerWakeup;
    }
    lock.lock();
    if (error && !stop.stop_requested()) bg_error_ = std::move(error);
    if (more) bg_pending_ = true;
  }
}

Status IndexStore::WaitForMerges() {
  if (!merge_thread_.joinable()) return Ok();
  std::unique_lock lock(bg_mu_);
  bg_cv_.wait(lock, [this] { return !bg_pending_ && !bg_busy_; });
  if (bg_error_) {
    Error error = std::move(*bg_error_);
    bg_error_.reset();
    return std::unexpected(std::move(error));
  }
  return Ok();
}

Status IndexStore::Verify() const {
  const std::shared_ptr<const StoreSnapshot> snapshot = current_.load();
  for (const LiveSegment& s : snapshot->segments()) {
    if (Status st = s.segment->view().Verify(); !st) {
      return std::unexpected(st.error().Wrap(Where(dir_) + ": segment " + s.segment->name()));
    }
  }
  return Ok();
}

IndexStore::Stats IndexStore::GetStats() const {
  const std::shared_ptr<const StoreSnapshot> snapshot = current_.load();
  Stats stats;
  stats.generation = snapshot->generation();
  for (const LiveSegment& s : snapshot->segments()) {
    stats.tracks += s.live_tracks;
    stats.postings += s.live_postings;
    stats.segments += 1;
    stats.bytes_on_disk += s.segment->size();
    stats.frames += s.live_frames;
  }
  return stats;
}

}  // namespace earshot::index
