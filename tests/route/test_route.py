#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx route, end to end: the real resolver-cares and policy-ipfamily
plugins against real DNS servers on loopback that this test starts and
stops itself.

Test zone (all under .test, all addresses on loopback, which is why every
config here sets allow_private_targets = true):

  served by dnsmasq
    v4.test            MX 10 mx.v4.test         mx.v4.test    A 127.0.0.2
    dual.test          MX 10 mx.dual.test       mx.dual.test  A 127.0.0.3, AAAA ::1
    v6only.test        MX 10 mx.v6only.test     mx.v6only.test AAAA ::1
    mixed.test         MX 10 mx1.mixed.test     mx1.mixed.test AAAA ::1
                       MX 20 mx2.mixed.test     mx2.mixed.test A 127.0.0.4
    bare.test          (no MX)                  bare.test     A 127.0.0.5
    alias.test         MX 10 mx.alias.test      mx.alias.test CNAME hop.alias.test,
                                                hop.alias.test CNAME real.alias.test,
                                                real.alias.test A 127.0.0.6
    multi.test         MX 10 mx.multi.test      mx.multi.test A 127.0.0.7, .8, .9
    equal.test         MX 10 a/b/c.equal.test   each A 127.0.0.10
    xn--bcher-kva.test MX 10 mx.xn--bcher-kva.test  A 127.0.0.11
    (any other name under .test is NXDOMAIN)
  served by the DNS fault peer (tests/peers/dns_fault_peer.py)
    nullmx.test        MX 0 .
    nullmix.test       MX 0 . and MX 10 mx.nullmix.test
    literal.test       MX 10 127.0.0.1.
    servfail.test / refused.test / silent.test: that answer to the MX query
    hostfail.test      MX 10 mx.hostfail.test, whose A query gets SERVFAIL
    hostsilent.test    MX 10 mx.hostsilent.test, whose A query is dropped
    nochase.test       MX 10 mx.nochase.test, a CNAME the server does not chase
    many.test          MX 10 m0..m9.many.test, every A/AAAA answer delayed 300 ms
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import aimxtest  # noqa: E402

AIMX = os.environ["AIMX_BIN"]
PLUGINS = os.environ["AIMX_PLUGIN_DIR"]

DNSMASQ_RECORDS = [
    ("v4.test", "MX", "10 mx.v4.test"),
    ("mx.v4.test", "A", "127.0.0.2"),
    ("dual.test", "MX", "10 mx.dual.test"),
    ("mx.dual.test", "A", "127.0.0.3"),
    ("mx.dual.test", "AAAA", "::1"),
    ("v6only.test", "MX", "10 mx.v6only.test"),
    ("mx.v6only.test", "AAAA", "::1"),
    ("mixed.test", "MX", "10 mx1.mixed.test"),
    ("mixed.test", "MX", "20 mx2.mixed.test"),
    ("mx1.mixed.test", "AAAA", "::1"),
    ("mx2.mixed.test", "A", "127.0.0.4"),
    ("bare.test", "A", "127.0.0.5"),
    ("alias.test", "MX", "10 mx.alias.test"),
    ("mx.alias.test", "CNAME", "hop.alias.test"),
    ("hop.alias.test", "CNAME", "real.alias.test"),
    ("real.alias.test", "A", "127.0.0.6"),
    ("multi.test", "MX", "10 mx.multi.test"),
    ("mx.multi.test", "A", "127.0.0.7"),
    ("mx.multi.test", "A", "127.0.0.8"),
    ("mx.multi.test", "A", "127.0.0.9"),
    ("equal.test", "MX", "10 a.equal.test"),
    ("equal.test", "MX", "10 b.equal.test"),
    ("equal.test", "MX", "10 c.equal.test"),
    ("a.equal.test", "A", "127.0.0.10"),
    ("b.equal.test", "A", "127.0.0.10"),
    ("c.equal.test", "A", "127.0.0.10"),
    ("xn--bcher-kva.test", "MX", "10 mx.xn--bcher-kva.test"),
    ("mx.xn--bcher-kva.test", "A", "127.0.0.11"),
]


def rec(name, rtype, data):
    return {"name": name, "type": rtype, "ttl": 60, "data": data}


