#include "state/sqlite_state_store.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <set>
#include <span>
#include <system_error>
#include <utility>

#include "common/time_format.h"
#include "control/ids.h"
#include "control/secrets.h"
#include "state/validation.h"

namespace earshot::state {
namespace {

using store::Database;
using store::Statement;
using store::Transaction;

// ---------------------------------------------------------------------------
// Schema

struct SchemaStep {
  int version;
  std::string_view description;
  std::string_view sql;
};

// One step per version. Append new steps; never edit one that has shipped.
constexpr std::array<SchemaStep, 3> kSchema = {{
    {1, "create the control-plane tables", R"sql(
CREATE TABLE channels (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  is_private INTEGER NOT NULL,
  policy TEXT NOT NULL,
  tags TEXT NOT NULL,
  rule_overrides TEXT NOT NULL,
  block_action TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE stream_keys (
  channel_id TEXT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
  key_hash TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
  created_ms INTEGER NOT NULL
);
CREATE TABLE stream_sessions (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  stream_id TEXT NOT NULL UNIQUE,
  channel_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('live', 'ended')),
  health TEXT NOT NULL,
  started_ms INTEGER NOT NULL,
  ended_ms INTEGER NOT NULL DEFAULT 0,
  end_reason TEXT NOT NULL DEFAULT '',
  stop_requested INTEGER NOT NULL DEFAULT 0,
  stop_reason TEXT NOT NULL DEFAULT '',
  ingest TEXT NOT NULL,
  channel TEXT NOT NULL
);
CREATE UNIQUE INDEX stream_sessions_one_live ON stream_sessions (channel_id)
  WHERE state = 'live';
CREATE INDEX stream_sessions_by_channel ON stream_sessions (channel_id, pos);
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  type TEXT NOT NULL,
  channel_id TEXT NOT NULL,
  stream_id TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX events_by_channel ON events (channel_id, seq);
CREATE INDEX events_by_stream ON events (stream_id, seq);
CREATE TABLE identifications (
  stream_id TEXT NOT NULL,
  match_id TEXT NOT NULL,
  channel_id TEXT NOT NULL,
  status TEXT NOT NULL,
  rule TEXT NOT NULL,
  track_rule TEXT NOT NULL,
  track_id INTEGER NOT NULL,
  title TEXT NOT NULL,
  artist TEXT NOT NULL,
  rights_holder TEXT NOT NULL,
  isrc TEXT NOT NULL,
  started_at_ms INTEGER NOT NULL,
  stream_offset_s REAL NOT NULL,
  duration_s REAL NOT NULL,
  reference_offset_s REAL NOT NULL,
  score REAL NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (stream_id, match_id)
);
CREATE INDEX identifications_by_channel ON identifications (channel_id, started_at_ms);
CREATE INDEX identifications_by_start ON identifications (started_at_ms);
CREATE TABLE api_keys (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  hint TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE subscriptions (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  event_types TEXT NOT NULL,
  channel_ids TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
)sql"},
    {2, "add playback keys, single-use tokens, revoked viewers and viewer series", R"sql(
CREATE TABLE playback_keys (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  public_key_pem TEXT NOT NULL,
  fingerprint TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL
);
CREATE TABLE single_use_tokens (
  uuid TEXT PRIMARY KEY,
  viewer_binding TEXT NOT NULL,
  exp_s INTEGER NOT NULL
);
CREATE INDEX single_use_tokens_by_exp ON single_use_tokens (exp_s);
CREATE TABLE revoked_viewers (
  channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  viewer_id TEXT NOT NULL,
  up_to_session_version INTEGER NOT NULL,
  revoked_ms INTEGER NOT NULL,
  PRIMARY KEY (channel_id, viewer_id)
);
CREATE TABLE viewer_minutes (
  channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  minute_start_s INTEGER NOT NULL,
  max_viewers INTEGER NOT NULL,
  PRIMARY KEY (channel_id, minute_start_s)
) WITHOUT ROWID;
)sql"},
    // IF NOT EXISTS: a file taken back to version 1 by hand (tests) may still
    // hold these tables.
    {3, "add viewer-spike alarms, their channel states and points", R"sql(
CREATE TABLE IF NOT EXISTS alarms (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  channel_id TEXT REFERENCES channels (id) ON DELETE CASCADE,
  spec_json TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alarms_by_channel ON alarms (channel_id);
CREATE TABLE IF NOT EXISTS alarm_channel_states (
  alarm_id TEXT NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
  channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  state BLOB NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (alarm_id, channel_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alarm_channel_states_by_channel ON alarm_channel_states (channel_id);
CREATE TABLE IF NOT EXISTS alarm_points (
  alarm_id TEXT NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
  channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  timestamp_s INTEGER NOT NULL,
  value REAL NOT NULL,
  band_low REAL NOT NULL,
  band_high REAL NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('OK', 'ALARM', 'INSUFFICIENT_DATA')),
  PRIMARY KEY (alarm_id, channel_id, timestamp_s)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alarm_points_by_channel
  ON alarm_points (channel_id, alarm_id, timestamp_s);
)sql"},
}};

// Expired single-use claims purged by each claim: more than the one row a
// claim adds, so the table stays about the size of the unexpired claims.
constexpr int kSingleUsePurgeBatch = 16;

// Expired alarm points deleted per (alarm, channel) series and
// RecordAlarmPoints call: far more than the points a call adds to a series,
// so the backlog of a series drains within a few calls.
constexpr int kAlarmPointPurgeBatch = 256;

constexpr std::string_view kSchemaComponent = "state";

// ---------------------------------------------------------------------------
// Statement helpers

// Bytes bound as a BLOB (SqlArg): any bytes, NULs included.
struct Blob {
  std::string_view bytes;
};

// One bound parameter. Text is bound (and copied by SQLite) before the
// statement helper returns, so views need only outlive that call.
class SqlArg {
 public:
  SqlArg(std::nullptr_t) : kind_(Kind::kNull) {}  // NOLINT: implicit on purpose
  SqlArg(int64_t v) : kind_(Kind::kInt), int_(v) {}  // NOLINT
  SqlArg(int v) : kind_(Kind::kInt), int_(v) {}      // NOLINT
  SqlArg(bool v) : kind_(Kind::kInt), int_(v ? 1 : 0) {}  // NOLINT
  SqlArg(double v) : kind_(Kind::kDouble), double_(v) {}  // NOLINT
  SqlArg(std::string_view v) : kind_(Kind::kText), text_(v) {}  // NOLINT
  SqlArg(const std::string& v) : kind_(Kind::kText), text_(v) {}  // NOLINT
  SqlArg(const char* v) : kind_(Kind::kText), text_(v) {}  // NOLINT
  SqlArg(Blob v) : kind_(Kind::kBlob), text_(v.bytes) {}    // NOLINT

  Status BindTo(Statement& stmt, int index) const {
    switch (kind_) {
      case Kind::kNull:
        return stmt.BindNull(index);
      case Kind::kInt:
        return stmt.BindInt64(index, int_);
      case Kind::kDouble:
        return stmt.BindDouble(index, double_);
      case Kind::kText:
        return stmt.BindText(index, text_);
      case Kind::kBlob:
        return stmt.BindBlob(index, std::span<const uint8_t>(
                                        reinterpret_cast<const uint8_t*>(text_.data()),
                                        text_.size()));
    }
    return stmt.BindNull(index);
  }

 private:
  enum class Kind { kNull, kInt, kDouble, kText, kBlob };
  Kind kind_;
  int64_t int_ = 0;
  double double_ = 0;
  std::string_view text_;
};

Result<Statement> Query(Database& db, std::string_view sql, std::span<const SqlArg> args) {
  auto stmt = db.Prepare(sql);
  if (!stmt) return stmt;
  int index = 1;
  for (const SqlArg& arg : args) {
    if (Status s = arg.BindTo(*stmt, index++); !s) return std::unexpected(s.error());
  }
  return stmt;
}

Result<Statement> Query(Database& db, std::string_view sql,
                        std::initializer_list<SqlArg> args = {}) {
  return Query(db, sql, std::span<const SqlArg>(args.begin(), args.size()));
}

// Runs a statement that returns no rows.
Status Run(Database& db, std::string_view sql, std::initializer_list<SqlArg> args = {}) {
  auto stmt = Query(db, sql, args);
  if (!stmt) return std::unexpected(stmt.error());
  return stmt->Run();
}

// Every row of `stmt`, read by `read` (a function Statement -> Result<T>).
template <class T, class Reader>
Result<std::vector<T>> ReadAll(Statement& stmt, Reader read) {
  std::vector<T> rows;
  while (true) {
    auto row = stmt.Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return rows;
    auto value = read(stmt);
    if (!value) return std::unexpected(value.error());
    rows.push_back(std::move(*value));
  }
}

// The first row of `stmt` read by `read`, or nullopt.
template <class T, class Reader>
Result<std::optional<T>> ReadOne(Statement& stmt, Reader read) {
  auto row = stmt.Step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<T>();
  auto value = read(stmt);
  if (!value) return std::unexpected(value.error());
  return std::optional<T>(std::move(*value));
}

// Compact JSON that never throws: invalid UTF-8 becomes U+FFFD.
std::string Dump(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// An id as quoted in an error message (ids come from URLs: keep them valid
// UTF-8 and short).
std::string Q(std::string_view id) {
  std::string text = SanitizeUtf8(id.substr(0, 128));
  if (id.size() > 128) text += "...";
  return text;
}

Error Corrupt(const std::filesystem::path& path, std::string_view what, std::string_view why) {
  return Error(ErrorCode::kCorruptData, "state store " + path.string() + ": " +
                                            std::string(what) + ": " + std::string(why));
}

Result<nlohmann::json> ParseJson(const std::filesystem::path& path, std::string_view what,
                                 const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) return std::unexpected(Corrupt(path, what, "stored JSON does not parse"));
  return json;
}

Result<std::map<std::string, std::string>> ParseStringMap(const std::filesystem::path& path,
                                                          std::string_view what,
                                                          const std::string& text) {
  auto json = ParseJson(path, what, text);
  if (!json) return std::unexpected(json.error());
  if (!json->is_object()) return std::unexpected(Corrupt(path, what, "not a JSON object"));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : json->items()) {
    if (!value.is_string()) return std::unexpected(Corrupt(path, what, "a value is not a string"));
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

int ClampLimit(int limit, int fallback, int max) {
  if (limit <= 0) return fallback;
  return std::min(limit, max);
}

// ---------------------------------------------------------------------------
// Row readers. Each SELECT lists the columns in the order its reader expects.

constexpr std::string_view kChannelColumns =
    "c.id, c.name, c.is_private, c.policy, c.tags, c.rule_overrides, c.block_action, "
    "c.created_ms, c.updated_ms, c.pos";

Result<Channel> ReadChannel(const std::filesystem::path& path, const Statement& stmt) {
  Channel c;
  c.id = stmt.ColumnText(0);
  const std::string what = "channel " + c.id;
  c.name = stmt.ColumnText(1);
  c.is_private = stmt.ColumnInt64(2) != 0;
  auto policy_json = ParseJson(path, what, stmt.ColumnText(3));
  if (!policy_json) return std::unexpected(policy_json.error());
  auto policy = control::RestrictionPolicyFromJson(*policy_json);
  if (!policy) return std::unexpected(Corrupt(path, what, policy.error().message()));
  c.policy = std::move(*policy);
  auto tags = ParseStringMap(path, what + " tags", stmt.ColumnText(4));
  if (!tags) return std::unexpected(tags.error());
  c.tags = std::move(*tags);
  auto overrides = ParseStringMap(path, what + " rule overrides", stmt.ColumnText(5));
  if (!overrides) return std::unexpected(overrides.error());
  c.rule_overrides = std::move(*overrides);
  if (const std::string action = stmt.ColumnText(6); !action.empty()) {
    auto parsed = control::ParseBlockAction(action);
    if (!parsed) return std::unexpected(Corrupt(path, what, parsed.error().message()));
    c.block_action = *parsed;
  }
  c.created_ms = stmt.ColumnInt64(7);
  c.updated_ms = stmt.ColumnInt64(8);
  return c;
}

constexpr std::string_view kSessionColumns =
    "stream_id, channel_id, state, health, started_ms, ended_ms, end_reason, stop_requested, "
    "stop_reason, ingest, channel";

Result<StreamSession> ReadSession(const std::filesystem::path& path, const Statement& stmt) {
  StreamSession s;
  s.stream_id = stmt.ColumnText(0);
  const std::string what = "stream session " + s.stream_id;
  s.channel_id = stmt.ColumnText(1);
  auto state = ParseSessionState(stmt.ColumnText(2));
  if (!state) return std::unexpected(Corrupt(path, what, state.error().message()));
  s.state = *state;
  auto health = ParseStreamHealth(stmt.ColumnText(3));
  if (!health) return std::unexpected(Corrupt(path, what, health.error().message()));
  s.health = *health;
  s.started_ms = stmt.ColumnInt64(4);
  s.ended_ms = stmt.ColumnInt64(5);
  s.end_reason = stmt.ColumnText(6);
  s.stop_requested = stmt.ColumnInt64(7) != 0;
  s.stop_reason = stmt.ColumnText(8);
  auto ingest = ParseJson(path, what + " ingest", stmt.ColumnText(9));
  if (!ingest) return std::unexpected(ingest.error());
  s.ingest = std::move(*ingest);
  auto channel = ParseJson(path, what + " channel", stmt.ColumnText(10));
  if (!channel) return std::unexpected(channel.error());
  s.channel = std::move(*channel);
  return s;
}

constexpr std::string_view kEventColumns = "seq, time_ms, type, channel_id, stream_id, detail";

Result<control::Event> ReadEvent(const std::filesystem::path& path, const Statement& stmt) {
  control::Event e;
  e.seq = stmt.ColumnInt64(0);
  const std::string what = "event " + std::to_string(e.seq);
  e.time_ms = stmt.ColumnInt64(1);
  auto type = control::ParseEventType(stmt.ColumnText(2));
  if (!type) return std::unexpected(Corrupt(path, what, type.error().message()));
  e.type = *type;
  e.channel_id = stmt.ColumnText(3);
  e.stream_id = stmt.ColumnText(4);
  auto detail = ParseJson(path, what, stmt.ColumnText(5));
  if (!detail) return std::unexpected(detail.error());
  e.detail = std::move(*detail);
  return e;
}

constexpr std::string_view kIdentificationColumns =
    "stream_id, match_id, channel_id, status, rule, track_rule, track_id, title, artist, "
    "rights_holder, isrc, started_at_ms, stream_offset_s, duration_s, reference_offset_s, score, "
    "updated_ms";

Result<IdentificationRecord> ReadIdentification(const Statement& stmt) {
  IdentificationRecord r;
  r.stream_id = stmt.ColumnText(0);
  r.match_id = stmt.ColumnText(1);
  r.channel_id = stmt.ColumnText(2);
  r.status = stmt.ColumnText(3);
  r.rule = stmt.ColumnText(4);
  r.track_rule = stmt.ColumnText(5);
  r.track_id = stmt.ColumnInt64(6);
  r.title = stmt.ColumnText(7);
  r.artist = stmt.ColumnText(8);
  r.rights_holder = stmt.ColumnText(9);
  r.isrc = stmt.ColumnText(10);
  r.started_at_ms = stmt.ColumnInt64(11);
  r.stream_offset_s = stmt.ColumnDouble(12);
  r.duration_s = stmt.ColumnDouble(13);
  r.reference_offset_s = stmt.ColumnDouble(14);
  r.score = stmt.ColumnDouble(15);
  r.updated_ms = stmt.ColumnInt64(16);
  return r;
}

constexpr std::string_view kApiKeyColumns = "id, name, hint, created_ms, revoked_ms";

Result<ApiKeyInfo> ReadApiKey(const Statement& stmt) {
  ApiKeyInfo info;
  info.id = stmt.ColumnText(0);
  info.name = stmt.ColumnText(1);
  info.hint = stmt.ColumnText(2);
  info.created_ms = stmt.ColumnInt64(3);
  info.revoked_ms = stmt.ColumnInt64(4);
  return info;
}

constexpr std::string_view kSubscriptionColumns =
    "id, kind, target, event_types, channel_ids, created_ms";

Result<Subscription> ReadSubscription(const std::filesystem::path& path, const Statement& stmt) {
  Subscription s;
  s.id = stmt.ColumnText(0);
  const std::string what = "subscription " + s.id;
  s.kind = stmt.ColumnText(1);
  s.target = stmt.ColumnText(2);
  auto types = ParseJson(path, what, stmt.ColumnText(3));
  if (!types) return std::unexpected(types.error());
  auto channels = ParseJson(path, what, stmt.ColumnText(4));
  if (!channels) return std::unexpected(channels.error());
  if (!types->is_array() || !channels->is_array()) {
    return std::unexpected(Corrupt(path, what, "event types or channel ids are not a list"));
  }
  for (const auto& name : *types) {
    if (!name.is_string()) return std::unexpected(Corrupt(path, what, "event type not a string"));
    auto type = control::ParseEventType(name.get<std::string>());
    if (!type) return std::unexpected(Corrupt(path, what, type.error().message()));
    s.event_types.push_back(*type);
  }
  for (const auto& id : *channels) {
    if (!id.is_string()) return std::unexpected(Corrupt(path, what, "channel id not a string"));
    s.channel_ids.push_back(id.get<std::string>());
  }
  s.created_ms = stmt.ColumnInt64(5);
  return s;
}

constexpr std::string_view kPlaybackKeyColumns =
    "id, name, public_key_pem, fingerprint, created_ms";

Result<PlaybackKey> ReadPlaybackKey(const Statement& stmt) {
  PlaybackKey k;
  k.id = stmt.ColumnText(0);
  k.name = stmt.ColumnText(1);
  k.public_key_pem = stmt.ColumnText(2);
  k.fingerprint = stmt.ColumnText(3);
  k.created_ms = stmt.ColumnInt64(4);
  return k;
}

constexpr std::string_view kAlarmColumns = "id, name, channel_id, spec_json, created_ms";

Result<AlarmRecord> ReadAlarm(const Statement& stmt) {
  AlarmRecord a;
  a.id = stmt.ColumnText(0);
  a.name = stmt.ColumnText(1);
  a.channel_id = stmt.ColumnText(2);  // NULL ("every channel") reads as ""
  a.spec_json = stmt.ColumnText(3);
  a.created_ms = stmt.ColumnInt64(4);
  return a;
}

constexpr std::string_view kAlarmPointColumns =
    "alarm_id, channel_id, timestamp_s, value, band_low, band_high, state";

Result<AlarmPointRecord> ReadAlarmPoint(const Statement& stmt) {
  AlarmPointRecord p;
  p.alarm_id = stmt.ColumnText(0);
  p.channel_id = stmt.ColumnText(1);
  p.timestamp_s = stmt.ColumnInt64(2);
  p.value = stmt.ColumnDouble(3);
  p.band_low = stmt.ColumnDouble(4);
  p.band_high = stmt.ColumnDouble(5);
  p.state = stmt.ColumnText(6);
  return p;
}

// Runs `stmt` (already prepared) with `args` bound from index 1.
Status RunPrepared(Statement& stmt, std::span<const SqlArg> args) {
  if (Status s = stmt.Reset(); !s) return s;
  int index = 1;
  for (const SqlArg& arg : args) {
    if (Status s = arg.BindTo(stmt, index++); !s) return s;
  }
  return stmt.Run();
}

// ---------------------------------------------------------------------------

Status Migrate(Database& db) {
  auto tx = Transaction::Begin(db, Transaction::Mode::kImmediate);
  if (!tx) return std::unexpected(tx.error().Wrap("state store: opening"));
  if (Status s = db.Exec(
          "CREATE TABLE IF NOT EXISTS state_schema ("
          "component TEXT PRIMARY KEY, version INTEGER NOT NULL)");
      !s) {
    return s;
  }
  auto stmt = Query(db, "SELECT version FROM state_schema WHERE component = ?",
                    {kSchemaComponent});
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  const int64_t current = *row ? stmt->ColumnInt64(0) : 0;
  const auto latest = static_cast<int64_t>(kSchema.size());
  if (current > latest) {
    return MakeError(ErrorCode::kVersionMismatch,
                     "state store " + db.path().string() + " has schema version " +
                         std::to_string(current) + ", but this earshot knows versions up to " +
                         std::to_string(latest) + ": run a newer earshot");
  }
  for (const SchemaStep& step : kSchema) {
    if (step.version <= current) continue;
    if (Status s = db.Exec(step.sql); !s) {
      return std::unexpected(s.error().Wrap("state store: migrating to version " +
                                            std::to_string(step.version) + " (" +
                                            std::string(step.description) + ")"));
    }
  }
  if (current < latest) {
    if (Status s = Run(db,
                       "INSERT INTO state_schema (component, version) VALUES (?, ?) "
                       "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                       {kSchemaComponent, latest});
        !s) {
      return s;
    }
  }
  return tx->Commit();
}

int StatusRank(std::string_view status) {
  if (status == kMatchEnded) return 2;
  if (status == kMatchOngoing) return 1;
  return 0;
}

std::string ChannelName(const StreamSession& session) {
  if (session.channel.is_object()) {
    if (auto it = session.channel.find("name"); it != session.channel.end() && it->is_string()) {
      return it->get<std::string>();
    }
  }
  return "";
}

nlohmann::json EventTypeNames(const std::vector<control::EventType>& types) {
  nlohmann::json names = nlohmann::json::array();
  for (control::EventType type : types) names.push_back(control::EventTypeName(type));
  return names;
}

}  // namespace

// ---------------------------------------------------------------------------
// Opening

Result<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(
    const std::filesystem::path& path, SqliteStateStoreOptions options) {
  if (path != ":memory:" && path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return MakeError(ErrorCode::kIoError, "state store " + path.string() +
                                                ": cannot create its folder: " + ec.message());
    }
  }
  store::OpenOptions open_options;
  open_options.busy_timeout_ms = options.busy_timeout_ms;
  auto db = Database::Open(path, open_options);
  if (!db) return std::unexpected(db.error());
  if (Status s = Migrate(*db); !s) return std::unexpected(s.error());
  std::function<int64_t()> clock =
      options.clock ? std::move(options.clock) : std::function<int64_t()>(UnixMillisNow);
  return std::make_unique<SqliteStateStore>(PrivateTag{}, std::move(*db), path, std::move(clock));
}

int SqliteStateStore::SchemaVersion() { return static_cast<int>(kSchema.size()); }

SqliteStateStore::SqliteStateStore(PrivateTag, store::Database db, std::filesystem::path path,
                                   std::function<int64_t()> clock)
    : path_(std::move(path)), clock_(std::move(clock)), db_(std::move(db)) {}

// ---------------------------------------------------------------------------
// Channels

Result<CreatedChannel> SqliteStateStore::CreateChannel(const ChannelSpec& spec) {
  if (Status s = ValidateChannelSpec(spec); !s) return std::unexpected(s.error());
  auto key = control::NewStreamKey();
  if (!key) return std::unexpected(key.error().Wrap("creating a channel"));
  const std::string hash = control::HashSecret(*key);
  if (hash.empty()) return MakeError(ErrorCode::kInternal, "creating a channel: hashing failed");
  Channel channel;
  channel.id = control::NewChannelId();
  channel.name = spec.name;
  channel.is_private = spec.is_private;
  channel.policy = spec.policy;
  channel.tags = spec.tags;
  channel.rule_overrides = spec.rule_overrides;
  channel.block_action = spec.block_action;

  std::lock_guard lock(mu_);
  channel.created_ms = channel.updated_ms = clock_();
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  if (Status s = Run(db_,
                     "INSERT INTO channels (id, name, is_private, policy, tags, rule_overrides, "
                     "block_action, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     {channel.id, channel.name, channel.is_private,
                      Dump(control::RestrictionPolicyToJson(channel.policy)),
                      Dump(nlohmann::json(channel.tags)),
                      Dump(nlohmann::json(channel.rule_overrides)),
                      channel.block_action ? control::BlockActionName(*channel.block_action)
                                           : std::string_view(),
                      channel.created_ms, channel.updated_ms});
      !s) {
    return std::unexpected(s.error().Wrap("creating channel " + channel.id));
  }
  if (Status s = Run(db_,
                     "INSERT INTO stream_keys (channel_id, key_hash, created_ms) VALUES (?, ?, ?)",
                     {channel.id, hash, channel.created_ms});
      !s) {
    return std::unexpected(s.error().Wrap("creating channel " + channel.id));
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return CreatedChannel{std::move(channel), std::move(*key)};
}

Result<Channel> SqliteStateStore::GetChannelLocked(std::string_view channel_id) {
  auto stmt = Query(db_,
                    "SELECT " + std::string(kChannelColumns) + " FROM channels c WHERE c.id = ?",
                    {channel_id});
  if (!stmt) return std::unexpected(stmt.error());
  auto channel = ReadOne<Channel>(*stmt, [&](const Statement& s) { return ReadChannel(path_, s); });
  if (!channel) return std::unexpected(channel.error());
  if (!*channel) {
    return MakeError(ErrorCode::kNotFound, "channel " + Q(channel_id) + " does not exist");
  }
  return std::move(**channel);
}

Result<Channel> SqliteStateStore::GetChannel(std::string_view channel_id) {
  std::lock_guard lock(mu_);
  return GetChannelLocked(channel_id);
}

Result<ChannelPage> SqliteStateStore::ListChannels(const ChannelListOptions& options) {
  const int limit = ClampLimit(options.limit, 100, 1000);
  int64_t after = 0;
  if (!options.next_token.empty()) {
    const std::string& t = options.next_token;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), after);
    if (ec != std::errc() || end != t.data() + t.size() || after < 0) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid next_token \"" + Q(t) + "\": pass the token of the previous page");
    }
  }
  std::lock_guard lock(mu_);
  auto stmt = Query(db_,
                    "SELECT " + std::string(kChannelColumns) +
                        " FROM channels c WHERE c.pos > ? ORDER BY c.pos LIMIT ?",
                    {after, limit + 1});
  if (!stmt) return std::unexpected(stmt.error());
  ChannelPage page;
  int64_t last_pos = 0;
  while (true) {
    auto row = stmt->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    if (static_cast<int>(page.channels.size()) == limit) {
      page.next_token = std::to_string(last_pos);
      break;
    }
    auto channel = ReadChannel(path_, *stmt);
    if (!channel) return std::unexpected(channel.error());
    last_pos = stmt->ColumnInt64(9);
    page.channels.push_back(std::move(*channel));
  }
  return page;
}

Result<Channel> SqliteStateStore::UpdateChannel(std::string_view channel_id,
                                                const ChannelUpdate& update) {
  if (Status s = ValidateChannelUpdate(update); !s) return std::unexpected(s.error());
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto channel = GetChannelLocked(channel_id);
  if (!channel) return channel;
  if (update.name) channel->name = *update.name;
  if (update.is_private) channel->is_private = *update.is_private;
  if (update.policy) channel->policy = *update.policy;
  if (update.tags) channel->tags = *update.tags;
  if (update.rule_overrides) channel->rule_overrides = *update.rule_overrides;
  if (update.block_action) channel->block_action = *update.block_action;
  channel->updated_ms = std::max(clock_(), channel->created_ms);
  if (Status s = Run(db_,
                     "UPDATE channels SET name = ?, is_private = ?, policy = ?, tags = ?, "
                     "rule_overrides = ?, block_action = ?, updated_ms = ? WHERE id = ?",
                     {channel->name, channel->is_private,
                      Dump(control::RestrictionPolicyToJson(channel->policy)),
                      Dump(nlohmann::json(channel->tags)),
                      Dump(nlohmann::json(channel->rule_overrides)),
                      channel->block_action ? control::BlockActionName(*channel->block_action)
                                            : std::string_view(),
                      channel->updated_ms, channel->id});
      !s) {
    return std::unexpected(s.error().Wrap("updating channel " + channel->id));
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return channel;
}

Status SqliteStateStore::DeleteChannel(std::string_view channel_id) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto channel = GetChannelLocked(channel_id);
  if (!channel) return std::unexpected(channel.error());
  auto live = LiveSessionLocked(channel_id);
  if (!live) return std::unexpected(live.error());
  if (*live) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "channel " + channel->id + " is live (stream " + (*live)->stream_id +
                         "): stop the stream before deleting the channel");
  }
  // The alarm rows also go by ON DELETE CASCADE; deleting them here keeps
  // the order explicit (children before parents).
  for (std::string_view table : {"stream_keys", "revoked_viewers", "viewer_minutes",
                                 "alarm_points", "alarm_channel_states", "alarms"}) {
    if (Status s =
            Run(db_, "DELETE FROM " + std::string(table) + " WHERE channel_id = ?", {channel->id});
        !s) {
      return s;
    }
  }
  if (Status s = Run(db_, "DELETE FROM channels WHERE id = ?", {channel->id}); !s) return s;
  return tx->Commit();
}

// ---------------------------------------------------------------------------
// Stream keys

Result<std::string> SqliteStateStore::ResetStreamKey(std::string_view channel_id) {
  auto key = control::NewStreamKey();
  if (!key) return std::unexpected(key.error().Wrap("resetting a stream key"));
  const std::string hash = control::HashSecret(*key);
  if (hash.empty()) return MakeError(ErrorCode::kInternal, "resetting a stream key: hashing failed");
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto channel = GetChannelLocked(channel_id);
  if (!channel) return std::unexpected(channel.error());
  if (Status s = Run(db_,
                     "INSERT INTO stream_keys (channel_id, key_hash, created_ms) VALUES (?, ?, ?) "
                     "ON CONFLICT (channel_id) DO UPDATE SET key_hash = excluded.key_hash, "
                     "created_ms = excluded.created_ms",
                     {channel->id, hash, clock_()});
      !s) {
    return std::unexpected(s.error().Wrap("resetting the stream key of channel " + channel->id));
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return std::move(*key);
}

Result<Channel> SqliteStateStore::FindChannelByStreamKey(std::string_view stream_key) {
  // The message never contains the key (see control::RedactSecret for logs).
  auto unknown = [] { return MakeError(ErrorCode::kNotFound, "unknown stream key"); };
  if (!control::IsStreamKey(stream_key)) return unknown();
  const std::string hash = control::HashSecret(stream_key);
  if (hash.empty()) return MakeError(ErrorCode::kInternal, "checking a stream key: hashing failed");
  std::lock_guard lock(mu_);
  auto stmt = Query(db_,
                    "SELECT " + std::string(kChannelColumns) +
                        ", k.key_hash FROM stream_keys k JOIN channels c ON c.id = k.channel_id "
                        "WHERE k.key_hash = ?",
                    {hash});
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  if (!*row || !control::ConstantTimeEquals(stmt->ColumnText(10), hash)) return unknown();
  return ReadChannel(path_, *stmt);
}

// ---------------------------------------------------------------------------
// Stream sessions

Result<StreamSession> SqliteStateStore::GetSessionLocked(std::string_view stream_id) {
  auto stmt = Query(db_,
                    "SELECT " + std::string(kSessionColumns) +
                        " FROM stream_sessions WHERE stream_id = ?",
                    {stream_id});
  if (!stmt) return std::unexpected(stmt.error());
  auto session =
      ReadOne<StreamSession>(*stmt, [&](const Statement& s) { return ReadSession(path_, s); });
  if (!session) return std::unexpected(session.error());
  if (!*session) {
    return MakeError(ErrorCode::kNotFound, "stream session " + Q(stream_id) + " does not exist");
  }
  return std::move(**session);
}

Result<std::optional<StreamSession>> SqliteStateStore::LiveSessionLocked(
    std::string_view channel_id) {
  auto stmt = Query(db_,
                    "SELECT " + std::string(kSessionColumns) +
                        " FROM stream_sessions WHERE channel_id = ? AND state = 'live'",
                    {channel_id});
  if (!stmt) return std::unexpected(stmt.error());
  return ReadOne<StreamSession>(*stmt, [&](const Statement& s) { return ReadSession(path_, s); });
}

Result<control::Event> SqliteStateStore::AppendEventLocked(control::EventType type,
                                                           std::string_view channel_id,
                                                           std::string_view stream_id,
                                                           const nlohmann::json& detail,
                                                           int64_t now) {
  control::Event event;
  event.time_ms = now;
  event.type = type;
  event.channel_id = SanitizeUtf8(channel_id);
  event.stream_id = SanitizeUtf8(stream_id);
  event.detail = detail.is_null() ? nlohmann::json::object() : detail;
  const std::string text = Dump(event.detail);
  if (Status s = Run(db_,
                     "INSERT INTO events (time_ms, type, channel_id, stream_id, detail) "
                     "VALUES (?, ?, ?, ?, ?)",
                     {event.time_ms, control::EventTypeName(type), event.channel_id,
                      event.stream_id, text});
      !s) {
    return std::unexpected(
        s.error().Wrap("appending event \"" + std::string(control::EventTypeName(type)) + "\""));
  }
  event.seq = db_.LastInsertRowId();
  // What a reader gets back: the stored text, parsed (invalid UTF-8 replaced).
  event.detail = nlohmann::json::parse(text, nullptr, false);
  return event;
}

Result<StreamSession> SqliteStateStore::StartSession(std::string_view channel_id,
                                                     const nlohmann::json& ingest) {
  if (!ingest.is_null() && !ingest.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "starting a session of channel " + Q(channel_id) +
                         ": ingest information must be a JSON object");
  }
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto channel = GetChannelLocked(channel_id);
  if (!channel) return std::unexpected(channel.error());
  auto live = LiveSessionLocked(channel_id);
  if (!live) return std::unexpected(live.error());
  if (*live) {
    return MakeError(ErrorCode::kAlreadyExists,
                     "channel " + channel->id + " already has a live stream " +
                         (*live)->stream_id + " (started " + IsoTimeUtc((*live)->started_ms) +
                         ")");
  }
  const int64_t now = clock_();
  StreamSession session;
  session.stream_id = control::NewStreamId();
  session.channel_id = channel->id;
  session.state = SessionState::kLive;
  session.health = StreamHealth::kUnknown;
  session.started_ms = now;
  const std::string ingest_text = Dump(ingest.is_null() ? nlohmann::json::object() : ingest);
  session.ingest = nlohmann::json::parse(ingest_text, nullptr, false);
  session.channel = ChannelToJson(*channel);
  if (Status s = Run(db_,
                     "INSERT INTO stream_sessions (stream_id, channel_id, state, health, "
                     "started_ms, ingest, channel) VALUES (?, ?, 'live', ?, ?, ?, ?)",
                     {session.stream_id, session.channel_id, StreamHealthName(session.health),
                      session.started_ms, ingest_text, Dump(session.channel)});
      !s) {
    return std::unexpected(s.error().Wrap("starting a session of channel " + channel->id));
  }
  const nlohmann::json detail = {{"channel_name", channel->name}};
  for (control::EventType type :
       {control::EventType::kSessionCreated, control::EventType::kStreamStart}) {
    auto event = AppendEventLocked(type, session.channel_id, session.stream_id, detail, now);
    if (!event) return std::unexpected(event.error());
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return session;
}

Result<StreamSession> SqliteStateStore::EndLocked(std::string_view stream_id,
                                                  std::string_view end_reason,
                                                  std::string_view failure_reason, bool failed) {
  auto session = GetSessionLocked(stream_id);
  if (!session) return session;
  if (session->state == SessionState::kEnded) return session;
  const int64_t now = std::max(clock_(), session->started_ms);
  session->state = SessionState::kEnded;
  session->ended_ms = now;
  session->end_reason = SanitizeUtf8(end_reason);
  if (Status s = Run(db_,
                     "UPDATE stream_sessions SET state = 'ended', ended_ms = ?, end_reason = ? "
                     "WHERE stream_id = ?",
                     {session->ended_ms, session->end_reason, session->stream_id});
      !s) {
    return std::unexpected(s.error().Wrap("ending stream session " + session->stream_id));
  }
  const std::string channel_name = ChannelName(*session);
  std::vector<std::pair<control::EventType, nlohmann::json>> events;
  if (failed) {
    events.push_back({control::EventType::kStreamFailure,
                      {{"channel_name", channel_name}, {"reason", SanitizeUtf8(failure_reason)}}});
  }
  events.push_back({control::EventType::kStreamEnd,
                    {{"channel_name", channel_name}, {"reason", session->end_reason}}});
  events.push_back(
      {control::EventType::kSessionEnded,
       {{"channel_name", channel_name},
        {"reason", session->end_reason},
        {"duration_s", static_cast<double>(session->ended_ms - session->started_ms) / 1000.0}}});
  for (const auto& [type, detail] : events) {
    auto event = AppendEventLocked(type, session->channel_id, session->stream_id, detail, now);
    if (!event) return std::unexpected(event.error());
  }
  return session;
}

Result<StreamSession> SqliteStateStore::EndSession(std::string_view stream_id,
                                                   std::string_view reason) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto session = EndLocked(stream_id, reason, "", false);
  if (!session) return session;
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return session;
}

Result<StreamSession> SqliteStateStore::FailSession(std::string_view stream_id,
                                                    std::string_view reason) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto session = EndLocked(stream_id, "failed: " + std::string(reason), reason, true);
  if (!session) return session;
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return session;
}

