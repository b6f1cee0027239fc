#include "video/frame_hash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <utility>
#include <vector>

#include "synthetic_frames.h"

namespace earshot::video {
namespace {

using testing::Blank;
using testing::Image;
using testing::Mirror;
using testing::Paste;
using testing::Reencode;
using testing::Resample;
using testing::Scale;
using testing::Scene;
using testing::Tint;

// Copies of one picture typically stay within kNear (of 256 bits) and always
// within kMatch (VideoMatcherOptions::max_hamming); unrelated pictures are at
// least kFar apart. The synthetic scenes are harsher than film (hard-edged
// blocks everywhere), so these bounds are loose for real footage.
constexpr int kNear = 40;
constexpr int kMatch = 64;
constexpr int kFar = 80;

// Mean and maximum of a set of distances.
struct Spread {
  double mean = 0;
  int max = 0;
};
Spread Of(const std::vector<int>& d) {
  Spread s;
  for (int x : d) {
    s.mean += x;
    s.max = std::max(s.max, x);
  }
  s.mean /= static_cast<double>(d.size());
  return s;
}

FrameHashes Ref(const Image& img) {
  auto h = HashReferenceFrame(img.plane(), {});
  EXPECT_TRUE(h.has_value()) << h.error().ToString();
  return h ? *h : FrameHashes{};
}
FrameHashes Query(const Image& img) {
  auto h = HashQueryFrame(img.plane(), {});
  EXPECT_TRUE(h.has_value()) << h.error().ToString();
  return h ? *h : FrameHashes{};
}

// Smallest distance between a query view and a reference view, restricted to
// the given kinds (any when empty).
int Best(const FrameHashes& query, const FrameHashes& ref, std::vector<ViewKind> query_kinds = {},
         std::vector<ViewKind> ref_kinds = {}, bool allow_mirrored = false) {
  int best = INT_MAX;
  auto allowed = [](const std::vector<ViewKind>& kinds, ViewKind k) {
    return kinds.empty() || std::find(kinds.begin(), kinds.end(), k) != kinds.end();
  };
  for (const ViewHash& q : query.views) {
    if (!allowed(query_kinds, q.view) || (q.mirrored && !allow_mirrored)) continue;
    for (const ViewHash& r : ref.views) {
      if (allowed(ref_kinds, r.view)) best = std::min(best, HammingDistance(q.bits, r.bits));
    }
  }
  return best;
}

int FullToFull(const Image& query, const Image& ref) {
  return Best(Query(query), Ref(ref), {ViewKind::kFull}, {ViewKind::kFull});
}

TEST(FrameHashTest, HammingDistanceCountsBits) {
  Hash256 a{};
  Hash256 b{};
  EXPECT_EQ(HammingDistance(a, b), 0);
  b[0] = 0b1011;
  b[3] = uint64_t{1} << 63;
  EXPECT_EQ(HammingDistance(a, b), 4);
  b = {~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}};
  EXPECT_EQ(HammingDistance(a, b), 256);
}

TEST(FrameHashTest, IdenticalPictureSameHash) {
  const Image img = Scene(1);
  EXPECT_EQ(FullToFull(img, img), 0);
  // Views are reported with their kinds: 1 full + 2 aspect + 5 crops.
  const FrameHashes ref = Ref(img);
  ASSERT_EQ(ref.views.size(), 8u);
  EXPECT_EQ(ref.views[0].view, ViewKind::kFull);
  EXPECT_EQ(ref.views[0].rect, (PixelRect{0, 0, 320, 180}));
  EXPECT_GT(ref.views[0].quality, 50);
  // Crop views: five per scale.
  FrameHashOptions options;
  options.reference_crop_scales = {};
  EXPECT_EQ(HashReferenceFrame(img.plane(), options)->views.size(), 3u);
  options.reference_crop_scales = {0.8, 0.9};
  const auto two = HashReferenceFrame(img.plane(), options);
  ASSERT_EQ(two->views.size(), 13u);
  EXPECT_EQ(two->views[3].rect, (PixelRect{32, 18, 256, 144}));  // centre 80 %
  options.reference_crops = false;
  EXPECT_EQ(HashReferenceFrame(img.plane(), options)->views.size(), 1u);
}

TEST(FrameHashTest, UnrelatedPicturesAreFarApart) {
  int closest = INT_MAX;
  for (uint32_t a = 1; a <= 12; ++a) {
    for (uint32_t b = a + 1; b <= 12; ++b) closest = std::min(closest, FullToFull(Scene(a), Scene(b)));
  }
  EXPECT_GE(closest, kFar);
}

TEST(FrameHashTest, RobustToReencodeScaleAndColour) {
  std::vector<int> reencode, rescale, resize, colour;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    const Image img = Scene(seed);
    reencode.push_back(FullToFull(Reencode(img, seed), img));
    // Down to 107x60 and back up, and a different output size altogether.
    rescale.push_back(FullToFull(Scale(Scale(img, 107, 60), 320, 180), img));
    resize.push_back(FullToFull(Scale(img, 213, 120), img));
    colour.push_back(FullToFull(Tint(img, 0.05, 1.25, 0.8), img));
    colour.push_back(FullToFull(Tint(img, -0.05, 0.8, 1.2), img));
  }
  for (const auto& [name, d] : {std::pair{"re-encode", reencode}, std::pair{"rescale", rescale},
                                std::pair{"resize", resize}}) {
    EXPECT_LE(Of(d).mean, 24) << name;
    EXPECT_LE(Of(d).max, kNear) << name;
  }
  // Strong contrast/gamma changes clip highlights: farther, still matched.
  EXPECT_LE(Of(colour).mean, kNear) << "colour/gamma";
  EXPECT_LE(Of(colour).max, kMatch) << "colour/gamma";
}

