// The per-channel model of a live channel's usual audience (concurrent
// viewers), learned online from one sample per period; no I/O, no lookahead.
//
// What it learns, in log space y = log(viewers + count_offset) (the offset
// keeps the 0-5 viewer noise of tiny channels from looking like huge ratios):
//   * a channel level: a time-weighted moving mean of y over live time
//     (follows slow growth and level shifts within about a day of streaming);
//   * an hour-of-day profile (24 bins) and an hour-of-week profile (168 bins,
//     UTC), each shrunk toward the coarser estimate while it has little data;
//   * the spread sigma of y above that expectation (from residuals above it:
//     only the upper band raises alarms, and ramp-ups and outros would
//     inflate a two-sided spread).
// A brand-new channel starts from a prior (prior_level viewers, prior_sigma)
// that carries the weight of prior_weight_minutes of data, so the first
// minutes of a channel neither alarm on a normal audience nor swallow an
// absurd one.
//
// For each sample Update() returns the expected band of normal values
// [band_low, band_high] and whether the sample is above the band; above the
// band it tracks an "excursion" (consecutive samples above the band, small
// holes of at most excursion_grace_seconds allowed): its age and whether it is
// fading (its smoothed level fell clearly below its own peak, as the audience
// of a raid or host does) as opposed to holding or still rising (a re-stream
// of a match). Persistence rules and alarm states live in AlarmEvaluator.
//
// Learning: samples above the band are not learned (raids, glitches, the
// first minutes of an abuse); the others are learned with their residual
// clipped below at -clip_low_sigmas sigma. The owner also freezes learning
// while an alarm is on by passing learn = false (so an abusive audience never
// becomes "normal"). Frozen live time (either reason) adds up
// (learned live time pays it back); past max_frozen_seconds (or
// young_max_frozen_seconds while the model has learned less than
// warmup_minutes) the model rebases: it takes the current audience as the
// new normal level and learns again, so a genuine permanent change (or a big
// channel first seen with no history) cannot keep a channel in alarm forever.
//
// Time: Unix seconds (any origin works; bins use UTC). Samples must come in
// non-decreasing time order; gaps of any length are fine (an offline channel
// simply has no samples). Cadence-independent: every weight is a time delta.
//
// State: about 1.7 KB, constant work per sample. Serialize()/Deserialize()
// give a compact, checksummed byte string for a server to persist.
//
// Thread safety: none; one model per channel, used by one caller at a time.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::anomaly {

struct ModelOptions {
  // Band half-width in sigmas of log(viewers + count_offset) (as CloudWatch's
  // anomaly band width; default 3).
  double band_width = 3.0;
  // The upper band is at least this ratio above the expected level (in
  // viewers + count_offset): legit audience swings (good days, announced
  // special events at 2-4x) stay inside it. Re-streamed sports usually bring
  // 10x-100x.
  double min_band_ratio = 5.0;
  // Viewers added before taking logs: tames Poisson noise at 0-5 viewers.
  double count_offset = 5.0;
  // Prior for a channel with no history: its typical audience (viewers), the
  // spread of log(viewers + offset), and how many minutes of data it weighs.
  double prior_level = 10.0;
  double prior_sigma = 0.5;
  double prior_weight_minutes = 45.0;
  // Memories, in minutes of live data: channel level, profile bins, sigma.
  double level_memory_minutes = 600.0;
  double bin_memory_minutes = 240.0;
  double sigma_memory_minutes = 1440.0;
  // Pseudo-weights (minutes) pulling hour-of-day bins toward the level and
  // hour-of-week bins toward the hour-of-day estimate.
  double hod_shrink_minutes = 30.0;
  double how_shrink_minutes = 120.0;
  // Bounds of sigma: the floor keeps a very steady channel from alarming on
  // noise, the ceiling keeps an erratic one able to alarm on a 10x jump
  // (band_width x sigma_max is the widest band, in log units).
  double sigma_floor = 0.08;
  double sigma_max = 0.6;
  // Residuals learned are clipped below at -clip_low_sigmas sigma: the
  // ramp-up after going live and the outro are far below the usual audience
  // and say nothing about its upper band. (Above, at the band's edge.)
  double clip_low_sigmas = 1.0;
  // Excursion shape: smoothing time constant of the level inside an
  // excursion (seconds), the fraction of its peak below which it is
  // "fading", and the holes tolerated inside it (seconds).
  double smoothing_seconds = 90.0;
  double fade_ratio = 0.85;
  double excursion_grace_seconds = 180.0;
  // An excursion starting within this long after the previous one ended
  // inherits its peak (a raid dipping under the band and back is still the
  // same fading raid).
  double peak_memory_seconds = 3600.0;
  // The longest sample interval counted as live time (seconds); longer gaps
  // mean the channel was offline.
  double max_sample_interval_seconds = 600.0;
  // Live seconds of frozen learning after which the model rebases (see
  // above); the young limit applies until warmup_minutes of data are learned.
  double max_frozen_seconds = 4 * 3600.0;
  double young_max_frozen_seconds = 45 * 60.0;
  double warmup_minutes = 120.0;
};

