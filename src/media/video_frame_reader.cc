#include "media/video_frame_reader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>

#include "media/av_compat.h"
#include "media/av_ptr.h"
#include "media/av_support.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
extern "C" {
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}
#pragma GCC diagnostic pop

namespace earshot::media {
namespace {

// Consecutive read or decode failures after which the input is treated as ended.
constexpr int kMaxConsecutiveErrors = 200;
constexpr int kMinWidth = 16;
constexpr int kScaleFlags = SWS_AREA;
constexpr int kThumbnailScaleFlags = SWS_BICUBIC;
constexpr int kMaxThumbnailWidth = 8192;
constexpr int kMinThumbnailQuality = 2;
constexpr int kMaxThumbnailQuality = 31;

struct SwsDeleter {
  void operator()(SwsContext* context) const { sws_freeContext(context); }
};
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool HasScheme(const std::string& url) {
  const size_t colon = url.find(':');
  if (colon == std::string::npos || colon < 2) return false;
  return std::all_of(url.begin(), url.begin() + static_cast<ptrdiff_t>(colon), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
  });
}

// The input as named in messages: URLs lose user info, query and fragment.
std::string DisplayName(const std::string& url) {
  if (!HasScheme(url) || url.starts_with("file:")) return url;
  std::string name = url.substr(0, url.find_first_of("?#"));
  const size_t authority = name.find("://");
  if (authority != std::string::npos) {
    const size_t start = authority + 3;
    const size_t path = name.find('/', start);
    const size_t at = name.rfind('@', path == std::string::npos ? name.size() : path);
    if (at != std::string::npos && at >= start) name.erase(start, at + 1 - start);
  }
  return name;
}

ErrorCode CodeForAvError(int av_error) {
  if (av_error == compat::ErrorFromErrno(ENOENT) || av_error == compat::kErrorHttpNotFound) {
    return ErrorCode::kNotFound;
  }
  if (av_error == compat::kErrorInvalidData || av_error == compat::kErrorEof) {
    return ErrorCode::kCorruptData;
  }
  if (av_error == compat::kErrorProtocolNotFound || av_error == compat::kErrorDemuxerNotFound ||
      av_error == compat::kErrorDecoderNotFound) {
    return ErrorCode::kUnsupported;
  }
  if (av_error == compat::ErrorFromErrno(ENOMEM)) return ErrorCode::kResourceExhausted;
  for (int e : {ECONNREFUSED, ECONNRESET, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, ENETDOWN}) {
    if (av_error == compat::ErrorFromErrno(e)) return ErrorCode::kUnavailable;
  }
  return ErrorCode::kIoError;
}

// True for the deprecated "J" formats, whose samples are full range whatever
// AVFrame::color_range says.
bool IsFullRangeFormat(AVPixelFormat format) {
  return format == AV_PIX_FMT_YUVJ420P || format == AV_PIX_FMT_YUVJ422P ||
         format == AV_PIX_FMT_YUVJ444P || format == AV_PIX_FMT_YUVJ440P ||
         format == AV_PIX_FMT_YUVJ411P;
}

Status CheckLocalFile(const std::string& url, const std::string& name) {
  if (HasScheme(url) && !url.starts_with("file:")) return Ok();
  std::filesystem::path path = url.starts_with("file:") ? url.substr(5) : url;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    return MakeError(ErrorCode::kNotFound, name + " does not exist");
  }
  if (ec) return MakeError(ErrorCode::kIoError, "cannot access " + name + ": " + ec.message());
  if (status.type() == std::filesystem::file_type::directory) {
    return MakeError(ErrorCode::kInvalidArgument, name + " is a directory, not a video file");
  }
  if (status.type() == std::filesystem::file_type::regular &&
      std::filesystem::file_size(path, ec) == 0 && !ec) {
    return MakeError(ErrorCode::kCorruptData, name + " is empty (0 bytes), not a video file");
  }
  return Ok();
}

}  // namespace

