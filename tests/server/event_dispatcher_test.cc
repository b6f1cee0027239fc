// EventDispatcher delivering to a real webhook receiver (testing::HttpListener
// on 127.0.0.1) through the real webhook notifier, reading a real state store
// (SQLite in memory). Every wait is bounded.
#include "server/event_dispatcher.h"

#include <gtest/gtest.h>

#include <charconv>

#include <thread>

#include "common/file_util.h"
#include "support/http_listener.h"
#include "support/process.h"

namespace earshot::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using control::EventType;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = 15s;

std::optional<std::string> Sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return std::nullopt;
  const size_t from = at + series.size() + 2;
  return text.substr(from, text.find('\n', from) - from);
}

class EventDispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ::earshot::testing::ScopedTempDir::Create("earshot_dispatcher");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_.emplace(std::move(*dir));
    auto state = state::OpenStateStore("sqlite::memory:");
    ASSERT_TRUE(state) << state.error().ToString();
    state_ = std::move(*state);
    auto hook = ::earshot::testing::HttpListener::Start();
    ASSERT_TRUE(hook) << hook.error().ToString();
    hook_ = std::move(*hook);
    for (const char* name : {"a", "b"}) {
      state::ChannelSpec spec;
      spec.name = name;
      auto ch = state_->CreateChannel(spec);
      ASSERT_TRUE(ch) << ch.error().ToString();
      channels_.push_back(ch->channel.id);
    }
  }
  void TearDown() override {
    dispatcher_.reset();
    if (hook_) hook_->Stop();
  }

  fs::path cursor_file() const { return dir_->path() / "subscriptions.cursor"; }

  EventDispatcherOptions Options() const {
    EventDispatcherOptions o;
    o.cursor_file = cursor_file();
    o.poll = 20ms;
    o.max_attempts = 3;
    o.first_backoff = 20ms;
    return o;
  }
  void StartDispatcher(EventDispatcherOptions options) {
    dispatcher_ = std::make_unique<EventDispatcher>(*state_, &metrics_, std::move(options));
    dispatcher_->Start();
  }
  void StartDispatcher() { StartDispatcher(Options()); }

  // The cursor as a restart would find it: deliver what comes after now.
  void CursorAtNow() {
    auto seq = state_->LastEventSeq();
    ASSERT_TRUE(seq) << seq.error().ToString();
    ASSERT_TRUE(WriteFileAtomically(cursor_file(), std::to_string(*seq) + "\n"));
  }
  std::optional<int64_t> Cursor() const {
    auto text = ReadFile(cursor_file());
    if (!text) return std::nullopt;
    int64_t seq = 0;
    if (std::from_chars(text->data(), text->data() + text->size(), seq).ec != std::errc()) return std::nullopt;
    return seq;
  }
  // True once the cursor file says `seq` (the event is settled).
  bool WaitForCursor(int64_t seq) const {
    const auto deadline = Clock::now() + kWait;
    while (Clock::now() < deadline) {
      if (Cursor() == seq) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  state::Subscription Subscribe(const std::string& path, std::vector<EventType> types = {},
                                std::vector<std::string> channel_ids = {},
                                std::string target = "") {
    state::SubscriptionSpec spec;
    spec.kind = "webhook";
    spec.target =
        target.empty() ? "url=" + hook_->Url(path) + ",unsigned=true,timeout_ms=5000" : target;
    spec.event_types = std::move(types);
    spec.channel_ids = std::move(channel_ids);
    auto sub = state_->CreateSubscription(spec);
    EXPECT_TRUE(sub) << sub.error().ToString();
    return sub.value_or(state::Subscription{});
  }
  control::Event Append(EventType type, const std::string& channel_id,
                        const std::string& stream_id = "",
                        nlohmann::json detail = nlohmann::json::object()) {
    auto e = state_->AppendEvent(type, channel_id, stream_id, detail);
    EXPECT_TRUE(e) << e.error().ToString();
    return e.value_or(control::Event{});
  }

  static std::string KeyFor(const control::Event& e, const state::Subscription& s) {
    return "event-" + std::to_string(e.seq) + "-" + s.id;
  }
  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    for (const auto& r : hook_->Requests()) keys.push_back(r.Header("Idempotency-Key"));
    return keys;
  }

  std::optional<::earshot::testing::ScopedTempDir> dir_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<::earshot::testing::HttpListener> hook_;
  Metrics metrics_;
  std::unique_ptr<EventDispatcher> dispatcher_;
  std::vector<std::string> channels_;
};

