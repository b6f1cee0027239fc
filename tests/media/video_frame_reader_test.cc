#include "media/video_frame_reader.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace earshot::media {
namespace {

namespace fs = std::filesystem;

VideoReadOptions Opts(double fps, int max_width = 160, bool keyframes_only = false,
                      bool skip_nonref = true) {
  VideoReadOptions o;
  o.fps = fps;
  o.max_width = max_width;
  o.keyframes_only = keyframes_only;
  o.skip_nonref = skip_nonref;
  return o;
}

// Footage made by the ffmpeg CLI (lavfi sources) in a temporary folder.
class VideoFrameReaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("earshot_video_reader_" + std::to_string(getpid())));
    fs::create_directories(*dir_);
    // 6 s of 320x240 at 25 fps, H.264 with B-frames and a key frame every
    // second; the picture moves (testsrc2) so that frames differ.
    Make("testsrc2=size=320x240:rate=25:duration=6",
         "-c:v libx264 -preset ultrafast -bf 2 -g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p",
         "h264.mp4");
    // MPEG-4 part 2 at 640x480 (its decoder supports lowres).
    Make("testsrc2=size=640x480:rate=25:duration=3", "-c:v mpeg4 -q:v 5", "mpeg4.avi");
    // Audio only.
    Make("sine=frequency=440:duration=2", "-c:a pcm_s16le", "audio.wav");
    // Anamorphic: 352x288 stored, 16:9 display (SAR 64:33... set via setsar).
    Make("testsrc2=size=352x288:rate=25:duration=2,setsar=16/11",
         "-c:v libx264 -preset ultrafast -pix_fmt yuv420p", "anamorphic.mp4");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static void Make(const std::string& source, const std::string& codec, const std::string& name) {
    const std::string cmd = "ffmpeg -v error -y -f lavfi -i '" + source + "' " + codec + " '" +
                            (*dir_ / name).string() + "' < /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static std::string Path(const std::string& name) { return (*dir_ / name).string(); }
  // 10 s of 16:9 H.264 (limited-range yuv420p, like live streams), made on
  // first use: only the thumbnail tests need it.
  static std::string Wide10() {
    if (!fs::exists(*dir_ / "wide10.mp4")) {
      Make("testsrc2=size=480x270:rate=10:duration=10",
           "-c:v libx264 -preset ultrafast -g 10 -keyint_min 10 -sc_threshold 0 -pix_fmt yuv420p",
           "wide10.mp4");
    }
    return "wide10.mp4";
  }

  static std::vector<VideoFrame> ReadAll(const std::string& name, const VideoReadOptions& options,
                                         uint64_t* decoded = nullptr) {
    auto reader = VideoFrameReader::Open(Path(name), options);
    EXPECT_TRUE(reader) << reader.error().ToString();
    std::vector<VideoFrame> frames;
    if (!reader) return frames;
    for (int guard = 0; guard < 10000; ++guard) {
      VideoFrame f;
      auto more = (*reader)->Next(f);
      EXPECT_TRUE(more) << more.error().ToString();
      if (!more || !*more) break;
      frames.push_back(std::move(f));
    }
    if (decoded != nullptr) *decoded = (*reader)->decoded_frames();
    return frames;
  }

  static fs::path* dir_;
};
fs::path* VideoFrameReaderTest::dir_ = nullptr;

TEST_F(VideoFrameReaderTest, SamplesAtTheRequestedRateAsSmallLuma) {
  uint64_t decoded = 0;
  const auto frames = ReadAll("h264.mp4", Opts(2, 160), &decoded);
  // 6 s at 2 fps: samples at 0, 0.5, ..., 5.5 s.
  ASSERT_EQ(frames.size(), 12u);
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].width, 160);
    EXPECT_EQ(frames[i].height, 120);
    ASSERT_EQ(frames[i].luma.size(), 160u * 120u);
    // Each sample is the first decoded frame at or after its instant; with
    // non-reference frames skipped it may be a few frames late.
    EXPECT_GE(frames[i].pts_ms, static_cast<int64_t>(i) * 500);
    EXPECT_LT(frames[i].pts_ms, static_cast<int64_t>(i) * 500 + 200);
  }
  EXPECT_EQ(frames[0].pts_ms, 0);
  EXPECT_TRUE(frames[0].keyframe);
  // Not a flat picture, and successive samples differ.
  const double mean = std::accumulate(frames[0].luma.begin(), frames[0].luma.end(), 0.0) /
                      static_cast<double>(frames[0].luma.size());
  EXPECT_GT(mean, 20);
  EXPECT_LT(mean, 235);
  EXPECT_NE(frames[0].luma, frames[1].luma);
  // B-frames that nothing references were not decoded.
  EXPECT_LT(decoded, 150u);
  EXPECT_GT(decoded, 12u);
}

