// Stream sessions in SqliteStateStore: start/end/fail, one live session per
// channel, stop requests, ingest patches, health, and the events written in
// the same transaction as the session change (proved by making the event
// insert fail and checking that the session change was rolled back).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control/ids.h"
#include "state_test_util.h"
#include "store/sqlite.h"

namespace earshot::state {
namespace {

using control::EventType;
using testing::FailsWith;
using testing::Must;
using testing::StateStoreTest;
using testing::Types;

class SessionsTest : public StateStoreTest {
 protected:
  std::vector<control::Event> EventsOf(std::string_view stream_id) {
    EventFilter filter;
    filter.stream_id = std::string(stream_id);
    return testing::AllEvents(*store_, filter);
  }

  // Makes every insert of an event of `type` fail, from another connection,
  // as a disk error at that point would.
  void BreakEventInserts(std::string_view type) {
    auto db = Must(store::Database::Open(path_));
    Must(db.Exec("CREATE TRIGGER test_break_events BEFORE INSERT ON events WHEN NEW.type = '" +
                 std::string(type) + "' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"));
  }
  void RepairEventInserts() {
    auto db = Must(store::Database::Open(path_));
    Must(db.Exec("DROP TRIGGER test_break_events"));
  }
};

TEST_F(SessionsTest, StartCreatesALiveSessionWithItsEvents) {
  const CreatedChannel created = CreateChannel("Radio");
  clock_.Advance(250);
  const nlohmann::json ingest = {{"app", "live"}, {"clientid", "17"}, {"addr", "127.0.0.1"}};
  const StreamSession s = Must(store_->StartSession(created.channel.id, ingest));
  EXPECT_TRUE(control::IsStreamId(s.stream_id)) << s.stream_id;
  EXPECT_EQ(s.channel_id, created.channel.id);
  EXPECT_EQ(s.state, SessionState::kLive);
  EXPECT_EQ(s.health, StreamHealth::kUnknown);
  EXPECT_EQ(s.started_ms, testing::kStartMs + 250);
  EXPECT_EQ(s.ended_ms, 0);
  EXPECT_EQ(s.end_reason, "");
  EXPECT_FALSE(s.stop_requested);
  EXPECT_EQ(s.ingest, ingest);
  EXPECT_EQ(s.channel, ChannelToJson(created.channel));  // the snapshot
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)), s);
  EXPECT_EQ(Must(store_->LiveSession(created.channel.id)), s);

  const auto events = EventsOf(s.stream_id);
  ASSERT_EQ(Types(events), (std::vector<EventType>{EventType::kSessionCreated,
                                                   EventType::kStreamStart}));
  for (const control::Event& e : events) {
    EXPECT_EQ(e.channel_id, created.channel.id);
    EXPECT_EQ(e.time_ms, s.started_ms);
    EXPECT_EQ(e.detail["channel_name"], "Radio");
  }
  EXPECT_LT(events[0].seq, events[1].seq);
}

TEST_F(SessionsTest, NullIngestIsAnEmptyObjectAndOtherValuesAreRefused) {
  const CreatedChannel created = CreateChannel();
  EXPECT_TRUE(FailsWith(store_->StartSession(created.channel.id, nlohmann::json::array()),
                        ErrorCode::kInvalidArgument, "JSON object"));
  EXPECT_TRUE(FailsWith(store_->StartSession(created.channel.id, "live"),
                        ErrorCode::kInvalidArgument, "JSON object"));
  EXPECT_FALSE(Must(store_->LiveSession(created.channel.id)).has_value());
  const StreamSession s = Must(store_->StartSession(created.channel.id, nullptr));
  EXPECT_EQ(s.ingest, nlohmann::json::object());
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)).ingest, nlohmann::json::object());
}

TEST_F(SessionsTest, SecondStartOnALiveChannelIsAlreadyExists) {
  const CreatedChannel created = CreateChannel();
  const StreamSession first = Must(store_->StartSession(created.channel.id, {}));
  const int64_t events_before = Must(store_->LastEventSeq());
  EXPECT_TRUE(FailsWith(store_->StartSession(created.channel.id, {}), ErrorCode::kAlreadyExists,
                        first.stream_id));
  // From another connection too.
  auto second = Open();
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(FailsWith(second->StartSession(created.channel.id, {}), ErrorCode::kAlreadyExists,
                        first.stream_id));
  EXPECT_EQ(Must(store_->LastEventSeq()), events_before);  // nothing was appended
  EXPECT_EQ(Must(store_->ListSessions(created.channel.id, 10)).size(), 1u);

  // Another channel is independent.
  const CreatedChannel other = CreateChannel("Other");
  Must(store_->StartSession(other.channel.id, {}));

  // Once ended, the channel can go live again, with a new stream id.
  Must(store_->EndSession(first.stream_id, "publish_done"));
  const StreamSession again = Must(store_->StartSession(created.channel.id, {}));
  EXPECT_NE(again.stream_id, first.stream_id);
}

