#include "server/alarm_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "anomaly/floor_div.h"
#include "common/log.h"
#include "common/time_format.h"

namespace earshot::server {

namespace {

Error Bad(const std::string& member, const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, "alarm " + member + ": " + what);
}

Result<double> Number(const nlohmann::json& j, const std::string& member, double lo, double hi) {
  if (!j.is_number()) return std::unexpected(Bad(member, "must be a number"));
  const double v = j.get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return std::unexpected(Bad(member, "must be " + std::to_string(lo) + ".." + std::to_string(hi)));
  }
  return v;
}

Result<int64_t> Integer(const nlohmann::json& j, const std::string& member, int64_t lo, int64_t hi) {
  if (!j.is_number_integer()) return std::unexpected(Bad(member, "must be an integer"));
  const int64_t v = j.get<int64_t>();
  if (v < lo || v > hi) {
    return std::unexpected(Bad(member, "must be " + std::to_string(lo) + ".." + std::to_string(hi)));
  }
  return v;
}

Result<bool> Boolean(const nlohmann::json& j, const std::string& member) {
  if (!j.is_boolean()) return std::unexpected(Bad(member, "must be true or false"));
  return j.get<bool>();
}

std::string StateName(anomaly::AlarmState s) { return std::string(anomaly::AlarmStateName(s)); }

}  // namespace

Result<AlarmSpec> AlarmSpecFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return std::unexpected(Bad("body", "must be a JSON object"));
  AlarmSpec s;
  for (const auto& [key, value] : json.items()) {
    if (key == "name") {
      if (!value.is_string()) return std::unexpected(Bad("name", "must be a string"));
      s.name = value.get<std::string>();
    } else if (key == "channel_id") {
      if (!value.is_string() && !value.is_null()) return std::unexpected(Bad("channel_id", "must be a string"));
      s.channel_id = value.is_null() ? "" : value.get<std::string>();
    } else if (key == "band_width") {
      auto v = Number(value, key, 0.5, 20);
      if (!v) return std::unexpected(v.error());
      s.band_width = *v;
    } else if (key == "period_s") {
      auto v = Integer(value, key, 1, 3600);
      if (!v) return std::unexpected(v.error());
      s.period_s = *v;
    } else if (key == "datapoints_to_alarm") {
      auto v = Integer(value, key, 1, 64);
      if (!v) return std::unexpected(v.error());
      s.datapoints_to_alarm = static_cast<int>(*v);
    } else if (key == "evaluation_periods") {
      auto v = Integer(value, key, 1, 64);
      if (!v) return std::unexpected(v.error());
      s.evaluation_periods = static_cast<int>(*v);
    } else if (key == "treat_missing_data") {
      if (!value.is_string()) return std::unexpected(Bad(key, "must be a string"));
      auto m = anomaly::ParseMissingData(value.get<std::string>());
      if (!m) return std::unexpected(Bad(key, m.error().message()));
      s.missing_data = *m;
    } else if (key == "min_sustain_s") {
      auto v = Number(value, key, 0, 86400);
      if (!v) return std::unexpected(v.error());
      s.min_sustain_s = *v;
    } else if (key == "actions") {
      if (!value.is_object()) return std::unexpected(Bad(key, "must be an object"));
      for (const auto& [ak, av] : value.items()) {
        auto b = Boolean(av, "actions." + ak);
        if (!b) return std::unexpected(b.error());
        if (ak == "notify") {
          s.notify = *b;
        } else if (ak == "stop_stream") {
          s.stop_stream = *b;
        } else if (ak == "reset_key") {
          s.reset_key = *b;
        } else {
          return std::unexpected(Bad("actions." + ak, "unknown action (notify, stop_stream, reset_key)"));
        }
      }
    } else if (key == "auto_stop") {
      if (!value.is_object()) return std::unexpected(Bad(key, "must be an object"));
      for (const auto& [ak, av] : value.items()) {
        if (ak == "ratio") {
          auto v = Number(av, "auto_stop.ratio", 2, 1000);
          if (!v) return std::unexpected(v.error());
          s.auto_stop_ratio = *v;
        } else if (ak == "sustain_s") {
          auto v = Number(av, "auto_stop.sustain_s", 0, 86400);
          if (!v) return std::unexpected(v.error());
          s.auto_stop_sustain_s = *v;
        } else if (ak == "min_learned_minutes") {
          auto v = Number(av, "auto_stop.min_learned_minutes", 0, 525600);
          if (!v) return std::unexpected(v.error());
          s.auto_stop_min_learned_minutes = *v;
        } else {
          return std::unexpected(Bad("auto_stop." + ak, "unknown member (ratio, sustain_s, min_learned_minutes)"));
        }
      }
    } else {
      return std::unexpected(Bad(key, "unknown member"));
    }
  }
  if (s.datapoints_to_alarm > s.evaluation_periods) {
    return std::unexpected(Bad("datapoints_to_alarm", "must not exceed evaluation_periods"));
  }
  if (Status v = anomaly::ValidateDetectorOptions(DetectorOptionsFor(s)); !v) {
    return std::unexpected(Bad("settings", v.error().message()));
  }
  return s;
}

