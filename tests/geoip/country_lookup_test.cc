// MaxMindCountryLookup on real MaxMind DB files written by
// tests/support/make_test_geoip.pl: IPv4 and IPv6 addresses found (also
// IPv4-mapped IPv6), the registered_country fallback, addresses that are not in
// the database, malformed addresses, and clear errors for a missing file, a
// file that is not a MaxMind DB and a database without country data. Plus
// lookups from several threads at once.
#include "geoip/country_lookup.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.h"
#include "support/test_geoip.h"

namespace earshot::geoip {
namespace {

class CountryLookupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = earshot::testing::ScopedTempDir::Create("geoip-test");
    ASSERT_TRUE(dir.has_value()) << dir.error().ToString();
    dir_.emplace(std::move(*dir));
  }

  std::filesystem::path Path(std::string_view name) const { return dir_->path() / name; }

  // A country database with the networks the tests use.
  std::unique_ptr<CountryLookup> OpenTestDatabase() {
    auto written = earshot::testing::WriteTestGeoIpDatabase(
        Path("countries.mmdb"), {{"192.0.2.0/24", "FR"},
                                 {"198.51.100.0/25", "de"},  // stored lowercase
                                 {"198.51.100.128/25", "registered:JP"},
                                 {"203.0.113.0/24", "-"},  // in the database, no country
                                 {"2001:db8::/32", "NL"},
                                 {"2001:db8:1::/48", "BR"}});  // more specific wins
    EXPECT_TRUE(written.has_value()) << written.error().ToString();
    if (!written) return nullptr;
    auto lookup = MaxMindCountryLookup::Open(*written);
    EXPECT_TRUE(lookup.has_value()) << lookup.error().ToString();
    return lookup ? std::move(*lookup) : nullptr;
  }

  std::optional<earshot::testing::ScopedTempDir> dir_;
};

std::string CountryOf(CountryLookup& lookup, std::string_view ip) {
  auto country = lookup.CountryOf(ip);
  EXPECT_TRUE(country.has_value()) << ip << ": " << country.error().ToString();
  return country ? *country : "<error>";
}

TEST_F(CountryLookupTest, FindsIpv4AndIpv6Addresses) {
  auto lookup = OpenTestDatabase();
  ASSERT_NE(lookup, nullptr);
  EXPECT_EQ(CountryOf(*lookup, "192.0.2.1"), "FR");
  EXPECT_EQ(CountryOf(*lookup, "192.0.2.255"), "FR");
  EXPECT_EQ(CountryOf(*lookup, "198.51.100.7"), "DE") << "codes come back uppercase";
  EXPECT_EQ(CountryOf(*lookup, "198.51.100.200"), "JP") << "registered_country fallback";
  EXPECT_EQ(CountryOf(*lookup, "2001:db8::1"), "NL");
  EXPECT_EQ(CountryOf(*lookup, "2001:DB8:FFFF::1"), "NL");
  EXPECT_EQ(CountryOf(*lookup, "2001:db8:1::42"), "BR");
  // IPv4 data is reachable through IPv4-mapped IPv6 (a dual-stack socket's
  // view of an IPv4 client).
  EXPECT_EQ(CountryOf(*lookup, "::ffff:192.0.2.9"), "FR");
  auto* maxmind = dynamic_cast<MaxMindCountryLookup*>(lookup.get());
  ASSERT_NE(maxmind, nullptr);
  EXPECT_EQ(maxmind->database_type(), "GeoIP2-Country");
}

TEST_F(CountryLookupTest, AddressesNotInTheDatabaseGiveEmpty) {
  auto lookup = OpenTestDatabase();
  ASSERT_NE(lookup, nullptr);
  for (std::string_view ip : {"192.0.3.1", "8.8.8.8", "127.0.0.1", "0.0.0.0", "203.0.113.5",
                              "2001:db9::1", "::1", "fe80::1"}) {
    EXPECT_EQ(CountryOf(*lookup, ip), "") << ip;
  }
}

