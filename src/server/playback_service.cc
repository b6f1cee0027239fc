#include "server/playback_service.h"

#include <chrono>

#include "common/log.h"
#include "common/time_format.h"
#include "playback/playback_key.h"

namespace earshot::server {

namespace {

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = HexValue(s[i + 1]);
      const int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

std::string RevokedKey(std::string_view channel_id, std::string_view viewer_id) {
  std::string k(channel_id);
  k += '\n';
  k += viewer_id;
  return k;
}

}  // namespace

std::optional<HlsFile> ParseHlsPath(std::string_view path) {
  path = path.substr(0, path.find('?'));
  if (path.find_first_of("#%\\") != std::string_view::npos || path.find("//") != std::string_view::npos ||
      path.find("/.") != std::string_view::npos) {
    return std::nullopt;
  }
  const size_t slash = path.rfind('/');
  std::string_view file = slash == std::string_view::npos ? path : path.substr(slash + 1);
  HlsFile out;
  std::string_view stem;
  if (file.ends_with(".m3u8")) {
    out.kind = playback::RequestKind::kPlaylist;
    stem = file.substr(0, file.size() - 5);
  } else if (file.ends_with(".ts")) {
    out.kind = playback::RequestKind::kSegment;
    stem = file.substr(0, file.size() - 3);
    const size_t dash = stem.rfind('-');
    if (dash == std::string_view::npos || !IsDigits(stem.substr(dash + 1))) return std::nullopt;
    stem = stem.substr(0, dash);
  } else {
    return std::nullopt;
  }
  if (stem.empty() || stem.size() > 64) return std::nullopt;
  for (char c : stem) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return std::nullopt;
  }
  out.channel_id = std::string(stem);
  return out;
}

std::string QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::string ChannelArn(std::string_view channel_id) {
  return "arn:earshot:channel/" + std::string(channel_id);
}

PlaybackService::PlaybackService(state::StateStore& state, Metrics* metrics, PlaybackServiceOptions options)
    : state_(state),
      metrics_(metrics),
      options_(std::move(options)),
      viewers_(options_.viewer_idle_ms) {
  authorizer_ = std::make_unique<playback::PlaybackAuthorizer>(*this);
}

PlaybackService::~PlaybackService() { Stop(); }

Result<std::unique_ptr<PlaybackService>> PlaybackService::Open(state::StateStore& state, Metrics* metrics,
                                                               PlaybackServiceOptions options) {
  std::unique_ptr<PlaybackService> s(new PlaybackService(state, metrics, std::move(options)));
  if (!s->options_.geoip_database.empty()) {
    auto db = geoip::MaxMindCountryLookup::Open(s->options_.geoip_database);
    if (!db) return std::unexpected(db.error().Wrap("playback.geoip_database"));
    s->countries_ = std::move(*db);
  }
  if (Status r = s->ReloadKeys(); !r) return std::unexpected(r.error());
  auto revoked = state.ListRevokedViewers();
  if (!revoked) return std::unexpected(revoked.error().Wrap("revoked viewers"));
  for (const auto& r : *revoked) {
    s->revoked_[RevokedKey(r.channel_id, r.viewer_id)] = r.up_to_session_version;
  }
  return s;
}

void PlaybackService::Start() {
  std::lock_guard lock(flush_mutex_);
  if (flusher_.joinable()) return;
  stopping_ = false;
  flusher_ = std::thread([this] {
    std::unique_lock wait_lock(flush_mutex_);
    while (!stopping_) {
      flush_cv_.wait_for(wait_lock, std::chrono::milliseconds(options_.flush_every_ms), [this] { return stopping_; });
      wait_lock.unlock();
      if (Status r = FlushViewerMinutes(); !r) {
        Log(LogLevel::kWarn, "viewer counts not stored; retrying", {{"error", r.error().ToString()}});
      }
      wait_lock.lock();
    }
  });
}

