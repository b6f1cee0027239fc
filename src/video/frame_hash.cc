#include "video/frame_hash.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <numbers>

namespace earshot::video {
namespace {

constexpr int kGrid = 64;     // the view is averaged down to kGrid x kGrid cells
constexpr int kFreqs = 16;    // kFreqs x kFreqs lowest DCT frequencies -> 256 bits

// Quality grows linearly from 0 at a mean luma step between neighbouring
// grid cells of kNoiseGradient (what sensor/encoder noise on a flat picture
// leaves after averaging) to 100 at kGradientForFullQuality.
constexpr double kNoiseGradient = 0.8;
constexpr double kGradientForFullQuality = 4.0;

// Border removal: a row/column belongs to a border while its luma spread is
// at most kBorderMaxSpread and its mean within kBorderMaxMeanStep of the
// outermost line; at most kBorderMaxFraction of the side is removed per edge,
// and a border thinner than kBorderMinFraction is ignored (encoder ringing).
// Bars are either dark (mean <= kBorderDarkMean, the usual black of
// letterboxing, with encoder noise) or perfectly flat in any colour.
constexpr double kBorderMaxSpread = 5.0;
constexpr double kBorderDarkMean = 40.0;
constexpr double kBorderMaxSpreadAnyColour = 2.0;
constexpr double kBorderMaxMeanStep = 10.0;
constexpr double kBorderMaxFraction = 0.35;
constexpr double kBorderMinFraction = 0.015;
constexpr int kBorderSamples = 256;  // pixels sampled per row/column

constexpr double kWideAspect = 2.39;  // letterboxed film
constexpr double kNarrowAspect = 4.0 / 3.0;

// Inset (picture-in-picture) search runs on the content averaged down to this
// width; a candidate needs this much luma step (mean of its three weakest
// sides, above the texture on parallel lines) to count as a window. One side
// may be weak: the inset picture can continue the background there.
constexpr int kInsetGridWidth = 96;
constexpr double kInsetMinEdge = 5.0;
constexpr int kInsetCoarseKeep = 40;

// Summed-area table of a plane (or of one rectangle of it), with exact area
// means over rectangles with fractional corners (the SAT of a piecewise
// constant image is bilinear inside each pixel).
class AreaSampler {
 public:
  AreaSampler(const LumaPlane& plane, const PixelRect& rect)
      : x0_(rect.x), y0_(rect.y), w_(rect.width), h_(rect.height),
        sat_(static_cast<size_t>(w_ + 1) * static_cast<size_t>(h_ + 1), 0.0) {
    for (int y = 0; y < h_; ++y) {
      const uint8_t* row = plane.data + static_cast<std::ptrdiff_t>(y0_ + y) * plane.stride + x0_;
      double run = 0;
      double* out = &sat_[Index(1, y + 1)];
      const double* above = &sat_[Index(1, y)];
      for (int x = 0; x < w_; ++x) {
        run += row[x];
        out[x] = above[x] + run;
      }
    }
  }

  // Mean luma over [fx0, fx1) x [fy0, fy1) in plane coordinates.
  double Mean(double fx0, double fy0, double fx1, double fy1) const {
    const double area = (fx1 - fx0) * (fy1 - fy0);
    if (area <= 0) return 0;
    return (At(fx1, fy1) - At(fx0, fy1) - At(fx1, fy0) + At(fx0, fy0)) / area;
  }