TEST_F(VideoFrameReaderTest, EveryFrameWithoutSkipping) {
  uint64_t decoded = 0;
  const auto frames = ReadAll("h264.mp4", Opts(0, 160, false, false), &decoded);
  EXPECT_EQ(frames.size(), 150u);
  EXPECT_EQ(decoded, 150u);
  for (size_t i = 1; i < frames.size(); ++i) EXPECT_EQ(frames[i].pts_ms - frames[i - 1].pts_ms, 40);
  // Smaller than max_width: kept at the source size.
  EXPECT_EQ(frames[0].width, 160);  // default max_width
  const auto big = ReadAll("h264.mp4", Opts(1, 640));
  ASSERT_FALSE(big.empty());
  EXPECT_EQ(big[0].width, 320);
  EXPECT_EQ(big[0].height, 240);
}

TEST_F(VideoFrameReaderTest, KeyframesOnly) {
  uint64_t decoded = 0;
  const auto frames = ReadAll("h264.mp4", Opts(10, 160, true), &decoded);
  ASSERT_EQ(frames.size(), 6u);  // one key frame per second
  EXPECT_EQ(decoded, 6u);
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_TRUE(frames[i].keyframe);
    EXPECT_EQ(frames[i].pts_ms, static_cast<int64_t>(i) * 1000);
  }
}

TEST_F(VideoFrameReaderTest, SkipsTheRestOfAGopOnceItsLastSampleIsTaken) {
  // Key frames every second, 1 sample per second: after the first GOP (whose
  // spacing is not known yet), each GOP gives its key frame and the rest is
  // dropped undecoded.
  uint64_t decoded = 0;
  const auto frames = ReadAll("h264.mp4", Opts(1), &decoded);
  ASSERT_EQ(frames.size(), 6u);
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(frames[i].pts_ms, static_cast<int64_t>(i) * 1000);
  EXPECT_LT(decoded, 50u);
  // Without the skip, every reference frame is decoded.
  VideoReadOptions all = Opts(1);
  all.skip_gop_tail = false;
  uint64_t decoded_all = 0;
  EXPECT_EQ(ReadAll("h264.mp4", all, &decoded_all).size(), 6u);
  EXPECT_GT(decoded_all, 2 * decoded);
}

TEST_F(VideoFrameReaderTest, LowresDecodingWhereSupported) {
  auto reader = VideoFrameReader::Open(Path("mpeg4.avi"), Opts(2, 160));
  ASSERT_TRUE(reader) << reader.error().ToString();
  EXPECT_EQ((*reader)->info().codec, "mpeg4");
  EXPECT_EQ((*reader)->info().source_width, 640);
  EXPECT_GE((*reader)->info().lowres, 1);  // 640 -> 320 or 160 in the decoder
  VideoFrame f;
  auto more = (*reader)->Next(f);
  ASSERT_TRUE(more && *more);
  EXPECT_EQ(f.width, 160);
  EXPECT_EQ(f.height, 120);
}

TEST_F(VideoFrameReaderTest, DisplayAspectRatioIsApplied) {
  const auto frames = ReadAll("anamorphic.mp4", Opts(1, 128));
  ASSERT_FALSE(frames.empty());
  // 352 x 16/11 = 512 display pixels wide for 288 lines: 128 x 72.
  EXPECT_EQ(frames[0].width, 128);
  EXPECT_EQ(frames[0].height, 72);
}

TEST_F(VideoFrameReaderTest, InfoDescribesTheStream) {
  auto reader = VideoFrameReader::Open(Path("h264.mp4"), {});
  ASSERT_TRUE(reader);
  const VideoStreamInfo& info = (*reader)->info();
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.source_width, 320);
  EXPECT_EQ(info.source_height, 240);
  EXPECT_NEAR(info.frame_rate, 25, 0.01);
  EXPECT_NEAR(info.duration_s, 6, 0.1);
}

