// Child processes for tests that drive real tools (nginx, ffmpeg, ffprobe,
// espeak-ng), and the temporary folders they work in.
//
// Every wait here is bounded, and every child is reaped: a ChildProcess that
// goes away (a test failed, an exception unwound the stack) kills what is left
// of its process group and collects the exit status. A child also gets
// `parent_death_signal` if the test process dies first (see SpawnOptions), so
// a crashed or timed-out test does not leave an nginx listening behind it.
//
// Thread safety: none of these objects may be used from two threads at once.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace earshot::testing {

// How a child process ended, decoded from a waitpid() status word.
class ExitStatus {
 public:
  explicit ExitStatus(int wait_status) : wait_status_(wait_status) {}

  bool exited() const;    // it returned from main or called exit()
  int code() const;       // REQUIRES: exited()
  bool signaled() const;  // a signal ended it
  int signal() const;     // REQUIRES: signaled()
  bool success() const { return exited() && code() == 0; }

  // "exit code 1", "killed by signal 9 (Killed)".
  std::string ToString() const;

 private:
  int wait_status_;
};

struct SpawnOptions {
  // argv[0] is a path (contains '/') or a name looked up like FindExecutable.
  std::vector<std::string> argv;
  // stdout and stderr are appended to this file (created if missing); empty:
  // both go to /dev/null. stdin is always /dev/null.
  std::filesystem::path output_file;
  // Empty: the test's current directory.
  std::filesystem::path working_dir;
  // Sent to the child when the thread that spawned it exits, so a test process
  // killed by ctest's timeout takes its servers with it. 0: none. Spawn from a
  // thread that outlives the child (a test's main thread does).
  int parent_death_signal = SIGTERM;
};

struct CommandResult;

// One child process, in its own process group (its children, such as nginx's
// workers, go with it when it is killed). Move-only.
class ChildProcess {
 public:
  // Starts the child. Fails (kNotFound) when the program does not exist, with
  // the errno of a failed exec otherwise.
  static Result<ChildProcess> Spawn(const SpawnOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kill(), i.e. SIGKILL to the whole group, then reap.
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // True until the child has exited. The first call that sees it exit kills
  // whatever is left of its process group and reaps it.
  bool running();

  // The exit status once running() or Wait() has seen the exit.
  const std::optional<ExitStatus>& exit_status() const { return status_; }

  // Waits up to `timeout` for the child to exit; its status, or nullopt.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);

  // Sends `sig` to the child (not its group). False once it has been reaped.
  bool Signal(int sig);

  // Sends `first_signal` (0: none), waits up to `grace`, then SIGKILLs the
  // group. Returns the exit status (a synthetic "killed by SIGKILL" if the
  // kernel did not report the death within 10 s, which does not happen in
  // practice). Idempotent.
  ExitStatus Stop(int first_signal, std::chrono::milliseconds grace);

  // Stop(SIGKILL, 0).
  ExitStatus Kill() { return Stop(SIGKILL, std::chrono::milliseconds(0)); }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  // Spawn with the given descriptors as the child's stdin, stdout, stderr.
  static Result<ChildProcess> SpawnWithFds(const SpawnOptions& options, int stdin_fd, int stdout_fd,
                                           int stderr_fd);
  friend Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                          std::chrono::milliseconds timeout);
  // Checks without blocking; on exit, kills stragglers and reaps.
  bool PollExited();

  pid_t pid_ = -1;  // -1: moved from, or never started
  std::optional<ExitStatus> status_;
};

// What RunCommand saw.
struct CommandResult {
  std::string command;  // the argv joined for messages
  ExitStatus status{0};
  bool timed_out = false;  // killed at the deadline
  std::string stdout_text;
  std::string stderr_text;

  bool ok() const { return !timed_out && status.success(); }
  // "`ffmpeg ...` exit code 1; stderr (last 20 lines): ..." for failure messages.
  std::string Describe(std::size_t tail_lines = 20) const;
};

// Runs argv to completion or until `timeout`, when it (and its group) is
// killed and timed_out is set. stdin is /dev/null. Each of stdout and stderr
// keeps at most 64 MiB (the rest is read and dropped). Fails only when the
// program cannot be started.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout);

// The absolute path of program `name`: PATH first, then /usr/local/sbin,
// /usr/sbin and /sbin (where nginx lives, often not on a user's PATH).
std::optional<std::filesystem::path> FindExecutable(std::string_view name);

// argv joined with spaces, arguments with spaces or quotes single-quoted.
std::string JoinCommand(const std::vector<std::string>& argv);

// The last `max_lines` lines of `text`, without the final newline.
std::string TailLines(std::string_view text, std::size_t max_lines);

// The whole file ("" when it cannot be read).
std::string ReadTextFile(const std::filesystem::path& path);

// True when EARSHOT_KEEP_TEST_DIRS=1: fixtures then leave their folders
// (configs, logs, media) behind for a post-mortem.
bool KeepTestDirs();

// A fresh folder $TMPDIR/PREFIX-XXXXXX (or /tmp/...), removed with its
// contents when the object goes away unless KeepTestDirs(). Move-only.
class ScopedTempDir {
 public:
  static Result<ScopedTempDir> Create(std::string_view prefix);

  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit ScopedTempDir(std::filesystem::path path) : path_(std::move(path)) {}
  void Remove();

  std::filesystem::path path_;  // empty: moved from
};

}  // namespace earshot::testing
