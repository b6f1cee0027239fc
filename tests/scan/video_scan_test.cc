// The scanner's video side with real parts: footage made by the ffmpeg CLI
// (lavfi sources), a real catalog with a video reference, the real Scanner,
// VideoWatcher thread and results folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "recognition/matcher.h"
#include "scan/scanner.h"
#include "support/process.h"

namespace earshot::scan {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace support = ::earshot::testing;

class VideoScanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = support::ScopedTempDir::Create("earshot_video_scan");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_ = new support::ScopedTempDir(std::move(*dir));
    // The footage is made once per machine (every test runs in a process of
    // its own): generated into a staging folder, then renamed into place.
    footage_ = fs::temp_directory_path() / "earshot_video_scan_footage_v1";
    if (!fs::exists(footage_ / "done")) {
      auto staging = support::ScopedTempDir::Create("earshot_video_scan_footage_staging");
      ASSERT_TRUE(staging) << staging.error().ToString();
      MakeFootage(staging->path());
      if (HasFatalFailure()) return;
      std::ofstream(staging->path() / "done") << "ok\n";
      std::error_code ec;
      fs::rename(staging->path(), footage_, ec);  // fails when another process won: fine
      ASSERT_TRUE(fs::exists(footage_ / "done")) << "footage folder " << footage_ << ": " << ec.message();
    }
    auto catalog = catalog::Catalog::Open(dir_->path() / "catalog", {});
    ASSERT_TRUE(catalog) << catalog.error().ToString();
    catalog::AddItem item;
    item.path = Path("broadcast.mp4");
    item.metadata.title = "final";
    item.rule = store::BusinessRule::kBlock;
    auto added = (*catalog)->AddVideo({item}, 1);
    ASSERT_EQ(added.size(), 1u);
    ASSERT_TRUE(added[0].entry) << added[0].entry.error().ToString();
    ref_id_ = added[0].entry->id;
    catalog_ = catalog->release();
  }
  static void TearDownTestSuite() {
    delete catalog_;
    delete dir_;
  }

  static void MakeFootage(const fs::path& dir) {
    const auto path = [&](const std::string& name) { return (dir / name).string(); };
    // The protected "broadcast": a turning, colour-cycling mandelbrot zoom, 20 s.
    Ffmpeg({"-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=25,rotate=a=0.35*t:fillcolor=black,hue=h=18*t", "-t", "20", "-c:v", "libx264",
            "-preset", "veryfast", "-pix_fmt", "yuv420p", path("broadcast.mp4")});
    // Its re-stream from 3 s: scaled, a caption band, a tone as audio; a key
    // frame every second, as live encoders send (the scanner then reads key
    // frames only until one hits a reference: adaptive sampling).
    Ffmpeg({"-ss", "3", "-i", path("broadcast.mp4"), "-f", "lavfi", "-i",
            "sine=frequency=330:sample_rate=44100", "-t", "12", "-filter_complex",
            "[0:v]scale=256:144,drawbox=x=0:y=ih*0.8:w=iw:h=ih*0.2:color=black@0.9:t=fill[v]",
            "-map", "[v]", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-g", "25",
            "-keyint_min", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", path("restream.mp4")});
    // The same without any audio track (a muted re-stream).
    Ffmpeg({"-i", path("restream.mp4"), "-an", "-c:v", "copy", path("restream-muted.mp4")});
    // Unrelated footage with audio, and audio alone.
    Ffmpeg({"-f", "lavfi", "-i", "life=size=320x180:rate=25:mold=10:ratio=0.3:seed=7", "-f",
            "lavfi", "-i", "sine=frequency=500:sample_rate=44100", "-t", "12", "-c:v", "libx264",
            "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", path("unrelated.mp4")});
    Ffmpeg({"-f", "lavfi", "-i", "sine=frequency=500:sample_rate=44100", "-t", "5", path("tone.wav")});
  }

  static std::string Path(const std::string& name) { return (footage_ / name).string(); }
  static void Ffmpeg(std::vector<std::string> args) {
    std::vector<std::string> argv = {"ffmpeg", "-v", "error", "-y"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = support::RunCommand(argv, 120s);
    ASSERT_TRUE(r && r->ok()) << (r ? r->stderr_text : r.error().ToString());
  }

  struct Outcome {
    ScanReport report;
    std::vector<nlohmann::json> responses;
    std::vector<ThumbnailInfo> thumbnails;
    std::vector<std::vector<uint8_t>> jpegs;
    fs::path folder;
  };

  // Scans `input` as stream `stream_id` with the catalog's video references.
  Outcome Scan(const std::string& input, const std::string& stream_id, double thumbnail_every_s = 0) {
    auto snapshot = catalog_->Snapshot();
    recognition::Matcher matcher(*snapshot, catalog_->params(), recognition::QueryParams::Streaming());
    const fs::path results = dir_->path() / ("results-" + stream_id);
    ScanShared shared{catalog_, &matcher, results, nullptr};
    Outcome out;
    std::mutex mu;
    {
      Scanner scanner(shared, ScannerOptions{1, 16000, true});
      ScanOptions o;
      o.input = input;
      o.stream_id = stream_id;
      o.ongoing_every_s = 0;
      o.video_index = catalog_->VideoSnapshot();
      o.thumbnail_every_s = thumbnail_every_s;
      o.on_response = [&](const nlohmann::json& r) {
        std::lock_guard lock(mu);
        out.responses.push_back(r);
      };
      o.on_thumbnail = [&](const ThumbnailInfo& t) {
        std::lock_guard lock(mu);
        out.thumbnails.push_back(t);
        out.jpegs.emplace_back(t.jpeg.begin(), t.jpeg.end());
      };
      EXPECT_TRUE(scanner.Add(std::move(o)));
      EXPECT_TRUE(scanner.WaitAll(std::chrono::steady_clock::now() + 60s));
      auto reports = scanner.reports();
      EXPECT_EQ(reports.size(), 1u);
      if (!reports.empty()) out.report = reports[0];
    }
    out.folder = results / stream_id;
    return out;
  }

  static support::ScopedTempDir* dir_;  // this process's catalog and results
  static fs::path footage_;             // shared by the processes of this suite
  static catalog::Catalog* catalog_;
  static store::TrackId ref_id_;
};

support::ScopedTempDir* VideoScanTest::dir_ = nullptr;
fs::path VideoScanTest::footage_;
catalog::Catalog* VideoScanTest::catalog_ = nullptr;
store::TrackId VideoScanTest::ref_id_ = 0;

TEST_F(VideoScanTest, ReStreamIsMatchedAsVideoWithTheRightOffsets) {
  Outcome out = Scan(Path("restream.mp4"), "restream");
  EXPECT_EQ(out.report.status, "ended");
  EXPECT_GT(out.report.video_frames, 15u);
  ASSERT_GE(out.responses.size(), 2u);
  const nlohmann::json& started = out.responses.front();
  EXPECT_EQ(started["status"], "match_started");
  EXPECT_EQ(started["match_type"], "video");
  EXPECT_EQ(started["rule"], "block");
  EXPECT_EQ(started["track"]["track_id"], ref_id_);
  EXPECT_EQ(started["track"]["title"], "final");
  EXPECT_NE(started["match_id"].get<std::string>().find("-v"), std::string::npos);
  // Reported within a few seconds; the re-stream starts 3 s into the reference.
  const double at = started["stream"]["start_s"].get<double>();
  EXPECT_LE(at, 5.0);
  EXPECT_NEAR(started["reference"]["start_s"].get<double>() - at, 3.0, 1.0) << started.dump();
  const nlohmann::json& ended = out.responses.back();
  EXPECT_EQ(ended["status"], "match_ended");
  EXPECT_EQ(ended["match_id"], started["match_id"]);
  EXPECT_GE(ended["stream"]["end_s"].get<double>(), 8.0) << ended.dump();

  // On disk: the responses and a summary whose segment says video.
  std::ifstream in(out.folder / "summary.json");
  ASSERT_TRUE(in);
  const nlohmann::json summary = nlohmann::json::parse(in);
  ASSERT_EQ(summary["segments"].size(), 1u) << summary.dump();
  EXPECT_EQ(summary["segments"][0]["match_type"], "video");
  EXPECT_EQ(summary["edits"]["cut"].size(), 1u);  // rule block: cut from the VOD
  EXPECT_GE(summary["stream_seconds"].get<double>(), 11.0);
}

TEST_F(VideoScanTest, MutedReStreamWithoutAudioTrackIsScannedOnItsVideo) {
  Outcome out = Scan(Path("restream-muted.mp4"), "muted");
  EXPECT_EQ(out.report.status, "ended") << (out.report.error ? out.report.error->ToString() : "");
  EXPECT_FALSE(out.report.error.has_value());
  ASSERT_FALSE(out.responses.empty());
  EXPECT_EQ(out.responses.front()["match_type"], "video");
}

TEST_F(VideoScanTest, UnrelatedFootageMatchesNothing) {
  Outcome out = Scan(Path("unrelated.mp4"), "unrelated");
  EXPECT_EQ(out.report.status, "ended");
  EXPECT_GT(out.report.video_frames, 15u);
  EXPECT_TRUE(out.responses.empty()) << out.responses.front().dump();
}

TEST_F(VideoScanTest, ThumbnailsAreStoredEveryNSecondsBesideTheResults) {
  Outcome out = Scan(Path("unrelated.mp4"), "thumbs", 3.0);
  EXPECT_EQ(out.report.status, "ended");
  // 12 s at one every 3 s: at 0, 3, 6, 9 (and none at 12, past the end).
  ASSERT_EQ(out.thumbnails.size(), 4u);
  EXPECT_EQ(out.report.thumbnails, 4u);
  for (size_t i = 0; i < out.thumbnails.size(); ++i) {
    const ThumbnailInfo& t = out.thumbnails[i];
    EXPECT_EQ(t.stream_id, "thumbs");
    EXPECT_NEAR(t.stream_s, 3.0 * static_cast<double>(i), 0.6);
    EXPECT_GT(t.captured_ms, 0);
    // The stored file holds the same JPEG that the observer saw.
    std::ifstream in(out.folder / t.file, std::ios::binary);
    ASSERT_TRUE(in) << t.file;
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes, out.jpegs[i]);
    ASSERT_GE(bytes.size(), 4u);
    EXPECT_EQ(bytes[0], 0xFF);
    EXPECT_EQ(bytes[1], 0xD8);
  }
  EXPECT_LT(out.thumbnails[0].file, out.thumbnails[1].file);  // names sort by stream time
}

TEST_F(VideoScanTest, AudioOnlyInputWithOnlyVideoReferencesFailsClearly) {
  Outcome out = Scan(Path("tone.wav"), "tone");
  EXPECT_EQ(out.report.status, "failed");
  ASSERT_TRUE(out.report.error.has_value());
  EXPECT_EQ(out.report.error->code(), ErrorCode::kUnsupported) << out.report.error->ToString();
  EXPECT_NE(out.report.error->message().find("video"), std::string::npos) << out.report.error->ToString();
  EXPECT_TRUE(out.responses.empty());
}

}  // namespace
}  // namespace earshot::scan
