#include "support/smtp_listener.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <thread>
#include <utility>

namespace earshot::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kPython = "/usr/bin/python3";
constexpr milliseconds kPollStep(20);
constexpr milliseconds kStopGrace(5000);
constexpr milliseconds kOpensslTimeout(60000);

std::filesystem::path ScriptPath() {
#ifdef EARSHOT_SOURCE_DIR
  return std::filesystem::path(EARSHOT_SOURCE_DIR) / "tests" / "support" / "smtp_listener.py";
#else
  return std::filesystem::path(__FILE__).parent_path() / "smtp_listener.py";
#endif
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// Splits the listener's X-Listener-* trace lines off the top of a stored file.
Result<ReceivedMail> ParseStoredMail(const std::filesystem::path& file) {
  std::string text = ReadTextFile(file);
  if (text.empty()) return MakeError(ErrorCode::kIoError, "cannot read " + file.string());
  ReceivedMail mail;
  mail.file = file;
  std::size_t pos = 0;
  while (text.compare(pos, 11, "X-Listener-") == 0) {
    std::size_t end = text.find("\r\n", pos);
    if (end == std::string::npos) break;
    std::string_view line(text.data() + pos, end - pos);
    std::size_t colon = line.find(": ");
    std::string_view name = line.substr(0, colon);
    std::string value(colon == std::string_view::npos ? "" : line.substr(colon + 2));
    if (name == "X-Listener-Mail-From")
      mail.mail_from = value;
    else if (name == "X-Listener-Rcpt-To")
      mail.rcpt_to = SplitList(value);
    else if (name == "X-Listener-TLS")
      mail.tls = value;
    else if (name == "X-Listener-Auth")
      mail.auth_user = value;
    pos = end + 2;
  }
  if (mail.tls.empty()) {
    return MakeError(ErrorCode::kCorruptData, file.string() + " has no X-Listener-TLS trace line");
  }
  mail.data = text.substr(pos);
  return mail;
}

std::string LogTail(const std::filesystem::path& log_file) {
  std::string tail = TailLines(ReadTextFile(log_file), 30);
  return tail.empty() ? std::string("(listener log is empty)")
                      : "listener log (last lines):\n" + tail;
}

}  // namespace

std::optional<std::string> ReceivedMail::Header(std::string_view name) const {
  std::size_t header_end = data.find("\r\n\r\n");
  std::string_view headers(data.data(),
                           header_end == std::string::npos ? data.size() : header_end + 2);
  std::size_t pos = 0;
  while (pos < headers.size()) {
    std::size_t end = headers.find("\r\n", pos);
    if (end == std::string_view::npos) end = headers.size();
    std::string_view line = headers.substr(pos, end - pos);
    pos = end + 2;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !EqualsIgnoreCase(line.substr(0, colon), name)) continue;
    std::string value(line.substr(colon + 1));
    // Folded continuation lines start with white space.
    while (pos < headers.size() && (headers[pos] == ' ' || headers[pos] == '\t')) {
      std::size_t next = headers.find("\r\n", pos);
      if (next == std::string_view::npos) next = headers.size();
      value += headers.substr(pos, next - pos);
      pos = next + 2;
    }
    std::size_t first = value.find_first_not_of(" \t");
    return first == std::string::npos ? std::string() : value.substr(first);
  }
  return std::nullopt;
}

std::string ReceivedMail::Body() const {
  std::size_t header_end = data.find("\r\n\r\n");
  return header_end == std::string::npos ? std::string() : data.substr(header_end + 4);
}

