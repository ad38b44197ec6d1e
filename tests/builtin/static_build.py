#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The fully built-in aimx, end to end.

Configures and builds a second aimx tree with -DAIMX_BUILTIN_PLUGINS set
(tests off), then checks:

  * the binary: every built-in plugin's <ident>_LTX_aimx_plugin_v1 is
    defined once, the unprefixed aimx_plugin_v1 nowhere, and no global
    symbol of a built-in plugin's objects is also defined by another
    built-in plugin or exported by a shared library aimx loads (where it
    would silently interpose);
  * the build: the default target builds no module of a built-in plugin,
    and `cmake --install` installs none;
  * `aimx plugins --json`: each built-in plugin with builtin true, file
    null, status ok; a module of the same name on disk is "shadowed",
    naming the built-in plugin;
  * tests/deliver/test_deliver.py, the end-to-end send test, against the
    built-in aimx with AIMX_PLUGIN_DIR an empty directory, so that nothing
    can load from disk;
  * with --example-plugins, plugins from disk beside built-in ones: the SDK
    examples' end-to-end test (tests/plugin_guide/test_examples.py) with
    the resolver and transport from that directory and the built-in
    policy-ipfamily.

The build tree is kept between runs (incremental).  Exit status 0 when all
passes.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def step(text):
    print("\n== " + text, flush=True)


def fail(text):
    print("FAIL: " + text, file=sys.stderr, flush=True)
    sys.exit(1)


def run(argv, **kw):
    print("+ " + " ".join(argv), flush=True)
    proc = subprocess.run(argv, **kw)
    if proc.returncode != 0:
        fail("%s exited with %d" % (argv[0], proc.returncode))
    return proc


def output(argv, env=None):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, check=False)
    if proc.returncode != 0:
        fail("%s exited with %d: %s" % (" ".join(argv), proc.returncode,
                                        proc.stderr.decode(errors="replace")))
    return proc.stdout.decode()


def defined_globals(path, dynamic=False):
    """Names of the global symbols path defines."""
    argv = ["nm", "--defined-only", "-g"] + (["-D"] if dynamic else []) + [path]
    names = set()
    for line in output(argv).splitlines():
        f = line.split()
        # "addr T name"; weak ("W", "V") definitions may be overridden.
        if len(f) == 3 and f[1] not in ("W", "V", "w", "v", "U"):
            names.add(f[2].split("@")[0])
    return names


def shared_libraries(binary):
    libs = []
    for line in output(["ldd", binary]).splitlines():
        m = re.search(r"=>\s+(/\S+)", line)
        if m:
            libs.append(m.group(1))
    return libs


def object_files(build, name):
    """The objects aimx_builtin_plugin() compiled for plugin name."""
    want = "aimx_builtin_%s.dir" % name.replace("-", "_")
    found = []
    for top, _dirs, files in os.walk(os.path.join(build, "plugins")):
        if os.path.basename(top) == want:
            found += [os.path.join(top, f) for f in files if f.endswith(".o")]
    return found


def check_symbols(build, aimx, plugins):
    step("symbols of %s" % aimx)
    names = defined_globals(aimx)
    for name in plugins:
        sym = name.replace("-", "_") + "_LTX_aimx_plugin_v1"
        if sym not in names:
            fail("%s does not define %s" % (aimx, sym))
        print("ok: %s" % sym)
    if "aimx_plugin_v1" in names:
        fail("%s defines aimx_plugin_v1: a built-in plugin was compiled "
             "without AIMX_PLUGIN_STATIC" % aimx)
    print("ok: no unprefixed aimx_plugin_v1")

    owners = {}
    for name in plugins:
        objs = object_files(build, name)
        if not objs:
            fail("no object files of the built-in %s under %s/plugins"
                 % (name, build))
        for obj in objs:
            for sym in defined_globals(obj):
                owners.setdefault(sym, set()).add(name)
    clashes = {s: o for s, o in owners.items() if len(o) > 1}
    if clashes:
        fail("built-in plugins define the same symbols: %s" % ", ".join(
            "%s (%s)" % (s, " and ".join(sorted(o)))
            for s, o in sorted(clashes.items())))
    print("ok: %d global symbols of the built-in plugins, none defined twice"
          % len(owners))
    for lib in shared_libraries(aimx):
        shadowed = sorted(set(owners) & defined_globals(lib, dynamic=True))
        if shadowed:
            fail("%s exports %s, which built-in plugins define too: the "
                 "binary's copy would interpose it" % (lib, ", ".join(shadowed)))
    print("ok: none of them interposes a symbol of a shared library aimx loads")


