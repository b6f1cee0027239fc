// PlaybackService on a real (in-memory) SQLite state store: HLS paths and
// query parsing, key pairs, the channel cache's invalidation, revocation, the
// viewer series written to the store, and the metrics it counts. The path
// through nginx is in playback_e2e_test.cc.
#include "server/playback_service.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "playback/token_minter.h"
#include "state/state_store.h"

namespace earshot::server {
namespace {

using playback::RequestKind;
namespace minter = playback::testing;

TEST(PlaybackPathsTest, HlsFileNamesGiveTheChannelAndTheKind) {
  auto p = ParseHlsPath("/hls/ch-abcdefghijkl.m3u8?token=x");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->channel_id, "ch-abcdefghijkl");
  EXPECT_EQ(p->kind, RequestKind::kPlaylist);
  auto s = ParseHlsPath("/hls/ch-abcdefghijkl-12.ts");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->channel_id, "ch-abcdefghijkl");
  EXPECT_EQ(s->kind, RequestKind::kSegment);
  EXPECT_FALSE(ParseHlsPath("/hls/ch-abc.mp4"));
  EXPECT_FALSE(ParseHlsPath("/hls/ch-abc-x.ts"));       // not a sequence number
  EXPECT_FALSE(ParseHlsPath("/hls/.m3u8"));
  EXPECT_FALSE(ParseHlsPath("/hls/ch%2e.m3u8"));        // no escapes in channel ids
  EXPECT_FALSE(ParseHlsPath("/hls/../../etc/passwd"));
  // Anything nginx could resolve to another file than the last segment says.
  EXPECT_FALSE(ParseHlsPath("/hls/ch-priv.m3u8#/ch-pub.m3u8"));
  EXPECT_FALSE(ParseHlsPath("/hls/ch-priv%2em3u8/ch-pub.m3u8"));
  EXPECT_FALSE(ParseHlsPath("/hls//ch-pub.m3u8"));
  EXPECT_FALSE(ParseHlsPath("/hls/./ch-pub.m3u8"));
  EXPECT_FALSE(ParseHlsPath("/hls/ch-priv.m3u8\\ch-pub.m3u8"));
}

TEST(PlaybackPathsTest, QueryValuesArePercentDecodedAndFirstNameWins) {
  EXPECT_EQ(QueryValue("a=1&token=abc.def&token=zzz", "token"), "abc.def");
  EXPECT_EQ(QueryValue("token=a%2Eb", "token"), "a.b");
  EXPECT_EQ(QueryValue("tokens=1", "token"), "");
  EXPECT_EQ(QueryValue("", "token"), "");
  EXPECT_EQ(QueryValue("token=%zz%4", "token"), "%zz%4");  // bad escapes kept as text
}

class PlaybackServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto state = state::OpenStateStore("sqlite::memory:");
    ASSERT_TRUE(state) << state.error().ToString();
    state_ = std::move(*state);
    PlaybackServiceOptions o;
    o.max_keys = 2;
    auto svc = PlaybackService::Open(*state_, &metrics_, o);
    ASSERT_TRUE(svc) << svc.error().ToString();
    service_ = std::move(*svc);
    state::ChannelSpec spec;
    spec.name = "private";
    spec.is_private = true;
    auto c = state_->CreateChannel(spec);
    ASSERT_TRUE(c) << c.error().ToString();
    channel_ = c->channel.id;
  }

  std::string Token(const minter::TestKeyPair& key, nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json claims = {{"aws:channel-arn", ChannelArn(channel_)}, {"exp", UnixMillisNow() / 1000 + 300}};
    for (auto& [k, v] : extra.items()) claims[k] = v;
    return minter::MintToken(key, minter::Es384Header(), claims.dump());
  }

  PlaybackOutcome Play(const std::string& token, const std::string& address = "192.0.2.1") {
    PlaybackHttpRequest r;
    r.original_uri = "/hls/" + channel_ + ".m3u8" + (token.empty() ? "" : "?token=" + token);
    r.client_address = address;
    r.user_agent = "test";
    return service_->AuthorizeHls(r);
  }

  Metrics metrics_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<PlaybackService> service_;
  std::string channel_;
  minter::TestKeyPair key_ = minter::TestKeyPair::P384();
};

TEST_F(PlaybackServiceTest, KeysAreValidatedLimitedAndTheirTokensDieWithThem) {
  EXPECT_EQ(service_->ImportKey("rsa", minter::TestKeyPair::Rsa2048().PublicPem()).error().code(),
            ErrorCode::kInvalidArgument);
  auto k = service_->ImportKey("site", key_.PublicPem());
  ASSERT_TRUE(k) << k.error().ToString();
  EXPECT_EQ(service_->ImportKey("again", key_.PublicPem()).error().code(), ErrorCode::kAlreadyExists);
  ASSERT_TRUE(service_->ImportKey("second", minter::TestKeyPair::P384().PublicPem()));
  // Over max_keys: a precondition (delete one first), not a full disk.
  auto third = service_->ImportKey("third", minter::TestKeyPair::P384().PublicPem());
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(third.error().message().find("max_keys"), std::string::npos);

  const std::string token = Token(key_);
  EXPECT_EQ(Play(token).http_status, 200);
  EXPECT_EQ(Play("").http_status, 401);
  ASSERT_TRUE(service_->DeleteKey(k->id));
  EXPECT_EQ(Play(token).http_status, 403);
  EXPECT_EQ(service_->DeleteKey(k->id).error().code(), ErrorCode::kNotFound);
}

