// ControlPlane against a REAL state store and job queue (SQLite in memory)
// and a fake ingest controller.
//
// The fake is deliberate: NginxRtmpController talks to nginx's control
// endpoint over HTTP and is tested against a real nginx-rtmp in
// tests/ingest (ingest_e2e_test.cc) and end to end in serve_e2e_test.cc.
// Here the question is what the control plane decides (hook answers, state
// and queue changes, events), so the fake only records the drops it is asked
// for and can fail them the way a down ingest server does (kUnavailable).
//
// Identification responses are made with scan::MatchResponse, the function
// the scanner writes them with, so they have exactly the scanner's shape.
#include "server/control_plane.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "queue/registry.h"
#include "scan/identification.h"
#include "state/sqlite_state_store.h"
#include "state/state_store.h"

namespace earshot::server {
namespace {

using control::EventType;
using ingest::HookCall;

constexpr const char* kPublisherAddr = "203.0.113.7";

// Records DropPublisher calls; fails them with kUnavailable when told to.
class FakeIngest final : public ingest::IngestController {
 public:
  std::string_view kind() const override { return "fake-ingest"; }

  Status DropPublisher(const ingest::PublisherRef& publisher) override {
    std::lock_guard lock(mutex_);
    drops_.push_back(publisher);
    if (fail_drops_) {
      return MakeError(ErrorCode::kUnavailable, "fake ingest: control endpoint is down");
    }
    return Ok();
  }
  std::string RelayUrl(std::string_view channel_id) const override {
    return "rtmp://127.0.0.1:1935/hls/" + std::string(channel_id);
  }
  std::string ScanInputUrl(std::string_view channel_id) const override {
    return "rtmp://127.0.0.1:1935/hls/" + std::string(channel_id) + "?scanner=1";
  }
  std::string PlaybackUrl(std::string_view channel_id) const override {
    return "http://127.0.0.1:8088/hls/" + std::string(channel_id) + ".m3u8";
  }

  void set_fail_drops(bool fail) {
    std::lock_guard lock(mutex_);
    fail_drops_ = fail;
  }
  std::vector<ingest::PublisherRef> drops() const {
    std::lock_guard lock(mutex_);
    return drops_;
  }

 private:
  mutable std::mutex mutex_;
  bool fail_drops_ = false;
  std::vector<ingest::PublisherRef> drops_;
};

// One identification response as the scanner writes it.
struct MatchSpec {
  store::BusinessRule rule = store::BusinessRule::kTrack;
  recognition::StreamEvent::Type type = recognition::StreamEvent::Type::kStarted;
  uint64_t match = 1;
  double start_s = 12.5;
  double end_s = 20;
  std::string title = "Battle";
  std::string rights_holder = "Wesnoth Label";
};

nlohmann::json MakeResponse(const ScanJob& job, const MatchSpec& m) {
  scan::ScanIdentity who{job.stream_id, job.channel_id, "20261121T101500Z-3f9a1c2e", 1};
  recognition::StreamEvent event;
  event.type = m.type;
  event.match_id = m.match;
  event.track = 7;
  event.start_seconds = m.start_s;
  event.end_seconds = m.end_s;
  event.reported_at_seconds = m.end_s;
  event.reference_seconds = 3.25;
  event.score = 0.875;
  store::CatalogEntry entry;
  entry.id = 7;
  entry.metadata.title = m.title;
  entry.metadata.artist = "Frank";
  entry.metadata.rights_holder = m.rights_holder;
  entry.metadata.isrc = "USRC17607839";
  entry.rule = m.rule;
  scan::ResponseTimes times{1795256100000, 1795256107500, 1795256107600};
  return scan::MatchResponse(who, m.match, event, entry, times);
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(); }

  // (Re)creates stores and control plane; call again after changing config_.
  void Build() {
    control_.reset();
    auto state = state::OpenStateStore("sqlite::memory:");
    ASSERT_TRUE(state) << state.error().ToString();
    state_ = std::move(*state);
    auto queue = queue::OpenJobQueue("sqlite::memory:", queue::QueueOptions{});
    ASSERT_TRUE(queue) << queue.error().ToString();
    queue_ = std::move(*queue);
    auto created = state_->CreateChannel(ChannelSpecNamed("studio"));
    ASSERT_TRUE(created) << created.error().ToString();
    channel_id_ = created->channel.id;
    key_ = created->stream_key;
    ControlPlaneDeps deps;
    deps.config = &config_;
    deps.state = state_.get();
    deps.queue = queue_.get();
    deps.ingest = &ingest_;
    deps.metrics = &metrics_;
    deps.job_enqueued = [this] { ++enqueued_; };
    control_ = std::make_unique<ControlPlane>(deps);
  }

  static state::ChannelSpec ChannelSpecNamed(std::string name) {
    state::ChannelSpec spec;
    spec.name = std::move(name);
    return spec;
  }

