#include "scan/video_match_tracker.h"

#include <algorithm>

namespace earshot::scan {

using Type = recognition::StreamEvent::Type;

recognition::StreamEvent VideoMatchTracker::Event(Type type, uint32_t ref, const Open& open,
                                                  double reported_s) const {
  recognition::StreamEvent e;
  e.type = type;
  e.match_id = open.match_id;
  e.track = ref;
  e.start_seconds = open.start_s;
  e.end_seconds = open.last_s;
  e.reported_at_seconds = reported_s;
  e.reference_seconds = open.reference_s;
  e.score = open.score;
  return e;
}

void VideoMatchTracker::Update(double stream_s, const std::vector<video::VideoMatch>& matches,
                               std::vector<recognition::StreamEvent>& events) {
  // Matches that went quiet end first (at their last report).
  for (auto it = open_.begin(); it != open_.end();) {
    if (stream_s - it->second.last_s > end_after_s_) {
      events.push_back(Event(Type::kEnded, it->first, it->second, stream_s));
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  for (const video::VideoMatch& m : matches) {
    const double at_s = static_cast<double>(m.stream_time_ms) / 1000.0;
    auto it = open_.find(m.ref_id);
    if (it != open_.end() && m.ongoing) {
      it->second.last_s = std::max(it->second.last_s, at_s);
      it->second.score = std::max(it->second.score, m.score);
      events.push_back(Event(Type::kOngoing, m.ref_id, it->second, stream_s));
      continue;
    }
    if (it != open_.end()) {  // confirmed at another alignment: another excerpt
      events.push_back(Event(Type::kEnded, it->first, it->second, stream_s));
      open_.erase(it);
    }
    Open open;
    open.match_id = next_match_id_++;
    open.start_s = at_s;
    open.last_s = at_s;
    open.reference_s = static_cast<double>(m.ref_offset_ms) / 1000.0;
    open.score = m.score;
    events.push_back(Event(Type::kStarted, m.ref_id, open, stream_s));
    open_.emplace(m.ref_id, open);
  }
}

void VideoMatchTracker::Finish(std::vector<recognition::StreamEvent>& events) {
  for (const auto& [ref, open] : open_) {
    events.push_back(Event(Type::kEnded, ref, open, open.last_s));
  }
  open_.clear();
}

}  // namespace earshot::scan
