// Black-box tests of video references on the `earshot` command line: the
// built binary (EARSHOT_BINARY) runs `catalog add --video`, `catalog
// list/stats/remove` and `identify` on footage made by the ffmpeg CLI from
// lavfi sources (life and cellauto as references, testsrc2 and mandelbrot as
// unrelated footage) in a per-suite temp folder, each clip on first use.
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

#ifndef EARSHOT_BINARY
#error "EARSHOT_BINARY (the path of the earshot executable) must be defined"
#endif

namespace earshot::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

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

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// What one run of the binary did.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;

  // stdout as JSON lines; a line that is not JSON fails the test.
  std::vector<json> Json() const {
    std::vector<json> values;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_FALSE(j.is_discarded()) << "stdout line is not JSON: " << line;
      values.push_back(std::move(j));
    }
    return values;
  }
};

std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  return os << "exit " << r.exit_code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

class VideoCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::exists(EARSHOT_BINARY)) << EARSHOT_BINARY;
    std::string pattern = (fs::temp_directory_path() / "earshot_video_cli_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
  }

  static void TearDownTestSuite() {
    made_.clear();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs earshot with `args` and the catalog in `catalog`.
  static RunResult Earshot(const std::string& catalog, const std::vector<std::string>& args) {
    static int counter = 0;
    const fs::path out = dir_ / ("run" + std::to_string(counter) + ".out");
    const fs::path err = dir_ / ("run" + std::to_string(counter) + ".err");
    ++counter;
    std::string command = "cd ";
    command += Quote(dir_.string());
    command += " && env -u EARSHOT_CATALOG ";
    command += Quote(EARSHOT_BINARY);
    command += " --catalog ";
    command += Quote(catalog);
    for (const std::string& arg : args) {
      command += ' ';
      command += Quote(arg);
    }
    command += " < /dev/null > ";
    command += Quote(out.string());
    command += " 2> ";
    command += Quote(err.string());
    const int status = std::system(command.c_str());
    RunResult run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = ReadAll(out);
    run.err = ReadAll(err);
    return run;
  }

  // A folder of two 12 s references (life, cells) beside an audio file and a
  // text file, which a --video folder scan leaves out.
  static fs::path Refs() {
    const fs::path refs = dir_ / "refs";
    if (!fs::exists(refs)) {
      fs::create_directories(refs);
      const std::string h264 = " -t 12 -c:v libx264 -preset ultrafast -pix_fmt yuv420p";
      EXPECT_TRUE(Ffmpeg("-f lavfi -i life=size=320x180:rate=25:seed=7:mold=10:ratio=0.3" + h264,
                         "refs/life.mp4"));
      EXPECT_TRUE(Ffmpeg("-f lavfi -i cellauto=size=320x180:rate=25:rule=110:seed=3" + h264,
                         "refs/cells.mkv"));
      EXPECT_TRUE(Ffmpeg("-f lavfi -i sine=frequency=440:duration=3", "refs/tone.wav"));
      std::ofstream(refs / "notes.txt") << "not video\n";
    }
    return refs;
  }

  static std::string Media(const std::string& name) {
    if (made_.insert(name).second && !Make(name)) ADD_FAILURE() << "could not generate " << name;
    return (dir_ / name).string();
  }

  static bool Make(const std::string& name) {
    // 7 s of life from 4 s, cropped, scaled down, 100 kbit/s, with a tone as sound.
    if (name == "life_copy.mp4") {
      return Ffmpeg("-ss 4 -i " + Quote((Refs() / "life.mp4").string()) +
                        " -f lavfi -i sine=frequency=300:duration=7 -t 7"
                        " -vf crop=iw*0.9:ih*0.9,scale=192:108 -c:v libx264 -b:v 100k -c:a aac",
                    name);
    }
    if (name == "unrelated.mp4") {
      return Ffmpeg(
          "-f lavfi -i testsrc2=size=320x180:rate=25:duration=6 -c:v libx264 "
          "-preset ultrafast -pix_fmt yuv420p",
          name);
    }
    if (name == "black.mp4") {
      return Ffmpeg(
          "-f lavfi -i color=black:size=320x180:rate=25 -t 3 -c:v libx264 -preset ultrafast", name);
    }
    if (name == "tone.wav") return Ffmpeg("-f lavfi -i sine=frequency=440:duration=3", name);
    if (name == "corrupt.mp4") {
      std::mt19937 random(77);
      std::string bytes(32 * 1024, '\0');
      for (char& c : bytes) c = static_cast<char>(random() & 0xff);
      std::ofstream(dir_ / name, std::ios::binary) << bytes;
      return true;
    }
    ADD_FAILURE() << "no recipe for test file " << name;
    return false;
  }

  static bool Ffmpeg(const std::string& args, const std::string& output) {
    const std::string command = "/usr/bin/ffmpeg -nostdin -hide_banner -loglevel error -y " + args +
                                " -bitexact " + Quote((dir_ / output).string());
    const int status = std::system(command.c_str());
    if (status != 0) ADD_FAILURE() << "command failed: " << command;
    return status == 0;
  }

  static inline fs::path dir_;
  static inline std::set<std::string> made_;
};

