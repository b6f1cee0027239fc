#include "catalog/catalog.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "common/file_util.h"
#include "media/audio_decoder.h"
#include "media/video_frame_reader.h"
#include "recognition/fingerprinter.h"
#include "store/content_hash.h"
#include "video/frame_hash.h"

namespace earshot::catalog {

namespace fs = std::filesystem;

namespace {

// Fingerprints added to the index per segment while adding many files.
constexpr size_t kBatchTracks = 64;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A decoded and fingerprinted item waiting to be stored.
struct Prepared {
  size_t item = 0;
  Result<store::CatalogEntry> entry = MakeError(ErrorCode::kInternal, "not prepared");
  recognition::TrackFingerprint fingerprint;
};

// The content digest of a new reference, or why it cannot be added (already
// catalogued: kAlreadyExists naming the track).
Result<std::string> NewContentSha256(const AddItem& item, const store::CatalogDb& db) {
  const std::string name = item.path.string();
  auto sha = store::Sha256File(item.path);
  if (!sha) return std::unexpected(sha.error());
  auto existing = db.FindBySha256(*sha);
  if (!existing) return std::unexpected(existing.error());
  if (existing->has_value()) {
    return MakeError(ErrorCode::kAlreadyExists, name + " is already in the catalog as track " +
                                                    std::to_string((*existing)->id) + " (\"" +
                                                    (*existing)->metadata.title + "\")");
  }
  return sha;
}

// The catalog row of a new reference (id assigned on insert); the title
// defaults to the file name without extension.
store::CatalogEntry NewEntry(const AddItem& item, store::MediaKind kind, const std::string& sha,
                             double seconds, uint32_t algorithm_version) {
  store::CatalogEntry entry;
  entry.kind = kind;
  entry.source = item.path.string();
  entry.content_sha256 = sha;
  entry.metadata = item.metadata;
  if (entry.metadata.title.empty()) entry.metadata.title = item.path.stem().string();
  entry.rule = item.rule;
  entry.duration_s = seconds;
  entry.added_at_unix_ms = NowUnixMs();
  entry.algorithm_version = algorithm_version;
  return entry;
}

Prepared PrepareItem(size_t index, const AddItem& item, const store::CatalogDb& db,
                     const recognition::FingerprintParams& params) {
  Prepared out;
  out.item = index;
  const std::string name = item.path.string();
  auto sha = NewContentSha256(item, db);
  if (!sha) {
    out.entry = std::unexpected(sha.error());
    return out;
  }
  media::AudioDecodeOptions decode;
  decode.sample_rate = params.sample_rate;
  decode.strict = true;  // a damaged reference would be a damaged catalog entry
  auto audio = media::DecodeFile(name, decode);
  if (!audio) {
    out.entry = std::unexpected(audio.error());
    return out;
  }
  const double seconds = static_cast<double>(audio->samples.size()) / params.sample_rate;
  if (seconds < 2.0) {
    out.entry = MakeError(ErrorCode::kInvalidArgument,
                          name + " is too short to fingerprint (" + std::to_string(seconds) +
                              " s of audio; at least 2 s are needed)");
    return out;
  }
  out.fingerprint = recognition::FingerprintTrack(0, audio->samples, params);
  out.entry = NewEntry(item, store::MediaKind::kAudio, *sha, seconds,
                       recognition::kAlgorithmVersion);
  return out;
}

// Shortest video reference accepted, seconds.
constexpr double kMinVideoSeconds = 1.0;

// A decoded and hashed video reference waiting to be stored.
struct PreparedVideo {
  size_t item = 0;
  Result<store::CatalogEntry> entry = MakeError(ErrorCode::kInternal, "not prepared");
  std::vector<video::IndexEntry> hashes;  // ref_id not set yet
};

PreparedVideo PrepareVideoItem(size_t index, const AddItem& item, const store::CatalogDb& db,
                               const video::VideoParams& params) {
  PreparedVideo out;
  out.item = index;
  const std::string name = item.path.string();
  auto sha = NewContentSha256(item, db);
  if (!sha) {
    out.entry = std::unexpected(sha.error());
    return out;
  }
  media::VideoReadOptions read;
  read.fps = params.reference_fps;
  read.max_width = params.max_width;
  read.skip_nonref = false;  // every sampling instant gets its own frame
  // Predicting where the next GOP starts fails at irregular key frames
  // (scene cuts) and would leave holes in the reference.
  read.skip_gop_tail = false;
  auto reader = media::VideoFrameReader::Open(name, read);
  if (!reader) {
    out.entry = std::unexpected(reader.error());
    return out;
  }
  media::VideoFrame frame;
  size_t frames = 0;
  int64_t first_ms = 0, last_ms = 0;
  while (true) {
    auto more = (*reader)->Next(frame);
    if (!more) {
      out.entry = std::unexpected(more.error());
      return out;
    }
    if (!*more) break;
    if (frames == 0) first_ms = frame.pts_ms;
    last_ms = frame.pts_ms;
    ++frames;
    const video::LumaPlane plane{frame.luma.data(), frame.width, frame.height, frame.width};
    auto hashes = video::HashReferenceFrame(plane, params.hash);
    if (!hashes) {
      out.entry = std::unexpected(hashes.error().Wrap(name));
      return out;
    }
    for (const video::ViewHash& view : hashes->views) {
      if (view.quality < params.matcher.min_quality) continue;  // flat: its hash is noise
      out.hashes.push_back({0, frame.pts_ms, view.bits, view.view});
    }
  }
  // Seconds the samples cover (each stands for 1 / fps); the declared length
  // when the container has one.
  const double sampled =
      frames == 0 ? 0.0
                  : static_cast<double>(last_ms - first_ms) / 1000.0 + 1.0 / params.reference_fps;
  const double declared = (*reader)->info().duration_s;
  if (sampled < kMinVideoSeconds) {
    out.entry = MakeError(ErrorCode::kInvalidArgument,
                          name + " is too short to fingerprint (" + std::to_string(frames) +
                              " frame(s) of video; at least 1 s is needed)");
    return out;
  }
  if (out.hashes.empty()) {
    out.entry = MakeError(ErrorCode::kInvalidArgument,
                          name +
                              " has no frames with enough picture detail to fingerprint "
                              "(black or flat video)");
    return out;
  }
  out.entry = NewEntry(item, store::MediaKind::kVideo, *sha, declared > 0 ? declared : sampled,
                       video::kFrameHashVersion);
  return out;
}

// The id of a video file name "{id}.vfp", or 0 for any other name.
TrackId VideoFileId(const fs::path& file) {
  if (file.extension() != ".vfp") return 0;
  const std::string stem = file.stem().string();
  if (stem.empty() || stem.size() > 10 ||
      stem.find_first_not_of("0123456789") != std::string::npos || stem[0] == '0') {
    return 0;
  }
  const uint64_t id = std::stoull(stem);
  return id > std::numeric_limits<TrackId>::max() ? 0 : static_cast<TrackId>(id);
}

// Reads and checks one video reference file.
Result<std::vector<video::IndexEntry>> LoadVideoFile(const fs::path& file, TrackId id) {
  auto bytes = ReadFile(file);
  if (!bytes) return std::unexpected(bytes.error());
  auto index = video::HashIndex::Deserialize(
      std::span(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
  if (!index) return std::unexpected(index.error().Wrap("video fingerprints " + file.string()));
  for (const video::IndexEntry& e : index->entries()) {
    if (e.ref_id != id) {
      return MakeError(ErrorCode::kCorruptData, "video fingerprints " + file.string() +
                                                    " belong to track " + std::to_string(e.ref_id) +
                                                    ", not " + std::to_string(id));
    }
  }
  return index->entries();
}


// Prepares items 0..count-1 on up to `jobs` threads (`prepare(i)`) and hands
// the results to the calling thread in item order through Next(), so that
// ids follow the order of the input whatever the number of jobs. Workers run
// at most 2 * jobs items ahead of the caller (a slow first item holds back
// memory, not results). The threads are joined when it goes out of scope,
// also when the caller stops calling Next early.
template <typename P>
class ParallelPrepare {
 public:
  ParallelPrepare(size_t count, int jobs, std::function<P(size_t)> prepare)
      : count_(count), prepare_(std::move(prepare)) {
    const size_t workers = static_cast<size_t>(std::clamp(jobs, 1, 64));
    window_ = 2 * workers;
    for (size_t w = 0; w < std::min(workers, count); ++w) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  ~ParallelPrepare() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    space_cv_.notify_all();
    threads_.clear();  // joins
  }
  ParallelPrepare(const ParallelPrepare&) = delete;
  ParallelPrepare& operator=(const ParallelPrepare&) = delete;

  // The next item in order; blocks until it is ready. REQUIRES: called at
  // most `count` times.
  P Next() {
    std::unique_lock lock(mu_);
    ready_cv_.wait(lock, [&] { return ready_.contains(next_out_); });
    auto node = ready_.extract(next_out_++);
    lock.unlock();
    space_cv_.notify_all();
    return std::move(node.mapped());
  }

 private:
  void Work() {
    for (;;) {
      size_t i = 0;
      {
        std::unique_lock lock(mu_);
        space_cv_.wait(lock, [&] { return stopping_ || next_in_ >= count_ || next_in_ < next_out_ + window_; });
        if (stopping_ || next_in_ >= count_) return;
        i = next_in_++;
      }
      P p = prepare_(i);
      {
        std::lock_guard lock(mu_);
        ready_.emplace(i, std::move(p));
      }
      ready_cv_.notify_one();
    }
  }

  const size_t count_;
  std::function<P(size_t)> prepare_;
  size_t window_ = 2;
  std::mutex mu_;
  std::condition_variable ready_cv_;
  std::condition_variable space_cv_;
  std::map<size_t, P> ready_;  // GUARDED_BY(mu_): finished, not yet taken
  size_t next_in_ = 0;         // GUARDED_BY(mu_): next item to prepare
  size_t next_out_ = 0;        // GUARDED_BY(mu_): next item Next() returns
  bool stopping_ = false;      // GUARDED_BY(mu_)
  std::vector<std::jthread> threads_;  // last: joined before the rest goes
};

}  // namespace

Catalog::Catalog(fs::path dir, std::unique_ptr<store::CatalogDb> db,
                 std::unique_ptr<index::IndexStore> index, bool read_only)
    : dir_(std::move(dir)), read_only_(read_only), db_(std::move(db)), index_(std::move(index)) {}

fs::path Catalog::VideoFile(TrackId id) const {
  return dir_ / "video" / (std::to_string(id) + ".vfp");
}

Result<std::unique_ptr<Catalog>> Catalog::Open(const fs::path& dir, const CatalogOptions& options,
                                               std::vector<std::string>* repaired) {
  std::error_code ec;
  const bool exists = fs::exists(dir / "catalog.db", ec);
  if (!exists && (options.read_only || !options.create_if_missing)) {
    return MakeError(ErrorCode::kNotFound,
                     "no catalog at " + dir.string() +
                         " (create one with `earshot catalog add --catalog " + dir.string() +
                         " FILE...`)");
  }
  if (!exists) {
    fs::create_directories(dir, ec);
    if (ec) {
      return MakeError(ErrorCode::kIoError,
                       "cannot create catalog directory " + dir.string() + ": " + ec.message());
    }
  }
  auto db = store::CatalogDb::Open(dir / "catalog.db");
  if (!db) return std::unexpected(db.error().Wrap("opening catalog " + dir.string()));
  index::IndexStoreOptions index_options;
  index_options.algorithm_version = recognition::kAlgorithmVersion;
  index_options.read_only = options.read_only;
  index_options.create_if_missing = !options.read_only;
  index_options.background_merge = options.background_merge && !options.read_only;
  index_options.lock_timeout = std::chrono::milliseconds(10000);
  auto index = index::IndexStore::Open(dir / "index", index_options);
  if (!index) return std::unexpected(index.error().Wrap("opening catalog " + dir.string()));
  std::unique_ptr<Catalog> catalog(
      new Catalog(dir, std::move(*db), std::move(*index), options.read_only));
  if (!options.read_only) {
    if (auto s = catalog->Repair(repaired); !s) return std::unexpected(s.error());
  } else if (auto s = catalog->SyncVideo(/*repair=*/false, nullptr); !s) {
    return std::unexpected(s.error().Wrap("opening catalog " + dir.string()));
  }
  return catalog;
}

Status Catalog::Repair(std::vector<std::string>* repaired) {
  // Rows whose fingerprints never reached the index (an add interrupted
  // between its two phases) are removed.
  auto entries = db_->List({});
  if (!entries) return std::unexpected(entries.error().Wrap("checking catalog"));
  const auto snapshot = index_->Snapshot();
  for (const store::CatalogEntry& e : *entries) {
    if (e.kind != store::MediaKind::kAudio || snapshot->HasTrack(e.id)) continue;
    if (auto s = db_->Remove(e.id); !s) return std::unexpected(s.error());
    if (repaired) {
      repaired->push_back("track " + std::to_string(e.id) + " (\"" + e.metadata.title +
                          "\") had no fingerprints (an interrupted add) and was removed; add " +
                          e.source + " again");
    }
  }
  if (auto s = SyncVideo(/*repair=*/true, repaired); !s) {
    return std::unexpected(s.error().Wrap("checking catalog " + dir_.string()));
  }
  return Ok();
}

Status Catalog::SyncVideo(bool repair, std::vector<std::string>* repaired) {
  store::CatalogDb::ListFilter filter;
  filter.kind = store::MediaKind::kVideo;
  auto rows = db_->List(filter);
  if (!rows) return std::unexpected(rows.error());
  std::set<TrackId> ids;
  for (const store::CatalogEntry& e : *rows) ids.insert(e.id);
  std::set<TrackId> loaded;
  {
    std::lock_guard lock(video_mu_);
    for (const auto& [id, entries] : video_refs_) loaded.insert(id);
  }
  // New rows: load their files (outside the lock: files may be large).
  std::map<TrackId, VideoEntries> fresh;
  for (const store::CatalogEntry& e : *rows) {
    if (loaded.count(e.id)) continue;
    const fs::path file = VideoFile(e.id);
    auto entries = LoadVideoFile(file, e.id);
    if (entries) {
      fresh[e.id] = std::make_shared<const std::vector<video::IndexEntry>>(std::move(*entries));
      continue;
    }
    const ErrorCode code = entries.error().code();
    if (code == ErrorCode::kNotFound && !repair) continue;  // another process's add in progress
    const bool unusable = code == ErrorCode::kNotFound || code == ErrorCode::kCorruptData ||
                          code == ErrorCode::kVersionMismatch;
    if (!unusable) return std::unexpected(entries.error());  // e.g. an I/O error: try again
    if (!repair) {
      // A writable open drops it (below), so adding the source again fixes it.
      return MakeError(code, "video track " + std::to_string(e.id) + " (\"" + e.metadata.title +
                                 "\") cannot be used: " + entries.error().message() +
                                 "; replace it with `earshot catalog add --video " + e.source +
                                 "` (and its title, rule and other metadata)");
    }
    // Repair: the row has no usable fingerprints.
    if (auto s = db_->Remove(e.id); !s) return std::unexpected(s.error());
    std::error_code ec;
    fs::remove(file, ec);
    ids.erase(e.id);
    if (repaired) {
      repaired->push_back("video track " + std::to_string(e.id) + " (\"" + e.metadata.title +
                          "\") " +
                          (code == ErrorCode::kNotFound
                               ? std::string("had no fingerprints (an interrupted add)")
                               : "had unusable fingerprints (" + entries.error().message() + ")") +
                          " and was removed; add " + e.source + " again");
    }
  }
  if (repair) {
    // Files without a row: an interrupted Remove, or the temp file of an
    // interrupted add. No other process writes while this one holds the
    // writer lock, so nothing here is work in progress.
    const fs::path folder = dir_ / "video";
    std::error_code ec;
    std::vector<fs::path> stray;
    for (auto it = fs::directory_iterator(folder, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      const fs::path& file = it->path();
      const TrackId id = VideoFileId(file);
      if (id != 0 && ids.count(id)) continue;
      if (id == 0 && file.extension() != ".tmp" && file.extension() != ".vfp") continue;
      stray.push_back(file);
    }
    for (const fs::path& file : stray) {
      if (!fs::remove(file, ec) && ec) {
        return std::unexpected(PosixError("remove", file, ec.value()));
      }
      if (repaired) {
        repaired->push_back("deleted " + file.string() +
                            ": video fingerprints of no catalogued track (an interrupted remove)");
      }
    }
    if (!stray.empty()) (void)SyncDirectory(folder);
  }
  std::lock_guard lock(video_mu_);
  bool changed = !fresh.empty();
  for (auto& [id, entries] : fresh) video_refs_[id] = std::move(entries);
  for (auto it = video_refs_.begin(); it != video_refs_.end();) {
    if (ids.count(it->first)) {
      ++it;
    } else {
      it = video_refs_.erase(it);
      changed = true;
    }
  }
  if (changed) video_snapshot_.reset();
  return Ok();
}

std::vector<AddOutcome> Catalog::Add(const std::vector<AddItem>& items, int jobs,
                                     const std::function<void(const AddProgress&)>& progress) {
  std::lock_guard write_lock(write_mu_);
  std::vector<AddOutcome> outcomes(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    outcomes[i].path = items[i].path;
    outcomes[i].entry = MakeError(ErrorCode::kInternal, "not processed");
  }
  if (items.empty()) return outcomes;

  // Workers decode and fingerprint; this thread stores, in batches.
  ParallelPrepare<Prepared> pool(items.size(), jobs,
                                 [&](size_t i) { return PrepareItem(i, items[i], *db_, params_); });

  AddProgress state;
  state.total = items.size();
  std::vector<Prepared> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<recognition::TrackFingerprint> prints;
    std::vector<size_t> stored;  // indexes into batch of rows inserted
    for (size_t k = 0; k < batch.size(); ++k) {
      Prepared& p = batch[k];
      auto id = db_->Insert(*p.entry);
      if (!id) {
        outcomes[p.item].entry = std::unexpected(id.error().Wrap(items[p.item].path.string()));
        continue;
      }
      p.entry->id = *id;
      p.fingerprint.track = *id;
      prints.push_back(std::move(p.fingerprint));
      stored.push_back(k);
    }
    Status added = prints.empty() ? Ok() : index_->Add(std::move(prints));
    for (size_t k : stored) {
      Prepared& p = batch[k];
      if (added) {
        // Report the entry as stored (the database normalises some fields).
        auto stored_entry = db_->Get(p.entry->id);
        outcomes[p.item].entry = stored_entry ? std::move(*stored_entry) : std::move(*p.entry);
      } else {
        (void)db_->Remove(p.entry->id);  // best effort; Repair() catches what is left
        outcomes[p.item].entry = std::unexpected(added.error().Wrap("adding fingerprints"));
      }
    }
    batch.clear();
  };

  for (size_t finished = 0; finished < items.size(); ++finished) {
    Prepared p = pool.Next();
    if (p.entry) {
      state.audio_seconds += p.entry->duration_s;
      batch.push_back(std::move(p));
      if (batch.size() >= kBatchTracks) flush();
    } else {
      outcomes[p.item].entry = std::unexpected(p.entry.error());
    }
    ++state.done;
    if (progress) progress(state);
  }
  flush();
  return outcomes;
}

std::vector<AddOutcome> Catalog::AddVideo(const std::vector<AddItem>& items, int jobs,
                                          const std::function<void(const AddProgress&)>& progress) {
  std::lock_guard write_lock(write_mu_);
  std::vector<AddOutcome> outcomes(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    outcomes[i].path = items[i].path;
    outcomes[i].entry = MakeError(ErrorCode::kInternal, "not processed");
  }
  if (items.empty()) return outcomes;
  AddProgress state;
  state.total = items.size();
  if (read_only_) {
    for (size_t i = 0; i < items.size(); ++i) {
      outcomes[i].entry = MakeError(ErrorCode::kFailedPrecondition,
                                    "cannot add " + items[i].path.string() + ": catalog " +
                                        dir_.string() + " is open read-only");
      ++state.done;
      if (progress) progress(state);
    }
    return outcomes;
  }
  const fs::path folder = dir_ / "video";
  {
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) {
      const Error error(ErrorCode::kIoError,
                        "cannot create folder " + folder.string() + ": " + ec.message());
      for (size_t i = 0; i < items.size(); ++i) {
        outcomes[i].entry = std::unexpected(error);
        ++state.done;
        if (progress) progress(state);
      }
      return outcomes;
    }
  }

  // Workers decode and hash; this thread stores each reference as it comes.
  ParallelPrepare<PreparedVideo> pool(items.size(), jobs, [&](size_t i) {
    return PrepareVideoItem(i, items[i], *db_, video_params_);
  });

  // Phase 1: the row; phase 2: the file; the row goes again if the file fails.
  auto store = [&](PreparedVideo& p) -> Result<store::CatalogEntry> {
    const std::string name = items[p.item].path.string();
    auto id = db_->Insert(*p.entry);
    if (!id) return std::unexpected(id.error().Wrap(name));
    video::HashIndex index;
    for (const video::IndexEntry& e : p.hashes) index.Add(*id, e.time_ms, e.hash, e.view);
    const std::vector<uint8_t> bytes = index.Serialize();
    const fs::path file = VideoFile(*id);
    bool renamed = false;
    Status written = WriteFileAtomically(
        file, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
        &renamed);
    if (!written) {
      if (renamed) {
        std::error_code ec;
        fs::remove(file, ec);
      }
      (void)db_->Remove(*id);  // best effort; Repair() catches what is left
      return std::unexpected(written.error().Wrap("storing the video fingerprints of " + name));
    }
    std::vector<video::IndexEntry> hashes = std::move(p.hashes);
    for (video::IndexEntry& e : hashes) e.ref_id = *id;
    {
      std::lock_guard lock(video_mu_);
      video_refs_[*id] = std::make_shared<const std::vector<video::IndexEntry>>(std::move(hashes));
      video_snapshot_.reset();
    }
    // Report the entry as stored (the database normalises some fields).
    auto stored = db_->Get(*id);
    if (stored) return stored;
    p.entry->id = *id;
    return std::move(*p.entry);
  };

  for (size_t finished = 0; finished < items.size(); ++finished) {
    PreparedVideo p = pool.Next();
    if (p.entry) {
      state.audio_seconds += p.entry->duration_s;
      outcomes[p.item].entry = store(p);
    } else {
      outcomes[p.item].entry = std::unexpected(p.entry.error());
    }
    ++state.done;
    if (progress) progress(state);
  }
  return outcomes;
}

Status Catalog::Remove(const std::vector<TrackId>& requested) {
  std::lock_guard write_lock(write_mu_);
  std::vector<TrackId> ids = requested;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<TrackId> audio, videos;
  for (TrackId id : ids) {
    auto e = db_->Get(id);
    if (!e) return std::unexpected(e.error());
    (e->kind == store::MediaKind::kVideo ? videos : audio).push_back(id);
  }
  if (read_only_) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "cannot remove tracks: catalog " + dir_.string() + " is open read-only");
  }
  if (!audio.empty()) {
    if (auto s = index_->Remove(audio); !s) {
      return std::unexpected(s.error().Wrap("removing fingerprints"));
    }
  }
  for (TrackId id : ids) {
    if (auto s = db_->Remove(id); !s) return std::unexpected(s.error());
  }
  if (!videos.empty()) {
    // The rows are gone, so readers no longer load these files; a file left
    // behind (crash, I/O error) is deleted by the next writable Open.
    for (TrackId id : videos) {
      std::error_code ec;
      fs::remove(VideoFile(id), ec);
    }
    (void)SyncDirectory(dir_ / "video");
    std::lock_guard lock(video_mu_);
    for (TrackId id : videos) video_refs_.erase(id);
    video_snapshot_.reset();
  }
  return Ok();
}

