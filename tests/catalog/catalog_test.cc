// Tests of the catalog component (catalog.h) and of identification against it
// (identify.h), on real music: the Ogg Vorbis tracks of the Debian package
// wesnoth-1.16-music. Excerpts and degraded copies are cut with the ffmpeg CLI
// into a per-suite temp folder, each on first use, so that one test (as ctest
// runs it, in its own process) only pays for the files it needs.
#include "catalog/catalog.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "catalog/identify.h"
#include "recognition/fingerprint_params.h"
#include "store/catalog_db.h"

namespace earshot::catalog {
namespace {

namespace fs = std::filesystem;

const fs::path kMusicDir = "/usr/share/games/wesnoth/1.16/data/core/music";

fs::path Track(const std::string& stem) { return kMusicDir / (stem + ".ogg"); }

// The tracks of the shared catalog (about 6 minutes of audio in all).
const std::vector<std::string> kSharedTracks = {"battle-epic", "revelation", "love_theme",
                                                "underground"};

constexpr int kJobs = 2;

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

std::string ErrorText(const Status& s) { return s ? "ok" : s.error().ToString(); }
template <class T>
std::string ErrorText(const Result<T>& r) {
  return r ? "ok" : r.error().ToString();
}

class CatalogTestBase : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::is_directory(kMusicDir)) << "install the Debian package wesnoth-1.16-music";
    std::string pattern = (fs::temp_directory_path() / "earshot_catalog_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
  }

  static void TearDownTestSuite() {
    shared_.reset();
    shared_ids_.clear();
    made_.clear();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A fresh folder for one catalog (not created yet).
  static fs::path NewDir(const std::string& name) { return dir_ / ("catalog_" + name); }

  static std::unique_ptr<Catalog> OpenWritable(const fs::path& dir,
                                               std::vector<std::string>* repaired = nullptr) {
    CatalogOptions options;
    auto opened = Catalog::Open(dir, options, repaired);
    EXPECT_TRUE(opened.has_value()) << ErrorText(opened);
    return opened ? std::move(*opened) : nullptr;
  }

  static std::unique_ptr<Catalog> OpenReadOnly(const fs::path& dir) {
    CatalogOptions options;
    options.read_only = true;
    options.create_if_missing = false;
    auto opened = Catalog::Open(dir, options);
    EXPECT_TRUE(opened.has_value()) << ErrorText(opened);
    return opened ? std::move(*opened) : nullptr;
  }

  static AddItem Item(const fs::path& path,
                      store::BusinessRule rule = store::BusinessRule::kTrack) {
    AddItem item;
    item.path = path;
    item.rule = rule;
    return item;
  }

  // Adds `items` and expects every one to succeed; returns the entries.
  static std::vector<store::CatalogEntry> AddAll(Catalog& catalog,
                                                 const std::vector<AddItem>& items) {
    std::vector<store::CatalogEntry> entries;
    for (const AddOutcome& outcome : catalog.Add(items, kJobs)) {
      EXPECT_TRUE(outcome.entry.has_value()) << outcome.path << ": " << ErrorText(outcome.entry);
      if (outcome.entry) entries.push_back(*outcome.entry);
    }
    return entries;
  }

  // The catalog most identification tests share: kSharedTracks, added once
  // per suite.
  static Catalog& Shared() {
    if (!shared_) {
      shared_ = OpenWritable(NewDir("shared"));
      std::vector<AddItem> items;
      for (const std::string& stem : kSharedTracks) items.push_back(Item(Track(stem)));
      for (const store::CatalogEntry& e : AddAll(*shared_, items))
        shared_ids_[e.metadata.title] = e.id;
    }
    return *shared_;
  }
  static TrackId SharedId(const std::string& title) {
    Shared();
    EXPECT_TRUE(shared_ids_.count(title)) << title << " is not in the shared catalog";
    return shared_ids_[title];
  }

  // Path of the test file `name`, generated on first use.
  static fs::path Media(const std::string& name) {
    if (made_.insert(name).second && !Make(name)) ADD_FAILURE() << "could not generate " << name;
    return dir_ / name;
  }

  static bool Make(const std::string& name) {
    const std::string epic = Cut("battle-epic", 30, 10);
    if (name == "love_theme_40_8.ogg")
      return Ffmpeg(Cut("love_theme", 40, 8) + " -c:a libvorbis", name);
    if (name == "underground_60_8.wav") return Ffmpeg(Cut("underground", 60, 8), name);
    if (name == "battle_40_8.wav") return Ffmpeg(Cut("battle", 40, 8), name);  // not catalogued
    if (name == "main_menu_20_8.wav") return Ffmpeg(Cut("main_menu", 20, 8), name);
    if (name == "transience_10_8.wav") return Ffmpeg(Cut("transience", 10, 8), name);
    if (name == "sad_15_8.wav") return Ffmpeg(Cut("sad", 15, 8), name);
    if (name == "epic_mp3_64k.mp3") return Ffmpeg(epic + " -c:a libmp3lame -b:a 64k", name);
    if (name == "epic_noisy.wav") {
      // Pink noise about 5 dB below the music (RMS -22.7 dB vs -17.5 dB).
      return Ffmpeg(epic + " -f lavfi -i anoisesrc=color=pink:amplitude=0.38:duration=10:seed=7" +
                        " -filter_complex \"[0:a][1:a]amix=inputs=2:duration=first\"",
                    name);
    }
    if (name == "epic_tempo_1.05.wav") return Ffmpeg(epic + " -af atempo=1.05", name);
    if (name == "epic_speed_1.03.wav") {
      return Ffmpeg(epic + " -af asetrate=44100*1.03,aresample=44100", name);
    }
    if (name == "white_noise.wav") {
      return Ffmpeg("-f lavfi -i anoisesrc=color=white:amplitude=0.3:duration=10:seed=3", name);
    }
    if (name == "pink_noise.wav") {
      return Ffmpeg("-f lavfi -i anoisesrc=color=pink:amplitude=0.3:duration=10:seed=4", name);
    }
    if (name == "long.wav") {
      // 20 s of noise, underground from 30 s to 70 s, 20 s of noise: 80 s in all.
      const std::string noise = "-f lavfi -i anoisesrc=color=pink:amplitude=0.2:duration=20:seed=";
      return Ffmpeg(
          noise + "1 " + noise + "2 " + Cut("underground", 30, 40) +
              " -filter_complex \"[0:a]aformat=sample_rates=44100:channel_layouts=stereo[a];"
              "[1:a]aformat=sample_rates=44100:channel_layouts=stereo[b];"
              "[a][2:a][b]concat=n=3:v=0:a=1\"",
          name);
    }
    if (name == "short.ogg") return Ffmpeg(Cut("wanderer", 10, 1) + " -c:a libvorbis", name);
    if (name == "video_only.mp4") {
      return Ffmpeg("-f lavfi -i testsrc=size=64x48:rate=10:duration=3 -c:v mpeg4", name);
    }
    if (name == "empty.ogg") return WriteBytes(name, "");
    if (name == "corrupt.ogg") {
      std::mt19937 random(1234);
      std::string bytes(64 * 1024, '\0');
      for (char& c : bytes) c = static_cast<char>(random() & 0xff);
      return WriteBytes(name, bytes);
    }
    if (name.starts_with("copy_of_")) {  // the same bytes under another name
      std::error_code ec;
      return fs::copy_file(Track(fs::path(name.substr(8)).stem().string()), dir_ / name, ec);
    }
    ADD_FAILURE() << "no recipe for test file " << name;
    return false;
  }

  // ffmpeg input arguments for `seconds` of a track from `start`.
  static std::string Cut(const std::string& stem, double start, double seconds) {
    return "-ss " + std::to_string(start) + " -t " + std::to_string(seconds) + " -i '" +
           Track(stem).string() + "'";
  }

  static bool Ffmpeg(const std::string& args, const std::string& output) {
    const std::string command = "/usr/bin/ffmpeg -nostdin -hide_banner -loglevel error -y " + args +
                                " -bitexact '" + (dir_ / output).string() + "'";
    const int status = std::system(command.c_str());
    if (status != 0) ADD_FAILURE() << "command failed: " << command;
    return status == 0;
  }

  static bool WriteBytes(const std::string& name, const std::string& bytes) {
    std::ofstream out(dir_ / name, std::ios::binary);
    out << bytes;
    return out.good();
  }

  static inline fs::path dir_;
  static inline std::set<std::string> made_;
  static inline std::unique_ptr<Catalog> shared_;
  static inline std::map<std::string, TrackId> shared_ids_;
};

class CatalogTest : public CatalogTestBase {};

// ---------------------------------------------------------------------------
// Add

TEST_F(CatalogTest, AddAssignsIdsStoresMetadataAndDefaultsTitleToStem) {
  auto catalog = OpenWritable(NewDir("add"));
  ASSERT_TRUE(catalog);
  AddItem described = Item(Track("main_menu"), store::BusinessRule::kBlock);
  described.metadata.title = "Main Menu";
  described.metadata.artist = "Wesnoth composers";
  described.metadata.rights_holder = "Wesnoth project";
  described.metadata.isrc = "GBAAA2400001";
  described.metadata.tags = {{"album", "Wesnoth 1.16"}, {"mood", "calm"}};
  const AddItem plain = Item(Track("transience"));

  const auto outcomes = catalog->Add({described, plain}, kJobs);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].path, Track("main_menu"));  // outcomes follow the items' order
  EXPECT_EQ(outcomes[1].path, Track("transience"));
  ASSERT_TRUE(outcomes[0].entry) << ErrorText(outcomes[0].entry);
  ASSERT_TRUE(outcomes[1].entry) << ErrorText(outcomes[1].entry);
  const store::CatalogEntry& a = *outcomes[0].entry;
  const store::CatalogEntry& b = *outcomes[1].entry;

  EXPECT_GT(a.id, 0u);
  EXPECT_LT(a.id, b.id);  // ids follow the items' order whatever the number of jobs
  EXPECT_EQ(a.metadata, described.metadata);
  EXPECT_EQ(a.rule, store::BusinessRule::kBlock);
  EXPECT_EQ(b.metadata.title, "transience");  // the file name without extension
  EXPECT_EQ(b.metadata.artist, "");
  EXPECT_EQ(b.rule, store::BusinessRule::kTrack);
  EXPECT_EQ(a.kind, store::MediaKind::kAudio);
  EXPECT_EQ(a.source, Track("main_menu").string());
  EXPECT_EQ(a.content_sha256.size(), 64u);
  EXPECT_NE(a.content_sha256, b.content_sha256);
  EXPECT_EQ(a.algorithm_version, recognition::kAlgorithmVersion);
  EXPECT_GT(a.added_at_unix_ms, 1'700'000'000'000);
  EXPECT_NEAR(a.duration_s, 51.69, 0.2);  // ffprobe: 51.687 s
  EXPECT_NEAR(b.duration_s, 48.0, 0.2);   // ffprobe: 48.000 s

  // The database holds what Add returned, and the index holds the prints.
  for (const store::CatalogEntry& e : {a, b}) {
    auto stored = catalog->Get(e.id);
    ASSERT_TRUE(stored) << ErrorText(stored);
    EXPECT_EQ(*stored, e);
    EXPECT_TRUE(catalog->Snapshot()->HasTrack(e.id));
  }
  auto listed = catalog->List({});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 2u);
}