nlohmann::json AlarmSpecToJson(const AlarmSpec& s) {
  return {{"name", s.name},
          {"channel_id", s.channel_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.channel_id)},
          {"band_width", s.band_width},
          {"period_s", s.period_s},
          {"datapoints_to_alarm", s.datapoints_to_alarm},
          {"evaluation_periods", s.evaluation_periods},
          {"treat_missing_data", std::string(anomaly::MissingDataName(s.missing_data))},
          {"min_sustain_s", s.min_sustain_s},
          {"actions", {{"notify", s.notify}, {"stop_stream", s.stop_stream}, {"reset_key", s.reset_key}}},
          {"auto_stop", {{"ratio", s.auto_stop_ratio},
                         {"sustain_s", s.auto_stop_sustain_s},
                         {"min_learned_minutes", s.auto_stop_min_learned_minutes}}}};
}

anomaly::DetectorOptions DetectorOptionsFor(const AlarmSpec& s) {
  anomaly::DetectorOptions o;
  o.model.band_width = s.band_width;
  o.alarm.period_s = s.period_s;
  o.alarm.datapoints_to_alarm = s.datapoints_to_alarm;
  o.alarm.evaluation_periods = s.evaluation_periods;
  o.alarm.missing_data = s.missing_data;
  o.alarm.max_lookback_s = std::max<int64_t>(o.alarm.max_lookback_s, s.period_s * (s.evaluation_periods + 1));
  o.min_sustain_s = s.min_sustain_s;
  o.auto_stop.ratio = s.auto_stop_ratio;
  o.auto_stop.sustain_s = s.auto_stop_sustain_s;
  return o;
}

AlarmService::AlarmService(state::StateStore& state, PlaybackService& viewers, ControlPlane& control,
                           Metrics* metrics, AlarmServiceOptions options)
    : state_(state), viewers_(viewers), control_(control), metrics_(metrics), options_(options) {}

AlarmService::~AlarmService() { Stop(); }

Result<std::unique_ptr<AlarmService::Runtime>> AlarmService::MakeRuntime(const state::AlarmRecord& record) {
  nlohmann::json spec_json = nlohmann::json::parse(record.spec_json, nullptr, false);
  auto spec = AlarmSpecFromJson(spec_json);
  if (!spec) return std::unexpected(spec.error().Wrap("alarm " + record.id + " in the state store"));
  auto r = std::make_unique<Runtime>();
  r->record = record;
  r->spec = *spec;
  auto detector = anomaly::ViewerAnomalyDetector::Create(DetectorOptionsFor(*spec));
  if (!detector) return std::unexpected(detector.error().Wrap("alarm " + record.id));
  r->detector = std::move(*detector);
  return r;
}