  // Averages plane rectangle (fx, fy, fw, fh) into an out_w x out_h grid.
  void Resample(double fx, double fy, double fw, double fh, int out_w, int out_h,
                std::vector<double>& out) const {
    out.assign(static_cast<size_t>(out_w) * static_cast<size_t>(out_h), 0.0);
    std::vector<double> xs(static_cast<size_t>(out_w) + 1);
    std::vector<double> ys(static_cast<size_t>(out_h) + 1);
    for (int i = 0; i <= out_w; ++i) xs[static_cast<size_t>(i)] = fx + fw * i / out_w;
    for (int j = 0; j <= out_h; ++j) ys[static_cast<size_t>(j)] = fy + fh * j / out_h;
    // SAT values at the grid corners, then differences.
    std::vector<double> corners(static_cast<size_t>(out_w + 1) * static_cast<size_t>(out_h + 1));
    for (int j = 0; j <= out_h; ++j) {
      for (int i = 0; i <= out_w; ++i) {
        corners[static_cast<size_t>(j * (out_w + 1) + i)] =
            At(xs[static_cast<size_t>(i)], ys[static_cast<size_t>(j)]);
      }
    }
    const double cell_area = (fw / out_w) * (fh / out_h);
    for (int j = 0; j < out_h; ++j) {
      for (int i = 0; i < out_w; ++i) {
        const size_t a = static_cast<size_t>(j * (out_w + 1) + i);
        const size_t b = a + static_cast<size_t>(out_w + 1);
        out[static_cast<size_t>(j * out_w + i)] =
            (corners[b + 1] - corners[b] - corners[a + 1] + corners[a]) / cell_area;
      }
    }
  }

 private:
  size_t Index(int x, int y) const {
    return static_cast<size_t>(y) * static_cast<size_t>(w_ + 1) + static_cast<size_t>(x);
  }
  // SAT at plane coordinates (x, y), bilinear between integer corners.
  double At(double x, double y) const {
    x = std::clamp(x - x0_, 0.0, static_cast<double>(w_));
    y = std::clamp(y - y0_, 0.0, static_cast<double>(h_));
    const int ix = std::min(static_cast<int>(x), w_ - 1);
    const int iy = std::min(static_cast<int>(y), h_ - 1);
    const double fx = x - ix;
    const double fy = y - iy;
    const double s00 = sat_[Index(ix, iy)];
    const double s10 = sat_[Index(ix + 1, iy)];
    const double s01 = sat_[Index(ix, iy + 1)];
    const double s11 = sat_[Index(ix + 1, iy + 1)];
    return s00 * (1 - fx) * (1 - fy) + s10 * fx * (1 - fy) + s01 * (1 - fx) * fy + s11 * fx * fy;
  }

