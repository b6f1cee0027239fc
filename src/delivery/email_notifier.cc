#include "delivery/email_notifier.h"

#include "delivery/header_text.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <utility>

#include "delivery/http_client.h"

namespace earshot::delivery {
namespace {

constexpr int kDefaultTimeoutMs = 30000;
constexpr int kMaxTimeoutMs = 600000;
constexpr int kMaxConnectTimeoutMs = 10000;
constexpr size_t kMaxRecipients = 100;
constexpr size_t kMaxLineBytes = 998;  // RFC 5322 2.1.1, without the CRLF
constexpr size_t kMaxReplyExcerpt = 300;

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

bool IsPrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c <= 0x7e);
  });
}

std::string Hex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

// RFC 5322 date-time in UTC without locale: "Tue, 05 Mar 2024 10:00:00 +0000".
std::string RfcDate(std::int64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

// Every line break (CRLF, lone CR, lone LF) as CRLF.
std::string NormalizeNewlines(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32 + 2);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// True when CRLF-separated `text` can go as Content-Transfer-Encoding 7bit.
bool Fits7Bit(std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (line.size() > kMaxLineBytes || !IsPrintableAscii(line)) return false;
    start = end + 2;
  }
  return true;
}

// RFC 2045 6.7 quoted-printable of CRLF-separated `text`; encoded lines are at
// most 76 characters (soft breaks "=" CRLF). Hard line breaks stay CRLF.
std::string QuotedPrintable(std::string_view text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find("\r\n", start);
    bool has_break = end != std::string_view::npos;
    if (!has_break) end = text.size();
    std::string_view line = text.substr(start, end - start);
    size_t column = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      auto c = static_cast<unsigned char>(line[i]);
      bool last = i + 1 == line.size();
      char piece[3];
      size_t piece_len = 1;
      if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
        piece[0] = static_cast<char>(c);
      } else {
        piece[0] = '=';
        piece[1] = kDigits[c >> 4];
        piece[2] = kDigits[c & 0xf];
        piece_len = 3;
      }
      if (column + piece_len > 75) {
        out += "=\r\n";
        column = 0;
      }
      out.append(piece, piece_len);
      column += piece_len;
    }
    if (has_break) out += "\r\n";
    start = end + 2;
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

// The Subject header value: as is when it is short printable ASCII, else
// RFC 2047 "B" encoded words of whole UTF-8 characters, folded.
std::string SubjectValue(std::string_view subject) {
  constexpr size_t kRawLimit = kMaxLineBytes - 9;  // "Subject: "
  if (IsPrintableAscii(subject) && subject.size() <= kRawLimit &&
      subject.find("=?") == std::string_view::npos) {
    return std::string(subject);
  }
  // RFC 2047 2: a line holding encoded words is at most 76 characters. The
  // first line also holds "Subject: " (9), continuation lines one space;
  // each word adds 12 characters of "=?UTF-8?B?" and "?=" to its base64.
  constexpr size_t kFirstChunk = 39;  // 52 base64 chars: 9 + 12 + 52 = 73
  constexpr size_t kNextChunk = 45;   // 60 base64 chars: 1 + 12 + 60 = 73
  std::string out;
  size_t pos = 0;
  while (pos < subject.size()) {
    size_t n = std::min(out.empty() ? kFirstChunk : kNextChunk, subject.size() - pos);
    if (pos + n < subject.size()) {
      size_t cut = n;  // back off to the start of a UTF-8 character
      while (cut > 0 && (static_cast<unsigned char>(subject[pos + cut]) & 0xC0) == 0x80) --cut;
      if (cut > 0) n = cut;
    }
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64(subject.substr(pos, n)) + "?=";
    pos += n;
  }
  return out;
}

