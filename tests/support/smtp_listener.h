// A real SMTP server on 127.0.0.1 for tests: Debian's python3-aiosmtpd, run
// by tests/support/smtp_listener.py under /usr/bin/python3, writing every
// accepted message to a mailbox folder (one .eml file each, atomically).
//
//   auto smtp = testing::SmtpListener::Start();        // STARTTLS offered
//   ASSERT_TRUE(smtp) << smtp.error().ToString();
//   ... send to (*smtp)->Url(), trusting (*smtp)->ca_file() ...
//   auto mails = (*smtp)->WaitForMessages(1, std::chrono::seconds(20));
//   ASSERT_TRUE(mails) << mails.error().ToString();
//   EXPECT_EQ((*mails)[0].tls.substr(0, 8), "STARTTLS");
//
// TLS uses a fresh self-signed certificate (EC P-256, CN=localhost,
// subjectAltName IP:127.0.0.1 and DNS:localhost) made with the openssl CLI in
// the listener's temporary folder; a client trusts it by using ca_file() as
// its CA file.
//
// When /usr/bin/python3, the aiosmtpd module or openssl is missing, Start()
// fails (kFailedPrecondition) with a message naming the apt-get package: tests
// fail, they do not skip.
//
// Bounds: start-up waits at most options.start_timeout; WaitForMessages at
// most its timeout; Stop() sends SIGTERM and SIGKILLs after 5 s. The server
// gets SIGTERM if the test process dies (parent-death signal) and exits by
// itself after 15 minutes. EARSHOT_KEEP_TEST_DIRS=1 keeps the folder (mailbox,
// certificate, listener.log).
//
// Thread safety: one thread at a time per object; Start() from the test's
// main thread (the parent-death signal follows the thread that forked).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "support/process.h"

namespace earshot::testing {

struct SmtpListenerOptions {
  enum class Tls {
    kNone,      // plain SMTP, no STARTTLS offered
    kStartTls,  // STARTTLS offered (smtp://)
    kImplicit,  // TLS from the first byte (smtps://)
  };
  Tls tls = Tls::kStartTls;
  bool require_starttls = false;  // refuse MAIL until STARTTLS (kStartTls only)
  // Non-empty: AUTH PLAIN/LOGIN with these credentials is required (after
  // STARTTLS when tls is kStartTls).
  std::string auth_user;
  std::string auth_password;
  // RCPT of an address whose local part starts with this: "550 5.1.1".
  std::string reject_prefix = "reject";
  // RCPT of an address whose local part starts with this: "451 4.3.0".
  std::string tempfail_prefix = "tempfail";
  std::chrono::milliseconds start_timeout{20000};
};

// One message as the listener stored it.
struct ReceivedMail {
  std::filesystem::path file;        // MAILBOX/NNNNNN.eml
  std::string mail_from;             // reverse path of MAIL FROM
  std::vector<std::string> rcpt_to;  // accepted RCPT TO addresses
  std::string tls;                   // "none", "STARTTLS TLSv1.3", "implicit TLSv1.3"
  std::string auth_user;             // "none" without AUTH
  std::string data;                  // the message as received (CRLF), trace headers removed

  // The first header `name` (case-insensitive) of `data`, unfolded (CRLF +
  // white space removed), or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
  // Everything after the blank line that ends the headers.
  std::string Body() const;
};

class SmtpListener {
 public:
  static Result<std::unique_ptr<SmtpListener>> Start(SmtpListenerOptions options = {});

  SmtpListener(const SmtpListener&) = delete;
  SmtpListener& operator=(const SmtpListener&) = delete;
  ~SmtpListener();

  uint16_t port() const { return port_; }
  // "smtp://127.0.0.1:PORT" (or smtps:// for kImplicit).
  std::string Url() const;
  // The server's self-signed certificate (PEM), to trust as a CA; empty path
  // for Tls::kNone.
  const std::filesystem::path& ca_file() const { return cert_file_; }
  const std::filesystem::path& mailbox() const { return mailbox_; }

  // The messages stored so far, oldest first.
  Result<std::vector<ReceivedMail>> Messages() const;
  // Waits until at least `n` messages are stored, then returns all of them.
  // kUnavailable (with the listener's log tail) if `timeout` passes first or
  // the listener died.
  Result<std::vector<ReceivedMail>> WaitForMessages(std::size_t n,
                                                    std::chrono::milliseconds timeout);

  // The listener's log (aiosmtpd's session transcript); for failure messages.
  std::string Log() const;

  // SIGTERM, then SIGKILL after 5 s; idempotent. Later connections are refused.
  void Stop();

 private:
  SmtpListener(ScopedTempDir dir, ChildProcess child, uint16_t port, bool implicit_tls,
               std::filesystem::path cert_file);

  ScopedTempDir dir_;
  ChildProcess child_;
  uint16_t port_;
  bool implicit_tls_;
  std::filesystem::path cert_file_;
  std::filesystem::path mailbox_;
  std::filesystem::path log_file_;
};

}  // namespace earshot::testing
