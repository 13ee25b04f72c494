#!/usr/bin/env python3
"""Throwaway SMTP server for fanout's Rust integration tests.

A real SMTP server (aiosmtpd) that the Rust test harness spawns as a child
process, so the email channel is exercised against an actual SMTP dialogue:
plain, implicit TLS or STARTTLS, optional AUTH PLAIN/LOGIN, and scripted
failure replies to DATA.

How the harness uses it:

1. Spawn ``python3 tests/support/smtp_server.py --spool DIR [options]`` with
   stdin and stdout piped.
2. Read the first stdout line, ``READY <port>``; the server is listening on
   ``--host`` at that (kernel-chosen) port.
3. Send mail, then poll ``DIR/<n>.eml`` (n = 1, 2, 3... in order of
   acceptance).  ``<n>.json`` is written before ``<n>.eml`` and both are
   renamed into place, so once ``<n>.eml`` exists both files are complete.
   ``<n>.json`` holds ``mail_from``, ``rcpt_tos``, ``auth_login`` (or null)
   and ``tls`` (whether the session was encrypted).  ``<n>.eml`` holds the
   exact bytes received in DATA.
4. ``DIR/attempts.log`` gets one line per DATA transaction, ``DATA <code>``
   (accepted or failed), and ``AUTH 535`` per rejected login, so tests can
   assert on retries.
5. Drop the child's stdin (or let the test process die): on stdin EOF the
   server exits.  SIGTERM also stops it.

Options:
  --host ADDR                 numeric address to bind (default 127.0.0.1)
  --spool DIR                 where messages are written (created if missing)
  --tls-mode none|implicit|starttls   (starttls also *requires* STARTTLS)
  --tls-cert PEM --tls-key PEM        required unless --tls-mode none
  --auth USER:PASS            require AUTH (PLAIN or LOGIN) before MAIL;
                              allowed over unencrypted connections too
  --fail "CODE TEXT"          answer DATA with exactly this reply...
  --fail-times N              ...for the first N DATA transactions
                              (default -1 = always, when --fail is given)

Only the Python standard library and aiosmtpd (tests/requirements.txt) are
needed.  Diagnostics go to stderr; stdout carries only the READY line.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import ssl
import sys
import threading
import warnings

from aiosmtpd.smtp import SMTP, AuthResult

log = logging.getLogger("smtp_server")


class SpoolHandler:
    """aiosmtpd handler: records every DATA transaction in the spool dir."""

    def __init__(self, spool, fail_reply=None, fail_times=0):
        self.spool = spool
        self.fail_reply = fail_reply
        self.fail_left = fail_times  # -1 = fail forever
        # Continue numbering after anything already in the spool.
        existing = [int(m.group(1)) for name in os.listdir(spool)
                    if (m := re.fullmatch(r"(\d+)\.eml", name))]
        self.count = max(existing, default=0)

    def attempt(self, line):
        """Append one line to attempts.log (never raises)."""
        try:
            with open(os.path.join(self.spool, "attempts.log"), "a") as f:
                f.write(line + "\n")
                f.flush()
        except OSError as e:
            log.error("cannot write attempts.log: %s", e)

    def _write_atomically(self, name, data):
        tmp = os.path.join(self.spool, f".tmp-{name}")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.spool, name))

    async def handle_DATA(self, server, session, envelope):
        if self.fail_reply and self.fail_left != 0:
            if self.fail_left > 0:
                self.fail_left -= 1
            reply = self.fail_reply
        else:
            reply = self._store(server, session, envelope)
        self.attempt(f"DATA {reply[:3]}")
        return reply

    def _store(self, server, session, envelope):
        n = self.count + 1
        login = getattr(session.auth_data, "login", None)
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        transport = server.transport
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_login": login if session.authenticated else None,
            # True for implicit TLS and after a successful STARTTLS.
            "tls": bool(transport
                        and transport.get_extra_info("ssl_object") is not None),
        }
        try:
            # JSON first, .eml last: <n>.eml appearing means both are complete.
            self._write_atomically(f"{n}.json",
                                   json.dumps(meta, indent=2).encode())
            self._write_atomically(f"{n}.eml", envelope.original_content or b"")
        except OSError as e:
            log.error("cannot spool message %d: %s", n, e)
            return "451 4.3.0 Spool write failed"
        self.count = n
        log.info("stored message %d from %r to %r", n, meta["mail_from"],
                 meta["rcpt_tos"])
        return "250 2.0.0 OK"


def make_authenticator(user, password, handler):
    """aiosmtpd authenticator accepting exactly one USER:PASS (PLAIN/LOGIN)."""
    expected = (user.encode(), password.encode())

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (getattr(auth_data, "login", None),
              getattr(auth_data, "password", None)) == expected
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        handler.attempt("AUTH 535")
        # handled=False: let aiosmtpd send its standard "535 5.7.8 ..." reply.
        return AuthResult(success=False, handled=False)

    return authenticator


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--spool", required=True)
    p.add_argument("--tls-mode", choices=("none", "implicit", "starttls"),
                   default="none")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--fail", metavar='"CODE TEXT"')
    p.add_argument("--fail-times", type=int, metavar="N")
    args = p.parse_args(argv)
    if args.tls_mode != "none" and not (args.tls_cert and args.tls_key):
        p.error("--tls-cert and --tls-key are required with --tls-mode "
                + args.tls_mode)
    if args.auth is not None and ":" not in args.auth:
        p.error("--auth must be USER:PASS")
    if args.fail is not None and not re.fullmatch(r"[45]\d\d( .*)?", args.fail):
        p.error('--fail must be a 4xx/5xx reply such as "451 4.3.0 Try again"')
    if args.fail_times is not None:
        if args.fail is None:
            p.error("--fail-times needs --fail")
        if args.fail_times < -1:
            p.error("--fail-times must be >= -1")
    return args


class _QuietAiosmtpd(logging.Filter):
    """Drop aiosmtpd's per-connection warnings about settings we chose on purpose."""

    NOISE = ("auth_required == True but auth_require_tls == False",
             "login_data is deprecated")

    def filter(self, record):
        return not any(n in record.getMessage() for n in self.NOISE)


