#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""dns_fault_peer: a DNS server for aimx's integration tests that does what
dnsmasq cannot: SERVFAIL, REFUSED, silence, slow answers, truncated UDP
answers that force TCP, malformed replies, null MX, unchased CNAMEs.

Standalone, stdlib only, Debian's /usr/bin/python3.  Loopback only: every
--listen address must be in 127.0.0.0/8 or ::1.

Usage
-----
  /usr/bin/python3 dns_fault_peer.py --zone ZONE.json --port-file FILE
        [--listen 127.0.0.1] [--listen ::1] [--port 0] [--stats FILE]

  --listen   repeatable; default 127.0.0.1.  Each address gets a UDP and a
             TCP socket on the same port.
  --port     0 (default) picks a port free for UDP and TCP on every
             address (retrying until every bind succeeds).
  --port-file  written (tmp + rename) with the port number once listening.
  --stats    see Stats below.
Runs until SIGTERM or SIGINT, then exits 0; also when the process that
started it goes away (checked twice a second), so a test runner killed
outright leaves no peer behind.  A zone error exits 2 with a message on
stderr before the port file is written.

Zone file (JSON)
----------------
  {"records": [
     {"name": "example.test.", "type": "MX", "ttl": 60,
      "data": "10 mx1.example.test."},
     ...],
   "behaviours": [
     {"name": "slow.test.", "type": "*", "action": "delay", "ms": 300},
     ...]}

Record types and their "data":
  A       "127.0.0.2"            AAAA   "::1"
  MX      "PREF EXCHANGE"; EXCHANGE "." is the null MX (RFC 7505)
  TXT     a string, or a list of strings = the character-strings of ONE
          record; a string longer than 255 octets (UTF-8) is split into
          255-octet pieces
  PTR, CNAME, NS   a domain name
  SOA     "MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM"
"ttl" defaults to 60.  Names are absolute (a missing final dot is added)
and case-insensitive; answers echo the question's spelling.  Addresses in
A/AAAA records must be loopback (127.0.0.0/8, ::1): the zone is refused
otherwise.