  int x0_, y0_, w_, h_;
  std::vector<double> sat_;
};

// DCT-II basis, kFreqs x kGrid (unnormalised: scale does not change the bits).
const std::array<std::array<double, kGrid>, kFreqs>& DctBasis() {
  static const auto basis = [] {
    std::array<std::array<double, kGrid>, kFreqs> b{};
    for (int k = 0; k < kFreqs; ++k) {
      for (int n = 0; n < kGrid; ++n) {
        b[static_cast<size_t>(k)][static_cast<size_t>(n)] =
            std::cos(std::numbers::pi * (2 * n + 1) * k / (2.0 * kGrid));
      }
    }
    return b;
  }();
  return basis;
}

Hash256 BitsAboveMedian(const std::array<double, kFreqs * kFreqs>& coeffs) {
  std::array<double, kFreqs * kFreqs> sorted = coeffs;
  auto mid = sorted.begin() + sorted.size() / 2;
  std::nth_element(sorted.begin(), mid, sorted.end());
  const double median = *mid;
  Hash256 bits{};
  for (size_t i = 0; i < coeffs.size(); ++i) {
    if (coeffs[i] > median) bits[i / 64] |= uint64_t{1} << (i % 64);
  }
  return bits;
}

// Hash of a kGrid x kGrid block (row-major).
RectHash HashGrid(const std::vector<double>& grid) {
  RectHash out;
  // Quality: mean step between neighbouring cells.
  double gradient = 0;
  for (int y = 0; y < kGrid; ++y) {
    for (int x = 0; x < kGrid; ++x) {
      const double v = grid[static_cast<size_t>(y * kGrid + x)];
      if (x + 1 < kGrid) gradient += std::abs(grid[static_cast<size_t>(y * kGrid + x + 1)] - v);
      if (y + 1 < kGrid) gradient += std::abs(grid[static_cast<size_t>((y + 1) * kGrid + x)] - v);
    }
  }
  gradient /= 2.0 * kGrid * (kGrid - 1);
  out.quality = static_cast<int>(std::lround(std::clamp(
      100.0 * (gradient - kNoiseGradient) / (kGradientForFullQuality - kNoiseGradient), 0.0, 100.0)));

  // coeffs[v][u] = sum_y sum_x B[v][y] * B[u][x] * grid[y][x]; u horizontal.
  const auto& basis = DctBasis();
  std::array<std::array<double, kGrid>, kFreqs> rows{};  // rows[u][y] = sum_x B[u][x] grid[y][x]
  for (int y = 0; y < kGrid; ++y) {
    const double* g = &grid[static_cast<size_t>(y * kGrid)];
    for (int u = 0; u < kFreqs; ++u) {
      const auto& b = basis[static_cast<size_t>(u)];
      double s = 0;
      for (int x = 0; x < kGrid; ++x) s += b[static_cast<size_t>(x)] * g[x];
      rows[static_cast<size_t>(u)][static_cast<size_t>(y)] = s;
    }
  }
  std::array<double, kFreqs * kFreqs> coeffs{};
  for (int v = 0; v < kFreqs; ++v) {
    const auto& b = basis[static_cast<size_t>(v)];
    for (int u = 0; u < kFreqs; ++u) {
      const auto& r = rows[static_cast<size_t>(u)];
      double s = 0;
      for (int y = 0; y < kGrid; ++y) s += b[static_cast<size_t>(y)] * r[static_cast<size_t>(y)];
      coeffs[static_cast<size_t>(v * kFreqs + u)] = s;
    }
  }
  out.bits = BitsAboveMedian(coeffs);
  // Left-right mirror: coefficient (v, u) changes sign for odd u.
  for (int v = 0; v < kFreqs; ++v) {
    for (int u = 1; u < kFreqs; u += 2) coeffs[static_cast<size_t>(v * kFreqs + u)] *= -1;
  }
  out.mirrored_bits = BitsAboveMedian(coeffs);
  return out;
}

RectHash HashArea(const AreaSampler& sampler, double x, double y, double w, double h,
                  std::vector<double>& grid) {
  sampler.Resample(x, y, w, h, kGrid, kGrid, grid);
  return HashGrid(grid);
}

Status CheckPlane(const LumaPlane& plane) {
  if (plane.data == nullptr) return MakeError(ErrorCode::kInvalidArgument, "luma plane is null");
  if (plane.width < kMinPlaneSide || plane.height < kMinPlaneSide) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "luma plane " + std::to_string(plane.width) + "x" +
                         std::to_string(plane.height) + " is too small to hash (minimum " +
                         std::to_string(kMinPlaneSide) + "x" + std::to_string(kMinPlaneSide) + ")");
  }
  if (plane.stride < plane.width) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "luma plane stride " + std::to_string(plane.stride) +
                         " is smaller than its width " + std::to_string(plane.width));
  }
  return Ok();
}

// Mean and spread (max - min of a subsample, robust enough for flat tests) of
// line `index` (a row when rows, else a column).
struct LineStats {
  double mean = 0;
  double spread = 0;
};
LineStats Line(const LumaPlane& plane, bool rows, int index) {
  const int length = rows ? plane.width : plane.height;
  const int step = std::max(1, length / kBorderSamples);
  double sum = 0;
  double sum_sq = 0;
  int n = 0;
  for (int i = 0; i < length; i += step) {
    const uint8_t v = rows ? plane.data[static_cast<std::ptrdiff_t>(index) * plane.stride + i]
                           : plane.data[static_cast<std::ptrdiff_t>(i) * plane.stride + index];
    sum += v;
    sum_sq += static_cast<double>(v) * v;
    ++n;
  }
  LineStats s;
  s.mean = sum / n;
  s.spread = std::sqrt(std::max(0.0, sum_sq / n - s.mean * s.mean));
  return s;
}

