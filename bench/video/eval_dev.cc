// DEV evaluation of video fingerprinting on a corpus made by
// /work/shared/bench/video/make-video-corpus: catalogs refs/*.mp4, scans
// streams/*.mp4 frame by frame as a live scanner would (stream time = pts),
// and prints recall per transform, false alarms on negatives, per-frame
// costs, and the distance of the best hash to the right reference per
// transform (for tuning). Writes detections in the scorer's CSV format
// (stream,t_detect,ref_id,score).
//
//   eval_dev --corpus /work/data/video/dev --out /tmp/det.csv [--fps 2]
//            [--ref-fps 4] [--keyframes-only] [--max-hamming 56]
//            [--min-frames 3] [--min-quality 30] [--no-crops] [--max-insets 3]
//            [--no-border-tracking] [--crop-scales 0.86,0.8]
//            [--streams S00,S01]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "media/video_frame_reader.h"
#include "video/frame_hash.h"
#include "video/hash_index.h"
#include "video/video_matcher.h"

namespace {

using earshot::media::VideoFrame;
using earshot::media::VideoFrameReader;
using earshot::media::VideoReadOptions;
namespace video = earshot::video;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time of the calling thread, seconds (the machine is shared: wall time
// would count other processes).
double CpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::vector<std::string> ParseCsvLine(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

struct Segment {
  std::string stream;
  double start = 0, end = 0;
  std::string ref;
  double ref_offset = 0;
  std::string transform;
  std::string params;
  double first_detect = -1;
  std::vector<int> best_dist;  // per sampled frame inside the segment
};

struct Args {
  std::string corpus = "/work/data/video/dev";
  std::string out = "/tmp/video-det.csv";
  double fps = 2;
  double ref_fps = 4;
  bool keyframes_only = false;
  bool crops = true;
  int max_insets = 3;
  bool track_borders = true;
  std::vector<double> crop_scales = {0.86};
  std::set<std::string> streams;
  video::VideoMatcherOptions matcher;
};

uint32_t RefNumber(const std::string& id) { return static_cast<uint32_t>(std::stoul(id.substr(1))); }
std::string RefName(uint32_t n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "R%02u", n);
  return buf;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--corpus") a.corpus = next();
    else if (k == "--out") a.out = next();
    else if (k == "--fps") a.fps = std::stod(next());
    else if (k == "--ref-fps") a.ref_fps = std::stod(next());
    else if (k == "--keyframes-only") a.keyframes_only = true;
    else if (k == "--no-crops") a.crops = false;
    else if (k == "--no-border-tracking") a.track_borders = false;
    else if (k == "--crop-scales") {
      std::stringstream ss(next());
      std::string v;
      a.crop_scales.clear();
      while (std::getline(ss, v, ',')) a.crop_scales.push_back(std::stod(v));
    }
    else if (k == "--max-insets") a.max_insets = std::stoi(next());
    else if (k == "--max-hamming") a.matcher.max_hamming = std::stoi(next());
    else if (k == "--chunk-radius") a.matcher.max_chunk_radius = std::stoi(next());
    else if (k == "--min-frames") a.matcher.min_frames = std::stoi(next());
    else if (k == "--min-quality") a.matcher.min_quality = std::stoi(next());
    else if (k == "--tolerance-ms") a.matcher.offset_tolerance_ms = std::stoi(next());
    else if (k == "--streams") {
      std::stringstream ss(next());
      std::string s;
      while (std::getline(ss, s, ',')) a.streams.insert(s);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", k.c_str());
      return 2;
    }
  }

  // Truth.
  std::vector<Segment> segments;
  {
    std::ifstream in(a.corpus + "/truth.csv");
    if (!in) std::fprintf(stderr, "warning: no %s/truth.csv yet: costs only\n", a.corpus.c_str());
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      auto f = ParseCsvLine(line);
      if (f.size() < 6) continue;
      Segment s{f[0], std::stod(f[1]), std::stod(f[2]), f[3], std::stod(f[4]), f[5],
                f.size() > 6 ? f[6] : "", -1, {}};
      segments.push_back(s);
    }
  }

  video::FrameHashOptions hash_options;
  hash_options.reference_crops = a.crops;
  hash_options.max_insets = a.max_insets;
  hash_options.reference_crop_scales = a.crop_scales;

