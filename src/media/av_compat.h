// The one place where earshot includes the libav* (FFmpeg) C headers, and the
// one place for version shims between FFmpeg releases.
//
// Every other file in src/media includes this header instead of <libav*/...>.
// Nothing outside src/media may include it: libav* is a private dependency of
// earshot_media and its types never appear in public headers.
//
// Supported: FFmpeg 5.1 and later (libavutil >= 57.24, libswresample >= 4.5),
// which introduced the AVChannelLayout API and swr_alloc_set_opts2().
//
// Several libav macros expand to C-style casts or compound literals that our
// warning flags reject (-Wold-style-cast, -Wpedantic). They are evaluated here,
// once, into typed constants; use the constants below instead of the macros.
//
// Thread safety: constants and stateless wrappers only.
#pragma once

#include <cstdint>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
}

#if LIBAVUTIL_VERSION_INT < AV_VERSION_INT(57, 24, 100)
#error "earshot_media needs FFmpeg >= 5.1 (libavutil >= 57.24: AVChannelLayout API)"
#endif
#if LIBSWRESAMPLE_VERSION_INT < AV_VERSION_INT(4, 5, 100)
#error "earshot_media needs FFmpeg >= 5.1 (libswresample >= 4.5: swr_alloc_set_opts2)"
#endif

namespace earshot::media::compat {

// Error codes returned by libav functions (negative ints).
inline constexpr int kErrorEof = AVERROR_EOF;
inline constexpr int kErrorAgain = AVERROR(EAGAIN);
inline constexpr int kErrorExit = AVERROR_EXIT;  // a blocking call was interrupted
inline constexpr int kErrorInvalidData = AVERROR_INVALIDDATA;
inline constexpr int kErrorStreamNotFound = AVERROR_STREAM_NOT_FOUND;
inline constexpr int kErrorDecoderNotFound = AVERROR_DECODER_NOT_FOUND;
inline constexpr int kErrorDemuxerNotFound = AVERROR_DEMUXER_NOT_FOUND;
inline constexpr int kErrorProtocolNotFound = AVERROR_PROTOCOL_NOT_FOUND;
inline constexpr int kErrorHttpBadRequest = AVERROR_HTTP_BAD_REQUEST;
inline constexpr int kErrorHttpUnauthorized = AVERROR_HTTP_UNAUTHORIZED;
inline constexpr int kErrorHttpForbidden = AVERROR_HTTP_FORBIDDEN;
inline constexpr int kErrorHttpNotFound = AVERROR_HTTP_NOT_FOUND;
inline constexpr int kErrorHttpOther4xx = AVERROR_HTTP_OTHER_4XX;
inline constexpr int kErrorHttpServerError = AVERROR_HTTP_SERVER_ERROR;

// AVERROR(errno) for a POSIX errno value.
constexpr int ErrorFromErrno(int errno_value) { return AVERROR(errno_value); }

// "No timestamp" marker of AVStream::duration, AVFormatContext::duration, pts.
inline constexpr int64_t kNoPtsValue = AV_NOPTS_VALUE;

// AVFormatContext::duration is in these units per second.
inline constexpr int64_t kTimeBase = AV_TIME_BASE;

// AVFrame::flags bit set by decoders for frames they know to be damaged.
inline constexpr int kFrameFlagCorrupt = AV_FRAME_FLAG_CORRUPT;

// AVPacket::flags bit set by demuxers for packets they know to be damaged.
inline constexpr int kPacketFlagCorrupt = AV_PKT_FLAG_CORRUPT;

// swr_alloc_set_opts2() with const layouts: FFmpeg 5.1 declares the layout
// parameters non-const although it only reads them (later releases add const).
inline int AllocResampler(SwrContext** context, const AVChannelLayout& out_layout,
                          AVSampleFormat out_format, int out_rate, const AVChannelLayout& in_layout,
                          AVSampleFormat in_format, int in_rate) {
  return swr_alloc_set_opts2(context, const_cast<AVChannelLayout*>(&out_layout), out_format,
                             out_rate, const_cast<AVChannelLayout*>(&in_layout), in_format, in_rate,
                             0, nullptr);
}

}  // namespace earshot::media::compat

#pragma GCC diagnostic pop