// Number of border lines from one edge inward.
int BorderDepth(const LumaPlane& plane, bool rows, bool from_start) {
  const int count = rows ? plane.height : plane.width;
  const int max_depth = static_cast<int>(count * kBorderMaxFraction);
  const LineStats edge = Line(plane, rows, from_start ? 0 : count - 1);
  const double max_spread =
      edge.mean <= kBorderDarkMean ? kBorderMaxSpread : kBorderMaxSpreadAnyColour;
  if (edge.spread > max_spread) return 0;
  int depth = 0;
  while (depth < max_depth) {
    const LineStats s = Line(plane, rows, from_start ? depth : count - 1 - depth);
    if (s.spread > max_spread || std::abs(s.mean - edge.mean) > kBorderMaxMeanStep) break;
    ++depth;
  }
  if (depth < static_cast<int>(std::ceil(count * kBorderMinFraction))) return 0;
  return depth;
}

// Centre sub-rectangle of `r` with the given aspect (width / height), or r.
struct FRect {
  double x, y, w, h;
};
FRect CenterAspect(const FRect& r, double aspect) {
  if (r.w / r.h > aspect * 1.08) {
    const double w = r.h * aspect;
    return {r.x + (r.w - w) / 2, r.y, w, r.h};
  }
  if (r.w / r.h < aspect / 1.08) {
    const double h = r.w / aspect;
    return {r.x, r.y + (r.h - h) / 2, r.w, h};
  }
  return r;
}

void AddView(FrameHashes& out, const RectHash& h, ViewKind view, bool mirrored,
             const FRect& rect) {
  ViewHash v;
  v.bits = mirrored ? h.mirrored_bits : h.bits;
  v.quality = h.quality;
  v.view = view;
  v.mirrored = mirrored;
  v.rect = {static_cast<int>(std::lround(rect.x)), static_cast<int>(std::lround(rect.y)),
            static_cast<int>(std::lround(rect.w)), static_cast<int>(std::lround(rect.h))};
  out.views.push_back(v);
}

FRect ToF(const PixelRect& r) {
  return {static_cast<double>(r.x), static_cast<double>(r.y), static_cast<double>(r.width),
          static_cast<double>(r.height)};
}

}  // namespace

int HammingDistance(const Hash256& a, const Hash256& b) {
  return std::popcount(a[0] ^ b[0]) + std::popcount(a[1] ^ b[1]) + std::popcount(a[2] ^ b[2]) +
         std::popcount(a[3] ^ b[3]);
}

std::string_view ViewKindName(ViewKind view) {
  switch (view) {
    case ViewKind::kFull: return "full";
    case ViewKind::kCenter4x3: return "center_4x3";
    case ViewKind::kCenterWide: return "center_wide";
    case ViewKind::kCropCenter: return "crop_center";
    case ViewKind::kCropTopLeft: return "crop_top_left";
    case ViewKind::kCropTopRight: return "crop_top_right";
    case ViewKind::kCropBottomLeft: return "crop_bottom_left";
    case ViewKind::kCropBottomRight: return "crop_bottom_right";
    case ViewKind::kInset: return "inset";
  }
  return "unknown";
}

PixelRect FindContentRect(const LumaPlane& plane) {
  const int top = BorderDepth(plane, true, true);
  const int bottom = BorderDepth(plane, true, false);
  const int left = BorderDepth(plane, false, true);
  const int right = BorderDepth(plane, false, false);
  PixelRect r{left, top, plane.width - left - right, plane.height - top - bottom};
  if (r.width < kMinPlaneSide / 2 || r.height < kMinPlaneSide / 2) {
    return {0, 0, plane.width, plane.height};
  }
  return r;
}

