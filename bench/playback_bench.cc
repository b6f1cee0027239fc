// Speed of the playback authorisation decision (playback/playback_authorizer.h).
//   BM_DecideWarmCache    a private channel, token verified before (cache hit):
//                         the per-request path every playlist/segment takes
//   BM_DecideColdVerify   the same with the cache off: one ES384 verification
//                         (and JWT decoding) per decision
//   BM_DecidePublic       a public channel (no token): the baseline
// Each reports items/s = decisions per second on one thread. Target: warm
// >= 20,000/s per core.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "playback/playback_authorizer.h"
#include "token_minter.h"

namespace earshot::playback {
namespace {

constexpr int64_t kNow = 1'800'000'000;

class NullState final : public PlaybackAuthState {
 public:
  bool ClaimSingleUse(std::string_view, std::string_view, int64_t) override { return true; }
  bool IsViewerRevoked(std::string_view, std::string_view, int64_t) override { return false; }
};

struct Setup {
  testing::TestKeyPair pair = testing::TestKeyPair::P384();
  NullState state;
  ChannelAccess channel;
  std::string token;

  Setup() {
    channel.channel_id = "ch-1";
    channel.channel_arn = "arn:aws:ivs:eu-west-1:123456789012:channel/abc";
    channel.is_private = true;
    channel.policy.allowed_origins = {"https://example.com", "https://*.example.org"};
    channel.policy.allowed_countries = {"FR", "BE", "DE"};
    const nlohmann::json claims = {{"aws:channel-arn", channel.channel_arn},
                                   {"exp", kNow + 3600},
                                   {"aws:access-control-allow-origin", "https://*.example.org"},
                                   {"aws:viewer-id", "viewer-123"},
                                   {"aws:viewer-session-version", 1}};
    token = testing::MintToken(pair, testing::Es384Header("k1"), claims.dump());
  }
  std::vector<KeyEntry> Keys() const {
    return {{"k1", *PlaybackPublicKey::FromPem(pair.PublicPem())}};
  }
  PlaybackRequest Request(std::string_view with_token) const {
    PlaybackRequest request;
    request.kind = RequestKind::kSegment;
    request.token = with_token;
    request.origin = "https://player.example.org";
    request.country = "FR";
    request.client_address = "203.0.113.7";
    request.user_agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0";
    request.now_s = kNow;
    return request;
  }
};

void Run(benchmark::State& bench, PlaybackAuthorizer& authorizer, const ChannelAccess& channel,
         const PlaybackRequest& request) {
  for (auto _ : bench) {
    PlaybackDecision decision = authorizer.Decide(channel, request);
    if (decision.http_status != 200) {
      bench.SkipWithError("decision was not 200");
      break;
    }
    benchmark::DoNotOptimize(decision);
  }
  bench.SetItemsProcessed(bench.iterations());
}

void BM_DecideWarmCache(benchmark::State& bench) {
  Setup setup;
  PlaybackAuthorizer authorizer(setup.state);
  authorizer.SetKeys(setup.Keys());
  const PlaybackRequest request = setup.Request(setup.token);
  authorizer.Decide(setup.channel, request);  // warm
  Run(bench, authorizer, setup.channel, request);
}
BENCHMARK(BM_DecideWarmCache);

void BM_DecideColdVerify(benchmark::State& bench) {
  Setup setup;
  PlaybackAuthorizer authorizer(setup.state, /*cache_capacity=*/0);
  authorizer.SetKeys(setup.Keys());
  Run(bench, authorizer, setup.channel, setup.Request(setup.token));
}
BENCHMARK(BM_DecideColdVerify);

void BM_DecidePublic(benchmark::State& bench) {
  Setup setup;
  setup.channel.is_private = false;
  PlaybackAuthorizer authorizer(setup.state);
  Run(bench, authorizer, setup.channel, setup.Request(""));
}
BENCHMARK(BM_DecidePublic);

}  // namespace
}  // namespace earshot::playback

BENCHMARK_MAIN();
