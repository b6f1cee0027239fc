// The S3 sink against a real S3-compatible server: @20minutes/s3rver, which
// verifies SigV4 signatures, started on 127.0.0.1 for each test by
// tests/support/s3rver.h. Without it (scripts/install-test-tools.sh not run)
// these tests fail and say so; they never skip.
//
// Every network address here is 127.0.0.1.
#include "delivery/s3_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "delivery/sigv4.h"
#include "delivery/target_spec.h"
#include "support/s3rver.h"

namespace earshot::delivery {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kAccessEnv = "EARSHOT_TEST_S3_ACCESS_KEY";
constexpr const char* kSecretEnv = "EARSHOT_TEST_S3_SECRET_KEY";

Result<std::unique_ptr<ResultSink>> MakeSinkFromText(const std::string& text) {
  Result<TargetSpec> spec = ParseTargetSpec(text);
  if (!spec) return std::unexpected(spec.error());
  return MakeS3Sink(*spec);
}

ResultFile File(std::string stream_id, std::string name, std::string body) {
  return ResultFile{std::move(stream_id), std::move(name), "application/json", std::move(body)};
}

std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  if (in) bytes << in.rdbuf();
  return bytes.str();
}

class S3SinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<testing::S3rver>> server = testing::S3rver::Start();
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
    ::setenv(kAccessEnv, server_->options().access_key.c_str(), 1);
    ::setenv(kSecretEnv, server_->options().secret_key.c_str(), 1);
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << "s3rver log (tail):\n" << server_->LogTail() << "\n";
    ::unsetenv(kAccessEnv);
    ::unsetenv(kSecretEnv);
  }

  // "s3:endpoint=...,bucket=...,access_key_env=...,secret_key_env=..." + extra.
  std::string Spec(const std::string& extra = "", const std::string& bucket = "") const {
    std::string text = "s3:endpoint=" + server_->endpoint() +
                       ",bucket=" + (bucket.empty() ? server_->options().bucket : bucket) +
                       ",access_key_env=" + kAccessEnv + ",secret_key_env=" + kSecretEnv;
    if (!extra.empty()) text += "," + extra;
    return text;
  }

  std::unique_ptr<ResultSink> Sink(const std::string& extra = "") const {
    Result<std::unique_ptr<ResultSink>> sink = MakeSinkFromText(Spec(extra));
    EXPECT_TRUE(sink) << sink.error().ToString();
    return sink ? std::move(*sink) : nullptr;
  }

  // A signed GET of /{bucket}{object_path} with `query`, as any S3 client would send.
  Result<HttpResponse> SignedGet(const std::string& object_path,
                                 std::vector<QueryParam> query = {}) const {
    const std::string host = "127.0.0.1:" + std::to_string(server_->port());
    const std::string path = "/" + server_->options().bucket + object_path;
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    const std::string empty_hash = Sha256Hex("").value();
    SigV4Request request;
    request.method = "GET";
    request.path = path;
    request.query = query;
    request.headers = {{"Host", host},
                       {"x-amz-content-sha256", empty_hash},
                       {"x-amz-date", FormatAmzDate(now)}};
    request.payload_sha256_hex = empty_hash;
    request.time = now;
    request.region = "us-east-1";
    request.service = "s3";
    Result<SigV4Signature> signature =
        SignV4(request, {server_->options().access_key, server_->options().secret_key});
    if (!signature) return std::unexpected(signature.error());
    HttpRequest http;
    http.method = "GET";
    http.url = server_->endpoint() + UriEncode(path, false);
    for (size_t i = 0; i < query.size(); ++i) {
      http.url += (i == 0 ? "?" : "&") + UriEncode(query[i].name, true) + "=" +
                  UriEncode(query[i].value, true);
    }
    http.headers = request.headers;
    http.headers.push_back({"Authorization", signature->authorization});
    http.timeout_ms = 10000;
    return SendHttp(http);
  }

  // Every key in the bucket under `prefix` (ListObjectsV2, signed).
  std::vector<std::string> ListKeys(const std::string& prefix = "") const {
    Result<HttpResponse> response = SignedGet("", {{"list-type", "2"}, {"prefix", prefix}});
    EXPECT_TRUE(response) << response.error().ToString();
    if (!response) return {};
    EXPECT_EQ(response->status, 200) << response->body;
    std::vector<std::string> keys;
    size_t at = 0;
    while ((at = response->body.find("<Key>", at)) != std::string::npos) {
      const size_t end = response->body.find("</Key>", at);
      if (end == std::string::npos) break;
      keys.push_back(response->body.substr(at + 5, end - at - 5));
      at = end;
    }
    return keys;
  }

  std::unique_ptr<testing::S3rver> server_;
};

