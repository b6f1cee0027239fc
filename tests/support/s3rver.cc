#include "support/s3rver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace earshot::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr std::string_view kReadyLine = "s3rver listening on 127.0.0.1:";
constexpr milliseconds kPollInterval{50};
constexpr milliseconds kStopGrace{5000};
constexpr const char* kInstallHint =
    "run scripts/install-test-tools.sh (it installs @20minutes/s3rver with npm into "
    "build-tools/; needs node >= 20 and npm)";

std::optional<fs::path> FindOnPath(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {  // one pass over PATH's entries
    const size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    if (!dir.empty()) {
      fs::path candidate = fs::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

std::string ReadFrom(const fs::path& path, std::streamoff offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(offset);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::streamoff FileSize(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<std::streamoff>(size);
}

// The last `max_lines` lines of `text`.
std::string Tail(std::string_view text, size_t max_lines) {
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  size_t start = text.size();
  for (size_t lines = 0; lines < max_lines; ++lines) {
    const size_t newline = start == 0 ? std::string_view::npos : text.rfind('\n', start - 1);
    if (newline == std::string_view::npos) return std::string(text);
    start = newline;
  }
  return std::string(text.substr(start + 1));
}

bool AcceptsConnections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return ok;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

bool KeepTestDirsRequested() {
  const char* keep = std::getenv("EARSHOT_KEEP_TEST_DIRS");
  return keep != nullptr && std::string_view(keep) == "1";
}

}  // namespace

Result<std::unique_ptr<S3rver>> S3rver::Start(S3rverOptions options) {
  const char* tools_override = std::getenv("EARSHOT_TEST_TOOLS_DIR");
  const fs::path tools_dir = tools_override != nullptr && *tools_override != '\0'
                                 ? fs::path(tools_override)
                                 : fs::path(EARSHOT_SOURCE_DIR) / "build-tools";
  const fs::path package = tools_dir / "node_modules" / "@20minutes" / "s3rver" / "lib" / "s3rver.js";
  if (!fs::exists(package)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "s3rver is not installed (no " + package.string() + "): " + kInstallHint);
  }
  std::optional<fs::path> node = FindOnPath("node");
  if (!node) node = FindOnPath("nodejs");
  if (!node) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     std::string("node is not on PATH; install nodejs (>= 20), then ") + kInstallHint);
  }

  std::string pattern = (fs::temp_directory_path() / "earshot-s3rver-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return MakeError(ErrorCode::kIoError,
                     "mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  std::unique_ptr<S3rver> server(
      new S3rver(std::move(options), *node, tools_dir, fs::path(pattern)));
  std::error_code ec;
  fs::create_directories(server->data_dir(), ec);
  if (ec) {
    return MakeError(ErrorCode::kIoError,
                     "creating " + server->data_dir().string() + ": " + ec.message());
  }
  if (Status launched = server->Launch(0); !launched) return std::unexpected(launched.error());
  return server;
}

S3rver::S3rver(S3rverOptions options, fs::path node, fs::path tools_dir, fs::path work_dir)
    : options_(std::move(options)),
      node_(std::move(node)),
      tools_dir_(std::move(tools_dir)),
      work_dir_(std::move(work_dir)) {}

S3rver::~S3rver() {
  (void)Stop();
  if (!KeepTestDirsRequested()) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
  }
}

Status S3rver::Launch(int port) {
  const fs::path log = work_dir_ / "s3rver.log";
  const std::streamoff log_start = FileSize(log);
  const fs::path launcher = fs::path(EARSHOT_SOURCE_DIR) / "tests" / "support" / "s3rver_launcher.js";

  // Everything the child needs is prepared before fork(): between fork and
  // exec it only makes async-signal-safe calls.
  std::vector<std::string> args = {node_.string(),       launcher.string(),
                                   tools_dir_.string(),  data_dir().string(),
                                   std::to_string(port), options_.bucket};
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (!std::string_view(*entry).starts_with("S3RVER_TEST_")) env.emplace_back(*entry);
  }
  env.push_back("S3RVER_TEST_ACCESS_KEY=" + options_.access_key);
  env.push_back("S3RVER_TEST_SECRET_KEY=" + options_.secret_key);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return MakeError(ErrorCode::kIoError, "opening " + log.string() + ": " + std::strerror(errno));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) {
    return MakeError(ErrorCode::kInternal, std::string("fork: ") + std::strerror(fork_errno));
  }
  pid_ = pid;

  // Bounded wait: the ready line in the log, then a TCP connect that succeeds.
  const auto deadline = steady_clock::now() + options_.start_timeout;
  while (true) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return MakeError(ErrorCode::kUnavailable,
                       "s3rver exited while starting (" + DescribeWaitStatus(status) +
                           "); its log:\n" + Tail(ReadFrom(log, log_start), 30));
    }
    const std::string text = ReadFrom(log, log_start);
    if (const size_t at = text.find(kReadyLine); at != std::string::npos) {
      const size_t digits = at + kReadyLine.size();
      const size_t newline = text.find('\n', digits);
      if (newline != std::string::npos) {
        const int listening = std::atoi(text.substr(digits, newline - digits).c_str());
        if (listening > 0 && listening < 65536 && AcceptsConnections(listening)) {
          port_ = listening;
          return Ok();
        }
      }
    }
    if (steady_clock::now() >= deadline) {
      (void)Stop();
      return MakeError(ErrorCode::kUnavailable,
                       "s3rver did not answer on 127.0.0.1 within " +
                           std::to_string(options_.start_timeout.count()) + " ms; its log:\n" +
                           Tail(ReadFrom(log, log_start), 30));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

Status S3rver::Stop() {
  if (pid_ <= 0) return Ok();
  ::kill(pid_, SIGTERM);
  const auto deadline = steady_clock::now() + kStopGrace;
  while (true) {
    int status = 0;
    const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_ || (reaped < 0 && errno != EINTR)) break;
    if (steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);  // cannot be caught: the blocking wait below returns promptly
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  pid_ = -1;
  return Ok();
}

Status S3rver::Restart() {
  if (running()) {
    return MakeError(ErrorCode::kFailedPrecondition, "s3rver: Restart() while it is running");
  }
  return Launch(port_);
}

std::string S3rver::LogTail(std::size_t max_lines) const {
  return Tail(ReadFrom(work_dir_ / "s3rver.log", 0), max_lines);
}

}  // namespace earshot::testing
