// Scan workers: take scan jobs from the job queue and run them on a Scanner.
//
// One loop thread per ScanWorkers object leases up to `max_jobs` jobs, starts
// a scan for each (payload {stream_id, channel_id, input}), heart-beats every
// lease (lease_s / 3), and settles the job when the scan ends:
//   - the scan ended (the stream ended) or was cancelled on request → Ack;
//   - the scan failed → Nak (retried with backoff; dead after max_attempts);
//   - this process is shutting down → the scan is cancelled (its results are
//     flushed) and the job Nak'ed with no delay, so another worker resumes it;
//   - the lease was lost (this worker stalled longer than the visibility
//     timeout and another worker took the job) → the scan is cancelled.
// A worker killed outright (kill -9) simply stops heart-beating: its leases
// expire and other workers lease the jobs again (the results folder of the
// stream carries on: sequence numbers continue).
//
// Observer calls (responses, connection info, scan ends) are made on the
// loop thread, never on scanner threads, so an observer may block briefly
// (state writes, a stop request to the ingest server).
//
// Lifetime: the Scanner's sessions call back into this object until they
// end, so destroy (or WaitAll) the Scanner before destroying ScanWorkers.
//
// Thread safety: Start/Stop from one thread; Poke and running() from any;
// the observer is called from the loop thread only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "queue/job_queue.h"
#include "scan/scanner.h"

namespace earshot::server {

inline constexpr std::string_view kScanJobKind = "scan";

// What a scan job carries.
struct ScanJob {
  std::string stream_id;
  std::string channel_id;
  std::string input;  // the URL the scanner reads

  nlohmann::json ToJson() const;
  static Result<ScanJob> FromJson(const nlohmann::json& payload);
};

// Told what scans do. Called on the worker loop thread.
class ScanJobObserver {
 public:
  virtual ~ScanJobObserver() = default;
  virtual void OnScanStarted(const ScanJob& job, int attempt) = 0;
  virtual void OnConnected(const ScanJob& job, const media::AudioStreamInfo& info) = 0;
  // The input stalled, dropped or ended; the scan reconnects.
  virtual void OnInputLost(const ScanJob& job, const std::string& reason) = 0;
  virtual void OnResponse(const ScanJob& job, const nlohmann::json& response) = 0;
  virtual void OnScanFinished(const ScanJob& job, const scan::ScanReport& report) = 0;
  // A thumbnail was stored (its bytes are in the results folder; the span
  // in `info` is not valid here). Default: nothing.
  virtual void OnThumbnail(const ScanJob& job, const scan::ThumbnailInfo& info) {
    (void)job;
    (void)info;
  }
};

struct ScanWorkerOptions {
  std::string worker_id;           // in leases and logs; e.g. "host:pid"
  int max_jobs = 4;                // scans at once
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds poll{1000};
  scan::ScanOptions scan;          // template: timeouts, reconnects, ongoing_every_s
  // A matcher over the newest catalog for each new scan (optional: without
  // it scans use the Scanner's ScanShared::matcher).
  std::function<std::shared_ptr<const recognition::Matcher>()> matcher_factory;
  // The video references for each new scan (optional: without it, or when
  // it returns null or an empty index, no video matching).
  std::function<std::shared_ptr<const video::HashIndex>()> video_index_factory;
};

class ScanWorkers {
 public:
  // `queue` and `observer` are borrowed and must outlive this.
  ScanWorkers(queue::JobQueue& queue, ScanJobObserver& observer, ScanWorkerOptions options);
  ~ScanWorkers();  // Stop()
  ScanWorkers(const ScanWorkers&) = delete;
  ScanWorkers& operator=(const ScanWorkers&) = delete;

  // Starts leasing jobs and running them on `scanner` (borrowed; see
  // Lifetime above).
  void Start(scan::Scanner& scanner);
  // Cancels every running scan, waits until `deadline` for them to flush,
  // gives their jobs back (Nak, no delay) and joins the loop thread.
  void Stop(std::chrono::steady_clock::time_point deadline);
  // Leases new jobs now instead of at the next poll (e.g. after a publish).
  void Poke();

  size_t running() const;

 private:
  enum class CancelReason { kNone, kRequested, kShutdown, kLeaseLost };
  struct Running {
    queue::Lease lease;
    ScanJob job;
    std::string scan_id;
    std::chrono::steady_clock::time_point next_heartbeat;
    CancelReason cancel = CancelReason::kNone;
  };
  // Things the scanner threads hand to the loop thread.
  struct Note {
    enum class Kind { kResponse, kConnected, kInputLost, kFinished, kThumbnail } kind;
    int64_t job_id = 0;
    nlohmann::json response;  // kResponse; kInputLost: the reason (a string)
    media::AudioStreamInfo info;
    scan::ScanReport report;
    scan::ThumbnailInfo thumbnail;  // kThumbnail (jpeg span empty)
  };

  void Loop();
  void LeaseMore();
  void Heartbeats();
  void Settle(Running& running, const scan::ScanReport& report);
  void Post(Note note);

  queue::JobQueue& queue_;
  scan::Scanner* scanner_ = nullptr;  // set by Start
  ScanJobObserver& observer_;
  ScanWorkerOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Note> notes_;           // GUARDED_BY(mutex_)
  bool stopping_ = false;            // GUARDED_BY(mutex_)
  bool poked_ = false;               // GUARDED_BY(mutex_)
  std::chrono::steady_clock::time_point stop_deadline_{};  // GUARDED_BY(mutex_)
  size_t running_count_ = 0;         // GUARDED_BY(mutex_): mirror of running_.size()
  std::map<int64_t, Running> running_;  // by job id; loop thread only
  std::thread thread_;
};

}  // namespace earshot::server
