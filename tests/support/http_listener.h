// A real HTTP/1.1 server on 127.0.0.1 for tests: "the webhook receiver".
//
// One thread, POSIX sockets, one connection at a time. Each request is
// recorded (method, target, headers, body; Content-Length and chunked bodies,
// Expect: 100-continue honoured) and answered from a script: reply i answers
// request i, and the last reply repeats once the script runs out ("500, 500,
// then 200" is StatusScript({500, 500, 200})). Instead of a script, a handler
// may compute each answer from the request (SetHandler: "302 for
// /on_publish, 200 for the rest"). Every answer carries "Connection: close".
//
//   auto hook = testing::HttpListener::Start(testing::HttpListener::StatusScript({500, 200}));
//   ASSERT_TRUE(hook) << hook.error().ToString();
//   ... POST to (*hook)->Url("/hook") ...
//   ASSERT_TRUE((*hook)->WaitForRequests(2, std::chrono::seconds(10)));
//   auto requests = (*hook)->Requests();
//
// Bounds: headers at most 64 KiB, bodies at most 64 MiB, each connection at
// most 10 s from accept to answer (plus a scripted delay); a request over a
// bound is answered 400/413 and not recorded. Stop() (or the destructor)
// interrupts any wait, including a scripted delay, and joins the thread.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.h"

namespace earshot::testing {

struct RecordedRequest {
  std::string method;                                        // "POST"
  std::string target;                                        // "/hook?x=1", as sent
  std::string version;                                       // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order
  std::string body;  // decoded (chunked transfer coding removed)

  // The first header called `name` (case-insensitive), or "".
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

struct HttpReply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Length, Connection
  // Waited before answering (after the request is recorded): lets a test see
  // a client time out. Cut short by Stop().
  std::chrono::milliseconds delay{0};
};

class HttpListener {
 public:
  // Listens on 127.0.0.1 on a port the kernel picks. An empty script answers
  // every request 200 with body "ok".
  static Result<std::unique_ptr<HttpListener>> Start(std::vector<HttpReply> script = {});

  // Replies with these statuses and a short body ("status 500").
  static std::vector<HttpReply> StatusScript(std::initializer_list<int> statuses);

  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;
  ~HttpListener();

  uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT" + path.
  std::string Url(std::string_view path = "/") const;

  // Replaces the script; the next request gets its first reply.
  void SetScript(std::vector<HttpReply> script);

  // Answers each later request with handler(request) instead of the script
  // (an empty handler goes back to the script). The handler runs on the
  // listener's thread, after the request is recorded and without the
  // listener's lock held; it must not call Stop() and should return quickly.
  using Handler = std::function<HttpReply(const RecordedRequest&)>;
  void SetHandler(Handler handler);

  // True once at least `n` requests have been recorded; false if `timeout`
  // passes (or the listener stops) first.
  bool WaitForRequests(std::size_t n, std::chrono::milliseconds timeout) const;
  std::vector<RecordedRequest> Requests() const;
  std::size_t request_count() const;

  // Stops listening and joins the thread; idempotent. Later connections are
  // refused.
  void Stop();

 private:
  HttpListener(int listen_fd, int wake_read_fd, int wake_write_fd, uint16_t port,
               std::vector<HttpReply> script);
  void Run();
  void Serve(int fd);
  // Waits until `fd` is ready for `events` or `deadline`/Stop(); true if ready.
  bool WaitFd(int fd, short events, std::chrono::steady_clock::time_point deadline) const;
  bool SendAll(int fd, std::string_view data, std::chrono::steady_clock::time_point deadline) const;
  HttpReply NextReply();

  const int listen_fd_;
  const int wake_read_fd_;
  const int wake_write_fd_;
  const uint16_t port_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;                  // guarded by mu_
  std::vector<HttpReply> script_;          // guarded by mu_
  std::size_t script_pos_ = 0;             // guarded by mu_
  Handler handler_;                        // guarded by mu_
  std::vector<RecordedRequest> requests_;  // guarded by mu_

  std::mutex stop_mu_;  // serialises Stop()
  std::thread thread_;
};

}  // namespace earshot::testing