TEST_F(VideoCliTest, AddVideoFolderThenListStatsIdentifyAndRemove) {
  const std::string catalog = (dir_ / "catalog").string();
  const RunResult add = Earshot(catalog, {"catalog", "add", "--video", "--rule", "block",
                                          "--rights-holder", "Cellular Films", Refs().string()});
  ASSERT_EQ(add.exit_code, 0) << add;
  EXPECT_TRUE(Contains(add.err, "added 2 of 2 recordings")) << add;
  EXPECT_TRUE(Contains(add.err, "of video")) << add;

  // list: both video, with the flags' metadata; the kind filter and column.
  const RunResult list = Earshot(catalog, {"catalog", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list;
  const auto entries = list.Json();
  ASSERT_EQ(entries.size(), 2u) << list;
  std::map<std::string, int> ids;
  for (const json& e : entries) {
    EXPECT_EQ(e["kind"], "video");
    EXPECT_EQ(e["rule"], "block");
    EXPECT_EQ(e["rights_holder"], "Cellular Films");
    EXPECT_NEAR(e["duration_s"].get<double>(), 12.0, 0.1);
    ids[e["title"].get<std::string>()] = e["track_id"].get<int>();
  }
  ASSERT_EQ(ids.size(), 2u);
  ASSERT_TRUE(ids.count("life") && ids.count("cells")) << list;
  EXPECT_EQ(Earshot(catalog, {"catalog", "list", "--json", "--kind", "video"}).Json().size(), 2u);
  EXPECT_TRUE(Earshot(catalog, {"catalog", "list", "--json", "--kind", "audio"}).Json().empty());
  EXPECT_EQ(Earshot(catalog, {"catalog", "list", "--kind", "film"}).exit_code, 2);
  const RunResult text = Earshot(catalog, {"catalog", "list"});
  EXPECT_EQ(text.exit_code, 0) << text;
  EXPECT_TRUE(Contains(text.out, "kind")) << text;
  EXPECT_TRUE(Contains(text.out, "video")) << text;

  // stats.
  const RunResult stats = Earshot(catalog, {"catalog", "stats", "--json"});
  ASSERT_EQ(stats.exit_code, 0) << stats;
  const auto stats_json = stats.Json();
  ASSERT_EQ(stats_json.size(), 1u) << stats;
  EXPECT_EQ(stats_json[0]["video_references"], 2);
  EXPECT_NEAR(stats_json[0]["video_seconds"].get<double>(), 24.0, 0.2);
  EXPECT_GT(stats_json[0]["video_index_entries"].get<int>(), 100);
  EXPECT_EQ(stats_json[0]["tracks"], 0);
  EXPECT_EQ(stats_json[0]["by_rule"]["block"], 2);
  const RunResult stats_text = Earshot(catalog, {"catalog", "stats"});
  EXPECT_TRUE(Contains(stats_text.out, "video references   2")) << stats_text;

  // identify: the copy is found by its video (its sound is unrelated), the
  // unrelated footage is not.
  const RunResult identify =
      Earshot(catalog, {"identify", Media("life_copy.mp4"), Media("unrelated.mp4")});
  ASSERT_EQ(identify.exit_code, 0) << identify;
  const auto responses = identify.Json();
  ASSERT_EQ(responses.size(), 2u) << identify;
  EXPECT_EQ(responses[0]["input"], Media("life_copy.mp4"));
  EXPECT_EQ(responses[0]["status"], "match_found") << identify;
  EXPECT_NEAR(responses[0]["duration_s"].get<double>(), 7.0, 0.2);
  ASSERT_EQ(responses[0]["matches"].size(), 1u) << identify;
  const json& m = responses[0]["matches"][0];
  EXPECT_EQ(m["match_type"], "video");
  EXPECT_EQ(m["track_id"], ids["life"]);
  EXPECT_EQ(m["rule"], "block");
  EXPECT_EQ(m["metadata"]["title"], "life");
  EXPECT_EQ(m["metadata"]["rights_holder"], "Cellular Films");
  EXPECT_NEAR(m["time_in_input_s"].get<double>(), 0.0, 1.0);
  EXPECT_NEAR(m["time_in_reference_s"].get<double>() - m["time_in_input_s"].get<double>(), 4.0,
              1.0);
  EXPECT_NEAR(m["duration_s"].get<double>(), 7.0, 1.0);
  EXPECT_EQ(responses[1]["status"], "no_match") << identify;
  EXPECT_TRUE(responses[1]["matches"].empty());

  // remove: the reference is gone, and so is its match.
  const RunResult remove = Earshot(catalog, {"catalog", "remove", std::to_string(ids["life"])});
  EXPECT_EQ(remove.exit_code, 0) << remove;
  EXPECT_TRUE(Contains(remove.err, "removed 1 track")) << remove;
  EXPECT_FALSE(fs::exists(fs::path(catalog) / "video" / (std::to_string(ids["life"]) + ".vfp")));
  const RunResult after = Earshot(catalog, {"identify", Media("life_copy.mp4")});
  EXPECT_EQ(after.exit_code, 0) << after;
  ASSERT_EQ(after.Json().size(), 1u) << after;
  EXPECT_EQ(after.Json()[0]["status"], "no_match") << after;
  EXPECT_EQ(Earshot(catalog, {"catalog", "stats", "--json"}).Json().at(0)["video_references"], 1);
}

TEST_F(VideoCliTest, BadVideoReferencesAndInputsFailClearly) {
  const std::string catalog = (dir_ / "bad_catalog").string();
  const RunResult add =
      Earshot(catalog, {"catalog", "add", "--video", "--json", Media("tone.wav"),
                        Media("corrupt.mp4"), Media("black.mp4"), (Refs() / "cells.mkv").string()});
  EXPECT_EQ(add.exit_code, 1) << add;
  EXPECT_TRUE(Contains(add.err, "tone.wav has no video stream")) << add;
  EXPECT_TRUE(Contains(add.err, "corrupt.mp4")) << add;
  EXPECT_TRUE(
      Contains(add.err, "black.mp4 has no frames with enough picture detail to fingerprint"))
      << add;
  EXPECT_TRUE(Contains(add.err, "added 1 of 4 recordings")) << add;
  const auto lines = add.Json();
  ASSERT_EQ(lines.size(), 4u) << add;  // one per input, in order
  EXPECT_EQ(lines[0]["status"], "error");
  EXPECT_EQ(lines[0]["error"]["code"], "unsupported");
  EXPECT_EQ(lines[1]["error"]["code"], "corrupt_data");
  EXPECT_EQ(lines[2]["error"]["code"], "invalid_argument");
  EXPECT_EQ(lines[3]["kind"], "video");

  // With only video references, audio without video cannot be identified;
  // video without audio can.
  const RunResult identify =
      Earshot(catalog, {"identify", Media("tone.wav"), Media("unrelated.mp4")});
  EXPECT_EQ(identify.exit_code, 1) << identify;
  const auto responses = identify.Json();
  ASSERT_EQ(responses.size(), 2u) << identify;
  EXPECT_EQ(responses[0]["status"], "error");
  EXPECT_EQ(responses[0]["error"]["code"], "unsupported");
  EXPECT_TRUE(
      Contains(responses[0]["error"]["message"].get<std::string>(), "only video references"))
      << identify;
  EXPECT_EQ(responses[1]["status"], "no_match") << identify;

  // An empty folder for --video says what it looked for.
  fs::create_directories(dir_ / "empty");
  const RunResult empty =
      Earshot(catalog, {"catalog", "add", "--video", (dir_ / "empty").string()});
  EXPECT_EQ(empty.exit_code, 2) << empty;
  EXPECT_TRUE(Contains(empty.err, "no video files found")) << empty;
}

}  // namespace
}  // namespace earshot::cli
