#include "support/http_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <system_error>

namespace earshot::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = std::size_t{64} << 20;
constexpr milliseconds kConnectionBudget(10000);
constexpr milliseconds kMaxDelay(60000);
constexpr milliseconds kPollSlice(250);

std::string ErrnoText(int error) { return std::system_category().message(error); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 413:
      return "Content Too Large";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

std::string FormatReply(const HttpReply& reply, bool head) {
  std::string out =
      "HTTP/1.1 " + std::to_string(reply.status) + " " + ReasonPhrase(reply.status) + "\r\n";
  for (const auto& [name, value] : reply.headers) out += name + ": " + value + "\r\n";
  out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head) out += reply.body;
  return out;
}

}  // namespace

std::string RecordedRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return {};
}

bool RecordedRequest::HasHeader(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return EqualsIgnoreCase(h.first, name); });
}

std::vector<HttpReply> HttpListener::StatusScript(std::initializer_list<int> statuses) {
  std::vector<HttpReply> script;
  for (int status : statuses) {
    HttpReply reply;
    reply.status = status;
    reply.body = "status " + std::to_string(status);
    reply.headers.emplace_back("Content-Type", "text/plain");
    script.push_back(std::move(reply));
  }
  return script;
}

Result<std::unique_ptr<HttpListener>> HttpListener::Start(std::vector<HttpReply> script) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return MakeError(ErrorCode::kIoError, "HttpListener: socket: " + ErrnoText(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int error = errno;
    ::close(fd);
    return MakeError(ErrorCode::kIoError,
                     "HttpListener: bind/listen on 127.0.0.1: " + ErrnoText(error));
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    int error = errno;
    ::close(fd);
    return MakeError(ErrorCode::kIoError, "HttpListener: pipe2: " + ErrnoText(error));
  }
  std::unique_ptr<HttpListener> listener(
      new HttpListener(fd, pipe_fds[0], pipe_fds[1], ntohs(addr.sin_port), std::move(script)));
  listener->thread_ = std::thread([raw = listener.get()] { raw->Run(); });
  return listener;
}

HttpListener::HttpListener(int listen_fd, int wake_read_fd, int wake_write_fd, uint16_t port,
                           std::vector<HttpReply> script)
    : listen_fd_(listen_fd),
      wake_read_fd_(wake_read_fd),
      wake_write_fd_(wake_write_fd),
      port_(port),
      script_(std::move(script)) {}

HttpListener::~HttpListener() {
  Stop();
  ::close(wake_read_fd_);
  ::close(wake_write_fd_);
}

std::string HttpListener::Url(std::string_view path) const {
  std::string p(path);
  if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
  return "http://127.0.0.1:" + std::to_string(port_) + p;
}

void HttpListener::SetScript(std::vector<HttpReply> script) {
  std::lock_guard lock(mu_);
  script_ = std::move(script);
  script_pos_ = 0;
}

void HttpListener::SetHandler(Handler handler) {
  std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

bool HttpListener::WaitForRequests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n || stopping_; }) &&
         requests_.size() >= n;
}

std::vector<RecordedRequest> HttpListener::Requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::size_t HttpListener::request_count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

void HttpListener::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  char byte = 1;
  ssize_t ignored = ::write(wake_write_fd_, &byte, 1);  // the pipe stays readable: every wait ends
  static_cast<void>(ignored);
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
}

HttpReply HttpListener::NextReply() {
  std::lock_guard lock(mu_);
  if (script_.empty()) {
    HttpReply ok;
    ok.body = "ok";
    return ok;
  }
  HttpReply reply = script_[std::min(script_pos_, script_.size() - 1)];
  ++script_pos_;
  return reply;
}

bool HttpListener::WaitFd(int fd, short events, Clock::time_point deadline) const {
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left <= milliseconds(0)) return false;
    pollfd fds[2] = {{fd, events, 0}, {wake_read_fd_, POLLIN, 0}};
    int r = ::poll(fds, 2, static_cast<int>(std::min(left, kPollSlice).count()));
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) continue;
    if (fds[1].revents != 0) return false;  // Stop()
    if (fds[0].revents != 0) return true;   // ready, or an error/hang-up the next call reports
  }
}

bool HttpListener::SendAll(int fd, std::string_view data, Clock::time_point deadline) const {
  while (!data.empty()) {
    if (!WaitFd(fd, POLLOUT, deadline)) return false;
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void HttpListener::Run() {
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
    int r = ::poll(fds, 2, static_cast<int>(kPollSlice.count()));
    if (r < 0 && errno != EINTR) return;
    if (r <= 0 || fds[1].revents != 0) continue;  // the loop head sees stopping_
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0) continue;
    Serve(client);
    ::close(client);
  }
}