// BUG (src/catalog/catalog.cc, Catalog::Add): the outcome's entry is the
// entry as built before CatalogDb::Insert, which normalises the ISRC; so for
// an ISRC given as "gb-aaa-24-00001" Add returns isrc "gb-aaa-24-00001" while
// the catalog stores (and Get returns) "GBAAA2400001". catalog.h promises
// "the stored entry".
TEST_F(CatalogTest, IdsFollowTheItemsOrderEvenWhenLaterItemsFinishFirst) {
  // Two jobs: one decodes the 95 s track while the other gets through the
  // three 8 s clips, so those finish first; their ids still come after it.
  auto catalog = OpenWritable(NewDir("order"));
  ASSERT_TRUE(catalog);
  const std::vector<AddItem> items = {Item(Track("love_theme")), Item(Media("sad_15_8.wav")),
                                      Item(Media("transience_10_8.wav")),
                                      Item(Media("main_menu_20_8.wav"))};
  const std::vector<store::CatalogEntry> entries = AddAll(*catalog, items);
  ASSERT_EQ(entries.size(), items.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].source, items[i].path.string());
    if (i > 0) {
      EXPECT_LT(entries[i - 1].id, entries[i].id) << "item " << i;
    }
  }
}

TEST_F(CatalogTest, AddReturnsTheEntryAsStored) {
  auto catalog = OpenWritable(NewDir("add_normalised"));
  ASSERT_TRUE(catalog);
  AddItem item = Item(Track("transience"));
  item.metadata.isrc = "gb-aaa-24-00001";
  const auto outcomes = catalog->Add({item}, kJobs);
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_TRUE(outcomes[0].entry) << ErrorText(outcomes[0].entry);
  auto stored = catalog->Get(outcomes[0].entry->id);
  ASSERT_TRUE(stored) << ErrorText(stored);
  EXPECT_EQ(stored->metadata.isrc, "GBAAA2400001");
  EXPECT_EQ(outcomes[0].entry->metadata.isrc, stored->metadata.isrc);
}

