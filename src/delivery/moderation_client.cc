#include "delivery/moderation_client.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "common/time_format.h"
#include "delivery/header_text.h"
#include "delivery/http_client.h"
#include "delivery/webhook_notifier.h"
#include "delivery/webhook_signature.h"

namespace earshot::delivery {
namespace {

constexpr double kMaxTimeoutS = 600;
constexpr int kMaxAttempts = 10;
constexpr int kMaxConnectTimeoutMs = 5000;
constexpr size_t kMaxAnswerBytes = size_t{1} << 20;
constexpr std::chrono::milliseconds kFirstPause(100);
constexpr std::chrono::milliseconds kMaxPause(2000);

Status CheckUrl(const std::string& url) {
  const std::string lower = AsciiLower(url);
  const size_t scheme_end = lower.starts_with("https://")  ? 8
                            : lower.starts_with("http://") ? 7
                                                           : 0;
  if (scheme_end == 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "moderation: url '" + RedactUrl(url) + "' is not an http:// or https:// URL");
  }
  if (std::any_of(url.begin(), url.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return std::isspace(c) || c < 0x20 || c == 0x7f;
      })) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "moderation: url '" + RedactUrl(url) + "' contains white space or controls");
  }
  const size_t authority_end = url.find_first_of("/?#", scheme_end);
  std::string_view authority = std::string_view(url).substr(
      scheme_end,
      authority_end == std::string::npos ? std::string::npos : authority_end - scheme_end);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (authority.empty() || authority.front() == ':') {
    return MakeError(ErrorCode::kInvalidArgument,
                     "moderation: url '" + RedactUrl(url) + "' has no host");
  }
  return Ok();
}

std::string FormatSeconds(double seconds) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.3f", seconds);
  return text;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Retryable(long status) {
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

// The verdict document of a 2xx answer; kCorruptData naming what is wrong.
Result<ModerationResult> ParseAnswer(std::string body, const std::string& where) {
  auto corrupt = [&](const std::string& what) {
    return MakeError(ErrorCode::kCorruptData,
                     where + ": " + what + " in the answer " + QuotedExcerpt(body));
  };
  if (body.size() > kMaxAnswerBytes) {
    return MakeError(ErrorCode::kCorruptData, where + ": the answer is " +
                                                  std::to_string(body.size()) +
                                                  " bytes, over the 1 MiB limit: " + QuotedExcerpt(body));
  }
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return corrupt("no JSON");
  if (!doc.is_object()) return corrupt("no JSON object");
  const auto verdict_it = doc.find("verdict");
  if (verdict_it == doc.end() || !verdict_it->is_string()) {
    return corrupt("no \"verdict\" string");
  }
  const auto verdict = ParseModerationVerdict(verdict_it->get_ref<const std::string&>());
  if (!verdict) return corrupt("an unknown verdict (expected allow, flag or block)");
  ModerationResult result;
  result.verdict = *verdict;
  if (const auto label = doc.find("label"); label != doc.end() && !label->is_null()) {
    if (!label->is_string()) return corrupt("a \"label\" that is not a string");
    result.label = label->get<std::string>();
  }
  if (const auto score = doc.find("score"); score != doc.end() && !score->is_null()) {
    if (!score->is_number()) return corrupt("a \"score\" that is not a number");
    const double value = score->get<double>();
    if (!(value >= 0 && value <= 1)) return corrupt("a \"score\" outside [0, 1]");
    result.score = value;
  }
  result.raw_body = std::move(body);
  return result;
}

}  // namespace

std::string_view ModerationVerdictName(ModerationVerdict verdict) {
  switch (verdict) {
    case ModerationVerdict::kAllow:
      return "allow";
    case ModerationVerdict::kFlag:
      return "flag";
    case ModerationVerdict::kBlock:
      return "block";
  }
  return "allow";  // unreachable: every enumerator is handled above
}

std::optional<ModerationVerdict> ParseModerationVerdict(std::string_view name) {
  const std::string lower = AsciiLower(name);
  for (ModerationVerdict v :
       {ModerationVerdict::kAllow, ModerationVerdict::kFlag, ModerationVerdict::kBlock}) {
    if (lower == ModerationVerdictName(v)) return v;
  }
  return std::nullopt;
}

ModerationClient::ModerationClient(ModerationClientOptions options)
    : options_(std::move(options)), shown_url_(RedactUrl(options_.url)) {}