TEST_F(EventDispatcherTest, FailedDeliveryIsRetriedWithTheSameIdempotencyKey) {
  hook_->SetScript(::earshot::testing::HttpListener::StatusScript({500, 200}));
  const state::Subscription sub = Subscribe("/hook");
  CursorAtNow();
  StartDispatcher();
  const control::Event e =
      Append(EventType::kStreamStart, channels_[0], "st-1", {{"note", "first"}});
  ASSERT_TRUE(hook_->WaitForRequests(2, kWait)) << "got " << hook_->request_count() << " requests";
  ASSERT_TRUE(WaitForCursor(e.seq));
  const auto requests = hook_->Requests();
  ASSERT_EQ(requests.size(), 2u) << "delivered once the receiver said 200, then no more";
  for (const auto& r : requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/hook");
    EXPECT_EQ(r.Header("Idempotency-Key"), KeyFor(e, sub));
    EXPECT_EQ(r.Header("X-Earshot-Event"), "event.Stream Start");
    EXPECT_EQ(nlohmann::json::parse(r.body), control::EventToJson(e));
  }
  const std::string text = metrics_.Render({});
  EXPECT_EQ(Sample(text, R"(earshot_subscription_deliveries_total{outcome="delivered"})"), "1")
      << text;
}

TEST_F(EventDispatcherTest, GivesUpAfterMaxAttemptsAndDeliversTheNextEvent) {
  // Three failures use up the attempts for the first event; the script then repeats 200.
  hook_->SetScript(::earshot::testing::HttpListener::StatusScript({503, 500, 502, 200}));
  const state::Subscription sub = Subscribe("/hook");
  CursorAtNow();
  StartDispatcher();
  const control::Event first = Append(EventType::kAlarm, channels_[0]);
  const control::Event second = Append(EventType::kAlarm, channels_[0]);
  ASSERT_TRUE(WaitForCursor(second.seq));
  EXPECT_EQ(Keys(), (std::vector<std::string>{KeyFor(first, sub), KeyFor(first, sub),
                                              KeyFor(first, sub), KeyFor(second, sub)}));
  const std::string text = metrics_.Render({});
  EXPECT_EQ(Sample(text, R"(earshot_subscription_deliveries_total{outcome="gave_up"})"), "1")
      << text;
  EXPECT_EQ(Sample(text, R"(earshot_subscription_deliveries_total{outcome="delivered"})"), "1")
      << text;
}

TEST_F(EventDispatcherTest, SubscriptionsGetOnlyTheirTypesAndChannels) {
  const state::Subscription idents_a =
      Subscribe("/idents-a", {EventType::kIdentification}, {channels_[0]});
  const state::Subscription all_b = Subscribe("/all-b", {}, {channels_[1]});
  const state::Subscription all = Subscribe("/all");
  CursorAtNow();
  StartDispatcher();
  const control::Event start_a = Append(EventType::kStreamStart, channels_[0], "st-a");
  const control::Event ident_a = Append(EventType::kIdentification, channels_[0], "st-a");
  const control::Event ident_b = Append(EventType::kIdentification, channels_[1], "st-b");
  const control::Event alarm = Append(EventType::kAlarm, "");  // no channel
  ASSERT_TRUE(WaitForCursor(alarm.seq));
  std::vector<std::pair<std::string, std::string>> got;  // path, key
  for (const auto& r : hook_->Requests()) got.emplace_back(r.target, r.Header("Idempotency-Key"));
  // In event order; per event in subscription order.
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"/all", KeyFor(start_a, all)},
                     {"/idents-a", KeyFor(ident_a, idents_a)},
                     {"/all", KeyFor(ident_a, all)},
                     {"/all-b", KeyFor(ident_b, all_b)},
                     {"/all", KeyFor(ident_b, all)},
                     {"/all", KeyFor(alarm, all)},
                 }));
}

