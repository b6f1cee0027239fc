// A small blocking HTTP client over libcurl: the one place earshot speaks
// HTTP as a client (S3 PUTs, webhooks). No libcurl type appears here.
//
// Thread safety: Send() is reentrant (each call uses its own curl handle);
// call InitHttpClient() once before starting threads (main does it; Send
// does it lazily otherwise, which is safe only while single-threaded).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace earshot::delivery {

struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method = "GET";  // "GET", "PUT", "POST", "HEAD", "DELETE"
  std::string url;
  std::vector<HttpHeader> headers;  // sent as given; no Expect: 100-continue is ever sent
  std::string body;
  int connect_timeout_ms = 5000;
  int timeout_ms = 30000;      // whole request, connect included
};

struct HttpResponse {
  long status = 0;             // HTTP status code
  std::vector<HttpHeader> headers;  // names lower-cased, in arrival order
  std::string body;

  // First header with this (lower-case) name, or "".
  std::string Header(std::string_view lower_name) const;
};

// Performs one request. Any HTTP status is a successful Result (the caller
// decides what a 500 means); errors are transport failures:
//   kUnavailable       connection refused/reset, DNS failure, timeout
//   kInvalidArgument   malformed URL, unsupported scheme
//   kInternal          libcurl could not be set up
// Messages name the URL without its query string or user info.
Result<HttpResponse> SendHttp(const HttpRequest& request);

// Global libcurl initialisation; idempotent.
void InitHttpClient();

// `url` without user info, query string or fragment (safe to log).
std::string RedactUrl(const std::string& url);

}  // namespace earshot::delivery
