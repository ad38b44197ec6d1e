# SPDX-License-Identifier: MIT
"""Helpers for aimx's integration tests: real DNS servers on loopback.

Import it by putting tests/lib on sys.path.  Everything here is stdlib only
and runs with Debian's /usr/bin/python3.

Servers are started by the test and stopped by the test, by PID, from the
context managers' __exit__ (so also when a test fails).  They listen on
127.0.0.0/8 or ::1 only.

Public API
----------
free_port(host="127.0.0.1") -> int
    A port free for both TCP and UDP on host (racy by nature: bind soon).

query(server, port, name, qtype, tcp=False, timeout=2.0, edns=None, rd=True)
    -> (rcode, flags, answers)
    One DNS query.  rcode is an int (see the constants NOERROR...), flags a
    frozenset of lower-case names among {"qr","aa","tc","rd","ra","ad","cd"},
    answers a list of (type, data) string pairs in the answer section's
    order, e.g. ("A", "127.0.0.2"), ("MX", "10 mx1.example.test."),
    ("TXT", '"first" "second"') (presentation form, like dig).  Raises
    socket.timeout (TimeoutError) when no reply comes, MalformedReply when
    the reply cannot be decoded.

query_reply(...) -> Reply      same arguments; the whole decoded message:
    Reply(id, rcode, flags, answers, authority, additional, edns) where the
    three sections are lists of RR(name, type, ttl, data) and edns is the
    reply's OPT UDP payload size or None (an extended rcode is folded into
    rcode).  edns=N sends an OPT record offering N octets over UDP.
txt_strings(data) -> [str]     the character-strings of a TXT data string.
build_query(name, qtype, qid=None, rd=True, edns=None) -> (qid, bytes)
parse_reply(bytes) -> Reply    for tests that talk to a socket themselves.
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED   rcode constants.

class DnsFaultPeer(zone, listen=("127.0.0.1",), stats=True)
    Context manager running tests/peers/dns_fault_peer.py on a port free on
    every listen address (its docstring documents the zone format, the
    actions and the stats).  Raises RuntimeError with the peer's log if it
    does not start within 10 s (e.g. a bad zone).  .port, .host (the first
    listen address), .server ("127.0.0.1:PORT", "[::1]:PORT"), .pid,
    .log() -> str, .stats() -> dict (the stats JSON),
    .wait_queries(n, outstanding=None, timeout=5.0) -> dict (waits until
    n queries were received and, if given, that many are unanswered),
    .returncode (after exit; 0 when it stopped cleanly on SIGTERM).

class Dnsmasq(records, listen="127.0.0.1", ttl=60, extra_args=(),
              log_queries=True)
    Context manager running /usr/sbin/dnsmasq (package dnsmasq-base) in the
    foreground (--no-daemon: TCP served in-process, so one PID), as nobody
    when root, serving records = [(name, type, data), ...] from a config
    file: types A, AAAA (loopback addresses only; several per name are
    fine), MX ("PREF EXCHANGE", "0 ." = null MX), CNAME, TXT (a string or a
    list of strings, commas and quotes allowed), PTR.  Names must be under
    .test (or in-addr.arpa/ip6.arpa); --local=/test/ makes unknown .test
    names NXDOMAIN, a known name without the type is NODATA (NOERROR, no
    records, no SOA, no AA); other names are REFUSED (no upstream).  Equal
    records come back in rotating order.  Raises RuntimeError with
    dnsmasq's log if it does not answer within 10 s.  .port, .host,
    .server, .pid, .log() -> str (with --log-queries, every query),
    .returncode (after exit).

ensure_debian_packages(*names)
    Returns if every package is installed (dpkg-query); else installs them
    with apt-get when root (apt-get update and retry if that fails), else
    raises RuntimeError naming them.

SMTP servers
------------
class SmtpFaultPeer(script, listen=("127.0.0.1",))
    Context manager running tests/peers/smtp_fault_peer.py (its docstring
    documents the script and the records) with script (a dict) on a port
    free on every listen address, recording to a temporary directory
    removed on exit.  Raises RuntimeError with the peer's log if it does
    not start within 10 s (e.g. a bad script).  .port, .host (the first
    listen address), .server, .pid, .record_dir, .log() -> str,
    .returncode (after exit),
    .sessions() -> [session record dict, ...] sorted by "n",
    .session(n) -> dict (KeyError if none),
    .stats() -> {"sessions", "max_concurrent", "open"},
    .wait_sessions(n, timeout=5.0, ended=True) -> sessions(): waits until
        n sessions have ended (ended=False: have started),
    .raw_data(session_n, txn=0) -> bytes: the data as on the wire
        (dot-stuffed, without the final CRLF.CRLF),
    .message_bytes(session_n, txn_index=0) -> bytes: the message the client
        sent: raw_data un-dot-stuffed (one leading "." removed from every
        CRLF-delimited line starting with "."), with the final line's CRLF
        (which belongs to CRLF.CRLF on the wire) put back, so that it
        compares equal to the canonical message and to what aiosmtpd
        records; b"" for an empty message; for a transaction cut before its
        dot ("complete": false), the un-stuffed octets received, nothing
        added.
unstuff(data) -> bytes         one leading "." removed from every
    CRLF-delimited line of data that starts with "." (no CRLF added).
dot_stuff(message) -> bytes    the reverse: "." doubled at line starts.

class AiosmtpdSink(listen="127.0.0.1", data_size_limit=None, tls_cert=None,
                   tls_key=None, hostname="sink.test", smtputf8=False)
    Context manager running tests/peers/aiosmtpd_sink.py: Debian's aiosmtpd
    (python3-aiosmtpd, installed by ensure_debian_packages if missing) on
    loopback, recording every accepted message.  listen: an address or a
    sequence of them.  data_size_limit None: no limit, no SIZE; N: SIZE N.
    tls_cert/tls_key (PEM paths): STARTTLS offered, not required.  Raises
    RuntimeError with the log if it does not start within 10 s.  .port,
    .host, .server, .pid, .record_dir, .log() -> str, .returncode,
    .messages() -> [(meta dict, bytes), ...] in order (meta: see the
        sink's docstring; bytes: exactly envelope.original_content),
    .wait_messages(n, timeout=5.0) -> messages(),
    .stats() -> {"sessions", "open", "max_concurrent", "messages"}.
Both stop their process by PID on exit (SIGTERM, SIGKILL after 5 s), also
when the test failed; the wait_* methods raise RuntimeError with the log
if the process died.
"""

