#!/usr/bin/env bash
# bench-scan.sh: tcpwalk scan, masscan and nmap -sS against the same two-namespace lab (50 random open ports
# among 65535, the rest closed), in one run. For each tool and rate: wall time, probes per second, open ports
# found of 50, peak memory (max RSS from /usr/bin/time); tcpwalk once per send path (--send-path packet, the
# default here, and raw). Then each send path alone, pinned to one core (taskset -c 0): tcpwalk scanning 16 hosts
# behind a gateway whose MAC nobody has (no target work, no replies), which is the per-core sending rate.
#
# Usage: sudo scripts/bench-scan.sh            (RATES="20000 100000" OPEN=50 REPEAT=1 to change the defaults)
# Needs root. Installs masscan, nmap, time and python3 from Debian's packages if missing. Every namespace,
# veth and process it makes is removed on exit. Traffic stays inside 198.18.0.0/15 in its own namespaces
# (no default route there).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

RATES=${RATES:-"5000 20000 100000 200000 1000000"}
OPEN=${OPEN:-50}
REPEAT=${REPEAT:-1}
WAIT=1 # seconds every tool waits for late replies

[ "$(id -u)" = 0 ] || { echo "bench-scan: run as root (namespaces, raw sockets)" >&2; exit 3; }
need=()
command -v masscan >/dev/null || need+=(masscan)
command -v nmap >/dev/null || need+=(nmap)
[ -x /usr/bin/time ] || need+=(time)
[ -x /usr/bin/python3 ] || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench-scan: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
P=twb-$id-prober T=twb-$id-target S=twb-$id-sink VP=twb${id}p VT=twb${id}t VD=twb${id}d VS=twb${id}s
listener=
cleanup() {
  set +e # remove everything, whatever fails
  if [ -n "$listener" ]; then kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; fi
  ip netns del "$P" 2>/dev/null || true
  ip netns del "$T" 2>/dev/null || true
  ip netns del "$S" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "bench-scan: building tcpwalk" >&2
go build -o "$work/tcpwalk" .

ip netns add "$P"
ip netns add "$T"
ip netns add "$S"
ip link add "$VP" netns "$P" type veth peer name "$VT" netns "$T"
ip -n "$P" addr add 198.18.0.1/24 dev "$VP"
ip -n "$T" addr add 198.18.0.2/24 dev "$VT"
for ns in "$P" "$T"; do ip -n "$ns" link set lo up; done
ip -n "$P" link set "$VP" up
ip -n "$T" link set "$VT" up
# The send path alone: 198.19.0.3 on the link, and 198.19.1.0/28 routed via 198.19.0.2, reach static neighbours
# with a MAC address that no interface has (locally administered), so the sink namespace drops every frame at the
# start of IP input (PACKET_OTHERHOST) and nothing answers. The veth delivers on the sending core, so that drop is
# in the rate.
ip link add "$VD" netns "$P" type veth peer name "$VS" netns "$S"
ip -n "$P" addr add 198.19.0.1/24 dev "$VD"
ip -n "$P" link set "$VD" up
ip -n "$S" link set "$VS" up
ip -n "$P" neigh replace 198.19.0.2 lladdr 02:00:00:00:00:01 dev "$VD" nud permanent
ip -n "$P" neigh replace 198.19.0.3 lladdr 02:00:00:00:00:01 dev "$VD" nud permanent
ip -n "$P" route add 198.19.1.0/28 via 198.19.0.2 dev "$VD"
sleep 1 # carrier up on both veth ends
target_mac=$(ip -n "$T" -o link show "$VT" 2>/dev/null | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)

ip netns exec "$T" /usr/bin/python3 -c '
import random, signal, socket, sys
n = int(sys.argv[1])
ports = sorted(random.sample(range(1, 65536), n))
socks = []
for p in ports:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.2", p))
    s.listen(4096)
    socks.append(s)
print(" ".join(map(str, ports)), flush=True)
signal.pause()
' "$OPEN" >"$work/ports" &
listener=$!
for _ in $(seq 50); do [ -s "$work/ports" ] && break; sleep 0.1; done
[ -s "$work/ports" ] || { echo "bench-scan: listeners did not start" >&2; exit 3; }
echo "bench-scan: $OPEN open ports on 198.18.0.2: $(cat "$work/ports")" >&2

rows=()
# measure TOOL RATE CMD...: runs CMD under /usr/bin/time; the caller's parser counts the open ports in $work/out.
measure() {
  [ -n "${DEBUG:-}" ] && echo "+ $*" >&2
  /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || {
    echo "bench-scan: failed: $*" >&2; tail -5 "$work/err" >&2; return 1; }
  read -r wall rss user sys <"$work/time"
  [ -n "${DEBUG:-}" ] && tail -3 "$work/err" >&2
  true
}
row() { # TOOL RATE WALL FOUND RSS_KB [SEND_PPS]
  local pps
  pps=$(awk -v w="$3" 'BEGIN { printf "%.0f", 65535 / w }')
  rows+=("$(printf '%-26s %9s %8.2f %12s %10s %8s %9.1f' "$1" "$2" "$3" "$pps" "${6:--}" "$4/$OPEN" "$(awk -v k="$5" 'BEGIN { print k / 1024 }')")")
}

masscan_best=0
declare -A tcpwalk_best=([packet]=0 [raw]=0)
for r in $(seq "$REPEAT"); do
  for rate in $RATES; do
    measure ip netns exec "$P" masscan 198.18.0.2 -p1-65535 --rate "$rate" --wait "$WAIT" \
      --adapter "$VP" --adapter-ip 198.18.0.1 --router-mac "$target_mac"
    found=$(grep -c '^Discovered open port' "$work/out" || true)
    row "masscan" "$rate" "$wall" "$found" "$rss"
    [ "$found" = "$OPEN" ] && [ "$rate" -gt "$masscan_best" ] && masscan_best=$rate

    for path in packet raw; do
      measure "$work/tcpwalk" --netns "$P" scan -p- --rate "$rate" --retries 1 --wait "${WAIT}s" --send-path "$path" \
        --json --no-progress 198.18.0.2
      found=$(grep '"event":"summary"' "$work/out" | grep -o '"open":[0-9]*' | cut -d: -f2)
      send=$(grep '"event":"summary"' "$work/out" | grep -o '"send_rate_pps":[0-9.]*' | cut -d: -f2)
      row "tcpwalk $path (retries 1)" "$rate" "$wall" "${found:-0}" "$rss" "$send"
      [ "${found:-0}" = "$OPEN" ] && [ "$rate" -gt "${tcpwalk_best[$path]}" ] && tcpwalk_best[$path]=$rate
    done
  done
done

measure ip netns exec "$P" nmap -sS -p- -n -Pn -T4 198.18.0.2 -oG -
found=$(grep -o '[0-9]*/open/tcp' "$work/out" | wc -l)
row "nmap -sS -T4" "adaptive" "$wall" "$found" "$rss"

# Each send path alone, on one core: no target, no replies; --rate far above what one core sends; about a
# million probes each, so that start-up is small against the sending. On-link: one host on the veth's subnet
# (as the lab's target), 16 passes over its 65535 ports (--retries 15: nothing answers, so every pass sends them
# all); routed: 16 hosts behind the gateway, one pass.
sink_rows=()
for r in $(seq "$REPEAT"); do
  for dst in on-link routed; do
    for path in packet raw; do
      case $dst in
      on-link) args=(--retries 15 198.19.0.3) ;;
      routed) args=(--retries 0 198.19.1.0/28) ;;
      esac
      measure taskset -c 0 "$work/tcpwalk" --netns "$P" scan -p- --rate 100000000 --wait 10ms \
        --send-path "$path" --json --no-progress "${args[@]}"
      sent=$(grep '"event":"summary"' "$work/out" | grep -o '"sent":[0-9]*' | cut -d: -f2)
      send=$(grep '"event":"summary"' "$work/out" | grep -o '"send_rate_pps":[0-9.]*' | cut -d: -f2)
      percpu=$(awk -v n="${sent:-0}" -v u="$user" -v s="$sys" 'BEGIN { c = u + s; printf "%.0f", (c > 0 ? n / c : 0) }')
      sink_rows+=("$(printf '%-8s %-8s %9s %12.0f %8.2f %8.2f %8.2f %12s' "$path" "$dst" "${sent:-0}" "${send:-0}" \
        "$wall" "$user" "$sys" "$percpu")")
    done
  done
done

echo
echo "Same lab, same run: 65535 ports of 198.18.0.2, $OPEN open; each tool waits ${WAIT}s for late replies."
echo "probes/s = 65535 / wall time (start-up and wait included); send pps = tcpwalk's own measure while sending."
printf '%-26s %9s %8s %12s %10s %8s %9s\n' "tool" "rate" "wall s" "probes/s" "send pps" "found" "peak MiB"
printf '%s\n' "${rows[@]}"
echo
echo "highest rate finding all $OPEN open ports: masscan $masscan_best, tcpwalk packet ${tcpwalk_best[packet]}, tcpwalk raw ${tcpwalk_best[raw]} probes/s"
echo
echo "Send paths alone on one core (taskset -c 0), to a sink that answers nothing. send pps = tcpwalk's own"
echo "measure while sending; probes/cpu-s = probes / (user + sys), start-up included."
printf '%-8s %-8s %9s %12s %8s %8s %8s %12s\n' "path" "sink" "probes" "send pps" "wall s" "user s" "sys s" "probes/cpu-s"
printf '%s\n' "${sink_rows[@]}"
