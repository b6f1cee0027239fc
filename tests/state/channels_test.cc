// Channels and their stream keys in SqliteStateStore: create, get, list with
// pagination, partial update, delete (refused while live), key reset and
// lookup by key.
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/ids.h"
#include "control/secrets.h"
#include "state/validation.h"
#include "state_test_util.h"

namespace earshot::state {
namespace {

using testing::FailsWith;
using testing::Must;
using testing::StateStoreTest;

using ChannelsTest = StateStoreTest;

TEST_F(ChannelsTest, CreateStoresEveryFieldAndReturnsAKey) {
  ChannelSpec spec;
  spec.name = "Radio \xC3\xA9t\xC3\xA9";
  spec.is_private = true;
  spec.policy = {{"FR", "BE"}, {"https://*.example.com"}, true};
  spec.tags = {{"team", "music"}, {"tier", "gold"}};
  spec.rule_overrides = {{"block", "allow"}};
  spec.block_action = control::BlockAction::kNotify;
  const CreatedChannel created = Must(store_->CreateChannel(spec));
  const Channel& c = created.channel;
  EXPECT_TRUE(control::IsChannelId(c.id)) << c.id;
  EXPECT_TRUE(control::IsStreamKey(created.stream_key)) << "a malformed stream key";
  EXPECT_EQ(c.name, spec.name);
  EXPECT_TRUE(c.is_private);
  EXPECT_EQ(c.policy, spec.policy);
  EXPECT_EQ(c.tags, spec.tags);
  EXPECT_EQ(c.rule_overrides, spec.rule_overrides);
  EXPECT_EQ(c.block_action, control::BlockAction::kNotify);
  EXPECT_EQ(c.created_ms, testing::kStartMs);
  EXPECT_EQ(c.updated_ms, testing::kStartMs);

  EXPECT_EQ(Must(store_->GetChannel(c.id)), c);
  // The key finds the channel.
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(created.stream_key)), c);
}

TEST_F(ChannelsTest, DefaultsRoundTrip) {
  const CreatedChannel created = Must(store_->CreateChannel({}));
  const Channel got = Must(store_->GetChannel(created.channel.id));
  EXPECT_EQ(got, created.channel);
  EXPECT_EQ(got.name, "");
  EXPECT_FALSE(got.is_private);
  EXPECT_EQ(got.policy, control::RestrictionPolicy{});
  EXPECT_TRUE(got.tags.empty());
  EXPECT_FALSE(got.block_action.has_value());
}

TEST_F(ChannelsTest, NamesNeedNotBeUniqueButIdsAndKeysAre) {
  std::set<std::string> ids, keys;
  for (int i = 0; i < 20; ++i) {
    const CreatedChannel c = CreateChannel("Same name");
    ids.insert(c.channel.id);
    keys.insert(c.stream_key);
  }
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(keys.size(), 20u);
}

TEST_F(ChannelsTest, CreateRefusesInvalidSpecsAndStoresNothing) {
  ChannelSpec spec;
  spec.name = std::string(129, 'x');
  EXPECT_TRUE(FailsWith(store_->CreateChannel(spec), ErrorCode::kInvalidArgument,
                        "channel name has 129 characters"));
  spec.name = "ok";
  for (int i = 0; i < 51; ++i) spec.tags["k" + std::to_string(i)] = "v";
  EXPECT_TRUE(FailsWith(store_->CreateChannel(spec), ErrorCode::kInvalidArgument, "50 tags"));
  spec.tags = {{std::string(129, 'k'), "v"}};
  EXPECT_TRUE(FailsWith(store_->CreateChannel(spec), ErrorCode::kInvalidArgument, "tag key"));
  spec.tags = {{"k", std::string(257, 'v')}};
  EXPECT_TRUE(FailsWith(store_->CreateChannel(spec), ErrorCode::kInvalidArgument, "value"));
  spec.tags = {};
  spec.policy.allowed_countries = {"france"};
  EXPECT_TRUE(FailsWith(store_->CreateChannel(spec), ErrorCode::kInvalidArgument, "\"france\""));
  spec.policy = {};
  spec.rule_overrides = {{"block", "ignore"}};
  EXPECT_TRUE(FailsWith(store_->CreateChannel(spec), ErrorCode::kInvalidArgument, "\"ignore\""));
  spec.rule_overrides = {};
  spec.name = "bad\xFF";
  EXPECT_TRUE(FailsWith(store_->CreateChannel(spec), ErrorCode::kInvalidArgument, "UTF-8"));

  EXPECT_TRUE(Must(store_->ListChannels({})).channels.empty());
}

