#include "cli/deliver_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <system_error>

#include "common/error.h"
#include "common/log.h"
#include "delivery/http_client.h"
#include "delivery/outbox.h"
#include "delivery/registry.h"
#include "delivery/sink.h"

namespace earshot::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kExitPending = 1;
constexpr int kExitSetup = 2;
constexpr const char* kSpoolDir = ".outbox";  // as delivery/outbox.h lays it out
// A progress line at most this often while entries are pending.
constexpr auto kProgressEvery = std::chrono::seconds(5);

std::atomic<int> g_deliver_signal{0};
extern "C" void OnDeliverSignal(int signal) { g_deliver_signal.store(signal); }

void PrintError(const std::string& message) {
  std::fprintf(stderr, "earshot: error: %s\n", message.c_str());
}

// What happened to one target's deliveries. Thread-safe (the outbox delivers
// on several threads).
class TargetRecord {
 public:
  void Record(const Status& status) {
    std::lock_guard lock(mutex_);
    if (status) {
      ++delivered_;
    } else {
      last_error_ = status.error();
    }
  }
  uint64_t delivered() const {
    std::lock_guard lock(mutex_);
    return delivered_;
  }
  std::optional<Error> last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

 private:
  mutable std::mutex mutex_;
  uint64_t delivered_ = 0;           // GUARDED_BY(mutex_)
  std::optional<Error> last_error_;  // GUARDED_BY(mutex_)
};

// A target that reports each attempt's outcome to a TargetRecord (borrowed;
// it must outlive the wrapper).
class RecordingSink final : public delivery::ResultSink {
 public:
  RecordingSink(std::unique_ptr<delivery::ResultSink> inner, TargetRecord* record)
      : inner_(std::move(inner)), record_(record) {}
  const std::string& name() const override { return inner_->name(); }
  Status Put(const delivery::ResultFile& file) override {
    Status s = inner_->Put(file);
    record_->Record(s);
    return s;
  }

 private:
  std::unique_ptr<delivery::ResultSink> inner_;
  TargetRecord* record_;
};

class RecordingNotifier final : public delivery::Notifier {
 public:
  RecordingNotifier(std::unique_ptr<delivery::Notifier> inner, TargetRecord* record)
      : inner_(std::move(inner)), record_(record) {}
  const std::string& name() const override { return inner_->name(); }
  Status Notify(const delivery::Notification& notification) override {
    Status s = inner_->Notify(notification);
    record_->Record(s);
    return s;
  }

 private:
  std::unique_ptr<delivery::Notifier> inner_;
  TargetRecord* record_;
};

// Spool entries (RESULTS/.outbox/{target}/{stream_id}/{file}.json) by target
// folder name. A missing spool is empty.
Result<std::map<std::string, uint64_t>> CountSpool(const fs::path& results_dir) {
  std::map<std::string, uint64_t> counts;
  const fs::path spool = results_dir / kSpoolDir;
  std::error_code ec;
  if (!fs::exists(spool, ec)) return counts;
  for (auto target = fs::directory_iterator(spool, ec); !ec && target != fs::directory_iterator();
       target.increment(ec)) {
    std::error_code type_ec;
    if (!target->is_directory(type_ec)) continue;
    uint64_t& n = counts[target->path().filename().string()];
    std::error_code walk_ec;
    for (auto it = fs::recursive_directory_iterator(target->path(), walk_ec);
         !walk_ec && it != fs::recursive_directory_iterator(); it.increment(walk_ec)) {
      std::error_code file_ec;
      if (it->is_regular_file(file_ec) && it->path().extension() == ".json") ++n;
    }
    if (walk_ec) {
      return MakeError(ErrorCode::kIoError, "cannot read the spool " + target->path().string() +
                                                ": " + walk_ec.message());
    }
  }
  if (ec) {
    return MakeError(ErrorCode::kIoError,
                     "cannot read the spool " + spool.string() + ": " + ec.message());
  }
  return counts;
}

uint64_t CountOf(const std::map<std::string, uint64_t>& counts, const std::string& name) {
  auto it = counts.find(name);
  return it == counts.end() ? 0 : it->second;
}