  static ingest::NginxHook Hook(HookCall call, std::string app, std::string name,
                                std::string clientid, std::string addr = kPublisherAddr) {
    ingest::NginxHook h;
    h.call = call;
    h.app = std::move(app);
    h.name = std::move(name);
    h.clientid = std::move(clientid);
    h.addr = std::move(addr);
    h.tcurl = "rtmp://127.0.0.1:1935/" + h.app;
    h.type = "live";
    return h;
  }
  ingest::HookAnswer Publish(const std::string& key, const std::string& clientid) {
    return control_->OnPublish(Hook(HookCall::kPublish, "ingest", key, clientid));
  }
  ingest::HookAnswer PublishDone(const std::string& key, const std::string& clientid) {
    return control_->OnPublishDone(Hook(HookCall::kPublishDone, "ingest", key, clientid));
  }
  ingest::HookAnswer Update(const std::string& key, const std::string& clientid) {
    return control_->OnUpdate(Hook(HookCall::kUpdatePublish, "ingest", key, clientid));
  }

  std::optional<state::StreamSession> Live(const std::string& channel_id) {
    auto live = state_->LiveSession(channel_id);
    EXPECT_TRUE(live) << live.error().ToString();
    return live ? *live : std::nullopt;
  }
  state::StreamSession Session(const std::string& stream_id) {
    auto s = state_->GetSession(stream_id);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? *s : state::StreamSession{};
  }
  std::optional<queue::Job> JobOf(const std::string& stream_id) {
    auto job = queue_->GetByKey(stream_id);
    EXPECT_TRUE(job) << job.error().ToString();
    return job ? *job : std::nullopt;
  }
  // Publishes with the channel's key and returns the live session.
  state::StreamSession GoLive(const std::string& clientid = "12") {
    const ingest::HookAnswer a = Publish(key_, clientid);
    EXPECT_EQ(a.status, 302) << a.body;
    auto live = Live(channel_id_);
    EXPECT_TRUE(live.has_value());
    return live.value_or(state::StreamSession{});
  }
  // The scan job the control plane queued for a session, as a worker reads it.
  ScanJob JobFor(const state::StreamSession& s) {
    auto job = JobOf(s.stream_id);
    EXPECT_TRUE(job.has_value());
    if (!job) return {};
    auto parsed = ScanJob::FromJson(job->payload);
    EXPECT_TRUE(parsed) << parsed.error().ToString();
    return parsed.value_or(ScanJob{});
  }

  std::vector<control::Event> Events(const std::string& stream_id) {
    state::EventFilter f;
    f.stream_id = stream_id;
    f.limit = 1000;
    auto events = state_->ListEvents(f);
    EXPECT_TRUE(events) << events.error().ToString();
    return events.value_or(std::vector<control::Event>{});
  }
  std::vector<std::string> EventNames(const std::string& stream_id) {
    std::vector<std::string> names;
    for (const control::Event& e : Events(stream_id)) {
      names.emplace_back(control::EventTypeName(e.type));
    }
    return names;
  }
  std::vector<control::Event> EventsOfType(const std::string& stream_id, EventType type) {
    std::vector<control::Event> out;
    for (control::Event& e : Events(stream_id)) {
      if (e.type == type) out.push_back(std::move(e));
    }
    return out;
  }
  int64_t LastSeq() {
    auto seq = state_->LastEventSeq();
    EXPECT_TRUE(seq) << seq.error().ToString();
    return seq.value_or(-1);
  }
  bool KeyValid(const std::string& key) { return state_->FindChannelByStreamKey(key).has_value(); }

  ServeConfig config_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<queue::JobQueue> queue_;
  FakeIngest ingest_;
  Metrics metrics_;
  std::unique_ptr<ControlPlane> control_;
  int enqueued_ = 0;
  std::string channel_id_;
  std::string key_;
};

const std::vector<std::string> kStarted = {"Session Created", "Stream Start"};
const std::vector<std::string> kStartedThenEnded = {"Session Created", "Stream Start", "Stream End",
                                                    "Session Ended"};

// --- on_publish -------------------------------------------------------------

TEST_F(ControlPlaneTest, GoodKeyIsRedirectedToTheChannelRelayAndAScanIsQueued) {
  const ingest::HookAnswer a = Publish(key_, "12");
  ASSERT_EQ(a.status, 302) << a.body;
  EXPECT_EQ(a.location, ingest_.RelayUrl(channel_id_));
  EXPECT_EQ(a.location.find(key_), std::string::npos) << "the relay URL must not carry the key";

  auto live = Live(channel_id_);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->ingest.value("clientid", ""), "12");
  EXPECT_EQ(live->ingest.value("app", ""), "ingest");
  EXPECT_EQ(live->ingest.value("addr", ""), kPublisherAddr);
  EXPECT_EQ(live->ingest.value("ingest", ""), "fake-ingest");
  EXPECT_EQ(EventNames(live->stream_id), kStarted);

