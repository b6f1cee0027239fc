#include "store/catalog_db.h"

#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <system_error>
#include <utility>

namespace earshot::store {
namespace {

// The catalog schema, one step per version. Append new steps; never edit a
// step that has shipped (databases in the field have already applied it).
constexpr std::array<Migration, 1> kMigrations = {{
    {1, "create tracks and track_tags", R"sql(
CREATE TABLE tracks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('audio', 'video')),
  source TEXT NOT NULL,
  content_sha256 TEXT NOT NULL,
  title TEXT NOT NULL CHECK (title <> ''),
  artist TEXT NOT NULL,
  rights_holder TEXT NOT NULL,
  isrc TEXT NOT NULL,
  rule TEXT NOT NULL CHECK (rule IN ('block', 'mute', 'allow', 'track')),
  duration_s REAL NOT NULL CHECK (duration_s >= 0),
  added_at_unix_ms INTEGER NOT NULL,
  algorithm_version INTEGER NOT NULL
);
CREATE UNIQUE INDEX tracks_by_content_sha256 ON tracks (content_sha256)
  WHERE content_sha256 <> '';
CREATE INDEX tracks_by_rule ON tracks (rule);
CREATE TABLE track_tags (
  track_id INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
  key TEXT NOT NULL CHECK (key <> ''),
  value TEXT NOT NULL,
  PRIMARY KEY (track_id, key)
) WITHOUT ROWID;
)sql",
     nullptr},
}};

constexpr const char* kSelectEntry =
    "SELECT id, kind, source, content_sha256, title, artist, rights_holder, isrc, rule, "
    "duration_s, added_at_unix_ms, algorithm_version FROM tracks";

// Errors from the SQLite layer already name the database file, so the
// contexts below do not repeat it; errors made here do.
std::string NotFound(TrackId id, const std::filesystem::path& db_path) {
  return "track " + std::to_string(id) + " is not in catalog " + db_path.string();
}

// Checks and normalises an entry before it is stored.
Status Validate(CatalogEntry& entry) {
  std::string who = entry.source.empty() ? "track" : "track \"" + entry.source + "\"";
  if (entry.metadata.title.find_first_not_of(" \t\r\n") == std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, who + ": a title is required");
  }
  auto isrc = NormalizeIsrc(entry.metadata.isrc);
  if (!isrc) return std::unexpected(isrc.error().Wrap(who));
  entry.metadata.isrc = std::move(*isrc);
  if (!entry.content_sha256.empty()) {
    auto sha = NormalizeSha256(entry.content_sha256);
    if (!sha) return std::unexpected(sha.error().Wrap(who));
    entry.content_sha256 = std::move(*sha);
  }
  for (const auto& [key, value] : entry.metadata.tags) {
    if (key.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, who + ": tag with an empty key");
    }
  }
  if (!std::isfinite(entry.duration_s) || entry.duration_s < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     who + ": duration must be a non-negative number of seconds, got " +
                         std::to_string(entry.duration_s));
  }
  return Ok();
}

// Reads one row of kSelectEntry (tags not included).
Result<CatalogEntry> ReadEntry(const Statement& stmt, const std::filesystem::path& db_path) {
  CatalogEntry entry;
  entry.id = static_cast<TrackId>(stmt.ColumnInt64(0));
  auto corrupt = [&](const Error& error) {
    return std::unexpected(
        Error(ErrorCode::kCorruptData, "catalog " + db_path.string() + ": track " +
                                           std::to_string(entry.id) + ": " + error.message()));
  };
  auto kind = ParseMediaKind(stmt.ColumnText(1));
  if (!kind) return corrupt(kind.error());
  entry.kind = *kind;
  entry.source = stmt.ColumnText(2);
  entry.content_sha256 = stmt.ColumnText(3);
  entry.metadata.title = stmt.ColumnText(4);
  entry.metadata.artist = stmt.ColumnText(5);
  entry.metadata.rights_holder = stmt.ColumnText(6);
  entry.metadata.isrc = stmt.ColumnText(7);
  auto rule = ParseBusinessRule(stmt.ColumnText(8));
  if (!rule) return corrupt(rule.error());
  entry.rule = *rule;
  entry.duration_s = stmt.ColumnDouble(9);
  entry.added_at_unix_ms = stmt.ColumnInt64(10);
  entry.algorithm_version = static_cast<uint32_t>(stmt.ColumnInt64(11));
  return entry;
}

// Runs a prepared kSelectEntry query and reads every row.
Result<std::vector<CatalogEntry>> ReadEntries(Statement& stmt,
                                              const std::filesystem::path& db_path) {
  std::vector<CatalogEntry> entries;
  while (true) {
    auto row = stmt.Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    auto entry = ReadEntry(stmt, db_path);
    if (!entry) return std::unexpected(entry.error());
    entries.push_back(std::move(*entry));
  }
  return entries;
}

