#include "geoip/country_lookup.h"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace earshot::geoip {
namespace {

// The longest textual IPv6 address with an embedded IPv4 one is 45 chars.
constexpr size_t kMaxAddressChars = 64;

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, kMaxAddressChars)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  if (text.size() > kMaxAddressChars) out += "...";
  return out + "\"";
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool HasCountryData(std::string_view database_type) {
  const std::string type = Lower(database_type);
  for (std::string_view kind : {"country", "city", "enterprise"}) {
    if (type.find(kind) != std::string::npos) return true;
  }
  return false;
}

// The ISO code at `path...` of `entry`: the code, "" when absent.
// kCorruptData when something is stored there but is not a country code.
template <class... Path>
Result<std::string> IsoCode(MMDB_entry_s entry, const std::filesystem::path& file, Path... path) {
  MMDB_entry_data_s data;
  std::memset(&data, 0, sizeof data);
  const int status = MMDB_get_value(&entry, &data, path..., nullptr);
  if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR ||
      status == MMDB_INVALID_LOOKUP_PATH_ERROR) {
    return std::string();
  }
  if (status != MMDB_SUCCESS) {
    return MakeError(ErrorCode::kCorruptData, "GeoIP database " + file.string() +
                                                  ": reading a record: " + MMDB_strerror(status));
  }
  if (!data.has_data) return std::string();
  if (data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2 ||
      !std::isalpha(static_cast<unsigned char>(data.utf8_string[0])) ||
      !std::isalpha(static_cast<unsigned char>(data.utf8_string[1]))) {
    return MakeError(ErrorCode::kCorruptData,
                     "GeoIP database " + file.string() +
                         ": a record's iso_code is not a two-letter country code");
  }
  std::string code(data.utf8_string, 2);
  for (char& c : code) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return code;
}

}  // namespace

struct MaxMindCountryLookup::Handle {
  MMDB_s db;
  bool open = false;

  Handle() { std::memset(&db, 0, sizeof db); }
  ~Handle() {
    if (open) MMDB_close(&db);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

MaxMindCountryLookup::MaxMindCountryLookup(std::unique_ptr<Handle> handle,
                                           std::filesystem::path path, std::string database_type)
    : handle_(std::move(handle)),
      path_(std::move(path)),
      database_type_(std::move(database_type)) {}

MaxMindCountryLookup::~MaxMindCountryLookup() = default;

Result<std::unique_ptr<CountryLookup>> MaxMindCountryLookup::Open(
    const std::filesystem::path& path) {
  const std::string what = "GeoIP database " + path.string();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    return MakeError(ErrorCode::kNotFound,
                     what +
                         " does not exist: download a MaxMind DB country database (e.g. "
                         "GeoLite2-Country.mmdb) or fix the path");
  }
  if (std::filesystem::is_directory(status)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     what + " is a folder: give the path of the .mmdb file");
  }
  if (std::filesystem::is_regular_file(status) && std::filesystem::file_size(path, ec) == 0 &&
      !ec) {
    return MakeError(ErrorCode::kCorruptData,
                     what + " is empty: it is not a MaxMind DB (.mmdb) file");
  }
  auto handle = std::make_unique<Handle>();
  errno = 0;
  const int rc = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &handle->db);
  const int open_errno = errno;
  if (rc != MMDB_SUCCESS) {
    switch (rc) {
      case MMDB_FILE_OPEN_ERROR:
      case MMDB_IO_ERROR:
        return MakeError(ErrorCode::kIoError,
                         what + " cannot be read: " + MMDB_strerror(rc) +
                             (open_errno != 0 ? std::string(" (") + std::strerror(open_errno) + ")"
                                              : std::string()));
      case MMDB_OUT_OF_MEMORY_ERROR:
        return MakeError(ErrorCode::kResourceExhausted, what + ": " + MMDB_strerror(rc));
      default:
        return MakeError(
            ErrorCode::kCorruptData,
            what + " is not a MaxMind DB (.mmdb) file or is damaged: " + MMDB_strerror(rc));
    }
  }
  handle->open = true;
  const char* type = handle->db.metadata.database_type;
  std::string database_type = type ? type : "";
  if (!HasCountryData(database_type)) {
    return MakeError(ErrorCode::kUnsupported,
                     what + " is a \"" + database_type +
                         "\" database, which has no country data: use a country or city "
                         "database (e.g. GeoLite2-Country.mmdb or GeoIP2-City.mmdb)");
  }
  return std::unique_ptr<CountryLookup>(
      new MaxMindCountryLookup(std::move(handle), path, std::move(database_type)));
}

Result<std::string> MaxMindCountryLookup::CountryOf(std::string_view ip) {
  auto invalid = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "country lookup: " + Quote(ip) + " is not an IPv4 or IPv6 address");
  };
  if (ip.empty() || ip.size() > kMaxAddressChars || ip.find('\0') != std::string_view::npos) {
    return invalid();
  }
  const std::string text(ip);
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  const sockaddr* address = nullptr;
  if (inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    address = reinterpret_cast<const sockaddr*>(&v4);  // NOLINT: the sockets API
  } else if (inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    address = reinterpret_cast<const sockaddr*>(&v6);  // NOLINT: the sockets API
  } else {
    return invalid();
  }
  int mmdb_error = MMDB_SUCCESS;
  MMDB_lookup_result_s result = MMDB_lookup_sockaddr(&handle_->db, address, &mmdb_error);
  if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR) return std::string();
  if (mmdb_error != MMDB_SUCCESS) {
    return MakeError(ErrorCode::kCorruptData, "GeoIP database " + path_.string() + ": looking up " +
                                                  text + ": " + MMDB_strerror(mmdb_error));
  }
  if (!result.found_entry) return std::string();
  auto country = IsoCode(result.entry, path_, "country", "iso_code");
  if (!country || !country->empty()) return country;
  return IsoCode(result.entry, path_, "registered_country", "iso_code");
}

}  // namespace earshot::geoip
