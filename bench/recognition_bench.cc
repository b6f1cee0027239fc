// Speed of the recognition engine on generated audio (no files read).
//
//   BM_FftOnly          baseline: FFTW r2c of every 1024-sample frame at the
//                       fingerprinter's hop over 60 s of audio, nothing else
//   BM_Spectrogram      + Hann window and log2 power of the kept bins
//   BM_Fingerprint      + banded peak picking (query density): the cost of
//                       a query's peaks; compare with BM_FftOnly for the ratio
//   BM_FingerprintTrack reference side: peaks, hashes and peak map
//   BM_Match            one 10 s query (peaks already extracted) against a
//                       catalog of 200 generated tracks of 2 min (400 min)
//   BM_StreamRecognizer 60 s of stream (talk, music, talk) pushed in 0.5 s
//                       chunks into a StreamRecognizer on the same catalog
//   BM_StreamRecognizerReal  only when EARSHOT_BENCH_CATALOG (a catalog
//                       directory, opened read-only) and EARSHOT_BENCH_PCM
//                       (a stream's decoded audio: raw float32 mono at 8 kHz)
//                       are set: the stream pushed in 100 ms chunks, as
//                       `identify --follow` does. Counters: cpu_s_per_hour
//                       (CPU seconds per stream-hour, decoding excluded) and
//                       x_fingerprint, its CPU time over that of the
//                       Fingerprinter alone on the same audio, measured in
//                       the same run (a baseline that does not depend on how
//                       busy the machine is). For example:
//                         EARSHOT_BENCH_CATALOG=/var/tmp/earshot/perf-cat
//                         EARSHOT_BENCH_PCM=/var/tmp/earshot/pcm8k/stream02.flv.f32
//                         build/bench/recognition_bench --benchmark_filter=Real
//
// Counters: x_realtime = seconds of audio processed per second (rate), and
// per-benchmark work counts. The catalog is built once, on first use (about
// half a minute: generating and fingerprinting 400 min of audio).
#include <benchmark/benchmark.h>
#include <fftw3.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "../tests/recognition/test_audio.h"
#include "catalog/catalog.h"
#include "recognition/fingerprinter.h"
#include "recognition/matcher.h"
#include "recognition/spectrogram.h"
#include "recognition/stream_recognizer.h"

namespace {

using earshot::recognition::ExtractPeaks;
using earshot::recognition::Fingerprinter;
using earshot::recognition::FingerprintParams;
using earshot::recognition::FingerprintTrack;
using earshot::recognition::Matcher;
using earshot::recognition::MatchStats;
using earshot::recognition::Peak;
using earshot::recognition::QueryParams;
using earshot::recognition::Spectrogram;
using earshot::recognition::StreamEvent;
using earshot::recognition::StreamParams;
using earshot::recognition::StreamRecognizer;
namespace test_audio = earshot::recognition::test_audio;

constexpr double kAudioSeconds = 60.0;

const std::vector<float>& OneMinuteOfMusic() {
  static const std::vector<float> pcm = test_audio::Render(test_audio::ComposeMusic(99, kAudioSeconds), 0, kAudioSeconds);
  return pcm;
}

void SetAudioCounters(benchmark::State& state, double seconds_per_iteration, size_t samples) {
  state.counters["x_realtime"] =
      benchmark::Counter(seconds_per_iteration * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(samples));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(samples * sizeof(float)));
}

void BM_FftOnly(benchmark::State& state) {
  const std::vector<float>& pcm = OneMinuteOfMusic();
  const FingerprintParams params;
  const size_t n = static_cast<size_t>(params.fft_size);
  float* in = fftwf_alloc_real(n);
  fftwf_complex* out = fftwf_alloc_complex(n / 2 + 1);
  fftwf_plan plan = fftwf_plan_dft_r2c_1d(params.fft_size, in, out, FFTW_ESTIMATE);
  size_t frames = 0;
  for (auto _ : state) {
    for (size_t start = 0; start + n <= pcm.size(); start += static_cast<size_t>(params.hop)) {
      std::copy(pcm.begin() + static_cast<ptrdiff_t>(start), pcm.begin() + static_cast<ptrdiff_t>(start + n), in);
      fftwf_execute(plan);
      benchmark::DoNotOptimize(out[3][0]);
      ++frames;
    }
  }
  fftwf_destroy_plan(plan);
  fftwf_free(in);
  fftwf_free(out);
  SetAudioCounters(state, kAudioSeconds, pcm.size());
  state.counters["frames"] = static_cast<double>(frames) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_FftOnly)->Unit(benchmark::kMillisecond);

