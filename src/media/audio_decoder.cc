#include "media/audio_decoder.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "media/av_compat.h"
#include "media/av_ptr.h"
#include "media/av_support.h"

namespace earshot::media {
namespace {

constexpr int kResamplerFilterSize = 12;  // taps per phase of the resampling filter


constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 384000;

// libswresample handles at most this many channels.
constexpr int kMaxChannels = 64;

// Consecutive av_read_frame() failures after which a non-strict decoder stops
// reading and treats the input as ended (guards against demuxers that fail
// without advancing).
constexpr int kMaxConsecutiveReadErrors = 1000;

// Consecutive decode failures with no packet read in between after which the
// decoder is treated as stuck.
constexpr int kMaxConsecutiveDecodeErrors = 64;

// An input counts as truncated when the decoded audio falls short of the
// declared duration by more than max(kTruncationSlackS, kTruncationSlackRatio
// * duration). The slack absorbs encoder delay/padding and header rounding.
constexpr double kTruncationSlackS = 0.5;
constexpr double kTruncationSlackRatio = 0.02;

// DecodeFile reads in chunks of this many samples and pre-reserves at most
// kMaxReserveSamples (a declared duration may be bogus).
constexpr size_t kDecodeFileChunk = size_t{1} << 16;
constexpr double kMaxReserveSamples = 1 << 24;

// Read() moves unread pending output to the front of its buffer once this
// many samples at the front have been consumed.
constexpr size_t kCompactThreshold = size_t{1} << 16;

// Background input: packets queued ahead of the decoder (a few seconds of
// audio for any common codec; video packets are not queued).
constexpr size_t kMaxQueuedPackets = 512;

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Seconds with one decimal, e.g. "12.3".
std::string FormatSeconds(double seconds) {
  std::array<char, 32> text{};
  auto [end, ec] =
      std::to_chars(text.data(), text.data() + text.size(), seconds, std::chars_format::fixed, 1);
  if (ec != std::errc()) return "?";
  return std::string(text.data(), end);
}

// The URL scheme ("http", "file", "rtmp"), or "" for a plain path.
std::string_view UrlScheme(std::string_view url) {
  size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon < 2) return {};
  std::string_view scheme = url.substr(0, colon);
  bool valid =
      std::isalpha(static_cast<unsigned char>(scheme[0])) != 0 &&
      std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
      });
  return valid ? scheme : std::string_view();
}

// How the input is named in error messages: a path as given; a URL without
// user info ("user:password@"), query string or fragment, which may hold secrets.
std::string DisplayName(const std::string& url) {
  std::string_view scheme = UrlScheme(url);
  if (scheme.empty() || scheme == "file") return url;
  std::string name = url.substr(0, url.find_first_of("?#"));
  size_t authority = name.find("://");
  if (authority != std::string::npos) {
    authority += 3;
    size_t path = name.find('/', authority);
    size_t at = name.rfind('@', path == std::string::npos ? name.size() : path);
    if (at != std::string::npos && at >= authority) name.erase(authority, at + 1 - authority);
  }
  return name;
}

// The local file `url` refers to, if it is a path or a "file:" URL.
std::optional<std::filesystem::path> LocalPath(const std::string& url) {
  std::string_view scheme = UrlScheme(url);
  if (scheme.empty()) return std::filesystem::path(url);
  if (scheme == "file") {
    std::string_view rest = std::string_view(url).substr(5);
    if (rest.starts_with("//")) rest.remove_prefix(2);
    return std::filesystem::path(std::string(rest));
  }
  return std::nullopt;
}

bool IsNetworkError(int av_error) {
  for (int errno_value :
       {ECONNREFUSED, ECONNRESET, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, ENETDOWN, EPIPE}) {
    if (av_error == compat::ErrorFromErrno(errno_value)) return true;
  }
  return av_error == compat::kErrorHttpServerError;
}

