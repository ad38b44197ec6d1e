#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx send, end to end: the real resolver, policy and transport plugins
against a DNS server and SMTP servers on loopback that this test starts and
stops itself (the DNS fault peer; the SMTP fault peer, which records every
session, the address it came to and how many were open at once; Debian's
aiosmtpd).  Every address is on loopback, so every config here sets
allow_private_targets = true.

Test zone (DNS fault peer), all MX hosts on loopback:
  dual.test     MX 10 mx.dual.test       A 127.0.0.1, AAAA ::1
  v6first.test  MX 10 v6.v6first.test    AAAA ::1
                MX 20 v4.v6first.test    A 127.0.0.1
  v6only.test   MX 10 mx.v6only.test     AAAA ::1
  three.test    MX 10 mx.three.test      A 127.0.0.2, 127.0.0.3, 127.0.0.1 (in that order)
  two.test      MX 10 mx1.two.test       A 127.0.0.1
                MX 20 mx2.two.test       A 127.0.0.2
  d1/d2/d3.test MX 10 mx.dN.test         A 127.0.0.1
  h1/h2/h3.test MX 10 mx.hosted.test     A 127.0.0.1 (one MX, three domains)
  sink.test     MX 10 mx.sink.test       A 127.0.0.1
  nullmx.test   MX 0 .        nowhere.test NXDOMAIN
  servfail.test SERVFAIL      silent.test (no answer)
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import aimxtest  # noqa: E402

AIMX = os.environ["AIMX_BIN"]
PLUGINS = os.environ["AIMX_PLUGIN_DIR"]
SANITIZED = os.environ.get("AIMX_SANITIZED") == "1"


def rec(name, rtype, data):
    return {"name": name, "type": rtype, "ttl": 60, "data": data}


ZONE = {
    "records": [
        rec("dual.test.", "MX", "10 mx.dual.test."),
        rec("mx.dual.test.", "A", "127.0.0.1"),
        rec("mx.dual.test.", "AAAA", "::1"),
        rec("v6first.test.", "MX", "10 v6.v6first.test."),
        rec("v6first.test.", "MX", "20 v4.v6first.test."),
        rec("v6.v6first.test.", "AAAA", "::1"),
        rec("v4.v6first.test.", "A", "127.0.0.1"),
        rec("v6only.test.", "MX", "10 mx.v6only.test."),
        rec("mx.v6only.test.", "AAAA", "::1"),
        rec("three.test.", "MX", "10 mx.three.test."),
        rec("mx.three.test.", "A", "127.0.0.2"),
        rec("mx.three.test.", "A", "127.0.0.3"),
        rec("mx.three.test.", "A", "127.0.0.1"),
        rec("two.test.", "MX", "10 mx1.two.test."),
        rec("two.test.", "MX", "20 mx2.two.test."),
        rec("mx1.two.test.", "A", "127.0.0.1"),
        rec("mx2.two.test.", "A", "127.0.0.2"),
        rec("d1.test.", "MX", "10 mx.d1.test."),
        rec("d2.test.", "MX", "10 mx.d2.test."),
        rec("d3.test.", "MX", "10 mx.d3.test."),
        rec("mx.d1.test.", "A", "127.0.0.1"),
        rec("mx.d2.test.", "A", "127.0.0.1"),
        rec("mx.d3.test.", "A", "127.0.0.1"),
        rec("h1.test.", "MX", "10 mx.hosted.test."),
        rec("h2.test.", "MX", "10 mx.hosted.test."),
        rec("h3.test.", "MX", "10 mx.hosted.test."),
        rec("mx.hosted.test.", "A", "127.0.0.1"),
        rec("sink.test.", "MX", "10 mx.sink.test."),
        rec("mx.sink.test.", "A", "127.0.0.1"),
        rec("nullmx.test.", "MX", "0 ."),
        rec("servfail.test.", "A", "127.0.0.1"),
        rec("silent.test.", "A", "127.0.0.1"),
    ],
    "behaviours": [
        {"name": "servfail.test.", "type": "MX", "action": "servfail"},
        {"name": "silent.test.", "type": "*", "action": "drop"},
    ],
}


