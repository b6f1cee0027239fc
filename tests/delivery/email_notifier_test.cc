// The email notifier: message formatting (pure) and delivery to a real SMTP
// server on 127.0.0.1 (tests/support/smtp_listener.h, python3-aiosmtpd).
#include "delivery/email_notifier.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "support/smtp_listener.h"

namespace earshot::delivery {
namespace {

using std::chrono::milliseconds;
using testing::SmtpListener;
using testing::SmtpListenerOptions;

constexpr milliseconds kWait(20000);
constexpr std::int64_t kT = 1750000000;  // Sun, 15 Jun 2025 15:06:40 +0000

Notification SampleNotification() {
  Notification n;
  n.event_type = "identification.started";
  n.idempotency_key = "st-1/match-0001-started.json";
  n.stream_id = "st-1";
  n.channel_id = "ch-7";
  n.subject = "earshot: 'Battle Theme' (block) in stream st-1";
  n.body =
      "{\"input\": \"rtmp://127.0.0.1/live/st-1\", \"status\": \"match_found\",\n"
      " \"matches\": [{\"track_id\": 2, \"rule\": \"block\"}]}";
  return n;
}

// ---- decoding helpers (what a mail client does) ----

std::string DecodeBase64(std::string_view in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned value = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    std::size_t d = kAlphabet.find(c);
    if (d == std::string::npos) continue;
    value = (value << 6) | static_cast<unsigned>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xff));
    }
  }
  return out;
}

// Decodes a header value made of "=?UTF-8?B?...?=" words separated by folding.
std::string DecodeEncodedWords(const std::string& value) {
  std::string out;
  std::regex word(R"(=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=)");
  for (std::sregex_iterator it(value.begin(), value.end(), word), end; it != end; ++it) {
    out += DecodeBase64((*it)[1].str());
  }
  return out;
}

std::string DecodeQuotedPrintable(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '=') {
      out.push_back(in[i]);
    } else if (in.substr(i + 1, 2) == "\r\n") {
      i += 2;  // soft line break
    } else {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    }
  }
  return out;
}

std::string HeaderOf(const std::string& message, const std::string& name) {
  std::size_t end = message.find("\r\n\r\n");
  std::string head = "\r\n" + message.substr(0, end + 2);
  std::size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "<missing>";
  std::size_t start = at + 2 + name.size() + 2;
  std::string value;
  std::size_t pos = start;
  while (true) {
    std::size_t eol = head.find("\r\n", pos);
    value += head.substr(pos, eol - pos);
    if (eol + 2 < head.size() && (head[eol + 2] == ' ' || head[eol + 2] == '\t')) {
      pos = eol + 2;
    } else {
      break;
    }
  }
  return value;
}

void ExpectOnlyCrlf(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      ASSERT_TRUE(i > 0 && text[i - 1] == '\r') << "bare LF at byte " << i;
    }
    if (text[i] == '\r') {
      ASSERT_TRUE(i + 1 < text.size() && text[i + 1] == '\n') << "bare CR at byte " << i;
    }
  }
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find("\r\n", pos);
    if (eol == std::string::npos) eol = text.size();
    lines.push_back(text.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return lines;
}

// ---- FormatEmailMessage (pure) ----

