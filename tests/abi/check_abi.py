#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Check the plugin ABI layout against the committed baselines.

The layout is the text printed by the aimx_abi_layout program (layout.c):

    abi M.N
    symbol AIMX_PLUGIN_ENTRY_SYMBOL <name>
    value <NAME> <number>
    struct <name> size <N> align <A>
    field <struct>.<field> offset <O> size <S>

Rules, for a header declaring ABI M.N (see tests/abi/1.0/README.md):

  * tests/abi/M.N/layout.txt must exist and equal the layout exactly: a
    published ABI never changes, so any layout change needs a new minor.
  * Every older baseline M.K (K < N) must still hold line for line: fields
    keep their offset and size, values keep their number, nothing is
    removed; a struct may only grow, and a field added to a struct must
    start at or after the struct's old size (an older writer's struct_size
    covers its tail padding, so a field placed there would be read from
    garbage).  A frozen value type (aimx_addr) never changes at all.
  * Every struct but the value types starts with uint32_t struct_size, as
    the header requires (this covers structs a new minor adds).
  * A baseline of the same major and a higher minor than the header is an
    error (the minor went backwards).
  * Baselines of another major are ignored, except that the first three
    fields of aimx_plugin_descriptor keep their place in every major (the
    header promises it: it is how a host names a plugin's ABI).
  * A baseline directory holding a frozen copy of the header (plugin.h) must
    agree with its layout.txt on every struct, field and value name, so that
    regenerating a published baseline in place is caught.

With --header, the layout is also checked to cover every struct, field,
enum value and numeric #define of that header: layout.c cannot see a field
that was added into a struct's tail padding, the header text can.

Exit status: 0 when every check passes, 1 otherwise (2 for bad usage).
"""

import argparse
import os
import re
import subprocess
import sys

DESCRIPTOR_PREFIX = ("struct_size", "abi_major", "abi_minor")
# Frozen value types: the header's one exception to "every struct starts
# with uint32_t struct_size".
VALUE_TYPES = ("aimx_addr",)
# Appended fields with these names are explicit padding, which may (and
# usually must) fill an older version's tail padding.
PADDING_NAME = re.compile(r"^(reserved|pad)")
# How messages name the program that prints a layout.
LAYOUT_TOOL = "the aimx_abi_layout program built from tests/abi/layout.c"


class LayoutError(Exception):
    pass


class Layout:
    """One layout text: its lines in order, and each line by key."""

    def __init__(self, text, origin):
        self.origin = origin
        self.lines = []  # (key, line)
        self.by_key = {}
        self.abi = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = " ".join(raw.split())
            if not line:
                continue
            key, data = self._parse(line, lineno)
            if key in self.by_key:
                raise LayoutError("%s:%d: duplicate entry %r"
                                  % (origin, lineno, line))
            self.lines.append((key, line))
            self.by_key[key] = (line, data)
        if self.abi is None:
            raise LayoutError("%s: no 'abi M.N' line" % origin)

    def _parse(self, line, lineno):
        f = line.split(" ")
        num = re.compile(r"^-?[0-9]+$")
        if f[0] == "abi" and len(f) == 2 and re.match(r"^[0-9]+\.[0-9]+$", f[1]):
            major, minor = f[1].split(".")
            self.abi = (int(major), int(minor))
            return ("abi",), self.abi
        if f[0] == "symbol" and len(f) == 3:
            return ("symbol", f[1]), f[2]
        if f[0] == "value" and len(f) == 3 and num.match(f[2]):
            return ("value", f[1]), int(f[2])
        if (f[0] == "struct" and len(f) == 6 and f[2] == "size"
                and f[4] == "align" and num.match(f[3]) and num.match(f[5])):
            return ("struct", f[1]), (int(f[3]), int(f[5]))
        if (f[0] == "field" and len(f) == 6 and "." in f[1]
                and f[2] == "offset" and f[4] == "size"
                and num.match(f[3]) and num.match(f[5])):
            return ("field", f[1]), (int(f[3]), int(f[5]))
        raise LayoutError("%s:%d: cannot parse %r" % (self.origin, lineno, line))

    def structs(self):
        return [k[1] for k, _ in self.lines if k[0] == "struct"]

    def fields(self, struct):
        """Field names of a struct, in the order listed."""
        prefix = struct + "."
        return [k[1][len(prefix):] for k, _ in self.lines
                if k[0] == "field" and k[1].startswith(prefix)]

    def values(self):
        return {k[1]: self.by_key[k][1] for k, _ in self.lines if k[0] == "value"}


def abi_str(abi):
    return "%d.%d" % abi


def baseline_file(bdir, abi):
    return os.path.join(bdir, abi_str(abi), "layout.txt")


def how_to_bump(bdir, abi):
    nxt = (abi[0], abi[1] + 1)
    return ("append new fields at the end of their struct (and new values at "
            "the end of their enum), bump AIMX_ABI_MINOR to %d in "
            "sdk/include/aimx/plugin.h, and add %s (the output of %s) next "
            "to the existing baselines, which are never edited"
            % (nxt[1], baseline_file(bdir, nxt), LAYOUT_TOOL))


def append_only_errors(old, cur):
    """Lines of `old` that `cur` does not keep, as human-readable errors.
    Used both for an older minor and to classify a change to the current
    one."""
    errors = []
    old_tag = abi_str(old.abi)
    for key, line in old.lines:
        if key[0] == "abi":
            continue
        if key not in cur.by_key:
            errors.append("%s %s of ABI %s was removed (was: '%s')"
                          % (key[0], key[1], old_tag, line))
            continue
        cur_line, cur_data = cur.by_key[key]
        if key[0] == "struct":
            (osize, oalign), (csize, calign) = old.by_key[key][1], cur_data
            if key[1] in VALUE_TYPES and cur_line != line:
                errors.append("struct %s is a frozen value type, embedded in "
                              "other structs, and never changes: '%s' in ABI "
                              "%s, now '%s'" % (key[1], line, old_tag, cur_line))
            elif calign != oalign:
                errors.append("struct %s changed alignment: '%s' in ABI %s, "
                              "now '%s'" % (key[1], line, old_tag, cur_line))
            elif csize < osize:
                errors.append("struct %s shrank: '%s' in ABI %s, now '%s'"
                              % (key[1], line, old_tag, cur_line))
            continue
        if cur_line != line:
            errors.append("'%s' in ABI %s is now '%s'"
                          % (line, old_tag, cur_line))
    # Fields appended to a struct the old ABI knew must lie beyond its old
    # size: a reader trusts any field below the writer's struct_size.
    for struct in old.structs():
        if ("struct", struct) not in cur.by_key:
            continue
        osize = old.by_key[("struct", struct)][1][0]
        for name in cur.fields(struct):
            key = ("field", struct + "." + name)
            if key in old.by_key or PADDING_NAME.match(name):
                continue
            offset = cur.by_key[key][1][0]
            if offset < osize:
                errors.append(
                    "new field %s.%s starts at offset %d, inside the %d bytes "
                    "of struct %s in ABI %s: a %s writer's struct_size covers "
                    "it, so a reader would take that writer's padding for "
                    "data; make it start at offset %d or later (fill the gap "
                    "with an explicit 'reserved' field)"
                    % (struct, name, offset, osize, struct, old_tag, old_tag,
                       osize))
    return errors


def contract_errors(cur):
    """The header's own rule, checked on every struct including ones a new
    minor adds: readers learn a writer's version from struct_size alone."""
    errors = []
    for struct in cur.structs():
        if struct in VALUE_TYPES:
            continue
        fields = cur.fields(struct)
        first = cur.by_key[("field", "%s.%s" % (struct, fields[0]))][0] \
            if fields else "(no fields)"
        want = "field %s.struct_size offset 0 size 4" % struct
        if first != want:
            errors.append("struct %s must start with 'uint32_t struct_size' "
                          "(expected '%s', found '%s'): only frozen value types "
                          "(%s) are exempt" % (struct, want, first,
                                               ", ".join(VALUE_TYPES)))
    return errors


def order_errors(old, cur):
    """Same lines, different order: only layout.c's listing moved."""
    if sorted(old.lines) == sorted(cur.lines) and old.lines != cur.lines:
        return ["the lines are the same but in another order: keep layout.c "
                "listing structs, fields and values in header order"]
    return []


def check_current(base, cur, bdir):
    """The header's own M.N baseline must be reproduced exactly."""
    if base.lines == cur.lines:
        return []
    where = baseline_file(bdir, cur.abi)
    tag = abi_str(cur.abi)
    incompatible = append_only_errors(base, cur)
    if incompatible:
        head = ("the layout differs from %s, and the change is not an "
                "append: ABI %s is published and within major %d nothing may "
                "move, shrink, be renumbered or removed"
                % (where, tag, cur.abi[0]))
        tail = ("restore the original layout; to extend the ABI, "
                + how_to_bump(bdir, cur.abi)
                + " (an incompatible change needs a new major instead)")
        return [head] + ["  " + e for e in incompatible] + ["  " + tail]
    reorder = order_errors(base, cur)
    if reorder:
        return ["the layout differs from %s: %s" % (where, reorder[0])]
    added = [line for key, line in cur.lines if key not in base.by_key]
    grown = [cur.by_key[key][0] for key, line in base.lines
             if key[0] == "struct" and cur.by_key[key][0] != line]
    head = ("the layout differs from %s although the header still says ABI "
            "%s; published baselines are frozen" % (where, tag))
    details = ["  added: '%s'" % line for line in added]
    details += ["  grown: '%s' (was '%s')" % (line, base.by_key[("struct",
                line.split(" ")[1])][0]) for line in grown]
    return ([head] + details
            + ["  the change is append-only, so: " + how_to_bump(bdir, cur.abi)])


def read_layout(path):
    try:
        with open(path, encoding="utf-8") as fp:
            return Layout(fp.read(), path)
    except OSError as e:
        raise LayoutError("cannot read %s: %s" % (path, e.strerror))


def load_baselines(bdir):
    """{(major, minor): (Layout, dir)}; malformed entries raise."""
    found = {}
    try:
        names = sorted(os.listdir(bdir))
    except OSError as e:
        raise LayoutError("cannot list baselines in %s: %s" % (bdir, e.strerror))
    for name in names:
        m = re.match(r"^([0-9]+)\.([0-9]+)$", name)
        path = os.path.join(bdir, name)
        if not m or not os.path.isdir(path):
            continue
        abi = (int(m.group(1)), int(m.group(2)))
        layout = read_layout(os.path.join(path, "layout.txt"))
        if layout.abi != abi:
            raise LayoutError("%s says 'abi %s' but lies in directory %s"
                              % (layout.origin, abi_str(layout.abi), name))
        found[abi] = (layout, path)
    return found


def check_baselines(cur, bdir):
    errors = []
    baselines = load_baselines(bdir)
    major, minor = cur.abi
    if cur.abi in baselines:
        errors += check_current(baselines[cur.abi][0], cur, bdir)
    else:
        errors.append(
            "no baseline for ABI %s, which the header declares: %s is missing; "
            "if you bumped AIMX_ABI_MINOR after appending, add it (the output "
            "of %s) and leave the older baselines untouched"
            % (abi_str(cur.abi), baseline_file(bdir, cur.abi), LAYOUT_TOOL))
    for abi in sorted(baselines):
        old, path = baselines[abi]
        if abi[0] == major and abi[1] < minor:
            errs = append_only_errors(old, cur)
            if errs:
                errors.append(
                    "ABI %s breaks ABI %s (%s): plugins built for %s would "
                    "misread it" % (abi_str(cur.abi), abi_str(abi),
                                    old.origin, abi_str(abi)))
                errors += ["  " + e for e in errs]
                errors.append(
                    "  restore those lines: within a major only appending is "
                    "allowed (fields at the end of their struct, values at "
                    "the end of their enum); an incompatible change needs a "
                    "new major")
        elif abi[0] == major and abi[1] > minor:
            errors.append(
                "baseline %s is newer than the header's ABI %s: "
                "AIMX_ABI_MINOR must never go back (set it to at least %d)"
                % (old.origin, abi_str(cur.abi), abi[1]))
        elif abi[0] != major:
            errors += descriptor_prefix_errors(old, cur)
        header = os.path.join(path, "plugin.h")
        if os.path.exists(header):
            errs = coverage_errors(parse_header(header), old)
            if errs:
                errors.append("%s does not match the frozen header %s: a "
                              "published baseline was edited" % (old.origin,
                                                                  header))
                errors += ["  " + e for e in errs]
    return errors


def descriptor_prefix_errors(old, cur):
    errors = []
    for name in DESCRIPTOR_PREFIX:
        key = ("field", "aimx_plugin_descriptor." + name)
        if key not in old.by_key:
            continue
        if key not in cur.by_key or cur.by_key[key][0] != old.by_key[key][0]:
            errors.append(
                "'%s' in ABI %s but %s in ABI %s: the first three fields of "
                "aimx_plugin_descriptor keep their place in every major, so "
                "that a host can tell which ABI a plugin was built for"
                % (old.by_key[key][0], abi_str(old.abi),
                   "'%s'" % cur.by_key[key][0] if key in cur.by_key
                   else "absent", abi_str(cur.abi)))
    return errors


# ---------------------------------------------------------------------------
# Reading the header text, only as far as this header's style needs: one
# member per declaration, no nested structs or unions.

def _int_literal(text):
    m = re.match(r"^\(?\s*(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*\s*\)?$", text.strip())
    return int(m.group(1), 0) if m else None


def parse_header(path):
    with open(path, encoding="utf-8") as fp:
        text = fp.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = text.replace("\\\n", " ")
    hdr = {"path": path, "defines": {}, "values": {}, "structs": {},
           "struct_order": [], "symbol": None}
    for line in text.splitlines():
        m = re.match(r"^\s*#\s*define\s+(AIMX_\w+)\s+(.*?)\s*$", line)
        if not m:
            continue
        name, body = m.group(1), m.group(2)
        if name == "AIMX_PLUGIN_ENTRY_SYMBOL":
            hdr["symbol"] = body.strip('"')
            continue
        number = _int_literal(body)
        if number is not None:
            hdr["defines"][name] = number
    for m in re.finditer(r"\benum\s+(\w+)\s*\{([^}]*)\}", text):
        nxt = 0
        for item in m.group(2).split(","):
            item = item.strip()
            if not item:
                continue
            name, _, expr = item.partition("=")
            number = _int_literal(expr) if expr else nxt
            hdr["values"][name.strip()] = number
            nxt = number + 1 if number is not None else None
    for m in re.finditer(r"\bstruct\s+(\w+)\s*\{", text):
        end = text.index("}", m.end())
        body = text[m.end():end]
        if "{" in body:
            raise LayoutError("%s: struct %s has a nested body; check_abi.py "
                              "cannot read it" % (path, m.group(1)))
        hdr["struct_order"].append(m.group(1))
        hdr["structs"][m.group(1)] = _member_names(body)
    return hdr


def _member_names(body):
    names = []
    body = "\n".join(l for l in body.splitlines() if not l.strip().startswith("#"))
    for decl in body.split(";"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
        if fp:
            names.append(fp.group(1))
            continue
        for part in decl.split(","):
            part = re.sub(r"\[[^\]]*\]", " ", part)
            part = re.sub(r":\s*\w+\s*$", " ", part)
            idents = re.findall(r"[A-Za-z_]\w*", part)
            if idents:
                names.append(idents[-1])
    return names


def coverage_errors(hdr, layout):
    """What the header declares and the layout does not list, or the other
    way round."""
    errors = []
    src = "tests/abi/layout.c"
    major = hdr["defines"].get("AIMX_ABI_MAJOR")
    minor = hdr["defines"].get("AIMX_ABI_MINOR")
    if (major, minor) != layout.abi:
        errors.append("the header declares ABI %s.%s but the layout says 'abi %s'"
                      % (major, minor, abi_str(layout.abi)))
    sym = layout.by_key.get(("symbol", "AIMX_PLUGIN_ENTRY_SYMBOL"))
    if hdr["symbol"] != (sym[1] if sym else None):
        errors.append("AIMX_PLUGIN_ENTRY_SYMBOL is \"%s\" in the header but %s "
                      "in the layout" % (hdr["symbol"], sym[1] if sym else "absent"))
    want = dict(hdr["values"])
    want.update({k: v for k, v in hdr["defines"].items()
                 if k not in ("AIMX_ABI_MAJOR", "AIMX_ABI_MINOR")})
    have = layout.values()
    for name in sorted(set(want) - set(have)):
        errors.append("value %s is defined in the header but not listed: add "
                      "VALUE(%s) to print_values() in %s" % (name, name, src))
    for name in sorted(set(have) - set(want)):
        errors.append("value %s is listed but the header does not define it"
                      % name)
    for name in sorted(set(want) & set(have)):
        if want[name] is not None and want[name] != have[name]:
            errors.append("value %s is %d in the header but %d in the layout"
                          % (name, want[name], have[name]))
    listed = layout.structs()
    for struct in hdr["struct_order"]:
        if struct not in listed:
            errors.append("struct %s is declared in the header but not listed: "
                          "add BEGIN/FIELD/END(%s) to print_structs() in %s"
                          % (struct, struct, src))
            continue
        hfields, lfields = hdr["structs"][struct], layout.fields(struct)
        if hfields != lfields:
            missing = [f for f in hfields if f not in lfields]
            extra = [f for f in lfields if f not in hfields]
            msg = "struct %s: the header declares fields (%s) but the layout " \
                  "lists (%s)" % (struct, ", ".join(hfields), ", ".join(lfields))
            if missing:
                msg += "; not listed: %s (add FIELD(%s, ...) in declaration " \
                       "order and update END() in %s)" % (
                           ", ".join(missing), struct, src)
            if extra:
                msg += "; not in the header: %s" % ", ".join(extra)
            if not missing and not extra:
                msg += "; list them in declaration order"
            errors.append(msg)
    for struct in listed:
        if struct not in hdr["structs"]:
            errors.append("struct %s is listed but the header does not declare it"
                          % struct)
    return errors


# ---------------------------------------------------------------------------

def run_layout_cmd(cmd):
    try:
        proc = subprocess.run([cmd], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
    except OSError as e:
        raise LayoutError("cannot run %s: %s" % (cmd, e.strerror))
    sys.stderr.write(proc.stderr.decode("utf-8", "replace"))
    if proc.returncode != 0:
        raise LayoutError("%s failed (exit status %d); its messages are above"
                          % (cmd, proc.returncode))
    return Layout(proc.stdout.decode("utf-8"), cmd)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--layout", metavar="FILE",
                     help="the current layout, as printed by aimx_abi_layout")
    src.add_argument("--layout-cmd", metavar="PROG",
                     help="run PROG (aimx_abi_layout) to get the current layout")
    ap.add_argument("--baselines", metavar="DIR",
                    help="the directory holding <major>.<minor>/layout.txt")
    ap.add_argument("--header", metavar="FILE",
                    help="check that the layout covers everything in FILE")
    args = ap.parse_args(argv)
    if not args.baselines and not args.header:
        ap.error("give --baselines, --header or both")

    global LAYOUT_TOOL
    if args.layout_cmd:
        LAYOUT_TOOL = "'%s'" % args.layout_cmd
    try:
        cur = (read_layout(args.layout) if args.layout
               else run_layout_cmd(args.layout_cmd))
        errors = contract_errors(cur)
        if args.header:
            errs = coverage_errors(parse_header(args.header), cur)
            if errs:
                errors.append("the layout does not cover %s:" % args.header)
                errors += ["  " + e for e in errs]
        if args.baselines:
            errors += check_baselines(cur, args.baselines)
    except LayoutError as e:
        print("check_abi: error: %s" % e, file=sys.stderr)
        return 1

    if errors:
        for e in errors:
            print("check_abi: %s" % e, file=sys.stderr)
        print("check_abi: FAILED for ABI %s" % abi_str(cur.abi), file=sys.stderr)
        return 1
    checked = []
    if args.header:
        checked.append("covers %s" % args.header)
    if args.baselines:
        checked.append("matches the baselines in %s" % args.baselines)
    print("check_abi: ABI %s layout %s" % (abi_str(cur.abi), " and ".join(checked)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
