#include "server/control_plane.h"

#include <cmath>

#include "common/log.h"
#include "common/time_format.h"
#include "control/secrets.h"
#include "server/http_json.h"

namespace earshot::server {

namespace {

ingest::HookAnswer Refuse(std::string_view reason) { return ingest::HookAnswer::Deny(std::string(reason)); }

}  // namespace

ControlPlane::ControlPlane(ControlPlaneDeps deps) : deps_(std::move(deps)) {}

control::BlockAction ControlPlane::DefaultBlockAction() const {
  const std::string& a = deps_.config->block_action;
  if (a == "notify") return control::BlockAction::kNotify;
  if (a == "stop_and_reset_key") return control::BlockAction::kStopAndResetKey;
  return control::BlockAction::kStop;
}

control::BlockAction ControlPlane::VideoBlockAction() const {
  const std::string& a = deps_.config->video_block_action;
  if (a == "notify") return control::BlockAction::kNotify;
  if (a == "stop") return control::BlockAction::kStop;
  return control::BlockAction::kStopAndResetKey;
}

std::string ControlPlane::ScanInputUrl(const std::string& channel_id) const {
  return deps_.ingest->ScanInputUrl(channel_id);
}

std::string ControlPlane::TombstoneKey(const ingest::NginxHook& hook) {
  // Client id and key: nginx numbers its clients from 1 again after a
  // restart, and the same encoder coming back then rarely gets its old
  // number with the same key. The key is kept only as its hash.
  return hook.clientid + "/" + control::HashSecret(hook.name);
}

void ControlPlane::Forget(const std::string& stream_id) {
  std::lock_guard lock(mutex_);
  last_update_ms_.erase(stream_id);
}

bool ControlPlane::Tombstoned(const ingest::NginxHook& hook) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(tombstones_, [&](const auto& t) { return now - t.second > kTombstoneTtl; });
  return tombstones_.contains(TombstoneKey(hook));
}

void ControlPlane::Bury(const ingest::NginxHook& hook) {
  std::lock_guard lock(mutex_);
  if (tombstones_.size() > 100000) tombstones_.clear();  // bounded; hooks that old are moot
  tombstones_[TombstoneKey(hook)] = std::chrono::steady_clock::now();
}

ingest::HookAnswer ControlPlane::OnPublish(const ingest::NginxHook& hook) {
  if (hook.app == deps_.config->relay_app) {
    // The relay of an accepted publish (nginx itself, from 127.0.0.1).
    return ingest::HookAnswer::Allow();
  }
  if (hook.app != deps_.config->ingest_app) {
    return Refuse("publishing is only allowed to application " + deps_.config->ingest_app);
  }
  return PublishToIngest(hook);
}

