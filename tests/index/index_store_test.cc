#include "index/index_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "index/manifest.h"
#include "recognition/index_segment.h"
#include "recognition/memory_index.h"

namespace earshot::index {
namespace {

using recognition::HashKey;
using recognition::IndexReader;
using recognition::MemoryIndex;
using recognition::Posting;
using recognition::TrackFingerprint;
using recognition::TrackId;
namespace fs = std::filesystem;

constexpr uint32_t kAlgo = 4;

// A fresh directory, deleted with its contents at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "earshot-index-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Deterministic fingerprint of a track id, so any thread can recompute it.
TrackFingerprint MakeTrack(TrackId id, size_t hashes = 150) {
  std::mt19937_64 rng(id * 7919ull + 17);
  TrackFingerprint t;
  t.track = id;
  t.frame_count = 500 + static_cast<uint32_t>(rng() % 5000);
  for (size_t i = 0; i < hashes; ++i) {
    t.hashes.push_back(
        {static_cast<HashKey>(rng() % 4096), static_cast<uint32_t>(rng() % t.frame_count)});
  }
  t.side_data.resize(id % 17);
  for (size_t i = 0; i < t.side_data.size(); ++i) t.side_data[i] = static_cast<uint8_t>(id + i);
  return t;
}

std::vector<TrackFingerprint> MakeTracks(TrackId first, TrackId count) {
  std::vector<TrackFingerprint> out;
  for (TrackId id = first; id < first + count; ++id) out.push_back(MakeTrack(id));
  return out;
}

IndexStoreOptions Options(bool background = false) {
  IndexStoreOptions o;
  o.algorithm_version = kAlgo;
  o.background_merge = background;
  return o;
}

std::unique_ptr<IndexStore> OpenOrDie(const fs::path& dir, const IndexStoreOptions& options) {
  Result<std::unique_ptr<IndexStore>> store = IndexStore::Open(dir, options);
  EXPECT_TRUE(store.has_value()) << store.error().ToString();
  return store ? std::move(*store) : nullptr;
}

// Every key 0..4095 (all keys MakeTrack uses) answers like the reference.
void ExpectSame(const IndexReader& index, const MemoryIndex& ref) {
  ASSERT_EQ(index.TrackCount(), ref.TrackCount());
  ASSERT_EQ(index.PostingCount(), ref.PostingCount());
  std::vector<Posting> got;
  std::vector<Posting> want;
  for (HashKey key = 0; key < 4100; ++key) {
    got.clear();
    want.clear();
    index.Lookup(key, got);
    ref.Lookup(key, want);
    ASSERT_EQ(got, want) << "key " << key;
  }
  for (TrackId id : ref.Tracks()) {
    ASSERT_TRUE(index.HasTrack(id));
    ASSERT_EQ(index.FrameCount(id), ref.FrameCount(id));
    const auto a = index.SideData(id);
    const auto b = ref.SideData(id);
    ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end()));
  }
}

