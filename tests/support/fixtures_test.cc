// The end-to-end fixtures work together: a real nginx-rtmp, a real ffmpeg
// publisher, media made with ffmpeg + espeak-ng, probed with ffprobe. Also
// the process and playlist helpers underneath them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "support/ffmpeg_publisher.h"
#include "support/nginx_rtmp.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/test_media.h"

namespace earshot::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kVoiceText =
    "Hello chat, welcome back to the stream. Today we are playing the campaign again, "
    "let me know what you think in the comments.";

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// "audio:aac video:h264"
std::string Describe(const std::vector<ProbedStream>& streams) {
  std::string text;
  for (const ProbedStream& stream : streams) {
    if (!text.empty()) text += ' ';
    text += stream.codec_type + ":" + stream.codec_name;
  }
  return text;
}

bool HasStream(const std::vector<ProbedStream>& streams, std::string_view type,
               std::string_view codec) {
  return std::any_of(streams.begin(), streams.end(), [&](const ProbedStream& stream) {
    return stream.codec_type == type && stream.codec_name == codec;
  });
}

// A process that is gone or a zombie waiting for its new parent to reap it.
bool ProcessGone(pid_t pid) {
  const std::string stat = ReadTextFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const std::size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

// ---- process helpers ----

TEST(ProcessTest, RunCommandCapturesBothStreamsAndTheExitCode) {
  auto result = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, seconds(10));
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_FALSE(result->timed_out);
  ASSERT_TRUE(result->status.exited());
  EXPECT_EQ(result->status.code(), 3);
  EXPECT_EQ(result->stdout_text, "out\n");
  EXPECT_EQ(result->stderr_text, "err\n");
  EXPECT_NE(result->Describe().find("exit code 3"), std::string::npos) << result->Describe();
  EXPECT_NE(result->Describe().find("err"), std::string::npos) << result->Describe();
}

TEST(ProcessTest, RunCommandKillsAtTheDeadlineWithItsChildren) {
  const auto start = Clock::now();
  // The background sleep holds stdout open: the deadline, not EOF, ends this.
  auto result = RunCommand({"sh", "-c", "sleep 30 & echo $!; sleep 30"}, milliseconds(500));
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_TRUE(result->timed_out);
  EXPECT_FALSE(result->ok());
  EXPECT_LT(SecondsSince(start), 5.0);
  const pid_t background = static_cast<pid_t>(std::stol(result->stdout_text));
  const auto deadline = Clock::now() + seconds(5);
  while (!ProcessGone(background) && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(ProcessGone(background)) << "the group of a timed-out command must be killed";
}

TEST(ProcessTest, SpawnOfAMissingProgramFailsWithNotFound) {
  SpawnOptions options;
  options.argv = {"earshot-no-such-program-xyz"};
  auto child = ChildProcess::Spawn(options);
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().code(), ErrorCode::kNotFound);

  options.argv = {"/nonexistent/earshot-program"};
  child = ChildProcess::Spawn(options);
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().code(), ErrorCode::kNotFound) << child.error().ToString();
}

TEST(ProcessTest, StopEscalatesToSigkillAndReaps) {
  auto dir = ScopedTempDir::Create("earshot-process-test");
  ASSERT_TRUE(dir) << dir.error().ToString();
  SpawnOptions options;
  // Ignores SIGTERM: only the SIGKILL after the grace period ends it.
  options.argv = {"sh", "-c", "trap '' TERM; echo started; while :; do sleep 0.05; done"};
  options.output_file = dir->path() / "out.log";
  auto child = ChildProcess::Spawn(options);
  ASSERT_TRUE(child) << child.error().ToString();
  const auto ready_by = Clock::now() + seconds(5);
  while (ReadTextFile(options.output_file).empty() && Clock::now() < ready_by) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(child->running());
  const auto start = Clock::now();
  const ExitStatus status = child->Stop(SIGTERM, milliseconds(300));
  EXPECT_TRUE(status.signaled()) << status.ToString();
  EXPECT_EQ(status.signal(), SIGKILL) << status.ToString();
  EXPECT_LT(SecondsSince(start), 5.0);
  EXPECT_FALSE(child->running());
  EXPECT_TRUE(ProcessGone(child->pid()));
  EXPECT_EQ(ReadTextFile(options.output_file), "started\n");
}