  auto job = JobOf(live->stream_id);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->kind, kScanJobKind);
  EXPECT_EQ(job->state, queue::JobState::kQueued);
  EXPECT_EQ(job->max_attempts, config_.max_attempts);
  EXPECT_EQ(job->payload,
            (ScanJob{live->stream_id, channel_id_, ingest_.ScanInputUrl(channel_id_)}.ToJson()));
  EXPECT_EQ(enqueued_, 1) << "local workers are woken once";
}

TEST_F(ControlPlaneTest, BadKeyIsRefusedAndNothingIsCreated) {
  const int64_t seq = LastSeq();
  for (const std::string& bad :
       std::vector<std::string>{"sk_not-a-real-key-at-all-000000000", "", key_ + "x"}) {
    const ingest::HookAnswer a = Publish(bad, "12");
    EXPECT_EQ(a.status, 403) << "a key of " << bad.size() << " characters: " << a.body;
    EXPECT_EQ(a.body.find(key_), std::string::npos);
  }
  EXPECT_FALSE(Live(channel_id_).has_value());
  auto counts = queue_->Counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->queued + counts->leased + counts->done + counts->dead + counts->cancelled, 0);
  EXPECT_EQ(LastSeq(), seq) << "a refused publish appends no event";
  EXPECT_EQ(enqueued_, 0);
}

TEST_F(ControlPlaneTest, OnlyTheIngestAppTakesKeysAndTheRelayIsLetThrough) {
  const ingest::HookAnswer other =
      control_->OnPublish(Hook(HookCall::kPublish, "live", key_, "12"));
  EXPECT_EQ(other.status, 403);
  EXPECT_NE(other.body.find("ingest"), std::string::npos) << other.body;
  // The relay of an accepted publish comes back from nginx itself as a publish to the relay app.
  const ingest::HookAnswer relay =
      control_->OnPublish(Hook(HookCall::kPublish, "hls", channel_id_, "13", "127.0.0.1"));
  EXPECT_EQ(relay.status, 200);
  EXPECT_FALSE(Live(channel_id_).has_value());
  EXPECT_EQ(enqueued_, 0);
}

TEST_F(ControlPlaneTest, DuplicatePublishHookOfTheSameClientIsRedirectedWithoutASecondSession) {
  const state::StreamSession first = GoLive("12");
  const ingest::HookAnswer again = Publish(key_, "12");
  EXPECT_EQ(again.status, 302);
  EXPECT_EQ(again.location, ingest_.RelayUrl(channel_id_));
  auto live = Live(channel_id_);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->stream_id, first.stream_id);
  auto counts = queue_->Counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->queued, 1);
  EXPECT_EQ(EventNames(first.stream_id), kStarted);
}

TEST_F(ControlPlaneTest, SecondPublisherOnALiveChannelIsRefused) {
  const state::StreamSession first = GoLive("12");
  const ingest::HookAnswer second = Publish(key_, "13");
  EXPECT_EQ(second.status, 403);
  EXPECT_NE(second.body.find("live"), std::string::npos) << second.body;
  auto live = Live(channel_id_);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->stream_id, first.stream_id);
  EXPECT_EQ(live->ingest.value("clientid", ""), "12");
  // The refused encoder's publish_done must not end the first publisher's session.
  EXPECT_TRUE(PublishDone(key_, "13").allowed());
  live = Live(channel_id_);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->stream_id, first.stream_id);
  EXPECT_EQ(JobOf(first.stream_id)->state, queue::JobState::kQueued);
}

TEST_F(ControlPlaneTest, StaleLiveSessionIsEndedForANewPublisher) {
  // No on_update for 3 update intervals (here 0 s) means the old publisher is gone.
  control_->set_update_interval(std::chrono::seconds(0));
  const state::StreamSession old = GoLive("12");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const ingest::HookAnswer a = Publish(key_, "13");
  ASSERT_EQ(a.status, 302) << a.body;
  auto live = Live(channel_id_);
  ASSERT_TRUE(live.has_value());
  EXPECT_NE(live->stream_id, old.stream_id);
  EXPECT_EQ(live->ingest.value("clientid", ""), "13");
  const state::StreamSession ended = Session(old.stream_id);
  EXPECT_EQ(ended.state, state::SessionState::kEnded);
  EXPECT_TRUE(ended.end_reason.starts_with("stale")) << ended.end_reason;
  EXPECT_EQ(JobOf(old.stream_id)->state, queue::JobState::kCancelled);
  EXPECT_EQ(JobOf(live->stream_id)->state, queue::JobState::kQueued);
}