TEST_F(EventDispatcherTest, RestartedDispatcherDoesNotResendDeliveredEvents) {
  const state::Subscription sub = Subscribe("/hook");
  CursorAtNow();
  StartDispatcher();
  const control::Event e1 = Append(EventType::kStreamStart, channels_[0], "st-1");
  const control::Event e2 = Append(EventType::kStreamEnd, channels_[0], "st-1");
  ASSERT_TRUE(WaitForCursor(e2.seq));
  dispatcher_.reset();  // stop; the cursor file stays
  const control::Event e3 = Append(EventType::kStreamStart, channels_[0], "st-2");  // while down
  StartDispatcher();
  ASSERT_TRUE(WaitForCursor(e3.seq));
  std::this_thread::sleep_for(100ms);  // several polls: nothing more may come
  EXPECT_EQ(Keys(), (std::vector<std::string>{KeyFor(e1, sub), KeyFor(e2, sub), KeyFor(e3, sub)}));
}

TEST_F(EventDispatcherTest, StopInterruptsTheBackoffAndTheEventIsDeliveredAfterARestart) {
  hook_->SetScript(::earshot::testing::HttpListener::StatusScript({500}));
  const state::Subscription sub = Subscribe("/hook");
  CursorAtNow();
  const int64_t before = *Cursor();
  EventDispatcherOptions slow = Options();
  slow.first_backoff = 60s;
  StartDispatcher(slow);
  const control::Event e = Append(EventType::kAlarm, channels_[0]);
  ASSERT_TRUE(hook_->WaitForRequests(1, kWait));
  const auto t0 = Clock::now();
  dispatcher_.reset();
  EXPECT_LT(Clock::now() - t0, 5s) << "Stop must not wait out the backoff";
  EXPECT_EQ(Cursor(), before) << "an undelivered event must stay ahead of the cursor";

  hook_->SetScript({});  // 200 from now on
  StartDispatcher();
  ASSERT_TRUE(WaitForCursor(e.seq));
  EXPECT_EQ(Keys(), (std::vector<std::string>{KeyFor(e, sub), KeyFor(e, sub)}))
      << "at-least-once: the same key again after the restart";
}

TEST_F(EventDispatcherTest, FirstStartDeliversOnlyNewEvents) {
  const state::Subscription sub = Subscribe("/hook", {EventType::kStreamStart});
  const control::Event history = Append(EventType::kStreamStart, channels_[0], "st-old");
  StartDispatcher();  // no cursor file yet
  // The dispatcher has read where "now" is once it has settled an event
  // after it (the cursor file appears): probe with events nobody wants.
  const auto deadline = Clock::now() + kWait;
  while (!Cursor() && Clock::now() < deadline) {
    Append(EventType::kAlarm, channels_[0]);
    std::this_thread::sleep_for(30ms);
  }
  ASSERT_TRUE(Cursor().has_value()) << "the dispatcher never wrote its cursor";
  const control::Event fresh = Append(EventType::kStreamStart, channels_[0], "st-new");
  ASSERT_TRUE(WaitForCursor(fresh.seq));
  EXPECT_EQ(Keys(), std::vector<std::string>{KeyFor(fresh, sub)})
      << "history (seq " << history.seq << ") must not be replayed";
}

TEST_F(EventDispatcherTest, DamagedCursorFileRedeliversInsteadOfSkipping) {
  // A cursor file that exists but does not parse is no first start: the
  // events before "now" are delivered again (at-least-once), not skipped.
  const state::Subscription sub = Subscribe("/hook", {EventType::kStreamStart});
  const control::Event history = Append(EventType::kStreamStart, channels_[0], "st-old");
  ASSERT_TRUE(WriteFileAtomically(cursor_file(), "not a number\n"));
  StartDispatcher();
  ASSERT_TRUE(WaitForCursor(history.seq));
  EXPECT_EQ(Keys(), std::vector<std::string>{KeyFor(history, sub)});
}

TEST_F(EventDispatcherTest, UnusableTargetIsSkippedAndOthersStillGetTheEvent) {
  Subscribe("", {}, {}, "url=ftp://127.0.0.1/hook,unsigned=true");
  const state::Subscription good = Subscribe("/hook");
  CursorAtNow();
  StartDispatcher();
  const control::Event e = Append(EventType::kStreamStart, channels_[0], "st-1");
  ASSERT_TRUE(WaitForCursor(e.seq));
  EXPECT_EQ(Keys(), std::vector<std::string>{KeyFor(e, good)});
  const std::string text = metrics_.Render({});
  EXPECT_EQ(Sample(text, R"(earshot_subscription_deliveries_total{outcome="bad_target"})"), "1")
      << text;
}

}  // namespace
}  // namespace earshot::server
