#include "scan/scan_session.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "common/log.h"
#include "common/time_format.h"
#include "delivery/http_client.h"
#include "recognition/fingerprint_params.h"

namespace earshot::scan {
namespace {

using Clock = std::chrono::steady_clock;

// Finishing retries a refused write (a full disk) this many times, a second apart.
constexpr int kMaxFinishWriteRetries = 300;

Clock::time_point After(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string SchemeOf(const std::string& input) {
  size_t colon = input.find(':');
  if (colon == std::string::npos || colon < 2) return {};
  std::string scheme = input.substr(0, colon);
  for (char c : scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return {};
  }
  return scheme;
}

}  // namespace

bool IsNetworkInput(const std::string& input) {
  std::string scheme = SchemeOf(input);
  return !scheme.empty() && scheme != "file" && scheme != "pipe";
}

std::string NewScanId() {
  std::random_device random;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%08x", random());
  return CompactTimeUtc(UnixMillisNow()) + "-" + suffix;
}

Result<std::unique_ptr<ScanSession>> ScanSession::Create(const ScanShared& shared,
                                                         ScanOptions options, std::string scan_id,
                                                         std::function<void()> wake) {
  if (shared.catalog == nullptr || (shared.matcher == nullptr && options.matcher == nullptr)) {
    return MakeError(ErrorCode::kInternal, "scan: no catalog or matcher given");
  }
  if (options.input.empty()) return MakeError(ErrorCode::kInvalidArgument, "scan: no input given");
  if (Status s = ValidateStreamId(options.stream_id); !s) return std::unexpected(s.error());
  if (!options.channel_id.empty()) {
    if (Status s = ValidateStreamId(options.channel_id, "channel id"); !s) {
      return std::unexpected(s.error());
    }
  }
  if (options.stall_timeout_s <= 0 || options.max_reconnects < 0 ||
      options.reconnect_backoff_s < 0 || options.max_backoff_s < options.reconnect_backoff_s ||
      options.ongoing_every_s < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "scan " + options.stream_id +
                         ": stall timeout must be > 0, reconnects and backoffs >= 0 (max >= "
                         "initial), ongoing interval >= 0");
  }
  for (const std::string& h : options.http_headers) {
    if (h.find(':') == std::string::npos || h.find_first_of("\r\n") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "scan " + options.stream_id + ": header '" + h +
                           "' is not one 'Name: value' line");
    }
  }
  ScanIdentity identity{options.stream_id, options.channel_id, std::move(scan_id),
                        recognition::kAlgorithmVersion};
  auto writer = ResultsWriter::Open(shared.results_dir, identity, shared.outbox);
  if (!writer) return std::unexpected(writer.error());
  const bool network = IsNetworkInput(options.input);
  return std::unique_ptr<ScanSession>(new ScanSession(shared, std::move(options),
                                                      std::move(identity), std::move(*writer),
                                                      std::move(wake), network));
}

ScanSession::ScanSession(const ScanShared& shared, ScanOptions options, ScanIdentity identity,
                         std::unique_ptr<ResultsWriter> writer, std::function<void()> wake,
                         bool network)
    : shared_(shared),
      options_(std::move(options)),
      identity_(std::move(identity)),
      writer_(std::move(writer)),
      wake_(std::move(wake)),
      network_(network),
      recognizer_(options_.matcher ? *options_.matcher : *shared_.matcher, options_.stream),
      entries_(*shared_.catalog) {
  report_.stream_id = identity_.stream_id;
  report_.scan_id = identity_.scan_id;
}

ScanSession::~ScanSession() = default;

void ScanSession::Cancel() {
  cancel_.store(true);
  if (wake_) wake_();
}

int64_t ScanSession::NowMs() const { return UnixMillisNow(); }

ScanSession::Next ScanSession::Step(size_t budget_samples) {
  if (cancel_.load() && state_ != State::kFinish && state_ != State::kDone) {
    end_status_ = "cancelled";
    return Finish();
  }
  switch (state_) {
    case State::kConnect: return Connect();
    case State::kRead: return Read(std::max<size_t>(budget_samples, 1));
    case State::kFinish: return Finish();
    case State::kDone: return {Next::Kind::kDone};
  }
  return {Next::Kind::kDone};
}

