#include "support/test_media.h"

#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>
#include <system_error>

#include "support/process.h"

namespace earshot::testing {
namespace {

using std::chrono::seconds;

constexpr std::string_view kWesnothMusicDir = "/usr/share/games/wesnoth/1.16/data/core/music";
constexpr seconds kToolTimeout(120);

// Audio format of everything made here.
constexpr std::string_view kFormat =
    "aformat=sample_fmts=fltp:sample_rates=44100:channel_layouts=stereo";

std::string Seconds(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", value);
  return text;
}

uint64_t Fnv1a(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// "prefix-<16 hex digits of the key's hash>.flac"
std::string CacheName(std::string_view prefix, std::string_view key) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(Fnv1a(key)));
  return std::string(prefix) + "-" + hex + ".flac";
}

// A name in `dir` for work in progress, unique across processes and threads.
std::filesystem::path PartialName(const std::filesystem::path& final_path,
                                  std::string_view extension) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return final_path.parent_path() /
         (final_path.stem().string() + ".partial-" + std::to_string(::getpid()) + "-" +
          std::to_string(random() % 1000000000) + std::string(extension));
}

Status CheckTool(std::string_view name, std::string_view package) {
  if (!FindExecutable(name)) {
    return MakeError(
        ErrorCode::kFailedPrecondition,
        std::string(name) + " is not installed: apt-get install " + std::string(package));
  }
  return Ok();
}

Status Run(const std::vector<std::string>& argv) {
  auto result = RunCommand(argv, kToolTimeout);
  if (!result) return std::unexpected(result.error());
  if (!result->ok()) return MakeError(ErrorCode::kInternal, result->Describe());
  return Ok();
}

std::string MusicKey(const std::filesystem::path& music) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(music, ec);
  return music.string() + "#" + std::to_string(ec ? 0 : size);
}

Status CheckMusic(const std::filesystem::path& music, double offset_s, double length_s) {
  auto duration = ProbeDurationSeconds(music);
  if (!duration) return std::unexpected(duration.error().Wrap("music " + music.string()));
  if (*duration + 0.05 < offset_s + length_s) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "music " + music.string() + " lasts " + Seconds(*duration) +
                         " s, shorter than offset " + Seconds(offset_s) + " + " +
                         Seconds(length_s) + " s");
  }
  return Ok();
}

// Removes a file when it goes out of scope (work in progress left by a failure).
class RemoveOnExit {
 public:
  explicit RemoveOnExit(std::filesystem::path path) : path_(std::move(path)) {}
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

 private:
  std::filesystem::path path_;
};

// espeak-ng speaking `text` into a WAV next to `final_path`.
Result<std::filesystem::path> Speak(const std::filesystem::path& final_path,
                                    std::string_view text) {
  if (auto ok = CheckTool("espeak-ng", "espeak-ng"); !ok) return std::unexpected(ok.error());
  if (text.empty()) return MakeError(ErrorCode::kInvalidArgument, "voice text is empty");
  std::filesystem::path wav = PartialName(final_path, ".voice.wav");
  if (auto ok = Run({"espeak-ng", "-v", "en", "-s", "160", "-w", wav.string(), std::string(text)});
      !ok) {
    std::error_code ec;
    std::filesystem::remove(wav, ec);
    return std::unexpected(ok.error().Wrap("espeak-ng"));
  }
  return wav;
}

// Runs ffmpeg writing `partial`, then renames it to `final_path`.
Status EncodeAndPublish(std::vector<std::string> argv, const std::filesystem::path& partial,
                        const std::filesystem::path& final_path) {
  RemoveOnExit cleanup(partial);
  argv.insert(argv.end(), {"-c:a", "flac", "-sample_fmt", "s16", "-ar", "44100", "-ac", "2",
                           "-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
                           "-y", partial.string()});
  if (auto ok = Run(argv); !ok) return std::unexpected(ok.error().Wrap("ffmpeg"));
  std::error_code ec;
  std::filesystem::rename(partial, final_path, ec);
  if (ec) {
    return MakeError(ErrorCode::kIoError, "renaming " + partial.string() + " to " +
                                              final_path.string() + ": " + ec.message());
  }
  return Ok();
}

Status PrepareOutDir(const std::filesystem::path& out_dir) {
  if (auto ok = CheckTool("ffmpeg", "ffmpeg"); !ok) return ok;
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    return MakeError(ErrorCode::kIoError, "creating " + out_dir.string() + ": " + ec.message());
  }
  return Ok();
}

