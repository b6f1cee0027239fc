// Tests of video references in the catalog (Catalog::AddVideo, VideoSnapshot,
// Remove, repair, Refresh) and of identification of video against them
// (IdentifyFile, IdentifyVideoFile). The footage is made by the ffmpeg CLI
// from lavfi sources into a per-suite temp folder, each clip on first use (a
// test runs in its own process under ctest): `life` and `cellauto` are the
// catalogued references, `testsrc2` and `mandelbrot` unrelated footage. Clips
// are short (<= 12 s) and small (320x180) so that the suite stays fast.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/identify.h"
#include "store/catalog_db.h"
#include "video/frame_hash.h"
#include "video/hash_index.h"

namespace earshot::catalog {
namespace {

namespace fs = std::filesystem;

constexpr int kJobs = 2;
constexpr double kReferenceSeconds = 12.0;

const fs::path kMusicDir = "/usr/share/games/wesnoth/1.16/data/core/music";

template <class T>
::testing::AssertionResult IsError(const Result<T>& result, ErrorCode code,
                                   const std::string& text = "") {
  if (result) return ::testing::AssertionFailure() << "succeeded, expected an error";
  if (result.error().code() != code) {
    return ::testing::AssertionFailure()
           << "got " << result.error().ToString() << ", expected code " << ErrorCodeName(code);
  }
  if (result.error().message().find(text) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "message \"" << result.error().message() << "\" does not contain \"" << text << "\"";
  }
  return ::testing::AssertionSuccess();
}

template <class T>
std::string ErrorText(const Result<T>& r) {
  return r ? "ok" : r.error().ToString();
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class VideoCatalogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "earshot_video_catalog_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
  }