TEST(ProcessTest, TailLinesKeepsTheLastLines) {
  EXPECT_EQ(TailLines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(TailLines("a\nb\nc", 5), "a\nb\nc");
  EXPECT_EQ(TailLines("", 3), "");
  EXPECT_EQ(JoinCommand({"ffmpeg", "-i", "a b.flac", "it's"}), "ffmpeg -i 'a b.flac' 'it'\\''s'");
}

TEST(PortsTest, FreePortIsFreeAndHttpGetReportsARefusal) {
  auto port = FreePort();
  ASSERT_TRUE(port) << port.error().ToString();
  EXPECT_GT(*port, 0);
  EXPECT_FALSE(WaitForTcpPort(*port, milliseconds(100)));
  auto response = HttpGet(*port, "/", milliseconds(500));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code(), ErrorCode::kUnavailable);
}

TEST(HlsPlaylistTest, ParsesNginxRtmpPlaylists) {
  const HlsPlaylist playlist = ParseHlsPlaylist(
      "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:11\n#EXT-X-TARGETDURATION:1\n"
      "#EXT-X-DISCONTINUITY\n#EXTINF:1.021,\ntest-11.ts\n#EXTINF:0.534,\r\ntest-12.ts\r\n");
  EXPECT_EQ(playlist.media_sequence, 11);
  ASSERT_EQ(playlist.segments.size(), 2u);
  EXPECT_EQ(playlist.segments[0], "test-11.ts");
  EXPECT_EQ(playlist.segments[1], "test-12.ts");
  EXPECT_DOUBLE_EQ(playlist.durations_s[1], 0.534);
  EXPECT_EQ(playlist.last_sequence(), 12);
  EXPECT_FALSE(playlist.ended);
  EXPECT_EQ(ParseHlsPlaylist("#EXTM3U\n").last_sequence(), -1);
}

// ---- media ----

TEST(TestMediaTest, MusicUnderVoiceIsCachedAndDeterministic) {
  auto music = WesnothMusic("battle");
  ASSERT_TRUE(music) << music.error().ToString();
  auto dir_a = ScopedTempDir::Create("earshot-media-a");
  auto dir_b = ScopedTempDir::Create("earshot-media-b");
  ASSERT_TRUE(dir_a && dir_b);

  auto first = MakeMusicUnderVoice(dir_a->path(), *music, 30, 4, kVoiceText, -3);
  ASSERT_TRUE(first) << first.error().ToString();
  const auto made_at = std::filesystem::last_write_time(*first);
  auto again = MakeMusicUnderVoice(dir_a->path(), *music, 30, 4, kVoiceText, -3);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(std::filesystem::last_write_time(*again), made_at) << "should come from the cache";
  auto other = MakeMusicUnderVoice(dir_b->path(), *music, 30, 4, kVoiceText, -3);
  ASSERT_TRUE(other) << other.error().ToString();
  EXPECT_EQ(ReadTextFile(*other), ReadTextFile(*first)) << "same parameters, same bytes";
  auto louder = MakeMusicUnderVoice(dir_a->path(), *music, 30, 4, kVoiceText, 0);
  ASSERT_TRUE(louder) << louder.error().ToString();
  EXPECT_NE(*louder, *first);

  auto duration = ProbeDurationSeconds(*first);
  ASSERT_TRUE(duration) << duration.error().ToString();
  EXPECT_NEAR(*duration, 4.0, 0.05);
  // Nothing half-written is left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir_a->path())) {
    EXPECT_EQ(entry.path().string().find(".partial"), std::string::npos) << entry.path();
  }

  auto silence = MakeSilenceThenMusic(dir_a->path(), 2, *music, 10, 3);
  ASSERT_TRUE(silence) << silence.error().ToString();
  duration = ProbeDurationSeconds(*silence);
  ASSERT_TRUE(duration) << duration.error().ToString();
  EXPECT_NEAR(*duration, 5.0, 0.05);

  auto voice = MakeVoice(dir_a->path(), kVoiceText, 3);
  ASSERT_TRUE(voice) << voice.error().ToString();
  auto streams = ProbeStreams(voice->string(), seconds(20));
  ASSERT_TRUE(streams) << streams.error().ToString();
  EXPECT_TRUE(HasStream(*streams, "audio", "flac")) << Describe(*streams);

  auto too_long = MakeMusicUnderVoice(dir_a->path(), *music, 10000, 4, kVoiceText, -3);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), ErrorCode::kInvalidArgument);
}

// ---- nginx-rtmp ----

