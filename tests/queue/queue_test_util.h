// Helpers shared by the queue tests: a temp folder and a clock the test moves.
// (tests/ is on the include path for store/temp_dir.h.)
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include "queue/job_queue.h"
#include "store/temp_dir.h"

namespace earshot::queue::testing {

// A fresh folder, removed with its contents (the store tests' helper).
using TempDir = store::testing::TempDir;

// Unix milliseconds that only move when the test says so. Shared by every
// queue object of a test (they must agree on the time).
class FakeClock {
 public:
  explicit FakeClock(int64_t start_ms = 1'800'000'000'000)
      : now_(std::make_shared<std::atomic<int64_t>>(start_ms)) {}
  int64_t now() const { return now_->load(); }
  void Advance(int64_t ms) { now_->fetch_add(ms); }
  // A clock function for QueueOptions::now_ms.
  std::function<int64_t()> Function() const {
    return [now = now_] { return now->load(); };
  }

 private:
  std::shared_ptr<std::atomic<int64_t>> now_;
};

}  // namespace earshot::queue::testing