TEST(FrameHashTest, CropsMatchThroughReferenceCropViews) {
  std::vector<int> small, corner, offset;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    const Image img = Scene(seed);
    // 3 % off each side, scaled back: the full views still agree.
    small.push_back(FullToFull(Resample(img, 10, 5, 300, 170, 320, 180), img));
    // 14 % off, anchored at a corner like one of the reference crop views.
    const Image c = Resample(img, 0, 0, 320 * 0.86, 180 * 0.86, 320, 180);
    corner.push_back(Best(Query(c), Ref(img), {ViewKind::kFull}));
    // 12 % off at a position between the crop views: the hardest case.
    const Image o = Resample(img, 320 * 0.12 * 0.3, 180 * 0.12 * 0.7, 320 * 0.88, 180 * 0.88, 320, 180);
    offset.push_back(Best(Query(o), Ref(img), {ViewKind::kFull}));
  }
  EXPECT_LE(Of(small).mean, kMatch);
  EXPECT_LE(Of(corner).max, 24) << "aligned with a reference crop view";
  // Known limit of DCT hashes: unaligned crops lose ~30 % of the bits, yet
  // stay closer than unrelated pictures (the matcher needs several frames).
  EXPECT_LT(Of(offset).mean, kFar);
  // Without the reference crop views the corner crop would look unrelated.
  std::vector<int> full_only;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    const Image img = Scene(seed);
    const Image c = Resample(img, 0, 0, 320 * 0.86, 180 * 0.86, 320, 180);
    full_only.push_back(FullToFull(c, img));
  }
  EXPECT_GT(Of(full_only).mean, Of(corner).mean + 20);
}

