#!/usr/bin/python3
"""A real SMTP server on 127.0.0.1 for earshot's tests (driven by smtp_listener.h).

Built on Debian's python3-aiosmtpd; run it with /usr/bin/python3 (a pyenv or
venv python3 on PATH may not see Debian's modules).

  smtp_listener.py --mailbox DIR --ready-file FILE [--tls none|starttls|implicit]
                   [--cert PEM --key PEM] [--require-starttls]
                   [--auth-user USER --password-file F] [--reject-prefix P] [--tempfail-prefix P]
                   [--max-seconds N]

Listens on 127.0.0.1 on a port the kernel picks and, once it accepts
connections, writes that port number to --ready-file (atomically). Every
accepted message becomes one file MAILBOX/NNNNNN.eml, written to a hidden
temporary name and renamed into place, so a reader never sees half a message.
Each file starts with the listener's own trace headers, then the message
exactly as received (after SMTP dot-unstuffing, CRLF line endings):

  X-Listener-Mail-From: <reverse path>
  X-Listener-Rcpt-To: <address>, <address>
  X-Listener-TLS: none | STARTTLS <version> | implicit <version>
  X-Listener-Auth: <user> | none

Scripted refusals: a recipient whose local part starts with --reject-prefix
gets "550 5.1.1"; with --tempfail-prefix, "451 4.3.0". With --auth-user, AUTH
(PLAIN or LOGIN, after STARTTLS) is required; the password is the first line
of --password-file (not argv, which `ps` shows).

Stops on SIGTERM/SIGINT, and by itself after --max-seconds (default 900), so an
orphan never lingers. Exit codes: 0 stopped, 2 bad arguments, 3 aiosmtpd is
missing, 4 could not start.
"""

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    sys.stderr.write(
        "smtp_listener.py: the Python module aiosmtpd is missing for %s: "
        "apt-get install python3-aiosmtpd\n" % sys.executable)
    sys.exit(3)


def write_atomically(path, data):
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, ".%s.%d.tmp" % (name, os.getpid()))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def one_line(text):
    return "".join(c if " " <= c <= "~" else "?" for c in text)


class Handler:
    def __init__(self, mailbox, reject_prefix, tempfail_prefix):
        self.mailbox = mailbox
        self.reject_prefix = reject_prefix.lower()
        self.tempfail_prefix = tempfail_prefix.lower()
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if self.reject_prefix and local.startswith(self.reject_prefix):
            return "550 5.1.1 <%s>: recipient rejected by the test listener" % address
        if self.tempfail_prefix and local.startswith(self.tempfail_prefix):
            return "451 4.3.0 <%s>: try again later (test listener)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        transport = server.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            tls = "none"
        else:
            # session.ssl is set by aiosmtpd only after a STARTTLS upgrade.
            mode = "STARTTLS" if session.ssl is not None else "implicit"
            tls = "%s %s" % (mode, ssl_object.version())
        auth = "none"
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth = session.auth_data.login.decode("utf-8", "replace")
        trace = (
            "X-Listener-Mail-From: %s\r\n" % one_line(envelope.mail_from or "")
            + "X-Listener-Rcpt-To: %s\r\n" % one_line(", ".join(envelope.rcpt_tos))
            + "X-Listener-TLS: %s\r\n" % tls
            + "X-Listener-Auth: %s\r\n" % one_line(auth)
        ).encode("ascii")
        self.count += 1
        name = "%06d.eml" % self.count
        write_atomically(os.path.join(self.mailbox, name), trace + envelope.original_content)
        return "250 2.0.0 OK: stored as %s" % name


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailbox", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="starttls")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--require-starttls", action="store_true")
    parser.add_argument("--auth-user", default="")
    parser.add_argument("--password-file")
    parser.add_argument("--reject-prefix", default="reject")
    parser.add_argument("--tempfail-prefix", default="tempfail")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    if args.tls != "none" and not (args.cert and args.key):
        parser.error("--tls %s needs --cert and --key" % args.tls)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    password = ""
    if args.auth_user:
        if not args.password_file:
            parser.error("--auth-user needs --password-file")
        with open(args.password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\r\n")

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == args.auth_user.encode("utf-8")
              and auth_data.password == password.encode("utf-8"))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    handler = Handler(args.mailbox, args.reject_prefix, args.tempfail_prefix)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(
            handler,
            hostname="earshot-test-listener",
            ident="earshot test SMTP listener (aiosmtpd)",
            tls_context=context if args.tls == "starttls" else None,
            require_starttls=args.require_starttls and args.tls == "starttls",
            auth_required=bool(args.auth_user),
            # aiosmtpd only counts a STARTTLS upgrade as TLS; with implicit TLS
            # the whole session is encrypted already.
            auth_require_tls=args.tls == "starttls",
            authenticator=authenticator if args.auth_user else None,
            timeout=60,
            loop=loop,
        )

    try:
        server = loop.run_until_complete(loop.create_server(
            factory, host="127.0.0.1", port=0,
            ssl=context if args.tls == "implicit" else None))
    except OSError as error:
        sys.stderr.write("smtp_listener.py: cannot listen on 127.0.0.1: %s\n" % error)
        return 4
    port = server.sockets[0].getsockname()[1]
    write_atomically(args.ready_file, ("%d\n" % port).encode("ascii"))
    logging.info("listening on 127.0.0.1:%d, mailbox %s, tls %s", port, args.mailbox, args.tls)

    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.call_later(args.max_seconds, lambda: stop.done() or stop.set_result(None))
    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