// Error code for a failure of avformat_open_input / av_read_frame.
ErrorCode CodeForAvError(int av_error) {
  if (av_error == compat::ErrorFromErrno(ENOENT) || av_error == compat::kErrorHttpNotFound) {
    return ErrorCode::kNotFound;
  }
  if (av_error == compat::kErrorInvalidData) return ErrorCode::kCorruptData;
  if (av_error == compat::kErrorProtocolNotFound || av_error == compat::kErrorDemuxerNotFound ||
      av_error == compat::kErrorDecoderNotFound) {
    return ErrorCode::kUnsupported;
  }
  if (av_error == compat::ErrorFromErrno(ENOMEM)) return ErrorCode::kResourceExhausted;
  if (av_error == compat::ErrorFromErrno(EINVAL)) return ErrorCode::kInvalidArgument;
  if (IsNetworkError(av_error)) return ErrorCode::kUnavailable;
  return ErrorCode::kIoError;
}

// Checks a local input before libav sees it, for clearer errors.
Status CheckLocalFile(const std::filesystem::path& path, const std::string& name) {
  std::error_code ec;
  std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    return MakeError(ErrorCode::kNotFound, name + " does not exist (" +
                                               AvErrorText(compat::ErrorFromErrno(ENOENT)) + ")");
  }
  if (ec) return MakeError(ErrorCode::kIoError, "cannot access " + name + ": " + ec.message());
  if (status.type() == std::filesystem::file_type::directory) {
    return MakeError(ErrorCode::kInvalidArgument, name + " is a directory, not a media file");
  }
  if (status.type() == std::filesystem::file_type::regular) {
    uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size == 0) {
      return MakeError(ErrorCode::kCorruptData, name + " is empty (0 bytes), not a media file");
    }
  }
  return Ok();
}

// Error for a failure while opening `name` and reading its header
// (avformat_open_input, avformat_find_stream_info).
Error HeaderError(int av_error, const std::string& name) {
  if (av_error == compat::kErrorEof) {
    return Error(ErrorCode::kCorruptData,
                 name + " ends before its header is complete (truncated?)");
  }
  ErrorCode code = CodeForAvError(av_error);
  // Demuxers report headers they cannot parse as INVALIDDATA or EINVAL.
  if (code == ErrorCode::kInvalidArgument || code == ErrorCode::kCorruptData) {
    return Error(ErrorCode::kCorruptData, name +
                                              " is not a recognised media file, or its header is "
                                              "damaged (" +
                                              DescribeAvError(av_error) + ")");
  }
  if (code == ErrorCode::kNotFound) {
    return Error(code, name + " does not exist (" + DescribeAvError(av_error) + ")");
  }
  return Error(code, "cannot open " + name + ": " + DescribeAvError(av_error));
}

double DeclaredDuration(const AVFormatContext& format, const AVStream& stream) {
  if (stream.duration != compat::kNoPtsValue && stream.duration > 0 && stream.time_base.den > 0) {
    return static_cast<double>(stream.duration) * av_q2d(stream.time_base);
  }
  if (format.duration != compat::kNoPtsValue && format.duration > 0) {
    return static_cast<double>(format.duration) / static_cast<double>(compat::kTimeBase);
  }
  return -1;
}

}  // namespace

struct AudioDecoder::Impl {
  ~Impl() { StopReader(); }

  // libav's interrupt callback: true abandons the blocking call in progress.
  static int Interrupt(void* opaque);
  // The next packet (or a negative AVERROR). With background input and
  // block = false, kErrorAgain when none is queued yet.
  int NextPacket(bool block);
  void ReaderLoop();
  void StopReader();
  // The error for a failed read, taking cancellation and stalls into account.
  Error ReadError(int av_error) const;
  Result<size_t> ReadSome(std::vector<float>& out, size_t max_samples, bool block);

  // One step of the decode loop: takes a decoded frame, or feeds a packet, or
  // finishes the input. Appends any output to pending.
  Status Step();

  Status HandleFrame();
  Status ConfigureResampler(const AVFrame& frame);
  void Convert(const uint8_t** input, int input_samples);
  void FlushResampler();
  Status CheckComplete();
  // Strict: a kCorruptData error describing the damage. Otherwise counts it.
  Status Damage(std::string_view what, int av_error);
  size_t available() const { return pending.size() - pending_pos; }