TEST_F(SessionsTest, StartOnAnUnknownChannelIsNotFound) {
  EXPECT_TRUE(FailsWith(store_->StartSession("ch-000000000000", {}), ErrorCode::kNotFound,
                        "ch-000000000000"));
  EXPECT_EQ(Must(store_->LastEventSeq()), 0);
}

TEST_F(SessionsTest, EndSetsTheStateAndAppendsEndEventsOnce) {
  const CreatedChannel created = CreateChannel("Radio");
  const StreamSession s = Must(store_->StartSession(created.channel.id, {}));
  clock_.Advance(90'500);
  const StreamSession ended = Must(store_->EndSession(s.stream_id, "publish_done"));
  EXPECT_EQ(ended.state, SessionState::kEnded);
  EXPECT_EQ(ended.ended_ms, s.started_ms + 90'500);
  EXPECT_EQ(ended.end_reason, "publish_done");
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)), ended);
  EXPECT_FALSE(Must(store_->LiveSession(created.channel.id)).has_value());

  auto events = EventsOf(s.stream_id);
  ASSERT_EQ(Types(events),
            (std::vector<EventType>{EventType::kSessionCreated, EventType::kStreamStart,
                                    EventType::kStreamEnd, EventType::kSessionEnded}));
  EXPECT_EQ(events[2].detail["reason"], "publish_done");
  EXPECT_EQ(events[3].detail["duration_s"], 90.5);
  EXPECT_EQ(events[3].detail["channel_name"], "Radio");

  // Idempotent: the same session back, nothing changed, no new event.
  clock_.Advance(10'000);
  EXPECT_EQ(Must(store_->EndSession(s.stream_id, "again")), ended);
  EXPECT_EQ(Must(store_->FailSession(s.stream_id, "late failure")), ended);
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)), ended);
  EXPECT_EQ(EventsOf(s.stream_id).size(), 4u);

  EXPECT_TRUE(FailsWith(store_->EndSession("st-0000000000000000000000", "x"),
                        ErrorCode::kNotFound, "st-0000000000000000000000"));
}

TEST_F(SessionsTest, FailEndsWithAFailureEvent) {
  const CreatedChannel created = CreateChannel();
  const StreamSession s = Must(store_->StartSession(created.channel.id, {}));
  const StreamSession failed = Must(store_->FailSession(s.stream_id, "ingest vanished"));
  EXPECT_EQ(failed.state, SessionState::kEnded);
  EXPECT_EQ(failed.end_reason, "failed: ingest vanished");
  const auto events = EventsOf(s.stream_id);
  ASSERT_EQ(Types(events), (std::vector<EventType>{
                               EventType::kSessionCreated, EventType::kStreamStart,
                               EventType::kStreamFailure, EventType::kStreamEnd,
                               EventType::kSessionEnded}));
  EXPECT_EQ(events[2].detail["reason"], "ingest vanished");
  EXPECT_EQ(events[3].detail["reason"], "failed: ingest vanished");
  // Once ended, ending again changes nothing.
  EXPECT_EQ(Must(store_->EndSession(s.stream_id, "later")), failed);
  EXPECT_EQ(EventsOf(s.stream_id).size(), 5u);
}

TEST_F(SessionsTest, ReasonsAreStoredAsValidUtf8) {
  const CreatedChannel created = CreateChannel();
  const StreamSession s = Must(store_->StartSession(created.channel.id, {}));
  const StreamSession ended = Must(store_->EndSession(s.stream_id, "bad \xFF byte"));
  EXPECT_EQ(ended.end_reason, "bad \xEF\xBF\xBD byte");
  for (const control::Event& e : EventsOf(s.stream_id)) {
    EXPECT_NO_THROW((void)control::EventToJson(e).dump());
  }
  EXPECT_NO_THROW((void)StreamSessionToJson(Must(store_->GetSession(s.stream_id))).dump());
}

