#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""smtp_fault_peer: a scriptable SMTP server for aimx's integration tests,
for what no real server will do on demand: odd greetings, rejected EHLO,
per-recipient and per-transaction replies, slow replies, dropped
connections at every stage, replies split into single bytes, malformed
replies.  It records every session so that tests can check exactly what
the client sent.

Standalone, stdlib only, Debian's /usr/bin/python3.  Loopback only: every
--listen address must be in 127.0.0.0/8 or ::1.

Usage
-----
  /usr/bin/python3 smtp_fault_peer.py --script SCRIPT.json --port-file FILE
        --record DIR [--listen 127.0.0.1] [--listen ::1] [--port 0]

  --listen     repeatable; default 127.0.0.1.  Every address listens on the
               same TCP port.
  --port       0 (default): a port free on every address.
  --port-file  written (tmp + rename) with the port number once listening
               (after DIR/stats.json exists).
  --record     directory for the session records (created if missing).
Runs until SIGTERM or SIGINT, then exits 0 promptly (sessions still open,
even ones sleeping in a delay, are cut and recorded with end_reason
"shutdown"); also stops when the process that started it goes away (checked
twice a second).  A bad script exits 2 with a message on stderr before the
port file is written.

Script (JSON object; every key optional)
----------------------------------------
The defaults make a plain, well-behaved ESMTP server:

  {"greeting": "220 peer.test ESMTP ready",
   "greeting_delay_ms": 0,
   "hostname": "peer.test",          first line of the EHLO reply
   "ehlo": {"reply_code": 250,
            "extensions": ["PIPELINING", "SIZE 10485760", "8BITMIME",
                           "SMTPUTF8", "ENHANCEDSTATUSCODES"],
            "multiline": true},
   "ehlo_reject": null,              e.g. "502 5.5.1 no EHLO"
   "helo": "250 peer.test",
   "mail": "250 2.1.0 ok",
   "rcpt": {"default": "250 2.1.5 ok",
            "by_address": {"bad@x.test": "550 5.1.1 no such user"},
            "max_per_transaction": null},
   "data": "354 go ahead",
   "data_without_rcpts": false,
   "dot": "250 2.0.0 queued as X",
   "dot_by_transaction": [],
   "rset": "250 2.0.0 ok",
   "noop": "250 2.0.0 ok",
   "quit": "221 2.0.0 bye",
   "starttls": null,
   "tls": null,                      {"cert": PEM, "key": PEM}
   "delays_ms": {},
   "drop": null, "drop_after_bytes": 1000, "drop_reset": false,
   "split_replies": false, "split_pause_ms": 1,
   "multiline_all": false,
   "malformed": null,
   "sessions": []}

Replies.  A reply is a string "CODE TEXT", sent with CRLF, or a list of
strings sent verbatim, one line each (["250-a", "250 b"] for a multiline
reply of your own).  Any code goes (a "421 4.3.2 busy" or "554 5.3.2 no"
greeting, a "451" dot, ...).  Whatever the command, a reply whose code is
421 is followed by the peer closing the connection (end_reason "421").
After a greeting with any other code than 220 (e.g. 554), the peer answers
every command but QUIT with "503 5.5.1 no service here" (RFC 5321 3.1).

ehlo: {"reply_code", "extensions", "multiline"}: the reply is
  CODE-hostname / CODE-ext1 / ... / CODE extN; with "multiline": false it
  is the single line "CODE hostname" (no extensions).  "ehlo" may also be a
  reply (string or list), sent as is.
ehlo_reject: a reply to EHLO instead of the above (HELO still works).
rcpt.by_address: the reply for one address (the part between < and >,
  compared case-insensitively), otherwise rcpt.default.
rcpt.max_per_transaction: N: once N recipients were accepted in the
  transaction, further RCPTs get "452 4.5.3 too many recipients".
data: the reply to DATA.  Only a 354 reply makes the peer read message
  data.  Sequencing is checked like a real server: MAIL before EHLO/HELO
  gets "503 5.5.1 EHLO first", a second MAIL "503 5.5.1 nested MAIL", RCPT
  or DATA without MAIL "503 5.5.1 need MAIL", DATA without an accepted
  recipient "554 5.5.1 no valid recipients" unless "data_without_rcpts" is
  true (then DATA gets its reply anyway, as some servers do with
  PIPELINING).
dot: the reply after the final dot; dot_by_transaction[i] (if present and
  not null) replaces it for the session's transaction i (0-based, counting
  every transaction opened by an accepted MAIL).  The transaction ends after
  the dot whatever the reply; RSET (2xx reply) ends it too.