TEST_F(ControlPlaneTest, LiveSessionIsNotStaleJustBecauseEarshotRestarted) {
  // Updates are remembered in memory: a session started an hour ago by an
  // earlier earshot process (its store's clock pinned an hour back) counts as
  // seen when this control plane started, so a second encoder is refused.
  state::SqliteStateStoreOptions options;
  options.clock = [] { return UnixMillisNow() - 3600 * 1000; };
  auto past = state::SqliteStateStore::Open(":memory:", options);
  ASSERT_TRUE(past) << past.error().ToString();
  auto created = (*past)->CreateChannel(ChannelSpecNamed("long show"));
  ASSERT_TRUE(created) << created.error().ToString();
  auto session = (*past)->StartSession(created->channel.id, {{"app", "ingest"}, {"clientid", "12"}});
  ASSERT_TRUE(session) << session.error().ToString();
  ControlPlaneDeps deps;
  deps.config = &config_;
  deps.state = past->get();
  deps.queue = queue_.get();
  deps.ingest = &ingest_;
  ControlPlane restarted(deps);
  const ingest::HookAnswer second =
      restarted.OnPublish(Hook(HookCall::kPublish, "ingest", created->stream_key, "13"));
  EXPECT_EQ(second.status, 403) << second.body;
  auto live = (*past)->LiveSession(created->channel.id);
  ASSERT_TRUE(live && live->has_value());
  EXPECT_EQ((*live)->stream_id, session->stream_id);
}

// --- on_publish_done --------------------------------------------------------

TEST_F(ControlPlaneTest, PublishDoneEndsTheSessionAndCancelsItsScan) {
  const state::StreamSession s = GoLive("12");
  EXPECT_TRUE(PublishDone(key_, "12").allowed());
  EXPECT_FALSE(Live(channel_id_).has_value());
  const state::StreamSession ended = Session(s.stream_id);
  EXPECT_EQ(ended.state, state::SessionState::kEnded);
  EXPECT_EQ(ended.end_reason, "publisher disconnected");
  EXPECT_EQ(JobOf(s.stream_id)->state, queue::JobState::kCancelled);
  EXPECT_EQ(EventNames(s.stream_id), kStartedThenEnded);
}

TEST_F(ControlPlaneTest, DuplicateAndLateHooksAfterTheEndChangeNothing) {
  const state::StreamSession s = GoLive("12");
  ASSERT_TRUE(PublishDone(key_, "12").allowed());
  const int64_t seq = LastSeq();
  // nginx repeats publish_done, and a delayed copy of the publish arrives last.
  EXPECT_TRUE(PublishDone(key_, "12").allowed());
  const ingest::HookAnswer late = Publish(key_, "12");
  EXPECT_EQ(late.status, 403) << "a publish of a client that already left must be refused";
  EXPECT_FALSE(Live(channel_id_).has_value());
  EXPECT_EQ(LastSeq(), seq);
  EXPECT_EQ(EventNames(s.stream_id), kStartedThenEnded);
  // The encoder's real reconnect (a new connection) is accepted.
  const state::StreamSession next = GoLive("14");
  EXPECT_NE(next.stream_id, s.stream_id);
}

TEST_F(ControlPlaneTest, PublishDoneOvertakingItsPublishLeavesNothingLive) {
  // Hooks are separate HTTP requests: publish_done can be answered first.
  const int64_t seq = LastSeq();
  EXPECT_TRUE(PublishDone(key_, "20").allowed());
  EXPECT_TRUE(PublishDone(key_, "20").allowed());  // and twice
  const ingest::HookAnswer late = Publish(key_, "20");
  EXPECT_EQ(late.status, 403) << late.body;
  EXPECT_FALSE(Live(channel_id_).has_value());
  EXPECT_EQ(LastSeq(), seq) << "no session was created, so no event";
  auto counts = queue_->Counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->queued, 0);
  // Another connection is not affected by the tombstone.
  GoLive("21");
}

TEST_F(ControlPlaneTest, TombstoneIsForThatClientAndKeyOnly) {
  // nginx restarted and numbers its clients from 1 again: another channel's
  // encoder that gets the number of a buried client still publishes.
  auto other = state_->CreateChannel(ChannelSpecNamed("other studio"));
  ASSERT_TRUE(other) << other.error().ToString();
  EXPECT_TRUE(PublishDone(key_, "30").allowed());
  const ingest::HookAnswer answer = Publish(other->stream_key, "30");
  EXPECT_EQ(answer.status, 302) << answer.body;
  EXPECT_TRUE(Live(other->channel.id).has_value());
  EXPECT_EQ(Publish(key_, "30").status, 403);  // the buried pair itself stays refused
}

TEST_F(ControlPlaneTest, PublishDoneAfterAKeyResetFindsTheSessionByClient) {
  const state::StreamSession s = GoLive("12");
  ASSERT_TRUE(state_->ResetStreamKey(channel_id_));
  EXPECT_TRUE(PublishDone(key_, "12").allowed());
  EXPECT_EQ(Session(s.stream_id).state, state::SessionState::kEnded);
  EXPECT_EQ(JobOf(s.stream_id)->state, queue::JobState::kCancelled);
}

// --- on_update and on_play ----------------------------------------------------

