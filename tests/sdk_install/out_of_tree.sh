#!/bin/bash
# SPDX-License-Identifier: MIT
#
# usage: out_of_tree.sh SOURCE_DIR BUILD_DIR AIMX_BINARY C_COMPILER
#
# Plays a plugin author who has only the installed SDK: installs the dev
# component of BUILD_DIR into a scratch prefix, copies each example plugin
# out of the source tree, builds it twice against that prefix alone (the
# AimxPlugin CMake package; pkg-config and a bare compiler), runs its unit
# test both ways, checks each module's exports and binding, and has
# AIMX_BINARY load it.  The examples of the plugin guide (resolver-static,
# transport-dir) are taken from the installed copy and built with their own
# build-with-pkg-config.sh, the commands docs/plugin-guide.md quotes.
#
# Optional environment: AIMX_CMAKE, AIMX_CTEST (the cmake and ctest to use),
# AIMX_KEEP_TMP=1 (keep the scratch directory for a post-mortem).
set -euo pipefail

if [ "$#" -ne 4 ]; then
    echo "usage: $0 SOURCE_DIR BUILD_DIR AIMX_BINARY C_COMPILER" >&2
    exit 2
fi

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

src=$(cd "$1" && pwd -P)
build=$(cd "$2" && pwd -P)
aimx=$3
cc=$4
cmake_bin=${AIMX_CMAKE:-cmake}
ctest_bin=${AIMX_CTEST:-ctest}
python=/usr/bin/python3
name=policy-ipv6only
ident=policy_ipv6only
# The plugin guide's examples: name, then kind.
guide_examples=(resolver-static resolver transport-dir transport)

for tool in "$cmake_bin" "$ctest_bin" "$cc" pkg-config nm readelf "$python"; do
    command -v "$tool" >/dev/null || fail "$tool not found"
done
[ -x "$aimx" ] || fail "$aimx is not an executable"
[ -f "$build/CMakeCache.txt" ] || fail "$build is not a CMake build directory"

# Nothing from the caller's environment may point the compiler or CMake at
# the source tree's headers or at another SDK.
unset CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH CFLAGS CPPFLAGS LDFLAGS \
      CMAKE_PREFIX_PATH AimxPlugin_DIR AimxPlugin_ROOT \
      PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR \
      AIMX_CONFIG AIMX_PLUGIN_PATH MAKEFLAGS MFLAGS MAKELEVEL
# When run as root, aimx loads only plugins nobody else can write.
umask 022

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aimx-sdk-oot.XXXXXX")
tmp=$(cd "$tmp" && pwd -P)
cleanup() {
    if [ -n "${AIMX_KEEP_TMP:-}" ]; then
        echo "keeping $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

prefix=$tmp/prefix

# What the build was configured with, to know where things must land.
cache_get() {
    sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n 1
}
libdir=$(cache_get CMAKE_INSTALL_LIBDIR)
includedir=$(cache_get CMAKE_INSTALL_INCLUDEDIR)
plugin_install_dir=$(cache_get AIMX_PLUGIN_INSTALL_DIR)
version=$(cache_get CMAKE_PROJECT_VERSION)
for v in libdir includedir plugin_install_dir version; do
    [ -n "${!v}" ] || fail "cannot read $v from $build/CMakeCache.txt"
done
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$prefix/$1" ;; esac; }
want_incdir=$(abs "$includedir")
want_plugindir=$(abs "$plugin_install_dir")
# The ABI the aimx binary speaks: "aimx 0.1.0 (plugin ABI 1.0)".
aimx_version=$("$aimx" --version)
host_abi=$(sed -n 's/.*plugin ABI \([0-9]*\.[0-9]*\).*/\1/p' <<<"$aimx_version")
[ -n "$host_abi" ] || fail "cannot read the plugin ABI from '$aimx_version'"

# ---------------------------------------------------------------------------
say "installing the dev component of $build into $prefix"
"$cmake_bin" --install "$build" --prefix "$prefix" --component dev

say "checking the installed SDK files"
for h in plugin.h fake_host.h; do
    if [ -f "$src/sdk/include/aimx/$h" ]; then
        cmp "$src/sdk/include/aimx/$h" "$want_incdir/aimx/$h" ||
            fail "$want_incdir/aimx/$h is missing or differs from the source"
        echo "ok: $want_incdir/aimx/$h"
    fi
done
cmake_pkg=$(abs "$libdir")/cmake/AimxPlugin
for f in AimxPluginConfig.cmake AimxPluginConfigVersion.cmake; do
    [ -f "$cmake_pkg/$f" ] || fail "$cmake_pkg/$f was not installed"
    echo "ok: $cmake_pkg/$f"
done
installed_example=$(find "$prefix" -type d -path "*/examples/$name" | head -n 1)
[ -n "$installed_example" ] || fail "the example $name was not installed"
for f in "$src/sdk/examples/$name"/*; do
    case ${f##*/} in
        *.c | *.h | *.md | CMakeLists.txt) ;;
        *) continue ;; # not shipped (a build directory, an editor file)
    esac
    cmp "$f" "$installed_example/${f##*/}" ||
        fail "installed example file ${f##*/} is missing or differs"