void BM_Spectrogram(benchmark::State& state) {
  const std::vector<float>& pcm = OneMinuteOfMusic();
  const FingerprintParams params;
  for (auto _ : state) {
    Spectrogram spectrogram(params);
    float sum = 0;
    spectrogram.Push(pcm, [&sum](uint32_t, std::span<const float> log_power) { sum += log_power[10]; });
    benchmark::DoNotOptimize(sum);
  }
  SetAudioCounters(state, kAudioSeconds, pcm.size());
}
BENCHMARK(BM_Spectrogram)->Unit(benchmark::kMillisecond);

void BM_Fingerprint(benchmark::State& state) {
  const std::vector<float>& pcm = OneMinuteOfMusic();
  const FingerprintParams params;
  const QueryParams query;
  size_t peaks = 0;
  for (auto _ : state) {
    const std::vector<Peak> out = ExtractPeaks(pcm, params, query.query_peaks_per_band);
    peaks = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  SetAudioCounters(state, kAudioSeconds, pcm.size());
  state.counters["peaks_per_s"] = static_cast<double>(peaks) / kAudioSeconds;
}
BENCHMARK(BM_Fingerprint)->Unit(benchmark::kMillisecond);

void BM_FingerprintTrack(benchmark::State& state) {
  const std::vector<float>& pcm = OneMinuteOfMusic();
  const FingerprintParams params;
  size_t hashes = 0, side = 0;
  for (auto _ : state) {
    const auto print = FingerprintTrack(1, pcm, params);
    hashes = print.hashes.size();
    side = print.side_data.size();
    benchmark::DoNotOptimize(print.hashes.data());
  }
  SetAudioCounters(state, kAudioSeconds, pcm.size());
  state.counters["hashes_per_s"] = static_cast<double>(hashes) / kAudioSeconds;
  state.counters["peak_map_bytes_per_s"] = static_cast<double>(side) / kAudioSeconds;
}
BENCHMARK(BM_FingerprintTrack)->Unit(benchmark::kMillisecond);

// 200 generated tracks of 2 min, built once.
const test_audio::Catalog& BigCatalog() {
  static const test_audio::Catalog catalog = test_audio::BuildCatalog(4242, 200, 120.0, 120.0, FingerprintParams());
  return catalog;
}

void BM_Match(benchmark::State& state) {
  const test_audio::Catalog& catalog = BigCatalog();
  const FingerprintParams params;
  const QueryParams query;
  const Matcher matcher(catalog.index, params, query);
  // 16 queries of 10 s: excerpts of random tracks, half of them under speech.
  constexpr double kQuerySeconds = 10.0;
  std::mt19937 rng(7);
  std::vector<std::vector<Peak>> queries;
  for (int i = 0; i < 16; ++i) {
    const auto track = catalog.first_id + static_cast<uint32_t>(rng() % catalog.scores.size());
    const double from = std::uniform_real_distribution<double>(0, 100)(rng);
    std::vector<float> pcm = test_audio::Render(catalog.score(track), from, kQuerySeconds);
    if (i % 2) pcm = test_audio::MixAtSnr(pcm, test_audio::SpeechLike(static_cast<uint32_t>(rng()), kQuerySeconds), 3.0);
    queries.push_back(ExtractPeaks(pcm, params, query.query_peaks_per_band));
  }
  size_t next = 0, found = 0;
  MatchStats total;
  for (auto _ : state) {
    MatchStats stats;
    const auto results = matcher.Match(queries[next++ % queries.size()], 5, &stats);
    found += !results.empty();
    total.pairs += stats.pairs;
    total.lookups += stats.lookups;
    total.postings += stats.postings;
  }
  const double n = static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.counters["x_realtime"] = benchmark::Counter(kQuerySeconds * n, benchmark::Counter::kIsRate);
  state.counters["found_share"] = static_cast<double>(found) / n;
  state.counters["lookups"] = static_cast<double>(total.lookups) / n;
  state.counters["postings"] = static_cast<double>(total.postings) / n;
  state.counters["catalog_postings"] = static_cast<double>(catalog.index.PostingCount());
}
BENCHMARK(BM_Match)->Unit(benchmark::kMillisecond);

void BM_StreamRecognizer(benchmark::State& state) {
  const test_audio::Catalog& catalog = BigCatalog();
  const FingerprintParams params;
  const Matcher matcher(catalog.index, params, QueryParams::Streaming());
  // 60 s: 10 s talk, 40 s of a catalogued track, 10 s talk.
  static const std::vector<float> stream = [&catalog] {
    std::vector<float> pcm = test_audio::SpeechLike(1, 10.0);
    test_audio::Append(pcm, test_audio::Render(catalog.score(catalog.first_id + 17), 30.0, 40.0));
    test_audio::Append(pcm, test_audio::SpeechLike(2, 10.0));
    return pcm;
  }();
  constexpr size_t kChunk = 4000;
  const auto played = catalog.first_id + 17;
  size_t events_total = 0, started = 0, played_started = 0;
  for (auto _ : state) {
    StreamRecognizer recognizer(matcher, StreamParams());
    std::vector<StreamEvent> events;
    for (size_t i = 0; i < stream.size(); i += kChunk) {
      recognizer.Push(std::span(stream).subspan(i, std::min(kChunk, stream.size() - i)), events);
    }
    recognizer.Finish(events);
    events_total += events.size();
    for (const StreamEvent& e : events) {
      if (e.type != StreamEvent::Type::kStarted) continue;
      ++started;
      played_started += e.track == played;
    }
  }
  const double n = static_cast<double>(state.iterations());
  SetAudioCounters(state, static_cast<double>(stream.size()) / test_audio::kRate, stream.size());
  state.counters["events"] = static_cast<double>(events_total) / n;
  // Matches started per run: 1 is right (one track is played); more are
  // spurious matches of other tracks.
  state.counters["matches"] = static_cast<double>(started) / n;
  state.counters["played_found"] = static_cast<double>(played_started) / n;
}
BENCHMARK(BM_StreamRecognizer)->Unit(benchmark::kMillisecond);

// CPU time of the calling thread, in seconds.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void BM_StreamRecognizerReal(benchmark::State& state, std::string catalog_dir,
                             std::string pcm_path) {
  earshot::catalog::CatalogOptions options;
  options.create_if_missing = false;
  options.read_only = true;
  options.background_merge = false;
  auto catalog = earshot::catalog::Catalog::Open(catalog_dir, options);
  if (!catalog) {
    state.SkipWithError(("cannot open catalog " + catalog_dir).c_str());
    return;
  }
  std::vector<float> pcm;
  if (FILE* f = std::fopen(pcm_path.c_str(), "rb")) {
    float buffer[4096];
    size_t n = 0;
    while ((n = std::fread(buffer, sizeof(float), 4096, f)) > 0)
      pcm.insert(pcm.end(), buffer, buffer + n);
    std::fclose(f);
  }
  if (pcm.empty()) {
    state.SkipWithError(("cannot read " + pcm_path).c_str());
    return;
  }
  const FingerprintParams& params = (*catalog)->params();
  const auto snapshot = (*catalog)->Snapshot();
  const Matcher matcher(*snapshot, params, QueryParams::Streaming());
  const size_t chunk = static_cast<size_t>(params.sample_rate) / 10;
  const double seconds = static_cast<double>(pcm.size()) / params.sample_rate;

  // Baseline: the query-density fingerprinter alone over the same audio.
  double fingerprint_cpu = 1e300;
  for (int k = 0; k < 2; ++k) {
    const double t0 = ThreadCpuSeconds();
    Fingerprinter fp(params, QueryParams().query_peaks_per_band);
    std::vector<Peak> peaks;
    for (size_t i = 0; i < pcm.size(); i += chunk) {
      peaks.clear();
      fp.Push(std::span(pcm).subspan(i, std::min(chunk, pcm.size() - i)), peaks);
    }
    fp.Finish(peaks);
    benchmark::DoNotOptimize(peaks.data());
    fingerprint_cpu = std::min(fingerprint_cpu, ThreadCpuSeconds() - t0);
  }

  double cpu = 0;
  size_t events_total = 0, started = 0;
  for (auto _ : state) {
    const double t0 = ThreadCpuSeconds();
    StreamRecognizer recognizer(matcher, StreamParams());
    std::vector<StreamEvent> events;
    for (size_t i = 0; i < pcm.size(); i += chunk) {
      recognizer.Push(std::span(pcm).subspan(i, std::min(chunk, pcm.size() - i)), events);
    }
    recognizer.Finish(events);
    cpu += ThreadCpuSeconds() - t0;
    events_total += events.size();
    for (const StreamEvent& e : events) started += e.type == StreamEvent::Type::kStarted;
  }
  const double n = static_cast<double>(state.iterations());
  SetAudioCounters(state, seconds, pcm.size());
  state.counters["stream_s"] = seconds;
  state.counters["cpu_s_per_hour"] = cpu / n / seconds * 3600.0;
  state.counters["fingerprint_cpu_s_per_hour"] = fingerprint_cpu / seconds * 3600.0;
  state.counters["x_fingerprint"] = cpu / n / fingerprint_cpu;
  state.counters["events"] = static_cast<double>(events_total) / n;
  state.counters["matches"] = static_cast<double>(started) / n;
}

}  // namespace

int main(int argc, char** argv) {
  const char* catalog_dir = std::getenv("EARSHOT_BENCH_CATALOG");
  const char* pcm_path = std::getenv("EARSHOT_BENCH_PCM");
  if (catalog_dir && *catalog_dir && pcm_path && *pcm_path) {
    benchmark::RegisterBenchmark("BM_StreamRecognizerReal", BM_StreamRecognizerReal,
                                 std::string(catalog_dir), std::string(pcm_path))
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
