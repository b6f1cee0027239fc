#include "video/video_matcher.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace earshot::video {

VideoMatcher::VideoMatcher(const HashIndex& index, const VideoMatcherOptions& options)
    : index_(index), options_(options) {
  options_.min_frames = std::max(2, options_.min_frames);
  options_.max_hits_per_ref_per_frame = std::max(1, options_.max_hits_per_ref_per_frame);
}

void VideoMatcher::Reset() {
  hits_.clear();
  confirmed_.clear();
  last_time_ms_ = std::numeric_limits<int64_t>::min();
}

std::vector<VideoMatch> VideoMatcher::Feed(int64_t stream_time_ms, const FrameHashes& frame) {
  if (stream_time_ms < last_time_ms_) Reset();
  last_time_ms_ = stream_time_ms;
  last_hit_count_ = 0;

  // Closest hits per reference (one per reference frame).
  std::map<uint32_t, std::vector<Hit>> fresh;
  const SearchOptions search{options_.max_hamming, options_.max_chunk_radius};
  for (const ViewHash& view : frame.views) {
    if (view.quality < options_.min_quality) continue;
    for (const IndexHit& hit : index_.Search(view.bits, search)) {
      ++last_hit_count_;
      if (view.view == ViewKind::kInset && hit.view != ViewKind::kFull) continue;
      auto& list = fresh[hit.ref_id];
      auto same = std::find_if(list.begin(), list.end(),
                               [&](const Hit& h) { return h.ref_ms == hit.time_ms; });
      if (same != list.end()) {
        same->distance = std::min(same->distance, hit.distance);
      } else {
        list.push_back({hit.ref_id, stream_time_ms, hit.time_ms, hit.distance});
      }
    }
  }

  std::vector<VideoMatch> matches;
  for (auto& [ref_id, list] : fresh) {
    std::sort(list.begin(), list.end(),
              [](const Hit& a, const Hit& b) { return a.distance < b.distance; });
    if (list.size() > static_cast<size_t>(options_.max_hits_per_ref_per_frame)) {
      list.resize(static_cast<size_t>(options_.max_hits_per_ref_per_frame));
    }
    // Best-supported new hit: most consistent earlier frames, then closest.
    int best_frames = 0;
    double best_mean = 1e9;
    int64_t best_ref_ms = 0;
    for (const Hit& h : list) {
      // Per earlier stream frame, its hit whose offset agrees best with h.
      auto consistent = [&](const Hit& later, const Hit& earlier) {
        const int64_t ds = later.stream_ms - earlier.stream_ms;
        const int64_t dr = later.ref_ms - earlier.ref_ms;
        const double allowed = static_cast<double>(options_.offset_tolerance_ms) +
                               options_.max_speed_deviation * static_cast<double>(ds);
        return ds > 0 && std::abs(static_cast<double>(dr - ds)) <= allowed;
      };
      std::map<int64_t, const Hit*, std::greater<>> per_frame;  // latest first
      for (const Hit& g : hits_) {
        if (g.ref_id != ref_id || !consistent(h, g)) continue;
        auto [it, inserted] = per_frame.emplace(g.stream_ms, &g);
        const auto error = [&](const Hit& x) {
          return std::abs((h.stream_ms - x.stream_ms) - (h.ref_ms - x.ref_ms));
        };
        if (!inserted && error(g) < error(*it->second)) it->second = &g;
      }
      // A chain back in time in which each step is consistent too (frames
      // that each agree with h but not with each other do not add up).
      const Hit* current = &h;
      int frames = 1;
      double sum = h.distance;
      for (const auto& [t, g] : per_frame) {
        if (!consistent(*current, *g)) continue;
        current = g;
        ++frames;
        sum += g->distance;
      }
      const double mean = sum / frames;
      if (frames > best_frames || (frames == best_frames && mean < best_mean)) {
        best_frames = frames;
        best_mean = mean;
        best_ref_ms = h.ref_ms;
      }
    }
    // Prefer the chain that qualifies: long enough, or short but close.
    if (best_frames >= options_.min_frames ||
        (options_.strong_max_hamming > 0 && best_frames >= std::max(2, options_.strong_min_frames) &&
         best_mean <= options_.strong_max_hamming)) {
      const int64_t offset = stream_time_ms - best_ref_ms;
      auto it = confirmed_.find(ref_id);
      const bool active = it != confirmed_.end() &&
                          stream_time_ms - it->second.stream_ms <= options_.rearm_after_ms &&
                          std::abs(offset - it->second.offset_ms) <= options_.realign_ms;
      const bool repeat = active && options_.repeat_ms > 0 &&
                          stream_time_ms - it->second.reported_ms >= options_.repeat_ms;
      int64_t reported_ms = active ? it->second.reported_ms : stream_time_ms;
      if (!active || repeat) {
        matches.push_back({ref_id, best_ref_ms, stream_time_ms,
                           std::clamp(100.0 * (1.0 - best_mean / 128.0), 0.0, 100.0),
                           best_frames, repeat});
        reported_ms = stream_time_ms;
      }
      confirmed_[ref_id] = {stream_time_ms, offset, reported_ms};
    }
    for (const Hit& h : list) hits_.push_back(h);
  }

  // Bounded memory: drop hits out of the window, then the oldest over the cap.
  while (!hits_.empty() && (stream_time_ms - hits_.front().stream_ms > options_.window_ms ||
                            hits_.size() > options_.max_stored_hits)) {
    hits_.pop_front();
  }
  for (auto it = confirmed_.begin(); it != confirmed_.end();) {
    if (stream_time_ms - it->second.stream_ms > options_.rearm_after_ms) {
      it = confirmed_.erase(it);
    } else {
      ++it;
    }
  }
  return matches;
}

}  // namespace earshot::video