  static void TearDownTestSuite() {
    made_.clear();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static fs::path NewDir(const std::string& name) { return dir_ / ("catalog_" + name); }

  static std::unique_ptr<Catalog> Open(const fs::path& dir, bool read_only = false,
                                       std::vector<std::string>* repaired = nullptr) {
    CatalogOptions options;
    options.read_only = read_only;
    options.create_if_missing = !read_only;
    auto opened = Catalog::Open(dir, options, repaired);
    EXPECT_TRUE(opened.has_value()) << ErrorText(opened);
    return opened ? std::move(*opened) : nullptr;
  }

  static AddItem Item(const fs::path& path) {
    AddItem item;
    item.path = path;
    return item;
  }

  // Adds video references and expects every one to succeed.
  static std::vector<store::CatalogEntry> AddVideos(Catalog& catalog,
                                                    const std::vector<fs::path>& files) {
    std::vector<AddItem> items;
    for (const fs::path& f : files) items.push_back(Item(f));
    std::vector<store::CatalogEntry> entries;
    for (const AddOutcome& o : catalog.AddVideo(items, kJobs)) {
      EXPECT_TRUE(o.entry.has_value()) << o.path << ": " << ErrorText(o.entry);
      if (o.entry) entries.push_back(*o.entry);
    }
    return entries;
  }

  // Path of the clip `name`, generated on first use.
  static fs::path Media(const std::string& name) {
    if (made_.insert(name).second && !Make(name)) ADD_FAILURE() << "could not generate " << name;
    return dir_ / name;
  }

  static bool Make(const std::string& name) {
    const std::string h264 = " -c:v libx264 -preset ultrafast -pix_fmt yuv420p";
    const std::string seconds = std::to_string(kReferenceSeconds);
    // References.
    if (name == "life.mp4") {
      return Ffmpeg(
          "-f lavfi -i life=size=320x180:rate=25:seed=7:mold=10:ratio=0.3 -t " + seconds + h264,
          name);
    }
    if (name == "cells.mp4") {
      return Ffmpeg(
          "-f lavfi -i cellauto=size=320x180:rate=25:rule=110:seed=3 -t " + seconds + h264, name);
    }
    if (name == "black.mp4") {
      return Ffmpeg("-f lavfi -i color=black:size=320x180:rate=25 -t 4" + h264, name);
    }
    if (name == "tiny.mp4") {  // 0.5 s
      return Ffmpeg("-f lavfi -i testsrc2=size=320x180:rate=25 -t 0.5" + h264, name);
    }
    if (name == "tone.wav") return Ffmpeg("-f lavfi -i sine=frequency=440:duration=3", name);
    if (name == "corrupt.mp4") {
      std::mt19937 random(4321);
      std::string bytes(48 * 1024, '\0');
      for (char& c : bytes) c = static_cast<char>(random() & 0xff);
      std::ofstream(dir_ / name, std::ios::binary) << bytes;
      return true;
    }
    if (name == "copy_of_life.mp4") {  // the same bytes under another name
      std::error_code ec;
      return fs::copy_file(Media("life.mp4"), dir_ / name, ec);
    }
    // Queries. 7 s of life from 4 s, cropped to 90 %, scaled down to 192x108
    // and re-encoded at 100 kbit/s, no sound.
    if (name == "life_copy.mp4") {
      return Ffmpeg("-ss 4 -i " + Media("life.mp4").string() +
                        " -t 7 -vf crop=iw*0.9:ih*0.9,scale=192:108 -c:v libx264 -b:v 100k",
                    name);
    }
    // 5 s of unrelated footage, 6 s of cells from 3 s (scaled), 4 s unrelated.
    if (name == "cells_inside.mp4") {
      return Ffmpeg("-f lavfi -i testsrc2=size=320x180:rate=25:duration=5 -ss 3 -t 6 -i " +
                        Media("cells.mp4").string() +
                        " -f lavfi -i mandelbrot=size=320x180:rate=25 -filter_complex "
                        "\"[2:v]trim=duration=4,setpts=PTS-STARTPTS[c];"
                        "[0:v][1:v][c]concat=n=3:v=1:a=0,scale=240:136\" -c:v libx264 -b:v 150k",
                    name);
    }
    if (name == "unrelated.mp4") {
      return Ffmpeg(
          "-f lavfi -i mandelbrot=size=320x180:rate=25 -f lavfi -i "
          "testsrc2=size=320x180:rate=25:duration=5 -filter_complex "
          "\"[0:v]trim=duration=5,setpts=PTS-STARTPTS[a];[a][1:v]concat=n=2:v=1:a=0\"" +
              h264,
          name);
    }
    // life from 2 s with 8 s of catalogued music from 40 s (frantic) as its sound.
    if (name == "life_with_music.mp4") {
      return Ffmpeg("-ss 2 -t 8 -i " + Media("life.mp4").string() + " -ss 40 -t 8 -i " +
                        (kMusicDir / "frantic.ogg").string() +
                        " -map 0:v -map 1:a -vf scale=240:136 -c:v libx264 -b:v 150k -c:a aac "
                        "-b:a 96k -shortest",
                    name);
    }
    if (name == "frantic_ref.flac") {
      return Ffmpeg("-ss 30 -t 30 -i " + (kMusicDir / "frantic.ogg").string(), name);
    }
    ADD_FAILURE() << "no recipe for test file " << name;
    return false;
  }

  static bool Ffmpeg(const std::string& args, const std::string& output) {
    const std::string command = "/usr/bin/ffmpeg -nostdin -hide_banner -loglevel error -y " + args +
                                " -bitexact '" + (dir_ / output).string() + "'";
    const int status = std::system(command.c_str());
    if (status != 0) ADD_FAILURE() << "command failed: " << command;
    return status == 0;
  }

  // The (ref_id, time_ms) pairs a snapshot holds, per reference.
  static std::map<uint32_t, size_t> EntriesPerReference(const video::HashIndex& index) {
    std::map<uint32_t, size_t> out;
    for (const video::IndexEntry& e : index.entries()) ++out[e.ref_id];
    return out;
  }

  static inline fs::path dir_;
  static inline std::set<std::string> made_;
};

// ---------------------------------------------------------------------------
// Adding

TEST_F(VideoCatalogTest, AddVideoStoresEntriesFilesAndSnapshot) {
  const fs::path dir = NewDir("add");
  auto catalog = Open(dir);
  ASSERT_TRUE(catalog);
  EXPECT_EQ(catalog->VideoSnapshot()->size(), 0u);  // never null, empty at first

  std::vector<AddProgress> calls;
  AddItem life = Item(Media("life.mp4"));
  life.metadata.title = "Life";
  life.metadata.rights_holder = "Conway estate";
  life.rule = store::BusinessRule::kBlock;
  const auto outcomes = catalog->AddVideo({life, Item(Media("cells.mp4"))}, kJobs,
                                          [&](const AddProgress& p) { calls.push_back(p); });
  ASSERT_EQ(outcomes.size(), 2u);
  ASSERT_TRUE(outcomes[0].entry) << ErrorText(outcomes[0].entry);
  ASSERT_TRUE(outcomes[1].entry) << ErrorText(outcomes[1].entry);
  const store::CatalogEntry& a = *outcomes[0].entry;
  const store::CatalogEntry& b = *outcomes[1].entry;
  EXPECT_EQ(outcomes[0].path, Media("life.mp4"));
  EXPECT_EQ(a.kind, store::MediaKind::kVideo);
  EXPECT_EQ(a.metadata.title, "Life");
  EXPECT_EQ(a.metadata.rights_holder, "Conway estate");
  EXPECT_EQ(a.rule, store::BusinessRule::kBlock);
  EXPECT_EQ(b.metadata.title, "cells");  // the file name without extension
  EXPECT_EQ(a.algorithm_version, video::kFrameHashVersion);
  EXPECT_NEAR(a.duration_s, kReferenceSeconds, 0.1);
  EXPECT_NEAR(b.duration_s, kReferenceSeconds, 0.1);
  EXPECT_EQ(a.content_sha256.size(), 64u);
  auto stored = catalog->Get(a.id);
  ASSERT_TRUE(stored) << ErrorText(stored);
  EXPECT_EQ(*stored, a);

  // Progress: one call per item, video seconds in audio_seconds.
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].done, 2u);
  EXPECT_EQ(calls[1].total, 2u);
  EXPECT_NEAR(calls[1].audio_seconds, a.duration_s + b.duration_s, 1e-6);

