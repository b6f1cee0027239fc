#include "anomaly/channel_audience_model.h"

#include <algorithm>
#include <cmath>

#include "anomaly/floor_div.h"
#include "anomaly/state_codec.h"

namespace earshot::anomaly {
namespace {

constexpr std::string_view kMagic = "EAM1";
constexpr uint8_t kVersion = 1;
constexpr int64_t kSecondsPerHour = 3600;
// 1970-01-01 was a Thursday: shifting by 3 days makes bin 0 Monday 00:00 UTC.
constexpr int64_t kEpochHourOfWeek = 72;


int HourOfWeek(int64_t t) {
  const int64_t h = FloorDiv(t, kSecondsPerHour) + kEpochHourOfWeek;
  int64_t m = h % 168;
  if (m < 0) m += 168;
  return static_cast<int>(m);
}

double Sanitize(double v) { return std::isfinite(v) && v > 0 ? v : 0.0; }

// Weighted running mean with a capped weight (minutes): an EWMA once full.
void Blend(double* mean, double* weight, double x, double minutes, double memory) {
  *weight = std::min(*weight + minutes, memory);
  *mean += (minutes / *weight) * (x - *mean);
}
void BlendF(float* mean, float* weight, double x, double minutes, double memory) {
  double m = *mean, w = *weight;
  Blend(&m, &w, x, minutes, memory);
  *mean = static_cast<float>(m);
  *weight = static_cast<float>(w);
}

}  // namespace

Status ValidateModelOptions(const ModelOptions& o) {
  auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive(o.band_width))
    return MakeError(ErrorCode::kInvalidArgument, "band width must be > 0");
  if (!(std::isfinite(o.min_band_ratio) && o.min_band_ratio >= 1)) {
    return MakeError(ErrorCode::kInvalidArgument, "minimum band ratio must be >= 1");
  }
  if (!positive(o.count_offset)) {
    return MakeError(ErrorCode::kInvalidArgument, "count offset must be > 0 (viewers)");
  }
  if (!(std::isfinite(o.prior_level) && o.prior_level >= 0)) {
    return MakeError(ErrorCode::kInvalidArgument, "prior level must be >= 0 viewers");
  }
  if (!positive(o.prior_sigma) || !positive(o.prior_weight_minutes) ||
      !positive(o.level_memory_minutes) || !positive(o.bin_memory_minutes) ||
      !positive(o.sigma_memory_minutes) || !positive(o.hod_shrink_minutes) ||
      !positive(o.how_shrink_minutes) || !positive(o.sigma_floor) || !positive(o.clip_low_sigmas) ||
      !(o.sigma_max >= o.sigma_floor) || !positive(o.smoothing_seconds) ||
      !positive(o.max_sample_interval_seconds) || !positive(o.max_frozen_seconds) ||
      !positive(o.young_max_frozen_seconds) ||
      !(std::isfinite(o.warmup_minutes) && o.warmup_minutes >= 0)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "prior sigma/weight, memories, shrink weights, sigma floor, clip, smoothing, "
                     "sample interval and freeze limit must all be > 0");
  }
  if (!(o.fade_ratio > 0 && o.fade_ratio < 1)) {
    return MakeError(ErrorCode::kInvalidArgument, "fade ratio must be between 0 and 1");
  }
  if (!(std::isfinite(o.excursion_grace_seconds) && o.excursion_grace_seconds >= 0) ||
      !(std::isfinite(o.peak_memory_seconds) && o.peak_memory_seconds >= 0)) {
    return MakeError(ErrorCode::kInvalidArgument, "excursion grace and peak memory must be >= 0");
  }
  return Ok();
}

ChannelAudienceModel::ChannelAudienceModel(const ModelOptions& options) : options_(options) {
  level_ = std::log(options_.prior_level + options_.count_offset);
  level_weight_ = options_.prior_weight_minutes;
  var_ = options_.prior_sigma * options_.prior_sigma;
  var_weight_ = options_.prior_weight_minutes;
}

double ChannelAudienceModel::Sigma() const {
  return std::clamp(std::sqrt(var_), options_.sigma_floor, options_.sigma_max);
}

double ChannelAudienceModel::ExpectedLog(int64_t t) const {
  const int how = HourOfWeek(t);
  const int hod = how % kHoursPerDay;
  const double wd = hod_weight_[hod];
  const double ww = how_weight_[how];
  return level_ + hod_dev_[hod] * (wd / (wd + options_.hod_shrink_minutes)) +
         how_dev_[how] * (ww / (ww + options_.how_shrink_minutes));
}

