#include "scan/scan_e2e_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

namespace earshot::scan::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path SourceDir() { return EARSHOT_TEST_SOURCE_DIR; }

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);
}

std::vector<fs::path> ResponseFiles(const fs::path& folder) {
  std::vector<fs::path> out;
  if (!fs::is_directory(folder)) return out;
  for (const auto& e : fs::directory_iterator(folder)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".json") && name != "summary.json") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

testing::CommandResult RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  auto r = testing::RunCommand(argv, timeout);
  if (!r) {
    testing::CommandResult failed;
    failed.command = testing::JoinCommand(argv);
    failed.stderr_text = r.error().ToString();
    failed.timed_out = true;
    return failed;
  }
  return *r;
}

testing::CommandResult RunEarshot(const fs::path& catalog, std::vector<std::string> args,
                                  std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {EARSHOT_BINARY, "--catalog", catalog.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunTool(argv, timeout);
}

testing::ChildProcess StartEarshotScan(const fs::path& catalog, std::vector<std::string> args,
                                       const fs::path& log) {
  std::vector<std::string> argv = {EARSHOT_BINARY, "--catalog", catalog.string(), "scan"};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::SpawnOptions options;
  options.argv = argv;
  options.output_file = log;
  auto child = testing::ChildProcess::Spawn(options);
  EXPECT_TRUE(child) << child.error().ToString();
  return std::move(*child);
}

void ExpectSchemaValid(const fs::path& results) {
  auto r = testing::RunCommand({"/usr/bin/python3", (SourceDir() / "tests/scan/validate_results.py").string(),
                                (SourceDir() / "docs/schema").string(), results.string()},
                               60s);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->ok()) << r->Describe() << r->stdout_text;
}

}  // namespace earshot::scan::e2e
