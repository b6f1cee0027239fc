#include "anomaly/viewer_anomaly_detector.h"

#include <cmath>

#include "anomaly/state_codec.h"

namespace earshot::anomaly {
namespace {

constexpr std::string_view kMagic = "EAD1";
constexpr uint8_t kVersion = 1;

}  // namespace

Status ValidateDetectorOptions(const DetectorOptions& o) {
  if (auto s = ValidateModelOptions(o.model); !s) return s;
  if (auto s = ValidateAlarmOptions(o.alarm); !s) return s;
  if (!(std::isfinite(o.min_sustain_s) && o.min_sustain_s >= 0)) {
    return MakeError(ErrorCode::kInvalidArgument, "minimum sustain must be >= 0 s");
  }
  if (!(std::isfinite(o.auto_stop.ratio) && o.auto_stop.ratio >= 1)) {
    return MakeError(ErrorCode::kInvalidArgument, "auto-stop ratio must be >= 1");
  }
  if (!(std::isfinite(o.auto_stop.sustain_s) && o.auto_stop.sustain_s >= 0)) {
    return MakeError(ErrorCode::kInvalidArgument, "auto-stop sustain must be >= 0 s");
  }
  return Ok();
}

ChannelDetector::ChannelDetector(const DetectorOptions* options)
    : options_(options), model_(options->model), evaluator_(options->alarm) {}

DetectorPoint ChannelDetector::Update(int64_t t, double value) {
  const bool was_alarm = evaluator_.state() == AlarmState::kAlarm;
  DetectorPoint p;
  p.band = model_.Update(t, value, /*learn=*/!was_alarm);
  p.breaching =
      p.band.above &&
      (was_alarm || (p.band.excursion_age_s >= options_->min_sustain_s && !p.band.fading));
  p.state = evaluator_.Observe(t, p.breaching);
  if (p.state != AlarmState::kAlarm) {
    auto_stop_ = false;
  } else if (!auto_stop_ && p.band.above && !p.band.fading &&
             p.band.excursion_age_s >= options_->auto_stop.sustain_s &&
             p.band.log_ratio >= std::log(options_->auto_stop.ratio)) {
    auto_stop_ = true;
  }
  p.auto_stop = auto_stop_;
  return p;
}

std::string ChannelDetector::Serialize() const {
  internal::ByteWriter w(kMagic, kVersion);
  w.Bytes(model_.Serialize());
  w.Bytes(evaluator_.Serialize());
  w.U8(auto_stop_ ? 1 : 0);
  return std::move(w).Finish();
}

Result<ChannelDetector> ChannelDetector::Deserialize(std::string_view bytes,
                                                     const DetectorOptions* options) {
  auto opened = internal::ByteReader::Open(bytes, kMagic, kVersion, "channel detector");
  if (!opened) return std::unexpected(opened.error());
  internal::ByteReader& r = *opened;
  const std::string_view model_bytes = r.Bytes();
  const std::string_view evaluator_bytes = r.Bytes();
  const uint8_t latch = r.U8();
  if (!r.ok() || !r.AtEnd() || latch > 1) {
    return MakeError(ErrorCode::kCorruptData, "channel detector state has the wrong layout");
  }
  auto model = ChannelAudienceModel::Deserialize(model_bytes, options->model);
  if (!model) return std::unexpected(model.error().Wrap("channel detector"));
  auto evaluator = AlarmEvaluator::Deserialize(evaluator_bytes, options->alarm);
  if (!evaluator) return std::unexpected(evaluator.error().Wrap("channel detector"));
  ChannelDetector d(options);
  d.model_ = std::move(*model);
  d.evaluator_ = std::move(*evaluator);
  d.auto_stop_ = latch == 1;
  return d;
}

ViewerAnomalyDetector::ViewerAnomalyDetector(const DetectorOptions& options)
    : options_(std::make_unique<DetectorOptions>(options)) {}

Result<std::unique_ptr<ViewerAnomalyDetector>> ViewerAnomalyDetector::Create(
    const DetectorOptions& options) {
  if (auto s = ValidateDetectorOptions(options); !s) return std::unexpected(s.error());
  return std::make_unique<ViewerAnomalyDetector>(options);
}

DetectorPoint ViewerAnomalyDetector::Update(std::string_view channel, int64_t t, double value) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    it = channels_.emplace(std::string(channel), ChannelDetector(options_.get())).first;
  }
  return it->second.Update(t, value);
}

const ChannelDetector* ViewerAnomalyDetector::Find(std::string_view channel) const {
  auto it = channels_.find(channel);
  return it == channels_.end() ? nullptr : &it->second;
}

void ViewerAnomalyDetector::Remove(std::string_view channel) {
  auto it = channels_.find(channel);
  if (it != channels_.end()) channels_.erase(it);
}

Result<std::string> ViewerAnomalyDetector::SerializeChannel(std::string_view channel) const {
  const ChannelDetector* d = Find(channel);
  if (!d) {
    return MakeError(ErrorCode::kNotFound,
                     "no anomaly state for channel \"" + std::string(channel) + "\"");
  }
  return d->Serialize();
}

Status ViewerAnomalyDetector::RestoreChannel(std::string_view channel, std::string_view bytes) {
  auto d = ChannelDetector::Deserialize(bytes, options_.get());
  if (!d)
    return std::unexpected(d.error().Wrap("restoring channel \"" + std::string(channel) + "\""));
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    channels_.emplace(std::string(channel), std::move(*d));
  } else {
    it->second = std::move(*d);
  }
  return Ok();
}

}  // namespace earshot::anomaly