TEST_F(S3SinkTest, PutStoresTheExactBytesUnderStreamAndFileName) {
  std::unique_ptr<ResultSink> sink = Sink();
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->name(), "s3");
  std::string body = R"({"status":"match_found","title":"Caf\u00e9 \u266b","note":"ünïcødé ♫"})";
  body += std::string("\n\x00\x01\xff", 4);  // any bytes, not only text
  ASSERT_TRUE(sink->Put(File("st-1", "match-0001-started.json", body)));

  Result<HttpResponse> got = SignedGet("/st-1/match-0001-started.json");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(got->body, body);
  EXPECT_THAT(got->Header("content-type"), HasSubstr("application/json"));
  // And in s3rver's own store, byte for byte.
  EXPECT_EQ(ReadWholeFile(server_->data_dir() / server_->options().bucket / "st-1" /
                          "match-0001-started.json._S3rver_object"),
            body);
}

TEST_F(S3SinkTest, KeysAreStreamSlashFileWithOrWithoutPrefix) {
  std::unique_ptr<ResultSink> plain = Sink();
  std::unique_ptr<ResultSink> prefixed = Sink("prefix=/prod/earshot/");
  ASSERT_TRUE(plain && prefixed);
  ASSERT_TRUE(plain->Put(File("st-1", "a.json", "{}")));
  ASSERT_TRUE(prefixed->Put(File("st-2", "b.json", "[]")));
  EXPECT_THAT(ListKeys(), ::testing::UnorderedElementsAre("st-1/a.json", "prod/earshot/st-2/b.json"));
  EXPECT_THAT(ListKeys("prod/"), ::testing::ElementsAre("prod/earshot/st-2/b.json"));
  auto& s3 = dynamic_cast<S3Sink&>(*prefixed);
  EXPECT_EQ(s3.ObjectKey(File("st-2", "b.json", "")), "prod/earshot/st-2/b.json");
  EXPECT_EQ(dynamic_cast<S3Sink&>(*plain).ObjectKey(File("st-1", "a.json", "")), "st-1/a.json");
}

TEST_F(S3SinkTest, ContentTypeIsSentAsSigned) {
  std::unique_ptr<ResultSink> sink = Sink();
  ASSERT_TRUE(sink);
  ResultFile file = File("st-1", "a.json", "{}");
  file.content_type = " application/json;   charset=utf-8 ";
  Status put = sink->Put(file);
  ASSERT_TRUE(put) << put.error().ToString();
  Result<HttpResponse> got = SignedGet("/st-1/a.json");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->Header("content-type"), "application/json; charset=utf-8");
}

TEST_F(S3SinkTest, FileNamesThatNeedEncodingAreSignedCorrectly) {
  std::unique_ptr<ResultSink> sink = Sink("prefix=a b");
  ASSERT_TRUE(sink);
  const std::string name = "match 1+$=(x)~.json";
  Status put = sink->Put(File("st_1.x-y", name, "{\"k\":1}"));
  ASSERT_TRUE(put) << put.error().ToString();
  EXPECT_THAT(ListKeys(), ::testing::ElementsAre("a b/st_1.x-y/" + name));
  Result<HttpResponse> got = SignedGet("/a b/st_1.x-y/" + name);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->body, "{\"k\":1}");
}