starttls: the reply to STARTTLS.  null: "454 4.7.0 TLS not available" if
  "STARTTLS" is among the extensions, else "502 5.5.1 STARTTLS not offered".
  With a 220 reply and "tls" set, the peer then does the TLS handshake
  (plaintext the client sent after STARTTLS is discarded, RFC 3207) and
  starts over (EHLO needed); with a 220 reply and no "tls" it just goes on
  in plaintext (a broken server).  A reply of several lines whose last
  code is not 220 (["220 go ahead", "250 injected"], sent in one write)
  does no handshake either: a STARTTLS injection test.
tls: {"cert": PEM path, "key": PEM path} and optionally:
    "min_version", "max_version"  "TLSv1", "TLSv1.1", "TLSv1.2" or
                   "TLSv1.3": the versions the server accepts
    "ciphers"      an OpenSSL cipher string for TLS <= 1.2, e.g.
                   "DEFAULT:@SECLEVEL=0" (needed for TLS 1.0) or "aNULL"
                   (no cipher a normal client shares)
    "after_220"    null (default: the handshake), "close" (close the
                   connection instead), "garbage" (send a line of
                   plaintext, then close) or "silent" (read and ignore
                   whatever comes, answer nothing, until the client
                   closes): a broken handshake
    "ehlo"         the "ehlo" value used after the handshake (servers
                   offer other extensions once encrypted)
  The record then has "sni" (the server name the client sent, or null),
  "tls_version" and "tls_cipher".
delays_ms: {"greeting", "ehlo" (also HELO), "mail", "rcpt", "data", "dot",
  "rset", "quit", "starttls", "noop"}: milliseconds to wait before sending
  that reply; asynchronous, never holds up other sessions.  Pipelined
  commands behind a delayed one are answered after it, in order.
  greeting_delay_ms adds to delays_ms.greeting.
drop: close the connection (FIN; RST with "drop_reset": true) instead of
  replying:
    "greeting"       right after accepting, before any greeting
    "after_greeting" right after the greeting
    "at_mail" | "at_rcpt" | "at_data"   on receiving the first such command
    "mid_data"       after "drop_after_bytes" octets of message data
    "after_dot"      after the whole message incl. the final dot, no reply
split_replies: every reply is sent one byte per write (TCP_NODELAY), with
  "split_pause_ms" between writes, to test reply reassembly.
multiline_all: every single-line reply "CODE TEXT" is sent as three lines:
  "CODE-TEXT", "CODE-[ESC ]more (2/3)", "CODE [ESC ]end (3/3)" where ESC is
  TEXT's enhanced status code if it starts with one.  Replies already
  multiline (the EHLO reply) are sent as they are.
malformed:
    "mixed_codes"  the EHLO reply's first line has the code, the others 251:
                   "250-peer.test", "251-PIPELINING", ..., "251 LAST"
    "long_line"    the EHLO reply has a 2000-octet line (CRLF excluded):
                   "250-X-LONG xxx...x", among the normal ones
    "many_lines"   the EHLO reply has exactly 1000 lines: hostname,
                   "X-FILLER-nnnn" lines, then the extensions
    "garbage"      the greeting is a non-SMTP line, "SSH-2.0-OpenSSH_9.2p1
                   not-smtp"; the session then goes on normally
    "bare_lf"      every reply line ends with LF only
sessions: per-session overrides: sessions[0] applies to the first session
  accepted, sessions[1] to the second, ...; later sessions use the script
  as it is.  An override is a partial script merged into the script
  (objects merged key by key, recursively; other values replaced), e.g.
  [{"greeting": "421 4.3.2 busy"}, {}]: first session 421, second normal.
Other commands: NOOP gets "noop", VRFY "252 2.1.5 cannot VRFY", HELP
"214 2.0.0 help", an empty line "500 5.5.2 empty line", anything else
"500 5.5.2 unknown command".  Command lines may end with CRLF or LF; one
longer than 4096 octets (without its line end) is read to its end and
answered "500 5.5.2 line too long".

Commands are read as they come (several per read are fine: PIPELINING)
and answered one by one, in order, each as soon as it is handled.

