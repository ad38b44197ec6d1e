#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Debian metadata of packaging/ against the project.

    check_metadata.py --source SOURCE_DIR --version PROJECT_VERSION

  - packaging/changelog parses as a Debian changelog (dpkg-parsechangelog
    when installed) and its latest entry is the project's version, so a
    release cannot be packaged under an old changelog;
  - packaging/copyright is a machine-readable (DEP-5) copyright file whose
    MIT licence text is the one in LICENSE, and which covers every file;
  - every lintian override in packaging/lintian/ names a package that
    exists and gives its reason in a comment line right above it.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

failures = []
PACKAGES = {"aimx", "aimx-dev", "aimx-plugin-resolver-cares",
            "aimx-plugin-transport-smtp", "aimx-plugin-policy-ipfamily"}


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def words(text):
    return " ".join(text.split())


def check_changelog(path, version):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.match(r"aimx \(([^)]+)\) [a-z-]+; urgency=[a-z]+\n", text)
    if not m:
        fail(f"{path}: the first line is not 'aimx (VERSION) DIST; urgency=U'")
        return
    if m.group(1) != version:
        fail(f"{path}: the latest entry is {m.group(1)}, the project is "
             f"{version}: add an entry for {version}")
    if not re.search(r"^ -- .+ <[^@>]+@[^>]+>  \w{3}, \d{2} \w{3} \d{4} "
                     r"\d{2}:\d{2}:\d{2} [+-]\d{4}$", text, re.M):
        fail(f"{path}: no valid trailer line (' -- NAME <MAIL>  DATE')")
    for n, line in enumerate(text.splitlines(), 1):
        if len(line) > 80:
            fail(f"{path}:{n}: longer than 80 characters")
    tool = shutil.which("dpkg-parsechangelog")
    if tool:
        p = subprocess.run([tool, "-l", path, "-SVersion"],
                           capture_output=True, text=True)
        if p.returncode != 0 or p.stderr.strip():
            fail(f"{path}: dpkg-parsechangelog: {p.stderr.strip()}")
        elif p.stdout.strip() != version:
            fail(f"{path}: dpkg-parsechangelog reads {p.stdout.strip()}")
    if not failures:
        print(f"ok   {path}: latest entry {version}")


def check_copyright(path, license_path):
    before = len(failures)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p]

    def fields(par):
        out = {}
        key = None
        for line in par.splitlines():
            if line.startswith((" ", "\t")) and key:
                out[key] += "\n" + line[1:]
            else:
                key, _, value = line.partition(":")
                out[key] = value.strip()
        return out

    pars = [fields(p) for p in paragraphs]
    head = pars[0]
    if head.get("Format") != ("https://www.debian.org/doc/packaging-manuals/"
                              "copyright-format/1.0/"):
        fail(f"{path}: the header's Format is not DEP-5 1.0")
    if head.get("Upstream-Name") != "aimx":
        fail(f"{path}: Upstream-Name is not aimx")
    files = [p for p in pars[1:] if "Files" in p]
    if not any(p["Files"].split() == ["*"] for p in files):
        fail(f"{path}: no 'Files: *' paragraph")
    for p in files:
        if "Copyright" not in p or "License" not in p:
            fail(f"{path}: Files: {p['Files']} lacks Copyright or License")
    licences = {p["License"].splitlines()[0]: p["License"]
                for p in pars[1:] if "License" in p and "Files" not in p}
    if "MIT" not in licences:
        fail(f"{path}: no stand-alone 'License: MIT' paragraph with its text")
    else:
        body = "\n".join(licences["MIT"].splitlines()[1:])
        body = re.sub(r"^\.$", "", body, flags=re.M)
        with open(license_path, encoding="utf-8") as f:
            lic = f.read()
        # LICENSE: title, copyright line, then the permission notice.
        notice = lic[lic.index("Permission is hereby granted"):]
        if words(body) != words(notice):
            fail(f"{path}: the MIT text differs from {license_path}")
        holder = re.search(r"^Copyright \(c\) (.+)$", lic, re.M).group(1)
        if not any(words(p.get("Copyright", "")) == words(holder)
                   for p in files):
            fail(f"{path}: no Copyright: {holder} (from {license_path})")
    if len(failures) == before:
        print(f"ok   {path}: DEP-5, MIT as in {license_path}")


def check_overrides(directory):
    before = len(failures)
    if not os.path.isdir(directory):
        print(f"ok   {directory}: no lintian overrides")
        return
    count = 0
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name not in PACKAGES:
            fail(f"{path}: no package is called {name}")
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#"):
                continue
            tag = line[len(name) + 2:] if line.startswith(f"{name}: ") else line
            if not re.match(r"[a-z0-9][a-z0-9.+-]*( |$)", tag):
                fail(f"{path}:{n}: not '[{name}: ]TAG [CONTEXT]'")
            if n < 2 or not lines[n - 2].startswith("# "):
                fail(f"{path}:{n}: no '# reason' comment on the line above")
            count += 1
    if len(failures) == before:
        print(f"ok   {directory}: {count} override(s), each with its reason")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--version", required=True)
    args = ap.parse_args()
    pkg = os.path.join(args.source, "packaging")
    check_changelog(os.path.join(pkg, "changelog"), args.version)
    check_copyright(os.path.join(pkg, "copyright"),
                    os.path.join(args.source, "LICENSE"))
    check_overrides(os.path.join(pkg, "lintian"))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