struct VideoFrameReader::Impl {
  static int Interrupt(void* opaque) {
    auto* d = static_cast<Impl*>(opaque);
    if (d->options.cancel != nullptr && d->options.cancel->load(std::memory_order_relaxed)) return 1;
    if (d->options.stall_timeout_s > 0) {
      const double idle_s =
          static_cast<double>(SteadyNanos() - d->last_input_ns.load(std::memory_order_relaxed)) *
          1e-9;
      if (idle_s > d->options.stall_timeout_s) {
        d->stalled.store(true, std::memory_order_relaxed);
        return 1;
      }
    }
    return 0;
  }

  Error ReadError(int av_error) const {
    if (options.cancel != nullptr && options.cancel->load()) {
      return Error(ErrorCode::kCancelled, "reading " + name + " was cancelled");
    }
    if (stalled.load()) {
      return Error(ErrorCode::kUnavailable, name + " stalled: no data for " +
                                                std::to_string(options.stall_timeout_s) + " s");
    }
    return Error(CodeForAvError(av_error), "reading " + name + " failed: " + DescribeAvError(av_error));
  }

  // Presentation time of the decoded frame in ms from the stream start.
  int64_t FrameMs() {
    int64_t ts = frame->best_effort_timestamp;
    if (ts == compat::kNoPtsValue) ts = frame->pts;
    if (ts == compat::kNoPtsValue) return last_pts_ms + 1;
    if (start_ts == compat::kNoPtsValue) start_ts = ts;
    return av_rescale_q(ts - start_ts, time_base, AVRational{1, 1000});
  }