bool Cached(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) > 0;
}

}  // namespace

Result<std::filesystem::path> WesnothMusic(std::string_view name) {
  std::filesystem::path path =
      std::filesystem::path(kWesnothMusicDir) / (std::string(name) + ".ogg");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     path.string() + " is missing: apt-get install wesnoth-1.16-music");
  }
  return path;
}

Result<std::filesystem::path> MakeMusicUnderVoice(const std::filesystem::path& out_dir,
                                                  const std::filesystem::path& music,
                                                  double music_offset_s, double duration_s,
                                                  std::string_view voice_text,
                                                  double voice_gain_db) {
  if (auto ok = PrepareOutDir(out_dir); !ok) return std::unexpected(ok.error());
  const std::string key = "music_under_voice|" + MusicKey(music) + "|" + Seconds(music_offset_s) +
                          "|" + Seconds(duration_s) + "|" + Seconds(voice_gain_db) + "|" +
                          std::string(voice_text);
  const std::filesystem::path path =
      out_dir / CacheName("music_under_voice-" + music.stem().string(), key);
  if (Cached(path)) return path;
  if (auto ok = CheckMusic(music, music_offset_s, duration_s); !ok) {
    return std::unexpected(ok.error());
  }

  auto voice = Speak(path, voice_text);
  if (!voice) return std::unexpected(voice.error());
  RemoveOnExit voice_cleanup(*voice);
  const std::string filter = "[0:a]" + std::string(kFormat) + "[m];[1:a]" + std::string(kFormat) +
                             ",volume=" + Seconds(voice_gain_db) +
                             "dB[v];[m][v]amix=inputs=2:duration=first:dropout_transition=0:"
                             "normalize=0,atrim=duration=" +
                             Seconds(duration_s) + "[out]";
  std::vector<std::string> argv = {"ffmpeg",
                                   "-hide_banner",
                                   "-nostdin",
                                   "-loglevel",
                                   "error",
                                   "-ss",
                                   Seconds(music_offset_s),
                                   "-t",
                                   Seconds(duration_s),
                                   "-i",
                                   music.string(),
                                   "-stream_loop",
                                   "-1",
                                   "-i",
                                   voice->string(),
                                   "-filter_complex",
                                   filter,
                                   "-map",
                                   "[out]"};
  if (auto ok = EncodeAndPublish(std::move(argv), PartialName(path, ".flac"), path); !ok) {
    return std::unexpected(ok.error().Wrap("music under voice " + path.string()));
  }
  return path;
}

Result<std::filesystem::path> MakeSilenceThenMusic(const std::filesystem::path& out_dir,
                                                   double silence_s,
                                                   const std::filesystem::path& music,
                                                   double music_offset_s, double music_s) {
  if (auto ok = PrepareOutDir(out_dir); !ok) return std::unexpected(ok.error());
  const std::string key = "silence_then_music|" + MusicKey(music) + "|" + Seconds(silence_s) + "|" +
                          Seconds(music_offset_s) + "|" + Seconds(music_s);
  const std::filesystem::path path =
      out_dir / CacheName("silence_then_music-" + music.stem().string(), key);
  if (Cached(path)) return path;
  if (auto ok = CheckMusic(music, music_offset_s, music_s); !ok) {
    return std::unexpected(ok.error());
  }
  const std::string filter = "[0:a]" + std::string(kFormat) + "[s];[1:a]" + std::string(kFormat) +
                             "[m];[s][m]concat=n=2:v=0:a=1[out]";
  std::vector<std::string> argv = {"ffmpeg",
                                   "-hide_banner",
                                   "-nostdin",
                                   "-loglevel",
                                   "error",
                                   "-f",
                                   "lavfi",
                                   "-t",
                                   Seconds(silence_s),
                                   "-i",
                                   "anullsrc=r=44100:cl=stereo",
                                   "-ss",
                                   Seconds(music_offset_s),
                                   "-t",
                                   Seconds(music_s),
                                   "-i",
                                   music.string(),
                                   "-filter_complex",
                                   filter,
                                   "-map",
                                   "[out]"};
  if (auto ok = EncodeAndPublish(std::move(argv), PartialName(path, ".flac"), path); !ok) {
    return std::unexpected(ok.error().Wrap("silence then music " + path.string()));
  }
  return path;
}