import collections
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_SCRIPT = os.path.normpath(os.path.join(HERE, "..", "peers",
                                            "dns_fault_peer.py"))
PYTHON3 = "/usr/bin/python3"
DNSMASQ = "/usr/sbin/dnsmasq"

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15,
         "TXT": 16, "AAAA": 28, "SRV": 33, "OPT": 41, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}

RR = collections.namedtuple("RR", "name type ttl data")
Reply = collections.namedtuple(
    "Reply", "id rcode flags answers authority additional edns")


class MalformedReply(ValueError):
    """A reply that is not a well-formed DNS message."""


# -- ports ---------------------------------------------------------------

def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host="127.0.0.1"):
    """A port number free for both TCP and UDP on host."""
    fam = _family(host)
    for _ in range(100):
        t = socket.socket(fam, socket.SOCK_STREAM)
        u = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            t.bind((host, 0))
            port = t.getsockname()[1]
            try:
                u.bind((host, port))
            except OSError:
                continue
            return port
        finally:
            t.close()
            u.close()
    raise RuntimeError(f"no port free for both TCP and UDP on {host}")


# -- DNS wire format -----------------------------------------------------

def _type_code(qtype):
    if isinstance(qtype, int):
        return qtype
    t = qtype.upper()
    if t in TYPES:
        return TYPES[t]
    if t.startswith("TYPE") and t[4:].isdigit():
        return int(t[4:])
    raise ValueError(f"unknown DNS type {qtype!r}")


def _type_name(code):
    return TYPE_NAMES.get(code, f"TYPE{code}")


def _encode_name(name):
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            b = label.encode("ascii")
            if not 0 < len(b) < 64:
                raise ValueError(f"bad label in {name!r}")
            out += bytes([len(b)]) + b
    return out + b"\0"