Status SqliteStateStore::RequestStop(std::string_view stream_id, std::string_view reason) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto session = GetSessionLocked(stream_id);
  if (!session) return std::unexpected(session.error());
  if (session->state == SessionState::kEnded) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "stream " + session->stream_id + " has already ended");
  }
  if (Status s = Run(db_,
                     "UPDATE stream_sessions SET stop_requested = 1, stop_reason = ? "
                     "WHERE stream_id = ?",
                     {SanitizeUtf8(reason), session->stream_id});
      !s) {
    return s;
  }
  return tx->Commit();
}

Result<std::optional<StreamSession>> SqliteStateStore::LiveSession(std::string_view channel_id) {
  std::lock_guard lock(mu_);
  return LiveSessionLocked(channel_id);
}

Result<std::optional<StreamSession>> SqliteStateStore::LiveSessionByIngestClient(
    std::string_view app, std::string_view clientid) {
  auto live = ListLiveSessions();
  if (!live) return std::unexpected(live.error());
  // Compared here rather than in SQL: the ingest may report clientid as a
  // string or a number, and live sessions are few.
  auto text = [](const nlohmann::json& ingest, const char* key) -> std::string {
    if (!ingest.is_object()) return "";
    auto it = ingest.find(key);
    if (it == ingest.end()) return "";
    return it->is_string() ? it->get<std::string>() : Dump(*it);
  };
  // Newest first: nginx numbers its clients from 1 again after a restart, so
  // a session left live by a crash may share the client id of a new one.
  for (auto it = live->rbegin(); it != live->rend(); ++it) {
    if (text(it->ingest, "app") == app && text(it->ingest, "clientid") == clientid) {
      return std::optional<StreamSession>(std::move(*it));
    }
  }
  return std::optional<StreamSession>();
}