Status AlarmService::Load() {
  auto records = state_.ListAlarms();
  if (!records) return std::unexpected(records.error().Wrap("alarms"));
  std::lock_guard lock(mutex_);
  for (const state::AlarmRecord& rec : *records) {
    auto r = MakeRuntime(rec);
    if (!r) return std::unexpected(r.error());
    auto saved = state_.LoadAlarmChannelStates(rec.id);
    if (!saved) return std::unexpected(saved.error().Wrap("alarm " + rec.id));
    for (const auto& [channel, bytes] : *saved) {
      if (Status s = (*r)->detector->RestoreChannel(channel, bytes); s) {
        (*r)->known.insert(channel);
      } else {
        // A damaged state costs what the detector learnt for that channel,
        // not the alarm: it starts again from its prior.
        Log(LogLevel::kWarn, "alarm state of a channel is damaged; it learns again",
            {{"alarm_id", rec.id}, {"channel_id", channel}, {"error", s.error().ToString()}});
      }
    }
    alarms_[rec.id] = std::move(*r);
  }
  return Ok();
}

void AlarmService::Start() {
  std::lock_guard lock(thread_mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock wait_lock(thread_mutex_);
    while (!stopping_) {
      cv_.wait_for(wait_lock, std::chrono::milliseconds(options_.tick_ms), [this] { return stopping_; });
      if (stopping_) break;
      wait_lock.unlock();
      Tick(UnixMillisNow());
      wait_lock.lock();
    }
  });
}

