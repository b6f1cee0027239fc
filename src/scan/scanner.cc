#include "scan/scanner.h"

#include <algorithm>

namespace earshot::scan {

Scanner::Scanner(const ScanShared& shared, const ScannerOptions& options)
    : shared_(shared), options_(options) {
  int n = options.threads > 0 ? options.threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Work(); });
}

Scanner::~Scanner() {
  CancelAll();
  WaitAll(std::chrono::steady_clock::time_point::max());
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& t : threads_) t.join();
}

Result<std::string> Scanner::Add(ScanOptions options) {
  auto slot = std::make_unique<Slot>();
  Slot* raw = slot.get();
  auto session = ScanSession::Create(shared_, std::move(options), NewScanId(),
                                     [this, raw] { Wake(raw); });
  if (!session) return std::unexpected(session.error());
  std::string scan_id = (*session)->report().scan_id;
  slot->session = std::move(*session);
  slot->scan_id = scan_id;
  {
    std::lock_guard lock(mutex_);
    slots_.push_back(std::move(slot));
    ++live_;
    Enqueue(raw);
  }
  return scan_id;
}

void Scanner::Enqueue(Slot* slot) {
  slot->sched = Sched::kQueued;
  ready_.push_back(slot);
  work_.notify_one();
}

void Scanner::Wake(Slot* slot) {
  std::lock_guard lock(mutex_);
  if (slot->sched == Sched::kIdle) {
    Enqueue(slot);
  } else if (slot->sched == Sched::kRunning) {
    slot->wake_pending = true;
  }
}

void Scanner::CancelLocked(Slot* slot) {
  if (slot->sched == Sched::kDone) return;
  // Only the flag: Cancel() would call Wake(), which takes mutex_.
  slot->session->MarkCancelled();
  if (slot->sched == Sched::kSleeping || slot->sched == Sched::kIdle) {
    ++slot->timer;  // its pending timer (if any) is stale now
    Enqueue(slot);
  } else if (slot->sched == Sched::kRunning) {
    slot->wake_pending = true;
  }
}

void Scanner::CancelAll() {
  std::lock_guard lock(mutex_);
  for (auto& slot : slots_) CancelLocked(slot.get());
}

bool Scanner::Cancel(const std::string& scan_id) {
  std::lock_guard lock(mutex_);
  for (auto& slot : slots_) {
    if (slot->scan_id == scan_id && slot->sched != Sched::kDone) {
      CancelLocked(slot.get());
      return true;
    }
  }
  return false;
}

void Scanner::Reap(Slot* slot) {
  for (auto it = timers_.begin(); it != timers_.end();) {
    it = it->second.first == slot ? timers_.erase(it) : std::next(it);
  }
  ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(ready_head_));
  ready_head_ = 0;
  std::erase(ready_, slot);
  std::erase_if(slots_, [slot](const std::unique_ptr<Slot>& s) { return s.get() == slot; });
}

bool Scanner::WaitAll(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return finished_.wait_until(lock, deadline, [&] { return live_ == 0; });
}

std::vector<ScanReport> Scanner::reports() const {
  std::lock_guard lock(mutex_);
  return reports_;
}

size_t Scanner::running() const {
  std::lock_guard lock(mutex_);
  return live_;
}

void Scanner::Work() {
  std::unique_lock lock(mutex_);
  while (true) {
    // Due timers first, so sleeping sessions are not starved by busy ones.
    const auto now = std::chrono::steady_clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      auto [slot, generation] = timers_.begin()->second;
      timers_.erase(timers_.begin());
      if (slot->sched == Sched::kSleeping && slot->timer == generation) Enqueue(slot);
    }
    if (ready_head_ < ready_.size()) {
      Slot* slot = ready_[ready_head_++];
      if (ready_head_ > 1024 && ready_head_ * 2 > ready_.size()) {
        ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(ready_head_));
        ready_head_ = 0;
      }
      if (slot->sched != Sched::kQueued) continue;  // a duplicate entry
      slot->sched = Sched::kRunning;
      slot->wake_pending = false;
      lock.unlock();
      const ScanSession::Next next = slot->session->Step(options_.step_samples);
      lock.lock();
      switch (next.kind) {
        case ScanSession::Next::Kind::kRunAgain:
          ready_.push_back(slot);
          slot->sched = Sched::kQueued;
          break;
        case ScanSession::Next::Kind::kWaitForInput:
          if (slot->wake_pending) {
            ready_.push_back(slot);
            slot->sched = Sched::kQueued;
          } else {
            slot->sched = Sched::kIdle;
          }
          break;
        case ScanSession::Next::Kind::kWaitUntil:
          slot->sched = Sched::kSleeping;
          timers_.emplace(next.until, std::make_pair(slot, ++slot->timer));
          work_.notify_one();  // another thread may need to wait for an earlier time
          break;
        case ScanSession::Next::Kind::kDone:
          slot->sched = Sched::kDone;
          if (options_.keep_reports) {
            reports_.push_back(slot->session->report());
          } else {
            Reap(slot);  // frees the session (its decoder and input thread are gone)
          }
          --live_;
          finished_.notify_all();
          break;
      }
      continue;
    }
    if (stopping_) return;
    if (timers_.empty()) {
      work_.wait(lock);
    } else {
      const auto due = timers_.begin()->first;  // a copy: the timer may be erased meanwhile
      work_.wait_until(lock, due);
    }
  }
}

}  // namespace earshot::scan
