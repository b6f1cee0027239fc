// Procedural test pictures and the transformations re-streamers apply, for
// the video fingerprint tests (no binary fixtures).
//
// Thread safety: plain functions on values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "video/frame_hash.h"

namespace earshot::video::testing {

// An owned 8-bit luma image, rows packed.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;

  uint8_t& at(int x, int y) { return pixels[static_cast<size_t>(y * width + x)]; }
  uint8_t at(int x, int y) const { return pixels[static_cast<size_t>(y * width + x)]; }
  LumaPlane plane() const { return {pixels.data(), width, height, width}; }
};

inline Image Blank(int width, int height, uint8_t value) {
  return {width, height, std::vector<uint8_t>(static_cast<size_t>(width * height), value)};
}

// A "scene": smooth gradient, soft blobs and hard-edged shapes, all drawn
// from `seed`; different seeds give unrelated pictures.
inline Image Scene(uint32_t seed, int width = 320, int height = 180) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> img(static_cast<size_t>(width * height));
  const double gx = u(rng) * 120 - 60, gy = u(rng) * 120 - 60, base = 60 + u(rng) * 100;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      img[static_cast<size_t>(y * width + x)] =
          base + gx * x / width + gy * y / height;
    }
  }
  for (int b = 0; b < 12; ++b) {  // blobs
    const double cx = u(rng) * width, cy = u(rng) * height, r = (0.05 + u(rng) * 0.2) * width;
    const double amp = u(rng) * 160 - 80;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const double d2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (r * r);
        img[static_cast<size_t>(y * width + x)] += amp * std::exp(-d2);
      }
    }
  }
  for (int s = 0; s < 8; ++s) {  // rectangles
    const int x0 = static_cast<int>(u(rng) * width), y0 = static_cast<int>(u(rng) * height);
    const int w = static_cast<int>((0.05 + u(rng) * 0.3) * width);
    const int h = static_cast<int>((0.05 + u(rng) * 0.3) * height);
    const double amp = u(rng) * 120 - 60;
    for (int y = y0; y < std::min(height, y0 + h); ++y) {
      for (int x = x0; x < std::min(width, x0 + w); ++x) img[static_cast<size_t>(y * width + x)] += amp;
    }
  }
  Image out{width, height, std::vector<uint8_t>(img.size())};
  for (size_t i = 0; i < img.size(); ++i) {
    out.pixels[i] = static_cast<uint8_t>(std::clamp(std::lround(img[i]), 0L, 255L));
  }
  return out;
}

// Bilinear resampling of the rectangle (sx, sy, sw, sh) of `in` to w x h.
inline Image Resample(const Image& in, double sx, double sy, double sw, double sh, int w, int h) {
  Image out = Blank(w, h, 0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double fx = std::clamp(sx + (x + 0.5) * sw / w - 0.5, 0.0, in.width - 1.0);
      const double fy = std::clamp(sy + (y + 0.5) * sh / h - 0.5, 0.0, in.height - 1.0);
      const int ix = std::min(static_cast<int>(fx), in.width - 2);
      const int iy = std::min(static_cast<int>(fy), in.height - 2);
      const double ax = fx - ix, ay = fy - iy;
      const double v = in.at(ix, iy) * (1 - ax) * (1 - ay) + in.at(ix + 1, iy) * ax * (1 - ay) +
                       in.at(ix, iy + 1) * (1 - ax) * ay + in.at(ix + 1, iy + 1) * ax * ay;
      out.at(x, y) = static_cast<uint8_t>(std::lround(v));
    }
  }
  return out;
}

inline Image Scale(const Image& in, int w, int h) { return Resample(in, 0, 0, in.width, in.height, w, h); }

// Re-encoding-like damage: 8x8 blocks pulled toward their mean, plus noise.
inline Image Reencode(const Image& in, uint32_t seed, double noise = 6, double flatten = 0.3) {
  Image out = in;
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(0, noise);
  for (int by = 0; by < in.height; by += 8) {
    for (int bx = 0; bx < in.width; bx += 8) {
      double sum = 0;
      int count = 0;
      for (int y = by; y < std::min(in.height, by + 8); ++y) {
        for (int x = bx; x < std::min(in.width, bx + 8); ++x, ++count) sum += in.at(x, y);
      }
      const double mean = sum / count;
      for (int y = by; y < std::min(in.height, by + 8); ++y) {
        for (int x = bx; x < std::min(in.width, bx + 8); ++x) {
          const double v = in.at(x, y) * (1 - flatten) + mean * flatten + n(rng);
          out.at(x, y) = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        }
      }
    }
  }
  return out;
}

// Brightness / contrast / gamma change.
inline Image Tint(const Image& in, double brightness, double contrast, double gamma) {
  Image out = in;
  for (auto& p : out.pixels) {
    double v = std::pow(p / 255.0, gamma);
    v = (v - 0.5) * contrast + 0.5 + brightness;
    p = static_cast<uint8_t>(std::clamp(std::lround(v * 255), 0L, 255L));
  }
  return out;
}

inline Image Mirror(const Image& in) {
  Image out = in;
  for (int y = 0; y < in.height; ++y) {
    for (int x = 0; x < in.width; ++x) out.at(x, y) = in.at(in.width - 1 - x, y);
  }
  return out;
}

// `inner` pasted into `outer` at (x, y) (clipped).
inline Image Paste(Image outer, const Image& inner, int x, int y) {
  for (int j = 0; j < inner.height; ++j) {
    for (int i = 0; i < inner.width; ++i) {
      if (x + i >= 0 && x + i < outer.width && y + j >= 0 && y + j < outer.height) {
        outer.at(x + i, y + j) = inner.at(i, j);
      }
    }
  }
  return outer;
}

}  // namespace earshot::video::testing
