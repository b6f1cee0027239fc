#include "playback/playback_authorizer.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <functional>

#include "playback/origin_match.h"

namespace earshot::playback {
namespace {

constexpr size_t kMaxShards = 16;

// Lowercase hex of SHA-256(a [+ "\n" + b]), cut to `hex_digits`.
std::string Sha256Hex(std::string_view a, const std::string_view* b, size_t hex_digits) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_len = 0;
  bool ok = false;
  if (b == nullptr) {
    ok = EVP_Digest(a.data(), a.size(), md.data(), &md_len, EVP_sha256(), nullptr) == 1;
  } else {
    std::string joined;
    joined.reserve(a.size() + 1 + b->size());
    joined.append(a).push_back('\n');
    joined.append(*b);
    ok = EVP_Digest(joined.data(), joined.size(), md.data(), &md_len, EVP_sha256(), nullptr) == 1;
  }
  // SHA-256 of a memory buffer cannot fail short of OpenSSL being unusable;
  // an all-zero digest then still gives a stable (if shared) key.
  if (!ok) md_len = 32;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(hex_digits);
  for (unsigned int i = 0; i < md_len && hex.size() < hex_digits; ++i) {
    hex.push_back(kDigits[md[i] >> 4]);
    hex.push_back(kDigits[md[i] & 0xf]);
  }
  hex.resize(std::min(hex.size(), hex_digits));
  return hex;
}

std::string AddressViewerKey(const PlaybackRequest& request) {
  return "a:" + Sha256Hex(request.client_address, &request.user_agent, 16);
}

DenyReason ReasonOf(TokenFault fault) {
  switch (fault) {
    case TokenFault::kMalformed:
      return DenyReason::kTokenMalformed;
    case TokenFault::kAlgorithmNotAllowed:
      return DenyReason::kAlgorithmNotAllowed;
    case TokenFault::kUnknownKey:
      return DenyReason::kUnknownKey;
    case TokenFault::kBadSignature:
      return DenyReason::kBadSignature;
    case TokenFault::kExpInMilliseconds:
      return DenyReason::kExpInMilliseconds;
  }
  return DenyReason::kTokenMalformed;
}

bool CountryIn(std::string_view country, const std::vector<std::string>& allowed) {
  for (const std::string& code : allowed) {
    if (code.size() != country.size()) continue;
    bool same = true;
    for (size_t i = 0; i < code.size() && same; ++i) {
      const char c = country[i] >= 'a' && country[i] <= 'z'
                         ? static_cast<char>(country[i] - 'a' + 'A')
                         : country[i];
      const char k =
          code[i] >= 'a' && code[i] <= 'z' ? static_cast<char>(code[i] - 'a' + 'A') : code[i];
      same = c == k;
    }
    if (same) return true;
  }
  return false;
}

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

std::string_view DenyReasonName(DenyReason reason) {
  switch (reason) {
    case DenyReason::kNone:
      return "none";
    case DenyReason::kNoToken:
      return "no_token";
    case DenyReason::kTokenMalformed:
      return "token_malformed";
    case DenyReason::kUnknownKey:
      return "unknown_key";
    case DenyReason::kBadSignature:
      return "bad_signature";
    case DenyReason::kAlgorithmNotAllowed:
      return "algorithm_not_allowed";
    case DenyReason::kTokenExpired:
      return "token_expired";
    case DenyReason::kExpInMilliseconds:
      return "exp_in_milliseconds";
    case DenyReason::kWrongChannel:
      return "wrong_channel";
    case DenyReason::kSingleUseExpTooFar:
      return "single_use_exp_too_far";
    case DenyReason::kSingleUseReplayed:
      return "single_use_replayed";
    case DenyReason::kViewerRevoked:
      return "viewer_revoked";
    case DenyReason::kOriginNotAllowed:
      return "origin_not_allowed";
    case DenyReason::kOriginMissing:
      return "origin_missing";
    case DenyReason::kCountryNotAllowed:
      return "country_not_allowed";
    case DenyReason::kCountryUnknown:
      return "country_unknown";
  }
  return "unknown";
}

struct PlaybackAuthorizer::CachedToken {
  PlaybackClaims claims;
  std::string key_id;
  std::string key_fingerprint;
  std::string viewer_key;  // "v:..." or "t:..."
};

// One lock's share of the verified-token cache: a map from the token string
// to its verified claims, with an LRU list of the map's keys.
class PlaybackAuthorizer::Shard {
 public:
  explicit Shard(size_t capacity) : capacity_(capacity) {}