TEST_F(ControlPlaneTest, UpdateKeepsTheOwnerAndRefusesOthers) {
  GoLive("12");
  EXPECT_EQ(Update(key_, "12").status, 200);
  const ingest::HookAnswer other = Update(key_, "99");
  EXPECT_EQ(other.status, 403);
  EXPECT_NE(other.body.find("another publisher"), std::string::npos) << other.body;
  // update_play is about players, not publishers: let through.
  EXPECT_EQ(control_->OnUpdate(Hook(HookCall::kUpdatePlay, "ingest", key_, "99")).status, 200);
}

TEST_F(ControlPlaneTest, UpdateIsRefusedOnceTheKeyIsReset) {
  GoLive("12");
  ASSERT_TRUE(state_->ResetStreamKey(channel_id_));
  EXPECT_EQ(Update(key_, "12").status, 403);
}

TEST_F(ControlPlaneTest, UpdateIsRefusedForAStoppedStream) {
  const state::StreamSession s = GoLive("12");
  // Stop requested but not yet ended (the state a crash between the two steps leaves).
  ASSERT_TRUE(state_->RequestStop(s.stream_id, "operator"));
  EXPECT_EQ(Update(key_, "12").status, 403);
}

TEST_F(ControlPlaneTest, PlayIsOnlyForLoopbackScanners) {
  EXPECT_EQ(control_->OnPlay(Hook(HookCall::kPlay, "hls", channel_id_, "30", "127.0.0.1")).status,
            200);
  EXPECT_EQ(control_->OnPlay(Hook(HookCall::kPlay, "hls", channel_id_, "31", "::1")).status, 200);
  for (const char* addr : {"203.0.113.7", "10.0.0.1", "127.0.0.2", ""}) {
    EXPECT_EQ(control_->OnPlay(Hook(HookCall::kPlay, "hls", channel_id_, "32", addr)).status, 403)
        << "addr '" << addr << "'";
  }
}

// --- StopStream ----------------------------------------------------------------

TEST_F(ControlPlaneTest, StopDropsThePublisherEndsTheSessionAndRefusesItsNextUpdate) {
  const state::StreamSession s = GoLive("12");
  ASSERT_TRUE(control_->StopStream(channel_id_, /*reset_key=*/false, "terms of service"));
  auto drops = ingest_.drops();
  ASSERT_EQ(drops.size(), 1u);
  EXPECT_EQ(drops[0].app, "ingest");
  EXPECT_EQ(drops[0].clientid, "12");
  EXPECT_TRUE(drops[0].name.empty()) << "the key is never handed around";
  const state::StreamSession ended = Session(s.stream_id);
  EXPECT_EQ(ended.state, state::SessionState::kEnded);
  EXPECT_EQ(ended.end_reason, "stopped: terms of service");
  EXPECT_TRUE(ended.stop_requested);
  EXPECT_EQ(JobOf(s.stream_id)->state, queue::JobState::kCancelled);
  EXPECT_TRUE(KeyValid(key_)) << "a plain stop keeps the key";
  EXPECT_EQ(Update(key_, "12").status, 403);
  EXPECT_EQ(EventNames(s.stream_id), kStartedThenEnded);
  // nginx's publish_done for the dropped publisher changes nothing more.
  EXPECT_TRUE(PublishDone(key_, "12").allowed());
  EXPECT_EQ(Session(s.stream_id).end_reason, "stopped: terms of service");
}

TEST_F(ControlPlaneTest, StopWithoutAReasonSaysItCameFromTheApi) {
  const state::StreamSession s = GoLive("12");
  ASSERT_TRUE(control_->StopStream(channel_id_, false, ""));
  EXPECT_EQ(Session(s.stream_id).end_reason, "stopped: stopped by the API");
}

TEST_F(ControlPlaneTest, StopWithKeyResetRevokesTheKey) {
  const state::StreamSession s = GoLive("12");
  ASSERT_TRUE(control_->StopStream(channel_id_, /*reset_key=*/true, "leaked key"));
  EXPECT_FALSE(KeyValid(key_));
  EXPECT_EQ(Update(key_, "12").status, 403);
  // The encoder reconnects (new connection) with the old key: refused.
  EXPECT_EQ(Publish(key_, "15").status, 403);
  EXPECT_FALSE(Live(channel_id_).has_value());
  EXPECT_EQ(Session(s.stream_id).end_reason, "stopped: leaked key");
}

TEST_F(ControlPlaneTest, StopHoldsWhenTheIngestCannotDropThePublisher) {
  const state::StreamSession s = GoLive("12");
  ingest_.set_fail_drops(true);
  ASSERT_TRUE(control_->StopStream(channel_id_, false, "operator"));
  EXPECT_EQ(ingest_.drops().size(), 1u);
  EXPECT_EQ(Session(s.stream_id).state, state::SessionState::kEnded);
  EXPECT_EQ(JobOf(s.stream_id)->state, queue::JobState::kCancelled);
  // The publisher is still connected to nginx; its next on_update disconnects it.
  EXPECT_EQ(Update(key_, "12").status, 403);
}