TEST_F(CatalogTest, AddInvalidIsrcIsRefusedForThatItemOnly) {
  auto catalog = OpenWritable(NewDir("bad_isrc"));
  ASSERT_TRUE(catalog);
  AddItem bad = Item(Track("transience"));
  bad.metadata.isrc = "not-an-isrc";
  const auto outcomes = catalog->Add({bad, Item(Track("sad"))}, kJobs);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_TRUE(IsError(outcomes[0].entry, ErrorCode::kInvalidArgument));
  ASSERT_TRUE(outcomes[1].entry) << ErrorText(outcomes[1].entry);
  auto listed = catalog->List({});
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].metadata.title, "sad");
  // The refused item left no fingerprints behind.
  EXPECT_EQ(catalog->Snapshot()->TrackCount(), 1u);
}

TEST_F(CatalogTest, AddSameContentAgainIsAlreadyExistsNamingTheTrack) {
  auto catalog = OpenWritable(NewDir("twice"));
  ASSERT_TRUE(catalog);
  const auto first = AddAll(*catalog, {Item(Track("main_menu"))});
  ASSERT_EQ(first.size(), 1u);

  // The same bytes under another name and another title.
  AddItem again = Item(Media("copy_of_main_menu.ogg"));
  again.metadata.title = "Another title";
  const auto outcomes = catalog->Add({again}, kJobs);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(IsError(outcomes[0].entry, ErrorCode::kAlreadyExists,
                      "track " + std::to_string(first[0].id)));
  EXPECT_TRUE(IsError(outcomes[0].entry, ErrorCode::kAlreadyExists, "main_menu"));
  EXPECT_TRUE(IsError(outcomes[0].entry, ErrorCode::kAlreadyExists, "copy_of_main_menu.ogg"));

  auto stats = catalog->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->tracks, 1u);
  EXPECT_EQ(catalog->Snapshot()->TrackCount(), 1u);
}

TEST_F(CatalogTest, AddSameContentTwiceInOneCallAddsItOnce) {
  auto catalog = OpenWritable(NewDir("twice_one_call"));
  ASSERT_TRUE(catalog);
  const auto outcomes =
      catalog->Add({Item(Track("transience")), Item(Media("copy_of_transience.ogg"))}, kJobs);
  ASSERT_EQ(outcomes.size(), 2u);
  const int added = (outcomes[0].entry ? 1 : 0) + (outcomes[1].entry ? 1 : 0);
  EXPECT_EQ(added, 1);
  for (const AddOutcome& o : outcomes) {
    if (!o.entry) {
      EXPECT_TRUE(IsError(o.entry, ErrorCode::kAlreadyExists)) << o.path;
    }
  }
  auto listed = catalog->List({});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 1u);
  EXPECT_EQ(catalog->Snapshot()->TrackCount(), 1u);
}

TEST_F(CatalogTest, AddBadFilesFailPerItemWhileGoodOnesAreAdded) {
  auto catalog = OpenWritable(NewDir("bad_items"));
  ASSERT_TRUE(catalog);
  const std::vector<AddItem> items = {
      Item(Media("corrupt.ogg")), Item(Track("main_menu")),      Item(Media("empty.ogg")),
      Item(dir_ / "missing.ogg"), Item(Media("video_only.mp4")), Item(Media("short.ogg")),
      Item(Track("transience")),
  };
  const auto outcomes = catalog->Add(items, kJobs);
  ASSERT_EQ(outcomes.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(outcomes[i].path, items[i].path);

  EXPECT_TRUE(IsError(outcomes[0].entry, ErrorCode::kCorruptData, "corrupt.ogg"));
  EXPECT_TRUE(outcomes[1].entry) << ErrorText(outcomes[1].entry);
  EXPECT_TRUE(IsError(outcomes[2].entry, ErrorCode::kCorruptData, "empty.ogg"));
  EXPECT_TRUE(IsError(outcomes[3].entry, ErrorCode::kNotFound, "missing.ogg"));
  EXPECT_TRUE(IsError(outcomes[4].entry, ErrorCode::kUnsupported, "video_only.mp4"));
  EXPECT_TRUE(IsError(outcomes[5].entry, ErrorCode::kInvalidArgument, "too short"));
  EXPECT_TRUE(IsError(outcomes[5].entry, ErrorCode::kInvalidArgument, "short.ogg"));
  EXPECT_TRUE(outcomes[6].entry) << ErrorText(outcomes[6].entry);

  auto listed = catalog->List({});
  ASSERT_TRUE(listed);
  std::vector<std::string> titles;
  for (const auto& e : *listed) titles.push_back(e.metadata.title);
  std::sort(titles.begin(), titles.end());
  EXPECT_EQ(titles, (std::vector<std::string>{"main_menu", "transience"}));
  EXPECT_EQ(catalog->Snapshot()->TrackCount(), 2u);
}

TEST_F(CatalogTest, AddReportsProgressOncePerItemUpToTotal) {
  auto catalog = OpenWritable(NewDir("progress"));
  ASSERT_TRUE(catalog);
  const std::vector<AddItem> items = {Item(Track("main_menu")), Item(dir_ / "missing.ogg"),
                                      Item(Track("transience")), Item(Media("empty.ogg"))};
  std::vector<AddProgress> calls;
  const auto caller = std::this_thread::get_id();
  bool on_caller_thread = true;
  const auto outcomes = catalog->Add(items, kJobs, [&](const AddProgress& p) {
    calls.push_back(p);
    on_caller_thread = on_caller_thread && std::this_thread::get_id() == caller;
  });
  ASSERT_EQ(calls.size(), items.size());
  EXPECT_TRUE(on_caller_thread);
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].done, i + 1);
    EXPECT_EQ(calls[i].total, items.size());
    if (i > 0) {
      EXPECT_GE(calls[i].audio_seconds, calls[i - 1].audio_seconds);
    }
  }
  double added_seconds = 0;
  for (const AddOutcome& o : outcomes) {
    if (o.entry) added_seconds += o.entry->duration_s;
  }
  EXPECT_NEAR(added_seconds, 51.69 + 48.0, 0.4);
  EXPECT_NEAR(calls.back().audio_seconds, added_seconds, 1e-6);
}

TEST_F(CatalogTest, AddNothingIsANoOp) {
  auto catalog = OpenWritable(NewDir("add_nothing"));
  ASSERT_TRUE(catalog);
  int calls = 0;
  EXPECT_TRUE(catalog->Add({}, kJobs, [&](const AddProgress&) { ++calls; }).empty());
  EXPECT_EQ(calls, 0);
  auto stats = catalog->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->tracks, 0u);
}

