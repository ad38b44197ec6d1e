#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The benchmark harness's own checks: the parts of bench/ whose
correctness the published numbers in docs/performance.md depend on.
Stdlib only, Debian's /usr/bin/python3 and the openssl command (for a
throwaway certificate); no root, no network namespace, no build products.

bench/tls_sink.py, run as the harness runs it (a subprocess on 127.0.0.1,
--port-file, --record, stopped by PID with SIGTERM and required to exit
0), and its read_message() imported:
  SinkSmtplib         smtplib STARTTLS: size, sha256, TLS version, cipher,
                      envelope of the record match the message sent
                      (lines ".", "..", ".x" and 8-bit octets included).
  SinkReadBoundary    the CRLF.CRLF terminator straddling the sink's read
                      boundary (multiples of tls_sink.READ_SIZE, -8..+8
                      octets), over plaintext and TLS, on real sockets.
  SinkReadMessage     read_message() fed by a scripted recv_into: every
                      split point and 1-octet reads of tricky messages,
                      pipelined commands after the final dot, EOF.
  SinkProtocol        PIPELINING (replies in order), --require-tls (530,
                      then 250 after STARTTLS), STARTTLS command injection
                      (dropped after the 220, nothing recorded), SIGTERM
                      during DATA (exit 0, nothing recorded).
  SinkArguments       --listen anything but loopback exits 2 with a message
                      and never writes its port file; so does a bad key.
bench/bench.py, imported (importing it starts nothing, checked in a fresh
interpreter with every way of starting something trapped):
  WriteMessage        write_message(): exact size, CRLF only, lines of at
                      most 998 octets, dot lines, headers, deterministic.
  WriteDocs           write_docs(): only what lies between DOCS_BEGIN and
                      DOCS_END changes, idempotent, RuntimeError without
                      the markers; docs/performance.md has them once each.
  Report              report() on a results dict shaped like Bench's: goal
                      table (a missed goal "**no**: reason"), one row per
                      tool, "—" for CPU s/GiB under 1 MiB.
  OpensslSpeed        openssl_speed(): unknown cipher runs nothing; the
                      parse of a captured `openssl speed` output, and of
                      the installed openssl's real output (1 s).