void PlaybackService::Stop() {
  {
    std::lock_guard lock(flush_mutex_);
    stopping_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
}

Status PlaybackService::ReloadKeys() {
  auto keys = state_.ListPlaybackKeys();
  if (!keys) return std::unexpected(keys.error().Wrap("playback keys"));
  std::vector<playback::KeyEntry> entries;
  for (const state::PlaybackKey& k : *keys) {
    auto key = playback::PlaybackPublicKey::FromPem(k.public_key_pem);
    if (!key) return std::unexpected(key.error().Wrap("playback key " + k.id + " in the state store"));
    entries.push_back({k.id, std::move(*key)});
  }
  authorizer_->SetKeys(std::move(entries));
  return Ok();
}

Result<state::PlaybackKey> PlaybackService::ImportKey(std::string_view name, std::string_view pem) {
  auto key = playback::PlaybackPublicKey::FromPem(pem);
  if (!key) return std::unexpected(key.error());
  std::lock_guard lock(keys_mutex_);
  auto created = state_.CreatePlaybackKey(name, pem, key->fingerprint(), options_.max_keys);
  if (!created && created.error().code() == ErrorCode::kResourceExhausted) {
    // A configured limit, not a full disk: the caller must delete a key first.
    return MakeError(ErrorCode::kFailedPrecondition,
                     created.error().message() + " (playback.max_keys = " + std::to_string(options_.max_keys) + ")");
  }
  if (!created) return created;
  if (Status r = ReloadKeys(); !r) return std::unexpected(r.error());
  Log(LogLevel::kInfo, "playback key imported", {{"key_id", created->id}, {"fingerprint", created->fingerprint}});
  return created;
}

Result<std::vector<state::PlaybackKey>> PlaybackService::ListKeys() { return state_.ListPlaybackKeys(); }

Result<state::PlaybackKey> PlaybackService::GetKey(std::string_view id) { return state_.GetPlaybackKey(id); }

Status PlaybackService::DeleteKey(std::string_view id) {
  std::lock_guard lock(keys_mutex_);
  if (Status s = state_.DeletePlaybackKey(id); !s) return s;
  Log(LogLevel::kInfo, "playback key deleted: its tokens are refused", {{"key_id", std::string(id)}});
  return ReloadKeys();
}

Status PlaybackService::RevokeViewer(std::string_view channel_id, std::string_view viewer_id, int64_t up_to) {
  if (Status s = state_.RevokeViewer(channel_id, viewer_id, up_to); !s) return s;
  std::lock_guard lock(revoked_mutex_);
  int64_t& v = revoked_.try_emplace(RevokedKey(channel_id, viewer_id), up_to).first->second;
  v = std::max(v, up_to);
  Log(LogLevel::kInfo, "viewer revoked",
      {{"channel_id", std::string(channel_id)}, {"viewer_id", std::string(viewer_id)}, {"up_to_session_version", up_to}});
  return Ok();
}

int64_t PlaybackService::ViewerCount(std::string_view channel_id) {
  return viewers_.Count(channel_id, UnixMillisNow());
}

std::map<std::string, int64_t> PlaybackService::ViewerCounts() { return viewers_.Counts(UnixMillisNow()); }

Status PlaybackService::FlushViewerMinutes() {
  std::vector<std::string> live_ids;
  auto live = state_.ListLiveSessions();
  if (!live) return std::unexpected(live.error());
  for (const auto& s : *live) live_ids.push_back(s.channel_id);
  std::vector<playback::ViewerMinute> minutes = viewers_.TakeClosedMinutes(UnixMillisNow(), live_ids);
  if (minutes.empty()) return Ok();
  std::vector<state::ViewerMinuteRecord> records;
  records.reserve(minutes.size());
  for (const auto& m : minutes) {
    state::ViewerMinuteRecord r;
    r.channel_id = m.channel_id;
    r.minute_start_s = m.minute_start_s;
    r.max_viewers = m.max_viewers;
    records.push_back(std::move(r));
  }
  return state_.RecordViewerMinutes(records);
}

Result<std::vector<state::ViewerMinuteRecord>> PlaybackService::ViewerMinutes(std::string_view channel_id,
                                                                              int64_t from_s, int64_t to_s) {
  return state_.ListViewerMinutes(channel_id, from_s, to_s);
}

void PlaybackService::InvalidateChannel(std::string_view channel_id) {
  std::lock_guard lock(channels_mutex_);
  channels_.erase(std::string(channel_id));
}

Result<playback::ChannelAccess> PlaybackService::Channel(const std::string& channel_id, int64_t now_ms) {
  {
    std::lock_guard lock(channels_mutex_);
    auto it = channels_.find(channel_id);
    if (it != channels_.end() && now_ms - it->second.fetched_ms < kChannelCacheMs) {
      // An empty id marks a channel that did not exist: requests for made-up
      // names cost no store read each.
      if (it->second.access.channel_id.empty()) {
        return MakeError(ErrorCode::kNotFound, "no channel " + channel_id);
      }
      return it->second.access;
    }
  }
  auto c = state_.GetChannel(channel_id);
  if (!c && c.error().code() == ErrorCode::kNotFound) {
    std::lock_guard lock(channels_mutex_);
    if (channels_.size() > 100000) channels_.clear();
    channels_[channel_id] = {playback::ChannelAccess{}, now_ms};
  }
  if (!c) return std::unexpected(c.error());
  playback::ChannelAccess access;
  access.channel_id = c->id;
  access.channel_arn = ChannelArn(c->id);
  access.is_private = c->is_private;
  access.policy = c->policy;
  std::lock_guard lock(channels_mutex_);
  if (channels_.size() > 100000) channels_.clear();  // bounded; refilled on demand
  channels_[channel_id] = {access, now_ms};
  return access;
}

bool PlaybackService::ShouldLogRefusal(int64_t now_ms) {
  const int64_t second = now_ms / 1000;
  std::lock_guard lock(log_mutex_);
  if (second != log_second_) {
    log_second_ = second;
    logged_this_second_ = 0;
  }
  return ++logged_this_second_ <= kMaxRefusalLogsPerSecond;
}

void PlaybackService::Count(const PlaybackOutcome& outcome) {
  if (metrics_ != nullptr) metrics_->CountPlaybackDecision(outcome.http_status == 200 ? "allowed" : "refused", outcome.reason);
}

PlaybackOutcome PlaybackService::Decide(const std::string& channel_id, playback::PlaybackRequest request,
                                        int64_t now_ms) {
  PlaybackOutcome out;
  out.channel_id = channel_id;
  auto channel = Channel(channel_id, now_ms);
  if (!channel) {
    if (channel.error().code() == ErrorCode::kNotFound) {
      out.http_status = 403;
      out.reason = "unknown_channel";
    } else {
      out.http_status = 503;
      out.reason = "unavailable";
      Log(LogLevel::kWarn, "playback refused: state store unavailable", {{"error", channel.error().ToString()}});
    }
    Count(out);
    return out;
  }
  std::string country;
  if (!channel->policy.allowed_countries.empty() && countries_ && !request.client_address.empty()) {
    auto c = countries_->CountryOf(request.client_address);
    if (c) country = *c;
  }
  request.country = country;
  request.now_s = now_ms / 1000;
  const playback::PlaybackDecision d = authorizer_->Decide(*channel, request);
  out.http_status = d.http_status;
  out.reason = std::string(playback::DenyReasonName(d.reason));
  out.cors_origin = d.cors_origin;
  if (d.http_status == 200) {
    std::string key = d.viewer_key;
    if (key.starts_with("a:")) {
      // No token: a viewer is an address + user agent, but one address counts
      // as at most kMaxViewersPerAddress viewers, so rotating user agents
      // cannot inflate a channel's audience (and trip its alarms).
      const size_t ua = std::hash<std::string_view>{}(request.user_agent) % kMaxViewersPerAddress;
      key = "a:" + std::string(request.client_address) + ":" + std::to_string(ua);
    } else if (key.starts_with("t:")) {
      // A token without a viewer id may be shared: each address + user agent
      // playing it is a viewer of its own (a leaked token's audience counts).
      std::string who(request.client_address);
      who += '\n';
      who += request.user_agent;
      key += ':' + std::to_string(std::hash<std::string>{}(who));
    }
    viewers_.Seen(channel_id, key, now_ms);
  } else if (ShouldLogRefusal(now_ms)) {
    // The reason goes to the log and the metrics, never to the viewer. At
    // most kMaxRefusalLogsPerSecond lines a second (a flood of bad requests
    // must not flood the log; the metrics count every one).
    Log(LogLevel::kInfo, "playback refused",
        {{"channel_id", channel_id}, {"reason", out.reason}, {"status", out.http_status},
         {"client", std::string(request.client_address)}});
  }
  Count(out);
  return out;
}

PlaybackOutcome PlaybackService::AuthorizeHls(const PlaybackHttpRequest& r) {
  const auto file = ParseHlsPath(r.original_uri);
  if (!file) {
    PlaybackOutcome out;
    out.reason = "not_hls";
    Count(out);
    return out;
  }
  std::string token = r.token;
  if (token.empty()) {
    const size_t q = r.original_uri.find('?');
    if (q != std::string::npos) token = QueryValue(std::string_view(r.original_uri).substr(q + 1), "token");
  }
  playback::PlaybackRequest req;
  req.kind = file->kind;
  req.token = token;
  req.origin = r.origin;
  req.client_address = r.client_address;
  req.user_agent = r.user_agent;
  return Decide(file->channel_id, req, UnixMillisNow());
}

PlaybackOutcome PlaybackService::AuthorizeRtmpPlay(std::string_view channel_id, std::string_view token,
                                                   std::string_view client_address) {
  playback::PlaybackRequest req;
  req.kind = playback::RequestKind::kPlaylist;
  req.token = token;
  req.client_address = client_address;
  return Decide(std::string(channel_id), req, UnixMillisNow());
}

bool PlaybackService::ClaimSingleUse(std::string_view uuid, std::string_view viewer_binding, int64_t exp_s) {
  const int64_t now_s = UnixMillisNow() / 1000;
  {
    std::lock_guard lock(single_use_mutex_);
    auto it = single_use_.find(std::string(uuid));
    if (it != single_use_.end() && it->second.second > now_s) return it->second.first == viewer_binding;
  }
  auto claimed = state_.ClaimSingleUseToken(uuid, viewer_binding, exp_s, UnixMillisNow() / 1000);
  if (!claimed) {
    // Fail closed: a single-use token that cannot be recorded is not honoured.
    Log(LogLevel::kWarn, "single-use token refused: state store unavailable", {{"error", claimed.error().ToString()}});
    return false;
  }
  if (*claimed) {
    std::lock_guard lock(single_use_mutex_);
    if (single_use_.size() >= 100000) {
      std::erase_if(single_use_, [now_s](const auto& e) { return e.second.second <= now_s; });
      if (single_use_.size() >= 100000) single_use_.clear();  // bounded; the store still knows
    }
    single_use_[std::string(uuid)] = {std::string(viewer_binding), exp_s};
  }
  return *claimed;
}

bool PlaybackService::IsViewerRevoked(std::string_view channel_id, std::string_view viewer_id,
                                      int64_t session_version) {
  std::lock_guard lock(revoked_mutex_);
  auto it = revoked_.find(RevokedKey(channel_id, viewer_id));
  return it != revoked_.end() && session_version <= it->second;
}

}  // namespace earshot::server
