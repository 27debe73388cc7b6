#!/usr/bin/env bash
# make demo: a two-node heartwire cluster and a client in network namespaces on this
# machine, a service address with a tiny UDP service on it, and two failures with their
# timelines (fault, detection, view, acquire, GARP, first client reply):
#
#   1. the cluster runs untouched for a few seconds: the view number must not climb (a
#      cluster that takes over from a live node would make every timeline meaningless);
#   2. a definite failure: the owner's daemon is killed (kill -9 of the daemon, not of
#      its sentinel): the sentinel fences the node and sends a death notice, the other
#      node takes over at once, and the sentinel starts a new daemon, which rejoins;
#   3. a silent failure: every cable of the new owner is pulled: the other node takes
#      over after the path timeout.
#
# Topology: namespaces hwdemo-$$-{sw,a,b,cl}; the switch namespace holds bridges br1 and
# br2; each node has eth1 (net1, 10.201.1.x) and eth2 (net2, 10.201.2.x); the client cl
# is 10.201.1.100 on net1. Paths: raw Ethernet on both networks plus UDP on net1 at the
# default profile (no interval or timeout in the file: docs/DESIGN.md §5, "Choosing a
# profile", says how it was measured) with [realtime], as `init` writes them. Group "web"
# (hot standby on a, then b) holds the service address 10.201.1.50. The service
# (`heartwire-lab responder`) runs on both nodes and answers with its node's name; the
# client asks every 200 µs. Everything the demo creates is removed on exit, also on
# error or Ctrl-C.
set -euo pipefail

BIN=${BIN:-target/release/heartwire}
# The lab's tools (the responder, the probing client, the stamped kill and link-set).
LAB=${LAB:-$(dirname "$BIN")/heartwire-lab}
P="hwdemo-$$"
DIR=$(mktemp -d /tmp/hwdemo.XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in a b cl sw; do ip netns del "$P-$ns" 2>/dev/null || true; done
  # The nodes' cgroups (heartwire.<cluster>.<node>, beside this shell's own): empty once
  # the daemons are gone; rmdir removes only empty ones.
  local cg
  cg=$(awk -F' - ' '$2 ~ /^cgroup2 /{split($1, f, " "); print f[5]; exit}' /proc/self/mountinfo)
  cg="$cg$(sed -n 's/^0:://p' /proc/self/cgroup)"
  for n in a b; do
    [ -d "$cg/heartwire.demo.$n" ] || continue
    find "$cg/heartwire.demo.$n" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
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
interfaces = { a = "eth1", b = "eth1" }

[[path]]
name = "e2"
kind = "ether"
interfaces = { a = "eth2", b = "eth2" }

[[path]]
name = "u1"
kind = "udp"
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
# The sentinel's pid is the one started here; each daemon's is in its status.
declare -A RUN
for n in a b; do
  # nsenter keeps the host's /sys/fs/cgroup (ip netns exec mounts a /sys without it):
  # applications run in the node's cgroup, as under a service manager.
  nsenter --net=/run/netns/"$P-$n" -- "$BIN" run --foreground -c "$DIR/cluster.toml" --node $n --socket "$DIR/$n.sock" 2>"$DIR/$n.log" &
  RUN[$n]=$!
  PIDS+=($!)
  ip netns exec "$P-$n" "$LAB" responder --port 7000 --name $n &
  PIDS+=($!)
done

status_of() { "$BIN" status --json --socket "$DIR/$1.sock" 2>/dev/null || true; }
field() { sed -n "s/^  \"$1\": \\([^,]*\\),\$/\\1/p" | head -1; }
for _ in $(seq 1 200); do
  if status_of a | grep -q '"state": "online"'; then break; fi
  sleep 0.05
done

echo
echo "== 1. the cluster untouched for 3 s: the view number must not climb"
VIEW0=$(status_of a | field view)
sleep 3
VIEW1=$(status_of a | field view)
"$BIN" status --socket "$DIR/a.sock"
# node_down events logged so far (before a fault: each one a takeover from a live node).
downs() { cat "$DIR/a.log" "$DIR/b.log" | grep -c 'event=node_down' || true; }
if [ "$VIEW0" != "$VIEW1" ] || [ "$(downs)" != 0 ]; then
  echo "demo: FAILED: the cluster is not stable on this host (view $VIEW0 -> $VIEW1," >&2
  echo "demo: $(downs) node_down of a live node): it takes over from live nodes, so no" >&2
  echo "demo: timeline would mean anything. See 'local pauses' above, the README's Timing" >&2
  echo "demo: section and \`make soak\`:" >&2
  grep -h 'event=\(node_down\|local_pause\|view_change\)\|sentinel: daemon' "$DIR/a.log" "$DIR/b.log" | head -20 >&2
  exit 1
fi
echo "view $VIEW0 at the start and after 3 s: stable"

# timeline FAULT LABEL NEW_OWNER PROBE_FILE: the new owner's events and its first
# reply to the client, from 5 ms before the fault (CLOCK_MONOTONIC, ms after the fault).
timeline() {
  local fault=$1 label=$2 new=$3 probe=$4 old
  old=$([ "$new" = a ] && echo b || echo a)
  {
    printf '%s fault: %s\n' "$fault" "$label"
    grep -h 'event=' "$DIR/$new.log" | awk -v n="$new" '
      { for (i = 1; i <= NF; i++) if ($i ~ /^at=/) { split(substr($i, 4), t, "."); at = t[1] t[2] }
        line = ""; for (i = 4; i <= NF; i++) if ($i !~ /^at=/ && $i !~ /^paths_last_heard=/) line = line " " $i
        print at, n ":" line }'
    grep -h 'added on' "$DIR/$new.log" | awk -v n="$new" '
      { for (i = 1; i <= NF; i++) if ($i ~ /^at=/) { split(substr($i, 4), t, "."); at = t[1] t[2] }
        line = ""; for (i = 4; i <= NF; i++) if ($i !~ /^at=/) line = line " " $i
        print at, n ":" line }'
    awk -v f="$fault" -v new="$new" -v old="$old" '/^reply/ {
        for (i = 1; i <= NF; i++) { if ($i ~ /^recv=/) r = substr($i, 6); if ($i ~ /^from=/) w = substr($i, 6) }
        if (r > f && w == new && !done) { print r, "client: first reply from " new; done = 1 }
        if (r <= f && w == old) last = r }
      END { if (last) print last, "client: last reply from " old }' "$probe"
  } | sort -s -n -k1,1 | awk -v f="$fault" '{ t = ($1 - f) / 1e6; if (t < -5 || t > 2000) next; $1 = ""; printf "  %+9.3f ms %s\n", t, $0 }'
}