// Checks the options (positive widths and memories, 0 < fade_ratio < 1, ...).
Status ValidateModelOptions(const ModelOptions& options);

// One sample's verdict. Units: viewers, seconds.
struct BandPoint {
  double expected = 0;   // the expected audience now (viewers)
  double band_low = 0;   // lower edge of the band of normal values (>= 0)
  double band_high = 0;  // upper edge; "above" means value > band_high
  bool above = false;
  // Inside an excursion (above is true or was true within the grace):
  double excursion_age_s = 0;  // seconds since the excursion's first sample above
  bool fading = false;         // smoothed level below fade_ratio x its peak
  // log of (smoothed level + offset) / (expected + offset) inside an
  // excursion, else of the sample's; the size of the jump.
  double log_ratio = 0;
};

class ChannelAudienceModel {
 public:
  // REQUIRES: ValidateModelOptions(options) succeeds.
  explicit ChannelAudienceModel(const ModelOptions& options = {});

  // Feeds one sample: `timestamp_s` Unix seconds (non-decreasing; an older
  // timestamp is treated as equal to the last one), `value` viewers (negative
  // or non-finite values count as 0). `learn` = false freezes learning (the
  // caller is alarming). Returns the band for this sample, computed before it
  // is learned.
  BandPoint Update(int64_t timestamp_s, double value, bool learn = true);

  // The band the model expects at `timestamp_s` without feeding a sample.
  BandPoint Predict(int64_t timestamp_s) const;

  // Minutes of data learned (weight of the channel level, prior excluded).
  double learned_minutes() const { return learned_minutes_; }
  // Times the model took a long-frozen audience as the new normal.
  uint32_t rebases() const { return rebases_; }
  const ModelOptions& options() const { return options_; }

  // Compact state (about 1.7 KB), versioned and checksummed. Options are not
  // included: Deserialize with the same options.
  std::string Serialize() const;
  // Rejects truncated, corrupt or foreign bytes with kCorruptData, a newer
  // format with kVersionMismatch.
  static Result<ChannelAudienceModel> Deserialize(std::string_view bytes,
                                                  const ModelOptions& options = {});

 private:
  static constexpr int kHoursPerWeek = 168;
  static constexpr int kHoursPerDay = 24;

  // Expected log level at `timestamp_s` (hour-of-week -> hour-of-day -> level).
  double ExpectedLog(int64_t timestamp_s) const;
  double Sigma() const;
  void Learn(int64_t timestamp_s, double y, double expected_log, double minutes);

  ModelOptions options_;
  // Channel level (mean of y minus the profile) and its weight (minutes,
  // prior included). The profile bins hold mean deviations from the level.
  double level_ = 0;
  double level_weight_ = 0;
  double var_ = 0;  // EWMA of squared positive residuals (upper semi-variance)
  double var_weight_ = 0;
  std::array<float, kHoursPerDay> hod_dev_{};  // mean of y - level per UTC hour of day
  std::array<float, kHoursPerDay> hod_weight_{};
  std::array<float, kHoursPerWeek> how_dev_{};  // mean of y - level - day profile
  std::array<float, kHoursPerWeek> how_weight_{};
  double learned_minutes_ = 0;
  double step_s_ = 60;  // typical sample interval (seconds), learned
  int64_t last_t_ = 0;
  bool has_last_ = false;
  // Excursion state.
  bool in_excursion_ = false;
  int64_t excursion_start_ = 0;
  int64_t last_above_ = 0;
  double smooth_ = 0;       // smoothed y inside the excursion
  double peak_ = 0;         // max of smooth_ inside the excursion
  double recent_peak_ = 0;  // peak of the last excursion that ended
  int64_t recent_end_ = 0;
  bool has_recent_ = false;
  double frozen_s_ = 0;   // frozen live seconds not yet paid back
  uint32_t rebases_ = 0;  // times the model accepted a new normal
};

}  // namespace earshot::anomaly