TEST(EmailMessageTest, HasRfc5322HeadersCrlfAndTheBodyVerbatim) {
  const Notification n = SampleNotification();
  auto message =
      FormatEmailMessage(n, "earshot@example.com", {"ops@example.com", "legal@example.com"}, kT);
  ASSERT_TRUE(message) << message.error().ToString();
  ExpectOnlyCrlf(*message);
  EXPECT_EQ(HeaderOf(*message, "Date"), "Sun, 15 Jun 2025 15:06:40 +0000");
  EXPECT_EQ(HeaderOf(*message, "From"), "earshot@example.com");
  EXPECT_EQ(HeaderOf(*message, "To"), "ops@example.com, legal@example.com");
  EXPECT_EQ(HeaderOf(*message, "Subject"), n.subject);
  EXPECT_TRUE(std::regex_match(HeaderOf(*message, "Message-ID"),
                               std::regex(R"(<[0-9a-f]{40}\.earshot@example\.com>)")))
      << HeaderOf(*message, "Message-ID");
  EXPECT_EQ(HeaderOf(*message, "MIME-Version"), "1.0");
  EXPECT_EQ(HeaderOf(*message, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(HeaderOf(*message, "Content-Transfer-Encoding"), "7bit");
  EXPECT_EQ(HeaderOf(*message, "Auto-Submitted"), "auto-generated");
  EXPECT_EQ(HeaderOf(*message, "X-Earshot-Event"), "identification.started");
  EXPECT_EQ(HeaderOf(*message, "X-Earshot-Idempotency-Key"), n.idempotency_key);
  const std::string body = message->substr(message->find("\r\n\r\n") + 4);
  EXPECT_TRUE(body.starts_with("earshot notification: " + n.subject + "\r\n")) << body;
  EXPECT_NE(body.find("Stream:          st-1\r\n"), std::string::npos) << body;
  EXPECT_NE(body.find("Channel:         ch-7\r\n"), std::string::npos) << body;
  // The JSON with its line break as CRLF, ending the message.
  std::string json_crlf = n.body;
  json_crlf.replace(json_crlf.find('\n'), 1, "\r\n");
  EXPECT_TRUE(body.ends_with(json_crlf + "\r\n")) << body;
}

TEST(EmailMessageTest, MessageIdIsDerivedFromTheIdempotencyKey) {
  Notification a = SampleNotification();
  Notification b = a;
  b.body = "{}";
  b.subject = "another subject";
  Notification c = a;
  c.idempotency_key = "st-1/match-0002-started.json";
  auto ma = FormatEmailMessage(a, "e@example.com", {"o@example.com"}, kT);
  auto mb = FormatEmailMessage(b, "e@example.com", {"o@example.com"}, kT + 600);
  auto mc = FormatEmailMessage(c, "e@example.com", {"o@example.com"}, kT);
  ASSERT_TRUE(ma && mb && mc);
  EXPECT_EQ(HeaderOf(*ma, "Message-ID"), HeaderOf(*mb, "Message-ID"));
  EXPECT_NE(HeaderOf(*ma, "Message-ID"), HeaderOf(*mc, "Message-ID"));
}

TEST(EmailMessageTest, NonAsciiSubjectIsEncodedAndBodyQuotedPrintable) {
  Notification n = SampleNotification();
  n.subject =
      "earshot: 'Café del Mar — Ωmega 日本語の曲名がとても長い場合でも正しく分割されること' "
      "(block)";
  n.body = "{\"title\": \"Café\", \"pad\": \"" + std::string(1500, 'p') + "\"}\n.dot line\n";
  auto message = FormatEmailMessage(n, "earshot@example.com", {"ops@example.com"}, kT);
  ASSERT_TRUE(message) << message.error().ToString();
  ExpectOnlyCrlf(*message);
  const std::string subject = HeaderOf(*message, "Subject");
  EXPECT_TRUE(subject.starts_with("=?UTF-8?B?")) << subject;
  EXPECT_EQ(DecodeEncodedWords(subject), n.subject);
  EXPECT_EQ(HeaderOf(*message, "Content-Transfer-Encoding"), "quoted-printable");
  for (const std::string& line : Lines(*message)) {
    EXPECT_LE(line.size(), 76u) << line;  // RFC 2047 and RFC 2045 limits
    for (char c : line) {
      ASSERT_LT(static_cast<unsigned char>(c), 0x80) << "8-bit byte on the wire: " << line;
    }
  }
  const std::string body = DecodeQuotedPrintable(message->substr(message->find("\r\n\r\n") + 4));
  EXPECT_NE(body.find("earshot notification: " + n.subject + "\r\n"), std::string::npos);
  EXPECT_TRUE(body.ends_with("{\"title\": \"Café\", \"pad\": \"" + std::string(1500, 'p') +
                             "\"}\r\n.dot line\r\n"))
      << body.substr(body.size() > 200 ? body.size() - 200 : 0);
}

TEST(EmailMessageTest, ManyRecipientsAreFolded) {
  std::vector<std::string> to;
  for (int i = 0; i < 30; ++i) to.push_back("recipient-" + std::to_string(i) + "@example.com");
  auto message = FormatEmailMessage(SampleNotification(), "earshot@example.com", to, kT);
  ASSERT_TRUE(message);
  for (const std::string& line : Lines(message->substr(0, message->find("\r\n\r\n")))) {
    EXPECT_LE(line.size(), 78u) << line;
  }
  // Unfolding (removing each CRLF before white space) gives the plain list.
  std::string expected;
  for (std::size_t i = 0; i < to.size(); ++i) expected += (i ? ", " : "") + to[i];
  EXPECT_EQ(HeaderOf(*message, "To"), expected);
}

TEST(EmailMessageTest, HeaderInjectionIsRefused) {
  for (const std::string& subject :
       {std::string("hi\r\nBcc: victim@example.com"), std::string("hi\nBcc: x@y.z"),
        std::string("hi\rthere"), std::string("nul\0byte", 8)}) {
    Notification n = SampleNotification();
    n.subject = subject;
    auto message = FormatEmailMessage(n, "earshot@example.com", {"ops@example.com"}, kT);
    ASSERT_FALSE(message) << subject;
    EXPECT_EQ(message.error().code(), ErrorCode::kInvalidArgument);
  }
  Notification bad_event = SampleNotification();
  bad_event.event_type = "x\r\nBcc: a@b.c";
  EXPECT_FALSE(FormatEmailMessage(bad_event, "earshot@example.com", {"ops@example.com"}, kT));
  Notification no_key = SampleNotification();
  no_key.idempotency_key.clear();
  EXPECT_FALSE(FormatEmailMessage(no_key, "earshot@example.com", {"ops@example.com"}, kT));
  EXPECT_FALSE(FormatEmailMessage(SampleNotification(), "earshot@example.com\r\nBcc: a@b.c",
                                  {"ops@example.com"}, kT));
  EXPECT_FALSE(FormatEmailMessage(SampleNotification(), "earshot@example.com",
                                  {"ops@example.com>\r\nBcc: <a@b.c"}, kT));
}

TEST(EmailMessageTest, PlainAddresses) {
  for (const char* ok :
       {"a@b", "ops@example.com", "first.last+tag@mail.example.co.uk", "x_y-z@h-1.example"}) {
    EXPECT_TRUE(IsPlainEmailAddress(ok)) << ok;
  }
  for (const char* bad :
       {"", "@example.com", "ops@", "ops", "a@b@c", "Ops <ops@example.com>", "ops@example.com>",
        "o ps@example.com", "ops@exa mple.com", ".ops@example.com", "ops..x@example.com",
        "ops@.example.com", "ops@example.com.", "ops@ex\rample.com", "\"quoted\"@example.com",
        "ops@example.com,x@y.z", "café@example.com"}) {
    EXPECT_FALSE(IsPlainEmailAddress(bad)) << bad;
  }
}

// ---- delivery to a real SMTP server ----

class EmailNotifierTest : public ::testing::Test {
 protected:
  static Result<std::unique_ptr<Notifier>> Make(const std::string& spec_text) {
    auto spec = ParseTargetSpec(spec_text);
    if (!spec) return std::unexpected(spec.error());
    return MakeEmailNotifier(*spec);
  }
  static std::string Spec(const SmtpListener& smtp, const std::string& extra = "") {
    std::string spec = "email:url=" + smtp.Url() +
                       ",from=earshot@example.com,to=ops@example.com;legal@example.com";
    if (!smtp.ca_file().empty()) spec += ",ca_file=" + smtp.ca_file().string();
    return spec + extra;
  }
};

TEST_F(EmailNotifierTest, DeliversOverStartTlsToTwoRecipients) {
  auto smtp = SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  auto notifier = Make(Spec(**smtp));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  EXPECT_EQ((*notifier)->name(), "email");

  Notification n = SampleNotification();
  // Lines that SMTP would eat without dot-stuffing; "." alone would end DATA.
  n.body = "{\"status\": \"match_found\",\n.leading dot\n..two dots\n.\n. space\n\"end\": true}";
  auto sent = (*notifier)->Notify(n);
  ASSERT_TRUE(sent) << sent.error().ToString() << "\n" << (*smtp)->Log();

  auto mails = (*smtp)->WaitForMessages(1, kWait);
  ASSERT_TRUE(mails) << mails.error().ToString();
  ASSERT_EQ(mails->size(), 1u);
  const testing::ReceivedMail& mail = mails->front();
  EXPECT_TRUE(mail.tls.starts_with("STARTTLS TLSv1.")) << mail.tls;
  EXPECT_EQ(mail.mail_from, "earshot@example.com");
  EXPECT_EQ(mail.rcpt_to, (std::vector<std::string>{"ops@example.com", "legal@example.com"}));
  EXPECT_EQ(mail.auth_user, "none");
  ExpectOnlyCrlf(mail.data);
  EXPECT_EQ(mail.Header("Subject").value_or("<missing>"), n.subject);
  EXPECT_EQ(mail.Header("From").value_or(""), "earshot@example.com");
  EXPECT_EQ(mail.Header("To").value_or(""), "ops@example.com, legal@example.com");
  EXPECT_TRUE(mail.Header("Date").has_value());
  EXPECT_EQ(mail.Header("Content-Type").value_or(""), "text/plain; charset=utf-8");
  EXPECT_TRUE(mail.Header("Message-ID").value_or("").ends_with(".earshot@example.com>"));
  const std::string body = mail.Body();
  EXPECT_TRUE(body.starts_with("earshot notification: " + n.subject + "\r\n")) << body;
  EXPECT_TRUE(
      body.ends_with("{\"status\": \"match_found\",\r\n.leading dot\r\n..two dots\r\n.\r\n"
                     ". space\r\n\"end\": true}\r\n"))
      << body;
}

TEST_F(EmailNotifierTest, RetriesCarryTheSameMessageId) {
  auto smtp = SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  auto notifier = Make(Spec(**smtp));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  ASSERT_TRUE((*notifier)->Notify(SampleNotification()));
  ASSERT_TRUE((*notifier)->Notify(SampleNotification()));
  auto mails = (*smtp)->WaitForMessages(2, kWait);
  ASSERT_TRUE(mails) << mails.error().ToString();
  ASSERT_EQ(mails->size(), 2u);
  EXPECT_EQ((*mails)[0].Header("Message-ID"), (*mails)[1].Header("Message-ID"));
}

TEST_F(EmailNotifierTest, NonAsciiNotificationArrivesDecodable) {
  auto smtp = SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  auto notifier = Make(Spec(**smtp));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  Notification n = SampleNotification();
  n.subject = "earshot: 'Café' (block) in stream st-1";
  n.body = "{\"title\": \"Café — 日本\"}";
  ASSERT_TRUE((*notifier)->Notify(n));
  auto mails = (*smtp)->WaitForMessages(1, kWait);
  ASSERT_TRUE(mails) << mails.error().ToString();
  EXPECT_EQ(DecodeEncodedWords(mails->front().Header("Subject").value_or("")), n.subject);
  EXPECT_TRUE(DecodeQuotedPrintable(mails->front().Body()).ends_with(n.body + "\r\n"));
}

TEST_F(EmailNotifierTest, CrLfInSubjectIsRefusedAndNothingIsSent) {
  auto smtp = SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  auto notifier = Make(Spec(**smtp));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  Notification n = SampleNotification();
  n.subject = "match\r\nBcc: victim@example.com";
  auto result = (*notifier)->Notify(n);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(result.error().message().find("subject"), std::string::npos);
  // Notify is synchronous: a sent message would already be stored.
  auto mails = (*smtp)->Messages();
  ASSERT_TRUE(mails);
  EXPECT_TRUE(mails->empty());
}

TEST_F(EmailNotifierTest, ServerDownIsUnavailable) {
  auto smtp = SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  const std::string spec = Spec(**smtp, ",timeout_ms=5000");
  (*smtp)->Stop();
  auto notifier = Make(spec);
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto result = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable) << result.error().ToString();
}

TEST_F(EmailNotifierTest, RejectedRecipientIsFailedPreconditionAndNothingIsSent) {
  auto smtp = SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  auto notifier =
      Make("email:url=" + (*smtp)->Url() + ",from=earshot@example.com," +
           "to=ops@example.com;rejected-user@example.com,ca_file=" + (*smtp)->ca_file().string());
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto result = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kFailedPrecondition) << result.error().ToString();
  EXPECT_NE(
      result.error().message().find("550 5.1.1 <rejected-user@example.com>: recipient rejected"),
      std::string::npos)
      << result.error().message();
  auto mails = (*smtp)->Messages();
  ASSERT_TRUE(mails);
  EXPECT_TRUE(mails->empty());
}