std::vector<PixelRect> FindInsetWindows(const LumaPlane& plane, const PixelRect& content,
                                        int max_count, double min_scale, double max_scale) {
  std::vector<PixelRect> result;
  if (max_count <= 0 || content.width < kMinPlaneSide || content.height < kMinPlaneSide) {
    return result;
  }
  const int gw = std::min(content.width, kInsetGridWidth);
  const int gh = std::max(8, static_cast<int>(std::lround(gw * static_cast<double>(content.height) /
                                                          content.width)));
  const double aspect = static_cast<double>(gh) / gw;
  AreaSampler sampler(plane, content);
  std::vector<double> g;
  sampler.Resample(content.x, content.y, content.width, content.height, gw, gh, g);
  auto at = [&](int x, int y) { return g[static_cast<size_t>(y * gw + x)]; };

  // pv[x * (gh + 1) + y]: prefix over rows of |step| between columns x-1 and x.
  // ph[y * (gw + 1) + x]: prefix over columns of |step| between rows y-1 and y.
  std::vector<double> pv(static_cast<size_t>((gw + 1) * (gh + 1)), 0.0);
  std::vector<double> ph(static_cast<size_t>((gh + 1) * (gw + 1)), 0.0);
  for (int x = 1; x < gw; ++x) {
    for (int y = 0; y < gh; ++y) {
      pv[static_cast<size_t>(x * (gh + 1) + y + 1)] =
          pv[static_cast<size_t>(x * (gh + 1) + y)] + std::abs(at(x, y) - at(x - 1, y));
    }
  }
  for (int y = 1; y < gh; ++y) {
    for (int x = 0; x < gw; ++x) {
      ph[static_cast<size_t>(y * (gw + 1) + x + 1)] =
          ph[static_cast<size_t>(y * (gw + 1) + x)] + std::abs(at(x, y) - at(x, y - 1));
    }
  }
  auto vline = [&](int x, int y0, int y1) {  // mean step across column boundary x, rows [y0, y1)
    if (x < 1 || x >= gw) return 0.0;
    return (pv[static_cast<size_t>(x * (gh + 1) + y1)] - pv[static_cast<size_t>(x * (gh + 1) + y0)]) /
           (y1 - y0);
  };
  auto hline = [&](int y, int x0, int x1) {
    if (y < 1 || y >= gh) return 0.0;
    return (ph[static_cast<size_t>(y * (gw + 1) + x1)] - ph[static_cast<size_t>(y * (gw + 1) + x0)]) /
           (x1 - x0);
  };
  // Edge evidence of one side: the step on the line minus the texture on the
  // lines two cells to either side.
  auto vside = [&](int x, int y0, int y1) {
    return vline(x, y0, y1) - 0.5 * (vline(x - 2, y0, y1) + vline(x + 2, y0, y1));
  };
  auto hside = [&](int y, int x0, int x1) {
    return hline(y, x0, x1) - 0.5 * (hline(y - 2, x0, x1) + hline(y + 2, x0, x1));
  };
  struct Candidate {
    int x, y, w, h;
    double score;
  };
  auto score = [&](int x, int y, int w, int h) {
    std::array<double, 4> s = {vside(x, y, y + h), vside(x + w, y, y + h), hside(y, x, x + w),
                               hside(y + h, x, x + w)};
    std::sort(s.begin(), s.end());
    return (s[0] + s[1] + s[2]) / 3.0;
  };

  const int min_w = std::max(8, static_cast<int>(std::ceil(gw * min_scale)));
  const int max_w = std::min(gw - 2, static_cast<int>(gw * max_scale));
  std::vector<Candidate> coarse;
  for (int w = min_w; w <= max_w; w += 2) {
    const int h = static_cast<int>(std::lround(w * aspect));
    if (h < 4 || h > gh - 2) continue;
    for (int y = 1; y + h <= gh - 1; y += 2) {
      for (int x = 1; x + w <= gw - 1; x += 2) {
        const double s = score(x, y, w, h);
        if (s >= kInsetMinEdge * 0.5) coarse.push_back({x, y, w, h, s});
      }
    }
  }
  const size_t keep = std::min<size_t>(coarse.size(), kInsetCoarseKeep);
  std::partial_sort(coarse.begin(), coarse.begin() + static_cast<std::ptrdiff_t>(keep), coarse.end(),
                    [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  coarse.resize(keep);

  // Refine each survivor by +-1 cell per parameter, then suppress overlaps.
  std::vector<Candidate> refined;
  for (const Candidate& c : coarse) {
    Candidate best = c;
    for (int dw = -1; dw <= 1; ++dw) {
      for (int dh = -1; dh <= 1; ++dh) {
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            const int x = c.x + dx, y = c.y + dy, w = c.w + dw, h = c.h + dh;
            if (x < 1 || y < 1 || w < 4 || h < 4 || x + w > gw - 1 || y + h > gh - 1) continue;
            const double s = score(x, y, w, h);
            if (s > best.score) best = {x, y, w, h, s};
          }
        }
      }
    }
    if (best.score >= kInsetMinEdge) refined.push_back(best);
  }
  std::sort(refined.begin(), refined.end(),
            [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  std::vector<Candidate> chosen;
  for (const Candidate& c : refined) {
    bool overlaps = false;
    for (const Candidate& o : chosen) {
      const int ix = std::max(0, std::min(c.x + c.w, o.x + o.w) - std::max(c.x, o.x));
      const int iy = std::max(0, std::min(c.y + c.h, o.y + o.h) - std::max(c.y, o.y));
      if (2 * ix * iy > std::min(c.w * c.h, o.w * o.h)) overlaps = true;
    }
    if (overlaps) continue;
    chosen.push_back(c);
    if (static_cast<int>(chosen.size()) >= max_count) break;
  }
  const double sx = static_cast<double>(content.width) / gw;
  const double sy = static_cast<double>(content.height) / gh;
  for (const Candidate& c : chosen) {
    // A quarter cell inside each side: the boundary cells mix both pictures.
    const int x0 = content.x + static_cast<int>(std::lround((c.x + 0.25) * sx));
    const int y0 = content.y + static_cast<int>(std::lround((c.y + 0.25) * sy));
    const int x1 = content.x + static_cast<int>(std::lround((c.x + c.w - 0.25) * sx));
    const int y1 = content.y + static_cast<int>(std::lround((c.y + c.h - 0.25) * sy));
    if (x1 - x0 >= 4 && y1 - y0 >= 4) result.push_back({x0, y0, x1 - x0, y1 - y0});
  }
  return result;
}

RectHash HashRect(const LumaPlane& plane, const PixelRect& rect) {
  AreaSampler sampler(plane, {0, 0, plane.width, plane.height});
  std::vector<double> grid;
  return HashArea(sampler, rect.x, rect.y, rect.width, rect.height, grid);
}

Status CheckContent(const LumaPlane& plane, const PixelRect* content) {
  if (content == nullptr) return Ok();
  if (content->x < 0 || content->y < 0 || content->width < 1 || content->height < 1 ||
      content->x + content->width > plane.width || content->y + content->height > plane.height) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "content rect " + std::to_string(content->width) + "x" +
                         std::to_string(content->height) + "+" + std::to_string(content->x) + "+" +
                         std::to_string(content->y) + " is not inside the " +
                         std::to_string(plane.width) + "x" + std::to_string(plane.height) +
                         " luma plane");
  }
  return Ok();
}

