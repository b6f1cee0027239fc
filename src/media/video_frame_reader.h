// Sampled, low-resolution luma frames from any video libavformat can read
// (files, and any URL libavformat opens), for video fingerprinting.
//
// Only what fingerprints need is decoded: frames are sampled at a fixed rate
// (default 2 per second) on the presentation timeline; frames that no other
// frame references are discarded before decoding (AVDISCARD_NONREF, which
// skips most B-frames), or everything but key frames in keyframes_only mode;
// the loop filter is skipped; and decoders that can decode at reduced
// resolution (lowres: MPEG-1/2/4, MJPEG, ...) are asked to. The sampled frames
// are scaled with libswscale (area averaging) to at most max_width pixels,
// keeping the display aspect ratio, 8-bit luma only.
//
// Optionally (thumbnail_every_ms > 0) a sampled frame also carries a colour
// JPEG thumbnail: the first sampled frame does, then the first sampled frame
// at or after each further thumbnail_every_ms of presentation time, counted
// from the first thumbnail (a fixed grid, so late samples do not make the
// cadence drift). The thumbnail is scaled with libswscale from the decoded
// picture (already reduced when the decoder used lowres; it is then scaled
// up) to full-range YUV 4:2:0 and encoded by libavcodec's MJPEG encoder at a
// fixed quantiser: a baseline JFIF-compatible JPEG (FF D8 ... FF D9). With
// thumbnails off nothing of this runs.
//
// No libav type appears in this header.
//
// Example:
//   auto reader = VideoFrameReader::Open("match.mp4", {.fps = 2});
//   if (!reader) return reader.error();
//   VideoFrame frame;
//   while (true) {
//     auto more = (*reader)->Next(frame);
//     if (!more) return more.error();
//     if (!*more) break;  // end of input
//     Hash(frame.luma.data(), frame.width, frame.height, frame.width);
//   }
//
// Thread safety: a reader must not be used from several threads at once;
// distinct readers may be used concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace earshot::media {

struct VideoReadOptions {
  // Frames per second returned, on the presentation timeline: the first
  // decoded frame at or after each multiple of 1/fps is kept. <= 0: every
  // decoded frame.
  double fps = 2.0;
  // Decode key frames only (cheapest: about one frame per GOP, e.g. every 2 s
  // in live streams); `fps` still caps the rate. The initial mode: see
  // VideoFrameReader::SetKeyframesOnly to change it while reading.
  bool keyframes_only = false;
  // Discard frames no other frame references before decoding (most B-frames).
  // Sampled frames then fall on the nearest decoded frame at or after each
  // sampling instant.
  bool skip_nonref = true;
  // Once the last sample a GOP can provide has been taken (the next sampling
  // instant is at or past the next key frame, predicted from the spacing of
  // the last two), drop the rest of the GOP before decoding. With fixed GOPs
  // of 2 s and fps = 1 this decodes about half of each GOP.
  bool skip_gop_tail = true;
  // Output width limit in pixels (>= 16); smaller inputs keep their size.
  int max_width = 160;
  // Decoder threads (0 = libav's choice). 1 is the most CPU-efficient when
  // many streams are decoded at once.
  int threads = 1;
  // Options for libavformat (demuxer and protocol), e.g. {"rw_timeout",
  // "5000000"}. An option nobody recognises is a kInvalidArgument error.
  std::map<std::string, std::string> format_options;
  // Blocking I/O is abandoned when *cancel becomes true (kCancelled) or when
  // no packet arrived for stall_timeout_s seconds (kUnavailable); 0 = wait
  // forever. `cancel` is borrowed and must outlive the reader.
  const std::atomic<bool>* cancel = nullptr;
  double stall_timeout_s = 0;
  // Every this many milliseconds of stream time (<= 0: never), the sampled
  // frame also yields a colour JPEG thumbnail (VideoFrame::thumbnail_jpeg),
  // scaled to thumbnail_width pixels wide (display aspect kept, even sizes:
  // an odd width is rounded down), encoded with libavcodec's MJPEG encoder.
  // When thumbnails are on, thumbnail_width must be 16..8192 and
  // thumbnail_quality 2..31 (else Open fails with kInvalidArgument).
  int64_t thumbnail_every_ms = 0;
  int thumbnail_width = 320;
  int thumbnail_quality = 5;  // MJPEG qscale 2 (best) .. 31 (smallest)
};