"""

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

# Importing the harness must not leave .pyc files in the source tree.
sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
BENCH_DIR = os.path.join(TOP, "bench")
SINK = os.path.join(BENCH_DIR, "tls_sink.py")
PERFORMANCE_MD = os.path.join(TOP, "docs", "performance.md")
PYTHON3 = "/usr/bin/python3"

sys.path.insert(0, BENCH_DIR)
import bench  # noqa: E402
import tls_sink  # noqa: E402

MIB = 1024 * 1024
GIB = 1024 * MIB
READ_SIZE = tls_sink.READ_SIZE
# Wait between the two halves of a message that must reach the sink in two
# reads (plenty for the sink to take in the first half on a loaded host;
# if it does not, the message is still checked, only the split is lost).
PAUSE = 0.03

_tmp = None
CERT = KEY = None


def setUpModule():
    global _tmp, CERT, KEY
    if not shutil.which("openssl"):
        raise unittest.SkipTest("no openssl command")
    _tmp = tempfile.mkdtemp(prefix="aimx-bench-tools-")
    CERT = os.path.join(_tmp, "cert.pem")
    KEY = os.path.join(_tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=sink.bench.test", "-days", "2",
                    "-keyout", KEY, "-out", CERT],
                   check=True, capture_output=True)


def tearDownModule():
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


# ------------------------------------------------------------- helpers

def sha256(data):
    return hashlib.sha256(data).hexdigest()


def dot_stuff(msg):
    """What a client sends for msg between the 354 and the final dot."""
    out = msg.replace(b"\r\n.", b"\r\n..")
    return b"." + out if out.startswith(b".") else out


def wire(msg):
    """msg (empty or ending in CRLF) as sent after the 354."""
    return dot_stuff(msg) + b".\r\n"


def boundary_message(wire_len, last):
    """A message whose wire form is exactly wire_len octets: a header,
    lines of which every fifth starts with '.', a filler line, then the
    line last (b"end", b"." or b".x": a stuffed dot right before the
    terminator)."""
    head = b"From: <a@x.test>\r\nTo: <b@y.test>\r\nSubject: boundary\r\n\r\n"
    tail = last + b"\r\n"
    budget = wire_len - 3 - len(head) - len(dot_stuff(b"\r\n" + tail)) + 2
    parts = [head]
    i = 0
    while budget > 200:
        line = b"%06d" % i + b"x" * 68
        if i % 5 == 2:
            line = b"." + line
        parts.append(line + b"\r\n")
        budget -= len(line) + 2 + line.startswith(b".")
        i += 1
    parts.append(b"y" * (budget - 2) + b"\r\n")
    parts.append(tail)
    msg = b"".join(parts)
    assert len(wire(msg)) == wire_len, (len(wire(msg)), wire_len)
    return msg


def scripted_read(chunks, pre=b""):
    """tls_sink.read_message() over a buffer holding "DATA\\r\\n" + pre, then
    reads that return the chunks one by one (a chunk larger than the
    read is returned over several).  Returns size, digest and every
    octet it did not consume (buffered or never read)."""
    buf = bytearray(tls_sink.BUF_SIZE)
    mv = memoryview(buf)
    start = 6
    buf[0:start] = b"DATA\r\n"
    buf[start:start + len(pre)] = pre
    end = start + len(pre)
    queue = [bytes(c) for c in chunks if c]

    def recv_into(view):
        if not queue:
            return 0
        n = min(len(view), len(queue[0]))
        view[:n] = queue[0][:n]
        queue[0] = queue[0][n:]
        if not queue[0]:
            queue.pop(0)
        return n

    size, digest, s, e = tls_sink.read_message(buf, mv, start, end,
                                               recv_into)
    return size, digest, bytes(buf[s:e]) + b"".join(queue)


class Sink:
    """bench/tls_sink.py as bench.py runs it, in a directory of its own."""

    def __init__(self, tmpdir, *extra):
        self.dir = tmpdir
        self.port_file = os.path.join(tmpdir, "sink.port")
        self.record = os.path.join(tmpdir, "sink-record.jsonl")
        self.log_path = os.path.join(tmpdir, "sink.log")
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                [PYTHON3, SINK, "--cert", CERT, "--key", KEY,
                 "--port-file", self.port_file, "--record", self.record]
                + list(extra),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise RuntimeError(f"tls_sink exited {self.proc.returncode}:\n"
                                   + self.log())
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError("tls_sink wrote no port file:\n" + self.log())
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read()[-4000:].decode(errors="replace")

    def records(self):
        with open(self.record) as f:
            return [json.loads(line) for line in f.read().splitlines()]

    def wait_records(self, n, timeout=5.0):
        end = time.monotonic() + timeout
        while True:
            recs = self.records()
            if len(recs) >= n or time.monotonic() > end:
                return recs
            time.sleep(0.01)

    def stop(self):
        """SIGTERM by PID; the exit status, or None if it had to be
        killed (it did not stop within 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


class Client:
    """A raw SMTP client: the test decides what goes into each write."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            got = self.sock.recv(65536)
            if not got:
                raise EOFError(f"connection closed; unread: {self.buf!r}")
            self.buf += got
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """The next reply, as its lines ("250-x", "250 y")."""
        lines = [self.line()]
        while lines[-1][3:4] == "-":
            lines.append(self.line())
        return lines

    def cmd(self, command):
        self.send(command.encode() + b"\r\n")
        return self.reply()

    def at_eof(self):
        """True if the server closed the connection with nothing more
        to say (anything it still sends is returned as a failure text)."""
        if self.buf:
            return False
        try:
            got = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        if got:
            self.buf += got
            return False
        return True

    def starttls(self):
        assert not self.buf, self.buf
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="sink.bench.test")


class SinkCase(unittest.TestCase):
    def start_sink(self, *extra):
        tmpdir = tempfile.mkdtemp(prefix="sink-", dir=_tmp)
        sink = Sink(tmpdir, *extra)
        self.addCleanup(self.stop_sink, sink)
        return sink

    def stop_sink(self, sink):
        rc = sink.stop()
        self.assertEqual(rc, 0, "tls_sink did not exit 0 on SIGTERM "
                         f"(None: killed after 10 s):\n{sink.log()}")

    def connect(self, sink):
        c = Client(sink.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply(), ["220 sink.bench.test ESMTP"])
        return c

    def ehlo(self, c, tls):
        r = c.cmd("EHLO client.bench.test")
        self.assertEqual(r[0], "250-sink.bench.test")
        self.assertIn("PIPELINING", [x[4:] for x in r])
        self.assertEqual("STARTTLS" in [x[4:] for x in r], not tls, r)
        return r

    def check_record(self, rec, msg, mail_from, rcpts, tls):
        self.assertEqual(rec["size"], len(msg), rec)
        self.assertEqual(rec["sha256"], sha256(msg), rec)
        self.assertEqual(rec["mail_from"], mail_from)
        self.assertEqual(rec["rcpts"], rcpts)
        if tls:
            self.assertIn(rec["tls"], ("TLSv1.2", "TLSv1.3"))
            self.assertIsInstance(rec["cipher"], str)
            self.assertTrue(rec["cipher"])
        else:
            self.assertIsNone(rec["tls"])
            self.assertIsNone(rec["cipher"])
        self.assertGreaterEqual(rec["seconds"], 0)


# ------------------------------------------------------------ tls_sink

class SinkSmtplib(SinkCase):
    def test_starttls_message_with_dot_lines(self):
        sink = self.start_sink()
        msg = (b"From: <sender@a.bench.test>\r\nTo: <r1@b.bench.test>\r\n"
               b"Subject: dots\r\n\r\n"
               b".starts with a dot\r\n"
               b"..starts with two dots\r\n"
               b".\r\n"
               b"...\r\n"
               b"between\r\n"
               b". space after the dot\r\n"
               b"caf\xc3\xa9 and a bare \r in a line\r\n"
               b"\r\n"
               b"last line\r\n")
        with smtplib.SMTP("127.0.0.1", sink.port, "client.bench.test",
                          timeout=10) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("starttls"))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            code, _ = s.starttls(context=ctx)
            self.assertEqual(code, 220)
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            self.assertEqual(s.mail("sender@a.bench.test")[0], 250)
            self.assertEqual(s.rcpt("r1@b.bench.test")[0], 250)
            self.assertEqual(s.rcpt("r2@c.bench.test")[0], 250)
            code, resp = s.data(msg)
            self.assertEqual((code, resp),
                             (250, b"2.0.0 Ok: %d bytes" % len(msg)))
        recs = sink.wait_records(1)
        self.assertEqual(len(recs), 1, recs)
        self.check_record(recs[0], msg, "sender@a.bench.test",
                          ["r1@b.bench.test", "r2@c.bench.test"], tls=True)


class SinkReadBoundary(SinkCase):
    """The terminator across the sink's read boundary, on real sockets.
    The wire form is sent in two writes split at k * READ_SIZE with a
    pause between them, so the sink's reads end there (plaintext: it
    cannot read what was not sent yet; TLS: the split is on a 16 KiB
    record boundary as well, and a TLS read returns one record)."""

    def run_session(self, tls):
        sink = self.start_sink()
        c = self.connect(sink)
        if tls:
            self.ehlo(c, tls=False)
            self.assertEqual(c.cmd("STARTTLS"), ["220 2.0.0 Ready for TLS"])
            c.starttls()
        self.ehlo(c, tls=tls)
        sent = []
        lasts = (b"end", b".", b".x")
        for k in (1, 2):
            cut = k * READ_SIZE
            for d in range(-8, 9):
                msg = boundary_message(cut + d, lasts[d % 3])
                w = wire(msg)
                self.assertEqual(c.cmd("MAIL FROM:<a@x.test>"), ["250 2.1.0 Ok"])
                self.assertEqual(c.cmd("RCPT TO:<b@y.test>"), ["250 2.1.5 Ok"])
                self.assertEqual(c.cmd("DATA"),
                                 ["354 End data with <CR><LF>.<CR><LF>"])
                c.send(w[:cut])
                time.sleep(PAUSE)
                if w[cut:]:
                    c.send(w[cut:])
                self.assertEqual(c.reply(), [f"250 2.0.0 Ok: {len(msg)} bytes"],
                                 f"wire form of {len(w)} octets")
                sent.append(msg)
        self.assertEqual(c.cmd("QUIT"), ["221 2.0.0 Bye"])
        recs = sink.wait_records(len(sent))
        self.assertEqual(len(recs), len(sent))
        for msg, rec in zip(sent, recs):
            with self.subTest(wire_len=len(wire(msg))):
                self.check_record(rec, msg, "a@x.test", ["b@y.test"], tls)

    def test_plaintext(self):
        self.run_session(tls=False)

    def test_tls(self):
        self.run_session(tls=True)


class SinkReadMessage(unittest.TestCase):
    """tls_sink.read_message() with reads ending exactly where the test
    says: every boundary position, deterministically."""

    TRICKY = [b"", b"\r\n", b".\r\n", b"..\r\n", b"...\r\n", b"a\r\n",
              b".a\r\n", b"\r\n.\r\n", b"a\r\n.\r\nb\r\n", b"x\r\n..\r\n.\r\n",
              b".\rX\r\n", b"a\rb\r\n", b"\r\r\n", b".\r\n.\r\n.\r\n",
              b"end\r\n.\r\n"]

    def check(self, msg, chunks, pre=b"", after=b""):
        size, digest, rest = scripted_read(chunks, pre)
        self.assertEqual((size, digest, rest), (len(msg), sha256(msg), after),
                         f"message {msg!r}, pre {pre!r}, reads {chunks!r}")

    def test_every_split_of_tricky_messages(self):
        for msg in self.TRICKY:
            for after in (b"", b"QUIT\r\n", b".\r\n"):
                w = wire(msg) + after
                with self.subTest(msg=msg, after=after):
                    # one octet per read
                    self.check(msg, [w[i:i + 1] for i in range(len(w))],
                               after=after)
                    for i in range(len(w) + 1):
                        # two reads split at i; and w[:i] already buffered
                        self.check(msg, [w[:i], w[i:]], after=after)
                        self.check(msg, [w[i:]], pre=w[:i], after=after)
                        for j in range(i, min(i + 6, len(w) + 1)):
                            self.check(msg, [w[:i], w[i:j], w[j:]],
                                       after=after)

    def test_large_message_random_reads(self):
        rng = random.Random(1234)
        for size in (READ_SIZE - 3, READ_SIZE, 3 * READ_SIZE + 5):
            msg = boundary_message(size, b".")
            w = wire(msg) + b"RSET\r\n"
            for _ in range(20):
                cuts = sorted(rng.randrange(len(w) + 1) for _ in range(8))
                cuts += [len(w) - k for k in range(7)]
                cuts = sorted(set(c for c in cuts if 0 <= c <= len(w)))
                chunks, prev = [], 0
                for c in cuts + [len(w)]:
                    chunks.append(w[prev:c])
                    prev = c
                with self.subTest(size=size, cuts=cuts):
                    self.check(msg, chunks, after=b"RSET\r\n")

    def test_eof_before_the_final_dot(self):
        for w in (b"", b"abc\r\n", b"abc\r\n.", b"abc\r\n.\r", b"a\r\n..\r\n"):
            with self.subTest(data=w):
                with self.assertRaises(EOFError):
                    scripted_read([w[i:i + 1] for i in range(len(w))])
                with self.assertRaises(EOFError):
                    scripted_read([], pre=w)


class SinkProtocol(SinkCase):
    def test_pipelined_commands_replies_in_order(self):
        sink = self.start_sink()
        c = self.connect(sink)
        self.ehlo(c, tls=False)
        c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
               b"RCPT TO:<c@z.test>\r\nDATA\r\n")
        self.assertEqual([c.reply() for _ in range(4)],
                         [["250 2.1.0 Ok"], ["250 2.1.5 Ok"], ["250 2.1.5 Ok"],
                          ["354 End data with <CR><LF>.<CR><LF>"]])
        msg = b"Subject: p\r\n\r\n.dot\r\nbody\r\n"
        # The message, its end and the next transaction in one write.
        c.send(wire(msg) + b"MAIL FROM:<d@x.test>\r\nRCPT TO:<e@y.test>\r\n"
               b"DATA\r\n")
        self.assertEqual([c.reply() for _ in range(4)],
                         [[f"250 2.0.0 Ok: {len(msg)} bytes"], ["250 2.1.0 Ok"],
                          ["250 2.1.5 Ok"],
                          ["354 End data with <CR><LF>.<CR><LF>"]])
        c.send(wire(b"") + b"NOOP\r\nRSET\r\nQUIT\r\n")
        self.assertEqual([c.reply() for _ in range(4)],
                         [["250 2.0.0 Ok: 0 bytes"], ["250 2.0.0 Ok"],
                          ["250 2.0.0 Ok"], ["221 2.0.0 Bye"]])
        self.assertTrue(c.at_eof())
        recs = sink.wait_records(2)
        self.assertEqual(len(recs), 2, recs)
        self.check_record(recs[0], msg, "a@x.test", ["b@y.test", "c@z.test"],
                          tls=False)
        self.check_record(recs[1], b"", "d@x.test", ["e@y.test"], tls=False)

    def test_require_tls(self):
        sink = self.start_sink("--require-tls")
        c = self.connect(sink)
        self.ehlo(c, tls=False)
        self.assertEqual(c.cmd("MAIL FROM:<a@x.test>"),
                         ["530 5.7.0 Must issue a STARTTLS command first"])
        self.assertEqual(c.cmd("RCPT TO:<b@y.test>"),
                         ["503 5.5.1 Need MAIL command"])
        self.assertEqual(c.cmd("STARTTLS"), ["220 2.0.0 Ready for TLS"])
        c.starttls()
        self.ehlo(c, tls=True)
        self.assertEqual(c.cmd("MAIL FROM:<a@x.test>"), ["250 2.1.0 Ok"])
        self.assertEqual(c.cmd("RCPT TO:<b@y.test>"), ["250 2.1.5 Ok"])
        self.assertEqual(c.cmd("DATA"), ["354 End data with <CR><LF>.<CR><LF>"])
        msg = b"Subject: t\r\n\r\nover TLS\r\n"
        c.send(wire(msg))
        self.assertEqual(c.reply(), [f"250 2.0.0 Ok: {len(msg)} bytes"])
        self.assertEqual(c.cmd("QUIT"), ["221 2.0.0 Bye"])
        recs = sink.wait_records(1)
        self.assertEqual(len(recs), 1, recs)
        self.check_record(recs[0], msg, "a@x.test", ["b@y.test"], tls=True)

    def test_starttls_injection_drops_the_connection(self):
        sink = self.start_sink()
        c = self.connect(sink)
        self.ehlo(c, tls=False)
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\n"
               b"DATA\r\nSubject: injected\r\n\r\nevil\r\n.\r\n")
        self.assertEqual(c.reply(), ["220 2.0.0 Ready for TLS"])
        # No TLS session: the handshake must fail (the sink has dropped the
        # connection), so the injected commands never run inside one.
        with self.assertRaises((ssl.SSLError, OSError, EOFError)):
            c.starttls()
            c.cmd("EHLO client.bench.test")  # only if the handshake worked
        # Nor in plaintext; the sink goes on serving others.
        c2 = self.connect(sink)
        self.assertEqual(c2.cmd("NOOP"), ["250 2.0.0 Ok"])
        self.assertEqual(c2.cmd("QUIT"), ["221 2.0.0 Bye"])
        self.assertEqual(sink.records(), [])
        self.assertIn("after STARTTLS", sink.log())

    def test_injection_without_tls_attempt_sees_eof(self):
        sink = self.start_sink()
        c = self.connect(sink)
        self.ehlo(c, tls=False)
        c.send(b"STARTTLS\r\nNOOP\r\n")
        self.assertEqual(c.reply(), ["220 2.0.0 Ready for TLS"])
        self.assertTrue(c.at_eof(), f"the sink answered: {c.buf!r}")

    def test_sigterm_during_data(self):
        sink = self.start_sink()
        c = self.connect(sink)
        self.ehlo(c, tls=False)
        self.assertEqual(c.cmd("MAIL FROM:<a@x.test>"), ["250 2.1.0 Ok"])
        self.assertEqual(c.cmd("RCPT TO:<b@y.test>"), ["250 2.1.5 Ok"])
        self.assertEqual(c.cmd("DATA"), ["354 End data with <CR><LF>.<CR><LF>"])
        c.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
        time.sleep(PAUSE)
        self.assertEqual(sink.stop(), 0, sink.log())
        self.assertTrue(c.at_eof())
        self.assertEqual(sink.records(), [])


class SinkArguments(unittest.TestCase):
    def run_sink(self, *args):
        tmpdir = tempfile.mkdtemp(prefix="sink-args-", dir=_tmp)
        port_file = os.path.join(tmpdir, "sink.port")
        try:
            proc = subprocess.run(
                [PYTHON3, SINK, "--cert", CERT, "--key", KEY,
                 "--port-file", port_file] + list(args),
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=10)
        except subprocess.TimeoutExpired:
            self.fail(f"tls_sink {args} kept running")
        return proc, os.path.exists(port_file)

    def test_listen_outside_loopback_exits_2(self):
        for addrs in (["10.0.0.1"], ["0.0.0.0"], ["::"], ["localhost"],
                      ["127.0.0.1", "10.0.0.1"]):
            argv = [x for a in addrs for x in ("--listen", a)]
            with self.subTest(listen=addrs):
                proc, listened = self.run_sink(*argv)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(f"--listen {addrs[-1]}: only 127.0.0.0/8 and ::1 "
                              "are allowed", proc.stderr)
                self.assertFalse(listened, "port file written")

    def test_bad_key_exits_2(self):
        proc, listened = self.run_sink("--key", CERT)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("tls_sink: --cert", proc.stderr)
        self.assertFalse(listened, "port file written")


# --------------------------------------------------------------- bench

IMPORT_CHECK = r"""
import json, os, signal, socket, subprocess, sys, threading