Result<std::vector<StreamSession>> SqliteStateStore::ListLiveSessions() {
  std::lock_guard lock(mu_);
  auto stmt = Query(db_, "SELECT " + std::string(kSessionColumns) +
                             " FROM stream_sessions WHERE state = 'live' ORDER BY pos");
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<StreamSession>(*stmt, [&](const Statement& s) { return ReadSession(path_, s); });
}

Result<StreamSession> SqliteStateStore::GetSession(std::string_view stream_id) {
  std::lock_guard lock(mu_);
  return GetSessionLocked(stream_id);
}

Result<std::vector<StreamSession>> SqliteStateStore::ListSessions(std::string_view channel_id,
                                                                  int limit) {
  std::lock_guard lock(mu_);
  auto stmt = Query(db_,
                    "SELECT " + std::string(kSessionColumns) +
                        " FROM stream_sessions WHERE channel_id = ? ORDER BY pos DESC LIMIT ?",
                    {channel_id, ClampLimit(limit, 50, 1000)});
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<StreamSession>(*stmt, [&](const Statement& s) { return ReadSession(path_, s); });
}

Status SqliteStateStore::UpdateSessionIngest(std::string_view stream_id,
                                             const nlohmann::json& patch) {
  if (!patch.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "updating stream session " + Q(stream_id) +
                         ": the ingest patch must be a JSON object");
  }
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto session = GetSessionLocked(stream_id);
  if (!session) return std::unexpected(session.error());
  nlohmann::json ingest = session->ingest.is_object() ? session->ingest : nlohmann::json::object();
  ingest.merge_patch(patch);
  if (Status s = Run(db_, "UPDATE stream_sessions SET ingest = ? WHERE stream_id = ?",
                     {Dump(ingest), session->stream_id});
      !s) {
    return s;
  }
  return tx->Commit();
}

