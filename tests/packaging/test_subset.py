#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx from a subset of its Debian packages, unpacked into a scratch root.

    test_subset.py --root ROOT --plugin-dir /usr/lib/<triplet>/aimx/plugins
                   --version VERSION

ROOT holds aimx, aimx-plugin-policy-ipfamily and aimx-plugin-resolver-cares
unpacked with dpkg -x, and not aimx-plugin-transport-smtp.  A configuration
file points plugin_dirs into ROOT.  Then, against dnsmasq and the DNS fault
peer on loopback (tests/lib/aimxtest.py; allow_private_targets = true since
every address is a loopback one):

  - aimx --version is the packaged version;
  - aimx plugins lists the two plugins, both ok, and no transport;
  - aimx route works: a deliverable domain (dnsmasq), a null MX (fault
    peer, exit 69) and a SERVFAIL (fault peer, exit 75);
  - aimx send fails before sending, with exit 78 and the message
    "transport plugin 'transport-smtp' not found", as text and as JSON:
    no crash, no signal;
  - aimx config check reports the same missing transport.
"""

import argparse
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

ARGS = None

DNSMASQ_RECORDS = [
    ("v4.test", "MX", "10 mx.v4.test"),
    ("mx.v4.test", "A", "127.0.0.2"),
]


def rec(name, rtype, data):
    return {"name": name, "type": rtype, "ttl": 60, "data": data}


PEER_ZONE = {
    "records": [
        rec("nullmx.test.", "MX", "0 ."),
        rec("servfail.test.", "A", "127.0.0.13"),
    ],
    "behaviours": [
        {"name": "servfail.test.", "type": "MX", "action": "servfail"},
    ],
}

NO_TRANSPORT = "transport plugin 'transport-smtp' not found"


class Subset(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        aimxtest.ensure_debian_packages("dnsmasq-base")
        cls.root = ARGS.root
        cls.aimx = os.path.join(cls.root, "usr", "bin", "aimx")
        cls.plugins = os.path.join(cls.root, ARGS.plugin_dir.lstrip("/"))
        cls.tmp = tempfile.mkdtemp(prefix="aimx-subset-")
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

    def conf(self, server):
        path = os.path.join(self.tmp, f"aimx-{server.replace(':', '_')}.conf")
        with open(path, "w") as f:
            f.write('domain = "sender.test";\n'
                    'allow_private_targets = true;\n'
                    f'plugin_dirs = [ "{self.plugins}" ];\n'
                    'resolver: { plugin = "resolver-cares"; '
                    f'servers = [ "{server}" ]; timeout = "500ms"; tries = 1; }};\n'
                    'policy: { plugin = "policy-ipfamily"; };\n')
        return path

    def run_aimx(self, *args, server=None, stdin=None):
        # Only the scratch root's files: no developer plugin path, no other
        # configuration.
        env = {k: v for k, v in os.environ.items()
               if k not in ("AIMX_CONFIG", "AIMX_PLUGIN_PATH")}
        cmd = [self.aimx, "--config", self.conf(server or self.dnsmasq.server),
               *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           env=env, input=stdin)
        print(f"$ aimx {' '.join(args)}   -> exit {p.returncode}")
        for line in (p.stdout + p.stderr).splitlines()[:12]:
            print("    " + line)
        self.assertGreaterEqual(p.returncode, 0,
                                f"aimx {args} died of signal {-p.returncode}")
        return p

    def test_0_files(self):
        self.assertTrue(os.access(self.aimx, os.X_OK), self.aimx)
        self.assertEqual(sorted(os.listdir(self.plugins)),
                         ["policy-ipfamily.so", "resolver-cares.so"])
        p = subprocess.run([self.aimx, "--version"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(f"aimx {ARGS.version} "),
                        p.stdout)

    def test_1_plugins(self):
        p = self.run_aimx("plugins")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_aimx("plugins", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        obj = json.loads(p.stdout)
        self.assertEqual(obj["plugin_dirs"], [self.plugins])
        found = {e["name"]: e for e in obj["plugins"]
                 if not e.get("builtin")}
        self.assertEqual(sorted(found), ["policy-ipfamily", "resolver-cares"])
        for name, kind in (("policy-ipfamily", "policy"),
                           ("resolver-cares", "resolver")):
            e = found[name]
            self.assertEqual((e["status"], e["kind"], e["version"]),
                             ("ok", kind, ARGS.version), e)
            self.assertEqual(e["file"], os.path.join(self.plugins, name + ".so"))
        self.assertFalse(any(e["kind"] == "transport" and e["status"] == "ok"
                             for e in obj["plugins"]), obj)

    def test_2_route(self):
        p = self.run_aimx("route", "v4.test")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("127.0.0.2", p.stdout)
        p = self.run_aimx("route", "--json", "bob@v4.test")
        self.assertEqual(p.returncode, 0, p.stderr)
        obj = json.loads(p.stdout)
        self.assertEqual(obj["status"], "ok")
        self.assertEqual(obj["mx"][0]["host"], "mx.v4.test")
        self.assertEqual(obj["mx"][0]["targets"], ["127.0.0.2"])

    def test_3_route_fault_peer(self):
        p = self.run_aimx("route", "--json", "nullmx.test",
                          server=self.peer.server)
        self.assertEqual(p.returncode, 69, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "permfail")
        p = self.run_aimx("route", "--json", "servfail.test",
                          server=self.peer.server)
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "tempfail")

    def test_4_send_without_transport(self):
        p = self.run_aimx("send", "--from", "agent@sender.test",
                          "--to", "bob@v4.test", "--subject", "hello",
                          "--body", "no transport here")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(NO_TRANSPORT, p.stderr)
        self.assertIn(f"looked for transport-smtp.so in {self.plugins}",
                      p.stderr)
        self.assertEqual(p.stdout, "")
        p = self.run_aimx("send", "--json", "--from", "agent@sender.test",
                          "--to", "bob@v4.test", stdin="body\n")
        self.assertEqual(p.returncode, 78, p.stderr)
        obj = json.loads(p.stdout)
        self.assertEqual((obj["status"], obj["exit"]), ("error", 78))
        self.assertIn(NO_TRANSPORT, obj["message"])

    def test_5_config_check(self):
        p = self.run_aimx("config", "check")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(NO_TRANSPORT, p.stderr)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--version", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v"] + rest)


if __name__ == "__main__":
    main()
