#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx verify end to end: the real resolver-cares, policy-ipfamily and
transport-smtp plugins; SMTP fault peers listening on 127.0.0.1 and ::1, a
closed port, a listener that never greets (the transport's greeting timeout
set short) and one that refuses with its greeting; the DNS fault peer for
host-name targets.  Everything on loopback.

Test zone (DNS fault peer):
  both.test   A 127.0.0.1, AAAA ::1
  v4.test     A 127.0.0.1
  slow.test   A 127.0.0.1, its AAAA query answers SERVFAIL
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


def rec(name, rtype, data):
    return {"name": name, "type": rtype, "ttl": 60, "data": data}


ZONE = {
    "records": [
        rec("both.test.", "A", "127.0.0.1"),
        rec("both.test.", "AAAA", "::1"),
        rec("v4.test.", "A", "127.0.0.1"),
        rec("slow.test.", "A", "127.0.0.1"),
    ],
    "behaviours": [
        {"name": "slow.test.", "type": "AAAA", "action": "servfail"},
    ],
}


class VerifyE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="aimx-verify-")
        cls.dns = aimxtest.DnsFaultPeer(ZONE)
        cls.dns.__enter__()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dns.__exit__(None, None, None)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def conf(self, port, ipv6=False, extra=""):
        text = (f'domain = "sender.test";\n'
                f'enable_ipv6 = {"true" if ipv6 else "false"};\n'
                f'plugin_dirs = [ "{PLUGINS}" ];\n'
                f'resolver: {{ plugin = "resolver-cares"; servers = '
                f'[ "{self.dns.server}" ]; timeout = "500ms"; tries = 1; }};\n'
                f'transport: {{ plugin = "transport-smtp"; port = {port}; '
                f'timeouts: {{ connect = "2s"; greeting = "400ms"; '
                f'ehlo = "2s"; quit = "1s"; }}; }};\n' + extra)
        path = os.path.join(self.tmp, f"c{abs(hash(text))}.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def verify(self, conf, *args, expect=None, json_out=True):
        argv = [AIMX, "--config", conf] + (["--json"] if json_out else [])
        argv += ["verify"] + list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if expect is not None:
            self.assertEqual(p.returncode, expect,
                             f"{argv}\n{p.stdout}\n{p.stderr}")
        if not json_out:
            return p
        obj = json.loads(p.stdout)
        self.assertEqual(obj["schema"], 1)
        return obj

    def families(self, obj):
        return {f["family"]: f for f in obj["families"]}

    def test_both_families_by_name(self):
        with aimxtest.SmtpFaultPeer({}, listen=("127.0.0.1", "::1")) as smtp:
            obj = self.verify(self.conf(smtp.port, ipv6=True), "--target",
                              "both.test", expect=0)
            self.assertEqual(set(obj), {"schema", "target", "families"})
            self.assertEqual(obj["target"], f"both.test:{smtp.port}")
            fam = self.families(obj)
            self.assertEqual(list(fam), ["ipv4", "ipv6"])
            for f in fam.values():
                self.assertEqual(set(f), {"family", "result", "greeting",
                                          "ms"})
                self.assertEqual(f["result"], "reachable")
                self.assertIn("peer.test", f["greeting"])
                self.assertIsInstance(f["ms"], int)
            sessions = smtp.wait_sessions(2)
            # One session per family, each greeted, EHLO'd and QUIT, and
            # nothing else: no MAIL, no RCPT.
            self.assertEqual(len(sessions), 2)
            self.assertEqual({s["local"].startswith("[::1]")
                              for s in sessions}, {True, False})
            for s in sessions:
                self.assertEqual(s["transactions"], [])
                self.assertEqual([c.split()[0] for c in s["commands"]],
                                 ["EHLO", "QUIT"])
            # IPv6 off: only IPv4 is probed.
            obj = self.verify(self.conf(smtp.port), "--target", "both.test",
                              expect=0)
            self.assertEqual(list(self.families(obj)), ["ipv4"])
            self.assertEqual(len(smtp.wait_sessions(3)), 3)

    def test_ip_literals(self):
        with aimxtest.SmtpFaultPeer({}, listen=("127.0.0.1", "::1")) as smtp:
            conf6 = self.conf(smtp.port, ipv6=True)
            obj = self.verify(conf6, "--target", f"[::1]:{smtp.port}",
                              expect=0)
            self.assertEqual(obj["target"], f"[::1]:{smtp.port}")
            self.assertEqual([(f["family"], f["result"])
                              for f in obj["families"]],
                             [("ipv6", "reachable")])
            obj = self.verify(conf6, "--target", "127.0.0.1", expect=0)
            self.assertEqual([f["family"] for f in obj["families"]],
                             ["ipv4"])
            # An IPv6 literal while the policy sends over IPv4 only.
            p = self.verify(self.conf(smtp.port), "--target", "::1",
                            expect=64, json_out=False)
            self.assertIn("does not send over IPv6", p.stderr)
            self.assertEqual(smtp.stats()["sessions"], 2)

    def test_closed_port_is_refused(self):
        port = aimxtest.free_port()
        obj = self.verify(self.conf(port), "--target", "127.0.0.1",
                          expect=75)
        (f,) = obj["families"]
        self.assertEqual((f["family"], f["result"], f["greeting"]),
                         ("ipv4", "refused", None))

    def test_never_greets_is_a_timeout(self):
        script = {"greeting_delay_ms": 10000}
        with aimxtest.SmtpFaultPeer(script) as smtp:
            obj = self.verify(self.conf(smtp.port), "--target", "127.0.0.1",
                              expect=75)
            (f,) = obj["families"]
            self.assertEqual(f["result"], "timeout")
            # The transport's 400 ms greeting timeout, not ten seconds.
            self.assertGreaterEqual(f["ms"], 350)
            self.assertLess(f["ms"], 5000)

    def test_greeting_refused(self):
        script = {"greeting": "554 5.3.2 no service for you"}
        with aimxtest.SmtpFaultPeer(script) as smtp:
            obj = self.verify(self.conf(smtp.port), "--target", "127.0.0.1",
                              expect=75)
            (f,) = obj["families"]
            self.assertEqual(f["result"], "greeting_refused")
            self.assertIn("no service for you", f["greeting"])

    def test_one_family_failing_is_75(self):
        # IPv4 answers, nothing listens on ::1.
        with aimxtest.SmtpFaultPeer({}, listen=("127.0.0.1",)) as smtp:
            obj = self.verify(self.conf(smtp.port, ipv6=True), "--target",
                              "both.test", expect=75)
            fam = self.families(obj)
            self.assertEqual(fam["ipv4"]["result"], "reachable")
            self.assertEqual(fam["ipv6"]["result"], "refused")
            # A name without AAAA, or whose AAAA lookup fails.
            obj = self.verify(self.conf(smtp.port, ipv6=True), "--target",
                              "v4.test", expect=75)
            fam = self.families(obj)
            self.assertEqual(fam["ipv6"]["result"], "no_address")
            self.assertIsNone(fam["ipv6"]["ms"])
            obj = self.verify(self.conf(smtp.port, ipv6=True), "--target",
                              "slow.test", expect=75)
            self.assertEqual(self.families(obj)["ipv6"]["result"],
                             "lookup_failed")

    def test_target_from_the_configuration(self):
        with aimxtest.SmtpFaultPeer({}) as smtp:
            conf = self.conf(smtp.port,
                             extra=f'verify_target = "v4.test:{smtp.port}";\n')
            obj = self.verify(conf, expect=0)
            self.assertEqual(obj["target"], f"v4.test:{smtp.port}")
            # --target wins over verify_target.
            obj = self.verify(conf, "--target", "127.0.0.1", expect=0)
            self.assertEqual(obj["target"], f"127.0.0.1:{smtp.port}")

    def test_usage_and_configuration_errors(self):
        conf = self.conf(25)
        p = self.verify(conf, expect=64, json_out=False)
        self.assertIn("--target", p.stderr)
        self.assertIn("verify_target", p.stderr)
        err = self.verify(conf, expect=64)
        self.assertEqual((err["status"], err["exit"]), ("error", 64))
        # A port other than the transport's: said why.
        p = self.verify(conf, "--target", "127.0.0.1:2525", expect=64,
                        json_out=False)
        self.assertIn("port = 2525", p.stderr)
        for bad in ("[::1", "host:0", "bad_name", "::1::x"):
            self.verify(conf, "--target", bad, expect=64, json_out=False)
        p = self.verify(conf, "extra", expect=64, json_out=False)
        # A bad verify_target is a configuration error with FILE:LINE.
        bad = self.conf(25, extra='verify_target = "x:99999";\n')
        p = self.verify(bad, expect=78, json_out=False)
        self.assertRegex(p.stderr, r"\.conf:\d+: 'verify_target'")

    def test_help_says_what_it_does_not_do(self):
        p = subprocess.run([AIMX, "verify", "--help"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("sends no mail and probes nothing else", p.stdout)

    def test_human_output(self):
        with aimxtest.SmtpFaultPeer({}, listen=("127.0.0.1", "::1")) as smtp:
            p = self.verify(self.conf(smtp.port, ipv6=True), "--target",
                            "both.test", expect=0, json_out=False)
            self.assertRegex(p.stdout, r"IPv4 +reachable +\d+ ms +127\.0\.0\.1")
            self.assertRegex(p.stdout, r"IPv6 +reachable +\d+ ms +::1")
            self.assertIn("sends no mail", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