std::set<std::string> Files(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

size_t SegmentFiles(const fs::path& dir) {
  size_t n = 0;
  for (const std::string& name : Files(dir)) n += ParseSegmentFileName(name).has_value();
  return n;
}

void FlipByte(const fs::path& file, uint64_t at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

std::string OnlySegment(const fs::path& dir) {
  for (const std::string& name : Files(dir)) {
    if (ParseSegmentFileName(name)) return name;
  }
  return "";
}

TEST(IndexStoreTest, CreateAddLookupAndReopen) {
  TempDir dir;
  MemoryIndex ref;
  {
    auto store = OpenOrDie(dir.path(), Options());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->Snapshot()->TrackCount(), 0u);
    std::vector<TrackFingerprint> a = MakeTracks(1, 20);
    std::vector<TrackFingerprint> b = MakeTracks(100, 30);
    for (const auto& t : a) ASSERT_TRUE(ref.Add(t).has_value());
    for (const auto& t : b) ASSERT_TRUE(ref.Add(t).has_value());
    ASSERT_TRUE(store->Add(a).has_value());
    ASSERT_TRUE(store->Add(b).has_value());
    ASSERT_TRUE(store->Add({}).has_value());  // no-op
    ExpectSame(*store->Snapshot(), ref);
    const IndexStore::Stats stats = store->GetStats();
    EXPECT_EQ(stats.tracks, 50u);
    EXPECT_EQ(stats.postings, ref.PostingCount());
    EXPECT_EQ(stats.segments, 2u);
    uint64_t frames = 0;
    for (TrackId id : ref.Tracks()) frames += ref.FrameCount(id);
    EXPECT_EQ(stats.frames, frames);
    uint64_t bytes = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) {
      if (ParseSegmentFileName(e.path().filename().string())) bytes += e.file_size();
    }
    EXPECT_EQ(stats.bytes_on_disk, bytes);
    ASSERT_TRUE(store->Verify().has_value());
  }
  auto store = OpenOrDie(dir.path(), Options());
  ASSERT_TRUE(store);
  ExpectSame(*store->Snapshot(), ref);
  EXPECT_EQ(SegmentFiles(dir.path()), 2u);
}

TEST(IndexStoreTest, OpenMissingDirectoryWithoutCreateIsNotFound) {
  TempDir dir;
  IndexStoreOptions options = Options();
  options.create_if_missing = false;
  auto store = IndexStore::Open(dir.path() / "nope", options);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kNotFound);
  store = IndexStore::Open(dir.path(), options);  // exists, but holds no index
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir.path() / "MANIFEST"));
  options.read_only = true;
  store = IndexStore::Open(dir.path(), options);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(store.error().message().find("no MANIFEST"), std::string::npos);
}

TEST(IndexStoreTest, AddingALiveTrackAgainFailsAndChangesNothing) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Options());
  ASSERT_TRUE(store->Add(MakeTracks(1, 5)).has_value());
  const uint64_t generation = store->GetStats().generation;
  Status again = store->Add({MakeTrack(10), MakeTrack(3)});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(again.error().message().find("track 3"), std::string::npos);
  EXPECT_FALSE(store->Snapshot()->HasTrack(10));  // all or nothing
  Status twice = store->Add({MakeTrack(11), MakeTrack(11)});
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->GetStats().generation, generation);
  EXPECT_EQ(SegmentFiles(dir.path()), 1u);
}

TEST(IndexStoreTest, RemoveIsDurableAndAnIdMayComeBack) {
  TempDir dir;
  MemoryIndex ref;
  for (const auto& t : MakeTracks(1, 30)) ASSERT_TRUE(ref.Add(t).has_value());
  {
    auto store = OpenOrDie(dir.path(), Options());
    ASSERT_TRUE(store->Add(MakeTracks(1, 15)).has_value());
    ASSERT_TRUE(store->Add(MakeTracks(16, 15)).has_value());
    ASSERT_TRUE(store->Remove({3, 20, 20, 999}).has_value());  // repeats and unknown ids ignored
    ASSERT_TRUE(ref.Remove(3).has_value());
    ASSERT_TRUE(ref.Remove(20).has_value());
    ExpectSame(*store->Snapshot(), ref);
    ASSERT_TRUE(store->Remove({}).has_value());
  }
  auto store = OpenOrDie(dir.path(), Options());
  ExpectSame(*store->Snapshot(), ref);
  // Re-adding a removed id with other content.
  TrackFingerprint again = MakeTrack(3);
  again.hashes = {{7, 1}, {4095, 2}};
  again.frame_count = 77;
  ASSERT_TRUE(store->Add({again}).has_value());
  ASSERT_TRUE(ref.Add(again).has_value());
  ExpectSame(*store->Snapshot(), ref);
  ASSERT_TRUE(store->CompactNow().has_value());
  ExpectSame(*store->Snapshot(), ref);
  EXPECT_EQ(store->GetStats().segments, 1u);
}

