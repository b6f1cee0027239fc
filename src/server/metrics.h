// Prometheus metrics of `earshot serve` (text exposition format 0.0.4).
//
// Counters and the hook-latency histogram live here; gauges that mirror
// state (live streams, jobs by state) are read from the state store and the
// queue at scrape time and passed to Render().
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace earshot::server {

// One sample of a gauge read at scrape time.
struct GaugeSample {
  std::string name;    // "earshot_live_streams"
  std::string help;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

class Metrics {
 public:
  // Upper bounds of the hook latency buckets, seconds.
  static constexpr std::array<double, 8> kHookBuckets = {0.001, 0.0025, 0.005, 0.01,
                                                         0.025, 0.05,   0.1,   0.5};

  // An identification recorded, by its effective rule (block, mute, ...).
  void CountMatch(std::string_view rule);
  // A rule action carried out ("stop", "stop_and_reset_key", "notify", "mute").
  void CountRuleAction(std::string_view action);
  // One ingest hook answered: which hook, how (allowed, refused, redirected,
  // malformed, forbidden), how long.
  void ObserveHook(std::string_view hook, std::string_view outcome, double seconds);
  // One HTTP API request answered with `status`.
  void CountRequest(int status);
  // One event delivered (or given up) to a subscription.
  void CountSubscriptionDelivery(std::string_view outcome);
  // One playback authorisation answered: "allowed"/"refused" and the reason
  // ("none" when allowed, else e.g. "token_expired").
  void CountPlaybackDecision(std::string_view outcome, std::string_view reason);

  // The exposition text: these counters plus `gauges`.
  std::string Render(const std::vector<GaugeSample>& gauges) const;

 private:
  struct Histogram {
    std::array<uint64_t, kHookBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, uint64_t> matches_;                          // GUARDED_BY(mutex_)
  std::map<std::string, uint64_t> rule_actions_;                     // GUARDED_BY(mutex_)
  std::map<std::pair<std::string, std::string>, uint64_t> hooks_;    // GUARDED_BY(mutex_)
  std::map<std::string, Histogram> hook_latency_;                    // GUARDED_BY(mutex_)
  std::map<int, uint64_t> requests_;                                 // GUARDED_BY(mutex_)
  std::map<std::string, uint64_t> deliveries_;                       // GUARDED_BY(mutex_)
  std::map<std::pair<std::string, std::string>, uint64_t> playback_; // GUARDED_BY(mutex_)
};

// Escapes a label value for the exposition format.
std::string EscapeLabelValue(std::string_view value);

}  // namespace earshot::server