ingest::HookAnswer ControlPlane::PublishToIngest(const ingest::NginxHook& hook) {
  const std::string redacted = control::RedactSecret(hook.name);
  if (!hook.clientid.empty() && Tombstoned(hook)) {
    Log(LogLevel::kInfo, "publish refused: this client already left (late hook)",
        {{"clientid", hook.clientid}, {"key", redacted}});
    return Refuse("client already disconnected");
  }
  auto channel = deps_.state->FindChannelByStreamKey(hook.name);
  if (!channel) {
    if (channel.error().code() == ErrorCode::kNotFound) {
      Log(LogLevel::kWarn, "publish refused: unknown stream key",
          {{"key", redacted}, {"addr", hook.addr}});
      return Refuse("unknown stream key");
    }
    Log(LogLevel::kError, "publish refused: state store unavailable",
        {{"error", channel.error().ToString()}});
    return ingest::HookAnswer{503, "", "state unavailable"};
  }
  const std::string channel_id = channel->id;
  nlohmann::json ingest_info = {{"app", hook.app},         {"clientid", hook.clientid},
                                {"addr", hook.addr},       {"tcurl", hook.tcurl},
                                {"ingest", deps_.ingest->kind()}};
  auto session = deps_.state->StartSession(channel_id, ingest_info);
  if (!session && session.error().code() == ErrorCode::kAlreadyExists) {
    // The channel is live already: the same client again (a duplicate hook),
    // a stale session (its publish_done was lost), or a second encoder.
    auto live = deps_.state->LiveSession(channel_id);
    if (live && live->has_value()) {
      const state::StreamSession& old = **live;
      const std::string old_client = old.ingest.value("clientid", "");
      // Updates are remembered in memory only: after a restart of earshot a
      // session counts as seen at the restart, not as stale at once.
      int64_t last_seen = std::max(old.started_ms, created_ms_);
      {
        std::lock_guard lock(mutex_);
        auto it = last_update_ms_.find(old.stream_id);
        if (it != last_update_ms_.end()) last_seen = std::max(last_seen, it->second);
      }
      const int64_t stale_after_ms =
          static_cast<int64_t>(kStaleUpdates) * update_interval_.count() * 1000;
      if (old_client == hook.clientid && !old.stop_requested) {
        return ingest::HookAnswer::Redirect(deps_.ingest->RelayUrl(channel_id));
      }
      if (UnixMillisNow() - last_seen > stale_after_ms) {
        Log(LogLevel::kWarn, "ending a stale live session (no update from its publisher)",
            {{"stream_id", old.stream_id}, {"channel_id", channel_id}});
        (void)deps_.state->EndSession(old.stream_id, "stale: no update from the publisher");
        (void)deps_.queue->RequestCancel(old.stream_id);
        Forget(old.stream_id);
        session = deps_.state->StartSession(channel_id, ingest_info);
      } else {
        Log(LogLevel::kWarn, "publish refused: the channel is live already",
            {{"channel_id", channel_id}, {"stream_id", old.stream_id}, {"addr", hook.addr}});
        return Refuse("channel is live already");
      }
    }
  }
  if (!session) {
    Log(LogLevel::kError, "publish refused: could not start a stream session",
        {{"channel_id", channel_id}, {"error", session.error().ToString()}});
    return session.error().code() == ErrorCode::kNotFound ? Refuse("channel no longer exists")
                                                          : ingest::HookAnswer{503, "", "state unavailable"};
  }
  const state::StreamSession& s = *session;
  ScanJob job{s.stream_id, channel_id, ScanInputUrl(channel_id)};
  queue::JobSpec spec;
  spec.kind = std::string(kScanJobKind);
  spec.dedup_key = s.stream_id;
  spec.payload = job.ToJson();
  spec.max_attempts = deps_.config->max_attempts;
  auto enqueued = deps_.queue->Enqueue(spec);
  if (!enqueued) {
    Log(LogLevel::kError, "publish refused: could not queue the scan job",
        {{"stream_id", s.stream_id}, {"error", enqueued.error().ToString()}});
    (void)deps_.state->FailSession(s.stream_id, "scan job not queued: " + enqueued.error().message());
    return ingest::HookAnswer{503, "", "queue unavailable"};
  }
  {
    std::lock_guard lock(mutex_);
    last_update_ms_[s.stream_id] = UnixMillisNow();
  }
  if (!hook.clientid.empty() && Tombstoned(hook)) {
    // Its publish_done came while this hook was between the check at the
    // top and the new session: end what was just opened.
    (void)deps_.state->EndSession(s.stream_id, "publisher disconnected");
    (void)deps_.queue->RequestCancel(s.stream_id);
    Forget(s.stream_id);
    return Refuse("client already disconnected");
  }
  Log(LogLevel::kInfo, "stream started",
      {{"channel_id", channel_id}, {"stream_id", s.stream_id}, {"job_id", enqueued->job.id},
       {"clientid", hook.clientid}, {"addr", hook.addr}});
  if (deps_.job_enqueued) deps_.job_enqueued();
  return ingest::HookAnswer::Redirect(deps_.ingest->RelayUrl(channel_id));
}

ingest::HookAnswer ControlPlane::OnPublishDone(const ingest::NginxHook& hook) {
  if (hook.app != deps_.config->ingest_app) return ingest::HookAnswer::Allow();
  // Find the session: by key (normal), else by client (the key was reset).
  std::optional<state::StreamSession> session;
  if (auto channel = deps_.state->FindChannelByStreamKey(hook.name); channel) {
    auto live = deps_.state->LiveSession(channel->id);
    if (live && live->has_value()) session = **live;
  }
  if (!session && !hook.clientid.empty()) {
    auto by_client = deps_.state->LiveSessionByIngestClient(hook.app, hook.clientid);
    if (by_client && by_client->has_value()) session = **by_client;
  }
  if (!session || (!hook.clientid.empty() && session->ingest.value("clientid", "") != hook.clientid)) {
    // Nothing live for this client: a duplicate, or it overtook its publish.
    if (!hook.clientid.empty()) Bury(hook);
    return ingest::HookAnswer::Allow();
  }
  auto ended = deps_.state->EndSession(session->stream_id,
                                       session->stop_requested ? "stopped: " + session->stop_reason
                                                               : "publisher disconnected");
  if (!ended) {
    Log(LogLevel::kError, "could not end a stream session",
        {{"stream_id", session->stream_id}, {"error", ended.error().ToString()}});
  }
  if (auto c = deps_.queue->RequestCancel(session->stream_id); !c) {
    Log(LogLevel::kError, "could not cancel a scan job",
        {{"stream_id", session->stream_id}, {"error", c.error().ToString()}});
  }
  Forget(session->stream_id);
  if (!hook.clientid.empty()) Bury(hook);
  Log(LogLevel::kInfo, "stream ended",
      {{"channel_id", session->channel_id}, {"stream_id", session->stream_id}});
  return ingest::HookAnswer::Allow();
}

