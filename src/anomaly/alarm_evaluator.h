// A CloudWatch-style alarm evaluator over a stream of breaching / not
// breaching datapoints (no I/O): states OK / ALARM / INSUFFICIENT_DATA,
// "M of N" datapoints to alarm, the four treatments of missing data, and a
// bounded history of state changes.
//
// Periods: time is cut into periods of period_s seconds (Unix seconds,
// aligned to multiples of period_s). A period's datapoint is breaching when
// any sample in it is (the period's Maximum compared with the band's upper
// edge). The period in progress counts as a datapoint as soon as it has a
// sample, so the state is known after every sample (streaming).
//
// Evaluation at a time in period P, over the evaluation periods
// [P - N + 1, P] (N = evaluation_periods, M = datapoints_to_alarm):
//   kMissing      (default) missing periods are skipped: the last N periods
//                 that have data, looking back at most max_lookback_s, are
//                 evaluated; none at all -> INSUFFICIENT_DATA.
//   kIgnore       as kMissing, but with no data the current state is kept.
//   kNotBreaching missing periods in the window count as not breaching.
//   kBreaching    missing periods in the window count as breaching.
// (Periods before the evaluator's first datapoint are never "missing"; before
// it the state is INSUFFICIENT_DATA.)
// ALARM when at least M of the evaluated datapoints breach, else OK.
//
// Thread safety: none; one evaluator per channel and caller.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace earshot::anomaly {

enum class AlarmState { kInsufficientData, kOk, kAlarm };
enum class MissingData { kMissing, kNotBreaching, kBreaching, kIgnore };

// "OK", "ALARM", "INSUFFICIENT_DATA".
std::string_view AlarmStateName(AlarmState state);
// "missing", "notBreaching", "breaching", "ignore" (CloudWatch's spelling).
std::string_view MissingDataName(MissingData treatment);
Result<MissingData> ParseMissingData(std::string_view name);

struct AlarmOptions {
  int64_t period_s = 60;        // seconds per period (statistic: Maximum)
  int datapoints_to_alarm = 2;  // M
  int evaluation_periods = 3;   // N (1..64, >= M)
  MissingData missing_data = MissingData::kMissing;
  // kMissing / kIgnore look back at most this far for datapoints (seconds):
  // after a stream was off for days its old datapoints no longer count.
  int64_t max_lookback_s = 1800;
  size_t max_history = 32;  // state changes kept (oldest dropped first)
};

Status ValidateAlarmOptions(const AlarmOptions& options);

struct StateChange {
  int64_t timestamp_s = 0;
  AlarmState from = AlarmState::kInsufficientData;
  AlarmState to = AlarmState::kInsufficientData;
  std::string reason;  // e.g. "3 of the last 4 datapoints breaching (3 needed)"
};

class AlarmEvaluator {
 public:
  // REQUIRES: ValidateAlarmOptions(options) succeeds.
  explicit AlarmEvaluator(const AlarmOptions& options = {});

  // Records one sample's verdict at `timestamp_s` (non-decreasing; older is
  // treated as the latest time seen) and returns the state after it.
  AlarmState Observe(int64_t timestamp_s, bool breaching);
  // Re-evaluates at `timestamp_s` without a sample (a server's clock tick:
  // periods since the last sample are missing). Returns the state.
  AlarmState Advance(int64_t timestamp_s);

  AlarmState state() const { return state_; }
  // Since when the current state holds (Unix seconds; 0 before any sample).
  int64_t state_since() const { return state_since_; }
  const std::deque<StateChange>& history() const { return history_; }
  const AlarmOptions& options() const { return options_; }

  // Compact state with the history, versioned and checksummed; options are
  // not included (Deserialize with the same options).
  std::string Serialize() const;
  static Result<AlarmEvaluator> Deserialize(std::string_view bytes,
                                            const AlarmOptions& options = {});

 private:
  struct Datapoint {
    int64_t period = 0;
    bool breaching = false;
  };
  AlarmState Evaluate(int64_t timestamp_s);
  void SetState(int64_t timestamp_s, AlarmState to, std::string reason);

  AlarmOptions options_;
  std::vector<Datapoint> ring_;  // the last N periods that have data, oldest first
  AlarmState state_ = AlarmState::kInsufficientData;
  int64_t state_since_ = 0;
  int64_t last_t_ = 0;
  bool has_last_ = false;
  int64_t first_period_ = 0;  // period of the first datapoint ever
  bool has_first_ = false;
  std::deque<StateChange> history_;
};

}  // namespace earshot::anomaly
