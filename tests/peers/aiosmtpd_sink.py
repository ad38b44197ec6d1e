#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aiosmtpd_sink: a real third-party SMTP server for aimx's integration
tests: Debian's aiosmtpd (package python3-aiosmtpd, 1.4.3 in Debian 12)
with a handler that records every message it accepts.

aiosmtpd's own SMTP protocol code does everything on the wire; this
script only binds the sockets, records messages and stops.  Loopback only:
every --listen address must be in 127.0.0.0/8 or ::1.

Usage
-----
  /usr/bin/python3 aiosmtpd_sink.py --port-file FILE --record DIR
        [--listen 127.0.0.1] [--listen ::1] [--port 0]
        [--data-size-limit none|N] [--hostname sink.test] [--smtputf8]
        [--tls-cert CERT.pem --tls-key KEY.pem]

  --listen      repeatable; default 127.0.0.1; one port for all.
  --port        0 (default): a port free on every address.
  --port-file   written (tmp + rename) with the port once listening.
  --record      directory for the records (created if missing).
  --data-size-limit  "none" (default: no limit and no SIZE extension, for
                large messages) or N octets (advertised as SIZE N; more
                data gets "552 Error: Too much mail data").  aiosmtpd's own
                default would be 33554432.
  --hostname    the name in the greeting and EHLO reply (default sink.test;
                aiosmtpd would otherwise ask socket.getfqdn(), i.e. DNS).
  --smtputf8    enable_SMTPUTF8=True (advertise SMTPUTF8); off by default,
                as in aiosmtpd.
  --tls-cert/--tls-key  offer STARTTLS with this certificate
                (require_starttls=False: plaintext still accepted).
Runs until SIGTERM or SIGINT, then exits 0 (open connections are closed);
also stops when the process that started it goes away.  Logs aiosmtpd's
INFO log (every command line) to stderr.

What aiosmtpd 1.4.3 does on the wire (read from its source, checked by
tests/peers/test_smtp_peers.py):
  greeting "220 HOSTNAME Python SMTP 1.4.3"; EHLO reply "250-HOSTNAME",
  "250-SIZE N" (only with a limit), "250-8BITMIME", "250-SMTPUTF8" (only
  --smtputf8), "250-STARTTLS" (only with a certificate, before TLS),
  "250-AUTH LOGIN PLAIN" (only after STARTTLS), "250 HELP".  No
  PIPELINING in the EHLO reply, but pipelined commands are read line by
  line and answered in order.  Command lines are limited to 512 octets
  (more with SIZE/SMTPUTF8 for MAIL); DATA lines to 1001 octets including
  the CRLF (longer: "500 Line too long (see RFC5321 4.5.3.1.6)" after the
  final dot, message discarded).  Data lines are split on CRLF only (a bare
  LF stays inside its line), one leading "." is removed from every line
  that starts with one (un-dot-stuffing), nothing else is changed: CRLF
  line ends are kept and the last line's CRLF is part of the message.
  envelope.original_content holds those bytes; envelope.content is the
  same bytes object unless decode_data=True (then a str).  mail_options and
  rcpt_options are upper-cased by aiosmtpd ("BODY=8BITMIME").

Records
-------
For every message accepted (handle_DATA), n = 1, 2, ... in order:
  DIR/msg-<n>.eml   envelope.original_content, exactly (written first)
  DIR/msg-<n>.json  {"n", "mail_from", "rcpt_tos", "mail_options",
                     "rcpt_options", "smtp_utf8", "peer" ("ADDR:PORT",
                     "[::1]:PORT"), "client_addr", "local" (ADDR:PORT it was
                     received on), "ehlo_name" (session.host_name, from
                     EHLO or HELO), "extended_smtp" (EHLO rather than HELO),
                     "tls" (after STARTTLS), "session" (connection number),
                     "size", "sha256", "eml" (path)}
Both are written atomically (tmp + rename), the .json last: a message is
complete once its .json exists.  The reply is "250 OK queued as msg-<n>".
DIR/stats.json, rewritten atomically at start and when a connection opens
or closes and when a message is recorded:
  {"sessions": N, "open": K, "max_concurrent": M, "messages": X}
