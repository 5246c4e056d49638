#!/usr/bin/env bash
# bench-craft.sh: the craft benchmarks against gopacket in one `go test -bench` run, and the speed targets of the
# "Foundation" issue: EncodeSYN 0 allocs, >= 5x gopacket serialize (reused layers), >= 30x gopacket serialize
# (new layers each time); DecodeSYNACK 0 allocs, >= 10x gopacket's DecodingLayerParser; and from the IPv6 issue:
# EncodeSYNIPv6 0 allocs and within 1.5x of EncodeSYN (a ratio IPv4/IPv6 of at least 0.67), and the same for the
# scan's per-probe path, TemplateBuildIPv6 against TemplateBuild.
#
# Usage: scripts/bench-craft.sh              COUNT=5 for the median of 5 runs of each (default 1), STRICT=1 to exit 1
#                                            when a target is not met (default: report only, exit 0)
# No root, no network: pure CPU benchmarks. The machine may be shared: ratios come from the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

COUNT=${COUNT:-1}
STRICT=${STRICT:-0}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test -run '^$' -bench . -benchmem -count "$COUNT" ./craft >"$out" || { cat "$out" >&2; exit 2; }

# name ns/op allocs/op per line, GOMAXPROCS suffix dropped, then the median of each name.
awk '/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  ns = ""; allocs = ""
  for (i = 2; i <= NF; i++) { if ($i == "ns/op") ns = $(i-1); if ($i == "allocs/op") allocs = $(i-1) }
  if (ns != "") print name, ns, (allocs == "" ? 0 : allocs)
}' "$out" | sort -k1,1 -k2,2g | awk '
{ n[$1]++; v[$1, n[$1]] = $2; if (!($1 in a) || $3 > a[$1]) a[$1] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
END {
  for (i = 1; i <= k; i++) {
    m = order[i]; c = n[m]
    med = (c % 2) ? v[m, (c+1)/2] : (v[m, c/2] + v[m, c/2+1]) / 2
    print m, med, a[m]
  }
}' >"$out.med"

get() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$out.med"; }

printf '%-42s %10s %10s\n' benchmark ns/op allocs/op
while read -r name ns allocs; do printf '%-42s %10.2f %10s\n' "$name" "$ns" "$allocs"; done <"$out.med"
echo

unmet=0
check() { # label ours theirs target oursAllocs
  local label=$1 ours theirs target allocs ratio ok
  ours=$(get "$2" 2) theirs=$(get "$3" 2) target=$4 allocs=$(get "$2" 3)
  if [ -z "$ours" ] || [ -z "$theirs" ]; then
    printf '%-44s missing benchmark output\n' "$label"; unmet=1; return
  fi
  ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", b / a }')
  ok=$(awk -v r="$ratio" -v t="$target" -v al="$allocs" 'BEGIN { print (r >= t && al == 0) ? "met" : "NOT met" }')
  [ "$ok" = met ] || unmet=1
  printf '%-44s %8.2f ns vs %8.2f ns  %6sx (target >= %sx, %s allocs/op)  %s\n' \
    "$label" "$ours" "$theirs" "$ratio" "$target" "$allocs" "$ok"
}
check "EncodeSYN vs GopacketSerializeReused" EncodeSYN GopacketSerializeReused 5
check "EncodeSYN vs GopacketSerializeNew" EncodeSYN GopacketSerializeNew 30
check "DecodeSYNACK vs GopacketDecodingLayerParser" DecodeSYNACK GopacketDecodingLayerParser 10
check "EncodeSYNIPv6 vs EncodeSYN (IPv4)" EncodeSYNIPv6 EncodeSYN 0.67
check "TemplateBuildIPv6 vs TemplateBuild (scan)" TemplateBuildIPv6 TemplateBuild 0.67
rm -f "$out.med"

if [ "$unmet" = 1 ]; then
  echo
  echo "A target is not met. For DecodeSYNACK this is expected: see the comment at the top of craft/bench_test.go"
  echo "and the DecodeFloor rows above (the harness and ParsePacket's checks alone exceed a tenth of gopacket's time)."
  [ "$STRICT" = 1 ] && exit 1
fi
exit 0
