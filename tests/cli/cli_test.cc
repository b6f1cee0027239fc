// Black-box tests of the `earshot` command line: the built binary
// (EARSHOT_BINARY) is run in a shell with its output captured, on excerpts of
// the Ogg Vorbis tracks of the Debian package wesnoth-1.16-music, cut with the
// ffmpeg CLI into a per-suite temp folder on first use.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "recognition/fingerprint_params.h"

#ifndef EARSHOT_BINARY
#error "EARSHOT_BINARY (the path of the earshot executable) must be defined"
#endif

namespace earshot::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kMusicDir = "/usr/share/games/wesnoth/1.16/data/core/music";

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// What one run of the binary did.
struct Outcome {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr

  std::vector<std::string> OutLines() const { return Lines(out); }
  // stdout as JSON lines; a line that is not JSON fails the test.
  std::vector<json> OutJson() const {
    std::vector<json> values;
    for (const std::string& line : OutLines()) {
      json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_FALSE(j.is_discarded()) << "stdout line is not JSON: " << line;
      values.push_back(std::move(j));
    }
    return values;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& r) {
  return os << "exit " << r.exit_code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

struct RunOptions {
  std::map<std::string, std::string> env;  // EARSHOT_CATALOG is unset unless given here
  fs::path cwd;                            // default: the suite's temp folder
  fs::path stdin_file = "/dev/null";
};

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::is_directory(kMusicDir)) << "install the Debian package wesnoth-1.16-music";
    ASSERT_TRUE(fs::exists(EARSHOT_BINARY)) << EARSHOT_BINARY;
    std::string pattern = (fs::temp_directory_path() / "earshot_cli_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
  }