TEST(NginxRtmpTest, MissingModuleNamesThePackagesToInstall) {
  NginxRtmpOptions options;
  options.rtmp_module = "/nonexistent/ngx_rtmp_module.so";
  auto nginx = NginxRtmp::Start(options);
  ASSERT_FALSE(nginx);
  EXPECT_EQ(nginx.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(nginx.error().message().find("apt-get install nginx libnginx-mod-rtmp"),
            std::string::npos)
      << nginx.error().ToString();
}

// The hooks layout starts without its hook server (only publishing needs it),
// and keeps control and stat.
TEST(NginxRtmpTest, HooksLayoutStartsAndServesStat) {
  auto hook_port = FreePort();
  ASSERT_TRUE(hook_port) << hook_port.error().ToString();
  NginxRtmpOptions options;
  options.hook_port = *hook_port;
  auto nginx = NginxRtmp::Start(options);
  ASSERT_TRUE(nginx) << nginx.error().ToString();
  NginxRtmp& server = **nginx;
  const std::string config = ReadTextFile(server.config_path());
  for (const char* expected : {"application ingest", "application hls", "on_publish ",
                               "location /ch/", "rtmp_control all", "rtmp_stat all"}) {
    EXPECT_NE(config.find(expected), std::string::npos) << expected;
  }
  EXPECT_NE(config.find("127.0.0.1:" + std::to_string(*hook_port) + "/on_publish"),
            std::string::npos);
  EXPECT_EQ(server.hls_url("hls", "ch1"), server.http_url("/ch/ch1.m3u8"));
  EXPECT_EQ(server.hls_dir("hls"), server.run_dir() / "ch");
  auto publishing = server.IsPublishing("live", "nobody");
  ASSERT_TRUE(publishing) << publishing.error().ToString();
  EXPECT_FALSE(*publishing);
  const std::filesystem::path run_dir = server.run_dir();
  auto stopped = server.Stop();
  EXPECT_TRUE(stopped) << stopped.error().ToString();
  EXPECT_FALSE(server.running());
  EXPECT_FALSE(WaitForTcpPort(server.http_port(), milliseconds(100)));
  nginx->reset();
  if (!KeepTestDirs()) {
    EXPECT_FALSE(std::filesystem::exists(run_dir));
  }
}

// Everything together: nginx, a publisher with music under a voice, HLS with
// segments, RTMP and HLS readable by ffprobe; then a dropped publisher, nginx
// unharmed, and a new publish to the same name.
TEST(FixturesE2eTest, PublishProbeDropAndRepublish) {
  const auto test_start = Clock::now();
  auto media_dir = ScopedTempDir::Create("earshot-media");
  ASSERT_TRUE(media_dir) << media_dir.error().ToString();
  auto music = WesnothMusic("battle");
  ASSERT_TRUE(music) << music.error().ToString();
  auto media = MakeMusicUnderVoice(media_dir->path(), *music, 30, 8, kVoiceText, -3);
  ASSERT_TRUE(media) << media.error().ToString();
  std::printf("[timing] media made: %.2f s\n", SecondsSince(test_start));

  auto phase = Clock::now();
  auto started = NginxRtmp::Start();
  ASSERT_TRUE(started) << started.error().ToString();
  NginxRtmp& nginx = **started;
  std::printf("[timing] nginx up: %.2f s (rtmp %u, http %u)\n", SecondsSince(phase),
              nginx.rtmp_port(), nginx.http_port());
  const std::string name = "fixture";
  const std::string rtmp = nginx.rtmp_url("live", name);
  EXPECT_EQ(nginx.hls_url("live", name), nginx.http_url("/hls/fixture.m3u8"));

  // The 8 s clip, looped so that the probes below never race its end on a
  // loaded machine; Kill() ends it.
  FfmpegPublisherOptions options;
  options.input = *media;
  options.url = rtmp;
  options.loop = true;
  phase = Clock::now();
  auto first = FfmpegPublisher::Start(options);
  ASSERT_TRUE(first) << first.error().ToString();
  FfmpegPublisher& publisher = **first;
  const auto context = [&] {
    return "\n--- ffmpeg log:\n" + publisher.log_text() + "\n--- nginx error log:\n" +
           nginx.ErrorLogTail(20);
  };

  auto playlist = nginx.WaitForHlsSegments("live", name, 2, seconds(30));
  ASSERT_TRUE(playlist) << playlist.error().ToString() << context();
  std::printf("[timing] HLS with %zu segments: %.2f s after publish\n", playlist->segments.size(),
              SecondsSince(phase));
  EXPECT_TRUE(std::filesystem::exists(nginx.hls_dir("live") / playlist->segments.front()));
  auto publishing = nginx.WaitForPublishing("live", name, true, seconds(10));
  EXPECT_TRUE(publishing) << publishing.error().ToString();

  phase = Clock::now();
  auto rtmp_streams = ProbeStreams(rtmp, seconds(30));
  ASSERT_TRUE(rtmp_streams) << rtmp_streams.error().ToString() << context();
  std::printf("[timing] ffprobe RTMP: %.2f s (%s)\n", SecondsSince(phase),
              Describe(*rtmp_streams).c_str());
  EXPECT_TRUE(HasStream(*rtmp_streams, "audio", "aac")) << Describe(*rtmp_streams);
  if (FlvVideoEncoder() == "libx264") {
    EXPECT_TRUE(HasStream(*rtmp_streams, "video", "h264")) << Describe(*rtmp_streams);
  }

  phase = Clock::now();
  auto hls_streams = ProbeStreams(nginx.hls_url("live", name), seconds(30));
  ASSERT_TRUE(hls_streams) << hls_streams.error().ToString() << context();
  std::printf("[timing] ffprobe HLS: %.2f s (%s)\n", SecondsSince(phase),
              Describe(*hls_streams).c_str());
  EXPECT_TRUE(HasStream(*hls_streams, "audio", "aac")) << Describe(*hls_streams);
  ASSERT_TRUE(publisher.running()) << context();

  // A dropped connection: nginx notices, keeps running, frees the name.
  phase = Clock::now();
  const ExitStatus killed = publisher.Kill();
  EXPECT_TRUE(killed.signaled() && killed.signal() == SIGKILL) << killed.ToString();
  auto gone = nginx.WaitForPublishing("live", name, false, seconds(15));
  ASSERT_TRUE(gone) << gone.error().ToString() << context();
  std::printf("[timing] publisher gone from /stat: %.2f s after SIGKILL\n", SecondsSince(phase));
  ASSERT_TRUE(nginx.running()) << nginx.ErrorLogTail();
  auto after_drop = nginx.WaitForHlsSegments("live", name, 1, seconds(5));
  ASSERT_TRUE(after_drop) << after_drop.error().ToString();
  const int64_t last_before = after_drop->last_sequence();

  // Publish again to the same name: new segments follow the old ones.
  phase = Clock::now();
  auto second = FfmpegPublisher::Start(options);
  ASSERT_TRUE(second) << second.error().ToString();
  FfmpegPublisher& republisher = **second;
  auto fresh = nginx.WaitForHls(
      "live", name,
      [last_before](const HlsPlaylist& list) { return list.last_sequence() > last_before; },
      seconds(30));
  ASSERT_TRUE(fresh) << fresh.error().ToString() << "\n--- ffmpeg log:\n" << republisher.log_text();
  std::printf("[timing] republished, new HLS segment: %.2f s\n", SecondsSince(phase));
  rtmp_streams = ProbeStreams(rtmp, seconds(30));
  ASSERT_TRUE(rtmp_streams) << rtmp_streams.error().ToString() << "\n--- ffmpeg log:\n"
                            << republisher.log_text();
  EXPECT_TRUE(HasStream(*rtmp_streams, "audio", "aac")) << Describe(*rtmp_streams);

  // A graceful stop: ffmpeg ends the stream itself on SIGINT.
  const ExitStatus stopped = republisher.Stop();
  EXPECT_TRUE(stopped.exited()) << stopped.ToString() << "\n" << republisher.log_text();
  EXPECT_TRUE(republisher.exit_status().has_value());

  // A publish that ends by itself (burst, audio only): exit code 0.
  phase = Clock::now();
  FfmpegPublisherOptions burst = options;
  burst.loop = false;
  burst.realtime = false;
  burst.video = false;
  auto third = FfmpegPublisher::Start(burst);
  ASSERT_TRUE(third) << third.error().ToString();
  auto ended = (*third)->Wait(seconds(30));
  ASSERT_TRUE(ended) << "burst publish still running\n" << (*third)->log_text();
  EXPECT_TRUE(ended->success()) << ended->ToString() << "\n" << (*third)->log_text();
  std::printf("[timing] burst publish of 8 s: %.2f s\n", SecondsSince(phase));

  EXPECT_TRUE(nginx.running()) << nginx.ErrorLogTail();
  auto stop = nginx.Stop();
  EXPECT_TRUE(stop) << stop.error().ToString();
  std::printf("[timing] whole test: %.2f s\n", SecondsSince(test_start));
}

}  // namespace
}  // namespace earshot::testing