  std::string name;  // the input as shown in messages
  AudioDecodeOptions options;
  AudioStreamInfo info;
  // Declared duration used for truncation detection; < 0 when unreliable.
  double expected_duration_s = -1;

  FormatContextPtr format;
  CodecContextPtr codec;
  PacketPtr packet;
  FramePtr frame;
  int stream_index = -1;

  // Resampler and the input parameters it was built for.
  SwrContextPtr swr;
  int swr_rate = 0;
  int swr_format = -1;
  ChannelLayout swr_layout;

  std::vector<float> pending;  // output decoded but not yet returned by Read
  size_t pending_pos = 0;
  std::vector<float> scratch;  // resampler output buffer

  bool input_ended = false;    // demuxer finished; the decoder has been sent the flush packet
  bool decoder_ended = false;  // decoder drained
  bool finished = false;       // resampler flushed: everything is in pending
  int consecutive_read_errors = 0;
  int consecutive_decode_errors = 0;

  double decoded_source_s = 0;  // duration of the frames decoded so far
  uint64_t damaged = 0;
  uint64_t samples_out = 0;
  std::optional<Error> failure;  // sticky error returned by Read
  bool nonblocking_read = false; // this Read must not wait for packets (ReadAvailable)
  bool would_block = false;      // the last Step found no queued packet (background input)
  bool end_returned = false;     // Read returned 0 at the end of the input

  // Interrupts and stalls (read by Interrupt() on whichever thread does I/O).
  std::atomic<int64_t> last_input_ns{0};  // steady clock of the last packet (or of Open)
  std::atomic<bool> stalled{false};
  std::atomic<bool> stop_reader{false};

  // Background input: the input thread fills `queue` with packets of the
  // audio stream, or an error/EOF code as the last entry.
  struct Queued {
    PacketPtr packet;  // null for an error entry
    int error = 0;
  };
  std::thread reader;
  std::mutex queue_mutex;
  std::condition_variable queue_changed;
  std::deque<Queued> queue;  // guarded by queue_mutex
  bool reader_done = false;  // guarded by queue_mutex: no more entries will come
};

int AudioDecoder::Impl::Interrupt(void* opaque) {
  auto* d = static_cast<Impl*>(opaque);
  if (d->stop_reader.load(std::memory_order_relaxed)) return 1;
  if (d->options.cancel != nullptr && d->options.cancel->load(std::memory_order_relaxed)) return 1;
  if (d->options.stall_timeout_s > 0) {
    const double idle_s =
        static_cast<double>(SteadyNanos() - d->last_input_ns.load(std::memory_order_relaxed)) * 1e-9;
    if (idle_s > d->options.stall_timeout_s) {
      d->stalled.store(true, std::memory_order_relaxed);
      return 1;
    }
  }
  return 0;
}

Error AudioDecoder::Impl::ReadError(int av_error) const {
  if (options.cancel != nullptr && options.cancel->load()) {
    return Error(ErrorCode::kCancelled, "reading " + name + " was cancelled");
  }
  if (stalled.load()) {
    return Error(ErrorCode::kUnavailable, name + " stalled: no data for " +
                                              FormatSeconds(options.stall_timeout_s) + " s");
  }
  return Error(CodeForAvError(av_error), "reading " + name + " failed at about " +
                                             FormatSeconds(decoded_source_s) +
                                             " s: " + DescribeAvError(av_error));
}

int AudioDecoder::Impl::NextPacket(bool block) {
  if (!options.background_input) {
    int ret = av_read_frame(format.get(), packet.get());
    if (ret >= 0) last_input_ns.store(SteadyNanos(), std::memory_order_relaxed);
    return ret;
  }
  std::unique_lock lock(queue_mutex);
  if (block) queue_changed.wait(lock, [&] { return !queue.empty() || reader_done; });
  if (queue.empty()) return reader_done ? compat::kErrorEof : compat::kErrorAgain;
  Queued next = std::move(queue.front());
  if (next.packet) {
    queue.pop_front();
    av_packet_move_ref(packet.get(), next.packet.get());
    lock.unlock();
    queue_changed.notify_all();  // room for the input thread
    return 0;
  }
  if (next.error == compat::kErrorInvalidData) {  // damage: report once, go on
    queue.pop_front();
    return next.error;
  }
  queue.front() = std::move(next);  // a final error or EOF stays for later calls
  return next.error;
}