def _decode_name(msg, off):
    """(name, offset after the name), following compression pointers."""
    labels = []
    end = None
    jumps = 0
    while True:
        if off >= len(msg):
            raise MalformedReply("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise MalformedReply("truncated compression pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 64:
                raise MalformedReply("compression loop")
            continue
        if n & 0xC0:
            raise MalformedReply("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise MalformedReply("label runs past the end")
        labels.append(msg[off:off + n].decode("ascii", "backslashreplace"))
        off += n
    return ".".join(labels) + ".", (end if end is not None else off)


def _txt_presentation(strings):
    out = []
    for s in strings:
        t = ""
        for c in s:
            if c in (0x22, 0x5C):
                t += "\\" + chr(c)
            elif 0x20 <= c < 0x7F:
                t += chr(c)
            else:
                t += "\\%03d" % c
        out.append('"' + t + '"')
    return " ".join(out)


def txt_strings(data):
    """The character-strings of a TXT presentation string from query()."""
    out = []
    i = 0
    while i < len(data):
        if data[i] == " ":
            i += 1
            continue
        if data[i] != '"':
            raise ValueError(f"not a TXT presentation string: {data!r}")
        i += 1
        s = bytearray()
        while data[i] != '"':
            if data[i] == "\\":
                if data[i + 1].isdigit():
                    s.append(int(data[i + 1:i + 4]))
                    i += 4
                    continue
                i += 1
            s += data[i].encode("latin-1")
            i += 1
        out.append(s.decode("utf-8", "backslashreplace"))
        i += 1
    return out


def _decode_rdata(msg, rtype, off, rdlen):
    rd = msg[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, rd)
    if rtype == 28 and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, rd)
    if rtype in (2, 5, 12):
        return _decode_name(msg, off)[0]
    if rtype == 15 and rdlen >= 3:
        pref = struct.unpack("!H", rd[:2])[0]
        return f"{pref} {_decode_name(msg, off + 2)[0]}"
    if rtype == 16:
        strings = []
        i = 0
        while i < rdlen:
            n = rd[i]
            if i + 1 + n > rdlen:
                raise MalformedReply("TXT string runs past its RDATA")
            strings.append(rd[i + 1:i + 1 + n])
            i += 1 + n
        return _txt_presentation(strings)
    if rtype == 6:
        mname, o = _decode_name(msg, off)
        rname, o = _decode_name(msg, o)
        nums = struct.unpack("!IIIII", msg[o:o + 20])
        return " ".join([mname, rname] + [str(x) for x in nums])
    return f"\\# {rdlen} {rd.hex()}"


def build_query(name, qtype, qid=None, rd=True, edns=None):
    """The wire form of a query (edns: None, or the UDP payload size)."""
    qid = random.getrandbits(16) if qid is None else qid
    flags = 0x0100 if rd else 0
    arcount = 1 if edns else 0
    msg = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, arcount)
    msg += _encode_name(name) + struct.pack("!HH", _type_code(qtype), 1)
    if edns:
        msg += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return qid, msg


def parse_reply(msg):
    """Decode a reply into a Reply; MalformedReply if it cannot be."""
    try:
        return _parse_reply(msg)
    except (IndexError, struct.error, UnicodeError) as e:
        raise MalformedReply(str(e)) from None


