// Scans many streams at once on a fixed pool of threads.
//
// Each stream is a ScanSession; a pool thread runs one session's Step at a
// time (a bounded slice: step_samples of audio, or one connection attempt)
// and then picks the next ready session, so a few threads serve hundreds of
// streams. A session waiting for network input is parked until its input
// thread reports data; one pacing a file at real time or backing off before a
// reconnect is parked until its time comes.
//
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scan/scan_session.h"

namespace earshot::scan {

struct ScannerOptions {
  int threads = 0;              // pool size; 0 = the number of CPU cores
  size_t step_samples = 16000;  // audio per Step (2 s at 8 kHz): fairness vs overhead
  // Keep every finished session's report for reports(). A long-running
  // server turns this off (memory grows with every scan) and uses
  // ScanOptions::on_finished instead.
  bool keep_reports = true;
};

class Scanner {
 public:
  // `shared` is borrowed (catalog, matcher, outbox must outlive the scanner).
  Scanner(const ScanShared& shared, const ScannerOptions& options);
  // Cancels every session still running and waits for them to finish.
  ~Scanner();
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  // Starts scanning a stream; returns its scan id. Errors: bad options, a
  // results folder that cannot be created.
  Result<std::string> Add(ScanOptions options);

  // Asks every session to end (SIGTERM): each ends its running matches and
  // writes its summary.
  void CancelAll();

  // Asks one session to end, like CancelAll. False when no running session
  // has this scan id (unknown, or finished already).
  bool Cancel(const std::string& scan_id);

  // Waits until every session added so far has finished, or until
  // `deadline`; true when all have.
  bool WaitAll(std::chrono::steady_clock::time_point deadline);

  // Reports of the sessions that have finished, in the order they finished.
  std::vector<ScanReport> reports() const;
  size_t running() const;
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  enum class Sched { kQueued, kRunning, kIdle, kSleeping, kDone };
  struct Slot {
    std::unique_ptr<ScanSession> session;
    std::string scan_id;
    Sched sched = Sched::kQueued;
    bool wake_pending = false;  // input arrived while the session was running
    uint64_t timer = 0;         // generation of the timer it sleeps on
  };

  void Work();
  void Wake(Slot* slot);
  void Enqueue(Slot* slot);  // REQUIRES: mutex_ held
  // Cancels a running session and schedules it. REQUIRES: mutex_ held.
  void CancelLocked(Slot* slot);
  // Forgets a finished slot: drops its stale timer and ready entries and
  // frees it. REQUIRES: mutex_ held, slot->sched == kDone.
  void Reap(Slot* slot);

  ScanShared shared_;
  ScannerOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable work_;      // a session is ready, or a timer changed
  std::condition_variable finished_;  // a session finished
  std::vector<std::unique_ptr<Slot>> slots_;  // GUARDED_BY(mutex_)
  std::vector<Slot*> ready_;                  // GUARDED_BY(mutex_), FIFO via head index
  size_t ready_head_ = 0;                     // GUARDED_BY(mutex_)
  std::multimap<std::chrono::steady_clock::time_point, std::pair<Slot*, uint64_t>> timers_;
  std::vector<ScanReport> reports_;           // GUARDED_BY(mutex_)
  size_t live_ = 0;                           // GUARDED_BY(mutex_): sessions not done
  bool stopping_ = false;                     // GUARDED_BY(mutex_)
  std::vector<std::thread> threads_;
};

}  // namespace earshot::scan