Result<std::vector<store::CatalogEntry>> Catalog::List(const store::CatalogDb::ListFilter& filter) const {
  return db_->List(filter);
}

Result<store::CatalogEntry> Catalog::Get(TrackId id) const { return db_->Get(id); }

Result<CatalogStats> Catalog::Stats() const {
  auto db_stats = db_->GetStats();
  if (!db_stats) return std::unexpected(db_stats.error());
  const index::IndexStore::Stats index_stats = index_->GetStats();
  CatalogStats out;
  out.tracks = db_stats->tracks_by_kind[store::MediaKind::kAudio];
  out.audio_seconds = db_stats->duration_s_by_kind[store::MediaKind::kAudio];
  out.video_references = db_stats->tracks_by_kind[store::MediaKind::kVideo];
  out.video_seconds = db_stats->duration_s_by_kind[store::MediaKind::kVideo];
  {
    std::lock_guard lock(video_mu_);
    for (const auto& [id, entries] : video_refs_) out.video_index_entries += entries->size();
  }
  out.by_rule = db_stats->by_rule;
  out.postings = index_stats.postings;
  out.index_bytes = index_stats.bytes_on_disk;
  out.segments = index_stats.segments;
  out.algorithm_version = recognition::kAlgorithmVersion;
  return out;
}