  Status Convert(VideoFrame& out) {
    const AVFrame& f = *frame;
    double sar = f.sample_aspect_ratio.num > 0 && f.sample_aspect_ratio.den > 0
                     ? av_q2d(f.sample_aspect_ratio)
                     : 1.0;
    const double display_w = f.width * sar;
    const int w = std::max(kMinWidth, std::min(options.max_width,
                                               static_cast<int>(std::lround(display_w))));
    const int h = std::max(2, static_cast<int>(std::lround(w * f.height / display_w)));
    sws.reset(sws_getCachedContext(sws.release(), f.width, f.height,
                                   static_cast<AVPixelFormat>(f.format), w, h, AV_PIX_FMT_GRAY8,
                                   kScaleFlags, nullptr, nullptr, nullptr));
    if (!sws) {
      return MakeError(ErrorCode::kUnsupported,
                       "decoding " + name + ": cannot convert pixel format " +
                           std::string(av_get_pix_fmt_name(static_cast<AVPixelFormat>(f.format))
                                           ? av_get_pix_fmt_name(static_cast<AVPixelFormat>(f.format))
                                           : "?") +
                           " to luma");
    }
    out.width = w;
    out.height = h;
    out.luma.resize(static_cast<size_t>(w) * static_cast<size_t>(h));
    uint8_t* dst[4] = {out.luma.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {w, 0, 0, 0};
    sws_scale(sws.get(), f.data, f.linesize, 0, f.height, dst, dst_stride);
    return Ok();
  }

  // Makes the thumbnail of the current frame into `jpeg` (left empty on
  // failure, which the caller counts).
  Status MakeThumbnail(std::vector<uint8_t>& jpeg);
  // (Re)creates the scaler and the encoder for a w x h thumbnail of the
  // current frame when the sizes or the source format changed.
  Status PrepareThumbnail(int w, int h);

  Result<bool> Next(VideoFrame& out);
  void SetKeyframesOnly(bool on);
  void SwitchToDense() {
    options.keyframes_only = false;
    dense_pending = false;
    codec->skip_frame = options.skip_nonref ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
  }

  std::string name;
  VideoReadOptions options;
  VideoStreamInfo info;
  FormatContextPtr format;
  CodecContextPtr codec;
  PacketPtr packet;
  FramePtr frame;
  SwsPtr sws;
  // Thumbnails (only used when options.thumbnail_every_ms > 0).
  struct ThumbnailKey {
    int src_w = 0, src_h = 0, src_format = -1, src_range = -1, src_space = -1, w = 0, h = 0;
    bool operator==(const ThumbnailKey&) const = default;
  };
  ThumbnailKey thumb_key;
  SwsPtr thumb_sws;
  CodecContextPtr thumb_encoder;
  FramePtr thumb_frame;
  PacketPtr thumb_packet;
  int64_t thumb_anchor_ms = std::numeric_limits<int64_t>::min();  // pts of the first thumbnail
  int64_t next_thumb_ms = std::numeric_limits<int64_t>::min();
  int64_t thumb_pts = 0;  // encoder frame counter (pts must increase)
  uint64_t thumb_failures = 0;
  int stream_index = -1;
  AVRational time_base{1, 1000};
  int64_t start_ts = compat::kNoPtsValue;
  int64_t next_sample_ms = std::numeric_limits<int64_t>::min();
  int64_t last_pts_ms = -1;
  // GOP tracking for skip_gop_tail (ms from the stream start).
  int64_t last_key_ms = -1;
  int64_t gop_ms = 0;
  int64_t key_interval = 0;  // of the last two key packets; 0 = unknown
  bool skipping_to_key = false;
  // Runtime mode (options.keyframes_only is the current one; see
  // SetKeyframesOnly).
  bool dense_pending = false;      // go dense at the next key packet
  bool dropped_since_key = false;  // a packet after the last key packet was not decoded
  // Non-key packets presenting before this (stream time base) are dropped:
  // the leading pictures of a GOP entered after skipped packets (open GOPs),
  // which may reference what was skipped.
  int64_t leading_cutoff = compat::kNoPtsValue;
  // Key-frame mode drains the decoder after each key packet (so the key
  // frame comes out at once instead of after the decoder's reordering delay)
  // and flushes it; the packet is held so that going dense right after it
  // can decode it again as the reference of what follows. Turned off for an
  // input whose key packets produce no frame after a flush (non-IDR I frames
  // without recovery points).
  bool drain_keys = true;
  bool draining = false;
  int drained_frames = 0;
  int keys_without_output = 0;
  PacketPtr held_key;
  bool key_flushed = false;  // held_key was decoded, then flushed out of the decoder
  bool resend_key = false;
  int64_t last_drained_ms = std::numeric_limits<int64_t>::min();
  // Decoded frames up to this time are dropped (a resent key frame, already returned).
  int64_t drop_through_ms = std::numeric_limits<int64_t>::min();
  bool input_ended = false;
  bool decoder_ended = false;
  int consecutive_errors = 0;
  uint64_t decoded = 0;
  uint64_t damaged = 0;
  uint64_t returned = 0;
  std::optional<Error> failure;
  std::atomic<int64_t> last_input_ns{0};
  std::atomic<bool> stalled{false};
};

Status VideoFrameReader::Impl::PrepareThumbnail(int w, int h) {
  const AVFrame& f = *frame;
  const auto src_format = static_cast<AVPixelFormat>(f.format);
  const int src_range = f.color_range == AVCOL_RANGE_JPEG || IsFullRangeFormat(src_format) ? 1 : 0;
  const ThumbnailKey key{f.width, f.height, f.format, src_range, f.colorspace, w, h};
  if (key == thumb_key && thumb_sws && thumb_encoder) return Ok();
  thumb_key = {};
  thumb_sws.reset(sws_getContext(f.width, f.height, src_format, w, h, AV_PIX_FMT_YUV420P,
                                 kThumbnailScaleFlags, nullptr, nullptr, nullptr));
  if (!thumb_sws) return MakeError(ErrorCode::kUnsupported, "no scaler for the thumbnail");
  // Source: the frame's matrix and range; destination: JPEG (BT.601, full
  // range). Refused for non-YUV sources, which carry no range; harmless.
  const int* src_matrix = sws_getCoefficients(f.colorspace);
  sws_setColorspaceDetails(thumb_sws.get(), src_matrix, src_range,
                           sws_getCoefficients(SWS_CS_ITU601), 1, 0, 1 << 16, 1 << 16);

  const AVCodec* mjpeg = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
  if (mjpeg == nullptr) return MakeError(ErrorCode::kUnsupported, "no MJPEG encoder in this build");
  thumb_encoder = MakeCodecContext(mjpeg);
  if (!thumb_frame) thumb_frame = MakeFrame();
  if (!thumb_packet) thumb_packet = MakePacket();
  if (!thumb_encoder || !thumb_frame || !thumb_packet) {
    return MakeError(ErrorCode::kResourceExhausted, "out of memory");
  }
  AVCodecContext& e = *thumb_encoder;
  e.width = w;
  e.height = h;
  e.pix_fmt = AV_PIX_FMT_YUV420P;
  e.color_range = AVCOL_RANGE_JPEG;  // full range: what JPEG decoders assume
  e.colorspace = AVCOL_SPC_BT470BG;
  e.sample_aspect_ratio = AVRational{1, 1};  // square pixels: the aspect is in the size
  e.time_base = AVRational{1, 25};
  e.thread_count = 1;
  e.flags |= AV_CODEC_FLAG_QSCALE;
  e.global_quality = FF_QP2LAMBDA * options.thumbnail_quality;
  if (int ret = avcodec_open2(&e, mjpeg, nullptr); ret < 0) {
    thumb_encoder.reset();
    return MakeError(ErrorCode::kUnsupported,
                     "cannot open the MJPEG encoder: " + DescribeAvError(ret));
  }
  av_frame_unref(thumb_frame.get());
  thumb_frame->format = AV_PIX_FMT_YUV420P;
  thumb_frame->width = w;
  thumb_frame->height = h;
  if (int ret = av_frame_get_buffer(thumb_frame.get(), 0); ret < 0) {
    thumb_encoder.reset();
    return MakeError(ErrorCode::kResourceExhausted, "thumbnail buffer: " + DescribeAvError(ret));
  }
  thumb_key = key;
  return Ok();
}

Status VideoFrameReader::Impl::MakeThumbnail(std::vector<uint8_t>& jpeg) {
  const AVFrame& f = *frame;
  const double sar = f.sample_aspect_ratio.num > 0 && f.sample_aspect_ratio.den > 0
                         ? av_q2d(f.sample_aspect_ratio)
                         : 1.0;
  const double display_w = f.width * sar;
  const int w = options.thumbnail_width & ~1;
  const int h = std::max(2, static_cast<int>(std::lround(w * f.height / display_w / 2)) * 2);
  if (Status s = PrepareThumbnail(w, h); !s) return s;
  AVFrame& t = *thumb_frame;
  if (int ret = av_frame_make_writable(&t); ret < 0) {
    return MakeError(ErrorCode::kResourceExhausted, "thumbnail buffer: " + DescribeAvError(ret));
  }
  sws_scale(thumb_sws.get(), f.data, f.linesize, 0, f.height, t.data, t.linesize);
  t.pts = thumb_pts++;
  t.quality = thumb_encoder->global_quality;
  t.color_range = AVCOL_RANGE_JPEG;
  t.colorspace = AVCOL_SPC_BT470BG;
  t.sample_aspect_ratio = AVRational{1, 1};
  int ret = avcodec_send_frame(thumb_encoder.get(), &t);
  if (ret >= 0) ret = avcodec_receive_packet(thumb_encoder.get(), thumb_packet.get());
  if (ret < 0) {
    thumb_encoder.reset();  // start from a clean encoder next time
    thumb_key = {};
    return MakeError(ErrorCode::kInternal, "MJPEG encoding failed: " + DescribeAvError(ret));
  }
  const AVPacket& p = *thumb_packet;
  jpeg.assign(p.data, p.data + p.size);
  av_packet_unref(thumb_packet.get());
  return Ok();
}

Result<bool> VideoFrameReader::Impl::Next(VideoFrame& out) {
  if (failure) return std::unexpected(*failure);
  const double period_ms = options.fps > 0 ? 1000.0 / options.fps : 0;
  while (!decoder_ended) {
    int ret = avcodec_receive_frame(codec.get(), frame.get());
    if (ret == 0) {
      consecutive_errors = 0;
      ++decoded;
      struct Unref {
        AVFrame* f;
        ~Unref() { av_frame_unref(f); }
      } unref{frame.get()};
      if ((frame->flags & compat::kFrameFlagCorrupt) != 0) ++damaged;
      const int64_t ms = FrameMs();
      if (ms < last_pts_ms - 10000) {  // jump back: start both cadences afresh
        next_sample_ms = std::numeric_limits<int64_t>::min();
        thumb_anchor_ms = next_thumb_ms = std::numeric_limits<int64_t>::min();
      }
      last_pts_ms = ms;
      if (draining) {
        ++drained_frames;
        last_drained_ms = ms;
      }
      if (drop_through_ms != std::numeric_limits<int64_t>::min()) {
        if (ms <= drop_through_ms) continue;
        drop_through_ms = std::numeric_limits<int64_t>::min();
      }
      if (period_ms > 0 && ms < next_sample_ms) continue;
      if (period_ms > 0) {
        const auto step = static_cast<int64_t>(std::floor(static_cast<double>(ms) / period_ms)) + 1;
        next_sample_ms = static_cast<int64_t>(std::ceil(static_cast<double>(step) * period_ms));
        // The next sample will come from the next GOP: skip this one's tail.
        if (options.skip_gop_tail && gop_ms > 0 && last_key_ms >= 0 &&
            next_sample_ms >= last_key_ms + gop_ms - 5) {
          skipping_to_key = true;
        }
      }
      if (Status s = Convert(out); !s) {
        failure = s.error();
        return std::unexpected(*failure);
      }
      out.pts_ms = ms;
      out.keyframe = frame->key_frame != 0;
      out.thumbnail_jpeg.clear();
      if (options.thumbnail_every_ms > 0 && ms >= next_thumb_ms) {
        const int64_t every = options.thumbnail_every_ms;
        if (thumb_anchor_ms == std::numeric_limits<int64_t>::min()) thumb_anchor_ms = ms;
        next_thumb_ms = thumb_anchor_ms + ((ms - thumb_anchor_ms) / every + 1) * every;
        if (!MakeThumbnail(out.thumbnail_jpeg)) {
          out.thumbnail_jpeg.clear();
          ++thumb_failures;
          TakeLibavLogMessage();
        }
      }
      ++returned;
      return true;
    }
    if (ret == compat::kErrorEof && draining && !input_ended) {
      // A key frame drained in key-frame mode: reset the decoder for the next packet.
      avcodec_flush_buffers(codec.get());
      draining = false;
      key_flushed = true;
      if (!options.keyframes_only) {  // went dense during the drain
        if (held_key && held_key->data != nullptr) {
          resend_key = true;
        } else {  // cannot decode the key frame again: dense from the next one
          options.keyframes_only = true;
          codec->skip_frame = AVDISCARD_NONKEY;
          dense_pending = true;
        }
      }
      keys_without_output = drained_frames > 0 ? 0 : keys_without_output + 1;
      if (keys_without_output >= 2) drain_keys = false;
      continue;
    }
    if (ret == compat::kErrorEof) {
      decoder_ended = true;
      break;
    }
    if (ret != compat::kErrorAgain) {
      ++damaged;
      TakeLibavLogMessage();
      if (++consecutive_errors > kMaxConsecutiveErrors) decoder_ended = true;
      continue;
    }
    if (input_ended) {
      decoder_ended = true;
      break;
    }
    if (resend_key) {  // dense right after a drained key frame: decode it again
      resend_key = false;
      key_flushed = false;
      drop_through_ms = last_drained_ms;
      ret = avcodec_send_packet(codec.get(), held_key.get());
      av_packet_unref(held_key.get());
      if (ret < 0 && ret != compat::kErrorAgain) {
        ++damaged;
        TakeLibavLogMessage();
      }
      continue;
    }
    ret = av_read_frame(format.get(), packet.get());
    if (ret >= 0) last_input_ns.store(SteadyNanos(), std::memory_order_relaxed);
    if (ret == compat::kErrorEof) {
      input_ended = true;
      avcodec_send_packet(codec.get(), nullptr);
      continue;
    }
    if (ret < 0) {
      if (ret == compat::kErrorInvalidData && ++consecutive_errors <= kMaxConsecutiveErrors) {
        ++damaged;
        TakeLibavLogMessage();
        continue;
      }
      if (ret == compat::kErrorInvalidData) {
        input_ended = true;
        avcodec_send_packet(codec.get(), nullptr);
        continue;
      }
      failure = ReadError(ret);
      return std::unexpected(*failure);
    }
    if (packet->stream_index != stream_index) {
      av_packet_unref(packet.get());
      continue;
    }
    const bool key = (packet->flags & AV_PKT_FLAG_KEY) != 0;
    if (key) {
      const int64_t pts = packet->pts != compat::kNoPtsValue ? packet->pts : packet->dts;
      if (pts != compat::kNoPtsValue) {
        const int64_t key_ms = av_rescale_q(
            pts - (start_ts != compat::kNoPtsValue ? start_ts : pts), time_base, AVRational{1, 1000});
        if (last_key_ms >= 0 && key_ms > last_key_ms && key_ms - last_key_ms < 20000) {
          gop_ms = key_ms - last_key_ms;
          key_interval = gop_ms;
        } else if (last_key_ms >= 0) {
          key_interval = 0;
        }
        last_key_ms = key_ms;
      }
      skipping_to_key = false;
      if (dense_pending) SwitchToDense();
      leading_cutoff = dropped_since_key ? pts : compat::kNoPtsValue;
      dropped_since_key = false;
      key_flushed = false;
      if (held_key) av_packet_unref(held_key.get());
    } else {
      if (options.keyframes_only || skipping_to_key) {
        av_packet_unref(packet.get());  // not even sent to the decoder
        dropped_since_key = true;
        continue;
      }
      if (leading_cutoff != compat::kNoPtsValue && packet->pts != compat::kNoPtsValue &&
          packet->pts < leading_cutoff) {
        av_packet_unref(packet.get());
        continue;
      }
    }
    const bool drain = key && options.keyframes_only && drain_keys;
    if (drain) {
      if (!held_key) held_key = MakePacket();
      if (!held_key || av_packet_ref(held_key.get(), packet.get()) < 0) {
        if (held_key) av_packet_unref(held_key.get());
      }
    }
    ret = avcodec_send_packet(codec.get(), packet.get());
    av_packet_unref(packet.get());
    if (ret < 0 && ret != compat::kErrorAgain) {
      ++damaged;
      TakeLibavLogMessage();
    }
    if (drain) {
      draining = true;
      drained_frames = 0;
      avcodec_send_packet(codec.get(), nullptr);
    }
  }
  if (returned == 0) {
    failure = Error(ErrorCode::kCorruptData,
                    name + " contains no decodable video frames" +
                        (damaged > 0 ? " (" + std::to_string(damaged) + " damaged packets)" : ""));
    return std::unexpected(*failure);
  }
  return false;
}

void VideoFrameReader::Impl::SetKeyframesOnly(bool on) {
  if (on) {
    dense_pending = false;
    if (options.keyframes_only) return;
    options.keyframes_only = true;
    codec->skip_frame = AVDISCARD_NONKEY;
    return;
  }
  if (!options.keyframes_only) return;
  const bool have_key = held_key && held_key->data != nullptr;
  if (dropped_since_key || ((key_flushed || draining) && !have_key)) {
    dense_pending = true;  // what follows needs a packet that was skipped
    return;
  }
  SwitchToDense();
  // The last key frame was flushed out of the decoder: decode it again (held
  // packet) as the reference of the packets that follow it. While it is
  // still being drained, the end of the drain does that.
  if (key_flushed) resend_key = true;
}

Result<std::unique_ptr<VideoFrameReader>> VideoFrameReader::Open(const std::string& url,
                                                                 const VideoReadOptions& options) {
  InitLibav();
  auto impl = std::make_unique<Impl>();
  impl->name = DisplayName(url);
  impl->options = options;
  const std::string& name = impl->name;
  if (url.empty()) return MakeError(ErrorCode::kInvalidArgument, "video input: empty path or URL");
  if (options.max_width < kMinWidth) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "video input " + name + ": max_width must be >= " + std::to_string(kMinWidth));
  }
  if (options.thumbnail_every_ms > 0) {
    if (options.thumbnail_width < kMinWidth || options.thumbnail_width > kMaxThumbnailWidth) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "video input " + name + ": thumbnail_width must be " +
                           std::to_string(kMinWidth) + ".." + std::to_string(kMaxThumbnailWidth));
    }
    if (options.thumbnail_quality < kMinThumbnailQuality ||
        options.thumbnail_quality > kMaxThumbnailQuality) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "video input " + name + ": thumbnail_quality must be " +
                           std::to_string(kMinThumbnailQuality) + " (best) .. " +
                           std::to_string(kMaxThumbnailQuality) + " (smallest)");
    }
  }
  if (!std::isfinite(options.fps)) {
    return MakeError(ErrorCode::kInvalidArgument, "video input " + name + ": fps must be finite");
  }
  if (Status s = CheckLocalFile(url, name); !s) return std::unexpected(s.error());

  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return MakeError(ErrorCode::kResourceExhausted, "out of memory opening " + name);
  raw->interrupt_callback.callback = &Impl::Interrupt;
  raw->interrupt_callback.opaque = impl.get();
  impl->last_input_ns.store(SteadyNanos());
  AvDictionary dict;
  for (const auto& [key, value] : options.format_options) dict.Set(key.c_str(), value.c_str());
  int ret = avformat_open_input(&raw, url.c_str(), nullptr, dict.out());
  if (ret < 0) {  // raw is freed by avformat_open_input on failure
    Error e = impl->ReadError(ret);
    if (e.code() == ErrorCode::kCorruptData || ret == compat::ErrorFromErrno(EINVAL)) {
      return MakeError(ErrorCode::kCorruptData, name + " is not a recognised media file, or its "
                                                       "header is damaged (" +
                                                       DescribeAvError(ret) + ")");
    }
    if (e.code() == ErrorCode::kCancelled || impl->stalled.load()) return std::unexpected(e);
    return MakeError(e.code(), "cannot open " + name + ": " + DescribeAvError(ret));
  }
  impl->format.reset(raw);
  if (const AVDictionaryEntry* unknown = dict.First(); unknown != nullptr) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "video input " + name + ": unknown format option '" + unknown->key + "'");
  }
  ret = avformat_find_stream_info(impl->format.get(), nullptr);
  if (ret < 0) {
    return MakeError(ErrorCode::kCorruptData,
                     "cannot read stream information of " + name + ": " + DescribeAvError(ret));
  }
  const AVCodec* decoder = nullptr;
  ret = av_find_best_stream(impl->format.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
  if (ret == compat::kErrorStreamNotFound) {
    return MakeError(ErrorCode::kUnsupported, name + " has no video stream");
  }
  if (ret < 0 || decoder == nullptr) {
    return MakeError(ErrorCode::kUnsupported,
                     name + ": no decoder for its video codec in this build (" +
                         DescribeAvError(ret < 0 ? ret : compat::kErrorDecoderNotFound) + ")");
  }
  impl->stream_index = ret;
  for (unsigned i = 0; i < impl->format->nb_streams; ++i) {
    if (static_cast<int>(i) != impl->stream_index) impl->format->streams[i]->discard = AVDISCARD_ALL;
  }
  AVStream* stream = impl->format->streams[impl->stream_index];
  impl->time_base = stream->time_base;
  if (stream->start_time != compat::kNoPtsValue) impl->start_ts = stream->start_time;

  impl->codec = MakeCodecContext(decoder);
  impl->packet = MakePacket();
  impl->frame = MakeFrame();
  if (!impl->codec || !impl->packet || !impl->frame) {
    return MakeError(ErrorCode::kResourceExhausted, "out of memory opening " + name);
  }
  ret = avcodec_parameters_to_context(impl->codec.get(), stream->codecpar);
  if (ret < 0) {
    return MakeError(ErrorCode::kUnsupported, name + ": bad video codec parameters: " + DescribeAvError(ret));
  }
  AVCodecContext& c = *impl->codec;
  c.thread_count = std::max(0, options.threads);
  c.skip_loop_filter = AVDISCARD_ALL;
  c.skip_frame = options.keyframes_only ? AVDISCARD_NONKEY
                 : options.skip_nonref  ? AVDISCARD_NONREF
                                        : AVDISCARD_DEFAULT;
  c.flags2 |= AV_CODEC_FLAG2_FAST;
  // Reduced-resolution decoding where the decoder supports it, as long as
  // the result stays at least max_width wide.
  int lowres = 0;
  while (lowres < decoder->max_lowres && (c.width >> (lowres + 1)) >= options.max_width) ++lowres;
  c.lowres = lowres;
  ret = avcodec_open2(impl->codec.get(), decoder, nullptr);
  if (ret < 0) {
    return MakeError(ErrorCode::kUnsupported,
                     name + ": cannot open the " + decoder->name + " decoder: " + DescribeAvError(ret));
  }
  VideoStreamInfo& info = impl->info;
  info.codec = decoder->name;
  info.source_width = stream->codecpar->width;
  info.source_height = stream->codecpar->height;
  info.lowres = lowres;
  if (stream->avg_frame_rate.num > 0 && stream->avg_frame_rate.den > 0) {
    info.frame_rate = av_q2d(stream->avg_frame_rate);
  }
  if (stream->duration != compat::kNoPtsValue && stream->duration > 0) {
    info.duration_s = static_cast<double>(stream->duration) * av_q2d(stream->time_base);
  } else if (impl->format->duration != compat::kNoPtsValue && impl->format->duration > 0) {
    info.duration_s = static_cast<double>(impl->format->duration) / static_cast<double>(compat::kTimeBase);
  }
  return std::make_unique<VideoFrameReader>(PrivateTag(), std::move(impl));
}

VideoFrameReader::VideoFrameReader(PrivateTag, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VideoFrameReader::~VideoFrameReader() = default;
const VideoStreamInfo& VideoFrameReader::info() const { return impl_->info; }
Result<bool> VideoFrameReader::Next(VideoFrame& frame) { return impl_->Next(frame); }
void VideoFrameReader::SetKeyframesOnly(bool on) { impl_->SetKeyframesOnly(on); }
bool VideoFrameReader::keyframes_only() const { return impl_->options.keyframes_only; }
int64_t VideoFrameReader::key_interval_ms() const { return impl_->key_interval; }
uint64_t VideoFrameReader::decoded_frames() const { return impl_->decoded; }
uint64_t VideoFrameReader::damaged_packets() const { return impl_->damaged; }
uint64_t VideoFrameReader::thumbnail_failures() const { return impl_->thumb_failures; }

}  // namespace earshot::media
