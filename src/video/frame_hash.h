// Perceptual hashes of video frames (no I/O): luma plane in, a few 256-bit
// hashes out, each with a quality and the view of the frame it describes.
//
// The hash follows the idea of Meta's PDQ: the view is averaged down to a
// 64x64 grid, the 16x16 lowest frequencies of its 2-D DCT are taken, and each
// bit says whether a coefficient is above their median. Such a hash survives
// re-encoding, scaling and colour/gamma changes (a monotone change of the
// luma moves few coefficients across the median). Two hashes of the same
// picture differ in a few to ~40 of 256 bits; unrelated pictures in ~128.
//
// What earshot adds for re-streamed video:
//  - Borders are found and removed first (letterbox, pillarbox, any flat
//    frame around the picture), on both sides, so bars do not enter the hash.
//  - Mirroring is handled at query time for free: flipping the picture
//    left-right multiplies the DCT coefficient of horizontal frequency u by
//    (-1)^u, so the mirrored hash comes from the same DCT with the odd columns
//    negated. This keeps all 256 bits discriminative (a flip-invariant hash,
//    e.g. from |coefficients| or even frequencies only, throws away half of
//    the information and makes every symmetric picture collide).
//  - Reference frames (catalog side) get a few extra views that match what a
//    re-streamer cuts away: the centre 4:3 (pillarbox), the centre 2.39:1
//    band (letterbox, after the bars are removed on the query side) and five
//    crops per configured scale (default 86 %: centre and corners) for
//    zoomed/cropped copies. The query cannot restore a cut-away part, so
//    these views must be on this side.
//  - Query frames (live side) get the full view (plain and mirrored) plus
//    the inset pictures found in the frame: picture-in-picture windows are
//    located as rectangles of the frame's aspect ratio whose four sides are
//    straight luma steps, and each is hashed (plain and mirrored) so it can
//    match the full view of a reference frame.
//
// Quality (0..100) measures how much structure the view has (mean luma
// gradient on the 64x64 grid); black, flat or nearly flat views get a low
// quality and should not be matched (their hashes are noise).
//
// Thread safety: all functions are pure and may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace earshot::video {

// Version of the hash algorithm and of the set of views; stored with every
// index (HashIndex) so hashes made by another version are never compared.
inline constexpr uint32_t kFrameHashVersion = 1;

// 256 bits; bit b is (words[b / 64] >> (b % 64)) & 1.
using Hash256 = std::array<uint64_t, 4>;

// Number of differing bits, 0..256.
int HammingDistance(const Hash256& a, const Hash256& b);

// Which part of the frame a hash describes. Values are stored in indexes:
// never renumber.
enum class ViewKind : uint8_t {
  kFull = 0,           // the picture after border removal
  kCenter4x3 = 1,      // reference: centre 4:3 of a wide picture (pillarboxed copies)
  kCenterWide = 2,     // reference: centre 2.39:1 band (letterboxed copies)
  kCropCenter = 3,     // reference: centre 86 % (cropped/zoomed copies)
  kCropTopLeft = 4,    // reference: 86 % crops anchored at the corners
  kCropTopRight = 5,
  kCropBottomLeft = 6,
  kCropBottomRight = 7,
  kInset = 8,          // query: a picture-in-picture window found in the frame
};
inline constexpr int kViewKindCount = 9;

// "full", "center_4x3", ..., "inset".
std::string_view ViewKindName(ViewKind view);

// An axis-aligned rectangle in pixels of the input plane: [x, x + width) x
// [y, y + height).
struct PixelRect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
  bool operator==(const PixelRect&) const = default;
};

struct ViewHash {
  Hash256 bits{};
  int quality = 0;  // 0 (flat: do not match) .. 100 (much structure)
  ViewKind view = ViewKind::kFull;
  bool mirrored = false;  // hash of the left-right flipped view (query side)
  PixelRect rect;         // the view, in pixels of the input plane
};

struct FrameHashes {
  std::vector<ViewHash> views;  // views[0] is always the (unmirrored) full view
  PixelRect content;            // the picture after border removal
};

