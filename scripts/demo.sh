#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The README's "run it" command.  Today aimx's main job is not there yet
# (delivery lands with the DNS, SMTP and delivery issues), so the demo
# builds aimx and runs it on its built-in defaults: it shows the version
# and the plugins it finds in the build tree, and whether each one loads
# (ABI, kind, name and required operations checked).  It becomes the send demo
# (DNS and SMTP servers in a network namespace) when delivery lands.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
build=${AIMX_DEMO_BUILD:-$top/build-demo}

packages=(build-essential cmake pkg-config libltdl-dev libconfig-dev
          libc-ares-dev libssl-dev libidn2-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=(); ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

echo "==> building aimx in $build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

aimx=$build/aimx
export AIMX_PLUGIN_PATH=$build/plugins
run() {
  printf '\n$ %s\n' "$*"
  "$@"
}

run "$aimx" --version
run "$aimx" plugins