void AlarmService::Stop() {
  {
    std::lock_guard lock(thread_mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  for (auto& [id, r] : alarms_) SaveStates(*r);
}

void AlarmService::SaveStates(Runtime& r) {
  for (const auto& [channel, p] : r.open) {
    auto bytes = r.detector->SerializeChannel(channel);
    if (!bytes) continue;  // never updated yet
    if (Status s = state_.SaveAlarmChannelState(r.record.id, channel, *bytes); !s) {
      Log(LogLevel::kWarn, "alarm state not saved", {{"alarm_id", r.record.id}, {"error", s.error().ToString()}});
    }
  }
  r.closed_since_save = 0;
}

void AlarmService::ClosePeriod(Runtime& r, const std::string& channel, const std::string& stream_id,
                               const PeriodMax& period, std::vector<state::AlarmPointRecord>& points) {
  const anomaly::ChannelDetector* before = r.detector->Find(channel);
  const anomaly::AlarmState was = before ? before->evaluator().state() : anomaly::AlarmState::kInsufficientData;
  const bool was_auto_stop = before != nullptr && before->auto_stop();
  // The model's experience of this channel before this period.
  const double learned_minutes = before ? before->model().learned_minutes() : 0.0;
  const anomaly::DetectorPoint p = r.detector->Update(channel, period.period_start_s, period.max);
  r.known.insert(channel);
  ++r.closed_since_save;
  state::AlarmPointRecord point;
  point.alarm_id = r.record.id;
  point.channel_id = channel;
  point.timestamp_s = period.period_start_s;
  point.value = period.max;
  point.band_low = p.band.band_low;
  point.band_high = p.band.band_high;
  point.state = StateName(p.state);
  points.push_back(point);

  const nlohmann::json detail = {{"kind", "viewer_spike"},
                                 {"alarm_id", r.record.id},
                                 {"alarm_name", r.spec.name},
                                 {"previous_state", StateName(was)},
                                 {"state", StateName(p.state)},
                                 {"viewers", period.max},
                                 {"expected", p.band.expected},
                                 {"band_low", p.band.band_low},
                                 {"band_high", p.band.band_high},
                                 {"period_start", IsoTimeUtc(period.period_start_s * 1000)}};
  if (p.state != was && (p.state == anomaly::AlarmState::kAlarm || was == anomaly::AlarmState::kAlarm)) {
    nlohmann::json d = detail;
    const auto* after = r.detector->Find(channel);
    if (after && !after->evaluator().history().empty()) d["reason"] = after->evaluator().history().back().reason;
    Log(p.state == anomaly::AlarmState::kAlarm ? LogLevel::kWarn : LogLevel::kInfo, "viewer alarm state changed",
        {{"alarm_id", r.record.id}, {"channel_id", channel}, {"state", StateName(p.state)}, {"viewers", period.max},
         {"band_high", p.band.band_high}});
    if (r.spec.notify) {
      if (auto e = state_.AppendEvent(control::EventType::kAlarm, channel, stream_id, d); !e) {
        Log(LogLevel::kError, "alarm event not recorded", {{"alarm_id", r.record.id}, {"error", e.error().ToString()}});
      }
    }
    if (metrics_ && p.state == anomaly::AlarmState::kAlarm) metrics_->CountRuleAction("viewer_alarm");
  }
  // Once per alarm episode: on the verdict's rising edge (saved with the
  // detector, so a restart does not stop the channel again), or again after
  // a stop that failed.
  const bool edge = p.auto_stop && (!was_auto_stop || r.stop_pending[channel]);
  if (edge && r.spec.stop_stream && !stream_id.empty() &&
      learned_minutes < r.spec.auto_stop_min_learned_minutes) {
    Log(LogLevel::kWarn, "viewer spike not auto-stopped: the alarm has not learnt this channel yet",
        {{"alarm_id", r.record.id}, {"channel_id", channel}, {"learned_minutes", learned_minutes},
         {"min_learned_minutes", r.spec.auto_stop_min_learned_minutes}});
  } else if (edge && r.spec.stop_stream && !stream_id.empty()) {
    const std::string reason = "viewer spike: " + std::to_string(static_cast<int64_t>(period.max)) +
                               " viewers, about " + std::to_string(static_cast<int64_t>(p.band.expected)) +
                               " expected (alarm " + (r.spec.name.empty() ? r.record.id : r.spec.name) + ")";
    Status s = control_.StopStream(channel, r.spec.reset_key, reason, stream_id);
    r.stop_pending[channel] = !s && s.error().code() != ErrorCode::kNotFound;
    nlohmann::json d = detail;
    d["action"] = r.spec.reset_key ? "stop_and_reset_key" : "stop";
    d["reason"] = reason;
    if (!s) d["error"] = s.error().ToString();
    if (auto e = state_.AppendEvent(control::EventType::kRuleApplied, channel, stream_id, d); !e) {
      Log(LogLevel::kError, "alarm action not recorded", {{"alarm_id", r.record.id}, {"error", e.error().ToString()}});
    }
    if (metrics_ && s) metrics_->CountRuleAction(r.spec.reset_key ? "stop_and_reset_key" : "stop");
  }
}

void AlarmService::Tick(int64_t now_ms) {
  const int64_t now_s = now_ms / 1000;
  auto live = state_.ListLiveSessions();
  if (!live) {
    Log(LogLevel::kWarn, "alarms: live streams unreadable; tick skipped", {{"error", live.error().ToString()}});
    return;
  }
  const std::map<std::string, int64_t> counts = viewers_.ViewerCounts();
  std::map<std::string, std::string> live_stream;  // channel -> its live stream id
  for (const auto& session : *live) live_stream[session.channel_id] = session.stream_id;
  std::vector<state::AlarmPointRecord> points;
  std::lock_guard lock(mutex_);
  for (auto& [id, rp] : alarms_) {
    Runtime& r = *rp;
    const int64_t period = anomaly::FloorDiv(now_s, r.spec.period_s) * r.spec.period_s;
    std::set<std::string> channels;
    for (const auto& [channel, stream_id] : live_stream) {
      if (r.spec.channel_id.empty() || r.spec.channel_id == channel) channels.insert(channel);
    }
    // Close the periods that ended (also of channels no longer live).
    for (auto& [channel, open] : r.open) {
      if (open.has && open.period_start_s < period) {
        const auto l = live_stream.find(channel);
        ClosePeriod(r, channel, l == live_stream.end() ? std::string() : l->second, open, points);
        open.has = false;
      }
    }
    for (const std::string& channel : channels) {
      PeriodMax& open = r.open[channel];
      const auto c = counts.find(channel);
      const double value = c == counts.end() ? 0.0 : static_cast<double>(c->second);
      if (!open.has || open.period_start_s != period) {
        open = {period, value, true};
      } else {
        open.max = std::max(open.max, value);
      }
    }
    // Channels that went offline keep no open period; forget them once saved.
    for (auto it = r.open.begin(); it != r.open.end();) {
      if (!it->second.has && !channels.count(it->first)) {
        if (auto bytes = r.detector->SerializeChannel(it->first); bytes) {
          (void)state_.SaveAlarmChannelState(r.record.id, it->first, *bytes);
        }
        it = r.open.erase(it);
      } else {
        ++it;
      }
    }
    if (r.closed_since_save >= options_.save_every_periods * std::max<int>(1, static_cast<int>(r.open.size()))) {
      SaveStates(r);
    }
  }
  if (!points.empty()) {
    if (Status s = state_.RecordAlarmPoints(points); !s) {
      Log(LogLevel::kWarn, "alarm points not stored", {{"error", s.error().ToString()}});
    }
  }
}

nlohmann::json AlarmService::RuntimeJson(const Runtime& r) const {
  nlohmann::json j = AlarmSpecToJson(r.spec);
  j["id"] = r.record.id;
  j["created"] = IsoTimeUtc(r.record.created_ms);
  nlohmann::json channels = nlohmann::json::array();
  std::string overall = "INSUFFICIENT_DATA";
  for (const std::string& channel : r.known) {
    const anomaly::ChannelDetector* d = r.detector->Find(channel);
    if (!d) continue;
    const auto& ev = d->evaluator();
    nlohmann::json history = nlohmann::json::array();
    for (const auto& h : ev.history()) {
      history.push_back({{"time", IsoTimeUtc(h.timestamp_s * 1000)},
                         {"from", StateName(h.from)},
                         {"to", StateName(h.to)},
                         {"reason", h.reason}});
    }
    const std::string st = StateName(ev.state());
    if (st == "ALARM" || (st == "OK" && overall != "ALARM")) overall = st;
    channels.push_back({{"channel_id", channel},
                        {"state", st},
                        {"since", ev.state_since() > 0 ? IsoTimeUtc(ev.state_since() * 1000) : std::string()},
                        {"history", history}});
  }
  j["state"] = overall;
  j["channels"] = channels;
  return j;
}

Result<nlohmann::json> AlarmService::Create(const nlohmann::json& body) {
  auto spec = AlarmSpecFromJson(body);
  if (!spec) return std::unexpected(spec.error());
  auto rec = state_.CreateAlarm(spec->name, spec->channel_id, AlarmSpecToJson(*spec).dump());
  if (!rec) return std::unexpected(rec.error());
  auto r = MakeRuntime(*rec);
  if (!r) return std::unexpected(r.error());
  std::lock_guard lock(mutex_);
  nlohmann::json j = RuntimeJson(**r);
  alarms_[rec->id] = std::move(*r);
  Log(LogLevel::kInfo, "alarm created", {{"alarm_id", rec->id}, {"channel_id", spec->channel_id}});
  return j;
}

Result<nlohmann::json> AlarmService::Get(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = alarms_.find(id);
  if (it == alarms_.end()) return MakeError(ErrorCode::kNotFound, "no alarm " + id);
  return RuntimeJson(*it->second);
}

Result<nlohmann::json> AlarmService::List() {
  std::lock_guard lock(mutex_);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [id, r] : alarms_) list.push_back(RuntimeJson(*r));
  return nlohmann::json{{"alarms", list}};
}

Status AlarmService::Delete(const std::string& id) {
  std::unique_ptr<Runtime> removed;
  {
    // Out of the ticks first: a deleted alarm must not act any more.
    std::lock_guard lock(mutex_);
    auto it = alarms_.find(id);
    if (it != alarms_.end()) {
      removed = std::move(it->second);
      alarms_.erase(it);
    }
  }
  if (Status s = state_.DeleteAlarm(id); !s) {
    std::lock_guard lock(mutex_);
    if (removed) alarms_[id] = std::move(removed);  // still stored: keep running it
    return s;
  }
  Log(LogLevel::kInfo, "alarm deleted", {{"alarm_id", id}});
  return Ok();
}

}  // namespace earshot::server
