#include "catalog/catalog.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <optional>
#include <set>
#include <thread>

#include "media/audio_decoder.h"
#include "recognition/fingerprinter.h"
#include "store/content_hash.h"

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

Prepared PrepareItem(size_t index, const AddItem& item, const store::CatalogDb& db,
                     const recognition::FingerprintParams& params) {
  Prepared out;
  out.item = index;
  const std::string name = item.path.string();
  auto sha = store::Sha256File(item.path);
  if (!sha) {
    out.entry = std::unexpected(sha.error());
    return out;
  }
  auto existing = db.FindBySha256(*sha);
  if (!existing) {
    out.entry = std::unexpected(existing.error());
    return out;
  }
  if (existing->has_value()) {
    out.entry = MakeError(ErrorCode::kAlreadyExists,
                          name + " is already in the catalog as track " +
                              std::to_string((*existing)->id) + " (\"" +
                              (*existing)->metadata.title + "\")");
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
  store::CatalogEntry entry;
  entry.kind = store::MediaKind::kAudio;
  entry.source = name;
  entry.content_sha256 = *sha;
  entry.metadata = item.metadata;
  if (entry.metadata.title.empty()) entry.metadata.title = item.path.stem().string();
  entry.rule = item.rule;
  entry.duration_s = seconds;
  entry.added_at_unix_ms = NowUnixMs();
  entry.algorithm_version = recognition::kAlgorithmVersion;
  out.entry = std::move(entry);
  return out;
}

}  // namespace

Catalog::Catalog(fs::path dir, std::unique_ptr<store::CatalogDb> db,
                 std::unique_ptr<index::IndexStore> index)
    : dir_(std::move(dir)), db_(std::move(db)), index_(std::move(index)) {}

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
  std::unique_ptr<Catalog> catalog(new Catalog(dir, std::move(*db), std::move(*index)));
  if (!options.read_only) {
    if (auto s = catalog->Repair(repaired); !s) return std::unexpected(s.error());
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
  std::mutex mu;
  std::condition_variable ready_cv;
  std::deque<Prepared> ready;
  std::atomic<size_t> next{0};
  const size_t workers = static_cast<size_t>(std::clamp(jobs, 1, 64));
  std::vector<std::jthread> threads;
  for (size_t w = 0; w < std::min(workers, items.size()); ++w) {
    threads.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < items.size();) {
        Prepared p = PrepareItem(i, items[i], *db_, params_);
        std::lock_guard lock(mu);
        ready.push_back(std::move(p));
        ready_cv.notify_one();
      }
    });
  }

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
    Prepared p;
    {
      std::unique_lock lock(mu);
      ready_cv.wait(lock, [&] { return !ready.empty(); });
      p = std::move(ready.front());
      ready.pop_front();
    }
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

Status Catalog::Remove(const std::vector<TrackId>& requested) {
  std::lock_guard write_lock(write_mu_);
  std::vector<TrackId> ids = requested;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (TrackId id : ids) {
    if (auto e = db_->Get(id); !e) return std::unexpected(e.error());
  }
  if (auto s = index_->Remove(ids); !s) return std::unexpected(s.error().Wrap("removing fingerprints"));
  for (TrackId id : ids) {
    if (auto s = db_->Remove(id); !s) return std::unexpected(s.error());
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
  out.tracks = db_stats->tracks;
  out.audio_seconds = db_stats->total_duration_s;
  out.by_rule = db_stats->by_rule;
  out.postings = index_stats.postings;
  out.index_bytes = index_stats.bytes_on_disk;
  out.segments = index_stats.segments;
  out.algorithm_version = recognition::kAlgorithmVersion;
  return out;
}

std::shared_ptr<const recognition::IndexReader> Catalog::Snapshot() const { return index_->Snapshot(); }

Status Catalog::Refresh() { return index_->Refresh(); }

std::vector<fs::path> FindAudioFiles(const fs::path& folder) {
  static const std::set<std::string> kExtensions = {
      ".aac", ".ac3", ".aif", ".aiff", ".alac", ".ape", ".au",  ".caf", ".flac", ".m4a", ".mka",
      ".mkv", ".mp2", ".mp3", ".mp4",  ".mpc",  ".oga", ".ogg", ".opus", ".spx", ".wav", ".webm",
      ".wma", ".wv"};
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (kExtensions.count(ext)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace earshot::catalog