Status SqliteStateStore::SetHealth(std::string_view stream_id, StreamHealth health) {
  std::lock_guard lock(mu_);
  if (Status s = Run(db_, "UPDATE stream_sessions SET health = ? WHERE stream_id = ?",
                     {StreamHealthName(health), stream_id});
      !s) {
    return s;
  }
  if (db_.Changes() == 0) {
    return MakeError(ErrorCode::kNotFound, "stream session " + Q(stream_id) + " does not exist");
  }
  return Ok();
}

// ---------------------------------------------------------------------------
// Events

Result<control::Event> SqliteStateStore::AppendEvent(control::EventType type,
                                                     std::string_view channel_id,
                                                     std::string_view stream_id,
                                                     const nlohmann::json& detail) {
  std::lock_guard lock(mu_);
  return AppendEventLocked(type, channel_id, stream_id, detail, clock_());
}

Result<std::vector<control::Event>> SqliteStateStore::ListEvents(const EventFilter& filter) {
  std::string sql = "SELECT " + std::string(kEventColumns) + " FROM events WHERE seq > ?";
  std::vector<SqlArg> args = {filter.after_seq};
  if (filter.channel_id) {
    sql += " AND channel_id = ?";
    args.emplace_back(*filter.channel_id);
  }
  if (filter.stream_id) {
    sql += " AND stream_id = ?";
    args.emplace_back(*filter.stream_id);
  }
  if (filter.types && !filter.types->empty()) {
    sql += " AND type IN (";
    for (size_t i = 0; i < filter.types->size(); ++i) {
      sql += i == 0 ? "?" : ", ?";
      args.emplace_back(control::EventTypeName((*filter.types)[i]));
    }
    sql += ")";
  }
  sql += " ORDER BY seq LIMIT ?";
  args.emplace_back(ClampLimit(filter.limit, 100, 1000));
  std::lock_guard lock(mu_);
  auto stmt = Query(db_, sql, args);
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<control::Event>(*stmt, [&](const Statement& s) { return ReadEvent(path_, s); });
}