  // Catalog.
  video::HashIndex index;
  std::vector<fs::path> refs;
  for (const auto& e : fs::directory_iterator(a.corpus + "/refs")) {
    if (e.path().extension() == ".mp4") refs.push_back(e.path());
  }
  std::sort(refs.begin(), refs.end());
  const auto t_cat = Clock::now();
  size_t ref_frames = 0, skipped_views = 0;
  for (const fs::path& p : refs) {
    const uint32_t id = RefNumber(p.stem().string());
    VideoReadOptions ro;
    ro.fps = a.ref_fps;
    ro.skip_nonref = false;
    auto reader = VideoFrameReader::Open(p.string(), ro);
    if (!reader) {
      std::fprintf(stderr, "%s\n", reader.error().ToString().c_str());
      return 1;
    }
    VideoFrame frame;
    video::ContentTracker tracker;
    while (true) {
      auto more = (*reader)->Next(frame);
      if (!more) {
        std::fprintf(stderr, "%s\n", more.error().ToString().c_str());
        return 1;
      }
      if (!*more) break;
      const video::LumaPlane plane{frame.luma.data(), frame.width, frame.height, frame.width};
      const video::PixelRect content = tracker.Update(plane);
      (void)content;  // references: borders found per frame (clean masters)
      auto h = video::HashReferenceFrame(plane, hash_options);
      if (!h) return 1;
      ++ref_frames;
      for (const auto& v : h->views) {
        if (v.quality < a.matcher.min_quality) {
          ++skipped_views;
          continue;
        }
        index.Add(id, frame.pts_ms, v.bits, v.view);
      }
    }
  }
  index.Build();
  std::printf("catalog: %zu refs, %zu frames, %zu index entries (%zu low-quality views skipped), %.1f s\n",
              refs.size(), ref_frames, index.size(), skipped_views, Seconds(Clock::now() - t_cat));

  // Streams.
  std::vector<fs::path> streams;
  for (const auto& e : fs::directory_iterator(a.corpus + "/streams")) {
    if (e.path().extension() == ".mp4" &&
        (a.streams.empty() || a.streams.count(e.path().stem().string()) > 0)) {
      streams.push_back(e.path());
    }
  }
  std::sort(streams.begin(), streams.end());
  std::ofstream det(a.out);
  det << "stream,t_detect,ref_id,score\n";
  double t_decode = 0, t_hash = 0, t_match = 0, stream_seconds = 0;
  size_t frames = 0, decoded = 0;
  struct FalseAlarm {
    std::string stream;
    double t;
    std::string ref;
    double score;
    int frames;
  };
  std::vector<FalseAlarm> false_alarms;
  std::vector<int> negative_best;  // best distance to any ref for frames outside segments
  std::map<std::string, std::vector<int>> view_wins;  // transform -> count per view kind
  for (const fs::path& p : streams) {
    const std::string name = p.stem().string();
    VideoReadOptions ro;
    ro.fps = a.fps;
    ro.keyframes_only = a.keyframes_only;
    auto reader = VideoFrameReader::Open(p.string(), ro);
    if (!reader) {
      std::fprintf(stderr, "%s\n", reader.error().ToString().c_str());
      return 1;
    }
    video::VideoMatcher matcher(index, a.matcher);
    video::ContentTracker tracker;
    VideoFrame frame;
    double last_t = 0;
    while (true) {
      const double t0 = CpuNow();
      auto more = (*reader)->Next(frame);
      const double t1 = CpuNow();
      t_decode += t1 - t0;
      if (!more) {
        std::fprintf(stderr, "%s\n", more.error().ToString().c_str());
        return 1;
      }
      if (!*more) break;
      const video::LumaPlane plane{frame.luma.data(), frame.width, frame.height, frame.width};
      const video::PixelRect content = tracker.Update(plane);
      auto h = video::HashQueryFrame(plane, hash_options, a.track_borders ? &content : nullptr);
      const double t2 = CpuNow();
      if (!h) return 1;
      auto matches = matcher.Feed(frame.pts_ms, *h);
      const double t3 = CpuNow();
      t_hash += t2 - t1;
      t_match += t3 - t2;
      ++frames;
      const double t = static_cast<double>(frame.pts_ms) / 1000.0;
      last_t = t;

      // Diagnostics (not timed): best distance to the true ref / to anything.
      Segment* seg = nullptr;
      for (Segment& s : segments) {
        if (s.stream == name && t >= s.start && t < s.end) seg = &s;
      }
      int best = 257;
      int best_view = -1;
      for (const auto& v : h->views) {
        if (v.quality < a.matcher.min_quality) continue;
        for (const auto& e : index.entries()) {
          if (seg != nullptr && RefName(e.ref_id) != seg->ref) continue;
          if (v.view == video::ViewKind::kInset && e.view != video::ViewKind::kFull) continue;
          const int d = video::HammingDistance(v.bits, e.hash);
          if (d < best) {
            best = d;
            best_view = static_cast<int>(e.view) * 10 + static_cast<int>(v.view == video::ViewKind::kInset) * 2 +
                        (v.mirrored ? 1 : 0);
          }
        }
      }
      if (seg != nullptr) {
        seg->best_dist.push_back(best);
        if (best <= a.matcher.max_hamming && best_view >= 0) {
          auto& wins = view_wins[seg->transform];
          if (wins.size() < 100) wins.resize(100);
          ++wins[static_cast<size_t>(best_view)];
        }
      } else {
        negative_best.push_back(best);
      }

      for (const auto& m : matches) {
        const std::string ref = RefName(m.ref_id);
        det << name << "," << t << "," << ref << "," << m.score << "\n";
        bool hit = false;
        for (Segment& s : segments) {
          if (s.stream == name && s.ref == ref && t >= s.start && t <= s.end + 5) {
            hit = true;
            if (s.first_detect < 0) s.first_detect = t;
          }
        }
        if (!hit) false_alarms.push_back({name, t, ref, m.score, m.frames_matched});
      }
    }
    decoded += (*reader)->decoded_frames();
    stream_seconds += last_t;
    std::fprintf(stderr, "scanned %s (%.0f s)\n", name.c_str(), last_t);
  }
  det.close();

