#!/usr/bin/env bash
# make demo: a two-node heartwire cluster in network namespaces on this machine, a kill -9
# of one node, and the survivor's detection timeline.
#
# Topology: namespaces hwdemo-$$-{sw,a,b}; the switch namespace holds bridges br1 and br2;
# each node has eth1 (net1, 10.201.1.x) and eth2 (net2, 10.201.2.x). Paths: raw Ethernet
# on both networks plus UDP on net1, every 100 µs with a 1 ms timeout. Everything the demo
# creates is removed on exit, also on error or Ctrl-C.
set -euo pipefail

BIN=${BIN:-target/release/heartwire}
P="hwdemo-$$"
DIR=$(mktemp -d /tmp/hwdemo.XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in a b sw; do ip netns del "$P-$ns" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

ip netns add "$P-sw"
for br in br1 br2; do
  ip -n "$P-sw" link add $br type bridge
  ip -n "$P-sw" link set $br up
done
i=0
for n in a b; do
  i=$((i + 1))
  ip netns add "$P-$n"
  ip -n "$P-$n" link set lo up
  for net in 1 2; do
    ip -n "$P-sw" link add "$n$net" type veth peer name "eth$net" netns "$P-$n"
    ip -n "$P-sw" link set "$n$net" master "br$net" up
    ip -n "$P-$n" link set "eth$net" up
    ip -n "$P-$n" addr add "10.201.$net.$i/24" dev "eth$net"
  done
done

head -c 32 /dev/urandom > "$DIR/key"
chmod 600 "$DIR/key"
cat > "$DIR/cluster.toml" <<TOML
[cluster]
name = "demo"
id = 77
key_file = "key"

[realtime]
priority = 50
cpu_dma_latency_us = 0

[[node]]
name = "a"
id = 1

[[node]]
name = "b"
id = 2

[[path]]
name = "e1"
kind = "ether"
interval = "100us"
timeout = "1ms"
interfaces = { a = "eth1", b = "eth1" }

[[path]]
name = "e2"
kind = "ether"
interval = "100us"
timeout = "1ms"
interfaces = { a = "eth2", b = "eth2" }

[[path]]
name = "u1"
kind = "udp"
interval = "100us"
timeout = "1ms"
port = 5405
addresses = { a = "10.201.1.1", b = "10.201.1.2" }
TOML

echo "== config ($DIR/cluster.toml)"
sed -n '/^\[\[path\]\]/,$p' "$DIR/cluster.toml" | head -7
for n in a b; do
  ip netns exec "$P-$n" "$BIN" run --foreground -c "$DIR/cluster.toml" --node $n --socket "$DIR/$n.sock" 2>"$DIR/$n.log" &
  PIDS+=($!)
done

for _ in $(seq 1 200); do
  if "$BIN" status --json --socket "$DIR/b.sock" 2>/dev/null | grep -q '"state": "up"'; then break; fi
  sleep 0.05
done
sleep 1
echo
echo "== status of b, both nodes running"
"$BIN" status --socket "$DIR/b.sock"

KILLED_AT=$("$BIN" debug kill --pid "${PIDS[0]}")
sleep 0.5

echo "== timeline on b after kill -9 of a (pid ${PIDS[0]}); t=0 is the kill, CLOCK_MONOTONIC"
printf '  %+10.3f ms  kill -9 a\n' 0
grep -h 'event=' "$DIR/b.log" | awk -v k="$KILLED_AT" '
  { for (i = 1; i <= NF; i++) if ($i ~ /^at=/) { split(substr($i, 4), t, "."); at = t[1] * 1e9 + t[2] }
    if (at < k - 2e6) next
    line = ""; for (i = 4; i <= NF; i++) if ($i !~ /^at=/) line = line " " $i
    printf "  %+10.3f ms %s\n", (at - k) / 1e6, line }'
echo
echo "== status of b after the failure"
"$BIN" status --socket "$DIR/b.sock"