def check_listing(aimx, conf, plugins, kinds, shadow_dir):
    step("aimx plugins --json")
    env = dict(os.environ)
    env.pop("AIMX_PLUGIN_PATH", None)
    doc = json.loads(output([aimx, "--config", conf, "plugins", "--json"],
                            env=env))
    listed = doc["plugins"]
    print(json.dumps(listed, indent=1))
    if [p["name"] for p in listed] != plugins:
        fail("expected exactly the built-in plugins %s, got %s"
             % (plugins, [p["name"] for p in listed]))
    for p in listed:
        want = {"builtin": True, "file": None, "status": "ok",
                "reason": None, "kind": kinds.get(p["name"], p["kind"])}
        for key, value in want.items():
            if p.get(key) != value:
                fail("%s: %s is %r, expected %r" % (p["name"], key,
                                                    p.get(key), value))
        if not re.match(r"^[0-9]+\.[0-9]+$", p.get("abi") or ""):
            fail("%s: abi is %r" % (p["name"], p.get("abi")))
    print("ok: %d built-in plugins, builtin true, file null, status ok"
          % len(listed))

    step("a module of the same name on disk is shadowed")
    env["AIMX_PLUGIN_PATH"] = shadow_dir
    doc = json.loads(output([aimx, "--config", conf, "plugins", "--json"],
                            env=env))
    files = [p for p in doc["plugins"] if not p["builtin"]]
    if not files:
        fail("no module listed from %s" % shadow_dir)
    for p in files:
        if p["name"] in plugins:
            want = "shadowed by the built-in plugin " + p["name"]
            if p["status"] != "shadowed" or p["reason"] != want:
                fail("%s: status %r, reason %r; expected shadowed, %r"
                     % (p["file"], p["status"], p["reason"], want))
            print("ok: %s is shadowed: %s" % (p["file"], p["reason"]))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--cmake", default="cmake")
    ap.add_argument("--generator", default="")
    ap.add_argument("--c-compiler", default="")
    ap.add_argument("--c-flags", default="")
    ap.add_argument("--build-type", default="")
    ap.add_argument("--sanitize", default="0")
    ap.add_argument("--plugins", required=True,
                    help="comma-separated plugin names to build in")
    ap.add_argument("--jobs", default=os.environ.get("AIMX_TEST_JOBS", "2"))
    ap.add_argument("--example-plugins", default="",
                    help="a directory with the SDK examples' modules")
    args = ap.parse_args(argv)

    plugins = [p for p in args.plugins.split(",") if p]
    kinds = {"resolver-cares": "resolver", "policy-ipfamily": "policy",
             "transport-smtp": "transport"}
    build = os.path.abspath(args.build)
    sanitize = args.sanitize.upper() in ("1", "ON", "TRUE", "YES")
    # When run as root, aimx loads only plugins nobody else can write.
    os.umask(0o022)

    step("configuring %s with AIMX_BUILTIN_PLUGINS=%s" % (build, ";".join(plugins)))
    configure = [args.cmake, "-S", args.source, "-B", build,
                 "-DAIMX_BUILTIN_PLUGINS=" + ";".join(plugins),
                 "-DAIMX_WERROR=ON", "-DBUILD_TESTING=OFF",
                 "-DAIMX_SANITIZE=" + ("ON" if sanitize else "OFF")]
    if args.generator and not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        configure += ["-G", args.generator]
    if args.c_compiler:
        configure.append("-DCMAKE_C_COMPILER=" + args.c_compiler)
    if args.build_type:
        configure.append("-DCMAKE_BUILD_TYPE=" + args.build_type)
    configure.append("-DCMAKE_C_FLAGS=" + args.c_flags)
    run(configure, stdout=subprocess.DEVNULL)

    step("building the default target")
    # A module left by an earlier run's shadowing check must not count.
    for name in plugins:
        so = os.path.join(build, "plugins", name + ".so")
        if os.path.exists(so):
            os.unlink(so)
    run([args.cmake, "--build", build, "--parallel", args.jobs])
    aimx = os.path.join(build, "aimx")
    if not os.access(aimx, os.X_OK):
        fail("%s was not built" % aimx)
    for name in plugins:
        so = os.path.join(build, "plugins", name + ".so")
        if os.path.exists(so):
            fail("%s was built by default although %s is built in"
                 % (so, name))
    print("ok: no module of a built-in plugin was built")

    check_symbols(build, aimx, plugins)

    tmp = tempfile.mkdtemp(prefix="aimx-builtin-")
    try:
        step("cmake --install into %s/prefix" % tmp)
        prefix = os.path.join(tmp, "prefix")
        run([args.cmake, "--install", build, "--prefix", prefix],
            stdout=subprocess.DEVNULL)
        if not os.access(os.path.join(prefix, "bin", "aimx"), os.X_OK):
            fail("aimx was not installed into %s/bin" % prefix)
        installed = []
        for top, _dirs, files in os.walk(prefix):
            installed += [os.path.join(top, f) for f in files
                          if f[:-3] in plugins and f.endswith(".so")]
        if installed:
            fail("modules of built-in plugins were installed: %s"
                 % ", ".join(installed))
        print("ok: aimx installed, no module of a built-in plugin")

        empty = os.path.join(tmp, "empty-plugin-dir")
        os.mkdir(empty)
        conf = os.path.join(tmp, "aimx.conf")
        with open(conf, "w") as f:
            f.write('domain = "sender.test";\nplugin_dirs = [ "%s" ];\n'
                    % empty)

        # Modules of the same names, built on request only.
        shadow = [n for n in plugins if n == "policy-ipfamily"] or plugins[:1]
        run([args.cmake, "--build", build, "--parallel", args.jobs,
             "--target"] + shadow)
        check_listing(aimx, conf, plugins, kinds,
                      os.path.join(build, "plugins"))

        if set(plugins) >= set(kinds):
            step("the end-to-end send test against the built-in aimx")
            env = dict(os.environ)
            env.update({"AIMX_BIN": aimx, "AIMX_PLUGIN_DIR": empty,
                        "AIMX_SANITIZED": "1" if sanitize else "0"})
            env.pop("AIMX_PLUGIN_PATH", None)
            test = os.path.join(args.source, "tests", "deliver",
                                "test_deliver.py")
            run([sys.executable, test], env=env)
            if os.listdir(empty):
                fail("something was written into %s" % empty)

        if args.example_plugins and not os.path.isdir(args.example_plugins):
            fail("%s does not exist: build the whole tree first"
                 % args.example_plugins)
        if args.example_plugins and "policy-ipfamily" in plugins:
            step("plugins from disk beside built-in ones")
            test = os.path.join(args.source, "tests", "plugin_guide",
                                "test_examples.py")
            run([sys.executable, test, "--aimx", aimx,
                 "--examples", os.path.join(args.source, "sdk", "examples"),
                 "--plugin-dir", args.example_plugins,
                 "--policy", "policy-ipfamily", "--family", "ipv4"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("\nPASS: aimx with %s built in" % ", ".join(plugins))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