TEST(IndexStoreTest, RemovingEveryTrackOfASegmentDropsIt) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Options());
  ASSERT_TRUE(store->Add(MakeTracks(1, 3)).has_value());
  ASSERT_TRUE(store->Add(MakeTracks(10, 3)).has_value());
  ASSERT_TRUE(store->Remove({1, 2, 3}).has_value());
  EXPECT_EQ(store->GetStats().segments, 1u);
  EXPECT_EQ(SegmentFiles(dir.path()), 1u);  // no snapshot held it: deleted at once
}

TEST(IndexStoreTest, SnapshotIsolation) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Options());
  MemoryIndex ref;
  for (const auto& t : MakeTracks(1, 40)) ASSERT_TRUE(ref.Add(t).has_value());
  ASSERT_TRUE(store->Add(MakeTracks(1, 20)).has_value());
  ASSERT_TRUE(store->Add(MakeTracks(21, 20)).has_value());
  std::shared_ptr<const IndexReader> old = store->Snapshot();
  const std::set<std::string> old_files = Files(dir.path());

  ASSERT_TRUE(store->Add(MakeTracks(100, 10)).has_value());
  ASSERT_TRUE(store->Remove({1, 2, 30}).has_value());
  ASSERT_TRUE(store->CompactNow().has_value());
  EXPECT_EQ(store->GetStats().segments, 1u);

  // The old snapshot still answers exactly as before, from the old files.
  ExpectSame(*old, ref);
  for (const std::string& name : old_files) {
    if (ParseSegmentFileName(name)) {
      EXPECT_TRUE(fs::exists(dir.path() / name)) << name;
    }
  }
  old.reset();  // the last user of the merged-away segments
  EXPECT_EQ(SegmentFiles(dir.path()), 1u);

  for (const auto& t : MakeTracks(100, 10)) ASSERT_TRUE(ref.Add(t).has_value());
  for (TrackId id : {1u, 2u, 30u}) ASSERT_TRUE(ref.Remove(id).has_value());
  ExpectSame(*store->Snapshot(), ref);
}

TEST(IndexStoreTest, CompactionDropsRemovedTracksPhysically) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Options());
  for (TrackId batch = 0; batch < 10; ++batch) {
    ASSERT_TRUE(store->Add(MakeTracks(batch * 10 + 1, 10)).has_value());
  }
  EXPECT_EQ(store->GetStats().segments, 10u);
  std::vector<TrackId> removed;
  for (TrackId id = 1; id <= 100; id += 3) removed.push_back(id);
  ASSERT_TRUE(store->Remove(removed).has_value());
  const IndexStore::Stats before = store->GetStats();
  ASSERT_TRUE(store->CompactNow().has_value());
  const IndexStore::Stats after = store->GetStats();
  EXPECT_EQ(after.segments, 1u);
  EXPECT_EQ(after.tracks, before.tracks);
  EXPECT_EQ(after.postings, before.postings);
  EXPECT_LT(after.bytes_on_disk, before.bytes_on_disk);
  ASSERT_TRUE(store->CompactNow().has_value());  // nothing left to do
  EXPECT_EQ(store->GetStats().generation, after.generation);

  // The one segment file holds only live tracks.
  const std::string name = OnlySegment(dir.path());
  std::ifstream in(dir.path() / name, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  Result<recognition::SegmentView> view = recognition::SegmentView::Open(bytes, kAlgo);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->TrackCount(), 100u - removed.size());
  for (TrackId id : removed) EXPECT_FALSE(view->HasTrack(id));
  EXPECT_TRUE(fs::exists(dir.path() / "MANIFEST"));
  Result<std::string> text = ReadFile(dir.path() / "MANIFEST");
  ASSERT_TRUE(text.has_value());
  Result<Manifest> manifest = DecodeManifest(*text);
  ASSERT_TRUE(manifest.has_value());
  ASSERT_EQ(manifest->segments.size(), 1u);
  EXPECT_TRUE(manifest->segments[0].removed.empty());
}

