#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# man_render.sh PAGE...
# Renders each man page (plain or .gz) the way a reader and lintian do and
# fails on any warning: groff -ww -man -Tutf8, then man --warnings as
# lintian runs it, then lexgrog for the NAME line that whatis and apropos
# read.
set -euo pipefail

(($# > 0)) || { echo "usage: $0 PAGE..." >&2; exit 2; }
command -v groff >/dev/null || { echo "groff is missing (Debian: groff-base)" >&2; exit 1; }

failed=0
for page in "$@"; do
  bad=0
  whatis_line=""
  if [[ ! -s $page ]]; then
    echo "FAIL $page: missing or empty (is the aimx_man_pages target built?)"
    failed=1
    continue
  fi
  if [[ $page == *.gz ]]; then
    source_text=$(gzip -dc -- "$page")
  else
    source_text=$(cat -- "$page")
  fi

  # groff itself, every warning category on.
  warnings=$(groff -ww -man -Tutf8 -z <<<"$source_text" 2>&1 >/dev/null || true)
  if [[ -n $warnings ]]; then
    printf 'FAIL %s: groff -ww -man -Tutf8 warns:\n%s\n' "$page" "$warnings"
    bad=1
  fi

  # man(1) with its preprocessors, as lintian's groff-message check runs it.
  if command -v man >/dev/null; then
    warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
      man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null || true)
    if [[ -n $warnings ]]; then
      printf 'FAIL %s: man --warnings says:\n%s\n' "$page" "$warnings"
      bad=1
    fi
  fi

  # The whatis entry: "name \- description" in NAME.
  if command -v lexgrog >/dev/null; then
    if ! whatis_line=$(lexgrog "$page" 2>&1); then
      printf 'FAIL %s: lexgrog cannot read its NAME section: %s\n' "$page" "$whatis_line"
      bad=1
    fi
  fi

  lines=$(groff -man -Tutf8 <<<"$source_text" 2>/dev/null | wc -l)
  if ((bad)); then
    failed=1
  else
    echo "ok   $page: $lines lines, no warning${whatis_line:+ (${whatis_line#*: })}"
  fi
done
exit "$failed"
