#include "delivery/webhook_notifier.h"

#include "delivery/header_text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "delivery/http_client.h"
#include "delivery/webhook_signature.h"

namespace earshot::delivery {
namespace {

constexpr std::string_view kHeaderPrefix = "header_";
constexpr std::string_view kEnvSuffix = "_env";
constexpr int kDefaultTimeoutMs = 10000;
constexpr int kMaxTimeoutMs = 600000;
constexpr int kMaxConnectTimeoutMs = 5000;

bool IsHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || c == '-';
  });
}

// Headers the notifier owns; a spec may not set them.
bool IsReservedHeader(std::string_view name) {
  static constexpr std::string_view kReserved[] = {
      "content-type",    "content-length",    "user-agent", "host",
      "idempotency-key", "transfer-encoding", "expect",     "connection"};
  std::string lower = AsciiLower(name);
  if (lower.starts_with("x-earshot-")) return true;
  return std::find(std::begin(kReserved), std::end(kReserved), lower) != std::end(kReserved);
}

Status CheckUrl(const std::string& url) {
  std::string lower = AsciiLower(url);
  size_t scheme_end = lower.starts_with("https://") ? 8 : lower.starts_with("http://") ? 7 : 0;
  if (scheme_end == 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "webhook: url '" + RedactUrl(url) + "' is not an http:// or https:// URL");
  }
  if (std::any_of(url.begin(), url.end(), [](char ch) {
        return std::isspace(static_cast<unsigned char>(ch)) ||
               static_cast<unsigned char>(ch) < 0x20;
      })) {
    return MakeError(ErrorCode::kInvalidArgument, "webhook: url contains white space or controls");
  }
  size_t authority_end = url.find_first_of("/?#", scheme_end);
  std::string_view authority = std::string_view(url).substr(
      scheme_end,
      authority_end == std::string::npos ? std::string::npos : authority_end - scheme_end);
  if (authority.find('@') != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "webhook: url must not carry user:password@ (secrets stay out of specs; use "
                     "header_Authorization_env=VAR)");
  }
  if (authority.empty() || authority.front() == ':') {
    return MakeError(ErrorCode::kInvalidArgument, "webhook: url '" + url + "' has no host");
  }
  return Ok();
}

Result<int> ParseTimeoutMs(const TargetSpec& spec) {
  return IntOption(spec, "timeout_ms", kDefaultTimeoutMs, 1, kMaxTimeoutMs);
}


class WebhookNotifier final : public Notifier {
 public:
  WebhookNotifier(std::string url, std::string secret, bool is_signed, int timeout_ms,
                  std::vector<HttpHeader> extra_headers, UnixClock clock)
      : url_(std::move(url)),
        shown_url_(RedactUrl(url_)),
        secret_(std::move(secret)),
        signed_(is_signed),
        timeout_ms_(timeout_ms),
        extra_headers_(std::move(extra_headers)),
        clock_(std::move(clock)) {}

  const std::string& name() const override { return name_; }

  Status Notify(const Notification& notification) override {
    const std::string where = "webhook POST " + shown_url_;
    if (notification.event_type.empty() || HasControlChars(notification.event_type)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       where + ": the event type is empty or has control characters");
    }
    if (notification.idempotency_key.empty() || HasControlChars(notification.idempotency_key)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       where + ": the idempotency key is empty or has control characters");
    }

    HttpRequest request;
    request.method = "POST";
    request.url = url_;
    request.body = notification.body;
    request.timeout_ms = timeout_ms_;
    request.connect_timeout_ms = std::min(timeout_ms_, kMaxConnectTimeoutMs);
    request.headers = {
        {"Content-Type", "application/json"},
        {"User-Agent", "earshot/" + std::string(kEarshotVersion)},
        {"X-Earshot-Event", notification.event_type},
        {"Idempotency-Key", notification.idempotency_key},
    };
    if (signed_) {
      auto signature = SignWebhookBody(secret_, notification.body, clock_());
      if (!signature) return std::unexpected(signature.error().Wrap(where));
      request.headers.push_back({std::string(kWebhookSignatureHeader), std::move(*signature)});
    }
    request.headers.insert(request.headers.end(), extra_headers_.begin(), extra_headers_.end());

    auto response = SendHttp(request);
    if (!response) return std::unexpected(response.error().Wrap("webhook"));
    const long status = response->status;
    if (status >= 200 && status <= 299) return Ok();

    std::string message = where + ": receiver answered HTTP " + std::to_string(status) + ": " +
                          QuotedExcerpt(response->body);
    if (status == 408 || status == 429 || (status >= 500 && status <= 599)) {
      std::string retry_after = response->Header("retry-after");
      if (!retry_after.empty() && retry_after.size() <= 64 && !HasControlChars(retry_after)) {
        message += " (Retry-After: " + retry_after + ")";
      }
      return MakeError(ErrorCode::kUnavailable, std::move(message));
    }
    if (status >= 300 && status <= 399) message += " (redirects are not followed; fix the url)";
    return MakeError(ErrorCode::kFailedPrecondition, std::move(message));
  }

 private:
  const std::string name_ = "webhook";
  const std::string url_;
  const std::string shown_url_;
  const std::string secret_;
  const bool signed_;
  const int timeout_ms_;
  const std::vector<HttpHeader> extra_headers_;
  const UnixClock clock_;
};

}  // namespace