class Trapped(BaseException):
    pass

def trap(name):
    def f(*a, **k):
        raise Trapped(name)
    return f

subprocess.Popen.__init__ = trap("subprocess.Popen")
for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp",
             "execv", "execve", "execvp", "execvpe", "spawnv", "spawnve",
             "popen", "kill", "killpg"):
    if hasattr(os, name):
        setattr(os, name, trap("os." + name))
for name in ("bind", "connect", "connect_ex", "listen", "sendto"):
    setattr(socket.socket, name, trap("socket." + name))
threading.Thread.start = trap("threading.Thread.start")
signal.signal = trap("signal.signal")
signal.set_wakeup_fd = trap("signal.set_wakeup_fd")
sys.path.insert(0, sys.argv[1])
try:
    import bench
    import tls_sink
except Trapped as e:
    print(json.dumps({"trapped": str(e)}))
    sys.exit(0)
print(json.dumps({"trapped": None, "threads": threading.active_count(),
                  "has_main": callable(bench.main) and callable(tls_sink.main)}))
"""


class ImportStartsNothing(unittest.TestCase):
    def test_import(self):
        with tempfile.TemporaryDirectory(dir=_tmp) as cwd:
            before = sorted(os.listdir(BENCH_DIR))
            proc = subprocess.run([PYTHON3, "-B", "-c", IMPORT_CHECK, BENCH_DIR],
                                  cwd=cwd, capture_output=True, text=True,
                                  timeout=30, stdin=subprocess.DEVNULL)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stderr, "")
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            self.assertEqual(out, {"trapped": None, "threads": 1,
                                   "has_main": True})
            self.assertEqual(os.listdir(cwd), [], "import wrote files")
            self.assertEqual(sorted(os.listdir(BENCH_DIR)), before)


class WriteMessage(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="msg-", dir=_tmp)
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, size, subject="bench test", rcpt="rcpt@one.bench.test",
              name="m.eml"):
        path = os.path.join(self.dir, name)
        bench.write_message(path, size, subject, rcpt)
        with open(path, "rb") as f:
            return f.read()

    def check_lines(self, data, what):
        self.assertIsNone(re.search(rb"\r(?!\n)", data), f"{what}: bare CR")
        self.assertIsNone(re.search(rb"(?<!\r)\n", data), f"{what}: bare LF")
        self.assertTrue(data.endswith(b"\r\n"), f"{what}: no final CRLF")
        lines = data[:-2].split(b"\r\n")
        longest = max(len(x) for x in lines)
        self.assertLessEqual(longest, 998, f"{what}: a line of {longest} octets")
        return lines

    def test_sizes(self):
        for size in (2048, 65536 + 1, 3 * MIB + 7):
            with self.subTest(size=size):
                subject = f"bench {size}"
                data = self.write(size, subject)
                self.assertEqual(len(data), size)
                lines = self.check_lines(data, f"{size} octets")
                blank = lines.index(b"")
                head, body = lines[:blank], lines[blank + 1:]
                fields = {}
                for h in head:
                    name, sep, value = h.partition(b": ")
                    self.assertTrue(sep, h)
                    fields[name.decode()] = value.decode()
                self.assertEqual(fields["From"], f"<{bench.SENDER}>")
                self.assertEqual(fields["To"], "<rcpt@one.bench.test>")
                self.assertEqual(fields["Subject"], subject)
                self.assertIn("Date", fields)
                self.assertRegex(fields["Message-ID"], r"^<[^<>@\s]+@[^<>@\s]+>$")
                dots = [x for x in body if x.startswith(b".")]
                self.assertGreaterEqual(len(dots), 1 if size < 8192 else 10)
                # The sink must receive exactly this: stuffed and unstuffed
                # by the same rules, it round-trips.
                size_, digest, rest = scripted_read(
                    [wire(data)[i:i + READ_SIZE]
                           for i in range(0, len(wire(data)), READ_SIZE)])
                self.assertEqual((size_, digest, rest),
                                 (size, sha256(data), b""))

    def test_deterministic(self):
        for size in (2048, 65536 + 1):
            with self.subTest(size=size):
                a = self.write(size, name="a.eml")
                b = self.write(size, name="b.eml")
                self.assertEqual(a, b)
        # Across processes too (runs compare): another interpreter, another
        # hash seed.
        path = os.path.join(self.dir, "c.eml")
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import bench; "
                "bench.write_message(sys.argv[2], 65537, 'bench test', "
                "'rcpt@one.bench.test')")
        subprocess.run([PYTHON3, "-B", "-c", code, BENCH_DIR, path], check=True,
                       env=dict(os.environ, PYTHONHASHSEED="12345"),
                       capture_output=True, timeout=30)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), self.write(65537))
        self.assertNotEqual(self.write(2048, "bench x"), self.write(2048, "bench y"))

    def test_every_size_residue_is_crlf_clean(self):
        """The tail is cut from 78-octet lines: every size modulo 78 must
        still give CRLF-only lines ending in CRLF."""
        bad = []
        for size in range(2048, 2048 + 78):
            data = self.write(size, "bench 2k")
            if (len(data) != size or re.search(rb"\r(?!\n)|(?<!\r)\n", data)
                    or not data.endswith(b"\r\n")):
                bad.append((size, data[-6:]))
        self.assertEqual(bad, [], "sizes whose message is not CRLF-clean "
                         "(size, last octets)")


class WriteDocs(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="docs-", dir=_tmp)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "performance.md")

    def put(self, data):
        with open(self.path, "wb") as f:
            f.write(data)

    def get(self):
        with open(self.path, "rb") as f:
            return f.read()

    def test_replaces_only_between_markers(self):
        begin, end = bench.DOCS_BEGIN.encode(), bench.DOCS_END.encode()
        prefix = ("# Performance\n\nGoals: ≤ 1.5×, “quoted”, trailing  \n"
                  "\n\n## Latest summary\n\n").encode()
        suffix = "\n\nAfter — the end, no final newline".encode()
        self.put(prefix + begin + b"\n\nold summary\n| a | b |\n" + end + suffix)
        text = "### Run of X\n\n| Goal | Met? |\n|---|---|\n| g | **no**: 2× |\n"
        bench.write_docs(self.path, text)
        want = prefix + begin + b"\n\n" + text.encode() + b"\n" + end + suffix
        self.assertEqual(self.get(), want)
        bench.write_docs(self.path, text)
        self.assertEqual(self.get(), want, "not idempotent")
        bench.write_docs(self.path, "other\n")
        self.assertEqual(self.get(), prefix + begin + b"\n\nother\n\n" + end + suffix)
        self.assertEqual(os.listdir(self.dir), ["performance.md"])

    def test_missing_markers(self):
        begin, end = bench.DOCS_BEGIN.encode(), bench.DOCS_END.encode()
        for doc in (b"no markers\n", b"x\n" + begin + b"\nno end\n",
                    b"x\n" + end + b"\nno begin\n",
                    b"x\n" + end + b"\nswapped\n" + begin + b"\n"):
            with self.subTest(doc=doc):
                self.put(doc)
                with self.assertRaises(RuntimeError):
                    bench.write_docs(self.path, "text\n")
                self.assertEqual(self.get(), doc)
                self.assertEqual(os.listdir(self.dir), ["performance.md"])

    def test_real_performance_md(self):
        with open(PERFORMANCE_MD, "rb") as f:
            orig = f.read()
        begin, end = bench.DOCS_BEGIN.encode(), bench.DOCS_END.encode()
        self.assertEqual(orig.count(begin), 1, "DOCS_BEGIN in docs/performance.md")
        self.assertEqual(orig.count(end), 1, "DOCS_END in docs/performance.md")
        a, b = orig.index(begin), orig.index(end)
        self.assertLess(a, b)
        self.put(orig)
        bench.write_docs(self.path, "new summary\n")
        self.assertEqual(self.get(), orig[:a + len(begin)] + b"\n\nnew summary\n\n"
                         + orig[b:])


def synthetic_results():
    """What Bench builds (bench_one ... bench_startup, goal(), environment(),
    config(), PostfixMTA.describe()), with made-up numbers."""
    one = {}
    for i, label in enumerate(("aimx", "curl", "swaks", "msmtp",
                               "python smtplib")):
        med = (0.0032, 0.0058, 0.0319, 0.0473, 0.0331)[i]
        one[label] = {"median_s": med,
                      "cpu_s": (0.0031, 0.0059, 0.0321, 0.0060, 0.0329)[i],
                      "rss_kib": (4915, 10752, 12595, 7578, 17408)[i],
                      "runs": 100, "times": [med] * 100,
                      "ratio_aimx_over": 0.0032 / med}
    fanout = {"aimx": {"median_s": 0.0314, "rcpt_per_s": 1000 / 0.0314,
                       "cpu_s": 0.0311, "times": [0.0314] * 5},
              "postfix": {"median_s": 0.1380, "rcpt_per_s": 1000 / 0.1380,
                          "cpu_s": 0.1652, "times": [0.1380] * 5}}
    slow = {"aimx max_parallel = 50": {"median_s": 0.7903, "min_s": 0.7205,
                                       "max_s": 0.8100, "times": [0.79] * 15},
            "aimx default max_parallel (8)": {"median_s": 2.1599,
                                              "min_s": 2.1496, "max_s": 2.1724,
                                              "times": [2.16] * 15},
            "sequential sender (computed)": {
                "median_s": 30.0,
                "note": "MX + A lookup + greeting, one domain after the other"},
            "max_concurrent_sessions_seen": 50}
    rows = {}
    for tool, cpu in (("aimx", 1.0), ("aimx + DKIM", 1.5), ("curl", 0.9)):
        for label, size in (("2 KiB", 2048), ("20 MiB", 20 * MIB),
                            ("200 MiB", 200 * MIB)):
            c = cpu * 0.01 if size < MIB else cpu * size / GIB
            rows[f"{tool} {label}"] = {
                "tool": tool, "size": size, "size_label": label,
                "wall_s": c * 1.2, "cpu_s": c, "cpu_s_per_gib": c / (size / GIB),
                "rss_kib": 7868.0, "tls": "TLSv1.3",
                "cipher": "TLS_AES_256_GCM_SHA384", "samples": []}
    speed = {"cipher": "TLS_AES_256_GCM_SHA384", "evp": "aes-256-gcm",
             "bytes_per_s": 4846862340.0, "cpu_s_per_gib": GIB / 4846862340.0,
             "command": "openssl speed -evp aes-256-gcm -bytes 16384 -seconds 2"}
    startup = {"aimx --version": {"median_s": 0.00136, "runs": 300,
                                  "times": [0.00136] * 300},
               "aimx plugins": {"median_s": 0.00610, "runs": 300,
                                "times": [0.00610] * 300},
               "curl --version": {"median_s": 0.00250, "runs": 300,
                                  "times": [0.0025] * 300}}
    goals = [{"goal": "1. one message: aimx / curl median ratio",
              "target": "≤ 1.00", "measured": "0.55", "met": True, "miss": None},
             {"goal": "5. start-up: aimx plugins median", "target": "< 5 ms",
              "measured": "6.10 ms", "met": False, "miss": "1.10 ms over"},
             {"goal": "5. start-up: aimx --version median", "target": "< 5 ms",
              "measured": "1.36 ms", "met": True, "miss": None}]
    return {
        "env": {"date": "2026-12-04 23:40 UTC", "spool_fs": "ext4",
                "machine": "Test CPU, 2 CPUs, 3 GiB, Linux 6.1, Debian 12.11",
                "versions": {"aimx": "aimx 0.1.0", "curl": "curl 7.88.1",
                             "openssl": "OpenSSL 3.0.19"}},
        "goals": goals,
        "benchmarks": {"one": one, "fanout": fanout, "slow": slow,
                       "large": {"rows": rows, "openssl_speed": speed},
                       "startup": startup},
        "commands": {
            "one": {"aimx": "build/aimx -q -c W/default.conf send --raw W/2k.eml",
                    "curl": "curl -sS --url smtp://127.0.0.1:25"},
            "fanout": {"aimx": "aimx ... (1000 --to)", "postfix": "sendmail ..."},
            "slow": {"aimx max_parallel = 50": "aimx -c slow50.conf ..."},
            "large": {"curl": "curl --ssl-reqd ... large-SIZE.eml"},
            "startup": {"aimx --version": "build/aimx --version"}},
        "configs": {"default.conf": 'plugin_dirs = ["build/plugins"];\n'
                                    'domain = "sender.bench.test";\n'},
        "postfix": {"version": "3.7.11",
                    "describe": "### Postfix 3.7.11 as a full MTA\n\nCommands:\n\n"
                                "#### main.cf\n\n| parameter | value |\n| --- | --- |\n"
                                "| `compatibility_level` | `3.7` |\n"},
        "seconds": 95.0,
    }


def md_table(md, heading_prefix):
    """The table under the first heading starting with heading_prefix:
    (header cells, [row cells])."""
    lines = md.split("\n")
    i = next(k for k, x in enumerate(lines) if x.startswith(heading_prefix))
    while not lines[i].startswith("|"):
        i += 1
    table = []
    while i < len(lines) and lines[i].startswith("|"):
        table.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
        i += 1
    header, sep, rows = table[0], table[1], table[2:]
    assert all(set(c) <= set("-: ") for c in sep), sep
    assert len(sep) == len(header)
    for r in rows:
        assert len(r) == len(header), (header, r)
    return header, rows


class Report(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.results = synthetic_results()
        cls.md = bench.report(cls.results)

    def test_goals(self):
        header, rows = md_table(self.md, "#### Goals")
        self.assertEqual(header, ["Goal", "Target", "Measured", "Met?"])
        self.assertEqual(rows, [
            ["1. one message: aimx / curl median ratio", "≤ 1.00", "0.55", "yes"],
            ["5. start-up: aimx plugins median", "< 5 ms", "6.10 ms",
             "**no**: 1.10 ms over"],
            ["5. start-up: aimx --version median", "< 5 ms", "1.36 ms", "yes"]])

    def test_one_row_per_tool(self):
        b = self.results["benchmarks"]
        for heading, want in (
                ("#### 1. ", list(b["one"])),
                ("#### 2. ", list(b["fanout"])),
                ("#### 3. ", ["aimx max_parallel = 50",
                              "aimx default max_parallel (8)"]),
                ("#### 4. ", [r["tool"] for r in b["large"]["rows"].values()]),
                ("#### 5. ", [f"`{k}`" for k in b["startup"]])):
            with self.subTest(section=heading):
                _, rows = md_table(self.md, heading)
                self.assertEqual([r[0] for r in rows], want)
        _, rows = md_table(self.md, "#### 4. ")
        self.assertEqual([(r[0], r[1]) for r in rows],
                         [(r["tool"], r["size_label"])
                          for r in b["large"]["rows"].values()])

    def test_values_in_their_columns(self):
        _, rows = md_table(self.md, "#### 1. ")
        self.assertEqual(rows[0], ["aimx", "3.2 ms", "1.00", "3.1 ms",
                                   "4.8 MiB", "100"])
        self.assertEqual(rows[3], ["msmtp", "47.3 ms", "0.07", "6.0 ms",
                                   "7.4 MiB", "100"])
        _, rows = md_table(self.md, "#### 2. ")
        self.assertEqual(rows[1], ["postfix", "138.0 ms", "7246", "165.2 ms", "5"])
        _, rows = md_table(self.md, "#### 3. ")
        self.assertEqual(rows[1], ["aimx default max_parallel (8)", "2.16 s",
                                   "2.15 s", "2.17 s"])
        _, rows = md_table(self.md, "#### 5. ")
        self.assertEqual(rows[1], ["`aimx plugins`", "6.10 ms", "300"])
        self.assertIn("needs 50 × 3 × 200 ms = 30 s", self.md)
        self.assertIn("open at once at the fault peer: 50.", self.md)
        self.assertIn("msmtp's time is mostly waiting", self.md)
        self.assertIn("`openssl speed -evp aes-256-gcm -bytes 16384 -seconds 2`: "
                      "4847 MB/s, that is 0.22 CPU s/GiB", self.md)

    def test_cpu_per_gib_dash_under_one_mib(self):
        header, rows = md_table(self.md, "#### 4. ")
        col = header.index("CPU s/GiB")
        for r, src in zip(rows, self.results["benchmarks"]["large"]["rows"].values()):
            with self.subTest(row=r[:2]):
                if src["size"] < MIB:
                    self.assertEqual(r[col], "—")
                else:
                    self.assertEqual(r[col], f"{src['cpu_s_per_gib']:.2f}")
                self.assertEqual(r[-1], "TLSv1.3 TLS_AES_256_GCM_SHA384")
        # Right at the limit.
        res = synthetic_results()
        res["benchmarks"] = {"large": {"rows": {
            f"aimx {s}": {"tool": "aimx", "size": s, "size_label": str(s),
                          "wall_s": 0.1, "cpu_s": 0.05,
                          "cpu_s_per_gib": 0.05 / (s / GIB), "rss_kib": 8000,
                          "tls": "TLSv1.3", "cipher": "X"}
            for s in (MIB - 1, MIB)}, "openssl_speed": {"evp": None}}}
        _, rows = md_table(bench.report(res), "#### 4. ")
        self.assertEqual([r[col] for r in rows], ["—", "51.20"])

    def test_rest_of_the_report(self):
        md = self.md
        self.assertTrue(md.startswith("### Run of 2026-12-04 23:40 UTC\n"))
        self.assertTrue(md.endswith("\n"))
        for bname, cmds in self.results["commands"].items():
            for label, cmd in cmds.items():
                self.assertIn(f"\n- {bname}, {label}: `{cmd}`\n", md)
        self.assertIn('`$WORK/default.conf`:\n\n```\nplugin_dirs = ["build/plugins"];\n'
                      'domain = "sender.bench.test";\n```\n', md)
        # Postfix's headings go below the summary's.
        self.assertIn("\n##### Postfix 3.7.11 as a full MTA\n", md)
        self.assertIn("\n##### main.cf\n", md)
        self.assertEqual(re.findall(r"^### .*", md, re.M),
                         ["### Run of 2026-12-04 23:40 UTC"])


# Captured: `openssl speed -evp aes-256-gcm -bytes 16384 -seconds 1` (stdout),
# OpenSSL 3.0.19 on Debian 12.
SPEED_AES_256_GCM = """\
version: 3.0.19
built on: Fri Apr  3 12:29:32 2026 UTC
options: bn(64,64)
compiler: gcc -fPIC -pthread -m64 -Wa,--noexecstack -Wall -fzero-call-used-regs=used-gpr -DOPENSSL_TLS_SECURITY_LEVEL=2 -Wa,--noexecstack -g -O2 -ffile-prefix-map=/build/reproducible-path/openssl-3.0.19=. -fstack-protector-strong -Wformat -Werror=format-security -DOPENSSL_USE_NODELETE -DL_ENDIAN -DOPENSSL_PIC -DOPENSSL_BUILDING_OPENSSL -DNDEBUG -Wdate-time -D_FORTIFY_SOURCE=2
CPUINFO: OPENSSL_ia32cap=0xfffa3203078bffff:0x405fc6f1bf07ab
The 'numbers' are in 1000s of bytes per second processed.
type          16384 bytes
AES-256-GCM    4846862.34k
"""
# The same for chacha20-poly1305 (mixed case in openssl's output).
SPEED_CHACHA = """\
The 'numbers' are in 1000s of bytes per second processed.
type          16384 bytes
ChaCha20-Poly1305  5112618.93k
"""


class OpensslSpeed(unittest.TestCase):
    def fake_run(self, stdout):
        calls = []

        def run(argv, **kw):
            calls.append(argv)
            return subprocess.CompletedProcess(argv, 0, stdout, "")
        return calls, run

    def test_unknown_cipher_runs_nothing(self):
        for cipher in ("TLS_UNKNOWN_CIPHER", None, ""):
            calls, run = self.fake_run("")
            with mock.patch.object(bench.subprocess, "run", run):
                self.assertEqual(bench.openssl_speed(cipher),
                                 {"cipher": cipher, "evp": None})
            self.assertEqual(calls, [])

    def test_parse_captured_output(self):
        for cipher, evp, out, kbps in (
                ("TLS_AES_256_GCM_SHA384", "aes-256-gcm", SPEED_AES_256_GCM,
                 4846862.34),
                ("ECDHE-RSA-AES256-GCM-SHA384", "aes-256-gcm", SPEED_AES_256_GCM,
                 4846862.34),
                ("TLS_CHACHA20_POLY1305_SHA256", "chacha20-poly1305",
                 SPEED_CHACHA, 5112618.93)):
            with self.subTest(cipher=cipher):
                calls, run = self.fake_run(out)
                with mock.patch.object(bench.subprocess, "run", run):
                    r = bench.openssl_speed(cipher)
                self.assertEqual(calls, [["openssl", "speed", "-evp", evp,
                                          "-bytes", "16384", "-seconds", "2"]])
                # openssl's unit is 1000 bytes per second.
                self.assertAlmostEqual(r["bytes_per_s"], kbps * 1000, places=3)
                self.assertAlmostEqual(r["cpu_s_per_gib"], GIB / (kbps * 1000))
                self.assertEqual((r["cipher"], r["evp"]), (cipher, evp))
                self.assertEqual(r["command"], " ".join(calls[0]))

    def test_unparsable_output(self):
        calls, run = self.fake_run("openssl: speed: something went wrong\n")
        with mock.patch.object(bench.subprocess, "run", run):
            r = bench.openssl_speed("TLS_AES_128_GCM_SHA256")
        self.assertEqual(r["evp"], "aes-128-gcm")
        self.assertNotIn("bytes_per_s", r)
        self.assertIn("something went wrong", r["error"])

    def test_real_openssl(self):
        """The installed openssl's own output parses (run for 1 s, not 2)."""
        real_run = subprocess.run
        seen = []

        def run(argv, **kw):
            argv = list(argv)
            i = argv.index("-seconds")
            argv[i + 1] = "1"
            proc = real_run(argv, **kw)
            seen.append(proc.stdout)
            return proc
        with mock.patch.object(bench.subprocess, "run", run):
            r = bench.openssl_speed("TLS_AES_256_GCM_SHA384")
        self.assertNotIn("error", r)
        m = re.search(r"^aes-256-gcm\s+([\d.]+)k\s*$", seen[0], re.M | re.I)
        self.assertIsNotNone(m, seen[0])
        self.assertAlmostEqual(r["bytes_per_s"], float(m.group(1)) * 1000, places=3)
        self.assertGreater(r["bytes_per_s"], 1e6)



if __name__ == "__main__":
    unittest.main(verbosity=2)
