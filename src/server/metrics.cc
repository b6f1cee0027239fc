#include "server/metrics.h"

#include <charconv>

namespace earshot::server {
namespace {

std::string Number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

void Header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

std::string Labels(const std::vector<std::pair<std::string, std::string>>& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
  }
  return out + "}";
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::CountMatch(std::string_view rule) {
  std::lock_guard lock(mutex_);
  ++matches_[std::string(rule)];
}

void Metrics::CountRuleAction(std::string_view action) {
  std::lock_guard lock(mutex_);
  ++rule_actions_[std::string(action)];
}

void Metrics::ObserveHook(std::string_view hook, std::string_view outcome, double seconds) {
  std::lock_guard lock(mutex_);
  ++hooks_[{std::string(hook), std::string(outcome)}];
  Histogram& h = hook_latency_[std::string(hook)];
  for (size_t i = 0; i < kHookBuckets.size(); ++i) {
    if (seconds <= kHookBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::CountRequest(int status) {
  std::lock_guard lock(mutex_);
  ++requests_[status];
}

void Metrics::CountSubscriptionDelivery(std::string_view outcome) {
  std::lock_guard lock(mutex_);
  ++deliveries_[std::string(outcome)];
}

void Metrics::CountPlaybackDecision(std::string_view outcome, std::string_view reason) {
  std::lock_guard lock(mutex_);
  ++playback_[{std::string(outcome), std::string(reason)}];
}

std::string Metrics::Render(const std::vector<GaugeSample>& gauges) const {
  std::string out;
  std::string last_gauge;
  for (const GaugeSample& g : gauges) {
    if (g.name != last_gauge) {
      Header(out, g.name, g.help, "gauge");
      last_gauge = g.name;
    }
    out += g.name + Labels(g.labels) + " " + Number(g.value) + "\n";
  }
  std::lock_guard lock(mutex_);
  Header(out, "earshot_identifications_total", "Identifications recorded, by effective rule.", "counter");
  for (const auto& [rule, n] : matches_) {
    out += "earshot_identifications_total" + Labels({{"rule", rule}}) + " " + std::to_string(n) + "\n";
  }
  Header(out, "earshot_rule_actions_total", "Rule actions carried out.", "counter");
  for (const auto& [action, n] : rule_actions_) {
    out += "earshot_rule_actions_total" + Labels({{"action", action}}) + " " + std::to_string(n) + "\n";
  }
  Header(out, "earshot_hooks_total", "Ingest hooks answered, by hook and outcome.", "counter");
  for (const auto& [key, n] : hooks_) {
    out += "earshot_hooks_total" + Labels({{"hook", key.first}, {"outcome", key.second}}) + " " +
           std::to_string(n) + "\n";
  }
  Header(out, "earshot_hook_duration_seconds", "Time to answer an ingest hook.", "histogram");
  for (const auto& [hook, h] : hook_latency_) {
    for (size_t i = 0; i < kHookBuckets.size(); ++i) {
      out += "earshot_hook_duration_seconds_bucket" +
             Labels({{"hook", hook}, {"le", Number(kHookBuckets[i])}}) + " " +
             std::to_string(h.buckets[i]) + "\n";
    }
    out += "earshot_hook_duration_seconds_bucket" + Labels({{"hook", hook}, {"le", "+Inf"}}) + " " +
           std::to_string(h.count) + "\n";
    out += "earshot_hook_duration_seconds_sum" + Labels({{"hook", hook}}) + " " + Number(h.sum) + "\n";
    out += "earshot_hook_duration_seconds_count" + Labels({{"hook", hook}}) + " " +
           std::to_string(h.count) + "\n";
  }
  Header(out, "earshot_http_requests_total", "HTTP API requests, by status.", "counter");
  for (const auto& [status, n] : requests_) {
    out += "earshot_http_requests_total" + Labels({{"status", std::to_string(status)}}) + " " +
           std::to_string(n) + "\n";
  }
  Header(out, "earshot_subscription_deliveries_total", "Event deliveries to subscriptions, by outcome.",
         "counter");
  for (const auto& [outcome, n] : deliveries_) {
    out += "earshot_subscription_deliveries_total" + Labels({{"outcome", outcome}}) + " " +
           std::to_string(n) + "\n";
  }
  Header(out, "earshot_playback_decisions_total",
         "Playback authorisations (HLS requests, RTMP plays), by outcome and reason.", "counter");
  for (const auto& [key, n] : playback_) {
    out += "earshot_playback_decisions_total" + Labels({{"outcome", key.first}, {"reason", key.second}}) +
           " " + std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace earshot::server