TEST(IndexStoreTest, BackgroundMergeKeepsSegmentCountBounded) {
  TempDir dir;
  IndexStoreOptions options = Options(/*background=*/true);
  options.merge_trigger_segments = 4;
  options.merge_factor = 3;
  auto store = OpenOrDie(dir.path(), options);
  MemoryIndex ref;
  for (TrackId batch = 0; batch < 25; ++batch) {
    std::vector<TrackFingerprint> tracks = MakeTracks(batch * 4 + 1, 4);
    for (const auto& t : tracks) ASSERT_TRUE(ref.Add(t).has_value());
    ASSERT_TRUE(store->Add(std::move(tracks)).has_value());
  }
  ASSERT_TRUE(store->WaitForMerges().has_value());
  EXPECT_LE(store->GetStats().segments, 4u);
  EXPECT_EQ(SegmentFiles(dir.path()), store->GetStats().segments);
  ExpectSame(*store->Snapshot(), ref);

  // Removing most of a segment's tracks makes the merger rewrite it.
  std::vector<TrackId> removed;
  for (TrackId id = 1; id <= 100; ++id) {
    if (id % 4 != 0) removed.push_back(id);
  }
  ASSERT_TRUE(store->Remove(removed).has_value());
  for (TrackId id : removed) ASSERT_TRUE(ref.Remove(id).has_value());
  ASSERT_TRUE(store->WaitForMerges().has_value());
  ExpectSame(*store->Snapshot(), ref);
  Result<Manifest> manifest = DecodeManifest(*ReadFile(dir.path() / "MANIFEST"));
  ASSERT_TRUE(manifest.has_value());
  for (const ManifestSegment& s : manifest->segments) EXPECT_TRUE(s.removed.empty()) << s.file;
}

// Readers check invariants of whatever snapshot they get while a writer adds,
// removes and merges: a track is either fully present (every posting, its
// frame count and side data) or fully absent.
TEST(IndexStoreTest, ConcurrentReadersAndWriter) {
  TempDir dir;
  IndexStoreOptions options = Options(/*background=*/true);
  options.merge_trigger_segments = 3;
  options.merge_factor = 2;
  auto store = OpenOrDie(dir.path(), options);
  constexpr TrackId kTracks = 240;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> checks{0};
  std::atomic<int> failures{0};

  auto reader = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<Posting> out;
    while (!done.load()) {
      std::shared_ptr<const IndexReader> snap = store->Snapshot();
      uint64_t live = 0;
      for (TrackId id = 1; id <= kTracks; ++id) live += snap->HasTrack(id);
      if (live != snap->TrackCount()) ++failures;
      for (int probe = 0; probe < 5; ++probe) {
        const TrackId id = 1 + static_cast<TrackId>(rng() % kTracks);
        const TrackFingerprint t = MakeTrack(id);
        const bool present = snap->HasTrack(id);
        if (present && (snap->FrameCount(id) != t.frame_count ||
                        snap->SideData(id).size() != t.side_data.size())) {
          ++failures;
        }
        for (const auto& h : t.hashes) {
          out.clear();
          snap->Lookup(h.hash, out);
          if (!std::is_sorted(out.begin(), out.end(), [](const Posting& a, const Posting& b) {
                return a.track != b.track ? a.track < b.track : a.time < b.time;
              })) {
            ++failures;
          }
          const bool found = std::find(out.begin(), out.end(), Posting{id, h.time}) != out.end();
          if (found != present) ++failures;
        }
        ++checks;
      }
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader, 100 + i);

  std::thread writer([&] {
    for (TrackId first = 1; first <= kTracks; first += 8) {
      ASSERT_TRUE(store->Add(MakeTracks(first, 8)).has_value());
      if (first > 32) {
        ASSERT_TRUE(store->Remove({first - 31, first - 29}).has_value());
      }
      if (first % 64 == 1) {
        ASSERT_TRUE(store->CompactNow().has_value());
      }
    }
  });
  writer.join();
  ASSERT_TRUE(store->WaitForMerges().has_value());
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(checks.load(), 10u);
  ASSERT_TRUE(store->Verify().has_value());
}