ScanSession::Next ScanSession::Connect() {
  if (started_ms_ == 0) {
    started_ms_ = NowMs();
    StartVideo();
    const recognition::Matcher& matcher = options_.matcher ? *options_.matcher : *shared_.matcher;
    if (video_ && matcher.index().TrackCount() == 0) {
      // No audio reference to look for: decoding the audio would be wasted.
      Log(LogLevel::kInfo, "no audio references in the catalog; scanning the video alone",
          {{"stream_id", identity_.stream_id}, {"input", delivery::RedactUrl(options_.input)}});
      video_only_ = true;
      state_ = State::kRead;
      return {Next::Kind::kRunAgain};
    }
  }
  media::AudioDecodeOptions decode;
  decode.sample_rate = shared_.catalog->params().sample_rate;
  decode.strict = false;
  decode.cancel = &cancel_;
  if (network_) {
    decode.stall_timeout_s = options_.stall_timeout_s;
    decode.background_input = true;
    decode.on_input = wake_;
    const std::string scheme = SchemeOf(options_.input);
    if (!options_.http_headers.empty() && (scheme == "http" || scheme == "https")) {
      std::string headers;
      for (const std::string& h : options_.http_headers) headers += h + "\r\n";
      decode.format_options["headers"] = headers;
    }
  }
  const std::string url = options_.input == "-" ? "pipe:0" : options_.input;
  auto decoder = media::AudioDecoder::Open(url, decode);
  if (!decoder) {
    if (cancel_.load()) {
      end_status_ = "cancelled";
      return Finish();
    }
    if (decoder.error().code() == ErrorCode::kUnsupported && video_ && !got_audio_) {
      // No audio track (a muted re-stream): the video side scans alone.
      Log(LogLevel::kInfo, "no audio; scanning the video alone",
          {{"stream_id", identity_.stream_id}, {"input", delivery::RedactUrl(options_.input)},
           {"reason", decoder.error().ToString()}});
      last_error_ = decoder.error();
      video_only_ = true;
      state_ = State::kRead;
      return {Next::Kind::kRunAgain};
    }
    if (network_) return InputLost(decoder.error());
    last_error_ = decoder.error();
    end_status_ = "failed";
    return Finish();
  }
  decoder_ = std::move(*decoder);
  if (report_.reconnects > 0 || failed_attempts_ > 0) {
    Log(LogLevel::kInfo, "reconnected",
        {{"stream_id", identity_.stream_id}, {"input", delivery::RedactUrl(options_.input)},
         {"at_stream_s", recognizer_.stream_seconds()}});
  } else {
    Log(LogLevel::kInfo, "scanning",
        {{"stream_id", identity_.stream_id}, {"scan_id", identity_.scan_id},
         {"input", delivery::RedactUrl(options_.input)}, {"codec", decoder_->info().codec}});
  }
  if (got_audio_ || failed_attempts_ > 0) ++report_.reconnects;
  if (options_.on_connected) options_.on_connected(decoder_->info());
  pace_start_ = Clock::now();
  pace_start_stream_s_ = recognizer_.stream_seconds();
  state_ = State::kRead;
  return {Next::Kind::kRunAgain};
}

ScanSession::Next ScanSession::InputLost(std::optional<Error> error) {
  if (decoder_) {
    damaged_before_ += decoder_->damaged_packets();
    decoder_.reset();
  }
  ++failed_attempts_;
  const bool ended = !error.has_value();
  if (!ended) last_error_ = error;
  const std::string reason = ended ? delivery::RedactUrl(options_.input) + " ended" : error->ToString();
  if (failed_attempts_ > options_.max_reconnects) {
    end_status_ = got_audio_ ? "ended" : "failed";
    if (got_audio_ && ended) last_error_.reset();
    Log(got_audio_ ? LogLevel::kInfo : LogLevel::kError,
        got_audio_ ? "input gone; scan ends" : "input unavailable; scan fails",
        {{"stream_id", identity_.stream_id}, {"attempts", failed_attempts_},
         {"reason", reason}});
    return Finish();
  }
  const double backoff = std::min(
      options_.max_backoff_s,
      options_.reconnect_backoff_s * std::pow(2.0, std::min(failed_attempts_ - 1, 30)));
  Log(LogLevel::kWarn, "input lost; reconnecting",
      {{"stream_id", identity_.stream_id}, {"attempt", failed_attempts_},
       {"of", options_.max_reconnects}, {"in_s", backoff}, {"reason", reason}});
  if (options_.on_input_lost) options_.on_input_lost(reason);
  state_ = State::kConnect;
  return {Next::Kind::kWaitUntil, After(backoff)};
}

