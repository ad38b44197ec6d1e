#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The whole test suite, from a fresh Debian 12 machine: installs the Debian
# packages it needs (none that starts a system daemon), builds with warnings
# as errors, runs every test plain and under AddressSanitizer + UBSan, builds
# the core alone (every plugin switched off), and checks the formatting.
# The ctest suite of the plain and sanitizer stages includes a second build
# with every bundled plugin built into aimx, run through the end-to-end send
# test (tests/builtin, ctest builtin_static_e2e), and the ABI guard
# (tests/abi: layout baselines, plugins built against the frozen 1.0 header).
#
#   scripts/test.sh            everything
#   AIMX_TEST_JOBS=N           parallel build and test jobs (default: nproc)
#   AIMX_TEST_BUILD_ROOT=DIR   where the build trees go (default: build-test)
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
# Run as root, aimx refuses group-writable plugins: build files must not be.
umask 022
jobs=${AIMX_TEST_JOBS:-$(nproc)}
root=${AIMX_TEST_BUILD_ROOT:-$top/build-test}

# Packages: build tools, the libraries aimx links, the test tools.  Debian
# names; dnsmasq-base (not dnsmasq) so no resolver daemon starts.
packages=(
  build-essential cmake pkg-config clang clang-format
  libltdl-dev libconfig-dev libc-ares-dev libssl-dev libidn2-dev
  libcmocka-dev python3 binutils file dnsmasq-base python3-aiosmtpd openssl
  python3-dkim
  libclang-rt-14-dev time
  # transport-smtp's tests: python3-cryptography makes their certificates;
  # iproute2 (`ip netns`) and nftables (`nft`, whose service is not enabled
  # on install) build the Happy Eyeballs network namespace.
  python3-cryptography iproute2 nftables
  # Packaging (tests/packaging): dpkg-dev for dpkg-shlibdeps, which cpack
  # runs, and dpkg-buildflags; lintian for the .debs; groff-base and
  # man-db to render the man pages as readers and lintian do.
  dpkg-dev lintian groff-base man-db
)

declare -a stage_names=() stage_secs=()
stage_start=0
current=""

begin() {
  current=$1
  stage_start=$(date +%s)
  printf '\n==> %s\n' "$current"
}

end() {
  local secs=$(( $(date +%s) - stage_start ))
  stage_names+=("$current")
  stage_secs+=("$secs")
  printf '==> %s: %ss\n' "$current" "$secs"
}

summary() {
  local rc=$?
  if ((${#stage_names[@]})); then
    printf '\nStage times:\n'
    for i in "${!stage_names[@]}"; do
      printf '  %-48s %5ss\n' "${stage_names[$i]}" "${stage_secs[$i]}"
    done
  fi
  if ((rc != 0)) && [[ -n $current ]]; then
    printf '\nFAILED in stage: %s\n' "$current"
  fi
}
trap summary EXIT

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    echo "all ${#packages[@]} packages present"
    return
  fi
  echo "installing: ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
}

# configure_build DIR [cmake args...]
configure_build() {
  local dir=$1; shift
  cmake -S "$top" -B "$dir" -DAIMX_WERROR=ON "$@" >"$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j "$jobs"
}

run_tests() {
  local dir=$1
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600
}

mkdir -p "$root"

begin "install missing Debian packages"
install_packages
end

begin "build (gcc, -Werror)"
configure_build "$root/plain" -DCMAKE_BUILD_TYPE=RelWithDebInfo
end

begin "tests (plain)"
run_tests "$root/plain"
end

begin "build (gcc, ASan + UBSan, -Werror)"
configure_build "$root/sanitize" -DCMAKE_BUILD_TYPE=Debug -DAIMX_SANITIZE=ON
end

begin "tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_tests "$root/sanitize"
end

begin "core alone (every plugin off): build and tests"
configure_build "$root/core-only" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DAIMX_PLUGIN_RESOLVER_CARES=OFF -DAIMX_PLUGIN_TRANSPORT_SMTP=OFF \
  -DAIMX_PLUGIN_POLICY_IPFAMILY=OFF
run_tests "$root/core-only"
end

begin "formatting (clang-format)"
mapfile -t sources < <(git ls-files '*.c' '*.h' | grep -v '^tests/abi/[0-9]*\.[0-9]*/')
clang-format --dry-run --Werror "${sources[@]}"
echo "${#sources[@]} files formatted as .clang-format says"
end

current=""
printf '\nAll stages passed.\n'
