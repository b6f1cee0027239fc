// The control plane's state: channels and their stream keys, stream
// sessions, the event log, identifications, admin API keys, event
// subscriptions, playback's key pairs, single-use tokens, revoked viewers
// and viewer series, and viewer-spike alarms with their per-channel evaluator
// state and datapoints (model: Amazon IVS and CloudWatch anomaly alarms;
// records in records.h).
//
// StateStore is the interface `earshot serve` and `earshot worker` use; it
// says nothing about SQL. SqliteStateStore (sqlite_state_store.h) implements
// it; a PostgreSQL implementation will follow behind the same interface.
//
// Semantics every implementation keeps:
// - Secrets: stream keys and API keys are stored as control::HashSecret only
//   and found by that hash; the stored hash is compared with
//   control::ConstantTimeEquals. A plaintext key exists only in the result of
//   CreateChannel / ResetStreamKey / CreateApiKey.
// - One stream key per channel; resetting it invalidates the old one at once.
// - At most one live session per channel, also across processes sharing the
//   store (StartSession's kAlreadyExists).
// - Session changes and their events are written in one transaction: a
//   reader never sees a live session without its "Stream Start" or the
//   reverse.
// - Event seq numbers increase in commit order and are never reused, so a
//   poller that reads ListEvents({after_seq = last seen}) misses nothing.
// - Deleting a channel removes the channel and its key; its sessions, events
//   and identifications stay (history, usage reports; a session keeps a
//   snapshot of its channel). Its revoked viewers, viewer series, the alarms
//   bound to it and every alarm's state and points for it go with it.
// - Channel names are labels and need not be unique (as in IVS).
//
// Errors: kNotFound naming the id; kAlreadyExists; kFailedPrecondition (e.g.
// deleting a live channel); kInvalidArgument for bad input (validation.h);
// kUnavailable when the database stays busy (another process holds its
// write lock past the busy timeout) — retrying later may work; kCorruptData
// for stored rows that do not parse; kVersionMismatch for a store written by
// a newer earshot.
//
// Thread safety: every method may be called from many threads at once, and
// several StateStore objects (in one or several processes) may share one
// database.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "control/event.h"
#include "state/records.h"

namespace earshot::state {

class StateStore {
 public:
  virtual ~StateStore() = default;

  // --- Channels ---------------------------------------------------------------

  // Creates a channel with a fresh id and stream key. kInvalidArgument for a
  // spec ValidateChannelSpec refuses.
  virtual Result<CreatedChannel> CreateChannel(const ChannelSpec& spec) = 0;
  virtual Result<Channel> GetChannel(std::string_view channel_id) = 0;
  // Channels in creation order, a page at a time. kInvalidArgument for a
  // token that no page handed out.
  virtual Result<ChannelPage> ListChannels(const ChannelListOptions& options) = 0;
  // Applies the fields set in `update` and bumps updated_ms; returns the
  // channel as stored. Running sessions keep their snapshot.
  virtual Result<Channel> UpdateChannel(std::string_view channel_id,
                                        const ChannelUpdate& update) = 0;
  // kFailedPrecondition while the channel has a live session (stop it first).
  virtual Status DeleteChannel(std::string_view channel_id) = 0;

  // --- Stream keys --------------------------------------------------------------

  // Replaces the channel's key and returns the new plaintext. A live session
  // goes on; the ingest's next on_update for it no longer finds the key.
  virtual Result<std::string> ResetStreamKey(std::string_view channel_id) = 0;
  // The channel whose current key is `stream_key`; kNotFound for anything
  // else (an old key, a malformed one). Cheap: one indexed lookup.
  virtual Result<Channel> FindChannelByStreamKey(std::string_view stream_key) = 0;

  // --- Stream sessions ------------------------------------------------------------

