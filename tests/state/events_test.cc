// The event log in SqliteStateStore: append, cursor paging in seq order,
// filters by type, channel and stream, limits, and text repair.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "state_test_util.h"

namespace earshot::state {
namespace {

using control::Event;
using control::EventType;
using testing::FailsWith;
using testing::Must;
using testing::StateStoreTest;
using testing::Types;

using EventsTest = StateStoreTest;

std::vector<int64_t> Seqs(const std::vector<Event>& events) {
  std::vector<int64_t> seqs;
  for (const Event& e : events) seqs.push_back(e.seq);
  return seqs;
}

TEST_F(EventsTest, AppendStampsTimeAndIncreasingSeq) {
  EXPECT_EQ(Must(store_->LastEventSeq()), 0);
  EXPECT_TRUE(Must(store_->ListEvents({})).empty());
  const Event first =
      Must(store_->AppendEvent(EventType::kAlarm, "", "", {{"message", "disk almost full"}}));
  clock_.Advance(10);
  const Event second =
      Must(store_->AppendEvent(EventType::kRuleApplied, "ch-aaaaaaaaaaaa", "st-1", nullptr));
  EXPECT_GT(first.seq, 0);
  EXPECT_GT(second.seq, first.seq);
  EXPECT_EQ(first.time_ms, testing::kStartMs);
  EXPECT_EQ(second.time_ms, testing::kStartMs + 10);
  EXPECT_EQ(first.detail["message"], "disk almost full");
  EXPECT_EQ(second.detail, nlohmann::json::object());  // null is stored as {}
  EXPECT_EQ(Must(store_->LastEventSeq()), second.seq);

  // What was returned is what is stored.
  EXPECT_EQ(Must(store_->ListEvents({})), (std::vector<Event>{first, second}));
}

TEST_F(EventsTest, CursorPagesInSeqOrderWithoutGapsOrRepeats) {
  std::vector<int64_t> appended;
  for (int i = 0; i < 25; ++i) {
    appended.push_back(
        Must(store_->AppendEvent(EventType::kIdentification, "", "", {{"i", i}})).seq);
  }
  std::vector<int64_t> seen;
  EventFilter filter;
  filter.limit = 7;
  for (int page_no = 0; page_no < 10; ++page_no) {
    const auto page = Must(store_->ListEvents(filter));
    if (page.empty()) break;
    EXPECT_LE(page.size(), 7u);
    for (const Event& e : page) seen.push_back(e.seq);
    filter.after_seq = page.back().seq;
  }
  EXPECT_EQ(seen, appended);

  // after_seq is exclusive; a cursor at the end gives nothing.
  filter = {};
  filter.after_seq = appended[9];
  EXPECT_EQ(Must(store_->ListEvents(filter)).front().seq, appended[10]);
  filter.after_seq = appended.back();
  EXPECT_TRUE(Must(store_->ListEvents(filter)).empty());
  filter.after_seq = -100;
  EXPECT_EQ(Must(store_->ListEvents(filter)).size(), 25u);
}

TEST_F(EventsTest, LimitIsClamped) {
  for (int i = 0; i < 120; ++i) Must(store_->AppendEvent(EventType::kAlarm, "", "", {}));
  EventFilter filter;
  filter.limit = 0;  // the default, 100
  EXPECT_EQ(Must(store_->ListEvents(filter)).size(), 100u);
  filter.limit = -3;
  EXPECT_EQ(Must(store_->ListEvents(filter)).size(), 100u);
  filter.limit = 1;
  EXPECT_EQ(Must(store_->ListEvents(filter)).size(), 1u);
  filter.limit = 100000;  // clamped to 1000: everything here
  EXPECT_EQ(Must(store_->ListEvents(filter)).size(), 120u);
}

TEST_F(EventsTest, FiltersByTypeChannelAndStream) {
  const CreatedChannel a = CreateChannel("A");
  const CreatedChannel b = CreateChannel("B");
  const StreamSession sa = Must(store_->StartSession(a.channel.id, {}));
  const StreamSession sb = Must(store_->StartSession(b.channel.id, {}));
  Must(store_->AppendEvent(EventType::kIdentification, a.channel.id, sa.stream_id, {}));
  Must(store_->AppendEvent(EventType::kRuleApplied, a.channel.id, sa.stream_id, {}));
  Must(store_->AppendEvent(EventType::kIdentification, b.channel.id, sb.stream_id, {}));
  Must(store_->AppendEvent(EventType::kAlarm, "", "", {}));
  Must(store_->EndSession(sa.stream_id, "done"));
  const StreamSession sa2 = Must(store_->StartSession(a.channel.id, {}));
  Must(store_->AppendEvent(EventType::kIdentification, a.channel.id, sa2.stream_id, {}));

  const std::vector<Event> all = testing::AllEvents(*store_);
  ASSERT_EQ(all.size(), 13u);
  // The reference: filter the whole log by hand.
  auto expect = [&](const EventFilter& filter) {
    std::vector<int64_t> want;
    for (const Event& e : all) {
      if (filter.channel_id && e.channel_id != *filter.channel_id) continue;
      if (filter.stream_id && e.stream_id != *filter.stream_id) continue;
      if (filter.types && !filter.types->empty() &&
          std::find(filter.types->begin(), filter.types->end(), e.type) == filter.types->end()) {
        continue;
      }
      if (e.seq <= filter.after_seq) continue;
      want.push_back(e.seq);
    }
    const auto got = Must(store_->ListEvents(filter));
    EXPECT_EQ(Seqs(got), want);
    return got;
  };

  EventFilter f;
  f.channel_id = a.channel.id;
  auto got = expect(f);
  EXPECT_EQ(got.size(), 9u);

  f = {};
  f.stream_id = sa.stream_id;  // a session's events
  got = expect(f);
  EXPECT_EQ(Types(got), (std::vector<EventType>{EventType::kSessionCreated,
                                                EventType::kStreamStart,
                                                EventType::kIdentification,
                                                EventType::kRuleApplied, EventType::kStreamEnd,
                                                EventType::kSessionEnded}));

  f = {};
  f.types = std::vector<EventType>{EventType::kIdentification};
  EXPECT_EQ(expect(f).size(), 3u);
  f.types = std::vector<EventType>{EventType::kIdentification, EventType::kAlarm};
  EXPECT_EQ(expect(f).size(), 4u);
  f.types = std::vector<EventType>{};  // empty: every type
  EXPECT_EQ(expect(f).size(), 13u);
  f.types = std::vector<EventType>{EventType::kStreamFailure};
  EXPECT_TRUE(expect(f).empty());

  // Combined, with a cursor.
  f = {};
  f.channel_id = a.channel.id;
  f.types = std::vector<EventType>{EventType::kIdentification, EventType::kStreamStart};
  got = expect(f);
  ASSERT_EQ(got.size(), 4u);
  f.after_seq = got[1].seq;
  EXPECT_EQ(expect(f).size(), 2u);
  f.stream_id = sa2.stream_id;
  EXPECT_EQ(expect(f).size(), 2u);

  // Events without a channel are found with channel_id "".
  f = {};
  f.channel_id = "";
  got = expect(f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, EventType::kAlarm);

  f = {};
  f.stream_id = "st-0000000000000000000000";
  EXPECT_TRUE(expect(f).empty());
}

TEST_F(EventsTest, TextIsRepairedToValidUtf8) {
  const Event e = Must(store_->AppendEvent(EventType::kAlarm, "ch-\xFF", "st-\xFE",
                                           {{"message", "bad \xC0 byte"}, {"n", 1}}));
  EXPECT_EQ(e.channel_id, "ch-\xEF\xBF\xBD");
  EXPECT_EQ(e.stream_id, "st-\xEF\xBF\xBD");
  EXPECT_EQ(e.detail["message"], "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(e.detail["n"], 1);
  const auto listed = Must(store_->ListEvents({}));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0], e);
  EXPECT_NO_THROW((void)control::EventToJson(listed[0]).dump());
}

TEST_F(EventsTest, NonObjectDetailIsKeptAndShownWrapped) {
  const Event e = Must(store_->AppendEvent(EventType::kAlarm, "", "", "plain text"));
  EXPECT_EQ(Must(store_->ListEvents({}))[0].detail, "plain text");
  EXPECT_EQ(control::EventToJson(e)["detail"], (nlohmann::json{{"value", "plain text"}}));
}

TEST_F(EventsTest, SeqIsNeverReusedAcrossConnections) {
  auto other = Open();
  ASSERT_NE(other, nullptr);
  std::vector<int64_t> seqs;
  for (int i = 0; i < 10; ++i) {
    StateStore& s = i % 2 == 0 ? static_cast<StateStore&>(*store_) : *other;
    seqs.push_back(Must(s.AppendEvent(EventType::kAlarm, "", "", {{"i", i}})).seq);
  }
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_GT(seqs[i], seqs[i - 1]);
  EXPECT_EQ(Seqs(testing::AllEvents(*other)), seqs);
  EXPECT_EQ(Must(other->LastEventSeq()), seqs.back());
}

}  // namespace
}  // namespace earshot::state