std::string Plural(uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

CLI::App* AddDeliverCommand(CLI::App& app, DeliverArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "deliver",
      "send what a results folder's delivery spool (RESULTS/.outbox) still holds to the given "
      "sinks and notifiers, without scanning (e.g. after a bucket or webhook was down when a "
      "scan ended). Exit status 0: all delivered, 1: some remain spooled, 2: bad usage.");
  cmd->add_option("--results", a.results_dir, "results folder (env EARSHOT_RESULTS)")
      ->envname("EARSHOT_RESULTS")
      ->capture_default_str();
  cmd->add_option("--sink", a.sinks,
                  "a sink the results were spooled for, as given to `scan --sink` (repeatable)");
  cmd->add_option("--notify", a.notifiers,
                  "a notifier the results were spooled for, as given to `scan --notify` "
                  "(repeatable)");
  cmd->add_option("--timeout", a.timeout_s,
                  "give up after this many seconds; what is undelivered stays spooled")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--log-level", a.log_level, "debug, info, warn or error (JSON lines on stderr)")
      ->capture_default_str();
  return cmd;
}

int RunDeliver(const DeliverArgs& args) {
  LogLevel level;
  if (!ParseLogLevel(args.log_level, &level)) {
    PrintError("--log-level must be debug, info, warn or error");
    return kExitSetup;
  }
  SetLogLevel(level);
  if (args.sinks.empty() && args.notifiers.empty()) {
    PrintError(
        "nothing to deliver to: give the --sink and --notify targets the results were "
        "scanned with (see `earshot deliver --help`)");
    return kExitSetup;
  }
  const fs::path results_dir = args.results_dir;
  std::error_code ec;
  if (!fs::is_directory(results_dir, ec)) {
    PrintError("the results folder " + results_dir.string() +
               " does not exist (give the --results of the scan)");
    return kExitSetup;
  }

  // The targets, each wrapped to record what its attempts did. `records`
  // outlives the outbox, which owns the wrappers.
  delivery::InitHttpClient();
  std::map<std::string, std::unique_ptr<TargetRecord>> records;
  std::vector<std::string> names;  // in the order given
  auto add_record = [&](const std::string& name) -> TargetRecord* {
    if (records.count(name) != 0) return nullptr;
    names.push_back(name);
    return (records[name] = std::make_unique<TargetRecord>()).get();
  };
  const std::string duplicate_hint = " given twice; give one a distinct name (name=...)";
  std::vector<std::unique_ptr<delivery::ResultSink>> sinks;
  std::vector<std::unique_ptr<delivery::Notifier>> notifiers;
  for (const std::string& spec : args.sinks) {
    auto sink = delivery::MakeSink(spec);
    if (!sink) {
      PrintError("--sink: " + sink.error().message());
      return kExitSetup;
    }
    TargetRecord* record = add_record((*sink)->name());
    if (record == nullptr) {
      PrintError("--sink: a target named '" + (*sink)->name() + "' is" + duplicate_hint);
      return kExitSetup;
    }
    sinks.push_back(std::make_unique<RecordingSink>(std::move(*sink), record));
  }
  for (const std::string& spec : args.notifiers) {
    auto notifier = delivery::MakeNotifier(spec);
    if (!notifier) {
      PrintError("--notify: " + notifier.error().message());
      return kExitSetup;
    }
    TargetRecord* record = add_record((*notifier)->name());
    if (record == nullptr) {
      PrintError("--notify: a target named '" + (*notifier)->name() + "' is" + duplicate_hint);
      return kExitSetup;
    }
    notifiers.push_back(std::make_unique<RecordingNotifier>(std::move(*notifier), record));
  }

  auto before = CountSpool(results_dir);
  if (!before) {
    PrintError(before.error().message());
    return kExitSetup;
  }
  uint64_t spooled = 0;  // for the targets given
  nlohmann::json by_target = nlohmann::json::object();
  for (const std::string& name : names) {
    spooled += CountOf(*before, name);
    by_target[name] = CountOf(*before, name);
  }
  uint64_t spooled_all = 0;  // including targets not given
  for (const auto& [name, n] : *before) spooled_all += n;
  const fs::path spool = results_dir / kSpoolDir;
  Log(LogLevel::kInfo, spooled > 0 ? "delivering spooled results" : "nothing spooled to deliver",
      {{"spool", spool.string()}, {"spooled", spooled}, {"by_target", by_target}});

  bool interrupted = false;
  if (spooled > 0) {
    delivery::OutboxOptions options;
    options.results_dir = results_dir;
    // Several attempts fit in the time given, however short.
    options.initial_backoff_s = std::min(1.0, args.timeout_s / 8);
    options.max_backoff_s = std::clamp(args.timeout_s / 4, options.initial_backoff_s, 60.0);
    auto outbox = delivery::Outbox::Open(options, std::move(sinks), std::move(notifiers));
    if (!outbox) {
      PrintError(outbox.error().message());
      return kExitSetup;
    }
    struct sigaction action {};
    action.sa_handler = OnDeliverSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);

    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(args.timeout_s));
    auto next_progress = start + kProgressEvery;
    while (true) {
      const uint64_t pending =
          (*outbox)->Drain(std::min(deadline, Clock::now() + std::chrono::milliseconds(200)));
      if (pending == 0 || Clock::now() >= deadline) break;
      if (g_deliver_signal.load() != 0) {
        Log(LogLevel::kInfo, "signal received: stopping; the rest stays spooled",
            {{"signal", g_deliver_signal.load()}, {"pending", pending}});
        interrupted = true;
        break;
      }
      if (Clock::now() >= next_progress) {
        const delivery::OutboxStats stats = (*outbox)->stats();
        Log(LogLevel::kInfo, "delivery progress",
            {{"delivered", stats.delivered},
             {"pending", stats.pending},
             {"failed_attempts", stats.failed_attempts}});
        next_progress += kProgressEvery;
      }
    }
    outbox->reset();  // waits for attempts in flight; the rest stays spooled
  }

  // What is left is what the spool holds now.
  auto after = CountSpool(results_dir);
  if (!after) {
    PrintError(after.error().message());
    return kExitPending;
  }
  nlohmann::json summary = {{"results_dir", results_dir.string()},
                            {"targets", nlohmann::json::array()}};
  uint64_t delivered = 0, pending = 0, missing = 0;
  std::vector<std::string> reasons;
  for (const std::string& name : names) {
    const TargetRecord& record = *records[name];
    const uint64_t was = CountOf(*before, name);
    const uint64_t left = CountOf(*after, name);
    const uint64_t sent = record.delivered();
    // Entries dropped by the outbox because their result file is gone.
    const uint64_t gone = was > sent + left ? was - sent - left : 0;
    const std::optional<Error> error = record.last_error();
    delivered += sent;
    pending += left;
    missing += gone;
    nlohmann::json t = {{"name", name},         {"configured", true}, {"spooled", was},
                        {"delivered", sent},    {"pending", left},    {"missing", gone},
                        {"last_error", nullptr}};
    if (error) t["last_error"] = error->ToString();
    summary["targets"].push_back(std::move(t));
    if (left > 0) {
      reasons.push_back(Plural(left, "result") + " still spooled for " + name + ": " +
                        (error
                             ? "last error: " + error->ToString()
                             : std::string(interrupted ? "interrupted" : "not attempted in time")) +
                        "; run `earshot deliver` again once it is reachable");
    }
  }
  // Spool folders of targets not given here: nothing was tried for them.
  for (const auto& [name, left] : *after) {
    if (records.count(name) != 0 || left == 0) continue;
    pending += left;
    summary["targets"].push_back({{"name", name},
                                  {"configured", false},
                                  {"spooled", CountOf(*before, name)},
                                  {"delivered", 0},
                                  {"pending", left},
                                  {"missing", 0},
                                  {"last_error", nullptr}});
    reasons.push_back(Plural(left, "result") + " spooled for target '" + name +
                      "', which was not given: add the --sink or --notify spec it was scanned "
                      "with (a target is named by its kind, or by name=...)");
  }
  summary["spooled"] = spooled_all;
  summary["delivered"] = delivered;
  summary["pending"] = pending;
  summary["missing"] = missing;
  std::cout << summary.dump() << std::endl;
  for (const std::string& reason : reasons) PrintError(reason);
  if (pending > 0) {
    PrintError(Plural(pending, "result") + " stay spooled in " + spool.string());
    return kExitPending;
  }
  return 0;
}

}  // namespace earshot::cli
