#include "delivery/s3_sink.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

namespace earshot::delivery {
namespace {

constexpr int kDefaultTimeoutMs = 30000;
constexpr int kMaxTimeoutMs = 600000;
constexpr int kMaxConnectTimeoutMs = 5000;
constexpr size_t kMaxErrorText = 300;      // bytes of an S3 error message kept
constexpr size_t kMaxErrorBodyScan = 65536;  // bytes of an error body looked at

bool HasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](unsigned char c) { return c < 0x20 || c == 0x7F; });
}

// A segment of an object key: non-empty, not "." or "..", no '/' or control byte.
bool IsKeySegment(std::string_view segment) {
  return !segment.empty() && segment != "." && segment != ".." &&
         segment.find('/') == std::string_view::npos && !HasControl(segment);
}

// A header value as SigV4 canonicalises it (trimmed, blank runs collapsed), so
// that what is sent is byte for byte what was signed, whatever the server's
// own canonicalisation.
std::string NormalizedHeaderValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    const bool blank = c == ' ' || c == '\t';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out.push_back(blank ? ' ' : c);
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool ParseInt(std::string_view text, int& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

bool IsIpLiteral(std::string_view host) {
  if (host.starts_with('[')) return true;
  return std::all_of(host.begin(), host.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0 || c == '.'; });
}

// endpoint = http(s)://host[:port][/]
Status ParseEndpoint(const std::string& endpoint, S3SinkOptions& out) {
  const std::string shown = "s3: endpoint '" + RedactUrl(endpoint) + "'";
  const size_t sep = endpoint.find("://");
  if (sep == std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument,
                     shown + " is not a URL; expected http(s)://host[:port]");
  }
  std::string scheme = endpoint.substr(0, sep);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https") {
    return MakeError(ErrorCode::kInvalidArgument,
                     shown + " has scheme '" + scheme + "'; expected http or https");
  }
  std::string_view rest = std::string_view(endpoint).substr(sep + 3);
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument,
                     shown + " must be just http(s)://host[:port]: no path, query or user "
                             "info (the bucket goes in bucket=, credentials in *_env variables)");
  }
  std::string_view host = rest;
  std::string_view port;
  if (rest.starts_with('[')) {  // [IPv6]
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return MakeError(ErrorCode::kInvalidArgument, shown + " has an unterminated [IPv6] host");
    }
    host = rest.substr(0, close + 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) {
      return MakeError(ErrorCode::kInvalidArgument, shown + " has junk after the [IPv6] host");
    }
    if (!after.empty()) port = after.substr(1);
  } else if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  const bool host_ok =
      !host.empty() && (host.starts_with('[') ||
                        std::all_of(host.begin(), host.end(), [](unsigned char c) {
                          return std::isalnum(c) != 0 || c == '.' || c == '-' || c == '_';
                        }));
  if (!host_ok) {
    return MakeError(ErrorCode::kInvalidArgument, shown + " has no valid host name");
  }
  out.scheme = scheme;
  out.host = std::string(host);
  out.port = 0;
  if (rest.find(':', host.size()) != std::string_view::npos || !port.empty()) {
    if (!ParseInt(port, out.port) || out.port < 1 || out.port > 65535) {
      return MakeError(ErrorCode::kInvalidArgument,
                       shown + " has port '" + std::string(port) + "'; expected 1..65535");
    }
  }
  return Ok();
}

Status CheckBucket(const std::string& bucket) {
  const bool chars_ok = std::all_of(bucket.begin(), bucket.end(), [](unsigned char c) {
    return std::islower(c) != 0 || std::isdigit(c) != 0 || c == '.' || c == '-';
  });
  const bool ends_ok = !bucket.empty() && std::isalnum(static_cast<unsigned char>(bucket.front())) &&
                       std::isalnum(static_cast<unsigned char>(bucket.back()));
  if (bucket.size() < 3 || bucket.size() > 63 || !chars_ok || !ends_ok) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3: bucket '" + bucket +
                         "' is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', "
                         "'-'; starting and ending with a letter or digit)");
  }
  return Ok();
}

Result<std::string> CleanPrefix(std::string prefix) {
  while (prefix.starts_with('/')) prefix.erase(0, 1);
  while (prefix.ends_with('/')) prefix.pop_back();
  if (prefix.empty()) return prefix;
  size_t start = 0;
  while (true) {
    const size_t slash = prefix.find('/', start);
    const std::string_view segment =
        std::string_view(prefix).substr(start, slash == std::string::npos ? std::string::npos
                                                                          : slash - start);
    if (!IsKeySegment(segment)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "s3: prefix '" + prefix +
                           "' has an empty, '.', '..' or control-character segment");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return prefix;
}

// Keeps text printable and short enough for one log line.
std::string CleanErrorText(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  if (text.size() > kMaxErrorText) {
    size_t cut = kMaxErrorText;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
    text.resize(cut);
    text += "...";
  }
  return text;
}

std::string DecodeXmlEntities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t semi = text[i] == '&' ? text.find(';', i) : std::string_view::npos;
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back(text[i]);
      ++i;
      continue;
    }
    const std::string_view entity = text.substr(i + 1, semi - i - 1);
    if (entity == "amp") out.push_back('&');
    else if (entity == "lt") out.push_back('<');
    else if (entity == "gt") out.push_back('>');
    else if (entity == "quot") out.push_back('"');
    else if (entity == "apos") out.push_back('\'');
    else out.append(text.substr(i, semi - i + 1));  // numeric and unknown entities kept as is
    i = semi + 1;
  }
  return out;
}

