#include "support/process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>

namespace earshot::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kMaxCapturedBytes = std::size_t{64} << 20;
constexpr milliseconds kPollStep(10);
constexpr milliseconds kReapAfterKill(10000);

std::string ErrnoText(int error) { return std::system_category().message(error); }

// A file descriptor closed on scope exit.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Result<std::pair<Fd, Fd>> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return MakeError(ErrorCode::kIoError, "pipe2: " + ErrnoText(errno));
  }
  return std::pair<Fd, Fd>(Fd(fds[0]), Fd(fds[1]));
}

Result<Fd> OpenDevNull(int flags) {
  const int fd = ::open("/dev/null", flags | O_CLOEXEC);
  if (fd < 0) return MakeError(ErrorCode::kIoError, "open /dev/null: " + ErrnoText(errno));
  return Fd(fd);
}

// Reports `error` to the parent through the exec-error pipe and exits.
[[noreturn]] void FailExec(int error_fd, int error) {
  ssize_t ignored = ::write(error_fd, &error, sizeof(error));
  static_cast<void>(ignored);
  ::_exit(127);
}

// In the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void ExecChild(const char* program, char* const* argv, const char* working_dir,
                            int stdin_fd, int stdout_fd, int stderr_fd, int error_fd,
                            int death_signal, pid_t parent) {
  const auto fail = [error_fd](int error) { FailExec(error_fd, error); };
  ::setpgid(0, 0);
  if (death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, death_signal) != 0) fail(errno);
    if (::getppid() != parent) ::_exit(127);  // the parent is already gone
  }
  // Signals the test ignores or blocks must not stay ignored in tools that are
  // stopped with them.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);

  if (::dup2(stdin_fd, 0) < 0 || ::dup2(stdout_fd, 1) < 0 || ::dup2(stderr_fd, 2) < 0) {
    fail(errno);
  }
  // Nothing else of the test's (listening sockets of other fixtures...) may
  // leak into the child. error_fd closes itself at exec (O_CLOEXEC).
  const auto close_from = [](unsigned first, unsigned last) {
    if (first > last) return;
    if (::close_range(first, last, 0) != 0) {
      for (unsigned fd = first; fd <= last && fd < 65536; ++fd) ::close(static_cast<int>(fd));
    }
  };
  const unsigned keep = static_cast<unsigned>(error_fd);
  if (keep > 3) close_from(3, keep - 1);
  close_from(keep + 1, ~0U);

  if (working_dir != nullptr && ::chdir(working_dir) != 0) fail(errno);
  ::execv(program, argv);
  FailExec(error_fd, errno);
}

}  // namespace

// ---- ExitStatus ----

bool ExitStatus::exited() const { return WIFEXITED(wait_status_); }
int ExitStatus::code() const { return WEXITSTATUS(wait_status_); }
bool ExitStatus::signaled() const { return WIFSIGNALED(wait_status_); }
int ExitStatus::signal() const { return WTERMSIG(wait_status_); }

std::string ExitStatus::ToString() const {
  if (exited()) return "exit code " + std::to_string(code());
  if (signaled()) {
    const char* name = ::sigdescr_np(signal());
    return "killed by signal " + std::to_string(signal()) + " (" +
           (name != nullptr ? name : "unknown") + ")";
  }
  return "wait status " + std::to_string(wait_status_);
}

// ---- ChildProcess ----