void AudioDecoder::Impl::ReaderLoop() {
  int consecutive_invalid = 0;
  while (!stop_reader.load()) {
    PacketPtr p = MakePacket();
    int ret = p ? av_read_frame(format.get(), p.get()) : compat::ErrorFromErrno(ENOMEM);
    Queued entry;
    if (ret >= 0) {
      last_input_ns.store(SteadyNanos(), std::memory_order_relaxed);
      consecutive_invalid = 0;
      if (p->stream_index != stream_index) {
        AVStream* other = format->streams[p->stream_index];
        if (other != nullptr) other->discard = AVDISCARD_ALL;
        continue;
      }
      entry.packet = std::move(p);
    } else {
      entry.error = ret;
      if (ret == compat::kErrorInvalidData && ++consecutive_invalid > kMaxConsecutiveReadErrors) {
        entry.error = compat::kErrorEof;
      }
    }
    const bool last = !entry.packet && entry.error != compat::kErrorInvalidData;
    bool was_empty = false;
    {
      std::unique_lock lock(queue_mutex);
      queue_changed.wait(lock, [&] { return queue.size() < kMaxQueuedPackets || stop_reader.load(); });
      if (stop_reader.load()) break;
      was_empty = queue.empty();
      queue.push_back(std::move(entry));
      if (last) reader_done = true;
    }
    queue_changed.notify_all();
    if ((was_empty || last) && options.on_input) options.on_input();
    if (last) return;
  }
  std::lock_guard lock(queue_mutex);
  reader_done = true;
}

void AudioDecoder::Impl::StopReader() {
  if (!reader.joinable()) return;
  stop_reader.store(true);
  queue_changed.notify_all();
  reader.join();
}

Status AudioDecoder::Impl::Damage(std::string_view what, int av_error) {
  if (options.strict) {
    std::string message = name + " is damaged at about " + FormatSeconds(decoded_source_s) +
                          " s: " + std::string(what);
    if (av_error < 0) message += " (" + DescribeAvError(av_error) + ")";
    return MakeError(ErrorCode::kCorruptData, std::move(message));
  }
  ++damaged;
  TakeLibavLogMessage();  // do not let it attach to an unrelated later error
  return Ok();
}

Status AudioDecoder::Impl::Step() {
  if (decoder_ended) {
    FlushResampler();
    finished = true;
    return CheckComplete();
  }

  int ret = avcodec_receive_frame(codec.get(), frame.get());
  if (ret == 0) {
    consecutive_decode_errors = 0;
    return HandleFrame();
  }
  if (ret == compat::kErrorEof) {
    decoder_ended = true;
    return Ok();
  }
  if (ret != compat::kErrorAgain) {
    if (++consecutive_decode_errors > kMaxConsecutiveDecodeErrors) {
      if (options.strict) return Damage("the decoder keeps failing", ret);
      decoder_ended = true;
      return Ok();
    }
    return Damage("a frame failed to decode", ret);
  }
  if (input_ended) {  // EAGAIN after the flush packet: nothing more will come
    decoder_ended = true;
    return Ok();
  }

  // The decoder needs input.
  ret = NextPacket(/*block=*/!nonblocking_read);
  if (ret == compat::kErrorAgain && options.background_input) {
    would_block = true;
    return Ok();
  }
  if (ret == compat::kErrorEof) {
    input_ended = true;
    ret = avcodec_send_packet(codec.get(), nullptr);
    if (ret < 0 && ret != compat::kErrorEof) decoder_ended = true;
    return Ok();
  }
  if (ret < 0) {
    if (ret != compat::kErrorInvalidData) return std::unexpected(ReadError(ret));
    if (++consecutive_read_errors > kMaxConsecutiveReadErrors) {
      input_ended = true;
      avcodec_send_packet(codec.get(), nullptr);
    }
    return Damage("unreadable data", ret);
  }
  consecutive_read_errors = 0;
  consecutive_decode_errors = 0;

  if (packet->stream_index != stream_index) {
    // A stream that appeared after the header (e.g. in FLV or MPEG-TS).
    AVStream* other = format->streams[packet->stream_index];
    if (other != nullptr) other->discard = AVDISCARD_ALL;
    av_packet_unref(packet.get());
    return Ok();
  }
  if ((packet->flags & compat::kPacketFlagCorrupt) != 0) {
    av_packet_unref(packet.get());
    return Damage("the container marks a packet as corrupt", 0);
  }
  ret = avcodec_send_packet(codec.get(), packet.get());
  av_packet_unref(packet.get());
  if (ret < 0 && ret != compat::kErrorAgain) return Damage("a packet failed to decode", ret);
  return Ok();
}