ingest::HookAnswer ControlPlane::OnUpdate(const ingest::NginxHook& hook) {
  if (hook.app != deps_.config->ingest_app || hook.call != ingest::HookCall::kUpdatePublish) {
    return ingest::HookAnswer::Allow();
  }
  auto channel = deps_.state->FindChannelByStreamKey(hook.name);
  if (!channel) {
    if (channel.error().code() == ErrorCode::kNotFound) return Refuse("stream key no longer valid");
    return ingest::HookAnswer::Allow();  // state down: do not kill healthy streams
  }
  auto live = deps_.state->LiveSession(channel->id);
  if (!live) return ingest::HookAnswer::Allow();
  if (!live->has_value()) return Refuse("stream was stopped");
  const state::StreamSession& s = **live;
  if (s.stop_requested) return Refuse("stream was stopped");
  if (!hook.clientid.empty() && s.ingest.value("clientid", "") != hook.clientid) {
    return Refuse("another publisher owns this channel");
  }
  std::lock_guard lock(mutex_);
  last_update_ms_[s.stream_id] = UnixMillisNow();
  return ingest::HookAnswer::Allow();
}

ingest::HookAnswer ControlPlane::OnPlay(const ingest::NginxHook& hook) {
  // RTMP playback is for earshot's scanners (loopback); viewers use HLS.
  if (hook.addr == "127.0.0.1" || hook.addr == "::1") return ingest::HookAnswer::Allow();
  return Refuse("RTMP playback is reserved for scanners");
}

Status ControlPlane::StopStream(const std::string& channel_id, bool reset_key,
                                const std::string& reason, std::string_view only_stream_id) {
  auto channel = deps_.state->GetChannel(channel_id);
  if (!channel) return std::unexpected(channel.error());
  auto live = deps_.state->LiveSession(channel_id);
  if (!live) return std::unexpected(live.error());
  if (!live->has_value()) {
    return MakeError(ErrorCode::kNotFound, "channel " + channel_id + " is not live");
  }
  if (!only_stream_id.empty() && (*live)->stream_id != only_stream_id) {
    return MakeError(ErrorCode::kNotFound, "stream " + std::string(only_stream_id) +
                                               " of channel " + channel_id + " has ended");
  }
  const state::StreamSession s = **live;
  const std::string why = reason.empty() ? "stopped by the API" : reason;
  if (Status st = deps_.state->RequestStop(s.stream_id, why); !st) return st;
  if (reset_key) {
    auto key = deps_.state->ResetStreamKey(channel_id);
    if (!key) return std::unexpected(key.error());
  }
  ingest::PublisherRef ref;
  ref.app = s.ingest.value("app", deps_.config->ingest_app);
  ref.clientid = s.ingest.value("clientid", "");
  if (Status dropped = deps_.ingest->DropPublisher(ref); !dropped) {
    // The stop still holds: the next on_update is refused.
    Log(LogLevel::kWarn, "could not drop the publisher now; its next update is refused",
        {{"stream_id", s.stream_id}, {"error", dropped.error().ToString()}});
  }
  auto ended = deps_.state->EndSession(s.stream_id, "stopped: " + why);
  if (!ended) return std::unexpected(ended.error());
  Forget(s.stream_id);
  (void)deps_.queue->RequestCancel(s.stream_id);
  Log(LogLevel::kInfo, "stream stopped",
      {{"channel_id", channel_id}, {"stream_id", s.stream_id}, {"reason", why},
       {"key_reset", reset_key}});
  return Ok();
}

