#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_debs.sh SOURCE_DIR
#
# The Debian packages end to end, as a packager makes them:
#   1. configure a fresh tree (Release, no tests, prefix /usr, Debian's
#      build flags from dpkg-buildflags) in a scratch directory, build it,
#      and run cpack -G DEB;
#   2. check the set of packages and their control fields: names, Depends
#      (the exact aimx version for bundled plugins, library dependencies
#      from dpkg-shlibdeps), Provides (aimx-abi-1.0 ... 1.N from the
#      header), sections, priorities, stripped ELF files, the man pages
#      and the example configuration;
#   3. run lintian on every .deb: any error fails, warnings are printed;
#   4. unpack aimx, policy-ipfamily and resolver-cares (not the transport)
#      into a scratch root with dpkg -x, render the man pages found there,
#      and run test_subset.py: aimx plugins and aimx route work there,
#      aimx send fails cleanly for want of a transport.
#
# Environment: AIMX_CMAKE, AIMX_CPACK (default: cmake, cpack on PATH),
# AIMX_TEST_JOBS (default: nproc), AIMX_KEEP_WORK=1 keeps the scratch
# directory.  Needs dpkg-dev (dpkg-shlibdeps), lintian, groff-base, file,
# python3 and dnsmasq-base.
set -euo pipefail

