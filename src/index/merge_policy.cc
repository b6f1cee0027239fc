#include "index/merge_policy.h"

#include <algorithm>
#include <numeric>

namespace earshot::index {

std::vector<size_t> PickMerge(std::span<const SegmentSummary> segments, const MergePolicy& policy) {
  std::vector<size_t> order(segments.size());
  std::iota(order.begin(), order.end(), 0);
  if (segments.size() > std::max<size_t>(policy.max_segments, 1)) {
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return segments[a].bytes < segments[b].bytes; });
    const size_t take = std::min(segments.size(), std::max<size_t>(policy.merge_factor, 2));
    order.resize(take);
    std::sort(order.begin(), order.end());
    return order;
  }
  // The segment with the largest removed share, if above the threshold.
  double worst = policy.max_removed_fraction;
  std::vector<size_t> pick;
  for (size_t i = 0; i < segments.size(); ++i) {
    const SegmentSummary& s = segments[i];
    if (s.removed_postings == 0 || s.postings == 0) continue;
    const double fraction =
        static_cast<double>(s.removed_postings) / static_cast<double>(s.postings);
    if (fraction > worst) {
      worst = fraction;
      pick = {i};
    }
  }
  return pick;
}

}  // namespace earshot::index
