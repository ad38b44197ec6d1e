#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx(1) against the command line in core/, aimx-plugin(7) against the SDK.

    check_man_cli.py --man BUILD/packaging/man/aimx.1 --core core/
                     [--plugin-man BUILD/packaging/man/aimx-plugin.7
                      --header sdk/include/aimx/plugin.h]

aimx(1) is written by hand, so this test keeps it honest.  It reads, from
the sources:

  - every command of the table in core/main.c (name and subcommand): each
    must have its own subsection (.SS "aimx NAME [SUB] ...") in COMMANDS;
  - every long option of every struct option table in core/*.c: each must
    appear as --NAME in the rendered page;
  - every exit code of core/exitcodes.h: each must be a tag of EXIT STATUS;
  - every environment variable core/ reads (getenv/secure_getenv): each
    must be a tag of ENVIRONMENT.

For aimx-plugin(7): the plugin ABI of the header (AIMX_ABI_MAJOR/MINOR)
must be the one the page states.

Standard library only; needs groff.
"""

import argparse
import glob
import os
import re
import subprocess
import sys

SYSEXITS = {"EX_OK": 0, "EX_USAGE": 64, "EX_DATAERR": 65, "EX_NOINPUT": 66,
            "EX_NOUSER": 67, "EX_NOHOST": 68, "EX_UNAVAILABLE": 69,
            "EX_SOFTWARE": 70, "EX_OSERR": 71, "EX_OSFILE": 72,
            "EX_CANTCREAT": 73, "EX_IOERR": 74, "EX_TEMPFAIL": 75,
            "EX_PROTOCOL": 76, "EX_NOPERM": 77, "EX_CONFIG": 78}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def render(page):
    out = subprocess.run(
        ["groff", "-man", "-Tutf8", "-rLL=4000n", "-P-c", "-P-b", "-P-u",
         "-P-o", page], check=True, capture_output=True).stdout.decode()
    out = re.sub(r".\x08", "", out)
    for a, b in (("\u2010", "-"), ("\u2011", "-"), ("\u2212", "-"),
                 ("\u2018", "'"), ("\u2019", "'")):
        out = out.replace(a, b)
    return out.splitlines()


def section(lines, name):
    """The lines of one top-level section of a rendered page."""
    try:
        start = lines.index(name)
    except ValueError:
        return None
    end = start + 1
    while end < len(lines) and (not lines[end] or lines[end][0].isspace()):
        end += 1
    return lines[start + 1:end]


def tags(lines):
    """The .TP tags of a section (7 columns in, text or a number)."""
    found = set()
    for ln in lines:
        m = re.match(r"^ {7}(\S+)", ln)
        if m:
            found.add(m.group(1))
    return found


def commands(core):
    src = read(os.path.join(core, "main.c"))
    m = re.search(r"\bcommands\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    if not m:
        sys.exit("cannot find 'commands[] = {' in core/main.c: update "
                 "tests/packaging/check_man_cli.py")
    found = []
    for e in re.finditer(r"\{\s*\"([a-z0-9-]+)\",\s*(NULL|\"([a-z0-9-]+)\")",
                         m.group(1)):
        found.append(e.group(1) + (" " + e.group(3) if e.group(3) else ""))
    if not found:
        sys.exit("no command found in core/main.c's command table")
    return found


def long_options(core):
    found = set()
    for path in sorted(glob.glob(os.path.join(core, "*.c"))):
        for m in re.finditer(r"\{\s*\"([a-z0-9-]+)\",\s*"
                             r"(no|required|optional)_argument", read(path)):
            found.add(m.group(1))
    return found


def exit_codes(core):
    found = {}
    src = read(os.path.join(core, "exitcodes.h"))
    for m in re.finditer(r"\b(AIMX_EXIT_\w+)\s*=\s*(\w+)", src):
        v = m.group(2)
        code = int(v) if v.isdigit() else SYSEXITS.get(v)
        if code is None:
            sys.exit(f"core/exitcodes.h: unknown value {v} for {m.group(1)}")
        found[m.group(1)] = code
    if not found:
        sys.exit("no exit code found in core/exitcodes.h")
    return found


def env_vars(core):
    found = set()
    for path in sorted(glob.glob(os.path.join(core, "*.c"))):
        found |= set(re.findall(r"\b(?:secure_)?getenv\(\s*\"(\w+)\"",
                                read(path)))
    return found


def plain_ss(line):
    """A .SS line of the page source as text."""
    text = line[3:].strip()
    text = re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-")
    return text.strip('"')


def check_aimx1(page, core):
    source = read(page).splitlines()
    lines = render(page)
    text = "\n".join(lines)

    subsections = [plain_ss(ln) for ln in source if ln.startswith(".SS ")]
    cmds = commands(core)
    for cmd in cmds:
        want = "aimx " + cmd
        if not any(s == want or s.startswith(want + " ") for s in subsections):
            fail(f"{page}: no subsection for '{want}' (a command of "
                 "core/main.c): add '.SS \"" + want + " ...\"' to "
                 "packaging/man/aimx.1.in")

    opts = long_options(core)
    for opt in sorted(opts):
        if not re.search(r"(?<![\w-])--" + re.escape(opt) + r"(?![\w-])",
                         text):
            fail(f"{page}: the option --{opt} (core/) is not documented")

    codes = exit_codes(core)
    status = section(lines, "EXIT STATUS")
    if status is None:
        fail(f"{page}: no EXIT STATUS section")
    else:
        have = tags(status)
        for name, code in sorted(codes.items(), key=lambda kv: kv[1]):
            if str(code) not in have:
                fail(f"{page}: exit status {code} ({name}, "
                     "core/exitcodes.h) is not in EXIT STATUS")

    env = env_vars(core)
    envsec = section(lines, "ENVIRONMENT")
    if envsec is None:
        fail(f"{page}: no ENVIRONMENT section")
    else:
        have = tags(envsec)
        for var in sorted(env):
            if var not in have:
                fail(f"{page}: the environment variable {var} (read in "
                     "core/) is not in ENVIRONMENT")
    if not failures:
        print(f"ok   {page}: {len(cmds)} commands ({', '.join(cmds)}), "
              f"{len(opts)} long options, {len(codes)} exit codes, "
              f"{len(env)} environment variables ({', '.join(sorted(env))})")


def check_plugin7(page, header):
    before = len(failures)
    src = read(header)
    major = re.search(r"^#define AIMX_ABI_MAJOR\s+(\d+)\s*$", src, re.M).group(1)
    minor = re.search(r"^#define AIMX_ABI_MINOR\s+(\d+)\s*$", src, re.M).group(1)
    text = " ".join("\n".join(render(page)).split())
    abi = f"{major}.{minor}"
    if f"This SDK speaks plugin ABI {abi}." not in text:
        fail(f"{page}: does not say 'This SDK speaks plugin ABI {abi}.' "
             f"({header})")
    provides = ", ".join(f"aimx-abi-{major}.{m}" for m in range(int(minor) + 1))
    if f"This SDK's aimx provides {provides}." not in text:
        fail(f"{page}: does not list the virtual packages {provides}")
    for name in ("SYNOPSIS", "DESCRIPTION", "VERSIONING", "BUILDING",
                 "PACKAGING A PLUGIN", "EXAMPLE", "SEE ALSO"):
        if name not in render(page):
            fail(f"{page}: no {name} section")
    if len(failures) == before:
        print(f"ok   {page}: plugin ABI {abi}, provides {provides}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--man", required=True)
    ap.add_argument("--core", required=True)
    ap.add_argument("--plugin-man")
    ap.add_argument("--header")
    args = ap.parse_args()
    check_aimx1(args.man, args.core)
    if args.plugin_man:
        check_plugin7(args.plugin_man, args.header)
    if failures:
        print(f"{len(failures)} problem(s): packaging/man/*.in are written "
              "by hand; document what the sources have.")
        sys.exit(1)


if __name__ == "__main__":
    main()
