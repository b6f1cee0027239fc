// The country of a viewer's IP address, for the country restrictions of
// playback (control::RestrictionPolicy::allowed_countries).
//
// CountryLookup is the interface the playback service uses; the MaxMind DB
// adapter below is the only place in earshot that calls libmaxminddb.
//
// Thread safety: implementations are safe to call from many threads at once.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace earshot::geoip {

class CountryLookup {
 public:
  virtual ~CountryLookup() = default;

  // The ISO 3166-1 alpha-2 code of the country of `ip` (an IPv4 address in
  // dotted-quad form or an IPv6 address, no port, no brackets, no zone), in
  // uppercase ("FR"); "" when the address is not in the database or its
  // record names no country. kInvalidArgument for anything that is not an
  // IP address (the message quotes at most 64 characters of it).
  virtual Result<std::string> CountryOf(std::string_view ip) = 0;
};

// A MaxMind DB file (GeoIP2/GeoLite2 Country or City, DB-IP's country and city
// databases in MMDB form, ...), memory-mapped for the object's lifetime. The
// country is the record's country.iso_code, else registered_country.iso_code
// (the country the network is registered in: anycast, satellite and some
// mobile networks have no other). An IPv6 lookup in an IPv4-only database
// gives "".
//
// Thread safety: Open once, then call CountryOf from any number of threads:
// libmaxminddb's lookups only read the opened (memory-mapped) database, and
// this class keeps no other state. The file may be replaced on disk while it
// is open (the mapping keeps the old one); open a new lookup to see the new
// file.
class MaxMindCountryLookup final : public CountryLookup {
 public:
  // Opens the database at `path`. Errors name the file and say what to do:
  // kNotFound when it does not exist; kIoError when it cannot be read;
  // kCorruptData when it is not a MaxMind DB (or is damaged); kUnsupported
  // when it is a MaxMind DB without country data (an ASN, ISP, domain or
  // connection-type database): its database_type must contain "Country",
  // "City" or "Enterprise".
  static Result<std::unique_ptr<CountryLookup>> Open(const std::filesystem::path& path);

  ~MaxMindCountryLookup() override;  // closes the database
  MaxMindCountryLookup(const MaxMindCountryLookup&) = delete;
  MaxMindCountryLookup& operator=(const MaxMindCountryLookup&) = delete;

  Result<std::string> CountryOf(std::string_view ip) override;

  // The metadata's database_type, e.g. "GeoLite2-Country".
  const std::string& database_type() const { return database_type_; }

 private:
  struct Handle;  // owns the MMDB_s (libmaxminddb stays out of this header)
  MaxMindCountryLookup(std::unique_ptr<Handle> handle, std::filesystem::path path,
                       std::string database_type);

  std::unique_ptr<Handle> handle_;
  const std::filesystem::path path_;
  const std::string database_type_;
};

}  // namespace earshot::geoip
