#include "server/scan_workers.h"

#include "common/log.h"

namespace earshot::server {

using Clock = std::chrono::steady_clock;

nlohmann::json ScanJob::ToJson() const {
  return {{"stream_id", stream_id}, {"channel_id", channel_id}, {"input", input}};
}

Result<ScanJob> ScanJob::FromJson(const nlohmann::json& payload) {
  auto text = [&](const char* key) -> std::string {
    auto it = payload.find(key);
    return it != payload.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  ScanJob job{text("stream_id"), text("channel_id"), text("input")};
  if (job.stream_id.empty() || job.input.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "scan job payload needs stream_id and input, got " + payload.dump());
  }
  // The ids name the results folder; the scanner would refuse them on every
  // attempt, so such a job is malformed (Term), not a failed scan (retried).
  if (Status s = scan::ValidateStreamId(job.stream_id); !s) {
    return std::unexpected(s.error().Wrap("scan job payload"));
  }
  if (!job.channel_id.empty()) {
    if (Status s = scan::ValidateStreamId(job.channel_id, "channel id"); !s) {
      return std::unexpected(s.error().Wrap("scan job payload"));
    }
  }
  return job;
}

ScanWorkers::ScanWorkers(queue::JobQueue& queue, ScanJobObserver& observer, ScanWorkerOptions options)
    : queue_(queue), observer_(observer), options_(std::move(options)) {}

ScanWorkers::~ScanWorkers() { Stop(Clock::now() + std::chrono::seconds(10)); }

void ScanWorkers::Start(scan::Scanner& scanner) {
  if (thread_.joinable()) return;
  scanner_ = &scanner;
  thread_ = std::thread([this] { Loop(); });
}

void ScanWorkers::Stop(Clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    stop_deadline_ = deadline;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ScanWorkers::Poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  cv_.notify_all();
}

size_t ScanWorkers::running() const {
  std::lock_guard lock(mutex_);
  return running_count_;
}

void ScanWorkers::Post(Note note) {
  {
    std::lock_guard lock(mutex_);
    notes_.push_back(std::move(note));
  }
  cv_.notify_all();
}

void ScanWorkers::LeaseMore() {
  const std::vector<std::string> kinds = {std::string(kScanJobKind)};
  while (running_.size() < static_cast<size_t>(options_.max_jobs)) {
    auto leased = queue_.Lease(options_.worker_id, options_.lease, kinds);
    if (!leased) {
      Log(LogLevel::kError, "could not lease a scan job (retrying at the next poll)",
          {{"worker", options_.worker_id}, {"error", leased.error().ToString()}});
      return;
    }
    if (!leased->has_value()) return;
    queue::Lease lease = std::move(**leased);
    const int64_t job_id = lease.job.id;
    auto job = ScanJob::FromJson(lease.job.payload);
    if (!job) {
      Log(LogLevel::kError, "dropping a malformed scan job",
          {{"job_id", job_id}, {"error", job.error().ToString()}});
      (void)queue_.Term(lease, job.error().message());
      continue;
    }
    scan::ScanOptions options = options_.scan;
    options.input = job->input;
    options.stream_id = job->stream_id;
    options.channel_id = job->channel_id;
    if (options_.matcher_factory) options.matcher = options_.matcher_factory();
    if (options_.video_index_factory) options.video_index = options_.video_index_factory();
    options.on_response = [this, job_id](const nlohmann::json& response) {
      Post({Note::Kind::kResponse, job_id, response, {}, {}, {}});
    };
    options.on_connected = [this, job_id](const media::AudioStreamInfo& info) {
      Post({Note::Kind::kConnected, job_id, {}, info, {}, {}});
    };
    options.on_input_lost = [this, job_id](const std::string& reason) {
      Post({Note::Kind::kInputLost, job_id, reason, {}, {}, {}});
    };
    options.on_finished = [this, job_id](const scan::ScanReport& report) {
      Post({Note::Kind::kFinished, job_id, {}, {}, report, {}});
    };
    options.on_thumbnail = [this, job_id](const scan::ThumbnailInfo& info) {
      Note note{Note::Kind::kThumbnail, job_id, {}, {}, {}, {}};
      note.thumbnail = info;
      note.thumbnail.jpeg = {};
      Post(std::move(note));
    };
    auto scan_id = scanner_->Add(std::move(options));
    if (!scan_id) {
      Log(LogLevel::kError, "could not start a scan",
          {{"job_id", job_id}, {"stream_id", job->stream_id}, {"error", scan_id.error().ToString()}});
      (void)queue_.Nak(lease, scan_id.error().message(), std::nullopt);
      continue;
    }
    Log(LogLevel::kInfo, "scan job started",
        {{"job_id", job_id}, {"stream_id", job->stream_id}, {"channel_id", job->channel_id},
         {"scan_id", *scan_id}, {"attempt", lease.job.attempts}, {"worker", options_.worker_id}});
    observer_.OnScanStarted(*job, lease.job.attempts);
    Running r{std::move(lease), *job, *scan_id, Clock::now() + options_.lease / 3};
    running_.emplace(job_id, std::move(r));
    std::lock_guard lock(mutex_);
    running_count_ = running_.size();
  }
}

void ScanWorkers::Heartbeats() {
  const auto now = Clock::now();
  for (auto& [job_id, r] : running_) {
    // A scan flushing for a shutdown still holds its job: keep the lease.
    const bool holding = r.cancel == CancelReason::kNone || r.cancel == CancelReason::kShutdown;
    if (r.next_heartbeat > now || !holding) continue;
    r.next_heartbeat = now + options_.lease / 3;
    auto reply = queue_.Heartbeat(r.lease, options_.lease);
    if (!reply) {
      if (reply.error().code() == ErrorCode::kFailedPrecondition) {
        Log(LogLevel::kWarn, "lease lost: another worker has this scan job; cancelling ours",
            {{"job_id", job_id}, {"stream_id", r.job.stream_id}, {"error", reply.error().ToString()}});
        r.cancel = CancelReason::kLeaseLost;
        scanner_->Cancel(r.scan_id);
      } else {
        Log(LogLevel::kWarn, "heartbeat failed (will retry)",
            {{"job_id", job_id}, {"error", reply.error().ToString()}});
        r.next_heartbeat = now + std::chrono::seconds(1);
      }
      continue;
    }
    if (reply->cancel_requested) {
      Log(LogLevel::kInfo, "scan job cancelled (the stream ended or was stopped)",
          {{"job_id", job_id}, {"stream_id", r.job.stream_id}});
      r.cancel = CancelReason::kRequested;
      scanner_->Cancel(r.scan_id);
    }
  }
}

void ScanWorkers::Settle(Running& r, const scan::ScanReport& report) {
  observer_.OnScanFinished(r.job, report);
  Status settled = Ok();
  switch (r.cancel) {
    case CancelReason::kLeaseLost:
      return;  // not ours any more
    case CancelReason::kShutdown:
      settled = queue_.Release(r.lease);  // another worker resumes it; no attempt used
      break;
    case CancelReason::kRequested:
      settled = queue_.Ack(r.lease);
      break;
    case CancelReason::kNone:
      if (report.status == "failed") {
        settled = queue_.Nak(r.lease, report.error ? report.error->ToString() : "scan failed",
                             std::nullopt);
      } else {
        settled = queue_.Ack(r.lease);
      }
      break;
  }
  if (!settled) {
    Log(LogLevel::kWarn, "could not settle a scan job (its lease will expire)",
        {{"job_id", r.lease.job.id}, {"error", settled.error().ToString()}});
  }
}

void ScanWorkers::Loop() {
  auto next_poll = Clock::now();
  bool cancelling = false;
  while (true) {
    std::deque<Note> notes;
    bool stopping = false;
    Clock::time_point deadline;
    {
      std::unique_lock lock(mutex_);
      auto wake = std::min(next_poll, Clock::now() + options_.lease / 3);
      if (stopping_) wake = std::min(wake, Clock::now() + std::chrono::milliseconds(100));
      // Once cancelling, only notes (scans finishing) or the 100 ms tick
      // wake the loop: `stopping_` stays true and would make it spin.
      cv_.wait_until(lock, wake, [&] { return !notes_.empty() || (stopping_ && !cancelling) || poked_; });
      notes.swap(notes_);
      stopping = stopping_;
      deadline = stop_deadline_;
      if (poked_) {
        poked_ = false;
        next_poll = Clock::now();
      }
    }
    for (Note& note : notes) {
      auto it = running_.find(note.job_id);
      if (it == running_.end()) continue;
      switch (note.kind) {
        case Note::Kind::kResponse: observer_.OnResponse(it->second.job, note.response); break;
        case Note::Kind::kConnected: observer_.OnConnected(it->second.job, note.info); break;
        case Note::Kind::kInputLost:
          observer_.OnInputLost(it->second.job, note.response.get<std::string>());
          break;
        case Note::Kind::kThumbnail: observer_.OnThumbnail(it->second.job, note.thumbnail); break;
        case Note::Kind::kFinished:
          Settle(it->second, note.report);
          running_.erase(it);
          break;
      }
    }
    if (stopping) {
      if (!cancelling) {
        cancelling = true;
        for (auto& [job_id, r] : running_) {
          if (r.cancel == CancelReason::kNone) r.cancel = CancelReason::kShutdown;
          scanner_->Cancel(r.scan_id);
        }
      }
      if (running_.empty() || Clock::now() >= deadline) break;
      Heartbeats();  // keep the leases while scans flush
    } else {
      Heartbeats();
      if (Clock::now() >= next_poll) {
        LeaseMore();
        next_poll = Clock::now() + options_.poll;
      }
    }
    std::lock_guard lock(mutex_);
    running_count_ = running_.size();
  }
  if (!running_.empty()) {
    Log(LogLevel::kWarn, "shutting down with scans still flushing; their leases will expire",
        {{"worker", options_.worker_id}, {"scans", running_.size()}});
  }
  std::lock_guard lock(mutex_);
  running_count_ = running_.size();
}

}  // namespace earshot::server
