// `earshot scan`: watches live streams (or replays files) and writes
// identification responses into RESULTS/{stream_id}/, delivering them to the
// configured sinks and notifiers.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace earshot::cli {

struct ScanArgs {
  std::string input;
  std::string stream_id;
  std::string channel_id;
  std::string streams_file;     // TSV: stream_id <TAB> input [<TAB> channel_id]
  std::string results_dir = "earshot-results";
  bool realtime = false;
  int threads = 0;
  double stall_timeout_s = 10;
  int max_reconnects = 3;
  double reconnect_backoff_s = 1;
  std::vector<std::string> headers;
  double ongoing_every_s = 30;
  double thumbnail_every_s = 0;  // JPEG thumbnails this often (0: none)
  bool no_video = false;         // do not match video even when the catalog has video references
  std::vector<std::string> sinks;
  std::vector<std::string> notifiers;
  double delivery_timeout_s = 30;
  std::string log_level = "info";
};

// Declares the subcommand's options on `cmd`, bound to `args`.
void AddScanOptions(CLI::App* cmd, ScanArgs& args);

// Runs the scan; returns the process exit status (0 all streams ended or were
// cancelled, 1 a stream failed, 2 setup error).
int RunScan(const std::string& catalog_dir, const ScanArgs& args);

}  // namespace earshot::cli
