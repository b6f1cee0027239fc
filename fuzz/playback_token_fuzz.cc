// Fuzz target for playback tokens: the base64url decoder, the strict JWT
// decoder (jwt.h), the claims parser (playback_token.h), ES384 verification,
// origin matching and a whole Decide on a private channel with a fixed key.
//
// Invariants checked (a violation aborts, which the fuzzer reports):
// - base64url decoding is canonical: Encode(Decode(x)) == x;
// - a Decide that allows a private-channel request had a token that verifies;
// - every decision is 200, 401 or 403 and a refusal names a reason.
//
// Build and run: scripts/fuzz-playback-token.sh (clang++-14 libFuzzer +
// ASan/UBSan). With EARSHOT_FUZZ_REPLAY_MAIN (g++ builds, CMake option
// EARSHOT_BUILD_FUZZ) a small main replays the files named as arguments.
//
// The key below is a throw-away test key (its private half is in the script
// to mint seed tokens); it protects nothing.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "playback/jwt.h"
#include "playback/origin_match.h"
#include "playback/playback_authorizer.h"
#include "playback/playback_key.h"
#include "playback/playback_token.h"

namespace {

using earshot::playback::PlaybackAuthorizer;

constexpr std::string_view kFuzzPublicKeyPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE0waIhU6QbbFs/nxDkDxOTQ9shvl0mib9\n"
    "89ZRdjQahqV91hUFWAjLOs0sP6W0It2DPPyfgBldduEX4zcw/MWGB1CI8YNMyO7b\n"
    "HvfvuRJRT//0bhxTHXauDgfFa/MtZgcU\n"
    "-----END PUBLIC KEY-----\n";
constexpr int64_t kNow = 1'800'000'000;  // the seed tokens expire after this

// Bounded in-memory state (the fuzzer runs millions of inputs).
class FuzzState final : public earshot::playback::PlaybackAuthState {
 public:
  bool ClaimSingleUse(std::string_view uuid, std::string_view binding, int64_t) override {
    std::lock_guard lock(mutex_);
    if (claims_.size() > 1000) claims_.clear();
    auto [it, inserted] = claims_.try_emplace(std::string(uuid), std::string(binding));
    return inserted || it->second == binding;
  }
  bool IsViewerRevoked(std::string_view, std::string_view viewer_id, int64_t version) override {
    return viewer_id == "revoked" && version <= 1;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> claims_;
};

struct Fixture {
  FuzzState state;
  PlaybackAuthorizer authorizer{state, 64};
  std::vector<earshot::playback::KeyEntry> keys;
  earshot::playback::ChannelAccess channel;

  Fixture() {
    auto key = earshot::playback::PlaybackPublicKey::FromPem(kFuzzPublicKeyPem);
    if (!key) std::abort();
    keys.push_back({"fuzz-key", *key});
    authorizer.SetKeys(keys);
    channel.channel_id = "ch-fuzz";
    channel.channel_arn = "arn:aws:ivs:us-west-2:123456789012:channel/fuzz";
    channel.is_private = true;
    channel.policy.allowed_origins = {"https://*.example.com", "http://localhost:8080"};
  }
};

Fixture& GetFixture() {
  static Fixture* fixture = new Fixture();  // never destroyed: outlives every input
  return *fixture;
}

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  Fixture& fixture = GetFixture();

  if (auto decoded = earshot::playback::Base64UrlDecode(input)) {
    Check(earshot::playback::Base64UrlEncode(*decoded) == input);
  }

  // The whole input as a token, then the claims of whatever decodes.
  if (auto jwt = earshot::playback::DecodeJwt(input)) {
    auto claims = earshot::playback::ParsePlaybackClaims(jwt->payload);
    if (claims) {
      for (const std::string& pattern : claims->allowed_origins) {
        static_cast<void>(earshot::playback::OriginMatches("https://a.example.com", pattern));
      }
    }
  }

  // Origin matching: "origin\npattern".
  if (const size_t nl = input.find('\n'); nl != std::string_view::npos) {
    const std::string_view origin = input.substr(0, nl);
    const std::string_view pattern = input.substr(nl + 1);
    const bool match = earshot::playback::OriginMatches(origin, pattern);
    if (pattern == "*") Check(match);
  }

  // A decision on a private channel, for a playlist and a segment.
  for (auto kind :
       {earshot::playback::RequestKind::kPlaylist, earshot::playback::RequestKind::kSegment}) {
    earshot::playback::PlaybackRequest request;
    request.kind = kind;
    request.token = input;
    request.origin = "https://www.example.com";
    request.country = "FR";
    request.client_address = "127.0.0.1";
    request.user_agent = "fuzz";
    request.now_s = kNow;
    const auto decision = fixture.authorizer.Decide(fixture.channel, request);
    Check(decision.http_status == 200 || decision.http_status == 401 ||
          decision.http_status == 403);
    Check((decision.http_status == 200) ==
          (decision.reason == earshot::playback::DenyReason::kNone));
    Check(!decision.viewer_key.empty());
    if (decision.http_status == 200) {
      Check(earshot::playback::VerifyPlaybackToken(input, fixture.keys).has_value());
    }
  }
  return 0;
}

#ifdef EARSHOT_FUZZ_REPLAY_MAIN
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

// Replays each file named on the command line through the fuzz target.
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::cerr << "playback_token_fuzz: cannot read " << argv[i] << "\n";
      return 2;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::cout << "playback_token_fuzz: replayed " << (argc - 1) << " inputs\n";
  return 0;
}
#endif