  // Starts a live session with a new stream id for the channel, with `ingest`
  // (a JSON object: app, clientid, addr, ...; null = {}) and a snapshot of
  // the channel, and appends "Session Created" and "Stream Start". kNotFound
  // for an unknown channel; kAlreadyExists when the channel already has a
  // live session (the message names it; the caller decides what to do).
  virtual Result<StreamSession> StartSession(std::string_view channel_id,
                                             const nlohmann::json& ingest) = 0;
  // Ends a live session (state ended, ended_ms, end_reason) and appends
  // "Stream End" and "Session Ended". Ending an ended session changes
  // nothing and returns it as it is.
  virtual Result<StreamSession> EndSession(std::string_view stream_id,
                                           std::string_view reason) = 0;
  // Ends a live session as failed: appends "Stream Failure" (detail.reason),
  // "Stream End" and "Session Ended"; end_reason is "failed: <reason>". On an
  // ended session it changes nothing and returns it.
  virtual Result<StreamSession> FailSession(std::string_view stream_id,
                                            std::string_view reason) = 0;
  // Marks a live session stop_requested (the ingest refuses its publisher at
  // the next on_update). Again on a stopped session: the latest reason wins.
  // kFailedPrecondition when the session has ended.
  virtual Status RequestStop(std::string_view stream_id, std::string_view reason) = 0;
  // The channel's live session, or nullopt (also for an unknown channel).
  virtual Result<std::optional<StreamSession>> LiveSession(std::string_view channel_id) = 0;
  // The newest live session whose ingest has this app and clientid
  // (publish_done after a key reset), or nullopt. Newest: nginx numbers its
  // clients from 1 again after a restart.
  virtual Result<std::optional<StreamSession>> LiveSessionByIngestClient(
      std::string_view app, std::string_view clientid) = 0;
  // Every live session, oldest first.
  virtual Result<std::vector<StreamSession>> ListLiveSessions() = 0;
  virtual Result<StreamSession> GetSession(std::string_view stream_id) = 0;
  // The channel's sessions, newest first, at most `limit` (1..1000, clamped).
  virtual Result<std::vector<StreamSession>> ListSessions(std::string_view channel_id,
                                                          int limit) = 0;
  // Merges `patch` (a JSON object, RFC 7396 merge patch: null removes a key)
  // into the session's ingest JSON; allowed on ended sessions too.
  virtual Status UpdateSessionIngest(std::string_view stream_id,
                                     const nlohmann::json& patch) = 0;
  virtual Status SetHealth(std::string_view stream_id, StreamHealth health) = 0;

  // --- Events -----------------------------------------------------------------------

  // Appends an event stamped now; channel_id and stream_id may be empty.
  // `detail` should be an object (null is stored as {}; see EventToJson).
  virtual Result<control::Event> AppendEvent(control::EventType type,
                                             std::string_view channel_id,
                                             std::string_view stream_id,
                                             const nlohmann::json& detail) = 0;
  // Events with seq > filter.after_seq that pass the filters, in seq order.
  virtual Result<std::vector<control::Event>> ListEvents(const EventFilter& filter) = 0;
  // The seq of the latest event (0 when the log is empty): where a live feed
  // that wants only new events starts.
  virtual Result<int64_t> LastEventSeq() = 0;

  // --- Identifications --------------------------------------------------------------

  // Inserts or updates the record of (stream_id, match_id), keeping the
  // latest state: a message that arrives late (a match_ongoing after the
  // match_ended, an ongoing with a shorter duration than one already stored)
  // changes nothing. Sets updated_ms. kInvalidArgument per
  // ValidateIdentification; text fields are stored as valid UTF-8.
  virtual Status RecordIdentification(const IdentificationRecord& record) = 0;
  // Matching records by started_at_ms, then stream and match id.
  virtual Result<std::vector<IdentificationRecord>> ListIdentifications(
      const IdentificationFilter& filter) = 0;
  // Per track, the channel's matches that started in [from_ms, to_ms), most
  // played first. kInvalidArgument when from_ms > to_ms.
  virtual Result<std::vector<TrackUsage>> UsageReport(std::string_view channel_id,
                                                      int64_t from_ms, int64_t to_ms) = 0;