  // One file per reference; the snapshot holds both, under their ids, at
  // times inside the videos, and only views detailed enough to match.
  EXPECT_TRUE(fs::is_regular_file(dir / "video" / (std::to_string(a.id) + ".vfp")));
  EXPECT_TRUE(fs::is_regular_file(dir / "video" / (std::to_string(b.id) + ".vfp")));
  const auto snapshot = catalog->VideoSnapshot();
  ASSERT_TRUE(snapshot);
  EXPECT_TRUE(snapshot->built());
  const auto per_ref = EntriesPerReference(*snapshot);
  ASSERT_EQ(per_ref.size(), 2u);
  // 4 frames per second, up to 8 views each.
  EXPECT_GE(per_ref.at(a.id), 40u);
  EXPECT_LE(per_ref.at(a.id), static_cast<size_t>(kReferenceSeconds * 4 * 8 + 8));
  EXPECT_GE(per_ref.at(b.id), 40u);
  for (const video::IndexEntry& e : snapshot->entries()) {
    EXPECT_GE(e.time_ms, 0);
    EXPECT_LT(e.time_ms, static_cast<int64_t>(kReferenceSeconds * 1000));
  }
  EXPECT_EQ(catalog->VideoSnapshot(), snapshot);  // cached while nothing changes

  // Stats and list.
  auto stats = catalog->Stats();
  ASSERT_TRUE(stats) << ErrorText(stats);
  EXPECT_EQ(stats->video_references, 2u);
  EXPECT_NEAR(stats->video_seconds, a.duration_s + b.duration_s, 1e-6);
  EXPECT_EQ(stats->video_index_entries, snapshot->size());
  EXPECT_EQ(stats->tracks, 0u);  // audio references
  EXPECT_EQ(stats->audio_seconds, 0.0);
  EXPECT_EQ(stats->by_rule[store::BusinessRule::kBlock], 1u);
  EXPECT_EQ(stats->by_rule[store::BusinessRule::kTrack], 1u);
  store::CatalogDb::ListFilter videos;
  videos.kind = store::MediaKind::kVideo;
  auto listed = catalog->List(videos);
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 2u);

  // Reopened (read-only, as identify does): the same references and hashes.
  const size_t entries = snapshot->size();
  catalog.reset();
  auto reader = Open(dir, /*read_only=*/true);
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->VideoSnapshot()->size(), entries);
  EXPECT_EQ(EntriesPerReference(*reader->VideoSnapshot()), per_ref);
  auto reopened = reader->Stats();
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->video_references, 2u);
  EXPECT_EQ(reopened->video_index_entries, entries);
}

