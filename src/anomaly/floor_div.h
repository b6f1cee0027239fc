// floor(a / b) for b > 0, also for negative a (C++ division truncates toward
// zero): the index of the period of length b that contains time a. Used for
// hour-of-week bins, evaluation periods and the server's sampling periods.
//
// Thread safety: a pure function.
#pragma once

#include <cstdint>

namespace earshot::anomaly {

inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && a < 0) --q;
  return q;
}

}  // namespace earshot::anomaly
