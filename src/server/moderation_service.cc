#include "server/moderation_service.h"

#include <cmath>

#include "common/file_util.h"
#include "common/log.h"
#include "common/time_format.h"

namespace earshot::server {
namespace {

using Clock = std::chrono::steady_clock;

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

nlohmann::json ModerationResponse(const ScanJob& job, const scan::ThumbnailInfo& thumbnail,
                                  const delivery::ModerationResult& result, uint64_t sequence) {
  const bool block = result.verdict == delivery::ModerationVerdict::kBlock;
  const std::string verdict(delivery::ModerationVerdictName(result.verdict));
  const std::string time = IsoTimeUtc(thumbnail.captured_ms);
  const int64_t stream_ms = std::llround(thumbnail.stream_s * 1000.0);
  nlohmann::json j;
  j["schema_version"] = 1;
  j["type"] = "identification";
  j["status"] = "match_started";
  j["stream_id"] = job.stream_id;
  j["channel_id"] = job.channel_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(job.channel_id);
  j["match_id"] = job.stream_id + "-moderation-" + std::to_string(stream_ms);
  j["sequence"] = sequence;
  j["match_type"] = "moderation";
  j["rule"] = block ? "block" : "track";
  j["verdict"] = verdict;
  j["track"] = {{"track_id", 0},
                {"title", result.label.empty() ? "moderation: " + verdict
                                               : "moderation: " + result.label},
                {"artist", ""},
                {"rights_holder", "moderation service"},
                {"isrc", ""},
                {"tags", {{"verdict", verdict}, {"thumbnail", thumbnail.file}}}};
  j["stream"] = {{"start_s", Round3(thumbnail.stream_s)}, {"end_s", Round3(thumbnail.stream_s)},
                 {"duration_s", 0.0}, {"reported_at_s", Round3(thumbnail.stream_s)},
                 {"start_time", time}, {"end_time", time}, {"reported_at", IsoTimeUtc(UnixMillisNow())}};
  j["reference"] = {{"start_s", 0.0}, {"time_scale", 1.0}, {"pitch_factor", 1.0}};
  j["score"] = Round3(100.0 * result.score);
  j["thumbnail"] = thumbnail.file;
  return j;
}

ModerationService::ModerationService(
    delivery::ModerationClient client, std::filesystem::path results_dir,
    std::function<void(const ScanJob&, const nlohmann::json&)> on_verdict)
    : client_(std::move(client)),
      results_dir_(std::move(results_dir)),
      on_verdict_(std::move(on_verdict)) {}

ModerationService::~ModerationService() { Stop(); }

void ModerationService::Start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void ModerationService::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ModerationService::Submit(const ScanJob& job, const scan::ThumbnailInfo& thumbnail) {
  {
    std::lock_guard lock(mutex_);
    if (blocked_.count(job.stream_id) > 0) return;
    auto [it, inserted] = pending_.insert_or_assign(job.stream_id, Pending{job, thumbnail});
    it->second.thumbnail.jpeg = {};
    if (!inserted) ++stats_.skipped;
  }
  changed_.notify_all();
}

ModerationStats ModerationService::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void ModerationService::Run() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    Pending next = std::move(pending_.begin()->second);
    pending_.erase(pending_.begin());
    lock.unlock();
    Handle(next);
    lock.lock();
  }
}

void ModerationService::Handle(const Pending& p) {
  const std::filesystem::path file = results_dir_ / p.job.stream_id / p.thumbnail.file;
  Result<std::string> jpeg = ReadFile(file);
  Result<delivery::ModerationResult> result =
      jpeg ? client_.Classify(std::span(reinterpret_cast<const uint8_t*>(jpeg->data()), jpeg->size()),
                              {p.job.stream_id, p.job.channel_id, p.thumbnail.stream_s,
                               p.thumbnail.captured_ms, p.thumbnail.file})
           : Result<delivery::ModerationResult>(std::unexpected(jpeg.error()));
  uint64_t sequence = 0;
  {
    std::lock_guard lock(mutex_);
    ++stats_.sent;
    if (!result) {
      ++stats_.failed;
      const auto now = Clock::now();
      if (last_error_log_.size() > 10000) last_error_log_.clear();  // bounded: streams come and go
      auto& last = last_error_log_[p.job.stream_id];
      if (last.time_since_epoch().count() != 0 && now - last < std::chrono::minutes(1)) return;
      last = now;
    } else {
      switch (result->verdict) {
        case delivery::ModerationVerdict::kAllow: ++stats_.allow; return;
        case delivery::ModerationVerdict::kFlag: ++stats_.flag; break;
        case delivery::ModerationVerdict::kBlock:
          ++stats_.block;
          blocked_.insert(p.job.stream_id);
          if (blocked_.size() > 10000) blocked_.erase(blocked_.begin());
          break;
      }
      sequence = ++verdicts_[p.job.stream_id];
      if (verdicts_.size() > 10000) verdicts_.erase(verdicts_.begin());
    }
  }
  if (!result) {
    Log(LogLevel::kWarn, "moderation: no verdict for a thumbnail (the next one is tried)",
        {{"stream_id", p.job.stream_id}, {"service", client_.display_url()},
         {"error", result.error().ToString()}});
    return;
  }
  const nlohmann::json response = ModerationResponse(p.job, p.thumbnail, *result, sequence);
  Log(LogLevel::kInfo, "moderation verdict",
      {{"stream_id", p.job.stream_id}, {"verdict", response["verdict"]},
       {"label", result->label}, {"thumbnail", p.thumbnail.file}});
  if (on_verdict_) on_verdict_(p.job, response);
}

}  // namespace earshot::server
