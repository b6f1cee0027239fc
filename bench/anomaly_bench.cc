// Speed of the viewer-count anomaly detector's update step (no I/O).
//
// Input: 256 synthetic channels x 2 days at one sample a minute (daily
// sessions, log-normal noise), interleaved by time as a live feed is. Every
// benchmark processes the same channel-minutes; items_per_second is
// channel-minutes per second on one core.
//
//   BM_BaselineMeanSigma   the trivial detector: per channel, an hour-of-week
//                          running mean and variance (Welford) and a
//                          mean +- 3 sigma band. The yardstick.
//   BM_ChannelModel        ChannelAudienceModel::Update (band + excursion)
//   BM_ChannelDetector     + AlarmEvaluator and the auto-stop verdict: what a
//                          server runs per sample when it holds the
//                          per-channel object
//   BM_ViewerDetector      ViewerAnomalyDetector::Update with the channel id
//                          looked up by name (hash map), as the CLI does
//
// Counters: ns_per_update (wall time per channel-minute) and x_baseline, the
// benchmark's time over the baseline's, the baseline being run (untimed by
// the framework) right before every iteration: a ratio that does not depend
// much on how busy the shared machine is. BM_BaselineMeanSigma's own
// x_baseline (about 1) shows the noise of that ratio.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "anomaly/viewer_anomaly_detector.h"

namespace {

using earshot::anomaly::ChannelAudienceModel;
using earshot::anomaly::ChannelDetector;
using earshot::anomaly::DetectorOptions;
using earshot::anomaly::ViewerAnomalyDetector;

constexpr int kChannels = 256;
constexpr int kMinutes = 2 * 1440;
constexpr int64_t kT0 = 1740960000;

struct Row {
  int64_t t;
  int channel;
  float value;
};

const std::vector<Row>& Rows() {
  static const std::vector<Row> rows = [] {
    std::mt19937_64 rng(42);
    std::normal_distribution<double> noise(0.0, 1.0);
    std::vector<double> level(kChannels), start(kChannels);
    for (int c = 0; c < kChannels; ++c) {
      level[c] = std::exp(std::uniform_real_distribution<double>(0.0, 9.0)(rng));
      start[c] = std::uniform_real_distribution<double>(0.0, 1440.0 - 300)(rng);
    }
    std::vector<Row> out;
    out.reserve(static_cast<size_t>(kChannels) * kMinutes / 4);
    for (int m = 0; m < kMinutes; ++m) {
      for (int c = 0; c < kChannels; ++c) {
        const double in_day = std::fmod(m, 1440.0);
        if (in_day < start[c] || in_day > start[c] + 300) continue;  // offline
        const double v = std::round(level[c] * std::exp(0.1 * noise(rng)));
        out.push_back({kT0 + m * 60, c, static_cast<float>(v)});
      }
    }
    return out;
  }();
  return rows;
}

// The baseline: hour-of-week mean +- 3 sigma (Welford), per channel.
struct MeanSigma {
  double n[168] = {}, mean[168] = {}, m2[168] = {};
  bool Update(int64_t t, double v, double* low, double* high) {
    const int h = static_cast<int>(((t / 3600) + 72) % 168);
    const double sd = n[h] > 1 ? std::sqrt(m2[h] / (n[h] - 1)) : 0.0;
    *low = mean[h] - 3 * sd;
    *high = mean[h] + 3 * sd;
    const bool alarm = n[h] > 30 && v > *high;
    n[h] += 1;
    const double d = v - mean[h];
    mean[h] += d / n[h];
    m2[h] += d * (v - mean[h]);
    return alarm;
  }
};

// Runs the baseline over all rows once; returns wall seconds.
double RunBaselineOnce() {
  std::vector<MeanSigma> models(kChannels);
  const auto& rows = Rows();
  double low = 0, high = 0;
  int alarms = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const Row& r : rows) alarms += models[r.channel].Update(r.t, r.value, &low, &high);
  const auto t1 = std::chrono::steady_clock::now();
  benchmark::DoNotOptimize(alarms);
  benchmark::DoNotOptimize(high);
  return std::chrono::duration<double>(t1 - t0).count();
}

// Times the baseline once more, outside the benchmark's own timing, so that
// every iteration yields a (baseline, benchmark) pair measured back to back.
double TimeBaseline(benchmark::State& state) {
  state.PauseTiming();
  const double s = RunBaselineOnce();
  state.ResumeTiming();
  return s;
}

void SetCounters(benchmark::State& state, double seconds, double baseline_seconds) {
  const double items = static_cast<double>(state.iterations()) * static_cast<double>(Rows().size());
  state.SetItemsProcessed(static_cast<int64_t>(items));
  state.counters["ns_per_update"] = seconds * 1e9 / items;
  state.counters["x_baseline"] = seconds / baseline_seconds;
}

void BM_BaselineMeanSigma(benchmark::State& state) {
  const auto& rows = Rows();
  double baseline = 0;
  double seconds = 0;
  for (auto _ : state) {
    baseline += TimeBaseline(state);
    std::vector<MeanSigma> models(kChannels);
    double low = 0, high = 0;
    int alarms = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const Row& r : rows) alarms += models[r.channel].Update(r.t, r.value, &low, &high);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(alarms);
  }
  SetCounters(state, seconds, baseline);
}
BENCHMARK(BM_BaselineMeanSigma)->Unit(benchmark::kMillisecond);

void BM_ChannelModel(benchmark::State& state) {
  const auto& rows = Rows();
  double baseline = 0;
  double seconds = 0;
  for (auto _ : state) {
    baseline += TimeBaseline(state);
    std::vector<ChannelAudienceModel> models(kChannels);
    double sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const Row& r : rows) sum += models[r.channel].Update(r.t, r.value).band_high;
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(sum);
  }
  SetCounters(state, seconds, baseline);
}
BENCHMARK(BM_ChannelModel)->Unit(benchmark::kMillisecond);

void BM_ChannelDetector(benchmark::State& state) {
  const auto& rows = Rows();
  double baseline = 0;
  const DetectorOptions options;
  double seconds = 0;
  for (auto _ : state) {
    baseline += TimeBaseline(state);
    std::vector<ChannelDetector> detectors(kChannels, ChannelDetector(&options));
    int alarms = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const Row& r : rows) alarms += detectors[r.channel].Update(r.t, r.value).alarm();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(alarms);
  }
  SetCounters(state, seconds, baseline);
}
BENCHMARK(BM_ChannelDetector)->Unit(benchmark::kMillisecond);

void BM_ViewerDetector(benchmark::State& state) {
  const auto& rows = Rows();
  double baseline = 0;
  std::vector<std::string> names;
  for (int c = 0; c < kChannels; ++c) names.push_back("channel-" + std::to_string(c));
  double seconds = 0;
  for (auto _ : state) {
    baseline += TimeBaseline(state);
    ViewerAnomalyDetector detector;
    int alarms = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const Row& r : rows) alarms += detector.Update(names[r.channel], r.t, r.value).alarm();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(alarms);
  }
  SetCounters(state, seconds, baseline);
}
BENCHMARK(BM_ViewerDetector)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