TEST(IndexStoreTest, ReopenAfterCrashLeftovers) {
  TempDir dir;
  MemoryIndex ref;
  {
    auto store = OpenOrDie(dir.path(), Options());
    ASSERT_TRUE(store->Add(MakeTracks(1, 10)).has_value());
    for (const auto& t : MakeTracks(1, 10)) ASSERT_TRUE(ref.Add(t).has_value());
  }
  // What a crash can leave: a half-written segment, a complete segment that
  // never made it into the MANIFEST, a half-written MANIFEST.
  const std::vector<uint8_t> orphan = recognition::BuildSegment(MakeTracks(500, 3), kAlgo);
  std::ofstream(dir.path() / SegmentFileName(77), std::ios::binary)
      .write(reinterpret_cast<const char*>(orphan.data()),
             static_cast<std::streamsize>(orphan.size()));
  std::ofstream(dir.path() / (SegmentFileName(78) + ".tmp")) << "half a segment";
  std::ofstream(dir.path() / "MANIFEST.tmp") << "earshot-index-manifest 1\nalgor";
  std::ofstream(dir.path() / "notes.txt") << "not ours";

  {  // A reader ignores and keeps them.
    IndexStoreOptions ro = Options();
    ro.read_only = true;
    auto reader = OpenOrDie(dir.path(), ro);
    ExpectSame(*reader->Snapshot(), ref);
    EXPECT_TRUE(fs::exists(dir.path() / SegmentFileName(77)));
  }
  auto store = OpenOrDie(dir.path(), Options());
  ExpectSame(*store->Snapshot(), ref);
  EXPECT_EQ(Files(dir.path()),
            (std::set<std::string>{"LOCK", "MANIFEST", SegmentFileName(1), "notes.txt"}));
  // New segment numbers continue after the MANIFEST's next-segment.
  ASSERT_TRUE(store->Add(MakeTracks(500, 3)).has_value());
  EXPECT_TRUE(fs::exists(dir.path() / SegmentFileName(2)));
}

TEST(IndexStoreTest, SecondWriterIsRefused) {
  TempDir dir;
  auto first = OpenOrDie(dir.path(), Options());
  Result<std::unique_ptr<IndexStore>> second = IndexStore::Open(dir.path(), Options());
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message().find("is locked by another process"), std::string::npos);
  EXPECT_NE(second.error().message().find(dir.path().string()), std::string::npos);

  IndexStoreOptions waiting = Options();
  waiting.lock_timeout = std::chrono::milliseconds(50);
  EXPECT_FALSE(IndexStore::Open(dir.path(), waiting).has_value());
  first.reset();
  EXPECT_TRUE(IndexStore::Open(dir.path(), Options()).has_value());
}