struct VideoStreamInfo {
  std::string codec;         // libav codec name: "h264", "hevc", "vp9", "mpeg4"
  int source_width = 0;      // coded size, pixels
  int source_height = 0;
  double frame_rate = 0;     // average frames per second declared (0 if unknown)
  double duration_s = -1;    // declared duration; < 0 if unknown (live)
  int lowres = 0;            // decoder downscale used: 2^lowres per side
};

// One sampled frame: width x height 8-bit luma, rows packed (stride = width).
struct VideoFrame {
  int64_t pts_ms = 0;      // presentation time from the start of the stream, milliseconds
  int width = 0;
  int height = 0;
  bool keyframe = false;
  std::vector<uint8_t> luma;
  // A complete JPEG file (FF D8 ... FF D9); empty unless a thumbnail was due
  // at this frame (and encoding it succeeded).
  std::vector<uint8_t> thumbnail_jpeg;
};

class VideoFrameReader {
 private:
  struct Impl;
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Opens `url` and selects its best video stream. Errors name the input
  // (URLs without user info or query):
  //   kInvalidArgument  bad options, unknown format option, a directory
  //   kNotFound         the file does not exist
  //   kCorruptData      empty, not a media file, or a damaged header
  //   kUnsupported      no video stream, or a codec this build cannot decode
  //   kUnavailable      a network peer could not be reached
  //   kIoError          other read failures
  static Result<std::unique_ptr<VideoFrameReader>> Open(const std::string& url,
                                                        const VideoReadOptions& options);

  VideoFrameReader(PrivateTag, std::unique_ptr<Impl> impl);
  ~VideoFrameReader();
  VideoFrameReader(const VideoFrameReader&) = delete;
  VideoFrameReader& operator=(const VideoFrameReader&) = delete;

  const VideoStreamInfo& info() const;

  // Fills `frame` with the next sampled frame and returns true, or returns
  // false at the end of the input. Damaged packets are skipped and counted.
  // Errors: kCorruptData when the input ends without a single decodable
  // frame; kIoError / kUnavailable / kCancelled when reading fails. After an
  // error, later calls return it again.
  Result<bool> Next(VideoFrame& frame);

  // Switches between key-frames-only decoding and dense sampling (fps, with
  // skip_nonref / skip_gop_tail as configured) while reading, e.g. to decode
  // densely only while something interesting is on screen.
  //   true:  no further non-key packet is decoded (takes effect at once;
  //          frames already inside the decoder may still come out).
  //   false: dense decoding starts at once when nothing after the last key
  //          frame was skipped yet (the normal case right after Next returned
  //          a key frame in key-frame mode: the key frame is decoded once
  //          more as the reference of what follows), else at the next key
  //          frame, so no frame whose references were skipped is decoded.
  // In key-frame mode each key frame is returned as soon as its packet is
  // read (the decoder is drained and reset after it), not after the
  // decoder's reordering delay. The sampling and thumbnail cadences run on
  // across switches (in key-frame mode they fall on key frames).
  void SetKeyframesOnly(bool on);
  // The current mode: true in key-frame mode, also while a switch to dense
  // waits for the next key frame.
  bool keyframes_only() const;

  // Spacing of the last two key frames read (ms of stream time; 0 until two
  // were seen, or when they were 20 s or more apart).
  int64_t key_interval_ms() const;

  uint64_t decoded_frames() const;   // frames the decoder produced (sampled or not)
  uint64_t damaged_packets() const;  // packets/frames that failed to decode
  // Thumbnails that were due but could not be made (scaler or encoder
  // failure); the frame was returned without one and the cadence moved on.
  uint64_t thumbnail_failures() const;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace earshot::media
