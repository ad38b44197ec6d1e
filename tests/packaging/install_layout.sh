#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# install_layout.sh BUILD_DIR [MAN_PAGES=ON|OFF]
#
# cmake --install puts the man pages and the example configuration where
# they belong, in the right components: core has aimx(1), aimx.conf(5) and
# the example, dev has aimx-plugin(7).  Installs into scratch prefixes,
# never onto the system.
set -euo pipefail

build=$(cd "${1:?usage: $0 BUILD_DIR [ON|OFF]}" && pwd)
man_pages=${2:-ON}
cmake=${AIMX_CMAKE:-cmake}
work=$(mktemp -d "${TMPDIR:-/tmp}/aimx-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
die() { printf 'FAIL %s\n' "$*"; exit 1; }

# install COMPONENT|all PREFIX
install() {
  local args=(--install "$build" --prefix "$2")
  [[ $1 == all ]] || args+=(--component "$1")
  "$cmake" "${args[@]}" >"$2.log" 2>&1 || { cat "$2.log"; die "cmake ${args[*]}"; }
}

# expect PREFIX PATH...: each PATH exists under PREFIX.
expect() {
  local prefix=$1; shift
  for f in "$@"; do
    [[ -s $prefix/$f ]] || die "${prefix##*/}: $f is not installed"
  done
}
# expect_not PREFIX PATH...
expect_not() {
  local prefix=$1; shift
  for f in "$@"; do
    [[ ! -e $prefix/$f ]] || die "${prefix##*/}: $f should not be installed"
  done
}

man1=share/man/man1/aimx.1.gz
man5=share/man/man5/aimx.conf.5.gz
man7=share/man/man7/aimx-plugin.7.gz
example=share/doc/aimx/examples/aimx.conf

install all "$work/all"
install core "$work/core"
install dev "$work/dev"
expect "$work/all" "$example"
expect "$work/core" "$example"
expect_not "$work/dev" "$example"
if [[ $man_pages == ON ]]; then
  expect "$work/all" "$man1" "$man5" "$man7"
  expect "$work/core" "$man1" "$man5"
  expect_not "$work/core" "$man7"
  expect "$work/dev" "$man7"
  expect_not "$work/dev" "$man1" "$man5"
  # The installed pages are the built ones, compressed.
  for page in aimx.1 aimx.conf.5 aimx-plugin.7; do
    section=${page##*.}
    cmp -s <(gzip -dc "$work/all/share/man/man$section/$page.gz") \
      "$build/packaging/man/$page" || die "$page.gz is not the built $page"
  done
  echo "ok   man pages: aimx.1 and aimx.conf.5 in core, aimx-plugin.7 in dev"
else
  expect_not "$work/all" "$man1" "$man5" "$man7"
  echo "ok   no man pages (AIMX_MAN_PAGES=OFF)"
fi
cmp -s "$work/core/$example" "$(dirname "$0")/../../packaging/aimx.conf" \
  || die "the installed example is not packaging/aimx.conf"
echo "ok   the example configuration in core: $example"
