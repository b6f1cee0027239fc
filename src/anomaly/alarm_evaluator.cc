#include "anomaly/alarm_evaluator.h"

#include <algorithm>

#include "anomaly/floor_div.h"
#include "anomaly/state_codec.h"

namespace earshot::anomaly {
namespace {

constexpr std::string_view kMagic = "EAE1";
constexpr uint8_t kVersion = 1;
constexpr int kMaxEvaluationPeriods = 64;
constexpr size_t kMaxReasonBytes = 4096;

int64_t PeriodOf(int64_t t, int64_t period) { return FloorDiv(t, period); }

}  // namespace

std::string_view AlarmStateName(AlarmState state) {
  switch (state) {
    case AlarmState::kOk:
      return "OK";
    case AlarmState::kAlarm:
      return "ALARM";
    case AlarmState::kInsufficientData:
      break;
  }
  return "INSUFFICIENT_DATA";
}

std::string_view MissingDataName(MissingData treatment) {
  switch (treatment) {
    case MissingData::kNotBreaching:
      return "notBreaching";
    case MissingData::kBreaching:
      return "breaching";
    case MissingData::kIgnore:
      return "ignore";
    case MissingData::kMissing:
      break;
  }
  return "missing";
}

Result<MissingData> ParseMissingData(std::string_view name) {
  for (MissingData m : {MissingData::kMissing, MissingData::kNotBreaching, MissingData::kBreaching,
                        MissingData::kIgnore}) {
    if (name == MissingDataName(m)) return m;
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown missing-data treatment \"" + std::string(name) +
                       "\" (want missing, notBreaching, breaching or ignore)");
}

Status ValidateAlarmOptions(const AlarmOptions& o) {
  if (o.period_s <= 0) return MakeError(ErrorCode::kInvalidArgument, "alarm period must be > 0 s");
  if (o.evaluation_periods < 1 || o.evaluation_periods > kMaxEvaluationPeriods) {
    return MakeError(ErrorCode::kInvalidArgument, "evaluation periods (N) must be 1..64, got " +
                                                      std::to_string(o.evaluation_periods));
  }
  if (o.datapoints_to_alarm < 1 || o.datapoints_to_alarm > o.evaluation_periods) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "datapoints to alarm (M) must be 1..N (N = " + std::to_string(o.evaluation_periods) +
            "), got " + std::to_string(o.datapoints_to_alarm));
  }
  if (o.max_lookback_s < o.period_s) {
    return MakeError(ErrorCode::kInvalidArgument, "alarm lookback must be at least one period");
  }
  return Ok();
}

AlarmEvaluator::AlarmEvaluator(const AlarmOptions& options) : options_(options) {
  ring_.reserve(static_cast<size_t>(options_.evaluation_periods));
}

AlarmState AlarmEvaluator::Observe(int64_t t, bool breaching) {
  if (has_last_ && t < last_t_) t = last_t_;
  has_last_ = true;
  last_t_ = t;
  const int64_t p = PeriodOf(t, options_.period_s);
  if (!has_first_) {
    has_first_ = true;
    first_period_ = p;
  }
  if (!ring_.empty() && ring_.back().period == p) {
    ring_.back().breaching = ring_.back().breaching || breaching;
  } else {
    if (ring_.size() == static_cast<size_t>(options_.evaluation_periods))
      ring_.erase(ring_.begin());
    ring_.push_back({p, breaching});
  }
  return Evaluate(t);
}

AlarmState AlarmEvaluator::Advance(int64_t t) {
  if (has_last_ && t < last_t_) t = last_t_;
  has_last_ = true;
  last_t_ = t;
  return Evaluate(t);
}