  // Report.
  std::printf("\n%-5s %-11s %7s %7s %6s %6s %6s %s\n", "strm", "transform", "start", "latency", "d_p10",
              "d_med", "frames", "params");
  std::map<std::string, std::pair<int, int>> per_transform;
  std::vector<double> latencies;
  for (const Segment& s : segments) {
    if (!a.streams.empty() && a.streams.count(s.stream) == 0) continue;
    std::vector<double> d(s.best_dist.begin(), s.best_dist.end());
    auto& pt = per_transform[s.transform];
    ++pt.second;
    if (s.first_detect >= 0) {
      ++pt.first;
      latencies.push_back(s.first_detect - s.start);
    }
    std::printf("%-5s %-11s %7.1f %7s %6.0f %6.0f %6zu %s\n", s.stream.c_str(), s.transform.c_str(),
                s.start,
                s.first_detect >= 0 ? std::to_string(s.first_detect - s.start).substr(0, 5).c_str()
                                    : "MISS",
                Percentile(d, 0.1), Percentile(d, 0.5), s.best_dist.size(), s.params.c_str());
  }
  int det_total = 0, seg_total = 0;
  std::printf("\nrecall per transform:\n");
  for (const auto& [t, c] : per_transform) {
    std::printf("  %-11s %d/%d", t.c_str(), c.first, c.second);
    auto it = view_wins.find(t);
    if (it != view_wins.end()) {
      std::printf("   best view:");
      for (size_t i = 0; i < it->second.size(); ++i) {
        if (it->second[i] > 0) {
          std::printf(" %s%s%s=%d", std::string(video::ViewKindName(static_cast<video::ViewKind>(i / 10))).c_str(),
                      (i % 10) / 2 ? "<-inset" : "", (i % 2) ? "(m)" : "", it->second[i]);
        }
      }
    }
    std::printf("\n");
    det_total += c.first;
    seg_total += c.second;
  }
  std::printf("recall %d/%d = %.1f %%; latency median %.1f s p90 %.1f s\n", det_total, seg_total,
              seg_total ? 100.0 * det_total / seg_total : 0.0, Percentile(latencies, 0.5),
              Percentile(latencies, 0.9));
  std::vector<double> nb(negative_best.begin(), negative_best.end());
  std::printf("negative frames: %zu, best distance to any ref p1 %.0f p5 %.0f median %.0f\n", nb.size(),
              Percentile(nb, 0.01), Percentile(nb, 0.05), Percentile(nb, 0.5));
  std::printf("false alarms: %zu\n", false_alarms.size());
  for (const auto& f : false_alarms) {
    std::printf("  FA %s t=%.1f %s score=%.1f frames=%d\n", f.stream.c_str(), f.t, f.ref.c_str(), f.score,
                f.frames);
  }
  std::printf("cost: %zu sampled frames (%zu decoded) over %.0f s of stream; per sampled frame: "
              "decode %.2f ms, hash %.2f ms, match %.2f ms (thread CPU time)\n",
              frames, decoded, stream_seconds, 1e3 * t_decode / std::max<size_t>(frames, 1),
              1e3 * t_hash / std::max<size_t>(frames, 1), 1e3 * t_match / std::max<size_t>(frames, 1));
  const double cpu_per_stream_second = (t_decode + t_hash + t_match) / std::max(stream_seconds, 1e-9);
  std::printf("CPU per second of stream: %.2f ms -> %.0f live streams per core\n",
              1e3 * cpu_per_stream_second, 1.0 / std::max(cpu_per_stream_second, 1e-9));
  std::printf("detections written to %s\n", a.out.c_str());
  return 0;
}