class DeliverE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="aimx-deliver-")
        cls.dns = aimxtest.DnsFaultPeer(ZONE)
        cls.dns.__enter__()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dns.__exit__(None, None, None)
        finally:
            shutil.rmtree(cls.tmp)

    def conf(self, port, ipv6=False, extra="", transport=""):
        path = os.path.join(self.tmp, f"aimx-{port}-{ipv6}-{abs(hash(extra + transport))}.conf")
        with open(path, "w") as f:
            f.write('domain = "sender.test";\n'
                    f'enable_ipv6 = {"true" if ipv6 else "false"};\n'
                    'allow_private_targets = true;\n'
                    f'spool_dir = "{self.tmp}";\n'
                    f'plugin_dirs = [ "{PLUGINS}" ];\n'
                    f'resolver: {{ plugin = "resolver-cares"; servers = '
                    f'[ "{self.dns.server}" ]; timeout = "300ms"; tries = 1; }};\n'
                    'policy: { plugin = "policy-ipfamily"; };\n'
                    f'transport: {{ plugin = "transport-smtp"; port = {port}; '
                    'timeouts: { connect = "2s"; greeting = "5s"; }; '
                    + transport + '};\n' + extra)
        return path

    def send(self, conf, *rcpts, args=(), expect=None, body="hello\n"):
        argv = [AIMX, "--config", conf, "send", "--json",
                "--from", "agent@sender.test", "--subject", "t"]
        for r in rcpts:
            argv += ["--to", r]
        argv += list(args) + ["--body", body]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        try:
            obj = json.loads(p.stdout)
        except ValueError:
            self.fail(f"no JSON: rc={p.returncode}\n{p.stdout}\n{p.stderr}")
        if expect is not None:
            self.assertEqual(p.returncode, expect, p.stdout + p.stderr)
        self.assertEqual(obj["schema"], 1)
        return obj

    # -- IPv4 by default, IPv6 by opt-in --------------------------------

    def test_families(self):
        with aimxtest.SmtpFaultPeer({}, listen=("127.0.0.1", "::1")) as smtp:
            obj = self.send(self.conf(smtp.port), "u@dual.test", expect=0)
            (r,) = obj["recipients"]
            self.assertEqual((r["status"], r["ip"], r["family"]),
                             ("delivered", "127.0.0.1", "ipv4"))
            obj = self.send(self.conf(smtp.port, ipv6=True), "u@dual.test",
                            expect=0)
            (r,) = obj["recipients"]
            self.assertEqual((r["ip"], r["family"]), ("::1", "ipv6"))
            sessions = smtp.wait_sessions(2)
            # The default send never connected over IPv6.
            self.assertTrue(sessions[0]["local"].startswith("127.0.0.1:"))
            self.assertTrue(sessions[1]["local"].startswith("[::1]:"))
        # IPv6 server down: the same send falls back to IPv4.
        with aimxtest.SmtpFaultPeer({}, listen=("127.0.0.1",)) as smtp:
            obj = self.send(self.conf(smtp.port, ipv6=True), "u@dual.test",
                            expect=0)
            (r,) = obj["recipients"]
            self.assertEqual(r["family"], "ipv4")
            self.assertEqual([(a["ip"], a["result"]) for a in r["attempts"]],
                             [("::1", "refused"), ("127.0.0.1", "delivered")])

    def test_aaaa_only_mx(self):
        with aimxtest.SmtpFaultPeer({}, listen=("127.0.0.1", "::1")) as smtp:
            obj = self.send(self.conf(smtp.port), "u@v6first.test", expect=0)
            (r,) = obj["recipients"]
            self.assertEqual(r["mx"], "v4.v6first.test")
            skip = r["attempts"][0]
            self.assertEqual((skip["mx"], skip["result"]),
                             ("v6.v6first.test", "skipped"))
            self.assertIn("no_ipv4", skip["reason"])
            obj = self.send(self.conf(smtp.port), "u@v6only.test", expect=69)
            (r,) = obj["recipients"]
            self.assertEqual(r["status"], "bounced")
            self.assertIn("enable_ipv6", r["reply"])
            self.assertEqual(len(smtp.sessions()), 1)

    # -- addresses and MX hosts ----------------------------------------

    def test_every_address_of_an_mx_host(self):
        with aimxtest.SmtpFaultPeer({}, listen=("127.0.0.1",)) as smtp:
            obj = self.send(self.conf(smtp.port), "u@three.test", expect=0)
            (r,) = obj["recipients"]
            self.assertEqual(r["ip"], "127.0.0.1")
            self.assertEqual([a["result"] for a in r["attempts"]],
                             ["refused", "refused", "delivered"])
        # A 421 greeting on one address: the same host's next address.
        script = {"sessions": [{"greeting": "421 4.3.2 busy"}]}
        with aimxtest.SmtpFaultPeer(script, listen=("127.0.0.3", "127.0.0.1")) as smtp:
            obj = self.send(self.conf(smtp.port), "u@three.test", expect=0)
            (r,) = obj["recipients"]
            self.assertEqual([(a["ip"], a["result"], a["code"]) for a in r["attempts"]],
                             [("127.0.0.2", "refused", 0),
                              ("127.0.0.3", "temp_reply", 421),
                              ("127.0.0.1", "delivered", 250)])

    def test_dns_outcomes(self):
        with aimxtest.SmtpFaultPeer({}) as smtp:
            conf = self.conf(smtp.port)
            obj = self.send(conf, "u@nullmx.test", expect=69)
            self.assertIn("null MX", obj["recipients"][0]["reply"])
            self.send(conf, "u@nowhere.test", expect=69)
            obj = self.send(conf, "u@servfail.test", expect=75)
            self.assertEqual(obj["recipients"][0]["attempts"][0]["result"], "dns")
            self.send(conf, "u@silent.test", expect=75)
            # Not one connection for any of them.
            self.assertEqual(smtp.stats()["sessions"], 0)

    def test_three_domains_at_once(self):
        # Greetings wait 300 ms, so sessions opened together overlap.
        script = {"delays_ms": {"greeting": 300}}
        with aimxtest.SmtpFaultPeer(script) as smtp:
            obj = self.send(self.conf(smtp.port), "a@d1.test", "b@d2.test",
                            "c@d3.test", expect=0)
            self.assertEqual([r["status"] for r in obj["recipients"]],
                             ["delivered"] * 3)
            smtp.wait_sessions(3)
            self.assertEqual(smtp.stats()["max_concurrent"], 3)

    def test_domains_sharing_their_mx_share_a_session(self):
        # Hosted mail: three domains, one MX host.  One connection, one
        # transaction with the three recipients, not three of each.
        with aimxtest.SmtpFaultPeer({}) as smtp:
            obj = self.send(self.conf(smtp.port), "a@h1.test", "b@h2.test",
                            "c@h3.test", expect=0)
            self.assertEqual([r["status"] for r in obj["recipients"]],
                             ["delivered"] * 3)
            sessions = smtp.wait_sessions(1)
            self.assertEqual(smtp.stats()["sessions"], 1)
            rcpts = [c for c in json.dumps(sessions[0]).split('"')
                     if c.upper().startswith("RCPT TO:")]
            self.assertEqual(sorted(rcpts), ["RCPT TO:<a@h1.test>",
                                             "RCPT TO:<b@h2.test>",
                                             "RCPT TO:<c@h3.test>"])

    def test_replies(self):
        # 5xx to one RCPT: that one bounced, the other delivered, and the
        # backup MX (127.0.0.2) never contacted.
        script = {"rcpt": {"by_address": {"bad@two.test": "550 5.1.1 no such user"}}}
        with aimxtest.SmtpFaultPeer(script, listen=("127.0.0.1", "127.0.0.2")) as smtp:
            obj = self.send(self.conf(smtp.port), "good@two.test",
                            "bad@two.test", expect=69)
            good, bad = obj["recipients"]
            self.assertEqual(good["status"], "delivered")
            self.assertEqual((bad["status"], bad["code"], bad["enhanced"]),
                             ("bounced", 550, "5.1.1"))
            self.assertEqual(obj["status"], "bounced")
            self.assertEqual([s["local"].split(":")[0] for s in smtp.wait_sessions(1)],
                             ["127.0.0.1"])
        # 4xx greeting on every address of MX1: delivered via MX2.
        script = {"sessions": [{"greeting": "421 4.3.2 busy"}]}
        with aimxtest.SmtpFaultPeer(script, listen=("127.0.0.1", "127.0.0.2")) as smtp:
            obj = self.send(self.conf(smtp.port), "u@two.test", expect=0)
            self.assertEqual(obj["recipients"][0]["mx"], "mx2.two.test")
        # Lost after the final dot: deferred, flagged, not retried.
        script = {"drop": "after_dot"}
        with aimxtest.SmtpFaultPeer(script, listen=("127.0.0.1", "127.0.0.2")) as smtp:
            obj = self.send(self.conf(smtp.port), "u@two.test", expect=75)
            (r,) = obj["recipients"]
            self.assertEqual(r["status"], "deferred")
            self.assertTrue(r["possible_duplicate"])
            self.assertEqual(len(smtp.wait_sessions(1)), 1)

    # -- deadlines and signals -----------------------------------------

    def test_deadline(self):
        script = {"delays_ms": {"greeting": 20000}}
        with aimxtest.SmtpFaultPeer(script) as smtp:
            # The greeting timeout is 5 s; the deadline of 1 s ends first.
            obj = self.send(self.conf(smtp.port), "u@sink.test",
                            args=("--deadline", "1s"), expect=75)
            (r,) = obj["recipients"]
            self.assertEqual((r["status"], r["phase"]), ("deferred", "greeting"))

    def test_sigterm_mid_send(self):
        script = {"delays_ms": {"greeting": 60000}}
        with aimxtest.SmtpFaultPeer(script) as smtp:
            argv = [AIMX, "--config", self.conf(smtp.port), "send", "--json",
                    "--from", "agent@sender.test", "--to", "u@sink.test",
                    "--body", "x"]
            p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            try:
                smtp.wait_sessions(1, timeout=20, ended=False)
                p.send_signal(signal.SIGTERM)
                out, err = p.communicate(timeout=30)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertEqual(p.returncode, 75, err)
            (r,) = json.loads(out)["recipients"]
            self.assertEqual(r["status"], "deferred")
            self.assertIn("interrupted", r["reply"] + json.dumps(r["attempts"]))

    # -- the message itself --------------------------------------------

    def test_dkim_verifies_at_the_receiver(self):
        import dkim  # Debian's python3-dkim
        key = os.path.join(self.tmp, "dkim.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", key,
                        "-pkeyopt", "rsa_keygen_bits:2048"], check=True,
                       capture_output=True)
        os.chmod(key, 0o600)
        pub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout",
                              "-outform", "DER"], check=True,
                             capture_output=True).stdout
        import base64
        record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)
        with aimxtest.AiosmtpdSink() as sink:
            conf = self.conf(sink.port, extra=f'dkim: {{ selector = "s1"; key_file = "{key}"; }};\n')
            self.send(conf, "u@sink.test", expect=0,
                      body="Hello.  \n\nTrailing space and blank lines.\n\n\n")
            ((meta, data),) = sink.wait_messages(1)
            self.assertEqual(meta["rcpt_tos"], ["u@sink.test"])

            def dnsfunc(name, timeout=5):
                self.assertEqual(name, b"s1._domainkey.sender.test.")
                return record
            self.assertTrue(dkim.verify(data, dnsfunc=dnsfunc))

    def test_large_raw_message_arrives_intact(self):
        path = os.path.join(self.tmp, "big.eml")
        with open(path, "wb") as f:
            f.write(b"From: agent@sender.test\nTo: u@sink.test\nSubject: big\n\n")
            line = b"." + b"0123456789abcdef" * 4 + b"\n"
            for _ in range((50 * 1024 * 1024) // len(line)):
                f.write(line)
        with aimxtest.AiosmtpdSink() as sink:
            argv = ["/usr/bin/time", "-f", "%M", AIMX, "--config",
                    self.conf(sink.port), "send", "--json", "--raw", path,
                    "--to", "u@sink.test"]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            ((meta, data),) = sink.wait_messages(1, timeout=60)
            with open(path, "rb") as f:
                canonical = f.read().replace(b"\n", b"\r\n")
            self.assertEqual(len(data), len(canonical))
            self.assertEqual(data, canonical)
            peak_kb = int(p.stderr.strip().splitlines()[-1])
            if not SANITIZED:
                # Bounded: far below the 50 MB that went through.
                self.assertLess(peak_kb, 16 * 1024, f"peak RSS {peak_kb} kB")


if __name__ == "__main__":
    unittest.main(verbosity=2)
