// The viewer-count anomaly detector of stream protection (no I/O): for every
// live channel, a ChannelAudienceModel (the usual audience and its band) and
// an AlarmEvaluator (persistence and states), keyed by channel id.
//
// A sample breaches (the evaluator's datapoint) when its value is above the
// band's upper edge and either the channel is already in ALARM, or the
// excursion above the band has lasted min_sustain_s and is not fading: a
// raid or host (a crowd arriving at once and leaving over minutes), a metric
// glitch (one or two samples) and the first minutes of any jump do not
// breach; a re-streamed match (an audience that ramps up and stays) does.
// While a channel is in ALARM its model does not learn.
//
// The auto-stop verdict is stricter, for stopping a stream without a
// person: the channel is in ALARM, the smoothed audience is at least
// auto_stop.ratio times the expected one (viewers + the model's count
// offset), not fading, and the excursion has lasted auto_stop.sustain_s.
// Once given, it holds until the alarm ends.
//
// Units: timestamps in Unix seconds (non-decreasing per channel; channels may
// interleave freely), values in viewers (non-negative; fractions allowed).
// Memory: about 2 KB per channel; channels are never dropped on their own
// (call Remove for channels that were deleted).
//
// Thread safety: none; one detector per caller (shard channels across
// detectors to use several threads).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "anomaly/alarm_evaluator.h"
#include "anomaly/channel_audience_model.h"
#include "common/error.h"

namespace earshot::anomaly {

struct AutoStopOptions {
  double ratio = 8.0;        // minimum jump, x the expected audience
  double sustain_s = 480.0;  // minimum age of the jump, seconds
};

struct DetectorOptions {
  ModelOptions model;
  AlarmOptions alarm;
  // How long an excursion above the band must last, not fading, before its
  // samples breach (seconds). Glitches and raids are shorter or fade.
  double min_sustain_s = 300.0;
  AutoStopOptions auto_stop;
};

Status ValidateDetectorOptions(const DetectorOptions& options);

// The verdict for one sample.
struct DetectorPoint {
  BandPoint band;
  bool breaching = false;  // the datapoint given to the evaluator
  AlarmState state = AlarmState::kInsufficientData;
  bool auto_stop = false;
  bool alarm() const { return state == AlarmState::kAlarm; }
};

// One channel's model + evaluator + auto-stop latch.
class ChannelDetector {
 public:
  // REQUIRES: ValidateDetectorOptions(*options) succeeds; `options` is
  // borrowed and must outlive the channel.
  explicit ChannelDetector(const DetectorOptions* options);

  DetectorPoint Update(int64_t timestamp_s, double value);

  const ChannelAudienceModel& model() const { return model_; }
  const AlarmEvaluator& evaluator() const { return evaluator_; }
  // The auto-stop verdict of the last Update (kept across Serialize).
  bool auto_stop() const { return auto_stop_; }

  // Versioned, checksummed bytes (model + evaluator + latch); restore with
  // the same options. Corrupt input -> kCorruptData.
  std::string Serialize() const;
  static Result<ChannelDetector> Deserialize(std::string_view bytes,
                                             const DetectorOptions* options);

 private:
  const DetectorOptions* options_;
  ChannelAudienceModel model_;
  AlarmEvaluator evaluator_;
  bool auto_stop_ = false;
};

class ViewerAnomalyDetector {
 public:
  // REQUIRES: ValidateDetectorOptions(options) succeeds (Create checks it).
  explicit ViewerAnomalyDetector(const DetectorOptions& options = {});
  static Result<std::unique_ptr<ViewerAnomalyDetector>> Create(const DetectorOptions& options);

  // Feeds one sample of `channel` (created on first sight, from the prior).
  DetectorPoint Update(std::string_view channel, int64_t timestamp_s, double value);

  // nullptr when the channel is unknown. The pointer is valid until the
  // next Update/Restore/Remove call.
  const ChannelDetector* Find(std::string_view channel) const;
  size_t size() const { return channels_.size(); }
  void Remove(std::string_view channel);

  // A channel's state, for a server to persist (kNotFound if unknown).
  Result<std::string> SerializeChannel(std::string_view channel) const;
  // Replaces (or adds) a channel's state from SerializeChannel's bytes.
  Status RestoreChannel(std::string_view channel, std::string_view bytes);

  const DetectorOptions& options() const { return *options_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Heap-held so ChannelDetector's borrowed pointer survives moves of this.
  std::unique_ptr<DetectorOptions> options_;
  std::unordered_map<std::string, ChannelDetector, Hash, std::equal_to<>> channels_;
};

}  // namespace earshot::anomaly