// "To: a@x, b@y" folded before 78 columns.
std::string ToHeader(const std::vector<std::string>& to) {
  std::string out = "To: ";
  size_t column = out.size();
  for (size_t i = 0; i < to.size(); ++i) {
    std::string piece = to[i] + (i + 1 < to.size() ? "," : "");
    if (i > 0) {
      if (column + 1 + piece.size() > 78) {
        out += "\r\n ";
        column = 1;
      } else {
        out += " ";
        ++column;
      }
    }
    out += piece;
    column += piece.size();
  }
  return out + "\r\n";
}

std::string_view DomainOf(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view("earshot.invalid")
                                      : address.substr(at + 1);
}

Result<int> ParseTimeoutMs(const TargetSpec& spec) {
  return IntOption(spec, "timeout_ms", kDefaultTimeoutMs, 1, kMaxTimeoutMs);
}

// Validates url=; returns whether it is smtps://.
Result<bool> CheckSmtpUrl(const std::string& url) {
  std::string lower = AsciiLower(url);
  bool implicit_tls = lower.starts_with("smtps://");
  size_t scheme_end = implicit_tls ? 8 : lower.starts_with("smtp://") ? 7 : 0;
  if (scheme_end == 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "email: url '" + RedactUrl(url) + "' is not an smtp:// or smtps:// URL");
  }
  if (HasControlChars(url) || url.find_first_of(" \t") != std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "email: url contains white space or controls");
  }
  if (url.find_first_of("?#") != std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "email: url must not have a query or fragment");
  }
  size_t authority_end = url.find('/', scheme_end);
  std::string_view authority = std::string_view(url).substr(
      scheme_end,
      authority_end == std::string::npos ? std::string::npos : authority_end - scheme_end);
  if (authority.find('@') != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "email: url must not carry user:password@ (use username= and password_env=)");
  }
  if (authority.empty() || authority.front() == ':') {
    return MakeError(ErrorCode::kInvalidArgument, "email: url '" + url + "' has no host");
  }
  return implicit_tls;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

Result<std::vector<std::string>> ParseRecipients(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(';', start);
    if (end == std::string::npos) end = list.size();
    std::string address = Trim(std::string_view(list).substr(start, end - start));
    start = end + 1;
    if (address.empty()) continue;
    if (!IsPlainEmailAddress(address)) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          "email: to= address '" +
              (HasControlChars(address) ? std::string("(with control characters)") : address) +
              "' is not a plain local@domain address");
    }
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(std::move(address));
  }
  if (out.empty()) return MakeError(ErrorCode::kInvalidArgument, "email: to= lists no address");
  if (out.size() > kMaxRecipients) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "email: to= lists more than " + std::to_string(kMaxRecipients) + " addresses");
  }
  return out;
}

enum class TlsMode { kTry, kRequired, kNone };

struct UploadState {
  std::string_view data;
  size_t pos = 0;
};

size_t OnRead(char* buffer, size_t size, size_t count, void* user) {
  auto* state = static_cast<UploadState*>(user);
  size_t n = std::min(size * count, state->data.size() - state->pos);
  std::copy_n(state->data.data() + state->pos, n, buffer);
  state->pos += n;
  return n;
}

// The server's replies as libcurl reports them (CURLINFO_HEADER_IN only: never
// what we send, which includes AUTH credentials).
struct ServerReplies {
  std::string last;        // the last reply line
  std::string last_error;  // the last 4xx/5xx reply line (libcurl QUITs after one)
};

int OnDebug(CURL*, curl_infotype type, char* data, size_t size, void* user) {
  if (type != CURLINFO_HEADER_IN) return 0;
  auto* replies = static_cast<ServerReplies*>(user);
  std::string_view text(data, size);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  size_t nl = text.rfind('\n');
  if (nl != std::string_view::npos) text.remove_prefix(nl + 1);
  if (text.empty()) return 0;
  std::string line(text.substr(0, kMaxReplyExcerpt));
  for (char& ch : line) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) ch = ' ';
  }
  if (line[0] == '4' || line[0] == '5') replies->last_error = line;
  replies->last = std::move(line);
  return 0;
}

