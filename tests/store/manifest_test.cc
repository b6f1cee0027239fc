#include "store/manifest.h"

#include <gtest/gtest.h>

#include <string>

#include "temp_dir.h"

namespace earshot::store {
namespace {

using testing::TempDir;
using testing::WriteFile;

const std::filesystem::path kBase = "/refs/batch1";

std::vector<ManifestItem> ParseOrDie(std::string_view text, ManifestFormat format,
                                     const std::filesystem::path& base = kBase) {
  auto items = ParseManifestText(text, format, base);
  EXPECT_TRUE(items) << items.error().ToString();
  return items.value_or(std::vector<ManifestItem>{});
}

// The error message of a parse that must fail with kInvalidArgument.
std::string ErrorOf(std::string_view text, ManifestFormat format) {
  auto items = ParseManifestText(text, format, kBase);
  EXPECT_FALSE(items) << text;
  if (items) return "";
  EXPECT_EQ(items.error().code(), ErrorCode::kInvalidArgument) << items.error().message();
  return items.error().message();
}

// ---------------------------------------------------------------------- TSV

TEST(ManifestTsvTest, ParsesEveryColumn) {
  const auto items = ParseOrDie(
      "path\ttitle\tartist\trights_holder\tisrc\trule\ttags\n"
      "a.flac\tSong A\tArtist A\tLabel\tus-rc1-76-07839\tblock\talbum=First;year=2001\n"
      "/abs/b.wav\tSong B\t\t\t\t\t\n",
      ManifestFormat::kTsv);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].path, "/refs/batch1/a.flac");
  EXPECT_EQ(items[0].metadata.title, "Song A");
  EXPECT_EQ(items[0].metadata.artist, "Artist A");
  EXPECT_EQ(items[0].metadata.rights_holder, "Label");
  EXPECT_EQ(items[0].metadata.isrc, "USRC17607839");
  EXPECT_EQ(items[0].rule, BusinessRule::kBlock);
  EXPECT_EQ(items[0].metadata.tags,
            (std::map<std::string, std::string>{{"album", "First"}, {"year", "2001"}}));
  EXPECT_EQ(items[1].path, "/abs/b.wav");  // absolute paths are kept
  TrackMetadata only_title;
  only_title.title = "Song B";
  EXPECT_EQ(items[1].metadata, only_title);
  EXPECT_EQ(items[1].rule, std::nullopt);
}

TEST(ManifestTsvTest, ColumnsInAnyOrderAndOnlyPathRequired) {
  auto items = ParseOrDie("Rule\tPATH\nmute\tsub/x.mp3\n\tsub/../y.mp3\n", ManifestFormat::kTsv);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].path, "/refs/batch1/sub/x.mp3");
  EXPECT_EQ(items[0].rule, BusinessRule::kMute);
  EXPECT_EQ(items[0].metadata.title, "");  // the caller defaults it to the stem
  EXPECT_EQ(items[1].path, "/refs/batch1/y.mp3");
  EXPECT_EQ(items[1].rule, std::nullopt);

  items = ParseOrDie("path\nonly.ogg\n", ManifestFormat::kTsv);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].path, "/refs/batch1/only.ogg");
}

TEST(ManifestTsvTest, SkipsCommentsAndBlankLinesAcceptsCrlfBomAndSpaces) {
  const auto items = ParseOrDie(
      "\xEF\xBB\xBF# catalog for label X\r\n"
      "\r\n"
      "path\ttitle\ttags\r\n"
      "  a.flac \t  Title A  \t k = v ; k2=v2; \r\n"
      "# a.flac\tcommented out\t\r\n"
      "   \r\n"
      "b.flac\tTitle B\t\r\n",
      ManifestFormat::kTsv);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].path, "/refs/batch1/a.flac");
  EXPECT_EQ(items[0].metadata.title, "Title A");
  EXPECT_EQ(items[0].metadata.tags, (std::map<std::string, std::string>{{"k", "v"}, {"k2", "v2"}}));
  EXPECT_EQ(items[1].metadata.title, "Title B");
  EXPECT_TRUE(items[1].metadata.tags.empty());
}

TEST(ManifestTsvTest, HeaderOnlyIsAnEmptyList) {
  EXPECT_TRUE(ParseOrDie("path\ttitle\n", ManifestFormat::kTsv).empty());
}

TEST(ManifestTsvTest, EmptyBaseDirKeepsRelativePaths) {
  auto items = ParseOrDie("path\nx/a.wav\n", ManifestFormat::kTsv, "");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].path, "x/a.wav");
}