// A borrowed 8-bit luma plane: row r starts at data + r * stride.
struct LumaPlane {
  const uint8_t* data = nullptr;
  int width = 0;   // pixels, >= kMinPlaneSide
  int height = 0;  // pixels, >= kMinPlaneSide
  int stride = 0;  // bytes, >= width
};
inline constexpr int kMinPlaneSide = 16;

struct FrameHashOptions {
  // Reference side: add the pillarbox/letterbox/crop views (8 hashes per
  // frame with the default crop scales, instead of 1). Off = full view only
  // (smallest index).
  bool reference_crops = true;
  // Reference crop views: for each fraction of the sides kept (0.5 .. 1,
  // exclusive), five views (centre and corners). More scales catch stronger
  // and unaligned crops at 5 index entries per scale and frame: on the dev
  // corpus {0.8, 0.86, 0.92} found a 12 % crop after 2 s instead of 8 s.
  std::vector<double> reference_crop_scales = {0.86};
  // Query side: add the mirrored hash of every view (costs one more index
  // search per view, no extra DCT).
  bool query_mirrored = true;
  // Query side: at most this many picture-in-picture windows (0 = none).
  int max_insets = 3;
  // Inset windows, as a fraction of the content width: the smallest and
  // largest searched.
  double min_inset_scale = 0.33;
  double max_inset_scale = 0.8;
};

// Hashes of a reference (catalog) frame: the full view, plus the crop views
// when options.reference_crops. `content` (optional) is the picture inside
// the borders, e.g. from a ContentTracker; when null it is found in this
// frame alone (FindContentRect). Errors: kInvalidArgument for a null plane,
// sides below kMinPlaneSide, stride < width, or a content rect outside the
// plane.
Result<FrameHashes> HashReferenceFrame(const LumaPlane& plane, const FrameHashOptions& options,
                                       const PixelRect* content = nullptr);

// Hashes of a query (live) frame: the full view, its mirror, and the inset
// windows found (each plain and mirrored). Same parameters and errors; when
// `content` differs from what this frame alone shows, both full views are
// hashed (views[0] is the one of `content`).
Result<FrameHashes> HashQueryFrame(const LumaPlane& plane, const FrameHashOptions& options,
                                   const PixelRect* content = nullptr);

// Border removal that is stable over a video: a dark scene inside a
// letterboxed picture looks like more border in that one frame. Bars do not
// move, so the tracker reports, per side, the median of the content rects of
// the last `window` frames, widened to the current frame's rect (a bright
// frame shows the true extent at once). A new format with bars is followed
// after about window / 2 frames. Meant for the query side (live streams);
// catalog masters rarely carry bars.
//
// Thread safety: one tracker per video, not shared between threads.
class ContentTracker {
 public:
  explicit ContentTracker(int window = 9) : window_(window < 1 ? 1 : window) {}
  // Finds the content rect of this frame and returns the tracked one.
  // REQUIRES: a valid plane (see HashQueryFrame); all frames the same size
  // (a size change restarts the tracking).
  PixelRect Update(const LumaPlane& plane);

 private:
  int window_;
  int width_ = 0;
  int height_ = 0;
  std::vector<PixelRect> recent_;  // ring of the last window_ rects
  size_t next_ = 0;
};

// --- Building blocks, exposed for tests and tools ---------------------------

// The picture inside flat borders (letterbox, pillarbox, any uniform frame of
// at most 35 % of a side each). Returns the whole plane when there are none.
// REQUIRES: a valid plane.
PixelRect FindContentRect(const LumaPlane& plane);

// Picture-in-picture candidates inside `content`: rectangles with the aspect
// ratio of `content`, between min and max scale of its width, ordered by
// decreasing edge evidence; at most `max_count`, none overlapping another by
// more than half. Empty when nothing looks like a window.
std::vector<PixelRect> FindInsetWindows(const LumaPlane& plane, const PixelRect& content,
                                        int max_count, double min_scale, double max_scale);

// Hash and quality of one rectangle of the plane (and of its mirror image).
struct RectHash {
  Hash256 bits{};
  Hash256 mirrored_bits{};
  int quality = 0;
};
// REQUIRES: a valid plane; rect inside it with width, height >= 1.
RectHash HashRect(const LumaPlane& plane, const PixelRect& rect);

}  // namespace earshot::video