TEST_F(ChannelsTest, GetUnknownNamesTheId) {
  EXPECT_TRUE(FailsWith(store_->GetChannel("ch-000000000000"), ErrorCode::kNotFound,
                        "channel ch-000000000000 does not exist"));
  // Ids come from URLs: anything is looked up safely and quoted as valid UTF-8.
  auto odd = store_->GetChannel("'; DROP TABLE channels; --\xFF");
  ASSERT_TRUE(FailsWith(odd, ErrorCode::kNotFound, "DROP TABLE"));
  EXPECT_TRUE(IsValidUtf8(odd.error().message()));
  CreateChannel();
  EXPECT_EQ(Must(store_->ListChannels({})).channels.size(), 1u);
}

TEST_F(ChannelsTest, ListPagesInCreationOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    clock_.Advance(1000);
    ids.push_back(CreateChannel("c" + std::to_string(i)).channel.id);
  }
  // Pages of 3: 3 + 3 + 1, the last without a token.
  std::vector<std::string> listed;
  std::vector<size_t> sizes;
  ChannelListOptions options;
  options.limit = 3;
  for (int page_no = 0; page_no < 10; ++page_no) {
    const ChannelPage page = Must(store_->ListChannels(options));
    sizes.push_back(page.channels.size());
    for (const Channel& c : page.channels) listed.push_back(c.id);
    if (page.next_token.empty()) break;
    options.next_token = page.next_token;
  }
  EXPECT_EQ(listed, ids);
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 1}));

  // A page that ends exactly at the last channel has no token.
  options = {};
  options.limit = 7;
  ChannelPage page = Must(store_->ListChannels(options));
  EXPECT_EQ(page.channels.size(), 7u);
  EXPECT_TRUE(page.next_token.empty());

  // Limits outside 1..1000 are clamped (0 and below: the default, 100).
  options.limit = 0;
  EXPECT_EQ(Must(store_->ListChannels(options)).channels.size(), 7u);
  options.limit = -5;
  EXPECT_EQ(Must(store_->ListChannels(options)).channels.size(), 7u);
  options.limit = 1'000'000;
  EXPECT_EQ(Must(store_->ListChannels(options)).channels.size(), 7u);

  // Deleting the channel a token points after does not break the paging.
  options = {};
  options.limit = 2;
  page = Must(store_->ListChannels(options));
  ASSERT_EQ(page.channels.size(), 2u);
  Must(store_->DeleteChannel(ids[1]));
  Must(store_->DeleteChannel(ids[2]));
  options.next_token = page.next_token;
  page = Must(store_->ListChannels(options));
  ASSERT_EQ(page.channels.size(), 2u);
  EXPECT_EQ(page.channels[0].id, ids[3]);
  EXPECT_EQ(page.channels[1].id, ids[4]);
}

TEST_F(ChannelsTest, ListRefusesForgedTokens) {
  CreateChannel();
  for (std::string token : {"abc", "-1", "1x", " 1", "99999999999999999999999", "1.5"}) {
    ChannelListOptions options;
    options.next_token = token;
    EXPECT_TRUE(FailsWith(store_->ListChannels(options), ErrorCode::kInvalidArgument,
                          "next_token"))
        << token;
  }
}

TEST(ChannelsInMemoryTest, ListLimitIsClampedTo1000) {
  auto store = Must(OpenStateStore("sqlite::memory:"));
  for (int i = 0; i < 1001; ++i) Must(store->CreateChannel({}));
  ChannelListOptions options;
  options.limit = 5000;
  const ChannelPage page = Must(store->ListChannels(options));
  EXPECT_EQ(page.channels.size(), 1000u);
  EXPECT_FALSE(page.next_token.empty());
  options.next_token = page.next_token;
  EXPECT_EQ(Must(store->ListChannels(options)).channels.size(), 1u);
}

