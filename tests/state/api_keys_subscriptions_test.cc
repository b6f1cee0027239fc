// Admin API keys (create, verify, list without secrets, revoke) and event
// subscriptions (create, get, list, delete, matching) in SqliteStateStore,
// and the rule that no plaintext secret ever reaches the database file.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control/ids.h"
#include "control/secrets.h"
#include "state_test_util.h"

namespace earshot::state {
namespace {

using control::Event;
using control::EventType;
using testing::FailsWith;
using testing::kStartMs;
using testing::Must;
using testing::StateStoreTest;

using ApiKeysTest = StateStoreTest;
using SubscriptionsTest = StateStoreTest;

TEST_F(ApiKeysTest, CreateReturnsTheKeyOnceAndVerifyFindsIt) {
  clock_.Advance(42);
  const CreatedApiKey created = Must(store_->CreateApiKey("ci deploy"));
  EXPECT_TRUE(control::IsApiKey(created.key)) << "a malformed API key";
  EXPECT_TRUE(control::IsApiKeyId(created.info.id)) << created.info.id;
  EXPECT_EQ(created.info.name, "ci deploy");
  EXPECT_EQ(created.info.hint, control::RedactSecret(created.key));
  EXPECT_EQ(created.info.hint.find(created.key), std::string::npos);
  EXPECT_EQ(created.info.created_ms, kStartMs + 42);
  EXPECT_EQ(created.info.revoked_ms, 0);
  EXPECT_EQ(Must(store_->VerifyApiKey(created.key)), created.info.id);
  // Another connection verifies it too.
  auto other = Open();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(Must(other->VerifyApiKey(created.key)), created.info.id);
}

TEST_F(ApiKeysTest, VerifyRefusesEverythingElseWithoutEchoingIt) {
  const CreatedApiKey created = Must(store_->CreateApiKey("k"));
  const CreatedChannel channel = CreateChannel();
  std::string wrong = created.key;
  wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
  for (const std::string& attempt :
       {wrong, created.key.substr(1), created.key + "0", std::string(), created.info.id,
        control::HashSecret(created.key), channel.stream_key,
        "sk_" + created.key.substr(3)}) {
    auto verified = store_->VerifyApiKey(attempt);
    ASSERT_TRUE(FailsWith(verified, ErrorCode::kNotFound, "API key")) << attempt;
    if (!attempt.empty()) {
      EXPECT_EQ(verified.error().message().find(attempt), std::string::npos);
    }
  }
}

TEST_F(ApiKeysTest, ListShowsEveryKeyInCreationOrderWithoutSecrets) {
  std::vector<CreatedApiKey> created;
  for (const char* name : {"first", "second", "third"}) {
    clock_.Advance(1);
    created.push_back(Must(store_->CreateApiKey(name)));
  }
  Must(store_->RevokeApiKey(created[1].info.id));
  const std::vector<ApiKeyInfo> listed = Must(store_->ListApiKeys());
  ASSERT_EQ(listed.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(listed[i].id, created[i].info.id);
    EXPECT_EQ(listed[i].name, created[i].info.name);
    EXPECT_EQ(listed[i].hint, created[i].info.hint);
    EXPECT_EQ(listed[i].created_ms, created[i].info.created_ms);
    const std::string json = ApiKeyInfoToJson(listed[i]).dump();
    EXPECT_EQ(json.find(created[i].key), std::string::npos) << json;
    EXPECT_EQ(json.find(control::HashSecret(created[i].key)), std::string::npos) << json;
  }
  EXPECT_EQ(listed[0].revoked_ms, 0);
  EXPECT_GT(listed[1].revoked_ms, 0);
  EXPECT_EQ(listed[2].revoked_ms, 0);
}

TEST_F(ApiKeysTest, RevokeStopsOnlyThatKeyAtOnceAndIsIdempotent) {
  const CreatedApiKey a = Must(store_->CreateApiKey("a"));
  const CreatedApiKey b = Must(store_->CreateApiKey("b"));
  auto other = Open();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(Must(other->VerifyApiKey(a.key)), a.info.id);

  clock_.Advance(500);
  Must(store_->RevokeApiKey(a.info.id));
  EXPECT_TRUE(FailsWith(store_->VerifyApiKey(a.key), ErrorCode::kNotFound, "revoked"));
  EXPECT_TRUE(FailsWith(other->VerifyApiKey(a.key), ErrorCode::kNotFound, "revoked"));
  EXPECT_EQ(Must(store_->VerifyApiKey(b.key)), b.info.id);

  // Again: still revoked, the first revocation time kept.
  clock_.Advance(500);
  Must(store_->RevokeApiKey(a.info.id));
  EXPECT_EQ(Must(store_->ListApiKeys())[0].revoked_ms, kStartMs + 500);
  EXPECT_TRUE(FailsWith(store_->VerifyApiKey(a.key), ErrorCode::kNotFound));

  EXPECT_TRUE(FailsWith(store_->RevokeApiKey("ak-000000000000"), ErrorCode::kNotFound,
                        "ak-000000000000"));
}

TEST_F(ApiKeysTest, NamesAreValidated) {
  EXPECT_TRUE(FailsWith(store_->CreateApiKey(std::string(129, 'n')), ErrorCode::kInvalidArgument,
                        "API key name"));
  EXPECT_TRUE(FailsWith(store_->CreateApiKey("a\nb"), ErrorCode::kInvalidArgument,
                        "control character"));
  EXPECT_TRUE(Must(store_->ListApiKeys()).empty());
  Must(store_->CreateApiKey(""));  // names are optional
}

// Only hashes are stored: the plaintext of stream keys and API keys never
// reaches the database or its write-ahead log.
TEST_F(ApiKeysTest, NoPlaintextSecretInTheDatabaseFiles) {
  std::vector<std::string> secrets;
  std::vector<std::string> hashes;
  for (int i = 0; i < 3; ++i) {
    const CreatedChannel channel = CreateChannel();
    secrets.push_back(channel.stream_key);
    secrets.push_back(Must(store_->ResetStreamKey(channel.channel.id)));
    secrets.push_back(Must(store_->CreateApiKey("k" + std::to_string(i))).key);
  }
  for (const std::string& s : secrets) hashes.push_back(control::HashSecret(s));
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    bytes += store::testing::ReadFile(path_.string() + suffix);
  }
  ASSERT_GT(bytes.size(), 0u);
  for (const std::string& secret : secrets) {
    EXPECT_EQ(bytes.find(secret), std::string::npos) << "a plaintext secret in the database";
    EXPECT_EQ(bytes.find(secret.substr(3)), std::string::npos) << "a secret's body in the database";
  }
  // The hash of the latest key of each channel is there (the lookup works by it).
  EXPECT_NE(bytes.find(hashes[1]), std::string::npos);
}

TEST_F(SubscriptionsTest, CreateGetListDelete) {
  SubscriptionSpec hook{"webhook", "url=https://example.com/hook,secret_env=HOOK_SECRET",
                        {EventType::kStreamStart, EventType::kStreamStart, EventType::kAlarm},
                        {"ch-aaaaaaaaaaaa", "ch-aaaaaaaaaaaa"}};
  clock_.Advance(3);
  const Subscription a = Must(store_->CreateSubscription(hook));
  EXPECT_TRUE(control::IsSubscriptionId(a.id)) << a.id;
  EXPECT_EQ(a.kind, "webhook");
  EXPECT_EQ(a.target, hook.target);
  // Duplicates are kept once, in first-seen order.
  EXPECT_EQ(a.event_types, (std::vector<EventType>{EventType::kStreamStart, EventType::kAlarm}));
  EXPECT_EQ(a.channel_ids, std::vector<std::string>{"ch-aaaaaaaaaaaa"});
  EXPECT_EQ(a.created_ms, kStartMs + 3);
  EXPECT_EQ(Must(store_->GetSubscription(a.id)), a);

  const Subscription b =
      Must(store_->CreateSubscription({"email", "to=ops@example.com", {}, {}}));
  EXPECT_TRUE(b.event_types.empty());
  EXPECT_TRUE(b.channel_ids.empty());
  EXPECT_EQ(Must(store_->ListSubscriptions()), (std::vector<Subscription>{a, b}));

  Must(store_->DeleteSubscription(a.id));
  EXPECT_TRUE(FailsWith(store_->GetSubscription(a.id), ErrorCode::kNotFound, a.id));
  EXPECT_TRUE(FailsWith(store_->DeleteSubscription(a.id), ErrorCode::kNotFound, a.id));
  EXPECT_EQ(Must(store_->ListSubscriptions()), (std::vector<Subscription>{b}));
}

TEST_F(SubscriptionsTest, CreateRefusesInvalidSpecs) {
  EXPECT_TRUE(FailsWith(store_->CreateSubscription({"slack", "url=x", {}, {}}),
                        ErrorCode::kInvalidArgument, "\"slack\""));
  EXPECT_TRUE(FailsWith(store_->CreateSubscription({"webhook", "", {}, {}}),
                        ErrorCode::kInvalidArgument, "target"));
  EXPECT_TRUE(FailsWith(store_->CreateSubscription({"webhook", "url=x", {}, {"Radio"}}),
                        ErrorCode::kInvalidArgument, "\"Radio\""));
  EXPECT_TRUE(Must(store_->ListSubscriptions()).empty());
}

TEST_F(SubscriptionsTest, MatchingSubscriptionsFollowTypesAndChannels) {
  const std::string a = "ch-aaaaaaaaaaaa";
  const std::string b = "ch-bbbbbbbbbbbb";
  const Subscription all = Must(store_->CreateSubscription({"webhook", "url=1", {}, {}}));
  const Subscription starts =
      Must(store_->CreateSubscription({"webhook", "url=2", {EventType::kStreamStart}, {}}));
  const Subscription on_a = Must(store_->CreateSubscription({"email", "to=3", {}, {a}}));
  const Subscription ident_on_b = Must(
      store_->CreateSubscription({"webhook", "url=4", {EventType::kIdentification}, {b}}));

  auto ids = [&](EventType type, const std::string& channel) {
    Event event;
    event.type = type;
    event.channel_id = channel;
    std::vector<std::string> out;
    for (const Subscription& s : Must(store_->MatchingSubscriptions(event))) out.push_back(s.id);
    return out;
  };
  EXPECT_EQ(ids(EventType::kStreamStart, a), (std::vector<std::string>{all.id, starts.id, on_a.id}));
  EXPECT_EQ(ids(EventType::kStreamStart, b), (std::vector<std::string>{all.id, starts.id}));
  EXPECT_EQ(ids(EventType::kIdentification, b), (std::vector<std::string>{all.id, ident_on_b.id}));
  EXPECT_EQ(ids(EventType::kIdentification, a), (std::vector<std::string>{all.id, on_a.id}));
  EXPECT_EQ(ids(EventType::kAlarm, ""), (std::vector<std::string>{all.id}));

  // Matching uses what is stored now.
  Must(store_->DeleteSubscription(all.id));
  EXPECT_EQ(ids(EventType::kAlarm, ""), std::vector<std::string>{});
  // Real events from the log match as well.
  const CreatedChannel channel = CreateChannel();
  const Subscription on_channel =
      Must(store_->CreateSubscription({"webhook", "url=5", {}, {channel.channel.id}}));
  const StreamSession s = Must(store_->StartSession(channel.channel.id, {}));
  EventFilter filter;
  filter.stream_id = s.stream_id;
  for (const Event& e : testing::AllEvents(*store_, filter)) {
    const auto matching = Must(store_->MatchingSubscriptions(e));
    std::vector<std::string> got;
    for (const Subscription& m : matching) got.push_back(m.id);
    if (e.type == EventType::kStreamStart) {
      EXPECT_EQ(got, (std::vector<std::string>{starts.id, on_channel.id}));
    } else {
      EXPECT_EQ(got, std::vector<std::string>{on_channel.id});
    }
  }
}

}  // namespace
}  // namespace earshot::state
