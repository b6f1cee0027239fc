// Scanner throughput: N concurrent copies of one stream file (by default the
// ACR corpus's stream02.flv: AAC 128 kbit/s in FLV, ~11 min) scanned as fast
// as possible by one Scanner on a pool of T threads, decode included.
//
// Prints, for each N: CPU seconds per stream-hour, the audio scanned per CPU
// second, and the largest number of such streams one core keeps up with in
// real time (3600 / CPU-seconds-per-stream-hour). The baseline measured in
// the same run is decoding alone (libav demux + AAC decode + resample to
// 8 kHz), so the ratio shows what recognition adds on top of the decoder.
//
// Usage: scan_bench CATALOG_DIR [STREAM_FILE] [N...]
//   CATALOG_DIR  a catalog (e.g. the one the ACR adapter builds from the corpus)
//   STREAM_FILE  default /var/tmp/earshot/corpus-acr/streams/stream02.flv
//   N...         stream counts to run (default 1 4 16); threads = cores
// Results are written into a temporary folder that is removed afterwards.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "common/log.h"
#include "media/audio_decoder.h"
#include "recognition/matcher.h"
#include "scan/scanner.h"

namespace {

using namespace earshot;
namespace fs = std::filesystem;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CATALOG_DIR [STREAM_FILE] [N...]\n", argv[0]);
    return 2;
  }
  const std::string catalog_dir = argv[1];
  const std::string stream =
      argc > 2 ? argv[2] : "/var/tmp/earshot/corpus-acr/streams/stream02.flv";
  std::vector<int> counts;
  for (int i = 3; i < argc; ++i) counts.push_back(std::atoi(argv[i]));
  if (counts.empty()) counts = {1, 4, 16};
  SetLogLevel(LogLevel::kWarn);

  catalog::CatalogOptions copts;
  copts.read_only = true;
  copts.create_if_missing = false;
  auto catalog = catalog::Catalog::Open(catalog_dir, copts);
  if (!catalog) {
    std::fprintf(stderr, "scan_bench: %s\n", catalog.error().ToString().c_str());
    return 2;
  }
  auto snapshot = (*catalog)->Snapshot();
  recognition::Matcher matcher(*snapshot, (*catalog)->params(), recognition::QueryParams::Streaming());

  // Baseline: decode only, same file, same output format.
  media::AudioDecodeOptions decode;
  decode.sample_rate = (*catalog)->params().sample_rate;
  double cpu0 = CpuSeconds();
  auto decoded = media::DecodeFile(stream, decode);
  const double decode_cpu = CpuSeconds() - cpu0;
  if (!decoded) {
    std::fprintf(stderr, "scan_bench: %s\n", decoded.error().ToString().c_str());
    return 2;
  }
  const double audio_s = static_cast<double>(decoded->samples.size()) / decode.sample_rate;
  const double decode_per_hour = decode_cpu / audio_s * 3600;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::printf("scan_bench: %s, %.0f s of audio, catalog %s (%llu tracks), %d threads\n",
              stream.c_str(), audio_s, catalog_dir.c_str(),
              static_cast<unsigned long long>(snapshot->TrackCount()), cores);
  std::printf("baseline (decode only): %.2f CPU s per stream-hour (%.0f streams per core)\n\n",
              decode_per_hour, 3600 / decode_per_hour);
  std::printf("%8s %10s %16s %14s %16s %12s\n", "streams", "wall_s", "CPU_s/stream-h",
              "audio_s/CPU_s", "streams/core", "x_decode");

  for (int n : counts) {
    const fs::path results = fs::temp_directory_path() / ("earshot_scan_bench_" + std::to_string(::getpid()));
    scan::ScanShared shared{catalog->get(), &matcher, results, nullptr};
    cpu0 = CpuSeconds();
    const auto wall0 = std::chrono::steady_clock::now();
    uint64_t matches = 0;
    {
      scan::Scanner scanner(shared, scan::ScannerOptions{cores, 16000});
      for (int i = 0; i < n; ++i) {
        scan::ScanOptions o;
        o.input = stream;
        o.stream_id = "bench-" + std::to_string(i);
        o.ongoing_every_s = 0;
        if (auto added = scanner.Add(std::move(o)); !added) {
          std::fprintf(stderr, "scan_bench: %s\n", added.error().ToString().c_str());
          return 1;
        }
      }
      scanner.WaitAll(std::chrono::steady_clock::time_point::max());
      for (const auto& r : scanner.reports()) matches += r.matches;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double cpu = CpuSeconds() - cpu0;
    const double per_hour = cpu / (audio_s * n) * 3600;
    std::printf("%8d %10.2f %16.2f %14.0f %16.0f %12.2f   (%llu matches)\n", n, wall, per_hour,
                audio_s * n / cpu, 3600 / per_hour, per_hour / decode_per_hour,
                static_cast<unsigned long long>(matches));
    std::error_code ec;
    fs::remove_all(results, ec);
  }
  return 0;
}
