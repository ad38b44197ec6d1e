#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx setup [--verify] end to end: the real resolver-cares, policy-ipfamily
(and the SDK's example policy-ipv6only) and transport-smtp plugins against
the DNS fault peer on loopback, started and stopped by this test.

The server is 127.0.0.25 (IPv4) and ::1 (IPv6), given with --ipv4/--ipv6
(or the transport's bind_ipv4/bind_ipv6); its EHLO name is mail.aimx.test.
Test zone (DNS fault peer; every address on loopback):

  mail.aimx.test   A 127.0.0.25, AAAA ::1        (the forward of the PTRs)
  PTR  127.0.0.25 -> mail.aimx.test   PTR ::1 -> mail.aimx.test
  PTR  127.0.0.31 -> stray.aimx.test  stray.aimx.test A 127.0.0.99
  (127.0.0.30 has no PTR)

  Every "full" domain D below has: A 127.0.0.25, AAAA ::1, MX 10 D.,
  TXT "v=spf1 ip4:127.0.0.25 ip6:::1 -all", s1._domainkey.D TXT <the key
  made by aimx dkim-keygen>, _dmarc.D TXT "v=DMARC1; p=reject; ...".
  good.test           full
  v4only.test         full but no AAAA and SPF without ip6:
  noa/nomx/nospf/nodkim/nodmarc.test       full minus that record
  wronga.test         A 127.0.0.99               wrongmx.test  MX 10 mx.elsewhere.test.
  nullmx.test         MX 0 .                     wrongdkim.test another key
  wrongdmarc.test     p=bogus                    nonedmarc.test p=none
  twodkim.test        two key records
  spf*.test           SPF variants (look-alike ip4:127.0.0.250, CIDR /24,
                      include that passes, -ip4:, ~all, an include loop,
                      redirect, void lookups, SERVFAIL)
  merge.test          "v=spf1 include:_spf.inc.test mx ~all"
  dmarcfail.test      _dmarc TXT answers SERVFAIL
  noptr.test          full for 127.0.0.30 (no PTR)
  badptr.test         full for 127.0.0.31 (PTR not forward-confirmed)
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
EXAMPLES = os.environ.get("AIMX_EXAMPLE_PLUGIN_DIR", "")
V4, V6 = "127.0.0.25", "::1"
EHLO = "mail.aimx.test"


def rec(name, rtype, data):
    return {"name": name if name.endswith(".") else name + ".",
            "type": rtype, "ttl": 60, "data": data}


def rev4(addr):
    return ".".join(reversed(addr.split("."))) + ".in-addr.arpa."


REV6_LOOPBACK = "1." + "0." * 31 + "ip6.arpa."
DMARC = "v=DMARC1; p=reject; rua=mailto:postmaster@{d}"


def full(domain, key, addr=V4, drop=(), spf=None, a=None, aaaa=V6, mx=None,
         dkim=None, dmarc=None):
    """A complete, correct zone for domain, with changes."""
    out = []
    if "A" not in drop:
        out.append(rec(domain, "A", a or addr))
    if "AAAA" not in drop and aaaa:
        out.append(rec(domain, "AAAA", aaaa))
    if "MX" not in drop:
        for m in (mx or [f"10 {domain}."]):
            out.append(rec(domain, "MX", m))
    if "SPF" not in drop:
        out.append(rec(domain, "TXT",
                       spf or f"v=spf1 ip4:{addr} ip6:::1 -all"))
    if "DKIM" not in drop:
        for k in (dkim or [key]):
            out.append(rec(f"s1._domainkey.{domain}", "TXT", k))
    if "DMARC" not in drop:
        out.append(rec(f"_dmarc.{domain}", "TXT",
                       dmarc or DMARC.format(d=domain)))
    return out


class SetupE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="aimx-setup-")
        cls.key = cls.keygen("keys")
        cls.other_key = cls.keygen("keys2")
        k = cls.key
        records = [
            rec(EHLO, "A", V4), rec(EHLO, "AAAA", V6),
            rec(rev4(V4), "PTR", EHLO + "."),
            rec(REV6_LOOPBACK, "PTR", EHLO + "."),
            rec(rev4("127.0.0.31"), "PTR", "stray.aimx.test."),
            rec("stray.aimx.test", "A", "127.0.0.99"),
            rec("_spf.inc.test", "TXT", f"v=spf1 ip4:{V4} -all"),
        ]
        records += full("good.test", k)
        records += full("v4only.test", k, aaaa=None,
                        spf=f"v=spf1 ip4:{V4} -all")
        for what in ("A", "MX", "SPF", "DKIM", "DMARC"):
            records += full(f"no{what.lower()}.test", k, drop=(what,))
        records += full("wronga.test", k, a="127.0.0.99")
        records += full("wrongmx.test", k, mx=["10 mx.elsewhere.test."])
        records += full("nullmx.test", k, mx=["0 ."])
        records += full("wrongdkim.test", k, dkim=[cls.other_key])
        records += full("twodkim.test", k, dkim=[k, cls.other_key])
        records += full("wrongdmarc.test", k, dmarc="v=DMARC1; p=bogus")
        records += full("nonedmarc.test", k, dmarc="v=DMARC1; p=none")
        spf = {
            "spflookalike": "v=spf1 ip4:127.0.0.250 -all",
            "spfcidr": "v=spf1 ip4:127.0.0.0/24 -all",
            "spfinc": "v=spf1 include:_spf.inc.test ~all",
            "spfminus": f"v=spf1 -ip4:{V4} +all",
            "spfsoft": "v=spf1 ~all",
            "spfloop": "v=spf1 include:loop.spfloop.test -all",
            "spfredir": "v=spf1 redirect=_spf.inc.test",
            "spfvoid": f"v=spf1 a:nx1.test a:nx2.test a:nx3.test ip4:{V4} -all",
            "spfservfail": f"v=spf1 ip4:{V4} -all",
            "merge": "v=spf1 include:_spf.inc.test mx ~all",
        }
        for name, text in spf.items():
            records += full(f"{name}.test", k, aaaa=None, spf=text)
        records.append(rec("loop.spfloop.test", "TXT",
                           "v=spf1 include:spfloop.test -all"))
        records += full("dmarcfail.test", k)
        records += full("noptr.test", k, addr="127.0.0.30")
        records += full("badptr.test", k, addr="127.0.0.31")
        zone = {"records": records, "behaviours": [
            {"name": "spfservfail.test.", "type": "TXT", "action": "servfail"},
            {"name": "_dmarc.dmarcfail.test.", "type": "TXT",
             "action": "servfail"},
        ]}
        cls.dns = aimxtest.DnsFaultPeer(zone)
        cls.dns.__enter__()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dns.__exit__(None, None, None)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def keygen(cls, name):
        d = os.path.join(cls.tmp, name)
        os.makedirs(d)
        conf = os.path.join(d, "aimx.conf")
        with open(conf, "w") as f:
            f.write(f'domain = "good.test";\ndkim: {{ selector = "s1"; '
                    f'key_file = "{d}/private.key"; '
                    f'public_key_file = "{d}/public.key"; }};\n')
        p = subprocess.run([AIMX, "--config", conf, "--json", "dkim-keygen"],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        return "".join(aimxtest.txt_strings(json.loads(p.stdout)["record"]
                                            ["value"]))

    def conf(self, domain="good.test", ipv6=False, policy="policy-ipfamily",
             transport=""):
        dirs = f'"{PLUGINS}"' + (f', "{EXAMPLES}"' if EXAMPLES else "")
        keys = os.path.join(self.tmp, "keys")
        text = (f'domain = "{domain}";\n'
                f'enable_ipv6 = {"true" if ipv6 else "false"};\n'
                f'plugin_dirs = [ {dirs} ];\n'
                f'resolver: {{ plugin = "resolver-cares"; servers = '
                f'[ "{self.dns.server}" ]; timeout = "500ms"; tries = 1; }};\n'
                f'policy: {{ plugin = "{policy}"; }};\n'
                f'transport: {{ plugin = "transport-smtp"; '
                f'helo_name = "{EHLO}"; {transport} }};\n'
                f'dkim: {{ selector = "s1"; key_file = "{keys}/private.key"; '
                f'public_key_file = "{keys}/public.key"; }};\n')
        path = os.path.join(self.tmp, f"c{abs(hash(text))}.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def setup(self, domain, *args, ipv6=False, addr=V4, expect=None,
              conf=None, json_out=True, **kw):
        argv = [AIMX, "--config", conf or self.conf(domain, ipv6, **kw)]
        if json_out:
            argv.append("--json")
        argv += ["setup", domain]
        if addr:
            argv += ["--ipv4", addr]
        if ipv6:
            argv += ["--ipv6", V6]
        argv += list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if expect is not None:
            self.assertEqual(p.returncode, expect,
                             f"{argv}\n{p.stdout}\n{p.stderr}")
        if not json_out:
            return p
        try:
            obj = json.loads(p.stdout)
        except ValueError:
            self.fail(f"no JSON: rc={p.returncode}\n{p.stdout}\n{p.stderr}")
        obj["_rc"] = p.returncode
        obj["_stderr"] = p.stderr
        return obj

    def verify(self, domain, *args, expect=None, **kw):
        return self.setup(domain, "--verify", *args, expect=expect, **kw)

    @staticmethod
    def checks(obj):
        return {c["record"]: c for c in obj["checks"]}

    @staticmethod
    def results(obj):
        return {c["record"]: c["result"] for c in obj["checks"]}

    def assert_only(self, obj, bad):
        """Every check passes except those in bad (record -> result)."""
        for rec_name, res in self.results(obj).items():
            self.assertEqual(res, bad.get(rec_name, "pass"),
                             f"{rec_name}: {self.checks(obj)[rec_name]}")
        for rec_name in bad:
            self.assertIn(rec_name, self.results(obj))

    # -- the records -----------------------------------------------------

    def test_json_shape(self):
        obj = self.verify("good.test", expect=0)
        self.assertEqual(set(obj) - {"_rc", "_stderr"},
                         {"schema", "domain", "records", "checks"})
        self.assertEqual(obj["schema"], 1)
        self.assertEqual(obj["domain"], "good.test")
        for r in obj["records"]:
            self.assertEqual(set(r), {"type", "name", "value"})
        for c in obj["checks"]:
            self.assertEqual(set(c), {"record", "result", "found", "detail"})
            self.assertIn(c["result"], ("pass", "missing", "wrong",
                                        "lookup_failed", "warning"))

    def test_records_ipv4_only(self):
        obj = self.setup("good.test", expect=0)
        recs = [(r["type"], r["name"]) for r in obj["records"]]
        self.assertEqual(recs, [("A", "good.test"), ("MX", "good.test"),
                                ("TXT", "good.test"),
                                ("TXT", "s1._domainkey.good.test"),
                                ("TXT", "_dmarc.good.test")])
        values = {r["name"]: r["value"] for r in obj["records"]
                  if r["type"] != "TXT"}
        self.assertEqual(obj["records"][0]["value"], V4)
        self.assertEqual(obj["records"][1]["value"], "10 good.test.")
        # No AAAA and nothing added for IPv6; the published record's own
        # ip6: term is kept as it is.
        self.assertNotIn("AAAA", [r["type"] for r in obj["records"]])
        self.assertEqual(values, {"good.test": "10 good.test."})
        txt = {r["name"]: aimxtest.txt_strings(r["value"])
               for r in obj["records"] if r["type"] == "TXT"}
        # The published SPF record already lists 127.0.0.25 and ::1: kept.
        self.assertEqual(txt["good.test"],
                         [f"v=spf1 ip4:{V4} ip6:::1 -all"])
        self.assertEqual(txt["_dmarc.good.test"],
                         ["v=DMARC1; p=reject; "
                          "rua=mailto:postmaster@good.test"])
        dkim = txt["s1._domainkey.good.test"]
        self.assertEqual("".join(dkim), self.key)
        for s in dkim:
            self.assertLessEqual(len(s.encode()), 255)
        self.assertEqual(obj["checks"], [])

    def test_new_spf_record_when_none_published(self):
        obj = self.setup("nospf.test", ipv6=True, expect=0)
        spf = [r for r in obj["records"] if r["name"] == "nospf.test"
               and r["type"] == "TXT"][0]
        self.assertEqual(aimxtest.txt_strings(spf["value"]),
                         [f"v=spf1 ip4:{V4} ip6:::1 -all"])
        obj = self.setup("nospf.test", expect=0)
        spf = [r for r in obj["records"] if r["name"] == "nospf.test"
               and r["type"] == "TXT"][0]
        self.assertEqual(aimxtest.txt_strings(spf["value"]),
                         [f"v=spf1 ip4:{V4} -all"])

    def test_spf_merged_with_the_existing_record(self):
        obj = self.verify("merge.test", expect=0)
        spf = [r for r in obj["records"] if r["name"] == "merge.test"
               and r["type"] == "TXT"][0]
        self.assertEqual(aimxtest.txt_strings(spf["value"]),
                         [f"v=spf1 ip4:{V4} include:_spf.inc.test mx ~all"])
        self.assertIn("keeps its terms", obj["_stderr"])
        # The published one passes already, through the include.
        self.assertEqual(self.results(obj)[f"SPF {V4}"], "pass")

    def test_outbound_only(self):
        obj = self.verify("nomx.test", "--outbound-only", expect=0)
        self.assertEqual([r["type"] for r in obj["records"]],
                         ["TXT", "TXT", "TXT"])
        self.assertFalse({"A", "AAAA", "MX"} & set(self.results(obj)))

    def test_domain_other_than_configured(self):
        conf = self.conf("sender.test")
        p = self.setup("good.test", conf=conf, json_out=False, expect=0)
        self.assertIn("good.test is not the configured domain (sender.test)",
                      p.stdout)
        self.assertIn("d=sender.test", p.stdout)

    def test_addresses_from_the_transport(self):
        conf = self.conf("good.test", ipv6=True,
                         transport=f'bind_ipv4 = "{V4}"; bind_ipv6 = "{V6}";')
        p = self.setup("good.test", conf=conf, addr=None, json_out=False,
                       expect=0)
        self.assertIn(f"IPv4       {V4} (the transport's bind_ipv4)",
                      p.stdout)
        self.assertIn(f"IPv6       {V6} (the transport's bind_ipv6)",
                      p.stdout)

    def test_usage(self):
        p = self.setup("good.test", "--ipv6", V6, json_out=False, expect=64)
        self.assertIn("does not send over IPv6", p.stderr)
        p = self.setup("good.test", addr="::1", json_out=False, expect=64)
        self.assertIn("not an IPv4 address", p.stderr)
        p = self.setup("user@good.test", json_out=False, expect=65)
        p = self.setup("bad_domain", json_out=False, expect=65)
        p = subprocess.run([AIMX, "setup", "--help"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--outbound-only", p.stdout)

    # -- --verify: everything right, then each record missing or wrong --

    def test_all_correct_ipv4(self):
        obj = self.verify("good.test", expect=0)
        self.assertEqual(list(self.results(obj)),
                         ["A", "MX", f"SPF {V4}", "DKIM", "DMARC",
                          f"PTR {V4}", f"EHLO {V4}"])
        self.assert_only(obj, {})
        # IPv6 is off: the published AAAA is neither checked nor shown.
        self.assertNotIn("AAAA", json.dumps(obj))
        self.assertFalse([c for c in obj["checks"] if "::1" in c["record"]])

    def test_all_correct_ipv6(self):
        obj = self.verify("good.test", ipv6=True, expect=0)
        self.assertEqual(list(self.results(obj)),
                         ["A", "AAAA", "MX", f"SPF {V4}", f"SPF {V6}",
                          "DKIM", "DMARC", f"PTR {V4}", f"EHLO {V4}",
                          f"PTR {V6}", f"EHLO {V6}"])
        self.assert_only(obj, {})
        self.assertEqual([r["type"] for r in obj["records"]][:3],
                         ["A", "AAAA", "MX"])

    def test_ipv6_on_and_off_change_table_and_checks(self):
        off = self.setup("v4only.test", "--verify", json_out=False, expect=0)
        on = self.setup("v4only.test", "--verify", ipv6=True, json_out=False,
                        expect=1)
        self.assertNotRegex(off.stdout, r"\n  AAAA +v4only")
        self.assertRegex(on.stdout, r"\n  AAAA +v4only\.test\. +::1\n")
        self.assertIn(f'"v=spf1 ip4:{V4} -all"', off.stdout)
        self.assertNotIn("ip6:::1", off.stdout)
        self.assertIn(f'"v=spf1 ip6:::1 ip4:{V4} -all"', on.stdout)
        self.assertRegex(on.stdout, r"MISSING +AAAA ")
        self.assertRegex(on.stdout, rf"WRONG +SPF {V6} ")
        self.assertNotIn(V6, off.stdout.split("Checks")[1])
        obj = self.verify("v4only.test", ipv6=True, expect=1)
        self.assert_only(obj, {"AAAA": "missing", f"SPF {V6}": "wrong"})
        self.assertIn("fail", self.checks(obj)[f"SPF {V6}"]["detail"])

    def test_each_record_missing(self):
        for what, label in (("a", "A"), ("mx", "MX"), ("spf", f"SPF {V4}"),
                            ("dkim", "DKIM"), ("dmarc", "DMARC")):
            with self.subTest(what):
                obj = self.verify(f"no{what}.test", expect=1)
                self.assert_only(obj, {label: "missing"})
                self.assertIsNone(self.checks(obj)[label]["found"])

    def test_each_record_wrong(self):
        cases = (("wronga.test", "A", "127.0.0.99"),
                 ("wrongmx.test", "MX", "10 mx.elsewhere.test."),
                 ("nullmx.test", "MX", "0 ."),
                 ("spflookalike.test", f"SPF {V4}",
                  "v=spf1 ip4:127.0.0.250 -all"),
                 ("wrongdkim.test", "DKIM", self.other_key),
                 ("twodkim.test", "DKIM", None),
                 ("wrongdmarc.test", "DMARC", "v=DMARC1; p=bogus"))
        for domain, label, found in cases:
            with self.subTest(domain):
                obj = self.verify(domain, expect=1)
                self.assert_only(obj, {label: "wrong"})
                if found is not None:
                    self.assertEqual(self.checks(obj)[label]["found"], found)

    def test_dmarc_p_none_is_a_warning(self):
        obj = self.verify("nonedmarc.test", expect=0)
        self.assert_only(obj, {"DMARC": "warning"})
        self.assertIn("p=none", self.checks(obj)["DMARC"]["detail"])

    def test_lookup_failed_is_75(self):
        obj = self.verify("dmarcfail.test", expect=75)
        self.assert_only(obj, {"DMARC": "lookup_failed"})
        obj = self.verify("spfservfail.test", expect=75)
        self.assert_only(obj, {f"SPF {V4}": "lookup_failed"})

    # -- SPF evaluated as a receiver does --------------------------------

    def test_spf_cases(self):
        cases = {
            "spflookalike.test": ("wrong", "fail"),
            "spfcidr.test": ("pass", "ip4:127.0.0.0/24"),
            "spfinc.test": ("pass", "include:_spf.inc.test"),
            "spfminus.test": ("wrong", "fail"),
            "spfsoft.test": ("wrong", "softfail"),
            "spfloop.test": ("wrong", "more than 10"),
            "spfredir.test": ("pass", "redirect=_spf.inc.test"),
            "spfvoid.test": ("wrong", "void"),
        }
        for domain, (result, words) in cases.items():
            with self.subTest(domain):
                obj = self.verify(domain, expect=0 if result == "pass" else 1)
                c = self.checks(obj)[f"SPF {V4}"]
                self.assertEqual(c["result"], result, c)
                self.assertIn(words, c["detail"])
                self.assert_only(obj, {} if result == "pass"
                                 else {f"SPF {V4}": "wrong"})
        obj = self.verify("spfloop.test", expect=1)
        self.assertIn("permerror", self.checks(obj)[f"SPF {V4}"]["detail"])

    # -- reverse DNS and the EHLO name: warnings -------------------------

    def test_ptr_present_absent_not_confirmed(self):
        obj = self.verify("good.test", expect=0)
        c = self.checks(obj)
        self.assertEqual(c[f"PTR {V4}"]["found"], EHLO)
        self.assertIn("forward-confirmed", c[f"PTR {V4}"]["detail"])

        obj = self.verify("noptr.test", addr="127.0.0.30", expect=0)
        self.assert_only(obj, {"PTR 127.0.0.30": "warning"})
        self.assertIn("no PTR", self.checks(obj)["PTR 127.0.0.30"]["detail"])
        self.assertNotIn("EHLO 127.0.0.30", self.results(obj))

        obj = self.verify("badptr.test", addr="127.0.0.31", expect=0)
        self.assert_only(obj, {"PTR 127.0.0.31": "warning",
                               "EHLO 127.0.0.31": "warning"})
        c = self.checks(obj)
        self.assertEqual(c["PTR 127.0.0.31"]["found"], "stray.aimx.test")
        self.assertIn("forward-confirmed", c["PTR 127.0.0.31"]["detail"])

    def test_ehlo_mismatch_is_a_warning(self):
        conf = self.conf("good.test").replace(".conf", "-ehlo.conf")
        with open(self.conf("good.test")) as f:
            text = f.read().replace(f'helo_name = "{EHLO}"',
                                    'helo_name = "other.aimx.test"')
        with open(conf, "w") as f:
            f.write(text)
        obj = self.setup("good.test", "--verify", conf=conf, expect=0)
        self.assert_only(obj, {f"EHLO {V4}": "warning"})
        self.assertIn('helo_name = "mail.aimx.test"',
                      self.checks(obj)[f"EHLO {V4}"]["detail"])

    # -- the policy decides the families ---------------------------------

    def test_swapped_example_policy(self):
        if not EXAMPLES:
            self.skipTest("AIMX_EXAMPLE_PLUGIN_DIR not set")
        conf = self.conf("good.test", policy="policy-ipv6only")
        obj = self.setup("good.test", "--verify", "--ipv6", V6, addr=None,
                         conf=conf, expect=0)
        self.assertEqual([r["type"] for r in obj["records"]],
                         ["AAAA", "MX", "TXT", "TXT", "TXT"])
        self.assertEqual(list(self.results(obj)),
                         ["AAAA", "MX", f"SPF {V6}", "DKIM", "DMARC",
                          f"PTR {V6}", f"EHLO {V6}"])
        self.assert_only(obj, {})
        # IPv4 is the one left out now; asking for it is a usage error.
        p = self.setup("good.test", conf=conf, json_out=False, expect=64)
        self.assertIn("does not send over IPv4", p.stderr)
        # A domain whose SPF lacks ip6: fails with this policy only.
        conf = self.conf("v4only.test", policy="policy-ipv6only")
        obj = self.setup("v4only.test", "--verify", "--ipv6", V6, addr=None,
                         conf=conf, expect=1)
        self.assert_only(obj, {"AAAA": "missing", f"SPF {V6}": "wrong"})
        spf = [r for r in obj["records"] if r["type"] == "TXT"][0]
        self.assertEqual(aimxtest.txt_strings(spf["value"]),
                         [f"v=spf1 ip6:::1 ip4:{V4} -all"])

    def test_human_table(self):
        p = self.setup("good.test", "--verify", ipv6=True, json_out=False,
                       expect=0)
        out = p.stdout
        self.assertIn("outbound mail uses IPv4 and IPv6", out)
        self.assertRegex(out, rf"\n  A +good\.test\. +{V4}\n")
        self.assertRegex(out, r"\n  AAAA +good\.test\. +::1\n")
        self.assertRegex(out, r"\n  MX +good\.test\. +10 good\.test\.\n")
        self.assertRegex(out, r"PASS +DKIM ")
        self.assertIn("Every record is in place.", out)
        p = self.setup("nodkim.test", "--verify", json_out=False, expect=1)
        self.assertRegex(p.stdout, r"MISSING +DKIM ")
        p = self.setup("dmarcfail.test", "--verify", json_out=False,
                       expect=75)
        self.assertRegex(p.stdout, r"LOOKUP FAILED +DMARC ")


if __name__ == "__main__":
    unittest.main(verbosity=2)