TEST_F(VideoCatalogTest, SameContentIsRefusedWhateverTheName) {
  auto catalog = Open(NewDir("twice"));
  ASSERT_TRUE(catalog);
  const auto first = AddVideos(*catalog, {Media("life.mp4")});
  ASSERT_EQ(first.size(), 1u);
  const size_t entries = catalog->VideoSnapshot()->size();
  const auto again = catalog->AddVideo({Item(Media("copy_of_life.mp4"))}, kJobs);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(
      IsError(again[0].entry, ErrorCode::kAlreadyExists, "track " + std::to_string(first[0].id)));
  // Also the same file twice in one call: one is added, the other refused.
  auto fresh = Open(NewDir("twice_in_one_call"));
  ASSERT_TRUE(fresh);
  const auto both =
      fresh->AddVideo({Item(Media("life.mp4")), Item(Media("copy_of_life.mp4"))}, kJobs);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_NE(both[0].entry.has_value(), both[1].entry.has_value());
  EXPECT_EQ(EntriesPerReference(*fresh->VideoSnapshot()).size(), 1u);
  // Nothing changed in the first catalog.
  EXPECT_EQ(catalog->VideoSnapshot()->size(), entries);
  auto listed = catalog->List({});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(VideoCatalogTest, UnusableFilesAreRefusedWithAClearError) {
  const fs::path dir = NewDir("refused");
  auto catalog = Open(dir);
  ASSERT_TRUE(catalog);
  const auto outcomes = catalog->AddVideo(
      {Item(Media("black.mp4")), Item(Media("tone.wav")), Item(Media("corrupt.mp4")),
       Item(Media("tiny.mp4")), Item(dir_ / "missing.mp4"), Item(Media("cells.mp4"))},
      kJobs);
  ASSERT_EQ(outcomes.size(), 6u);
  EXPECT_TRUE(IsError(outcomes[0].entry, ErrorCode::kInvalidArgument,
                      "has no frames with enough picture detail to fingerprint"));
  EXPECT_TRUE(IsError(outcomes[0].entry, ErrorCode::kInvalidArgument, "black.mp4"));
  EXPECT_TRUE(IsError(outcomes[1].entry, ErrorCode::kUnsupported, "tone.wav has no video stream"));
  EXPECT_TRUE(IsError(outcomes[2].entry, ErrorCode::kCorruptData, "corrupt.mp4"));
  EXPECT_TRUE(IsError(outcomes[3].entry, ErrorCode::kInvalidArgument, "too short"));
  EXPECT_TRUE(IsError(outcomes[4].entry, ErrorCode::kNotFound, "missing.mp4"));
  ASSERT_TRUE(outcomes[5].entry) << ErrorText(outcomes[5].entry);  // the others do not stop it
  // Only the good one left a row and a file.
  auto listed = catalog->List({});
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].metadata.title, "cells");
  std::vector<fs::path> files;
  for (const auto& f : fs::directory_iterator(dir / "video")) files.push_back(f.path().filename());
  EXPECT_EQ(files, std::vector<fs::path>{std::to_string(outcomes[5].entry->id) + ".vfp"});
}

TEST_F(VideoCatalogTest, ReadOnlyCatalogRefusesVideoAndRemove) {
  const fs::path dir = NewDir("read_only");
  TrackId id = 0;
  {
    auto writer = Open(dir);
    ASSERT_TRUE(writer);
    const auto added = AddVideos(*writer, {Media("cells.mp4")});
    ASSERT_EQ(added.size(), 1u);
    id = added[0].id;
  }
  auto reader = Open(dir, /*read_only=*/true);
  ASSERT_TRUE(reader);
  const auto outcomes = reader->AddVideo({Item(Media("life.mp4"))}, kJobs);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(IsError(outcomes[0].entry, ErrorCode::kFailedPrecondition, "read-only"));
  EXPECT_TRUE(IsError(reader->Remove({id}), ErrorCode::kFailedPrecondition, "read-only"));
  EXPECT_TRUE(reader->Get(id).has_value());
  EXPECT_TRUE(fs::exists(dir / "video" / (std::to_string(id) + ".vfp")));
  EXPECT_EQ(EntriesPerReference(*reader->VideoSnapshot()).size(), 1u);
}