TEST_F(ControlPlaneTest, StopOfAChannelThatIsNotLiveIsNotFound) {
  auto idle = control_->StopStream(channel_id_, false, "x");
  ASSERT_FALSE(idle);
  EXPECT_EQ(idle.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(idle.error().message().find(channel_id_), std::string::npos) << idle.error().message();
  auto unknown = control_->StopStream("ch-000000000000", false, "x");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(ingest_.drops().empty());
  EXPECT_TRUE(KeyValid(key_)) << "a failed stop must not reset the key";
}

// --- Rules on identification responses ---------------------------------------------

TEST_F(ControlPlaneTest, BlockedTrackStopsTheStreamAndEventsReadCauseThenEffect) {
  const state::StreamSession s = GoLive("12");
  const ScanJob job = JobFor(s);
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kBlock}));

  EXPECT_EQ(EventNames(s.stream_id),
            (std::vector<std::string>{"Session Created", "Stream Start", "Identification",
                                      "Rule Applied", "Stream End", "Session Ended"}));
  auto applied = EventsOfType(s.stream_id, EventType::kRuleApplied);
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].detail.value("action", ""), "stop");
  EXPECT_EQ(applied[0].detail.value("rule", ""), "block");
  EXPECT_EQ(applied[0].detail["track"].value("title", ""), "Battle");
  const std::string reason = applied[0].detail.value("reason", "");
  EXPECT_NE(reason.find("Battle"), std::string::npos) << reason;

  ASSERT_EQ(ingest_.drops().size(), 1u);
  EXPECT_EQ(ingest_.drops()[0].clientid, "12");
  const state::StreamSession ended = Session(s.stream_id);
  EXPECT_EQ(ended.state, state::SessionState::kEnded);
  EXPECT_EQ(ended.end_reason, "stopped: " + reason);
  EXPECT_TRUE(KeyValid(key_));
  EXPECT_EQ(JobOf(s.stream_id)->state, queue::JobState::kCancelled);
  EXPECT_EQ(Update(key_, "12").status, 403);

  state::IdentificationFilter f;
  f.stream_id = s.stream_id;
  auto ids = state_->ListIdentifications(f);
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 1u);
  EXPECT_EQ((*ids)[0].rule, "block");
  EXPECT_EQ((*ids)[0].status, "match_started");
  EXPECT_EQ((*ids)[0].track_id, 7);
  EXPECT_DOUBLE_EQ((*ids)[0].stream_offset_s, 12.5);
  EXPECT_DOUBLE_EQ((*ids)[0].reference_offset_s, 3.25);
  EXPECT_EQ((*ids)[0].started_at_ms, 1795256100000);

  const std::string text = metrics_.Render({});
  EXPECT_NE(text.find("earshot_identifications_total{rule=\"block\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("earshot_rule_actions_total{action=\"stop\"} 1\n"), std::string::npos)
      << text;

  // The scanner ends the match as the stream goes down: no second stop, no alarm.
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kBlock,
                                               .type = recognition::StreamEvent::Type::kEnded}));
  EXPECT_EQ(EventsOfType(s.stream_id, EventType::kRuleApplied).size(), 1u);
  EXPECT_TRUE(EventsOfType(s.stream_id, EventType::kAlarm).empty());
  EXPECT_EQ(ingest_.drops().size(), 1u);
  // A second blocked track found in the same flush: the stream is stopped already, no alarm.
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kBlock, .match = 2}));
  EXPECT_TRUE(EventsOfType(s.stream_id, EventType::kAlarm).empty());
  EXPECT_EQ(ingest_.drops().size(), 1u);
}

TEST_F(ControlPlaneTest, BlockWithNotifyReportsAndTheStreamGoesOn) {
  config_.block_action = "notify";
  Build();
  const state::StreamSession s = GoLive("12");
  const ScanJob job = JobFor(s);
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kBlock}));
  EXPECT_EQ(EventNames(s.stream_id), (std::vector<std::string>{"Session Created", "Stream Start",
                                                               "Identification", "Rule Applied"}));
  auto applied = EventsOfType(s.stream_id, EventType::kRuleApplied);
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].detail.value("action", ""), "notify");
  EXPECT_TRUE(ingest_.drops().empty());
  EXPECT_TRUE(Live(channel_id_).has_value());
  EXPECT_EQ(Update(key_, "12").status, 200);
}

TEST_F(ControlPlaneTest, BlockWithStopAndResetKeyRevokesTheKey) {
  config_.block_action = "stop_and_reset_key";
  Build();
  const state::StreamSession s = GoLive("12");
  const ScanJob job = JobFor(s);
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kBlock}));
  auto applied = EventsOfType(s.stream_id, EventType::kRuleApplied);
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].detail.value("action", ""), "stop_and_reset_key");
  EXPECT_EQ(Session(s.stream_id).state, state::SessionState::kEnded);
  EXPECT_EQ(ingest_.drops().size(), 1u);
  EXPECT_FALSE(KeyValid(key_));
  EXPECT_EQ(Publish(key_, "16").status, 403);
}

