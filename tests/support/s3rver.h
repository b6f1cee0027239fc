// A real S3-compatible server for tests: @20minutes/s3rver under node,
// listening on 127.0.0.1 only, storing into a fresh temporary folder, with one
// bucket and one known access key / secret (s3rver verifies SigV4 signatures,
// so a wrong secret gets a real 403 SignatureDoesNotMatch). It does not check
// the payload hash and ignores virtual-hosted canonical paths (see
// /work/shared/reference/ingest-and-playback.md, "Result storage").
//
// Installed by scripts/install-test-tools.sh into build-tools/ at the
// repository root (EARSHOT_TEST_TOOLS_DIR overrides that folder). When node
// or the package is missing, Start() fails with a message that says what to
// run: tests must fail, not skip, without it (CI installs it).
//
//   auto server = testing::S3rver::Start();
//   ASSERT_TRUE(server) << server.error().ToString();
//   ... (*server)->endpoint() ...          // "http://127.0.0.1:PORT"
//   ASSERT_TRUE((*server)->Stop());        // "bucket down for a while"
//   ASSERT_TRUE((*server)->Restart());     // same port, same data
//
// Every wait is bounded (start_timeout; 5 s for a stop before SIGKILL). The
// child gets SIGTERM if the test process dies (PR_SET_PDEATHSIG) and exits by
// itself after 15 minutes in any case. EARSHOT_KEEP_TEST_DIRS=1 keeps the
// temporary folder (data and s3rver.log) for a post-mortem.
//
// Thread safety: one thread at a time per object; Start() from the test's main
// thread (the parent-death signal follows the thread that forked).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "common/error.h"

namespace earshot::testing {

struct S3rverOptions {
  std::string bucket = "earshot-results";  // created at start
  std::string access_key = "EARSHOTTESTACCESSKEY";
  std::string secret_key = "earshot+test/SECRET-do-not-log";  // test-only credential
  std::chrono::milliseconds start_timeout{20000};  // until it answers on its port
};

class S3rver {
 public:
  // Starts s3rver on a free port and waits until it accepts connections.
  // kFailedPrecondition when node or the package is missing (the message says
  // to run scripts/install-test-tools.sh), kUnavailable when it does not come
  // up within start_timeout (the message has the tail of its log).
  static Result<std::unique_ptr<S3rver>> Start(S3rverOptions options = {});

  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;
  // Stops the server and removes the temporary folder.
  ~S3rver();

  // SIGTERM, up to 5 s, then SIGKILL; the port is closed when this returns.
  // Idempotent.
  Status Stop();
  // Starts it again on the same port with the same data folder.
  // REQUIRES: stopped.
  Status Restart();
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const S3rverOptions& options() const { return options_; }
  // s3rver's store: DATA_DIR/BUCKET/KEY._S3rver_object holds each object's bytes.
  std::filesystem::path data_dir() const { return work_dir_ / "data"; }
  // The last lines s3rver printed (requests, errors), for failure messages.
  std::string LogTail(std::size_t max_lines = 30) const;

 private:
  S3rver(S3rverOptions options, std::filesystem::path node, std::filesystem::path tools_dir,
         std::filesystem::path work_dir);
  Status Launch(int port);  // port 0: any free port

  S3rverOptions options_;
  std::filesystem::path node_;
  std::filesystem::path tools_dir_;
  std::filesystem::path work_dir_;  // data/ and s3rver.log
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace earshot::testing