// ---------------------------------------------------------------------------
// Removing, refreshing, repairing

TEST_F(VideoCatalogTest, RemoveDropsRowFileAndHashes) {
  const fs::path dir = NewDir("remove");
  auto catalog = Open(dir);
  ASSERT_TRUE(catalog);
  const auto added = AddVideos(*catalog, {Media("life.mp4"), Media("cells.mp4")});
  ASSERT_EQ(added.size(), 2u);
  const TrackId life = added[0].id, cells = added[1].id;
  const auto before = catalog->VideoSnapshot();
  ASSERT_EQ(EntriesPerReference(*before).size(), 2u);

  ASSERT_TRUE(catalog->Remove({life, life}));  // a repeated id counts once
  EXPECT_TRUE(IsError(catalog->Get(life), ErrorCode::kNotFound));
  EXPECT_FALSE(fs::exists(dir / "video" / (std::to_string(life) + ".vfp")));
  EXPECT_TRUE(fs::exists(dir / "video" / (std::to_string(cells) + ".vfp")));
  const auto after = catalog->VideoSnapshot();
  EXPECT_NE(after, before);
  EXPECT_EQ(EntriesPerReference(*after),
            (std::map<uint32_t, size_t>{{cells, EntriesPerReference(*before).at(cells)}}));
  EXPECT_EQ(EntriesPerReference(*before).size(), 2u);  // a snapshot held stays as it was
  auto stats = catalog->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->video_references, 1u);
  EXPECT_EQ(stats->video_index_entries, after->size());

  // Unknown ids: nothing is removed.
  EXPECT_TRUE(IsError(catalog->Remove({cells, 9999}), ErrorCode::kNotFound, "9999"));
  EXPECT_TRUE(catalog->Get(cells).has_value());
  ASSERT_TRUE(catalog->Remove({cells}));
  EXPECT_EQ(catalog->VideoSnapshot()->size(), 0u);

  // The content can be added again, under a new id.
  const auto again = AddVideos(*catalog, {Media("life.mp4")});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_GT(again[0].id, cells);
}

TEST_F(VideoCatalogTest, ReaderSeesAnotherWritersVideoAfterRefresh) {
  const fs::path dir = NewDir("refresh");
  auto writer = Open(dir);
  ASSERT_TRUE(writer);
  auto reader = Open(dir, /*read_only=*/true);
  ASSERT_TRUE(reader);
  const auto added = AddVideos(*writer, {Media("cells.mp4")});
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(reader->VideoSnapshot()->size(), 0u);
  ASSERT_TRUE(reader->Refresh());
  EXPECT_EQ(EntriesPerReference(*reader->VideoSnapshot()).count(added[0].id), 1u);
  EXPECT_EQ(reader->VideoSnapshot()->size(), writer->VideoSnapshot()->size());

  ASSERT_TRUE(writer->Remove({added[0].id}));
  ASSERT_TRUE(reader->Refresh());
  EXPECT_EQ(reader->VideoSnapshot()->size(), 0u);
}

