#!/usr/bin/env bash
# Builds the playback token fuzzer (fuzz/playback_token_fuzz.cc) with clang++-14
# and libFuzzer + ASan + UBSan, outside the main (g++) build, and runs it for a
# bounded time on a small seed corpus this script writes.
#
#   scripts/fuzz-playback-token.sh [SECONDS]     (default 60)
#
# Output: build/fuzz/ (objects, binary, corpus/, crash files). Exit status: 0
# when the run ends without a finding, non-zero when the fuzzer found a crash,
# leak or sanitizer error (the reproducer is in build/fuzz/), 2 on a setup
# problem (no clang++-14, openssl or python3).
#
# clang 14 and libstdc++ 12: earshot's Result<T> is std::expected, and
# libstdc++ 12 only defines std::expected when __cpp_concepts >= 202002L, which
# clang 14 does not claim (it lacks P0848, conditionally trivial special
# members, so forcing the macro fails too). The script therefore puts a small
# stand-in <expected> (build/fuzz/shim/expected, written below, used only when
# the real header defines nothing) first on the include path. The product code
# is compiled unchanged.
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
if ! [[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || [ "$SECONDS_TO_RUN" -lt 1 ]; then
  echo "usage: $0 [SECONDS] (a positive number of seconds; default 60)" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build/fuzz"
CXX="${CXX_FUZZ:-clang++-14}"
for tool in "$CXX" openssl python3; do
  if ! command -v "$tool" > /dev/null; then
    echo "fuzz-playback-token: '$tool' is not installed (apt-get install clang-14 openssl python3)" >&2
    exit 2
  fi
done
mkdir -p "$OUT/shim" "$OUT/obj" "$OUT/corpus" "$OUT/artifacts"

# --- the stand-in <expected> ---------------------------------------------------
cat > "$OUT/shim/expected" <<'EOF'
// Fuzz-build stand-in for <expected> (written by scripts/fuzz-playback-token.sh):
// clang 14 cannot use libstdc++ 12's std::expected. Only what earshot uses.
#pragma once
#include_next <expected>
#if !defined(__cpp_lib_expected)
#include <type_traits>
#include <utility>
#include <variant>
namespace std {
template <class E>
class unexpected {
 public:
  template <class G = E>
    requires(!is_same_v<remove_cvref_t<G>, unexpected> && is_constructible_v<E, G>)
  constexpr explicit unexpected(G&& e) : e_(std::forward<G>(e)) {}
  constexpr const E& error() const& noexcept { return e_; }
  constexpr E& error() & noexcept { return e_; }
  constexpr E&& error() && noexcept { return std::move(e_); }
 private:
  E e_;
};
template <class E>
unexpected(E) -> unexpected<E>;

template <class T> struct __earshot_is_unexpected : false_type {};
template <class E> struct __earshot_is_unexpected<unexpected<E>> : true_type {};

template <class T, class E>
class expected {
 public:
  using value_type = T;
  using error_type = E;
  constexpr expected() : v_(in_place_index<0>) {}
  template <class U = T>
    requires(!is_same_v<remove_cvref_t<U>, expected> &&
             !__earshot_is_unexpected<remove_cvref_t<U>>::value &&
             !is_same_v<remove_cvref_t<U>, in_place_t> && is_constructible_v<T, U>)
  constexpr explicit(!is_convertible_v<U, T>) expected(U&& v)
      : v_(in_place_index<0>, std::forward<U>(v)) {}
  template <class G>
  constexpr expected(const unexpected<G>& u) : v_(in_place_index<1>, u.error()) {}
  template <class G>
  constexpr expected(unexpected<G>&& u) : v_(in_place_index<1>, std::move(u).error()) {}
  constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr T& operator*() & { return *get_if<0>(&v_); }
  constexpr const T& operator*() const& { return *get_if<0>(&v_); }
  constexpr T&& operator*() && { return std::move(*get_if<0>(&v_)); }
  constexpr T* operator->() { return get_if<0>(&v_); }
  constexpr const T* operator->() const { return get_if<0>(&v_); }
  constexpr T& value() & { return get<0>(v_); }
  constexpr const T& value() const& { return get<0>(v_); }
  constexpr E& error() & { return *get_if<1>(&v_); }
  constexpr const E& error() const& { return *get_if<1>(&v_); }
  constexpr E&& error() && { return std::move(*get_if<1>(&v_)); }
 private:
  variant<T, E> v_;
};

template <class E>
class expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;
  constexpr expected() : v_(in_place_index<0>) {}
  template <class G>
  constexpr expected(const unexpected<G>& u) : v_(in_place_index<1>, u.error()) {}
  template <class G>
  constexpr expected(unexpected<G>&& u) : v_(in_place_index<1>, std::move(u).error()) {}
  constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr void operator*() const noexcept {}
  constexpr E& error() & { return *get_if<1>(&v_); }
  constexpr const E& error() const& { return *get_if<1>(&v_); }
  constexpr E&& error() && { return std::move(*get_if<1>(&v_)); }
 private:
  variant<monostate, E> v_;
};
}  // namespace std
#endif
EOF

# --- compile -----------------------------------------------------------------
SOURCES=(
  src/common/error.cc
  src/control/restriction_policy.cc
  src/playback/jwt.cc
  src/playback/origin_match.cc
  src/playback/playback_authorizer.cc
  src/playback/playback_key.cc
  src/playback/playback_token.cc
  fuzz/playback_token_fuzz.cc
)
FLAGS=(-std=c++2b -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$OUT/shim" -I"$ROOT/src" -Wall -Wextra)
OBJECTS=()
for src in "${SOURCES[@]}"; do
  obj="$OUT/obj/$(echo "$src" | tr '/' '_').o"
  # Recompile when the source or any header it might include changed.
  if [ ! -f "$obj" ] || [ -n "$(find "$ROOT/$src" "$ROOT/src/common" "$ROOT/src/control" \
        "$ROOT/src/playback" "$OUT/shim" -newer "$obj" -name '*.[hc]*' -print -quit)" ] ||
     [ "$ROOT/$src" -nt "$obj" ] || [ "$0" -nt "$obj" ]; then
    echo "fuzz-playback-token: compiling $src" >&2
    if [ "$src" = fuzz/playback_token_fuzz.cc ]; then
      "$CXX" "${FLAGS[@]}" -c "$ROOT/$src" -o "$obj"
    else
      # Only the fuzz target gets libFuzzer's main; the rest gets coverage.
      "$CXX" "${FLAGS[@]/-fsanitize=fuzzer,address,undefined/-fsanitize=fuzzer-no-link,address,undefined}" \
        -c "$ROOT/$src" -o "$obj"
    fi
  fi
  OBJECTS+=("$obj")
done
"$CXX" -fsanitize=fuzzer,address,undefined "${OBJECTS[@]}" -lcrypto -o "$OUT/playback_token_fuzz"

# --- seed corpus -----------------------------------------------------------------
# The throw-away P-384 key whose public half is compiled into the fuzz target.
# It protects nothing: it only lets the script mint tokens that verify.
KEY="$OUT/fuzz_key.pem"
cat > "$KEY" <<'EOF'
-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDD/JrCICTyp9r3ux6X/
dl66Dg0+cpT3R8X/4VzPjenwcuBOL+2YBy3oGFwFUgQewr+hZANiAATTBoiFTpBt
sWz+fEOQPE5ND2yG+XSaJv3z1lF2NBqGpX3WFQVYCMs6zSw/pbQi3YM8/J+AGV12
4RfjNzD8xYYHUIjxg0zI7tse9++5ElFP//RuHFMddq4OB8Vr8y1mBxQ=
-----END PRIVATE KEY-----
EOF
# Mints an ES384 token (raw r||s) over header JSON $1 and payload JSON $2.
mint() {
  python3 - "$KEY" "$1" "$2" <<'EOF'
import base64, subprocess, sys
key, header, payload = sys.argv[1:4]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
signing_input = b64(header.encode()) + "." + b64(payload.encode())
der = subprocess.run(["openssl", "dgst", "-sha384", "-sign", key, "-binary"],
                     input=signing_input.encode(), capture_output=True, check=True).stdout
# DER ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s } -> 48-byte r || 48-byte s.
def read_int(buf, i):
    assert buf[i] == 0x02
    n = buf[i + 1]
    return int.from_bytes(buf[i + 2:i + 2 + n], "big"), i + 2 + n
i = 2 if der[1] < 0x80 else 3
r, i = read_int(der, i)
s, _ = read_int(der, i)
print(signing_input + "." + b64(r.to_bytes(48, "big") + s.to_bytes(48, "big")), end="")
EOF
}
ARN="arn:aws:ivs:us-west-2:123456789012:channel/fuzz"
HEADER='{"alg":"ES384","typ":"JWT","kid":"fuzz-key"}'
mint "$HEADER" "{\"aws:channel-arn\":\"$ARN\",\"exp\":1800003600}" > "$OUT/corpus/valid"
mint '{"alg":"ES384","typ":"JWT"}' "{\"aws:channel-arn\":\"$ARN\",\"exp\":1800000300,\"aws:access-control-allow-origin\":\"https://*.example.com,http://localhost:8080\",\"aws:strict-origin-enforcement\":true,\"aws:single-use-uuid\":\"c0ffee00-0000-4000-8000-000000000001\",\"aws:viewer-id\":\"viewer-1\",\"aws:viewer-session-version\":2,\"aws:maximum-resolution\":\"HD\"}" \
  > "$OUT/corpus/valid_all_claims"
python3 - "$OUT/corpus" "$ARN" <<'EOF'
import base64, sys
out, arn = sys.argv[1:3]
b64 = lambda s: base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()
payload = '{"aws:channel-arn":"%s","exp":1800003600}' % arn
open(out + "/alg_none", "w").write(b64('{"alg":"none"}') + "." + b64(payload) + ".")
open(out + "/exp_ms", "w").write(b64('{"alg":"ES384"}') + "." +
                                  b64('{"aws:channel-arn":"%s","exp":1800003600000}' % arn) + ".AAAA")
open(out + "/origin_pair", "w").write("https://a.example.com\nhttps://*.example.com")
EOF

# --- run -------------------------------------------------------------------------
echo "fuzz-playback-token: running for ${SECONDS_TO_RUN}s (corpus $OUT/corpus)" >&2
cd "$OUT"
set +e
./playback_token_fuzz -max_total_time="$SECONDS_TO_RUN" -max_len=9000 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 corpus/
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "fuzz-playback-token: the fuzzer found a problem (exit $status); reproducer in $OUT/artifacts/:" >&2
  ls -1 "$OUT/artifacts/" >&2 || true
  echo "replay with: $OUT/playback_token_fuzz <file>" >&2
fi
exit "$status"