TEST_F(VideoFrameReaderTest, ClearErrors) {
  auto missing = VideoFrameReader::Open(Path("nope.mp4"), {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("nope.mp4"), std::string::npos);

  auto audio = VideoFrameReader::Open(Path("audio.wav"), {});
  ASSERT_FALSE(audio);
  EXPECT_EQ(audio.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(audio.error().message().find("no video stream"), std::string::npos);

  {
    std::ofstream junk(Path("junk.mp4"), std::ios::binary);
    for (int i = 0; i < 4096; ++i) junk.put(static_cast<char>((i * 7919) & 0xff));
  }
  auto corrupt = VideoFrameReader::Open(Path("junk.mp4"), {});
  ASSERT_FALSE(corrupt);
  EXPECT_EQ(corrupt.error().code(), ErrorCode::kCorruptData);

  { std::ofstream empty(Path("empty.mp4")); }
  auto empty = VideoFrameReader::Open(Path("empty.mp4"), {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kCorruptData);

  auto dir = VideoFrameReader::Open(dir_->string(), {});
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code(), ErrorCode::kInvalidArgument);

  VideoReadOptions unknown;
  unknown.format_options = {{"no_such_option", "1"}};
  auto bad_option = VideoFrameReader::Open(Path("h264.mp4"), unknown);
  ASSERT_FALSE(bad_option);
  EXPECT_EQ(bad_option.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad_option.error().message().find("no_such_option"), std::string::npos);

  auto bad_width = VideoFrameReader::Open(Path("h264.mp4"), Opts(2, 4));
  ASSERT_FALSE(bad_width);
  EXPECT_EQ(bad_width.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(VideoFrameReaderTest, TruncatedFileYieldsTheFramesBeforeTheDamage) {
  // The first 40 % of an MPEG-4 AVI (its index at the end is lost).
  const auto size = fs::file_size(Path("mpeg4.avi"));
  {
    std::ifstream in(Path("mpeg4.avi"), std::ios::binary);
    std::vector<char> bytes(size * 4 / 10);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::ofstream out(Path("truncated.avi"), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const auto frames = ReadAll("truncated.avi", Opts(5));
  EXPECT_GE(frames.size(), 2u);
  EXPECT_LT(frames.size(), 15u);  // the whole file would give 15
}

// --- Thumbnails -----------------------------------------------------------

VideoReadOptions ThumbOpts(int64_t every_ms, int width = 320, int quality = 5) {
  VideoReadOptions o = Opts(2);
  o.thumbnail_every_ms = every_ms;
  o.thumbnail_width = width;
  o.thumbnail_quality = quality;
  return o;
}

struct JpegShape {
  int width = 0;
  int height = 0;
  int components = 0;
};

// The frame header (SOF0..SOF3) of a JPEG file, walking its marker segments;
// nullopt when the bytes are not a JPEG file with one.
std::optional<JpegShape> ParseJpegShape(const std::vector<uint8_t>& b) {
  if (b.size() < 4 || b[0] != 0xFF || b[1] != 0xD8) return std::nullopt;
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (b[i] != 0xFF) return std::nullopt;
    const uint8_t marker = b[i + 1];
    const size_t length = static_cast<size_t>(b[i + 2]) << 8 | b[i + 3];
    if (marker >= 0xC0 && marker <= 0xC3) {
      if (i + 10 > b.size()) return std::nullopt;
      JpegShape shape;
      shape.height = b[i + 5] << 8 | b[i + 6];
      shape.width = b[i + 7] << 8 | b[i + 8];
      shape.components = b[i + 9];
      return shape;
    }
    if (marker == 0xDA) return std::nullopt;  // scan data before any frame header
    i += 2 + length;
  }
  return std::nullopt;
}

bool IsCompleteJpeg(const std::vector<uint8_t>& b) {
  return b.size() > 100 && b[0] == 0xFF && b[1] == 0xD8 && b[b.size() - 2] == 0xFF &&
         b[b.size() - 1] == 0xD9;
}

TEST_F(VideoFrameReaderTest, ThumbnailsAtTheRequestedCadence) {
  auto reader = VideoFrameReader::Open(Path(Wide10()), ThumbOpts(2000));
  ASSERT_TRUE(reader) << reader.error().ToString();
  std::vector<VideoFrame> frames;
  for (int guard = 0; guard < 1000; ++guard) {
    VideoFrame f;
    auto more = (*reader)->Next(f);
    ASSERT_TRUE(more) << more.error().ToString();
    if (!*more) break;
    frames.push_back(std::move(f));
  }
  ASSERT_EQ(frames.size(), 20u);  // 10 s at 2 fps
  EXPECT_EQ((*reader)->thumbnail_failures(), 0u);
  std::vector<int64_t> thumb_pts;
  for (const VideoFrame& f : frames) {
    if (f.thumbnail_jpeg.empty()) continue;
    thumb_pts.push_back(f.pts_ms);
    EXPECT_TRUE(IsCompleteJpeg(f.thumbnail_jpeg)) << "at " << f.pts_ms << " ms";
    auto shape = ParseJpegShape(f.thumbnail_jpeg);
    ASSERT_TRUE(shape) << "no JPEG frame header at " << f.pts_ms << " ms";
    EXPECT_EQ(shape->width, 320);
    EXPECT_EQ(shape->height, 180);    // 480x270 keeps 16:9
    EXPECT_EQ(shape->components, 3);  // colour
    // The luma used for hashing is unchanged by thumbnails.
    EXPECT_EQ(f.width, 160);
    EXPECT_EQ(f.height, 90);
  }
  ASSERT_EQ(thumb_pts.size(), 5u);
  EXPECT_EQ(frames[0].pts_ms, 0);
  EXPECT_FALSE(frames[0].thumbnail_jpeg.empty());
  for (size_t k = 0; k < thumb_pts.size(); ++k) {
    // The first sampled frame at or after each 2 s step.
    EXPECT_GE(thumb_pts[k], static_cast<int64_t>(k) * 2000);
    EXPECT_LT(thumb_pts[k], static_cast<int64_t>(k) * 2000 + 200);
  }
  // Pictures move, so thumbnails differ.
  EXPECT_NE(frames[0].thumbnail_jpeg, frames[4].thumbnail_jpeg);

  // Another period: 0, 3, 6, 9 s.
  const auto every3 = ReadAll(Wide10(), ThumbOpts(3000));
  std::vector<int64_t> at3;
  for (const VideoFrame& f : every3) {
    if (!f.thumbnail_jpeg.empty()) at3.push_back(f.pts_ms);
  }
  ASSERT_EQ(at3.size(), 4u);
  for (size_t k = 0; k < at3.size(); ++k) {
    EXPECT_GE(at3[k], static_cast<int64_t>(k) * 3000);
    EXPECT_LT(at3[k], static_cast<int64_t>(k) * 3000 + 200);
  }
}

TEST_F(VideoFrameReaderTest, NoThumbnailsUnlessAsked) {
  for (int64_t every : {int64_t{0}, int64_t{-1000}}) {
    VideoReadOptions o = ThumbOpts(every);
    o.thumbnail_width = 3;  // not checked while thumbnails are off
    o.thumbnail_quality = 99;
    auto reader = VideoFrameReader::Open(Path(Wide10()), o);
    ASSERT_TRUE(reader) << reader.error().ToString();
    size_t frames = 0;
    for (int guard = 0; guard < 1000; ++guard) {
      VideoFrame f;
      f.thumbnail_jpeg = {1, 2, 3};  // a reused frame is cleared
      auto more = (*reader)->Next(f);
      ASSERT_TRUE(more) << more.error().ToString();
      if (!*more) break;
      ++frames;
      EXPECT_TRUE(f.thumbnail_jpeg.empty()) << "at " << f.pts_ms << " ms";
    }
    EXPECT_EQ(frames, 20u);
    EXPECT_EQ((*reader)->thumbnail_failures(), 0u);
  }
}

TEST_F(VideoFrameReaderTest, ThumbnailDecodesToTheSamePicture) {
  const auto frames = ReadAll(Wide10(), ThumbOpts(5000));
  ASSERT_FALSE(frames.empty());
  ASSERT_FALSE(frames[0].thumbnail_jpeg.empty());
  const std::string jpg = Path("thumb0.jpg");
  {
    std::ofstream out(jpg, std::ios::binary);
    out.write(reinterpret_cast<const char*>(frames[0].thumbnail_jpeg.data()),
              static_cast<std::streamsize>(frames[0].thumbnail_jpeg.size()));
  }
  // A JPEG file libavformat reads as one MJPEG picture of 320 x 180.
  auto reader = VideoFrameReader::Open(jpg, Opts(0, 160));
  ASSERT_TRUE(reader) << reader.error().ToString();
  EXPECT_EQ((*reader)->info().codec, "mjpeg");
  EXPECT_EQ((*reader)->info().source_width, 320);
  EXPECT_EQ((*reader)->info().source_height, 180);
  VideoFrame decoded;
  auto more = (*reader)->Next(decoded);
  ASSERT_TRUE(more && *more) << (more ? "no frame" : more.error().ToString());
  // Its luma, at the hashing size, is the source frame's: same picture, same
  // brightness (the limited-range source became full-range JPEG correctly:
  // a range mistake shifts white by 20 and black by 16 levels).
  ASSERT_EQ(decoded.width, frames[0].width);
  ASSERT_EQ(decoded.height, frames[0].height);
  ASSERT_EQ(decoded.luma.size(), frames[0].luma.size());
  double sum_abs = 0;
  double sum_diff = 0;
  for (size_t i = 0; i < decoded.luma.size(); ++i) {
    const int d = int{decoded.luma[i]} - int{frames[0].luma[i]};
    sum_abs += std::abs(d);
    sum_diff += d;
  }
  const auto n = static_cast<double>(decoded.luma.size());
  EXPECT_LT(sum_abs / n, 3.0);  // about 1 when right, 8 with a range mistake
  EXPECT_LT(std::abs(sum_diff / n), 1.5);
}

TEST_F(VideoFrameReaderTest, ThumbnailSizeQualityAndAspect) {
  // Anamorphic 352x288 with SAR 16:11 displays as 512x288: 320 x 180.
  const auto anamorphic = ReadAll("anamorphic.mp4", ThumbOpts(1000));
  ASSERT_FALSE(anamorphic.empty());
  auto shape = ParseJpegShape(anamorphic[0].thumbnail_jpeg);
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->width, 320);
  EXPECT_EQ(shape->height, 180);

  // The MPEG-4 clip is decoded at reduced resolution (lowres) for 160-wide
  // luma; the thumbnail still has the asked size. An odd width is made even.
  auto reader = VideoFrameReader::Open(Path("mpeg4.avi"), ThumbOpts(1000, 321));
  ASSERT_TRUE(reader) << reader.error().ToString();
  EXPECT_GE((*reader)->info().lowres, 1);
  VideoFrame f;
  auto more = (*reader)->Next(f);
  ASSERT_TRUE(more && *more);
  shape = ParseJpegShape(f.thumbnail_jpeg);
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->width, 320);
  EXPECT_EQ(shape->height, 240);

  // Quality: qscale 2 makes a larger file than qscale 31.
  const auto best = ReadAll(Wide10(), ThumbOpts(5000, 320, 2));
  const auto smallest = ReadAll(Wide10(), ThumbOpts(5000, 320, 31));
  ASSERT_FALSE(best.empty());
  ASSERT_FALSE(smallest.empty());
  ASSERT_TRUE(IsCompleteJpeg(best[0].thumbnail_jpeg));
  ASSERT_TRUE(IsCompleteJpeg(smallest[0].thumbnail_jpeg));
  EXPECT_GT(best[0].thumbnail_jpeg.size(), 2 * smallest[0].thumbnail_jpeg.size());
}

TEST_F(VideoFrameReaderTest, BadThumbnailOptions) {
  for (const auto& [width, quality] :
       std::vector<std::pair<int, int>>{{8, 5}, {10000, 5}, {320, 1}, {320, 32}}) {
    auto reader = VideoFrameReader::Open(Path("h264.mp4"), ThumbOpts(1000, width, quality));
    ASSERT_FALSE(reader) << width << " " << quality;
    EXPECT_EQ(reader.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(reader.error().message().find("thumbnail_"), std::string::npos)
        << reader.error().message();
  }
}


// --- Switching between key-frame and dense decoding -------------------------

// Every frame of `name` decoded with nothing skipped, by presentation time:
// what a correctly decoded frame must look like.
std::map<int64_t, std::vector<uint8_t>> FullDecode(const std::string& path) {
  VideoReadOptions all = Opts(0, 160, false, false);
  all.skip_gop_tail = false;
  auto reader = VideoFrameReader::Open(path, all);
  EXPECT_TRUE(reader) << reader.error().ToString();
  std::map<int64_t, std::vector<uint8_t>> by_pts;
  if (!reader) return by_pts;
  for (int guard = 0; guard < 10000; ++guard) {
    VideoFrame f;
    auto more = (*reader)->Next(f);
    EXPECT_TRUE(more) << more.error().ToString();
    if (!more || !*more) break;
    by_pts[f.pts_ms] = std::move(f.luma);
  }
  return by_pts;
}

// Reads to the end, calling `before_next(reader, frames so far)` before each
// Next; checks what every switch must keep: timestamps increase, nothing is
// damaged, and each frame is exactly the frame a full decode gives at its
// time (a frame decoded without its references would differ).
std::vector<VideoFrame> ReadSwitching(
    const std::string& path, VideoReadOptions options,
    const std::function<void(VideoFrameReader&, const std::vector<VideoFrame>&)>& before_next) {
  const auto truth = FullDecode(path);
  auto reader = VideoFrameReader::Open(path, options);
  EXPECT_TRUE(reader) << reader.error().ToString();
  std::vector<VideoFrame> frames;
  if (!reader) return frames;
  for (int guard = 0; guard < 10000; ++guard) {
    before_next(**reader, frames);
    VideoFrame f;
    auto more = (*reader)->Next(f);
    EXPECT_TRUE(more) << more.error().ToString();
    if (!more || !*more) break;
    if (!frames.empty()) {
      EXPECT_GT(f.pts_ms, frames.back().pts_ms);
    }
    auto it = truth.find(f.pts_ms);
    if (it == truth.end()) {
      ADD_FAILURE() << "no frame at " << f.pts_ms << " ms in the full decode";
    } else {
      EXPECT_EQ(f.luma, it->second) << "the frame at " << f.pts_ms << " ms is not what it shows";
    }
    frames.push_back(std::move(f));
  }
  EXPECT_EQ((*reader)->damaged_packets(), 0u);
  return frames;
}

TEST_F(VideoFrameReaderTest, KeyFrameModeReturnsEachKeyFrameAtOnce) {
  auto reader = VideoFrameReader::Open(Path("h264.mp4"), Opts(10, 160, true));
  ASSERT_TRUE(reader) << reader.error().ToString();
  EXPECT_TRUE((*reader)->keyframes_only());
  VideoFrame f;
  auto more = (*reader)->Next(f);
  ASSERT_TRUE(more && *more);
  EXPECT_EQ(f.pts_ms, 0);
  EXPECT_TRUE(f.keyframe);
  // Not held back by the decoder's reordering delay until later key frames.
  EXPECT_EQ((*reader)->decoded_frames(), 1u);
}

TEST_F(VideoFrameReaderTest, SwitchToKeyFramesTakesEffectAtOnce) {
  size_t switched_at = 0;
  const auto frames = ReadSwitching(
      Path("h264.mp4"), Opts(10), [&](VideoFrameReader& r, const std::vector<VideoFrame>& so_far) {
        if (switched_at == 0 && !so_far.empty() && so_far.back().pts_ms >= 1500) {
          EXPECT_FALSE(r.keyframes_only());
          r.SetKeyframesOnly(true);
          EXPECT_TRUE(r.keyframes_only());
          switched_at = so_far.size();
        }
      });
  ASSERT_GT(switched_at, 0u);
  // Dense before: about 10 samples a second (non-reference frames are skipped).
  EXPECT_GE(switched_at, 8u);
  std::vector<int64_t> keys_after;
  size_t others_after = 0;
  for (size_t i = switched_at; i < frames.size(); ++i) {
    if (frames[i].keyframe) {
      keys_after.push_back(frames[i].pts_ms);
    } else {
      // Only what was already inside the decoder, before the next key frame.
      ++others_after;
      EXPECT_LT(frames[i].pts_ms, 2000);
    }
  }
  EXPECT_LE(others_after, 3u);
  EXPECT_EQ(keys_after, (std::vector<int64_t>{2000, 3000, 4000, 5000}));
}

TEST_F(VideoFrameReaderTest, SwitchToDenseRightAfterAKeyFrame) {
  // Key frames only; dense from the key frame at 2 s: that GOP is sampled at
  // once (the key frame is decoded again as the reference of what follows).
  uint64_t decoded_key_mode = 0;
  bool switched = false;
  const auto frames = ReadSwitching(
      Path("h264.mp4"), Opts(10, 160, true),
      [&](VideoFrameReader& r, const std::vector<VideoFrame>& so_far) {
        if (!switched && !so_far.empty() && so_far.back().pts_ms == 2000) {
          decoded_key_mode = r.decoded_frames();
          r.SetKeyframesOnly(false);
          EXPECT_FALSE(r.keyframes_only());
          switched = true;
        }
      });
  ASSERT_TRUE(switched);
  EXPECT_EQ(decoded_key_mode, 3u);  // 0, 1, 2 s
  std::vector<int64_t> before;
  size_t in_gop = 0;
  for (const VideoFrame& f : frames) {
    if (f.pts_ms <= 2000) before.push_back(f.pts_ms);
    if (f.pts_ms > 2000 && f.pts_ms < 3000) ++in_gop;
  }
  EXPECT_EQ(before, (std::vector<int64_t>{0, 1000, 2000}));  // no key frame twice
  EXPECT_GE(in_gop, 6u);  // samples every 100 ms, on reference frames
  EXPECT_GE(frames.size(), 30u);
}

TEST_F(VideoFrameReaderTest, DenseKeyFramesDenseRoundTrip) {
  // Dense, then key frames from 1.5 s, then dense again after the next frame
  // (one the decoder still held, or the 2 s key frame).
  int state = 0;
  std::optional<int64_t> asked_after;
  const auto frames = ReadSwitching(
      Path("h264.mp4"), Opts(10), [&](VideoFrameReader& r, const std::vector<VideoFrame>& so_far) {
        if (so_far.empty()) return;
        if (state == 0 && so_far.back().pts_ms >= 1500) {
          r.SetKeyframesOnly(true);
          state = 1;
        } else if (state == 1) {
          r.SetKeyframesOnly(false);
          asked_after = so_far.back().pts_ms;
          state = 2;
        }
      });
  ASSERT_EQ(state, 2);
  ASSERT_TRUE(asked_after);
  EXPECT_LE(*asked_after, 2000);
  // Dense again by the end: samples between the key frames.
  size_t late = 0;
  for (const VideoFrame& f : frames) late += f.pts_ms > 4000 && !f.keyframe;
  EXPECT_GE(late, 5u);
  EXPECT_GE(frames.size(), 40u);
}

TEST_F(VideoFrameReaderTest, ManySwitchesNeverDecodeGarbage) {
  // Toggle on various patterns; ReadSwitching checks each frame against the
  // full decode, the timestamps and the damage counter.
  for (int pattern : {1, 2, 3, 5, 7}) {
    SCOPED_TRACE("pattern " + std::to_string(pattern));
    int calls = 0;
    const auto frames = ReadSwitching(Path("h264.mp4"), Opts(10, 160, pattern % 2 == 1),
                                      [&](VideoFrameReader& r, const std::vector<VideoFrame>&) {
                                        if (++calls % pattern == 0) {
                                          r.SetKeyframesOnly(!r.keyframes_only());
                                        }
                                      });
    EXPECT_GE(frames.size(), 6u);
  }
}

TEST_F(VideoFrameReaderTest, ThumbnailsInBothModes) {
  // Key frames every second; thumbnails every 2 s. Key frames only until 3 s,
  // then dense: the cadence carries on (0, 2, 4, 6, 8 s).
  VideoReadOptions o = ThumbOpts(2000);
  o.keyframes_only = true;
  std::vector<int64_t> thumbs;
  size_t key_mode_frames = 0;
  const auto frames = ReadSwitching(
      Path(Wide10()), o, [&](VideoFrameReader& r, const std::vector<VideoFrame>& so_far) {
        if (r.keyframes_only() && !so_far.empty() && so_far.back().pts_ms >= 3000) {
          key_mode_frames = so_far.size();
          r.SetKeyframesOnly(false);
        }
      });
  for (const VideoFrame& f : frames) {
    if (f.thumbnail_jpeg.empty()) continue;
    EXPECT_TRUE(IsCompleteJpeg(f.thumbnail_jpeg)) << "at " << f.pts_ms << " ms";
    thumbs.push_back(f.pts_ms);
  }
  EXPECT_EQ(key_mode_frames, 4u);  // 0, 1, 2, 3 s
  EXPECT_EQ(thumbs, (std::vector<int64_t>{0, 2000, 4000, 6000, 8000}));
  EXPECT_EQ(frames.size(), 4u + 13u);  // then 2 fps from 3.5 s to 9.5 s
}

}  // namespace
}  // namespace earshot::media