done
echo "ok: $installed_example"
examples_dir=$(dirname "$installed_example")
for ((i = 0; i < ${#guide_examples[@]}; i += 2)); do
    ex=${guide_examples[i]}
    [ -d "$examples_dir/$ex" ] || fail "the example $ex was not installed"
    for f in "$src/sdk/examples/$ex"/*; do
        case ${f##*/} in
            *.c | *.h | *.md | *.sh | *.txt | aimx.conf) ;;
            *) continue ;; # not shipped (a build directory, an editor file)
        esac
        cmp "$f" "$examples_dir/$ex/${f##*/}" ||
            fail "installed example file $ex/${f##*/} is missing or differs"
    done
    [ -x "$examples_dir/$ex/build-with-pkg-config.sh" ] ||
        fail "$examples_dir/$ex/build-with-pkg-config.sh is not executable"
    echo "ok: $examples_dir/$ex"
done
guide=$(dirname "$examples_dir")/plugin-guide.md
if [ -f "$src/docs/plugin-guide.md" ]; then
    cmp "$src/docs/plugin-guide.md" "$guide" ||
        fail "the plugin guide was not installed as $guide, or differs"
    echo "ok: $guide"
fi
# The SDK must be self-contained: nothing of it may depend on another
# component having been installed.
if [ -e "$prefix/bin/aimx" ]; then
    fail "the dev component installed the aimx binary"
fi

# The example leaves the source tree, so no relative include can reach
# sdk/include; it is built from this copy only.
cp -R "$src/sdk/examples/$name" "$tmp/example"
rm -rf "$tmp/example/build"

# ---------------------------------------------------------------------------
say "pkg-config: checking aimx-plugin.pc"
mapfile -t pcfiles < <(find "$prefix" -name aimx-plugin.pc)
[ "${#pcfiles[@]}" -eq 1 ] || fail "expected one aimx-plugin.pc, found ${#pcfiles[@]}"
pcdir=$(dirname "${pcfiles[0]}")
[ "$pcdir" = "$(abs "$libdir")/pkgconfig" ] ||
    fail "aimx-plugin.pc is in $pcdir, not in <prefix>/$libdir/pkgconfig"
# PKG_CONFIG_LIBDIR replaces the default search path: only our prefix.
# Not exported: the example's CMake build must still find cmocka.
pc() { PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_PATH=$pcdir pkg-config "$@" aimx-plugin; }
# pkg-config pads flags with blanks: compare them as words.
pc_words() {
    local words
    read -r -a words <<<"$(pc "$@")"
    printf '%s\n' "${words[*]}"
}
pc --exists || fail "pkg-config cannot read ${pcfiles[0]}"
got=$(pc --variable=plugindir)
[ "$got" = "$want_plugindir" ] || fail "plugindir is '$got', expected '$want_plugindir'"
echo "ok: plugindir = $got"
got=$(pc_words --cflags)
[ "$got" = "-I$want_incdir" ] || fail "Cflags are '$got', expected '-I$want_incdir'"
echo "ok: cflags = $got"
got=$(pc --modversion)
[ "$got" = "$version" ] || fail "Version is '$got', expected '$version'"
got=$(pc --variable=abi_major).$(pc --variable=abi_minor)
[ "$got" = "$host_abi" ] || fail "abi_major.abi_minor is '$got', aimx speaks '$host_abi'"
echo "ok: version $version, plugin ABI $got"
got=$(pc_words --libs)
[ -z "$got" ] || fail "the header-only SDK has Libs: '$got'"

