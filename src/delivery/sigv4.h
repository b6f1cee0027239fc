// AWS Signature Version 4 (SigV4) request signing, as S3 and S3-compatible
// stores (MinIO, Ceph RGW, s3rver) verify it. A pure function of its inputs:
// no clock, no environment, no network, no logging. The caller supplies the
// timestamp, the credentials and every header it will send.
//
// The algorithm (AWS "Create a signed AWS API request"):
//   canonical request = METHOD \n canonical URI \n canonical query \n
//                       canonical headers \n signed headers \n payload hash
//   string to sign    = "AWS4-HMAC-SHA256" \n YYYYMMDD'T'HHMMSS'Z' \n
//                       YYYYMMDD/region/service/aws4_request \n hex(SHA-256(canonical request))
//   signing key       = HMAC("AWS4"+secret, date) -> region -> service -> "aws4_request"
//   signature         = hex(HMAC(signing key, string to sign))
//
// Path handling follows S3: each path segment is URI-encoded exactly once and
// the path is NOT normalised ("." and ".." and "//" are kept as given). Other
// AWS services double-encode and normalise; earshot only talks to S3.
//
// Thread safety: every function here is reentrant and may be called from any
// number of threads at once (OpenSSL 3 digests and MACs are thread-safe).
// Secrets: no function here keeps, logs or returns the secret access key; the
// Authorization value carries only the access key id, scope and signature.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "delivery/http_client.h"

namespace earshot::delivery {

// One query parameter, NOT URI-encoded ("prefix", "a b/c"). A parameter
// without a value ("?acl") has value "".
struct QueryParam {
  std::string name;
  std::string value;
};

struct SigV4Credentials {
  std::string access_key_id;      // e.g. "AKIDEXAMPLE"; appears in the Authorization value
  std::string secret_access_key;  // never appears in any output
};

struct SigV4Request {
  std::string method;             // "GET", "PUT", ... (upper case, sent as is)
  std::string path;               // absolute and NOT URI-encoded: "/bucket/st-1/match 1.json"
  std::vector<QueryParam> query;  // any order; sorted by the signer
  // Every header to sign, names in any case, values as they will be sent.
  // Must include "host" and "x-amz-date" (= FormatAmzDate(time)); S3 also
  // requires "x-amz-content-sha256" (= payload_sha256_hex). A name given twice
  // is signed as "name:v1,v2" in the order given. Values are trimmed and runs
  // of spaces collapsed for signing only.
  // REQUIRES: no CR or LF in names or values.
  std::vector<HttpHeader> headers;
  std::string payload_sha256_hex;  // lower-case hex SHA-256 of the body (Sha256Hex(body)),
                                   // or "UNSIGNED-PAYLOAD"
  std::chrono::sys_seconds time;   // request time, UTC, whole seconds
  std::string region;              // e.g. "us-east-1"
  std::string service;             // "s3" for S3
};

// Everything a signature is made of, so tests and error reports can show
// each intermediate step (none of them contains the secret).
struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string credential_scope;  // "20150830/us-east-1/service/aws4_request"
  std::string signed_headers;    // "host;x-amz-date" (lower case, sorted, ';'-joined)
  std::string signature;         // 64 lower-case hex digits
  std::string authorization;     // value of the Authorization header:
  // "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=..., Signature=..."
};

// Signs `request`. kInvalidArgument when a header name or value contains CR
// or LF, or when "host" is missing; kInternal when OpenSSL fails (it does
// not, short of running out of memory).
Result<SigV4Signature> SignV4(const SigV4Request& request, const SigV4Credentials& credentials);

// "20150830T123600Z": the ISO 8601 basic form SigV4 uses in x-amz-date.
std::string FormatAmzDate(std::chrono::sys_seconds time);

// RFC 3986 percent-encoding as SigV4 defines it: A-Z a-z 0-9 - . _ ~ are
// kept, every other byte becomes %XX (upper-case hex); '/' is kept unless
// `encode_slash`. Used for path segments (encode_slash = false on a whole
// path) and for query names and values (encode_slash = true).
std::string UriEncode(std::string_view text, bool encode_slash);

// Lower-case hex of `bytes`.
std::string HexEncode(std::string_view bytes);

// SHA-256 of `data` as 64 lower-case hex digits. kInternal if OpenSSL fails.
Result<std::string> Sha256Hex(std::string_view data);

// HMAC-SHA256(key, data) as 32 raw bytes. kInternal if OpenSSL fails.
Result<std::string> HmacSha256(std::string_view key, std::string_view data);

// The SigV4 signing key for one day, region and service (32 raw bytes):
// HMAC chain "AWS4"+secret -> date "YYYYMMDD" -> region -> service -> "aws4_request".
Result<std::string> SigV4SigningKey(std::string_view secret_access_key, std::string_view date,
                                    std::string_view region, std::string_view service);

}  // namespace earshot::delivery
