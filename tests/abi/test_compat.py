#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Plugins built against other headers, in the current aimx.

The modules under --compat were built by tests/abi/CMakeLists.txt from the
SDK's examples, each against one header (see there):

  1.0/          policy-ipv6only, resolver-static, transport-dir against the
                frozen 1.0 header: listed ok with ABI 1.0, and aimx sends
                mail through all three (the examples' end-to-end test,
                --e2e, with policy-ipv6only, so over IPv6);
  next-minor/   policy-ipv6only claiming this major's next minor: refused;
  next-major/   policy-ipv6only of the next major (entry aimx_plugin_v<M+1>):
                refused, naming that major;
  major-claim/  policy-ipv6only whose descriptor claims the next major
                behind this major's entry: refused.

A refused plugin is refused the same way when a configuration selects it:
`aimx config check` fails (78) with the reason.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

ARGS = None


def run(argv, env_extra=None):
    env = dict(os.environ)
    env.pop("AIMX_CONFIG", None)
    env.pop("AIMX_PLUGIN_PATH", None)
    env.update(env_extra or {})
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120, check=False)


class Compat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="aimx-abi-compat-")
        cls.empty = os.path.join(cls.tmp.name, "empty")
        os.mkdir(cls.empty)
        cls.major, cls.minor = (int(x) for x in ARGS.host_abi.split("."))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def config(self, plugin_dir, policy="policy-ipv6only"):
        path = os.path.join(self.tmp.name, "aimx.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write('domain = "sender.test";\nplugin_dirs = [ "%s" ];\n'
                    'policy: { plugin = "%s"; };\n' % (plugin_dir, policy))
        return path

    def listing(self, variant):
        d = os.path.join(ARGS.compat, variant)
        proc = run([ARGS.aimx, "--config", self.config(d), "plugins",
                    "--json"])
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        return {p["name"]: p for p in json.loads(proc.stdout)["plugins"]
                if not p["builtin"]}

    def refused(self, variant, reason):
        p = self.listing(variant)["policy-ipv6only"]
        self.assertEqual(p["status"], "refused", p)
        self.assertEqual(p["reason"], reason)
        # Selected in a configuration: a configuration error, same reason.
        d = os.path.join(ARGS.compat, variant)
        proc = run([ARGS.aimx, "--config", self.config(d), "config",
                    "check"])
        self.assertEqual(proc.returncode, 78, proc.stderr.decode())
        self.assertIn("%s/policy-ipv6only.so: refused: %s" % (d, reason),
                      proc.stderr.decode())

    def test_built_against_1_0_loads(self):
        listed = self.listing("1.0")
        for name, kind in (("policy-ipv6only", "policy"),
                           ("resolver-static", "resolver"),
                           ("transport-dir", "transport")):
            p = listed[name]
            self.assertEqual((p["status"], p["kind"], p["abi"]),
                             ("ok", kind, "1.0"), p)

    def test_built_against_1_0_works(self):
        proc = subprocess.run(
            [sys.executable, ARGS.e2e, "--aimx", ARGS.aimx,
             "--examples", ARGS.examples,
             "--plugin-dir", os.path.join(ARGS.compat, "1.0"),
             "--policy", "policy-ipv6only", "--family", "ipv6",
             "--abi", "1.0"], check=False)
        self.assertEqual(proc.returncode, 0,
                         "the examples built against the 1.0 header do not "
                         "work in this aimx (see above)")

    def test_newer_minor_refused(self):
        m, n = self.major, self.minor
        self.refused("next-minor",
                     "it needs plugin ABI %d.%d, newer than this aimx's "
                     "%d.%d: upgrade aimx or use a build of the plugin for "
                     "ABI %d.%d" % (m, n + 1, m, n, m, n))

    def test_other_major_refused(self):
        self.refused("next-major",
                     "it was built for plugin ABI %d; this aimx speaks ABI "
                     "%d.%d" % (self.major + 1, self.major, self.minor))

    def test_other_major_claim_refused(self):
        self.refused("major-claim",
                     "it was built for plugin ABI %d.%d; this aimx speaks ABI "
                     "%d.%d: rebuild it against this aimx's SDK"
                     % (self.major + 1, self.minor, self.major, self.minor))


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aimx", required=True)
    ap.add_argument("--compat", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--e2e", required=True)
    ap.add_argument("--host-abi", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