std::int64_t SystemUnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<Notifier>> MakeWebhookNotifier(const TargetSpec& spec, UnixClock clock) {
  if (spec.kind != "webhook") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "webhook: spec kind is '" + spec.kind + "', expected 'webhook'");
  }
  if (!clock) return MakeError(ErrorCode::kInvalidArgument, "webhook: no clock given");

  // header_* keys are open-ended; check the rest against the fixed list.
  TargetSpec fixed{spec.kind, {}};
  std::vector<HttpHeader> extra_headers;
  for (const auto& [key, value] : spec.options) {
    if (!key.starts_with(kHeaderPrefix)) {
      fixed.options.emplace(key, value);
      continue;
    }
    std::string_view header = std::string_view(key).substr(kHeaderPrefix.size());
    bool from_env = header.ends_with(kEnvSuffix);
    if (from_env) header.remove_suffix(kEnvSuffix.size());
    if (!IsHeaderName(header)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "webhook: '" + key + "': a header name is letters, digits and '-'");
    }
    if (IsReservedHeader(header)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "webhook: '" + key + "': header " + std::string(header) +
                           " is set by earshot and cannot be overridden");
    }
    std::string header_value = value;
    if (from_env) {
      const char* env = value.empty() ? nullptr : std::getenv(value.c_str());
      if (env == nullptr || *env == '\0') {
        return MakeError(ErrorCode::kInvalidArgument,
                         "webhook: header " + std::string(header) +
                             " is read from the environment variable " + value +
                             ", which is not set (or empty)");
      }
      header_value = env;
    }
    if (HasControlChars(header_value)) {
      // Never echo the value: it may be a token.
      return MakeError(
          ErrorCode::kInvalidArgument,
          "webhook: the value of header " + std::string(header) + " has control characters");
    }
    extra_headers.push_back({std::string(header), std::move(header_value)});
  }
  if (auto known = CheckKnownOptions(fixed, {"url", "secret_env", "unsigned", "timeout_ms",
                                             "header_<Name>", "header_<Name>_env"});
      !known) {
    return std::unexpected(known.error());
  }

  auto url = RequiredOption(spec, "url");
  if (!url) return std::unexpected(url.error());
  if (auto ok = CheckUrl(*url); !ok) return std::unexpected(ok.error());

  auto timeout_ms = ParseTimeoutMs(spec);
  if (!timeout_ms) return std::unexpected(timeout_ms.error());

  std::string unsigned_text = OptionOr(spec, "unsigned", "false");
  if (unsigned_text != "true" && unsigned_text != "false") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "webhook: unsigned='" + unsigned_text + "' must be true or false");
  }
  const bool is_signed = unsigned_text == "false";
  std::string secret;
  if (is_signed) {
    auto s = SecretOption(spec, "secret", "EARSHOT_WEBHOOK_SECRET");
    if (!s) {
      return MakeError(s.error().code(),
                       s.error().message() +
                           "; refusing to send unsigned webhooks (set the variable, or add "
                           "unsigned=true if the receiver authenticates requests another way)");
    }
    secret = std::move(*s);
  } else if (spec.options.contains("secret_env")) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "webhook: unsigned=true contradicts secret_env=...; choose one");
  }

  return std::make_unique<WebhookNotifier>(std::move(*url), std::move(secret), is_signed,
                                           *timeout_ms, std::move(extra_headers), std::move(clock));
}

}  // namespace earshot::delivery