  static void TearDownTestSuite() {
    made_.clear();
    shared_ready_ = false;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static Outcome Earshot(const std::vector<std::string>& args, const RunOptions& options = {}) {
    static int counter = 0;
    const fs::path out = dir_ / ("run" + std::to_string(counter) + ".out");
    const fs::path err = dir_ / ("run" + std::to_string(counter) + ".err");
    ++counter;
    // Appended piece by piece: g++ 12 reports a false -Wrestrict for
    // chains of std::string operator+ here.
    std::string command = "cd ";
    command += Quote((options.cwd.empty() ? dir_ : options.cwd).string());
    command += " && env -u EARSHOT_CATALOG";
    for (const auto& [key, value] : options.env) {
      command += ' ';
      command += Quote(key + "=" + value);
    }
    command += ' ';
    command += Quote(EARSHOT_BINARY);
    for (const std::string& arg : args) {
      command += ' ';
      command += Quote(arg);
    }
    command += " < ";
    command += Quote(options.stdin_file.string());
    command += " > ";
    command += Quote(out.string());
    command += " 2> ";
    command += Quote(err.string());
    const int status = std::system(command.c_str());
    Outcome run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = ReadAll(out);
    run.err = ReadAll(err);
    return run;
  }

  // The catalog most tests share: the three 30 s references of Refs().
  static std::string SharedCatalog() {
    const fs::path catalog = dir_ / "shared_catalog";
    if (!shared_ready_) {
      const Outcome run =
          Earshot({"--catalog", catalog.string(), "catalog", "add", Refs().string()});
      EXPECT_EQ(run.exit_code, 0) << run;
      shared_ready_ = true;
    }
    return catalog.string();
  }

  // A folder of three references: 30 s of elvish-theme (from 60 s), frantic
  // (from 30 s) and loyalists (from 90 s), as FLAC, plus a text file.
  static fs::path Refs() {
    const fs::path refs = dir_ / "refs";
    if (!fs::exists(refs)) {
      fs::create_directories(refs);
      EXPECT_TRUE(Ffmpeg(Cut("elvish-theme", 60, 30), "refs/elvish.flac"));
      EXPECT_TRUE(Ffmpeg(Cut("frantic", 30, 30), "refs/frantic.flac"));
      EXPECT_TRUE(Ffmpeg(Cut("loyalists", 90, 30), "refs/loyalists.flac"));
      std::ofstream(refs / "notes.txt") << "not audio\n";
    }
    return refs;
  }

  // Path of the test file `name`, generated on first use.
  static std::string Media(const std::string& name) {
    if (made_.insert(name).second && !Make(name)) ADD_FAILURE() << "could not generate " << name;
    return (dir_ / name).string();
  }

  static bool Make(const std::string& name) {
    // Queries: 8 s from inside the references (reference time 10 s).
    if (name == "elvish_q.wav") return Ffmpeg(Cut("elvish-theme", 70, 8), name);
    if (name == "frantic_q.mp3")
      return Ffmpeg(Cut("frantic", 40, 8) + " -c:a libmp3lame -b:a 64k", name);
    if (name == "loyalists_q.ogg")
      return Ffmpeg(Cut("loyalists", 100, 8) + " -c:a libvorbis", name);
    if (name == "noise.wav") {
      return Ffmpeg("-f lavfi -i anoisesrc=color=pink:amplitude=0.3:duration=8:seed=5", name);
    }
    if (name == "long.wav") {
      // 15 s of noise, frantic from 32 s to 57 s, 15 s of noise: 55 s in all.
      const std::string noise = "-f lavfi -i anoisesrc=color=pink:amplitude=0.2:duration=15:seed=";
      return Ffmpeg(
          noise + "1 " + noise + "2 " + Cut("frantic", 32, 25) +
              " -filter_complex \"[0:a]aformat=sample_rates=44100:channel_layouts=stereo[a];"
              "[1:a]aformat=sample_rates=44100:channel_layouts=stereo[b];"
              "[a][2:a][b]concat=n=3:v=0:a=1\"",
          name);
    }
    if (name == "corrupt.ogg") {
      std::mt19937 random(99);
      std::string bytes(32 * 1024, '\0');
      for (char& c : bytes) c = static_cast<char>(random() & 0xff);
      std::ofstream(dir_ / name, std::ios::binary) << bytes;
      return true;
    }
    ADD_FAILURE() << "no recipe for test file " << name;
    return false;
  }

  static std::string Cut(const std::string& stem, double start, double seconds) {
    return "-ss " + std::to_string(start) + " -t " + std::to_string(seconds) + " -i " +
           Quote((kMusicDir / (stem + ".ogg")).string());
  }

  static bool Ffmpeg(const std::string& args, const std::string& output) {
    const std::string command = "/usr/bin/ffmpeg -nostdin -hide_banner -loglevel error -y " + args +
                                " -bitexact " + Quote((dir_ / output).string());
    const int status = std::system(command.c_str());
    if (status != 0) ADD_FAILURE() << "command failed: " << command;
    return status == 0;
  }

  static json StatsJson(const std::string& catalog) {
    const Outcome run = Earshot({"--catalog", catalog, "catalog", "stats", "--json"});
    EXPECT_EQ(run.exit_code, 0) << run;
    const auto lines = run.OutJson();
    EXPECT_EQ(lines.size(), 1u) << run;
    return lines.empty() ? json() : lines[0];
  }

  static std::vector<json> ListJson(const std::string& catalog,
                                    const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--catalog", catalog, "catalog", "list", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const Outcome run = Earshot(args);
    EXPECT_EQ(run.exit_code, 0) << run;
    return run.OutJson();
  }

  static bool Contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }

  static inline fs::path dir_;
  static inline std::set<std::string> made_;
  static inline bool shared_ready_ = false;
};

// ---------------------------------------------------------------------------
// Usage

TEST_F(CliTest, HelpListsTheCommands) {
  const Outcome top = Earshot({"--help"});
  EXPECT_EQ(top.exit_code, 0) << top;
  for (const char* word : {"catalog", "identify", "--catalog", "EARSHOT_CATALOG"}) {
    EXPECT_TRUE(Contains(top.out, word)) << word << "\n" << top;
  }
  const Outcome catalog = Earshot({"catalog", "--help"});
  EXPECT_EQ(catalog.exit_code, 0) << catalog;
  for (const char* word : {"add", "list", "remove", "stats"}) {
    EXPECT_TRUE(Contains(catalog.out, word)) << word << "\n" << catalog;
  }
  const Outcome identify = Earshot({"identify", "--help"});
  EXPECT_EQ(identify.exit_code, 0) << identify;
  for (const char* word : {"--follow", "--min-score", "--jobs"}) {
    EXPECT_TRUE(Contains(identify.out, word)) << word << "\n" << identify;
  }
}