Result<ChildProcess> ChildProcess::Spawn(const SpawnOptions& options) {
  auto null_in = OpenDevNull(O_RDONLY);
  if (!null_in) return std::unexpected(null_in.error());
  Fd out;
  if (options.output_file.empty()) {
    auto null_out = OpenDevNull(O_WRONLY);
    if (!null_out) return std::unexpected(null_out.error());
    out = std::move(*null_out);
  } else {
    out = Fd(::open(options.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (out.get() < 0) {
      return MakeError(ErrorCode::kIoError,
                       "opening " + options.output_file.string() + ": " + ErrnoText(errno));
    }
  }
  return SpawnWithFds(options, null_in->get(), out.get(), out.get());
}

Result<ChildProcess> ChildProcess::SpawnWithFds(const SpawnOptions& options, int stdin_fd,
                                                int stdout_fd, int stderr_fd) {
  if (options.argv.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "spawn: empty argv");
  }
  std::filesystem::path program = options.argv[0];
  if (options.argv[0].find('/') == std::string::npos) {
    auto found = FindExecutable(options.argv[0]);
    if (!found) {
      return MakeError(ErrorCode::kNotFound,
                       "spawn: program '" + options.argv[0] + "' not found in PATH");
    }
    program = *found;
  }
  // Everything the child needs is built before fork: it may not allocate.
  std::vector<std::string> args = options.argv;
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string program_text = program.string();
  const std::string working_dir = options.working_dir.string();

  auto error_pipe = MakePipe();
  if (!error_pipe) return std::unexpected(error_pipe.error().Wrap("spawn"));
  auto& [error_read, error_write] = *error_pipe;

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return MakeError(ErrorCode::kResourceExhausted, "fork: " + ErrnoText(errno));
  if (pid == 0) {
    ExecChild(program_text.c_str(), argv.data(),
              working_dir.empty() ? nullptr : working_dir.c_str(), stdin_fd, stdout_fd, stderr_fd,
              error_write.get(), options.parent_death_signal, parent);
  }
  // Also in the parent, so that killing the group right away cannot miss.
  ::setpgid(pid, pid);
  ChildProcess child(pid);
  error_write.Reset();

  int child_errno = 0;
  ssize_t got;
  do {
    got = ::read(error_read.get(), &child_errno, sizeof(child_errno));
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof(child_errno))) {
    child.Kill();
    const ErrorCode code = child_errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIoError;
    return MakeError(code, "spawn " + program_text + ": " + ErrnoText(child_errno));
  }
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(std::move(other.status_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) Kill();
    pid_ = std::exchange(other.pid_, -1);
    status_ = std::move(other.status_);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Kill();
}

bool ChildProcess::PollExited() {
  if (status_) return true;
  if (pid_ <= 0) return true;
  siginfo_t info;
  ::memset(&info, 0, sizeof(info));
  // WNOWAIT: while the leader stays a zombie its pid (the group id) cannot be
  // reused, so killing the group below cannot hit an unrelated process.
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR) return false;
    status_ = ExitStatus(0);  // ECHILD: someone else reaped it (SIGCHLD ignored?)
    return true;
  }
  if (info.si_pid != pid_) return false;
  ::kill(-pid_, SIGKILL);  // stragglers: e.g. nginx workers of a killed master
  int wait_status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid_, &wait_status, 0);
  } while (reaped < 0 && errno == EINTR);
  status_ = ExitStatus(reaped == pid_ ? wait_status : 0);
  return true;
}

bool ChildProcess::running() { return !PollExited(); }

std::optional<ExitStatus> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!PollExited()) {
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::min<Clock::duration>(kPollStep, deadline - now));
  }
  return status_;
}

bool ChildProcess::Signal(int sig) {
  if (pid_ <= 0 || status_) return false;
  return ::kill(pid_, sig) == 0;
}

ExitStatus ChildProcess::Stop(int first_signal, std::chrono::milliseconds grace) {
  if (pid_ <= 0 && !status_) return ExitStatus(0);
  if (PollExited()) return *status_;
  if (first_signal != 0 && first_signal != SIGKILL) {
    ::kill(pid_, first_signal);
    if (auto done = Wait(grace)) return *done;
  }
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  if (auto done = Wait(kReapAfterKill)) return *done;
  // Unkillable (uninterruptible sleep): give up on it rather than hang.
  status_ = ExitStatus(SIGKILL);
  return *status_;
}

// ---- CommandResult / RunCommand ----

