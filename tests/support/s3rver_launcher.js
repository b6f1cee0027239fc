// Starts @20minutes/s3rver (an S3-compatible server that verifies SigV4
// signatures) for earshot's tests; driven by tests/support/s3rver.cc.
//
//   node s3rver_launcher.js TOOLS_DIR DATA_DIR PORT BUCKET
//
// TOOLS_DIR  where scripts/install-test-tools.sh put node_modules/ (build-tools/)
// DATA_DIR   s3rver's filesystem store (one folder per bucket)
// PORT       TCP port on 127.0.0.1; 0 picks a free one
// BUCKET     bucket created at start (kept if DATA_DIR already has it)
// Credentials come from the environment, not argv (ps shows argv):
//   S3RVER_TEST_ACCESS_KEY, S3RVER_TEST_SECRET_KEY — they replace s3rver's
//   built-in S3RVER/S3RVER pair, so only they sign valid requests.
//
// Prints "s3rver listening on 127.0.0.1:PORT" once it accepts connections.
// Listens on 127.0.0.1 only. Exits by itself after S3RVER_TEST_MAX_SECONDS
// (default 900) in case the test that started it died without stopping it.
'use strict';

const path = require('path');

const [toolsDir, dataDir, portText, bucket] = process.argv.slice(2);
const accessKey = process.env.S3RVER_TEST_ACCESS_KEY;
const secretKey = process.env.S3RVER_TEST_SECRET_KEY;
if (!toolsDir || !dataDir || !portText || !bucket || !accessKey || !secretKey) {
  console.error('usage: S3RVER_TEST_ACCESS_KEY=.. S3RVER_TEST_SECRET_KEY=.. ' +
                'node s3rver_launcher.js TOOLS_DIR DATA_DIR PORT BUCKET');
  process.exit(2);
}

const packageDir = path.join(toolsDir, 'node_modules', '@20minutes', 's3rver');
const S3rver = require(path.join(packageDir, 'lib', 's3rver.js'));
const AWSAccount = require(path.join(packageDir, 'lib', 'models', 'account.js'));

AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKey, secretKey);

const maxSeconds = Number(process.env.S3RVER_TEST_MAX_SECONDS || 900);
setTimeout(() => {
  console.error(`s3rver_launcher: still running after ${maxSeconds} s; exiting`);
  process.exit(3);
}, maxSeconds * 1000);

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(portText),
  directory: dataDir,
  silent: false,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket }],
});
server.run().then(
  ({ address, port }) => console.log(`s3rver listening on ${address}:${port}`),
  (err) => {
    console.error(`s3rver_launcher: cannot start: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
