#include "server/event_dispatcher.h"

#include <charconv>

#include "common/file_util.h"
#include "common/log.h"
#include "control/event.h"
#include "delivery/registry.h"

namespace earshot::server {

EventDispatcher::EventDispatcher(state::StateStore& state, Metrics* metrics,
                                 EventDispatcherOptions options)
    : state_(state), metrics_(metrics), options_(std::move(options)) {}

EventDispatcher::~EventDispatcher() { Stop(); }

void EventDispatcher::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void EventDispatcher::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool EventDispatcher::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

bool EventDispatcher::Deliver(const control::Event& event, const state::Subscription& sub) {
  auto it = notifiers_.find(sub.id);
  if (it == notifiers_.end()) {
    auto notifier = delivery::MakeNotifier(sub.kind + ":" + sub.target);
    if (!notifier) {
      Log(LogLevel::kError, "subscription target is unusable; skipping its events",
          {{"subscription_id", sub.id}, {"error", notifier.error().ToString()}});
      if (metrics_) metrics_->CountSubscriptionDelivery("bad_target");
      return true;
    }
    it = notifiers_.emplace(sub.id, std::move(*notifier)).first;
  }
  delivery::Notification n;
  n.event_type = "event." + std::string(control::EventTypeName(event.type));
  n.idempotency_key = "event-" + std::to_string(event.seq) + "-" + sub.id;
  n.stream_id = event.stream_id;
  n.channel_id = event.channel_id;
  n.subject = "earshot: " + std::string(control::EventTypeName(event.type)) +
              (event.channel_id.empty() ? "" : " on channel " + event.channel_id);
  n.body = control::EventToJson(event).dump();
  auto backoff = options_.first_backoff;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    Status s = it->second->Notify(n);
    if (s) {
      if (metrics_) metrics_->CountSubscriptionDelivery("delivered");
      return true;
    }
    Log(LogLevel::kWarn, "event delivery failed",
        {{"subscription_id", sub.id}, {"seq", event.seq}, {"attempt", attempt},
         {"error", s.error().ToString()}});
    if (attempt == options_.max_attempts) break;
    if (!SleepFor(backoff)) return false;
    backoff *= 2;
  }
  Log(LogLevel::kError, "giving up on an event for a subscription",
      {{"subscription_id", sub.id}, {"seq", event.seq}});
  if (metrics_) metrics_->CountSubscriptionDelivery("gave_up");
  return true;
}

void EventDispatcher::Loop() {
  int64_t cursor = 0;
  std::error_code exists_error;
  if (std::filesystem::exists(options_.cursor_file, exists_error)) {
    // A cursor file that cannot be read or parsed is not a first start:
    // starting at 0 re-delivers (at-least-once), jumping ahead would lose.
    auto text = ReadFile(options_.cursor_file);
    std::string t = text ? *text : std::string();
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (!text || std::from_chars(t.data(), t.data() + t.size(), cursor).ec != std::errc()) {
      cursor = 0;
      Log(LogLevel::kError, "event dispatcher: unreadable cursor file; delivering from the start",
          {{"file", options_.cursor_file.string()},
           {"error", text ? "not a number" : text.error().ToString()}});
    }
  } else {
    // First start: deliver from now on, not the whole history.
    auto latest = state_.LastEventSeq();
    if (latest) cursor = *latest;
  }
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    state::EventFilter filter;
    filter.after_seq = cursor;
    filter.limit = 100;
    auto events = state_.ListEvents(filter);
    if (!events) {
      Log(LogLevel::kWarn, "event dispatcher: cannot read events (retrying)",
          {{"error", events.error().ToString()}});
      if (!SleepFor(std::chrono::seconds(1))) return;
      continue;
    }
    bool retry = false;
    for (const control::Event& e : *events) {
      auto subs = state_.MatchingSubscriptions(e);
      if (!subs) {
        // Not past this event until we know who gets it.
        Log(LogLevel::kWarn, "event dispatcher: cannot read subscriptions (retrying)",
            {{"seq", e.seq}, {"error", subs.error().ToString()}});
        retry = true;
        break;
      }
      for (const state::Subscription& sub : *subs) {
        if (!Deliver(e, sub)) return;
      }
      cursor = e.seq;
      if (Status w = WriteFileAtomically(options_.cursor_file, std::to_string(cursor) + "\n"); !w) {
        Log(LogLevel::kWarn, "event dispatcher: cannot save the cursor",
            {{"error", w.error().ToString()}});
      }
    }
    if (retry && !SleepFor(std::chrono::seconds(1))) return;
    if (events->empty() && !SleepFor(options_.poll)) return;
  }
}

}  // namespace earshot::server