  // --- Admin API keys -----------------------------------------------------------------

  virtual Result<CreatedApiKey> CreateApiKey(std::string_view name) = 0;
  // The id of the key `key`; kNotFound when it is unknown, malformed or
  // revoked.
  virtual Result<std::string> VerifyApiKey(std::string_view key) = 0;
  // Every key, revoked ones included, in creation order; never the secret.
  virtual Result<std::vector<ApiKeyInfo>> ListApiKeys() = 0;
  // Revokes a key at once (idempotent); kNotFound for an unknown id.
  virtual Status RevokeApiKey(std::string_view id) = 0;

  // --- Subscriptions ------------------------------------------------------------------

  // kInvalidArgument per ValidateSubscriptionSpec.
  virtual Result<Subscription> CreateSubscription(const SubscriptionSpec& spec) = 0;
  virtual Result<Subscription> GetSubscription(std::string_view id) = 0;
  // In creation order.
  virtual Result<std::vector<Subscription>> ListSubscriptions() = 0;
  virtual Status DeleteSubscription(std::string_view id) = 0;
  // The subscriptions that want `event` (SubscriptionMatches), in creation
  // order.
  virtual Result<std::vector<Subscription>> MatchingSubscriptions(const control::Event& event) = 0;

  // --- Playback key pairs -------------------------------------------------------------

  // Stores a public key the caller has parsed and validated (the store does
  // not parse PEM) under a new id "pk-" + 12 of [a-z0-9]. kInvalidArgument per
  // ValidatePlaybackKey; kAlreadyExists (naming the existing key's id) when a
  // key with this fingerprint is already stored; kResourceExhausted when
  // `max_keys` keys are already stored (delete one first).
  virtual Result<PlaybackKey> CreatePlaybackKey(std::string_view name,
                                                std::string_view public_key_pem,
                                                std::string_view fingerprint, size_t max_keys) = 0;
  virtual Result<PlaybackKey> GetPlaybackKey(std::string_view id) = 0;
  // In creation order.
  virtual Result<std::vector<PlaybackKey>> ListPlaybackKeys() = 0;
  // kNotFound for an unknown id.
  virtual Status DeletePlaybackKey(std::string_view id) = 0;

  // --- Single-use playback tokens -----------------------------------------------------

  // Claims the single-use token `uuid` for `viewer_binding` (what ties a use
  // to one viewer, e.g. a hash of address + user agent), atomically, also
  // across processes sharing the store, and durably (a restart remembers it).
  // True when the token was not claimed yet (it is now, until exp_s) or was
  // claimed with the same binding (the same viewer fetching again); false
  // when another binding holds it and it has not expired. A claim expires
  // when now_s >= its exp_s (JWT "exp"): its uuid then counts as new.
  // Expired claims are purged a few at a time by later claims (amortised;
  // the table holds about the unexpired claims). Times are Unix seconds.
  // kInvalidArgument per ValidateSingleUseToken.
  virtual Result<bool> ClaimSingleUseToken(std::string_view uuid, std::string_view viewer_binding,
                                           int64_t exp_s, int64_t now_s) = 0;

  // --- Revoked viewers ----------------------------------------------------------------

  // Refuses the viewer's tokens of the channel whose session version is <=
  // up_to_session_version: inserts the revocation or raises its version (a
  // lower version than the stored one changes nothing), stamping revoked_ms
  // when it changes. kNotFound for an unknown channel; kInvalidArgument per
  // ValidateRevokedViewer.
  virtual Status RevokeViewer(std::string_view channel_id, std::string_view viewer_id,
                              int64_t up_to_session_version) = 0;
  // Every revocation, by channel then viewer id (callers cache them).
  virtual Result<std::vector<RevokedViewer>> ListRevokedViewers() = 0;

  // --- Viewer series ------------------------------------------------------------------

