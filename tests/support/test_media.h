// Test media made with ffmpeg and espeak-ng: catalogued music under a
// synthetic voice, silence before music, speech alone; and ffprobe's view of a
// file or stream.
//
// The Make* functions write FLAC (44.1 kHz, stereo, 16 bit) into `out_dir`
// under a name derived from every parameter (and the music file's size), and
// return the existing file when it is already there: a cache shared by tests
// that pass the same folder. Files appear atomically (written under a
// temporary name, then renamed), so concurrent tests may share a folder. The
// output is deterministic for a given ffmpeg / espeak-ng (bit-exact flags, no
// randomness). Errors carry the tail of the failing tool's stderr.
//
// Thread safety: the functions may be called concurrently.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace earshot::testing {

// /usr/share/games/wesnoth/1.16/data/core/music/NAME.ogg (NAME without
// ".ogg", e.g. "battle"); kFailedPrecondition naming
// `apt-get install wesnoth-1.16-music` when it is missing.
Result<std::filesystem::path> WesnothMusic(std::string_view name);

// `duration_s` seconds of `music` from `music_offset_s`, with `voice_text`
// spoken over it by espeak-ng (en, 160 words/min, repeated to fill the
// duration) at `voice_gain_db` relative to espeak's level (0: about as loud as
// typical music; -6 and below: the music dominates). The two are summed, not
// normalised. Fails (kInvalidArgument) when the music is shorter than
// music_offset_s + duration_s.
Result<std::filesystem::path> MakeMusicUnderVoice(const std::filesystem::path& out_dir,
                                                  const std::filesystem::path& music,
                                                  double music_offset_s, double duration_s,
                                                  std::string_view voice_text,
                                                  double voice_gain_db);

// `silence_s` seconds of digital silence, then `music_s` seconds of `music`
// from `music_offset_s`.
Result<std::filesystem::path> MakeSilenceThenMusic(const std::filesystem::path& out_dir,
                                                   double silence_s,
                                                   const std::filesystem::path& music,
                                                   double music_offset_s, double music_s);

// `duration_s` seconds of `text` spoken by espeak-ng (repeated), no music: the
// "talking streamer" that must not match anything.
Result<std::filesystem::path> MakeVoice(const std::filesystem::path& out_dir, std::string_view text,
                                        double duration_s);

struct ProbedStream {
  int index = 0;
  std::string codec_type;  // "audio", "video", "data"...
  std::string codec_name;  // "aac", "h264"...
};

// The streams ffprobe finds in a file or URL (rtmp://, http://...m3u8),
// bounded by `timeout`. Fails with ffprobe's stderr when it finds nothing.
Result<std::vector<ProbedStream>> ProbeStreams(std::string_view file_or_url,
                                               std::chrono::milliseconds timeout);

// ffprobe's format duration of a file, in seconds.
Result<double> ProbeDurationSeconds(const std::filesystem::path& file,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace earshot::testing