Records
-------
DIR/session-<n>.json (n = 1, 2, ... in order of acceptance), rewritten
atomically (tmp + rename) when the session opens, after every command,
around message data and when it ends:
  {"n": 1,
   "peer": "127.0.0.1:40000",        the client, ADDR:PORT ([ADDR]:PORT v6)
   "client_addr": "127.0.0.1",
   "local": "127.0.0.1:2525",        what the client connected to
   "start": S, "end": E,             time.monotonic() (end null while open)
   "end_reason": null | "quit" | "eof" | "drop" | "421" | "shutdown" |
                 "reset" | "tls_failed",
   "tls": false,                     true once STARTTLS completed
   "sni": null,                      the client's SNI (after a handshake)
   "tls_version": null, "tls_cipher": null,   likewise
   "commands": ["EHLO c.test", "MAIL FROM:<a@x.test>", ...],
   "replies": ["220 peer.test ESMTP ready", "250-peer.test", ...],
   "writes": W,                      write() calls (split_replies: 1/byte)
   "transactions": [
     {"mail_from": "a@x.test",       between < and > ("" for <>)
      "mail_params": "SIZE=123 BODY=8BITMIME",
      "rcpts": ["b@x.test"],          accepted ones, in order
      "rcpts_rejected": ["bad@x.test"],
      "data_file": "DIR/session-1-txn-0.data" | null (no DATA 354),
      "data_len": N, "data_sha256": "hex",
      "complete": true,             false: cut (drop, EOF) before the dot
      "dot_reply": "250 2.0.0 queued as X" | null}]}
commands holds every command line received, in order, as text (UTF-8,
invalid bytes backslash-escaped), without its line end; a line too long
is recorded as its first 100 characters + "... [N octets]".  Message data
is not a command.  replies holds every reply line sent, without line end.
The data file holds the octets received between the 354 reply and the
final CRLF.CRLF, excluding that CRLF.CRLF (so excluding the last line's
CRLF), still dot-stuffed as on the wire; it is written as the data
arrives (never held in memory); data_len and data_sha256 describe it.

