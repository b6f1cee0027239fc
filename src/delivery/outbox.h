// Durable, retried delivery of result files to every configured target.
//
// A result file is first made durable in RESULTS/{stream_id}/ (by the
// scanner). Enqueue() then writes one spool entry per target under
//   RESULTS/.outbox/{target}/{stream_id}/{file}.json     (fsynced)
// and delivery threads work through the entries: a sink gets the file (Put),
// a notifier gets a Notification. Success deletes the entry; failure retries
// with exponential backoff (initial_backoff_s doubling up to max_backoff_s),
// for as long as the process runs. Entries left at exit (a bucket that stayed
// down) are picked up by the next Outbox opened on the same folder, so
// nothing is lost; delivery is at-least-once and every attempt of one entry
// carries the same idempotency key ("{stream_id}/{file}").
//
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "delivery/sink.h"

namespace earshot::delivery {

struct OutboxOptions {
  std::filesystem::path results_dir;  // RESULTS; the spool is RESULTS/.outbox
  int threads = 2;                    // delivery threads
  double initial_backoff_s = 1.0;     // first retry after this long
  double max_backoff_s = 60.0;        // retries are never further apart than this
};

// What to tell about a result file besides its bytes.
struct EnqueueItem {
  std::string stream_id;
  std::string channel_id;   // may be empty
  std::string file;         // file name in RESULTS/{stream_id}/
  std::string event_type;   // "identification.match_started", ..., "stream.summary"
  std::string subject;      // one human line (email subject)
  // false: only result sinks (S3) get the file, notifiers (webhook, email) do
  // not hear of it (thumbnails).
  bool notify = true;
};

struct OutboxStats {
  uint64_t pending = 0;     // entries not yet delivered
  uint64_t delivered = 0;   // since Open
  uint64_t failed_attempts = 0;
};

class Outbox {
 public:
  // Takes ownership of the targets (their names must be unique), creates the
  // spool folders, loads entries left by an earlier run and starts delivering.
  static Result<std::unique_ptr<Outbox>> Open(const OutboxOptions& options,
                                              std::vector<std::unique_ptr<ResultSink>> sinks,
                                              std::vector<std::unique_ptr<Notifier>> notifiers);
  // Stops the delivery threads; undelivered entries stay spooled on disk.
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Spools `item` for every target (fsynced before returning). Errors (a
  // full disk) name the entry; the result file itself is already safe.
  Status Enqueue(const EnqueueItem& item);

  // Waits until nothing is pending or `deadline`; returns how many entries
  // are still pending (they stay spooled).
  uint64_t Drain(std::chrono::steady_clock::time_point deadline);

  OutboxStats stats() const;
  bool has_targets() const { return !targets_.empty(); }

 private:
  struct Target {
    std::string name;
    ResultSink* sink = nullptr;      // exactly one of sink / notifier
    Notifier* notifier = nullptr;
  };
  struct Entry {
    size_t target = 0;
    std::filesystem::path spool_path;
    EnqueueItem item;
    int attempts = 0;
    std::chrono::steady_clock::time_point due;
  };

  explicit Outbox(const OutboxOptions& options) : options_(options) {}
  Status LoadSpool();
  void Run();
  Status Deliver(const Entry& entry);
  void Schedule(Entry entry);  // REQUIRES: mutex_ held

  OutboxOptions options_;
  std::vector<std::unique_ptr<ResultSink>> sinks_;
  std::vector<std::unique_ptr<Notifier>> notifiers_;
  std::vector<Target> targets_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::multimap<std::chrono::steady_clock::time_point, Entry> queue_;  // GUARDED_BY(mutex_), by due time
  std::set<std::filesystem::path> known_;  // spool paths queued or in flight, GUARDED_BY(mutex_)
  uint64_t in_flight_ = 0;                       // GUARDED_BY(mutex_)
  uint64_t delivered_ = 0;                       // GUARDED_BY(mutex_)
  uint64_t failed_attempts_ = 0;                 // GUARDED_BY(mutex_)
  bool stopping_ = false;                        // GUARDED_BY(mutex_)
  std::vector<std::thread> threads_;
};

}  // namespace earshot::delivery