// The same across processes: a forked child is refused the writer lock but
// may open read-only and see the parent's tracks.
TEST(IndexStoreTest, SecondWriterProcessIsRefusedAndReaderProcessReads) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Options());  // no background thread: safe to fork
  ASSERT_TRUE(store->Add(MakeTracks(1, 7)).has_value());
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    auto writer = IndexStore::Open(dir.path(), Options());
    if (writer.has_value() || writer.error().code() != ErrorCode::kUnavailable) code |= 1;
    IndexStoreOptions ro = Options();
    ro.read_only = true;
    auto reader = IndexStore::Open(dir.path(), ro);
    if (!reader.has_value() || (*reader)->Snapshot()->TrackCount() != 7) code |= 2;
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(IndexStoreTest, ReadOnlyOpenerSeesChangesAfterRefresh) {
  TempDir dir;
  auto writer = OpenOrDie(dir.path(), Options());
  ASSERT_TRUE(writer->Add(MakeTracks(1, 5)).has_value());
  IndexStoreOptions ro = Options();
  ro.read_only = true;
  auto reader = OpenOrDie(dir.path(), ro);
  EXPECT_EQ(reader->Snapshot()->TrackCount(), 5u);

  ASSERT_TRUE(writer->Add(MakeTracks(10, 5)).has_value());
  ASSERT_TRUE(writer->Remove({1}).has_value());
  EXPECT_FALSE(reader->Snapshot()->HasTrack(12));  // not yet
  ASSERT_TRUE(reader->Refresh().has_value());
  EXPECT_TRUE(reader->Snapshot()->HasTrack(12));
  EXPECT_FALSE(reader->Snapshot()->HasTrack(1));
  EXPECT_EQ(reader->Snapshot()->TrackCount(), 9u);
  const uint64_t generation = reader->GetStats().generation;
  ASSERT_TRUE(reader->Refresh().has_value());  // unchanged
  EXPECT_EQ(reader->GetStats().generation, generation);

  // The writer merges and deletes the files the reader maps; the reader's
  // snapshot keeps working and a Refresh moves it to the new file.
  std::shared_ptr<const IndexReader> held = reader->Snapshot();
  ASSERT_TRUE(writer->CompactNow().has_value());
  EXPECT_EQ(held->TrackCount(), 9u);
  std::vector<Posting> out;
  held->Lookup(MakeTrack(12).hashes[0].hash, out);
  EXPECT_FALSE(out.empty());
  ASSERT_TRUE(reader->Refresh().has_value());
  EXPECT_EQ(reader->GetStats().segments, 1u);
  MemoryIndex ref;
  for (const auto& t : MakeTracks(2, 4)) ASSERT_TRUE(ref.Add(t).has_value());
  for (const auto& t : MakeTracks(10, 5)) ASSERT_TRUE(ref.Add(t).has_value());
  ExpectSame(*reader->Snapshot(), ref);

  Status add = reader->Add(MakeTracks(50, 1));
  ASSERT_FALSE(add.has_value());
  EXPECT_EQ(add.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(reader->Remove({2}).has_value());
  EXPECT_FALSE(reader->CompactNow().has_value());
}

TEST(IndexStoreTest, AlgorithmVersionMismatch) {
  TempDir dir;
  IndexStoreOptions v3 = Options();
  v3.algorithm_version = 3;
  {
    auto store = OpenOrDie(dir.path(), v3);
    ASSERT_TRUE(store->Add(MakeTracks(1, 2)).has_value());
  }
  IndexStoreOptions v4 = Options();
  v4.algorithm_version = 4;
  for (bool read_only : {false, true}) {
    v4.read_only = read_only;
    Result<std::unique_ptr<IndexStore>> store = IndexStore::Open(dir.path(), v4);
    ASSERT_FALSE(store.has_value());
    EXPECT_EQ(store.error().code(), ErrorCode::kVersionMismatch);
    EXPECT_NE(store.error().message().find(
                  "was built with algorithm version 3, this earshot uses 4: rebuild the catalog"),
              std::string::npos)
        << store.error().message();
  }
}

TEST(IndexStoreTest, DamagedManifestIsCorruptData) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path(), Options());
    ASSERT_TRUE(store->Add(MakeTracks(1, 2)).has_value());
  }
  const fs::path manifest = dir.path() / "MANIFEST";
  const std::string good = *ReadFile(manifest);
  for (size_t at = 0; at < good.size(); at += 3) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x04);
    std::ofstream(manifest, std::ios::binary | std::ios::trunc) << bad;
    Result<std::unique_ptr<IndexStore>> store = IndexStore::Open(dir.path(), Options());
    ASSERT_FALSE(store.has_value()) << "byte " << at;
    EXPECT_TRUE(store.error().code() == ErrorCode::kCorruptData ||
                store.error().code() == ErrorCode::kVersionMismatch)
        << store.error().ToString();
    EXPECT_NE(store.error().message().find("MANIFEST"), std::string::npos);
  }
  std::ofstream(manifest, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() / 2);
  Result<std::unique_ptr<IndexStore>> store = IndexStore::Open(dir.path(), Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kCorruptData);

  // A lost MANIFEST next to segment files is damage, not a new empty index.
  fs::remove(manifest);
  store = IndexStore::Open(dir.path(), Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kCorruptData);
  EXPECT_NE(store.error().message().find("MANIFEST is missing"), std::string::npos);
}