  // The entry for `token` (even expired: then it is also dropped), or null.
  std::shared_ptr<const CachedToken> Find(std::string_view token, int64_t now_s) {
    std::lock_guard lock(mutex_);
    auto it = map_.find(token);
    if (it == map_.end()) return nullptr;
    std::shared_ptr<const CachedToken> value = it->second.value;
    if (now_s >= value->claims.exp_s) {
      lru_.erase(it->second.lru);
      map_.erase(it);
    } else {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
    }
    return value;
  }

  // Inserts unless the key set changed since `generation` was read (the
  // entry might have been verified by a key that is gone now).
  void Insert(std::string_view token, std::shared_ptr<const CachedToken> value,
              const std::atomic<uint64_t>& current_generation, uint64_t generation) {
    std::lock_guard lock(mutex_);
    if (capacity_ == 0 || current_generation.load() != generation) return;
    auto [it, inserted] = map_.try_emplace(std::string(token));
    if (!inserted) {
      it->second.value = std::move(value);
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return;
    }
    it->second.value = std::move(value);
    lru_.push_front(&it->first);
    it->second.lru = lru_.begin();
    while (map_.size() > capacity_) {
      const std::string* oldest = lru_.back();
      lru_.pop_back();
      map_.erase(map_.find(*oldest));
    }
  }

  // Drops every entry verified by a key that is not in `keys`.
  void DropKeysNotIn(const KeySet& keys) {
    std::lock_guard lock(mutex_);
    for (auto it = map_.begin(); it != map_.end();) {
      const CachedToken& value = *it->second.value;
      bool present = false;
      for (const KeyEntry& entry : keys) {
        if (entry.id == value.key_id && entry.key.fingerprint() == value.key_fingerprint) {
          present = true;
          break;
        }
      }
      if (present) {
        ++it;
      } else {
        lru_.erase(it->second.lru);
        it = map_.erase(it);
      }
    }
  }

 private:
  struct Node {
    std::shared_ptr<const CachedToken> value;
    std::list<const std::string*>::iterator lru;
  };

