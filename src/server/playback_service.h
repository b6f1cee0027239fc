// Playback protection for `earshot serve`: the adapter between nginx's
// auth_request / on_play calls and the no-I/O core in src/playback.
//
// It owns the PlaybackAuthorizer (token verification with its verdict
// cache), the ViewerTracker (concurrent viewers) and the optional country
// database, and implements PlaybackAuthState over the state store: single-use
// tokens are claimed in SQLite (so a replay is refused across restarts) and
// revoked viewers are read once at start and kept in memory (every change
// goes through RevokeViewer, which writes the store first).
//
// Channels are read from the store and cached for kChannelCacheMs (or until
// InvalidateChannel): a PATCH of a channel's privacy or policy takes effect
// at once in this process.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "geoip/country_lookup.h"
#include "playback/playback_authorizer.h"
#include "playback/viewer_tracker.h"
#include "server/metrics.h"
#include "state/state_store.h"

namespace earshot::server {

struct PlaybackServiceOptions {
  size_t max_keys = 3;
  int64_t viewer_idle_ms = 60000;
  std::string geoip_database;  // "" = no country database
  // How often closed per-minute viewer maxima are written to the store.
  int64_t flush_every_ms = 5000;
};

// One HLS request as nginx's auth_request forwards it.
struct PlaybackHttpRequest {
  std::string original_uri;  // X-Original-URI: /hls/<channel>.m3u8 (the generated config
                             // sends nginx's $uri; a ?token= query is read when there
                             // is no X-Playback-Token)
  std::string token;         // X-Playback-Token ($arg_token); "" = none
  std::string client_address;  // X-Real-IP
  std::string origin;        // Origin ("" when the player sent none)
  std::string user_agent;
};

struct PlaybackOutcome {
  int http_status = 403;  // 200, 401, 403, 503 (state store down)
  std::string reason;     // DenyReasonName or "unknown_channel", "not_hls", "unavailable"
  std::string channel_id;
  std::string cors_origin;
};

// The channel id in an HLS file name ("ch-abc.m3u8", "ch-abc-12.ts") and
// whether it is a playlist; nullopt for anything else, and for any path
// that nginx could read differently from its last segment: '#', '%', '\\',
// "//" or "/." anywhere in it.
struct HlsFile {
  std::string channel_id;
  playback::RequestKind kind = playback::RequestKind::kPlaylist;
};
std::optional<HlsFile> ParseHlsPath(std::string_view path);

// The value of `name` in a URL query ("a=1&token=x" → "x"), percent-decoded;
// "" when absent.
std::string QueryValue(std::string_view query, std::string_view name);

// The channel's ARN-like id that tokens carry in aws:channel-arn.
std::string ChannelArn(std::string_view channel_id);

class PlaybackService final : public playback::PlaybackAuthState {
 public:
  // Loads the key pairs and revoked viewers, opens the country database.
  // `metrics` may be null. Errors name what failed (a damaged key in the
  // store, an unreadable .mmdb).
  static Result<std::unique_ptr<PlaybackService>> Open(state::StateStore& state, Metrics* metrics,
                                                       PlaybackServiceOptions options);
  ~PlaybackService() override;  // Stop()

  // Starts/stops the thread that stores closed viewer minutes.
  void Start();
  void Stop();

  // --- key pairs --------------------------------------------------------
  // kInvalidArgument for a PEM that is not a P-384 public key;
  // kResourceExhausted-like from the store over max_keys; kAlreadyExists.
  Result<state::PlaybackKey> ImportKey(std::string_view name, std::string_view pem);
  Result<std::vector<state::PlaybackKey>> ListKeys();
  Result<state::PlaybackKey> GetKey(std::string_view id);
  // Every token signed with it fails from now on.
  Status DeleteKey(std::string_view id);

  // --- viewers ----------------------------------------------------------
  // Tokens of (channel, viewer) with a session version <= up_to are refused.
  Status RevokeViewer(std::string_view channel_id, std::string_view viewer_id, int64_t up_to);
  int64_t ViewerCount(std::string_view channel_id);
  std::map<std::string, int64_t> ViewerCounts();
  // Writes the minutes closed by now (also called by the flush thread).
  Status FlushViewerMinutes();
  Result<std::vector<state::ViewerMinuteRecord>> ViewerMinutes(std::string_view channel_id,
                                                               int64_t from_s, int64_t to_s);

  // --- decisions --------------------------------------------------------
  PlaybackOutcome AuthorizeHls(const PlaybackHttpRequest& request);
  // RTMP on_play from a viewer: `token` from the play URL's query.
  PlaybackOutcome AuthorizeRtmpPlay(std::string_view channel_id, std::string_view token,
                                    std::string_view client_address);
  // After a channel's update or deletion.
  void InvalidateChannel(std::string_view channel_id);

  // playback::PlaybackAuthState
  bool ClaimSingleUse(std::string_view uuid, std::string_view viewer_binding, int64_t exp_s) override;
  bool IsViewerRevoked(std::string_view channel_id, std::string_view viewer_id,
                       int64_t session_version) override;

  static constexpr int64_t kChannelCacheMs = 2000;
  static constexpr int kMaxRefusalLogsPerSecond = 20;
  // Viewers without a token counted per address at most (NAT'd households
  // and offices undercount beyond this).
  static constexpr size_t kMaxViewersPerAddress = 4;

 private:
  PlaybackService(state::StateStore& state, Metrics* metrics, PlaybackServiceOptions options);
  Status ReloadKeys();
  // The channel's access data, from the cache or the store.
  Result<playback::ChannelAccess> Channel(const std::string& channel_id, int64_t now_ms);
  PlaybackOutcome Decide(const std::string& channel_id, playback::PlaybackRequest request,
                         int64_t now_ms);
  void Count(const PlaybackOutcome& outcome);
  bool ShouldLogRefusal(int64_t now_ms);

  state::StateStore& state_;
  Metrics* metrics_;
  PlaybackServiceOptions options_;
  std::unique_ptr<geoip::CountryLookup> countries_;
  std::unique_ptr<playback::PlaybackAuthorizer> authorizer_;
  playback::ViewerTracker viewers_;

  struct CachedChannel {
    playback::ChannelAccess access;
    int64_t fetched_ms = 0;
  };
  std::mutex channels_mutex_;
  std::unordered_map<std::string, CachedChannel> channels_;  // GUARDED_BY(channels_mutex_)

  std::mutex revoked_mutex_;
  // "channel\nviewer" -> highest revoked session version. GUARDED_BY(revoked_mutex_)
  std::unordered_map<std::string, int64_t> revoked_;

  std::mutex log_mutex_;
  int64_t log_second_ = 0;       // GUARDED_BY(log_mutex_)
  int logged_this_second_ = 0;   // GUARDED_BY(log_mutex_)

  std::mutex keys_mutex_;  // serialises key imports/deletes with ReloadKeys

  // Single-use claims already made by this process: uuid -> (binding, exp_s),
  // so a viewer's every segment does not write SQLite. GUARDED_BY(single_use_mutex_)
  std::mutex single_use_mutex_;
  std::unordered_map<std::string, std::pair<std::string, int64_t>> single_use_;

  std::mutex flush_mutex_;
  std::condition_variable flush_cv_;
  bool stopping_ = false;  // GUARDED_BY(flush_mutex_)
  std::thread flusher_;
};

}  // namespace earshot::server