TEST(FrameHashTest, LetterboxAndPillarboxBordersAreRemoved) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    const Image img = Scene(seed);
    SCOPED_TRACE("seed " + std::to_string(seed));
    // The whole picture squeezed between black bars.
    const Image boxed = Paste(Blank(320, 180, 0), Scale(img, 320, 134), 0, 23);
    const FrameHashes q = Query(boxed);
    EXPECT_EQ(q.content, (PixelRect{0, 23, 320, 134}));
    EXPECT_LE(Best(q, Ref(img), {ViewKind::kFull}, {ViewKind::kFull}), kNear);
    // Film-style letterbox: the centre 2.39:1 band, scaled to the width.
    const double band_h = 320 / 2.39;
    const Image band = Resample(img, 0, (180 - band_h) / 2, 320, band_h, 320, 134);
    const Image letterboxed = Paste(Blank(320, 180, 16), band, 0, 23);
    EXPECT_LE(Best(Query(letterboxed), Ref(img), {ViewKind::kFull}, {ViewKind::kCenterWide}), kNear);
    // Pillarbox: the centre 4:3, bars left and right.
    const Image narrow = Resample(img, 40, 0, 240, 180, 240, 180);
    const Image pillarboxed = Paste(Blank(320, 180, 0), narrow, 40, 0);
    const FrameHashes p = Query(pillarboxed);
    EXPECT_EQ(p.content, (PixelRect{40, 0, 240, 180}));
    EXPECT_LE(Best(p, Ref(img), {ViewKind::kFull}, {ViewKind::kCenter4x3}), kNear);
  }
}

TEST(FrameHashTest, MirroredCopyMatchesThroughMirroredQueryHash) {
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    const Image img = Scene(seed);
    const FrameHashes q = Query(Reencode(Mirror(img), seed));
    const FrameHashes r = Ref(img);
    // Without the mirrored hash the copy looks unrelated; with it, it is near.
    EXPECT_GE(Best(q, r, {ViewKind::kFull}, {ViewKind::kFull}, false), kFar - 20) << seed;
    EXPECT_LE(Best(q, r, {ViewKind::kFull}, {ViewKind::kFull}, true), kNear) << seed;
    // The mirrored hash equals the hash of the flipped picture.
    const RectHash direct = HashRect(Mirror(img).plane(), {0, 0, 320, 180});
    const RectHash flipped = HashRect(img.plane(), {0, 0, 320, 180});
    EXPECT_LE(HammingDistance(direct.bits, flipped.mirrored_bits), 8) << seed;
  }
}

TEST(FrameHashTest, PictureInPictureFoundAsInset) {
  int found = 0;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    const Image content = Scene(seed);
    const Image background = Scene(seed + 100);
    const int w = 320 * (40 + 4 * static_cast<int>(seed)) / 100;  // 44 % .. 72 %
    const int h = w * 9 / 16;
    const int x = static_cast<int>(seed * 37) % (320 - w);
    const int y = static_cast<int>(seed * 23) % (180 - h);
    const Image pip = Reencode(Paste(background, Scale(content, w, h), x, y), seed);
    const FrameHashes q = Query(pip);
    const int d = Best(q, Ref(content), {ViewKind::kInset}, {ViewKind::kFull});
    if (d <= kNear + 10) {
      ++found;
      // The matching inset is the pasted window, to within a few pixels.
      for (const ViewHash& v : q.views) {
        if (v.view == ViewKind::kInset && HammingDistance(v.bits, Ref(content).views[0].bits) == d) {
          EXPECT_NEAR(v.rect.x, x, 4) << seed;
          EXPECT_NEAR(v.rect.y, y, 4) << seed;
          EXPECT_NEAR(v.rect.width, w, 6) << seed;
          EXPECT_NEAR(v.rect.height, h, 6) << seed;
        }
      }
    }
    // The full view alone does not see it.
    EXPECT_GE(Best(q, Ref(content), {ViewKind::kFull}, {ViewKind::kFull}), kFar) << seed;
  }
  EXPECT_GE(found, 7) << "picture-in-picture windows matched";
}

TEST(FrameHashTest, PartialOverlaysKeepCopiesCloserThanUnrelated) {
  std::vector<int> webcam, band;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    const Image img = Scene(seed);
    // A webcam box in a corner (~6 % of the area), or a dark text band (12 %).
    webcam.push_back(FullToFull(Paste(img, Scene(seed + 50, 80, 45), 320 - 86, 180 - 51), img));
    band.push_back(FullToFull(Paste(img, Blank(320, 22, 20), 0, 150), img));
  }
  // The band is handled; a busy webcam picture in a corner is the weak spot
  // of a whole-frame hash (the matcher relies on the frames where the corner
  // is calm, and on several frames).
  EXPECT_LE(Of(band).mean, kMatch);
  EXPECT_LT(Of(band).max, kFar);
  EXPECT_LT(Of(webcam).mean, kFar);
}

