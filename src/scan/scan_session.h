// One stream being scanned: input → decode → streaming recogniser → results.
//
// A session is a state machine advanced by Step() on whichever pool thread
// the Scanner gives it; each Step does a bounded amount of work and says
// when it wants to run again (at once, when input arrives, at a time, never).
//
// Inputs: local files (read inline; with `realtime` paced at real time) and
// network URLs (RTMP, HLS over http/https, SRT, udp://, ...) read through
// libavformat. A network input is read by the decoder's input thread (it
// only waits on the socket and demuxes); decoding and recognition run in
// Step(). Network inputs survive what live streams do:
//   - a stall (no packet for stall_timeout_s) or a dropped connection or an
//     end of input: reconnect after a backoff (reconnect_backoff_s doubling
//     up to max_backoff_s), at most max_reconnects failed attempts in a row;
//     stream time stays continuous (the recogniser keeps its state, so a
//     match that goes on after the reconnect stays one match);
//   - codec parameter changes and damaged packets: handled by the decoder.
// The end of the input (for a network input: reconnects exhausted), Cancel()
// or an unrecoverable error ends the scan: running matches are ended, every
// response is written, then the stream summary.
//
// Thread safety: Step() is called by one thread at a time; Cancel() and
// the decoder's input callback may come from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "delivery/outbox.h"
#include "media/audio_decoder.h"
#include "recognition/stream_recognizer.h"
#include "scan/identification.h"
#include "scan/results_writer.h"
#include "scan/stream_clock.h"
#include "scan/video_watcher.h"
#include "video/hash_index.h"
#include "video/video_params.h"

namespace earshot::scan {

// A thumbnail the scan stored (see ScanOptions::thumbnail_every_s).
struct ThumbnailInfo {
  std::string stream_id;
  std::string channel_id;
  std::string file;               // file name in RESULTS/{stream_id}/: "thumb-000000012000.jpg"
  double stream_s = 0;            // stream time of the frame
  int64_t captured_ms = 0;        // when the frame arrived, Unix ms
  std::span<const uint8_t> jpeg;  // valid during the call only
};

// What a finished session reports.
struct ScanReport {
  std::string stream_id;
  std::string scan_id;
  std::string status;        // "ended", "cancelled", "failed"
  std::optional<Error> error;
  double stream_seconds = 0;
  uint64_t matches = 0;
  uint64_t files_written = 0;
  uint64_t reconnects = 0;
  uint64_t damaged_packets = 0;
  uint64_t video_frames = 0;     // video frames fingerprinted
  uint64_t thumbnails = 0;
};

struct ScanOptions {
  std::string input;               // file path, URL, or "-" for standard input
  std::string stream_id;           // required, see ValidateStreamId
  std::string channel_id;          // optional
  bool realtime = false;           // pace file inputs at real time (replay as if live)
  double stall_timeout_s = 10;     // network: no packet this long = a stall
  int max_reconnects = 3;          // network: failed reconnects in a row before the scan ends
  double reconnect_backoff_s = 1;  // first wait before reconnecting; doubles each failure
  double max_backoff_s = 16;
  std::vector<std::string> http_headers;  // "Name: value" lines for http(s) / HLS inputs
  double ongoing_every_s = 30;     // a match_ongoing response this often; 0 = none
  recognition::StreamParams stream;
  // The matcher for this scan instead of ScanShared::matcher (e.g. one over
  // the newest catalog snapshot; the pointer keeps it, and what it reads,
  // alive for the scan's lifetime). Null: ScanShared::matcher.
  std::shared_ptr<const recognition::Matcher> matcher;
  // Video: the stream's video is matched against these references (null or
  // empty: no video matching) by a VideoWatcher thread beside the audio.
  // A stream without an audio track is then scanned on its video alone.
  std::shared_ptr<const video::HashIndex> video_index;
  video::VideoParams video_params;
  // A JPEG thumbnail of the stream this often (stream seconds; 0: none),
  // thumbnail_width pixels wide, stored as RESULTS/{stream_id}/thumb-*.jpg
  // (and given to result sinks such as S3, not to notifiers).
  double thumbnail_every_s = 0;
  int thumbnail_width = 320;
  // Optional observers, called on the pool thread that runs the session (keep
  // them short; hand slow work to another thread). `on_response` gets every
  // identification response right after it was written (or queued for a
  // retry) to the results folder; `on_connected` the input's audio stream
  // each time a connection is made; `on_input_lost` why, each time the input
  // stalled, dropped or ended and a reconnect follows; `on_finished` the
  // report once, after the summary was written.
  std::function<void(const nlohmann::json& response)> on_response;
  std::function<void(const media::AudioStreamInfo& info)> on_connected;
  std::function<void(const std::string& reason)> on_input_lost;
  std::function<void(const ScanReport& report)> on_finished;
  // Each thumbnail right after it was stored.
  std::function<void(const ThumbnailInfo& thumbnail)> on_thumbnail;
};

// Everything sessions share; borrowed, must outlive them.
struct ScanShared {
  const catalog::Catalog* catalog = nullptr;
  const recognition::Matcher* matcher = nullptr;
  std::filesystem::path results_dir;
  delivery::Outbox* outbox = nullptr;  // may be null
};

class ScanSession {
 public:
  struct Next {
    enum class Kind { kRunAgain, kWaitForInput, kWaitUntil, kDone };
    Kind kind = Kind::kRunAgain;
    std::chrono::steady_clock::time_point until{};  // kWaitUntil
  };