def _parse_reply(msg):
    if len(msg) < 12:
        raise MalformedReply(f"reply of {len(msg)} bytes")
    qid, fl, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    flags = frozenset(n for n, bit in (("qr", 0x8000), ("aa", 0x0400),
                                       ("tc", 0x0200), ("rd", 0x0100),
                                       ("ra", 0x0080), ("ad", 0x0020),
                                       ("cd", 0x0010)) if fl & bit)
    rcode = fl & 0xF
    off = 12
    for _ in range(qd):
        _, off = _decode_name(msg, off)
        off += 4
    sections = []
    edns = None
    for count in (an, ns, ar):
        rrs = []
        for _ in range(count):
            name, off = _decode_name(msg, off)
            if off + 10 > len(msg):
                raise MalformedReply("record header runs past the end")
            rtype, rclass, ttl, rdlen = struct.unpack("!HHIH",
                                                      msg[off:off + 10])
            off += 10
            if off + rdlen > len(msg):
                raise MalformedReply("RDATA runs past the end")
            if rtype == 41:
                edns = rclass
                rcode |= (ttl >> 24) << 4
            else:
                rrs.append(RR(name, _type_name(rtype), ttl,
                              _decode_rdata(msg, rtype, off, rdlen)))
            off += rdlen
        sections.append(rrs)
    if off != len(msg):
        raise MalformedReply(f"{len(msg) - off} bytes after the last record")
    return Reply(qid, rcode, flags, sections[0], sections[1], sections[2],
                 edns)


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise MalformedReply("TCP connection closed mid-message")
        buf += chunk
    return buf


def query_reply(server, port, name, qtype, tcp=False, timeout=2.0,
                edns=None, rd=True):
    """Send one query; the decoded Reply (see the module docstring)."""
    qid, msg = build_query(name, qtype, rd=rd, edns=edns)
    fam = _family(server)
    deadline = time.monotonic() + timeout
    if tcp:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((server, port))
            s.sendall(struct.pack("!H", len(msg)) + msg)
            while True:
                s.settimeout(max(0.001, deadline - time.monotonic()))
                n = struct.unpack("!H", _recv_exact(s, 2))[0]
                data = _recv_exact(s, n)
                if len(data) >= 2 and struct.unpack("!H", data[:2])[0] != qid:
                    continue
                return parse_reply(data)
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.connect((server, port))
        s.send(msg)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no reply from {server} port {port}")
            s.settimeout(left)
            data = s.recv(65535)
            if len(data) < 2 or struct.unpack("!H", data[:2])[0] != qid:
                continue            # not ours: keep waiting
            return parse_reply(data)


def query(server, port, name, qtype, tcp=False, timeout=2.0, edns=None,
          rd=True):
    """(rcode, flags, [(type, data), ...]) for one query."""
    r = query_reply(server, port, name, qtype, tcp=tcp, timeout=timeout,
                    edns=edns, rd=rd)
    return r.rcode, r.flags, [(rr.type, rr.data) for rr in r.answers]


# -- process handling ----------------------------------------------------

