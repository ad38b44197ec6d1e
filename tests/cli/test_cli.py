#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The aimx command line, end to end: arguments, exit codes, --json on
success and on error, against the built binary and the fixture plugins."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

AIMX = os.environ["AIMX_BIN"]
FIXTURES = os.environ["AIMX_FIXTURE_DIR"]


def run(*args, env=None, config=None):
    e = {k: v for k, v in os.environ.items()
         if k not in ("AIMX_CONFIG", "AIMX_PLUGIN_PATH")}
    if env:
        e.update(env)
    argv = [AIMX]
    if config is not None:
        argv += ["--config", config]
    argv += list(args)
    p = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


class Cli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="aimx-cli-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def conf(self, text, name="aimx.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def fixture_conf(self, extra=""):
        return self.conf(
            'domain = "agent.example";\n'
            f'plugin_dirs = [ "{FIXTURES}" ];\n'
            'resolver: { plugin = "fx-resolver"; timeout = "2s"; tries = 2; };\n'
            'policy: { plugin = "fx-policy"; };\n'
            'transport: { plugin = "fx-transport"; };\n' + extra)

    def json_error(self, out, code):
        obj = json.loads(out)
        self.assertEqual(obj, {"schema": 1, "status": "error", "exit": code,
                               "message": obj["message"]})
        self.assertTrue(obj["message"])
        return obj["message"]

    # -- arguments and exit codes ---------------------------------------

    def test_version(self):
        code, out, _ = run("--version")
        self.assertEqual(code, 0)
        self.assertRegex(out, r"^aimx \d+\.\d+\.\d+ \(plugin ABI 1\.0\)\n$")
        code, out, _ = run("--version", "--json")
        self.assertEqual(json.loads(out)["abi"], "1.0")

    def test_help(self):
        code, out, _ = run("--help")
        self.assertEqual(code, 0)
        self.assertIn("plugins", out)
        self.assertIn("config check", out)
        for cmd in (["plugins", "--help"], ["config", "check", "--help"],
                    ["help", "plugins"], ["config", "--help"]):
            code, out, _ = run(*cmd)
            self.assertEqual(code, 0, cmd)
            self.assertIn("Usage: aimx", out)

    def test_usage_errors_exit_64(self):
        for argv, needle in ((["--bogus"], "unknown option '--bogus'"),
                             (["frobnicate"], "unknown command 'frobnicate'"),
                             ([], "no command given"),
                             (["config"], "needs a subcommand"),
                             (["config", "frob"], "needs a subcommand"),
                             (["plugins", "extra"], "takes no arguments"),
                             (["-q", "-v", "plugins"], "contradict")):
            code, out, err = run(*argv)
            self.assertEqual(code, 64, argv)
            self.assertIn(needle, err)
            self.assertEqual(out, "")
            code, out, err = run(*argv, "--json")
            self.assertEqual(code, 64, argv)
            self.assertIn(needle, self.json_error(out, 64))

    def test_option_without_value(self):
        code, out, err = run("--config")
        self.assertEqual(code, 64)
        self.assertIn("option '--config' needs a value", err)

    # -- aimx plugins -----------------------------------------------------

    def test_plugins_json_lists_every_file_with_status(self):
        shadow = os.path.join(self.dir, "first")
        os.mkdir(shadow)
        shutil.copy(os.path.join(FIXTURES, "fx-policy.so"), shadow)
        code, out, _ = run("plugins", "--json",
                           env={"AIMX_PLUGIN_PATH": f"{shadow}:{FIXTURES}"},
                           config=self.conf('plugin_dirs = [ "/nonexistent" ];\n'))
        self.assertEqual(code, 0)
        obj = json.loads(out)
        self.assertEqual(obj["schema"], 1)
        self.assertEqual(obj["plugin_dirs"], [shadow, FIXTURES, "/nonexistent"])
        by = {}
        for p in obj["plugins"]:
            self.assertEqual(set(p), {"name", "kind", "version", "abi",
                                      "description", "file", "builtin",
                                      "status", "reason"})
            self.assertFalse(p["builtin"])
            by.setdefault(p["name"], []).append(p)
        first, second = by["fx-policy"]
        self.assertEqual(first["status"], "ok")
        self.assertEqual(first["kind"], "policy")
        self.assertEqual(first["abi"], "1.0")
        self.assertEqual(first["file"], os.path.join(shadow, "fx-policy.so"))
        self.assertIsNone(first["reason"])
        self.assertEqual(second["status"], "shadowed")
        self.assertIn(shadow, second["reason"])
        expect = {
            "fx-resolver": ("ok", None),
            "fx-transport": ("ok", None),
            "fx-wrong-major": ("refused", "built for plugin ABI 2.0"),
            "fx-v2-only": ("refused", "built for plugin ABI 2;"),
            "fx-newer-minor": ("refused", "needs plugin ABI 1.1"),
            "fx-no-entry": ("refused", "exports no aimx_plugin_v1"),
            "fx-unresolved": ("refused", "undefined symbol: aimx_fixture_missing_symbol"),
            "fx-name-mismatch": ("refused", "names it 'someone-else'"),
            "fx-null-op": ("refused", "select() is missing"),
        }
        for name, (status, reason) in expect.items():
            (p,) = by[name]
            self.assertEqual(p["status"], status, name)
            if reason is None:
                self.assertIsNone(p["reason"])
            else:
                self.assertIn(reason, p["reason"], name)
                self.assertIsNone(p["kind"])

    @unittest.skipUnless(os.geteuid() == 0, "the ownership rule applies to root")
    def test_root_refuses_writable_plugins(self):
        d = os.path.join(self.dir, "p")
        os.mkdir(d, 0o755)
        so = os.path.join(d, "fx-policy.so")
        shutil.copy(os.path.join(FIXTURES, "fx-policy.so"), so)
        conf = self.conf(f'plugin_dirs = [ "{d}" ];\n')

        def status():
            code, out, err = run("plugins", "--json", config=conf)
            self.assertEqual(code, 0, err)
            (p,) = json.loads(out)["plugins"]
            return p["status"], p["reason"] or ""

        os.chmod(so, 0o644)
        self.assertEqual(status(), ("ok", ""))
        os.chmod(so, 0o664)
        st, why = status()
        self.assertEqual(st, "refused")
        self.assertIn("the file is group-writable", why)
        os.chmod(so, 0o644)
        os.chmod(d, 0o777)
        st, why = status()
        self.assertEqual(st, "refused")
        self.assertIn("its directory is world-writable", why)
        os.chmod(d, 0o755)
        os.chown(so, 1, 1)
        st, why = status()
        self.assertEqual(st, "refused")
        self.assertIn("owned by uid 1, not root", why)

    def test_plugins_human_output(self):
        code, out, _ = run("plugins", config=self.fixture_conf())
        self.assertEqual(code, 0)
        self.assertRegex(out, r"fx-resolver +resolver +9\.9\.9-fixture +1\.0 +ok")
        self.assertRegex(out, r"fx-newer-minor +- +- +- +refused")
        self.assertIn("needs plugin ABI 1.1", out)

    def test_plugins_empty_directory(self):
        empty = os.path.join(self.dir, "empty")
        os.mkdir(empty)
        code, out, _ = run("plugins", config=self.conf(f'plugin_dirs = [ "{empty}" ];\n'))
        self.assertEqual(code, 0)
        self.assertIn("No plugins found in:", out)
        self.assertIn(empty, out)

    # -- aimx route (fixture resolver: no MX, A 127.0.0.1 for any name) --

    def route_conf(self, extra=""):
        # The transport named here does not exist: route must not load it.
        return self.conf(
            f'plugin_dirs = [ "{FIXTURES}" ];\n'
            'resolver: { plugin = "fx-resolver"; };\n'
            'policy: { plugin = "fx-policy"; };\n'
            'transport: { plugin = "not-there"; };\n' + extra, "route.conf")

    def test_route_json_shape_and_exit_codes(self):
        code, out, err = run("route", "--json", "User@Bücher.Example",
                             config=self.route_conf("allow_private_targets = true;\n"))
        self.assertEqual(code, 0, err)
        obj = json.loads(out)
        self.assertEqual(obj["schema"], 1)
        self.assertEqual(obj["domain"], "xn--bcher-kva.example")
        self.assertEqual(obj["status"], "ok")
        self.assertEqual(obj["mx_result"], "nodata")
        (mx,) = obj["mx"]
        self.assertEqual(mx["host"], "xn--bcher-kva.example")
        self.assertTrue(mx["implicit"])
        self.assertEqual(mx["preference"], 0)
        self.assertEqual(mx["a"], {"result": "ok", "addresses": ["127.0.0.1"]})
        self.assertEqual(mx["aaaa"], {"result": "nodata", "addresses": []})
        self.assertEqual(mx["verdict"], "use")
        self.assertEqual(mx["targets"], ["127.0.0.1"])

        # The same loopback target is refused by default: permanent, 69.
        code, out, err = run("route", "--json", "example.test", config=self.route_conf())
        self.assertEqual(code, 69, err)
        obj = json.loads(out)
        self.assertEqual(obj["status"], "permfail")
        self.assertEqual(obj["reason"], "no_usable_mx")
        self.assertEqual(obj["mx"][0]["reason"], "private_address")
        self.assertEqual(obj["mx"][0]["targets"], [])
        self.assertIn("allow_private_targets", obj["mx"][0]["detail"])

        code, out, err = run("route", "example.test", config=self.route_conf())
        self.assertEqual(code, 69)
        self.assertIn("private_address", out)
        self.assertIn("127.0.0.1 (loopback)", out)

    def test_route_bad_input(self):
        conf = self.route_conf()
        for arg in ("a..b", "user@", "[127.0.0.1]", "127.0.0.1"):
            code, out, err = run("route", "--json", arg, config=conf)
            self.assertEqual(code, 65, arg)
            self.assertIn(arg, self.json_error(out, 65))
        code, out, err = run("route", config=conf)
        self.assertEqual(code, 64)
        code, out, err = run("route", "a.test", "b.test", config=conf)
        self.assertEqual(code, 64)

    def test_route_needs_resolver_and_policy(self):
        conf = self.conf(f'plugin_dirs = [ "{FIXTURES}" ];\n'
                         'resolver: { plugin = "fx-policy"; };\n')
        code, out, err = run("route", "--json", "example.test", config=conf)
        self.assertEqual(code, 78)
        self.assertIn("configured where a resolver plugin belongs",
                      self.json_error(out, 78))

    # -- aimx config check -----------------------------------------------

    def test_config_check_good(self):
        path = self.fixture_conf()
        code, out, err = run("config", "check", config=path)
        self.assertEqual(code, 0, err)
        self.assertIn(f"{path}: OK", out)
        code, out, err = run("config", "check", "--json", config=path)
        self.assertEqual(code, 0, err)
        obj = json.loads(out)
        self.assertEqual(obj["status"], "ok")
        self.assertEqual(obj["file"], path)
        self.assertEqual(obj["domain"], "agent.example")
        self.assertFalse(obj["enable_ipv6"])
        self.assertEqual([p["name"] for p in obj["plugins"]],
                         ["fx-resolver", "fx-policy", "fx-transport"])
        self.assertEqual([p["slot"] for p in obj["plugins"]],
                         ["resolver", "policy", "transport"])

    def test_config_check_spool_dir_and_dkim_key(self):
        """What aimx send needs before it sends: a spool directory it can
        make unnamed files in, and a usable DKIM key, checked by the same
        code, each error at the setting's FILE:LINE."""
        spool = os.path.join(self.dir, "spool")
        os.mkdir(spool)
        key = os.path.join(self.dir, "dkim.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", key],
                       check=True, capture_output=True)
        os.chmod(key, 0o600)
        good = self.fixture_conf(f'spool_dir = "{spool}";\n'
                                 f'dkim = {{ selector = "s1";\n'
                                 f'  key_file = "{key}"; }};\n')
        code, out, err = run("config", "check", config=good)
        self.assertEqual(code, 0, err)
        self.assertIn(f"  spool_dir    {spool}\n", out)
        self.assertIn(f"  dkim         selector s1, 2048-bit RSA key {key}\n", out)
        code, out, err = run("config", "check", "--json", config=good)
        self.assertEqual(code, 0, err)
        obj = json.loads(out)
        self.assertEqual(obj["spool_dir"], spool)
        self.assertEqual(obj["dkim"], {"selector": "s1", "key_file": key,
                                       "key_bits": 2048})

        # No dkim group: said so, and null in JSON.
        plain = self.fixture_conf(f'spool_dir = "{spool}";\n')
        code, out, err = run("config", "check", config=plain)
        self.assertEqual(code, 0, err)
        self.assertIn("  dkim         off", out)
        code, out, err = run("config", "check", "--json", config=plain)
        self.assertIsNone(json.loads(out)["dkim"])

        # Both wrong at once: both reported, each at its line.
        os.chmod(key, 0o644)
        bad = self.fixture_conf(f'spool_dir = "{spool}/missing";\n'
                                f'dkim = {{ selector = "s1";\n'
                                f'  key_file = "{key}"; }};\n')
        code, out, err = run("config", "check", config=bad)
        self.assertEqual(code, 78, err)
        self.assertIn(f"{bad}:6: spool_dir {spool}/missing is not a directory", err)
        self.assertIn(f"{bad}:8: the DKIM key_file {key} is readable by others", err)
        code, out, err = run("config", "check", "--json", config=bad)
        self.assertEqual(code, 78)
        msg = self.json_error(out, 78)
        self.assertIn(f"{bad}:6: spool_dir", msg)
        self.assertIn(f"{bad}:8: the DKIM key_file", msg)
        os.unlink(key)
        code, out, err = run("config", "check", config=bad)
        self.assertIn(f"{bad}:8: the DKIM key_file {key} does not exist", err)

    def test_config_from_environment(self):
        path = self.fixture_conf()
        code, out, err = run("config", "check", "--json",
                             env={"AIMX_CONFIG": path})
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["file"], path)
        # --config wins over AIMX_CONFIG.
        code, out, err = run("config", "check", "--json", config=path,
                             env={"AIMX_CONFIG": "/nonexistent.conf"})
        self.assertEqual(code, 0, err)

    def assert_config_error(self, text, needle_with_line, code=78):
        path = self.conf(text)
        rc, out, err = run("config", "check", config=path)
        self.assertEqual(rc, code, err)
        self.assertIn(needle_with_line.replace("FILE", path), err)
        rc, out, err = run("config", "check", "--json", config=path)
        self.assertEqual(rc, code)
        self.assertIn(needle_with_line.replace("FILE", path),
                      self.json_error(out, code))

    def test_malformed_config_names_file_and_line(self):
        self.assert_config_error('domain = "a.example";\nenable_ipv6 = ;\n',
                                 "FILE:2: syntax error")

    def test_misspelled_top_level_key(self):
        self.assert_config_error('domain = "a.example";\n\nenable_ipv7 = true;\n',
                                 "FILE:3: unknown setting 'enable_ipv7' "
                                 "(did you mean 'enable_ipv6'?)")

    def test_misspelled_plugin_key(self):
        self.assert_config_error(
            f'plugin_dirs = [ "{FIXTURES}" ];\n'
            'resolver: { plugin = "fx-resolver";\n  timout = "2s"; };\n'
            'policy: { plugin = "fx-policy"; };\n'
            'transport: { plugin = "fx-transport"; };\n',
            "FILE:3: unknown setting 'timout' in group 'resolver' "
            "(did you mean 'timeout'?)")

    def test_wrapped_integer(self):
        self.assert_config_error(
            f'plugin_dirs = [ "{FIXTURES}" ];\n'
            'resolver: { plugin = "fx-resolver"; tries = 5000000000; };\n',
            "FILE:2: the number for 'tries' is too large")

    def test_bad_duration(self):
        self.assert_config_error(
            f'plugin_dirs = [ "{FIXTURES}" ];\n'
            'resolver: { plugin = "fx-resolver";\n timeout = "2 seconds"; };\n'
            'policy: { plugin = "fx-policy"; };\n'
            'transport: { plugin = "fx-transport"; };\n',
            "FILE:3: 'timeout' in group 'resolver' = \"2 seconds\" is not a duration")

    def test_wrong_type(self):
        self.assert_config_error('enable_ipv6 = "yes";\n',
                                 "FILE:1: 'enable_ipv6' must be a boolean")

    def test_missing_and_refused_plugins(self):
        self.assert_config_error(
            f'plugin_dirs = [ "{FIXTURES}" ];\n'
            'resolver: { plugin = "fx-policy"; };\n'
            'policy: { plugin = "fx-newer-minor"; };\n'
            'transport: { plugin = "not-there"; };\n',
            "fx-policy.so: refused: it is a policy plugin, but it was "
            "configured where a resolver plugin belongs")
        rc, _, err = run("config", "check", config=os.path.join(self.dir, "aimx.conf"))
        self.assertIn("fx-newer-minor.so: refused: it needs plugin ABI 1.1", err)
        self.assertIn(f"transport plugin 'not-there' not found (looked for "
                      f"not-there.so in {FIXTURES})", err)

    def test_explicit_config_missing(self):
        missing = os.path.join(self.dir, "nope.conf")
        rc, out, err = run("config", "check", "--json", config=missing)
        self.assertEqual(rc, 78)
        self.assertIn(f"{missing}: cannot read the configuration file",
                      self.json_error(out, 78))

    def test_defaults_without_config_file(self):
        if os.path.exists("/etc/aimx/aimx.conf"):
            self.skipTest("/etc/aimx/aimx.conf exists on this machine")
        code, out, err = run("plugins", "--json")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(json.loads(out)["plugin_dirs"]), 1)

    def test_logging_levels(self):
        path = self.fixture_conf()
        # Plugin log lines carry the plugin's name; -v -v shows debug.
        _, _, err = run("-v", "-v", "config", "check", config=path)
        self.assertIn("aimx: fx-resolver: debug: created", err)
        _, _, err = run("config", "check", config=path)
        self.assertNotIn("debug", err)
        _, _, err = run("-q", "config", "check", config=self.conf("x = 1;\n", "bad.conf"))
        self.assertIn("unknown setting 'x'", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