Status AudioDecoder::Impl::HandleFrame() {
  struct Unref {
    AVFrame* frame;
    ~Unref() { av_frame_unref(frame); }
  } unref{frame.get()};

  const AVFrame& f = *frame;
  if (f.nb_samples <= 0) return Ok();
  if (f.sample_rate <= 0 || f.ch_layout.nb_channels <= 0) {
    return Damage("a decoded frame has no sample rate or channel count", 0);
  }
  if (f.ch_layout.nb_channels > kMaxChannels) {
    return MakeError(ErrorCode::kUnsupported, name + " has " +
                                                  std::to_string(f.ch_layout.nb_channels) +
                                                  " audio channels; at most " +
                                                  std::to_string(kMaxChannels) + " are supported");
  }
  if ((f.flags & compat::kFrameFlagCorrupt) != 0 || f.decode_error_flags != 0) {
    if (Status s = Damage("the decoder reports a damaged frame", 0); !s) return s;
  }

  bool layout_changed = swr_layout.get().nb_channels != f.ch_layout.nb_channels ||
                        (f.ch_layout.order != AV_CHANNEL_ORDER_UNSPEC &&
                         av_channel_layout_compare(&swr_layout.get(), &f.ch_layout) != 0);
  if (!swr || swr_rate != f.sample_rate || swr_format != f.format || layout_changed) {
    FlushResampler();  // keep the tail of the audio before the change
    if (Status s = ConfigureResampler(f); !s) return s;
  }
  const uint8_t** input = const_cast<const uint8_t**>(f.extended_data);
  Convert(input, f.nb_samples);
  decoded_source_s += static_cast<double>(f.nb_samples) / f.sample_rate;
  return Ok();
}

Status AudioDecoder::Impl::ConfigureResampler(const AVFrame& f) {
  swr.reset();
  if (f.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
    swr_layout.SetDefault(f.ch_layout.nb_channels);
  } else if (int ret = swr_layout.CopyFrom(f.ch_layout); ret < 0) {
    return MakeError(ErrorCode::kResourceExhausted,
                     "decoding " + name + ": cannot copy channel layout: " + AvErrorText(ret));
  }
  ChannelLayout mono;
  mono.SetDefault(1);

  SwrContext* raw = nullptr;
  int ret = compat::AllocResampler(&raw, mono.get(), AV_SAMPLE_FMT_FLT, options.sample_rate,
                                   swr_layout.get(), static_cast<AVSampleFormat>(f.format),
                                   f.sample_rate);
  SwrContextPtr context(raw);
  if (ret < 0 || !context) {
    return MakeError(ErrorCode::kUnsupported, "decoding " + name + ": cannot convert " +
                                                  std::to_string(f.ch_layout.nb_channels) +
                                                  " channels of " + std::to_string(f.sample_rate) +
                                                  " Hz audio: " + DescribeAvError(ret));
  }
  // Equal-weight average of all input channels (libswresample's default
  // downmix weights channels by position instead).
  const int channels = swr_layout.get().nb_channels;
  std::vector<double> matrix(static_cast<size_t>(channels), 1.0 / channels);
  ret = swr_set_matrix(context.get(), matrix.data(), channels);
  // A shorter polyphase filter than libswresample's default (32 taps): the
  // fingerprints only use content well below the output's Nyquist frequency,
  // and resampling is a fifth of the cost of adding a reference otherwise.
  if (ret >= 0) ret = av_opt_set_int(context.get(), "filter_size", kResamplerFilterSize, 0);
  if (ret >= 0) ret = swr_init(context.get());
  if (ret < 0) {
    return MakeError(ErrorCode::kInternal,
                     "decoding " + name + ": cannot set up the resampler: " + DescribeAvError(ret));
  }
  swr = std::move(context);
  swr_rate = f.sample_rate;
  swr_format = f.format;
  return Ok();
}

