// The playback authorisation decision: may this request (an HLS playlist or
// segment of one channel) be served? The HTTP layer calls Decide for every
// request and answers with http_status; the core does no I/O - stored state
// (single-use tokens, revoked viewers) is behind PlaybackAuthState.
//
// Rules:
// - Public channel: no token needed; a token, if given, is ignored. Origin and
//   country rules of the channel's policy still apply.
// - Private channel: no token -> 401 kNoToken. Otherwise the token must be
//   signed by a current key (playback_token.h; "kid" selects the key), not
//   expired (now_s >= exp -> kTokenExpired, no clock skew allowed), for this
//   channel (aws:channel-arn == channel_arn), a single-use token must expire
//   within kMaxSingleUseLifetimeS of now and be unused by another viewer
//   (ClaimSingleUse with viewer_binding = hex SHA-256 of
//   client_address + "\n" + user_agent), and a token with a viewer id must not
//   be revoked for its session version. Every refusal is 403 with its reason.
// - Origin: the request's Origin must be allowed by the token's
//   aws:access-control-allow-origin (private channels) AND by the policy's
//   allowedOrigins (an empty list allows all). Strict enforcement (the token's
//   claim OR the policy's flag): every playlist and segment request must carry
//   an allowed Origin (none -> kOriginMissing). Otherwise only playlist
//   requests that carry an Origin are checked.
// - Country: when policy.allowed_countries is non-empty the request's country
//   must be in it (ASCII case-insensitive); an empty country (the address is
//   not in the GeoIP database) -> kCountryUnknown.
// Order of checks: token (signature, exp, channel, single-use window), origin,
// country, revocation, and last the single-use claim, so that a request refused
// for any other reason never uses up a single-use token.
//
// Decision fields: cors_origin is the request's Origin when present and
// allowed by both lists (whether or not this request had to be checked), else
// empty. viewer_key identifies a viewer for concurrent-viewer counts:
// "v:" + aws:viewer-id, else "t:" + 16 hex digits of SHA-256(token), else
// "a:" + 16 hex digits of SHA-256(client_address + "\n" + user_agent) (public
// channels always use "a:"). It is set on refusals too when known.
//
// Speed: a token's signature is verified once; its verified claims are cached
// by the full token string (sharded LRU, cache_capacity entries in all) until
// exp, so a warm Decide costs a hash lookup and the cheap per-request checks.
// SetKeys drops at once the cached tokens of keys it removes. Refusals are not
// cached.
//
// Thread safety: PlaybackAuthorizer's methods may be called from any threads
// at once. PlaybackAuthState implementations must be thread-safe too.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/restriction_policy.h"
#include "playback/playback_key.h"  // PlaybackPublicKey, KeyEntry {id, key}
#include "playback/playback_token.h"

namespace earshot::playback {

enum class RequestKind { kPlaylist, kSegment };

struct ChannelAccess {
  std::string channel_id;
  std::string channel_arn;
  bool is_private = false;
  control::RestrictionPolicy policy;
};

// Views are borrowed for the duration of Decide only.
struct PlaybackRequest {
  RequestKind kind = RequestKind::kPlaylist;
  std::string_view token;           // the ?token= value, empty when none
  std::string_view origin;          // the Origin header, empty when none
  std::string_view country;         // ISO alpha-2 from GeoIP, empty when unknown
  std::string_view client_address;  // the viewer's IP address
  std::string_view user_agent;
  int64_t now_s = 0;  // Unix seconds
};

enum class DenyReason {
  kNone,
  kNoToken,
  kTokenMalformed,
  kUnknownKey,
  kBadSignature,
  kAlgorithmNotAllowed,
  kTokenExpired,
  kExpInMilliseconds,
  kWrongChannel,
  kSingleUseExpTooFar,
  kSingleUseReplayed,
  kViewerRevoked,
  kOriginNotAllowed,
  kOriginMissing,
  kCountryNotAllowed,
  kCountryUnknown,
};

// "none", "no_token", "token_malformed", "unknown_key", "bad_signature",
// "algorithm_not_allowed", "token_expired", "exp_in_milliseconds",
// "wrong_channel", "single_use_exp_too_far", "single_use_replayed",
// "viewer_revoked", "origin_not_allowed", "origin_missing",
// "country_not_allowed", "country_unknown": metric labels and log values.
std::string_view DenyReasonName(DenyReason reason);

struct PlaybackDecision {
  int http_status = 200;  // 200, 401 (kNoToken) or 403
  DenyReason reason = DenyReason::kNone;
  std::string viewer_key;
  std::string cors_origin;
};

// Stored state the decision needs, implemented by the server over its store.
// Thread safety: implementations must be thread-safe.
class PlaybackAuthState {
 public:
  virtual ~PlaybackAuthState() = default;
  // True when this single-use uuid was never used, or was first used by the
  // same viewer_binding (a viewer keeps playing: playlist refreshes and
  // segments carry the same token); false when another viewer presented it
  // first. Remembers the binding until exp_s.
  virtual bool ClaimSingleUse(std::string_view uuid, std::string_view viewer_binding,
                              int64_t exp_s) = 0;
  // True when (channel_id, viewer_id) was revoked for session versions <= the
  // revoked one.
  virtual bool IsViewerRevoked(std::string_view channel_id, std::string_view viewer_id,
                               int64_t session_version) = 0;
};

class PlaybackAuthorizer {
 public:
  // `state` must outlive the authorizer. cache_capacity: verified tokens kept
  // (0 disables the cache: every request verifies its signature).
  explicit PlaybackAuthorizer(PlaybackAuthState& state, size_t cache_capacity = 100000);
  ~PlaybackAuthorizer();

  PlaybackAuthorizer(const PlaybackAuthorizer&) = delete;
  PlaybackAuthorizer& operator=(const PlaybackAuthorizer&) = delete;

  // Replaces the key set (ids should be unique; with duplicates a "kid" picks
  // the first). Cached verdicts of keys no longer present (same id and
  // fingerprint) are dropped before this returns.
  void SetKeys(std::vector<KeyEntry> keys);

  PlaybackDecision Decide(const ChannelAccess& channel, const PlaybackRequest& request);

 private:
  struct CachedToken;
  class Shard;
  using KeySet = std::vector<KeyEntry>;

  std::shared_ptr<const KeySet> Keys(uint64_t* generation) const;

  PlaybackAuthState& state_;
  mutable std::mutex keys_mutex_;
  std::shared_ptr<const KeySet> keys_;  // guarded by keys_mutex_
  std::atomic<uint64_t> key_generation_{0};
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace earshot::playback
