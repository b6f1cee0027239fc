#include "delivery/sigv4.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

namespace earshot::delivery {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string ToLower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Trims leading/trailing blanks and collapses each run of blanks into one space.
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

bool HasLineBreak(std::string_view text) { return text.find_first_of("\r\n") != std::string_view::npos; }

std::string CanonicalQuery(const std::vector<QueryParam>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const QueryParam& p : query) encoded.emplace_back(UriEncode(p.name, true), UriEncode(p.value, true));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view text, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0F]);
    }
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0x0F]);
  }
  return out;
}

Result<std::string> Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1 ||
      length != 32) {
    return MakeError(ErrorCode::kInternal, "OpenSSL could not compute a SHA-256 digest");
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

Result<std::string> HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t length = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, sizeof(mac),
                &length) == nullptr ||
      length != 32) {
    return MakeError(ErrorCode::kInternal, "OpenSSL could not compute an HMAC-SHA256");
  }
  return std::string(reinterpret_cast<const char*>(mac), length);
}

Result<std::string> SigV4SigningKey(std::string_view secret_access_key, std::string_view date,
                                    std::string_view region, std::string_view service) {
  std::string key = "AWS4";
  key += secret_access_key;
  for (std::string_view part : {date, region, service, std::string_view("aws4_request")}) {
    Result<std::string> next = HmacSha256(key, part);
    if (!next) return next;
    key = std::move(*next);
  }
  return key;
}

std::string FormatAmzDate(std::chrono::sys_seconds time) {
  const auto day = std::chrono::floor<std::chrono::days>(time);
  const std::chrono::year_month_day ymd(day);
  const std::chrono::hh_mm_ss<std::chrono::seconds> hms(time - day);
  std::string out;
  out.reserve(16);
  auto put = [&out](long long value, int width) {
    std::string digits = std::to_string(value < 0 ? -value : value);
    if (value < 0) out.push_back('-');
    if (static_cast<int>(digits.size()) < width) out.append(width - digits.size(), '0');
    out += digits;
  };
  put(static_cast<int>(ymd.year()), 4);
  put(static_cast<unsigned>(ymd.month()), 2);
  put(static_cast<unsigned>(ymd.day()), 2);
  out.push_back('T');
  put(hms.hours().count(), 2);
  put(hms.minutes().count(), 2);
  put(hms.seconds().count(), 2);
  out.push_back('Z');
  return out;
}

Result<SigV4Signature> SignV4(const SigV4Request& request, const SigV4Credentials& credentials) {
  // Canonical headers: lower-case names, sorted; values of a repeated name
  // joined with ',' in the order given.
  std::map<std::string, std::string> headers;
  for (const HttpHeader& h : request.headers) {
    if (HasLineBreak(h.name) || HasLineBreak(h.value)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "SigV4: header '" + h.name + "' contains a line break");
    }
    std::string name = ToLower(CanonicalHeaderValue(h.name));
    std::string value = CanonicalHeaderValue(h.value);
    auto [it, inserted] = headers.try_emplace(std::move(name), value);
    if (!inserted) it->second += "," + value;
  }
  if (!headers.contains("host")) {
    return MakeError(ErrorCode::kInvalidArgument, "SigV4: the request has no host header to sign");
  }

  SigV4Signature out;
  std::string canonical_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    if (!out.signed_headers.empty()) out.signed_headers += ';';
    out.signed_headers += name;
  }
  std::string canonical_uri = request.path.empty() ? "/" : UriEncode(request.path, false);

  out.canonical_request = request.method + "\n" + canonical_uri + "\n" +
                          CanonicalQuery(request.query) + "\n" + canonical_headers + "\n" +
                          out.signed_headers + "\n" + request.payload_sha256_hex;

  const std::string amz_date = FormatAmzDate(request.time);
  const std::string date = amz_date.substr(0, 8);
  out.credential_scope = date + "/" + request.region + "/" + request.service + "/aws4_request";
  Result<std::string> request_hash = Sha256Hex(out.canonical_request);
  if (!request_hash) return std::unexpected(request_hash.error());
  out.string_to_sign = std::string(kAlgorithm) + "\n" + amz_date + "\n" + out.credential_scope +
                       "\n" + *request_hash;

  Result<std::string> key =
      SigV4SigningKey(credentials.secret_access_key, date, request.region, request.service);
  if (!key) return std::unexpected(key.error());
  Result<std::string> mac = HmacSha256(*key, out.string_to_sign);
  if (!mac) return std::unexpected(mac.error());
  out.signature = HexEncode(*mac);
  out.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                      out.credential_scope + ", SignedHeaders=" + out.signed_headers +
                      ", Signature=" + out.signature;
  return out;
}

}  // namespace earshot::delivery
