// Owning handles for libav* objects: std::unique_ptr with deleters that call
// the matching libav free function, so no AV* object is ever freed by hand.
//
// Internal to src/media (includes libav headers through av_compat.h).
//
// Each deleter accepts nullptr. A handle owns exactly one object; moving it
// transfers ownership. Thread safety: like the wrapped object (none of these
// are safe for concurrent use; distinct objects may be used from distinct
// threads).
#pragma once

#include <memory>

#include "media/av_compat.h"

namespace earshot::media {

struct FormatContextDeleter {
  // For contexts opened with avformat_open_input() (also frees an unopened one).
  void operator()(AVFormatContext* context) const { avformat_close_input(&context); }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* context) const { avcodec_free_context(&context); }
};
struct PacketDeleter {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct SwrContextDeleter {
  void operator()(SwrContext* context) const { swr_free(&context); }
};

using FormatContextPtr = std::unique_ptr<AVFormatContext, FormatContextDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using SwrContextPtr = std::unique_ptr<SwrContext, SwrContextDeleter>;

// Allocating constructors; each returns an empty handle when out of memory.
inline PacketPtr MakePacket() { return PacketPtr(av_packet_alloc()); }
inline FramePtr MakeFrame() { return FramePtr(av_frame_alloc()); }
inline CodecContextPtr MakeCodecContext(const AVCodec* codec) {
  return CodecContextPtr(avcodec_alloc_context3(codec));
}

// Owns an AVDictionary (nullptr while empty). libav functions that take an
// AVDictionary** (avformat_open_input, avcodec_open2) consume the entries
// they recognise and leave the rest, so after such a call this holds the
// options nobody understood.
class AvDictionary {
 public:
  AvDictionary() = default;
  ~AvDictionary() { av_dict_free(&dict_); }
  AvDictionary(const AvDictionary&) = delete;
  AvDictionary& operator=(const AvDictionary&) = delete;

  // Returns a negative AVERROR on failure (out of memory).
  int Set(const char* key, const char* value) { return av_dict_set(&dict_, key, value, 0); }

  // First remaining entry, or nullptr when empty.
  const AVDictionaryEntry* First() const {
    return av_dict_get(dict_, "", nullptr, AV_DICT_IGNORE_SUFFIX);
  }

  // For passing to libav functions; the dictionary stays owned by this object.
  AVDictionary** out() { return &dict_; }

 private:
  AVDictionary* dict_ = nullptr;
};

// Owns an AVChannelLayout (a custom-order layout holds a heap-allocated map).
class ChannelLayout {
 public:
  ChannelLayout() = default;
  ~ChannelLayout() { av_channel_layout_uninit(&layout_); }
  ChannelLayout(const ChannelLayout&) = delete;
  ChannelLayout& operator=(const ChannelLayout&) = delete;

  // Replaces the held layout with a copy of `other`. Returns a negative
  // AVERROR on failure.
  int CopyFrom(const AVChannelLayout& other) { return av_channel_layout_copy(&layout_, &other); }

  // Replaces the held layout with the default native layout for `channels`.
  void SetDefault(int channels) {
    av_channel_layout_uninit(&layout_);
    av_channel_layout_default(&layout_, channels);
  }

  const AVChannelLayout& get() const { return layout_; }

 private:
  AVChannelLayout layout_{};
};

}  // namespace earshot::media