  // Validates the options and prepares the results folder (nothing is read
  // from the input yet). `wake` is called from the input thread when a
  // network input has data (schedule a Step); it must be thread-safe.
  static Result<std::unique_ptr<ScanSession>> Create(const ScanShared& shared,
                                                     ScanOptions options, std::string scan_id,
                                                     std::function<void()> wake);
  ~ScanSession();

  // Advances the scan by at most `budget_samples` of audio (at the catalog's
  // sample rate) or one connection attempt.
  Next Step(size_t budget_samples);

  // Asks the scan to end soon (thread-safe): blocking I/O is abandoned, the
  // next Step ends running matches and writes the summary.
  void Cancel();
  // Cancel() without calling the wake callback (for a caller that schedules
  // the next Step itself, e.g. while holding the lock `wake` would take).
  void MarkCancelled() { cancel_.store(true); }

  const ScanOptions& options() const { return options_; }
  // Valid after Step returned kDone.
  const ScanReport& report() const { return report_; }

 private:
  enum class State { kConnect, kRead, kFinish, kDone };
  ScanSession(const ScanShared& shared, ScanOptions options, ScanIdentity identity,
              std::unique_ptr<ResultsWriter> writer, std::function<void()> wake, bool network);

  Next Connect();
  Next Read(size_t budget_samples);
  Next Finish();
  // A network input failed (`error`) or ended (nullopt): schedule a
  // reconnect, or finish when max_reconnects attempts in a row have failed.
  Next InputLost(std::optional<Error> error);
  // Publishes recogniser (audio) events; their wall times come from clock_.
  void Publish(std::vector<recognition::StreamEvent>& events);
  // Publishes one match event with its wall times.
  void PublishEvent(const recognition::StreamEvent& e, MatchType type, const ResponseTimes& times);
  // Starts the video watcher when video matching or thumbnails are asked for.
  void StartVideo();
  // Publishes what the video watcher found so far.
  void DrainVideo();
  void StoreThumbnail(VideoWatchItem& item);
  int64_t NowMs() const;

  ScanShared shared_;
  ScanOptions options_;
  ScanIdentity identity_;
  std::unique_ptr<ResultsWriter> writer_;
  std::function<void()> wake_;
  const bool network_;

  std::atomic<bool> cancel_{false};
  State state_ = State::kConnect;
  std::unique_ptr<media::AudioDecoder> decoder_;
  recognition::StreamRecognizer recognizer_;
  StreamClock clock_;
  std::vector<float> pcm_;
  std::vector<recognition::StreamEvent> events_;
  catalog::EntryCache entries_;
  // Open segments and last ongoing reports by match key: the recogniser's
  // match id for audio, kVideoKey | the tracker's match id for video.
  static constexpr uint64_t kVideoKey = uint64_t{1} << 62;
  std::map<uint64_t, Segment> open_segments_;
  std::map<uint64_t, double> last_ongoing_s_;
  std::unique_ptr<VideoWatcher> video_;
  bool video_only_ = false;                    // the input has no audio track
  double last_thumbnail_file_s_ = -1;
  std::vector<Segment> segments_;              // ended, in end order
  int failed_attempts_ = 0;                    // connection attempts failed in a row
  uint64_t damaged_before_ = 0;                // damaged packets of earlier connections
  bool got_audio_ = false;                     // any audio since the scan started
  std::optional<Error> last_error_;
  std::string end_status_ = "ended";
  int finish_write_retries_ = 0;
  std::chrono::steady_clock::time_point pace_start_{};
  double pace_start_stream_s_ = 0;
  int64_t started_ms_ = 0;
  ScanReport report_;
};

// A scan id that sorts by time: "20261121T101500Z-3f9a1c2e".
std::string NewScanId();

// True for inputs read over the network (anything with a URL scheme other
// than file: and pipe:).
bool IsNetworkInput(const std::string& input);

}  // namespace earshot::scan