TEST_F(S3SinkTest, WrongSecretIsAConfigurationErrorWithTheS3CodeAndNoSecret) {
  const std::string wrong_secret = "WRONG-secret-value/123+abc";
  ::setenv(kSecretEnv, wrong_secret.c_str(), 1);
  std::unique_ptr<ResultSink> sink = Sink();
  ASSERT_TRUE(sink);
  Status put = sink->Put(File("st-1", "a.json", "{}"));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kFailedPrecondition) << put.error().ToString();
  const std::string& message = put.error().message();
  EXPECT_THAT(message, HasSubstr("403"));
  EXPECT_THAT(message, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(message, HasSubstr("check the access key / secret"));
  EXPECT_THAT(message, HasSubstr(kSecretEnv));  // where the secret comes from, not what it is
  EXPECT_THAT(message, HasSubstr("/st-1/a.json"));
  EXPECT_THAT(message, Not(HasSubstr(wrong_secret)));
  EXPECT_THAT(message, Not(HasSubstr(server_->options().secret_key)));
  EXPECT_TRUE(ListKeys().empty());
}

TEST_F(S3SinkTest, UnknownAccessKeyIsAConfigurationError) {
  ::setenv(kAccessEnv, "NOSUCHACCESSKEY", 1);
  std::unique_ptr<ResultSink> sink = Sink();
  ASSERT_TRUE(sink);
  Status put = sink->Put(File("st-1", "a.json", "{}"));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(put.error().message(), HasSubstr("InvalidAccessKeyId"));
  EXPECT_THAT(put.error().message(), Not(HasSubstr(server_->options().secret_key)));
}

TEST_F(S3SinkTest, MissingBucketIsAConfigurationErrorNamingTheBucket) {
  Result<std::unique_ptr<ResultSink>> sink = MakeSinkFromText(Spec("", "no-such-bucket"));
  ASSERT_TRUE(sink) << sink.error().ToString();
  Status put = (*sink)->Put(File("st-1", "a.json", "{}"));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(put.error().message(), HasSubstr("NoSuchBucket"));
  EXPECT_THAT(put.error().message(), HasSubstr("bucket 'no-such-bucket' does not exist"));
}

TEST_F(S3SinkTest, ServerNotRunningIsUnavailable) {
  std::unique_ptr<ResultSink> sink = Sink("timeout_ms=5000");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(server_->Stop());
  Status put = sink->Put(File("st-1", "a.json", "{}"));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kUnavailable) << put.error().ToString();
  EXPECT_THAT(put.error().message(), HasSubstr("127.0.0.1:" + std::to_string(server_->port())));
}

TEST_F(S3SinkTest, PutFailsWhileTheStoreIsDownAndSucceedsOnceItIsBack) {
  std::unique_ptr<ResultSink> sink = Sink("timeout_ms=5000");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->Put(File("st-1", "before.json", "1")));

  ASSERT_TRUE(server_->Stop());
  Status down = sink->Put(File("st-1", "during.json", "2"));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), ErrorCode::kUnavailable);

  Status restarted = server_->Restart();
  ASSERT_TRUE(restarted) << restarted.error().ToString();
  Status up = sink->Put(File("st-1", "during.json", "2"));  // the outbox's retry
  ASSERT_TRUE(up) << up.error().ToString();
  EXPECT_THAT(ListKeys(), ::testing::UnorderedElementsAre("st-1/before.json", "st-1/during.json"));
  Result<HttpResponse> got = SignedGet("/st-1/during.json");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->body, "2");
}

TEST_F(S3SinkTest, ConcurrentPutsFromSeveralThreadsAllLand) {
  std::unique_ptr<ResultSink> sink = Sink();
  ASSERT_TRUE(sink);
  InitHttpClient();  // before the threads, as main does
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5;
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "m-" + std::to_string(t) + "-" + std::to_string(i) + ".json";
        if (Status put = sink->Put(File("st-c", name, name)); !put) {
          errors[t] += put.error().ToString() + "\n";
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& error : errors) EXPECT_EQ(error, "");
  EXPECT_EQ(ListKeys("st-c/").size(), static_cast<size_t>(kThreads * kPerThread));
}