# ---------------------------------------------------------------------------
# check_module FILE [NAME IDENT]: the loader's expectations of a built
# plugin (by default the policy example's).
check_module() {
    local so=$1 name=${2:-$name} ident=${3:-$ident} syms dyn
    [ -f "$so" ] || fail "$so was not built"
    [ "$(basename "$so")" = "$name.so" ] || fail "$so is not named $name.so"
    # Hidden visibility: the two entry points and nothing else.
    syms=$(nm -D --defined-only "$so" | awk '{ print $NF }' | LC_ALL=C sort | tr '\n' ' ')
    [ "$syms" = "aimx_plugin_v1 ${ident}_LTX_aimx_plugin_v1 " ] ||
        fail "$so exports '$syms', expected exactly aimx_plugin_v1 and ${ident}_LTX_aimx_plugin_v1"
    echo "ok: exports $syms"
    dyn=$(readelf -d "$so")
    grep -q BIND_NOW <<<"$dyn" || fail "$so was not linked with -z now (no BIND_NOW)"
    echo "ok: BIND_NOW"
}

# check_listing DIR [NAME KIND]: aimx finds DIR/NAME.so and loads it as a
# KIND plugin (by default the policy example).  Built-in plugins of the
# binary, and other files of DIR, may be listed too.
check_listing() {
    local dir=$1 name=${2:-$name} kind=${3:-policy} json=$tmp/listing.json
    mkdir -p "$tmp/empty"
    printf 'plugin_dirs = [ "%s" ];\n' "$tmp/empty" >"$tmp/aimx.conf"
    echo "+ AIMX_PLUGIN_PATH=$dir $aimx plugins --json --config $tmp/aimx.conf"
    AIMX_PLUGIN_PATH=$dir "$aimx" plugins --json --config "$tmp/aimx.conf" >"$json" ||
        fail "aimx plugins failed (exit $?)"
    cat "$json"
    echo
    "$python" - "$json" "$dir" "$tmp/empty" "$name" "$host_abi" "$kind" <<'PY' ||
import json
import sys

path, plugin_dir, empty_dir, name, abi, kind = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    doc = json.load(f)
problems = []
if doc.get("schema") != 1:
    problems.append("schema is %r, not 1" % doc.get("schema"))
if doc.get("plugin_dirs") != [plugin_dir, empty_dir]:
    problems.append("plugin_dirs is %r" % doc.get("plugin_dirs"))
plugins = [p for p in doc.get("plugins", [])
           if not p.get("builtin") and p.get("name") == name]
if len(plugins) != 1:
    problems.append("expected %s once, got %d" % (name, len(plugins)))
else:
    p = plugins[0]
    want = {
        "name": name,
        "kind": kind,
        "abi": abi,
        "status": "ok",
        "reason": None,
        "builtin": False,
        "file": plugin_dir + "/" + name + ".so",
    }
    for key, value in want.items():
        if p.get(key) != value:
            problems.append("%s is %r, expected %r" % (key, p.get(key), value))
    for key in ("version", "description"):
        if not p.get(key):
            problems.append("%s is empty" % key)
for problem in problems:
    print("listing: " + problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
        fail "aimx does not list $dir/$name.so as a loadable $kind plugin"
    echo "ok: aimx lists $name as an ok $kind plugin, ABI $host_abi"
}

# check_headers_from_prefix DEPFILE...: every aimx header the compiler read
# came from the installed prefix (compiler dependency files).
check_headers_from_prefix() {
    local dep n=0
    for dep in "$@"; do
        if grep -qF "$src" "$dep"; then
            fail "$dep names a file of the source tree $src"
        fi
        grep -qF "$want_incdir/aimx/plugin.h" "$dep" ||
            fail "$dep does not show <aimx/plugin.h> read from $want_incdir"
        n=$((n + 1))
    done
    echo "ok: $n compilations read the SDK headers from $want_incdir only"
}

# ---------------------------------------------------------------------------
say "CMake: building $name against the AimxPlugin package"
b1=$tmp/b1
"$cmake_bin" -S "$tmp/example" -B "$b1" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS=-Werror \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
found=$(sed -n 's/^AimxPlugin_DIR:PATH=//p' "$b1/CMakeCache.txt")
[ "$found" = "$cmake_pkg" ] || fail "find_package found AimxPlugin in '$found', not in $cmake_pkg"
echo "ok: AimxPlugin_DIR = $found"
got=$(sed -n 's/^AIMX_PLUGIN_DIR:PATH=//p' "$b1/CMakeCache.txt")
[ "$got" = "$want_plugindir" ] || fail "AIMX_PLUGIN_DIR is '$got', expected '$want_plugindir'"
echo "ok: AIMX_PLUGIN_DIR = $got"
"$cmake_bin" --build "$b1" --parallel 2

"$python" - "$b1/compile_commands.json" "$src" "$want_incdir" <<'PY' ||
import json
import sys

path, src, incdir = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    commands = json.load(f)
bad = 0
for c in commands:
    line = c.get("command") or " ".join(c.get("arguments", []))
    if src in line:
        print("compile command uses the source tree: " + line, file=sys.stderr)
        bad = 1
    if ("-I" + incdir) not in line and ("-isystem " + incdir) not in line:
        print("compile command lacks the prefix's include dir: " + line, file=sys.stderr)
        bad = 1
print("ok: %d compile commands include %s and nothing of %s" % (len(commands), incdir, src))
sys.exit(bad)
PY
    fail "the CMake build does not take the SDK from the prefix alone"
mapfile -t deps < <(find "$b1" -name '*.o.d')
if [ "${#deps[@]}" -gt 0 ]; then
    check_headers_from_prefix "${deps[@]}"
else
    echo "note: no compiler dependency files (generator keeps its own); skipped"
fi

say "CMake: running the example's unit test"
"$ctest_bin" --test-dir "$b1" --output-on-failure --no-tests=error

say "CMake: installing $name into AIMX_PLUGIN_DIR"
"$cmake_bin" --install "$b1"
check_module "$want_plugindir/$name.so"
check_listing "$want_plugindir"

# ---------------------------------------------------------------------------
say "pkg-config: building $name with $cc as the README says"
b2=$tmp/b2
mkdir -p "$b2"
read -r -a cflags <<<"$(pc --cflags)"
# The README's command, plus warnings as errors and a dependency file.
set -x
"$cc" -shared -fPIC -fvisibility=hidden "${cflags[@]}" \
    -Wl,--no-undefined -Wl,-z,now \
    -std=c11 -Wall -Wextra -Wpedantic -Werror -MD -MF "$b2/plugin.d" \
    -o "$b2/$name.so" "$tmp/example/policy_ipv6only.c"
{ set +x; } 2>/dev/null
check_headers_from_prefix "$b2/plugin.d"
check_module "$b2/$name.so"
check_listing "$b2"

# The README's unit test build; cmocka comes from the system's own .pc.
if pkg-config --exists cmocka; then
    say "pkg-config: building and running the unit test as the README says"
    read -r -a cmocka_cflags <<<"$(pkg-config --cflags cmocka)"
    read -r -a cmocka_libs <<<"$(pkg-config --libs cmocka)"
    set -x
    "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -DAIMX_PLUGIN_STATIC \
        "${cflags[@]}" "${cmocka_cflags[@]}" -Wall -Wextra -Werror \
        -o "$b2/test_$ident" "$tmp/example/test_$ident.c" \
        "$tmp/example/$ident.c" "${cmocka_libs[@]}"
    "$b2/test_$ident"
    { set +x; } 2>/dev/null
else
    echo "note: cmocka has no pkg-config file; README unit test build skipped"
fi

# ---------------------------------------------------------------------------
# The plugin guide's examples, from the installed copy: the CMake build, its
# unit test and install; then the example's own build-with-pkg-config.sh
# (which also builds and runs the unit test), as the guide tells.
for ((i = 0; i < ${#guide_examples[@]}; i += 2)); do
    ex=${guide_examples[i]}
    kind=${guide_examples[i + 1]}
    exident=${ex//-/_}
    work=$tmp/$ex
    cp -R "$examples_dir/$ex" "$work"

    say "CMake: building $ex against the AimxPlugin package"
    "$cmake_bin" -S "$work" -B "$work/build" \
        -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
        -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_C_FLAGS=-Werror
    "$cmake_bin" --build "$work/build" --parallel 2
    mapfile -t deps < <(find "$work/build" -name '*.o.d')
    if [ "${#deps[@]}" -gt 0 ]; then
        check_headers_from_prefix "${deps[@]}"
    fi
    "$ctest_bin" --test-dir "$work/build" --output-on-failure --no-tests=error
    "$cmake_bin" --install "$work/build"
    check_module "$want_plugindir/$ex.so" "$ex" "$exident"
    check_listing "$want_plugindir" "$ex" "$kind"

    if pkg-config --exists cmocka; then
        say "pkg-config: $ex/build-with-pkg-config.sh"
        # Our prefix first; cmocka still comes from the system.  -MD leaves
        # dependency files to prove where the headers came from.
        (cd "$work" && PKG_CONFIG_PATH=$pcdir CC=$cc \
            CFLAGS="-Wpedantic -Werror -MD" ./build-with-pkg-config.sh)
        check_headers_from_prefix "$work"/*.d
        check_module "$work/$ex.so" "$ex" "$exident"
        check_listing "$work" "$ex" "$kind"
    else
        echo "note: cmocka has no pkg-config file; $ex/build-with-pkg-config.sh skipped"
    fi
done

say "PASS: the installed SDK builds $name ${guide_examples[0]} ${guide_examples[2]} out of tree with CMake and pkg-config"
