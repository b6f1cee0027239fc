// Helpers shared by the scanner's end-to-end tests (scan_e2e_test.cc,
// scan_protocols_e2e_test.cc): running the real `earshot` binary against a
// catalog, and reading what a scan wrote. Not thread-safe; test thread only.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.h"

namespace earshot::scan::e2e {

std::filesystem::path SourceDir();

// The JSON in `path`; a discarded value when it does not parse.
nlohmann::json ReadJson(const std::filesystem::path& path);

// The identification responses a scan wrote into `folder` (every *.json
// but summary.json), sorted by name (= sequence).
std::vector<std::filesystem::path> ResponseFiles(const std::filesystem::path& folder);

// ARGV to its end; a failure to run it at all is a result with the error in
// stderr_text (and timed_out set), so a test has one thing to check.
testing::CommandResult RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// `earshot --catalog CATALOG ARGS...` through RunTool.
testing::CommandResult RunEarshot(const std::filesystem::path& catalog, std::vector<std::string> args,
                                  std::chrono::milliseconds timeout);

// `earshot --catalog CATALOG scan ARGS...` in the background, its output in
// `log` (the test fails when it cannot start).
testing::ChildProcess StartEarshotScan(const std::filesystem::path& catalog, std::vector<std::string> args,
                                       const std::filesystem::path& log);

// Every document in `results` validates against docs/schema/ (a test
// failure otherwise).
void ExpectSchemaValid(const std::filesystem::path& results);

}  // namespace earshot::scan::e2e
