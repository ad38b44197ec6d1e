#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The SDK's example plugins in aimx, end to end, as the guide uses them.

aimx loads resolver-static, a policy and transport-dir from the given
plugin directories, configured with the examples' own aimx.conf snippets
and zone file (sdk/examples/*/aimx.conf, resolver-static/static-zone.txt),
and sends a message: the recipients at example.com are delivered into the
transport's directory through the MX host the zone file names, the one at
example.org is bounced (its null MX), the one at nowhere.example too (not
in the file).  Then the configuration errors the guide shows: a bad zone
line and a missing directory, each with its file and line.

  test_examples.py --aimx BIN --examples DIR --plugin-dir DIR [--plugin-dir DIR]
                   [--policy NAME] [--family ipv4|ipv6] [--abi M.N]
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None

# The literal paths of the snippets, which the test points elsewhere.
ZONE_IN_SNIPPET = "/etc/aimx/static-zone.txt"
DIR_IN_SNIPPET = "/var/spool/aimx-out"


def snippet(name, old, new):
    path = os.path.join(ARGS.examples, name, "aimx.conf")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if old not in text:
        raise AssertionError("%s no longer holds %s" % (path, old))
    return text.replace(old, new)


class Examples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="aimx-examples-")
        cls.out = os.path.join(cls.tmp, "out")
        cls.spool = os.path.join(cls.tmp, "spool")
        os.mkdir(cls.out)
        os.mkdir(cls.spool)
        cls.zone = os.path.join(ARGS.examples, "resolver-static",
                                "static-zone.txt")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def setUp(self):
        for f in os.listdir(self.out):
            os.unlink(os.path.join(self.out, f))

    def config(self, zone=None, directory=None):
        """The examples' snippets, with this test's paths and the rest."""
        dirs = ", ".join('"%s"' % d for d in ARGS.plugin_dir)
        text = ('domain = "sender.test";\n'
                # The zone file uses documentation addresses.
                "allow_private_targets = true;\n"
                'spool_dir = "%s";\n'
                "plugin_dirs = [ %s ];\n"
                'policy: { plugin = "%s"; };\n'
                % (self.spool, dirs, ARGS.policy))
        text += snippet("resolver-static", ZONE_IN_SNIPPET, zone or self.zone)
        text += snippet("transport-dir", DIR_IN_SNIPPET, directory or self.out)
        path = os.path.join(self.tmp, "aimx.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def aimx(self, *argv, expect=0):
        env = dict(os.environ)
        env.pop("AIMX_PLUGIN_PATH", None)
        env.pop("AIMX_CONFIG", None)
        proc = subprocess.run([ARGS.aimx] + list(argv), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=120, check=False)
        out, err = proc.stdout.decode(), proc.stderr.decode()
        if proc.returncode != expect:
            self.fail("%s exited %d, expected %d\nstdout: %s\nstderr: %s"
                      % (" ".join(argv), proc.returncode, expect, out, err))
        return out, err

    def test_plugins_are_listed(self):
        out, _ = self.aimx("--config", self.config(), "plugins", "--json")
        listed = {p["name"]: p for p in json.loads(out)["plugins"]
                  if not p["builtin"]}
        for name, kind in (("resolver-static", "resolver"),
                           ("transport-dir", "transport")):
            self.assertIn(name, listed)
            p = listed[name]
            self.assertEqual((p["status"], p["kind"]), ("ok", kind),
                             p.get("reason"))
            if ARGS.abi:
                self.assertEqual(p["abi"], ARGS.abi)

    def test_config_check(self):
        out, _ = self.aimx("--config", self.config(), "config", "check",
                           "--json")
        doc = json.loads(out)
        self.assertEqual(doc["status"], "ok")
        names = [p["name"] for p in doc["plugins"]]
        self.assertEqual(names, ["resolver-static", ARGS.policy,
                                 "transport-dir"])

    def test_send(self):
        out, _ = self.aimx("--config", self.config(), "send", "--json",
                           "--from", "agent@sender.test",
                           "--to", "bob@example.com",
                           "--to", "carol@Example.COM",
                           "--to", "dave@example.org",
                           "--to", "erin@nowhere.example",
                           "--subject", "from the examples",
                           "--body", "written by transport-dir",
                           expect=69)  # some recipients bounced
        rcpts = {r["address"].lower(): r for r in json.loads(out)["recipients"]}
        for who in ("bob@example.com", "carol@example.com"):
            r = rcpts[who]
            self.assertEqual(r["status"], "delivered", r)
            self.assertEqual(r["mx"], "mx.example.com")
            self.assertEqual(r["family"], ARGS.family)
            self.assertEqual(r["code"], 250)
            self.assertIn("saved as " + self.out, r["reply"])
        self.assertEqual(rcpts["dave@example.org"]["status"], "bounced")
        self.assertIn("null MX", rcpts["dave@example.org"]["reply"])
        self.assertEqual(rcpts["erin@nowhere.example"]["status"], "bounced")
        self.assertIn("NXDOMAIN", rcpts["erin@nowhere.example"]["reply"])

        # One session for both recipients at the same MX host: one file,
        # complete, no temporary left behind.
        files = sorted(os.listdir(self.out))
        self.assertEqual(len(files), 1, files)
        self.assertTrue(files[0].endswith(".eml"))
        with open(os.path.join(self.out, files[0]), "rb") as f:
            text = f.read()
        self.assertTrue(text.startswith(b"Return-Path: <agent@sender.test>\r\n"
                                        b"Delivered-To: bob@example.com\r\n"
                                        b"Delivered-To: carol@"), text[:200])
        self.assertIn(b"\r\nSubject: from the examples\r\n", text)
        self.assertIn(b"\r\n\r\nwritten by transport-dir\r\n", text)
        self.assertNotIn(b"\n\n", text.replace(b"\r\n", b"\r"))

    def test_bad_zone_line(self):
        bad = os.path.join(self.tmp, "bad-zone.txt")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("example.com. MX 10 mx.example.com.\n"
                    "mx.example.com. CNAME elsewhere.example.\n")
        _, err = self.aimx("--config", self.config(zone=bad), "config",
                           "check", expect=78)
        self.assertIn("'file' in group 'resolver': %s:2: unknown record type "
                      "'CNAME' (A, AAAA, MX or TXT)" % bad, err)
        self.assertIn("aimx.conf:", err)

    def test_missing_directory(self):
        gone = os.path.join(self.tmp, "no-such-dir")
        _, err = self.aimx("--config", self.config(directory=gone), "config",
                           "check", expect=78)
        self.assertIn("'directory' in group 'transport': %s: No such file or "
                      "directory" % gone, err)
        self.assertEqual(glob.glob(os.path.join(self.out, "*")), [])


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aimx", required=True)
    ap.add_argument("--examples", required=True,
                    help="the examples directory (sdk/examples)")
    ap.add_argument("--plugin-dir", action="append", required=True)
    ap.add_argument("--policy", default="policy-ipfamily")
    ap.add_argument("--family", default="ipv4")
    ap.add_argument("--abi", default="",
                    help="the ABI the example modules must report")
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