// A peer that accepts the TCP connection (the kernel does, through the
// backlog) and never answers: the attempt ends at timeout_ms.
TEST(S3SinkNetworkTest, AServerThatNeverAnswersTimesOutAsUnavailable) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);

  ::setenv(kAccessEnv, "AK", 1);
  ::setenv(kSecretEnv, "SK", 1);
  Result<std::unique_ptr<ResultSink>> sink = MakeSinkFromText(
      "s3:endpoint=http://127.0.0.1:" + std::to_string(port) +
      ",bucket=results,timeout_ms=300,access_key_env=" + kAccessEnv + ",secret_key_env=" + kSecretEnv);
  ASSERT_TRUE(sink) << sink.error().ToString();
  const auto start = std::chrono::steady_clock::now();
  Status put = (*sink)->Put(File("st-1", "a.json", "{}"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ::unsetenv(kAccessEnv);
  ::unsetenv(kSecretEnv);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), ErrorCode::kUnavailable) << put.error().ToString();
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

// ---- Spec errors: no server needed.

class S3SinkSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv(kAccessEnv, "AKIDSPEC", 1);
    ::setenv(kSecretEnv, "spec-secret-value", 1);
  }
  void TearDown() override {
    ::unsetenv(kAccessEnv);
    ::unsetenv(kSecretEnv);
  }
  static std::string Base() {
    return std::string("s3:endpoint=http://127.0.0.1:9,bucket=results,access_key_env=") +
           kAccessEnv + ",secret_key_env=" + kSecretEnv;
  }
  static Error SpecError(const std::string& text) {
    Result<std::unique_ptr<ResultSink>> sink = MakeSinkFromText(text);
    EXPECT_FALSE(sink) << text;
    return sink ? Error(ErrorCode::kInternal, "unexpectedly made a sink") : sink.error();
  }
};

TEST_F(S3SinkSpecTest, AValidSpecMakesASinkWithTheDefaults) {
  Result<std::unique_ptr<ResultSink>> sink = MakeSinkFromText(Base());
  ASSERT_TRUE(sink) << sink.error().ToString();
  const S3SinkOptions& options = dynamic_cast<S3Sink&>(**sink).options();
  EXPECT_EQ(options.scheme, "http");
  EXPECT_EQ(options.host, "127.0.0.1");
  EXPECT_EQ(options.port, 9);
  EXPECT_EQ(options.region, "us-east-1");
  EXPECT_FALSE(options.virtual_hosted);
  EXPECT_EQ(options.prefix, "");
  EXPECT_EQ(options.timeout_ms, 30000);
  EXPECT_EQ(options.credentials.access_key_id, "AKIDSPEC");
}

