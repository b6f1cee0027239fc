// Test GeoIP databases: a real MaxMind DB file written from "CIDR COUNTRY"
// pairs by tests/support/make_test_geoip.pl (MaxMind::DB::Writer, Debian
// package libmaxmind-db-writer-perl), for tests of the geoip adapter and of
// country restrictions in `earshot serve`.
//
// Thread safety: safe to call from several threads for different `out` files.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace earshot::testing {

// Writes a MaxMind DB to `out` (its folder must exist) mapping each CIDR
// ("192.0.2.0/24", "2001:db8::/32"; IPv4 is reachable from IPv6 lookups too)
// to its ISO country code, stored as country.iso_code and
// registered_country.iso_code. Country "-" stores a record with no country;
// "registered:XX" one with only registered_country. `database_type` is the
// metadata's type; one containing "ASN" writes {autonomous_system_number}
// records instead (a database without country data). Returns `out` as a
// string. kFailedPrecondition when perl or the writer module is missing (the
// message names the package); kInternal with the script's stderr when it
// fails (e.g. a malformed CIDR).
Result<std::string> WriteTestGeoIpDatabase(
    const std::filesystem::path& out,
    const std::vector<std::pair<std::string, std::string>>& cidr_country,
    std::string_view database_type = "GeoIP2-Country");

}  // namespace earshot::testing