// The reply code at the start of `line` ("550 5.1.1 ..." -> 550), or 0.
long ReplyCode(std::string_view line) {
  long code = 0;
  auto [ptr, ec] =
      std::from_chars(line.data(), line.data() + std::min<size_t>(3, line.size()), code);
  return ec == std::errc() && ptr == line.data() + 3 ? code : 0;
}

class EmailNotifier final : public Notifier {
 public:
  struct Config {
    std::string url;
    std::string from;
    std::vector<std::string> to;
    std::string username;
    std::string password;
    TlsMode tls = TlsMode::kTry;
    bool implicit_tls = false;
    std::string ca_file;
    int timeout_ms = kDefaultTimeoutMs;
  };

  explicit EmailNotifier(Config config)
      : config_(std::move(config)), shown_url_(RedactUrl(config_.url)) {}

  const std::string& name() const override { return name_; }

  Status Notify(const Notification& notification) override {
    const std::string where =
        "email via " + shown_url_ + " to " + std::to_string(config_.to.size()) + " recipient(s)";
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto message = FormatEmailMessage(notification, config_.from, config_.to, now);
    if (!message) return std::unexpected(message.error().Wrap(where));

    InitHttpClient();  // the same global libcurl initialisation
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    if (!curl) return MakeError(ErrorCode::kInternal, where + ": cannot create a libcurl handle");
    std::unique_ptr<curl_slist, SlistDeleter> recipients;
    for (const std::string& address : config_.to) {
      curl_slist* head = curl_slist_append(recipients.get(), ("<" + address + ">").c_str());
      if (head == nullptr) return MakeError(ErrorCode::kInternal, where + ": out of memory");
      if (!recipients) recipients.reset(head);
    }
    const std::string mail_from = "<" + config_.from + ">";
    UploadState upload{*message, 0};
    ServerReplies replies;
    char error_buffer[CURL_ERROR_SIZE] = {};

    CURL* h = curl.get();
    curl_easy_setopt(h, CURLOPT_URL, config_.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(config_.timeout_ms, kMaxConnectTimeoutMs)));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout_ms));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, mail_from.c_str());
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, recipients.get());
    // Leave CURLOPT_MAIL_RCPT_ALLOWFAILS off: one rejected recipient aborts
    // the whole message, so a retry never mails the accepted ones twice.
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(h, CURLOPT_READDATA, &upload);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message->size()));
    // The message is sent as built: CRLF line endings already, so no
    // CURLOPT_CRLF conversion. SMTP dot-stuffing (RFC 5321 4.5.2) is done by
    // libcurl: in 7.88, lib/smtp.c Curl_smtp_escape_eob() rewrites every
    // "CRLF." of the upload as "CRLF..", and smtp_perform() starts each
    // message with smtp->eob = 2 ("the first character is implicitly preceded
    // by a virtual CRLF"), so a '.' at the very start is doubled too; it also
    // adds the final CRLF before ".CRLF" when the data does not end in one.
    // It only recognises CRLF, which is why FormatEmailMessage emits CRLF
    // only. (email_notifier_test sends lines ".x", "..y" and "." and checks
    // they arrive intact.)
    switch (config_.tls) {
      case TlsMode::kTry:
        curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
        break;
      case TlsMode::kRequired:
        curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
        break;
      case TlsMode::kNone:
        curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_NONE));
        break;
    }
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!config_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, config_.ca_file.c_str());
    if (!config_.username.empty()) {
      curl_easy_setopt(h, CURLOPT_USERNAME, config_.username.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, config_.password.c_str());
    }
    // Verbose only feeds OnDebug (nothing is printed), which keeps the
    // server's last reply for error messages.
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, OnDebug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &replies);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);

    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) return Ok();
    long reply = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply);
    if (reply < 400 && !replies.last_error.empty()) reply = ReplyCode(replies.last_error);
    std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
    if (!replies.last_error.empty()) {
      detail += " (server answered '" + replies.last_error + "')";
    } else if (!replies.last.empty()) {
      detail += " (server's last reply: '" + replies.last + "')";
    }
    return MakeError(Classify(rc, reply), where + " failed: " + detail);
  }

 private:
  static ErrorCode Classify(CURLcode rc, long reply) {
    switch (rc) {
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return ErrorCode::kInvalidArgument;
      case CURLE_USE_SSL_FAILED:            // tls=required, no STARTTLS offered
      case CURLE_PEER_FAILED_VERIFICATION:  // untrusted certificate or wrong name
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CERTPROBLEM:
        return ErrorCode::kFailedPrecondition;
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_GOT_NOTHING:
        return ErrorCode::kUnavailable;
      default:
        break;
    }
    if (reply >= 500 && reply <= 599) return ErrorCode::kFailedPrecondition;
    if (reply >= 400 && reply <= 499) return ErrorCode::kUnavailable;
    if (rc == CURLE_LOGIN_DENIED) return ErrorCode::kFailedPrecondition;
    return ErrorCode::kUnavailable;  // connection broken mid-way, TLS handshake failure, ...
  }

  const std::string name_ = "email";
  const Config config_;
  const std::string shown_url_;
};

}  // namespace

