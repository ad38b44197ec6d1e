#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx.conf(5) against docs/configuration.md, and the example config.

    check_man_conf.py --man BUILD/packaging/man/aimx.conf.5
                      --config-md docs/configuration.md
                      [--example packaging/aimx.conf]

The man page's SETTINGS section is generated from the "Every key" table of
docs/configuration.md.  This test reads both on its own -- the table as
markdown, the page as a reader sees it (rendered by groff) -- and checks
that every setting of the table is in the page, in its group, with the
same type, unit and default, and that the page has no setting the table
lacks.  With --example it also checks that every setting the example
configuration sets is a real one and, where the table gives a literal
default, is set to that default (the example says so).

Standard library only; needs groff.
"""

import argparse
import re
import subprocess
import sys

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def normalize(text):
    """Text as groff renders it and as markdown writes it, made equal."""
    for a, b in (("\u2010", "-"), ("\u2011", "-"), ("\u2212", "-"),
                 ("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'),
                 ("\u201d", '"'), ("\u2026", "..."), ("\u00a0", " ")):
        text = text.replace(a, b)
    return " ".join(text.split())


def md_plain(md):
    """A markdown cell as plain text."""
    md = re.sub(r"\[([^\]]+)\]\([^)]+\)",
                lambda m: ("docs/" + m.group(1)
                           if re.fullmatch(r"[\w.-]+\.md", m.group(1))
                           else m.group(1)), md)
    md = re.sub(r"(`+)(.+?)\1", lambda m: m.group(2), md)
    md = md.replace("**", "")
    return normalize(md)


def read_table(path):
    """{(group, key): {"type", "unit", "default"}} of the Every key table."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = lines.index("## Every key")
    rows = {}
    header = None
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if not line.startswith("|"):
            if header is not None:
                break
            continue
        cells = [c.strip() for c in line.strip()[1:-1].split("|")]
        if header is None:
            header = cells
            continue
        if all(re.fullmatch(r":?-+:?", c) for c in cells):
            continue
        row = dict(zip(header, cells))
        if row["Key"] == "(the group)":
            continue
        key = re.match(r"`([^`]+)`", row["Key"]).group(1)
        group = "(top)" if row["Group"] == "(top)" else row["Group"].strip("`")
        rows[(group, key)] = {
            "type": md_plain(row["Type"]),
            "unit": "" if row["Unit"] in ("—", "") else md_plain(row["Unit"]),
            "default": md_plain(row["Default"]),
            "default_md": row["Default"],
        }
    if not rows:
        sys.exit(f"no rows in the 'Every key' table of {path}")
    return rows


def render(page):
    """The page as plain text, one paragraph per line."""
    out = subprocess.run(
        ["groff", "-man", "-Tutf8", "-rLL=4000n", "-P-c", "-P-b", "-P-u",
         "-P-o", page],
        check=True, capture_output=True).stdout.decode("utf-8")
    return re.sub(r".\x08", "", out).splitlines()


def read_page(page):
    """{(group, key): body text} of the page's SETTINGS section."""
    lines = render(page)
    try:
        start = lines.index("SETTINGS")
    except ValueError:
        sys.exit(f"{page}: no SETTINGS section")
    entries = {}
    group = None
    current = None
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if line and not line[0].isspace():
            break  # the next section
        m = re.match(r"^ {3}(\S.*)$", line)
        if m:
            title = m.group(1).strip()
            if title == "Top-level settings":
                group = "(top)"
            else:
                g = re.fullmatch(r"The (\w+) group", title)
                group = g.group(1) if g else None
            current = None
            i += 1
            continue
        m = re.match(r"^ {7}([a-z0-9_.]+)(?: \(([a-z0-9-]+)\))?"
                     r"(?: +(Type: .*))?$", line)
        nxt = next((ln for ln in lines[i + 1:] if ln.strip()), "")
        if m and group and (m.group(3) or nxt.startswith(" " * 14 + "Type:")):
            current = (group, m.group(1))
            if current in entries:
                fail(f"{page}: {current} is documented twice")
            entries[current] = m.group(3) or ""
        elif current and line.startswith(" " * 14):
            entries[current] += " " + line.strip()
        elif line.strip():
            current = None
        i += 1
    return {k: normalize(v) for k, v in entries.items()}


def check_page(rows, entries, page):
    for (group, key), row in rows.items():
        where = f"{key!r} in {'the top level' if group == '(top)' else 'group ' + repr(group)}"
        body = entries.get((group, key))
        if body is None:
            fail(f"{page}: {where} (docs/configuration.md) is missing")
            continue
        for field, value in (("Type", row["type"]), ("Unit", row["unit"]),
                             ("Default", row["default"])):
            if not value:
                continue
            # Each field ends with a full stop: "Default: 2" must not match
            # "Default: 20.".
            want = f"{field}: {value}" + ("" if value.endswith(".") else ".")
            if want not in body:
                fail(f"{page}: {where}: expected {want!r}, the page says "
                     f"{body[:300]!r}")
    for (group, key) in entries:
        if (group, key) not in rows:
            fail(f"{page}: documents {key!r} in {group!r}, which "
                 "docs/configuration.md does not have")


LITERAL = re.compile(r'^`("[^"`]*"|-?\d+|true|false)`$')


def check_example(rows, path):
    """Settings of the example config: known keys, documented defaults."""
    before = len(failures)
    groups = []
    checked = 0
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"([a-z0-9_]+)\s*[:=]\s*\{", line)
            if m:
                groups.append(m.group(1))
                continue
            if line == "};":
                if not groups:
                    fail(f"{path}:{n}: '}};' closes no group")
                else:
                    groups.pop()
                continue
            m = re.fullmatch(r"([a-z0-9_]+)\s*[:=]\s*(.+?)\s*;", line)
            if not m:
                fail(f"{path}:{n}: cannot read {line!r}")
                continue
            if groups:
                group, key = groups[0], ".".join(groups[1:] + [m.group(1)])
            else:
                group, key = "(top)", m.group(1)
            row = rows.get((group, key))
            if row is None:
                fail(f"{path}:{n}: {key!r} is not a setting of "
                     f"{group!r} in docs/configuration.md")
                continue
            lit = LITERAL.match(row["default_md"])
            if lit and lit.group(1) != m.group(2):
                fail(f"{path}:{n}: {key} = {m.group(2)}, but its default is "
                     f"{lit.group(1)}: the example promises defaults")
            checked += 1
    if groups:
        fail(f"{path}: group {groups[-1]!r} is not closed")
    if checked == 0:
        fail(f"{path}: no setting found")
    if len(failures) == before:
        print(f"ok   {path}: {checked} settings, all known, defaults as "
              "documented")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--man", required=True)
    ap.add_argument("--config-md", required=True)
    ap.add_argument("--example")
    args = ap.parse_args()

    rows = read_table(args.config_md)
    entries = read_page(args.man)
    check_page(rows, entries, args.man)
    if not failures:
        print(f"ok   {args.man}: all {len(rows)} settings of "
              f"{args.config_md}, with type, unit and default")
    if args.example:
        check_example(rows, args.example)
    if failures:
        print(f"{len(failures)} problem(s).  aimx.conf(5) is generated from "
              "docs/configuration.md at build time (packaging/man/"
              "render_man.py): rebuild, and fix the table or the generator.")
        sys.exit(1)


if __name__ == "__main__":
    main()