Result<std::unique_ptr<SmtpListener>> SmtpListener::Start(SmtpListenerOptions options) {
  std::error_code ec;
  if (!std::filesystem::exists(kPython, ec)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     std::string("SmtpListener: ") + kPython +
                         " is missing: apt-get install python3 python3-aiosmtpd");
  }
  const std::filesystem::path script = ScriptPath();
  if (!std::filesystem::exists(script, ec)) {
    return MakeError(ErrorCode::kNotFound, "SmtpListener: " + script.string() + " is missing");
  }
  auto dir = ScopedTempDir::Create("earshot-smtp");
  if (!dir) return std::unexpected(dir.error().Wrap("SmtpListener"));
  const std::filesystem::path root = dir->path();
  const std::filesystem::path mailbox = root / "mailbox";
  std::filesystem::create_directories(mailbox, ec);
  if (ec)
    return MakeError(ErrorCode::kIoError,
                     "SmtpListener: mkdir " + mailbox.string() + ": " + ec.message());

  std::vector<std::string> argv = {kPython,
                                   "-I",
                                   script.string(),
                                   "--mailbox",
                                   mailbox.string(),
                                   "--ready-file",
                                   (root / "ready").string(),
                                   "--reject-prefix",
                                   options.reject_prefix,
                                   "--tempfail-prefix",
                                   options.tempfail_prefix};
  std::filesystem::path cert_file;
  if (options.tls != SmtpListenerOptions::Tls::kNone) {
    auto openssl = FindExecutable("openssl");
    if (!openssl) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "SmtpListener: the openssl command is missing: apt-get install openssl");
    }
    cert_file = root / "cert.pem";
    const std::filesystem::path key_file = root / "key.pem";
    auto made = RunCommand({openssl->string(), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key_file.string(),
                            "-out", cert_file.string(), "-days", "2", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
                           kOpensslTimeout);
    if (!made) return std::unexpected(made.error().Wrap("SmtpListener: making a certificate"));
    if (!made->ok()) {
      return MakeError(ErrorCode::kInternal,
                       "SmtpListener: making a certificate: " + made->Describe());
    }
    argv.insert(
        argv.end(),
        {"--tls", options.tls == SmtpListenerOptions::Tls::kImplicit ? "implicit" : "starttls",
         "--cert", cert_file.string(), "--key", key_file.string()});
    if (options.require_starttls) argv.emplace_back("--require-starttls");
  } else {
    argv.insert(argv.end(), {"--tls", "none"});
  }
  if (!options.auth_user.empty()) {
    const std::filesystem::path password_file = root / "password";
    {
      std::ofstream out(password_file, std::ios::binary | std::ios::trunc);
      out << options.auth_password << "\n";
      if (!out)
        return MakeError(ErrorCode::kIoError,
                         "SmtpListener: cannot write " + password_file.string());
    }
    ::chmod(password_file.c_str(), 0600);
    argv.insert(argv.end(),
                {"--auth-user", options.auth_user, "--password-file", password_file.string()});
  }

  const std::filesystem::path log_file = root / "listener.log";
  SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.output_file = log_file;
  auto child = ChildProcess::Spawn(spawn);
  if (!child)
    return std::unexpected(child.error().Wrap("SmtpListener: starting " + script.string()));

  // The script writes the port it bound to "ready" (atomically) once it accepts.
  const auto deadline = Clock::now() + options.start_timeout;
  std::optional<uint16_t> port;
  while (!port) {
    std::string ready = ReadTextFile(root / "ready");
    uint16_t value = 0;
    auto [ptr, conv] = std::from_chars(ready.data(), ready.data() + ready.size(), value);
    if (!ready.empty() && conv == std::errc() && value != 0 && ptr != ready.data()) {
      port = value;
      break;
    }
    if (!child->running()) {
      const ExitStatus status = *child->exit_status();
      if (status.exited() && status.code() == 3) {
        return MakeError(ErrorCode::kFailedPrecondition,
                         std::string("SmtpListener: the Python module aiosmtpd is missing for ") +
                             kPython + ": apt-get install python3-aiosmtpd");
      }
      return MakeError(ErrorCode::kInternal, "SmtpListener: smtp_listener.py ended at start (" +
                                                 status.ToString() + "); " + LogTail(log_file));
    }
    if (Clock::now() >= deadline) {
      child->Stop(SIGTERM, kStopGrace);
      return MakeError(ErrorCode::kUnavailable, "SmtpListener: not ready within " +
                                                    std::to_string(options.start_timeout.count()) +
                                                    " ms; " + LogTail(log_file));
    }
    std::this_thread::sleep_for(kPollStep);
  }
  const bool implicit_tls = options.tls == SmtpListenerOptions::Tls::kImplicit;
  return std::unique_ptr<SmtpListener>(
      new SmtpListener(std::move(*dir), std::move(*child), *port, implicit_tls, cert_file));
}

SmtpListener::SmtpListener(ScopedTempDir dir, ChildProcess child, uint16_t port, bool implicit_tls,
                           std::filesystem::path cert_file)
    : dir_(std::move(dir)),
      child_(std::move(child)),
      port_(port),
      implicit_tls_(implicit_tls),
      cert_file_(std::move(cert_file)),
      mailbox_(dir_.path() / "mailbox"),
      log_file_(dir_.path() / "listener.log") {}

SmtpListener::~SmtpListener() { Stop(); }

void SmtpListener::Stop() { child_.Stop(SIGTERM, kStopGrace); }

std::string SmtpListener::Url() const {
  return std::string(implicit_tls_ ? "smtps" : "smtp") + "://127.0.0.1:" + std::to_string(port_);
}

std::string SmtpListener::Log() const { return ReadTextFile(log_file_); }

Result<std::vector<ReceivedMail>> SmtpListener::Messages() const {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(mailbox_, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::filesystem::path& p = it->path();
    std::string name = p.filename().string();
    if (!name.starts_with(".") && p.extension() == ".eml") files.push_back(p);
  }
  if (ec)
    return MakeError(ErrorCode::kIoError, "listing " + mailbox_.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<ReceivedMail> mails;
  for (const auto& file : files) {
    auto mail = ParseStoredMail(file);
    if (!mail) return std::unexpected(mail.error());
    mails.push_back(std::move(*mail));
  }
  return mails;
}

Result<std::vector<ReceivedMail>> SmtpListener::WaitForMessages(std::size_t n,
                                                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    auto mails = Messages();
    if (!mails) return mails;
    if (mails->size() >= n) return mails;
    if (!child_.running()) {
      return MakeError(ErrorCode::kUnavailable,
                       "SmtpListener: the listener died with " + std::to_string(mails->size()) +
                           " of " + std::to_string(n) + " messages; " + LogTail(log_file_));
    }
    if (Clock::now() >= deadline) {
      return MakeError(ErrorCode::kUnavailable,
                       "SmtpListener: " + std::to_string(mails->size()) + " of " +
                           std::to_string(n) + " messages after " +
                           std::to_string(timeout.count()) + " ms; " + LogTail(log_file_));
    }
    std::this_thread::sleep_for(kPollStep);
  }
}

}  // namespace earshot::testing
