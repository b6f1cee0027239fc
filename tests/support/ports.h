// Loopback networking for tests: a free port, waiting for a server to accept,
// and a minimal HTTP/1.0 GET (enough to poll nginx's playlists, /stat and
// /control). Everything is on 127.0.0.1 and every call is bounded.
//
// Thread safety: the functions are independent and may be called from any
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace earshot::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it).
// Another process may take it before the caller binds it, so servers started
// on it should be retried on "address in use".
Result<uint16_t> FreePort();

// True once something accepts a TCP connection on 127.0.0.1:port, false when
// `timeout` passes first.
bool WaitForTcpPort(uint16_t port, std::chrono::milliseconds timeout);

struct HttpResponse {
  int status = 0;       // e.g. 200
  std::string headers;  // the raw header block, status line excluded
  std::string body;
};

// GET http://127.0.0.1:port<target> over HTTP/1.0 (no keep-alive, no
// chunking), each `extra_headers` entry sent as "Name: value". The whole
// exchange takes at most `timeout`. Fails with kUnavailable when the port
// refuses or the deadline passes, kCorruptData when the answer is not HTTP.
Result<HttpResponse> HttpGet(
    uint16_t port, std::string_view target, std::chrono::milliseconds timeout,
    const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

}  // namespace earshot::testing