TEST_F(CatalogTest, AddToReadOnlyCatalogFailsAndChangesNothing) {
  const fs::path dir = NewDir("read_only_add");
  {
    auto writer = OpenWritable(dir);
    ASSERT_TRUE(writer);
    AddAll(*writer, {Item(Track("main_menu"))});
  }
  auto reader = OpenReadOnly(dir);
  ASSERT_TRUE(reader);
  const auto outcomes = reader->Add({Item(Track("transience"))}, kJobs);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].entry);
  auto listed = reader->List({});
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].metadata.title, "main_menu");
  EXPECT_EQ(reader->Snapshot()->TrackCount(), 1u);
}

// ---------------------------------------------------------------------------
// Remove

TEST_F(CatalogTest, RemoveDropsMetadataAndFingerprints) {
  auto catalog = OpenWritable(NewDir("remove"));
  ASSERT_TRUE(catalog);
  const auto entries = AddAll(*catalog, {Item(Track("main_menu")), Item(Track("transience"))});
  ASSERT_EQ(entries.size(), 2u);
  const TrackId main_menu = entries[0].id, transience = entries[1].id;

  auto before = IdentifyFile(*catalog, Media("main_menu_20_8.wav"), {});
  ASSERT_TRUE(before) << ErrorText(before);
  ASSERT_FALSE(before->matches.empty());
  EXPECT_EQ(before->matches[0].entry.id, main_menu);

  auto removed = catalog->Remove({main_menu});
  ASSERT_TRUE(removed) << ErrorText(removed);
  EXPECT_TRUE(IsError(catalog->Get(main_menu), ErrorCode::kNotFound));
  EXPECT_FALSE(catalog->Snapshot()->HasTrack(main_menu));
  EXPECT_TRUE(catalog->Snapshot()->HasTrack(transience));

  auto after = IdentifyFile(*catalog, Media("main_menu_20_8.wav"), {});
  ASSERT_TRUE(after) << ErrorText(after);
  EXPECT_TRUE(after->matches.empty());
  auto other = IdentifyFile(*catalog, Media("transience_10_8.wav"), {});
  ASSERT_TRUE(other) << ErrorText(other);
  ASSERT_FALSE(other->matches.empty());
  EXPECT_EQ(other->matches[0].entry.id, transience);

  auto stats = catalog->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->tracks, 1u);
  EXPECT_NEAR(stats->audio_seconds, entries[1].duration_s, 1e-6);
}

TEST_F(CatalogTest, RemoveUnknownIdIsNotFoundAndRemovesNothing) {
  auto catalog = OpenWritable(NewDir("remove_unknown"));
  ASSERT_TRUE(catalog);
  const auto entries = AddAll(*catalog, {Item(Track("transience"))});
  ASSERT_EQ(entries.size(), 1u);
  const TrackId id = entries[0].id;

  EXPECT_TRUE(IsError(catalog->Remove({id, 9999}), ErrorCode::kNotFound, "9999"));
  EXPECT_TRUE(catalog->Get(id).has_value());
  EXPECT_TRUE(catalog->Snapshot()->HasTrack(id));
  auto found = IdentifyFile(*catalog, Media("transience_10_8.wav"), {});
  ASSERT_TRUE(found) << ErrorText(found);
  ASSERT_FALSE(found->matches.empty());
  EXPECT_EQ(found->matches[0].entry.id, id);
}

// BUG (src/catalog/catalog.cc, Catalog::Remove): an id given twice, e.g.
// Remove({7, 7}), removes track 7 (index and metadata) and then fails with
// kNotFound "track 7 ..." on the second db_->Remove: the caller is told the
// removal failed although it happened (`earshot catalog remove 7 7` exits 1).
// Expected: the repeated id is removed once and the call succeeds (or it is
// refused up front and nothing is removed).
TEST_F(CatalogTest, RemoveWithARepeatedIdRemovesTheTrackOnce) {
  auto catalog = OpenWritable(NewDir("remove_repeated"));
  ASSERT_TRUE(catalog);
  const auto entries = AddAll(*catalog, {Item(Track("transience"))});
  ASSERT_EQ(entries.size(), 1u);
  const TrackId id = entries[0].id;
  auto removed = catalog->Remove({id, id});
  EXPECT_TRUE(removed) << ErrorText(removed);
  EXPECT_TRUE(IsError(catalog->Get(id), ErrorCode::kNotFound));
  EXPECT_FALSE(catalog->Snapshot()->HasTrack(id));
}

TEST_F(CatalogTest, RemovedIdsAreNotReusedAndContentCanBeAddedAgain) {
  auto catalog = OpenWritable(NewDir("readd"));
  ASSERT_TRUE(catalog);
  const auto first = AddAll(*catalog, {Item(Track("transience"))});
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(catalog->Remove({first[0].id}));
  const auto second = AddAll(*catalog, {Item(Track("transience"))});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_GT(second[0].id, first[0].id);
  auto found = IdentifyFile(*catalog, Media("transience_10_8.wav"), {});
  ASSERT_TRUE(found) << ErrorText(found);
  ASSERT_FALSE(found->matches.empty());
  EXPECT_EQ(found->matches[0].entry.id, second[0].id);
}

TEST_F(CatalogTest, RemoveOnReadOnlyCatalogFailsAndRemovesNothing) {
  const fs::path dir = NewDir("read_only_remove");
  TrackId id = 0;
  {
    auto writer = OpenWritable(dir);
    ASSERT_TRUE(writer);
    const auto entries = AddAll(*writer, {Item(Track("transience"))});
    ASSERT_EQ(entries.size(), 1u);
    id = entries[0].id;
  }
  auto reader = OpenReadOnly(dir);
  ASSERT_TRUE(reader);
  EXPECT_FALSE(reader->Remove({id}));
  EXPECT_TRUE(reader->Get(id).has_value());
  EXPECT_TRUE(reader->Snapshot()->HasTrack(id));
}

// ---------------------------------------------------------------------------
// Stats, persistence, opening, repair

