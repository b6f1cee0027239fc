// A one-line progress bar with rate and ETA, drawn on a terminal.
//
// Draws on stderr only when it is a terminal (or when forced), at most ten
// times a second, and erases itself at Done(). Thread safety: one thread.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace earshot::cli {

class ProgressBar {
 public:
  // `label` prefixes the line ("fingerprinting"); `enabled` false draws nothing.
  ProgressBar(std::string label, size_t total, bool enabled);
  // `done` items of `total`; `detail` is appended ("312 s of audio").
  void Update(size_t done, const std::string& detail);
  void Done();

  static bool StderrIsTerminal();

 private:
  std::string label_;
  size_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

// "1:02:03" / "4:05" for a duration in seconds.
std::string FormatDuration(double seconds);

}  // namespace earshot::cli
