#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# aimx's benchmarks against the tools a user would pick instead (curl,
# swaks, msmtp, Python smtplib, Postfix), all in one run: see
# docs/performance.md for what is measured, the goals and the latest
# summary, and bench/bench.py for how.
#
#   sudo bench/run.sh [--quick] [--only NAME[,NAME...]] [--no-docs]
#
# It installs what it needs from Debian (Postfix preseeded to "No
# configuration", with a policy-rc.d that forbids service starts while it
# is installed, so no system mail daemon ever runs), builds aimx (Release)
# in build-bench/, creates a network namespace of its own holding every
# server (dnsmasq on port 53, Postfix's smtp-sink on port 25, the DNS and
# SMTP fault peers, a STARTTLS recording receiver, and Postfix itself with
# its configuration in /etc/netns/<ns>/postfix), runs bench/bench.py
# inside it, and removes everything it made.  Results: bench/results/
# (Markdown + JSON, ignored by git) and docs/performance.md.  Needs root
# (namespaces); takes under 2 minutes on 2 cores after the build.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
build=${AIMX_BENCH_BUILD:-$top/build-bench}

usage() {
  echo "usage: sudo bench/run.sh [--quick] [--only NAME[,NAME...]] [--no-docs]" >&2
  echo "  NAME: one, fanout, slow, large, startup (docs/performance.md)" >&2
  exit 64
}
# Checked before anything is installed, built or created.
args=("$@")
while (($#)); do
  case $1 in
    --quick | --no-docs) shift ;;
    --only)
      (($# >= 2)) || usage
      IFS=, read -ra names <<<"$2"
      ((${#names[@]})) || usage
      for n in "${names[@]}"; do
        case $n in
          one | fanout | slow | large | startup) ;;
          *) echo "bench/run.sh: --only: unknown benchmark '$n'" >&2; usage ;;
        esac
      done
      shift 2
      ;;
    -h | --help) usage ;;
    *) echo "bench/run.sh: unknown option '$1'" >&2; usage ;;
  esac
done
set -- "${args[@]}"

if ((EUID != 0)); then
  echo "bench/run.sh needs root: it creates a network namespace and runs Postfix in it (try sudo)" >&2
  exit 77
fi

packages=(build-essential cmake pkg-config libltdl-dev libconfig-dev
          libc-ares-dev libssl-dev libidn2-dev iproute2 dnsmasq-base
          python3 curl swaks msmtp hyperfine time openssl valgrind
          postfix)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing: ${missing[*]}"
  # Postfix is the one package here that ships a daemon: preseed it to
  # "No configuration" and forbid service starts while apt runs.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# aimx bench/run.sh: no service starts while installing\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  status=0
  {
    env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
  } || status=$?
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  ((status == 0)) || exit "$status"
fi
# A Postfix some earlier install left running would answer instead of ours.
if pgrep -x master >/dev/null && [[ -e /var/spool/postfix/pid/master.pid ]]; then
  echo "bench/run.sh: a system Postfix is running; stop it first (postfix stop)" >&2
  exit 69
fi

echo "==> building aimx (Release) in $build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

ns=aimx-bench-$$
work=$(mktemp -d /var/tmp/aimx-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  # bench.py stops what it started; this catches a bench.py that was killed.
  if [[ -n "$(ip netns pids "$ns" 2>/dev/null)" ]]; then
    ip netns pids "$ns" | xargs -r kill 2>/dev/null || true
    sleep 1
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "/etc/netns/$ns" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
# The fan-out MX lives on a non-loopback address of the namespace: Postfix
# refuses an MX on its own loopback address ("mail loops back to myself").
# (A veth pair with both ends inside: the dummy driver is not always there.)
ip -n "$ns" link add bench0 type veth peer name bench1
ip -n "$ns" addr add 10.77.0.1/24 dev bench0
ip -n "$ns" link set bench0 up
ip -n "$ns" link set bench1 up
mkdir -p "/etc/netns/$ns/postfix"
echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"

ip netns exec "$ns" /usr/bin/python3 "$top/bench/bench.py" \
  --top "$top" --build "$build" --work "$work" --namespace "$ns" \
  --postfix-config "/etc/netns/$ns/postfix" "$@"