  // Stores the per-minute maxima, in one transaction; a (channel, minute)
  // already stored keeps the larger maximum. Records of channels that do not
  // exist (deleted while their counts were in flight) are skipped.
  // kInvalidArgument per ValidateViewerMinute (nothing is stored).
  virtual Status RecordViewerMinutes(std::span<const ViewerMinuteRecord> records) = 0;
  // The channel's minutes with from_s <= minute_start_s < to_s, by minute.
  // Minutes without a record are absent. kInvalidArgument when from_s > to_s.
  virtual Result<std::vector<ViewerMinuteRecord>> ListViewerMinutes(std::string_view channel_id,
                                                                    int64_t from_s,
                                                                    int64_t to_s) = 0;

  // --- Viewer-spike alarms -------------------------------------------------------------

  // Stores an alarm under a new id "al-" + 12 of [a-z0-9]. `channel_id` ""
  // makes it watch every channel; otherwise the channel must exist
  // (kNotFound) and deleting it deletes the alarm. kInvalidArgument per
  // ValidateAlarm (the store checks only that the spec is a JSON object of
  // at most 64 KiB); kFailedPrecondition when kMaxAlarms alarms are stored.
  virtual Result<AlarmRecord> CreateAlarm(std::string_view name, std::string_view channel_id,
                                          std::string_view spec_json) = 0;
  virtual Result<AlarmRecord> GetAlarm(std::string_view id) = 0;
  // In creation order.
  virtual Result<std::vector<AlarmRecord>> ListAlarms() = 0;
  // Deletes the alarm with its channel states and points. kNotFound for an
  // unknown id.
  virtual Status DeleteAlarm(std::string_view id) = 0;
  // Stores (replacing) the alarm's evaluator state for one channel: `bytes`
  // is binary (any bytes, NULs included; at most kMaxAlarmChannelStateBytes,
  // else kInvalidArgument). kNotFound for an unknown alarm; a channel that
  // does not exist (deleted meanwhile) is skipped: Ok, nothing stored.
  virtual Status SaveAlarmChannelState(std::string_view alarm_id, std::string_view channel_id,
                                       std::string_view bytes) = 0;
  // The alarm's (channel_id, bytes) pairs, by channel id. kNotFound for an
  // unknown alarm.
  virtual Result<std::vector<std::pair<std::string, std::string>>> LoadAlarmChannelStates(
      std::string_view alarm_id) = 0;
  // Stores the points in one transaction; a point already stored for
  // (alarm_id, channel_id, timestamp_s) is replaced. Points of alarms or
  // channels that do not exist (deleted while in flight) are skipped. Points
  // older than kAlarmPointRetentionS before the newest point of their
  // (alarm, channel) are deleted, a bounded number per series and call
  // (amortised). kInvalidArgument per ValidateAlarmPoint (nothing is stored).
  virtual Status RecordAlarmPoints(std::span<const AlarmPointRecord> points) = 0;
  // Every alarm's points for the channel with from_s <= timestamp_s < to_s,
  // by alarm id then timestamp. kInvalidArgument when from_s > to_s.
  virtual Result<std::vector<AlarmPointRecord>> ListAlarmPoints(std::string_view channel_id,
                                                                int64_t from_s, int64_t to_s) = 0;

  // --- Health -------------------------------------------------------------------------

  // Ok when the store answers a trivial query (for /readyz).
  virtual Status Check() = 0;
};

// Opens the state store named by `url`:
//   sqlite:/var/lib/earshot/state.db   (also sqlite:///var/lib/..., or a
//                                       relative sqlite:state.db)
//   sqlite::memory:                    a private in-memory store (tests)
// The folder of a SQLite file is created when missing; the schema is created
// or migrated. postgres:// and postgresql:// are kUnsupported (planned);
// anything else is kInvalidArgument listing the accepted forms.
Result<std::unique_ptr<StateStore>> OpenStateStore(std::string_view url);

}  // namespace earshot::state