bool IsPlainEmailAddress(std::string_view address) {
  if (address.size() < 3 || address.size() > 254) return false;
  size_t at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64 ||
      address.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  std::string_view local = address.substr(0, at);
  std::string_view domain = address.substr(at + 1);
  static constexpr std::string_view kLocalSpecials = "!#$%&'*+-/=?^_`{|}~.";
  for (char ch : local) {
    auto c = static_cast<unsigned char>(ch);
    if (!std::isalnum(c) && kLocalSpecials.find(ch) == std::string_view::npos) return false;
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return false;
  }
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' || domain.front() == '-' ||
      domain.find("..") != std::string_view::npos) {
    return false;
  }
  for (char ch : domain) {
    auto c = static_cast<unsigned char>(ch);
    if (!std::isalnum(c) && ch != '-' && ch != '.') return false;
  }
  return true;
}

Result<std::string> FormatEmailMessage(const Notification& notification, const std::string& from,
                                       const std::vector<std::string>& to,
                                       std::int64_t unix_seconds) {
  if (HasControlChars(notification.subject)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the subject has CR, LF or other control characters (header injection?)");
  }
  if (notification.event_type.empty() || !IsPrintableAscii(notification.event_type)) {
    return MakeError(ErrorCode::kInvalidArgument, "the event type is empty or not printable ASCII");
  }
  if (notification.idempotency_key.empty() || HasControlChars(notification.idempotency_key)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the idempotency key is empty or has control characters");
  }
  if (!IsPlainEmailAddress(from)) {
    return MakeError(ErrorCode::kInvalidArgument, "the sender address is not local@domain");
  }
  if (to.empty()) return MakeError(ErrorCode::kInvalidArgument, "no recipient");
  for (const std::string& address : to) {
    if (!IsPlainEmailAddress(address)) {
      return MakeError(ErrorCode::kInvalidArgument, "a recipient address is not local@domain");
    }
  }

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(notification.idempotency_key.data(), notification.idempotency_key.size(), digest,
                 &digest_len, EVP_sha256(), nullptr) != 1 ||
      digest_len < 20) {
    return MakeError(ErrorCode::kInternal, "SHA-256 failed in OpenSSL");
  }
  // 160 bits of the key's hash: the same Message-ID on every retry.
  std::string message_id = "<" + Hex(digest, 20) + ".earshot@" + std::string(DomainOf(from)) + ">";

  std::string text;
  text += "earshot notification: " + notification.subject + "\r\n\r\n";
  text += "Event:           " + notification.event_type + "\r\n";
  text += "Stream:          " + notification.stream_id + "\r\n";
  if (!notification.channel_id.empty())
    text += "Channel:         " + notification.channel_id + "\r\n";
  text += "Idempotency key: " + notification.idempotency_key + "\r\n";
  text += "\r\nThe notification (JSON) follows.\r\n\r\n";
  text += notification.body;
  text = NormalizeNewlines(text);
  if (!text.ends_with("\r\n")) text += "\r\n";
  const bool seven_bit = Fits7Bit(text);

  std::string out;
  out += "Date: " + RfcDate(unix_seconds) + "\r\n";
  out += "From: " + from + "\r\n";
  out += ToHeader(to);
  out += "Subject: " + SubjectValue(notification.subject) + "\r\n";
  out += "Message-ID: " + message_id + "\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += std::string("Content-Transfer-Encoding: ") + (seven_bit ? "7bit" : "quoted-printable") +
         "\r\n";
  out += "Auto-Submitted: auto-generated\r\n";  // RFC 3834: no auto-replies, please
  out += "X-Earshot-Event: " + notification.event_type + "\r\n";
  if (IsPrintableAscii(notification.idempotency_key) &&
      notification.idempotency_key.size() <= kMaxLineBytes - 27) {
    out += "X-Earshot-Idempotency-Key: " + notification.idempotency_key + "\r\n";
  }
  out += "\r\n";
  out += seven_bit ? text : QuotedPrintable(text);
  return out;
}