std::string XmlElementText(std::string_view xml, std::string_view name) {
  const std::string open = "<" + std::string(name) + ">";
  const std::string close = "</" + std::string(name) + ">";
  const size_t begin = xml.find(open);
  if (begin == std::string_view::npos) return {};
  const size_t end = xml.find(close, begin + open.size());
  if (end == std::string_view::npos) return {};
  return CleanErrorText(DecodeXmlEntities(xml.substr(begin + open.size(), end - begin - open.size())));
}

}  // namespace

S3ErrorBody ParseS3ErrorBody(std::string_view xml) {
  xml = xml.substr(0, kMaxErrorBodyScan);
  // Code and Message are children of <Error>; skip anything before it.
  if (const size_t error = xml.find("<Error>"); error != std::string_view::npos) {
    xml = xml.substr(error);
  }
  return S3ErrorBody{XmlElementText(xml, "Code"), XmlElementText(xml, "Message")};
}

Status S3ResponseStatus(const HttpResponse& response, const std::string& what,
                        const S3SinkOptions& options) {
  const long status = response.status;
  if (status >= 200 && status < 300) return Ok();

  const S3ErrorBody error = ParseS3ErrorBody(response.body);
  std::string answer = what + ": HTTP " + std::to_string(status);
  if (!error.code.empty()) answer += " " + error.code;
  if (!error.message.empty()) answer += " (" + error.message + ")";
  if (const std::string id = CleanErrorText(response.Header("x-amz-request-id")); !id.empty()) {
    answer += " [request id " + id + "]";
  }

  if (status >= 500 || status == 429 || status == 408 || error.code == "SlowDown") {
    return MakeError(ErrorCode::kUnavailable,
                     answer + "; the store is overloaded or down, try again later");
  }
  const std::string bucket = "'" + options.bucket + "'";
  if (status == 403) {
    if (error.code == "RequestTimeTooSkewed") {
      return MakeError(ErrorCode::kFailedPrecondition,
                       answer + "; check this machine's clock (NTP): S3 refuses requests more "
                                "than 15 minutes off");
    }
    return MakeError(ErrorCode::kFailedPrecondition,
                     answer + "; check the access key / secret (read from $" +
                         options.access_key_env + " and $" + options.secret_key_env +
                         ") and that they may write to bucket " + bucket);
  }
  if (status == 404 && (error.code == "NoSuchBucket" || error.code.empty())) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     answer + "; bucket " + bucket + " does not exist at " + options.scheme +
                         "://" + options.host +
                         (options.port != 0 ? ":" + std::to_string(options.port) : "") +
                         ": create it, or fix bucket= / endpoint=");
  }
  if ((status >= 300 && status < 400) || error.code == "AuthorizationHeaderMalformed" ||
      error.code == "PermanentRedirect" || error.code == "IllegalLocationConstraintException") {
    std::string hint = "; check region= ('" + options.region + "') and endpoint=";
    if (const std::string real = CleanErrorText(response.Header("x-amz-bucket-region"));
        !real.empty()) {
      hint += " (the store says bucket " + bucket + " is in region '" + real + "')";
    }
    return MakeError(ErrorCode::kFailedPrecondition, answer + hint);
  }
  return MakeError(ErrorCode::kFailedPrecondition,
                   answer + "; the store refused the object: check the s3 target's settings "
                            "and the bucket's policy");
}

S3Sink::S3Sink(S3SinkOptions options) : options_(std::move(options)) {
  const bool default_port = options_.port == 0 ||
                            (options_.scheme == "http" && options_.port == 80) ||
                            (options_.scheme == "https" && options_.port == 443);
  authority_ = default_port ? options_.host : options_.host + ":" + std::to_string(options_.port);
}

std::string S3Sink::ObjectKey(const ResultFile& file) const {
  std::string key = options_.prefix;
  if (!key.empty()) key += '/';
  key += file.stream_id;
  key += '/';
  key += file.name;
  return key;
}