  const size_t capacity_;
  std::mutex mutex_;
  std::unordered_map<std::string, Node, TransparentHash, std::equal_to<>> map_;
  std::list<const std::string*> lru_;  // most recently used first; points at map_ keys
};

PlaybackAuthorizer::PlaybackAuthorizer(PlaybackAuthState& state, size_t cache_capacity)
    : state_(state), keys_(std::make_shared<const KeySet>()) {
  const size_t shards = std::min(kMaxShards, cache_capacity);
  for (size_t i = 0; i < shards; ++i) {
    shards_.push_back(
        std::make_unique<Shard>(cache_capacity / shards + (i < cache_capacity % shards ? 1 : 0)));
  }
}

PlaybackAuthorizer::~PlaybackAuthorizer() = default;

std::shared_ptr<const PlaybackAuthorizer::KeySet> PlaybackAuthorizer::Keys(
    uint64_t* generation) const {
  std::lock_guard lock(keys_mutex_);
  *generation = key_generation_.load();
  return keys_;
}

void PlaybackAuthorizer::SetKeys(std::vector<KeyEntry> keys) {
  auto fresh = std::make_shared<const KeySet>(std::move(keys));
  {
    std::lock_guard lock(keys_mutex_);
    keys_ = fresh;
    key_generation_.fetch_add(1);
  }
  // After the generation moved no insert of an old verification can land, so
  // this sweep leaves no entry of a removed key behind.
  for (auto& shard : shards_) shard->DropKeysNotIn(*fresh);
}

PlaybackDecision PlaybackAuthorizer::Decide(const ChannelAccess& channel,
                                            const PlaybackRequest& request) {
  PlaybackDecision decision;
  auto deny = [&decision](DenyReason reason) {
    decision.http_status = reason == DenyReason::kNoToken ? 401 : 403;
    decision.reason = reason;
    return decision;
  };

  std::shared_ptr<const CachedToken> token;
  if (channel.is_private) {
    if (request.token.empty()) {
      decision.viewer_key = AddressViewerKey(request);
      return deny(DenyReason::kNoToken);
    }
    Shard* shard = nullptr;
    if (!shards_.empty()) {
      const size_t hash = std::hash<std::string_view>{}(request.token);
      shard = shards_[(hash >> 7) % shards_.size()].get();
      token = shard->Find(request.token, request.now_s);
    }
    if (!token) {
      uint64_t generation = 0;
      std::shared_ptr<const KeySet> keys = Keys(&generation);
      auto verified = VerifyPlaybackToken(request.token, *keys);
      if (!verified) {
        decision.viewer_key = AddressViewerKey(request);
        return deny(ReasonOf(verified.error().fault));
      }
      auto fresh = std::make_shared<CachedToken>();
      fresh->viewer_key = verified->claims.viewer_id.empty()
                              ? "t:" + Sha256Hex(request.token, nullptr, 16)
                              : "v:" + verified->claims.viewer_id;
      fresh->claims = std::move(verified->claims);
      fresh->key_id = std::move(verified->key_id);
      fresh->key_fingerprint = std::move(verified->key_fingerprint);
      token = std::move(fresh);
      if (shard != nullptr && request.now_s < token->claims.exp_s) {
        shard->Insert(request.token, token, key_generation_, generation);
      }
    }
    const PlaybackClaims& claims = token->claims;
    decision.viewer_key = token->viewer_key;
    if (request.now_s >= claims.exp_s) return deny(DenyReason::kTokenExpired);
    if (claims.channel_arn != channel.channel_arn) return deny(DenyReason::kWrongChannel);
    if (!claims.single_use_uuid.empty() && claims.exp_s - request.now_s > kMaxSingleUseLifetimeS) {
      return deny(DenyReason::kSingleUseExpTooFar);
    }
  } else {
    decision.viewer_key = AddressViewerKey(request);
  }

  // Origin.
  const control::RestrictionPolicy& policy = channel.policy;
  const bool strict =
      policy.strict_origin_enforcement || (token && token->claims.strict_origin_enforcement);
  const bool has_origin = !request.origin.empty();
  const bool origin_allowed =
      has_origin && OriginAllowed(request.origin, policy.allowed_origins) &&
      (!token || OriginAllowed(request.origin, token->claims.allowed_origins));
  if (strict) {
    if (!has_origin) return deny(DenyReason::kOriginMissing);
    if (!origin_allowed) return deny(DenyReason::kOriginNotAllowed);
  } else if (request.kind == RequestKind::kPlaylist && has_origin && !origin_allowed) {
    return deny(DenyReason::kOriginNotAllowed);
  }
  if (origin_allowed) decision.cors_origin = std::string(request.origin);

  // Country.
  if (!policy.allowed_countries.empty()) {
    if (request.country.empty()) return deny(DenyReason::kCountryUnknown);
    if (!CountryIn(request.country, policy.allowed_countries)) {
      return deny(DenyReason::kCountryNotAllowed);
    }
  }

  if (token) {
    const PlaybackClaims& claims = token->claims;
    if (!claims.viewer_id.empty() && state_.IsViewerRevoked(channel.channel_id, claims.viewer_id,
                                                            claims.viewer_session_version)) {
      return deny(DenyReason::kViewerRevoked);
    }
    // Last: a request refused for anything else must not use up the token.
    if (!claims.single_use_uuid.empty()) {
      const std::string binding = Sha256Hex(request.client_address, &request.user_agent, 64);
      if (!state_.ClaimSingleUse(claims.single_use_uuid, binding, claims.exp_s)) {
        return deny(DenyReason::kSingleUseReplayed);
      }
    }
  }
  return decision;
}

}  // namespace earshot::playback
