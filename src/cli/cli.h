// The earshot command line: parses arguments and runs a command.
//
// Output contract: machine-readable results (JSON) go to stdout; progress,
// warnings and errors go to stderr. Exit status: 0 success, 1 the command
// ran but something failed (a file could not be added, an input could not
// be identified), 2 bad usage or a setup error (no catalog, damaged index).
#pragma once

namespace earshot::cli {

int RunCli(int argc, char** argv);

}  // namespace earshot::cli
