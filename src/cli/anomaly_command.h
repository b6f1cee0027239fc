// `earshot anomaly --detector`: the viewer-count anomaly detector
// (anomaly/viewer_anomaly_detector.h) as a filter, the interface of the
// anomaly benchmark (/work/shared/bench/anomaly):
//   stdin:  "timestamp,channel,value" lines (Unix seconds, an id without
//           commas, viewers >= 0), in time order, channels interleaved;
//   stdout: "timestamp,channel,alarm,band_low,band_high" per input line, in
//           the same order; alarm is 1 while the channel is in ALARM (with
//           --auto-stop: while the auto-stop verdict holds), else 0.
// Output is buffered and complete at end of input. A malformed line stops the
// run with "earshot: error: line N: ..." on stderr and exit status 1 (the
// lines before it have been answered); 2 for bad options. Empty lines are
// skipped without output.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

namespace earshot::cli {

struct AnomalyArgs {
  bool detector = false;   // run as the stdin -> stdout filter (the only mode so far)
  bool auto_stop = false;  // print the auto-stop verdict as the alarm column
  // Preset of knobs: standard | reward_low_FP | reward_low_FN | auto_stop
  // (auto_stop also implies --auto-stop). Explicit options override it.
  std::string profile = "standard";
  // Overrides (negative / empty = the profile's value).
  double band_width = -1;       // sigmas
  double min_ratio = -1;        // upper band at least this x the expected audience
  int datapoints = -1;          // M
  int evaluation_periods = -1;  // N
  double period_s = -1;         // seconds
  std::string missing_data;     // missing | notBreaching | breaching | ignore
  double sustain_s = -1;        // an excursion must last this long to breach, seconds
  double stop_ratio = -1;       // auto-stop: minimum jump (x expected)
  double stop_minutes = -1;     // auto-stop: minimum age of the jump, minutes
};

// Declares the `anomaly` subcommand on `app`, bound to `args` (which must
// outlive parsing); returns it (check ->parsed()).
CLI::App* AddAnomalyCommand(CLI::App& app, AnomalyArgs& args);

// Runs the filter on stdin/stdout; returns the exit status (0 / 1 / 2).
int RunAnomaly(const AnomalyArgs& args);
// The same on explicit streams (tests).
int RunAnomalyDetector(const AnomalyArgs& args, std::FILE* in, std::FILE* out, std::FILE* err);

}  // namespace earshot::cli