TEST_F(SessionsTest, RequestStopMarksTheLiveSessionAndTheLatestReasonWins) {
  const CreatedChannel created = CreateChannel();
  const StreamSession s = Must(store_->StartSession(created.channel.id, {}));
  Must(store_->RequestStop(s.stream_id, "blocked track"));
  StreamSession got = Must(store_->GetSession(s.stream_id));
  EXPECT_TRUE(got.stop_requested);
  EXPECT_EQ(got.stop_reason, "blocked track");
  EXPECT_EQ(got.state, SessionState::kLive);  // stopping is the ingest's job
  Must(store_->RequestStop(s.stream_id, "operator"));
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)).stop_reason, "operator");

  Must(store_->EndSession(s.stream_id, "stopped"));
  EXPECT_TRUE(FailsWith(store_->RequestStop(s.stream_id, "too late"),
                        ErrorCode::kFailedPrecondition, "already ended"));
  got = Must(store_->GetSession(s.stream_id));
  EXPECT_EQ(got.stop_reason, "operator");
  EXPECT_TRUE(FailsWith(store_->RequestStop("st-0000000000000000000000", "x"),
                        ErrorCode::kNotFound));
}

TEST_F(SessionsTest, IngestPatchesMerge) {
  const CreatedChannel created = CreateChannel();
  const StreamSession s = Must(store_->StartSession(
      created.channel.id, {{"app", "live"}, {"clientid", "9"}, {"addr", "127.0.0.1"}}));
  Must(store_->UpdateSessionIngest(
      s.stream_id, {{"audio", {{"codec", "aac"}, {"sample_rate", 48000}}}, {"addr", nullptr}}));
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)).ingest,
            (nlohmann::json{{"app", "live"},
                            {"clientid", "9"},
                            {"audio", {{"codec", "aac"}, {"sample_rate", 48000}}}}));
  Must(store_->UpdateSessionIngest(s.stream_id, {{"audio", {{"channels", 2}}}}));
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)).ingest["audio"],
            (nlohmann::json{{"codec", "aac"}, {"sample_rate", 48000}, {"channels", 2}}));

  // Allowed after the end (the scanner reports late).
  Must(store_->EndSession(s.stream_id, "done"));
  Must(store_->UpdateSessionIngest(s.stream_id, {{"video", false}}));
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)).ingest["video"], false);

  EXPECT_TRUE(FailsWith(store_->UpdateSessionIngest(s.stream_id, nlohmann::json::array()),
                        ErrorCode::kInvalidArgument, "JSON object"));
  EXPECT_TRUE(FailsWith(store_->UpdateSessionIngest("st-0000000000000000000000", {{"a", 1}}),
                        ErrorCode::kNotFound));
}

TEST_F(SessionsTest, Health) {
  const CreatedChannel created = CreateChannel();
  const StreamSession s = Must(store_->StartSession(created.channel.id, {}));
  for (StreamHealth h : {StreamHealth::kHealthy, StreamHealth::kStarving, StreamHealth::kUnknown,
                         StreamHealth::kHealthy}) {
    Must(store_->SetHealth(s.stream_id, h));
    EXPECT_EQ(Must(store_->GetSession(s.stream_id)).health, h);
  }
  EXPECT_TRUE(FailsWith(store_->SetHealth("st-0000000000000000000000", StreamHealth::kHealthy),
                        ErrorCode::kNotFound, "st-0000000000000000000000"));
}

TEST_F(SessionsTest, LiveLookupsAndLists) {
  const CreatedChannel a = CreateChannel("A");
  const CreatedChannel b = CreateChannel("B");
  const CreatedChannel idle = CreateChannel("Idle");
  const StreamSession sa =
      Must(store_->StartSession(a.channel.id, {{"app", "live"}, {"clientid", 41}}));
  clock_.Advance(1);
  const StreamSession sb =
      Must(store_->StartSession(b.channel.id, {{"app", "live"}, {"clientid", "42"}}));

  EXPECT_FALSE(Must(store_->LiveSession(idle.channel.id)).has_value());
  EXPECT_FALSE(Must(store_->LiveSession("ch-000000000000")).has_value());

  // The ingest may report clientid as a number or a string.
  EXPECT_EQ(Must(store_->LiveSessionByIngestClient("live", "41"))->stream_id, sa.stream_id);
  EXPECT_EQ(Must(store_->LiveSessionByIngestClient("live", "42"))->stream_id, sb.stream_id);
  EXPECT_FALSE(Must(store_->LiveSessionByIngestClient("other", "41")).has_value());
  EXPECT_FALSE(Must(store_->LiveSessionByIngestClient("live", "43")).has_value());

  std::vector<std::string> live;
  for (const StreamSession& s : Must(store_->ListLiveSessions())) live.push_back(s.stream_id);
  EXPECT_EQ(live, (std::vector<std::string>{sa.stream_id, sb.stream_id}));

  // nginx restarted (client ids from 1 again) while a's session stayed
  // live: a new publish with the same client id is the one found.
  const CreatedChannel c = CreateChannel("C");
  const StreamSession sc =
      Must(store_->StartSession(c.channel.id, {{"app", "live"}, {"clientid", "41"}}));
  EXPECT_EQ(Must(store_->LiveSessionByIngestClient("live", "41"))->stream_id, sc.stream_id);
  Must(store_->EndSession(sc.stream_id, "done"));
  EXPECT_EQ(Must(store_->LiveSessionByIngestClient("live", "41"))->stream_id, sa.stream_id);

  Must(store_->EndSession(sa.stream_id, "done"));
  EXPECT_FALSE(Must(store_->LiveSessionByIngestClient("live", "41")).has_value());
  EXPECT_EQ(Must(store_->ListLiveSessions()).size(), 1u);

  // A channel's sessions, newest first, limited.
  std::vector<std::string> started = {sa.stream_id};
  for (int i = 0; i < 3; ++i) {
    const StreamSession s = Must(store_->StartSession(a.channel.id, {}));
    started.push_back(s.stream_id);
    Must(store_->EndSession(s.stream_id, "done"));
  }
  std::vector<std::string> listed;
  for (const StreamSession& s : Must(store_->ListSessions(a.channel.id, 3))) {
    listed.push_back(s.stream_id);
  }
  EXPECT_EQ(listed, (std::vector<std::string>{started[3], started[2], started[1]}));
  EXPECT_EQ(Must(store_->ListSessions(a.channel.id, 0)).size(), 4u);  // default limit
  EXPECT_EQ(Must(store_->ListSessions(a.channel.id, 100000)).size(), 4u);
  EXPECT_TRUE(Must(store_->ListSessions(idle.channel.id, 10)).empty());
}

