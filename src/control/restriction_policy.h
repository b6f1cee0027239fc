// A channel's playback restriction policy, as in Amazon IVS: which countries
// and which web origins may play it. Only the data and its validation live
// here; enforcing it (the HLS authorisation hook) comes later.
//
// JSON (IVS names):
//   {"allowedCountries": ["FR", "BE"],
//    "allowedOrigins": ["https://example.com", "https://*.example.com:8443"],
//    "enableStrictOriginEnforcement": false}
// An empty list allows everything. Countries are ISO 3166-1 alpha-2 codes in
// uppercase (the format is checked, not membership of the ISO list). Origins
// are "*" or scheme://host[:port] as browsers send them in the Origin header:
// lowercase, no path, no trailing '/'. The leftmost host label may be "*"
// ("https://*.example.com" allows every subdomain; "https://*" every https
// origin); IPv6 hosts are bracketed ("http://[::1]:8080").
//
// Thread safety: plain value types and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace earshot::control {

inline constexpr size_t kMaxAllowedCountries = 300;
inline constexpr size_t kMaxAllowedOrigins = 100;
inline constexpr size_t kMaxOriginLength = 300;

struct RestrictionPolicy {
  std::vector<std::string> allowed_countries;  // empty: every country
  std::vector<std::string> allowed_origins;    // empty: every origin
  // Check the Origin of every playlist and segment request, not only the
  // first playlist request.
  bool strict_origin_enforcement = false;

  friend bool operator==(const RestrictionPolicy&, const RestrictionPolicy&) = default;
};

// Two uppercase ASCII letters.
bool IsCountryCode(std::string_view code);

// "*" or scheme://host[:port] as described above.
bool IsOriginPattern(std::string_view origin);

// kInvalidArgument naming the first bad entry ("allowedOrigins[1]
// \"https://example.com/\": ...") or a list over its limit.
Status ValidateRestrictionPolicy(const RestrictionPolicy& policy);

// The IVS-named JSON object (all three members, always).
nlohmann::json RestrictionPolicyToJson(const RestrictionPolicy& policy);

// Parses and validates. Null is the empty policy; members may be omitted
// (defaults above). kInvalidArgument for a non-object, an unknown member (a
// typo must not silently allow everyone), a member of the wrong type, or a
// policy ValidateRestrictionPolicy refuses.
Result<RestrictionPolicy> RestrictionPolicyFromJson(const nlohmann::json& json);

}  // namespace earshot::control