Result<std::filesystem::path> MakeVoice(const std::filesystem::path& out_dir, std::string_view text,
                                        double duration_s) {
  if (auto ok = PrepareOutDir(out_dir); !ok) return std::unexpected(ok.error());
  const std::string key = "voice|" + Seconds(duration_s) + "|" + std::string(text);
  const std::filesystem::path path = out_dir / CacheName("voice", key);
  if (Cached(path)) return path;
  auto voice = Speak(path, text);
  if (!voice) return std::unexpected(voice.error());
  RemoveOnExit voice_cleanup(*voice);
  const std::string filter =
      "[0:a]" + std::string(kFormat) + ",atrim=duration=" + Seconds(duration_s) + "[out]";
  std::vector<std::string> argv = {
      "ffmpeg", "-hide_banner",  "-nostdin",        "-loglevel", "error", "-stream_loop", "-1",
      "-i",     voice->string(), "-filter_complex", filter,      "-map",  "[out]"};
  if (auto ok = EncodeAndPublish(std::move(argv), PartialName(path, ".flac"), path); !ok) {
    return std::unexpected(ok.error().Wrap("voice " + path.string()));
  }
  return path;
}

Result<std::vector<ProbedStream>> ProbeStreams(std::string_view file_or_url,
                                               std::chrono::milliseconds timeout) {
  if (auto ok = CheckTool("ffprobe", "ffmpeg"); !ok) return std::unexpected(ok.error());
  std::vector<std::string> argv = {"ffprobe", "-hide_banner", "-v", "error"};
  if (file_or_url.find("://") != std::string_view::npos) {
    // Network reads give up (with a message) before the overall timeout kills ffprobe.
    const auto rw_us = std::chrono::duration_cast<std::chrono::microseconds>(timeout * 3 / 4);
    argv.insert(argv.end(), {"-rw_timeout", std::to_string(rw_us.count())});
  }
  argv.insert(argv.end(), {"-show_entries", "stream=index,codec_type,codec_name", "-of", "flat",
                           std::string(file_or_url)});
  auto result = RunCommand(argv, timeout);
  if (!result) return std::unexpected(result.error());
  if (!result->ok()) return MakeError(ErrorCode::kUnavailable, result->Describe());

  // Lines like: streams.stream.0.codec_type="audio" (programs.* repeat them).
  std::map<int, ProbedStream> streams;
  std::istringstream in(result->stdout_text);
  std::string line;
  constexpr std::string_view kPrefix = "streams.stream.";
  while (std::getline(in, line)) {
    if (!line.starts_with(kPrefix)) continue;
    int index = 0;
    const char* first = line.data() + kPrefix.size();
    const auto [end, error] = std::from_chars(first, line.data() + line.size(), index);
    if (error != std::errc() || *end != '.') continue;
    const std::string_view rest(end + 1);
    const std::size_t equals = rest.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string_view field = rest.substr(0, equals);
    std::string value(rest.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    ProbedStream& stream = streams[index];
    stream.index = index;
    if (field == "codec_type") stream.codec_type = value;
    if (field == "codec_name") stream.codec_name = value;
  }
  if (streams.empty()) {
    return MakeError(
        ErrorCode::kUnavailable,
        "ffprobe found no stream in " + std::string(file_or_url) + ": " + result->Describe());
  }
  std::vector<ProbedStream> list;
  for (auto& [index, stream] : streams) list.push_back(std::move(stream));
  return list;
}

Result<double> ProbeDurationSeconds(const std::filesystem::path& file,
                                    std::chrono::milliseconds timeout) {
  if (auto ok = CheckTool("ffprobe", "ffmpeg"); !ok) return std::unexpected(ok.error());
  auto result = RunCommand({"ffprobe", "-hide_banner", "-v", "error", "-show_entries",
                            "format=duration", "-of", "default=nw=1:nk=1", file.string()},
                           timeout);
  if (!result) return std::unexpected(result.error());
  if (!result->ok()) return MakeError(ErrorCode::kUnavailable, result->Describe());
  double seconds_value = 0;
  const std::string& text = result->stdout_text;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds_value);
  if (error != std::errc() || end == text.data()) {
    return MakeError(ErrorCode::kCorruptData,
                     "ffprobe gave no duration for " + file.string() + ": " + text);
  }
  return seconds_value;
}

}  // namespace earshot::testing