void ControlPlane::OnScanStarted(const ScanJob& job, int attempt) {
  if (attempt > 1) {
    AppendEventOrLog(control::EventType::kAlarm, job.channel_id, job.stream_id,
                     {{"alarm", "scan resumed"}, {"attempt", attempt}});
  }
}

void ControlPlane::OnConnected(const ScanJob& job, const media::AudioStreamInfo& info) {
  (void)deps_.state->SetHealth(job.stream_id, state::StreamHealth::kHealthy);  // ended: no matter
  (void)deps_.state->UpdateSessionIngest(
      job.stream_id, {{"audio", {{"codec", info.codec},
                                 {"sample_rate", info.source_sample_rate},
                                 {"channels", info.source_channels},
                                 {"container", info.container}}}});
}

void ControlPlane::OnInputLost(const ScanJob& job, const std::string& reason) {
  // The managed service's health: STARVING while the ingest delivers too
  // little; here, while the scanner gets nothing and reconnects.
  if (Status st = deps_.state->SetHealth(job.stream_id, state::StreamHealth::kStarving); !st) {
    Log(LogLevel::kDebug, "health not updated", {{"stream_id", job.stream_id}, {"error", st.error().ToString()}});
  }
  Log(LogLevel::kInfo, "stream starving", {{"stream_id", job.stream_id}, {"reason", reason}});
}

void ControlPlane::OnResponse(const ScanJob& job, const nlohmann::json& response) {
  ApplyRule(job, response);
}

void ControlPlane::OnThumbnail(const ScanJob& job, const scan::ThumbnailInfo& info) {
  const nlohmann::json thumbnail = {
      {"file", info.file},
      {"stream_s", std::round(info.stream_s * 1000.0) / 1000.0},
      {"captured_at", IsoTimeUtc(info.captured_ms)},
      {"url", "/v1/sessions/" + job.stream_id + "/thumbnail"}};
  if (Status st = deps_.state->UpdateSessionIngest(job.stream_id, {{"thumbnail", thumbnail}}); !st) {
    Log(LogLevel::kDebug, "thumbnail not recorded",
        {{"stream_id", job.stream_id}, {"error", st.error().ToString()}});
  }
  if (deps_.thumbnail_stored) deps_.thumbnail_stored(job, info);
}

