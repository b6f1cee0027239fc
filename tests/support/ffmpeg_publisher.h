// A real ffmpeg publishing a file to an RTMP server, as a streamer's encoder
// would: in real time (-re), AAC audio, and by default a small H.264 test
// picture so that the stream (and its HLS) has video and audio like a real
// one. Other outputs take another container: MPEG-TS to SRT or UDP, e.g.
//   options.format = "mpegts";
//   options.url = "srt://127.0.0.1:PORT?mode=listener";  // or udp://127.0.0.1:PORT?pkt_size=1316
//
//   FfmpegPublisherOptions options;
//   options.input = media;                          // e.g. from test_media.h
//   options.url = nginx->rtmp_url("live", "stream");
//   auto publisher = FfmpegPublisher::Start(options);
//   ...
//   (*publisher)->Kill();                           // a dropped connection
//
// The ffmpeg command line and its output go to ffmpeg.log in a temp folder of
// its own (removed at destruction unless EARSHOT_KEEP_TEST_DIRS=1); log_text()
// is meant for failure messages.
//
// Thread safety: not thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "support/process.h"

namespace earshot::testing {

struct FfmpegPublisherOptions {
  // Anything ffmpeg reads that has an audio stream (its first is published).
  std::filesystem::path input;
  // Where to publish, e.g. rtmp://127.0.0.1:PORT/live/NAME.
  std::string url;
  // The output container (ffmpeg's -f): "flv" for RTMP, "mpegts" for SRT and
  // UDP. FLV-only options (-flvflags) are given only with "flv".
  std::string format = "flv";
  // true: the input's audio is copied as it is (-c:a copy; audio_bitrate_kbps
  // is not used), e.g. to relay an MPEG-TS whose audio parameters change
  // mid-stream. false: encoded as AAC, 44.1 kHz stereo.
  bool copy_audio = false;
  // -re: read the input at its own pace, like a live encoder. Off: as fast as
  // ffmpeg can (the server then sees a burst).
  bool realtime = true;
  // -stream_loop -1: publish the input over and over until stopped.
  bool loop = false;
  // Adds video: lavfi testsrc2, 160x120 at 15 fps, one keyframe a second
  // (HLS fragments are cut on keyframes), libx264 ultrafast, 1 thread. Without
  // libx264 in ffmpeg: FLV1 (Sorenson), which nginx-rtmp leaves out of HLS.
  bool video = true;
  // With `video`: publish the input's own video (first video stream, same
  // encoder, 2 s GOPs at the input's size, 800 kbit/s) instead of testsrc2.
  bool video_from_input = false;
  int audio_bitrate_kbps = 128;
  // Inserted before the output options (e.g. {"-t", "5"}).
  std::vector<std::string> extra_args;
  // Stop(): SIGINT, then this long, then SIGKILL.
  std::chrono::milliseconds stop_timeout{5000};
};

class FfmpegPublisher {
 public:
  // Starts ffmpeg; fails only when it cannot be started (a refused publish
  // shows up later as running() == false and a non-zero exit status).
  static Result<std::unique_ptr<FfmpegPublisher>> Start(FfmpegPublisherOptions options);

  FfmpegPublisher(const FfmpegPublisher&) = delete;
  FfmpegPublisher& operator=(const FfmpegPublisher&) = delete;
  // Kill() when still running; removes the log folder unless kept.
  ~FfmpegPublisher();

  // SIGINT (ffmpeg closes the stream properly), up to stop_timeout, then
  // SIGKILL. ffmpeg exits 255 on SIGINT. Idempotent.
  ExitStatus Stop();
  // SIGKILL: the connection drops without an RTMP goodbye.
  ExitStatus Kill();

  bool running();
  // Waits up to `timeout` for ffmpeg to end on its own (the input ran out).
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);
  // Set once running(), Wait(), Stop() or Kill() has seen the exit.
  std::optional<ExitStatus> exit_status() const;

  pid_t pid() const { return process_.pid(); }
  const std::string& command_line() const { return command_line_; }
  std::filesystem::path log_path() const { return dir_.path() / "ffmpeg.log"; }
  // ffmpeg's output so far (its last `max_lines` lines).
  std::string log_text(std::size_t max_lines = 40) const;

 private:
  FfmpegPublisher(FfmpegPublisherOptions options, ScopedTempDir dir, ChildProcess process,
                  std::string command_line)
      : options_(std::move(options)),
        dir_(std::move(dir)),
        process_(std::move(process)),
        command_line_(std::move(command_line)) {}

  FfmpegPublisherOptions options_;
  ScopedTempDir dir_;
  ChildProcess process_;
  std::string command_line_;
};

// The video encoder FfmpegPublisher uses: "libx264" when the installed ffmpeg
// has it, else "flv" (asked once per process).
const std::string& FlvVideoEncoder();

}  // namespace earshot::testing