async def serve(args):
    loop = asyncio.get_running_loop()
    os.makedirs(args.spool, exist_ok=True)
    handler = SpoolHandler(args.spool, args.fail,
                           -1 if args.fail_times is None else args.fail_times)

    ctx = None
    if args.tls_mode != "none":
        # Server-side context: no client certificates requested.
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)

    smtp_kwargs = dict(
        hostname="localhost",  # avoid a (possibly slow) getfqdn() per connection
        enable_SMTPUTF8=True,
        loop=loop,
    )
    if args.tls_mode == "starttls":
        smtp_kwargs.update(tls_context=ctx, require_starttls=True)
    if args.auth is not None:
        user, password = args.auth.split(":", 1)
        smtp_kwargs.update(
            auth_required=True,
            auth_require_tls=False,  # tests run on loopback, plain AUTH is fine
            authenticator=make_authenticator(user, password, handler),
        )

    server = await loop.create_server(
        lambda: SMTP(handler, **smtp_kwargs), args.host, 0,
        ssl=ctx if args.tls_mode == "implicit" else None)
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin():
        # Blocks until the parent closes our stdin (or dies), then stops us.
        # Raw os.read, not sys.stdin: a daemon thread parked inside the
        # buffered reader holds its lock and aborts interpreter shutdown.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()

    print(f"READY {port}", flush=True)
    log.info("listening on %s:%d (tls=%s, auth=%s)", args.host, port,
             args.tls_mode, args.auth is not None)

    await stop.wait()
    log.info("shutting down")
    server.close()
    await server.wait_closed()


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="smtp_server: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").addFilter(_QuietAiosmtpd())
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