DIR/stats.json, rewritten atomically when the peer starts and whenever a
session opens or closes (after the session's final record is written):
  {"sessions": N, "max_concurrent": M, "open": K}
N sessions accepted so far, K open now, M the most open at once: tests
prove sessions overlapped with M, not with timing.
"""

import argparse
import asyncio
import copy
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import struct
import sys
import time
import traceback
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

MAX_LINE = 4096
READ_SIZE = 65536

DEFAULT_SCRIPT = {
    "greeting": "220 peer.test ESMTP ready",
    "greeting_delay_ms": 0,
    "hostname": "peer.test",
    "ehlo": {"reply_code": 250,
             "extensions": ["PIPELINING", "SIZE 10485760", "8BITMIME",
                            "SMTPUTF8", "ENHANCEDSTATUSCODES"],
             "multiline": True},
    "ehlo_reject": None,
    "helo": "250 peer.test",
    "mail": "250 2.1.0 ok",
    "rcpt": {"default": "250 2.1.5 ok", "by_address": {},
             "max_per_transaction": None},
    "data": "354 go ahead",
    "data_without_rcpts": False,
    "dot": "250 2.0.0 queued as X",
    "dot_by_transaction": [],
    "rset": "250 2.0.0 ok",
    "noop": "250 2.0.0 ok",
    "quit": "221 2.0.0 bye",
    "starttls": None,
    "tls": None,
    "delays_ms": {},
    "drop": None,
    "drop_after_bytes": 1000,
    "drop_reset": False,
    "split_replies": False,
    "split_pause_ms": 1,
    "multiline_all": False,
    "malformed": None,
    "sessions": [],
}

DROPS = (None, "greeting", "after_greeting", "at_mail", "at_rcpt", "at_data",
         "mid_data", "after_dot")
MALFORMED = (None, "mixed_codes", "long_line", "many_lines", "garbage",
             "bare_lf")
DELAY_KEYS = ("greeting", "ehlo", "helo", "mail", "rcpt", "data", "dot",
              "rset", "quit", "starttls", "noop")
REPLY_KEYS = ("greeting", "helo", "mail", "data", "dot", "rset", "noop",
              "quit")
GARBAGE_GREETING = "SSH-2.0-OpenSSH_9.2p1 not-smtp"
TLS_KEYS = ("cert", "key", "min_version", "max_version", "ciphers",
            "after_220", "ehlo")
TLS_VERSIONS = {"TLSv1": "TLSv1", "TLSv1.1": "TLSv1_1",
                "TLSv1.2": "TLSv1_2", "TLSv1.3": "TLSv1_3"}


class ScriptError(Exception):
    pass


class Dropped(Exception):
    """The session ends now (the reason is in the record)."""


# -- script --------------------------------------------------------------

def merge(base, over):
    """base with over merged in: dicts key by key, the rest replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


def check_reply(value, where, nullable=False):
    if value is None and nullable:
        return
    if isinstance(value, str):
        return
    if (isinstance(value, list) and value
            and all(isinstance(x, str) for x in value)):
        return
    raise ScriptError(f"{where}: a reply is a string or a list of strings")


def check_script(s, where="script"):
    """Raise ScriptError unless s (a merged script) is usable."""
    unknown = set(s) - set(DEFAULT_SCRIPT)
    if unknown:
        raise ScriptError(f"{where}: unknown keys {sorted(unknown)}")
    for k in REPLY_KEYS:
        check_reply(s[k], f"{where}.{k}")
    check_reply(s["ehlo_reject"], f"{where}.ehlo_reject", nullable=True)
    check_reply(s["starttls"], f"{where}.starttls", nullable=True)
    e = s["ehlo"]
    if isinstance(e, dict):
        bad = set(e) - {"reply_code", "extensions", "multiline"}
        if bad:
            raise ScriptError(f"{where}.ehlo: unknown keys {sorted(bad)}")
        if not isinstance(e.get("reply_code", 250), int):
            raise ScriptError(f"{where}.ehlo.reply_code: an integer")
        if not all(isinstance(x, str) for x in e.get("extensions", [])):
            raise ScriptError(f"{where}.ehlo.extensions: strings")
    else:
        check_reply(e, f"{where}.ehlo")
    r = s["rcpt"]
    if not isinstance(r, dict):
        raise ScriptError(f"{where}.rcpt: an object")
    bad = set(r) - {"default", "by_address", "max_per_transaction"}
    if bad:
        raise ScriptError(f"{where}.rcpt: unknown keys {sorted(bad)}")
    check_reply(r.get("default", "250 2.1.5 ok"), f"{where}.rcpt.default")
    for a, rep in (r.get("by_address") or {}).items():
        check_reply(rep, f"{where}.rcpt.by_address[{a}]")
    m = r.get("max_per_transaction")
    if m is not None and (not isinstance(m, int) or m < 0):
        raise ScriptError(f"{where}.rcpt.max_per_transaction: null or N>=0")
    if not isinstance(s["dot_by_transaction"], list):
        raise ScriptError(f"{where}.dot_by_transaction: a list")
    for i, rep in enumerate(s["dot_by_transaction"]):
        check_reply(rep, f"{where}.dot_by_transaction[{i}]", nullable=True)
    d = s["delays_ms"]
    if not isinstance(d, dict) or set(d) - set(DELAY_KEYS):
        raise ScriptError(f"{where}.delays_ms: an object with keys among "
                          f"{list(DELAY_KEYS)}")
    for k, v in list(d.items()) + [("greeting_delay_ms",
                                    s["greeting_delay_ms"])]:
        if not isinstance(v, (int, float)) or v < 0:
            raise ScriptError(f"{where}: delay {k} must be a number >= 0")
    if s["drop"] not in DROPS:
        raise ScriptError(f"{where}.drop: one of {list(DROPS)}")
    if s["malformed"] not in MALFORMED:
        raise ScriptError(f"{where}.malformed: one of {list(MALFORMED)}")
    if not isinstance(s["drop_after_bytes"], int) or s["drop_after_bytes"] < 0:
        raise ScriptError(f"{where}.drop_after_bytes: an integer >= 0")
    t = s["tls"]
    if t is not None and not (isinstance(t, dict) and {"cert", "key"} <= set(t)
                              and set(t) <= set(TLS_KEYS)):
        raise ScriptError(f"{where}.tls: null or {{\"cert\", \"key\"}} "
                          f"with optional keys among {list(TLS_KEYS[2:])}")
    if t is not None:
        for k in ("min_version", "max_version"):
            if t.get(k) is not None and t[k] not in TLS_VERSIONS:
                raise ScriptError(f"{where}.tls.{k}: one of "
                                  f"{list(TLS_VERSIONS)}")
        if t.get("after_220") not in (None, "close", "garbage", "silent"):
            raise ScriptError(f"{where}.tls.after_220: null, \"close\", "
                              "\"garbage\" or \"silent\"")
        if "ehlo" in t and not isinstance(t["ehlo"], dict):
            check_reply(t["ehlo"], f"{where}.tls.ehlo")
    if not isinstance(s["sessions"], list) or not all(
            isinstance(x, dict) for x in s["sessions"]):
        raise ScriptError(f"{where}.sessions: a list of objects")


def load_script(obj):
    if not isinstance(obj, dict):
        raise ScriptError("the script must be a JSON object")
    base = merge(DEFAULT_SCRIPT, obj)
    check_script(base)
    for i, over in enumerate(base["sessions"]):
        s = merge(base, over)
        s["sessions"] = []
        check_script(s, f"sessions[{i}]")
        if s["tls"]:
            tls_context(s)                  # fail now, not mid-session
    if base["tls"]:
        tls_context(base)
    return base


def tls_context(s):
    t = s["tls"]
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(t["cert"], t["key"])
        if t.get("ciphers") is not None:
            ctx.set_ciphers(t["ciphers"])
        with warnings.catch_warnings():
            # TLS 1.0 and 1.1 are deprecated: testing them is the point.
            warnings.simplefilter("ignore", DeprecationWarning)
            for k in ("min_version", "max_version"):
                if t.get(k) is not None:
                    v = getattr(ssl.TLSVersion, TLS_VERSIONS[t[k]])
                    setattr(ctx, "minimum_version" if k == "min_version"
                            else "maximum_version", v)
        return ctx
    except (OSError, ssl.SSLError, ValueError) as e:
        raise ScriptError(f"tls: {e}") from None


# -- replies ---------------------------------------------------------------

def reply_lines(reply):
    return [reply] if isinstance(reply, str) else list(reply)


def reply_code(lines):
    m = re.match(r"(\d{3})", lines[-1]) if lines else None
    return int(m.group(1)) if m else None


ESC_RE = re.compile(r"^(\d{3})[ ]([245]\.\d{1,3}\.\d{1,3} )?(.*)$")


def three_lines(line):
    m = ESC_RE.match(line)
    if not m:
        return [line]
    code, esc = m.group(1), m.group(2) or ""
    return [f"{code}-{esc}{m.group(3)}", f"{code}-{esc}more (2/3)",
            f"{code} {esc}end (3/3)"]


def ehlo_lines(s):
    e = s["ehlo"]
    if not isinstance(e, dict):
        return reply_lines(e)
    code = e.get("reply_code", 250)
    exts = list(e.get("extensions", DEFAULT_SCRIPT["ehlo"]["extensions"]))
    host = s["hostname"]
    bad = s["malformed"]
    if bad == "long_line":
        exts.insert(0, "X-LONG " + "x" * (2000 - 4 - 7))
    elif bad == "many_lines":
        n = max(0, 1000 - 1 - len(exts))
        exts = [f"X-FILLER-{i:04d}" for i in range(n)] + exts
    if not e.get("multiline", True) and bad is None:
        return [f"{code} {host}"]
    items = [host] + exts
    if bad == "mixed_codes":
        if len(items) == 1:
            items.append("second")
        rest = items[1:]
        return ([f"{code}-{host}"] + [f"251-{x}" for x in rest[:-1]]
                + [f"251 {rest[-1]}"])
    return ([f"{code}-{x}" for x in items[:-1]] + [f"{code} {items[-1]}"])


def address_of(arg):
    """(address, params) from 'FROM:<a@b> SIZE=1' / 'TO:<a@b>'."""
    _, _, rest = arg.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        addr, _, params = rest[1:].partition(">")
        return addr, params.strip()
    addr, _, params = rest.partition(" ")
    return addr, params.strip()


def hostport(addr):
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


# -- sessions ------------------------------------------------------------

class Peer:
    def __init__(self, script, record_dir):
        self.script = script
        self.dir = record_dir
        self.sessions = 0
        self.open = 0
        self.max_concurrent = 0
        self.tasks = set()

    def write_stats(self):
        write_json(os.path.join(self.dir, "stats.json"),
                   {"sessions": self.sessions,
                    "max_concurrent": self.max_concurrent,
                    "open": self.open})

    def script_for(self, n):
        over = self.script["sessions"]
        s = merge(self.script, over[n - 1]) if n <= len(over) else \
            dict(self.script)
        s["sessions"] = []
        return s

    async def client(self, reader, writer):
        self.sessions += 1
        n = self.sessions
        self.open += 1
        self.max_concurrent = max(self.max_concurrent, self.open)
        self.write_stats()
        task = asyncio.current_task()
        self.tasks.add(task)
        sess = Session(self, n, self.script_for(n), reader, writer)
        try:
            await sess.run()
        finally:
            self.tasks.discard(task)
            self.open -= 1
            self.write_stats()


class Session:
    def __init__(self, peer, n, script, reader, writer):
        self.peer = peer
        self.n = n
        self.s = script
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.eol = b"\n" if script["malformed"] == "bare_lf" else b"\r\n"
        self.helo = False
        self.txn = None             # the open transaction (a record dict)
        self.refusing = False       # after a non-220, non-421 greeting
        peername = writer.get_extra_info("peername")
        sockname = writer.get_extra_info("sockname")
        self.path = os.path.join(peer.dir, f"session-{n}.json")
        self.rec = {"n": n, "peer": hostport(peername),
                    "client_addr": peername[0], "local": hostport(sockname),
                    "start": time.monotonic(), "end": None,
                    "end_reason": None, "tls": False, "sni": None,
                    "tls_version": None, "tls_cipher": None, "commands": [],
                    "replies": [], "writes": 0, "transactions": []}
        sock = writer.get_extra_info("socket")
        if sock is not None and script["split_replies"]:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def save(self):
        write_json(self.path, self.rec)

    # -- I/O --

    async def delay(self, key):
        ms = self.s["delays_ms"].get(key, 0)
        if key == "greeting":
            ms += self.s["greeting_delay_ms"]
        if ms:
            await asyncio.sleep(ms / 1000.0)

    async def send(self, lines, delay_key=None):
        """Send a reply (list of lines); Dropped after a 421."""
        if delay_key:
            await self.delay(delay_key)
        if self.s["multiline_all"] and len(lines) == 1:
            lines = three_lines(lines[0])
        data = b"".join(x.encode("utf-8") + self.eol for x in lines)
        self.rec["replies"] += lines
        if self.s["split_replies"]:
            # No pause after the last byte: nothing may run between a 220
            # to STARTTLS and the TLS handshake taking over the socket.
            pause = self.s["split_pause_ms"] / 1000.0
            for i in range(len(data)):
                if i:
                    await asyncio.sleep(pause)
                self.writer.write(data[i:i + 1])
                self.rec["writes"] += 1
                await self.writer.drain()
        else:
            self.writer.write(data)
            self.rec["writes"] += 1
            await self.writer.drain()
        if reply_code(lines) == 421:
            self.rec["end_reason"] = "421"
            raise Dropped()

    def drop(self):
        self.rec["end_reason"] = "drop"
        if self.s["drop_reset"]:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        raise Dropped()

    async def fill(self):
        chunk = await self.reader.read(READ_SIZE)
        if not chunk:
            self.rec["end_reason"] = "eof"
            raise Dropped()
        self.buf += chunk

    async def read_line(self):
        """The next command line (bytes, without its line end), or None
        for a line too long (already answered)."""
        too_long = 0
        head = b""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if too_long or len(line) > MAX_LINE:
                    total = too_long + len(line)
                    head = (head or line)[:100]
                    self.rec["commands"].append(
                        head.decode("utf-8", "backslashreplace")
                        + f"... [{total} octets]")
                    await self.send(["500 5.5.2 line too long"])
                    self.save()
                    return None
                return line
            if len(self.buf) > MAX_LINE + 1:
                if not too_long:
                    head = bytes(self.buf[:100])
                too_long += len(self.buf)
                self.buf.clear()
            await self.fill()

    # -- the session --

    async def run(self):
        try:
            self.save()
            await self.converse()
        except Dropped:
            pass
        except asyncio.CancelledError:
            if not self.rec["end_reason"]:
                self.rec["end_reason"] = "shutdown"
        except (ConnectionError, OSError):
            self.rec["end_reason"] = self.rec["end_reason"] or "reset"
        except ssl.SSLError:
            self.rec["end_reason"] = "tls_failed"
        except Exception:
            traceback.print_exc()
            self.rec["end_reason"] = "peer_error"
        finally:
            self.finish_txn_file()
            self.rec["end"] = time.monotonic()
            self.save()
            try:
                self.writer.close()
            except Exception:
                pass

    def finish_txn_file(self):
        f = getattr(self, "data_fh", None)
        if f is not None:
            f.close()
            self.data_fh = None

    async def converse(self):
        s = self.s
        if s["drop"] == "greeting":
            self.drop()
        greeting = reply_lines(s["greeting"])
        if s["malformed"] == "garbage":
            greeting = [GARBAGE_GREETING]
        await self.send(greeting, "greeting")
        code = reply_code(greeting)
        if code is not None and code != 220:
            self.refusing = True
        self.save()
        if s["drop"] == "after_greeting":
            self.drop()
        while True:
            line = await self.read_line()
            if line is None:
                continue
            text = line.decode("utf-8", "backslashreplace")
            self.rec["commands"].append(text)
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            arg = arg.strip()
            await self.command(verb, arg)
            self.save()

    async def command(self, verb, arg):
        s = self.s
        if self.refusing and verb != "QUIT":
            return await self.send(["503 5.5.1 no service here"])
        if verb == "EHLO":
            if s["ehlo_reject"] is not None:
                return await self.send(reply_lines(s["ehlo_reject"]), "ehlo")
            lines = ehlo_lines(s)
            self.txn = None
            await self.send(lines, "ehlo")
            if 200 <= (reply_code(lines[:1]) or 0) < 300:
                self.helo = True
        elif verb == "HELO":
            lines = reply_lines(s["helo"])
            self.txn = None
            key = "helo" if "helo" in s["delays_ms"] else "ehlo"
            await self.send(lines, key)
            if 200 <= (reply_code(lines) or 0) < 300:
                self.helo = True
        elif verb == "MAIL":
            if s["drop"] == "at_mail":
                self.drop()
            if not self.helo:
                return await self.send(["503 5.5.1 EHLO first"], "mail")
            if self.txn is not None:
                return await self.send(["503 5.5.1 nested MAIL"], "mail")
            lines = reply_lines(s["mail"])
            if 200 <= (reply_code(lines) or 0) < 300:
                addr, params = address_of(arg)
                self.txn = {"mail_from": addr, "mail_params": params,
                            "rcpts": [], "rcpts_rejected": [],
                            "data_file": None, "data_len": None,
                            "data_sha256": None, "complete": False,
                            "dot_reply": None}
                self.rec["transactions"].append(self.txn)
            await self.send(lines, "mail")
        elif verb == "RCPT":
            if s["drop"] == "at_rcpt":
                self.drop()
            if self.txn is None:
                return await self.send(["503 5.5.1 need MAIL"], "rcpt")
            addr, _ = address_of(arg)
            r = s["rcpt"]
            limit = r.get("max_per_transaction")
            by = {k.lower(): v for k, v in (r.get("by_address") or {}).items()}
            if limit is not None and len(self.txn["rcpts"]) >= limit:
                lines = ["452 4.5.3 too many recipients"]
            else:
                lines = reply_lines(by.get(addr.lower(),
                                           r.get("default", "250 2.1.5 ok")))
            if 200 <= (reply_code(lines) or 0) < 300:
                self.txn["rcpts"].append(addr)
            else:
                self.txn["rcpts_rejected"].append(addr)
            await self.send(lines, "rcpt")
        elif verb == "DATA":
            if s["drop"] == "at_data":
                self.drop()
            if self.txn is None:
                return await self.send(["503 5.5.1 need MAIL"], "data")
            if not self.txn["rcpts"] and not s["data_without_rcpts"]:
                return await self.send(["554 5.5.1 no valid recipients"],
                                       "data")
            lines = reply_lines(s["data"])
            await self.send(lines, "data")
            if reply_code(lines) == 354:
                await self.receive_data()
        elif verb == "RSET":
            lines = reply_lines(s["rset"])
            if 200 <= (reply_code(lines) or 0) < 300:
                self.txn = None
            await self.send(lines, "rset")
        elif verb == "NOOP":
            await self.send(reply_lines(s["noop"]), "noop")
        elif verb == "VRFY":
            await self.send(["252 2.1.5 cannot VRFY"])
        elif verb == "HELP":
            await self.send(["214 2.0.0 help"])
        elif verb == "QUIT":
            await self.send(reply_lines(s["quit"]), "quit")
            self.rec["end_reason"] = "quit"
            raise Dropped()
        elif verb == "STARTTLS":
            await self.starttls()
        elif verb == "":
            await self.send(["500 5.5.2 empty line"])
        else:
            await self.send(["500 5.5.2 unknown command"])

    async def starttls(self):
        s = self.s
        offered = isinstance(s["ehlo"], dict) and any(
            x.split()[0].upper() == "STARTTLS"
            for x in s["ehlo"].get("extensions", []) if x.split())
        if s["starttls"] is not None:
            lines = reply_lines(s["starttls"])
        elif offered:
            lines = ["454 4.7.0 TLS not available"]
        else:
            lines = ["502 5.5.1 STARTTLS not offered"]
        await self.send(lines, "starttls")
        if reply_code(lines) != 220 or not s["tls"]:
            return
        self.save()
        self.buf.clear()            # RFC 3207: discard pipelined plaintext
        t = s["tls"]
        if t.get("after_220") == "garbage":
            self.writer.write(b"this is not a TLS record\r\n")
            self.rec["writes"] += 1
            await self.writer.drain()
        if t.get("after_220") == "silent":
            while await self.reader.read(READ_SIZE):
                pass
        if t.get("after_220") is not None:
            self.rec["end_reason"] = "tls_failed"
            raise Dropped()
        ctx = tls_context(s)

        def sni(obj, name, c):
            self.rec["sni"] = name
        ctx.sni_callback = sni
        try:
            await self.writer.start_tls(ctx)
        except (ssl.SSLError, ConnectionError, OSError):
            self.rec["end_reason"] = "tls_failed"
            raise Dropped()
        self.rec["tls"] = True
        obj = self.writer.get_extra_info("ssl_object")
        if obj is not None:
            self.rec["tls_version"] = obj.version()
            self.rec["tls_cipher"] = (obj.cipher() or (None,))[0]
        if "ehlo" in t:
            self.s = dict(s, ehlo=t["ehlo"])
        self.helo = False
        self.txn = None

    async def receive_data(self):
        """Read message data to the final dot, to a file; reply."""
        s, txn = self.s, self.txn
        index = next(i for i, t in enumerate(self.rec["transactions"])
                     if t is txn)
        path = os.path.join(self.peer.dir,
                            f"session-{self.n}-txn-{index}.data")
        txn["data_file"] = os.path.abspath(path)
        txn["data_len"] = 0
        self.save()
        h = hashlib.sha256()
        limit = s["drop_after_bytes"] if s["drop"] == "mid_data" else None
        received = 0
        # The CRLF that ended the DATA line: a message that is just ".\r\n"
        # is empty.  It is never written ("skip" octets at the front).
        win = bytearray(b"\r\n")
        skip = 2
        chunk = bytes(self.buf)
        self.buf.clear()
        self.data_fh = open(path, "wb")
        f = self.data_fh

        def emit(b):
            if b:
                f.write(b)
                h.update(b)
                txn["data_len"] += len(b)

        complete = False
        cut_off = False
        while True:
            if limit is not None and received + len(chunk) >= limit:
                chunk = chunk[:limit - received]
                cut_off = True
            received += len(chunk)
            win += chunk
            i = win.find(b"\r\n.\r\n")
            if i >= 0:
                emit(win[skip:i] if i > skip else b"")
                self.buf[:0] = win[i + 5:]      # pipelined commands
                complete = True
                break
            if cut_off:
                emit(win[skip:])
                break
            cut = len(win) - 4              # may be the start of CRLF.CRLF
            if cut > skip:
                emit(win[skip:cut])
            if cut > 0:
                del win[:cut]
                skip = max(0, skip - cut)
            chunk = await self.reader.read(READ_SIZE)
            if not chunk:
                emit(win[skip:])
                self.rec["end_reason"] = "eof"
                break
        f.close()
        self.data_fh = None
        txn["data_sha256"] = h.hexdigest()
        txn["complete"] = complete
        self.txn = None
        if not complete:
            if cut_off:
                self.drop()
            raise Dropped()
        self.save()
        if s["drop"] == "after_dot":
            self.drop()
        by = s["dot_by_transaction"]
        lines = reply_lines(by[index] if index < len(by) and
                            by[index] is not None else s["dot"])
        txn["dot_reply"] = "\n".join(lines)
        await self.send(lines, "dot")


# -- server --------------------------------------------------------------

async def serve(args, script):
    peer = Peer(script, args.record)
    port, socks = peerlib.bind_tcp_all(args.listen, args.port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = [await asyncio.start_server(peer.client, sock=t,
                                          limit=READ_SIZE)
               for t in socks]
    peer.write_stats()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    watch = asyncio.ensure_future(
        peerlib.watch_parent("smtp_fault_peer", os.getppid(), stop))
    await stop.wait()
    watch.cancel()
    for srv in servers:
        srv.close()
    tasks = list(peer.tasks)
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=2.0)
    peer.write_stats()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--script", required=True)
    ap.add_argument("--listen", action="append")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record", required=True)
    args = ap.parse_args(argv)
    args.listen = args.listen or ["127.0.0.1"]
    for a in args.listen:
        try:
            ok = ipaddress.ip_address(a).is_loopback
        except ValueError:
            ok = False
        if not ok:
            ap.error(f"--listen {a}: only 127.0.0.0/8 and ::1 are allowed")
    try:
        with open(args.script) as f:
            script = load_script(json.load(f))
    except (OSError, ValueError, ScriptError) as e:
        print(f"smtp_fault_peer: {args.script}: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.record, exist_ok=True)
    try:
        asyncio.run(serve(args, script))
    except OSError as e:
        print(f"smtp_fault_peer: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
