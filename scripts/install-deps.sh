#!/usr/bin/env bash
# Installs what earshot needs to build, test and run its demo on Debian 12.
# Why each package is there: see README.md, "Dependencies".
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config python3
  # libraries
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev libswscale-dev
  libfftw3-dev libsqlite3-dev libssl-dev nlohmann-json3-dev libcli11-dev libcurl4-openssl-dev
  libcpp-httplib-dev libtomlplusplus-dev libmaxminddb-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # playback tests: a test GeoIP database is written with MaxMind's Perl writer; the
  # token fuzzer needs clang's libFuzzer; wrk loads nginx in the playback benchmark
  libmaxmind-db-writer-perl clang-14 wrk
  # test and demo material: the ffmpeg CLI makes degraded excerpts and publishes
  # streams; real music from Debian; espeak-ng speaks over it
  ffmpeg wesnoth-1.16-music espeak-ng
  # real servers for end-to-end tests: nginx with the RTMP module, an SMTP
  # server (aiosmtpd), openssl for its test certificate, JSON Schema validation
  nginx libnginx-mod-rtmp python3-aiosmtpd python3-jsonschema openssl
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The S3 test server runs on node (>= 20) with npm; take Debian's only when
# there is no node at all.
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # (A system nginx that the package may start is not used: tests start their
  # own on 127.0.0.1 with free ports.)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi
# Test-only tools from npm (the S3-compatible server): build-tools/.
bash "$(dirname "$0")/install-test-tools.sh"
