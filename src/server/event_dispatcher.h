// Delivers control-plane events to subscriptions (webhook and email targets
// filtered by event type and channel; see state::Subscription).
//
// One thread reads the event log after a cursor kept in a file
// (`cursor_file`, written atomically after each event), so delivery is
// at-least-once across restarts: an event is retried with exponential
// backoff up to `max_attempts` per subscription, then given up (logged and
// counted in earshot_subscription_deliveries_total{outcome="gave_up"}).
// Every retry of one event to one subscription carries the same idempotency
// key ("event-{seq}-{subscription id}"). Events are delivered in order; a
// target that is down delays later events (bounded by the backoff budget).
//
// Thread safety: Start/Stop from one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "delivery/sink.h"
#include "server/metrics.h"
#include "state/state_store.h"

namespace earshot::server {

struct EventDispatcherOptions {
  std::filesystem::path cursor_file;           // e.g. {data_dir}/subscriptions.cursor
  std::chrono::milliseconds poll{300};
  int max_attempts = 6;                        // per event and subscription
  std::chrono::milliseconds first_backoff{500};  // doubles per attempt
};

class EventDispatcher {
 public:
  // `state` and `metrics` are borrowed (metrics may be null).
  EventDispatcher(state::StateStore& state, Metrics* metrics, EventDispatcherOptions options);
  ~EventDispatcher();  // Stop()

  void Start();
  void Stop();

 private:
  void Loop();
  // Delivers one event to one subscription, with retries; false when stopping.
  bool Deliver(const control::Event& event, const state::Subscription& sub);
  bool SleepFor(std::chrono::milliseconds d);  // false when stopping

  state::StateStore& state_;
  Metrics* metrics_;
  EventDispatcherOptions options_;
  std::map<std::string, std::unique_ptr<delivery::Notifier>> notifiers_;  // by subscription id; loop thread
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace earshot::server
