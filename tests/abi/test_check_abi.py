#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Proves that check_abi.py catches ABI violations.

Each case builds a synthetic current layout and baseline directory in a
temporary directory, starting from the frozen 1.0 baseline (which never
changes, so the cases stay valid forever), runs check_abi.py on them and
requires both the expected exit status and a message naming the violation:
a checker that failed for another reason (a crash, a parse error) must not
count as having caught it.

    test_check_abi.py --check-abi tests/abi/check_abi.py \
        --base tests/abi/1.0 CASE
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def replace_line(lines, old, new):
    """Replace exactly one line; a typo in a case must fail loudly."""
    hits = [i for i, line in enumerate(lines) if line == old]
    if len(hits) != 1:
        raise SystemExit("test bug: %r found %d times" % (old, len(hits)))
    out = list(lines)
    if new is None:
        del out[hits[0]]
    else:
        out[hits[0]] = new
    return out


def insert_after(lines, anchor, new):
    out = replace_line(lines, anchor, anchor)
    i = out.index(anchor)
    return out[:i + 1] + [new] + out[i + 1:]


def bump(lines, minor):
    return replace_line(lines, "abi 1.0", "abi 1.%d" % minor)


def append_descriptor_field(lines):
    """A correct 1.1 addition: a new pointer at the end of the descriptor."""
    out = replace_line(lines, "struct aimx_plugin_descriptor size 88 align 8",
                       "struct aimx_plugin_descriptor size 96 align 8")
    return insert_after(out, "field aimx_plugin_descriptor.transport offset 80 size 8",
                        "field aimx_plugin_descriptor.extra offset 88 size 8")