TEST_F(VideoCatalogTest, WritableOpenRepairsRowsWithoutFilesAndFilesWithoutRows) {
  const fs::path dir = NewDir("repair");
  TrackId good = 0;
  {
    auto catalog = Open(dir);
    ASSERT_TRUE(catalog);
    const auto added = AddVideos(*catalog, {Media("cells.mp4")});
    ASSERT_EQ(added.size(), 1u);
    good = added[0].id;
  }
  const fs::path good_file = dir / "video" / (std::to_string(good) + ".vfp");
  // An add interrupted between its phases: a video row without a file.
  TrackId ghost = 0;
  {
    auto db = store::CatalogDb::Open(dir / "catalog.db");
    ASSERT_TRUE(db) << ErrorText(db);
    store::CatalogEntry entry;
    entry.kind = store::MediaKind::kVideo;
    entry.source = "/refs/ghost.mp4";
    entry.content_sha256 = std::string(64, 'b');
    entry.metadata.title = "ghost";
    entry.duration_s = 10;
    entry.algorithm_version = video::kFrameHashVersion;
    auto id = (*db)->Insert(entry);
    ASSERT_TRUE(id) << ErrorText(id);
    ghost = *id;
  }
  // An interrupted remove (a file of no row) and an interrupted write.
  fs::copy_file(good_file, dir / "video" / "777.vfp");
  std::ofstream(dir / "video" / "778.vfp.tmp") << "partial";
  std::ofstream(dir / "video" / "README") << "not ours";

  {  // A read-only open repairs nothing and skips the row without a file.
    auto reader = Open(dir, /*read_only=*/true);
    ASSERT_TRUE(reader);
    EXPECT_TRUE(reader->Get(ghost).has_value());
    EXPECT_EQ(EntriesPerReference(*reader->VideoSnapshot()).size(), 1u);
    EXPECT_TRUE(fs::exists(dir / "video" / "777.vfp"));
  }
  std::vector<std::string> repaired;
  auto catalog = Open(dir, /*read_only=*/false, &repaired);
  ASSERT_TRUE(catalog);
  ASSERT_EQ(repaired.size(), 3u);
  const std::string all = repaired[0] + "\n" + repaired[1] + "\n" + repaired[2];
  EXPECT_TRUE(Contains(all, "track " + std::to_string(ghost) + " (\"ghost\")")) << all;
  EXPECT_TRUE(Contains(all, "add /refs/ghost.mp4 again")) << all;
  EXPECT_TRUE(Contains(all, "777.vfp")) << all;
  EXPECT_TRUE(Contains(all, "778.vfp.tmp")) << all;
  EXPECT_TRUE(IsError(catalog->Get(ghost), ErrorCode::kNotFound));
  EXPECT_FALSE(fs::exists(dir / "video" / "777.vfp"));
  EXPECT_FALSE(fs::exists(dir / "video" / "778.vfp.tmp"));
  EXPECT_TRUE(fs::exists(dir / "video" / "README"));
  EXPECT_TRUE(fs::exists(good_file));
  EXPECT_EQ(EntriesPerReference(*catalog->VideoSnapshot()).size(), 1u);
  catalog.reset();

  repaired.clear();
  EXPECT_TRUE(Open(dir, /*read_only=*/false, &repaired));
  EXPECT_TRUE(repaired.empty());
}

TEST_F(VideoCatalogTest, DamagedVideoFileIsAnErrorForReadersAndRepairedByWriters) {
  const fs::path dir = NewDir("damaged");
  TrackId id = 0;
  {
    auto catalog = Open(dir);
    ASSERT_TRUE(catalog);
    const auto added = AddVideos(*catalog, {Media("cells.mp4")});
    ASSERT_EQ(added.size(), 1u);
    id = added[0].id;
  }
  const fs::path file = dir / "video" / (std::to_string(id) + ".vfp");
  fs::resize_file(file, fs::file_size(file) / 2);  // truncated

  CatalogOptions read_only;
  read_only.read_only = true;
  auto reader = Catalog::Open(dir, read_only);
  EXPECT_TRUE(IsError(reader, ErrorCode::kCorruptData, "video track " + std::to_string(id)));
  EXPECT_TRUE(IsError(reader, ErrorCode::kCorruptData,
                      "earshot catalog add --video " + Media("cells.mp4").string()));

  // A writable open drops it, and the source can be added again.
  std::vector<std::string> repaired;
  auto writer = Open(dir, /*read_only=*/false, &repaired);
  ASSERT_TRUE(writer);
  ASSERT_EQ(repaired.size(), 1u);
  EXPECT_TRUE(Contains(repaired[0], "video track " + std::to_string(id))) << repaired[0];
  EXPECT_TRUE(Contains(repaired[0], "unusable fingerprints")) << repaired[0];
  EXPECT_TRUE(IsError(writer->Get(id), ErrorCode::kNotFound));
  EXPECT_FALSE(fs::exists(file));
  const auto again = AddVideos(*writer, {Media("cells.mp4")});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(EntriesPerReference(*writer->VideoSnapshot()).count(again[0].id), 1u);
}