"""

import argparse
import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import signal
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

from aiosmtpd.smtp import SMTP


def hostport(addr):
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class State:
    def __init__(self, record_dir):
        self.dir = record_dir
        self.sessions = 0
        self.open = 0
        self.max_concurrent = 0
        self.messages = 0
        self.live = set()

    def write_stats(self):
        write_atomic(os.path.join(self.dir, "stats.json"), json.dumps(
            {"sessions": self.sessions, "open": self.open,
             "max_concurrent": self.max_concurrent,
             "messages": self.messages}).encode())


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP, counting connections and noting the local
    address (connection_made runs again after STARTTLS: counted once)."""

    def __init__(self, handler, state, **kw):
        super().__init__(handler, **kw)
        self.state = state
        self.local = None
        self.conn_n = None
        self.counted = False

    def connection_made(self, transport):
        if not self.counted:
            self.counted = True
            st = self.state
            st.sessions += 1
            st.open += 1
            st.max_concurrent = max(st.max_concurrent, st.open)
            st.live.add(self)
            st.write_stats()
            self.conn_n = st.sessions
            self.local = transport.get_extra_info("sockname")
        super().connection_made(transport)

    def connection_lost(self, error):
        try:
            super().connection_lost(error)
        finally:
            if self in self.state.live:
                self.state.live.discard(self)
                self.state.open -= 1
                self.state.write_stats()


class Recorder:
    """The aiosmtpd handler: every accepted message to DIR."""

    def __init__(self, state):
        self.state = state

    async def handle_DATA(self, server, session, envelope):
        st = self.state
        st.messages += 1
        n = st.messages
        data = envelope.original_content
        eml = os.path.join(st.dir, f"msg-{n}.eml")
        write_atomic(eml, data)
        peer = session.peer
        meta = {"n": n, "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "mail_options": list(envelope.mail_options),
                "rcpt_options": list(envelope.rcpt_options),
                "smtp_utf8": bool(envelope.smtp_utf8),
                "peer": hostport(peer) if peer else None,
                "client_addr": peer[0] if peer else None,
                "local": hostport(server.local) if server.local else None,
                "ehlo_name": session.host_name,
                "extended_smtp": bool(session.extended_smtp),
                "tls": bool(session.ssl),
                "session": server.conn_n,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "eml": os.path.abspath(eml)}
        write_atomic(os.path.join(st.dir, f"msg-{n}.json"),
                     json.dumps(meta).encode())
        st.write_stats()
        return f"250 OK queued as msg-{n}"


async def serve(args, tls):
    state = State(args.record)
    handler = Recorder(state)
    loop = asyncio.get_running_loop()
    port, socks = peerlib.bind_tcp_all(args.listen, args.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def factory():
        return RecordingSMTP(handler, state,
                             data_size_limit=args.data_size_limit,
                             enable_SMTPUTF8=args.smtputf8,
                             hostname=args.hostname,
                             tls_context=tls, require_starttls=False,
                             loop=loop)

    servers = [await loop.create_server(factory, sock=t) for t in socks]
    state.write_stats()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    watch = asyncio.ensure_future(
        peerlib.watch_parent("aiosmtpd_sink", os.getppid(), stop))
    await stop.wait()
    watch.cancel()
    for srv in servers:
        srv.close()
    for proto in list(state.live):
        if proto.transport is not None:
            proto.transport.abort()
        orig = getattr(proto, "_original_transport", None)
        if orig is not None:
            orig.abort()
    await asyncio.sleep(0.05)       # let connection_lost run
    state.write_stats()


def size_limit(text):
    if text.lower() == "none":
        return None
    n = int(text)
    if n < 0:
        raise ValueError("negative")
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", action="append")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--data-size-limit", type=size_limit, default=None)
    ap.add_argument("--hostname", default="sink.test")
    ap.add_argument("--smtputf8", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args(argv)
    args.listen = args.listen or ["127.0.0.1"]
    for a in args.listen:
        try:
            ok = ipaddress.ip_address(a).is_loopback
        except ValueError:
            ok = False
        if not ok:
            ap.error(f"--listen {a}: only 127.0.0.0/8 and ::1 are allowed")
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    tls = None
    if args.tls_cert:
        try:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as e:
            print(f"aiosmtpd_sink: TLS: {e}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s "
                               "%(message)s")
    os.makedirs(args.record, exist_ok=True)
    try:
        asyncio.run(serve(args, tls))
    except OSError as e:
        print(f"aiosmtpd_sink: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