TEST_F(ControlPlaneTest, ChannelBlockActionOverridesTheDeploymentDefault) {
  // Deployment default: stop. This channel only wants to be told.
  state::ChannelUpdate u;
  u.block_action = std::optional<control::BlockAction>(control::BlockAction::kNotify);
  ASSERT_TRUE(state_->UpdateChannel(channel_id_, u));
  const state::StreamSession s = GoLive("12");
  const ScanJob job = JobFor(s);
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kBlock}));
  auto applied = EventsOfType(s.stream_id, EventType::kRuleApplied);
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].detail.value("action", ""), "notify");
  EXPECT_TRUE(Live(channel_id_).has_value());
  EXPECT_TRUE(ingest_.drops().empty());
}

TEST_F(ControlPlaneTest, ChannelOverrideBlockToAllowOnlyRecords) {
  state::ChannelUpdate u;
  u.rule_overrides = std::map<std::string, std::string>{{"block", "allow"}};
  ASSERT_TRUE(state_->UpdateChannel(channel_id_, u));
  const state::StreamSession s = GoLive("12");
  const ScanJob job = JobFor(s);
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kBlock}));
  EXPECT_EQ(EventNames(s.stream_id),
            (std::vector<std::string>{"Session Created", "Stream Start", "Identification"}));
  auto ident = EventsOfType(s.stream_id, EventType::kIdentification);
  ASSERT_EQ(ident.size(), 1u);
  EXPECT_EQ(ident[0].detail.value("rule", ""), "allow");
  EXPECT_EQ(ident[0].detail.value("track_rule", ""), "block");
  EXPECT_TRUE(Live(channel_id_).has_value());
  EXPECT_TRUE(ingest_.drops().empty());
  state::IdentificationFilter f;
  f.stream_id = s.stream_id;
  auto ids = state_->ListIdentifications(f);
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 1u);
  EXPECT_EQ((*ids)[0].rule, "allow");
  EXPECT_EQ((*ids)[0].track_rule, "block");
}

TEST_F(ControlPlaneTest, MuteReportsTheIntervalAtTheEndOfTheMatch) {
  const state::StreamSession s = GoLive("12");
  const ScanJob job = JobFor(s);
  control_->OnResponse(
      job, MakeResponse(job, {.rule = store::BusinessRule::kMute, .start_s = 40, .end_s = 50}));
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kMute,
                                               .type = recognition::StreamEvent::Type::kOngoing,
                                               .start_s = 40,
                                               .end_s = 70}));
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kMute,
                                               .type = recognition::StreamEvent::Type::kEnded,
                                               .start_s = 40,
                                               .end_s = 95.5}));
  EXPECT_EQ(EventNames(s.stream_id),
            (std::vector<std::string>{"Session Created", "Stream Start", "Identification",
                                      "Rule Applied", "Identification", "Rule Applied"}));
  auto applied = EventsOfType(s.stream_id, EventType::kRuleApplied);
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0].detail.value("action", ""), "mute");
  EXPECT_EQ(applied[0].detail["mute"], (nlohmann::json{{"start_s", 40.0}}));
  EXPECT_EQ(applied[1].detail.value("action", ""), "mute");
  EXPECT_EQ(applied[1].detail["mute"], (nlohmann::json{{"start_s", 40.0}, {"end_s", 95.5}}));
  EXPECT_TRUE(Live(channel_id_).has_value());
  EXPECT_TRUE(ingest_.drops().empty());

  state::IdentificationFilter f;
  f.stream_id = s.stream_id;
  auto ids = state_->ListIdentifications(f);
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 1u) << "one record per match, kept at its latest state";
  EXPECT_EQ((*ids)[0].status, "match_ended");
  EXPECT_DOUBLE_EQ((*ids)[0].duration_s, 55.5);
  const std::string text = metrics_.Render({});
  EXPECT_NE(text.find("earshot_rule_actions_total{action=\"mute\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("earshot_identifications_total{rule=\"mute\"} 1\n"), std::string::npos)
      << text;
}

TEST_F(ControlPlaneTest, AllowedAndTrackedMusicIsOnlyRecorded) {
  const state::StreamSession s = GoLive("12");
  const ScanJob job = JobFor(s);
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kAllow, .match = 1}));
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kTrack, .match = 2}));
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kTrack,
                                               .type = recognition::StreamEvent::Type::kOngoing,
                                               .match = 2}));
  control_->OnResponse(job, MakeResponse(job, {.rule = store::BusinessRule::kAllow,
                                               .type = recognition::StreamEvent::Type::kEnded,
                                               .match = 1}));
  EXPECT_EQ(EventNames(s.stream_id),
            (std::vector<std::string>{"Session Created", "Stream Start", "Identification",
                                      "Identification", "Identification"}))
      << "match_ongoing is recorded but not an event";
  EXPECT_TRUE(Live(channel_id_).has_value());
  EXPECT_TRUE(ingest_.drops().empty());
  state::IdentificationFilter f;
  f.stream_id = s.stream_id;
  auto ids = state_->ListIdentifications(f);
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 2u);
  std::map<std::string, std::string> status_by_rule;
  for (const auto& r : *ids) status_by_rule[r.rule] = r.status;
  EXPECT_EQ(status_by_rule["allow"], "match_ended");
  EXPECT_EQ(status_by_rule["track"], "match_ongoing");
  EXPECT_EQ(metrics_.Render({}).find("earshot_rule_actions_total{"), std::string::npos);
}