Answering a query (first question only; QR/opcode checked; FORMERR for a
query that cannot be parsed but has a header):
  1. the first behaviour that matches (see below) decides;
  2. else records of the name and qtype (ANY: all of the name's records);
  3. else, if the name has a CNAME and qtype is not CNAME: the CNAME,
     chased inside the zone for up to 8 steps, each step appending the
     target's records of qtype (or its CNAME, to go on).  A chain that ends
     on a name that does not exist at all in the zone answers NXDOMAIN with
     the chain (RFC 6604); one ending on an existing name without records
     of qtype answers NOERROR with the chain;
  4. else, if the name owns other records or is an ancestor of a name that
     does ("empty non-terminal"): NOERROR, no answers (NODATA);
  5. else NXDOMAIN.
NODATA and NXDOMAIN carry the closest enclosing SOA of the zone (owner is
the name or an ancestor) in the authority section, if there is one.
Answers are authoritative (AA), RD is copied, RA is set; error rcodes from
behaviours (servfail, refused, formerr, notimp) carry no AA.

Behaviours
----------
  {"name": "x.test.", "type": "MX" | "*", "action": ACTION,
   ["proto": "udp" | "tcp"], ["ms": N], ["then": ACTION], ["times": N]}
A behaviour matches a query whose name is "name" (case-insensitive) and
whose type is "type" ("*": any type), over "proto" if given (else both).
"times": N (extension) makes it match only the first N matching queries;
after that the query is answered as if the behaviour were absent (e.g. one
SERVFAIL then the real answer, to test retries).  First match wins.

Actions:
  servfail, refused, nxdomain, formerr, notimp
            that rcode, the question echoed, no records
  drop      never answer
  delay     answer normally after "ms" milliseconds, without holding up any
            other query (delayed queries overlap); with "then": ACTION,
            apply ACTION (any action but delay) after the delay instead
  truncate  over UDP: TC set, no records; over TCP: the full answer
  nochase   a CNAME answered without chasing it (the plain answer when the
            name has no CNAME)
  garbage   a short malformed message that starts with the query's ID
Independently of behaviours, a UDP answer larger than the client's limit
(512 octets, or its EDNS0 payload size up to 4096) is sent truncated (TC,
no records), as a real server does.

EDNS0: a query with an OPT record gets an OPT record back (payload 1232);
an EDNS version other than 0 gets BADVERS.  EDNS0 is never required.

TCP: two-octet length-prefixed messages, several per connection, answered
as they complete (possibly out of order, each whole), connection closed by
the peer on EOF after the pending answers are sent.

Stats
-----
With --stats FILE, FILE is rewritten atomically (tmp + rename) when the
peer starts listening (before the port file), when a query is received,
when it completes, and at exit:
  {"queries": N, "outstanding": O, "max_outstanding": M,
   "log": [{"name": "x.test.", "type": "MX", "proto": "udp",
            "start": S, "end": E, "action": "answer"}, ...]}
queries counts every query received (the unparseable ones logged with
name and type null).  Outstanding (O: now) = received but not yet
answered: delayed queries count while they wait; dropped ones never do
("end": null; also the "end" of queries still waiting at exit).
max_outstanding is the highest outstanding count seen: tests prove
concurrency with it, not with timing.  start and end are the peer's
time.monotonic(); "action" is the behaviour's action (with "then":
"delay+ACTION") or "answer".
"""

import argparse
import asyncio
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15,
         "TXT": 16, "AAAA": 28, "SRV": 33, "OPT": 41, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RECORD_TYPES = ("A", "AAAA", "MX", "TXT", "PTR", "CNAME", "NS", "SOA")
RCODES = {"formerr": 1, "servfail": 2, "nxdomain": 3, "notimp": 4,
          "refused": 5}
ACTIONS = set(RCODES) | {"drop", "delay", "truncate", "nochase", "garbage"}
EDNS_PAYLOAD = 1232
MAX_CHASE = 8


class ZoneError(Exception):
    pass


class FormErr(Exception):
    pass


def type_name(code):
    return TYPE_NAMES.get(code, f"TYPE{code}")


def canon(name):
    name = name.strip()
    if not name.endswith("."):
        name += "."
    return "." if name == "." else name.lower()


def encode_name(name):
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            b = label.encode("ascii")
            if not 0 < len(b) < 64:
                raise ZoneError(f"bad label in {name!r}")
            out += bytes([len(b)]) + b
    return out + b"\0"


# -- zone ----------------------------------------------------------------

def rdata(rtype, data, where):
    try:
        if rtype == "A":
            ip = ipaddress.IPv4Address(data)
            if not ip.is_loopback:
                raise ZoneError(f"{where}: {data} is not in 127.0.0.0/8")
            return ip.packed
        if rtype == "AAAA":
            ip = ipaddress.IPv6Address(data)
            if not ip.is_loopback:
                raise ZoneError(f"{where}: {data} is not ::1")
            return ip.packed
        if rtype in ("CNAME", "PTR", "NS"):
            return encode_name(canon(data))
        if rtype == "MX":
            pref, exchange = data.split()
            return struct.pack("!H", int(pref)) + encode_name(canon(exchange))
        if rtype == "TXT":
            strings = [data] if isinstance(data, str) else list(data)
            out = b""
            for s in strings:
                b = s.encode("utf-8")
                pieces = [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
                for p in pieces:
                    out += bytes([len(p)]) + p
            return out
        if rtype == "SOA":
            f = data.split()
            if len(f) != 7:
                raise ZoneError(f"{where}: SOA needs 7 fields")
            return (encode_name(canon(f[0])) + encode_name(canon(f[1]))
                    + struct.pack("!IIIII", *(int(x) for x in f[2:])))
    except (ValueError, TypeError, AttributeError) as e:
        raise ZoneError(f"{where}: bad {rtype} data {data!r}: {e}") from None
    raise ZoneError(f"{where}: unsupported type {rtype}")


class Zone:
    def __init__(self, obj):
        if not isinstance(obj, dict):
            raise ZoneError("the zone must be a JSON object")
        unknown = set(obj) - {"records", "behaviours"}
        if unknown:
            raise ZoneError(f"unknown zone keys: {sorted(unknown)}")
        # name -> type code -> [(ttl, rdata)]
        self.rrsets = {}
        self.names = set()      # every name that exists (incl. ENTs)
        for i, r in enumerate(obj.get("records", [])):
            where = f"records[{i}]"
            try:
                name, rtype = canon(r["name"]), r["type"].upper()
                data = r["data"]
            except (KeyError, AttributeError, TypeError):
                raise ZoneError(f"{where}: needs name, type and data") \
                    from None
            if rtype not in RECORD_TYPES:
                raise ZoneError(f"{where}: unsupported type {rtype}")
            ttl = int(r.get("ttl", 60))
            self.rrsets.setdefault(name, {}).setdefault(
                TYPES[rtype], []).append((ttl, rdata(rtype, data, where)))
            labels = name.rstrip(".").split(".")
            for k in range(len(labels)):
                self.names.add(".".join(labels[k:]) + ".")
        for name, sets in self.rrsets.items():
            if 5 in sets and len(sets) > 1:
                raise ZoneError(f"{name}: a CNAME cannot have other records")
        self.behaviours = []
        for i, b in enumerate(obj.get("behaviours", [])):
            where = f"behaviours[{i}]"
            if not isinstance(b, dict) or "name" not in b or "action" not in b:
                raise ZoneError(f"{where}: needs name and action")
            b = dict(b)
            b["name"] = canon(b["name"])
            b["type"] = str(b.get("type", "*")).upper()
            if b["type"] != "*" and b["type"] not in TYPES:
                raise ZoneError(f"{where}: unknown type {b['type']}")
            if b["action"] not in ACTIONS:
                raise ZoneError(f"{where}: unknown action {b['action']!r}")
            if b["action"] == "delay":
                if not isinstance(b.get("ms"), (int, float)) or b["ms"] < 0:
                    raise ZoneError(f"{where}: delay needs \"ms\": N >= 0")
                then = b.get("then")
                if then is not None and (then not in ACTIONS
                                         or then == "delay"):
                    raise ZoneError(f"{where}: bad \"then\": {then!r}")
            if b.get("proto") not in (None, "udp", "tcp"):
                raise ZoneError(f"{where}: proto must be udp or tcp")
            if "times" in b:
                b["left"] = int(b["times"])
            self.behaviours.append(b)

    def behaviour(self, qname, qtype, proto):
        name = canon(qname)
        for b in self.behaviours:
            if b["name"] != name:
                continue
            if b["type"] != "*" and TYPES[b["type"]] != qtype:
                continue
            if b.get("proto") not in (None, proto):
                continue
            if "left" in b:
                if b["left"] <= 0:
                    continue
                b["left"] -= 1
            return b
        return None

    def soa_for(self, qname):
        labels = canon(qname).rstrip(".").split(".")
        for k in range(len(labels) + 1):
            owner = ".".join(labels[k:]) + "."
            sets = self.rrsets.get(owner)
            if sets and 6 in sets:
                ttl, rd = sets[6][0]
                minimum = struct.unpack("!I", rd[-4:])[0]
                return (owner, 6, min(ttl, minimum), rd)
        return None

    def resolve(self, qname, qtype, chase=True):
        """(rcode, answers, authority); records are (owner, type, ttl, rd)."""
        name = canon(qname)
        owner = qname                       # echo the question's spelling
        answers = []
        for step in range(MAX_CHASE + 1):
            sets = self.rrsets.get(name, {})
            if qtype == 255 and sets:
                for t, rrs in sets.items():
                    answers += [(owner, t, ttl, rd) for ttl, rd in rrs]
                return 0, answers, []
            if qtype in sets:
                answers += [(owner, qtype, ttl, rd) for ttl, rd in sets[qtype]]
                return 0, answers, []
            if 5 in sets and qtype != 5:
                ttl, rd = sets[5][0]
                answers.append((owner, 5, ttl, rd))
                if not chase or step == MAX_CHASE:
                    return 0, answers, []
                name = owner = self._decode_target(rd)
                continue
            rcode = 0 if name in self.names else 3
            soa = self.soa_for(name)
            return rcode, answers, [soa] if soa else []
        return 0, answers, []

    @staticmethod
    def _decode_target(rd):
        labels, i = [], 0
        while rd[i]:
            labels.append(rd[i + 1:i + 1 + rd[i]].decode("ascii"))
            i += 1 + rd[i]
        return ".".join(labels) + "."


# -- messages ------------------------------------------------------------

def decode_name(msg, off):
    labels, end, jumps = [], None, 0
    while True:
        if off >= len(msg):
            raise FormErr("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise FormErr("truncated pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 64:
                raise FormErr("compression loop")
            continue
        if n & 0xC0:
            raise FormErr("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise FormErr("label runs past the end")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels) + ".", (end if end is not None else off)


class Query:
    """The parts of a query the peer needs."""

    def __init__(self, data):
        if len(data) < 12:
            raise ValueError("no header")
        (self.id, self.flags, qd, an, ns, ar) = struct.unpack(
            "!HHHHHH", data[:12])
        self.question = b""
        self.qname = None
        self.qtype = None
        self.edns = None            # client's UDP payload size
        self.edns_version = 0
        if self.flags & 0x8000:
            raise ValueError("a response")
        if qd < 1:
            raise FormErr("no question")
        self.qname, off = decode_name(data, 12)
        if off + 4 > len(data):
            raise FormErr("question runs past the end")
        self.qtype = struct.unpack("!H", data[off:off + 2])[0]
        off += 4
        self.question = data[12:off]        # echoed as the client sent it
        for _ in range(qd - 1):
            _, off = decode_name(data, off)
            off += 4
        for i in range(an + ns + ar):
            _, off = decode_name(data, off)
            if off + 10 > len(data):
                raise FormErr("record runs past the end")
            rtype, rclass, ttl, rdlen = struct.unpack("!HHIH",
                                                      data[off:off + 10])
            off += 10 + rdlen
            if off > len(data):
                raise FormErr("RDATA runs past the end")
            if rtype == 41 and i >= an + ns:
                self.edns = max(512, rclass)
                self.edns_version = (ttl >> 16) & 0xFF

    @property
    def opcode(self):
        return (self.flags >> 11) & 0xF

    def udp_limit(self):
        return min(self.edns, 4096) if self.edns else 512


def build(q, rcode, answers=(), authority=(), aa=True, tc=False):
    flags = 0x8000 | (q.flags & 0x7900) | 0x0080   # QR, opcode, RD, RA
    if aa:
        flags |= 0x0400
    if tc:
        flags |= 0x0200
    ext = 0
    if q.edns is not None and rcode > 15:
        ext, rcode = rcode >> 4, rcode & 0xF
    flags |= rcode
    qd = 1 if q.question else 0
    ar = 1 if q.edns is not None else 0
    msg = struct.pack("!HHHHHH", q.id, flags, qd, len(answers),
                      len(authority), ar) + q.question
    for owner, rtype, ttl, rd in list(answers) + list(authority):
        msg += (encode_name(owner) + struct.pack("!HHIH", rtype, 1, ttl,
                                                 len(rd)) + rd)
    if q.edns is not None:
        msg += b"\0" + struct.pack("!HHIH", 41, EDNS_PAYLOAD, ext << 24, 0)
    return msg


def garbage(qid):
    # A header claiming one question and one answer, then three stray bytes.
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + b"\x07ab"


# -- server --------------------------------------------------------------

class Peer:
    def __init__(self, zone, stats_path):
        self.zone = zone
        self.stats_path = stats_path
        self.queries = 0
        self.outstanding = 0
        self.max_outstanding = 0
        self.log = []

    def write_stats(self):
        if not self.stats_path:
            return
        tmp = self.stats_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"queries": self.queries,
                       "outstanding": self.outstanding,
                       "max_outstanding": self.max_outstanding,
                       "log": self.log}, f)
        os.replace(tmp, self.stats_path)

    async def handle(self, data, proto):
        """The reply to data (bytes) or None for no reply."""
        start = time.monotonic()
        entry = {"name": None, "type": None, "proto": proto,
                 "start": start, "end": None, "action": "answer"}
        try:
            q = Query(data)
        except FormErr:
            q = None
        except ValueError:
            return None                 # no header, or a response: ignore
        self.queries += 1
        self.log.append(entry)
        if q is None:
            # A header but no usable question: FORMERR, header only.
            qid, fl = struct.unpack("!HH", data[:4])
            entry["action"] = "formerr"
            entry["end"] = time.monotonic()
            self.write_stats()
            return struct.pack("!HHHHHH", qid, 0x8081 | (fl & 0x7900),
                               0, 0, 0, 0)
        entry["name"] = q.qname
        entry["type"] = type_name(q.qtype)
        b = (self.zone.behaviour(q.qname, q.qtype, proto)
             if q.opcode == 0 else None)
        action = b["action"] if b else None
        if action == "delay" and b.get("then"):
            entry["action"] = "delay+" + b["then"]
        elif action:
            entry["action"] = action
        if action == "drop" or (action == "delay" and b.get("then") == "drop"):
            self.write_stats()
            return None
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        self.write_stats()
        try:
            if action == "delay":
                await asyncio.sleep(b["ms"] / 1000.0)
                action = b.get("then")
            try:
                reply = self.answer(q, action, proto)
            except Exception:               # a peer bug: say so, SERVFAIL
                traceback.print_exc()
                reply = build(q, 2, aa=False)
        except asyncio.CancelledError:
            self.outstanding -= 1           # shutting down: never answered
            raise
        self.outstanding -= 1
        entry["end"] = time.monotonic()
        self.write_stats()
        return reply

    def answer(self, q, action, proto):
        if q.opcode != 0:
            return build(q, 4, aa=False)
        if q.edns is not None and q.edns_version != 0:
            return build(q, 16, aa=False)           # BADVERS
        if action in ("servfail", "refused", "formerr", "notimp"):
            return build(q, RCODES[action], aa=False)
        if action == "nxdomain":
            soa = self.zone.soa_for(q.qname)
            return build(q, 3, authority=[soa] if soa else [])
        if action == "garbage":
            return garbage(q.id)
        if action == "truncate" and proto == "udp":
            return build(q, 0, tc=True)
        rcode, answers, authority = self.zone.resolve(
            q.qname, q.qtype, chase=(action != "nochase"))
        reply = build(q, rcode, answers, authority)
        if proto == "udp" and len(reply) > q.udp_limit():
            reply = build(q, rcode, tc=True)
        return reply


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, peer):
        self.peer = peer
        self.transport = None
        self.tasks = set()

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        t = asyncio.ensure_future(self.reply(data, addr))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def reply(self, data, addr):
        out = await self.peer.handle(data, "udp")
        if out is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)

    def error_received(self, exc):
        pass


async def tcp_client(peer, reader, writer):
    pending = set()

    async def one(data):
        out = await peer.handle(data, "tcp")
        if out is not None and not writer.is_closing():
            writer.write(struct.pack("!H", len(out)) + out)

    try:
        while True:
            try:
                n = struct.unpack("!H", await reader.readexactly(2))[0]
                data = await reader.readexactly(n)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            t = asyncio.ensure_future(one(data))
            pending.add(t)
            t.add_done_callback(pending.discard)
        # EOF: send what is still pending (not dropped ones: never done).
        if pending:
            await asyncio.wait(pending)
        await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        for t in pending:
            t.cancel()
        writer.close()


def bind_all(addrs, port):
    """UDP + TCP sockets on every address, all on one port."""
    for attempt in range(200):
        socks = []
        try:
            p = port
            for addr in addrs:
                fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
                t = socket.socket(fam, socket.SOCK_STREAM)
                socks.append(t)
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6:
                    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                t.bind((addr, p))
                p = t.getsockname()[1]
                u = socket.socket(fam, socket.SOCK_DGRAM)
                socks.append(u)
                if fam == socket.AF_INET6:
                    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                u.bind((addr, p))
            for s in socks:
                s.setblocking(False)
                if s.type == socket.SOCK_STREAM:
                    s.listen(64)
            return p, socks
        except OSError:
            for s in socks:
                s.close()
            if port != 0:
                raise
    raise OSError("no port free for UDP and TCP on every address")


async def serve(args, zone):
    peer = Peer(zone, args.stats)
    port, socks = bind_all(args.listen, args.port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers, transports = [], []
    for s in socks:
        if s.type == socket.SOCK_STREAM:
            servers.append(await asyncio.start_server(
                lambda r, w: tcp_client(peer, r, w), sock=s))
        else:
            tr, _ = await loop.create_datagram_endpoint(
                lambda: UdpProtocol(peer), sock=s)
            transports.append(tr)
    peer.write_stats()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    watch = asyncio.ensure_future(
        peerlib.watch_parent("dns_fault_peer", os.getppid(), stop))
    await stop.wait()
    watch.cancel()
    for tr in transports:
        tr.close()
    for srv in servers:
        srv.close()
    peer.write_stats()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zone", required=True)
    ap.add_argument("--listen", action="append")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--stats")
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
        with open(args.zone) as f:
            zone = Zone(json.load(f))
    except (OSError, ValueError, ZoneError) as e:
        print(f"dns_fault_peer: {args.zone}: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args, zone))
    except OSError as e:
        print(f"dns_fault_peer: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