ScanSession::Next ScanSession::Read(size_t budget_samples) {
  if (writer_->queued() > 0) {
    if (Status s = writer_->Flush(); !s) {
      Log(LogLevel::kError, "results not written yet", {{"stream_id", identity_.stream_id},
                                                        {"error", s.error().ToString()}});
    }
  }
  DrainVideo();
  if (video_only_) {
    if (!video_->done()) return {Next::Kind::kWaitForInput};
    const VideoWatchStats stats = video_->stats();
    if (stats.frames > 0) {
      last_error_.reset();
    } else {
      if (auto video_error = video_->error()) last_error_ = video_error;
      end_status_ = "failed";
    }
    return Finish();
  }
  const size_t chunk_max = static_cast<size_t>(shared_.catalog->params().sample_rate) / 2;
  size_t consumed = 0;
  while (consumed < budget_samples) {
    pcm_.clear();
    const size_t chunk = std::min(chunk_max, budget_samples - consumed);
    auto n = network_ ? decoder_->ReadAvailable(pcm_, chunk) : decoder_->Read(pcm_, chunk);
    if (!n) {
      if (cancel_.load() || n.error().code() == ErrorCode::kCancelled) {
        end_status_ = "cancelled";
        return Finish();
      }
      if (network_) return InputLost(n.error());
      last_error_ = n.error();
      end_status_ = "failed";
      return Finish();
    }
    if (*n == 0) {
      if (!decoder_->finished()) return {Next::Kind::kWaitForInput};
      if (network_) {
        return InputLost(std::nullopt);  // the source ended: it may come back
      }
      // A file: the video side may still be reading it.
      if (video_ && !video_->done()) return {Next::Kind::kWaitForInput};
      DrainVideo();
      return Finish();
    }
    consumed += *n;
    got_audio_ = true;
    failed_attempts_ = 0;
    recognizer_.Push(pcm_, events_);
    clock_.Record(recognizer_.stream_seconds(), NowMs());
    Publish(events_);
    if (options_.realtime && !network_) {
      const auto due = pace_start_ + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(
                                             recognizer_.stream_seconds() - pace_start_stream_s_));
      if (due > Clock::now()) return {Next::Kind::kWaitUntil, due};
    }
  }
  return {Next::Kind::kRunAgain};
}

void ScanSession::Publish(std::vector<recognition::StreamEvent>& events) {
  for (const recognition::StreamEvent& e : events) {
    PublishEvent(e, MatchType::kAudio,
                 {clock_.WallMillis(e.start_seconds), clock_.WallMillis(e.end_seconds), NowMs()});
  }
  events.clear();
}

