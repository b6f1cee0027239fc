#include "support/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <system_error>
#include <thread>

namespace earshot::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string ErrnoText(int error) { return std::system_category().message(error); }

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

int MillisLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

// Waits for `events` on `fd` until the deadline; false on timeout or error.
bool PollFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, MillisLeft(deadline));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) return false;
  }
}

// A connected non-blocking socket to 127.0.0.1:port, or an error.
Result<int> Connect(uint16_t port, Clock::time_point deadline) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return MakeError(ErrorCode::kResourceExhausted, "socket: " + ErrnoText(errno));
  const sockaddr_in address = Loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
    return fd;
  }
  if (errno != EINPROGRESS) {
    const int error = errno;
    ::close(fd);
    return MakeError(ErrorCode::kUnavailable,
                     "connect 127.0.0.1:" + std::to_string(port) + ": " + ErrnoText(error));
  }
  if (!PollFor(fd, POLLOUT, deadline)) {
    ::close(fd);
    return MakeError(ErrorCode::kUnavailable,
                     "connect 127.0.0.1:" + std::to_string(port) + ": timed out");
  }
  int error = 0;
  socklen_t length = sizeof(error);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) {
    ::close(fd);
    return MakeError(ErrorCode::kUnavailable,
                     "connect 127.0.0.1:" + std::to_string(port) + ": " + ErrnoText(error));
  }
  return fd;
}

}  // namespace

Result<uint16_t> FreePort() {
  Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (socket.get() < 0) {
    return MakeError(ErrorCode::kResourceExhausted, "socket: " + ErrnoText(errno));
  }
  sockaddr_in address = Loopback(0);
  if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return MakeError(ErrorCode::kUnavailable, "bind 127.0.0.1:0: " + ErrnoText(errno));
  }
  socklen_t length = sizeof(address);
  if (::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return MakeError(ErrorCode::kIoError, "getsockname: " + ErrnoText(errno));
  }
  return ntohs(address.sin_port);
}

bool WaitForTcpPort(uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (auto fd = Connect(port, deadline)) {
      ::close(*fd);
      return true;
    }
    const auto now = Clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(milliseconds(20), deadline - now));
  }
}

Result<HttpResponse> HttpGet(
    uint16_t port, std::string_view target, std::chrono::milliseconds timeout,
    const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  const auto deadline = Clock::now() + timeout;
  const std::string what = "GET http://127.0.0.1:" + std::to_string(port) + std::string(target);
  auto connected = Connect(port, deadline);
  if (!connected) return std::unexpected(connected.error().Wrap(what));
  Socket socket(*connected);

  std::string request = "GET " + std::string(target) +
                        " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n";
  for (const auto& [name, value] : extra_headers) request += name + ": " + value + "\r\n";
  request += "\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    if (!PollFor(socket.get(), POLLOUT, deadline)) {
      return MakeError(ErrorCode::kUnavailable, what + ": timed out sending");
    }
    const ssize_t wrote =
        ::send(socket.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (wrote < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return MakeError(ErrorCode::kUnavailable, what + ": send: " + ErrnoText(errno));
    }
    sent += static_cast<std::size_t>(wrote);
  }

  std::string raw;
  char buffer[16384];
  while (true) {
    if (!PollFor(socket.get(), POLLIN, deadline)) {
      return MakeError(ErrorCode::kUnavailable, what + ": timed out reading the answer");
    }
    const ssize_t got = ::recv(socket.get(), buffer, sizeof(buffer), 0);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return MakeError(ErrorCode::kUnavailable, what + ": recv: " + ErrnoText(errno));
    }
    raw.append(buffer, static_cast<std::size_t>(got));
  }

  const std::size_t header_end = raw.find("\r\n\r\n");
  const std::size_t line_end = raw.find("\r\n");
  if (header_end == std::string::npos || !raw.starts_with("HTTP/1.")) {
    return MakeError(ErrorCode::kCorruptData, what + ": not an HTTP answer: " + raw.substr(0, 200));
  }
  HttpResponse response;
  const std::size_t space = raw.find(' ');
  if (space == std::string::npos || space > line_end) {
    return MakeError(ErrorCode::kCorruptData, what + ": bad status line");
  }
  const char* first = raw.data() + space + 1;
  const auto [end, error] = std::from_chars(first, raw.data() + line_end, response.status);
  if (error != std::errc() || end == first) {
    return MakeError(ErrorCode::kCorruptData, what + ": bad status line");
  }
  response.headers = raw.substr(line_end + 2, header_end + 2 - (line_end + 2));
  response.body = raw.substr(header_end + 4);
  return response;
}

}  // namespace earshot::testing
