// Several SqliteStateStore objects (connections) on one file, used from
// several threads at once: no errors, at most one live session per channel,
// a gapless event log that a concurrent poller reads completely, and sessions
// never visible without their events. Every loop is bounded by a round count
// or a generous deadline; nothing asserts on timing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "state_test_util.h"
#include "store/sqlite.h"

namespace earshot::state {
namespace {

using control::Event;
using control::EventType;
using testing::Must;
using testing::StateStoreTest;
using testing::Types;

// Errors seen by worker threads, reported by the main thread.
class ErrorLog {
 public:
  void Add(std::string what) {
    std::lock_guard lock(mu_);
    errors_.push_back(std::move(what));
  }
  std::vector<std::string> Take() {
    std::lock_guard lock(mu_);
    return std::move(errors_);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> errors_;
};

class ConcurrencyTest : public StateStoreTest {};

TEST_F(ConcurrencyTest, TwoStoresOnOneFileFromSeveralThreads) {
  auto second = Open();
  auto reader = Open();
  ASSERT_NE(second, nullptr);
  ASSERT_NE(reader, nullptr);
  std::vector<std::string> channels;
  for (int i = 0; i < 3; ++i) channels.push_back(CreateChannel("c" + std::to_string(i)).channel.id);

  constexpr int kWorkers = 4;
  constexpr int kRounds = 15;
  ErrorLog errors;
  std::atomic<int> started{0};
  std::atomic<int> conflicts{0};
  std::atomic<bool> writers_done{false};

  // The poller: reads the log with a cursor, as the live feed does, and
  // checks what it sees against the sessions table.
  std::vector<int64_t> polled;
  std::thread poller([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    int64_t cursor = 0;
    auto drain = [&] {
      while (true) {
        EventFilter filter;
        filter.after_seq = cursor;
        filter.limit = 50;
        auto page = reader->ListEvents(filter);
        if (!page) {
          errors.Add("poller: " + page.error().ToString());
          return;
        }
        if (page->empty()) return;
        for (const Event& e : *page) {
          if (e.seq <= cursor) errors.Add("poller: seq went back to " + std::to_string(e.seq));
          cursor = e.seq;
          polled.push_back(e.seq);
          if (e.type == EventType::kStreamStart || e.type == EventType::kSessionEnded) {
            auto session = reader->GetSession(e.stream_id);
            if (!session) {
              errors.Add("poller: event " + std::to_string(e.seq) + " but no session: " +
                         session.error().ToString());
            } else if (e.type == EventType::kSessionEnded &&
                       session->state != SessionState::kEnded) {
              errors.Add("poller: Session Ended while the session is live: " + e.stream_id);
            }
          }
        }
      }
    };
    while (!writers_done.load() && std::chrono::steady_clock::now() < deadline) {
      drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    drain();  // whatever was committed last
  });

  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    StateStore& target = w % 2 == 0 ? static_cast<StateStore&>(*store_) : *second;
    workers.emplace_back([&, w, &store = target] {
      for (int r = 0; r < kRounds; ++r) {
        if (r % 5 == 0) {
          auto key = store.CreateApiKey("w" + std::to_string(w));
          if (!key) {
            errors.Add("api key: " + key.error().ToString());
          } else if (auto v = store.VerifyApiKey(key->key); !v || *v != key->info.id) {
            errors.Add("api key does not verify");
          }
        }
        const std::string& channel = channels[static_cast<size_t>(w + r) % channels.size()];
        auto session = store.StartSession(channel, {{"worker", w}, {"round", r}});
        if (!session) {
          if (session.error().code() == ErrorCode::kAlreadyExists) {
            ++conflicts;
          } else {
            errors.Add("start: " + session.error().ToString());
          }
          continue;
        }
        ++started;
        const std::string& id = session->stream_id;
        if (auto e = store.AppendEvent(EventType::kIdentification, channel, id, {{"w", w}}); !e) {
          errors.Add("append: " + e.error().ToString());
        }
        IdentificationRecord match;
        match.stream_id = id;
        match.channel_id = channel;
        match.match_id = "m-" + std::to_string(w) + "-" + std::to_string(r);
        match.status = std::string(kMatchEnded);
        match.rule = "track";
        match.track_id = w;
        match.duration_s = 1;
        if (auto s = store.RecordIdentification(match); !s) {
          errors.Add("identification: " + s.error().ToString());
        }
        if (auto s = store.SetHealth(id, StreamHealth::kHealthy); !s) {
          errors.Add("health: " + s.error().ToString());
        }
        if (auto live = store.LiveSession(channel); !live || !*live || (*live)->stream_id != id) {
          errors.Add("live session of " + channel + " is not " + id);
        }
        if (auto ended = store.EndSession(id, "round over"); !ended) {
          errors.Add("end: " + ended.error().ToString());
        }
      }
    });
  }
  for (std::thread& t : workers) t.join();
  writers_done = true;
  poller.join();

  for (const std::string& e : errors.Take()) ADD_FAILURE() << e;
  EXPECT_EQ(started.load() + conflicts.load(), kWorkers * kRounds);
  EXPECT_GT(started.load(), 0);

  // Every session ended, each with its five events in order.
  EXPECT_TRUE(Must(store_->ListLiveSessions()).empty());
  int sessions = 0;
  for (const std::string& channel : channels) {
    for (const StreamSession& s : Must(store_->ListSessions(channel, 1000))) {
      ++sessions;
      EXPECT_EQ(s.state, SessionState::kEnded);
      EXPECT_EQ(s.health, StreamHealth::kHealthy);
      EventFilter filter;
      filter.stream_id = s.stream_id;
      EXPECT_EQ(Types(testing::AllEvents(*second, filter)),
                (std::vector<EventType>{EventType::kSessionCreated, EventType::kStreamStart,
                                        EventType::kIdentification, EventType::kStreamEnd,
                                        EventType::kSessionEnded}))
          << s.stream_id;
    }
  }
  EXPECT_EQ(sessions, started.load());
  EXPECT_EQ(Must(store_->ListIdentifications({})).size(), static_cast<size_t>(started.load()));
  EXPECT_EQ(Must(second->ListApiKeys()).size(), static_cast<size_t>(kWorkers * 3));

  // The log: unique, increasing seqs; the poller saw every one of them.
  const std::vector<Event> all = testing::AllEvents(*store_);
  EXPECT_EQ(all.size(), static_cast<size_t>(5 * started.load()));
  std::vector<int64_t> seqs;
  for (const Event& e : all) seqs.push_back(e.seq);
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::set<int64_t>(seqs.begin(), seqs.end()).size(), seqs.size());
  EXPECT_EQ(polled, seqs);
}

// Publishers of one channel racing through both connections: exactly one
// session wins each round, the others get kAlreadyExists.
TEST_F(ConcurrencyTest, RacingStartsLetExactlyOneSessionWin) {
  auto second = Open();
  ASSERT_NE(second, nullptr);
  const std::string channel = CreateChannel().channel.id;
  constexpr int kThreads = 6;
  constexpr int kRounds = 8;
  ErrorLog errors;
  for (int round = 0; round < kRounds; ++round) {
    std::latch go(kThreads);
    std::atomic<int> wins{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      StateStore& target = t % 2 == 0 ? static_cast<StateStore&>(*store_) : *second;
      threads.emplace_back([&, &store = target] {
        go.arrive_and_wait();
        auto session = store.StartSession(channel, {});
        if (session) {
          ++wins;
        } else if (session.error().code() == ErrorCode::kAlreadyExists) {
          ++refused;
        } else {
          errors.Add(session.error().ToString());
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(wins.load(), 1) << "round " << round;
    EXPECT_EQ(refused.load(), kThreads - 1) << "round " << round;
    const auto live = Must(store_->LiveSession(channel));
    ASSERT_TRUE(live.has_value());
    Must(second->EndSession(live->stream_id, "next round"));
  }
  for (const std::string& e : errors.Take()) ADD_FAILURE() << e;
  EXPECT_EQ(Must(store_->ListSessions(channel, 100)).size(), static_cast<size_t>(kRounds));
  EventFilter filter;
  filter.types = std::vector<EventType>{EventType::kStreamStart};
  EXPECT_EQ(testing::AllEvents(*store_, filter).size(), static_cast<size_t>(kRounds));
}

// Another connection (another process, say) holds the write lock longer than
// the busy timeout: writes fail with kUnavailable, reads still work (WAL),
// and writes work again once the lock is gone.
TEST_F(ConcurrencyTest, ABusyDatabaseIsUnavailableForWritesOnly) {
  const CreatedChannel created = CreateChannel();
  auto impatient = Open(/*busy_timeout_ms=*/50);
  ASSERT_NE(impatient, nullptr);
  {
    auto blocker = Must(store::Database::Open(path_));
    auto tx = Must(store::Transaction::Begin(blocker, store::Transaction::Mode::kImmediate));
    EXPECT_TRUE(testing::FailsWith(impatient->CreateChannel({}), ErrorCode::kUnavailable));
    EXPECT_TRUE(testing::FailsWith(impatient->StartSession(created.channel.id, {}),
                                   ErrorCode::kUnavailable));
    EXPECT_TRUE(testing::FailsWith(
        impatient->AppendEvent(EventType::kAlarm, "", "", {}), ErrorCode::kUnavailable));
    EXPECT_EQ(Must(impatient->GetChannel(created.channel.id)), created.channel);
    EXPECT_EQ(Must(impatient->FindChannelByStreamKey(created.stream_key)).id, created.channel.id);
    Must(impatient->Check());
    Must(tx.Rollback());
  }
  // Nothing half-done was left behind, and the store recovers.
  EXPECT_FALSE(Must(store_->LiveSession(created.channel.id)).has_value());
  EXPECT_EQ(Must(store_->LastEventSeq()), 0);
  Must(impatient->StartSession(created.channel.id, {}));
  EXPECT_EQ(Must(store_->ListChannels({})).channels.size(), 1u);
}

// `earshot serve` and workers start together: several connections creating
// and migrating one new file at once all succeed.
TEST(ConcurrentOpenTest, SimultaneousOpensOfANewFile) {
  testing::TempDir dir;
  const std::filesystem::path file = dir / "fresh" / "state.db";
  constexpr int kThreads = 4;
  std::latch go(kThreads);
  ErrorLog errors;
  std::vector<std::unique_ptr<SqliteStateStore>> stores(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      SqliteStateStoreOptions options;
      options.busy_timeout_ms = 30'000;
      auto store = SqliteStateStore::Open(file, options);
      if (!store) {
        errors.Add(store.error().ToString());
        return;
      }
      auto channel = (*store)->CreateChannel({});
      if (!channel) errors.Add(channel.error().ToString());
      stores[static_cast<size_t>(t)] = std::move(*store);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& e : errors.Take()) ADD_FAILURE() << e;
  for (const auto& store : stores) {
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(Must(store->ListChannels({})).channels.size(), static_cast<size_t>(kThreads));
  }
}

}  // namespace
}  // namespace earshot::state
