#include "support/test_geoip.h"

#include <chrono>
#include <fstream>

#include "support/process.h"

namespace earshot::testing {
namespace {

constexpr std::chrono::milliseconds kScriptTimeout{60'000};

std::filesystem::path ScriptPath() {
  return std::filesystem::path(EARSHOT_SOURCE_DIR) / "tests" / "support" / "make_test_geoip.pl";
}

}  // namespace

Result<std::string> WriteTestGeoIpDatabase(
    const std::filesystem::path& out,
    const std::vector<std::pair<std::string, std::string>>& cidr_country,
    std::string_view database_type) {
  const std::string what = "writing test GeoIP database " + out.string();
  if (!FindExecutable("perl")) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     what +
                         ": perl is not installed: apt-get install perl "
                         "libmaxmind-db-writer-perl");
  }
  const auto check = RunCommand({"perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"}, kScriptTimeout);
  if (!check) return std::unexpected(check.error().Wrap(what));
  if (!check->ok()) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     what +
                         ": the perl module MaxMind::DB::Writer is missing: apt-get install "
                         "libmaxmind-db-writer-perl");
  }
  std::filesystem::path networks = out;
  networks += ".networks.txt";
  {
    std::ofstream file(networks, std::ios::binary | std::ios::trunc);
    for (const auto& [cidr, country] : cidr_country) file << cidr << ' ' << country << '\n';
    file.close();
    if (!file) {
      return MakeError(ErrorCode::kIoError, what + ": cannot write " + networks.string());
    }
  }
  auto run = RunCommand(
      {"perl", ScriptPath().string(), out.string(), networks.string(), std::string(database_type)},
      kScriptTimeout);
  std::error_code ec;
  std::filesystem::remove(networks, ec);
  if (!run) return std::unexpected(run.error().Wrap(what));
  if (!run->ok()) return MakeError(ErrorCode::kInternal, what + ": " + run->Describe());
  return out.string();
}

}  // namespace earshot::testing