// Escapes LIKE wildcards so `text` matches literally (with ESCAPE '\').
std::string LikeSubstringPattern(std::string_view text) {
  std::string pattern = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern.push_back('\\');
    pattern.push_back(c);
  }
  pattern.push_back('%');
  return pattern;
}

int64_t ClampToInt64(size_t value) {
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  return static_cast<int64_t>(std::min<uint64_t>(value, kMax));
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

CatalogDb::CatalogDb(PrivateTag, Database db, std::filesystem::path path)
    : path_(std::move(path)), db_(std::move(db)) {}

Result<std::unique_ptr<CatalogDb>> CatalogDb::Open(const std::filesystem::path& db_path) {
  const std::string context = "opening catalog";
  if (db_path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(db_path.parent_path(), ec);
    if (ec) {
      return MakeError(
          ErrorCode::kIoError,
          context + ": creating folder " + db_path.parent_path().string() + ": " + ec.message());
    }
  }
  auto db = Database::Open(db_path);
  if (!db) return std::unexpected(db.error().Wrap(context));
  if (auto status = ApplyMigrations(*db, kMigrations); !status) {
    return std::unexpected(status.error().Wrap(context));
  }
  return std::make_unique<CatalogDb>(PrivateTag{}, std::move(*db), db_path);
}

Result<TrackId> CatalogDb::Insert(CatalogEntry entry) {
  if (auto status = Validate(entry); !status) return std::unexpected(status.error());
  if (entry.added_at_unix_ms == 0) entry.added_at_unix_ms = NowUnixMs();
  const std::string context =
      "registering " + (entry.source.empty() ? "\"" + entry.metadata.title + "\"" : entry.source);
  auto fail = [&](const Error& error) { return std::unexpected(error.Wrap(context)); };

  std::lock_guard lock(mu_);
  auto txn = Transaction::Begin(db_, Transaction::Mode::kImmediate);
  if (!txn) return fail(txn.error());

  if (!entry.content_sha256.empty()) {
    auto find = db_.Prepare("SELECT id, source FROM tracks WHERE content_sha256 = ?");
    if (!find) return fail(find.error());
    if (auto s = find->BindText(1, entry.content_sha256); !s) return fail(s.error());
    auto row = find->Step();
    if (!row) return fail(row.error());
    if (*row) {
      return MakeError(ErrorCode::kAlreadyExists, context + ": catalog " + path_.string() +
                                                      " already has the same content (sha256 " +
                                                      entry.content_sha256 + ") as track " +
                                                      std::to_string(find->ColumnInt64(0)) +
                                                      " from \"" + find->ColumnText(1) + "\"");
    }
  }

  auto insert = db_.Prepare(
      "INSERT INTO tracks (kind, source, content_sha256, title, artist, rights_holder, isrc, "
      "rule, duration_s, added_at_unix_ms, algorithm_version) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!insert) return fail(insert.error());
  Statement& ins = *insert;
  for (Status s :
       {ins.BindText(1, MediaKindName(entry.kind)), ins.BindText(2, entry.source),
        ins.BindText(3, entry.content_sha256), ins.BindText(4, entry.metadata.title),
        ins.BindText(5, entry.metadata.artist), ins.BindText(6, entry.metadata.rights_holder),
        ins.BindText(7, entry.metadata.isrc), ins.BindText(8, BusinessRuleName(entry.rule)),
        ins.BindDouble(9, entry.duration_s), ins.BindInt64(10, entry.added_at_unix_ms),
        ins.BindInt64(11, entry.algorithm_version)}) {
    if (!s) return fail(s.error());
  }
  if (auto s = ins.Run(); !s) return fail(s.error());
  const int64_t rowid = db_.LastInsertRowId();
  if (rowid <= 0 || rowid > static_cast<int64_t>(std::numeric_limits<TrackId>::max())) {
    return MakeError(ErrorCode::kResourceExhausted,
                     context + ": catalog " + path_.string() +
                         " has run out of track ids (next id would be " + std::to_string(rowid) +
                         ")");
  }

  if (!entry.metadata.tags.empty()) {
    auto tag = db_.Prepare("INSERT INTO track_tags (track_id, key, value) VALUES (?, ?, ?)");
    if (!tag) return fail(tag.error());
    for (const auto& [key, value] : entry.metadata.tags) {
      if (auto s = tag->Reset(); !s) return fail(s.error());
      for (Status s : {tag->BindInt64(1, rowid), tag->BindText(2, key), tag->BindText(3, value)}) {
        if (!s) return fail(s.error());
      }
      if (auto s = tag->Run(); !s) return fail(s.error());
    }
  }
  if (auto s = txn->Commit(); !s) return fail(s.error());
  return static_cast<TrackId>(rowid);
}

Result<std::vector<CatalogEntry>> CatalogDb::LoadTags(std::vector<CatalogEntry> entries) const {
  if (entries.empty()) return entries;
  auto stmt = db_.Prepare("SELECT key, value FROM track_tags WHERE track_id = ?");
  if (!stmt) return std::unexpected(stmt.error());
  for (CatalogEntry& entry : entries) {
    if (auto s = stmt->Reset(); !s) return std::unexpected(s.error());
    if (auto s = stmt->BindInt64(1, entry.id); !s) return std::unexpected(s.error());
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      entry.metadata.tags.emplace(stmt->ColumnText(0), stmt->ColumnText(1));
    }
  }
  return entries;
}

Result<CatalogEntry> CatalogDb::Get(TrackId id) const {
  const std::string context = "reading track " + std::to_string(id);
  std::lock_guard lock(mu_);
  // One read transaction, so the row and its tags come from the same snapshot.
  auto txn = Transaction::Begin(db_, Transaction::Mode::kDeferred);
  if (!txn) return std::unexpected(txn.error().Wrap(context));
  auto stmt = db_.Prepare(std::string(kSelectEntry) + " WHERE id = ?");
  if (!stmt) return std::unexpected(stmt.error().Wrap(context));
  if (auto s = stmt->BindInt64(1, id); !s) return std::unexpected(s.error().Wrap(context));
  auto entries = ReadEntries(*stmt, path_);
  if (!entries) return std::unexpected(entries.error().Wrap(context));
  if (entries->empty()) {
    return MakeError(ErrorCode::kNotFound, NotFound(id, path_));
  }
  auto loaded = LoadTags(std::move(*entries));
  if (!loaded) return std::unexpected(loaded.error().Wrap(context));
  if (auto s = txn->Commit(); !s) return std::unexpected(s.error().Wrap(context));
  return std::move(loaded->front());
}

Result<std::vector<CatalogEntry>> CatalogDb::List(const ListFilter& filter) const {
  const std::string context = "listing the catalog";
  std::string sql = std::string(kSelectEntry) + " WHERE 1 = 1";
  if (filter.rule) sql += " AND rule = ?";
  if (filter.kind) sql += " AND kind = ?";
  if (!filter.text.empty()) {
    sql +=
        " AND (title LIKE ? ESCAPE '\\' OR artist LIKE ? ESCAPE '\\' OR"
        " rights_holder LIKE ? ESCAPE '\\')";
  }
  sql += " ORDER BY id";
  const bool paged = filter.limit != 0 || filter.offset != 0;
  if (paged) sql += " LIMIT ? OFFSET ?";

  std::lock_guard lock(mu_);
  auto txn = Transaction::Begin(db_, Transaction::Mode::kDeferred);
  if (!txn) return std::unexpected(txn.error().Wrap(context));
  auto stmt = db_.Prepare(sql);
  if (!stmt) return std::unexpected(stmt.error().Wrap(context));
  int index = 0;
  std::vector<Status> binds;
  if (filter.rule) binds.push_back(stmt->BindText(++index, BusinessRuleName(*filter.rule)));
  if (filter.kind) binds.push_back(stmt->BindText(++index, MediaKindName(*filter.kind)));
  if (!filter.text.empty()) {
    const std::string pattern = LikeSubstringPattern(filter.text);
    for (int i = 0; i < 3; ++i) binds.push_back(stmt->BindText(++index, pattern));
  }
  if (paged) {
    // A negative LIMIT means no limit in SQLite.
    binds.push_back(stmt->BindInt64(++index, filter.limit == 0 ? -1 : ClampToInt64(filter.limit)));
    binds.push_back(stmt->BindInt64(++index, ClampToInt64(filter.offset)));
  }
  for (const Status& s : binds) {
    if (!s) return std::unexpected(s.error().Wrap(context));
  }
  auto entries = ReadEntries(*stmt, path_);
  if (!entries) return std::unexpected(entries.error().Wrap(context));
  auto loaded = LoadTags(std::move(*entries));
  if (!loaded) return std::unexpected(loaded.error().Wrap(context));
  if (auto s = txn->Commit(); !s) return std::unexpected(s.error().Wrap(context));
  return loaded;
}

Result<std::optional<CatalogEntry>> CatalogDb::FindBySha256(const std::string& sha) const {
  auto normalized = NormalizeSha256(sha);
  if (!normalized) return std::unexpected(normalized.error());
  const std::string context = "looking up sha256 " + *normalized;
  std::lock_guard lock(mu_);
  auto txn = Transaction::Begin(db_, Transaction::Mode::kDeferred);
  if (!txn) return std::unexpected(txn.error().Wrap(context));
  auto stmt =
      db_.Prepare(std::string(kSelectEntry) + " WHERE content_sha256 = ? ORDER BY id LIMIT 1");
  if (!stmt) return std::unexpected(stmt.error().Wrap(context));
  if (auto s = stmt->BindText(1, *normalized); !s) return std::unexpected(s.error().Wrap(context));
  auto entries = ReadEntries(*stmt, path_);
  if (!entries) return std::unexpected(entries.error().Wrap(context));
  auto loaded = LoadTags(std::move(*entries));
  if (!loaded) return std::unexpected(loaded.error().Wrap(context));
  if (auto s = txn->Commit(); !s) return std::unexpected(s.error().Wrap(context));
  if (loaded->empty()) return std::optional<CatalogEntry>();
  return std::optional<CatalogEntry>(std::move(loaded->front()));
}

Status CatalogDb::Remove(TrackId id) {
  const std::string context = "removing track " + std::to_string(id);
  std::lock_guard lock(mu_);
  // Tags go with the track (ON DELETE CASCADE, foreign_keys=ON).
  auto stmt = db_.Prepare("DELETE FROM tracks WHERE id = ?");
  if (!stmt) return std::unexpected(stmt.error().Wrap(context));
  if (auto s = stmt->BindInt64(1, id); !s) return std::unexpected(s.error().Wrap(context));
  if (auto s = stmt->Run(); !s) return std::unexpected(s.error().Wrap(context));
  if (db_.Changes() == 0) return MakeError(ErrorCode::kNotFound, NotFound(id, path_));
  return Ok();
}

Status CatalogDb::UpdateRule(TrackId id, BusinessRule rule) {
  const std::string context = "setting the rule of track " + std::to_string(id) + " to " +
                              std::string(BusinessRuleName(rule));
  std::lock_guard lock(mu_);
  auto stmt = db_.Prepare("UPDATE tracks SET rule = ? WHERE id = ?");
  if (!stmt) return std::unexpected(stmt.error().Wrap(context));
  if (auto s = stmt->BindText(1, BusinessRuleName(rule)); !s) {
    return std::unexpected(s.error().Wrap(context));
  }
  if (auto s = stmt->BindInt64(2, id); !s) return std::unexpected(s.error().Wrap(context));
  if (auto s = stmt->Run(); !s) return std::unexpected(s.error().Wrap(context));
  if (db_.Changes() == 0) return MakeError(ErrorCode::kNotFound, NotFound(id, path_));
  return Ok();
}

Result<CatalogDb::Stats> CatalogDb::GetStats() const {
  const std::string context = "computing catalog statistics";
  Stats stats;
  for (BusinessRule rule : kAllBusinessRules) stats.by_rule[rule] = 0;
  for (MediaKind kind : {MediaKind::kAudio, MediaKind::kVideo}) {
    stats.tracks_by_kind[kind] = 0;
    stats.duration_s_by_kind[kind] = 0;
  }
  std::lock_guard lock(mu_);
  auto txn = Transaction::Begin(db_, Transaction::Mode::kDeferred);
  if (!txn) return std::unexpected(txn.error().Wrap(context));
  auto stmt =
      db_.Prepare("SELECT rule, kind, COUNT(*), TOTAL(duration_s) FROM tracks GROUP BY rule, kind");
  if (!stmt) return std::unexpected(stmt.error().Wrap(context));
  while (true) {
    auto row = stmt->Step();
    if (!row) return std::unexpected(row.error().Wrap(context));
    if (!*row) break;
    auto rule = ParseBusinessRule(stmt->ColumnText(0));
    if (!rule) {
      return MakeError(ErrorCode::kCorruptData,
                       context + ": catalog " + path_.string() + ": " + rule.error().message());
    }
    auto kind = ParseMediaKind(stmt->ColumnText(1));
    if (!kind) {
      return MakeError(ErrorCode::kCorruptData,
                       context + ": catalog " + path_.string() + ": " + kind.error().message());
    }
    const auto count = static_cast<uint64_t>(stmt->ColumnInt64(2));
    const double seconds = stmt->ColumnDouble(3);
    stats.by_rule[*rule] += count;
    stats.tracks_by_kind[*kind] += count;
    stats.duration_s_by_kind[*kind] += seconds;
    stats.tracks += count;
    stats.total_duration_s += seconds;
  }
  if (auto s = txn->Commit(); !s) return std::unexpected(s.error().Wrap(context));
  return stats;
}

}  // namespace earshot::store
