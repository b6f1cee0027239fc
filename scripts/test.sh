#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   installs dependencies, builds the release binary (build/earshot) and the
#   sanitizer build, runs every test in the release build, the playback token
#   fuzzer for a bounded time, and the unit tests again under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== release build"
bash scripts/build.sh release
echo "== tests (release): everything but the end-to-end tests"
ctest --test-dir build --output-on-failure -j "$(nproc)" -LE e2e --timeout 600
# The end-to-end tests spend most of their time waiting on real-time streams
# and servers (four at a time used about one core in all here), so twice as
# many run at once.
echo "== tests (release): end-to-end"
ctest --test-dir build --output-on-failure -j "$(( 2 * $(nproc) ))" -L e2e --timeout 600
echo "== playback token fuzzer (libFuzzer + ASan + UBSan, clang 14, 25 s)"
bash scripts/fuzz-playback-token.sh 25
echo "== sanitizer build (ASan + UBSan), unit tests only"
bash scripts/build.sh asan unit_tests
echo "== unit tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$(nproc)" -L unit --timeout 900