TEST_F(CatalogTest, StatsCountTracksSecondsPostingsAndIndexBytes) {
  auto catalog = OpenWritable(NewDir("stats"));
  ASSERT_TRUE(catalog);
  auto empty = catalog->Stats();
  ASSERT_TRUE(empty) << ErrorText(empty);
  EXPECT_EQ(empty->tracks, 0u);
  EXPECT_EQ(empty->audio_seconds, 0.0);
  EXPECT_EQ(empty->postings, 0u);

  const auto first = AddAll(
      *catalog, {Item(Track("main_menu"), store::BusinessRule::kBlock), Item(Track("transience"))});
  ASSERT_EQ(first.size(), 2u);
  auto two = catalog->Stats();
  ASSERT_TRUE(two) << ErrorText(two);
  EXPECT_EQ(two->tracks, 2u);
  EXPECT_NEAR(two->audio_seconds, first[0].duration_s + first[1].duration_s, 1e-6);
  EXPECT_GT(two->postings, 0u);
  EXPECT_GT(two->index_bytes, 0u);
  EXPECT_GE(two->segments, 1u);
  EXPECT_EQ(two->algorithm_version, recognition::kAlgorithmVersion);
  EXPECT_EQ(two->by_rule[store::BusinessRule::kBlock], 1u);
  EXPECT_EQ(two->by_rule[store::BusinessRule::kTrack], 1u);
  EXPECT_EQ(two->by_rule[store::BusinessRule::kMute], 0u);
  EXPECT_EQ(two->postings, catalog->Snapshot()->PostingCount());

  AddAll(*catalog, {Item(Track("sad"), store::BusinessRule::kMute)});
  auto three = catalog->Stats();
  ASSERT_TRUE(three) << ErrorText(three);
  EXPECT_EQ(three->tracks, 3u);
  EXPECT_GT(three->postings, two->postings);
  EXPECT_GT(three->audio_seconds, two->audio_seconds + 40);
  EXPECT_EQ(three->by_rule[store::BusinessRule::kMute], 1u);
}

TEST_F(CatalogTest, ReopenKeepsEntriesAndFingerprints) {
  const fs::path dir = NewDir("reopen");
  std::vector<store::CatalogEntry> entries;
  uint64_t postings = 0;
  {
    auto catalog = OpenWritable(dir);
    ASSERT_TRUE(catalog);
    entries = AddAll(*catalog, {Item(Track("main_menu"), store::BusinessRule::kAllow),
                                Item(Track("transience"))});
    ASSERT_EQ(entries.size(), 2u);
    postings = catalog->Stats()->postings;
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& x, const auto& y) { return x.id < y.id; });
  for (bool read_only : {false, true}) {
    SCOPED_TRACE(read_only ? "read-only" : "writable");
    std::vector<std::string> repaired;
    auto catalog = read_only ? OpenReadOnly(dir) : OpenWritable(dir, &repaired);
    ASSERT_TRUE(catalog);
    EXPECT_TRUE(repaired.empty());
    auto listed = catalog->List({});
    ASSERT_TRUE(listed) << ErrorText(listed);
    EXPECT_EQ(*listed, entries);
    EXPECT_EQ(catalog->Stats()->postings, postings);
    auto found = IdentifyFile(*catalog, Media("main_menu_20_8.wav"), {});
    ASSERT_TRUE(found) << ErrorText(found);
    ASSERT_FALSE(found->matches.empty());
    EXPECT_EQ(found->matches[0].entry.metadata.title, "main_menu");
    EXPECT_EQ(found->matches[0].entry.rule, store::BusinessRule::kAllow);
  }
}

TEST_F(CatalogTest, OpenMissingCatalogReadOnlyIsNotFoundWithAHint) {
  const fs::path dir = NewDir("missing");
  CatalogOptions options;
  options.read_only = true;
  auto opened = Catalog::Open(dir, options);
  EXPECT_TRUE(IsError(opened, ErrorCode::kNotFound, dir.string()));
  EXPECT_TRUE(IsError(opened, ErrorCode::kNotFound, "earshot catalog add"));
  EXPECT_FALSE(fs::exists(dir));

  CatalogOptions no_create;
  no_create.create_if_missing = false;
  EXPECT_TRUE(IsError(Catalog::Open(dir, no_create), ErrorCode::kNotFound));
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(CatalogTest, OpenCreatesAnEmptyCatalog) {
  const fs::path dir = NewDir("created");
  auto catalog = OpenWritable(dir);
  ASSERT_TRUE(catalog);
  EXPECT_TRUE(fs::exists(dir / "catalog.db"));
  EXPECT_TRUE(fs::is_directory(dir / "index"));
  EXPECT_EQ(catalog->dir(), dir);
  catalog.reset();
  // Now a read-only open finds it.
  EXPECT_TRUE(OpenReadOnly(dir));
}

TEST_F(CatalogTest, WritableOpenRepairsAnInterruptedAdd) {
  const fs::path dir = NewDir("repair");
  TrackId good = 0;
  {
    auto catalog = OpenWritable(dir);
    ASSERT_TRUE(catalog);
    const auto entries = AddAll(*catalog, {Item(Track("transience"))});
    ASSERT_EQ(entries.size(), 1u);
    good = entries[0].id;
  }
  // An add interrupted between its two phases: a row without fingerprints.
  TrackId ghost = 0;
  {
    auto db = store::CatalogDb::Open(dir / "catalog.db");
    ASSERT_TRUE(db) << ErrorText(db);
    store::CatalogEntry entry;
    entry.source = "/refs/ghost.flac";
    entry.content_sha256 = std::string(64, 'a');
    entry.metadata.title = "ghost";
    entry.duration_s = 12;
    entry.algorithm_version = recognition::kAlgorithmVersion;
    auto id = (*db)->Insert(entry);
    ASSERT_TRUE(id) << ErrorText(id);
    ghost = *id;
  }
  {  // A read-only open does not repair.
    auto reader = OpenReadOnly(dir);
    ASSERT_TRUE(reader);
    EXPECT_TRUE(reader->Get(ghost).has_value());
  }
  std::vector<std::string> repaired;
  auto catalog = OpenWritable(dir, &repaired);
  ASSERT_TRUE(catalog);
  ASSERT_EQ(repaired.size(), 1u);
  EXPECT_NE(repaired[0].find("track " + std::to_string(ghost)), std::string::npos) << repaired[0];
  EXPECT_NE(repaired[0].find("ghost"), std::string::npos) << repaired[0];
  EXPECT_NE(repaired[0].find("/refs/ghost.flac"), std::string::npos) << repaired[0];
  EXPECT_TRUE(IsError(catalog->Get(ghost), ErrorCode::kNotFound));
  EXPECT_TRUE(catalog->Get(good).has_value());
  EXPECT_TRUE(catalog->Snapshot()->HasTrack(good));
  auto stats = catalog->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->tracks, 1u);
  catalog.reset();

  // Repaired once: the next open has nothing to say.
  repaired.clear();
  EXPECT_TRUE(OpenWritable(dir, &repaired));
  EXPECT_TRUE(repaired.empty());
}