TEST_F(EmailNotifierTest, TemporaryRefusalIsUnavailable) {
  auto smtp = SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  auto notifier = Make(
      "email:url=" + (*smtp)->Url() +
      ",from=earshot@example.com,to=tempfail@example.com,ca_file=" + (*smtp)->ca_file().string());
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto result = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable) << result.error().ToString();
  EXPECT_NE(result.error().message().find("451"), std::string::npos) << result.error().message();
}

TEST_F(EmailNotifierTest, TlsModesAgainstAPlainServer) {
  SmtpListenerOptions options;
  options.tls = SmtpListenerOptions::Tls::kNone;
  auto smtp = SmtpListener::Start(options);
  ASSERT_TRUE(smtp) << smtp.error().ToString();

  auto required = Make(Spec(**smtp, ",tls=required"));
  ASSERT_TRUE(required) << required.error().ToString();
  auto refused = (*required)->Notify(SampleNotification());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition) << refused.error().ToString();

  auto try_tls = Make(Spec(**smtp));  // tls=try by default: plain text when not offered
  ASSERT_TRUE(try_tls) << try_tls.error().ToString();
  ASSERT_TRUE((*try_tls)->Notify(SampleNotification()));
  auto none = Make(Spec(**smtp, ",tls=none"));
  ASSERT_TRUE(none) << none.error().ToString();
  ASSERT_TRUE((*none)->Notify(SampleNotification()));
  auto mails = (*smtp)->WaitForMessages(2, kWait);
  ASSERT_TRUE(mails) << mails.error().ToString();
  ASSERT_EQ(mails->size(), 2u);
  EXPECT_EQ((*mails)[0].tls, "none");
  EXPECT_EQ((*mails)[1].tls, "none");
}