void ScanSession::PublishEvent(const recognition::StreamEvent& e, MatchType type,
                               const ResponseTimes& times) {
  using Type = recognition::StreamEvent::Type;
  const store::CatalogEntry* entry = entries_.Find(e.track);
  if (entry == nullptr) return;  // removed from the catalog meanwhile
  const uint64_t key = type == MatchType::kVideo ? (kVideoKey | e.match_id) : e.match_id;
  if (e.type == Type::kOngoing) {
    auto last = last_ongoing_s_.find(key);
    const double since = last == last_ongoing_s_.end() ? 1e300 : e.reported_at_seconds - last->second;
    if (options_.ongoing_every_s <= 0 || since < options_.ongoing_every_s) return;
  }
  last_ongoing_s_[key] = e.reported_at_seconds;
  const uint64_t sequence = writer_->TakeSequence();
  nlohmann::json response = MatchResponse(identity_, sequence, e, *entry, times, type);
  if (type == MatchType::kVideo) response["algorithm_version"] = video::kFrameHashVersion;
  const std::string status = ResponseStatus(e.type);
  const std::string subject = "earshot: '" + entry->metadata.title + "' (" +
                              std::string(store::BusinessRuleName(entry->rule)) + ") " +
                              status.substr(6) + " in stream " + identity_.stream_id;
  if (Status s = writer_->Write(ResponseFileName(sequence, response), response,
                                "identification." + status, subject);
      !s) {
    Log(LogLevel::kError, "result not written yet (kept, will retry)",
        {{"stream_id", identity_.stream_id}, {"error", s.error().ToString()}});
  }
  if (options_.on_response) options_.on_response(response);
  Segment segment{MatchId(identity_, e.match_id, type), *entry, e.start_seconds, e.end_seconds,
                  e.reference_seconds, e.score, times.start_ms, times.end_ms, type};
  if (e.type == Type::kStarted) {
    ++report_.matches;
    open_segments_[key] = segment;
    Log(LogLevel::kInfo, "match started",
        {{"stream_id", identity_.stream_id}, {"match_id", segment.match_id},
         {"match_type", MatchTypeName(type)}, {"track_id", entry->id},
         {"title", entry->metadata.title}, {"rule", store::BusinessRuleName(entry->rule)},
         {"at_stream_s", e.start_seconds}, {"score", e.score}});
  } else if (e.type == Type::kEnded) {
    open_segments_.erase(key);
    last_ongoing_s_.erase(key);
    segments_.push_back(segment);
    Log(LogLevel::kInfo, "match ended",
        {{"stream_id", identity_.stream_id}, {"match_id", segment.match_id},
         {"duration_s", e.end_seconds - e.start_seconds}});
  }
}

void ScanSession::StartVideo() {
  const bool match = options_.video_index != nullptr && options_.video_index->size() > 0;
  if (!match && options_.thumbnail_every_s <= 0) return;
  // Inputs that can be read only once belong to the audio side: standard
  // input, and sockets the scanner listens on (a second bind would fail, or
  // take the stream from the audio side).
  const std::string input_scheme = SchemeOf(options_.input);
  if (options_.input == "-" || input_scheme == "udp" || input_scheme == "rtp" ||
      (input_scheme == "srt" && options_.input.find("mode=listener") != std::string::npos)) {
    Log(LogLevel::kWarn, "video is not scanned on an input that can be read only once",
        {{"stream_id", identity_.stream_id}, {"input", delivery::RedactUrl(options_.input)}});
    return;
  }
  VideoWatchOptions v;
  v.url = options_.input;
  v.display_name = delivery::RedactUrl(options_.input);
  v.stream_id = identity_.stream_id;
  v.network = network_;
  v.realtime = options_.realtime;
  v.stall_timeout_s = options_.stall_timeout_s;
  v.max_reconnects = options_.max_reconnects;
  v.reconnect_backoff_s = options_.reconnect_backoff_s;
  v.max_backoff_s = options_.max_backoff_s;
  if (!options_.http_headers.empty() && (input_scheme == "http" || input_scheme == "https")) {
    std::string headers;
    for (const std::string& h : options_.http_headers) headers += h + "\r\n";
    v.format_options["headers"] = headers;
  }
  v.params = options_.video_params;
  // Reports every second while a reference stays confirmed: the tracker
  // extends the match with each (so its end is known to a second); the
  // responses are still throttled by ongoing_every_s.
  v.params.matcher.repeat_ms = std::min<int64_t>(v.params.matcher.repeat_ms, 1000);
  v.match = match;
  v.thumbnail_every_ms =
      options_.thumbnail_every_s > 0 ? static_cast<int64_t>(options_.thumbnail_every_s * 1000.0) : 0;
  v.thumbnail_width = options_.thumbnail_width;
  video_ = VideoWatcher::Start(std::move(v), match ? options_.video_index : nullptr, wake_);
}

void ScanSession::DrainVideo() {
  if (!video_) return;
  for (VideoWatchItem& item : video_->Take()) {
    if (item.kind == VideoWatchItem::Kind::kThumbnail) {
      StoreThumbnail(item);
    } else {
      PublishEvent(item.event, MatchType::kVideo, {item.start_wall_ms, item.end_wall_ms, NowMs()});
    }
  }
}