void AudioDecoder::Impl::Convert(const uint8_t** input, int input_samples) {
  int capacity = swr_get_out_samples(swr.get(), input_samples);
  if (capacity <= 0) return;
  scratch.resize(static_cast<size_t>(capacity));
  uint8_t* output = reinterpret_cast<uint8_t*>(scratch.data());
  int produced = swr_convert(swr.get(), &output, capacity, input, input_samples);
  if (produced <= 0) return;
  pending.reserve(pending.size() + static_cast<size_t>(produced));
  for (int i = 0; i < produced; ++i) {
    float v = scratch[static_cast<size_t>(i)];
    pending.push_back(std::isnan(v) ? 0.0f : std::clamp(v, -1.0f, 1.0f));
  }
}

void AudioDecoder::Impl::FlushResampler() {
  if (!swr) return;
  // swr_convert with no input drains the filter delay; loop until it is empty.
  for (int round = 0; round < 16; ++round) {
    size_t before = pending.size();
    Convert(nullptr, 0);
    if (pending.size() == before) break;
  }
  swr.reset();
}

Status AudioDecoder::Impl::CheckComplete() {
  if (expected_duration_s <= 0) return Ok();
  double slack = std::max(kTruncationSlackS, kTruncationSlackRatio * expected_duration_s);
  if (decoded_source_s + slack >= expected_duration_s) return Ok();
  if (options.strict) {
    return MakeError(ErrorCode::kCorruptData,
                     name + " is truncated or damaged: its audio stops at about " +
                         FormatSeconds(decoded_source_s) + " s of a declared " +
                         FormatSeconds(expected_duration_s) + " s");
  }
  ++damaged;
  return Ok();
}