Result<int64_t> SqliteStateStore::LastEventSeq() {
  std::lock_guard lock(mu_);
  auto stmt = Query(db_, "SELECT COALESCE(MAX(seq), 0) FROM events");
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  return *row ? stmt->ColumnInt64(0) : 0;
}

// ---------------------------------------------------------------------------
// Identifications

Status SqliteStateStore::RecordIdentification(const IdentificationRecord& input) {
  if (Status s = ValidateIdentification(input); !s) return s;
  IdentificationRecord r = input;
  for (std::string* text : {&r.stream_id, &r.channel_id, &r.match_id, &r.title, &r.artist,
                            &r.rights_holder, &r.isrc}) {
    *text = SanitizeUtf8(*text);
  }
  std::lock_guard lock(mu_);
  r.updated_ms = clock_();
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto stmt = Query(db_,
                    "SELECT status, duration_s FROM identifications "
                    "WHERE stream_id = ? AND match_id = ?",
                    {r.stream_id, r.match_id});
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  if (*row) {
    const int old_rank = StatusRank(stmt->ColumnText(0));
    const int new_rank = StatusRank(r.status);
    const double old_duration = stmt->ColumnDouble(1);
    // A late message: keep what is stored.
    if (new_rank < old_rank) return Ok();
    if (new_rank == old_rank && r.status != kMatchEnded && r.duration_s < old_duration) {
      return Ok();
    }
  }
  if (Status s = Run(db_,
                     "INSERT INTO identifications (" + std::string(kIdentificationColumns) +
                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                         "ON CONFLICT (stream_id, match_id) DO UPDATE SET "
                         "channel_id = excluded.channel_id, status = excluded.status, "
                         "rule = excluded.rule, track_rule = excluded.track_rule, "
                         "track_id = excluded.track_id, title = excluded.title, "
                         "artist = excluded.artist, rights_holder = excluded.rights_holder, "
                         "isrc = excluded.isrc, started_at_ms = excluded.started_at_ms, "
                         "stream_offset_s = excluded.stream_offset_s, "
                         "duration_s = excluded.duration_s, "
                         "reference_offset_s = excluded.reference_offset_s, "
                         "score = excluded.score, updated_ms = excluded.updated_ms",
                     {r.stream_id, r.match_id, r.channel_id, r.status, r.rule, r.track_rule,
                      r.track_id, r.title, r.artist, r.rights_holder, r.isrc, r.started_at_ms,
                      r.stream_offset_s, r.duration_s, r.reference_offset_s, r.score,
                      r.updated_ms});
      !s) {
    return std::unexpected(s.error().Wrap("recording identification " + r.stream_id + "/" +
                                          r.match_id));
  }
  return tx->Commit();
}

Result<std::vector<IdentificationRecord>> SqliteStateStore::ListIdentifications(
    const IdentificationFilter& filter) {
  std::string sql =
      "SELECT " + std::string(kIdentificationColumns) + " FROM identifications WHERE 1 = 1";
  std::vector<SqlArg> args;
  if (filter.stream_id) {
    sql += " AND stream_id = ?";
    args.emplace_back(*filter.stream_id);
  }
  if (filter.channel_id) {
    sql += " AND channel_id = ?";
    args.emplace_back(*filter.channel_id);
  }
  if (filter.from_ms) {
    sql += " AND started_at_ms >= ?";
    args.emplace_back(*filter.from_ms);
  }
  if (filter.to_ms) {
    sql += " AND started_at_ms < ?";
    args.emplace_back(*filter.to_ms);
  }
  if (filter.rule) {
    sql += " AND rule = ?";
    args.emplace_back(*filter.rule);
  }
  sql += " ORDER BY started_at_ms, stream_id, match_id LIMIT ?";
  args.emplace_back(ClampLimit(filter.limit, 1000, 10000));
  std::lock_guard lock(mu_);
  auto stmt = Query(db_, sql, args);
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<IdentificationRecord>(*stmt, ReadIdentification);
}