std::string CommandResult::Describe(std::size_t tail_lines) const {
  std::string text = "`" + command + "` ";
  text += timed_out ? "timed out (killed)" : status.ToString();
  if (!stderr_text.empty()) {
    text += "; stderr (last " + std::to_string(tail_lines) + " lines):\n" +
            TailLines(stderr_text, tail_lines);
  } else if (!stdout_text.empty()) {
    text += "; stdout (last " + std::to_string(tail_lines) + " lines):\n" +
            TailLines(stdout_text, tail_lines);
  }
  return text;
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  CommandResult result;
  result.command = JoinCommand(argv);

  auto null_in = OpenDevNull(O_RDONLY);
  if (!null_in) return std::unexpected(null_in.error());
  auto out_pipe = MakePipe();
  if (!out_pipe) return std::unexpected(out_pipe.error());
  auto err_pipe = MakePipe();
  if (!err_pipe) return std::unexpected(err_pipe.error());

  SpawnOptions options;
  options.argv = argv;
  auto child = ChildProcess::SpawnWithFds(options, null_in->get(), out_pipe->second.get(),
                                          err_pipe->second.get());
  if (!child) return std::unexpected(child.error());
  out_pipe->second.Reset();
  err_pipe->second.Reset();

  struct Stream {
    Fd fd;
    std::string* text;
  };
  Stream streams[2] = {{std::move(out_pipe->first), &result.stdout_text},
                       {std::move(err_pipe->first), &result.stderr_text}};
  char buffer[16384];
  // Reads until both pipes close. Once the child has exited (its group killed),
  // whatever still holds a pipe open gets a short grace and is then ignored.
  std::optional<Clock::time_point> drain_until;
  while (true) {
    pollfd fds[2];
    nfds_t count = 0;
    Stream* polled[2];
    for (Stream& stream : streams) {
      if (stream.fd.get() >= 0) {
        fds[count] = pollfd{stream.fd.get(), POLLIN, 0};
        polled[count++] = &stream;
      }
    }
    if (count == 0) break;
    const auto now = Clock::now();
    if (now >= deadline) {
      result.timed_out = true;
      break;
    }
    if (drain_until && now >= *drain_until) break;
    const int wait_ms = static_cast<int>(std::min<long long>(
        std::chrono::duration_cast<milliseconds>(deadline - now).count() + 1, 50));
    const int ready = ::poll(fds, count, wait_ms);
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t i = 0; ready > 0 && i < count; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (got > 0) {
        std::string& text = *polled[i]->text;
        const std::size_t room = kMaxCapturedBytes - std::min(kMaxCapturedBytes, text.size());
        text.append(buffer, std::min(room, static_cast<std::size_t>(got)));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        polled[i]->fd.Reset();
      }
    }
    if (!drain_until && !child->running()) drain_until = Clock::now() + milliseconds(200);
  }

  if (result.timed_out) {
    result.status = child->Kill();
    return result;
  }
  const auto now = Clock::now();
  const auto left =
      now < deadline ? std::chrono::duration_cast<milliseconds>(deadline - now) : milliseconds(0);
  if (auto status = child->Wait(left)) {
    result.status = *status;
  } else {
    result.timed_out = true;
    result.status = child->Kill();
  }
  return result;
}

// ---- Small helpers ----

std::optional<std::filesystem::path> FindExecutable(std::string_view name) {
  std::vector<std::string> dirs;
  if (const char* path = ::getenv("PATH"); path != nullptr) {
    std::stringstream in{std::string(path)};
    std::string dir;
    while (std::getline(in, dir, ':')) {
      if (!dir.empty()) dirs.push_back(dir);
    }
  }
  for (const char* dir : {"/usr/local/sbin", "/usr/sbin", "/sbin"}) dirs.emplace_back(dir);
  for (const std::string& dir : dirs) {
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

std::string JoinCommand(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    if (!text.empty()) text += ' ';
    const bool plain =
        !arg.empty() && arg.find_first_of(" \t\n'\"\\$`;&|<>()*?[]{}!#") == std::string::npos;
    if (plain) {
      text += arg;
    } else {
      text += '\'';
      for (char c : arg) text += c == '\'' ? std::string("'\\''") : std::string(1, c);
      text += '\'';
    }
  }
  return text;
}

std::string TailLines(std::string_view text, std::size_t max_lines) {
  if (max_lines == 0) return "";
  std::size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  std::size_t start = end;
  std::size_t lines = 0;
  while (start > 0) {
    if (text[start - 1] == '\n' && ++lines == max_lines) break;
    --start;
  }
  return std::string(text.substr(start, end - start));
}

std::string ReadTextFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool KeepTestDirs() {
  const char* keep = ::getenv("EARSHOT_KEEP_TEST_DIRS");
  return keep != nullptr && std::string_view(keep) == "1";
}

// ---- ScopedTempDir ----

Result<ScopedTempDir> ScopedTempDir::Create(std::string_view prefix) {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);  // $TMPDIR or /tmp
  if (ec) base = "/tmp";
  std::string pattern = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return MakeError(ErrorCode::kIoError, "mkdtemp " + pattern + ": " + ErrnoText(errno));
  }
  return ScopedTempDir(std::filesystem::path(pattern));
}

ScopedTempDir::ScopedTempDir(ScopedTempDir&& other) noexcept
    : path_(std::exchange(other.path_, {})) {}

ScopedTempDir& ScopedTempDir::operator=(ScopedTempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

ScopedTempDir::~ScopedTempDir() { Remove(); }

void ScopedTempDir::Remove() {
  if (path_.empty()) return;
  if (!KeepTestDirs()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  path_.clear();
}

}  // namespace earshot::testing
