#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Render one man page from its template in packaging/man/.

    render_man.py --template T --output OUT [--gzip OUT.gz]
                  [--config-md docs/configuration.md] [--set NAME=VALUE]...

Every @NAME@ in the template is replaced by the --set value of NAME (an
unknown @NAME@ is an error).  A line holding only @SETTINGS@ is replaced
by the settings of aimx.conf(5), generated from the "Every key" table of
docs/configuration.md (--config-md), so the man page cannot drift from
that table.  --gzip also writes OUT compressed as `gzip -9n` would
(no name, no time stamp), as Debian policy wants man pages.

Standard library only; runs with Debian's /usr/bin/python3.
"""

import argparse
import gzip
import re
import sys
import textwrap

# Characters outside ASCII that the docs use, as groff escapes; any
# other is written as \[uXXXX].
NAMED = {
    "\u2014": r"\(em",  # em dash
    "\u2013": r"\(en",  # en dash
    "\u2026": r"\&...",  # ellipsis
    "\u00a7": r"\(sc",  # section sign
    "\u00b2": r"\(S2",
    "\u00b3": r"\(S3",
    "\u2192": r"\(->",
    "\u2190": r"\(<-",
    "\u2264": r"\(<=",
    "\u2265": r"\(>=",
    "\u00d7": r"\(mu",
    "\u2019": r"\(cq",
    "\u2018": r"\(oq",
    "\u201c": r"\(lq",
    "\u201d": r"\(rq",
    "\u00a0": r"\~",
}

# The columns the generator understands; another table shape is an error
# (better a failed build than a silently wrong man page).
COLUMNS = ["Group", "Key", "Type", "Unit", "Default",
           "Range / allowed values", "What it does"]

LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
CODE = re.compile(r"(`+)(.+?)\1")
BOLD = re.compile(r"\*\*(.+?)\*\*")
ANNOTATION = re.compile(r"^(?P<key>`[^`]+`)\s*(?:\((?P<plugin>[a-z0-9-]+)\))?$")


def fail(msg):
    sys.exit(f"render_man.py: error: {msg}")


def escape_text(s):
    """Plain text to roff text (no font changes)."""
    out = []
    for ch in s:
        if ch == "\\":
            out.append(r"\e")
        elif ord(ch) < 128:
            out.append(ch)
        elif ch in NAMED:
            out.append(NAMED[ch])
        else:
            out.append(r"\[u%04X]" % ord(ch))
    return "".join(out)


def escape_code(s):
    """Literal text (a code span): escaped, with minus signs, not hyphens."""
    return escape_text(s).replace("-", r"\-")


def link_text(m):
    text = m.group(1)
    # A link to another page of the documentation names its file.
    if re.fullmatch(r"[A-Za-z0-9_.-]+\.md", text):
        return "docs/" + text
    return text


def inline(md):
    """One markdown cell or paragraph to roff text."""
    md = LINK.sub(link_text, md)
    parts = []
    pos = 0
    for m in CODE.finditer(md):
        parts.append(("text", md[pos:m.start()]))
        parts.append(("code", m.group(2).strip() if m.group(1) != "`"
                      else m.group(2)))
        pos = m.end()
    parts.append(("text", md[pos:]))
    out = []
    for kind, s in parts:
        if kind == "code":
            # \% : never hyphenated.
            out.append(r"\fB\%" + escape_code(s) + r"\fR")
        else:
            s = escape_text(s)
            s = BOLD.sub(lambda b: r"\fB" + b.group(1) + r"\fR", s)
            out.append(s)
    return "".join(out).strip()


def fill(text):
    """roff text to source lines: wrapped, none starting with . or '."""
    lines = textwrap.wrap(text, width=78, break_long_words=False,
                          break_on_hyphens=False)
    return [("\\&" + ln) if ln[:1] in (".", "'") else ln for ln in lines]


def split_row(line):
    line = line.strip()
    if not (line.startswith("|") and line.endswith("|")):
        return None
    # No cell of the table holds a literal '|'.
    return [c.strip() for c in line[1:-1].split("|")]


