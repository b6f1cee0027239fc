// Decoding of any audio that libavformat/libavcodec can read (files, and any
// URL libavformat opens) into the one PCM format the recognition engine takes:
// mono float32 samples in [-1, 1] at a chosen sample rate.
//
// This is earshot's only libav* adapter; no libav type appears in this header.
//
// Example:
//   auto decoder = AudioDecoder::Open("clip.mp3", {.sample_rate = 8000});
//   if (!decoder) return decoder.error();
//   std::vector<float> pcm;
//   while (true) {
//     auto n = (*decoder)->Read(pcm, 4096);
//     if (!n) return n.error();
//     if (*n == 0) break;  // end of input
//   }
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace earshot::media {

struct AudioDecodeOptions {
  // Output sample rate in Hz, 1000..384000. Output is always mono float32 in
  // [-1, 1]: all source channels are averaged with equal weight.
  int sample_rate = 8000;

  // true: the first damaged packet or frame (or an input that ends before its
  // declared duration) is a kCorruptData error. false: damage is skipped and
  // counted (AudioDecoder::damaged_packets()), and decoding goes on; use this
  // for live streams, where some loss is normal.
  bool strict = false;

  // Options for libavformat (demuxer and protocol), passed to
  // avformat_open_input() as an AVDictionary, e.g. {"probesize", "32768"} or,
  // for network inputs, {"rw_timeout", "5000000"} (microseconds) or
  // {"headers", "Authorization: ...\r\n"}. An option that neither the
  // demuxer nor the protocol recognises is a kInvalidArgument error.
  std::map<std::string, std::string> format_options;

  // --- Live inputs -------------------------------------------------------
  // Blocking I/O (connecting, reading) is abandoned when *cancel becomes true
  // (Open/Read return kCancelled) or when no packet has arrived for
  // stall_timeout_s seconds (kUnavailable, "stalled: no data for N s").
  // 0 waits forever. `cancel` is borrowed and must outlive the decoder.
  const std::atomic<bool>* cancel = nullptr;
  double stall_timeout_s = 0;

  // true: after Open, a background thread (the input thread: it only waits
  // on the network and demuxes, it never decodes) reads packets into a
  // bounded queue, so that ReadAvailable() never blocks on I/O. `on_input`
  // (optional) is called from that thread whenever packets arrive in an
  // empty queue and when the input ends or fails; it must be cheap and
  // thread-safe (e.g. schedule the consumer). false: Read() demuxes inline.
  bool background_input = false;
  std::function<void()> on_input;
};

// What the input says about the decoded audio stream (before resampling).
struct AudioStreamInfo {
  std::string codec;           // libav codec name: "mp3", "aac", "flac", "opus", "pcm_s16le"
  int source_sample_rate = 0;  // Hz, as declared by the container/codec (0 if unknown)
  int source_channels = 0;     // as declared (0 if unknown)
  double duration_s = -1;      // declared duration in seconds; < 0 if unknown (e.g. live)
  std::string container;       // libav demuxer name: "mp3", "ogg", "mov,mp4,m4a,3gp,3g2,mj2"
};

// Streaming decoder for one input: the best audio stream of a file path or
// URL. Other streams (video, subtitles, further audio) are discarded by the
// demuxer without being decoded.
//
// Parameter changes in the middle of the stream (sample rate, channel layout,
// sample format) are handled: the resampler is flushed and rebuilt, so output
// stays continuous mono at options.sample_rate.
//
// Timestamps are not used: output is the concatenation of all decoded frames
// (gaps in a live stream are not filled with silence).
//
// Thread safety: an AudioDecoder must not be used from several threads at
// once; distinct decoders may be used concurrently.
class AudioDecoder {
 private:
  struct Impl;
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Opens `url` (a local path, "file:..." or any URL libavformat supports),
  // reads its header and selects the audio stream. Errors name the input (for
  // URLs, without user info or query string):
  //   kInvalidArgument  bad options, empty url, unknown format option, directory
  //   kNotFound         the file (or HTTP resource) does not exist
  //   kIoError          it cannot be read (permissions, I/O failure)
  //   kCorruptData      it is empty or not a recognisable media file
  //   kUnsupported      no audio stream, or an audio codec this build cannot decode
  //   kUnavailable      a network peer could not be reached
  static Result<std::unique_ptr<AudioDecoder>> Open(const std::string& url,
                                                    const AudioDecodeOptions& options);

  // Use Open().
  AudioDecoder(PrivateTag, std::unique_ptr<Impl> impl);
  ~AudioDecoder();
  AudioDecoder(const AudioDecoder&) = delete;
  AudioDecoder& operator=(const AudioDecoder&) = delete;

  // Stream information read at Open(); it does not follow later parameter
  // changes. Valid for the decoder's lifetime.
  const AudioStreamInfo& info() const;

  // Appends between 1 and max_samples output samples to `out` and returns how
  // many; returns 0 only at the end of the input (and again on later calls).
  // May block on network input. max_samples must be > 0.
  //
  // Errors: kCorruptData for damage when options.strict (naming the position,
  // "damaged at about 12.3 s" / "truncated"), and in every mode when the input
  // ends without having produced a single sample ("contains no audio
  // samples"); kIoError / kUnavailable when reading fails. After an error the
  // decoder is finished: later calls return the same error.
  Result<size_t> Read(std::vector<float>& out, size_t max_samples);

  // Like Read() but never waits for input (requires options.background_input):
  // decodes only packets already queued and returns 0 when none are (check
  // finished() to tell "nothing yet" from "end of input"). Same errors.
  Result<size_t> ReadAvailable(std::vector<float>& out, size_t max_samples);

  // true once the end of the input has been returned (a 0 from Read or
  // ReadAvailable at end of input) or an error.
  bool finished() const;

  // Number of packets and frames that failed to decode or were flagged as
  // damaged (strict = false), plus 1 if the input ended clearly before its
  // declared duration (truncated file). Frames flagged damaged by the decoder
  // are counted but their (concealed) samples are kept; packets that failed to
  // decode contribute no samples.
  uint64_t damaged_packets() const;

  // Total samples returned by Read() so far.
  uint64_t samples_out() const;

 private:
  std::unique_ptr<Impl> impl_;
};

// The whole input decoded at once: see AudioDecoder for the format.
struct DecodedAudio {
  std::vector<float> samples;  // mono float32 in [-1, 1]
  int sample_rate = 0;         // Hz, = options.sample_rate
  AudioStreamInfo info;
  uint64_t damaged_packets = 0;  // as AudioDecoder::damaged_packets()
};

// Opens `path` (or URL) and decodes it to the end. Same errors as
// AudioDecoder::Open and AudioDecoder::Read. Thread-safe (no shared state).
Result<DecodedAudio> DecodeFile(const std::string& path, const AudioDecodeOptions& options);

}  // namespace earshot::media