TEST_F(SessionsTest, RunningSessionsKeepTheirChannelSnapshot) {
  const CreatedChannel created = CreateChannel("Before");
  const StreamSession s = Must(store_->StartSession(created.channel.id, {}));
  ChannelUpdate rename;
  rename.name = "After";
  Must(store_->UpdateChannel(created.channel.id, rename));
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)).channel["name"], "Before");
  const StreamSession ended = Must(store_->EndSession(s.stream_id, "done"));
  // The end events name the channel as it was when the stream started.
  const auto events = EventsOf(s.stream_id);
  EXPECT_EQ(events.back().detail["channel_name"], "Before");
  const StreamSession next = Must(store_->StartSession(created.channel.id, {}));
  EXPECT_EQ(next.channel["name"], "After");
  EXPECT_EQ(ended.channel["name"], "Before");
}

// Session changes and their events commit together: when an event cannot be
// written, the session change is undone too.
TEST_F(SessionsTest, StartIsAtomicWithItsEvents) {
  const CreatedChannel created = CreateChannel();
  BreakEventInserts("Stream Start");
  auto failed = store_->StartSession(created.channel.id, {});
  ASSERT_FALSE(failed.has_value());
  EXPECT_NE(failed.error().message().find("injected failure"), std::string::npos)
      << failed.error().ToString();
  // No session, and not even the "Session Created" written before the failure.
  EXPECT_FALSE(Must(store_->LiveSession(created.channel.id)).has_value());
  EXPECT_TRUE(Must(store_->ListSessions(created.channel.id, 10)).empty());
  EXPECT_EQ(Must(store_->LastEventSeq()), 0);

  RepairEventInserts();
  const StreamSession s = Must(store_->StartSession(created.channel.id, {}));
  EXPECT_EQ(Types(EventsOf(s.stream_id)),
            (std::vector<EventType>{EventType::kSessionCreated, EventType::kStreamStart}));
}

TEST_F(SessionsTest, EndIsAtomicWithItsEvents) {
  const CreatedChannel created = CreateChannel();
  const StreamSession s = Must(store_->StartSession(created.channel.id, {}));
  const int64_t seq_before = Must(store_->LastEventSeq());
  BreakEventInserts("Session Ended");
  EXPECT_FALSE(store_->EndSession(s.stream_id, "done").has_value());
  EXPECT_FALSE(store_->FailSession(s.stream_id, "broken").has_value());
  // Still live, no "Stream End"/"Stream Failure" left behind.
  EXPECT_EQ(Must(store_->GetSession(s.stream_id)), s);
  EXPECT_EQ(Must(store_->LiveSession(created.channel.id))->stream_id, s.stream_id);
  EXPECT_EQ(Must(store_->LastEventSeq()), seq_before);
  EXPECT_TRUE(FailsWith(store_->StartSession(created.channel.id, {}), ErrorCode::kAlreadyExists));

  RepairEventInserts();
  Must(store_->EndSession(s.stream_id, "done"));
  EXPECT_EQ(Types(EventsOf(s.stream_id)),
            (std::vector<EventType>{EventType::kSessionCreated, EventType::kStreamStart,
                                    EventType::kStreamEnd, EventType::kSessionEnded}));
}

}  // namespace
}  // namespace earshot::state