def _stop(proc, grace=5.0):
    """SIGTERM proc by its PID, wait, SIGKILL after grace seconds."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class DnsFaultPeer:
    """The suite's DNS fault peer, started and stopped by the test."""

    def __init__(self, zone, listen=("127.0.0.1",), stats=True):
        if isinstance(listen, str):
            listen = (listen,)
        self.zone = zone
        self.listen = tuple(listen)
        self.want_stats = stats
        self.dir = None
        self.proc = None
        self.port = None
        self.returncode = None      # the exit status, once stopped
        self.host = self.listen[0]

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def server(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="aimx-dnspeer-")
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self):
        zone_path = os.path.join(self.dir, "zone.json")
        with open(zone_path, "w") as f:
            json.dump(self.zone, f)
        self.port_file = os.path.join(self.dir, "port")
        self.stats_path = os.path.join(self.dir, "stats.json")
        self.log_path = os.path.join(self.dir, "peer.log")
        argv = [PYTHON3, PEER_SCRIPT, "--zone", zone_path,
                "--port", "0", "--port-file", self.port_file]
        for a in self.listen:
            argv += ["--listen", a]
        if self.want_stats:
            argv += ["--stats", self.stats_path]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         close_fds=True)
        deadline = time.monotonic() + 10
        while True:
            if os.path.exists(self.port_file):
                self.port = int(_read(self.port_file).strip())
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"dns_fault_peer exited with {self.proc.returncode}:\n"
                    + self.log())
            if time.monotonic() > deadline:
                raise RuntimeError("dns_fault_peer did not start in 10 s:\n"
                                   + self.log())
            time.sleep(0.02)

    def stats(self):
        """The peer's stats JSON (queries, max_outstanding, log)."""
        if not self.want_stats:
            raise RuntimeError("DnsFaultPeer started with stats=False")
        for _ in range(50):
            try:
                with open(self.stats_path) as f:
                    return json.load(f)
            except FileNotFoundError:
                return {"queries": 0, "max_outstanding": 0, "log": []}
            except ValueError:
                time.sleep(0.02)    # cannot happen with rename; be safe
        raise RuntimeError("unreadable stats file")

    def wait_queries(self, n, outstanding=None, timeout=5.0):
        """Wait (bounded) until the peer has received n queries (and, if
        given, has exactly `outstanding` unanswered); the stats then."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if s["queries"] >= n and (outstanding is None
                                      or s["outstanding"] == outstanding):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"peer stats after {timeout} s: {s}")
            time.sleep(0.02)

    def log(self):
        return _read(self.log_path) if self.dir else ""

    def __exit__(self, *exc):
        try:
            _stop(self.proc)
            if self.proc is not None:
                self.returncode = self.proc.returncode
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
        return False


def _dnsmasq_quote(text):
    """A dnsmasq config-file quoted string (commas inside are kept)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dnsmasq_config(records, ttl=60):
    """dnsmasq config-file lines serving records (see Dnsmasq).

    A config file rather than the command line: dnsmasq honours quotes
    (commas and spaces inside TXT strings) only in files."""
    addrs = collections.OrderedDict()
    lines = []
    for name, rtype, data in records:
        name = name.rstrip(".")
        rtype = rtype.upper()
        if not (name == "test" or name.endswith(".test")
                or name.endswith(".in-addr.arpa")
                or name.endswith(".ip6.arpa")):
            raise ValueError(f"{name}: Dnsmasq serves names under .test only")
        if rtype in ("A", "AAAA"):
            ip = ipaddress.ip_address(data)
            if not ip.is_loopback:
                raise ValueError(f"{name}: {data} is not a loopback address")
            if (rtype == "A") != (ip.version == 4):
                raise ValueError(f"{name}: {data} is not an {rtype} address")
            addrs.setdefault(name.lower(), []).append(str(ip))
        elif rtype == "MX":
            pref, exchange = data.split()
            # An empty exchange is the null MX ("0 ."), which dnsmasq serves.
            lines.append(f"mx-host={name},{exchange.rstrip('.')},{int(pref)}")
        elif rtype == "CNAME":
            lines.append(f"cname={name},{data.rstrip('.')},{ttl}")
        elif rtype == "TXT":
            strings = [data] if isinstance(data, str) else list(data)
            lines.append(f"txt-record={name},"
                         + ",".join(_dnsmasq_quote(s) for s in strings))
        elif rtype == "PTR":
            lines.append(f"ptr-record={name},{data.rstrip('.')}")
        else:
            raise ValueError(f"{name}: Dnsmasq cannot serve {rtype} records")
    # One host-record per address: a host-record listing two IPv4
    # addresses serves only the last one.
    for name, ips in addrs.items():
        for ip in ips:
            lines.append(f"host-record={name},{ip},{ttl}")
    return lines


def _unprivileged():
    """Popen arguments that run root's children as nobody."""
    if os.geteuid() != 0:
        return {}
    return {"user": "nobody", "group": "nogroup", "extra_groups": []}