Result<HttpRequest> S3Sink::SignedPutRequest(const ResultFile& file,
                                             std::chrono::sys_seconds now) const {
  if (!IsKeySegment(file.stream_id) || !IsKeySegment(file.name)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3: result '" + CleanErrorText(file.stream_id + "/" + file.name) +
                         "' cannot be an object key (stream id and file name must be non-empty, "
                         "not '.' or '..', without '/' or control characters)");
  }
  const std::string key = ObjectKey(file);
  const std::string path = options_.virtual_hosted ? "/" + key : "/" + options_.bucket + "/" + key;
  const std::string host = options_.virtual_hosted ? options_.bucket + "." + authority_ : authority_;
  Result<std::string> payload_hash = Sha256Hex(file.body);
  if (!payload_hash) return std::unexpected(payload_hash.error());

  SigV4Request signing;
  signing.method = "PUT";
  signing.path = path;
  signing.headers = {
      {"Host", host},
      {"Content-Type", file.content_type.empty() ? "application/octet-stream"
                                                  : NormalizedHeaderValue(file.content_type)},
      {"x-amz-content-sha256", *payload_hash},
      {"x-amz-date", FormatAmzDate(now)},
  };
  signing.payload_sha256_hex = *payload_hash;
  signing.time = now;
  signing.region = options_.region;
  signing.service = "s3";
  Result<SigV4Signature> signature = SignV4(signing, options_.credentials);
  if (!signature) return std::unexpected(signature.error().Wrap("s3: signing " + key));

  HttpRequest request;
  request.method = "PUT";
  request.url = options_.scheme + "://" + host + UriEncode(path, false);
  request.headers = std::move(signing.headers);
  request.headers.push_back({"Authorization", signature->authorization});
  request.body = file.body;
  request.timeout_ms = options_.timeout_ms;
  request.connect_timeout_ms = std::min(kMaxConnectTimeoutMs, options_.timeout_ms);
  return request;
}

Status S3Sink::Put(const ResultFile& file) {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  Result<HttpRequest> request = SignedPutRequest(file, now);
  if (!request) return std::unexpected(request.error());
  Result<HttpResponse> response = SendHttp(*request);
  if (!response) return std::unexpected(response.error().Wrap("s3"));
  return S3ResponseStatus(*response, "s3: PUT " + RedactUrl(request->url), options_);
}

Result<std::unique_ptr<ResultSink>> MakeS3Sink(const TargetSpec& spec) {
  if (spec.kind != "s3") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3: cannot make an S3 sink from a '" + spec.kind + "' target");
  }
  if (Status known = CheckKnownOptions(spec, {"endpoint", "bucket", "prefix", "region", "addressing",
                                              "access_key_env", "secret_key_env", "timeout_ms"});
      !known) {
    return std::unexpected(known.error());
  }
  S3SinkOptions options;
  Result<std::string> endpoint = RequiredOption(spec, "endpoint");
  if (!endpoint) return std::unexpected(endpoint.error());
  if (Status parsed = ParseEndpoint(*endpoint, options); !parsed) {
    return std::unexpected(parsed.error());
  }
  Result<std::string> bucket = RequiredOption(spec, "bucket");
  if (!bucket) return std::unexpected(bucket.error());
  if (Status ok = CheckBucket(*bucket); !ok) return std::unexpected(ok.error());
  options.bucket = *bucket;
  Result<std::string> prefix = CleanPrefix(OptionOr(spec, "prefix", ""));
  if (!prefix) return std::unexpected(prefix.error());
  options.prefix = *prefix;

  options.region = OptionOr(spec, "region", "us-east-1");
  if (options.region.empty() ||
      !std::all_of(options.region.begin(), options.region.end(), [](unsigned char c) {
        return std::islower(c) != 0 || std::isdigit(c) != 0 || c == '-';
      })) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3: region '" + options.region + "' is not a region name like us-east-1");
  }

  const std::string addressing = OptionOr(spec, "addressing", "path");
  if (addressing != "path" && addressing != "virtual") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3: addressing '" + addressing + "' is neither 'path' nor 'virtual'");
  }
  options.virtual_hosted = addressing == "virtual";
  if (options.virtual_hosted && IsIpLiteral(options.host)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3: addressing=virtual puts the bucket in the host name, which needs a DNS "
                     "name endpoint, not the IP address '" + options.host + "'; use addressing=path");
  }

  auto timeout_ms = IntOption(spec, "timeout_ms", kDefaultTimeoutMs, 1, kMaxTimeoutMs);
  if (!timeout_ms) return std::unexpected(timeout_ms.error());
  options.timeout_ms = *timeout_ms;

  options.access_key_env = OptionOr(spec, "access_key_env", "AWS_ACCESS_KEY_ID");
  options.secret_key_env = OptionOr(spec, "secret_key_env", "AWS_SECRET_ACCESS_KEY");
  Result<std::string> access_key = SecretOption(spec, "access_key", "AWS_ACCESS_KEY_ID");
  if (!access_key) return std::unexpected(access_key.error());
  Result<std::string> secret_key = SecretOption(spec, "secret_key", "AWS_SECRET_ACCESS_KEY");
  if (!secret_key) return std::unexpected(secret_key.error());
  options.credentials.access_key_id = std::move(*access_key);
  options.credentials.secret_access_key = std::move(*secret_key);
  InitHttpClient();  // at start-up, before the outbox's threads call Put
  return std::make_unique<S3Sink>(std::move(options));
}

}  // namespace earshot::delivery
