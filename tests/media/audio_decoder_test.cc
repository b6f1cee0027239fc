#include "media/audio_decoder.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace earshot::media {
namespace {

namespace fs = std::filesystem;

// Power of `samples` at `frequency` Hz (Goertzel), normalised by length.
double PowerAt(const std::vector<float>& samples, int sample_rate, double frequency) {
  const double coeff = 2 * std::cos(2 * std::numbers::pi * frequency / sample_rate);
  double s1 = 0, s2 = 0;
  for (float x : samples) {
    double s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return power / (static_cast<double>(samples.size()) * static_cast<double>(samples.size()));
}

// True when 440 Hz clearly dominates neighbouring and harmonic frequencies.
::testing::AssertionResult Is440Hz(const std::vector<float>& samples, int sample_rate) {
  if (samples.size() < static_cast<size_t>(sample_rate / 10)) {
    return ::testing::AssertionFailure() << "only " << samples.size() << " samples";
  }
  double at440 = PowerAt(samples, sample_rate, 440);
  for (double other : {220.0, 330.0, 550.0, 880.0, 1000.0}) {
    double p = PowerAt(samples, sample_rate, other);
    if (at440 < 100 * p) {
      return ::testing::AssertionFailure()
             << "power at 440 Hz " << at440 << " vs " << p << " at " << other << " Hz";
    }
  }
  // Zero crossings: a 440 Hz sine crosses zero 880 times per second.
  size_t crossings = 0;
  for (size_t i = 1; i < samples.size(); ++i) {
    if ((samples[i - 1] < 0) != (samples[i] < 0)) ++crossings;
  }
  double rate = static_cast<double>(crossings) * sample_rate / static_cast<double>(samples.size());
  if (std::abs(rate - 880) > 30) {
    return ::testing::AssertionFailure() << "zero-crossing rate " << rate << "/s, expected 880";
  }
  return ::testing::AssertionSuccess();
}

double Rms(const std::vector<float>& samples, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += double{samples[i]} * samples[i];
  return std::sqrt(sum / static_cast<double>(end - begin));
}

std::vector<float> Slice(const std::vector<float>& samples, size_t begin, size_t end) {
  return std::vector<float>(samples.begin() + static_cast<std::ptrdiff_t>(begin),
                            samples.begin() + static_cast<std::ptrdiff_t>(end));
}

AudioDecodeOptions Options(int sample_rate = 8000, bool strict = false) {
  AudioDecodeOptions options;
  options.sample_rate = sample_rate;
  options.strict = strict;
  return options;
}

// Test media is generated with the ffmpeg CLI into a per-run temp folder, each
// file on first use (so that a single test, as run by ctest, only pays for the
// files it needs).
class AudioDecoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::random_device random;
    dir_ = fs::temp_directory_path() /
           ("earshot_media_test_" + std::to_string(random()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
    made_.clear();
  }

  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Path of `name` in the temp folder (the file need not exist).
  static std::string Path(const std::string& name) { return (dir_ / name).string(); }

  // Path of the test file `name`, generating it if needed.
  static std::string Media(const std::string& name) {
    if (made_.insert(name).second && !Make(name)) {
      ADD_FAILURE() << "could not generate test file " << name;
    }
    return Path(name);
  }

  static bool Make(const std::string& name) {
    const std::string sine = "-f lavfi -i sine=frequency=440:duration=2:sample_rate=44100";
    const std::string video = "-f lavfi -i testsrc=size=64x48:rate=10:duration=2";
    if (name == "sine.wav" || name == "sine.flac") return Ffmpeg(sine, name);
    if (name == "sine.ogg") return Ffmpeg(sine + " -c:a libvorbis", name);
    if (name == "sine.mp3") return Ffmpeg(sine + " -c:a libmp3lame", name);
    if (name == "sine.m4a") return Ffmpeg(sine + " -c:a aac", name);
    if (name == "sine.opus.ogg") return Ffmpeg(sine + " -c:a libopus", name);
    if (name == "video.mp4") return Ffmpeg(video + " " + sine + " -c:v mpeg4 -c:a aac", name);
    if (name == "video.flv") return Ffmpeg(video + " " + sine + " -c:v flv1 -c:a aac", name);
    if (name == "video_only.mp4") return Ffmpeg(video + " -c:v mpeg4", name);
    if (name ==
        "stereo_half.wav") {  // left 0.8 * sine, right silent: the average has amplitude 0.4
      return Ffmpeg("-f lavfi -i \"aevalsrc=0.8*sin(2*PI*440*t)|0:s=44100:d=1\"", name);
    }
    if (name == "stereo_opposite.wav") {  // right = -left: the average is silence
      return Ffmpeg("-f lavfi -i \"aevalsrc=0.5*sin(2*PI*440*t)|-0.5*sin(2*PI*440*t):s=48000:d=1\"",
                    name);
    }
    if (name == "param_change.aac") {
      // A raw AAC (ADTS) stream that switches from 44.1 kHz stereo to 22.05 kHz mono.
      return Ffmpeg("-f lavfi -i sine=frequency=440:duration=1:sample_rate=44100 -ac 2 -c:a aac",
                    "part1.aac") &&
             Ffmpeg("-f lavfi -i sine=frequency=440:duration=1:sample_rate=22050 -c:a aac",
                    "part2.aac") &&
             Concatenate({"part1.aac", "part2.aac"}, name);
    }
    if (name == "no_samples.wav") return Ffmpeg("-f lavfi -i anullsrc=r=44100:cl=mono -t 0", name);
    if (name == "not_media.mp3") {
      return WriteFile(name, std::string(4000, 'x') + "this is a text file, not audio\n");
    }
    if (name == "empty.wav") return WriteFile(name, "");
    if (name == "a_directory.wav") return fs::create_directories(Path(name));
    if (name.starts_with("truncated_")) {  // the second half of the file is missing
      std::string source = Media(name.substr(10));
      fs::copy_file(source, Path(name));
      fs::resize_file(Path(name), fs::file_size(source) / 2);
      return true;
    }
    if (name.starts_with("garbage_")) {  // header and first frames kept, then random bytes
      fs::copy_file(Media(name.substr(8)), Path(name));
      return OverwriteWithNoise(Path(name), 2048);
    }
    if (name == "unknown_codec.wav") {  // a WAV whose format tag (0x1234) no decoder knows
      fs::copy_file(Media("sine.wav"), Path(name));
      std::fstream f(Path(name), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(20);  // the format tag follows "RIFF....WAVEfmt ...."
      f.put('\x34').put('\x12');
      return f.good();
    }
    ADD_FAILURE() << "no recipe for test file " << name;
    return false;
  }

  static bool Ffmpeg(const std::string& args, const std::string& output) {
    std::string command = "ffmpeg -nostdin -hide_banner -loglevel error -y " + args +
                          " -bitexact '" + Path(output) + "'";
    int status = std::system(command.c_str());
    if (status != 0) ADD_FAILURE() << "command failed: " << command;
    return status == 0;
  }

  static bool WriteFile(const std::string& name, const std::string& bytes) {
    std::ofstream out(Path(name), std::ios::binary);
    out << bytes;
    return out.good();
  }

  static bool Concatenate(const std::vector<std::string>& inputs, const std::string& output) {
    std::ofstream out(Path(output), std::ios::binary);
    for (const std::string& input : inputs) {
      out << std::ifstream(Path(input), std::ios::binary).rdbuf();
    }
    return out.good();
  }

  static bool OverwriteWithNoise(const std::string& path, std::streamoff keep) {
    auto size = static_cast<std::streamoff>(fs::file_size(path));
    std::mt19937 random(42);
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(keep);
    for (std::streamoff i = keep; i < size; ++i) f.put(static_cast<char>(random() & 0xff));
    return f.good();
  }

  static Result<DecodedAudio> Decode(const std::string& name, int rate = 8000,
                                     bool strict = false) {
    return DecodeFile(Media(name), Options(rate, strict));
  }

  static void ExpectError(const Result<DecodedAudio>& result, ErrorCode code,
                          const std::string& name, const std::string& text) {
    ASSERT_FALSE(result.has_value()) << name << " decoded to " << result->samples.size();
    EXPECT_EQ(result.error().code(), code) << result.error().ToString();
    EXPECT_NE(result.error().message().find(name), std::string::npos) << result.error().message();
    EXPECT_NE(result.error().message().find(text), std::string::npos) << result.error().message();
  }

  static inline fs::path dir_;                // per-run temp folder, removed afterwards
  static inline std::set<std::string> made_;  // files generated (or attempted) in dir_
};

struct FormatCase {
  const char* file;
  const char* codec;
};

class AudioDecoderFormatTest : public AudioDecoderTest,
                               public ::testing::WithParamInterface<FormatCase> {};

TEST_P(AudioDecoderFormatTest, DecodesSineToMonoAtRequestedRate) {
  auto result = Decode(GetParam().file, 8000);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  const DecodedAudio& audio = *result;
  EXPECT_EQ(audio.sample_rate, 8000);
  EXPECT_EQ(audio.info.codec, GetParam().codec);
  EXPECT_EQ(audio.info.source_channels, 1);
  EXPECT_NEAR(audio.info.duration_s, 2.0, 0.1);
  EXPECT_EQ(audio.damaged_packets, 0u);
  // 2 s at 8 kHz, give or take encoder padding.
  EXPECT_NEAR(static_cast<double>(audio.samples.size()), 16000, 16000 * 0.03);
  EXPECT_TRUE(Is440Hz(audio.samples, 8000));
  auto [lo, hi] = std::minmax_element(audio.samples.begin(), audio.samples.end());
  EXPECT_GE(*lo, -1.0f);
  EXPECT_LE(*hi, 1.0f);
  EXPECT_GT(*hi, 0.05f);  // not silence
}

INSTANTIATE_TEST_SUITE_P(
    Formats, AudioDecoderFormatTest,
    ::testing::Values(FormatCase{"sine.wav", "pcm_s16le"}, FormatCase{"sine.flac", "flac"},
                      FormatCase{"sine.ogg", "vorbis"}, FormatCase{"sine.mp3", "mp3"},
                      FormatCase{"sine.m4a", "aac"}, FormatCase{"sine.opus.ogg", "opus"},
                      FormatCase{"video.mp4", "aac"}, FormatCase{"video.flv", "aac"}),
    [](const ::testing::TestParamInfo<FormatCase>& param) {
      std::string name = param.param.file;
      std::replace(name.begin(), name.end(), '.', '_');
      return name;
    });

TEST_F(AudioDecoderTest, ReportsStreamInfo) {
  auto decoder = AudioDecoder::Open(Media("sine.flac"), Options());
  ASSERT_TRUE(decoder.has_value()) << decoder.error().ToString();
  const AudioStreamInfo& info = (*decoder)->info();
  EXPECT_EQ(info.codec, "flac");
  EXPECT_EQ(info.container, "flac");
  EXPECT_EQ(info.source_sample_rate, 44100);
  EXPECT_EQ(info.source_channels, 1);
  EXPECT_NEAR(info.duration_s, 2.0, 0.01);

  auto video = AudioDecoder::Open(Media("video.mp4"), Options());
  ASSERT_TRUE(video.has_value()) << video.error().ToString();
  EXPECT_NE((*video)->info().container.find("mp4"), std::string::npos);
}

TEST_F(AudioDecoderTest, ResamplesTo8000And16000Hz) {
  for (int rate : {8000, 16000, 44100}) {
    SCOPED_TRACE(rate);
    auto result = Decode("sine.wav", rate);
    ASSERT_TRUE(result.has_value()) << result.error().ToString();
    EXPECT_EQ(result->sample_rate, rate);
    // Lossless source: the length is exact up to the resampler's rounding.
    EXPECT_NEAR(static_cast<double>(result->samples.size()), 2.0 * rate, 2);
    EXPECT_TRUE(Is440Hz(result->samples, rate));
    // The sine generator's amplitude is 1/8: RMS = 0.125 / sqrt(2).
    EXPECT_NEAR(Rms(result->samples, 100, result->samples.size() - 100), 0.125 / std::sqrt(2),
                0.005);
  }
}

TEST_F(AudioDecoderTest, AveragesStereoChannels) {
  auto half = Decode("stereo_half.wav", 16000);
  ASSERT_TRUE(half.has_value()) << half.error().ToString();
  EXPECT_EQ(half->info.source_channels, 2);
  EXPECT_NEAR(static_cast<double>(half->samples.size()), 16000, 2);
  // (0.8 * sine + 0) / 2 has amplitude 0.4, RMS 0.4 / sqrt(2).
  EXPECT_NEAR(Rms(half->samples, 200, half->samples.size() - 200), 0.4 / std::sqrt(2), 0.005);
  EXPECT_TRUE(Is440Hz(half->samples, 16000));

  auto opposite = Decode("stereo_opposite.wav", 8000);
  ASSERT_TRUE(opposite.has_value()) << opposite.error().ToString();
  EXPECT_LT(Rms(opposite->samples, 0, opposite->samples.size()), 1e-3);
}

TEST_F(AudioDecoderTest, StreamingReadsMatchDecodeFile) {
  for (const char* name : {"sine.mp3", "sine.flac", "sine.opus.ogg"}) {
    SCOPED_TRACE(name);
    auto whole = Decode(name, 8000);
    ASSERT_TRUE(whole.has_value()) << whole.error().ToString();
    for (size_t chunk : {size_t{1}, size_t{37}, size_t{4096}}) {
      SCOPED_TRACE(chunk);
      auto decoder = AudioDecoder::Open(Media(name), Options(8000));
      ASSERT_TRUE(decoder.has_value()) << decoder.error().ToString();
      std::vector<float> streamed;
      while (true) {
        auto n = (*decoder)->Read(streamed, chunk);
        ASSERT_TRUE(n.has_value()) << n.error().ToString();
        if (*n == 0) break;
        ASSERT_LE(*n, chunk);
      }
      EXPECT_EQ((*decoder)->samples_out(), streamed.size());
      EXPECT_EQ(streamed, whole->samples);
      // End of input is sticky.
      auto again = (*decoder)->Read(streamed, chunk);
      ASSERT_TRUE(again.has_value());
      EXPECT_EQ(*again, 0u);
    }
  }
}

TEST_F(AudioDecoderTest, ReadRejectsZeroMaxSamples) {
  auto decoder = AudioDecoder::Open(Media("sine.wav"), Options());
  ASSERT_TRUE(decoder.has_value());
  std::vector<float> out;
  auto n = (*decoder)->Read(out, 0);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(AudioDecoderTest, FollowsSampleRateAndChannelChangesMidStream) {
  auto result = Decode("param_change.aac", 8000);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  const std::vector<float>& s = result->samples;
  // 1 s at 44.1 kHz stereo + 1 s at 22.05 kHz mono, both at 440 Hz, plus
  // the encoder delay and padding of each part (raw ADTS does not trim them).
  // Without a resampler rebuild the second part would play at 880 Hz.
  EXPECT_NEAR(static_cast<double>(s.size()), 16900, 600);
  EXPECT_TRUE(Is440Hz(Slice(s, 1000, 7000), 8000));
  EXPECT_TRUE(Is440Hz(Slice(s, s.size() - 7000, s.size() - 1000), 8000));
}

TEST_F(AudioDecoderTest, AcceptsFormatOptions) {
  AudioDecodeOptions options = Options();
  options.format_options = {{"probesize", "32768"}};
  auto result = DecodeFile(Media("sine.flac"), options);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_NEAR(static_cast<double>(result->samples.size()), 16000, 2);
}

TEST_F(AudioDecoderTest, DecodersWorkConcurrently) {
  std::vector<size_t> sizes(4);
  std::vector<std::thread> threads;
  const std::vector<std::string> paths = {Media("sine.mp3"), Media("sine.flac"), Media("sine.ogg"),
                                          Media("sine.m4a")};
  for (size_t i = 0; i < sizes.size(); ++i) {
    threads.emplace_back([&, i] {
      auto result = DecodeFile(paths[i], Options());
      sizes[i] = result ? result->samples.size() : 0;
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t size : sizes) EXPECT_NEAR(static_cast<double>(size), 16000, 16000 * 0.03);
}

// ---- errors ----

TEST_F(AudioDecoderTest, MissingFileIsNotFound) {
  ExpectError(DecodeFile(Path("no_such_file.mp3"), Options()), ErrorCode::kNotFound,
              "no_such_file.mp3", "does not exist");
  ExpectError(DecodeFile("file:" + Path("no_such_file.ogg"), Options()), ErrorCode::kNotFound,
              "no_such_file.ogg", "does not exist");
}

TEST_F(AudioDecoderTest, DirectoryIsRejected) {
  ExpectError(Decode("a_directory.wav"), ErrorCode::kInvalidArgument, "a_directory.wav",
              "directory");
}

TEST_F(AudioDecoderTest, EmptyFileIsCorrupt) {
  ExpectError(Decode("empty.wav"), ErrorCode::kCorruptData, "empty.wav", "empty");
}

TEST_F(AudioDecoderTest, TextFileIsNotMedia) {
  ExpectError(Decode("not_media.mp3"), ErrorCode::kCorruptData, "not_media.mp3",
              "not a recognised media file");
}

TEST_F(AudioDecoderTest, VideoOnlyFileHasNoAudioStream) {
  ExpectError(Decode("video_only.mp4"), ErrorCode::kUnsupported, "video_only.mp4",
              "video_only.mp4 has no audio stream");
}

TEST_F(AudioDecoderTest, UnknownCodecIsUnsupported) {
  ExpectError(Decode("unknown_codec.wav"), ErrorCode::kUnsupported, "unknown_codec.wav",
              "cannot decode");
}

TEST_F(AudioDecoderTest, FileWithoutSamplesIsAnError) {
  ExpectError(Decode("no_samples.wav"), ErrorCode::kCorruptData, "no_samples.wav",
              "contains no audio samples");
}

TEST_F(AudioDecoderTest, TruncatedFileDecodesWhatIsThereAndCountsDamage) {
  for (const char* name : {"truncated_sine.mp3", "truncated_sine.flac"}) {
    SCOPED_TRACE(name);
    auto result = Decode(name, 8000);
    ASSERT_TRUE(result.has_value()) << result.error().ToString();
    EXPECT_GE(result->damaged_packets, 1u);
    // Part of the 2 s survives (for FLAC less than half: the header holds padding).
    EXPECT_GT(result->samples.size(), 8000u * 6 / 10);
    EXPECT_LT(result->samples.size(), 16000u * 3 / 4);
    EXPECT_TRUE(Is440Hz(result->samples, 8000));
  }
}

TEST_F(AudioDecoderTest, TruncatedFileIsAnErrorWhenStrict) {
  for (const char* name : {"truncated_sine.mp3", "truncated_sine.flac"}) {
    SCOPED_TRACE(name);
    auto result = Decode(name, 8000, /*strict=*/true);
    ExpectError(result, ErrorCode::kCorruptData, name, "at about ");
    if (!result) {
      const std::string& message = result.error().message();
      EXPECT_TRUE(message.find("truncated") != std::string::npos ||
                  message.find("damaged") != std::string::npos)
          << message;
    }
  }
}

TEST_F(AudioDecoderTest, FileCutInsideItsHeaderIsCorrupt) {
  // The Vorbis setup header fills most of this small file, so half of it ends mid-header.
  ExpectError(Decode("truncated_sine.ogg"), ErrorCode::kCorruptData, "truncated_sine.ogg",
              "header");
}

TEST_F(AudioDecoderTest, GarbageAfterHeaderIsSkippedOrReported) {
  for (const char* name : {"garbage_sine.flac", "garbage_sine.mp3"}) {
    SCOPED_TRACE(name);
    // Lenient: either some audio with damage counted, or a clear error.
    auto lenient = Decode(name, 8000);
    if (lenient) {
      EXPECT_GE(lenient->damaged_packets, 1u);
      EXPECT_LT(lenient->samples.size(), 16000u * 3 / 4);
    } else {
      EXPECT_EQ(lenient.error().code(), ErrorCode::kCorruptData) << lenient.error().ToString();
      EXPECT_NE(lenient.error().message().find(name), std::string::npos);
    }
    ExpectError(Decode(name, 8000, /*strict=*/true), ErrorCode::kCorruptData, name, "");
  }
}

TEST_F(AudioDecoderTest, InvalidOptionsAreRejected) {
  ExpectError(Decode("sine.wav", 0), ErrorCode::kInvalidArgument, "sine.wav", "sample rate");
  ExpectError(Decode("sine.wav", 1'000'000), ErrorCode::kInvalidArgument, "sine.wav",
              "sample rate");
  AudioDecodeOptions options = Options();
  options.format_options = {{"no_such_option", "1"}};
  ExpectError(DecodeFile(Media("sine.wav"), options), ErrorCode::kInvalidArgument, "sine.wav",
              "no_such_option");
  options.format_options = {{"probesize", "lots"}};
  ExpectError(DecodeFile(Media("sine.wav"), options), ErrorCode::kInvalidArgument, "sine.wav",
              "option");
  auto empty = DecodeFile("", Options());
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(AudioDecoderTest, UnreachableUrlIsUnavailableAndHidesCredentials) {
  // Port 1 on the loopback interface refuses connections at once.
  auto result = DecodeFile("http://user:secret@127.0.0.1:1/live.mp3?token=abc", Options());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable) << result.error().ToString();
  const std::string& message = result.error().message();
  EXPECT_NE(message.find("http://127.0.0.1:1/live.mp3"), std::string::npos) << message;
  EXPECT_EQ(message.find("secret"), std::string::npos) << message;
  EXPECT_EQ(message.find("token"), std::string::npos) << message;
}

TEST_F(AudioDecoderTest, UnknownProtocolIsUnsupported) {
  auto result = DecodeFile("nosuchproto://host/a.mp3", Options());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kUnsupported) << result.error().ToString();
  EXPECT_NE(result.error().message().find("a.mp3"), std::string::npos);
}

// A one-connection HTTP server on 127.0.0.1 that answers with `prefix` (the
// start of a response) and then sends nothing more until it is destroyed:
// a live source that stalls.
class StallingServer {
 public:
  explicit StallingServer(std::string prefix) : prefix_(std::move(prefix)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_, 4) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~StallingServer() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
    ::shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/live.wav"; }

 private:
  void Serve() {
    int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0) return;
    char request[4096];
    (void)::recv(client, request, sizeof(request), 0);
    size_t sent = 0;
    while (sent < prefix_.size()) {
      ssize_t n = ::send(client, prefix_.data() + sent, prefix_.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(30), [&] { return done_; });
    ::close(client);
  }

  std::string prefix_;
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool done_ = false;
};

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string bytes(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

TEST_F(AudioDecoderTest, BackgroundInputGivesTheSameSamples) {
  auto whole = Decode("sine.mp3", 8000);
  ASSERT_TRUE(whole.has_value()) << whole.error().ToString();
  AudioDecodeOptions options = Options(8000);
  options.background_input = true;
  std::atomic<int> notified{0};
  options.on_input = [&] { notified.fetch_add(1); };
  auto decoder = AudioDecoder::Open(Media("sine.mp3"), options);
  ASSERT_TRUE(decoder.has_value()) << decoder.error().ToString();
  std::vector<float> blocking;
  for (int i = 0; i < 100000; ++i) {
    auto n = (*decoder)->Read(blocking, 1000);
    ASSERT_TRUE(n.has_value()) << n.error().ToString();
    if (*n == 0) break;
  }
  EXPECT_TRUE((*decoder)->finished());
  EXPECT_EQ(blocking, whole->samples);
  EXPECT_GT(notified.load(), 0);

  // ReadAvailable never waits: polled until the end, it also gets everything.
  auto polled_decoder = AudioDecoder::Open(Media("sine.mp3"), options);
  ASSERT_TRUE(polled_decoder.has_value());
  std::vector<float> polled;
  for (int i = 0; i < 1000000 && !(*polled_decoder)->finished(); ++i) {
    auto n = (*polled_decoder)->ReadAvailable(polled, 1000);
    ASSERT_TRUE(n.has_value()) << n.error().ToString();
    if (*n == 0 && !(*polled_decoder)->finished()) std::this_thread::yield();
  }
  EXPECT_TRUE((*polled_decoder)->finished());
  EXPECT_EQ(polled, whole->samples);
}

TEST_F(AudioDecoderTest, ReadAvailableNeedsBackgroundInput) {
  auto decoder = AudioDecoder::Open(Media("sine.wav"), Options());
  ASSERT_TRUE(decoder.has_value());
  std::vector<float> out;
  auto n = (*decoder)->ReadAvailable(out, 100);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(AudioDecoderTest, StalledLiveInputIsUnavailableAfterTheTimeout) {
  // Headers and the first part of a WAV file, then nothing: the decoder
  // returns the audio it got, then reports the stall.
  std::string wav = ReadFileBytes(Media("sine.wav"));
  ASSERT_GT(wav.size(), 40000u);
  for (bool background : {false, true}) {
    SCOPED_TRACE(background);
    StallingServer one("HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n\r\n" + wav.substr(0, 40000));
    AudioDecodeOptions options = Options(8000);
    options.stall_timeout_s = 0.5;
    options.background_input = background;
    auto decoder = AudioDecoder::Open(one.url(), options);
    ASSERT_TRUE(decoder.has_value()) << decoder.error().ToString();
    std::vector<float> pcm;
    Result<size_t> n = size_t{0};
    for (int i = 0; i < 10000; ++i) {
      n = (*decoder)->Read(pcm, 800);
      if (!n || *n == 0) break;
    }
    ASSERT_FALSE(n.has_value()) << "expected a stall error after " << pcm.size() << " samples";
    EXPECT_EQ(n.error().code(), ErrorCode::kUnavailable) << n.error().ToString();
    EXPECT_NE(n.error().message().find("stalled"), std::string::npos) << n.error().message();
    EXPECT_GT(pcm.size(), 1000u);  // what arrived before the stall was decoded
  }
}

TEST_F(AudioDecoderTest, CancelAbandonsABlockingOpen) {
  StallingServer server("");  // accepts, never answers
  std::atomic<bool> cancel{false};
  AudioDecodeOptions options = Options(8000);
  options.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel.store(true);
  });
  auto decoder = AudioDecoder::Open(server.url(), options);
  canceller.join();
  ASSERT_FALSE(decoder.has_value());
  EXPECT_EQ(decoder.error().code(), ErrorCode::kCancelled) << decoder.error().ToString();
}

}  // namespace
}  // namespace earshot::media