class Dnsmasq:
    """dnsmasq (dnsmasq-base) on loopback serving records under .test."""

    PROBE = "aimxtest-probe.test"

    def __init__(self, records, listen="127.0.0.1", ttl=60, extra_args=(),
                 log_queries=True):
        self.records = list(records)
        self.host = listen
        self.ttl = ttl
        self.extra_args = list(extra_args)
        self.log_queries = log_queries
        self.dir = None
        self.proc = None
        self.port = None
        self.returncode = None      # the exit status, once stopped

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def server(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"

    def argv(self, port):
        a = [DNSMASQ,
             # Debug mode: in the foreground, TCP served in-process (no
             # forked children outliving the PID we stop).  It ignores
             # --user, so root's dnsmasq is started as nobody instead.
             "--no-daemon",
             "--log-facility=-",         # log to stderr (our log file)
             f"--conf-file={self.conf_path}",  # not /etc/dnsmasq.conf
             "--pid-file=",              # no pid file
             "--no-resolv", "--no-hosts", "--no-poll",
             "--bind-interfaces",
             f"--listen-address={self.host}",
             f"--port={port}",
             "--local=/test/",           # never forwarded: NXDOMAIN
             f"--local-ttl={self.ttl}"]
        if self.log_queries:
            a.append("--log-queries")
        return a + self.extra_args

    def log(self):
        return _read(self.log_path) if self.dir else ""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="aimx-dnsmasq-")
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        self.conf_path = os.path.join(self.dir, "dnsmasq.conf")
        try:
            with open(self.conf_path, "w") as f:
                f.writelines(line + "\n"
                             for line in dnsmasq_config(self.records,
                                                        self.ttl))
            if os.geteuid() == 0:           # readable by nobody
                os.chmod(self.dir, 0o755)
                os.chmod(self.conf_path, 0o644)
            for attempt in range(5):
                if self._start(free_port(self.host)):
                    return self
            raise RuntimeError("dnsmasq: no free port after 5 tries:\n"
                               + self.log())
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _start(self, port):
        """True once dnsmasq answers; False if the port was taken."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv(port),
                                         stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         close_fds=True, **_unprivileged())
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                text = self.log()
                if "in use" in text:
                    self.proc = None
                    return False
                raise RuntimeError(
                    f"dnsmasq exited with {self.proc.returncode}:\n{text}")
            try:
                query(self.host, port, self.PROBE, "A", timeout=0.2)
                self.port = port
                return True
            except (OSError, MalformedReply):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("dnsmasq did not answer in 10 s:\n"
                                   + self.log())
            time.sleep(0.02)

    def __exit__(self, *exc):
        try:
            _stop(self.proc)
            if self.proc is not None:
                self.returncode = self.proc.returncode
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
        return False


# -- packages ------------------------------------------------------------

def _installed(name):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name],
                       capture_output=True, text=True)
    return p.returncode == 0 and p.stdout.strip().endswith(" installed")


def ensure_debian_packages(*names):
    """Install the named Debian packages unless they already are."""
    missing = [n for n in names if not _installed(n)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError("missing Debian packages: " + " ".join(missing)
                           + " (run: apt-get install " + " ".join(missing)
                           + ")")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + missing
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    still = [n for n in missing if not _installed(n)]
    if p.returncode != 0 or still:
        raise RuntimeError("apt-get could not install "
                           + " ".join(still or missing) + ":\n"
                           + p.stdout[-2000:] + p.stderr[-2000:])


# -- SMTP servers --------------------------------------------------------

SMTP_PEER_SCRIPT = os.path.normpath(os.path.join(HERE, "..", "peers",
                                                 "smtp_fault_peer.py"))
SINK_SCRIPT = os.path.normpath(os.path.join(HERE, "..", "peers",
                                            "aiosmtpd_sink.py"))


def unstuff(data):
    """data with one leading '.' removed from every CRLF-delimited line
    that starts with one (SMTP dot-stuffing undone)."""
    return b"\r\n".join(line[1:] if line.startswith(b".") else line
                         for line in data.split(b"\r\n"))


def dot_stuff(message):
    """message with every CRLF-delimited line starting with '.' given a
    second '.' (what a client sends between DATA and CRLF.CRLF)."""
    return b"\r\n".join(b"." + line if line.startswith(b".") else line
                         for line in message.split(b"\r\n"))


def _load_json(path):
    """The JSON in path (written by tmp + rename); None if absent."""
    for _ in range(50):
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:
            time.sleep(0.02)        # cannot happen with rename; be safe
    raise RuntimeError(f"unreadable JSON file {path}")


class _RecordingServer:
    """A server process of ours: started on enter, stopped by PID on exit,
    with a port file, a log and a record directory in a temporary
    directory."""

    NAME = "server"
    PREFIX = "aimx-server-"

    def __init__(self, listen):
        if isinstance(listen, str):
            listen = (listen,)
        self.listen = tuple(listen)
        self.host = self.listen[0]
        self.dir = None
        self.proc = None
        self.port = None
        self.returncode = None      # the exit status, once stopped
        self.record_dir = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def server(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"

    def log(self):
        return _read(self.log_path) if self.dir else ""

    def argv(self):
        raise NotImplementedError

    def prepare(self):
        """Write input files to self.dir before the process starts."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix=self.PREFIX)
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "server.log")
        self.record_dir = os.path.join(self.dir, "record")
        try:
            os.mkdir(self.record_dir)
            self.prepare()
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self):
        argv = self.argv() + ["--port", "0", "--port-file", self.port_file,
                              "--record", self.record_dir]
        for a in self.listen:
            argv += ["--listen", a]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         close_fds=True)
        deadline = time.monotonic() + 10
        while True:
            if os.path.exists(self.port_file):
                self.port = int(_read(self.port_file).strip())
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.NAME} exited with {self.proc.returncode}:\n"
                    + self.log())
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.NAME} did not start in 10 s:\n"
                                   + self.log())
            time.sleep(0.02)

    def _check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.NAME} died (exit status {self.proc.returncode}):\n"
                + self.log())

    def _records(self, prefix):
        """The JSON records record_dir/<prefix><n>.json, sorted by n."""
        out = []
        if not self.record_dir:
            return out
        for name in os.listdir(self.record_dir):
            if not (name.startswith(prefix) and name.endswith(".json")):
                continue
            num = name[len(prefix):-len(".json")]
            if not num.isdigit():
                continue
            rec = _load_json(os.path.join(self.record_dir, name))
            if rec is not None:
                out.append(rec)
        out.sort(key=lambda r: r["n"])
        return out

    def stats(self):
        s = _load_json(os.path.join(self.record_dir, "stats.json"))
        if s is None:
            raise RuntimeError(f"{self.NAME}: no stats file:\n" + self.log())
        return s

    def __exit__(self, *exc):
        try:
            _stop(self.proc)
            if self.proc is not None:
                self.returncode = self.proc.returncode
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
        return False


