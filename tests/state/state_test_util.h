// Helpers shared by the state store tests: a clock the test moves, a fixture
// with a SqliteStateStore on a real file in a fresh temp folder, and checks
// for Result/Status that print the error.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "state/sqlite_state_store.h"
#include "store/temp_dir.h"

namespace earshot::state::testing {

using store::testing::TempDir;

// 2027-01-15T08:00:00.000Z: fake clocks start here.
inline constexpr int64_t kStartMs = 1'800'000'000'000;

// Unix milliseconds that move only when the test says so; copies share the
// time (every store of a test sees the same clock).
class FakeClock {
 public:
  explicit FakeClock(int64_t start_ms = kStartMs)
      : now_(std::make_shared<std::atomic<int64_t>>(start_ms)) {}
  int64_t now() const { return now_->load(); }
  void Advance(int64_t ms) { now_->fetch_add(ms); }
  std::function<int64_t()> Function() const {
    return [now = now_] { return now->load(); };
  }

 private:
  std::shared_ptr<std::atomic<int64_t>> now_;
};

// The value of `result`. A failed result throws, which GoogleTest reports as
// a failure of the test with the error's text, and the test stops there.
template <class T>
T Must(Result<T> result, std::string_view what = "") {
  if (!result) {
    throw std::runtime_error(std::string(what) + (what.empty() ? "" : ": ") +
                             result.error().ToString());
  }
  return std::move(*result);
}

inline void Must(Status status, std::string_view what = "") {
  if (!status) {
    throw std::runtime_error(std::string(what) + (what.empty() ? "" : ": ") +
                             status.error().ToString());
  }
}

// True when `result` failed with `code` and a message containing `part`;
// otherwise false with an explanation in the assertion output.
template <class R>
::testing::AssertionResult FailsWith(const R& result, ErrorCode code, std::string_view part = "") {
  if (result.has_value()) {
    return ::testing::AssertionFailure()
           << "succeeded, expected " << ErrorCodeName(code) << " containing \"" << part << "\"";
  }
  const Error& error = result.error();
  if (error.code() != code || error.message().find(part) == std::string::npos) {
    return ::testing::AssertionFailure() << "failed with " << error.ToString() << ", expected "
                                         << ErrorCodeName(code) << " containing \"" << part << "\"";
  }
  return ::testing::AssertionSuccess();
}

// Every event of the log (in pages of 1000), in seq order.
inline std::vector<control::Event> AllEvents(StateStore& store, EventFilter filter = {}) {
  std::vector<control::Event> all;
  filter.limit = 1000;
  while (true) {
    auto page = Must(store.ListEvents(filter), "listing events");
    if (page.empty()) return all;
    filter.after_seq = page.back().seq;
    all.insert(all.end(), page.begin(), page.end());
  }
}

inline std::vector<control::EventType> Types(const std::vector<control::Event>& events) {
  std::vector<control::EventType> types;
  for (const control::Event& e : events) types.push_back(e.type);
  return types;
}

// A SqliteStateStore on <temp>/state.db with a FakeClock.
class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  // Another store object (another connection) on the same file.
  std::unique_ptr<SqliteStateStore> Open(int busy_timeout_ms = 30'000) {
    SqliteStateStoreOptions options;
    options.clock = clock_.Function();
    options.busy_timeout_ms = busy_timeout_ms;
    auto store = SqliteStateStore::Open(path_, options);
    EXPECT_TRUE(store.has_value()) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }

  CreatedChannel CreateChannel(std::string name = "Radio") {
    ChannelSpec spec;
    spec.name = std::move(name);
    return Must(store_->CreateChannel(spec), "creating a channel");
  }

  TempDir dir_;
  FakeClock clock_;
  const std::filesystem::path path_ = dir_ / "state.db";
  std::unique_ptr<SqliteStateStore> store_;
};

}  // namespace earshot::state::testing