# Each case: (layout lines, {baseline dir: lines}, expected status,
# required message fragment or None, use --header FILE text or None).
def case(name, base, header):
    bl = {"1.0": base}
    if name == "moved_field":
        # (a) a field offset changed, no new baseline.
        cur = replace_line(base, "field aimx_dns_query.name offset 8 size 8",
                           "field aimx_dns_query.name offset 16 size 8")
        return cur, bl, 1, ("'field aimx_dns_query.name offset 8 size 8' in ABI "
                            "1.0 is now 'field aimx_dns_query.name offset 16 "
                            "size 8'"), None
    if name == "append_with_bump":
        # (b) appended field + minor bump + new baseline beside the old one.
        cur = bump(append_descriptor_field(base), 1)
        return cur, dict(bl, **{"1.1": cur}), 0, None, None
    if name == "append_without_bump":
        # (c) appended field, header still 1.0.
        cur = append_descriptor_field(base)
        return cur, bl, 1, "bump AIMX_ABI_MINOR to 1", None
    if name == "renumbered_value":
        # (d) an enum value renumbered, even with a bump and a new baseline.
        cur = bump(replace_line(base, "value AIMX_PHASE_DOT 9",
                                "value AIMX_PHASE_DOT 12"), 1)
        return cur, dict(bl, **{"1.1": cur}), 1, \
            "'value AIMX_PHASE_DOT 9' in ABI 1.0 is now 'value AIMX_PHASE_DOT 12'", None
    if name == "removed_field":
        # (e) a field removed, even with a bump and a new baseline.
        cur = bump(replace_line(base, "field aimx_transport_ops.describe "
                                "offset 48 size 8", None), 1)
        return cur, dict(bl, **{"1.1": cur}), 1, \
            "field aimx_transport_ops.describe of ABI 1.0 was removed", None
    if name == "removed_field_without_bump":
        cur = replace_line(base, "field aimx_transport_ops.describe "
                           "offset 48 size 8", None)
        return cur, bl, 1, \
            "field aimx_transport_ops.describe of ABI 1.0 was removed", None
    if name == "removed_value":
        cur = bump(replace_line(base, "value AIMX_DNS_TLSA 52", None), 1)
        return cur, dict(bl, **{"1.1": cur}), 1, \
            "value AIMX_DNS_TLSA of ABI 1.0 was removed", None
    if name == "shrunk_struct":
        cur = bump(replace_line(base, "struct aimx_host_api size 152 align 8",
                                "struct aimx_host_api size 144 align 8"), 1)
        return cur, dict(bl, **{"1.1": cur}), 1, "struct aimx_host_api shrank", None
    if name == "missing_baseline":
        cur = bump(append_descriptor_field(base), 1)
        return cur, bl, 1, "no baseline for ABI 1.1", None
    if name == "newer_baseline":
        newer = bump(append_descriptor_field(base), 1)
        return base, dict(bl, **{"1.1": newer}), 1, \
            "is newer than the header's ABI 1.0", None
    if name == "tail_padding_field":
        # aimx_rcpt_result ends at 286 and has 2 bytes of tail padding: a
        # field there would be read from a 1.0 writer's padding.
        cur = bump(insert_after(base, "field aimx_rcpt_result.reply offset 30 size 256",
                                "field aimx_rcpt_result.extra offset 286 size 2"), 1)
        return cur, dict(bl, **{"1.1": cur}), 1, \
            "new field aimx_rcpt_result.extra starts at offset 286, inside the 288 bytes", None
    if name == "tail_padding_reserved":
        # The fix the message suggests: fill the padding explicitly.
        cur = replace_line(base, "struct aimx_rcpt_result size 288 align 4",
                           "struct aimx_rcpt_result size 292 align 4")
        cur = insert_after(cur, "field aimx_rcpt_result.reply offset 30 size 256",
                           "field aimx_rcpt_result.reserved2 offset 286 size 2")
        cur = bump(insert_after(cur, "field aimx_rcpt_result.reserved2 offset 286 size 2",
                                "field aimx_rcpt_result.extra offset 288 size 4"), 1)
        return cur, dict(bl, **{"1.1": cur}), 0, None, None
    if name == "two_minors":
        # 1.2 must keep both 1.0 and 1.1: here it drops 1.1's field.
        v11 = bump(append_descriptor_field(base), 1)
        v12 = bump(base, 2)
        return v12, dict(bl, **{"1.1": v11, "1.2": v12}), 1, \
            "field aimx_plugin_descriptor.extra of ABI 1.1 was removed", None
    if name == "other_major_ignored":
        # A 2.0 baseline may differ in anything but the descriptor prefix.
        v20 = [re.sub(r"^abi 1\.0$", "abi 2.0", line) for line in base]
        v20 = replace_line(v20, "value AIMX_PHASE_DOT 9", "value AIMX_PHASE_DOT 12")
        v20 = replace_line(v20, "field aimx_dns_query.name offset 8 size 8",
                           "field aimx_dns_query.name offset 16 size 8")
        return base, dict(bl, **{"2.0": v20}), 0, None, None
    if name == "other_major_descriptor_prefix":
        v20 = [re.sub(r"^abi 1\.0$", "abi 2.0", line) for line in base]
        v20 = replace_line(v20, "field aimx_plugin_descriptor.abi_minor offset 8 size 4",
                           "field aimx_plugin_descriptor.abi_minor offset 12 size 4")
        return base, dict(bl, **{"2.0": v20}), 1, \
            "the first three fields of aimx_plugin_descriptor keep their place", None
    if name == "edited_frozen_baseline":
        # Regenerating 1.0/layout.txt in place for an unbumped append: the
        # frozen 1.0/plugin.h beside it gives it away.
        cur = append_descriptor_field(base)
        return cur, {"1.0": cur, "1.0/plugin.h": header}, 1, \
            "a published baseline was edited", None
    if name == "header_field_not_listed":
        # A field in the header that layout.c does not list: only the header
        # text reveals it (a small one could also hide in tail padding).
        hdr = header.replace("} aimx_rcpt_result;",
                             "    uint8_t extra;\n} aimx_rcpt_result;", 1)
        if hdr == header:
            raise SystemExit("test bug: aimx_rcpt_result not found in the header")
        return base, None, 1, "not listed: extra", hdr
    if name == "header_value_not_listed":
        hdr = header.replace("AIMX_PHASE_RSET = 11\n",
                             "AIMX_PHASE_RSET = 11,\n    AIMX_PHASE_AUTH = 12\n")
        if hdr == header:
            raise SystemExit("test bug: AIMX_PHASE_RSET not found in the header")
        return base, None, 1, "add VALUE(AIMX_PHASE_AUTH)", hdr
    if name == "header_define_not_listed":
        hdr = re.sub(r"(#define AIMX_DNS_TLSA +52\n)",
                     r"\1#define AIMX_DNS_SRV 33\n", header, count=1)
        if hdr == header:
            raise SystemExit("test bug: AIMX_DNS_TLSA not found in the header")
        return base, None, 1, "add VALUE(AIMX_DNS_SRV)", hdr
    if name == "grown_value_type":
        cur = replace_line(base, "struct aimx_addr size 20 align 1",
                           "struct aimx_addr size 24 align 1")
        cur = bump(insert_after(cur, "field aimx_addr.bytes offset 4 size 16",
                                "field aimx_addr.scope_id offset 20 size 4"), 1)
        return cur, dict(bl, **{"1.1": cur}), 1, \
            "struct aimx_addr is a frozen value type", None
    if name == "missing_struct_size":
        # A struct added in 1.1 without the leading struct_size.
        cur = bump(base + ["struct aimx_new_thing size 8 align 8",
                           "field aimx_new_thing.ptr offset 0 size 8"], 1)
        return cur, dict(bl, **{"1.1": cur}), 1, \
            "struct aimx_new_thing must start with 'uint32_t struct_size'", None
    if name == "header_matches":
        return base, None, 0, None, header
    raise KeyError(name)


