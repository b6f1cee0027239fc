#!/usr/bin/env bash
# Installs what earshot needs to build, test and run its demo on Debian 12.
# Why each package is there: see README.md, "Dependencies".
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config python3
  # libraries
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev
  libfftw3-dev libsqlite3-dev libssl-dev nlohmann-json3-dev libcli11-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # test and demo material: the ffmpeg CLI makes degraded excerpts; real music from Debian
  ffmpeg wesnoth-1.16-music
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