TEST(FrameHashTest, FlatAndBlackFramesHaveLowQuality) {
  for (uint8_t v : {0, 16, 128, 235}) {
    const FrameHashes h = Query(Blank(160, 90, v));
    ASSERT_FALSE(h.views.empty());
    for (const ViewHash& view : h.views) EXPECT_LE(view.quality, 5) << int{v};
  }
  // Sensor noise on black is still "flat".
  const FrameHashes noisy = Query(Reencode(Blank(160, 90, 12), 3, 2.0));
  EXPECT_LE(noisy.views[0].quality, 15);
  EXPECT_GE(Query(Scene(3)).views[0].quality, 50);
}

TEST(FrameHashTest, RejectsInvalidPlanes) {
  const Image img = Scene(1);
  auto null_plane = HashQueryFrame({nullptr, 320, 180, 320}, {});
  ASSERT_FALSE(null_plane);
  EXPECT_EQ(null_plane.error().code(), ErrorCode::kInvalidArgument);
  auto tiny = HashReferenceFrame({img.pixels.data(), 8, 8, 320}, {});
  ASSERT_FALSE(tiny);
  EXPECT_NE(tiny.error().message().find("too small"), std::string::npos);
  auto bad_stride = HashQueryFrame({img.pixels.data(), 320, 180, 100}, {});
  ASSERT_FALSE(bad_stride);
  EXPECT_EQ(bad_stride.error().code(), ErrorCode::kInvalidArgument);
}

TEST(FrameHashTest, ContentTrackerIgnoresADarkSceneInsideBars) {
  // Pillarboxed pictures (bars 40 px wide); some scenes are dark at their
  // left and right edges, which one frame alone would take for more border.
  ContentTracker tracker;
  auto boxed = [](const Image& inner) { return Paste(Blank(320, 180, 0), inner, 40, 0); };
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    EXPECT_EQ(tracker.Update(boxed(Resample(Scene(seed), 40, 0, 240, 180, 240, 180)).plane()),
              (PixelRect{40, 0, 240, 180}));
  }
  Image dark_edges = Resample(Scene(7), 40, 0, 240, 180, 240, 180);
  dark_edges = Paste(Paste(dark_edges, Blank(30, 180, 0), 0, 0), Blank(30, 180, 0), 210, 0);
  const Image frame = boxed(dark_edges);
  EXPECT_EQ(FindContentRect(frame.plane()), (PixelRect{70, 0, 180, 180}));
  const PixelRect tracked = tracker.Update(frame.plane());
  EXPECT_EQ(tracked, (PixelRect{40, 0, 240, 180}));
  // The query hashes both the tracked picture and the frame's own view.
  auto h = HashQueryFrame(frame.plane(), {}, &tracked);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->content, tracked);
  EXPECT_EQ(h->views[0].rect, tracked);
  EXPECT_TRUE(std::any_of(h->views.begin(), h->views.end(), [](const ViewHash& v) {
    return v.view == ViewKind::kFull && v.rect == PixelRect{70, 0, 180, 180};
  }));
  // A new format: full-frame pictures take over at once (wider content).
  EXPECT_EQ(tracker.Update(Scene(8).plane()), (PixelRect{0, 0, 320, 180}));
  // A content rect outside the plane is refused.
  const PixelRect outside{300, 0, 40, 180};
  auto bad = HashQueryFrame(frame.plane(), {}, &outside);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST(FrameHashTest, StrideIsHonoured) {
  const Image img = Scene(4);
  std::vector<uint8_t> padded(static_cast<size_t>(400 * 180), 255);
  for (int y = 0; y < 180; ++y) std::copy_n(&img.pixels[static_cast<size_t>(y * 320)], 320, &padded[static_cast<size_t>(y * 400)]);
  auto a = HashQueryFrame(img.plane(), {});
  auto b = HashQueryFrame({padded.data(), 320, 180, 400}, {});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->views[0].bits, b->views[0].bits);
}

}  // namespace
}  // namespace earshot::video