AudioDecoder::AudioDecoder(PrivateTag, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AudioDecoder::~AudioDecoder() = default;

const AudioStreamInfo& AudioDecoder::info() const { return impl_->info; }
uint64_t AudioDecoder::damaged_packets() const { return impl_->damaged; }
uint64_t AudioDecoder::samples_out() const { return impl_->samples_out; }

Result<std::unique_ptr<AudioDecoder>> AudioDecoder::Open(const std::string& url,
                                                         const AudioDecodeOptions& options) {
  InitLibav();
  if (url.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "no input to decode: the path or URL is empty");
  }
  const std::string name = DisplayName(url);
  if (options.sample_rate < kMinSampleRate || options.sample_rate > kMaxSampleRate) {
    return MakeError(ErrorCode::kInvalidArgument, "decoding " + name + ": output sample rate " +
                                                      std::to_string(options.sample_rate) +
                                                      " Hz is outside " +
                                                      std::to_string(kMinSampleRate) + ".." +
                                                      std::to_string(kMaxSampleRate) + " Hz");
  }
  if (std::optional<std::filesystem::path> path = LocalPath(url)) {
    if (Status s = CheckLocalFile(*path, name); !s) return std::unexpected(s.error());
  }

  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->options = options;

  AvDictionary format_options;
  for (const auto& [key, value] : options.format_options) {
    if (int ret = format_options.Set(key.c_str(), value.c_str()); ret < 0) {
      return MakeError(CodeForAvError(ret), "opening " + name + ": cannot set format option '" +
                                                key + "': " + AvErrorText(ret));
    }
  }

  // Allocated up front so that later network options (interrupt callback) can be set here.
  AVFormatContext* raw_format = avformat_alloc_context();
  if (raw_format == nullptr) {
    return MakeError(ErrorCode::kResourceExhausted, "opening " + name + ": out of memory");
  }
  TakeLibavLogMessage();
  // Apply the generic AVFormatContext options first, so that a bad value
  // ("probesize=abc") is reported as such; demuxer- and protocol-specific
  // ones stay in the dictionary for avformat_open_input.
  int ret = av_opt_set_dict(raw_format, format_options.out());
  if (ret < 0) {
    avformat_free_context(raw_format);
    return MakeError(
        ErrorCode::kInvalidArgument,
        "opening " + name + ": bad format option value (" + DescribeAvError(ret) + ")");
  }
  raw_format->interrupt_callback.callback = &Impl::Interrupt;
  raw_format->interrupt_callback.opaque = impl.get();
  impl->last_input_ns.store(SteadyNanos());
  // On failure avformat_open_input frees raw_format.
  ret = avformat_open_input(&raw_format, url.c_str(), nullptr, format_options.out());
  if (ret < 0) {
    if (ret == compat::kErrorExit || impl->stalled.load()) {
      return std::unexpected(impl->ReadError(ret).Wrap("opening " + name));
    }
    return std::unexpected(HeaderError(ret, name));
  }
  impl->format.reset(raw_format);
  AVFormatContext& format = *impl->format;
  if (const AVDictionaryEntry* unknown = format_options.First()) {
    return MakeError(ErrorCode::kInvalidArgument, "opening " + name + ": unknown format option '" +
                                                      std::string(unknown->key) + "'");
  }

  ret = avformat_find_stream_info(&format, nullptr);
  if (ret < 0) {
    if (ret == compat::kErrorExit || impl->stalled.load()) {
      return std::unexpected(impl->ReadError(ret).Wrap("opening " + name));
    }
    return std::unexpected(HeaderError(ret, name));
  }

  const AVCodec* decoder = nullptr;
  int index = av_find_best_stream(&format, AVMEDIA_TYPE_AUDIO, -1, -1, &decoder, 0);
  if (index == compat::kErrorStreamNotFound) {
    return MakeError(ErrorCode::kUnsupported, name + " has no audio stream");
  }
  if (index == compat::kErrorDecoderNotFound || (index >= 0 && decoder == nullptr)) {
    int any = av_find_best_stream(&format, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    std::string codec_name = "unknown";
    if (any >= 0) {
      const AVCodecParameters& params = *format.streams[any]->codecpar;
      codec_name = params.codec_id != AV_CODEC_ID_NONE
                       ? std::string(avcodec_get_name(params.codec_id))
                       : "unknown (format tag " + std::to_string(params.codec_tag) + ")";
    }
    return MakeError(ErrorCode::kUnsupported,
                     name + " uses audio codec " + codec_name + ", which this build cannot decode");
  }
  if (index < 0) {
    return MakeError(CodeForAvError(index),
                     name + ": cannot select an audio stream (" + DescribeAvError(index) + ")");
  }
  impl->stream_index = index;
  AVStream& stream = *format.streams[index];
  for (unsigned i = 0; i < format.nb_streams; ++i) {
    if (static_cast<int>(i) != index) format.streams[i]->discard = AVDISCARD_ALL;
  }

  impl->codec = MakeCodecContext(decoder);
  impl->packet = MakePacket();
  impl->frame = MakeFrame();
  if (!impl->codec || !impl->packet || !impl->frame) {
    return MakeError(ErrorCode::kResourceExhausted, "opening " + name + ": out of memory");
  }
  AVCodecContext& codec = *impl->codec;
  ret = avcodec_parameters_to_context(&codec, stream.codecpar);
  if (ret < 0) {
    return MakeError(CodeForAvError(ret),
                     "opening " + name + ": bad codec parameters (" + DescribeAvError(ret) + ")");
  }
  codec.pkt_timebase = stream.time_base;
  if (options.strict) codec.err_recognition |= AV_EF_EXPLODE;
  ret = avcodec_open2(&codec, decoder, nullptr);
  if (ret < 0) {
    return MakeError(ErrorCode::kUnsupported, name + ": cannot start the " +
                                                  avcodec_get_name(stream.codecpar->codec_id) +
                                                  " decoder (" + DescribeAvError(ret) + ")");
  }

  AudioStreamInfo& info = impl->info;
  info.codec = avcodec_get_name(stream.codecpar->codec_id);
  info.source_sample_rate = stream.codecpar->sample_rate;
  info.source_channels = stream.codecpar->ch_layout.nb_channels;
  info.duration_s = DeclaredDuration(format, stream);
  info.container = format.iformat != nullptr ? format.iformat->name : "";
  // A duration guessed from the bit rate (or the whole file's duration when
  // there are other streams) is no basis for calling the input truncated.
  bool stream_has_duration = stream.duration != compat::kNoPtsValue && stream.duration > 0;
  if (format.duration_estimation_method != AVFMT_DURATION_FROM_BITRATE &&
      (stream_has_duration || format.nb_streams == 1)) {
    impl->expected_duration_s = info.duration_s;
  }
  TakeLibavLogMessage();
  if (options.background_input) {
    Impl* d = impl.get();
    d->reader = std::thread([d] { d->ReaderLoop(); });
  }
  return std::make_unique<AudioDecoder>(PrivateTag{}, std::move(impl));
}

Result<size_t> AudioDecoder::Read(std::vector<float>& out, size_t max_samples) {
  return impl_->ReadSome(out, max_samples, /*block=*/true);
}

Result<size_t> AudioDecoder::ReadAvailable(std::vector<float>& out, size_t max_samples) {
  if (!impl_->options.background_input) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "decoding " + impl_->name + ": ReadAvailable() needs background_input");
  }
  return impl_->ReadSome(out, max_samples, /*block=*/false);
}