TEST_F(EmailNotifierTest, UntrustedCertificateIsFailedPrecondition) {
  auto smtp = SmtpListener::Start();
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  // No ca_file: the system store does not know the self-signed certificate.
  auto notifier =
      Make("email:url=" + (*smtp)->Url() + ",from=earshot@example.com,to=ops@example.com");
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto result = (*notifier)->Notify(SampleNotification());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kFailedPrecondition) << result.error().ToString();
  auto mails = (*smtp)->Messages();
  ASSERT_TRUE(mails);
  EXPECT_TRUE(mails->empty());
}

TEST_F(EmailNotifierTest, AuthenticatesAfterStartTls) {
  SmtpListenerOptions options;
  options.auth_user = "earshot";
  options.auth_password = "smtp-test-password";
  options.require_starttls = true;
  auto smtp = SmtpListener::Start(options);
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  ::setenv("EARSHOT_TEST_SMTP_PASSWORD", "smtp-test-password", 1);
  auto notifier = Make(Spec(**smtp, ",username=earshot,password_env=EARSHOT_TEST_SMTP_PASSWORD"));
  ::setenv("EARSHOT_TEST_SMTP_PASSWORD", "wrong-password", 1);
  auto wrong = Make(Spec(**smtp, ",username=earshot,password_env=EARSHOT_TEST_SMTP_PASSWORD"));
  ::unsetenv("EARSHOT_TEST_SMTP_PASSWORD");
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  ASSERT_TRUE(wrong) << wrong.error().ToString();

  auto sent = (*notifier)->Notify(SampleNotification());
  ASSERT_TRUE(sent) << sent.error().ToString() << "\n" << (*smtp)->Log();
  auto mails = (*smtp)->WaitForMessages(1, kWait);
  ASSERT_TRUE(mails) << mails.error().ToString();
  EXPECT_EQ(mails->front().auth_user, "earshot");
  EXPECT_TRUE(mails->front().tls.starts_with("STARTTLS")) << mails->front().tls;

  auto denied = (*wrong)->Notify(SampleNotification());
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), ErrorCode::kFailedPrecondition) << denied.error().ToString();
  EXPECT_EQ(denied.error().message().find("wrong-password"), std::string::npos);

  // Without credentials the server refuses MAIL (530): a configuration error.
  auto anonymous = Make(Spec(**smtp));
  ASSERT_TRUE(anonymous);
  auto refused = (*anonymous)->Notify(SampleNotification());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition) << refused.error().ToString();
}