TEST(ManifestTsvTest, ErrorsNameTheLineAndTheProblem) {
  struct Case {
    const char* name;
    const char* text;
    const char* expected;  // the whole message
  };
  const Case cases[] = {
      {"empty", "",
       "no header line: the first line must name the tab-separated columns (path, title, "
       "artist, rights_holder, isrc, rule, tags; path is required)"},
      {"only comments", "# nothing\n\n",
       "no header line: the first line must name the tab-separated columns (path, title, "
       "artist, rights_holder, isrc, rule, tags; path is required)"},
      {"missing path column", "# c\ntitle\trule\nx\tblock\n",
       "line 2: header: no \"path\" column (columns are tab-separated; allowed: path, title, "
       "artist, rights_holder, isrc, rule, tags)"},
      {"space-separated header", "path title rule\n",
       "line 1: header: unknown column \"path title rule\" (allowed: path, title, artist, "
       "rights_holder, isrc, rule, tags)"},
      {"unknown columns", "path\ttitel\talbum\n",
       "line 1: header: unknown columns \"titel\", \"album\" (allowed: path, title, artist, "
       "rights_holder, isrc, rule, tags)"},
      {"duplicate column", "path\ttitle\tTitle\n",
       "line 1: header: column \"title\" appears twice"},
      {"empty column name", "path\t\ttitle\n", "line 1: header: column 2 has no name"},
      {"too few fields", "path\ttitle\trule\na.wav\tA\tblock\n\nb.wav\tB\n",
       "line 4: expected 3 tab-separated fields (path, title, rule) but found 2"},
      {"too many fields", "path\ttitle\na.wav\tA\tblock\n",
       "line 2: expected 2 tab-separated fields (path, title) but found 3"},
      {"bad rule", "path\trule\na.wav\tblock\nb.wav\tblok\n",
       "line 3: column \"rule\": unknown business rule \"blok\" (allowed: block, mute, allow, "
       "track)"},
      {"empty path", "path\ttitle\n\tNo path\n", "line 2: column \"path\": the path is empty"},
      {"tag without =", "path\ttags\na.wav\tgenre\n",
       "line 2: column \"tags\": tag \"genre\" has no '=' (expected key=value;key2=value2)"},
      {"duplicate tag", "path\ttags\na.wav\tk=1;k=2\n",
       "line 2: column \"tags\": tag \"k\" appears twice"},
      {"empty tag key", "path\ttags\na.wav\t=v\n",
       "line 2: column \"tags\": tag with an empty key (=v)"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorOf(c.text, ManifestFormat::kTsv), c.expected) << c.name;
  }
}

TEST(ManifestTsvTest, BadIsrcNamesLineAndCode) {
  const std::string message =
      ErrorOf("path\tisrc\na.wav\tUSRC17607839\nb.wav\tUSRC1760783\n", ManifestFormat::kTsv);
  EXPECT_TRUE(message.starts_with("line 3: column \"isrc\": invalid ISRC \"USRC1760783\""))
      << message;
}

// --------------------------------------------------------------------- JSON

TEST(ManifestJsonTest, ParsesEveryKey) {
  const auto items = ParseOrDie(R"([
    {"path": "a.flac", "title": "Song A", "artist": "Artist A", "rights_holder": "Label",
     "isrc": "USRC17607839", "rule": "allow", "tags": {"album": "First; Deluxe", "year": "2001"}},
    {"path": "/abs/b.wav", "title": null, "rule": null, "tags": null},
    {"path": "../c.ogg", "rule": "TRACK", "tags": {}}
  ])",
                                ManifestFormat::kJson);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].path, "/refs/batch1/a.flac");
  EXPECT_EQ(items[0].metadata.title, "Song A");
  EXPECT_EQ(items[0].metadata.artist, "Artist A");
  EXPECT_EQ(items[0].metadata.rights_holder, "Label");
  EXPECT_EQ(items[0].metadata.isrc, "USRC17607839");
  EXPECT_EQ(items[0].rule, BusinessRule::kAllow);
  EXPECT_EQ(items[0].metadata.tags,
            (std::map<std::string, std::string>{{"album", "First; Deluxe"}, {"year", "2001"}}));
  ManifestItem only_path;
  only_path.path = "/abs/b.wav";
  EXPECT_EQ(items[1], only_path);
  EXPECT_EQ(items[2].path, "/refs/c.ogg");
  EXPECT_EQ(items[2].rule, BusinessRule::kTrack);
}

TEST(ManifestJsonTest, EmptyArrayIsAnEmptyList) {
  EXPECT_TRUE(ParseOrDie("[]", ManifestFormat::kJson).empty());
}

TEST(ManifestJsonTest, ErrorsNameTheElementAndTheProblem) {
  struct Case {
    const char* name;
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"not an array", R"({"path": "a.wav"})",
       "the manifest must be a JSON array of objects, got object"},
      {"element not an object", R"([{"path": "a.wav"}, "b.wav"])",
       "element [1]: expected an object, got string"},
      {"missing path", R"([{"path": "a.wav"}, {"path": "b.wav"}, {"title": "T"}])",
       "element [2]: \"path\" is missing"},
      {"null path", R"([{"path": null}])", "element [0]: \"path\" is missing"},
      {"empty path", R"([{"path": " "}])", "element [0]: \"path\": the path is empty"},
      {"unknown keys", R"([{"path": "a.wav", "titel": "x", "Rule": "block"}])",
       "element [0]: unknown keys \"Rule\", \"titel\" (allowed: path, title, artist, "
       "rights_holder, isrc, rule, tags)"},
      {"wrong type", R"([{"path": "a.wav", "title": 5}])",
       "element [0]: \"title\" must be a string, got number"},
      {"bad rule", R"([{"path": "a.wav"}, {"path": "b.wav", "rule": "blok"}])",
       "element [1]: \"rule\": unknown business rule \"blok\" (allowed: block, mute, allow, "
       "track)"},
      {"tags not an object", R"([{"path": "a.wav", "tags": "k=v"}])",
       "element [0]: \"tags\" must be an object of strings, got string"},
      {"tag not a string", R"([{"path": "a.wav", "tags": {"year": 2001}}])",
       "element [0]: tag \"year\" must be a string, got number"},
      {"empty tag key", R"([{"path": "a.wav", "tags": {"": "v"}}])",
       "element [0]: tag with an empty key (=v)"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorOf(c.text, ManifestFormat::kJson), c.expected) << c.name;
  }
}