void ControlPlane::ApplyRule(const ScanJob& job, const nlohmann::json& r) {
  const std::string status = r.value("status", "");
  const nlohmann::json& track = r.contains("track") ? r["track"] : nlohmann::json::object();
  const nlohmann::json& stream = r.contains("stream") ? r["stream"] : nlohmann::json::object();
  const std::string track_rule = r.value("rule", "track");
  // The channel's overrides decide the effective rule.
  control::ChannelRules rules;
  if (!job.channel_id.empty()) {
    if (auto channel = deps_.state->GetChannel(job.channel_id); channel) rules = channel->rules();
  }
  const std::string title = track.value("title", "");
  const std::string holder = track.value("rights_holder", "");
  // Video matches and moderation verdicts have their own default block
  // action (a re-streamed match loses its key at once by default).
  const bool visual = r.value("match_type", "audio") != "audio";
  const control::RuleDecision decision = control::Decide(
      track_rule, rules, visual ? VideoBlockAction() : DefaultBlockAction(), {title, holder});
  const std::string effective(decision.effective_rule);

  state::IdentificationRecord rec;
  rec.stream_id = job.stream_id;
  rec.channel_id = job.channel_id;
  rec.match_id = r.value("match_id", "");
  rec.status = status;
  rec.rule = effective;
  rec.track_rule = track_rule;
  rec.track_id = track.value("track_id", int64_t{0});
  rec.title = track.value("title", "");
  rec.artist = track.value("artist", "");
  rec.rights_holder = track.value("rights_holder", "");
  rec.isrc = track.value("isrc", "");
  rec.started_at_ms = ParseIsoTimeMs(stream.value("start_time", "")).value_or(UnixMillisNow());
  rec.stream_offset_s = stream.value("start_s", 0.0);
  rec.duration_s = stream.value("duration_s", 0.0);
  rec.reference_offset_s = r.contains("reference") ? r["reference"].value("start_s", 0.0) : 0.0;
  rec.score = r.value("score", 0.0);
  if (Status st = deps_.state->RecordIdentification(rec); !st) {
    Log(LogLevel::kError, "could not record an identification",
        {{"stream_id", job.stream_id}, {"match_id", rec.match_id}, {"error", st.error().ToString()}});
  }
  if (status == "match_ongoing") return;
  nlohmann::json detail = {{"status", status},           {"match_id", rec.match_id},
                           {"rule", effective},          {"track_rule", track_rule},
                           {"track", track},             {"stream_offset_s", rec.stream_offset_s},
                           {"duration_s", rec.duration_s}, {"reference_offset_s", rec.reference_offset_s},
                           {"score", rec.score},
                           {"match_type", r.value("match_type", "audio")}};
  if (r.contains("verdict")) detail["verdict"] = r["verdict"];
  if (r.contains("thumbnail")) detail["thumbnail"] = r["thumbnail"];
  AppendEventOrLog(control::EventType::kIdentification, job.channel_id, job.stream_id, detail);
  if (deps_.metrics != nullptr && status == "match_started") deps_.metrics->CountMatch(effective);

  const std::string action(control::ActionName(decision.action));
  nlohmann::json applied = {{"rule", effective},      {"action", action},
                            {"reason", decision.reason}, {"match_id", rec.match_id},
                            {"track", track}, {"match_type", r.value("match_type", "audio")}};
  const bool stops = decision.action == control::RuleAction::kStop ||
                     decision.action == control::RuleAction::kStopAndResetKey;
  if (status == "match_started") {
    if (decision.action == control::RuleAction::kMute) applied["mute"] = {{"start_s", rec.stream_offset_s}};
  } else if (status == "match_ended" && decision.action == control::RuleAction::kMute) {
    applied["mute"] = {{"start_s", rec.stream_offset_s},
                       {"end_s", rec.stream_offset_s + rec.duration_s}};
  } else {
    return;  // the end of a non-mute match needs no action
  }
  if (decision.action == control::RuleAction::kRecord || decision.action == control::RuleAction::kNone) return;
  // The decision is an event before its consequences ("Rule Applied", then
  // "Stream End"), so a feed reads in cause-and-effect order.
  AppendEventOrLog(control::EventType::kRuleApplied, job.channel_id, job.stream_id, applied);
  if (deps_.metrics != nullptr) deps_.metrics->CountRuleAction(action);
  if (!stops) return;
  const bool reset = decision.action == control::RuleAction::kStopAndResetKey;
  Status stopped = job.channel_id.empty()
                       ? MakeError(ErrorCode::kFailedPrecondition, "the scan has no channel")
                       : StopStream(job.channel_id, reset, decision.reason, job.stream_id);
  if (!stopped && stopped.error().code() == ErrorCode::kNotFound) {
    // The scanned stream ended before this response (a late response, or a
    // second block of a stream stopped already): nothing is left to stop,
    // and the channel's next stream is not the one that played the track.
    Log(LogLevel::kInfo, "rule not applied: the stream has ended already",
        {{"stream_id", job.stream_id}, {"channel_id", job.channel_id}, {"action", action}});
    return;
  }
  Log(stopped ? LogLevel::kInfo : LogLevel::kError, stopped ? "rule applied" : "rule could not be applied",
      {{"stream_id", job.stream_id}, {"channel_id", job.channel_id}, {"action", action},
       {"reason", decision.reason}, {"error", stopped ? "" : stopped.error().ToString()}});
  if (!stopped) {
    AppendEventOrLog(control::EventType::kAlarm, job.channel_id, job.stream_id,
                     {{"alarm", "rule not applied"}, {"action", action}, {"match_id", rec.match_id},
                      {"error", stopped.error().ToString()}});
  }
}

void ControlPlane::AppendEventOrLog(control::EventType type, const std::string& channel_id,
                                    const std::string& stream_id, const nlohmann::json& detail) {
  auto appended = deps_.state->AppendEvent(type, channel_id, stream_id, detail);
  if (!appended) {
    Log(LogLevel::kError, "could not record an event",
        {{"event", std::string(control::EventTypeName(type))}, {"stream_id", stream_id},
         {"error", appended.error().ToString()}});
  }
}

void ControlPlane::OnScanFinished(const ScanJob& job, const scan::ScanReport& report) {
  if (report.status == "failed") {
    AppendEventOrLog(
        control::EventType::kStreamFailure, job.channel_id, job.stream_id,
        {{"reason", report.error ? report.error->ToString() : "scan failed"}, {"scan_id", report.scan_id}});
  }
}

}  // namespace earshot::server
