#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The integration tests' SMTP servers, tested: the suite's fault peer
(tests/peers/smtp_fault_peer.py) and Debian's aiosmtpd
(tests/peers/aiosmtpd_sink.py), both through tests/lib's aimxtest
helpers, with a small raw-socket SMTP client, on loopback."""

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from aimxtest import (AiosmtpdSink, SmtpFaultPeer, dot_stuff,  # noqa: E402
                      unstuff)

# A message with what transports get wrong: an 8-bit line, lines starting
# with "." (one is a lone "."), a bare LF inside a line, an empty line.
MESSAGE = (b"From: a@x.test\r\n"
           b"To: b@x.test\r\n"
           b"Subject: peers\r\n"
           b"\r\n"
           b".leading dot\r\n"
           b"..two dots\r\n"
           b".\r\n"
           b"caf\xc3\xa9 8-bit \xff line\r\n"
           b"bare\nLF inside\r\n"
           b"\r\n"
           b"last line\r\n")


class Client:
    """A raw-socket SMTP client: replies as (code, [lines])."""

    def __init__(self, host, port, timeout=10.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def raw_line(self):
        """One line as received, with its line end."""
        while b"\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def reply(self):
        lines = []
        while True:
            text = self.raw_line().rstrip(b"\r\n").decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                break
        code = int(text[:3]) if text[:3].isdigit() else None
        return code, lines

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes)
                          else data.encode() + b"\r\n")

    def cmd(self, line):
        self.send(line)
        return self.reply()

    def ehlo(self, name="client.test"):
        return self.cmd(f"EHLO {name}")

    def closed(self):
        """True when the server has closed (EOF or reset) without sending
        anything more."""
        try:
            data = self.buf or self.sock.recv(65536)
        except ConnectionResetError:
            return True
        return data == b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send_message(c, message, mail_from="a@x.test", rcpts=("b@x.test",)):
    """One transaction; the reply to the final dot."""
    assert c.cmd(f"MAIL FROM:<{mail_from}>")[0] == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(dot_stuff(message) + b".\r\n")
    return c.reply()


def peer_addr(sock):
    a = sock.getsockname()
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


CERT_DIR = None


def setUpModule():
    global CERT_DIR
    CERT_DIR = tempfile.mkdtemp(prefix="aimx-smtppeers-cert-")


def tearDownModule():
    shutil.rmtree(CERT_DIR, ignore_errors=True)


def certificate():
    """(cert, key) PEM paths of a self-signed certificate for sink.test."""
    cert = os.path.join(CERT_DIR, "cert.pem")
    key = os.path.join(CERT_DIR, "key.pem")
    if not os.path.exists(cert):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("no openssl command")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=sink.test"],
                       check=True, capture_output=True)
    return cert, key


def client_tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class FaultPeer(unittest.TestCase):

    def test_plain_session(self):
        with SmtpFaultPeer({}) as p:
            with Client(p.host, p.port) as c:
                self.assertEqual(c.reply(),
                                 (220, ["220 peer.test ESMTP ready"]))
                self.assertEqual(c.ehlo(), (250, [
                    "250-peer.test", "250-PIPELINING", "250-SIZE 10485760",
                    "250-8BITMIME", "250-SMTPUTF8",
                    "250 ENHANCEDSTATUSCODES"]))
                self.assertEqual(send_message(c, MESSAGE),
                                 (250, ["250 2.0.0 queued as X"]))
                self.assertEqual(c.cmd("QUIT"), (221, ["221 2.0.0 bye"]))
                self.assertTrue(c.closed())
                local, client = peer_addr(c.sock), c.sock.getsockname()
                server = c.sock.getpeername()
            s, = p.wait_sessions(1)
            self.assertEqual(s["n"], 1)
            self.assertEqual(s["peer"], local)
            self.assertEqual(s["client_addr"], client[0])
            self.assertEqual(s["local"], f"{server[0]}:{server[1]}")
            self.assertEqual(s["local"], f"127.0.0.1:{p.port}")
            self.assertEqual(s["end_reason"], "quit")
            self.assertLessEqual(s["start"], s["end"])
            self.assertEqual(s["commands"], [
                "EHLO client.test", "MAIL FROM:<a@x.test>",
                "RCPT TO:<b@x.test>", "DATA", "QUIT"])
            t, = s["transactions"]
            self.assertEqual(t["mail_from"], "a@x.test")
            self.assertEqual(t["rcpts"], ["b@x.test"])
            self.assertTrue(t["complete"])
            wire = dot_stuff(MESSAGE)[:-2]      # without the final CRLF
            self.assertEqual(p.raw_data(1), wire)
            self.assertEqual(t["data_len"], len(wire))
            self.assertEqual(t["data_sha256"],
                             hashlib.sha256(wire).hexdigest())
            self.assertEqual(p.message_bytes(1), MESSAGE)
            self.assertEqual(p.stats(), {"sessions": 1, "max_concurrent": 1,
                                         "open": 0})
            pid = p.pid
        self.assertEqual(p.returncode, 0)
        self.assertTrue(gone(pid))

    def test_pipelined_commands_answered_in_order(self):
        script = {"rcpt": {"by_address": {"bad@x.test": "550 5.1.1 no"}}}
        with SmtpFaultPeer(script) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                # Everything up to DATA in one write, then the message,
                # the dot, a second transaction and QUIT in another.
                c.send(b"EHLO client.test\r\nMAIL FROM:<a@x.test> SIZE=99\r\n"
                       b"RCPT TO:<b@x.test>\r\nRCPT TO:<bad@x.test>\r\n"
                       b"RCPT TO:<c@x.test>\r\nDATA\r\n")
                self.assertEqual(c.reply()[0], 250)
                self.assertEqual([c.reply() for _ in range(5)], [
                    (250, ["250 2.1.0 ok"]), (250, ["250 2.1.5 ok"]),
                    (550, ["550 5.1.1 no"]), (250, ["250 2.1.5 ok"]),
                    (354, ["354 go ahead"])])
                c.send(b"one\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<d@x.test>\r\n"
                       b"DATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(4)],
                                 [250, 250, 250, 354])
                c.send(b"two\r\n.\r\nQUIT\r\n")
                self.assertEqual([c.reply()[0] for _ in range(2)], [250, 221])
            s, = p.wait_sessions(1)
            self.assertEqual(s["commands"], [
                "EHLO client.test", "MAIL FROM:<a@x.test> SIZE=99",
                "RCPT TO:<b@x.test>", "RCPT TO:<bad@x.test>",
                "RCPT TO:<c@x.test>", "DATA", "MAIL FROM:<>",
                "RCPT TO:<d@x.test>", "DATA", "QUIT"])
            t1, t2 = s["transactions"]
            self.assertEqual((t1["mail_from"], t1["mail_params"],
                              t1["rcpts"], t1["rcpts_rejected"]),
                             ("a@x.test", "SIZE=99", ["b@x.test", "c@x.test"],
                              ["bad@x.test"]))
            self.assertEqual((t2["mail_from"], t2["rcpts"]),
                             ("", ["d@x.test"]))
            self.assertEqual(p.raw_data(1, 0), b"one")
            self.assertEqual(p.raw_data(1, 1), b"two")
            self.assertEqual(p.message_bytes(1, 1), b"two\r\n")

    def test_421_greeting_then_normal_session(self):
        script = {"sessions": [{"greeting": "421 4.3.2 busy"}, {}]}
        with SmtpFaultPeer(script) as p:
            with Client(p.host, p.port) as c:
                self.assertEqual(c.reply(), (421, ["421 4.3.2 busy"]))
                self.assertTrue(c.closed())
            with Client(p.host, p.port) as c:
                self.assertEqual(c.reply()[0], 220)
                self.assertEqual(c.ehlo()[0], 250)
                self.assertEqual(send_message(c, b"x\r\n")[0], 250)
                c.cmd("QUIT")
            s1, s2 = p.wait_sessions(2)
            self.assertEqual((s1["end_reason"], s1["commands"]), ("421", []))
            self.assertEqual(s2["end_reason"], "quit")
            self.assertEqual(p.stats()["sessions"], 2)

    def test_554_greeting_refuses_until_quit(self):
        with SmtpFaultPeer({"greeting": "554 5.3.2 no"}) as p:
            with Client(p.host, p.port) as c:
                self.assertEqual(c.reply(), (554, ["554 5.3.2 no"]))
                self.assertEqual(c.ehlo()[0], 503)
                self.assertEqual(c.cmd("MAIL FROM:<a@x.test>")[0], 503)
                self.assertEqual(c.cmd("QUIT")[0], 221)
                self.assertTrue(c.closed())

    def test_ehlo_rejected_then_helo(self):
        with SmtpFaultPeer({"ehlo_reject": "502 5.5.1 no EHLO"}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                self.assertEqual(c.ehlo(), (502, ["502 5.5.1 no EHLO"]))
                # No MAIL before a successful greeting exchange.
                self.assertEqual(c.cmd("MAIL FROM:<a@x.test>")[0], 503)
                self.assertEqual(c.cmd("HELO client.test"),
                                 (250, ["250 peer.test"]))
                self.assertEqual(send_message(c, b"hello\r\n")[0], 250)
                c.cmd("QUIT")
            s, = p.wait_sessions(1)
            self.assertEqual(s["commands"][:3], [
                "EHLO client.test", "MAIL FROM:<a@x.test>",
                "HELO client.test"])
            self.assertEqual(len(s["transactions"]), 1)
            self.assertEqual(p.message_bytes(1), b"hello\r\n")

    def test_ehlo_single_line_and_verbatim(self):
        script = {"ehlo": {"multiline": False},
                  "sessions": [{}, {"ehlo": ["250-a.test", "250 X-ONE"]}]}
        with SmtpFaultPeer(script) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                self.assertEqual(c.ehlo(), (250, ["250 peer.test"]))
            with Client(p.host, p.port) as c:
                c.reply()
                self.assertEqual(c.ehlo(), (250, ["250-a.test", "250 X-ONE"]))

    def test_rcpt_by_address(self):
        script = {"rcpt": {"by_address": {
            "bad@x.test": "550 5.1.1 no such user",
            "Later@X.test": "451 4.3.0 try later"}}}
        with SmtpFaultPeer(script) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                c.cmd("MAIL FROM:<a@x.test>")
                self.assertEqual(c.cmd("RCPT TO:<bad@x.test>"),
                                 (550, ["550 5.1.1 no such user"]))
                self.assertEqual(c.cmd("RCPT TO:<later@x.test>"),
                                 (451, ["451 4.3.0 try later"]))
                self.assertEqual(c.cmd("RCPT TO:<good@x.test>"),
                                 (250, ["250 2.1.5 ok"]))
                self.assertEqual(c.cmd("DATA")[0], 354)
                c.send(b"m\r\n.\r\n")
                self.assertEqual(c.reply()[0], 250)
                # A transaction without any accepted recipient: no DATA.
                c.cmd("MAIL FROM:<a@x.test>")
                c.cmd("RCPT TO:<bad@x.test>")
                self.assertEqual(c.cmd("DATA")[0], 554)
                self.assertEqual(c.cmd("RSET")[0], 250)
                self.assertEqual(c.cmd("RCPT TO:<good@x.test>")[0], 503)
                c.cmd("QUIT")
            s, = p.wait_sessions(1)
            t1, t2 = s["transactions"]
            self.assertEqual(t1["rcpts"], ["good@x.test"])
            self.assertEqual(t1["rcpts_rejected"],
                             ["bad@x.test", "later@x.test"])
            self.assertEqual((t2["rcpts"], t2["data_file"]), ([], None))

    def test_452_after_max_recipients(self):
        with SmtpFaultPeer({"rcpt": {"max_per_transaction": 2}}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                c.cmd("MAIL FROM:<a@x.test>")
                codes = [c.cmd(f"RCPT TO:<r{i}@x.test>") for i in range(4)]
                self.assertEqual([x[0] for x in codes], [250, 250, 452, 452])
                self.assertEqual(codes[2][1],
                                 ["452 4.5.3 too many recipients"])
                self.assertEqual(c.cmd("DATA")[0], 354)
                c.send(b"m\r\n.\r\n")
                self.assertEqual(c.reply()[0], 250)
                # The count is per transaction.
                c.cmd("MAIL FROM:<a@x.test>")
                self.assertEqual(c.cmd("RCPT TO:<r9@x.test>")[0], 250)
            s, = p.wait_sessions(1)
            self.assertEqual(s["transactions"][0]["rcpts"],
                             ["r0@x.test", "r1@x.test"])

    def test_dot_stuffed_data_recorded_raw(self):
        with SmtpFaultPeer({}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                self.assertEqual(send_message(c, MESSAGE)[0], 250)
                # An empty message: DATA, then the dot at once.
                c.cmd("MAIL FROM:<a@x.test>")
                c.cmd("RCPT TO:<b@x.test>")
                c.cmd("DATA")
                c.send(b".\r\n")
                self.assertEqual(c.reply()[0], 250)
                # A message whose last line starts with a dot.
                self.assertEqual(send_message(c, b"a\r\n.b\r\n")[0], 250)
            p.wait_sessions(1)
            raw = p.raw_data(1, 0)
            self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n..\r\n", raw)
            self.assertIn(b"bare\nLF inside", raw)
            self.assertEqual(raw, dot_stuff(MESSAGE)[:-2])
            self.assertEqual(p.message_bytes(1, 0), MESSAGE)
            self.assertEqual(p.raw_data(1, 1), b"")
            self.assertEqual(p.message_bytes(1, 1), b"")
            self.assertEqual(p.raw_data(1, 2), b"a\r\n..b")
            self.assertEqual(p.message_bytes(1, 2), b"a\r\n.b\r\n")
            self.assertEqual(unstuff(b"..a\r\n.\r\nb."), b".a\r\n\r\nb.")

    def test_per_transaction_dot_replies(self):
        script = {"dot_by_transaction": [None, "552 5.3.4 too big"]}
        with SmtpFaultPeer(script) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                self.assertEqual(send_message(c, b"1\r\n")[0], 250)
                self.assertEqual(send_message(c, b"2\r\n"),
                                 (552, ["552 5.3.4 too big"]))
                self.assertEqual(send_message(c, b"3\r\n")[0], 250)
            s, = p.wait_sessions(1)
            self.assertEqual([t["dot_reply"] for t in s["transactions"]],
                             ["250 2.0.0 queued as X", "552 5.3.4 too big",
                              "250 2.0.0 queued as X"])

    def test_drop_after_dot(self):
        with SmtpFaultPeer({"drop": "after_dot"}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                c.cmd("MAIL FROM:<a@x.test>")
                c.cmd("RCPT TO:<b@x.test>")
                self.assertEqual(c.cmd("DATA")[0], 354)
                c.send(dot_stuff(MESSAGE) + b".\r\n")
                self.assertTrue(c.closed())         # no reply at all
            s, = p.wait_sessions(1)
            self.assertEqual(s["end_reason"], "drop")
            self.assertTrue(s["transactions"][0]["complete"])
            self.assertIsNone(s["transactions"][0]["dot_reply"])
            self.assertEqual(p.message_bytes(1), MESSAGE)

    def test_drops(self):
        script = {"sessions": [{"drop": "greeting"},
                               {"drop": "after_greeting"},
                               {"drop": "at_mail"},
                               {"drop": "at_rcpt"},
                               {"drop": "at_data"},
                               {"drop": "mid_data", "drop_after_bytes": 5000},
                               {"drop": "at_mail", "drop_reset": True}]}
        big = b"".join(b"line %05d of the message\r\n" % i
                       for i in range(2000))
        with SmtpFaultPeer(script) as p:
            with Client(p.host, p.port) as c:
                self.assertTrue(c.closed())
            with Client(p.host, p.port) as c:
                self.assertEqual(c.reply()[0], 220)
                self.assertTrue(c.closed())
            for stage in ("MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>",
                          "DATA"):
                with Client(p.host, p.port) as c:
                    c.reply()
                    c.ehlo()
                    for cmd in ("MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>",
                                "DATA"):
                        c.send(cmd)
                        if cmd == stage:
                            self.assertTrue(c.closed())
                            break
                        self.assertEqual(c.reply()[0], 250)
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                c.cmd("MAIL FROM:<a@x.test>")
                c.cmd("RCPT TO:<b@x.test>")
                self.assertEqual(c.cmd("DATA")[0], 354)
                try:
                    c.send(big + b".\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.assertTrue(c.closed())
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                c.send("MAIL FROM:<a@x.test>")
                with self.assertRaises(ConnectionResetError):
                    c.sock.recv(100)
            sessions = p.wait_sessions(7)
            self.assertEqual([s["end_reason"] for s in sessions],
                             ["drop"] * 7)
            self.assertEqual(sessions[0]["replies"], [])
            self.assertEqual(sessions[2]["commands"][-1],
                             "MAIL FROM:<a@x.test>")
            self.assertEqual(sessions[3]["commands"][-1], "RCPT TO:<b@x.test>")
            self.assertEqual(sessions[4]["commands"][-1], "DATA")
            t = sessions[5]["transactions"][0]
            self.assertFalse(t["complete"])
            self.assertEqual(t["data_len"], 5000)
            self.assertEqual(p.raw_data(6), big[:5000])
            self.assertEqual(p.message_bytes(6), big[:5000])

    def test_eof_mid_data_recorded(self):
        with SmtpFaultPeer({}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                c.cmd("MAIL FROM:<a@x.test>")
                c.cmd("RCPT TO:<b@x.test>")
                c.cmd("DATA")
                c.send(b"partial\r\nmess")
            s, = p.wait_sessions(1)
            self.assertEqual(s["end_reason"], "eof")
            self.assertFalse(s["transactions"][0]["complete"])
            self.assertEqual(p.raw_data(1), b"partial\r\nmess")

    def test_delay_does_not_block_other_sessions(self):
        # Session 1 waits 10 minutes for its greeting; session 2, opened
        # meanwhile, runs to its end.  Proved by the stats and the records.
        script = {"sessions": [{"delays_ms": {"greeting": 600000}}]}
        with SmtpFaultPeer(script) as p:
            c1 = Client(p.host, p.port)
            try:
                p.wait_sessions(1, ended=False)
                with Client(p.host, p.port) as c2:
                    self.assertEqual(c2.reply()[0], 220)
                    c2.ehlo()
                    self.assertEqual(send_message(c2, b"m\r\n")[0], 250)
                    c2.cmd("QUIT")
                s1, s2 = p.wait_sessions(1)
                self.assertIsNone(s1["end"])
                self.assertEqual(s1["replies"], [])
                self.assertEqual(s2["end_reason"], "quit")
                # The session record is written before the stats update:
                # wait (bounded) for the stats to catch up.
                deadline = time.monotonic() + 10
                while p.stats()["open"] != 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                self.assertEqual(p.stats(), {"sessions": 2,
                                             "max_concurrent": 2, "open": 1})
                c1.sock.setblocking(False)
                with self.assertRaises(BlockingIOError):
                    c1.sock.recv(1)         # still no greeting
            finally:
                c1.close()
            pid = p.pid
        # SIGTERM cut the sleeping session: a prompt, clean exit.
        self.assertEqual(p.returncode, 0)
        self.assertTrue(gone(pid))

    def test_delayed_pipelined_replies_stay_in_order(self):
        script = {"delays_ms": {"mail": 200, "rcpt": 50}}
        with SmtpFaultPeer(script) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n"
                       b"NOOP\r\n")
                self.assertEqual([c.reply()[1][0] for _ in range(3)],
                                 ["250 2.1.0 ok", "250 2.1.5 ok",
                                  "250 2.0.0 ok"])

    def test_split_replies(self):
        with SmtpFaultPeer({"split_replies": True}) as p:
            with Client(p.host, p.port) as c:
                self.assertEqual(c.reply()[1], ["220 peer.test ESMTP ready"])
                self.assertEqual(len(c.ehlo()[1]), 6)
                self.assertEqual(c.cmd("QUIT")[0], 221)
            s, = p.wait_sessions(1)
            wire = sum(len(x) + 2 for x in s["replies"])
            self.assertEqual(s["writes"], wire)     # one octet per write

    def test_multiline_all(self):
        with SmtpFaultPeer({"multiline_all": True}) as p:
            with Client(p.host, p.port) as c:
                self.assertEqual(c.reply(), (220, [
                    "220-peer.test ESMTP ready", "220-more (2/3)",
                    "220 end (3/3)"]))
                self.assertEqual(len(c.ehlo()[1]), 6)   # already multiline
                self.assertEqual(c.cmd("MAIL FROM:<a@x.test>"), (250, [
                    "250-2.1.0 ok", "250-2.1.0 more (2/3)",
                    "250 2.1.0 end (3/3)"]))

    def test_malformed_mixed_codes(self):
        with SmtpFaultPeer({"malformed": "mixed_codes"}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                code, lines = c.ehlo()
                self.assertEqual(lines[0], "250-peer.test")
                self.assertEqual(lines[1], "251-PIPELINING")
                self.assertEqual(lines[-1], "251 ENHANCEDSTATUSCODES")
                self.assertEqual(code, 251)

    def test_malformed_long_line(self):
        with SmtpFaultPeer({"malformed": "long_line"}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                code, lines = c.ehlo()
                self.assertEqual(code, 250)
                long = [x for x in lines if len(x) > 100]
                self.assertEqual([len(x) for x in long], [2000])
                self.assertTrue(long[0].startswith("250-X-LONG xxx"))
                self.assertEqual(lines[-1], "250 ENHANCEDSTATUSCODES")

    def test_malformed_many_lines(self):
        with SmtpFaultPeer({"malformed": "many_lines"}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                code, lines = c.ehlo()
                self.assertEqual((code, len(lines)), (250, 1000))
                self.assertEqual(lines[0], "250-peer.test")
                self.assertEqual(lines[1], "250-X-FILLER-0000")
                self.assertEqual(lines[-1], "250 ENHANCEDSTATUSCODES")
                self.assertTrue(all(x.startswith("250-")
                                    for x in lines[:-1]))

    def test_malformed_garbage_greeting(self):
        with SmtpFaultPeer({"malformed": "garbage"}) as p:
            with Client(p.host, p.port) as c:
                line = c.raw_line()
                self.assertFalse(line[:3].isdigit())
                self.assertEqual(line, b"SSH-2.0-OpenSSH_9.2p1 not-smtp\r\n")
                self.assertEqual(c.ehlo()[0], 250)      # goes on normally

    def test_malformed_bare_lf(self):
        with SmtpFaultPeer({"malformed": "bare_lf"}) as p:
            with Client(p.host, p.port) as c:
                self.assertEqual(c.raw_line(), b"220 peer.test ESMTP ready\n")
                c.send("EHLO client.test")
                lines = [c.raw_line() for _ in range(6)]
                self.assertTrue(all(x.endswith(b"\n") and b"\r" not in x
                                    for x in lines))
                self.assertEqual(lines[-1], b"250 ENHANCEDSTATUSCODES\n")

    def test_long_command_line(self):
        with SmtpFaultPeer({}) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                self.assertEqual(c.cmd("NOOP " + "x" * 4091)[0], 250)
                self.assertEqual(c.cmd("NOOP " + "x" * 5000),
                                 (500, ["500 5.5.2 line too long"]))
                self.assertEqual(c.cmd("NOOP " + "y" * 200000)[0], 500)
                self.assertEqual(c.cmd("NOOP")[0], 250)
                c.cmd("QUIT")
            s, = p.wait_sessions(1)
            self.assertTrue(s["commands"][1].endswith("... [5005 octets]"))
            self.assertTrue(s["commands"][2].endswith("... [200005 octets]"))
            self.assertEqual(s["commands"][3], "NOOP")

    def test_two_listen_addresses(self):
        with SmtpFaultPeer({}, listen=("127.0.0.1", "::1")) as p:
            for host in ("127.0.0.1", "::1"):
                with Client(host, p.port) as c:
                    c.reply()
                    c.cmd("QUIT")
            s1, s2 = p.wait_sessions(2)
            self.assertEqual(s1["local"], f"127.0.0.1:{p.port}")
            self.assertEqual(s2["local"], f"[::1]:{p.port}")
            self.assertEqual(s2["client_addr"], "::1")
            self.assertEqual(p.server, f"127.0.0.1:{p.port}")

    def test_large_message_streamed_to_disk(self):
        # 50 MB through the peer; its memory must not grow with it.
        line = b"x" * 998 + b"\r\n"
        chunk = line * 1024                         # 1 MiB
        n = 50
        with SmtpFaultPeer({}) as p:
            with Client(p.host, p.port, timeout=60) as c:
                c.reply()
                c.ehlo()
                c.cmd("MAIL FROM:<a@x.test>")
                c.cmd("RCPT TO:<b@x.test>")
                c.cmd("DATA")
                for _ in range(n):
                    c.send(chunk)
                c.send(b".\r\n")
                self.assertEqual(c.reply()[0], 250)
                with open(f"/proc/{p.pid}/status") as f:
                    hwm = [int(x.split()[1]) for x in f
                           if x.startswith("VmHWM:")][0]
                self.assertLess(hwm, 40 * 1024, "peer peak RSS in KiB")
            t = p.wait_sessions(1)[0]["transactions"][0]
            h = hashlib.sha256()
            for _ in range(n):
                h.update(chunk)
            wire_len = n * len(chunk) - 2
            self.assertEqual(t["data_len"], wire_len)
            self.assertEqual(os.path.getsize(t["data_file"]), wire_len)
            h2 = hashlib.sha256()
            with open(t["data_file"], "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h2.update(block)
            self.assertEqual(h2.hexdigest(), t["data_sha256"])
            h3 = hashlib.sha256()
            for _ in range(n - 1):
                h3.update(chunk)
            h3.update(chunk[:-2])
            self.assertEqual(t["data_sha256"], h3.hexdigest())

    def test_starttls(self):
        cert, key = certificate()
        script = {"ehlo": {"extensions": ["PIPELINING", "STARTTLS"]},
                  "starttls": "220 2.0.0 go ahead",
                  "tls": {"cert": cert, "key": key},
                  "sessions": [{}, {"ehlo": {"extensions": []},
                                    "starttls": None, "tls": None}]}
        with SmtpFaultPeer(script) as p:
            with Client(p.host, p.port) as c:
                c.reply()
                self.assertIn("250 STARTTLS", c.ehlo()[1])
                self.assertEqual(c.cmd("STARTTLS")[0], 220)
                c.sock = client_tls().wrap_socket(c.sock)
                self.assertEqual(c.ehlo()[0], 250)
                self.assertEqual(send_message(c, b"secret\r\n")[0], 250)
                c.cmd("QUIT")
            with Client(p.host, p.port) as c:
                c.reply()
                c.ehlo()
                self.assertEqual(c.cmd("STARTTLS")[0], 502)
            s1, s2 = p.wait_sessions(2)
            self.assertTrue(s1["tls"])
            self.assertEqual(s1["commands"][:3],
                             ["EHLO client.test", "STARTTLS",
                              "EHLO client.test"])
            self.assertEqual(p.message_bytes(1), b"secret\r\n")
            self.assertFalse(s2["tls"])

    def test_bad_script_reported(self):
        with self.assertRaises(RuntimeError) as cm:
            with SmtpFaultPeer({"greting": "220 typo"}):
                pass
        self.assertIn("greting", str(cm.exception))
        with self.assertRaises(RuntimeError) as cm:
            with SmtpFaultPeer({"sessions": [{"drop": "sometimes"}]}):
                pass
        self.assertIn("drop", str(cm.exception))


class Aiosmtpd(unittest.TestCase):

    def test_exact_bytes_and_envelope(self):
        with AiosmtpdSink() as k:
            with Client(k.host, k.port) as c:
                code, greeting = c.reply()
                self.assertEqual(code, 220)
                self.assertTrue(greeting[0].startswith("220 sink.test "))
                code, ehlo = c.ehlo("client.example.test")
                # aiosmtpd 1.4: no PIPELINING; no SIZE without a limit.
                self.assertEqual(ehlo, ["250-sink.test", "250-8BITMIME",
                                        "250 HELP"])
                self.assertEqual(c.cmd("MAIL FROM:<a@x.test> BODY=8bitmime"),
                                 (250, ["250 OK"]))
                self.assertEqual(c.cmd("RCPT TO:<b@x.test>")[0], 250)
                self.assertEqual(c.cmd("RCPT TO:<c@x.test>")[0], 250)
                self.assertEqual(c.cmd("DATA")[0], 354)
                c.send(dot_stuff(MESSAGE) + b".\r\n")
                self.assertEqual(c.reply(), (250, ["250 OK queued as msg-1"]))
                c.cmd("QUIT")
                client = peer_addr(c.sock)
            (meta, data), = k.wait_messages(1)
            # Un-dot-stuffed by aiosmtpd; CRLF kept; the bare LF and the
            # 8-bit octets untouched; the last line's CRLF included.
            self.assertEqual(data, MESSAGE)
            self.assertEqual(meta["ehlo_name"], "client.example.test")
            self.assertTrue(meta["extended_smtp"])
            self.assertEqual(meta["mail_from"], "a@x.test")
            self.assertEqual(meta["rcpt_tos"], ["b@x.test", "c@x.test"])
            self.assertEqual(meta["mail_options"], ["BODY=8BITMIME"])
            self.assertEqual(meta["peer"], client)
            self.assertEqual(meta["local"], f"127.0.0.1:{k.port}")
            self.assertFalse(meta["tls"])
            self.assertEqual(meta["size"], len(MESSAGE))
            self.assertEqual(meta["sha256"],
                             hashlib.sha256(MESSAGE).hexdigest())
            self.assertEqual(k.stats()["messages"], 1)
            pid = k.pid
        self.assertEqual(k.returncode, 0)
        self.assertTrue(gone(pid))

    def test_helo_pipelining_and_limits(self):
        with AiosmtpdSink() as k:
            with Client(k.host, k.port) as c:
                c.reply()
                self.assertEqual(c.cmd("HELO old.test")[0], 250)
                # Not advertised, but pipelined commands are answered in
                # order.
                c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n"
                       b"DATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(3)],
                                 [250, 250, 354])
                c.send(b"x" * 999 + b"\r\n.\r\nNOOP " + b"n" * 507
                       + b"\r\nNOOP " + b"n" * 508 + b"\r\n")
                self.assertEqual(c.reply()[0], 250)
                self.assertEqual(c.reply()[0], 250)         # 512 octets
                self.assertEqual(c.reply()[0], 500)         # 513 octets
                c.cmd("MAIL FROM:<a@x.test>")
                c.cmd("RCPT TO:<b@x.test>")
                c.cmd("DATA")
                c.send(b"x" * 1000 + b"\r\n.\r\n")          # 1002 with CRLF
                self.assertEqual(c.reply(), (500, [
                    "500 Line too long (see RFC5321 4.5.3.1.6)"]))
            (meta, data), = k.wait_messages(1)
            self.assertEqual(data, b"x" * 999 + b"\r\n")
            self.assertEqual(meta["ehlo_name"], "old.test")
            self.assertFalse(meta["extended_smtp"])

    def test_five_megabytes_without_size_limit(self):
        body = b"".join(b"%07d " % i + b"y" * 68 + b"\r\n"
                        for i in range(5 * 1024 * 1024 // 78 + 1))
        self.assertGreater(len(body), 5 * 1024 * 1024)
        with AiosmtpdSink(data_size_limit=None) as k:
            with Client(k.host, k.port, timeout=60) as c:
                c.reply()
                c.ehlo()
                self.assertEqual(send_message(c, body)[0], 250)
            (meta, data), = k.wait_messages(1, timeout=30)
            self.assertEqual(len(data), len(body))
            self.assertEqual(data, body)

    def test_size_limit(self):
        with AiosmtpdSink(data_size_limit=1000) as k:
            with Client(k.host, k.port) as c:
                c.reply()
                self.assertIn("250-SIZE 1000", c.ehlo()[1])
                self.assertEqual(c.cmd("MAIL FROM:<a@x.test> SIZE=1001")[0],
                                 552)
                c.cmd("MAIL FROM:<a@x.test> SIZE=1000")
                c.cmd("RCPT TO:<b@x.test>")
                c.cmd("DATA")
                c.send(b"z" * 999 + b"\r\n.\r\n")           # 1001 octets
                self.assertEqual(c.reply(),
                                 (552, ["552 Error: Too much mail data"]))
            self.assertEqual(k.messages(), [])

    def test_starttls_and_ipv6(self):
        cert, key = certificate()
        with AiosmtpdSink(listen="::1", tls_cert=cert, tls_key=key) as k:
            self.assertEqual(k.server, f"[::1]:{k.port}")
            with Client("::1", k.port) as c:
                c.reply()
                self.assertIn("250-STARTTLS", c.ehlo()[1])
                self.assertEqual(c.cmd("STARTTLS")[0], 220)
                c.sock = client_tls().wrap_socket(c.sock)
                lines = c.ehlo()[1]
                self.assertNotIn("250-STARTTLS", lines)
                self.assertEqual(send_message(c, MESSAGE)[0], 250)
                c.cmd("QUIT")
            with Client("::1", k.port) as c:         # plaintext still fine
                c.reply()
                c.ehlo("plain.test")
                self.assertEqual(send_message(c, b"plain\r\n")[0], 250)
            (m1, d1), (m2, d2) = k.wait_messages(2)
            self.assertTrue(m1["tls"])
            self.assertEqual(d1, MESSAGE)
            self.assertEqual(m1["local"], f"[::1]:{k.port}")
            self.assertEqual(m1["client_addr"], "::1")
            self.assertFalse(m2["tls"])
            self.assertEqual((m2["ehlo_name"], d2), ("plain.test",
                                                     b"plain\r\n"))
            self.assertEqual(k.stats()["sessions"], 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