void HttpListener::Serve(int fd) {
  const auto deadline = Clock::now() + kConnectionBudget;
  std::string buf;
  // Reads more bytes into buf; false on EOF, error, deadline or Stop().
  auto read_some = [&]() {
    while (true) {
      if (!WaitFd(fd, POLLIN, deadline)) return false;
      char chunk[16384];
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n > 0) {
        buf.append(chunk, static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    }
  };
  auto reject = [&](int status, std::string why) {
    HttpReply reply;
    reply.status = status;
    reply.body = std::move(why);
    SendAll(fd, FormatReply(reply, false), deadline);
  };

  std::size_t header_end;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > kMaxHeaderBytes) return reject(431, "header block over 64 KiB");
    if (!read_some()) return;
  }
  if (header_end > kMaxHeaderBytes) return reject(431, "header block over 64 KiB");

  RecordedRequest request;
  std::string_view head(buf.data(), header_end);
  std::size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  std::size_t sp1 = request_line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1) {
    return reject(400, "malformed request line");
  }
  request.method = std::string(request_line.substr(0, sp1));
  request.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  request.version = std::string(request_line.substr(sp2 + 1));
  if (!request.version.starts_with("HTTP/1.")) return reject(400, "not HTTP/1.x");
  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    std::size_t end = rest.find("\r\n");
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line.front() == ' ' ||
        line.front() == '\t') {
      return reject(400, "malformed header line");
    }
    request.headers.emplace_back(std::string(line.substr(0, colon)),
                                 std::string(TrimOws(line.substr(colon + 1))));
  }

  std::size_t pos = header_end + 4;
  const bool chunked = ContainsIgnoreCase(request.Header("Transfer-Encoding"), "chunked");
  const std::string length_text = request.Header("Content-Length");
  std::size_t length = 0;
  if (!chunked && !length_text.empty()) {
    auto [ptr, ec] =
        std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
    if (ec != std::errc() || ptr != length_text.data() + length_text.size()) {
      return reject(400, "bad Content-Length");
    }
    if (length > kMaxBodyBytes) return reject(413, "body over 64 MiB");
  }
  const bool has_body = chunked || length > 0;
  if (has_body && buf.size() == pos && EqualsIgnoreCase(request.Header("Expect"), "100-continue")) {
    if (!SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n", deadline)) return;
  }

  if (chunked) {
    auto read_line = [&](std::string& line) {
      std::size_t end;
      while ((end = buf.find("\r\n", pos)) == std::string::npos) {
        if (buf.size() - pos > 4096 || !read_some()) return false;
      }
      line = buf.substr(pos, end - pos);
      pos = end + 2;
      return true;
    };
    while (true) {
      std::string size_line;
      if (!read_line(size_line)) return reject(400, "truncated chunk size");
      std::string_view hex = TrimOws(std::string_view(size_line).substr(0, size_line.find(';')));
      std::size_t size = 0;
      auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
      if (hex.empty() || ec != std::errc() || ptr != hex.data() + hex.size()) {
        return reject(400, "bad chunk size");
      }
      if (size == 0) {
        std::string trailer;
        do {
          if (!read_line(trailer)) return reject(400, "truncated trailer");
        } while (!trailer.empty());
        break;
      }
      if (size > kMaxBodyBytes || request.body.size() + size > kMaxBodyBytes) {
        return reject(413, "body over 64 MiB");
      }
      while (buf.size() - pos < size + 2) {
        if (!read_some()) return reject(400, "truncated chunk");
      }
      if (buf.compare(pos + size, 2, "\r\n") != 0) return reject(400, "chunk not followed by CRLF");
      request.body.append(buf, pos, size);
      pos += size + 2;
    }
  } else if (length > 0) {
    while (buf.size() - pos < length) {
      if (!read_some()) return;  // the client gave up; nothing to record
    }
    request.body = buf.substr(pos, length);
  }

  const bool head_request = request.method == "HEAD";
  Handler handler;
  {
    std::lock_guard lock(mu_);
    handler = handler_;
    requests_.push_back(request);
  }
  cv_.notify_all();

  HttpReply reply = handler ? handler(request) : NextReply();
  if (reply.delay > milliseconds(0)) {
    pollfd wake{wake_read_fd_, POLLIN, 0};
    ::poll(&wake, 1, static_cast<int>(std::min(reply.delay, kMaxDelay).count()));
  }
  SendAll(fd, FormatReply(reply, head_request), deadline + std::min(reply.delay, kMaxDelay));
}

}  // namespace earshot::testing