Result<ModerationClient> ModerationClient::Create(ModerationClientOptions options) {
  if (options.url.empty())
    return MakeError(ErrorCode::kInvalidArgument, "moderation: no url given");
  if (Status ok = CheckUrl(options.url); !ok) return std::unexpected(ok.error());
  if (!std::isfinite(options.timeout_s) || options.timeout_s <= 0 ||
      options.timeout_s > kMaxTimeoutS) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "moderation " + RedactUrl(options.url) + ": timeout " +
                         FormatSeconds(options.timeout_s) + " s is not in (0, 600]");
  }
  if (options.max_attempts < 1 || options.max_attempts > kMaxAttempts) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "moderation " + RedactUrl(options.url) + ": max_attempts " +
                         std::to_string(options.max_attempts) + " is not in 1..10");
  }
  return ModerationClient(std::move(options));
}

Result<ModerationResult> ModerationClient::Classify(std::span<const uint8_t> jpeg,
                                                    const ModerationRequest& request) const {
  const std::string where = "moderation service " + shown_url_;
  if (jpeg.empty()) return MakeError(ErrorCode::kInvalidArgument, where + ": empty thumbnail");
  if (request.stream_id.empty() || HasControlChars(request.stream_id)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     where + ": the stream id is empty or has control characters");
  }
  if (HasControlChars(request.channel_id) || HasControlChars(request.thumbnail_key)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     where + ": the channel id or thumbnail key has control characters");
  }
  if (!std::isfinite(request.stream_time_s) || request.stream_time_s < 0) {
    return MakeError(ErrorCode::kInvalidArgument, where + ": bad stream time");
  }

  HttpRequest http;
  http.method = "POST";
  http.url = options_.url;
  http.body.assign(reinterpret_cast<const char*>(jpeg.data()), jpeg.size());
  http.timeout_ms = static_cast<int>(std::ceil(options_.timeout_s * 1000));
  http.connect_timeout_ms = std::min(http.timeout_ms, kMaxConnectTimeoutMs);
  std::vector<HttpHeader> headers = {
      {"Content-Type", "image/jpeg"},
      {"Accept", "application/json"},
      {"User-Agent", "earshot/" + std::string(kEarshotVersion)},
      {"X-Earshot-Stream-Id", request.stream_id},
  };
  if (!request.channel_id.empty()) headers.push_back({"X-Earshot-Channel-Id", request.channel_id});
  headers.push_back({"X-Earshot-Stream-Time", FormatSeconds(request.stream_time_s)});
  headers.push_back(
      {"X-Earshot-Captured-At",
       IsoTimeUtc(request.captured_unix_ms > 0 ? request.captured_unix_ms : NowUnixMs())});
  if (!request.thumbnail_key.empty()) {
    headers.push_back({"X-Earshot-Thumbnail-Key", request.thumbnail_key});
  }

  std::chrono::milliseconds pause = kFirstPause;
  for (int attempt = 1;; ++attempt) {
    http.headers = headers;
    if (!options_.secret.empty()) {
      auto signature = SignWebhookBody(options_.secret, http.body, SystemUnixSeconds());
      if (!signature) return std::unexpected(signature.error().Wrap(where));
      http.headers.push_back({std::string(kWebhookSignatureHeader), std::move(*signature)});
    }
    const std::string tries =
        attempt == 1 ? "" : " (after " + std::to_string(attempt) + " attempts)";
    auto response = SendHttp(http);
    std::optional<Error> failure;
    if (!response) {
      if (response.error().code() != ErrorCode::kUnavailable) {
        return std::unexpected(response.error().Wrap(where));
      }
      // SendHttp says "POST <url> failed: <reason>"; keep the reason.
      std::string_view reason = response.error().message();
      if (const size_t cut = reason.find(" failed: "); cut != std::string_view::npos) {
        reason.remove_prefix(cut + 9);
      }
      failure = Error(ErrorCode::kUnavailable,
                      where + " is unreachable" + tries + ": " + std::string(reason));
    } else if (response->status >= 200 && response->status <= 299) {
      return ParseAnswer(std::move(response->body), where);
    } else {
      std::string message = where + " answered HTTP " + std::to_string(response->status) + tries +
                            ": " + QuotedExcerpt(response->body);
      if (!Retryable(response->status)) {
        if (response->status >= 300 && response->status <= 399) {
          message += " (redirects are not followed; fix the url)";
        }
        return MakeError(ErrorCode::kFailedPrecondition, std::move(message));
      }
      failure = Error(ErrorCode::kUnavailable, std::move(message));
    }
    if (attempt >= options_.max_attempts) return std::unexpected(std::move(*failure));
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, kMaxPause);
  }
}

}  // namespace earshot::delivery