TEST_F(ChannelsTest, UpdateChangesOnlyTheFieldsGiven) {
  ChannelSpec spec;
  spec.name = "Before";
  spec.tags = {{"a", "1"}};
  spec.rule_overrides = {{"mute", "allow"}};
  spec.block_action = control::BlockAction::kStop;
  const CreatedChannel created = Must(store_->CreateChannel(spec));
  clock_.Advance(5000);

  ChannelUpdate rename;
  rename.name = "After";
  Channel c = Must(store_->UpdateChannel(created.channel.id, rename));
  EXPECT_EQ(c.name, "After");
  EXPECT_EQ(c.tags, spec.tags);
  EXPECT_EQ(c.rule_overrides, spec.rule_overrides);
  EXPECT_EQ(c.block_action, control::BlockAction::kStop);
  EXPECT_EQ(c.created_ms, testing::kStartMs);
  EXPECT_EQ(c.updated_ms, testing::kStartMs + 5000);
  EXPECT_EQ(Must(store_->GetChannel(c.id)), c);

  ChannelUpdate everything;
  everything.is_private = true;
  everything.policy = control::RestrictionPolicy{{"DE"}, {"*"}, false};
  everything.tags = std::map<std::string, std::string>{{"b", "2"}};  // replaces, not merges
  everything.rule_overrides = std::map<std::string, std::string>{};
  everything.block_action.emplace(control::BlockAction::kStopAndResetKey);
  c = Must(store_->UpdateChannel(c.id, everything));
  EXPECT_EQ(c.name, "After");
  EXPECT_TRUE(c.is_private);
  EXPECT_EQ(c.policy.allowed_countries, std::vector<std::string>{"DE"});
  EXPECT_EQ(c.tags, (std::map<std::string, std::string>{{"b", "2"}}));
  EXPECT_TRUE(c.rule_overrides.empty());
  EXPECT_EQ(c.block_action, control::BlockAction::kStopAndResetKey);
  EXPECT_EQ(Must(store_->GetChannel(c.id)), c);

  // Back to the deployment's default block action.
  ChannelUpdate reset_action;
  reset_action.block_action.emplace(std::nullopt);
  c = Must(store_->UpdateChannel(c.id, reset_action));
  EXPECT_FALSE(c.block_action.has_value());
  EXPECT_FALSE(Must(store_->GetChannel(c.id)).block_action.has_value());

  // An empty update changes nothing but the update time.
  clock_.Advance(1000);
  const Channel same = Must(store_->UpdateChannel(c.id, {}));
  EXPECT_EQ(same.name, c.name);
  EXPECT_EQ(same.updated_ms, c.updated_ms + 1000);

  // The stream key is untouched by updates.
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(created.stream_key)).id, c.id);
}

TEST_F(ChannelsTest, UpdateRefusesInvalidInputAndUnknownChannels) {
  const CreatedChannel created = CreateChannel("Keep");
  ChannelUpdate bad;
  bad.name = "x\ty";
  EXPECT_TRUE(FailsWith(store_->UpdateChannel(created.channel.id, bad),
                        ErrorCode::kInvalidArgument, "control character"));
  bad = {};
  bad.tags = std::map<std::string, std::string>{{"k", std::string(300, 'v')}};
  EXPECT_TRUE(FailsWith(store_->UpdateChannel(created.channel.id, bad),
                        ErrorCode::kInvalidArgument, "300 characters"));
  EXPECT_EQ(Must(store_->GetChannel(created.channel.id)), created.channel);

  ChannelUpdate rename;
  rename.name = "x";
  EXPECT_TRUE(FailsWith(store_->UpdateChannel("ch-000000000000", rename), ErrorCode::kNotFound,
                        "ch-000000000000"));
}