Result<std::unique_ptr<Notifier>> MakeEmailNotifier(const TargetSpec& spec) {
  if (spec.kind != "email") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "email: spec kind is '" + spec.kind + "', expected 'email'");
  }
  if (auto known = CheckKnownOptions(
          spec, {"url", "from", "to", "username", "password_env", "tls", "ca_file", "timeout_ms"});
      !known) {
    return std::unexpected(known.error());
  }
  EmailNotifier::Config config;
  auto url = RequiredOption(spec, "url");
  if (!url) return std::unexpected(url.error());
  auto implicit_tls = CheckSmtpUrl(*url);
  if (!implicit_tls) return std::unexpected(implicit_tls.error());
  config.url = std::move(*url);
  config.implicit_tls = *implicit_tls;

  auto from = RequiredOption(spec, "from");
  if (!from) return std::unexpected(from.error());
  if (!IsPlainEmailAddress(*from)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "email: from='" +
                         (HasControlChars(*from) ? std::string("(with control characters)") : *from) +
                         "' is not a plain local@domain address");
  }
  config.from = std::move(*from);

  auto to = RequiredOption(spec, "to");
  if (!to) return std::unexpected(to.error());
  auto recipients = ParseRecipients(*to);
  if (!recipients) return std::unexpected(recipients.error());
  config.to = std::move(*recipients);

  config.username = OptionOr(spec, "username", "");
  if (HasControlChars(config.username)) {
    return MakeError(ErrorCode::kInvalidArgument, "email: username has control characters");
  }
  if (!config.username.empty()) {
    auto password = SecretOption(spec, "password", "EARSHOT_SMTP_PASSWORD");
    if (!password) return std::unexpected(password.error());
    config.password = std::move(*password);
  } else if (spec.options.contains("password_env")) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "email: password_env=... given without username=...");
  }

  std::string tls = OptionOr(spec, "tls", config.username.empty() ? "try" : "required");
  if (tls == "try") {
    config.tls = TlsMode::kTry;
  } else if (tls == "required") {
    config.tls = TlsMode::kRequired;
  } else if (tls == "none") {
    if (config.implicit_tls) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "email: tls=none contradicts an smtps:// url (TLS from the first byte)");
    }
    config.tls = TlsMode::kNone;
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "email: tls='" + tls + "' must be try, required or none");
  }

  config.ca_file = OptionOr(spec, "ca_file", "");
  if (!config.ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(config.ca_file, ec) || !std::ifstream(config.ca_file)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "email: ca_file '" + config.ca_file + "' is not a readable file");
    }
  }

  auto timeout_ms = ParseTimeoutMs(spec);
  if (!timeout_ms) return std::unexpected(timeout_ms.error());
  config.timeout_ms = *timeout_ms;

  return std::make_unique<EmailNotifier>(std::move(config));
}

}  // namespace earshot::delivery