CASES = ["moved_field", "append_with_bump", "append_without_bump",
         "renumbered_value", "removed_field", "removed_field_without_bump",
         "removed_value", "shrunk_struct", "missing_baseline",
         "newer_baseline", "tail_padding_field", "tail_padding_reserved",
         "two_minors", "other_major_ignored", "other_major_descriptor_prefix",
         "edited_frozen_baseline", "header_field_not_listed",
         "header_value_not_listed", "header_define_not_listed",
         "grown_value_type", "missing_struct_size", "header_matches"]


def write(path, lines_or_text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = lines_or_text if isinstance(lines_or_text, str) \
        else "\n".join(lines_or_text) + "\n"
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(text)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-abi", help="the check_abi.py to test")
    ap.add_argument("--base", help="the frozen 1.0 baseline directory")
    ap.add_argument("--list", action="store_true",
                    help="print the case names (CMake registers one test each)")
    ap.add_argument("case", nargs="?")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(CASES))
        return 0
    if not args.check_abi or not args.base:
        ap.error("--check-abi and --base are required")
    if args.case not in CASES:
        ap.error("unknown case %r; --list shows them" % args.case)

    with open(os.path.join(args.base, "layout.txt"), encoding="utf-8") as fp:
        base = fp.read().splitlines()
    with open(os.path.join(args.base, "plugin.h"), encoding="utf-8") as fp:
        header = fp.read()
    cur, baselines, want_rc, want_msg, hdr = case(args.case, base, header)

    tmp = tempfile.mkdtemp(prefix="aimx-abi-")
    try:
        write(os.path.join(tmp, "current.txt"), cur)
        cmd = [sys.executable, args.check_abi,
               "--layout", os.path.join(tmp, "current.txt")]
        if baselines is not None:
            for rel, content in baselines.items():
                path = os.path.join(tmp, "baselines", rel)
                if not rel.endswith(".h"):
                    path = os.path.join(path, "layout.txt")
                write(path, content)
            cmd += ["--baselines", os.path.join(tmp, "baselines")]
        if hdr is not None:
            write(os.path.join(tmp, "plugin.h"), hdr)
            cmd += ["--header", os.path.join(tmp, "plugin.h")]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, check=False)
    finally:
        shutil.rmtree(tmp)
    out = proc.stdout.decode("utf-8", "replace")
    sys.stdout.write(out)
    ok = proc.returncode == want_rc and "Traceback" not in out
    if ok and want_msg is not None and " ".join(want_msg.split()) not in " ".join(out.split()):
        ok = False
    if not ok:
        print("test_check_abi: case %s: expected exit status %d%s, got %d"
              % (args.case, want_rc,
                 " and a message containing %r" % want_msg if want_msg else "",
                 proc.returncode), file=sys.stderr)
        return 1
    print("test_check_abi: case %s: OK (exit status %d as expected)"
          % (args.case, want_rc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