TEST_F(ChannelsTest, ResetStreamKeyReplacesTheOldKeyAtOnce) {
  const CreatedChannel created = CreateChannel();
  const CreatedChannel other = CreateChannel("Other");
  const std::string new_key = Must(store_->ResetStreamKey(created.channel.id));
  EXPECT_TRUE(control::IsStreamKey(new_key));
  EXPECT_NE(new_key, created.stream_key);
  EXPECT_TRUE(FailsWith(store_->FindChannelByStreamKey(created.stream_key), ErrorCode::kNotFound,
                        "unknown stream key"));
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(new_key)).id, created.channel.id);
  // Another connection sees the new key too (no cache).
  auto second = Open();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(Must(second->FindChannelByStreamKey(new_key)).id, created.channel.id);
  EXPECT_TRUE(FailsWith(second->FindChannelByStreamKey(created.stream_key), ErrorCode::kNotFound));
  // Other channels keep theirs.
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(other.stream_key)).id, other.channel.id);

  // Again: only the latest works.
  const std::string newer = Must(store_->ResetStreamKey(created.channel.id));
  EXPECT_TRUE(FailsWith(store_->FindChannelByStreamKey(new_key), ErrorCode::kNotFound));
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(newer)).id, created.channel.id);

  EXPECT_TRUE(FailsWith(store_->ResetStreamKey("ch-000000000000"), ErrorCode::kNotFound,
                        "ch-000000000000"));
}

TEST_F(ChannelsTest, FindByStreamKeyRefusesAnythingElseWithoutEchoingIt) {
  const CreatedChannel created = CreateChannel();
  std::string wrong = created.stream_key;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  std::string lower = created.stream_key;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const std::vector<std::string> attempts = {
      wrong,
      created.stream_key.substr(0, created.stream_key.size() - 1),
      created.stream_key + "x",
      " " + created.stream_key,
      "",
      "sk_",
      control::HashSecret(created.stream_key),  // the stored hash is not a key
      created.channel.id,
      "ek_" + created.stream_key.substr(3),  // right body, API-key prefix
  };
  for (const std::string& attempt : attempts) {
    auto found = store_->FindChannelByStreamKey(attempt);
    ASSERT_TRUE(FailsWith(found, ErrorCode::kNotFound, "unknown stream key")) << attempt;
    if (attempt.size() > 8) {
      EXPECT_EQ(found.error().message().find(attempt), std::string::npos);
    }
  }
  if (lower != created.stream_key) {
    EXPECT_TRUE(FailsWith(store_->FindChannelByStreamKey(lower), ErrorCode::kNotFound));
  }
}

TEST_F(ChannelsTest, DeleteRemovesTheChannelAndItsKey) {
  const CreatedChannel created = CreateChannel();
  const CreatedChannel kept = CreateChannel("Kept");
  Must(store_->DeleteChannel(created.channel.id));
  EXPECT_TRUE(FailsWith(store_->GetChannel(created.channel.id), ErrorCode::kNotFound));
  EXPECT_TRUE(FailsWith(store_->FindChannelByStreamKey(created.stream_key), ErrorCode::kNotFound));
  EXPECT_TRUE(FailsWith(store_->DeleteChannel(created.channel.id), ErrorCode::kNotFound,
                        created.channel.id));
  EXPECT_TRUE(FailsWith(store_->StartSession(created.channel.id, {}), ErrorCode::kNotFound));
  const ChannelPage page = Must(store_->ListChannels({}));
  ASSERT_EQ(page.channels.size(), 1u);
  EXPECT_EQ(page.channels[0].id, kept.channel.id);
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(kept.stream_key)).id, kept.channel.id);
}

TEST_F(ChannelsTest, DeleteIsRefusedWhileAStreamIsLive) {
  const CreatedChannel created = CreateChannel();
  const StreamSession live = Must(store_->StartSession(created.channel.id, {}));
  EXPECT_TRUE(FailsWith(store_->DeleteChannel(created.channel.id),
                        ErrorCode::kFailedPrecondition, live.stream_id));
  // Nothing was removed.
  EXPECT_EQ(Must(store_->GetChannel(created.channel.id)), created.channel);
  EXPECT_EQ(Must(store_->FindChannelByStreamKey(created.stream_key)).id, created.channel.id);

  Must(store_->EndSession(live.stream_id, "done"));
  Must(store_->DeleteChannel(created.channel.id));
  // History stays: the session (with its channel snapshot) and its events.
  const StreamSession ended = Must(store_->GetSession(live.stream_id));
  EXPECT_EQ(ended.channel["id"], created.channel.id);
  EXPECT_EQ(Must(store_->ListSessions(created.channel.id, 10)).size(), 1u);
  EventFilter filter;
  filter.channel_id = created.channel.id;
  EXPECT_EQ(testing::AllEvents(*store_, filter).size(), 4u);
}

}  // namespace
}  // namespace earshot::state