TEST(ManifestJsonTest, MalformedJsonReportsNlohmannsPosition) {
  const std::string message =
      ErrorOf("[\n  {\"path\": \"a.wav\"},\n  {\"path\": }\n]", ManifestFormat::kJson);
  EXPECT_TRUE(message.starts_with("malformed JSON (byte ")) << message;
  EXPECT_NE(message.find("line 3, column"), std::string::npos) << message;
  EXPECT_EQ(message.find("[json.exception"), std::string::npos) << message;

  EXPECT_TRUE(ErrorOf("", ManifestFormat::kJson).starts_with("malformed JSON"));
  EXPECT_TRUE(ErrorOf("[{\"path\": \"a\"}", ManifestFormat::kJson).starts_with("malformed JSON"));
}

TEST(ManifestJsonTest, BadIsrcNamesElementAndCode) {
  const std::string message =
      ErrorOf(R"([{"path": "a.wav", "isrc": "12RC17607839"}])", ManifestFormat::kJson);
  EXPECT_TRUE(
      message.starts_with("element [0]: \"isrc\": invalid ISRC \"12RC17607839\": "
                          "country code \"12\""))
      << message;
}

// ------------------------------------------------------------- from a file

TEST(ManifestFileTest, ChoosesFormatByExtensionAndResolvesAgainstItsFolder) {
  TempDir dir;
  std::filesystem::create_directories(dir / "lists");
  WriteFile(dir / "lists" / "batch.TSV", "path\trule\n../audio/a.wav\tblock\n");
  WriteFile(dir / "lists" / "batch.json", R"([{"path": "b.wav", "rule": "mute"}])");

  auto tsv = ParseManifest(dir / "lists" / "batch.TSV");
  ASSERT_TRUE(tsv) << tsv.error().ToString();
  ASSERT_EQ(tsv->size(), 1u);
  EXPECT_EQ((*tsv)[0].path, dir / "audio" / "a.wav");
  EXPECT_EQ((*tsv)[0].rule, BusinessRule::kBlock);

  auto json = ParseManifest(dir / "lists" / "batch.json");
  ASSERT_TRUE(json) << json.error().ToString();
  ASSERT_EQ(json->size(), 1u);
  EXPECT_EQ((*json)[0].path, dir / "lists" / "b.wav");
  EXPECT_EQ((*json)[0].rule, BusinessRule::kMute);
}

TEST(ManifestFileTest, ErrorsNameTheManifestFile) {
  TempDir dir;
  const auto path = dir / "bad.tsv";
  WriteFile(path, "path\trule\na.wav\tblok\n");
  auto items = ParseManifest(path);
  ASSERT_FALSE(items);
  EXPECT_EQ(items.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(items.error().message(),
            "manifest " + path.string() +
                ": line 2: column \"rule\": unknown business rule \"blok\" (allowed: block, "
                "mute, allow, track)");
}

TEST(ManifestFileTest, MissingFileIsNotFound) {
  TempDir dir;
  auto items = ParseManifest(dir / "missing.json");
  ASSERT_FALSE(items);
  EXPECT_EQ(items.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(items.error().message().find((dir / "missing.json").string()), std::string::npos);
}

TEST(ManifestFileTest, FolderIsIoError) {
  TempDir dir;
  std::filesystem::create_directories(dir / "x.tsv");
  auto items = ParseManifest(dir / "x.tsv");
  ASSERT_FALSE(items);
  EXPECT_EQ(items.error().code(), ErrorCode::kIoError);
}

TEST(ManifestFileTest, UnknownExtensionIsInvalidArgument) {
  EXPECT_EQ(ManifestFormatFromPath("a.tsv").value(), ManifestFormat::kTsv);
  EXPECT_EQ(ManifestFormatFromPath("dir/a.Json").value(), ManifestFormat::kJson);
  auto csv = ManifestFormatFromPath("list.csv");
  ASSERT_FALSE(csv);
  EXPECT_EQ(csv.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(csv.error().message(),
            "manifest list.csv: unknown format \".csv\"; expected a .tsv or .json file");
  auto none = ManifestFormatFromPath("list");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("(no extension)"), std::string::npos);
}

}  // namespace
}  // namespace earshot::store
