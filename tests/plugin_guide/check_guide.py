#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Check that the plugin guide's code is the examples' code.

docs/plugin-guide.md quotes the files of sdk/examples/.  Every quote is a
fenced code block right after a marker line naming its file:

    <!-- excerpt: sdk/examples/resolver-static/resolver_static.c -->
    ```c
    ...
    ```

and must be a run of consecutive lines of that file, byte for byte (the
examples are built and tested, so the guide is too).  The rules:

  * a marker must be followed by a fenced block on the very next line, and
    name a file that exists (relative to --root);
  * every fenced block in a language that is code (c, cmake, conf; see
    CODE_LANGUAGES) must have a marker: no code in the guide that is not
    in a file that is built and tested;  shell commands (sh) and program
    output (text) may stand alone;
  * each file given with --require is quoted at least once.

Exit status 0 when the guide passes, 1 otherwise, 2 for bad usage.
--self-test checks the checker on synthetic guides.
"""

import argparse
import os
import re
import sys
import tempfile

MARKER = re.compile(r"^<!--\s*excerpt:\s*(\S+)\s*-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
CODE_LANGUAGES = {"c", "h", "cmake", "conf"}


def parse(text):
    """Fenced blocks: (line number, language, lines, marker path or None),
    plus errors for misplaced markers."""
    blocks, errors = [], []
    lines = text.split("\n")
    i, pending = 0, None
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m:
            if pending:
                errors.append("line %d: excerpt marker for %s has no code "
                              "block after it" % (pending[0], pending[1]))
            pending = (i + 1, m.group(1))
            i += 1
            continue
        f = FENCE.match(line)
        if f:
            start, lang = i + 1, f.group(1)
            body = []
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                errors.append("line %d: code block never closed" % start)
            marker = None
            if pending:
                if pending[0] == start - 1:
                    marker = pending[1]
                else:
                    errors.append("line %d: excerpt marker for %s is not "
                                  "right before a code block"
                                  % (pending[0], pending[1]))
                pending = None
            blocks.append((start, lang, body, marker))
        elif pending and line.strip():
            errors.append("line %d: excerpt marker for %s is not right "
                          "before a code block" % (pending[0], pending[1]))
            pending = None
        i += 1
    if pending:
        errors.append("line %d: excerpt marker for %s has no code block "
                      "after it" % (pending[0], pending[1]))
    return blocks, errors


def find_run(needle, haystack):
    """Index in haystack where the lines of needle start, or -1."""
    if not needle:
        return -1
    for i in range(len(haystack) - len(needle) + 1):
        if haystack[i:i + len(needle)] == needle:
            return i
    return -1


def check(guide, root, required):
    with open(guide, encoding="utf-8") as f:
        text = f.read()
    blocks, errors = parse(text)
    quoted = set()
    for start, lang, body, marker in blocks:
        if marker is None:
            if lang in CODE_LANGUAGES:
                errors.append("%s:%d: a ```%s block with no excerpt marker: "
                              "code in the guide must come from a file of "
                              "sdk/examples/ (<!-- excerpt: PATH --> on the "
                              "line before)" % (guide, start, lang))
            continue
        path = os.path.join(root, marker)
        if not os.path.isfile(path):
            errors.append("%s:%d: %s does not exist" % (guide, start - 1,
                                                         marker))
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        at = find_run(body, lines)
        if at < 0:
            # Say where it stops matching, to make fixing it quick.
            best, best_len = None, 0
            for i in range(len(lines)):
                n = 0
                while (n < len(body) and i + n < len(lines)
                       and lines[i + n] == body[n]):
                    n += 1
                if n > best_len:
                    best, best_len = i, n
            if best is None:
                errors.append("%s:%d: the excerpt's first line is not in %s: "
                              "%r" % (guide, start, marker,
                                      body[0] if body else ""))
            else:
                errors.append(
                    "%s:%d: the excerpt departs from %s at its line %d "
                    "(file line %d): guide has %r, file has %r"
                    % (guide, start + 1 + best_len, marker, best_len + 1,
                       best + best_len + 1, body[best_len],
                       lines[best + best_len] if best + best_len < len(lines)
                       else "(end of file)"))
            continue
        quoted.add(marker)
    for req in required:
        if req not in quoted:
            errors.append("%s: never quotes %s" % (guide, req))
    return errors, len([b for b in blocks if b[3]])


def self_test():
    """The checker accepts a faithful guide and rejects each kind of rot."""
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "ex"))
        with open(os.path.join(root, "ex", "a.c"), "w") as f:
            f.write("int a;\n\nint\nmain(void)\n{\n    return a;\n}\n")
        good = ("# Guide\n<!-- excerpt: ex/a.c -->\n```c\nint\nmain(void)\n"
                "{\n```\n\n```sh\ncc a.c\n```\n")
        cases = [
            ("faithful", good, ["ex/a.c"], True),
            ("edited line", good.replace("main(void)", "main()"), [], False),
            ("reordered", good.replace("int\nmain(void)", "main(void)\nint"),
             [], False),
            ("indentation", good.replace("{\n```", "  {\n```"), [], False),
            ("missing file", good.replace("ex/a.c", "ex/b.c"), [], False),
            ("untagged code", good + "```c\nint b;\n```\n", [], False),
            ("marker astray", good.replace("```c\nint", "\ntext\n```c\nint"),
             [], False),
            ("never quoted", good, ["ex/a.c", "ex/other.c"], False),
            ("unclosed", good + "```c\nint a;\n", [], False),
        ]
        failures = 0
        for name, text, req, ok in cases:
            guide = os.path.join(root, "guide.md")
            with open(guide, "w") as f:
                f.write(text)
            errors, _ = check(guide, root, req)
            if (not errors) != ok:
                print("self-test %s: expected %s, got %s" % (
                    name, "pass" if ok else "failure", errors or "pass"),
                    file=sys.stderr)
                failures += 1
        print("check_guide self-test: %d cases, %d failures"
              % (len(cases), failures))
        return 1 if failures else 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guide")
    ap.add_argument("--root", help="the directory excerpt paths start from")
    ap.add_argument("--require", action="append", default=[],
                    help="a file the guide must quote (relative to --root)")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.guide or not args.root:
        ap.error("give --guide and --root, or --self-test")
    errors, n = check(args.guide, args.root, args.require)
    for e in errors:
        print("check_guide: " + e, file=sys.stderr)
    if errors:
        print("check_guide: FAILED: the guide and the examples differ; "
              "change the guide, or the example and its tests",
              file=sys.stderr)
        return 1
    print("check_guide: %d excerpts in %s match their files"
          % (n, args.guide))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