PixelRect ContentTracker::Update(const LumaPlane& plane) {
  if (plane.width != width_ || plane.height != height_) {
    width_ = plane.width;
    height_ = plane.height;
    recent_.clear();
    next_ = 0;
  }
  const PixelRect found = FindContentRect(plane);
  if (recent_.size() < static_cast<size_t>(window_)) {
    recent_.push_back(found);
  } else {
    recent_[next_] = found;
    next_ = (next_ + 1) % recent_.size();
  }
  // Per side, the median over the window, widened to this frame's rect (a
  // bright frame shows the true extent at once; a dark one cannot shrink it).
  auto median = [&](auto side) {
    std::vector<int> v;
    for (const PixelRect& r : recent_) v.push_back(side(r));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  const int x0 = std::min(found.x, median([](const PixelRect& r) { return r.x; }));
  const int y0 = std::min(found.y, median([](const PixelRect& r) { return r.y; }));
  const int x1 = std::max(found.x + found.width, median([](const PixelRect& r) { return r.x + r.width; }));
  const int y1 = std::max(found.y + found.height, median([](const PixelRect& r) { return r.y + r.height; }));
  return {x0, y0, x1 - x0, y1 - y0};
}

Result<FrameHashes> HashReferenceFrame(const LumaPlane& plane, const FrameHashOptions& options,
                                       const PixelRect* content) {
  if (auto ok = CheckPlane(plane); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckContent(plane, content); !ok) return std::unexpected(ok.error());
  FrameHashes out;
  out.content = content != nullptr ? *content : FindContentRect(plane);
  AreaSampler sampler(plane, out.content);
  std::vector<double> grid;
  const FRect full = ToF(out.content);
  auto add = [&](const FRect& r, ViewKind view) {
    AddView(out, HashArea(sampler, r.x, r.y, r.w, r.h, grid), view, false, r);
  };
  add(full, ViewKind::kFull);
  if (!options.reference_crops) return out;
  const double aspect = full.w / full.h;
  if (aspect > kNarrowAspect * 1.08) add(CenterAspect(full, kNarrowAspect), ViewKind::kCenter4x3);
  if (aspect < kWideAspect / 1.08) add(CenterAspect(full, kWideAspect), ViewKind::kCenterWide);
  for (double keep : options.reference_crop_scales) {
    if (!(keep > 0.5 && keep < 1.0)) continue;
    const double cw = full.w * keep;
    const double ch = full.h * keep;
    const double mx = full.w - cw;
    const double my = full.h - ch;
    add({full.x + mx / 2, full.y + my / 2, cw, ch}, ViewKind::kCropCenter);
    add({full.x, full.y, cw, ch}, ViewKind::kCropTopLeft);
    add({full.x + mx, full.y, cw, ch}, ViewKind::kCropTopRight);
    add({full.x, full.y + my, cw, ch}, ViewKind::kCropBottomLeft);
    add({full.x + mx, full.y + my, cw, ch}, ViewKind::kCropBottomRight);
  }
  return out;
}

Result<FrameHashes> HashQueryFrame(const LumaPlane& plane, const FrameHashOptions& options,
                                   const PixelRect* content) {
  if (auto ok = CheckPlane(plane); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckContent(plane, content); !ok) return std::unexpected(ok.error());
  FrameHashes out;
  const PixelRect own = FindContentRect(plane);
  out.content = content != nullptr ? *content : own;
  AreaSampler sampler(plane, {0, 0, plane.width, plane.height});
  std::vector<double> grid;
  auto add = [&](const FRect& r, ViewKind view) {
    const RectHash h = HashArea(sampler, r.x, r.y, r.w, r.h, grid);
    AddView(out, h, view, false, r);
    if (options.query_mirrored) AddView(out, h, view, true, r);
  };
  add(ToF(out.content), ViewKind::kFull);
  // This frame alone sees other borders (a dark scene, or a new format):
  // its own full view is hashed too.
  if (own != out.content) add(ToF(own), ViewKind::kFull);
  for (const PixelRect& inset :
       FindInsetWindows(plane, out.content, options.max_insets, options.min_inset_scale,
                        options.max_inset_scale)) {
    // The inset picture may carry its own bars (a letterboxed film shown
    // picture-in-picture): remove them as for the whole frame.
    PixelRect inner = inset;
    if (inset.width >= kMinPlaneSide && inset.height >= kMinPlaneSide) {
      const LumaPlane sub{plane.data + static_cast<std::ptrdiff_t>(inset.y) * plane.stride + inset.x,
                          inset.width, inset.height, plane.stride};
      const PixelRect r = FindContentRect(sub);
      inner = {inset.x + r.x, inset.y + r.y, r.width, r.height};
    }
    add(ToF(inner), ViewKind::kInset);
  }
  return out;
}

}  // namespace earshot::video