void ScanSession::StoreThumbnail(VideoWatchItem& item) {
  char name[48];
  std::snprintf(name, sizeof(name), "thumb-%012lld.jpg",
                static_cast<long long>(std::llround(item.stream_s * 1000.0)));
  const std::string subject = "earshot: thumbnail of stream " + identity_.stream_id;
  std::string bytes(item.jpeg.begin(), item.jpeg.end());
  if (Status s = writer_->WriteBytes(name, std::move(bytes), "stream.thumbnail", subject, false);
      !s) {
    Log(LogLevel::kError, "thumbnail not written yet (kept, will retry)",
        {{"stream_id", identity_.stream_id}, {"error", s.error().ToString()}});
  }
  ++report_.thumbnails;
  if (options_.on_thumbnail) {
    options_.on_thumbnail({identity_.stream_id, identity_.channel_id, name, item.stream_s,
                           item.wall_ms, item.jpeg});
  }
}

ScanSession::Next ScanSession::Finish() {
  if (state_ != State::kFinish) {
    state_ = State::kFinish;
    if (decoder_) {
      damaged_before_ += decoder_->damaged_packets();
      decoder_.reset();
    }
    double video_seconds = 0;
    if (video_) {
      video_->Join();  // ends its open matches
      DrainVideo();
      const VideoWatchStats stats = video_->stats();
      report_.video_frames = stats.frames;
      video_seconds = stats.stream_seconds;
      damaged_before_ += stats.damaged_packets;
      if (auto video_error = video_->error(); video_error && !video_only_) {
        Log(LogLevel::kWarn, "video not scanned", {{"stream_id", identity_.stream_id},
                                                   {"error", video_error->ToString()}});
      }
    }
    recognizer_.Finish(events_);
    Publish(events_);
    SummaryInfo info;
    info.status = end_status_;
    if (last_error_ && end_status_ != "cancelled") {
      info.error_code = std::string(ErrorCodeName(last_error_->code()));
      info.error_message = last_error_->message();
    }
    info.started_ms = started_ms_ != 0 ? started_ms_ : NowMs();
    info.ended_ms = NowMs();
    info.stream_seconds = std::max(recognizer_.stream_seconds(), video_seconds);
    info.reconnects = report_.reconnects;
    info.damaged_packets = damaged_before_;
    std::vector<Segment> segments = segments_;
    std::sort(segments.begin(), segments.end(),
              [](const Segment& a, const Segment& b) { return a.start_s < b.start_s; });
    const nlohmann::json summary = StreamSummary(identity_, info, segments);
    const std::string subject = "earshot: stream " + identity_.stream_id + " " + end_status_ +
                                ", " + std::to_string(segments.size()) + " catalogued segment(s)";
    (void)writer_->Write("summary.json", summary, "stream.summary", subject);
    report_.status = end_status_;
    report_.error = info.error_code.empty() ? std::nullopt : last_error_;
    report_.stream_seconds = info.stream_seconds;
    report_.damaged_packets = damaged_before_;
  }
  if (writer_->queued() > 0) {
    Status s = writer_->Flush();
    if (!s && finish_write_retries_ < kMaxFinishWriteRetries) {
      ++finish_write_retries_;
      Log(LogLevel::kError, "results not written yet; retrying in 1 s",
          {{"stream_id", identity_.stream_id}, {"queued", writer_->queued()},
           {"error", s.error().ToString()}});
      return {Next::Kind::kWaitUntil, After(1.0)};
    }
    if (!s) {
      Log(LogLevel::kError, "giving up on results that could not be written",
          {{"stream_id", identity_.stream_id}, {"lost", writer_->queued()},
           {"error", s.error().ToString()}});
      report_.error = s.error();
    }
  }
  report_.files_written = writer_->files_written();
  Log(LogLevel::kInfo, "scan finished",
      {{"stream_id", identity_.stream_id}, {"status", report_.status},
       {"stream_s", report_.stream_seconds}, {"matches", report_.matches},
       {"reconnects", report_.reconnects}});
  state_ = State::kDone;
  if (options_.on_finished) options_.on_finished(report_);
  return {Next::Kind::kDone};
}

}  // namespace earshot::scan