bool AudioDecoder::finished() const { return impl_->end_returned || impl_->failure.has_value(); }

Result<size_t> AudioDecoder::Impl::ReadSome(std::vector<float>& out, size_t max_samples,
                                            bool block) {
  Impl& d = *this;
  if (max_samples == 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "decoding " + d.name + ": Read() needs max_samples > 0");
  }
  if (d.failure) return std::unexpected(*d.failure);

  d.nonblocking_read = !block;
  d.would_block = false;
  while (d.available() < max_samples && !d.finished && !d.would_block) {
    if (Status s = d.Step(); !s) {
      d.failure = s.error();
      return std::unexpected(s.error());
    }
  }

  size_t n = std::min(d.available(), max_samples);
  if (n == 0 && !d.finished) return size_t{0};  // nothing queued yet (ReadAvailable)
  if (n == 0) d.end_returned = true;
  if (n == 0 && d.samples_out == 0) {
    std::string message = d.name + " contains no audio samples";
    if (d.damaged > 0) {
      message += " (" + std::to_string(d.damaged) + " damaged packets were skipped)";
    }
    d.failure = Error(ErrorCode::kCorruptData, std::move(message));
    return std::unexpected(*d.failure);
  }
  auto begin = d.pending.begin() + static_cast<std::ptrdiff_t>(d.pending_pos);
  out.insert(out.end(), begin, begin + static_cast<std::ptrdiff_t>(n));
  d.pending_pos += n;
  d.samples_out += n;
  if (d.pending_pos == d.pending.size()) {
    d.pending.clear();
    d.pending_pos = 0;
  } else if (d.pending_pos >= kCompactThreshold && d.pending_pos * 2 >= d.pending.size()) {
    d.pending.erase(d.pending.begin(),
                    d.pending.begin() + static_cast<std::ptrdiff_t>(d.pending_pos));
    d.pending_pos = 0;
  }
  return n;
}

Result<DecodedAudio> DecodeFile(const std::string& path, const AudioDecodeOptions& options) {
  Result<std::unique_ptr<AudioDecoder>> decoder = AudioDecoder::Open(path, options);
  if (!decoder) return std::unexpected(decoder.error());
  AudioDecoder& d = **decoder;

  DecodedAudio result;
  result.sample_rate = options.sample_rate;
  result.info = d.info();
  if (result.info.duration_s > 0) {
    double estimate = result.info.duration_s * options.sample_rate * 1.02 + 4096;
    result.samples.reserve(static_cast<size_t>(std::min(estimate, kMaxReserveSamples)));
  }
  while (true) {
    Result<size_t> n = d.Read(result.samples, kDecodeFileChunk);
    if (!n) return std::unexpected(n.error());
    if (*n == 0) break;
  }
  result.damaged_packets = d.damaged_packets();
  return result;
}

}  // namespace earshot::media