Result<std::vector<TrackUsage>> SqliteStateStore::UsageReport(std::string_view channel_id,
                                                              int64_t from_ms, int64_t to_ms) {
  if (from_ms > to_ms) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "usage report of channel " + Q(channel_id) + ": the range starts (" +
                         IsoTimeUtc(from_ms) + ") after it ends (" + IsoTimeUtc(to_ms) + ")");
  }
  std::lock_guard lock(mu_);
  auto stmt = Query(db_,
                    "SELECT track_id, MAX(title), MAX(artist), MAX(rights_holder), MAX(isrc), "
                    "SUM(duration_s), COUNT(DISTINCT stream_id), COUNT(*) FROM identifications "
                    "WHERE channel_id = ? AND started_at_ms >= ? AND started_at_ms < ? "
                    "GROUP BY track_id ORDER BY SUM(duration_s) DESC, track_id",
                    {channel_id, from_ms, to_ms});
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<TrackUsage>(*stmt, [](const Statement& s) -> Result<TrackUsage> {
    TrackUsage u;
    u.track_id = s.ColumnInt64(0);
    u.title = s.ColumnText(1);
    u.artist = s.ColumnText(2);
    u.rights_holder = s.ColumnText(3);
    u.isrc = s.ColumnText(4);
    u.seconds_played = s.ColumnDouble(5);
    u.streams = s.ColumnInt64(6);
    u.plays = s.ColumnInt64(7);
    return u;
  });
}

// ---------------------------------------------------------------------------
// Admin API keys

Result<CreatedApiKey> SqliteStateStore::CreateApiKey(std::string_view name) {
  if (Status s = ValidateApiKeyName(name); !s) return std::unexpected(s.error());
  auto key = control::NewApiKey();
  if (!key) return std::unexpected(key.error().Wrap("creating an API key"));
  const std::string hash = control::HashSecret(*key);
  if (hash.empty()) return MakeError(ErrorCode::kInternal, "creating an API key: hashing failed");
  CreatedApiKey created;
  created.info.id = control::NewApiKeyId();
  created.info.name = std::string(name);
  created.info.hint = control::RedactSecret(*key);
  std::lock_guard lock(mu_);
  created.info.created_ms = clock_();
  if (Status s = Run(db_,
                     "INSERT INTO api_keys (id, name, hint, key_hash, created_ms) "
                     "VALUES (?, ?, ?, ?, ?)",
                     {created.info.id, created.info.name, created.info.hint, hash,
                      created.info.created_ms});
      !s) {
    return std::unexpected(s.error().Wrap("creating API key " + created.info.id));
  }
  created.key = std::move(*key);
  return created;
}

Result<std::string> SqliteStateStore::VerifyApiKey(std::string_view key) {
  auto unknown = [] { return MakeError(ErrorCode::kNotFound, "unknown API key"); };
  if (!control::IsApiKey(key)) return unknown();
  const std::string hash = control::HashSecret(key);
  if (hash.empty()) return MakeError(ErrorCode::kInternal, "checking an API key: hashing failed");
  std::lock_guard lock(mu_);
  auto stmt = Query(db_, "SELECT id, key_hash, revoked_ms FROM api_keys WHERE key_hash = ?", {hash});
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  if (!*row || !control::ConstantTimeEquals(stmt->ColumnText(1), hash)) return unknown();
  std::string id = stmt->ColumnText(0);
  if (stmt->ColumnInt64(2) != 0) {
    return MakeError(ErrorCode::kNotFound, "API key " + id + " has been revoked");
  }
  return id;
}

Result<std::vector<ApiKeyInfo>> SqliteStateStore::ListApiKeys() {
  std::lock_guard lock(mu_);
  auto stmt = Query(db_, "SELECT " + std::string(kApiKeyColumns) + " FROM api_keys ORDER BY pos");
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<ApiKeyInfo>(*stmt, ReadApiKey);
}

Status SqliteStateStore::RevokeApiKey(std::string_view id) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto stmt = Query(db_, "SELECT revoked_ms FROM api_keys WHERE id = ?", {id});
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return MakeError(ErrorCode::kNotFound, "API key " + Q(id) + " does not exist");
  if (stmt->ColumnInt64(0) != 0) return Ok();  // already revoked
  if (Status s = Run(db_, "UPDATE api_keys SET revoked_ms = ? WHERE id = ?",
                     {std::max<int64_t>(clock_(), 1), id});
      !s) {
    return s;
  }
  return tx->Commit();
}

// ---------------------------------------------------------------------------
// Subscriptions

Result<Subscription> SqliteStateStore::CreateSubscription(const SubscriptionSpec& spec) {
  if (Status s = ValidateSubscriptionSpec(spec); !s) return std::unexpected(s.error());
  Subscription sub;
  sub.id = control::NewSubscriptionId();
  sub.kind = spec.kind;
  sub.target = spec.target;
  for (control::EventType type : spec.event_types) {
    if (std::ranges::find(sub.event_types, type) == sub.event_types.end()) {
      sub.event_types.push_back(type);
    }
  }
  for (const std::string& id : spec.channel_ids) {
    if (std::ranges::find(sub.channel_ids, id) == sub.channel_ids.end()) {
      sub.channel_ids.push_back(id);
    }
  }
  std::lock_guard lock(mu_);
  sub.created_ms = clock_();
  if (Status s = Run(db_,
                     "INSERT INTO subscriptions (id, kind, target, event_types, channel_ids, "
                     "created_ms) VALUES (?, ?, ?, ?, ?, ?)",
                     {sub.id, sub.kind, sub.target, Dump(EventTypeNames(sub.event_types)),
                      Dump(nlohmann::json(sub.channel_ids)), sub.created_ms});
      !s) {
    return std::unexpected(s.error().Wrap("creating subscription " + sub.id));
  }
  return sub;
}

Result<Subscription> SqliteStateStore::GetSubscription(std::string_view id) {
  std::lock_guard lock(mu_);
  auto stmt = Query(db_,
                    "SELECT " + std::string(kSubscriptionColumns) +
                        " FROM subscriptions WHERE id = ?",
                    {id});
  if (!stmt) return std::unexpected(stmt.error());
  auto sub = ReadOne<Subscription>(*stmt,
                                   [&](const Statement& s) { return ReadSubscription(path_, s); });
  if (!sub) return std::unexpected(sub.error());
  if (!*sub) return MakeError(ErrorCode::kNotFound, "subscription " + Q(id) + " does not exist");
  return std::move(**sub);
}

Result<std::vector<Subscription>> SqliteStateStore::ListSubscriptionsLocked() {
  auto stmt = Query(db_, "SELECT " + std::string(kSubscriptionColumns) +
                             " FROM subscriptions ORDER BY pos");
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<Subscription>(*stmt,
                               [&](const Statement& s) { return ReadSubscription(path_, s); });
}

Result<std::vector<Subscription>> SqliteStateStore::ListSubscriptions() {
  std::lock_guard lock(mu_);
  return ListSubscriptionsLocked();
}

Status SqliteStateStore::DeleteSubscription(std::string_view id) {
  std::lock_guard lock(mu_);
  if (Status s = Run(db_, "DELETE FROM subscriptions WHERE id = ?", {id}); !s) return s;
  if (db_.Changes() == 0) {
    return MakeError(ErrorCode::kNotFound, "subscription " + Q(id) + " does not exist");
  }
  return Ok();
}

Result<std::vector<Subscription>> SqliteStateStore::MatchingSubscriptions(
    const control::Event& event) {
  std::lock_guard lock(mu_);
  auto all = ListSubscriptionsLocked();
  if (!all) return all;
  std::erase_if(*all, [&](const Subscription& s) { return !SubscriptionMatches(s, event); });
  return all;
}

// ---------------------------------------------------------------------------
// Playback key pairs