TEST_F(VideoCatalogTest, FindVideoFilesIsRecursiveSortedAndByExtension) {
  const fs::path root = dir_ / "find";
  fs::create_directories(root / "sub");
  for (const char* name : {"b.mp4", "a.MKV", "c.mov", "d.webm", "e.flv", "f.ts", "g.m4v", "h.avi",
                           "i.mpg", "j.mpeg", "song.mp3", "notes.txt", "sub/k.mp4"}) {
    std::ofstream(root / name) << "x";
  }
  const auto found = FindVideoFiles(root);
  std::vector<fs::path> expected;
  for (const char* name : {"a.MKV", "b.mp4", "c.mov", "d.webm", "e.flv", "f.ts", "g.m4v", "h.avi",
                           "i.mpg", "j.mpeg", "sub/k.mp4"}) {
    expected.push_back(root / name);
  }
  EXPECT_EQ(found, expected);
  EXPECT_TRUE(FindVideoFiles(root / "nope").empty());
}

// ---------------------------------------------------------------------------
// Identification

TEST_F(VideoCatalogTest, IdentifyFindsATransformedCopyAtItsReferenceTime) {
  auto catalog = Open(NewDir("identify"));
  ASSERT_TRUE(catalog);
  const auto added = AddVideos(*catalog, {Media("life.mp4"), Media("cells.mp4")});
  ASSERT_EQ(added.size(), 2u);

  // Cropped, scaled down, 100 kbit/s, no sound: found by its video alone.
  auto r = IdentifyFile(*catalog, Media("life_copy.mp4"), {});
  ASSERT_TRUE(r) << ErrorText(r);
  EXPECT_EQ(r->file, Media("life_copy.mp4").string());
  EXPECT_NEAR(r->duration_s, 7.0, 0.1);
  ASSERT_EQ(r->matches.size(), 1u);
  const IdentifiedMatch& m = r->matches[0];
  EXPECT_EQ(m.type, store::MediaKind::kVideo);
  EXPECT_EQ(m.entry.id, added[0].id);
  EXPECT_EQ(m.entry.kind, store::MediaKind::kVideo);
  EXPECT_NEAR(m.time_in_file_s, 0.0, 1.0);
  EXPECT_NEAR(m.time_in_reference_s - m.time_in_file_s, 4.0, 1.0);
  EXPECT_NEAR(m.duration_s, 7.0, 1.0);
  EXPECT_GT(m.score, 40.0);
  EXPECT_LE(m.score, 100.0);
  const nlohmann::json j = MatchToJson(m);
  EXPECT_EQ(j["match_type"], "video");
  EXPECT_EQ(j["track_id"], added[0].id);

  // The same through IdentifyVideoFile.
  auto v = IdentifyVideoFile(*catalog, Media("life_copy.mp4"), {});
  ASSERT_TRUE(v) << ErrorText(v);
  ASSERT_EQ(v->matches.size(), 1u);
  EXPECT_EQ(v->matches[0].entry.id, added[0].id);
}

TEST_F(VideoCatalogTest, IdentifyReportsOneMatchForTheCataloguedStretchOnly) {
  auto catalog = Open(NewDir("stretch"));
  ASSERT_TRUE(catalog);
  const auto added = AddVideos(*catalog, {Media("life.mp4"), Media("cells.mp4")});
  ASSERT_EQ(added.size(), 2u);

  // 5 s unrelated, cells from 3 s for 6 s, 4 s unrelated.
  auto r = IdentifyFile(*catalog, Media("cells_inside.mp4"), {});
  ASSERT_TRUE(r) << ErrorText(r);
  EXPECT_NEAR(r->duration_s, 15.0, 0.2);
  ASSERT_EQ(r->matches.size(), 1u) << ResponseToJson(*r).dump();
  const IdentifiedMatch& m = r->matches[0];
  EXPECT_EQ(m.entry.id, added[1].id);
  EXPECT_NEAR(m.time_in_file_s, 5.0, 1.0);
  EXPECT_NEAR(m.time_in_reference_s - (m.time_in_file_s - 5.0), 3.0, 1.0);
  EXPECT_NEAR(m.duration_s, 6.0, 1.0);

  // Unrelated footage (and a black video) finds nothing.
  for (const char* name : {"unrelated.mp4", "black.mp4"}) {
    auto none = IdentifyFile(*catalog, Media(name), {});
    ASSERT_TRUE(none) << name << ": " << ErrorText(none);
    EXPECT_TRUE(none->matches.empty()) << name << ": " << ResponseToJson(*none).dump();
    EXPECT_GT(none->duration_s, 3.0);
  }
}