MANY_HOSTS = [f"m{i}.many.test." for i in range(10)]
PEER_ZONE = {
    "records": [
        rec("nullmx.test.", "MX", "0 ."),
        rec("nullmix.test.", "MX", "0 ."),
        rec("nullmix.test.", "MX", "10 mx.nullmix.test."),
        rec("mx.nullmix.test.", "A", "127.0.0.12"),
        rec("literal.test.", "MX", "10 127.0.0.1."),
        rec("servfail.test.", "A", "127.0.0.13"),
        rec("refused.test.", "A", "127.0.0.13"),
        rec("silent.test.", "A", "127.0.0.13"),
        rec("hostfail.test.", "MX", "10 mx.hostfail.test."),
        rec("mx.hostfail.test.", "A", "127.0.0.14"),
        rec("hostsilent.test.", "MX", "10 mx.hostsilent.test."),
        rec("mx.hostsilent.test.", "A", "127.0.0.15"),
        rec("nochase.test.", "MX", "10 mx.nochase.test."),
        rec("mx.nochase.test.", "CNAME", "real.nochase.test."),
        rec("real.nochase.test.", "A", "127.0.0.16"),
    ] + [rec("many.test.", "MX", f"10 {h}") for h in MANY_HOSTS]
      + [rec(h, "A", f"127.0.1.{i}") for i, h in enumerate(MANY_HOSTS)],
    "behaviours": [
        {"name": "servfail.test.", "type": "MX", "action": "servfail"},
        {"name": "refused.test.", "type": "MX", "action": "refused"},
        {"name": "silent.test.", "type": "MX", "action": "drop"},
        {"name": "mx.hostfail.test.", "type": "A", "action": "servfail"},
        {"name": "mx.hostsilent.test.", "type": "A", "action": "drop"},
        {"name": "mx.nochase.test.", "type": "A", "action": "nochase"},
    ] + [{"name": h, "type": "*", "action": "delay", "ms": 300}
         for h in MANY_HOSTS],
}