TEST_F(PlaybackServiceTest, ChannelChangesTakeEffectOnceInvalidated) {
  ASSERT_TRUE(service_->ImportKey("site", key_.PublicPem()));
  EXPECT_EQ(Play("").http_status, 401);  // cached as private
  state::ChannelUpdate u;
  u.is_private = false;
  ASSERT_TRUE(state_->UpdateChannel(channel_, u));
  service_->InvalidateChannel(channel_);
  EXPECT_EQ(Play("").http_status, 200);
  // An unknown channel is refused, not an error page.
  PlaybackHttpRequest r;
  r.original_uri = "/hls/ch-000000000000.m3u8";
  EXPECT_EQ(service_->AuthorizeHls(r).http_status, 403);
  EXPECT_EQ(service_->AuthorizeHls(r).reason, "unknown_channel");
  r.original_uri = "/hls/index.html";
  EXPECT_EQ(service_->AuthorizeHls(r).reason, "not_hls");
}

TEST_F(PlaybackServiceTest, RevocationIsStoredAndSurvivesAReopen) {
  ASSERT_TRUE(service_->ImportKey("site", key_.PublicPem()));
  const std::string v1 = Token(key_, {{"aws:viewer-id", "carol"}, {"aws:viewer-session-version", 1}});
  EXPECT_EQ(Play(v1).http_status, 200);
  ASSERT_TRUE(service_->RevokeViewer(channel_, "carol", 1));
  EXPECT_EQ(Play(v1).http_status, 403);
  EXPECT_EQ(Play(v1).reason, "viewer_revoked");
  // A new service over the same store knows it (read at Open).
  auto again = PlaybackService::Open(*state_, nullptr, {});
  ASSERT_TRUE(again);
  PlaybackHttpRequest r;
  r.original_uri = "/hls/" + channel_ + ".m3u8?token=" + v1;
  EXPECT_EQ((*again)->AuthorizeHls(r).reason, "viewer_revoked");
  EXPECT_EQ(service_->RevokeViewer("ch-000000000000", "carol", 1).error().code(), ErrorCode::kNotFound);
}

TEST_F(PlaybackServiceTest, ViewersAreCountedAndTheirMinutesStored) {
  ASSERT_TRUE(service_->ImportKey("site", key_.PublicPem()));
  EXPECT_EQ(service_->ViewerCount(channel_), 0);
  for (const char* id : {"a", "b"}) EXPECT_EQ(Play(Token(key_, {{"aws:viewer-id", id}})).http_status, 200);
  EXPECT_EQ(Play(Token(key_, {{"aws:viewer-id", "a"}})).http_status, 200);  // same viewer again
  EXPECT_EQ(service_->ViewerCount(channel_), 2);
  EXPECT_EQ(service_->ViewerCounts().at(channel_), 2);
  // Refused requests are no viewers.
  EXPECT_EQ(Play("").http_status, 401);
  EXPECT_EQ(service_->ViewerCount(channel_), 2);
  // The metrics count outcomes by reason.
  const std::string text = metrics_.Render({});
  EXPECT_NE(text.find("earshot_playback_decisions_total{outcome=\"allowed\",reason=\"none\"} 3"), std::string::npos)
      << text;
  EXPECT_NE(text.find("earshot_playback_decisions_total{outcome=\"refused\",reason=\"no_token\"} 1"), std::string::npos)
      << text;
  // Minutes close only at the minute's end: nothing to store yet (the store
  // is exercised by FlushViewerMinutes; the stored series is in the e2e test).
  ASSERT_TRUE(service_->FlushViewerMinutes());
  auto minutes = service_->ViewerMinutes(channel_, 0, UnixMillisNow() / 1000 + 60);
  ASSERT_TRUE(minutes);
  for (const auto& m : *minutes) EXPECT_LE(m.max_viewers, 2);
}

TEST_F(PlaybackServiceTest, PublicViewersCountPerAddressAtMostFour) {
  state::ChannelUpdate u;
  u.is_private = false;
  ASSERT_TRUE(state_->UpdateChannel(channel_, u));
  service_->InvalidateChannel(channel_);
  auto play = [&](const std::string& address, const std::string& agent) {
    PlaybackHttpRequest r;
    r.original_uri = "/hls/" + channel_ + ".m3u8";
    r.client_address = address;
    r.user_agent = agent;
    return service_->AuthorizeHls(r).http_status;
  };
  // One address rotating its user agent is at most 4 viewers.
  for (int i = 0; i < 50; ++i) ASSERT_EQ(play("198.51.100.7", "agent/" + std::to_string(i)), 200);
  const int64_t one_address = service_->ViewerCount(channel_);
  EXPECT_GE(one_address, 1);
  EXPECT_LE(one_address, 4);
  // Other addresses are other viewers.
  ASSERT_EQ(play("198.51.100.8", "agent/0"), 200);
  ASSERT_EQ(play("198.51.100.9", "agent/0"), 200);
  EXPECT_EQ(service_->ViewerCount(channel_), one_address + 2);
}

TEST_F(PlaybackServiceTest, ASharedTokenWithoutViewerIdCountsEachPlace) {
  ASSERT_TRUE(service_->ImportKey("site", key_.PublicPem()));
  const std::string shared = Token(key_);  // no aws:viewer-id
  EXPECT_EQ(Play(shared, "192.0.2.1").http_status, 200);
  EXPECT_EQ(Play(shared, "192.0.2.1").http_status, 200);  // the same viewer again
  EXPECT_EQ(Play(shared, "192.0.2.2").http_status, 200);
  EXPECT_EQ(Play(shared, "192.0.2.3").http_status, 200);
  EXPECT_EQ(service_->ViewerCount(channel_), 3);
}

}  // namespace
}  // namespace earshot::server
