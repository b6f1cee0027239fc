#include "queue/job_queue.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace earshot::queue {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 5> kStateNames = {{
    {JobState::kQueued, "queued"},
    {JobState::kLeased, "leased"},
    {JobState::kDone, "done"},
    {JobState::kDead, "dead"},
    {JobState::kCancelled, "cancelled"},
}};

}  // namespace

std::string_view JobStateName(JobState state) {
  for (const auto& [value, name] : kStateNames) {
    if (value == state) return name;
  }
  return "unknown";
}

Result<JobState> ParseJobState(std::string_view name) {
  std::string known;
  for (const auto& [value, known_name] : kStateNames) {
    if (known_name == name) return value;
    known += (known.empty() ? "" : ", ") + std::string(known_name);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown job state \"" + std::string(name) + "\" (known: " + known + ")");
}

std::chrono::milliseconds BackoffPolicy::DelayForAttempt(int attempt) const {
  const double base_ms = static_cast<double>(std::max<int64_t>(base.count(), 0));
  const double max_ms = static_cast<double>(std::max<int64_t>(max.count(), 0));
  const double factor = std::max(multiplier, 1.0);
  const int exponent = std::max(attempt, 1) - 1;
  if (base_ms == 0) return std::chrono::milliseconds(0);  // (0 * inf would be NaN)
  // pow grows to infinity for large exponents, which the min() then caps.
  const double delay_ms = std::min(base_ms * std::pow(factor, exponent), max_ms);
  return std::chrono::milliseconds(static_cast<int64_t>(delay_ms));
}

}  // namespace earshot::queue
