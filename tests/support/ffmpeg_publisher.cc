#include "support/ffmpeg_publisher.h"

#include <signal.h>

#include <fstream>

namespace earshot::testing {

const std::string& FlvVideoEncoder() {
  static const std::string encoder = [] {
    auto listed = RunCommand({"ffmpeg", "-hide_banner", "-encoders"}, std::chrono::seconds(20));
    if (listed && listed->ok() && listed->stdout_text.find(" libx264 ") != std::string::npos) {
      return std::string("libx264");
    }
    return std::string("flv");
  }();
  return encoder;
}

Result<std::unique_ptr<FfmpegPublisher>> FfmpegPublisher::Start(FfmpegPublisherOptions options) {
  if (options.input.empty() || options.url.empty() || options.format.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "ffmpeg publisher: input, url and format are required");
  }
  std::error_code ec;
  if (!std::filesystem::exists(options.input, ec)) {
    return MakeError(ErrorCode::kNotFound,
                     "ffmpeg publisher: input " + options.input.string() + " does not exist");
  }
  auto dir = ScopedTempDir::Create("earshot-ffmpeg");
  if (!dir) return std::unexpected(dir.error().Wrap("ffmpeg publisher log folder"));

  std::vector<std::string> argv = {"ffmpeg",   "-hide_banner", "-nostdin",
                                   "-nostats", "-loglevel",    "info"};
  if (options.realtime) argv.push_back("-re");
  if (options.loop) argv.insert(argv.end(), {"-stream_loop", "-1"});
  argv.insert(argv.end(), {"-i", options.input.string()});
  const bool own_video = options.video && options.video_from_input;
  if (options.video && !own_video) {
    if (options.realtime) argv.push_back("-re");
    argv.insert(argv.end(), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15"});
  }
  argv.insert(argv.end(), {"-map", "0:a:0"});
  if (own_video) {
    const std::string& encoder = FlvVideoEncoder();
    argv.insert(argv.end(), {"-map", "0:v:0", "-c:v", encoder, "-threads", "1", "-g", "50",
                             "-keyint_min", "50", "-pix_fmt", "yuv420p", "-b:v", "800k"});
    if (encoder == "libx264") {
      argv.insert(argv.end(),
                  {"-preset", "ultrafast", "-tune", "zerolatency", "-sc_threshold", "0"});
    }
  } else if (options.video) {
    const std::string& encoder = FlvVideoEncoder();
    argv.insert(argv.end(), {"-map", "1:v:0", "-c:v", encoder, "-threads", "1", "-g", "15",
                             "-keyint_min", "15", "-pix_fmt", "yuv420p", "-b:v", "150k"});
    if (encoder == "libx264") {
      argv.insert(argv.end(),
                  {"-preset", "ultrafast", "-tune", "zerolatency", "-sc_threshold", "0"});
    }
    argv.push_back("-shortest");  // the test picture never ends; the audio does
  }
  if (options.copy_audio) {
    argv.insert(argv.end(), {"-c:a", "copy"});
  } else {
    argv.insert(argv.end(),
                {"-c:a", "aac", "-b:a", std::to_string(options.audio_bitrate_kbps) + "k", "-ar",
                 "44100", "-ac", "2"});
  }
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  argv.insert(argv.end(), {"-f", options.format});
  if (options.format == "flv") argv.insert(argv.end(), {"-flvflags", "no_duration_filesize"});
  argv.push_back(options.url);

  const std::string command_line = JoinCommand(argv);
  const std::filesystem::path log = dir->path() / "ffmpeg.log";
  {
    std::ofstream out(log);
    out << "$ " << command_line << "\n";
  }
  SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.output_file = log;
  auto child = ChildProcess::Spawn(spawn);
  if (!child) return std::unexpected(child.error().Wrap("starting ffmpeg"));
  return std::unique_ptr<FfmpegPublisher>(
      new FfmpegPublisher(std::move(options), std::move(*dir), std::move(*child), command_line));
}

FfmpegPublisher::~FfmpegPublisher() { process_.Kill(); }

ExitStatus FfmpegPublisher::Stop() { return process_.Stop(SIGINT, options_.stop_timeout); }

ExitStatus FfmpegPublisher::Kill() { return process_.Kill(); }

bool FfmpegPublisher::running() { return process_.running(); }

std::optional<ExitStatus> FfmpegPublisher::Wait(std::chrono::milliseconds timeout) {
  return process_.Wait(timeout);
}

std::optional<ExitStatus> FfmpegPublisher::exit_status() const { return process_.exit_status(); }

std::string FfmpegPublisher::log_text(std::size_t max_lines) const {
  return TailLines(ReadTextFile(log_path()), max_lines);
}

}  // namespace earshot::testing