TEST_F(VideoCatalogTest, IdentifyMatchesAudioAndVideoOfOneFile) {
  if (!fs::is_directory(kMusicDir)) GTEST_SKIP() << "needs the Debian package wesnoth-1.16-music";
  auto catalog = Open(NewDir("both"));
  ASSERT_TRUE(catalog);
  const auto video_refs = AddVideos(*catalog, {Media("life.mp4")});
  ASSERT_EQ(video_refs.size(), 1u);
  const auto audio_refs = catalog->Add({Item(Media("frantic_ref.flac"))}, kJobs);
  ASSERT_EQ(audio_refs.size(), 1u);
  ASSERT_TRUE(audio_refs[0].entry) << ErrorText(audio_refs[0].entry);

  auto r = IdentifyFile(*catalog, Media("life_with_music.mp4"), {});
  ASSERT_TRUE(r) << ErrorText(r);
  ASSERT_EQ(r->matches.size(), 2u) << ResponseToJson(*r).dump();
  EXPECT_EQ(r->matches[0].type, store::MediaKind::kAudio);  // audio first, then video
  EXPECT_EQ(r->matches[0].entry.id, audio_refs[0].entry->id);
  EXPECT_NEAR(r->matches[0].time_in_reference_s - r->matches[0].time_in_file_s, 10.0, 1.0);
  EXPECT_EQ(r->matches[1].type, store::MediaKind::kVideo);
  EXPECT_EQ(r->matches[1].entry.id, video_refs[0].id);
  EXPECT_NEAR(r->matches[1].time_in_reference_s - r->matches[1].time_in_file_s, 2.0, 1.0);
  const nlohmann::json j = ResponseToJson(*r);
  EXPECT_EQ(j["matches"][0]["match_type"], "audio");
  EXPECT_EQ(j["matches"][1]["match_type"], "video");

  // Video without sound still works with audio references in the catalog;
  // audio without video is matched by its audio.
  auto silent = IdentifyFile(*catalog, Media("life_copy.mp4"), {});
  ASSERT_TRUE(silent) << ErrorText(silent);
  ASSERT_EQ(silent->matches.size(), 1u);
  EXPECT_EQ(silent->matches[0].type, store::MediaKind::kVideo);
  auto tone = IdentifyFile(*catalog, Media("tone.wav"), {});
  ASSERT_TRUE(tone) << ErrorText(tone);
  EXPECT_TRUE(tone->matches.empty());
  EXPECT_NEAR(tone->duration_s, 3.0, 0.1);
}

TEST_F(VideoCatalogTest, IdentifyErrorsSayWhatIsMissing) {
  auto catalog = Open(NewDir("errors"));
  ASSERT_TRUE(catalog);
  // No video references: IdentifyVideoFile says so; an empty catalog stays an error.
  EXPECT_TRUE(IsError(IdentifyVideoFile(*catalog, Media("life_copy.mp4"), {}),
                      ErrorCode::kFailedPrecondition, "no video references"));
  EXPECT_TRUE(IsError(IdentifyFile(*catalog, Media("life_copy.mp4"), {}),
                      ErrorCode::kFailedPrecondition, "is empty"));
  ASSERT_EQ(AddVideos(*catalog, {Media("cells.mp4")}).size(), 1u);
  // Only video references: a file without video cannot be matched.
  EXPECT_TRUE(IsError(IdentifyFile(*catalog, Media("tone.wav"), {}), ErrorCode::kUnsupported,
                      "has only video references"));
  EXPECT_TRUE(IsError(IdentifyFile(*catalog, Media("corrupt.mp4"), {}), ErrorCode::kCorruptData,
                      "corrupt.mp4"));
  EXPECT_TRUE(IsError(IdentifyFile(*catalog, dir_ / "missing.mp4", {}), ErrorCode::kNotFound,
                      "missing.mp4"));
}

}  // namespace
}  // namespace earshot::catalog