echo
echo "== 2. a definite failure: a's daemon killed (kill -9; its sentinel stays)"
DAEMON_A=$(status_of a | field pid)
ip netns exec "$P-cl" "$LAB" probe --target 10.201.1.50:7000 --interval-us 200 --duration-ms 1000 >"$DIR/probe2.txt" &
PROBE=$!
sleep 0.3
FAULT=$("$LAB" kill --pid "$DAEMON_A")
wait "$PROBE"
timeline "$FAULT" "a's daemon (pid $DAEMON_A) killed" b "$DIR/probe2.txt"
echo "  a's sentinel:"
grep -h 'sentinel: daemon [0-9]* is gone\|sentinel: death notice\|µs from the daemon' "$DIR/a.log" | sed 's/^[^ ]* [A-Z]* */    /'
for _ in $(seq 1 100); do
  s=$(status_of a)
  if [ -n "$s" ] && [ "$(echo "$s" | field pid)" != "$DAEMON_A" ] && echo "$s" | grep -q '"quorate": true'; then break; fi
  sleep 0.05
done
echo "  a's new daemon: pid $(status_of a | field pid), back in view $(status_of a | field view)"

sleep 0.5
# The owner now: b, unless the group fell back to a when a's new daemon rejoined.
OWNER=$(status_of a | grep -o '"owner": "[ab]"' | head -1 | cut -d'"' -f4)
OTHER=$([ "$OWNER" = a ] && echo b || echo a)
echo
echo "== 3. a silent failure: every cable of $OWNER (the owner now) pulled"
ip netns exec "$P-cl" "$LAB" probe --target 10.201.1.50:7000 --interval-us 200 --duration-ms 1500 >"$DIR/probe3.txt" &
PROBE=$!
sleep 0.3
DOWNS=$(downs)
FAULT=$(ip netns exec "$P-$OWNER" "$LAB" link-set --interface eth1 --interface eth2)
wait "$PROBE"
timeline "$FAULT" "$OWNER pulled off both networks" "$OTHER" "$DIR/probe3.txt"

if [ "$DOWNS" != 1 ]; then
  echo "demo: FAILED: $DOWNS node_down events before the cable pull; 1 expected (b's, of the" >&2
  echo "demo: killed daemon): the cluster took over from a live node" >&2
  exit 1
fi
echo
echo "== status of $OTHER after both takeovers"
"$BIN" status --socket "$DIR/$OTHER.sock"