void ChannelAudienceModel::Learn(int64_t t, double y, double expected_log, double minutes) {
  const double sigma = Sigma();
  // Up to the band's upper edge: a young model (or one after a long freeze)
  // climbs to the channel's real level fast, while a raid above the band
  // moves it by at most the band per sample.
  const double high = std::max(options_.band_width * sigma, std::log(options_.min_band_ratio));
  const double r = std::clamp(y - expected_log, -options_.clip_low_sigmas * sigma, high);
  const double yc = expected_log + r;
  const int how = HourOfWeek(t);
  const int hod = how % kHoursPerDay;
  const double wd = hod_weight_[hod];
  const double d_hod = hod_dev_[hod] * (wd / (wd + options_.hod_shrink_minutes));
  const double ww = how_weight_[how];
  const double d_how = how_dev_[how] * (ww / (ww + options_.how_shrink_minutes));
  const double level_before = level_;
  Blend(&level_, &level_weight_, yc - d_hod - d_how, minutes, options_.level_memory_minutes);
  BlendF(&hod_dev_[hod], &hod_weight_[hod], yc - level_before, minutes,
         options_.bin_memory_minutes);
  BlendF(&how_dev_[how], &how_weight_[how], yc - level_before - d_hod, minutes,
         options_.bin_memory_minutes);
  if (r > 0) Blend(&var_, &var_weight_, r * r, minutes, options_.sigma_memory_minutes);
  learned_minutes_ += minutes;
}

BandPoint ChannelAudienceModel::Predict(int64_t timestamp_s) const {
  const double c = options_.count_offset;
  const double e = ExpectedLog(timestamp_s);
  const double spread = options_.band_width * Sigma();
  BandPoint p;
  p.expected = std::max(0.0, std::exp(e) - c);
  p.band_high =
      std::max(0.0, std::exp(e + std::max(spread, std::log(options_.min_band_ratio))) - c);
  p.band_low = std::clamp(std::exp(e - spread) - c, 0.0, p.band_high);
  return p;
}

BandPoint ChannelAudienceModel::Update(int64_t t, double value, bool learn) {
  const ModelOptions& o = options_;
  const double v = Sanitize(value);
  if (has_last_ && t < last_t_) t = last_t_;
  // The time this sample stands for: its interval from the previous one,
  // or the typical interval after an offline gap.
  double interval = step_s_;
  if (has_last_) {
    const double dt = static_cast<double>(t - last_t_);
    if (dt <= o.max_sample_interval_seconds) {
      interval = dt;
      if (dt > 0) step_s_ += 0.05 * (dt - step_s_);
    }
  }
  has_last_ = true;
  last_t_ = t;

  BandPoint p = Predict(t);
  const double c = o.count_offset;
  const double y = std::log(v + c);
  const double e = std::log(p.expected + c);
  p.above = v > p.band_high;
  p.log_ratio = y - e;

  // Excursion tracking.
  // Holes up to the grace, and never shorter than a sample interval and a half.
  const double grace = std::max(o.excursion_grace_seconds, 1.5 * step_s_);
  if (in_excursion_ && static_cast<double>(t - last_above_) > grace) {
    in_excursion_ = false;
    recent_peak_ = peak_;
    recent_end_ = last_above_;
    has_recent_ = true;
  }
  if (p.above && !in_excursion_) {
    in_excursion_ = true;
    excursion_start_ = t;
    smooth_ = y;
    peak_ = y;
    if (has_recent_ && static_cast<double>(t - recent_end_) <= o.peak_memory_seconds) {
      peak_ = std::max(peak_, recent_peak_);
    }
  } else if (in_excursion_) {
    const double alpha = 1.0 - std::exp(-std::max(interval, 1.0) / o.smoothing_seconds);
    smooth_ += alpha * (y - smooth_);
    peak_ = std::max(peak_, smooth_);
  }
  if (p.above) last_above_ = t;
  if (in_excursion_) {
    p.excursion_age_s = static_cast<double>(t - excursion_start_);
    p.fading = smooth_ < peak_ + std::log(o.fade_ratio);
    p.log_ratio = smooth_ - e;
  }

  // Learning: not above the band, not while the caller freezes it. Frozen
  // live time adds up
  // (and learned time pays it back); past the limit the model accepts the
  // current audience as the new normal (Rebase) and learns again.
  const double step = std::max(interval, 1.0);
  if (learn && !p.above) {
    frozen_s_ = std::max(0.0, frozen_s_ - step);
    Learn(t, y, e, step / 60.0);
  } else {
    frozen_s_ += step;
    const double limit =
        learned_minutes_ < o.warmup_minutes ? o.young_max_frozen_seconds : o.max_frozen_seconds;
    if (frozen_s_ > limit) {
      level_ += y - e;
      level_weight_ = o.prior_weight_minutes;
      frozen_s_ = 0;
      ++rebases_;
      Learn(t, y, y, step / 60.0);
    }
  }
  return p;
}

