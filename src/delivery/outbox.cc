#include "delivery/outbox.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/log.h"

namespace earshot::delivery {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSpoolDir = ".outbox";
// Spool folders scanned at Open are bounded: a spool with more entries than
// this is loaded in part and the rest waits for the next Open.
constexpr size_t kMaxLoadedEntries = 1'000'000;

nlohmann::json ItemToJson(const EnqueueItem& item) {
  return {{"stream_id", item.stream_id}, {"channel_id", item.channel_id}, {"file", item.file},
          {"event_type", item.event_type}, {"subject", item.subject}};
}

}  // namespace

Result<std::unique_ptr<Outbox>> Outbox::Open(const OutboxOptions& options,
                                             std::vector<std::unique_ptr<ResultSink>> sinks,
                                             std::vector<std::unique_ptr<Notifier>> notifiers) {
  if (options.results_dir.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "outbox: no results folder given");
  }
  if (options.threads < 1 || options.threads > 64) {
    return MakeError(ErrorCode::kInvalidArgument, "outbox: threads must be 1..64");
  }
  std::unique_ptr<Outbox> outbox(new Outbox(options));
  std::set<std::string> names;
  for (auto& sink : sinks) {
    outbox->targets_.push_back({sink->name(), sink.get(), nullptr});
    outbox->sinks_.push_back(std::move(sink));
  }
  for (auto& notifier : notifiers) {
    outbox->targets_.push_back({notifier->name(), nullptr, notifier.get()});
    outbox->notifiers_.push_back(std::move(notifier));
  }
  for (const Target& t : outbox->targets_) {
    if (!names.insert(t.name).second) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "outbox: two delivery targets are named '" + t.name +
                           "'; give one a distinct name (name=...)");
    }
    std::error_code ec;
    fs::create_directories(options.results_dir / kSpoolDir / t.name, ec);
    if (ec) {
      return MakeError(ErrorCode::kIoError, "outbox: cannot create " +
                                                (options.results_dir / kSpoolDir / t.name).string() +
                                                ": " + ec.message());
    }
  }
  if (Status s = outbox->LoadSpool(); !s) return std::unexpected(s.error());
  if (!outbox->targets_.empty()) {
    for (int i = 0; i < options.threads; ++i) {
      outbox->threads_.emplace_back([o = outbox.get()] { o->Run(); });
    }
  }
  return outbox;
}

Outbox::~Outbox() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : threads_) t.join();
}

Status Outbox::LoadSpool() {
  size_t loaded = 0;
  for (size_t t = 0; t < targets_.size(); ++t) {
    const fs::path root = options_.results_dir / kSpoolDir / targets_[t].name;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator() && loaded < kMaxLoadedEntries;
         it.increment(ec)) {
      if (!it->is_regular_file() || it->path().extension() != ".json") continue;
      Result<std::string> text = ReadFile(it->path());
      if (!text) return std::unexpected(text.error().Wrap("outbox: loading the spool"));
      nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || !j.contains("stream_id") || !j.contains("file")) {
        Log(LogLevel::kWarn, "outbox: ignoring a damaged spool entry",
            {{"path", it->path().string()}});
        continue;
      }
      Entry e;
      e.target = t;
      e.spool_path = it->path();
      e.item.stream_id = j.value("stream_id", "");
      e.item.channel_id = j.value("channel_id", "");
      e.item.file = j.value("file", "");
      e.item.event_type = j.value("event_type", "");
      e.item.subject = j.value("subject", "");
      e.due = std::chrono::steady_clock::now();
      std::lock_guard lock(mutex_);
      Schedule(std::move(e));
      ++loaded;
    }
    if (ec) {
      return MakeError(ErrorCode::kIoError,
                       "outbox: cannot read the spool " + root.string() + ": " + ec.message());
    }
  }
  if (loaded > 0) {
    Log(LogLevel::kInfo, "outbox: resuming undelivered results from an earlier run",
        {{"entries", loaded}, {"results_dir", options_.results_dir.string()}});
  }
  return Ok();
}

void Outbox::Schedule(Entry entry) {
  known_.insert(entry.spool_path);
  const auto due = entry.due;
  queue_.emplace(due, std::move(entry));
}

