#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The README's "run it" command: aimx's main job, on its built-in defaults.
#
# It builds aimx, then creates a network namespace of its own holding a DNS
# server (dnsmasq, port 53, named in the namespace's own resolv.conf) and
# two SMTP servers (aiosmtpd, port 25) on the namespace's IPv4 and IPv6
# loopback addresses, and sends a message to someone@demo.test through the
# three real plugins: once on the defaults (IPv4 only), once with
# enable_ipv6 = true.  It shows the route, each send's outcome, which
# family the message arrived on and the message as received; then it
# removes everything it made.  Needs root (for the namespace).
#
# The one change from the built-in defaults is allow_private_targets =
# true: the demo's servers have private (loopback) addresses, which aimx
# otherwise refuses to connect to so that a hostile MX cannot point it at
# internal services.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
build=${AIMX_DEMO_BUILD:-$top/build-demo}

if ((EUID != 0)); then
  echo "scripts/demo.sh needs root: it creates a network namespace (try sudo)" >&2
  exit 77
fi

packages=(build-essential cmake pkg-config libltdl-dev libconfig-dev
          libc-ares-dev libssl-dev libidn2-dev iproute2 dnsmasq-base
          python3 python3-aiosmtpd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing: ${missing[*]}"
  env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

echo "==> building aimx in $build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

ns=aimx-demo-$$
tmp=$(mktemp -d /tmp/aimx-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "/etc/netns/$ns" "$tmp"
}
trap cleanup EXIT

echo "==> network namespace $ns: DNS on port 53, SMTP on 127.0.0.1:25 and [::1]:25"
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "/etc/netns/$ns"
echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
cat >"$tmp/dnsmasq.conf" <<'ZONE'
mx-host=demo.test,mx.demo.test,10
host-record=mx.demo.test,127.0.0.1
host-record=mx.demo.test,::1
ZONE
ip netns exec "$ns" /usr/sbin/dnsmasq --no-daemon --log-facility=- \
  --conf-file="$tmp/dnsmasq.conf" --pid-file= --no-resolv --no-hosts \
  --no-poll --bind-interfaces --listen-address=127.0.0.1 --port=53 \
  --local=/test/ >"$tmp/dnsmasq.log" 2>&1 &
pids+=($!)
for family in 4 6; do
  addr=127.0.0.1
  ((family == 6)) && addr=::1
  mkdir -p "$tmp/ipv$family"
  ip netns exec "$ns" /usr/bin/python3 tests/peers/aiosmtpd_sink.py \
    --listen "$addr" --port 25 --port-file "$tmp/ipv$family.port" \
    --record "$tmp/ipv$family" --hostname mx.demo.test >"$tmp/ipv$family.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  [[ -s $tmp/ipv4.port && -s $tmp/ipv6.port ]] && break
  sleep 0.1
done
[[ -s $tmp/ipv4.port && -s $tmp/ipv6.port ]] || { cat "$tmp"/*.log; exit 1; }

printf 'allow_private_targets = true;\n' >"$tmp/defaults.conf"
printf 'allow_private_targets = true;\nenable_ipv6 = true;\n' >"$tmp/ipv6.conf"

aimx_in_ns() {
  ip netns exec "$ns" env AIMX_PLUGIN_PATH="$build/plugins" "$build/aimx" "$@"
}
run() {
  printf '\n$ aimx %s\n' "$*"
  aimx_in_ns "$@" || printf '(exit %d)\n' "$?"
}
# Which server got the newest message, and the message as it arrived.
seen4=0
seen6=0
arrived() {
  local n4 n6 family msg
  n4=$(find "$tmp/ipv4" -name 'msg-*.eml' | wc -l)
  n6=$(find "$tmp/ipv6" -name 'msg-*.eml' | wc -l)
  if ((n4 > seen4)); then
    family=4 msg=$tmp/ipv4/msg-$n4.eml
  elif ((n6 > seen6)); then
    family=6 msg=$tmp/ipv6/msg-$n6.eml
  else
    printf '\n--> no message arrived\n'
    return
  fi
  seen4=$n4 seen6=$n6
  printf '\n--> it arrived at the IPv%s server, as received:\n' "$family"
  sed 's/\r$//' "$msg" | sed 's/^/    /'
}

run --config "$tmp/defaults.conf" plugins
run --config "$tmp/defaults.conf" route demo.test
run --config "$tmp/defaults.conf" send --from agent@sender.test \
  --to someone@demo.test --subject "Hello from aimx (defaults)" \
  --body "This message went out over IPv4: IPv6 is off by default."
arrived

echo
echo "==> again with enable_ipv6 = true"
run --config "$tmp/ipv6.conf" route demo.test
run --config "$tmp/ipv6.conf" send --from agent@sender.test \
  --to someone@demo.test --subject "Hello from aimx (IPv6 enabled)" \
  --body "With enable_ipv6 = true the policy prefers IPv6."
arrived
echo
echo "==> removing the namespace and its servers"