TEST_F(S3SinkSpecTest, MissingBucketOrEndpointIsNamed) {
  Error no_bucket = SpecError("s3:endpoint=http://127.0.0.1:9");
  EXPECT_EQ(no_bucket.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(no_bucket.message(), HasSubstr("missing bucket="));
  Error no_endpoint = SpecError("s3:bucket=results");
  EXPECT_THAT(no_endpoint.message(), HasSubstr("missing endpoint="));
}

TEST_F(S3SinkSpecTest, UnknownKeyIsRejectedListingTheKnownOnes) {
  Error error = SpecError(Base() + ",secret_key=oops");
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(error.message(), HasSubstr("unknown option 'secret_key'"));
  EXPECT_THAT(error.message(), HasSubstr("secret_key_env"));
  EXPECT_THAT(error.message(), Not(HasSubstr("oops")));
}

TEST_F(S3SinkSpecTest, UnsetSecretVariableIsNamedWithoutAnyValue) {
  ::unsetenv(kSecretEnv);
  Error error = SpecError(Base());
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(error.message(), HasSubstr(kSecretEnv));
  EXPECT_THAT(error.message(), HasSubstr("not set"));
  ::unsetenv(kAccessEnv);
  Error access = SpecError(Base());
  EXPECT_THAT(access.message(), HasSubstr(kAccessEnv));
}

TEST_F(S3SinkSpecTest, DefaultCredentialVariablesAreTheAwsOnes) {
  const char* saved = std::getenv("AWS_SECRET_ACCESS_KEY");
  const std::string saved_value = saved != nullptr ? saved : "";
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  Error error = SpecError("s3:endpoint=http://127.0.0.1:9,bucket=results");
  EXPECT_THAT(error.message(), ::testing::AnyOf(HasSubstr("AWS_ACCESS_KEY_ID"),
                                                HasSubstr("AWS_SECRET_ACCESS_KEY")));
  if (saved != nullptr) ::setenv("AWS_SECRET_ACCESS_KEY", saved_value.c_str(), 1);
}

TEST_F(S3SinkSpecTest, MalformedValuesAreRejectedWithTheReason) {
  EXPECT_THAT(SpecError("s3:endpoint=ftp://h:1,bucket=results").message(), HasSubstr("http or https"));
  EXPECT_THAT(SpecError("s3:endpoint=127.0.0.1:9000,bucket=results").message(),
              HasSubstr("not a URL"));
  EXPECT_THAT(SpecError("s3:endpoint=http://h:9000/results,bucket=results").message(),
              HasSubstr("no path"));
  EXPECT_THAT(SpecError("s3:endpoint=http://h:99999,bucket=results").message(),
              HasSubstr("port '99999'"));
  // A password in the endpoint is refused without being repeated.
  Error userinfo = SpecError("s3:endpoint=http://user:hunter2@h:9000,bucket=results");
  EXPECT_THAT(userinfo.message(), HasSubstr("user info"));
  EXPECT_THAT(userinfo.message(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(SpecError("s3:endpoint=http://h:9,bucket=Results_1").message(),
              HasSubstr("not a valid S3 bucket name"));
  EXPECT_THAT(SpecError(Base() + ",addressing=vhost").message(), HasSubstr("neither 'path' nor"));
  EXPECT_THAT(SpecError(Base() + ",addressing=virtual").message(), HasSubstr("DNS name"));
  EXPECT_THAT(SpecError(Base() + ",timeout_ms=0").message(), HasSubstr("timeout_ms='0'"));
  EXPECT_THAT(SpecError(Base() + ",timeout_ms=5s").message(), HasSubstr("timeout_ms='5s'"));
  EXPECT_THAT(SpecError(Base() + ",region=US East").message(), HasSubstr("region"));
  EXPECT_THAT(SpecError(Base() + ",prefix=a//b").message(), HasSubstr("prefix"));
  EXPECT_THAT(SpecError("webhook:url=http://h").message(), HasSubstr("'webhook'"));
}

// ---- The signed request itself and the meaning of answers: pure.

S3SinkOptions VirtualOptions() {
  S3SinkOptions options;
  options.scheme = "https";
  options.host = "s3.eu-west-3.amazonaws.com";
  options.port = 443;
  options.bucket = "results";
  options.prefix = "prod";
  options.region = "eu-west-3";
  options.virtual_hosted = true;
  options.credentials = {"AKID", "not-in-any-output"};
  options.access_key_env = "AWS_ACCESS_KEY_ID";
  options.secret_key_env = "AWS_SECRET_ACCESS_KEY";
  options.timeout_ms = 2000;
  return options;
}

TEST(S3SinkRequestTest, VirtualHostedRequestPutsTheBucketInTheHost) {
  S3Sink sink(VirtualOptions());
  const auto now = std::chrono::sys_days{std::chrono::year{2024} / 3 / 1};
  Result<HttpRequest> request = sink.SignedPutRequest(File("st-1", "a b.json", "{}"), now);
  ASSERT_TRUE(request) << request.error().ToString();
  EXPECT_EQ(request->method, "PUT");
  EXPECT_EQ(request->url, "https://results.s3.eu-west-3.amazonaws.com/prod/st-1/a%20b.json");
  EXPECT_EQ(request->body, "{}");
  EXPECT_EQ(request->timeout_ms, 2000);
  EXPECT_EQ(request->connect_timeout_ms, 2000);
  auto header = [&](const std::string& name) {
    for (const HttpHeader& h : request->headers) {
      if (h.name == name) return h.value;
    }
    return std::string("<absent>");
  };
  EXPECT_EQ(header("Host"), "results.s3.eu-west-3.amazonaws.com");  // default port left out
  EXPECT_EQ(header("Content-Type"), "application/json");
  EXPECT_EQ(header("x-amz-content-sha256"), Sha256Hex("{}").value());
  EXPECT_EQ(header("x-amz-date"), "20240301T000000Z");
  EXPECT_THAT(header("Authorization"),
              HasSubstr("Credential=AKID/20240301/eu-west-3/s3/aws4_request, "
                        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "
                        "Signature="));
  for (const HttpHeader& h : request->headers) {
    EXPECT_THAT(h.value, Not(HasSubstr("not-in-any-output")));
  }
}

TEST(S3SinkRequestTest, NamesThatCannotBeKeySegmentsAreRejected) {
  S3Sink sink(VirtualOptions());
  const auto now = std::chrono::sys_days{std::chrono::year{2024} / 3 / 1};
  for (const char* name : {"", ".", "..", "a/b.json", "a\nb.json"}) {
    Result<HttpRequest> request = sink.SignedPutRequest(File("st-1", name, "{}"), now);
    ASSERT_FALSE(request) << name;
    EXPECT_EQ(request.error().code(), ErrorCode::kInvalidArgument);
  }
}

HttpResponse Answer(long status, const std::string& code, std::vector<HttpHeader> headers = {}) {
  HttpResponse response;
  response.status = status;
  response.headers = std::move(headers);
  if (!code.empty()) {
    response.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code +
                    "</Code><Message>Detail &amp; more</Message><RequestId>r1</RequestId></Error>";
  }
  return response;
}

TEST(S3SinkResponseTest, RetryableAnswersAreUnavailable) {
  const S3SinkOptions options = VirtualOptions();
  for (const auto& [status, code] : std::vector<std::pair<long, std::string>>{
           {500, "InternalError"}, {503, "SlowDown"}, {503, ""}, {429, ""}, {502, ""},
           {408, "RequestTimeout"}}) {
    Status s = S3ResponseStatus(Answer(status, code), "s3: PUT x", options);
    ASSERT_FALSE(s) << status;
    EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable) << status << " " << code;
    if (!code.empty()) {
      EXPECT_THAT(s.error().message(), HasSubstr(code));
    }
  }
  EXPECT_TRUE(S3ResponseStatus(Answer(200, ""), "s3: PUT x", options));
  EXPECT_TRUE(S3ResponseStatus(Answer(204, ""), "s3: PUT x", options));
}

TEST(S3SinkResponseTest, ConfigurationAnswersSayWhatToCheck) {
  const S3SinkOptions options = VirtualOptions();
  Status denied = S3ResponseStatus(
      Answer(403, "AccessDenied", {{"x-amz-request-id", "REQ123"}}), "s3: PUT x", options);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(denied.error().message(), HasSubstr("HTTP 403 AccessDenied (Detail & more)"));
  EXPECT_THAT(denied.error().message(), HasSubstr("request id REQ123"));
  EXPECT_THAT(denied.error().message(), HasSubstr("$AWS_SECRET_ACCESS_KEY"));

  Status skewed = S3ResponseStatus(Answer(403, "RequestTimeTooSkewed"), "s3: PUT x", options);
  EXPECT_THAT(skewed.error().message(), HasSubstr("clock"));

  Status moved = S3ResponseStatus(
      Answer(301, "PermanentRedirect", {{"x-amz-bucket-region", "us-west-2"}}), "s3: PUT x",
      options);
  EXPECT_EQ(moved.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(moved.error().message(), HasSubstr("region 'us-west-2'"));

  Status other = S3ResponseStatus(Answer(400, "InvalidArgument"), "s3: PUT x", options);
  EXPECT_EQ(other.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(other.error().message(), HasSubstr("InvalidArgument"));
}

TEST(S3SinkResponseTest, ErrorBodiesAreParsedDefensively) {
  S3ErrorBody parsed = ParseS3ErrorBody(
      "<Error><Code>NoSuchKey</Code><Message>a &lt;b&gt; &quot;c&quot;\nd</Message></Error>");
  EXPECT_EQ(parsed.code, "NoSuchKey");
  EXPECT_EQ(parsed.message, "a <b> \"c\" d");
  EXPECT_EQ(ParseS3ErrorBody("not xml at all").code, "");
  EXPECT_EQ(ParseS3ErrorBody("<Error><Code>Unterminated").code, "");
  S3ErrorBody huge = ParseS3ErrorBody("<Error><Code>X</Code><Message>" + std::string(5000, 'm') +
                                      "</Message></Error>");
  EXPECT_LE(huge.message.size(), 303u);
}

}  // namespace
}  // namespace earshot::delivery
