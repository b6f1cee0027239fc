#include "state/state_store.h"

#include "state/sqlite_state_store.h"

namespace earshot::state {

Result<std::unique_ptr<StateStore>> OpenStateStore(std::string_view url) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.starts_with(kSqlite)) {
    std::string_view path = url.substr(kSqlite.size());
    if (path.starts_with("//")) path.remove_prefix(2);  // sqlite:///abs/path
    if (path.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "state store URL \"" + std::string(url) +
                           "\" names no file: use sqlite:/path/state.db or sqlite::memory:");
    }
    auto store = SqliteStateStore::Open(std::filesystem::path(path));
    if (!store) return std::unexpected(store.error());
    return std::unique_ptr<StateStore>(std::move(*store));
  }
  if (url.starts_with("postgres:") || url.starts_with("postgresql:")) {
    return MakeError(ErrorCode::kUnsupported,
                     "a PostgreSQL state store is planned but not available yet: use "
                     "sqlite:/path/state.db");
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown state store URL \"" + std::string(url) +
                       "\" (accepted: sqlite:/path/state.db, sqlite::memory:)");
}

}  // namespace earshot::state