Result<PlaybackKey> SqliteStateStore::CreatePlaybackKey(std::string_view name,
                                                        std::string_view public_key_pem,
                                                        std::string_view fingerprint,
                                                        size_t max_keys) {
  if (Status s = ValidatePlaybackKey(name, public_key_pem, fingerprint); !s) {
    return std::unexpected(s.error());
  }
  PlaybackKey key;
  // Channel ids and playback key ids share their shape after the prefix: 12
  // of [a-z0-9] from the CSPRNG.
  key.id = std::string(kPlaybackKeyIdPrefix) +
           control::NewChannelId().substr(control::kChannelIdPrefix.size());
  key.name = std::string(name);
  key.public_key_pem = std::string(public_key_pem);
  key.fingerprint = std::string(fingerprint);
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto existing = Query(db_, "SELECT id FROM playback_keys WHERE fingerprint = ?", {fingerprint});
  if (!existing) return std::unexpected(existing.error());
  auto row = existing->Step();
  if (!row) return std::unexpected(row.error());
  if (*row) {
    return MakeError(ErrorCode::kAlreadyExists,
                     "this public key is already imported as playback key " +
                         existing->ColumnText(0) + " (fingerprint " + key.fingerprint + ")");
  }
  auto count = Query(db_, "SELECT COUNT(*) FROM playback_keys");
  if (!count) return std::unexpected(count.error());
  row = count->Step();
  if (!row) return std::unexpected(row.error());
  const int64_t stored = *row ? count->ColumnInt64(0) : 0;
  if (stored >= 0 && static_cast<uint64_t>(stored) >= max_keys) {
    return MakeError(ErrorCode::kResourceExhausted,
                     std::to_string(stored) + " playback keys are stored and the limit is " +
                         std::to_string(max_keys) +
                         ": delete a key no longer in use before importing another");
  }
  key.created_ms = clock_();
  if (Status s = Run(db_,
                     "INSERT INTO playback_keys (id, name, public_key_pem, fingerprint, "
                     "created_ms) VALUES (?, ?, ?, ?, ?)",
                     {key.id, key.name, key.public_key_pem, key.fingerprint, key.created_ms});
      !s) {
    return std::unexpected(s.error().Wrap("importing playback key " + key.id));
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return key;
}

Result<PlaybackKey> SqliteStateStore::GetPlaybackKey(std::string_view id) {
  std::lock_guard lock(mu_);
  auto stmt = Query(
      db_, "SELECT " + std::string(kPlaybackKeyColumns) + " FROM playback_keys WHERE id = ?", {id});
  if (!stmt) return std::unexpected(stmt.error());
  auto key = ReadOne<PlaybackKey>(*stmt, ReadPlaybackKey);
  if (!key) return std::unexpected(key.error());
  if (!*key) return MakeError(ErrorCode::kNotFound, "playback key " + Q(id) + " does not exist");
  return std::move(**key);
}

Result<std::vector<PlaybackKey>> SqliteStateStore::ListPlaybackKeys() {
  std::lock_guard lock(mu_);
  auto stmt =
      Query(db_, "SELECT " + std::string(kPlaybackKeyColumns) + " FROM playback_keys ORDER BY pos");
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<PlaybackKey>(*stmt, ReadPlaybackKey);
}

Status SqliteStateStore::DeletePlaybackKey(std::string_view id) {
  std::lock_guard lock(mu_);
  if (Status s = Run(db_, "DELETE FROM playback_keys WHERE id = ?", {id}); !s) return s;
  if (db_.Changes() == 0) {
    return MakeError(ErrorCode::kNotFound, "playback key " + Q(id) + " does not exist");
  }
  return Ok();
}

// ---------------------------------------------------------------------------
// Single-use playback tokens

Result<bool> SqliteStateStore::ClaimSingleUseToken(std::string_view uuid,
                                                   std::string_view viewer_binding, int64_t exp_s,
                                                   int64_t now_s) {
  if (Status s = ValidateSingleUseToken(uuid, viewer_binding); !s) {
    return std::unexpected(s.error());
  }
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  // A claim expires when now_s >= exp_s (JWT "exp").
  if (Status s = Run(db_,
                     "DELETE FROM single_use_tokens WHERE rowid IN (SELECT rowid FROM "
                     "single_use_tokens WHERE exp_s <= ? ORDER BY exp_s LIMIT ?)",
                     {now_s, kSingleUsePurgeBatch});
      !s) {
    return std::unexpected(s.error().Wrap("purging expired single-use tokens"));
  }
  auto stmt = Query(db_, "SELECT viewer_binding = ?, exp_s FROM single_use_tokens WHERE uuid = ?",
                    {viewer_binding, uuid});
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  bool claimed = true;
  if (*row && stmt->ColumnInt64(1) > now_s) {
    // Held and not expired: the holder may use it again, nobody else.
    claimed = stmt->ColumnInt64(0) != 0;
    if (claimed) {
      if (Status s = Run(db_, "UPDATE single_use_tokens SET exp_s = MAX(exp_s, ?) WHERE uuid = ?",
                         {exp_s, uuid});
          !s) {
        return std::unexpected(s.error());
      }
    }
  } else {
    if (Status s = Run(db_,
                       "INSERT INTO single_use_tokens (uuid, viewer_binding, exp_s) "
                       "VALUES (?, ?, ?) ON CONFLICT (uuid) DO UPDATE SET "
                       "viewer_binding = excluded.viewer_binding, exp_s = excluded.exp_s",
                       {uuid, viewer_binding, exp_s});
        !s) {
      return std::unexpected(s.error().Wrap("claiming a single-use token"));
    }
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return claimed;
}

// ---------------------------------------------------------------------------
// Revoked viewers

Status SqliteStateStore::RevokeViewer(std::string_view channel_id, std::string_view viewer_id,
                                      int64_t up_to_session_version) {
  if (Status s = ValidateRevokedViewer(viewer_id, up_to_session_version); !s) return s;
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  auto channel = GetChannelLocked(channel_id);
  if (!channel) return std::unexpected(channel.error());
  if (Status s = Run(db_,
                     "INSERT INTO revoked_viewers (channel_id, viewer_id, up_to_session_version, "
                     "revoked_ms) VALUES (?, ?, ?, ?) ON CONFLICT (channel_id, viewer_id) DO "
                     "UPDATE SET up_to_session_version = excluded.up_to_session_version, "
                     "revoked_ms = excluded.revoked_ms WHERE excluded.up_to_session_version > "
                     "revoked_viewers.up_to_session_version",
                     {channel->id, viewer_id, up_to_session_version, clock_()});
      !s) {
    return std::unexpected(s.error().Wrap("revoking a viewer of channel " + channel->id));
  }
  return tx->Commit();
}

Result<std::vector<RevokedViewer>> SqliteStateStore::ListRevokedViewers() {
  std::lock_guard lock(mu_);
  auto stmt = Query(db_,
                    "SELECT channel_id, viewer_id, up_to_session_version, revoked_ms "
                    "FROM revoked_viewers ORDER BY channel_id, viewer_id");
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<RevokedViewer>(*stmt, [](const Statement& s) -> Result<RevokedViewer> {
    RevokedViewer r;
    r.channel_id = s.ColumnText(0);
    r.viewer_id = s.ColumnText(1);
    r.up_to_session_version = s.ColumnInt64(2);
    r.revoked_ms = s.ColumnInt64(3);
    return r;
  });
}

// ---------------------------------------------------------------------------
// Viewer series

Status SqliteStateStore::RecordViewerMinutes(std::span<const ViewerMinuteRecord> records) {
  for (const ViewerMinuteRecord& r : records) {
    if (Status s = ValidateViewerMinute(r); !s) return s;
  }
  if (records.empty()) return Ok();
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  // Only for channels that exist; the larger maximum wins.
  auto stmt = db_.Prepare(
      "INSERT INTO viewer_minutes (channel_id, minute_start_s, max_viewers) "
      "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM channels WHERE id = ?1) "
      "ON CONFLICT (channel_id, minute_start_s) DO UPDATE SET "
      "max_viewers = MAX(viewer_minutes.max_viewers, excluded.max_viewers)");
  if (!stmt) return std::unexpected(stmt.error());
  for (const ViewerMinuteRecord& r : records) {
    if (Status s = stmt->Reset(); !s) return s;
    const std::array<SqlArg, 3> args = {SqlArg(r.channel_id), SqlArg(r.minute_start_s),
                                        SqlArg(r.max_viewers)};
    for (int i = 0; i < 3; ++i) {
      if (Status s = args[static_cast<size_t>(i)].BindTo(*stmt, i + 1); !s) return s;
    }
    if (Status s = stmt->Run(); !s) {
      return std::unexpected(s.error().Wrap("recording viewer counts"));
    }
  }
  return tx->Commit();
}

Result<std::vector<ViewerMinuteRecord>> SqliteStateStore::ListViewerMinutes(
    std::string_view channel_id, int64_t from_s, int64_t to_s) {
  if (from_s > to_s) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "viewer counts of channel " + Q(channel_id) + ": the range starts (" +
                         std::to_string(from_s) + " s) after it ends (" + std::to_string(to_s) +
                         " s)");
  }
  std::lock_guard lock(mu_);
  auto stmt = Query(db_,
                    "SELECT channel_id, minute_start_s, max_viewers FROM viewer_minutes "
                    "WHERE channel_id = ? AND minute_start_s >= ? AND minute_start_s < ? "
                    "ORDER BY minute_start_s",
                    {channel_id, from_s, to_s});
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<ViewerMinuteRecord>(*stmt, [](const Statement& s) -> Result<ViewerMinuteRecord> {
    ViewerMinuteRecord r;
    r.channel_id = s.ColumnText(0);
    r.minute_start_s = s.ColumnInt64(1);
    r.max_viewers = s.ColumnInt64(2);
    return r;
  });
}

// ---------------------------------------------------------------------------
// Viewer-spike alarms