TEST_F(CountryLookupTest, MalformedAddressesAreInvalidArguments) {
  auto lookup = OpenTestDatabase();
  ASSERT_NE(lookup, nullptr);
  const std::string long_text(300, '1');
  for (std::string_view ip :
       {std::string_view(""), std::string_view("192.0.2"), std::string_view("192.0.2.256"),
        std::string_view("1.2"), std::string_view("127.1"), std::string_view(" 192.0.2.1"),
        std::string_view("192.0.2.1:8080"), std::string_view("[2001:db8::1]"),
        std::string_view("2001:db8::1%eth0"), std::string_view("2001:db8:::1"),
        std::string_view("example.com"), std::string_view("192.0.2.1\0x", 11),
        std::string_view(long_text)}) {
    auto country = lookup->CountryOf(ip);
    ASSERT_FALSE(country.has_value()) << "accepted " << ip << " as " << *country;
    EXPECT_EQ(country.error().code(), ErrorCode::kInvalidArgument) << country.error().ToString();
    EXPECT_NE(country.error().message().find("not an IPv4 or IPv6 address"), std::string::npos)
        << country.error().ToString();
    EXPECT_LT(country.error().message().size(), 200u) << "the message quotes a bounded prefix";
  }
}

TEST_F(CountryLookupTest, MissingFileIsNotFound) {
  auto lookup = MaxMindCountryLookup::Open(Path("nowhere.mmdb"));
  ASSERT_FALSE(lookup.has_value());
  EXPECT_EQ(lookup.error().code(), ErrorCode::kNotFound) << lookup.error().ToString();
  EXPECT_NE(lookup.error().message().find("nowhere.mmdb"), std::string::npos);
  EXPECT_NE(lookup.error().message().find("does not exist"), std::string::npos);
}

TEST_F(CountryLookupTest, FilesThatAreNotMaxMindDatabasesAreRefused) {
  const auto text = Path("not-a-db.mmdb");
  std::ofstream(text) << std::string(4096, 'x');
  const auto empty = Path("empty.mmdb");
  std::ofstream(empty).close();
  for (const auto& path : {text, empty}) {
    auto lookup = MaxMindCountryLookup::Open(path);
    ASSERT_FALSE(lookup.has_value()) << path;
    EXPECT_EQ(lookup.error().code(), ErrorCode::kCorruptData) << lookup.error().ToString();
    EXPECT_NE(lookup.error().message().find(path.filename().string()), std::string::npos);
    EXPECT_NE(lookup.error().message().find("not a MaxMind DB"), std::string::npos)
        << lookup.error().ToString();
  }
  auto folder = MaxMindCountryLookup::Open(dir_->path());
  ASSERT_FALSE(folder.has_value());
  EXPECT_EQ(folder.error().code(), ErrorCode::kInvalidArgument) << folder.error().ToString();
  EXPECT_NE(folder.error().message().find("is a folder"), std::string::npos);
}

TEST_F(CountryLookupTest, DatabasesWithoutCountryDataAreRefused) {
  auto written = earshot::testing::WriteTestGeoIpDatabase(Path("asn.mmdb"),
                                                          {{"192.0.2.0/24", "FR"}}, "GeoLite2-ASN");
  ASSERT_TRUE(written.has_value()) << written.error().ToString();
  auto lookup = MaxMindCountryLookup::Open(*written);
  ASSERT_FALSE(lookup.has_value());
  EXPECT_EQ(lookup.error().code(), ErrorCode::kUnsupported) << lookup.error().ToString();
  EXPECT_NE(lookup.error().message().find("GeoLite2-ASN"), std::string::npos);
  EXPECT_NE(lookup.error().message().find("no country data"), std::string::npos);
}

TEST_F(CountryLookupTest, CityDatabasesAreAccepted) {
  auto written = earshot::testing::WriteTestGeoIpDatabase(
      Path("city.mmdb"), {{"192.0.2.0/24", "IT"}}, "GeoLite2-City");
  ASSERT_TRUE(written.has_value()) << written.error().ToString();
  auto lookup = MaxMindCountryLookup::Open(*written);
  ASSERT_TRUE(lookup.has_value()) << lookup.error().ToString();
  EXPECT_EQ(CountryOf(**lookup, "192.0.2.77"), "IT");
}

TEST_F(CountryLookupTest, ManyThreadsShareOneLookup) {
  auto lookup = OpenTestDatabase();
  ASSERT_NE(lookup, nullptr);
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string v4 = "192.0.2." + std::to_string(i % 256);
        const std::string v6 = "2001:db8:1::" + std::to_string(i % 1000);
        auto a = lookup->CountryOf(v4);
        auto b = lookup->CountryOf(v6);
        if (!a || *a != "FR" || !b || *b != "BR") ++wrong[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(wrong[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace earshot::geoip
