#!/usr/bin/env bash
# Installs the test-only tools that do not come from Debian into build-tools/
# at the repository root (git-ignored through /build*/). Idempotent: when the
# pinned versions are already there it only says so.
#
#   @20minutes/s3rver  an S3-compatible server that verifies SigV4 signatures,
#                      used by tests/delivery/s3_sink_test.cc (and any test
#                      needing S3) through tests/support/s3rver.{h,cc}.
#
# Needs: node >= 20 and npm on PATH (Debian 12's own nodejs is 18: use a
# newer node), and the npm registry on the first run. EARSHOT_TEST_TOOLS_DIR
# installs elsewhere (the test fixtures read the same variable).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
TOOLS="${EARSHOT_TEST_TOOLS_DIR:-$ROOT/build-tools}"
S3RVER_VERSION="4.0.4"   # pinned: 5.x needs node >= 24; 4.x ships lib/ only (no bin/)
S3RVER_PKG="$TOOLS/node_modules/@20minutes/s3rver/package.json"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-test-tools: '$tool' is not on PATH; install node >= 20 and npm first" >&2
    exit 1
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "install-test-tools: node $(node --version) is too old; @20minutes/s3rver $S3RVER_VERSION needs node >= 20" >&2
  exit 1
fi

installed=""
if [ -f "$S3RVER_PKG" ]; then
  installed="$(node -p "require('$S3RVER_PKG').version" 2>/dev/null || true)"
fi
if [ "$installed" = "$S3RVER_VERSION" ]; then
  echo "install-test-tools: @20minutes/s3rver $S3RVER_VERSION already in $TOOLS"
  exit 0
fi

echo "install-test-tools: installing @20minutes/s3rver@$S3RVER_VERSION into $TOOLS (npm)"
mkdir -p "$TOOLS"
npm install --prefix "$TOOLS" --save-exact --no-audit --no-fund --omit=dev --loglevel=error \
  "@20minutes/s3rver@$S3RVER_VERSION" >/dev/null
if [ ! -f "$TOOLS/node_modules/@20minutes/s3rver/lib/s3rver.js" ]; then
  echo "install-test-tools: npm finished but $TOOLS/node_modules/@20minutes/s3rver/lib/s3rver.js is missing" >&2
  exit 1
fi
echo "install-test-tools: done: @20minutes/s3rver $S3RVER_VERSION in $TOOLS"