Result<AlarmRecord> SqliteStateStore::CreateAlarm(std::string_view name,
                                                  std::string_view channel_id,
                                                  std::string_view spec_json) {
  if (Status s = ValidateAlarm(name, spec_json); !s) return std::unexpected(s.error());
  AlarmRecord alarm;
  // Channel ids and alarm ids share their shape after the prefix: 12 of
  // [a-z0-9] from the CSPRNG.
  alarm.id = std::string(kAlarmIdPrefix) +
             control::NewChannelId().substr(control::kChannelIdPrefix.size());
  alarm.name = std::string(name);
  alarm.channel_id = std::string(channel_id);
  alarm.spec_json = std::string(spec_json);
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  if (!channel_id.empty()) {
    auto channel = GetChannelLocked(channel_id);
    if (!channel) return std::unexpected(channel.error().Wrap("creating an alarm"));
  }
  auto count = Query(db_, "SELECT COUNT(*) FROM alarms");
  if (!count) return std::unexpected(count.error());
  auto row = count->Step();
  if (!row) return std::unexpected(row.error());
  const int64_t stored = *row ? count->ColumnInt64(0) : 0;
  if (stored >= 0 && static_cast<uint64_t>(stored) >= kMaxAlarms) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     std::to_string(stored) + " alarms are stored and the limit is " +
                         std::to_string(kMaxAlarms) + ": delete an alarm before creating another");
  }
  alarm.created_ms = clock_();
  if (Status s = Run(db_,
                     "INSERT INTO alarms (id, name, channel_id, spec_json, created_ms) "
                     "VALUES (?, ?, ?, ?, ?)",
                     {alarm.id, alarm.name,
                      alarm.channel_id.empty() ? SqlArg(nullptr) : SqlArg(alarm.channel_id),
                      alarm.spec_json, alarm.created_ms});
      !s) {
    return std::unexpected(s.error().Wrap("creating alarm " + alarm.id));
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return alarm;
}

Result<AlarmRecord> SqliteStateStore::GetAlarm(std::string_view id) {
  std::lock_guard lock(mu_);
  auto stmt =
      Query(db_, "SELECT " + std::string(kAlarmColumns) + " FROM alarms WHERE id = ?", {id});
  if (!stmt) return std::unexpected(stmt.error());
  auto alarm = ReadOne<AlarmRecord>(*stmt, ReadAlarm);
  if (!alarm) return std::unexpected(alarm.error());
  if (!*alarm) return MakeError(ErrorCode::kNotFound, "alarm " + Q(id) + " does not exist");
  return std::move(**alarm);
}

Result<std::vector<AlarmRecord>> SqliteStateStore::ListAlarms() {
  std::lock_guard lock(mu_);
  auto stmt = Query(db_, "SELECT " + std::string(kAlarmColumns) + " FROM alarms ORDER BY pos");
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<AlarmRecord>(*stmt, ReadAlarm);
}

Status SqliteStateStore::RequireAlarmLocked(std::string_view alarm_id) {
  auto stmt = Query(db_, "SELECT 1 FROM alarms WHERE id = ?", {alarm_id});
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return MakeError(ErrorCode::kNotFound, "alarm " + Q(alarm_id) + " does not exist");
  return Ok();
}

Status SqliteStateStore::DeleteAlarm(std::string_view id) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  if (Status s = RequireAlarmLocked(id); !s) return s;
  for (std::string_view table : {"alarm_points", "alarm_channel_states"}) {
    if (Status s = Run(db_, "DELETE FROM " + std::string(table) + " WHERE alarm_id = ?", {id});
        !s) {
      return s;
    }
  }
  if (Status s = Run(db_, "DELETE FROM alarms WHERE id = ?", {id}); !s) return s;
  return tx->Commit();
}

Status SqliteStateStore::SaveAlarmChannelState(std::string_view alarm_id,
                                               std::string_view channel_id,
                                               std::string_view bytes) {
  if (bytes.size() > kMaxAlarmChannelStateBytes) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the state of alarm " + Q(alarm_id) + " on channel " + Q(channel_id) +
                         " has " + std::to_string(bytes.size()) + " bytes (at most " +
                         std::to_string(kMaxAlarmChannelStateBytes) + ")");
  }
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  if (Status s = RequireAlarmLocked(alarm_id); !s) return s;
  // Only for a channel that exists (it may have been deleted meanwhile).
  if (Status s = Run(db_,
                     "INSERT INTO alarm_channel_states (alarm_id, channel_id, state, updated_ms) "
                     "SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM channels WHERE id = ?2) "
                     "ON CONFLICT (alarm_id, channel_id) DO UPDATE SET "
                     "state = excluded.state, updated_ms = excluded.updated_ms",
                     {alarm_id, channel_id, Blob{bytes}, clock_()});
      !s) {
    return std::unexpected(s.error().Wrap("saving the state of alarm " + Q(alarm_id)));
  }
  return tx->Commit();
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteStateStore::LoadAlarmChannelStates(
    std::string_view alarm_id) {
  using Entry = std::pair<std::string, std::string>;
  std::lock_guard lock(mu_);
  // One read transaction: the alarm check and the rows see the same snapshot.
  auto tx = Transaction::Begin(db_, Transaction::Mode::kDeferred);
  if (!tx) return std::unexpected(tx.error());
  if (Status s = RequireAlarmLocked(alarm_id); !s) return std::unexpected(s.error());
  auto stmt = Query(db_,
                    "SELECT channel_id, state FROM alarm_channel_states WHERE alarm_id = ? "
                    "ORDER BY channel_id",
                    {alarm_id});
  if (!stmt) return std::unexpected(stmt.error());
  auto entries = ReadAll<Entry>(*stmt, [](const Statement& s) -> Result<Entry> {
    const std::vector<uint8_t> bytes = s.ColumnBlob(1);
    return Entry(s.ColumnText(0), std::string(bytes.begin(), bytes.end()));
  });
  if (!entries) return entries;
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return entries;
}

Status SqliteStateStore::RecordAlarmPoints(std::span<const AlarmPointRecord> points) {
  for (const AlarmPointRecord& p : points) {
    if (Status s = ValidateAlarmPoint(p); !s) return s;
  }
  if (points.empty()) return Ok();
  std::lock_guard lock(mu_);
  auto tx = Transaction::Begin(db_);
  if (!tx) return std::unexpected(tx.error());
  // Only for alarms and channels that exist; a later point replaces one
  // stored for the same period.
  auto insert = db_.Prepare(
      "INSERT INTO alarm_points (alarm_id, channel_id, timestamp_s, value, band_low, band_high, "
      "state) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 "
      "WHERE EXISTS (SELECT 1 FROM alarms WHERE id = ?1) "
      "AND EXISTS (SELECT 1 FROM channels WHERE id = ?2) "
      "ON CONFLICT (alarm_id, channel_id, timestamp_s) DO UPDATE SET value = excluded.value, "
      "band_low = excluded.band_low, band_high = excluded.band_high, state = excluded.state");
  if (!insert) return std::unexpected(insert.error());
  std::set<std::pair<std::string_view, std::string_view>> series;
  for (const AlarmPointRecord& p : points) {
    const std::array<SqlArg, 7> args = {SqlArg(p.alarm_id), SqlArg(p.channel_id),
                                        SqlArg(p.timestamp_s), SqlArg(p.value),
                                        SqlArg(p.band_low), SqlArg(p.band_high), SqlArg(p.state)};
    if (Status s = RunPrepared(*insert, args); !s) {
      return std::unexpected(s.error().Wrap("recording alarm points"));
    }
    series.emplace(p.alarm_id, p.channel_id);
  }
  // Old points of the series just written, oldest first, a batch at a time.
  auto purge = db_.Prepare(
      "DELETE FROM alarm_points WHERE alarm_id = ?1 AND channel_id = ?2 AND timestamp_s IN ("
      "SELECT timestamp_s FROM alarm_points WHERE alarm_id = ?1 AND channel_id = ?2 AND "
      "timestamp_s < (SELECT MAX(timestamp_s) FROM alarm_points "
      "WHERE alarm_id = ?1 AND channel_id = ?2) - ?3 ORDER BY timestamp_s LIMIT ?4)");
  if (!purge) return std::unexpected(purge.error());
  for (const auto& [alarm_id, channel_id] : series) {
    const std::array<SqlArg, 4> args = {SqlArg(alarm_id), SqlArg(channel_id),
                                        SqlArg(kAlarmPointRetentionS),
                                        SqlArg(kAlarmPointPurgeBatch)};
    if (Status s = RunPrepared(*purge, args); !s) {
      return std::unexpected(s.error().Wrap("deleting old alarm points"));
    }
  }
  return tx->Commit();
}

Result<std::vector<AlarmPointRecord>> SqliteStateStore::ListAlarmPoints(std::string_view channel_id,
                                                                        int64_t from_s,
                                                                        int64_t to_s) {
  if (from_s > to_s) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "alarm points of channel " + Q(channel_id) + ": the range starts (" +
                         std::to_string(from_s) + " s) after it ends (" + std::to_string(to_s) +
                         " s)");
  }
  std::lock_guard lock(mu_);
  auto stmt = Query(db_,
                    "SELECT " + std::string(kAlarmPointColumns) +
                        " FROM alarm_points WHERE channel_id = ? AND timestamp_s >= ? AND "
                        "timestamp_s < ? ORDER BY alarm_id, timestamp_s",
                    {channel_id, from_s, to_s});
  if (!stmt) return std::unexpected(stmt.error());
  return ReadAll<AlarmPointRecord>(*stmt, ReadAlarmPoint);
}

Status SqliteStateStore::Check() {
  std::lock_guard lock(mu_);
  auto stmt = Query(db_, "SELECT COUNT(*) FROM state_schema");
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return std::unexpected(row.error());
  return Ok();
}

}  // namespace earshot::state