class SmtpFaultPeer(_RecordingServer):
    """The suite's SMTP fault peer, started and stopped by the test."""

    NAME = "smtp_fault_peer"
    PREFIX = "aimx-smtppeer-"

    def __init__(self, script, listen=("127.0.0.1",)):
        super().__init__(listen)
        self.script = script

    def prepare(self):
        self.script_path = os.path.join(self.dir, "script.json")
        with open(self.script_path, "w") as f:
            json.dump(self.script, f)

    def argv(self):
        return [PYTHON3, SMTP_PEER_SCRIPT, "--script", self.script_path]

    def sessions(self):
        """Every session record so far, sorted by n."""
        return self._records("session-")

    def session(self, n):
        rec = _load_json(os.path.join(self.record_dir, f"session-{n}.json"))
        if rec is None:
            raise KeyError(f"no session {n}")
        return rec

    def wait_sessions(self, n, timeout=5.0, ended=True):
        """Wait (bounded) until n sessions have ended (or, ended=False,
        started); sessions() then."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.sessions()
            count = len([s for s in got if s["end"] is not None]
                        if ended else got)
            if count >= n:
                return got
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{count} sessions {'ended' if ended else 'started'} "
                    f"after {timeout} s, wanted {n}: {got}")
            time.sleep(0.02)

    def _txn(self, session_n, txn):
        rec = self.session(session_n)
        t = rec["transactions"][txn]
        if t["data_file"] is None:
            raise ValueError(f"session {session_n} transaction {txn} has "
                             "no data")
        return t

    def raw_data(self, session_n, txn=0):
        """The octets received after 354 up to, excluding, CRLF.CRLF."""
        with open(self._txn(session_n, txn)["data_file"], "rb") as f:
            return f.read()

    def message_bytes(self, session_n, txn_index=0):
        """The message as the client meant it (see the module docstring)."""
        t = self._txn(session_n, txn_index)
        raw = self.raw_data(session_n, txn_index)
        if not t["complete"]:
            return unstuff(raw)
        return unstuff(raw) + b"\r\n" if raw else b""


class AiosmtpdSink(_RecordingServer):
    """Debian's aiosmtpd on loopback, recording every message."""

    NAME = "aiosmtpd_sink"
    PREFIX = "aimx-aiosmtpd-"

    def __init__(self, listen="127.0.0.1", data_size_limit=None,
                 tls_cert=None, tls_key=None, hostname="sink.test",
                 smtputf8=False):
        super().__init__(listen)
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key go together")
        self.data_size_limit = data_size_limit
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.hostname = hostname
        self.smtputf8 = smtputf8

    def prepare(self):
        ensure_debian_packages("python3-aiosmtpd")

    def argv(self):
        a = [PYTHON3, SINK_SCRIPT, "--hostname", self.hostname,
             "--data-size-limit",
             "none" if self.data_size_limit is None
             else str(int(self.data_size_limit))]
        if self.smtputf8:
            a.append("--smtputf8")
        if self.tls_cert:
            a += ["--tls-cert", os.path.abspath(self.tls_cert),
                  "--tls-key", os.path.abspath(self.tls_key)]
        return a

    def messages(self):
        """[(meta, bytes), ...] for every recorded message, in order."""
        out = []
        for meta in self._records("msg-"):
            with open(meta["eml"], "rb") as f:
                out.append((meta, f.read()))
        return out

    def wait_messages(self, n, timeout=5.0):
        """Wait (bounded) until n messages are recorded; messages()."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages()
            if len(got) >= n:
                return got
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(got)} messages after {timeout} s, wanted {n}:\n"
                    + self.log()[-3000:])
            time.sleep(0.02)


# -- test certificates ---------------------------------------------------

def make_test_certs(directory, mx_name="mx.tls.test"):
    """A small PKI for STARTTLS tests, written to directory (PEM files):

      ca.pem                 the test CA (what a test passes as ca_file)
      good.pem/.key          mx_name, signed by the test CA, valid now
      wrongname.pem/.key     "wrong-" + mx_name, signed by the test CA
      expired.pem/.key       mx_name, signed by the test CA, expired
                             yesterday (not_valid_after in the past:
                             `openssl req -days -1` refuses to make one)
      untrusted.pem/.key     mx_name, signed by another CA (not in ca.pem)
      ipaddr.pem/.key        only the loopback addresses (SAN IP 127.0.0.1,
                             ::1), signed by the test CA: a client that
                             checks the dialled address instead of the
                             MX name would accept it

    Returns {name: path} for those, e.g. d["good.pem"].  Needs Debian's
    python3-cryptography (this one function is not stdlib only; it is
    imported on call).  Keys are EC P-256: fast to make, fine at every
    security level and TLS 1.0 to 1.3."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc).replace(
        microsecond=0)
    day = datetime.timedelta(days=1)
    os.makedirs(directory, exist_ok=True)
    out = {}

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(fname, data):
        path = os.path.join(directory, fname)
        with open(path, "wb") as f:
            f.write(data)
        out[fname] = path

    def key_pem(key):
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def make_ca(cn):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - day).not_valid_after(now + 30 * day)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                               critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=False, content_commitment=False,
                    key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                    key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    def make_leaf(fname, cn, ca_key, ca_cert, before, after, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(name(cn)).issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(before).not_valid_after(after)
                .add_extension(x509.SubjectAlternativeName(
                    san or [x509.DNSName(cn)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False,
                                                     path_length=None),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier
                               .from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        write(fname + ".pem", cert.public_bytes(serialization.Encoding.PEM))
        write(fname + ".key", key_pem(key))

    ca_key, ca_cert = make_ca("aimx test CA")
    write("ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
    rogue_key, rogue_cert = make_ca("aimx untrusted test CA")
    make_leaf("good", mx_name, ca_key, ca_cert, now - day, now + 30 * day)
    make_leaf("wrongname", "wrong-" + mx_name, ca_key, ca_cert, now - day,
              now + 30 * day)
    make_leaf("expired", mx_name, ca_key, ca_cert, now - 30 * day, now - day)
    make_leaf("untrusted", mx_name, rogue_key, rogue_cert, now - day,
              now + 30 * day)
    make_leaf("ipaddr", "127.0.0.1", ca_key, ca_cert, now - day,
              now + 30 * day,
              san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                   x509.IPAddress(ipaddress.ip_address("::1"))])
    return out
