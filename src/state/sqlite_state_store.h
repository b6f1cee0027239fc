// StateStore on SQLite (WAL). The file may be shared with other components
// (the job queue's queue_* tables) and opened by several processes (`earshot
// serve`, `earshot worker`s): this store's tables are channels, stream_keys,
// stream_sessions, events, identifications, api_keys, subscriptions,
// playback_keys, single_use_tokens, revoked_viewers, viewer_minutes, alarms,
// alarm_channel_states and alarm_points, and its schema version is the row
// 'state' of state_schema (PRAGMA user_version is left to others: it is one
// number per file).
//
// Concurrency: one connection per object, guarded by a mutex; every
// read-modify-write runs in an IMMEDIATE transaction, so a writer in another
// process waits up to the busy timeout instead of failing, and a timeout is
// kUnavailable. With SQLite's single writer, event seq numbers (AUTOINCREMENT)
// are assigned in commit order.
//
// Thread safety: every method may be called from many threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>

#include "state/state_store.h"
#include "store/sqlite.h"

namespace earshot::state {

struct SqliteStateStoreOptions {
  // Milliseconds since the Unix epoch; default UnixMillisNow. Tests pin it.
  std::function<int64_t()> clock;
  // How long a statement waits for another connection's write lock.
  int busy_timeout_ms = 5000;
};

class SqliteStateStore final : public StateStore {
 public:
  // Opens (creating when missing, folder included) the database at `path`, or
  // a private in-memory one for ":memory:", and migrates the schema. A file
  // that is not a SQLite database is kCorruptData; a schema newer than this
  // earshot knows is kVersionMismatch.
  static Result<std::unique_ptr<SqliteStateStore>> Open(const std::filesystem::path& path,
                                                        SqliteStateStoreOptions options = {});

  // The schema version this build writes.
  static int SchemaVersion();

  Result<CreatedChannel> CreateChannel(const ChannelSpec& spec) override;
  Result<Channel> GetChannel(std::string_view channel_id) override;
  Result<ChannelPage> ListChannels(const ChannelListOptions& options) override;
  Result<Channel> UpdateChannel(std::string_view channel_id, const ChannelUpdate& update) override;
  Status DeleteChannel(std::string_view channel_id) override;

  Result<std::string> ResetStreamKey(std::string_view channel_id) override;
  Result<Channel> FindChannelByStreamKey(std::string_view stream_key) override;

  Result<StreamSession> StartSession(std::string_view channel_id,
                                     const nlohmann::json& ingest) override;
  Result<StreamSession> EndSession(std::string_view stream_id, std::string_view reason) override;
  Result<StreamSession> FailSession(std::string_view stream_id, std::string_view reason) override;
  Status RequestStop(std::string_view stream_id, std::string_view reason) override;
  Result<std::optional<StreamSession>> LiveSession(std::string_view channel_id) override;
  Result<std::optional<StreamSession>> LiveSessionByIngestClient(std::string_view app,
                                                                 std::string_view clientid) override;
  Result<std::vector<StreamSession>> ListLiveSessions() override;
  Result<StreamSession> GetSession(std::string_view stream_id) override;
  Result<std::vector<StreamSession>> ListSessions(std::string_view channel_id, int limit) override;
  Status UpdateSessionIngest(std::string_view stream_id, const nlohmann::json& patch) override;
  Status SetHealth(std::string_view stream_id, StreamHealth health) override;

  Result<control::Event> AppendEvent(control::EventType type, std::string_view channel_id,
                                     std::string_view stream_id,
                                     const nlohmann::json& detail) override;
  Result<std::vector<control::Event>> ListEvents(const EventFilter& filter) override;
  Result<int64_t> LastEventSeq() override;

  Status RecordIdentification(const IdentificationRecord& record) override;
  Result<std::vector<IdentificationRecord>> ListIdentifications(
      const IdentificationFilter& filter) override;
  Result<std::vector<TrackUsage>> UsageReport(std::string_view channel_id, int64_t from_ms,
                                              int64_t to_ms) override;

