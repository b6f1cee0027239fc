#include "queue/registry.h"

#include <cctype>
#include <map>

#include "queue/sqlite_job_queue.h"

namespace earshot::queue {
namespace {

Result<std::unique_ptr<JobQueue>> OpenSqlite(std::string_view rest, const QueueOptions& options) {
  // sqlite:///abs/path -> /abs/path; sqlite:/abs/path and sqlite:rel/path as they are.
  if (rest.starts_with("///")) rest.remove_prefix(2);
  if (rest.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "job queue URL \"sqlite:\" needs a database path, e.g. "
                     "sqlite:/var/lib/earshot/state.db or sqlite::memory:");
  }
  auto queue = SqliteJobQueue::Open(std::filesystem::path(std::string(rest)), options);
  if (!queue) return std::unexpected(queue.error());
  return std::unique_ptr<JobQueue>(std::move(*queue));
}

std::map<std::string, JobQueueFactory>& Schemes() {
  static auto* schemes = new std::map<std::string, JobQueueFactory>{{"sqlite", OpenSqlite}};
  return *schemes;
}

// A scheme kept for a planned backend (refused with kUnsupported for now).
constexpr std::string_view kReservedNats = "nats";

std::string KnownSchemes() {
  std::string out;
  for (const std::string& scheme : JobQueueSchemes()) out += (out.empty() ? "" : ", ") + scheme;
  return out;
}

bool ValidScheme(std::string_view scheme) {
  if (scheme.empty() || !std::isalpha(static_cast<unsigned char>(scheme.front()))) return false;
  for (char c : scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

void RegisterJobQueueScheme(const std::string& scheme, JobQueueFactory factory) {
  Schemes()[scheme] = std::move(factory);
}

std::vector<std::string> JobQueueSchemes() {
  std::vector<std::string> out;
  for (const auto& [scheme, factory] : Schemes()) out.push_back(scheme);
  return out;
}

// Error messages name the scheme but never echo the rest of a URL, which
// for network backends may carry credentials.
Result<std::unique_ptr<JobQueue>> OpenJobQueue(std::string_view url,
                                               const QueueOptions& options) {
  const size_t colon = url.find(':');
  std::string scheme(url.substr(0, colon == std::string_view::npos ? 0 : colon));
  if (colon == std::string_view::npos || !ValidScheme(scheme)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "job queue URL must start with a scheme, e.g. "
                     "sqlite:/var/lib/earshot/state.db (known schemes: " +
                         KnownSchemes() + ")");
  }
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = Schemes().find(scheme);
  if (it == Schemes().end()) {
    if (scheme == kReservedNats) {
      return MakeError(ErrorCode::kUnsupported,
                       "job queue URL scheme \"nats\": the NATS JetStream backend is reserved "
                       "for a later version and not built yet (available now: " +
                           KnownSchemes() + ")");
    }
    return MakeError(ErrorCode::kInvalidArgument,
                     "job queue URL: unknown scheme \"" + scheme + "\" (known: " +
                         KnownSchemes() + "; \"nats\" is reserved for a later version)");
  }
  auto queue = it->second(url.substr(colon + 1), options);
  if (!queue) return std::unexpected(queue.error().Wrap("opening " + scheme + " job queue"));
  return queue;
}

}  // namespace earshot::queue
