#!/usr/bin/env bash
# make demo: a two-node heartwire cluster and a client in network namespaces on this
# machine, a service address with a tiny UDP service on it, the owner dying, and the
# timeline: fault, detection, view, acquire, GARP, first client reply.
#
# Topology: namespaces hwdemo-$$-{sw,a,b,cl}; the switch namespace holds bridges br1 and
# br2; each node has eth1 (net1, 10.201.1.x) and eth2 (net2, 10.201.2.x); the client cl
# is 10.201.1.100 on net1. Paths: raw Ethernet on both networks plus UDP on net1, every
# 1 ms with a 10 ms timeout (100 µs / 1 ms flaps on a loaded 2-core VM: the README's
# timing section says how to measure a host before tightening). Group "web" (hot standby on a, then b) holds the service
# address 10.201.1.50. The service (`heartwire debug responder`) runs on both nodes and
# answers with its node's name; the client asks every 200 µs. The fault: every cable of a
# pulled at once, then its daemon killed with kill -9 — a dead node. A cluster that
# flapped before the fault (a node declared down while it was alive) makes the demo fail
# with the reason: its timeline would not mean anything. Everything the demo creates is
# removed on exit, also on error or Ctrl-C.
set -euo pipefail

BIN=${BIN:-target/release/heartwire}
P="hwdemo-$$"
DIR=$(mktemp -d /tmp/hwdemo.XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in a b cl sw; do ip netns del "$P-$ns" 2>/dev/null || true; done
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

ip netns add "$P-cl"
ip -n "$P-cl" link set lo up
ip -n "$P-sw" link add cl1 type veth peer name eth0 netns "$P-cl"
ip -n "$P-sw" link set cl1 master br1 up
ip -n "$P-cl" link set eth0 up
ip -n "$P-cl" addr add 10.201.1.100/24 dev eth0

head -c 32 /dev/urandom > "$DIR/key"
chmod 600 "$DIR/key"
cat > "$DIR/cluster.toml" <<TOML
[cluster]
name = "demo"
id = 77
key_file = "key"
two_node = true

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
interval = "1ms"
timeout = "10ms"
interfaces = { a = "eth1", b = "eth1" }

[[path]]
name = "e2"
kind = "ether"
interval = "1ms"
timeout = "10ms"
interfaces = { a = "eth2", b = "eth2" }

[[path]]
name = "u1"
kind = "udp"
interval = "1ms"
timeout = "10ms"
port = 5405
addresses = { a = "10.201.1.1", b = "10.201.1.2" }

[[group]]
name = "web"
nodes = ["a", "b"]

[[group.resource]]
name = "vip"
kind = "ip"
address = "10.201.1.50/24"
interface = "eth1"
announce_interval = "10ms"
TOML

echo "== config ($DIR/cluster.toml), from the first path on"
sed -n '/^\[\[path\]\]/,$p' "$DIR/cluster.toml"
for n in a b; do
  ip netns exec "$P-$n" "$BIN" run --foreground -c "$DIR/cluster.toml" --node $n --socket "$DIR/$n.sock" 2>"$DIR/$n.log" &
  PIDS+=($!)
  ip netns exec "$P-$n" "$BIN" debug responder --port 7000 --name $n &
  PIDS+=($!)
done

for _ in $(seq 1 200); do
  if "$BIN" status --json --socket "$DIR/a.sock" 2>/dev/null | grep -q '"state": "online"'; then break; fi
  sleep 0.05
done
sleep 0.5
echo
echo "== status of a: both nodes up, a owns group web"
"$BIN" status --socket "$DIR/a.sock"

ip netns exec "$P-cl" "$BIN" debug probe --target 10.201.1.50:7000 --interval-us 200 --duration-ms 1500 >"$DIR/probe.txt" &
PROBE=$!
sleep 0.5
FAULT=$(ip netns exec "$P-a" "$BIN" debug link-set --interface eth1 --interface eth2)
"$BIN" debug kill --pid "${PIDS[0]}" >/dev/null
wait "${PIDS[0]}" 2>/dev/null || true
wait "$PROBE"

# A live node declared down before the fault is a false takeover: say so and fail.
FLAPS=$(cat "$DIR/a.log" "$DIR/b.log" | awk -v f="$FAULT" '/event=node_down/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^at=/) { split(substr($i, 4), t, "."); if (t[1] t[2] + 0 < f + 0) n++ } }
  END { print n + 0 }')
if [ "$FLAPS" != 0 ]; then
  echo
  echo "demo: FAILED: the cluster flapped before the fault ($FLAPS node_down of a live node);" >&2
  echo "demo: this host stalls longer than the 10 ms timeout (see 'local pauses' above and" >&2
  echo "demo: the README's timing section); the timeline below is not a failover:" >&2
  grep -h 'event=\(node_down\|local_pause\|view_change\)' "$DIR/a.log" "$DIR/b.log" | head -20 >&2
  exit 1
fi

echo
echo "== timeline (CLOCK_MONOTONIC; t=0: every cable of a pulled, then its daemon killed)"
{
  printf '%s fault: a pulled off both networks\n' "$FAULT"
  grep -h 'event=' "$DIR/b.log" | awk '
    { for (i = 1; i <= NF; i++) if ($i ~ /^at=/) { split(substr($i, 4), t, "."); at = t[1] t[2] }
      line = ""; for (i = 4; i <= NF; i++) if ($i !~ /^at=/ && $i !~ /^paths_last_heard=/) line = line " " $i
      print at, "b:" line }'
  grep -h 'added on' "$DIR/b.log" | awk '
    { for (i = 1; i <= NF; i++) if ($i ~ /^at=/) { split(substr($i, 4), t, "."); at = t[1] t[2] }
      line = ""; for (i = 4; i <= NF; i++) if ($i !~ /^at=/) line = line " " $i
      print at, "b:" line }'
  awk -v f="$FAULT" '/^reply/ { for (i = 1; i <= NF; i++) { if ($i ~ /^recv=/) r = substr($i, 6); if ($i ~ /^from=/) w = substr($i, 6) }
      if (r > f && w == "b" && !done) { print r, "client: first reply from b"; done = 1 }
      if (r <= f && w == "a") last = r }
    END { if (last) print last, "client: last reply from a" }' "$DIR/probe.txt"
} | sort -s -n -k1,1 | awk -v f="$FAULT" '{ t = ($1 - f) / 1e6; if (t < -5) next; $1 = ""; printf "  %+9.3f ms %s\n", t, $0 }'
echo
echo "== status of b after the takeover"
"$BIN" status --socket "$DIR/b.sock"