  Result<CreatedApiKey> CreateApiKey(std::string_view name) override;
  Result<std::string> VerifyApiKey(std::string_view key) override;
  Result<std::vector<ApiKeyInfo>> ListApiKeys() override;
  Status RevokeApiKey(std::string_view id) override;

  Result<Subscription> CreateSubscription(const SubscriptionSpec& spec) override;
  Result<Subscription> GetSubscription(std::string_view id) override;
  Result<std::vector<Subscription>> ListSubscriptions() override;
  Status DeleteSubscription(std::string_view id) override;
  Result<std::vector<Subscription>> MatchingSubscriptions(const control::Event& event) override;

  Result<PlaybackKey> CreatePlaybackKey(std::string_view name, std::string_view public_key_pem,
                                        std::string_view fingerprint, size_t max_keys) override;
  Result<PlaybackKey> GetPlaybackKey(std::string_view id) override;
  Result<std::vector<PlaybackKey>> ListPlaybackKeys() override;
  Status DeletePlaybackKey(std::string_view id) override;

  Result<bool> ClaimSingleUseToken(std::string_view uuid, std::string_view viewer_binding,
                                   int64_t exp_s, int64_t now_s) override;

  Status RevokeViewer(std::string_view channel_id, std::string_view viewer_id,
                      int64_t up_to_session_version) override;
  Result<std::vector<RevokedViewer>> ListRevokedViewers() override;

  Status RecordViewerMinutes(std::span<const ViewerMinuteRecord> records) override;
  Result<std::vector<ViewerMinuteRecord>> ListViewerMinutes(std::string_view channel_id,
                                                            int64_t from_s, int64_t to_s) override;

  Result<AlarmRecord> CreateAlarm(std::string_view name, std::string_view channel_id,
                                  std::string_view spec_json) override;
  Result<AlarmRecord> GetAlarm(std::string_view id) override;
  Result<std::vector<AlarmRecord>> ListAlarms() override;
  Status DeleteAlarm(std::string_view id) override;
  Status SaveAlarmChannelState(std::string_view alarm_id, std::string_view channel_id,
                               std::string_view bytes) override;
  Result<std::vector<std::pair<std::string, std::string>>> LoadAlarmChannelStates(
      std::string_view alarm_id) override;
  Status RecordAlarmPoints(std::span<const AlarmPointRecord> points) override;
  Result<std::vector<AlarmPointRecord>> ListAlarmPoints(std::string_view channel_id, int64_t from_s,
                                                        int64_t to_s) override;

  Status Check() override;

  const std::filesystem::path& path() const { return path_; }

 private:
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  SqliteStateStore(PrivateTag, store::Database db, std::filesystem::path path,
                   std::function<int64_t()> clock);

 private:
  // Ends a live session with `end_reason` and its events (all REQUIRE mu_
  // held and a transaction open).
  Result<StreamSession> EndLocked(std::string_view stream_id, std::string_view end_reason,
                                  std::string_view failure_reason, bool failed);
  Result<control::Event> AppendEventLocked(control::EventType type, std::string_view channel_id,
                                           std::string_view stream_id,
                                           const nlohmann::json& detail, int64_t now);
  Result<Channel> GetChannelLocked(std::string_view channel_id);
  Result<StreamSession> GetSessionLocked(std::string_view stream_id);
  Result<std::optional<StreamSession>> LiveSessionLocked(std::string_view channel_id);
  Result<std::vector<Subscription>> ListSubscriptionsLocked();
  // kNotFound naming the alarm when `alarm_id` is not stored.
  Status RequireAlarmLocked(std::string_view alarm_id);

  const std::filesystem::path path_;
  const std::function<int64_t()> clock_;
  std::mutex mu_;
  store::Database db_;  // guarded by mu_
};

}  // namespace earshot::state
