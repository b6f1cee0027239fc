// Which segments an index store merges next (size-tiered, log-structured).
//
// Every Add writes one small segment. When there are more than
// max_segments live segments, the merge_factor smallest are merged into one:
// small recent segments merge with each other and a big segment is rewritten
// only once enough data has piled up below it, so each posting is rewritten
// about log_{merge_factor}(index size / batch size) times in total. A
// segment whose removed tracks hold more than max_removed_fraction of its
// postings is rewritten on its own to reclaim the space.
//
// Thread safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace earshot::index {

struct MergePolicy {
  size_t max_segments = 8;            // merge when there are more segments than this
  size_t merge_factor = 4;            // segments merged at once (at least 2)
  double max_removed_fraction = 0.3;  // rewrite a segment with more removed postings than this
};

struct SegmentSummary {
  uint64_t bytes = 0;
  uint64_t postings = 0;          // all postings stored in the segment
  uint64_t removed_postings = 0;  // postings of its removed tracks
};

// Indexes into `segments` of the next merge; empty when nothing needs doing.
std::vector<size_t> PickMerge(std::span<const SegmentSummary> segments, const MergePolicy& policy);

}  // namespace earshot::index