class RouteE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        aimxtest.ensure_debian_packages("dnsmasq-base")
        cls.tmp = tempfile.mkdtemp(prefix="aimx-route-")
        cls.dnsmasq = aimxtest.Dnsmasq(DNSMASQ_RECORDS)
        cls.dnsmasq.__enter__()
        try:
            cls.peer = aimxtest.DnsFaultPeer(PEER_ZONE)
            cls.peer.__enter__()
        except BaseException:
            cls.dnsmasq.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.peer.__exit__(None, None, None)
        finally:
            cls.dnsmasq.__exit__(None, None, None)
            shutil.rmtree(cls.tmp)

    def conf(self, server, ipv6, extra="", prefer=None):
        path = os.path.join(self.tmp, f"aimx-{ipv6}-{prefer}-{server.replace(':', '_')}.conf")
        with open(path, "w") as f:
            f.write(f'domain = "sender.test";\n'
                    f'enable_ipv6 = {"true" if ipv6 else "false"};\n'
                    f'allow_private_targets = true;\n'
                    f'plugin_dirs = [ "{PLUGINS}" ];\n'
                    f'resolver: {{ plugin = "resolver-cares"; '
                    f'servers = [ "{server}" ]; timeout = "500ms"; tries = 1; }};\n'
                    f'policy: {{ plugin = "policy-ipfamily"; '
                    + (f'prefer = "{prefer}"; ' if prefer else '') + '};\n' + extra)
        return path

    def route(self, domain, ipv6=False, server=None, expect=None, extra="",
              prefer=None):
        server = server or self.dnsmasq.server
        env = {k: v for k, v in os.environ.items()
               if k not in ("AIMX_CONFIG", "AIMX_PLUGIN_PATH")}
        p = subprocess.run([AIMX, "--config", self.conf(server, ipv6, extra, prefer),
                            "route", "--json", domain],
                           capture_output=True, text=True, timeout=60, env=env)
        try:
            obj = json.loads(p.stdout)
        except ValueError:
            self.fail(f"no JSON for {domain}: rc={p.returncode}\n{p.stdout}\n{p.stderr}")
        if expect is not None:
            self.assertEqual(p.returncode, expect, f"{domain}: {p.stdout}\n{p.stderr}")
        self.assertEqual(obj["schema"], 1)
        return obj

    def both(self, domain, **kw):
        return self.route(domain, False, **kw), self.route(domain, True, **kw)

    # -- families ------------------------------------------------------

    def test_ipv4_only_mx(self):
        for obj in self.both("v4.test", expect=0):
            self.assertEqual(obj["status"], "ok")
            self.assertEqual(obj["mx_result"], "ok")
            (mx,) = obj["mx"]
            self.assertEqual((mx["host"], mx["preference"], mx["implicit"]),
                             ("mx.v4.test", 10, False))
            self.assertEqual(mx["a"], {"result": "ok", "addresses": ["127.0.0.2"]})
            self.assertEqual(mx["aaaa"]["result"], "nodata")
            self.assertEqual(mx["targets"], ["127.0.0.2"])

    def test_dual_stack_mx(self):
        off, on = self.both("dual.test", expect=0)
        self.assertEqual(off["mx"][0]["targets"], ["127.0.0.3"])
        self.assertEqual(on["mx"][0]["targets"], ["::1", "127.0.0.3"])
        on4 = self.route("dual.test", True, expect=0, prefer="ipv4")
        self.assertEqual(on4["mx"][0]["targets"], ["127.0.0.3", "::1"])
        self.assertEqual(on4["mx"][0]["aaaa"], {"result": "ok", "addresses": ["::1"]})

    def test_aaaa_only_mx(self):
        off, on = self.both("v6only.test")
        self.assertEqual(off["status"], "permfail")
        self.assertEqual(off["reason"], "no_usable_mx")
        mx = off["mx"][0]
        self.assertEqual((mx["verdict"], mx["reason"]), ("skip", "no_ipv4"))
        self.assertIn("enable_ipv6 = false", mx["detail"])
        self.assertEqual(mx["targets"], [])
        self.assertEqual(on["status"], "ok")
        self.assertEqual(on["mx"][0]["targets"], ["::1"])

    def test_first_mx_aaaa_only_second_ipv4(self):
        off, on = self.both("mixed.test", expect=0)
        self.assertEqual([m["host"] for m in off["mx"]],
                         ["mx1.mixed.test", "mx2.mixed.test"])
        self.assertEqual(off["mx"][0]["reason"], "no_ipv4")
        self.assertEqual(off["mx"][1]["targets"], ["127.0.0.4"])
        self.assertEqual(on["mx"][0]["targets"], ["::1"])

    # -- MX rules ------------------------------------------------------

    def test_null_mx(self):
        for domain in ("nullmx.test", "nullmix.test"):
            before = self.peer.stats()["queries"]
            for obj in (self.route(domain, False, server=self.peer.server, expect=69),
                        self.route(domain, True, server=self.peer.server, expect=69)):
                self.assertEqual(obj["status"], "permfail")
                self.assertEqual(obj["reason"], "null_mx")
                self.assertEqual(obj["mx_result"], "null_mx")
                self.assertIn("null MX, RFC 7505", obj["detail"])
                self.assertEqual(obj["mx"], [])
            # Only the two MX queries: no address lookup, no fallback.
            self.assertEqual(self.peer.stats()["queries"] - before, 2)

    def test_nxdomain(self):
        for obj in self.both("nowhere.test", expect=69):
            self.assertEqual((obj["status"], obj["reason"], obj["mx_result"]),
                             ("permfail", "nxdomain", "nxdomain"))

    def test_implicit_mx(self):
        for obj in self.both("bare.test", expect=0):
            self.assertEqual(obj["mx_result"], "nodata")
            (mx,) = obj["mx"]
            self.assertEqual((mx["host"], mx["preference"], mx["implicit"]),
                             ("bare.test", 0, True))
            self.assertEqual(mx["targets"], ["127.0.0.5"])

    def test_mx_through_cname_chain(self):
        for obj in self.both("alias.test", expect=0):
            self.assertEqual(obj["mx"][0]["targets"], ["127.0.0.6"])
        # A server that does not chase: the resolver follows the chain.
        for obj in (self.route("nochase.test", False, server=self.peer.server, expect=0),
                    self.route("nochase.test", True, server=self.peer.server, expect=0)):
            self.assertEqual(obj["mx"][0]["targets"], ["127.0.0.16"])

    def test_ip_literal_mx(self):
        obj = self.route("literal.test", server=self.peer.server, expect=69)
        (mx,) = obj["mx"]
        self.assertEqual((mx["verdict"], mx["reason"]), ("skip", "ip_literal_mx"))
        self.assertIsNone(mx["a"])

    def test_equal_preferences_vary(self):
        firsts = set()
        for _ in range(12):
            obj = self.route("equal.test", expect=0)
            self.assertEqual(sorted(m["host"] for m in obj["mx"]),
                             ["a.equal.test", "b.equal.test", "c.equal.test"])
            firsts.add(obj["mx"][0]["host"])
            if len(firsts) > 1:
                break
        # Fails with probability (1/3)^11 if the order were random.
        self.assertGreater(len(firsts), 1)

    def test_several_a_records(self):
        for obj in self.both("multi.test", expect=0):
            self.assertEqual(sorted(obj["mx"][0]["targets"]),
                             ["127.0.0.7", "127.0.0.8", "127.0.0.9"])

    def test_idn_domain(self):
        obj = self.route("bücher.test", expect=0)
        self.assertEqual(obj["domain"], "xn--bcher-kva.test")
        self.assertEqual(obj["mx"][0]["targets"], ["127.0.0.11"])

    # -- DNS failures --------------------------------------------------

    def test_mx_query_failures_are_temporary(self):
        for domain, result in (("servfail.test", "servfail"),
                               ("refused.test", "refused"),
                               ("silent.test", "timeout")):
            for ipv6 in (False, True):
                obj = self.route(domain, ipv6, server=self.peer.server, expect=75)
                self.assertEqual((obj["status"], obj["reason"], obj["mx_result"]),
                                 ("tempfail", "dns_temporary", result), domain)
                # No fallback to the domain's own A record.
                self.assertEqual(obj["mx"], [])

    def test_host_address_failures_defer(self):
        for domain, result in (("hostfail.test", "servfail"),
                               ("hostsilent.test", "timeout")):
            for ipv6 in (False, True):
                obj = self.route(domain, ipv6, server=self.peer.server, expect=75)
                self.assertEqual(obj["status"], "tempfail")
                (mx,) = obj["mx"]
                self.assertEqual(mx["a"]["result"], result)
                self.assertEqual(mx["verdict"], "defer")
                self.assertTrue(mx["temporary"])

    def test_unreachable_resolver(self):
        port = aimxtest.free_port()
        obj = self.route("v4.test", server=f"127.0.0.1:{port}", expect=75)
        self.assertEqual(obj["mx_result"], "unreachable")

    # -- private targets -----------------------------------------------

    def test_private_targets(self):
        path = self.conf(self.dnsmasq.server, False)
        with open(path) as f:
            text = f.read().replace("allow_private_targets = true;",
                                    "allow_private_targets = false;")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([AIMX, "--config", path, "route", "--json", "v4.test"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 69, p.stderr)
        obj = json.loads(p.stdout)
        self.assertEqual(obj["mx"][0]["reason"], "private_address")
        self.assertIn("127.0.0.2 (loopback)", obj["mx"][0]["detail"])
        self.assertEqual(self.route("v4.test", expect=0)["mx"][0]["targets"],
                         ["127.0.0.2"])

    # -- the policy is one swappable plugin ----------------------------

    def test_swapped_policy_changes_routing(self):
        # sdk/examples/policy-ipv6only, selected in the config: the same
        # core now routes IPv6 only, with the example's own reason code.
        examples = os.environ["AIMX_EXAMPLE_PLUGIN_DIR"]
        path = os.path.join(self.tmp, "ipv6only.conf")
        with open(path, "w") as f:
            f.write('allow_private_targets = true;\n'
                    f'plugin_dirs = [ "{PLUGINS}", "{examples}" ];\n'
                    f'resolver: {{ plugin = "resolver-cares"; '
                    f'servers = [ "{self.dnsmasq.server}" ]; }};\n'
                    'policy: { plugin = "policy-ipv6only"; };\n')

        def route(domain):
            p = subprocess.run([AIMX, "--config", path, "route", "--json", domain],
                               capture_output=True, text=True, timeout=60)
            return p.returncode, json.loads(p.stdout)

        code, obj = route("v4.test")
        self.assertEqual(code, 69)
        self.assertEqual(obj["mx"][0]["reason"], "no_ipv6")
        code, obj = route("v6only.test")
        self.assertEqual(code, 0)
        self.assertEqual(obj["mx"][0]["targets"], ["::1"])
        code, obj = route("dual.test")
        self.assertEqual(obj["mx"][0]["targets"], ["::1"])

    # -- concurrency, proved by the server, not timed -------------------

    def test_address_lookups_overlap(self):
        before = self.peer.stats()
        obj = self.route("many.test", True, server=self.peer.server, expect=0)
        self.assertEqual(len(obj["mx"]), 10)
        stats = self.peer.stats()
        log = stats["log"][len(before["log"]):]
        addr = [q for q in log if q["type"] in ("A", "AAAA")]
        self.assertEqual(len(addr), 20, log)
        # Every address query started before the first one was answered.
        first_end = min(q["end"] for q in addr if q["end"] is not None)
        self.assertTrue(all(q["start"] < first_end for q in addr),
                        "address lookups ran one after another")
        self.assertGreaterEqual(stats["max_outstanding"], 20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