src=$(cd "${1:?usage: $0 SOURCE_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmake=${AIMX_CMAKE:-cmake}
cpack=${AIMX_CPACK:-cpack}
jobs=${AIMX_TEST_JOBS:-$(nproc)}

missing=()
for tool in dpkg-deb dpkg-shlibdeps dpkg-buildflags dpkg-architecture \
            dpkg-parsechangelog lintian groff file readelf python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "FAIL missing tools: ${missing[*]} (Debian: dpkg-dev lintian groff-base file binutils python3; scripts/test.sh installs them)"
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/aimx-debs.XXXXXX")
cleanup() {
  if [[ ${AIMX_KEEP_WORK:-0} == 1 ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

step() { printf '\n--- %s\n' "$*"; }
die() { printf 'FAIL %s\n' "$*"; exit 1; }

# run LOG CMD...: runs CMD with its output in LOG, shown when it fails.
run() {
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log"
    die "$* (log: $log)"
  fi
}

# ---- 1. build and package ----------------------------------------------------
step "configure and build a Release tree for /usr with Debian's build flags"
# What debhelper does: dpkg-buildflags, hardening on, and CPPFLAGS folded
# into CFLAGS (CMake does not read CPPFLAGS).
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
export CFLAGS="$CFLAGS $CPPFLAGS"
unset CPPFLAGS CXXFLAGS FFLAGS FCFLAGS OBJCFLAGS OBJCXXFLAGS GCJFLAGS DFLAGS
start=$(date +%s)
run "$work/configure.log" "$cmake" -S "$src" -B "$work/build" \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DCMAKE_INSTALL_PREFIX=/usr
run "$work/build.log" "$cmake" --build "$work/build" -j "$jobs"
echo "built in $(($(date +%s) - start))s"

step "cpack -G DEB"
run "$work/cpack.log" env -C "$work/build" "$cpack" -G DEB
debdir=$work/build/deb
mapfile -t debs < <(cd "$debdir" && ls -- *.deb)
printf '  %s\n' "${debs[@]}"

# ---- 2. the packages and their fields ---------------------------------------
step "package names and control fields"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$work/build/CMakeCache.txt")
[[ -n $version ]] || die "cannot read the project version from the build's CMakeCache.txt"
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
abi_major=$(sed -n 's/^#define AIMX_ABI_MAJOR *\([0-9]*\).*/\1/p' "$src/sdk/include/aimx/plugin.h")
abi_minor=$(sed -n 's/^#define AIMX_ABI_MINOR *\([0-9]*\).*/\1/p' "$src/sdk/include/aimx/plugin.h")
provides=""
for ((m = 0; m <= abi_minor; m++)); do
  provides+="${provides:+, }aimx-abi-$abi_major.$m"
done

expected=(aimx aimx-dev aimx-plugin-policy-ipfamily aimx-plugin-resolver-cares
          aimx-plugin-transport-smtp)
actual=()
for deb in "${debs[@]}"; do
  actual+=("$(dpkg-deb -f "$debdir/$deb" Package)")
done
[[ "$(printf '%s\n' "${actual[@]}" | sort)" == "$(printf '%s\n' "${expected[@]}" | sort)" ]] \
  || die "packages are '${actual[*]}', expected exactly '${expected[*]}'"

field() { dpkg-deb -f "$debdir/${1}_${version}_${arch}.deb" "$2"; }
expect_field() {  # PACKAGE FIELD VALUE
  local got
  got=$(field "$1" "$2")
  [[ $got == "$3" ]] || die "$1: $2 is '$got', expected '$3'"
}
for p in "${expected[@]}"; do
  printf '%s\n' "$p"
  for f in Version Architecture Section Priority Depends Recommends Suggests Provides; do
    v=$(field "$p" "$f")
    [[ -z $v ]] || printf '  %-12s %s\n' "$f:" "$v"
  done
  expect_field "$p" Version "$version"
  expect_field "$p" Priority optional
  desc=$(field "$p" Description)
  summary=${desc%%$'\n'*}
  long_lines=$(printf '%s\n' "$desc" | tail -n +2 | grep -c .)
  [[ -n $summary && ${#summary} -le 80 ]] || die "$p: bad short description '$summary'"
  ((long_lines >= 3)) || die "$p: the long description has $long_lines lines"
  [[ $(field "$p" Maintainer) == *@* ]] || die "$p: no Maintainer address"
done
expect_field aimx Section mail
expect_field aimx-dev Section libdevel
expect_field aimx Provides "$provides"
[[ $(field aimx Depends) == *libc6* ]] \
  || die "aimx: Depends has no libc6, so dpkg-shlibdeps did not run"
for plugin in policy-ipfamily resolver-cares transport-smtp; do
  p=aimx-plugin-$plugin
  expect_field "$p" Section mail
  deps=$(field "$p" Depends)
  [[ $deps == "aimx (= $version), "* ]] || die "$p: Depends '$deps' does not start with 'aimx (= $version)'"
  [[ $deps == *libc6* ]] || die "$p: Depends '$deps' has no libc6: dpkg-shlibdeps did not run"
done
[[ $(field aimx-plugin-resolver-cares Depends) == *libc-ares* ]] || die "resolver-cares: no libc-ares dependency"
[[ $(field aimx-plugin-transport-smtp Depends) == *libssl* ]] || die "transport-smtp: no libssl dependency"

step "contents"
contents() { dpkg-deb -c "$debdir/${1}_${version}_${arch}.deb" | awk '{print $6}' | sed 's|^\./|/|'; }
expect_file() {  # PACKAGE PATH
  contents "$1" | grep -qx -- "$2" || die "$1 does not contain $2"
}
plugindir=/usr/lib/$multiarch/aimx/plugins
expect_file aimx /usr/bin/aimx
expect_file aimx /usr/share/man/man1/aimx.1.gz
expect_file aimx /usr/share/man/man5/aimx.conf.5.gz
expect_file aimx /usr/share/doc/aimx/examples/aimx.conf
expect_file aimx-dev /usr/include/aimx/plugin.h
expect_file aimx-dev /usr/include/aimx/fake_host.h
expect_file aimx-dev "/usr/lib/$multiarch/pkgconfig/aimx-plugin.pc"
expect_file aimx-dev "/usr/lib/$multiarch/cmake/AimxPlugin/AimxPluginConfig.cmake"
expect_file aimx-dev /usr/share/man/man7/aimx-plugin.7.gz
contents aimx-dev | grep -q '^/usr/share/doc/aimx-dev/examples/.*\.c$' || die "aimx-dev has no example plugin"
for plugin in policy-ipfamily resolver-cares transport-smtp; do
  expect_file "aimx-plugin-$plugin" "$plugindir/$plugin.so"
done
for p in "${expected[@]}"; do
  expect_file "$p" "/usr/share/doc/$p/copyright"
  expect_file "$p" "/usr/share/doc/$p/changelog.gz"
done
echo "every package has its files, copyright and changelog"

step "ELF files are stripped"
mkdir "$work/all"
for deb in "${debs[@]}"; do
  dpkg -x "$debdir/$deb" "$work/all"
done
nelf=0
while IFS= read -r -d '' f; do
  if [[ $(file -b "$f") == ELF* ]]; then
    nelf=$((nelf + 1))
    readelf -SW "$f" | grep -Eq '\] \.(symtab|debug_[a-z_]+|comment) ' && die "${f#"$work/all"} is not stripped (readelf -S shows symbols, debug info or .comment)"
    printf '  %s: %s\n' "${f#"$work/all"}" "$(file -b "$f" | sed 's/, BuildID[^,]*//')"
  fi
done < <(find "$work/all" -type f -print0)
((nelf == 4)) || die "expected 4 ELF files (aimx and three plugins), found $nelf"

# ---- 3. lintian ---------------------------------------------------------------
step "lintian"
# Errors fail the test; warnings are printed (each one left must have an
# override with its reason in packaging/lintian/).  Overridden tags are
# shown too, so that a reader sees them.
lintian_out=$work/lintian.txt
lintian --fail-on error --show-overrides --tag-display-limit 0 \
  "${debs[@]/#/$debdir/}" >"$lintian_out" 2>&1 && lintian_rc=0 || lintian_rc=$?
grep -v '^running with root privileges' "$lintian_out" || true
errors=$(grep -c '^E: ' "$lintian_out" || true)
warnings=$(grep -c '^W: ' "$lintian_out" || true)
overridden=$(grep -c '^O: ' "$lintian_out" || true)
echo "lintian: $errors error(s), $warnings warning(s), $overridden overridden, exit $lintian_rc"
((errors == 0 && lintian_rc == 0)) || die "lintian reports errors"

# ---- 4. a subset in a scratch root --------------------------------------------
step "dpkg -x aimx, aimx-plugin-policy-ipfamily, aimx-plugin-resolver-cares (no transport)"
root=$work/root
mkdir "$root"
for p in aimx aimx-plugin-policy-ipfamily aimx-plugin-resolver-cares; do
  dpkg -x "$debdir/${p}_${version}_${arch}.deb" "$root"
done
ls -l "$root$plugindir"

step "the man pages in the scratch root"
bash "$here/man_render.sh" "$root"/usr/share/man/man*/*.gz

step "aimx in the scratch root"
/usr/bin/python3 "$here/test_subset.py" --root "$root" --plugin-dir "$plugindir" \
  --version "$version"

printf '\nall package checks passed\n'