Status Outbox::Enqueue(const EnqueueItem& item) {
  const std::string body = ItemToJson(item).dump() + "\n";
  for (size_t t = 0; t < targets_.size(); ++t) {
    if (!item.notify && targets_[t].notifier != nullptr) continue;
    const fs::path dir = options_.results_dir / kSpoolDir / targets_[t].name / item.stream_id;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return MakeError(ErrorCode::kIoError, "outbox: cannot create " + dir.string() + ": " +
                                                ec.message() + "; " + item.file +
                                                " is kept in the results folder");
    }
    const fs::path path = dir / (item.file + ".json");
    if (Status s = WriteFileAtomically(path, body); !s) {
      return std::unexpected(
          s.error().Wrap("outbox: spooling " + item.stream_id + "/" + item.file + " for " +
                         targets_[t].name));
    }
    Entry e;
    e.target = t;
    e.spool_path = path;
    e.item = item;
    e.due = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex_);
      if (known_.count(path) == 0) Schedule(std::move(e));
    }
  }
  changed_.notify_all();
  return Ok();
}

Status Outbox::Deliver(const Entry& entry) {
  const Target& target = targets_[entry.target];
  const fs::path file = options_.results_dir / entry.item.stream_id / entry.item.file;
  Result<std::string> body = ReadFile(file);
  if (!body) return std::unexpected(body.error());
  if (target.sink != nullptr) {
    const bool jpeg = fs::path(entry.item.file).extension() == ".jpg";
    ResultFile rf{entry.item.stream_id, entry.item.file, jpeg ? "image/jpeg" : "application/json",
                  std::move(*body)};
    return target.sink->Put(rf);
  }
  Notification n;
  n.event_type = entry.item.event_type;
  n.idempotency_key = entry.item.stream_id + "/" + entry.item.file;
  n.stream_id = entry.item.stream_id;
  n.channel_id = entry.item.channel_id;
  n.subject = entry.item.subject;
  n.body = std::move(*body);
  return target.notifier->Notify(n);
}

void Outbox::Run() {
  std::unique_lock lock(mutex_);
  while (true) {
    if (stopping_) return;
    if (queue_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    auto first = queue_.begin();
    if (first->first > now) {
      const auto due = first->first;  // a copy: another thread may erase the entry meanwhile
      changed_.wait_until(lock, due);
      continue;
    }
    Entry entry = std::move(first->second);
    queue_.erase(first);
    ++in_flight_;
    lock.unlock();

    Status result = Deliver(entry);
    const std::string& target = targets_[entry.target].name;
    if (result) {
      std::error_code ec;
      fs::remove(entry.spool_path, ec);
      Log(LogLevel::kDebug, "delivered",
          {{"target", target}, {"stream_id", entry.item.stream_id}, {"file", entry.item.file}});
    } else {
      Log(result.error().code() == ErrorCode::kNotFound ? LogLevel::kError : LogLevel::kWarn,
          "delivery failed; will retry",
          {{"target", target},
           {"stream_id", entry.item.stream_id},
           {"file", entry.item.file},
           {"attempt", entry.attempts + 1},
           {"error", result.error().ToString()}});
    }

    lock.lock();
    --in_flight_;
    if (result) {
      known_.erase(entry.spool_path);
      ++delivered_;
    } else if (result.error().code() == ErrorCode::kNotFound &&
               !fs::exists(options_.results_dir / entry.item.stream_id / entry.item.file)) {
      // The result file itself is gone (deleted by hand): nothing to deliver.
      std::error_code ec;
      fs::remove(entry.spool_path, ec);
      known_.erase(entry.spool_path);
      ++failed_attempts_;
    } else {
      ++failed_attempts_;
      ++entry.attempts;
      const double backoff =
          std::min(options_.max_backoff_s,
                   options_.initial_backoff_s * std::pow(2.0, std::min(entry.attempts - 1, 30)));
      entry.due = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(backoff));
      Schedule(std::move(entry));
    }
    changed_.notify_all();
  }
}

uint64_t Outbox::Drain(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  changed_.wait_until(lock, deadline, [&] { return queue_.empty() && in_flight_ == 0; });
  return queue_.size() + in_flight_;
}

OutboxStats Outbox::stats() const {
  std::lock_guard lock(mutex_);
  return {queue_.size() + in_flight_, delivered_, failed_attempts_};
}

}  // namespace earshot::delivery