def read_table(md_path):
    """(rows, notes) of the "Every key" section of configuration.md."""
    with open(md_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        start = lines.index("## Every key")
    except ValueError:
        fail(f"{md_path}: no '## Every key' section")
    header = None
    rows = []
    notes = []
    i = start + 1
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    while i < len(lines) and lines[i].startswith("|"):
        cells = split_row(lines[i])
        if header is None:
            header = cells
            if header != COLUMNS:
                fail(f"{md_path}:{i + 1}: the table's columns are {header}, "
                     f"expected {COLUMNS}: update packaging/man/render_man.py")
        elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
            if len(cells) != len(COLUMNS):
                fail(f"{md_path}:{i + 1}: {len(cells)} cells, "
                     f"expected {len(COLUMNS)}")
            rows.append((i + 1, dict(zip(COLUMNS, cells))))
        i += 1
    # The notes that follow the table, up to the next heading.
    item = None
    while i < len(lines) and not lines[i].startswith("#"):
        ln = lines[i]
        if ln.startswith("- "):
            if item is not None:
                notes.append(item)
            item = ln[2:].strip()
        elif ln.startswith("  ") and item is not None and ln.strip():
            item += " " + ln.strip()
        elif not ln.strip() and item is not None:
            notes.append(item)
            item = None
        i += 1
    if item is not None:
        notes.append(item)
    if not rows:
        fail(f"{md_path}: the 'Every key' table has no rows")
    return rows, notes


def group_title(group):
    if group == "(top)":
        return "Top-level settings"
    name = group.strip("`")
    if not re.fullmatch(r"[a-z]+", name):
        fail(f"unexpected group {group!r}")
    return f"The {name} group"


def settings(md_path):
    rows, notes = read_table(md_path)
    out = []
    current = None
    plugin = None
    for lineno, row in rows:
        group = row["Group"]
        if group != current:
            current = group
            plugin = None
            out.append(f'.SS "{group_title(group)}"')
        if row["Key"] == "(the group)":
            out.append(".PP")
            out += fill(inline(row["What it does"]))
            if row["Default"] not in ("", "—"):
                out.append(".br")
                out += fill("Default: " + inline(row["Default"]) + ".")
            continue
        m = ANNOTATION.match(row["Key"])
        if not m:
            fail(f"{md_path}:{lineno}: cannot read the key {row['Key']!r}")
        key = m.group("key").strip("`")
        if not re.fullmatch(r"[a-z0-9_.]+", key):
            fail(f"{md_path}:{lineno}: unexpected key name {key!r}")
        if m.group("plugin"):
            plugin = m.group("plugin")
        elif key == "plugin":
            plugin = None
        out.append(".TP")
        if plugin and key != "plugin":
            out.append(f'.BR {escape_code(key)} " ({escape_code(plugin)})"')
        else:
            out.append(f".B {escape_code(key)}")
        fields = [("Type", row["Type"])]
        if row["Unit"] not in ("", "—"):
            fields.append(("Unit", row["Unit"]))
        fields.append(("Default", row["Default"]))
        if row["Range / allowed values"] not in ("", "—"):
            fields.append(("Allowed", row["Range / allowed values"]))
        for n, (name, value) in enumerate(fields):
            if n:
                out.append(".br")
            text = inline(value)
            out += fill(f"{name}: {text}" + ("" if text.endswith(".") else "."))
        out.append(".IP")
        out += fill(inline(row["What it does"]))
    if notes:
        out.append('.SS "Notes"')
        for note in notes:
            out.append(r".IP \(bu 3")
            out += fill(inline(note))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--gzip")
    ap.add_argument("--config-md")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()

    values = {}
    for s in args.set:
        name, sep, value = s.partition("=")
        if not sep:
            fail(f"--set {s!r}: expected NAME=VALUE")
        values[name] = value

    with open(args.template, encoding="utf-8") as f:
        template = f.read().splitlines()
    out = []
    for n, line in enumerate(template, 1):
        if line.strip() == "@SETTINGS@":
            if not args.config_md:
                fail(f"{args.template}:{n}: @SETTINGS@ needs --config-md")
            out += settings(args.config_md)
            continue

        def sub(m, n=n):
            if m.group(1) not in values:
                fail(f"{args.template}:{n}: no value for @{m.group(1)}@")
            return values[m.group(1)]
        out.append(re.sub(r"@([A-Z_]+)@", sub, line))
    text = "\n".join(out) + "\n"
    try:
        text.encode("ascii")
    except UnicodeEncodeError as e:
        fail(f"{args.template}: non-ASCII text in the output ({e}): "
             "write it as a groff escape")

    with open(args.output, "w", encoding="ascii") as f:
        f.write(text)
    if args.gzip:
        with open(args.gzip, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                               compresslevel=9, mtime=0) as gz:
                gz.write(text.encode("ascii"))


if __name__ == "__main__":
    main()
