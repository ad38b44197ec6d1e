#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The integration tests' DNS servers, tested: the suite's fault peer
(tests/peers/dns_fault_peer.py) and dnsmasq, both through tests/lib's
aimxtest helpers, over UDP and TCP on loopback."""

import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import aimxtest  # noqa: E402
from aimxtest import (DnsFaultPeer, Dnsmasq, MalformedReply, query,  # noqa
                      query_reply, txt_strings, NOERROR, FORMERR, SERVFAIL,
                      NXDOMAIN, NOTIMP, REFUSED)

LONG_TXT = "v=spf1 " + "a" * 593          # 600 octets: 255 + 255 + 90

ZONE = {
    "records": [
        {"name": "test.", "type": "SOA",
         "data": "ns.test. hostmaster.test. 1 3600 600 86400 30"},
        {"name": "test.", "type": "NS", "data": "ns.test."},
        {"name": "ns.test.", "type": "A", "data": "127.0.0.53"},
        {"name": "mail.test.", "type": "MX", "ttl": 300,
         "data": "10 mx1.mail.test."},
        {"name": "mail.test.", "type": "MX", "data": "20 mx2.mail.test."},
        {"name": "mail.test.", "type": "TXT", "data": ["v=spf1", "-all"]},
        {"name": "mx1.mail.test.", "type": "A", "data": "127.0.0.2"},
        {"name": "mx1.mail.test.", "type": "A", "data": "127.0.0.3"},
        {"name": "mx1.mail.test.", "type": "AAAA", "data": "::1"},
        {"name": "long.test.", "type": "TXT", "data": LONG_TXT},
        {"name": "2.0.0.127.in-addr.arpa.", "type": "PTR",
         "data": "mx1.mail.test."},
        {"name": "nullmx.test.", "type": "MX", "data": "0 ."},
        {"name": "alias.test.", "type": "CNAME", "data": "alias2.test."},
        {"name": "alias2.test.", "type": "CNAME", "data": "mail.test."},
        {"name": "nochase.test.", "type": "CNAME", "data": "mail.test."},
        {"name": "dangling.test.", "type": "CNAME", "data": "gone.test."},
        {"name": "deep.ent.test.", "type": "A", "data": "127.0.0.4"},
        {"name": "slow.test.", "type": "A", "data": "127.0.0.5"},
        {"name": "tc.test.", "type": "A", "data": "127.0.0.6"},
        {"name": "udpfail.test.", "type": "A", "data": "127.0.0.7"},
        {"name": "flaky.test.", "type": "A", "data": "127.0.0.8"},
        {"name": "bigtxt.test.", "type": "TXT",
         "data": ["x" * 200, "y" * 200, "z" * 200]},
    ],
    "behaviours": [
        {"name": "servfail.test.", "type": "*", "action": "servfail"},
        {"name": "refused.test.", "type": "*", "action": "refused"},
        {"name": "nxdomain.test.", "type": "*", "action": "nxdomain"},
        {"name": "formerr.test.", "type": "*", "action": "formerr"},
        {"name": "notimp.test.", "type": "*", "action": "notimp"},
        {"name": "drop.test.", "type": "*", "action": "drop"},
        {"name": "garbage.test.", "type": "*", "action": "garbage"},
        {"name": "tc.test.", "type": "A", "action": "truncate"},
        {"name": "nochase.test.", "type": "*", "action": "nochase"},
        {"name": "slow.test.", "type": "A", "action": "delay", "ms": 300},
        {"name": "slowfail.test.", "type": "*", "action": "delay", "ms": 100,
         "then": "servfail"},
        {"name": "udpfail.test.", "type": "A", "action": "servfail",
         "proto": "udp"},
        {"name": "flaky.test.", "type": "A", "action": "servfail",
         "times": 1},
        {"name": "mail.test.", "type": "AAAA", "action": "refused"},
    ],
}

BOTH = (False, True)        # tcp=


def proto(tcp):
    return "tcp" if tcp else "udp"


class FaultPeer(unittest.TestCase):
    """One peer for the whole class, on 127.0.0.1 and ::1."""

    @classmethod
    def setUpClass(cls):
        # enterClassContext stops the peer even if a later step fails.
        cls.peer = cls.enterClassContext(
            DnsFaultPeer(ZONE, listen=("127.0.0.1", "::1")))
        cls.port = cls.peer.port

    def q(self, name, qtype, tcp=False, host="127.0.0.1", **kw):
        return query(host, self.port, name, qtype, tcp=tcp, **kw)

    def answers(self, name, qtype, tcp=False):
        rcode, flags, ans = self.q(name, qtype, tcp)
        self.assertEqual(rcode, NOERROR, (name, qtype, proto(tcp)))
        return ans

    def test_server_string(self):
        self.assertEqual(self.peer.server, f"127.0.0.1:{self.port}")

    def test_record_types(self):
        for tcp in BOTH:
            with self.subTest(proto=proto(tcp)):
                rcode, flags, ans = self.q("mail.test", "MX", tcp)
                self.assertEqual(rcode, NOERROR)
                self.assertEqual(flags, {"qr", "aa", "rd", "ra"})
                self.assertEqual(ans, [("MX", "10 mx1.mail.test."),
                                       ("MX", "20 mx2.mail.test.")])
                self.assertEqual(self.answers("mx1.mail.test", "A", tcp),
                                 [("A", "127.0.0.2"), ("A", "127.0.0.3")])
                self.assertEqual(self.answers("mx1.mail.test", "AAAA", tcp),
                                 [("AAAA", "::1")])
                self.assertEqual(self.answers("mail.test", "TXT", tcp),
                                 [("TXT", '"v=spf1" "-all"')])
                self.assertEqual(
                    self.answers("2.0.0.127.in-addr.arpa", "PTR", tcp),
                    [("PTR", "mx1.mail.test.")])
                self.assertEqual(self.answers("test", "NS", tcp),
                                 [("NS", "ns.test.")])
                self.assertEqual(
                    self.answers("test", "SOA", tcp),
                    [("SOA", "ns.test. hostmaster.test. 1 3600 600 86400 30")])

    def test_ttl_and_case(self):
        r = query_reply("127.0.0.1", self.port, "MAIL.Test.", "MX")
        self.assertEqual([(rr.name, rr.ttl) for rr in r.answers],
                         [("MAIL.Test.", 300), ("MAIL.Test.", 60)])

    def test_any(self):
        types = sorted(t for t, _ in self.answers("mx1.mail.test", "ANY"))
        self.assertEqual(types, ["A", "A", "AAAA"])

    def test_nodata_nxdomain(self):
        soa = "ns.test. hostmaster.test. 1 3600 600 86400 30"
        for tcp in BOTH:
            with self.subTest(proto=proto(tcp)):
                # A name with other types, and an empty non-terminal.
                for name in ("mx1.mail.test", "ent.test"):
                    r = query_reply("127.0.0.1", self.port, name, "MX",
                                    tcp=tcp)
                    self.assertEqual((r.rcode, r.answers), (NOERROR, []),
                                     name)
                    self.assertIn("aa", r.flags)
                    self.assertEqual([(a.type, a.ttl, a.data)
                                      for a in r.authority],
                                     [("SOA", 30, soa)])
                r = query_reply("127.0.0.1", self.port, "nowhere.test", "A",
                                tcp=tcp)
                self.assertEqual((r.rcode, r.answers), (NXDOMAIN, []))
                self.assertEqual([a.type for a in r.authority], ["SOA"])
                # Outside every record: NXDOMAIN without an SOA.
                r = query_reply("127.0.0.1", self.port, "other.invalid",
                                "A", tcp=tcp)
                self.assertEqual((r.rcode, r.authority), (NXDOMAIN, []))

    def test_rcode_actions(self):
        want = {"servfail.test": SERVFAIL, "refused.test": REFUSED,
                "nxdomain.test": NXDOMAIN, "formerr.test": FORMERR,
                "notimp.test": NOTIMP}
        for tcp in BOTH:
            for name, rcode in want.items():
                with self.subTest(name=name, proto=proto(tcp)):
                    got, flags, ans = self.q(name, "MX", tcp)
                    self.assertEqual((got, ans), (rcode, []))
                    self.assertIn("qr", flags)
        # A behaviour for one type leaves the others alone.
        self.assertEqual(self.q("mail.test", "AAAA")[0], REFUSED)
        self.assertEqual(self.q("mail.test", "MX")[0], NOERROR)

    def test_question_echoed(self):
        r = query_reply("127.0.0.1", self.port, "ServFail.test", "MX")
        self.assertEqual(r.rcode, SERVFAIL)
        qid, msg = aimxtest.build_query("ServFail.test", "MX")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(msg, ("127.0.0.1", self.port))
            data = s.recv(4096)
        self.assertEqual(data[:2], msg[:2])
        self.assertEqual(data[4:6], b"\0\1")                # QDCOUNT
        self.assertEqual(data[12:len(msg)], msg[12:])       # same question

    def test_drop(self):
        for tcp in BOTH:
            with self.subTest(proto=proto(tcp)):
                with self.assertRaises(socket.timeout):
                    self.q("drop.test", "A", tcp, timeout=0.4)
        log = [e for e in self.peer.stats()["log"]
               if e["name"] == "drop.test."]
        self.assertEqual(sorted(e["proto"] for e in log), ["tcp", "udp"])
        self.assertTrue(all(e["end"] is None and e["action"] == "drop"
                            for e in log))

    def test_truncate(self):
        rcode, flags, ans = self.q("tc.test", "A")
        self.assertEqual((rcode, ans), (NOERROR, []))
        self.assertIn("tc", flags)
        rcode, flags, ans = self.q("tc.test", "A", tcp=True)
        self.assertNotIn("tc", flags)
        self.assertEqual(ans, [("A", "127.0.0.6")])

    def test_oversized_udp_answer_truncated(self):
        rcode, flags, ans = self.q("bigtxt.test", "TXT")
        self.assertEqual((rcode, ans), (NOERROR, []))
        self.assertIn("tc", flags)
        for kw in ({"tcp": True}, {"edns": 4096}):
            rcode, flags, ans = self.q("bigtxt.test", "TXT", **kw)
            self.assertNotIn("tc", flags, kw)
            self.assertEqual(txt_strings(ans[0][1]),
                             ["x" * 200, "y" * 200, "z" * 200])

    def test_proto_specific_behaviour(self):
        self.assertEqual(self.q("udpfail.test", "A")[0], SERVFAIL)
        self.assertEqual(self.answers("udpfail.test", "A", tcp=True),
                         [("A", "127.0.0.7")])

    def test_times(self):
        self.assertEqual(self.q("flaky.test", "A")[0], SERVFAIL)
        self.assertEqual(self.answers("flaky.test", "A"),
                         [("A", "127.0.0.8")])
        self.assertEqual(self.answers("flaky.test", "A", tcp=True),
                         [("A", "127.0.0.8")])

    def test_null_mx(self):
        for tcp in BOTH:
            self.assertEqual(self.answers("nullmx.test", "MX", tcp),
                             [("MX", "0 .")])

    def test_cname_chase(self):
        for tcp in BOTH:
            with self.subTest(proto=proto(tcp)):
                self.assertEqual(self.answers("alias.test", "MX", tcp),
                                 [("CNAME", "alias2.test."),
                                  ("CNAME", "mail.test."),
                                  ("MX", "10 mx1.mail.test."),
                                  ("MX", "20 mx2.mail.test.")])
                # The CNAME itself when asked for it; NXDOMAIN at a dead end.
                self.assertEqual(self.answers("alias.test", "CNAME", tcp),
                                 [("CNAME", "alias2.test.")])
                self.assertEqual(self.q("dangling.test", "A", tcp),
                                 (NXDOMAIN, {"qr", "aa", "rd", "ra"},
                                  [("CNAME", "gone.test.")]))
                # Chain to a name without the type: NODATA with the chain.
                self.assertEqual(self.answers("alias.test", "A", tcp),
                                 [("CNAME", "alias2.test."),
                                  ("CNAME", "mail.test.")])

    def test_cname_nochase(self):
        for tcp in BOTH:
            self.assertEqual(self.answers("nochase.test", "MX", tcp),
                             [("CNAME", "mail.test.")])

    def test_txt_split(self):
        for tcp in BOTH:
            # 600+ octets: over UDP only with EDNS0 (else TC, see below).
            rcode, _, ans = self.q("long.test", "TXT", tcp,
                                   edns=None if tcp else 4096)
            self.assertEqual(len(ans), 1)
            pieces = txt_strings(ans[0][1])
            self.assertEqual([len(p) for p in pieces], [255, 255, 90])
            self.assertEqual("".join(pieces), LONG_TXT)

    def test_garbage(self):
        for tcp in BOTH:
            with self.subTest(proto=proto(tcp)):
                with self.assertRaises(MalformedReply):
                    self.q("garbage.test", "A", tcp)
        qid, msg = aimxtest.build_query("garbage.test", "A")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(msg, ("127.0.0.1", self.port))
            data = s.recv(4096)
        self.assertEqual(struct.unpack("!H", data[:2])[0], qid)
        self.assertLess(len(data), 20)

    def test_delay_then(self):
        t0 = time.monotonic()
        self.assertEqual(self.q("slowfail.test", "A")[0], SERVFAIL)
        log = [e for e in self.peer.stats()["log"]
               if e["name"] == "slowfail.test."]
        self.assertEqual(log[-1]["action"], "delay+servfail")
        self.assertGreaterEqual(log[-1]["end"] - log[-1]["start"], 0.09)
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)

    def test_ipv6(self):
        for tcp in BOTH:
            self.assertEqual(
                self.q("mail.test", "MX", tcp, host="::1")[2][0],
                ("MX", "10 mx1.mail.test."))

    def test_edns(self):
        r = query_reply("127.0.0.1", self.port, "mail.test", "MX")
        self.assertIsNone(r.edns)
        r = query_reply("127.0.0.1", self.port, "mail.test", "MX", edns=1232)
        self.assertEqual(r.edns, 1232)
        self.assertEqual(len(r.answers), 2)

    def test_tcp_pipelined(self):
        # Several queries on one connection; the slow one does not hold up
        # the quick ones, which therefore come back first.
        names = {}
        wire = b""
        for name, qtype in (("slow.test", "A"), ("mail.test", "MX"),
                            ("mx1.mail.test", "AAAA")):
            qid, msg = aimxtest.build_query(name, qtype)
            names[qid] = name
            wire += struct.pack("!H", len(msg)) + msg
        with socket.create_connection(("127.0.0.1", self.port), 3) as s:
            s.sendall(wire)
            s.shutdown(socket.SHUT_WR)              # EOF after three
            order = []
            for _ in names:
                n = struct.unpack("!H", aimxtest._recv_exact(s, 2))[0]
                reply = aimxtest.parse_reply(aimxtest._recv_exact(s, n))
                self.assertEqual(reply.rcode, NOERROR)
                order.append(names[reply.id])
            self.assertEqual(s.recv(1), b"")        # then the peer closes
        self.assertEqual(order[-1], "slow.test")
        self.assertEqual(sorted(order[:2]), ["mail.test", "mx1.mail.test"])

    def test_malformed_query_formerr(self):
        # A header that announces a question and has none.
        msg = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x05ab"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(msg, ("127.0.0.1", self.port))
            r = aimxtest.parse_reply(s.recv(4096))
        self.assertEqual((r.id, r.rcode), (0x1234, FORMERR))


class FaultPeerLifecycle(unittest.TestCase):
    def test_delayed_queries_overlap(self):
        zone = {"records": [{"name": f"h{i}.test.", "type": "A",
                             "data": f"127.0.1.{i}"} for i in range(10)],
                "behaviours": [{"name": f"h{i}.test.", "type": "A",
                                "action": "delay", "ms": 500}
                               for i in range(10)]}
        with DnsFaultPeer(zone) as peer:
            results = {}

            def ask(i):
                try:
                    results[i] = query("127.0.0.1", peer.port, f"h{i}.test",
                                       "A", timeout=5)
                except Exception as e:      # reported below
                    results[i] = e

            threads = [threading.Thread(target=ask, args=(i,))
                       for i in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            for i in range(10):
                self.assertEqual(results[i][2], [("A", f"127.0.1.{i}")])
            stats = peer.stats()
        self.assertEqual(stats["queries"], 10)
        self.assertEqual(stats["outstanding"], 0)
        self.assertEqual(stats["max_outstanding"], 10)
        # (asyncio may wake a hair early: no exact timing here.)
        self.assertTrue(all(e["end"] - e["start"] >= 0.45
                            for e in stats["log"]))

    def test_sigterm_stops_and_cleans_up(self):
        zone = {"behaviours": [{"name": "w.test.", "action": "delay",
                                "ms": 60000}]}
        outcome = []

        def ask(port):
            try:
                outcome.append(query("127.0.0.1", port, "w.test", "A",
                                     tcp=True, timeout=10))
            except Exception as e:
                outcome.append(e)

        with DnsFaultPeer(zone) as peer:
            pid, tmp = peer.pid, peer.dir
            t = threading.Thread(target=ask, args=(peer.port,))
            t.start()
            peer.wait_queries(1, outstanding=1)
            t0 = time.monotonic()
        self.assertLess(time.monotonic() - t0, 3)
        t.join(10)
        # The waiting client sees the connection closed, not an answer.
        self.assertIsInstance(outcome[0],
                              (MalformedReply, ConnectionError))
        self.assertEqual(peer.returncode, 0)
        self.assertFalse(os.path.exists(tmp))
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

    def test_bad_zone_reported(self):
        with self.assertRaises(RuntimeError) as cm:
            with DnsFaultPeer({"behaviours": [{"name": "x.test.",
                                               "action": "explode"}]}):
                pass
        self.assertIn("unknown action", str(cm.exception))

    def test_free_port(self):
        p = aimxtest.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind(("127.0.0.1", p))
            t.bind(("127.0.0.1", p))


DNSMASQ_RECORDS = [
    ("mail.test", "MX", "10 mx1.mail.test."),
    ("mail.test", "MX", "20 mx2.mail.test."),
    ("mx1.mail.test", "A", "127.0.0.2"),
    ("mx1.mail.test", "A", "127.0.0.3"),
    ("mx1.mail.test", "AAAA", "::1"),
    ("alias.test", "CNAME", "mail.test."),
    ("www.test", "CNAME", "mx1.mail.test."),
    ("mail.test", "TXT", "v=spf1 a, mx -all"),
    ("multi.test", "TXT", ["one", "two words"]),
    ("2.0.0.127.in-addr.arpa", "PTR", "mx1.mail.test."),
    ("nullmx.test", "MX", "0 ."),
]


class DnsmasqServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            aimxtest.ensure_debian_packages("dnsmasq-base")
        except RuntimeError as e:
            if os.geteuid() == 0:
                raise
            raise unittest.SkipTest(str(e))
        cls.dns = cls.enterClassContext(Dnsmasq(DNSMASQ_RECORDS))

    def q(self, name, qtype, tcp=False):
        return query("127.0.0.1", self.dns.port, name, qtype, tcp=tcp)

    def answers(self, name, qtype, tcp=False):
        rcode, _, ans = self.q(name, qtype, tcp)
        self.assertEqual(rcode, NOERROR, (name, qtype))
        return ans

    def test_records(self):
        for tcp in BOTH:
            with self.subTest(proto=proto(tcp)):
                # dnsmasq rotates the order of equal records.
                self.assertEqual(sorted(self.answers("mx1.mail.test", "A",
                                                     tcp)),
                                 [("A", "127.0.0.2"), ("A", "127.0.0.3")])
                self.assertEqual(self.answers("mx1.mail.test", "AAAA", tcp),
                                 [("AAAA", "::1")])
                self.assertEqual(sorted(self.answers("mail.test", "MX", tcp)),
                                 [("MX", "10 mx1.mail.test."),
                                  ("MX", "20 mx2.mail.test.")])
                self.assertEqual(self.answers("mail.test", "TXT", tcp),
                                 [("TXT", '"v=spf1 a, mx -all"')])
                self.assertEqual(self.answers("multi.test", "TXT", tcp),
                                 [("TXT", '"one" "two words"')])
                self.assertEqual(
                    self.answers("2.0.0.127.in-addr.arpa", "PTR", tcp),
                    [("PTR", "mx1.mail.test.")])
                self.assertEqual(self.answers("nullmx.test", "MX", tcp),
                                 [("MX", "0 .")])

    def test_cname(self):
        ans = self.answers("alias.test", "MX")
        self.assertEqual(ans[0], ("CNAME", "mail.test."))
        self.assertEqual(sorted(ans[1:]), [("MX", "10 mx1.mail.test."),
                                           ("MX", "20 mx2.mail.test.")])
        ans = self.answers("www.test", "A", tcp=True)
        self.assertEqual(ans[0], ("CNAME", "mx1.mail.test."))
        self.assertEqual(sorted(ans[1:]), [("A", "127.0.0.2"),
                                           ("A", "127.0.0.3")])

    def test_nxdomain_and_nodata(self):
        for tcp in BOTH:
            self.assertEqual(self.q("unknown.test", "A", tcp)[::2],
                             (NXDOMAIN, []))
            self.assertEqual(self.q("unknown.test", "MX", tcp)[::2],
                             (NXDOMAIN, []))
            # A name with only addresses, asked for MX: NODATA.
            self.assertEqual(self.q("mx1.mail.test", "MX", tcp)[::2],
                             (NOERROR, []))
            # Below an existing name, nothing: NXDOMAIN.
            self.assertEqual(self.q("x.mx1.mail.test", "A", tcp)[::2],
                             (NXDOMAIN, []))

    def test_ipv6_listen_and_stop(self):
        with Dnsmasq([("v6.test", "AAAA", "::1")], listen="::1") as d:
            self.assertEqual(d.server, f"[::1]:{d.port}")
            self.assertEqual(query("::1", d.port, "v6.test", "AAAA")[2],
                             [("AAAA", "::1")])
            pid = d.pid
        self.assertIsNotNone(d.returncode)
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

    def test_refuses_names_outside_test(self):
        with self.assertRaises(ValueError):
            with Dnsmasq([("mail.example", "A", "127.0.0.2")]):
                pass


if __name__ == "__main__":
    unittest.main(verbosity=2)