TEST_F(CatalogTest, ReaderSeesWritersChangesAfterRefresh) {
  const fs::path dir = NewDir("refresh");
  auto writer = OpenWritable(dir);
  ASSERT_TRUE(writer);
  const auto first = AddAll(*writer, {Item(Track("transience"))});
  ASSERT_EQ(first.size(), 1u);
  auto reader = OpenReadOnly(dir);
  ASSERT_TRUE(reader);

  const auto second = AddAll(*writer, {Item(Track("main_menu"))});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_FALSE(reader->Snapshot()->HasTrack(second[0].id));
  ASSERT_TRUE(reader->Refresh());
  EXPECT_TRUE(reader->Snapshot()->HasTrack(second[0].id));
  auto found = IdentifyFile(*reader, Media("main_menu_20_8.wav"), {});
  ASSERT_TRUE(found) << ErrorText(found);
  ASSERT_FALSE(found->matches.empty());
  EXPECT_EQ(found->matches[0].entry.id, second[0].id);

  // A track removed meanwhile: the reader's (stale) index still has its
  // prints, but the match is dropped because its metadata is gone.
  ASSERT_TRUE(writer->Remove({first[0].id}));
  EXPECT_TRUE(reader->Snapshot()->HasTrack(first[0].id));
  auto stale = IdentifyFile(*reader, Media("transience_10_8.wav"), {});
  ASSERT_TRUE(stale) << ErrorText(stale);
  EXPECT_TRUE(stale->matches.empty());
}

TEST_F(CatalogTest, IdentifyWhileAddingFindsTracksAlreadyThere) {
  auto catalog = OpenWritable(NewDir("concurrent"));
  ASSERT_TRUE(catalog);
  const auto first = AddAll(*catalog, {Item(Track("transience"))});
  ASSERT_EQ(first.size(), 1u);
  std::atomic<bool> adding{true};
  std::vector<AddOutcome> outcomes;
  std::thread add([&] {
    outcomes = catalog->Add({Item(Track("main_menu")), Item(Track("sad"))}, 1);
    adding = false;
  });
  int identified = 0, found = 0;
  const fs::path excerpt = Media("transience_10_8.wav");
  do {
    auto r = IdentifyFile(*catalog, excerpt, {});
    ++identified;
    if (r && !r->matches.empty() && r->matches[0].entry.id == first[0].id) ++found;
  } while (adding || identified < 3);
  add.join();
  EXPECT_EQ(found, identified);
  for (const AddOutcome& o : outcomes) EXPECT_TRUE(o.entry) << ErrorText(o.entry);
  auto sad = IdentifyFile(*catalog, Media("sad_15_8.wav"), {});
  ASSERT_TRUE(sad) << ErrorText(sad);
  ASSERT_FALSE(sad->matches.empty());
  EXPECT_EQ(sad->matches[0].entry.metadata.title, "sad");
}

TEST_F(CatalogTest, FindAudioFilesIsRecursiveSortedAndByExtension) {
  const fs::path root = dir_ / "find";
  fs::create_directories(root / "sub" / "deeper");
  for (const char* name : {"b.mp3", "a.OGG", "notes.txt", "sub/c.flac", "sub/deeper/d.wav",
                           "sub/cover.jpg", "noext"}) {
    std::ofstream(root / name) << "x";
  }
  fs::create_directories(root / "folder.mp3");  // a folder is not a file
  const auto found = FindAudioFiles(root);
  EXPECT_EQ(found, (std::vector<fs::path>{root / "a.OGG", root / "b.mp3", root / "sub/c.flac",
                                          root / "sub/deeper/d.wav"}));
  EXPECT_TRUE(FindAudioFiles(root / "does-not-exist").empty());
}

// ---------------------------------------------------------------------------
// Identification

// Checks that `response` has a match on `track` whose recording starts at
// reference time `reference_start` (within 0.5 s), and that every match is
// on that track.
void ExpectFound(const IdentifyResponse& response, TrackId track, double reference_start) {
  ASSERT_FALSE(response.matches.empty()) << response.file << ": no match";
  const IdentifiedMatch& m = response.matches[0];
  EXPECT_EQ(m.entry.id, track) << m.entry.metadata.title;
  EXPECT_LT(m.time_in_file_s, 0.5);
  EXPECT_NEAR(m.time_in_reference_s, reference_start + m.time_scale * m.time_in_file_s, 0.5);
  EXPECT_NEAR(m.time_in_reference_s, reference_start, 0.5);
  EXPECT_GE(m.score, recognition::QueryParams{}.min_score);
  EXPECT_GT(m.duration_s, response.duration_s - 1.0);
  EXPECT_LE(m.time_in_file_s + m.duration_s, response.duration_s + 0.1);
  for (const IdentifiedMatch& other : response.matches) EXPECT_EQ(other.entry.id, track);
}

TEST_F(CatalogTest, IdentifyFileFindsAnExcerptAtItsReferenceTime) {
  Catalog& catalog = Shared();
  const fs::path ogg = Media("love_theme_40_8.ogg");
  auto r = IdentifyFile(catalog, ogg, {});
  ASSERT_TRUE(r) << ErrorText(r);
  EXPECT_EQ(r->file, ogg.string());
  EXPECT_NEAR(r->duration_s, 8.0, 0.05);
  ExpectFound(*r, SharedId("love_theme"), 40.0);
  ASSERT_FALSE(r->matches.empty());
  EXPECT_NEAR(r->matches[0].time_scale, 1.0, 0.01);
  EXPECT_NEAR(r->matches[0].pitch_factor, 1.0, 0.01);
  EXPECT_EQ(r->matches[0].entry.metadata.title, "love_theme");
  EXPECT_EQ(r->matches[0].entry.rule, store::BusinessRule::kTrack);

  auto wav = IdentifyFile(catalog, Media("underground_60_8.wav"), {});
  ASSERT_TRUE(wav) << ErrorText(wav);
  ExpectFound(*wav, SharedId("underground"), 60.0);
}

TEST_F(CatalogTest, IdentifyFileFindsNothingInNoiseOrUncataloguedMusic) {
  Catalog& catalog = Shared();
  for (const char* name : {"white_noise.wav", "pink_noise.wav", "battle_40_8.wav"}) {
    SCOPED_TRACE(name);
    auto r = IdentifyFile(catalog, Media(name), {});
    ASSERT_TRUE(r) << ErrorText(r);
    EXPECT_GT(r->duration_s, 7.9);
    EXPECT_TRUE(r->matches.empty()) << "matched " << r->matches[0].entry.metadata.title
                                    << " with score " << r->matches[0].score;
  }
}