AlarmState AlarmEvaluator::Evaluate(int64_t t) {
  if (!has_first_) return state_;  // no datapoint yet
  const int64_t p = PeriodOf(t, options_.period_s);
  const int n = options_.evaluation_periods;
  const int m = options_.datapoints_to_alarm;
  int present = 0, breaching = 0;
  const bool look_back = options_.missing_data == MissingData::kMissing ||
                         options_.missing_data == MissingData::kIgnore;
  const int64_t oldest =
      look_back ? p - std::max<int64_t>(n, options_.max_lookback_s / options_.period_s) + 1
                : p - n + 1;
  for (const Datapoint& d : ring_) {
    if (d.period < oldest || d.period > p) continue;
    ++present;
    if (d.breaching) ++breaching;
  }
  int counted = present;
  if (!look_back) {
    // Periods before the first datapoint ever are not "missing".
    const int64_t window = p - std::max(oldest, first_period_) + 1;
    const int missing = static_cast<int>(window) - present;
    counted = static_cast<int>(window);
    if (options_.missing_data == MissingData::kBreaching) breaching += missing;
  }
  if (counted == 0) {
    if (options_.missing_data == MissingData::kIgnore) return state_;
    if (state_ != AlarmState::kInsufficientData) {
      SetState(t, AlarmState::kInsufficientData,
               "no datapoints in the last " + std::to_string(options_.max_lookback_s) + " s");
    }
    return state_;
  }
  const AlarmState next = breaching >= m ? AlarmState::kAlarm : AlarmState::kOk;
  if (next != state_) {
    std::string reason =
        std::to_string(breaching) + " of the last " + std::to_string(counted) +
        " datapoints breaching (" + std::to_string(m) + " of " + std::to_string(n) +
        " needed to alarm; period " + std::to_string(options_.period_s) +
        " s, maximum; missing data: " + std::string(MissingDataName(options_.missing_data)) + ")";
    SetState(t, next, std::move(reason));
  }
  return state_;
}

void AlarmEvaluator::SetState(int64_t t, AlarmState to, std::string reason) {
  history_.push_back({t, state_, to, std::move(reason)});
  while (history_.size() > options_.max_history) history_.pop_front();
  state_ = to;
  state_since_ = t;
}

std::string AlarmEvaluator::Serialize() const {
  internal::ByteWriter w(kMagic, kVersion);
  w.U8(static_cast<uint8_t>(state_));
  w.I64(state_since_);
  w.I64(last_t_);
  w.U8((has_last_ ? 1 : 0) | (has_first_ ? 2 : 0));
  w.I64(first_period_);
  w.U32(static_cast<uint32_t>(ring_.size()));
  for (const Datapoint& d : ring_) {
    w.I64(d.period);
    w.U8(d.breaching ? 1 : 0);
  }
  w.U32(static_cast<uint32_t>(history_.size()));
  for (const StateChange& c : history_) {
    w.I64(c.timestamp_s);
    w.U8(static_cast<uint8_t>(c.from));
    w.U8(static_cast<uint8_t>(c.to));
    w.Bytes(c.reason);
  }
  return std::move(w).Finish();
}

Result<AlarmEvaluator> AlarmEvaluator::Deserialize(std::string_view bytes,
                                                   const AlarmOptions& options) {
  auto opened = internal::ByteReader::Open(bytes, kMagic, kVersion, "alarm evaluator");
  if (!opened) return std::unexpected(opened.error());
  internal::ByteReader& r = *opened;
  auto bad = [](const std::string& what) {
    return MakeError(ErrorCode::kCorruptData, "alarm evaluator state: " + what);
  };
  AlarmEvaluator e(options);
  const uint8_t state = r.U8();
  if (state > static_cast<uint8_t>(AlarmState::kAlarm)) return bad("unknown alarm state");
  e.state_ = static_cast<AlarmState>(state);
  e.state_since_ = r.I64();
  e.last_t_ = r.I64();
  const uint8_t flags = r.U8();
  if (flags > 3) return bad("unknown flags");
  e.has_last_ = flags & 1;
  e.has_first_ = flags & 2;
  e.first_period_ = r.I64();
  const uint32_t n = r.U32();
  if (n > static_cast<uint32_t>(options.evaluation_periods)) {
    return bad("holds " + std::to_string(n) + " datapoints, more than N = " +
               std::to_string(options.evaluation_periods) + " (saved with other options?)");
  }
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    Datapoint d;
    d.period = r.I64();
    d.breaching = r.U8() != 0;
    e.ring_.push_back(d);
  }
  const uint32_t h = r.U32();
  if (h > 1u << 16) return bad("implausible history length");
  for (uint32_t i = 0; i < h && r.ok(); ++i) {
    StateChange c;
    c.timestamp_s = r.I64();
    const uint8_t from = r.U8(), to = r.U8();
    if (from > 2 || to > 2) return bad("unknown alarm state in the history");
    c.from = static_cast<AlarmState>(from);
    c.to = static_cast<AlarmState>(to);
    std::string_view reason = r.Bytes();
    if (reason.size() > kMaxReasonBytes) return bad("implausible reason length");
    c.reason = std::string(reason);
    e.history_.push_back(std::move(c));
  }
  while (e.history_.size() > options.max_history) e.history_.pop_front();
  if (!r.ok() || !r.AtEnd()) return bad("wrong length");
  return e;
}

}  // namespace earshot::anomaly