TEST_F(ControlPlaneTest, BlockFailingToStopRaisesAnAlarm) {
  const state::StreamSession s = GoLive("12");
  // A scan started without a channel (e.g. by hand): a block cannot stop anything.
  ScanJob no_channel = JobFor(s);
  no_channel.channel_id.clear();
  control_->OnResponse(no_channel, MakeResponse(no_channel, {.rule = store::BusinessRule::kBlock}));
  auto alarms = EventsOfType(s.stream_id, EventType::kAlarm);
  ASSERT_EQ(alarms.size(), 1u);
  EXPECT_EQ(alarms[0].detail.value("alarm", ""), "rule not applied");
  EXPECT_NE(alarms[0].detail.value("error", "").find("no channel"), std::string::npos)
      << alarms[0].detail.dump();
}

TEST_F(ControlPlaneTest, LateBlockOfAnEndedStreamDoesNotStopTheChannelsNextStream) {
  // The publisher reconnected while the old scan was still flushing: a block
  // found in the old stream must not stop the new one.
  const state::StreamSession old = GoLive("12");
  const ScanJob old_job = JobFor(old);
  ASSERT_TRUE(PublishDone(key_, "12").allowed());
  const state::StreamSession next = GoLive("14");
  control_->OnResponse(old_job, MakeResponse(old_job, {.rule = store::BusinessRule::kBlock}));
  auto live = Live(channel_id_);
  ASSERT_TRUE(live.has_value()) << "the new stream was stopped by the old stream's match";
  EXPECT_EQ(live->stream_id, next.stream_id);
  EXPECT_TRUE(ingest_.drops().empty());
  EXPECT_EQ(EventsOfType(old.stream_id, EventType::kIdentification).size(), 1u);
  EXPECT_EQ(EventNames(next.stream_id), kStarted);
}

// --- Scan lifecycle observer ------------------------------------------------------

TEST_F(ControlPlaneTest, ResumedScanRaisesAnAlarmAndAFailedScanAStreamFailure) {
  const state::StreamSession s = GoLive("12");
  const ScanJob job = JobFor(s);
  control_->OnScanStarted(job, 1);
  EXPECT_TRUE(EventsOfType(s.stream_id, EventType::kAlarm).empty()) << "a first attempt is normal";
  control_->OnScanStarted(job, 2);
  auto alarms = EventsOfType(s.stream_id, EventType::kAlarm);
  ASSERT_EQ(alarms.size(), 1u);
  EXPECT_EQ(alarms[0].detail.value("alarm", ""), "scan resumed");
  EXPECT_EQ(alarms[0].detail.value("attempt", 0), 2);

  scan::ScanReport ended;
  ended.status = "ended";
  control_->OnScanFinished(job, ended);
  EXPECT_TRUE(EventsOfType(s.stream_id, EventType::kStreamFailure).empty());
  scan::ScanReport failed;
  failed.status = "failed";
  failed.scan_id = "20261121T101500Z-3f9a1c2e";
  failed.error = Error(ErrorCode::kUnavailable, "rtmp input: connection refused");
  control_->OnScanFinished(job, failed);
  auto failures = EventsOfType(s.stream_id, EventType::kStreamFailure);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].detail.value("reason", "").find("connection refused"), std::string::npos);
  EXPECT_EQ(failures[0].detail.value("scan_id", ""), failed.scan_id);
}

TEST_F(ControlPlaneTest, ConnectedScanRecordsTheAudioFormatAndHealth) {
  const state::StreamSession s = GoLive("12");
  media::AudioStreamInfo info;
  info.codec = "aac";
  info.source_sample_rate = 48000;
  info.source_channels = 2;
  info.container = "flv";
  control_->OnConnected(JobFor(s), info);
  const state::StreamSession after = Session(s.stream_id);
  EXPECT_EQ(after.ingest["audio"].value("codec", ""), "aac");
  EXPECT_EQ(after.ingest["audio"].value("sample_rate", 0), 48000);
  EXPECT_EQ(after.ingest.value("clientid", ""), "12") << "the merge keeps what the ingest reported";
  EXPECT_EQ(after.health, state::StreamHealth::kHealthy);
  control_->OnInputLost(JobFor(s), "stall: no packet for 10 s");
  EXPECT_EQ(Session(s.stream_id).health, state::StreamHealth::kStarving);
  control_->OnConnected(JobFor(s), info);
  EXPECT_EQ(Session(s.stream_id).health, state::StreamHealth::kHealthy) << "reconnected";
}

}  // namespace
}  // namespace earshot::server