TEST_F(CatalogTest, IdentifyFileOfMissingOrVideoOnlyFileFails) {
  Catalog& catalog = Shared();
  EXPECT_TRUE(
      IsError(IdentifyFile(catalog, dir_ / "nope.wav", {}), ErrorCode::kNotFound, "nope.wav"));
  EXPECT_TRUE(IsError(IdentifyFile(catalog, Media("video_only.mp4"), {}), ErrorCode::kUnsupported));
  EXPECT_TRUE(IsError(IdentifyFile(catalog, Media("corrupt.ogg"), {}), ErrorCode::kCorruptData));
}

TEST_F(CatalogTest, IdentifyAudioOfSilenceOrNothingFindsNothing) {
  Catalog& catalog = Shared();
  const int rate = catalog.params().sample_rate;
  const std::vector<float> silence(static_cast<size_t>(5 * rate), 0.0f);
  auto r = IdentifyAudio(catalog, silence, {});
  ASSERT_TRUE(r) << ErrorText(r);
  EXPECT_NEAR(r->duration_s, 5.0, 1e-9);
  EXPECT_TRUE(r->matches.empty());
  auto nothing = IdentifyAudio(catalog, std::span<const float>(), {});
  ASSERT_TRUE(nothing) << ErrorText(nothing);
  EXPECT_EQ(nothing->duration_s, 0.0);
  EXPECT_TRUE(nothing->matches.empty());
}

TEST_F(CatalogTest, IdentifyOnAnEmptyCatalogIsFailedPrecondition) {
  auto catalog = OpenWritable(NewDir("empty"));
  ASSERT_TRUE(catalog);
  const std::vector<float> pcm(8000, 0.1f);
  EXPECT_TRUE(IsError(IdentifyAudio(*catalog, pcm, {}), ErrorCode::kFailedPrecondition,
                      "earshot catalog add"));
  int events = 0;
  Status follow = FollowInput(*catalog, Media("white_noise.wav").string(), false, {},
                              [&](const nlohmann::json&) { ++events; });
  EXPECT_TRUE(IsError(follow, ErrorCode::kFailedPrecondition));
  EXPECT_EQ(events, 0);
}

struct Degradation {
  const char* file;
  double time_scale;    // expected reference seconds per recording second
  double pitch_factor;  // expected reference frequency / recording frequency
};

class DegradedCopyTest : public CatalogTestBase,
                         public ::testing::WithParamInterface<Degradation> {};

TEST_P(DegradedCopyTest, IsStillIdentified) {
  const Degradation& d = GetParam();
  auto r = IdentifyFile(Shared(), Media(d.file), {});
  ASSERT_TRUE(r) << ErrorText(r);
  ExpectFound(*r, SharedId("battle-epic"), 30.0);
  ASSERT_FALSE(r->matches.empty());
  EXPECT_NEAR(r->matches[0].time_scale, d.time_scale, 0.01);
  EXPECT_NEAR(r->matches[0].pitch_factor, d.pitch_factor, 0.01);
}

INSTANTIATE_TEST_SUITE_P(Copies, DegradedCopyTest,
                         ::testing::Values(Degradation{"epic_mp3_64k.mp3", 1.0, 1.0},
                                           Degradation{"epic_noisy.wav", 1.0, 1.0},
                                           Degradation{"epic_tempo_1.05.wav", 1.05, 1.0},
                                           Degradation{"epic_speed_1.03.wav", 1.03, 1.0 / 1.03}),
                         [](const ::testing::TestParamInfo<Degradation>& param) {
                           std::string name = fs::path(param.param.file).stem().string();
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST_F(CatalogTest, IdentifyLongFileReportsTheCataloguedSegment) {
  Catalog& catalog = Shared();
  auto r = IdentifyFile(catalog, Media("long.wav"), {});
  ASSERT_TRUE(r) << ErrorText(r);
  EXPECT_NEAR(r->duration_s, 80.0, 0.1);
  ASSERT_EQ(r->matches.size(), 1u);
  const IdentifiedMatch& m = r->matches[0];
  EXPECT_EQ(m.entry.id, SharedId("underground"));
  EXPECT_NEAR(m.time_in_file_s, 20.0, 2.0);
  EXPECT_NEAR(m.duration_s, 40.0, 3.0);
  EXPECT_NEAR(m.time_in_reference_s - (m.time_in_file_s - 20.0) * m.time_scale, 30.0, 0.5);
  EXPECT_NEAR(m.time_scale, 1.0, 0.01);
  EXPECT_GE(m.score, recognition::QueryParams{}.min_score);
}

// The alignment of a followed match: the first report rests on a few seconds
// of music (its scale is a rough estimate), later full verifications over the
// 10 s window refine it, and the follow steps never let the scale or the
// pitch drift. long.wav holds an unaltered 40 s excerpt of underground.ogg
// from 30 s, at 20 s in the file.
TEST_F(CatalogTest, FollowInputKeepsTheScaleAndReferenceStartOfAMatch) {
  std::vector<nlohmann::json> events;
  Status s = FollowInput(Shared(), Media("long.wav").string(), false, {},
                         [&](const nlohmann::json& e) { events.push_back(e); });
  ASSERT_TRUE(s) << ErrorText(s);
  ASSERT_GE(events.size(), 2u);
  for (const nlohmann::json& e : events) {
    SCOPED_TRACE(e.dump());
    const nlohmann::json& m = e["match"];
    const double scale = m["time_scale"].get<double>();
    const bool first = &e == &events.front();
    EXPECT_NEAR(scale, 1.0, first ? 0.02 : 0.005);
    // The reference time at input time 20 s, where the excerpt starts.
    const double reference_at_20 = m["time_in_reference_s"].get<double>() -
                                   (m["time_in_input_s"].get<double>() - 20.0) * scale;
    EXPECT_NEAR(reference_at_20, 30.0, first ? 0.5 : 0.25);
    EXPECT_NEAR(m["pitch_factor"].get<double>(), 1.0, 0.015);
  }
}

TEST_F(CatalogTest, FollowInputEmitsStartedThenEndedForOneMatch) {
  Catalog& catalog = Shared();
  const std::string input = Media("long.wav").string();
  std::vector<nlohmann::json> events;
  Status s = FollowInput(catalog, input, /*realtime=*/false, {},
                         [&](const nlohmann::json& e) { events.push_back(e); });
  ASSERT_TRUE(s) << ErrorText(s);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.front()["event"], "started");
  EXPECT_EQ(events.back()["event"], "ended");
  const auto match_id = events.front()["match_id"];
  double reported = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const nlohmann::json& e = events[i];
    SCOPED_TRACE(e.dump());
    EXPECT_EQ(e["match_id"], match_id);
    EXPECT_EQ(e["input"], input);
    if (i > 0 && i + 1 < events.size()) {
      EXPECT_EQ(e["event"], "ongoing");
    }
    EXPECT_EQ(e["match"]["track_id"], SharedId("underground"));
    EXPECT_EQ(e["match"]["metadata"]["title"], "underground");
    EXPECT_EQ(e["match"]["rule"], "track");
    EXPECT_GE(e["reported_at_s"].get<double>(), reported);
    reported = e["reported_at_s"].get<double>();
  }
  // Started soon after the music starts, ended after it stops.
  const double started_at = events.front()["reported_at_s"].get<double>();
  EXPECT_GT(started_at, 20.0);
  EXPECT_LT(started_at, 30.0);
  EXPECT_GT(events.back()["reported_at_s"].get<double>(), 60.0);
  const nlohmann::json& ended = events.back()["match"];
  EXPECT_NEAR(ended["time_in_input_s"].get<double>(), 20.0, 2.0);
  EXPECT_NEAR(ended["duration_s"].get<double>(), 40.0, 3.0);
}