TEST_F(EmailNotifierTest, DeliversOverImplicitTls) {
  SmtpListenerOptions options;
  options.tls = SmtpListenerOptions::Tls::kImplicit;
  auto smtp = SmtpListener::Start(options);
  ASSERT_TRUE(smtp) << smtp.error().ToString();
  ASSERT_TRUE((*smtp)->Url().starts_with("smtps://"));
  auto notifier = Make(Spec(**smtp));
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  auto sent = (*notifier)->Notify(SampleNotification());
  ASSERT_TRUE(sent) << sent.error().ToString() << "\n" << (*smtp)->Log();
  auto mails = (*smtp)->WaitForMessages(1, kWait);
  ASSERT_TRUE(mails) << mails.error().ToString();
  EXPECT_TRUE(mails->front().tls.starts_with("implicit TLSv1.")) << mails->front().tls;
}

TEST(EmailNotifierSpecTest, SpecErrorsNameTheProblem) {
  ::unsetenv("EARSHOT_SMTP_PASSWORD");
  ::unsetenv("EARSHOT_TEST_SMTP_UNSET");
  const std::string base =
      "email:url=smtp://127.0.0.1:2525,from=earshot@example.com,to=ops@example.com";
  std::string many = "email:url=smtp://127.0.0.1:2525,from=e@example.com,to=";
  for (int i = 0; i < 101; ++i) many += "r" + std::to_string(i) + "@example.com;";
  struct Case {
    std::string spec;
    std::string expected;
  };
  const Case cases[] = {
      {"email:from=e@example.com,to=o@example.com", "missing url="},
      {"email:url=smtp://127.0.0.1:2525,to=o@example.com", "missing from="},
      {"email:url=smtp://127.0.0.1:2525,from=e@example.com", "missing to="},
      {"email:url=http://127.0.0.1:2525,from=e@example.com,to=o@example.com",
       "not an smtp:// or smtps://"},
      {"email:url=smtp://u:p@127.0.0.1,from=e@example.com,to=o@example.com", "user:password@"},
      {"email:url=smtp://127.0.0.1/x?y=1,from=e@example.com,to=o@example.com", "query"},
      {"email:url=smtp://,from=e@example.com,to=o@example.com", "has no host"},
      {"email:url=smtp://127.0.0.1,from=Earshot <e@example.com>,to=o@example.com", "from="},
      {"email:url=smtp://127.0.0.1,from=e@example.com,to=o@example.com;not-an-address",
       "not-an-address"},
      {"email:url=smtp://127.0.0.1,from=e@example.com,to=o@example.com\r\nBcc: x@example.com",
       "control characters"},
      {"email:url=smtp://127.0.0.1,from=e@example.com,to=;;", "lists no address"},
      {many, "more than 100"},
      {base + ",tls=maybe", "tls='maybe'"},
      {"email:url=smtps://127.0.0.1,from=e@example.com,to=o@example.com,tls=none",
       "contradicts an smtps://"},
      {base + ",password_env=X", "without username"},
      {base + ",username=earshot", "EARSHOT_SMTP_PASSWORD"},
      {base + ",username=earshot,password_env=EARSHOT_TEST_SMTP_UNSET", "EARSHOT_TEST_SMTP_UNSET"},
      {base + ",ca_file=/nonexistent/ca.pem", "ca_file '/nonexistent/ca.pem'"},
      {base + ",ca_file=/", "ca_file '/'"},
      {base + ",timeout_ms=-1", "timeout_ms='-1'"},
      {base + ",bcc=x@example.com", "unknown option 'bcc'"},
  };
  for (const Case& c : cases) {
    auto spec = ParseTargetSpec(c.spec);
    ASSERT_TRUE(spec) << c.spec;
    auto notifier = MakeEmailNotifier(*spec);
    ASSERT_FALSE(notifier) << c.spec;
    EXPECT_EQ(notifier.error().code(), ErrorCode::kInvalidArgument) << c.spec;
    EXPECT_NE(notifier.error().message().find(c.expected), std::string::npos)
        << c.spec << " -> " << notifier.error().message();
  }
  TargetSpec wrong_kind{"webhook", {{"url", "smtp://127.0.0.1"}}};
  EXPECT_FALSE(MakeEmailNotifier(wrong_kind));
  // Valid: duplicates collapse, spaces around ';' are fine.
  auto ok =
      ParseTargetSpec(base + "; ops@example.com ; legal@example.com,tls=none,timeout_ms=2000");
  ASSERT_TRUE(ok);
  EXPECT_TRUE(MakeEmailNotifier(*ok));
}

}  // namespace
}  // namespace earshot::delivery