std::string ChannelAudienceModel::Serialize() const {
  internal::ByteWriter w(kMagic, kVersion);
  w.F64(level_);
  w.F64(level_weight_);
  w.F64(var_);
  w.F64(var_weight_);
  w.F64(learned_minutes_);
  w.F64(step_s_);
  w.I64(last_t_);
  w.I64(excursion_start_);
  w.I64(last_above_);
  w.F64(smooth_);
  w.F64(peak_);
  w.F64(recent_peak_);
  w.I64(recent_end_);
  w.F64(frozen_s_);
  w.U32(rebases_);
  w.U8(static_cast<uint8_t>((has_last_ ? 1 : 0) | (in_excursion_ ? 2 : 0) | (has_recent_ ? 4 : 0)));
  for (int i = 0; i < kHoursPerDay; ++i) {
    w.F32(hod_dev_[i]);
    w.F32(hod_weight_[i]);
  }
  for (int i = 0; i < kHoursPerWeek; ++i) {
    w.F32(how_dev_[i]);
    w.F32(how_weight_[i]);
  }
  return std::move(w).Finish();
}

Result<ChannelAudienceModel> ChannelAudienceModel::Deserialize(std::string_view bytes,
                                                               const ModelOptions& options) {
  auto opened = internal::ByteReader::Open(bytes, kMagic, kVersion, "channel audience model");
  if (!opened) return std::unexpected(opened.error());
  internal::ByteReader& r = *opened;
  ChannelAudienceModel m(options);
  m.level_ = r.F64();
  m.level_weight_ = r.F64();
  m.var_ = r.F64();
  m.var_weight_ = r.F64();
  m.learned_minutes_ = r.F64();
  m.step_s_ = r.F64();
  m.last_t_ = r.I64();
  m.excursion_start_ = r.I64();
  m.last_above_ = r.I64();
  m.smooth_ = r.F64();
  m.peak_ = r.F64();
  m.recent_peak_ = r.F64();
  m.recent_end_ = r.I64();
  m.frozen_s_ = r.F64();
  m.rebases_ = r.U32();
  const uint8_t flags = r.U8();
  m.has_last_ = flags & 1;
  m.in_excursion_ = flags & 2;
  m.has_recent_ = flags & 4;
  bool finite = std::isfinite(m.level_) && std::isfinite(m.var_) && m.var_ >= 0 &&
                m.level_weight_ > 0 && m.var_weight_ > 0 && std::isfinite(m.smooth_) &&
                std::isfinite(m.peak_) && std::isfinite(m.recent_peak_) && m.step_s_ > 0 &&
                std::isfinite(m.step_s_) && std::isfinite(m.learned_minutes_) &&
                std::isfinite(m.frozen_s_) && m.frozen_s_ >= 0 && flags < 8;
  for (int i = 0; i < kHoursPerDay; ++i) {
    m.hod_dev_[i] = r.F32();
    m.hod_weight_[i] = r.F32();
    finite = finite && std::isfinite(m.hod_dev_[i]) && m.hod_weight_[i] >= 0;
  }
  for (int i = 0; i < kHoursPerWeek; ++i) {
    m.how_dev_[i] = r.F32();
    m.how_weight_[i] = r.F32();
    finite = finite && std::isfinite(m.how_dev_[i]) && m.how_weight_[i] >= 0;
  }
  if (!r.ok() || !r.AtEnd()) {
    return MakeError(ErrorCode::kCorruptData, "channel audience model state has the wrong length");
  }
  if (!finite) {
    return MakeError(ErrorCode::kCorruptData,
                     "channel audience model state holds out-of-range numbers");
  }
  return m;
}

}  // namespace earshot::anomaly
