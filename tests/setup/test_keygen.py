#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx dkim-keygen end to end: file modes (checked with stat), refusal to
replace without --force, permission errors (77) and other create failures
(73), TXT strings of at most 255 octets, and dkimpy (Debian python3-dkim)
signing a message with the generated private key and verifying it against
the printed TXT record.  No plugin is loaded, no network is used."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import aimxtest  # noqa: E402

AIMX = os.environ["AIMX_BIN"]
SETPRIV = "/usr/bin/setpriv"
NOBODY = 65534


def strings_of(value):
    """The character-strings of a zone-file TXT value."""
    return aimxtest.txt_strings(value)


class Keygen(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        aimxtest.ensure_debian_packages("python3-dkim")
        cls.tmp = tempfile.mkdtemp(prefix="aimx-keygen-")
        os.chmod(cls.tmp, 0o755)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def conf(self, name, keydir=None, group=True, selector="s1",
             domain="sender.test"):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        keydir = keydir or os.path.join(d, "dkim")
        path = os.path.join(d, "aimx.conf")
        with open(path, "w") as f:
            f.write(f'domain = "{domain}";\n')
            if group:
                f.write(f'dkim: {{ selector = "{selector}"; '
                        f'key_file = "{keydir}/private.key"; '
                        f'public_key_file = "{keydir}/public.key"; }};\n')
        os.chmod(path, 0o644)
        return path, keydir

    def run_aimx(self, conf, *args, json_out=False, preexec=None, argv0=None):
        argv = (argv0 or []) + [AIMX, "--config", conf]
        if json_out:
            argv.append("--json")
        argv += ["dkim-keygen"] + list(args)
        env = {k: v for k, v in os.environ.items() if k != "AIMX_CONFIG"}
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=120, env=env, preexec_fn=preexec)

    def keygen(self, conf, *args, expect=0):
        p = self.run_aimx(conf, *args, json_out=True)
        self.assertEqual(p.returncode, expect, p.stdout + p.stderr)
        return json.loads(p.stdout)

    # -- files ---------------------------------------------------------

    def test_modes_and_record(self):
        conf, keydir = self.conf("modes")
        obj = self.keygen(conf)
        self.assertEqual(obj["schema"], 1)
        self.assertEqual(obj["private_key"], f"{keydir}/private.key")
        self.assertEqual(obj["public_key"], f"{keydir}/public.key")
        self.assertEqual(obj["bits"], 2048)
        rec = obj["record"]
        self.assertEqual((rec["type"], rec["name"]),
                         ("TXT", "s1._domainkey.sender.test"))
        priv = os.stat(obj["private_key"])
        pub = os.stat(obj["public_key"])
        self.assertTrue(stat.S_ISREG(priv.st_mode))
        self.assertEqual(stat.S_IMODE(priv.st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(pub.st_mode), 0o644)
        with open(obj["private_key"]) as f:
            self.assertIn("BEGIN PRIVATE KEY", f.read())
        with open(obj["public_key"]) as f:
            self.assertIn("BEGIN PUBLIC KEY", f.read())
        # No temporary file is left behind.
        self.assertEqual(sorted(os.listdir(keydir)),
                         ["private.key", "public.key"])
        parts = strings_of(rec["value"])
        self.assertGreaterEqual(len(parts), 2)
        for s in parts:
            self.assertLessEqual(len(s.encode()), 255)
        self.assertTrue("".join(parts).startswith("v=DKIM1; k=rsa; p=MII"))

    def test_modes_whatever_the_umask(self):
        # 0600 from the first byte: fchmod decides, not the umask.
        conf, keydir = self.conf("umask")
        p = self.run_aimx(conf, preexec=lambda: os.umask(0))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(f"{keydir}/private.key").st_mode),
                         0o600)
        self.assertEqual(stat.S_IMODE(os.stat(f"{keydir}/public.key").st_mode),
                         0o644)
        conf, keydir = self.conf("umask77")
        p = self.run_aimx(conf, preexec=lambda: os.umask(0o077))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(f"{keydir}/public.key").st_mode),
                         0o644)

    def test_human_output_strings(self):
        conf, _ = self.conf("human", selector="sel2")
        p = self.run_aimx(conf, "--bits", "3072")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("name   sel2._domainkey.sender.test.", p.stdout)
        line = [ln for ln in p.stdout.splitlines()
                if ln.startswith("  value  ")][0]
        parts = strings_of(line[len("  value  "):])
        # A 3072-bit key needs three strings.
        self.assertEqual(len(parts), 3)
        for s in parts:
            self.assertLessEqual(len(s.encode()), 255)
        self.assertIn("3072-bit", p.stdout)

    def test_refuses_without_force(self):
        conf, keydir = self.conf("force")
        first = self.keygen(conf)
        with open(f"{keydir}/private.key", "rb") as f:
            before = f.read()
        p = self.run_aimx(conf)
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertIn("already exists", p.stderr)
        self.assertIn("--force", p.stderr)
        with open(f"{keydir}/private.key", "rb") as f:
            self.assertEqual(f.read(), before)
        # Only the public key there: still refused, nothing written.
        os.unlink(f"{keydir}/private.key")
        p = self.run_aimx(conf)
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertFalse(os.path.exists(f"{keydir}/private.key"))
        # --force replaces both, atomically, with the right modes.
        second = self.keygen(conf, "--force")
        self.assertNotEqual(first["record"]["value"],
                            second["record"]["value"])
        self.assertEqual(stat.S_IMODE(os.stat(f"{keydir}/private.key").st_mode),
                         0o600)
        self.assertEqual(sorted(os.listdir(keydir)),
                         ["private.key", "public.key"])

    def test_usage_errors(self):
        conf, _ = self.conf("usage")
        for args in (["--bits", "512"], ["--bits", "x"], ["--bits", "8192"],
                     ["--selector", "bad_selector"], ["extra"]):
            p = self.run_aimx(conf, *args)
            self.assertEqual(p.returncode, 64, f"{args}: {p.stderr}")

    def test_selector_option_and_help(self):
        # (Without a dkim group the files would go to the default
        # /etc/aimx/dkim: not written by a test.)
        conf, _ = self.conf("selector", selector="s9")
        p = self.run_aimx(conf, "--selector", "other")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('aimx signs with the configured selector "s9"', p.stdout)
        self.assertIn("other._domainkey.sender.test.", p.stdout)
        p = subprocess.run([AIMX, "dkim-keygen", "--help"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("255", p.stdout)

    # -- failures ------------------------------------------------------

    def test_other_create_failure_is_73(self):
        d = os.path.join(self.tmp, "notadir")
        os.makedirs(d, exist_ok=True)
        blocker = os.path.join(d, "file")
        with open(blocker, "w") as f:
            f.write("x")
        conf, _ = self.conf("enotdir", keydir=blocker + "/dkim")
        p = self.run_aimx(conf)
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertIn("Not a directory", p.stderr)
        self.assertIn("check that the directory exists", p.stderr)

    def test_permission_denied_is_77(self):
        # Root ignores mode bits, so as root the command runs as nobody
        # (setpriv) against a root-owned 0755 directory; otherwise a 0555
        # directory of our own does it.
        base = os.path.join(self.tmp, "perm")
        keydir = os.path.join(base, "locked")
        os.makedirs(keydir, exist_ok=True)
        os.chmod(base, 0o755)
        conf, _ = self.conf("perm", keydir=keydir)
        argv0 = None
        if os.geteuid() == 0:
            if not os.path.exists(SETPRIV):
                self.skipTest("running as root and setpriv is missing")
            os.chmod(keydir, 0o755)
            argv0 = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}",
                     "--clear-groups"]
            probe = subprocess.run(argv0 + [AIMX, "--version"],
                                   capture_output=True, text=True)
            if probe.returncode != 0:
                self.skipTest("nobody cannot run the aimx binary here: "
                              + probe.stderr.strip())
        else:
            os.chmod(keydir, 0o555)
        try:
            p = self.run_aimx(conf, argv0=argv0)
        finally:
            os.chmod(keydir, 0o755)
        self.assertEqual(p.returncode, 77, p.stdout + p.stderr)
        self.assertIn("Permission denied", p.stderr)
        self.assertIn("run aimx dkim-keygen as a user", p.stderr)
        self.assertEqual(os.listdir(keydir), [])
        # The same as JSON: the error object.
        p = self.run_aimx(conf, json_out=True, argv0=argv0) if argv0 else None
        if p is not None:
            self.assertEqual(p.returncode, 77)
            err = json.loads(p.stdout)
            self.assertEqual((err["status"], err["exit"]), ("error", 77))

    # -- dkimpy ----------------------------------------------------------

    def test_dkimpy_signs_and_verifies(self):
        import dkim
        conf, keydir = self.conf("dkimpy", selector="agent")
        obj = self.keygen(conf)
        txt = "".join(strings_of(obj["record"]["value"])).encode()
        with open(obj["private_key"], "rb") as f:
            privkey = f.read()
        message = (b"From: Agent <agent@sender.test>\r\n"
                   b"To: someone@example.test\r\n"
                   b"Subject: keygen\r\n"
                   b"Message-ID: <1@sender.test>\r\n"
                   b"Date: Wed, 4 Dec 2024 21:45:37 +0000\r\n"
                   b"\r\n"
                   b"Signed with the key aimx dkim-keygen made.\r\n")
        sig = dkim.sign(message, b"agent", b"sender.test", privkey,
                        include_headers=[b"from", b"to", b"subject"])
        asked = []

        def dnsfunc(name, timeout=5):
            asked.append(name)
            return txt if name == b"agent._domainkey.sender.test." else None

        self.assertTrue(dkim.verify(sig + message, dnsfunc=dnsfunc))
        self.assertEqual(asked, [b"agent._domainkey.sender.test."])
        # A changed message fails against the same record.
        self.assertFalse(dkim.verify(sig + message.replace(b"made", b"mad"),
                                     dnsfunc=dnsfunc))


if __name__ == "__main__":
    unittest.main(verbosity=2)
