// Synthetic viewer-count series for the anomaly tests: one channel with a
// daily session, log-normal session-to-session and minute-to-minute noise
// (Poisson counts at low levels), generated from a fixed seed.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace earshot::anomaly::testing {

// Mon 2025-03-03 00:00:00 UTC.
constexpr int64_t kT0 = 1740960000;
constexpr int64_t kDay = 86400;

struct Sample {
  int64_t t = 0;
  double value = 0;
};

class SyntheticChannel {
 public:
  SyntheticChannel(double level, uint64_t seed) : level_(level), rng_(seed) {}

  // Viewers at a normal moment of a session with popularity `session_factor`.
  double Normal(double session_factor) {
    const double lam = level_ * session_factor * std::exp(noise_(rng_) * 0.08);
    return Count(lam);
  }

  double Count(double lam) {
    if (lam < 50) return static_cast<double>(std::poisson_distribution<int>(lam)(rng_));
    return std::round(lam);
  }

  // A session of `minutes` starting at `start` (step `step_s` seconds), with a
  // short ramp-up; `jump(minute)` returns extra viewers (raids) or a
  // replacement audience (> 0 replaces) for abuse; drop_p loses samples.
  template <class Extra>
  std::vector<Sample> Session(int64_t start, int minutes, Extra extra, double drop_p = 0.0,
                              int64_t step_s = 60) {
    std::vector<Sample> out;
    const double sf = std::exp(noise_(rng_) * 0.2);
    const int steps = static_cast<int>(minutes * 60 / step_s);
    for (int k = 0; k < steps; ++k) {
      const double minute = static_cast<double>(k * step_s) / 60.0;
      const double ramp = 1.0 - std::exp(-(minute + 1) / 5.0);
      double v = Normal(sf * ramp);
      auto [add, replace] = extra(minute);
      if (replace > 0) v = Count(std::max(replace * std::exp(noise_(rng_) * 0.03), v));
      v += Count(add);
      if (drop_p > 0 && uniform_(rng_) < drop_p) continue;
      out.push_back({start + k * step_s, v});
    }
    return out;
  }

  std::vector<Sample> Session(int64_t start, int minutes) {
    return Session(start, minutes, [](double) { return std::pair<double, double>{0, 0}; });
  }

  // `days` daily sessions of `minutes` at 19:00 UTC from day `first_day`.
  std::vector<Sample> History(int first_day, int days, int minutes = 180) {
    std::vector<Sample> out;
    for (int d = first_day; d < first_day + days; ++d) {
      auto s = Session(kT0 + d * kDay + 19 * 3600, minutes);
      out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  }

 private:
  double level_;
  std::mt19937_64 rng_;
  std::normal_distribution<double> noise_{0.0, 1.0};
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
};

}  // namespace earshot::anomaly::testing
