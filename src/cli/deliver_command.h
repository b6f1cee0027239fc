// `earshot deliver`: sends what a results folder's delivery spool
// (RESULTS/.outbox/{target}/..., see delivery/outbox.h) still holds to the
// given sinks and notifiers, without scanning: for results a scan could not
// deliver before it ended (a bucket or webhook that was down).
//
// The targets are given exactly as to `earshot scan` (--sink / --notify
// specs); a spool folder is matched to a target by the target's name (its
// kind, or name=...). Output: JSON log lines on stderr while it works, one
// JSON summary line on stdout at the end:
//   {"results_dir": ..., "spooled": 12, "delivered": 12, "pending": 0,
//    "missing": 0, "targets": [{"name": "webhook", "configured": true,
//    "spooled": 6, "delivered": 6, "pending": 0, "missing": 0,
//    "last_error": null}, ...]}
// spooled: entries at the start; pending: entries left at the end; missing:
// entries dropped because their result file was deleted. `targets` has one
// item per target given and one (configured: false) per spool folder of a
// target not given, whose entries stay pending. For entries that remain,
// one "earshot: error: ..." line per target says why (the last delivery
// error, or that the target was not given). Exit status: 0 everything delivered (or nothing was
// spooled), 1 some entries remain spooled, 2 bad usage or setup.
//
// Run it while no scan writes into the same folder (a running scan
// delivers its own spool; two deliverers may send an entry twice, with the
// same Idempotency-Key).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace earshot::cli {

struct DeliverArgs {
  std::string results_dir = "earshot-results";
  std::vector<std::string> sinks;      // specs, as `scan --sink`
  std::vector<std::string> notifiers;  // specs, as `scan --notify`
  double timeout_s = 60;               // give up (exit 1) after this long, seconds
  std::string log_level = "info";
};

// Declares the `deliver` subcommand on `app`, bound to `args` (which must
// outlive parsing); returns it (check ->parsed()).
CLI::App* AddDeliverCommand(CLI::App& app, DeliverArgs& args);

// Delivers the spool; returns the process exit status (0 / 1 / 2, above).
int RunDeliver(const DeliverArgs& args);

}  // namespace earshot::cli
