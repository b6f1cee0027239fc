// ResultSink that PUTs each result file into an S3 bucket (AWS S3 or any
// S3-compatible store: MinIO, Ceph RGW, Garage, s3rver), signed with SigV4.
//
// Spec (see target_spec.h):
//   s3:endpoint=http://127.0.0.1:9000,bucket=results[,prefix=prod/earshot]
//      [,region=us-east-1][,addressing=path|virtual]
//      [,access_key_env=AWS_ACCESS_KEY_ID][,secret_key_env=AWS_SECRET_ACCESS_KEY]
//      [,timeout_ms=30000]
//   endpoint        http:// or https:// host[:port], no path (required)
//   bucket          3-63 characters: a-z 0-9 . - (required)
//   prefix          key prefix, leading/trailing '/' ignored (default: none)
//   region          SigV4 region (default us-east-1; MinIO and s3rver accept any)
//   addressing      path:    {endpoint}/{bucket}/{key}       (default; MinIO, s3rver)
//                   virtual: {scheme}://{bucket}.{host}/{key} (AWS)
//   access_key_env  environment variable holding the access key id
//   secret_key_env  environment variable holding the secret access key
//   timeout_ms      whole-request timeout in milliseconds, 1..600000 (default 30000);
//                   the connect timeout is min(5000, timeout_ms)
//
// Object key: "{prefix}/{stream_id}/{name}", or "{stream_id}/{name}" without
// a prefix. Each Put is one PUT Object request (single chunk, payload hash
// signed) and nothing else: retries belong to the outbox.
//
// Outcomes of Put:
//   ok                   2xx: the store has the object
//   kUnavailable         transport failure (refused, reset, timeout), 5xx,
//                        408, 429, 503 SlowDown: try again later
//   kFailedPrecondition  403 (bad access key or secret, clock skew), 404
//                        NoSuchBucket, 301/400 (wrong region or endpoint) and
//                        any other answer: a configuration problem; the
//                        message carries the S3 error code and message and
//                        what to check
//   kInvalidArgument     a result file name that cannot be a key segment
// Messages name the endpoint, bucket and key, never the secret.
//
// Thread safety: an S3Sink is immutable after construction; Put may be called
// from several threads at once (each call uses its own HTTP handle).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/error.h"
#include "delivery/http_client.h"
#include "delivery/sigv4.h"
#include "delivery/sink.h"
#include "delivery/target_spec.h"

namespace earshot::delivery {

struct S3SinkOptions {
  std::string scheme;         // "http" or "https"
  std::string host;           // "127.0.0.1", "s3.eu-west-1.amazonaws.com"
  int port = 0;               // 0: the scheme's default port
  std::string bucket;
  std::string prefix;         // without leading or trailing '/'; may be empty
  std::string region = "us-east-1";
  bool virtual_hosted = false;  // true: bucket in the host name
  SigV4Credentials credentials;
  std::string access_key_env;   // where the credentials came from, for messages only
  std::string secret_key_env;
  int timeout_ms = 30000;       // whole request
};

class S3Sink final : public ResultSink {
 public:
  explicit S3Sink(S3SinkOptions options);

  const std::string& name() const override { return name_; }
  Status Put(const ResultFile& file) override;

  // The object key `file` is stored under (no leading '/').
  std::string ObjectKey(const ResultFile& file) const;

  // The fully signed PUT request Put() sends for `file` at time `now` (UTC).
  // Pure: no clock, no network. kInvalidArgument for a file name that
  // cannot be a key segment (empty, ".", "..", containing '/' or a control
  // character).
  Result<HttpRequest> SignedPutRequest(const ResultFile& file, std::chrono::sys_seconds now) const;

  const S3SinkOptions& options() const { return options_; }

 private:
  std::string name_ = "s3";
  S3SinkOptions options_;
  std::string authority_;  // host[:port] as sent in Host (default port omitted)
};

// Builds an S3Sink from a spec of kind "s3" (keys above); reads the
// credentials from the environment once, now (the sink keeps them in memory
// for its lifetime; rotating them means making a new sink), and initialises
// the HTTP client. kInvalidArgument naming the key for an unknown or
// malformed option or an unset variable. Call during start-up, before other
// threads use the HTTP client.
Result<std::unique_ptr<ResultSink>> MakeS3Sink(const TargetSpec& spec);

// What an S3 answer means for one attempt (see "Outcomes of Put" above).
// `what` names the request for messages ("s3: PUT http://h/bucket/key");
// the bucket and the credential variable names in `options` go into the
// hints (never the credentials). Pure; exposed for tests.
Status S3ResponseStatus(const HttpResponse& response, const std::string& what,
                        const S3SinkOptions& options);

// The <Code> and <Message> of an S3 XML error body ("" when absent), entity-
// decoded and cut to a printable line of at most 300 bytes.
struct S3ErrorBody {
  std::string code;
  std::string message;
};
S3ErrorBody ParseS3ErrorBody(std::string_view xml);

}  // namespace earshot::delivery