std::shared_ptr<const recognition::IndexReader> Catalog::Snapshot() const { return index_->Snapshot(); }

std::shared_ptr<const video::HashIndex> Catalog::VideoSnapshot() const {
  std::lock_guard lock(video_mu_);
  if (!video_snapshot_) {
    auto index = std::make_shared<video::HashIndex>();
    for (const auto& [id, entries] : video_refs_) {
      for (const video::IndexEntry& e : *entries) index->Add(e.ref_id, e.time_ms, e.hash, e.view);
    }
    // An empty index is searched without tables (nothing to find), so an
    // audio-only catalog does not pay for them.
    if (index->size() > 0) index->Build();
    video_snapshot_ = std::move(index);
  }
  return video_snapshot_;
}

Status Catalog::Refresh() {
  // Serialised with AddVideo and Remove, which change the video set too.
  std::lock_guard write_lock(write_mu_);
  if (auto s = index_->Refresh(); !s) return s;
  return SyncVideo(/*repair=*/false, nullptr);
}

namespace {

std::vector<fs::path> FindFiles(const fs::path& folder, const std::set<std::string>& extensions) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (extensions.count(ext)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<fs::path> FindAudioFiles(const fs::path& folder) {
  static const std::set<std::string> kExtensions = {
      ".aac",  ".ac3", ".aif",  ".aiff", ".alac", ".ape",  ".au",  ".caf",
      ".flac", ".m4a", ".mka",  ".mkv",  ".mp2",  ".mp3",  ".mp4", ".mpc",
      ".oga",  ".ogg", ".opus", ".spx",  ".wav",  ".webm", ".wma", ".wv"};
  return FindFiles(folder, kExtensions);
}

std::vector<fs::path> FindVideoFiles(const fs::path& folder) {
  static const std::set<std::string> kExtensions = {".avi", ".flv",  ".m4v", ".mkv", ".mov",
                                                    ".mp4", ".mpeg", ".mpg", ".ts",  ".webm"};
  return FindFiles(folder, kExtensions);
}

}  // namespace earshot::catalog