TEST(IndexStoreTest, DamagedSegmentIsCorruptDataNamingTheFile) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path(), Options());
    ASSERT_TRUE(store->Add(MakeTracks(1, 20)).has_value());
  }
  const std::string name = OnlySegment(dir.path());
  const fs::path path = dir.path() / name;
  const uint64_t size = fs::file_size(path);

  // A byte in the postings: caught by the full check of small segments...
  FlipByte(path, size / 2);
  Result<std::unique_ptr<IndexStore>> store = IndexStore::Open(dir.path(), Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kCorruptData);
  EXPECT_NE(store.error().message().find(name), std::string::npos) << store.error().message();
  EXPECT_NE(store.error().message().find("checksum"), std::string::npos);

  // ...and by Verify() when the open-time check skips the body.
  IndexStoreOptions quick = Options();
  quick.full_verify_max_bytes = 0;
  store = IndexStore::Open(dir.path(), quick);
  ASSERT_TRUE(store.has_value()) << store.error().ToString();
  Status verified = (*store)->Verify();
  ASSERT_FALSE(verified.has_value());
  EXPECT_NE(verified.error().message().find(name), std::string::npos);
  store->reset();
  FlipByte(path, size / 2);  // repair

  // Truncated: caught before the bytes are touched.
  fs::resize_file(path, size - 10);
  store = IndexStore::Open(dir.path(), Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kCorruptData);
  EXPECT_NE(store.error().message().find("truncated"), std::string::npos);

  // Damaged footer, with a MANIFEST size that matches.
  fs::resize_file(path, size);
  store = IndexStore::Open(dir.path(), Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kCorruptData);
  EXPECT_NE(store.error().message().find(name), std::string::npos);

  fs::remove(path);
  store = IndexStore::Open(dir.path(), Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kCorruptData);
  EXPECT_NE(store.error().message().find("missing"), std::string::npos);
}

TEST(IndexStoreTest, DestructorStopsBackgroundMergeAndStateStaysConsistent) {
  TempDir dir;
  MemoryIndex ref;
  {
    IndexStoreOptions options = Options();
    auto store = OpenOrDie(dir.path(), options);
    for (TrackId batch = 0; batch < 12; ++batch) {
      std::vector<TrackFingerprint> tracks = MakeTracks(batch * 5 + 1, 5);
      for (const auto& t : tracks) ASSERT_TRUE(ref.Add(t).has_value());
      ASSERT_TRUE(store->Add(std::move(tracks)).has_value());
    }
  }
  for (int round = 0; round < 3; ++round) {
    IndexStoreOptions options = Options(/*background=*/true);
    options.merge_trigger_segments = 2;
    auto store = OpenOrDie(dir.path(), options);  // merging starts at once
    std::this_thread::sleep_for(std::chrono::milliseconds(round * 3));
  }
  auto store = OpenOrDie(dir.path(), Options());
  ExpectSame(*store->Snapshot(), ref);
  EXPECT_EQ(SegmentFiles(dir.path()), store->GetStats().segments);
}

}  // namespace
}  // namespace earshot::index