TEST_F(CliTest, VersionNamesTheAlgorithmVersion) {
  const Outcome run = Earshot({"--version"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(Contains(run.out, "earshot 0.1.0")) << run;
  EXPECT_TRUE(Contains(run.out, "algorithm version")) << run;
}

TEST_F(CliTest, BadUsageExitsTwo) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{},
                                             {"frobnicate"},
                                             {"catalog"},
                                             {"catalog", "remove"},
                                             {"identify", "--jobs", "0", "x.wav"}}) {
    const Outcome run = Earshot(args);
    EXPECT_EQ(run.exit_code, 2) << run;
    EXPECT_TRUE(run.out.empty() || !Contains(run.out, "\"status\"")) << run;
  }
}

TEST_F(CliTest, IdentifyWithoutInputsIsUsageError) {
  const Outcome run = Earshot({"--catalog", SharedCatalog(), "identify"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_TRUE(Contains(run.err, "nothing to identify")) << run;
  EXPECT_TRUE(run.out.empty()) << run;
}

// ---------------------------------------------------------------------------
// catalog add / list / stats / remove

TEST_F(CliTest, CatalogAddFolderAddsEveryAudioFile) {
  const std::string catalog = (dir_ / "folder_catalog").string();
  const Outcome add = Earshot({"--catalog", catalog, "catalog", "add", Refs().string()});
  EXPECT_EQ(add.exit_code, 0) << add;
  EXPECT_TRUE(add.out.empty()) << add;  // results as JSON only with --json
  EXPECT_TRUE(Contains(add.err, "added 3 of 3 recordings")) << add;

  const Outcome stats = Earshot({"--catalog", catalog, "catalog", "stats"});
  EXPECT_EQ(stats.exit_code, 0) << stats;
  EXPECT_TRUE(Contains(stats.out, "tracks             3\n")) << stats;
  EXPECT_TRUE(Contains(stats.out, "rule track         3\n")) << stats;

  const json j = StatsJson(catalog);
  EXPECT_EQ(j["tracks"], 3);
  EXPECT_NEAR(j["audio_seconds"].get<double>(), 90.0, 0.5);
  EXPECT_GT(j["postings"].get<uint64_t>(), 0u);
  EXPECT_GT(j["index_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(j["index_mb_per_hour"].get<double>(), 0.0);
  EXPECT_GE(j["segments"].get<uint64_t>(), 1u);
  EXPECT_EQ(j["algorithm_version"], recognition::kAlgorithmVersion);
  EXPECT_EQ(j["by_rule"]["track"], 3);
  EXPECT_EQ(j["by_rule"]["block"], 0);
}

TEST_F(CliTest, CatalogAddJsonPrintsOneEntryPerFile) {
  const std::string catalog = (dir_ / "json_catalog").string();
  const Outcome add =
      Earshot({"--catalog", catalog, "catalog", "add", "--json", "--rule", "BLOCK", "--artist",
               "Various", "--tag", "source=wesnoth", "--jobs", "1", Refs().string()});
  EXPECT_EQ(add.exit_code, 0) << add;
  const auto entries = add.OutJson();
  ASSERT_EQ(entries.size(), 3u) << add;
  std::set<std::string> titles;
  for (const json& e : entries) {
    titles.insert(e["title"].get<std::string>());
    EXPECT_EQ(e["rule"], "block");
    EXPECT_EQ(e["artist"], "Various");
    EXPECT_EQ(e["tags"]["source"], "wesnoth");
    EXPECT_GT(e["track_id"].get<int>(), 0);
    EXPECT_NEAR(e["duration_s"].get<double>(), 30.0, 0.2);
  }
  EXPECT_EQ(titles, (std::set<std::string>{"elvish", "frantic", "loyalists"}));
}

TEST_F(CliTest, CatalogAddWithABadFileAddsTheRestAndExitsOne) {
  const fs::path folder = dir_ / "mixed";
  fs::create_directories(folder);
  fs::copy_file(Refs() / "elvish.flac", folder / "elvish.flac",
                fs::copy_options::overwrite_existing);
  fs::copy_file(Refs() / "frantic.flac", folder / "frantic.flac",
                fs::copy_options::overwrite_existing);
  fs::copy_file(Media("corrupt.ogg"), folder / "corrupt.ogg", fs::copy_options::overwrite_existing);
  const std::string catalog = (dir_ / "mixed_catalog").string();
  const Outcome add = Earshot({"--catalog", catalog, "catalog", "add", "--json", folder.string()});
  EXPECT_EQ(add.exit_code, 1) << add;
  EXPECT_TRUE(Contains(add.err, "earshot: error: ")) << add;
  EXPECT_TRUE(Contains(add.err, "corrupt.ogg")) << add;
  EXPECT_TRUE(Contains(add.err, "added 2 of 3 recordings")) << add;
  EXPECT_TRUE(Contains(add.err, "1 failed")) << add;
  const auto lines = add.OutJson();
  ASSERT_EQ(lines.size(), 3u) << add;
  int errors = 0;
  for (const json& j : lines) {
    if (j.contains("status")) {
      ++errors;
      EXPECT_EQ(j["status"], "error");
      EXPECT_EQ(j["input"], (folder / "corrupt.ogg").string());
      EXPECT_EQ(j["error"]["code"], "corrupt_data");
    }
  }
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(StatsJson(catalog)["tracks"], 2);

  // Adding the same folder again: every file is already there.
  const Outcome again = Earshot({"--catalog", catalog, "catalog", "add", folder.string()});
  EXPECT_EQ(again.exit_code, 1) << again;
  EXPECT_TRUE(Contains(again.err, "already in the catalog as track")) << again;
  EXPECT_EQ(StatsJson(catalog)["tracks"], 2);
}

TEST_F(CliTest, CatalogAddManifestStoresMetadataAndRules) {
  Refs();
  // Relative paths resolve against the manifest's folder; a row without a
  // rule takes --rule.
  std::ofstream(dir_ / "refs.tsv")
      << "# reference recordings\n"
      << "path\ttitle\tartist\trights_holder\tisrc\trule\ttags\n"
      << "refs/elvish.flac\tElvish Theme\tWesnoth\tWesnoth Project\tgb-aaa-24-00001\tblock\t"
         "album=Wesnoth;mood=calm\n"
      << "refs/frantic.flac\t\t\t\t\tallow\t\n"
      << "refs/loyalists.flac\tLoyalists\t\t\t\t\t\n";
  const std::string catalog = (dir_ / "manifest_catalog").string();
  const Outcome add = Earshot({"--catalog", catalog, "catalog", "add", "--rule", "mute",
                               "--manifest", (dir_ / "refs.tsv").string()});
  EXPECT_EQ(add.exit_code, 0) << add;
  EXPECT_TRUE(Contains(add.err, "added 3 of 3 recordings")) << add;

  std::map<std::string, json> by_title;
  for (const json& e : ListJson(catalog)) by_title[e["title"].get<std::string>()] = e;
  ASSERT_EQ(by_title.size(), 3u);
  ASSERT_TRUE(by_title.count("Elvish Theme"));
  const json& elvish = by_title["Elvish Theme"];
  EXPECT_EQ(elvish["artist"], "Wesnoth");
  EXPECT_EQ(elvish["rights_holder"], "Wesnoth Project");
  EXPECT_EQ(elvish["isrc"], "GBAAA2400001");
  EXPECT_EQ(elvish["rule"], "block");
  EXPECT_EQ(elvish["tags"], (json{{"album", "Wesnoth"}, {"mood", "calm"}}));
  EXPECT_EQ(elvish["source"], (dir_ / "refs" / "elvish.flac").string());
  ASSERT_TRUE(by_title.count("frantic"));  // empty title: the file name
  EXPECT_EQ(by_title["frantic"]["rule"], "allow");
  ASSERT_TRUE(by_title.count("Loyalists"));
  EXPECT_EQ(by_title["Loyalists"]["rule"], "mute");

  // The rule and metadata come back in identification responses.
  const Outcome id = Earshot({"--catalog", catalog, "identify", Media("elvish_q.wav")});
  EXPECT_EQ(id.exit_code, 0) << id;
  const auto responses = id.OutJson();
  ASSERT_EQ(responses.size(), 1u) << id;
  ASSERT_EQ(responses[0]["status"], "match_found") << id;
  EXPECT_EQ(responses[0]["matches"][0]["rule"], "block");
  EXPECT_EQ(responses[0]["matches"][0]["metadata"]["title"], "Elvish Theme");
  EXPECT_EQ(responses[0]["matches"][0]["metadata"]["isrc"], "GBAAA2400001");
}

TEST_F(CliTest, ManifestWithAnUnknownRuleExitsTwoNamingTheLine) {
  Refs();
  const fs::path manifest = dir_ / "bad_rule.tsv";
  std::ofstream(manifest) << "path\trule\n"
                          << "refs/elvish.flac\tblock\n"
                          << "refs/frantic.flac\tblok\n";
  const std::string catalog = (dir_ / "bad_manifest_catalog").string();
  const Outcome add =
      Earshot({"--catalog", catalog, "catalog", "add", "--manifest", manifest.string()});
  EXPECT_EQ(add.exit_code, 2) << add;
  EXPECT_TRUE(Contains(add.err, "line 3")) << add;
  EXPECT_TRUE(Contains(add.err, "blok")) << add;
  EXPECT_TRUE(Contains(add.err, manifest.string())) << add;
  EXPECT_TRUE(add.out.empty()) << add;
  EXPECT_FALSE(fs::exists(fs::path(catalog) / "catalog.db"));  // nothing was added
}

TEST_F(CliTest, CatalogAddRefusesBadArguments) {
  const std::string catalog = (dir_ / "refused_catalog").string();
  const Outcome rule =
      Earshot({"--catalog", catalog, "catalog", "add", "--rule", "forbid", Refs().string()});
  EXPECT_EQ(rule.exit_code, 2) << rule;
  EXPECT_TRUE(Contains(rule.err, "forbid")) << rule;
  const Outcome title =
      Earshot({"--catalog", catalog, "catalog", "add", "--title", "One", Refs().string()});
  EXPECT_EQ(title.exit_code, 2) << title;
  EXPECT_TRUE(Contains(title.err, "--title")) << title;
  const Outcome tag =
      Earshot({"--catalog", catalog, "catalog", "add", "--tag", "novalue", Refs().string()});
  EXPECT_EQ(tag.exit_code, 2) << tag;
  const Outcome nothing = Earshot({"--catalog", catalog, "catalog", "add"});
  EXPECT_EQ(nothing.exit_code, 2) << nothing;
  EXPECT_TRUE(Contains(nothing.err, "nothing to add")) << nothing;
  const Outcome missing_manifest =
      Earshot({"--catalog", catalog, "catalog", "add", "--manifest", (dir_ / "no.tsv").string()});
  EXPECT_EQ(missing_manifest.exit_code, 2) << missing_manifest;
  EXPECT_FALSE(fs::exists(fs::path(catalog) / "catalog.db"));
}

TEST_F(CliTest, CatalogListShowsTheEntriesAndFilters) {
  const std::string catalog = SharedCatalog();
  const auto all = ListJson(catalog);
  ASSERT_EQ(all.size(), 3u);
  std::set<std::string> titles;
  for (const json& e : all) {
    titles.insert(e["title"].get<std::string>());
    EXPECT_EQ(e["kind"], "audio");
    EXPECT_EQ(e["rule"], "track");
    EXPECT_TRUE(e.contains("track_id"));
    EXPECT_TRUE(e.contains("source"));
    EXPECT_TRUE(e.contains("added_at_unix_ms"));
  }
  EXPECT_EQ(titles, (std::set<std::string>{"elvish", "frantic", "loyalists"}));
  EXPECT_LT(all[0]["track_id"].get<int>(), all[1]["track_id"].get<int>());  // id order

  const auto found = ListJson(catalog, {"--search", "FRANT"});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]["title"], "frantic");
  EXPECT_EQ(ListJson(catalog, {"--limit", "2"}).size(), 2u);
  EXPECT_TRUE(ListJson(catalog, {"--rule", "block"}).empty());

  const Outcome text = Earshot({"--catalog", catalog, "catalog", "list"});
  EXPECT_EQ(text.exit_code, 0) << text;
  EXPECT_EQ(text.OutLines().size(), 4u) << text;  // header + 3 rows
  for (const char* title : {"elvish", "frantic", "loyalists"}) {
    EXPECT_TRUE(Contains(text.out, title)) << text;
  }
  const Outcome bad_rule = Earshot({"--catalog", catalog, "catalog", "list", "--rule", "nope"});
  EXPECT_EQ(bad_rule.exit_code, 2) << bad_rule;
}

TEST_F(CliTest, CatalogRemoveDropsTheTrack) {
  const std::string catalog = (dir_ / "remove_catalog").string();
  ASSERT_EQ(Earshot({"--catalog", catalog, "catalog", "add", Refs().string()}).exit_code, 0);
  int frantic = 0;
  for (const json& e : ListJson(catalog)) {
    if (e["title"] == "frantic") frantic = e["track_id"].get<int>();
  }
  ASSERT_GT(frantic, 0);

  const Outcome unknown =
      Earshot({"--catalog", catalog, "catalog", "remove", std::to_string(frantic), "999"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;
  EXPECT_TRUE(Contains(unknown.err, "999")) << unknown;
  EXPECT_EQ(ListJson(catalog).size(), 3u);  // nothing removed

  const Outcome remove =
      Earshot({"--catalog", catalog, "catalog", "remove", std::to_string(frantic)});
  EXPECT_EQ(remove.exit_code, 0) << remove;
  EXPECT_TRUE(Contains(remove.err, "removed 1 track")) << remove;
  const auto left = ListJson(catalog);
  ASSERT_EQ(left.size(), 2u);
  for (const json& e : left) EXPECT_NE(e["title"], "frantic");
  EXPECT_EQ(StatsJson(catalog)["tracks"], 2);

  const Outcome id = Earshot({"--catalog", catalog, "identify", Media("frantic_q.mp3")});
  EXPECT_EQ(id.exit_code, 0) << id;
  const auto responses = id.OutJson();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0]["status"], "no_match") << id;
}

// ---------------------------------------------------------------------------
// identify

TEST_F(CliTest, IdentifyPrintsOneJsonLinePerInputInOrder) {
  const std::vector<std::string> inputs = {Media("frantic_q.mp3"), Media("noise.wav"),
                                           Media("elvish_q.wav"), Media("loyalists_q.ogg")};
  std::vector<std::string> args = {"--catalog", SharedCatalog(), "identify", "--jobs", "2"};
  args.insert(args.end(), inputs.begin(), inputs.end());
  const Outcome run = Earshot(args);
  EXPECT_EQ(run.exit_code, 0) << run;
  const auto responses = run.OutJson();
  ASSERT_EQ(responses.size(), inputs.size()) << run;
  const std::vector<std::string> expected_titles = {"frantic", "", "elvish", "loyalists"};
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(responses[i].dump());
    EXPECT_EQ(responses[i]["input"], inputs[i]);
    EXPECT_EQ(responses[i]["algorithm_version"], recognition::kAlgorithmVersion);
    EXPECT_NEAR(responses[i]["duration_s"].get<double>(), 8.0, 0.1);
    if (expected_titles[i].empty()) {
      EXPECT_EQ(responses[i]["status"], "no_match");
      EXPECT_TRUE(responses[i]["matches"].empty());
      continue;
    }
    EXPECT_EQ(responses[i]["status"], "match_found");
    ASSERT_FALSE(responses[i]["matches"].empty());
    const json& m = responses[i]["matches"][0];
    EXPECT_EQ(m["metadata"]["title"], expected_titles[i]);
    EXPECT_EQ(m["match_type"], "audio");
    EXPECT_EQ(m["rule"], "track");
    // Every query starts 10 s into its reference.
    EXPECT_NEAR(m["time_in_reference_s"].get<double>(), 10.0, 0.5);
    EXPECT_LT(m["time_in_input_s"].get<double>(), 0.5);
  }
  EXPECT_TRUE(run.err.empty()) << run;
}

TEST_F(CliTest, IdentifyMissingInputIsStatusErrorAndExitOne) {
  const std::string missing = (dir_ / "missing.wav").string();
  const Outcome run =
      Earshot({"--catalog", SharedCatalog(), "identify", missing, Media("elvish_q.wav")});
  EXPECT_EQ(run.exit_code, 1) << run;
  const auto responses = run.OutJson();
  ASSERT_EQ(responses.size(), 2u) << run;
  EXPECT_EQ(responses[0]["input"], missing);
  EXPECT_EQ(responses[0]["status"], "error");
  EXPECT_EQ(responses[0]["error"]["code"], "not_found");
  EXPECT_TRUE(Contains(responses[0]["error"]["message"].get<std::string>(), "missing.wav"));
  EXPECT_EQ(responses[1]["status"], "match_found");  // the other input is still identified
  const auto err_lines = Lines(run.err);
  ASSERT_EQ(err_lines.size(), 1u) << run;
  EXPECT_TRUE(err_lines[0].starts_with("earshot: error: ")) << run;
  EXPECT_TRUE(Contains(err_lines[0], "missing.wav")) << run;
}

TEST_F(CliTest, IdentifyPrettyIndentsAndMinScoreFilters) {
  const std::string catalog = SharedCatalog();
  const Outcome pretty =
      Earshot({"--catalog", catalog, "identify", "--pretty", Media("elvish_q.wav")});
  EXPECT_EQ(pretty.exit_code, 0) << pretty;
  EXPECT_GT(pretty.OutLines().size(), 10u) << pretty;
  const json parsed = json::parse(pretty.out, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << pretty;
  EXPECT_EQ(parsed["status"], "match_found");

  const Outcome strict =
      Earshot({"--catalog", catalog, "identify", "--min-score", "100000", Media("elvish_q.wav")});
  EXPECT_EQ(strict.exit_code, 0) << strict;
  const auto responses = strict.OutJson();
  ASSERT_EQ(responses.size(), 1u) << strict;
  EXPECT_EQ(responses[0]["status"], "no_match");
}

// Checks a --follow run: started, (ongoing...), ended for one match on frantic.
void ExpectFollowEvents(const Outcome& run, const std::string& input) {
  EXPECT_EQ(run.exit_code, 0) << run;
  const auto events = run.OutJson();
  ASSERT_GE(events.size(), 2u) << run;
  EXPECT_EQ(events.front()["event"], "started") << run;
  EXPECT_EQ(events.back()["event"], "ended") << run;
  for (const json& e : events) {
    EXPECT_EQ(e["match_id"], events.front()["match_id"]) << e.dump();
    EXPECT_EQ(e["input"], input) << e.dump();
    EXPECT_EQ(e["match"]["metadata"]["title"], "frantic") << e.dump();
  }
  const json& ended = events.back()["match"];
  EXPECT_NEAR(ended["time_in_input_s"].get<double>(), 15.0, 2.0) << run;
  EXPECT_NEAR(ended["duration_s"].get<double>(), 25.0, 3.0) << run;
}

TEST_F(CliTest, IdentifyFollowPrintsStartedAndEndedEvents) {
  const std::string input = Media("long.wav");
  ExpectFollowEvents(Earshot({"--catalog", SharedCatalog(), "identify", "--follow", input}), input);
}

TEST_F(CliTest, IdentifyFollowReadsStandardInput) {
  RunOptions options;
  options.stdin_file = Media("long.wav");
  ExpectFollowEvents(Earshot({"--catalog", SharedCatalog(), "identify", "--follow", "-"}, options),
                     "-");
}

TEST_F(CliTest, IdentifyFollowOfMissingInputExitsOne) {
  const Outcome run =
      Earshot({"--catalog", SharedCatalog(), "identify", "--follow", (dir_ / "gone.wav").string()});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_TRUE(run.out.empty()) << run;
  EXPECT_TRUE(Contains(run.err, "gone.wav")) << run;
}

TEST_F(CliTest, IdentifyWithoutACatalogExitsTwoAndSaysToRunCatalogAdd) {
  const std::string catalog = (dir_ / "no_such_catalog").string();
  const Outcome run = Earshot({"--catalog", catalog, "identify", Media("elvish_q.wav")});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_TRUE(run.out.empty()) << run;
  EXPECT_TRUE(Contains(run.err, "earshot catalog add")) << run;
  EXPECT_TRUE(Contains(run.err, catalog)) << run;
  EXPECT_FALSE(fs::exists(catalog));  // identify does not create one
  for (const char* command : {"list", "stats"}) {
    const Outcome other = Earshot({"--catalog", catalog, "catalog", command});
    EXPECT_EQ(other.exit_code, 2) << other;
    EXPECT_TRUE(Contains(other.err, "earshot catalog add")) << other;
  }
}

// BUG (src/cli/cli.cc, RunCatalogRemove): `catalog remove` opens the catalog
// writable with create_if_missing (OpenCatalog(dir, read_only=false)), so
// with a mistyped --catalog it creates an empty catalog there and then fails
// with exit 1 "track 1 is not in catalog ...". Expected (cli.h: no catalog is
// a setup error): exit 2, "no catalog at DIR (create one with `earshot
// catalog add ...`)", and nothing created.
TEST_F(CliTest, CatalogRemoveWithoutACatalogExitsTwoAndCreatesNothing) {
  const std::string catalog = (dir_ / "no_catalog_to_remove_from").string();
  const Outcome remove = Earshot({"--catalog", catalog, "catalog", "remove", "1"});
  EXPECT_EQ(remove.exit_code, 2) << remove;
  EXPECT_TRUE(Contains(remove.err, "no catalog at")) << remove;
  EXPECT_FALSE(fs::exists(catalog));
}

TEST_F(CliTest, IdentifyOnAnEmptyCatalogReportsAnErrorPerInput) {
  // A catalog whose only add failed exists but is empty.
  const std::string catalog = (dir_ / "empty_catalog").string();
  EXPECT_EQ(Earshot({"--catalog", catalog, "catalog", "add", Media("corrupt.ogg")}).exit_code, 1);
  const Outcome run = Earshot({"--catalog", catalog, "identify", Media("elvish_q.wav")});
  EXPECT_EQ(run.exit_code, 1) << run;
  const auto responses = run.OutJson();
  ASSERT_EQ(responses.size(), 1u) << run;
  EXPECT_EQ(responses[0]["status"], "error");
  EXPECT_EQ(responses[0]["error"]["code"], "failed_precondition");
  EXPECT_TRUE(Contains(run.err, "earshot catalog add")) << run;
}

// ---------------------------------------------------------------------------
// Where the catalog is: --catalog, EARSHOT_CATALOG, ./earshot-catalog

TEST_F(CliTest, CatalogFlagOverridesEnvironmentWhichOverridesDefault) {
  const fs::path work = dir_ / "where";
  fs::create_directories(work);
  const std::string from_env = (dir_ / "env_catalog").string();
  const std::string from_flag = (dir_ / "flag_catalog").string();
  const std::string elvish = (Refs() / "elvish.flac").string();
  const std::string frantic = (Refs() / "frantic.flac").string();

  RunOptions env;
  env.cwd = work;
  env.env["EARSHOT_CATALOG"] = from_env;
  const Outcome add_env = Earshot({"catalog", "add", elvish}, env);
  EXPECT_EQ(add_env.exit_code, 0) << add_env;
  EXPECT_TRUE(fs::exists(fs::path(from_env) / "catalog.db"));
  EXPECT_FALSE(fs::exists(work / "earshot-catalog"));

  const Outcome add_flag = Earshot({"--catalog", from_flag, "catalog", "add", frantic}, env);
  EXPECT_EQ(add_flag.exit_code, 0) << add_flag;

  // With the environment only, the environment's catalog (elvish only).
  const Outcome list_env = Earshot({"catalog", "list", "--json"}, env);
  ASSERT_EQ(list_env.OutJson().size(), 1u) << list_env;
  EXPECT_EQ(list_env.OutJson()[0]["title"], "elvish");
  // With both, the flag's (frantic only).
  const Outcome list_flag = Earshot({"--catalog", from_flag, "catalog", "list", "--json"}, env);
  ASSERT_EQ(list_flag.OutJson().size(), 1u) << list_flag;
  EXPECT_EQ(list_flag.OutJson()[0]["title"], "frantic");

  // With neither: ./earshot-catalog.
  RunOptions plain;
  plain.cwd = work;
  const Outcome none = Earshot({"catalog", "stats"}, plain);
  EXPECT_EQ(none.exit_code, 2) << none;
  EXPECT_TRUE(Contains(none.err, "earshot-catalog")) << none;
  const Outcome add_default = Earshot({"catalog", "add", elvish}, plain);
  EXPECT_EQ(add_default.exit_code, 0) << add_default;
  EXPECT_TRUE(fs::exists(work / "earshot-catalog" / "catalog.db"));
  const Outcome id = Earshot({"identify", Media("elvish_q.wav")}, plain);
  EXPECT_EQ(id.exit_code, 0) << id;
  ASSERT_EQ(id.OutJson().size(), 1u) << id;
  EXPECT_EQ(id.OutJson()[0]["status"], "match_found");
}

}  // namespace
}  // namespace earshot::cli
