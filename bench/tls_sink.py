#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tls_sink: a fast ESMTP receiver with STARTTLS for aimx's benchmarks.
It takes messages of any size (20 MiB, 200 MiB, ...) over plaintext or
STARTTLS, streams them (never holds a message in memory), undoes the
dot-stuffing, hashes each message with SHA-256 and records what it got, so
that a benchmark can check that every octet arrived.  It is built not to be
the bottleneck: the message data is read in large blocks and scanned with
bytes searches, not line by line.

Stdlib only (and tests/peers/peerlib.py's binder), Debian's /usr/bin/python3.  Loopback only: every
--listen address must be in 127.0.0.0/8 or ::1.

Usage
-----
  /usr/bin/python3 tls_sink.py --cert CERT.pem --key KEY.pem --port-file FILE
        [--listen 127.0.0.1] [--listen ::1] [--port 0]
        [--record FILE.jsonl] [--require-tls]

  --cert, --key  the server's certificate chain and private key (PEM).
  --listen       repeatable; default 127.0.0.1.  Every address listens on
                 the same TCP port.  Anything else than loopback exits 2.
  --port         0 (default): a port free on every address.
  --port-file    written (tmp + rename) with the port number once listening.
  --record       a JSON Lines file that gets one line per message received
                 (appended and flushed as soon as the message is in).
  --require-tls  MAIL before STARTTLS gets
                 "530 5.7.0 Must issue a STARTTLS command first".
Runs until SIGTERM or SIGINT, then exits 0 (open sessions are cut, a
message cut short is not recorded); also stops when the process that
started it goes away (checked twice a second).  A bad argument, certificate
or key exits 2 with a message on stderr before the port file is written.

Protocol
--------
Greeting "220 sink.bench.test ESMTP".  EHLO answers
  250-sink.bench.test / 250-PIPELINING / 250-8BITMIME / 250-SIZE /
  250-SMTPUTF8 / 250 STARTTLS
(STARTTLS only before TLS; SIZE without a limit); HELO "250 sink.bench.test".
MAIL, RCPT, DATA, RSET, NOOP, QUIT and STARTTLS work as usual; any MAIL
parameter and any recipient are accepted.  Sequencing is checked: MAIL
before EHLO/HELO "503 5.5.1 EHLO first", a second MAIL "503 5.5.1 Nested
MAIL command", RCPT without MAIL "503 5.5.1 Need MAIL command", DATA
without a recipient "554 5.5.1 No valid recipients".  Commands are read
through a buffer (any number per read: PIPELINING) and the replies to
pipelined commands are sent together, before the sink waits for more
input.  Command lines may end with CRLF or LF; one longer than 4096 octets
is read to its end and answered "500 5.5.2 Line too long".  Unknown
commands get "500 5.5.2 Unknown command".

STARTTLS: "220 2.0.0 Ready for TLS", then the TLS handshake
(ssl.PROTOCOL_TLS_SERVER with its defaults: TLS 1.2 or newer); the session
starts over (EHLO needed).  Plaintext the client sent after the STARTTLS
line, before the handshake, is a protocol violation (RFC 3207 command
injection): the connection is dropped.  A failed handshake drops it too.

DATA: "354 End data with <CR><LF>.<CR><LF>", then the message is read in
blocks of 256 KiB (into one buffer allocated per connection; a TLS read
returns at most one record, 16 KiB), its dot-stuffing undone (a line that
starts with "." loses that dot), its end found at CRLF.CRLF wherever the
read boundaries fall, and the result hashed and counted on the fly.  The
message is what lies between the 354 and the final ".CRLF": the last
line's CRLF is part of it, an empty message (".CRLF" at once) has 0
octets.  Reply "250 2.0.0 Ok: <size> bytes".  A session cut during DATA
records nothing.

Records
-------
One JSON object per line, per message, in the order the messages ended:
  {"mail_from": "a@x.test",          between < and > ("" for <>)
   "rcpts": ["b@y.test"],            in order
   "size": N,                        octets, after removing dot-stuffing
   "sha256": "hex",                  of those N octets
   "tls": "TLSv1.3" | null,          null: plaintext
   "cipher": "TLS_AES_256_GCM_SHA384" | null,
   "seconds": S}                     wall time from the 354 being sent to
                                     the final dot being read
Addresses are UTF-8 (invalid octets backslash-escaped).
"""

import argparse
import hashlib
import ipaddress
import json
import os
import re
import selectors
import signal
import socket
import ssl
import sys
import threading
import time

# The test servers' binder (every address, one port), shared rather than
# copied; the rest of this receiver stands alone.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "peers"))
from peerlib import bind_tcp_all  # noqa: E402

NAME = "tls_sink"
HOSTNAME = "sink.bench.test"
READ_SIZE = 256 * 1024
MAX_LINE = 4096
# One buffer per connection: a read of READ_SIZE always fits after what is
# kept (a partial command line, at most MAX_LINE + 1 octets, or the few
# octets of a possible end-of-data kept between reads).
BUF_SIZE = READ_SIZE + MAX_LINE + 64

MAIL_RE = re.compile(rb"^MAIL\s+FROM:\s*(?:<([^>]*)>|(\S*))(.*)$", re.I)
RCPT_RE = re.compile(rb"^RCPT\s+TO:\s*(?:<([^>]*)>|(\S*))(.*)$", re.I)

TOO_LONG = object()


def log(msg):
    print(f"{NAME}: {msg}", file=sys.stderr, flush=True)


def text(b):
    return b.decode("utf-8", "backslashreplace")


# -- message data ------------------------------------------------------

def read_message(buf, mv, start, end, recv_into):
    """Read one message's data (after the 354) from buf[start:end] and then
    from recv_into(memoryview) -> n (0: end of input), undoing dot-stuffing
    and stopping at CRLF.CRLF.  buf is a bytearray, mv its memoryview; it
    must hold at least 2 octets before start (they are overwritten) and
    have room for READ_SIZE more after a few kept octets.

    Returns (size, sha256 hex, start, end): the message's size and hash
    and what is left in buf (pipelined commands after the final dot).
    Raises EOFError if the input ends first.

    How: the data is scanned as if it began with CRLF (written just before
    start, and not hashed), for every CRLF "." in it.  The octet after
    that dot decides: CR LF ends the message (its CRLF is the message's
    last line end), anything else means the dot was stuffed and is
    dropped.  What lies between matches is hashed as slices of buf.
    Between reads only a possible start of a match is kept (at most 4
    octets), moved to the front of buf."""
    h = hashlib.sha256()
    size = 0
    start -= 2
    buf[start:start + 2] = b"\r\n"
    skip = 2                            # the CRLF just added
    i = start                           # scanned up to here, all emitted
    find = buf.find
    update = h.update
    while True:
        p = find(b"\r\n.", i, end)
        if p >= 0 and p + 3 < end:
            c = buf[p + 3]
            if c != 13 or p + 4 < end:
                # emit [i, p + 2): up to and including the CRLF
                a = i
                if skip:
                    d = min(skip, p + 2 - a)
                    a += d
                    skip -= d
                if a < p + 2:
                    update(mv[a:p + 2])
                    size += p + 2 - a
                if c == 13 and buf[p + 4] == 10:
                    return size, h.hexdigest(), p + 5, end
                i = p + 3                   # the stuffed dot is dropped
                continue
            keep = p                        # CRLF . CR: need one more octet
        elif p >= 0:
            keep = p                        # CRLF .: need one more octet
        else:
            # no match: keep a trailing CR or CRLF, it may start one
            keep = end
            if end - i >= 1 and buf[end - 1] == 13:
                keep = end - 1
            elif end - i >= 2 and buf[end - 2] == 13 and buf[end - 1] == 10:
                keep = end - 2
        a = i
        if skip and a < keep:
            d = min(skip, keep - a)
            a += d
            skip -= d
        if a < keep:
            update(mv[a:keep])
            size += keep - a
        n = end - keep                      # 0 to 4 octets kept
        if n:
            buf[0:n] = buf[keep:end]
        i = 0
        end = n
        got = recv_into(mv[end:end + READ_SIZE])
        if not got:
            raise EOFError("connection closed during DATA")
        end += got


# -- sessions ----------------------------------------------------------

class Session:
    def __init__(self, server, sock, peer):
        self.server = server
        self.sock = sock
        self.peer = peer
        self.buf = bytearray(BUF_SIZE)
        self.mv = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.out = []
        self.tls = None             # (version, cipher) once encrypted
        self.greeted = False
        self.reset()

    def reset(self):
        self.mail_from = None
        self.rcpts = []

    def reply(self, line):
        self.out.append(line.encode("utf-8") + b"\r\n")

    def flush(self):
        if self.out:
            data = b"".join(self.out)
            self.out = []
            self.sock.sendall(data)

    def fill(self):
        """Flush the replies, then read more input after buf[:end]."""
        if self.start:
            n = self.end - self.start
            self.buf[0:n] = self.buf[self.start:self.end]
            self.start, self.end = 0, n
        self.flush()
        got = self.sock.recv_into(self.mv[self.end:self.end + READ_SIZE])
        self.end += got
        return got

    def readline(self):
        """The next command line without its line end, TOO_LONG, or None
        at end of input."""
        too_long = False
        while True:
            idx = self.buf.find(b"\n", self.start, self.end)
            if idx >= 0:
                line = bytes(self.buf[self.start:idx])
                self.start = idx + 1
                if too_long:
                    return TOO_LONG
                return line[:-1] if line.endswith(b"\r") else line
            if self.end - self.start > MAX_LINE:
                too_long = True
                self.start = self.end
            if not self.fill():
                return None

    def run(self):
        self.reply(f"220 {HOSTNAME} ESMTP")
        while True:
            line = self.readline()
            if line is None:
                return
            if line is TOO_LONG:
                self.reply("500 5.5.2 Line too long")
                continue
            verb = line.split(None, 1)[0].upper() if line.strip() else b""
            handler = getattr(self, "do_" + verb.decode("ascii", "replace"),
                              None)
            if handler is None or not verb.isalpha():
                self.reply("500 5.5.2 Unknown command")
                continue
            if handler(line) is False:
                return

    def do_EHLO(self, line):
        self.greeted = True
        self.reset()
        ext = ["PIPELINING", "8BITMIME", "SIZE", "SMTPUTF8"]
        if self.tls is None:
            ext.append("STARTTLS")
        lines = [HOSTNAME] + ext
        for k, x in enumerate(lines):
            self.reply(("250 " if k == len(lines) - 1 else "250-") + x)

    def do_HELO(self, line):
        self.greeted = True
        self.reset()
        self.reply(f"250 {HOSTNAME}")

    def do_MAIL(self, line):
        if self.server.require_tls and self.tls is None:
            self.reply("530 5.7.0 Must issue a STARTTLS command first")
            return
        if not self.greeted:
            self.reply("503 5.5.1 EHLO first")
            return
        if self.mail_from is not None:
            self.reply("503 5.5.1 Nested MAIL command")
            return
        m = MAIL_RE.match(line)
        if not m:
            self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        self.mail_from = text(m.group(1) if m.group(1) is not None
                              else m.group(2))
        self.reply("250 2.1.0 Ok")

    def do_RCPT(self, line):
        if self.mail_from is None:
            self.reply("503 5.5.1 Need MAIL command")
            return
        m = RCPT_RE.match(line)
        if not m:
            self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
            return
        self.rcpts.append(text(m.group(1) if m.group(1) is not None
                               else m.group(2)))
        self.reply("250 2.1.5 Ok")

    def do_DATA(self, line):
        if self.mail_from is None:
            self.reply("503 5.5.1 Need MAIL command")
            return
        if not self.rcpts:
            self.reply("554 5.5.1 No valid recipients")
            return
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        self.flush()
        t0 = time.monotonic()
        # The DATA line lies before start, so there are >= 2 octets there.
        try:
            size, digest, self.start, self.end = read_message(
                self.buf, self.mv, self.start, self.end, self.sock.recv_into)
        except EOFError:
            log(f"{self.peer}: connection closed during DATA")
            return False
        seconds = time.monotonic() - t0
        self.server.record({
            "mail_from": self.mail_from, "rcpts": self.rcpts,
            "size": size, "sha256": digest,
            "tls": self.tls[0] if self.tls else None,
            "cipher": self.tls[1] if self.tls else None,
            "seconds": round(seconds, 6)})
        self.reset()
        self.reply(f"250 2.0.0 Ok: {size} bytes")

    def do_RSET(self, line):
        self.reset()
        self.reply("250 2.0.0 Ok")

    def do_NOOP(self, line):
        self.reply("250 2.0.0 Ok")

    def do_QUIT(self, line):
        self.reply("221 2.0.0 Bye")
        self.flush()
        return False

    def do_STARTTLS(self, line):
        if self.tls is not None:
            self.reply("503 5.5.1 TLS already active")
            return
        if line.strip().upper() != b"STARTTLS":
            self.reply("501 5.5.4 Syntax: STARTTLS")
            return
        self.reply("220 2.0.0 Ready for TLS")
        self.flush()
        if self.start != self.end:
            log(f"{self.peer}: {self.end - self.start} octets of plaintext "
                "after STARTTLS, dropping the connection")
            return False
        try:
            tls = self.server.ctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(f"{self.peer}: TLS handshake failed: {e}")
            return False
        self.sock = tls
        self.server.replace(self, tls)
        self.tls = (tls.version(), tls.cipher()[0])
        self.greeted = False
        self.reset()


# -- server ------------------------------------------------------------

class Server:
    def __init__(self, ctx, require_tls, record_path):
        self.ctx = ctx
        self.require_tls = require_tls
        self.lock = threading.Lock()
        self.open = {}                  # Session -> socket
        self.rec = open(record_path, "a", encoding="utf-8") \
            if record_path else None

    def record(self, obj):
        if self.rec is None:
            return
        line = json.dumps(obj) + "\n"
        with self.lock:
            self.rec.write(line)
            self.rec.flush()

    def replace(self, sess, sock):
        with self.lock:
            if sess in self.open:
                self.open[sess] = sock

    def serve_one(self, sock, peer):
        sess = Session(self, sock, peer)
        with self.lock:
            self.open[sess] = sock
        try:
            sess.run()
        except OSError as e:
            log(f"{peer}: {e}")
        finally:
            with self.lock:
                self.open.pop(sess, None)
            try:
                sess.sock.close()
            except OSError:
                pass

    def cut_all(self):
        """Cut every open session (their threads then see end of input)."""
        with self.lock:
            socks = list(self.open.values())
        for s in socks:
            try:
                # socket.socket's own shutdown: leaves an SSLSocket's
                # state alone while its thread may be reading
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass


def fmt_peer(addr):
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else \
        f"{addr[0]}:{addr[1]}"


def serve(args, ctx):
    ppid = os.getppid()
    server = Server(ctx, args.require_tls, args.record)
    port, listeners = bind_tcp_all(args.listen, args.port)

    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.append(s))

    sel = selectors.DefaultSelector()
    for t in listeners:
        sel.register(t, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)

    while not stop:
        if os.getppid() != ppid:
            log("parent gone, stopping")
            break
        for key, _ in sel.select(0.5):
            if key.fileobj is wake_r:
                try:
                    wake_r.recv(4096)
                except OSError:
                    pass
                continue
            try:
                conn, addr = key.fileobj.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                log(f"accept: {e}")
                continue
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=server.serve_one,
                             args=(conn, fmt_peer(addr)),
                             daemon=True).start()

    for t in listeners:
        t.close()
    server.cut_all()
    deadline = time.monotonic() + 2
    for th in threading.enumerate():
        if th is not threading.current_thread():
            th.join(max(0, deadline - time.monotonic()))
    with server.lock:
        if server.rec:
            server.rec.close()
            server.rec = None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--listen", action="append")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record")
    ap.add_argument("--require-tls", action="store_true")
    args = ap.parse_args(argv)
    args.listen = args.listen or ["127.0.0.1"]
    for a in args.listen:
        try:
            ok = ipaddress.ip_address(a).is_loopback
        except ValueError:
            ok = False
        if not ok:
            ap.error(f"--listen {a}: only 127.0.0.0/8 and ::1 are allowed")
    if not 0 <= args.port <= 65535:
        ap.error(f"--port {args.port}: out of range")
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    except (OSError, ssl.SSLError) as e:
        print(f"{NAME}: --cert {args.cert} / --key {args.key}: {e}",
              file=sys.stderr)
        return 2
    if args.record:
        try:
            open(args.record, "a").close()
        except OSError as e:
            print(f"{NAME}: --record {args.record}: {e}", file=sys.stderr)
            return 2
    try:
        serve(args, ctx)
    except OSError as e:
        print(f"{NAME}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
