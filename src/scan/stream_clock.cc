#include "scan/stream_clock.h"

#include <algorithm>
#include <cmath>

namespace earshot::scan {

void StreamClock::Record(double stream_s, int64_t wall_ms) {
  // The newest point always tracks the latest call; it becomes permanent once
  // it is `resolution_s_` past the point before it.
  const size_t n = points_.size();
  if (n >= 2 && stream_s - points_[n - 2].stream_s < resolution_s_) {
    points_.back() = {stream_s, wall_ms};
    return;
  }
  points_.push_back({stream_s, wall_ms});
  while (points_.size() > 2 && stream_s - points_.front().stream_s > retention_s_) {
    points_.pop_front();
  }
}

int64_t StreamClock::WallMillis(double stream_s) const {
  if (points_.empty()) return 0;
  auto at = [](const Point& p, double s) {
    return p.wall_ms + static_cast<int64_t>(std::llround((s - p.stream_s) * 1000.0));
  };
  if (stream_s <= points_.front().stream_s) return at(points_.front(), stream_s);
  if (stream_s >= points_.back().stream_s) return at(points_.back(), stream_s);
  auto next = std::upper_bound(points_.begin(), points_.end(), stream_s,
                               [](double s, const Point& p) { return s < p.stream_s; });
  const Point& b = *next;
  const Point& a = *(next - 1);
  const double t = (stream_s - a.stream_s) / (b.stream_s - a.stream_s);
  return a.wall_ms + static_cast<int64_t>(std::llround(t * static_cast<double>(b.wall_ms - a.wall_ms)));
}

}  // namespace earshot::scan