TEST_F(CatalogTest, FollowInputOnNoiseEmitsNothing) {
  int events = 0;
  Status s = FollowInput(Shared(), Media("pink_noise.wav").string(), false, {},
                         [&](const nlohmann::json&) { ++events; });
  ASSERT_TRUE(s) << ErrorText(s);
  EXPECT_EQ(events, 0);
}

TEST_F(CatalogTest, FollowInputOfMissingFileIsNotFound) {
  int events = 0;
  Status s = FollowInput(Shared(), (dir_ / "nope.wav").string(), false, {},
                         [&](const nlohmann::json&) { ++events; });
  EXPECT_TRUE(IsError(s, ErrorCode::kNotFound, "nope.wav"));
  EXPECT_EQ(events, 0);
}

// ---------------------------------------------------------------------------
// JSON forms

store::CatalogEntry SampleEntry() {
  store::CatalogEntry e;
  e.id = 42;
  e.source = "/refs/song.flac";
  e.metadata.title = "Song";
  e.metadata.artist = "Artist";
  e.metadata.rights_holder = "Label";
  e.metadata.isrc = "GBAAA2400001";
  e.metadata.tags = {{"album", "First"}};
  e.rule = store::BusinessRule::kBlock;
  e.duration_s = 181.23456;
  e.added_at_unix_ms = 1'700'000'000'123;
  return e;
}

TEST(IdentifyJsonTest, ResponseWithAMatchIsMatchFound) {
  IdentifyResponse response;
  response.file = "clip.mp3";
  response.duration_s = 8.00049;
  IdentifiedMatch m;
  m.entry = SampleEntry();
  m.time_in_file_s = 1.23456;
  m.duration_s = 6.5;
  m.time_in_reference_s = 40.0321;
  m.score = 55.55555;
  m.time_scale = 1.05251;
  m.pitch_factor = 0.97089;
  response.matches.push_back(m);

  const nlohmann::json j = ResponseToJson(response);
  EXPECT_EQ(j["input"], "clip.mp3");
  EXPECT_EQ(j["status"], "match_found");
  EXPECT_DOUBLE_EQ(j["duration_s"].get<double>(), 8.0);
  EXPECT_EQ(j["algorithm_version"], recognition::kAlgorithmVersion);
  ASSERT_TRUE(j["matches"].is_array());
  ASSERT_EQ(j["matches"].size(), 1u);
  const nlohmann::json& match = j["matches"][0];
  EXPECT_EQ(match, MatchToJson(m));
  EXPECT_EQ(match["match_type"], "audio");
  EXPECT_EQ(match["track_id"], 42);
  EXPECT_EQ(match["rule"], "block");
  EXPECT_EQ(match["metadata"]["title"], "Song");
  EXPECT_EQ(match["metadata"]["artist"], "Artist");
  EXPECT_EQ(match["metadata"]["rights_holder"], "Label");
  EXPECT_EQ(match["metadata"]["isrc"], "GBAAA2400001");
  EXPECT_EQ(match["metadata"]["tags"]["album"], "First");
  EXPECT_DOUBLE_EQ(match["time_in_input_s"].get<double>(), 1.235);
  EXPECT_DOUBLE_EQ(match["duration_s"].get<double>(), 6.5);
  EXPECT_DOUBLE_EQ(match["time_in_reference_s"].get<double>(), 40.032);
  EXPECT_DOUBLE_EQ(match["score"].get<double>(), 55.556);
  EXPECT_DOUBLE_EQ(match["time_scale"].get<double>(), 1.0525);
  EXPECT_DOUBLE_EQ(match["pitch_factor"].get<double>(), 0.9709);
}

TEST(IdentifyJsonTest, ResponseWithoutMatchesIsNoMatchWithAnEmptyArray) {
  IdentifyResponse response;
  response.file = "noise.wav";
  response.duration_s = 10;
  const nlohmann::json j = ResponseToJson(response);
  EXPECT_EQ(j["status"], "no_match");
  EXPECT_EQ(j["input"], "noise.wav");
  ASSERT_TRUE(j["matches"].is_array());
  EXPECT_TRUE(j["matches"].empty());
}

TEST(IdentifyJsonTest, ErrorIsStatusErrorWithCodeAndMessage) {
  const nlohmann::json j =
      ErrorToJson("gone.mp3", Error(ErrorCode::kNotFound, "gone.mp3 does not exist"));
  EXPECT_EQ(j["input"], "gone.mp3");
  EXPECT_EQ(j["status"], "error");
  EXPECT_EQ(j["error"]["code"], "not_found");
  EXPECT_EQ(j["error"]["message"], "gone.mp3 does not exist");
  EXPECT_FALSE(j.contains("matches"));
}

TEST(IdentifyJsonTest, EntryHasItsMetadataRuleAndSource) {
  const nlohmann::json j = EntryToJson(SampleEntry());
  EXPECT_EQ(j["track_id"], 42);
  EXPECT_EQ(j["kind"], "audio");
  EXPECT_EQ(j["title"], "Song");
  EXPECT_EQ(j["artist"], "Artist");
  EXPECT_EQ(j["rights_holder"], "Label");
  EXPECT_EQ(j["isrc"], "GBAAA2400001");
  EXPECT_EQ(j["tags"]["album"], "First");
  EXPECT_EQ(j["rule"], "block");
  EXPECT_DOUBLE_EQ(j["duration_s"].get<double>(), 181.235);
  EXPECT_EQ(j["source"], "/refs/song.flac");
  EXPECT_EQ(j["added_at_unix_ms"], 1'700'000'000'123);
}

}  // namespace
}  // namespace earshot::catalog
