// The frozen parameters of earshot's video fingerprinting: how often frames
// are sampled on each side, how large they are decoded, which views are
// hashed and how matches are verified. The catalog (reference side), the
// scanner (live side), `earshot identify` and the benchmark adapter all take
// them from here, so a catalog and a scan always agree.
//
// Changing a value that changes the stored hashes (reference fps, width,
// hash options) requires bumping kFrameHashVersion.
//
// Thread safety: plain values.
#pragma once

#include "video/frame_hash.h"
#include "video/video_matcher.h"

namespace earshot::video {

struct VideoParams {
  // Reference frames per second hashed into the catalog. Denser than the live
  // side so that a live frame always has a reference frame within 125 ms.
  double reference_fps = 4.0;
  // Live frames per second hashed by the scanner (decode cost grows with it).
  double query_fps = 2.0;
  // Adaptive sampling on the live side (decoding dominates its cost): decode
  // key frames only (about one per GOP) while nothing on screen has an index
  // hit, and sample densely (query_fps) from a key frame with any hit on, for
  // dense_hold_s seconds of stream time after the last hit and while a match
  // is open; then back to key frames only. Only while the stream's key
  // frames are at most adaptive_max_key_interval_s apart (until two key
  // frames were seen, and for sparser ones, dense throughout: a copy shorter
  // than the key interval could fall between key frames). false: always dense.
  bool adaptive = true;
  double dense_hold_s = 12.0;
  double adaptive_max_key_interval_s = 4.0;
  // Frames are decoded and scaled to at most this width (pixels) before
  // hashing; the hash itself works on a 64x64 grid.
  int max_width = 160;
  FrameHashOptions hash;
  VideoMatcherOptions matcher;  // matcher.min_quality also filters reference views
};

}  // namespace earshot::video
