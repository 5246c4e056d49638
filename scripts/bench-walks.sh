#!/usr/bin/env bash
# bench-walks.sh: walk throughput of tcpwalk against the lab's Linux target,
# with the kernel's own connect()+close() measured in the same `go test` run,
# and the time of all scenarios at once against the slowest walk.
#
# Usage: sudo scripts/bench-walks.sh [N] [COUNT]
#   N      walks (and kernel connections) per row, default 2000
#   COUNT  repetitions of every row; the table shows medians, default 3
#
# Needs root (network namespaces, raw sockets); without it the benchmarks
# skip and the table is empty. Every lab the benchmarks make is removed by
# their cleanup, also when one fails; the whole script is bounded by
# BENCH_TIMEOUT (default 15m). Nothing leaves the lab's namespaces.
set -euo pipefail

N=${1:-2000}
COUNT=${2:-3}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-15m}
case $N in '' | *[!0-9]*) echo "bench-walks: N must be a number, got '$N'" >&2; exit 2 ;; esac
case $COUNT in '' | *[!0-9]*) echo "bench-walks: COUNT must be a number, got '$COUNT'" >&2; exit 2 ;; esac
if [ "$N" -lt 1 ] || [ "$N" -gt 20000 ] || [ "$COUNT" -lt 1 ] || [ "$COUNT" -gt 20 ]; then
	echo "bench-walks: want 1 <= N <= 20000 (kernel TIME_WAITs must fit the ephemeral port range) and 1 <= COUNT <= 20" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-walks: needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW) for the lab; the benchmarks will skip" >&2
fi

cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin" # sudo may drop it
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "tcpwalk walk benchmark: N=$N, COUNT=$COUNT, $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# One invocation for both peers, so that they measure the same machine.
# -timeout bounds the test binary, timeout(1) the build as well.
timeout --kill-after=30s "$BENCH_TIMEOUT" \
	go test -run '^$' -bench '^(BenchmarkWalkHandshakeTeardown|BenchmarkKernelConnectClose)$' \
	-benchtime="${N}x" -count="$COUNT" -timeout "$BENCH_TIMEOUT" ./probe/walk/ >"$out/rate.txt" 2>&1 || {
	cat "$out/rate.txt" >&2
	echo "bench-walks: the throughput benchmarks failed" >&2
	exit 1
}
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# All scenarios at once, as `tcpwalk demo` runs them (DefaultTiming).
timeout --kill-after=30s "$BENCH_TIMEOUT" \
	go test -run '^$' -bench '^BenchmarkWalkAllConcurrent$' -benchtime=1x -count="$COUNT" \
	-timeout "$BENCH_TIMEOUT" ./probe/walk/ >"$out/all.txt" 2>&1 || {
	cat "$out/all.txt" >&2
	echo "bench-walks: the all-scenarios benchmark failed" >&2
	exit 1
}

awk -v n="$N" -v count="$COUNT" -v load_after="$load_after" '
# median of the space-separated numbers in s
function median(s,    a, k, i, j, t) {
	k = split(s, a, " ")
	for (i = 2; i <= k; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
	if (k == 0) return 0
	if (k % 2) return a[(k + 1) / 2]
	return (a[k / 2] + a[k / 2 + 1]) / 2
}
# value of the metric whose unit is u on a benchmark line
function metric(u,    i) {
	for (i = 4; i <= NF; i++) if ($i == u) return $(i - 1)
	return ""
}
FILENAME ~ /rate.txt$/ && /^Benchmark(WalkHandshakeTeardown|KernelConnectClose)\/C=/ {
	split($1, p, "/"); m = (p[1] ~ /Walk/) ? "walk" : "kernel"
	c = p[2]; sub(/^C=/, "", c); sub(/-[0-9]+$/, "", c)
	key = m SUBSEP c
	if (!(c in seen)) { seen[c] = 1; cs[++nc] = c }
	rate[key] = rate[key] " " metric(m == "walk" ? "walks/s" : "conns/s")
	cpu[key] = cpu[key] " " metric("cpu-µs/op")
	if (m == "walk" && metric("bytes/walk") != "") mem[key] = mem[key] " " metric("bytes/walk")
	next
}
FILENAME ~ /all.txt$/ && /^BenchmarkWalkAllConcurrent/ {
	all = all " " metric("all_s"); slow = slow " " metric("slowest_s"); sum = sum " " metric("sum_s")
	next
}
END {
	if (nc == 0) { print "no results (skipped? see the go test output)"; exit 1 }
	printf "walk: the passive-close scenario against the lab echo port (SYN, SYN-ACK, ACK, probe; FIN, its FIN,\n"
	printf "      KA1 in LAST_ACK, ACK, 20 ms of silence, KA1 -> RST), every check must pass; Timing = DefaultTiming but Quiet 20ms.\n"
	printf "      kernel: net.Dialer connect() + Close() from the prober namespace to the same port.\n"
	printf "C walks/conns in flight at once; medians of %d runs; cpu is process user+sys per op (servers and packet path included)\n\n", count
	printf "%-8s %6s %7s %9s %9s %9s %11s %11s\n", "method", "C", "N", "wall_s", "rate/s", "ratio", "cpu_us/op", "bytes/walk"
	for (i = 1; i <= nc; i++) {
		c = cs[i]
		kr = median(rate["kernel" SUBSEP c]); wr = median(rate["walk" SUBSEP c])
		if (kr > best_k) { best_k = kr; best_kc = c }
		if (wr > best_w) { best_w = wr; best_wc = c }
		m = median(mem["walk" SUBSEP c]); m = m ? sprintf("%.0f", m) : "-"
		printf "%-8s %6s %7d %9.3f %9.0f %9.2f %11.0f %11s\n", "tcpwalk", c, n, (wr ? n / wr : 0), wr, (kr ? wr / kr : 0), median(cpu["walk" SUBSEP c]), m
		printf "%-8s %6s %7d %9.3f %9.0f %9.2f %11.0f %11s\n", "kernel", c, n, (kr ? n / kr : 0), kr, 1, median(cpu["kernel" SUBSEP c]), "-"
	}
	printf "\nbest rates: tcpwalk %.0f/s (C=%s), kernel %.0f/s (C=%s): tcpwalk/kernel = %.2f (requirement: >= 0.50)\n", best_w, best_wc, best_k, best_kc, (best_k ? best_w / best_k : 0)
	printf "load average after the throughput run: %s\n\n", load_after
	if (all != "") {
		a = median(all); s = median(slow); t = median(sum)
		printf "all scenarios at once (walk.Run, DefaultTiming, lab trigger, sock_diag oracle), medians of %d runs:\n", count
		printf "  walk.Run wall %.3f s, slowest walk %.3f s, sum of all walks %.3f s: wall/slowest = %.3f, wall/sum = %.3f\n", a, s, t, (s ? a / s : 0), (t ? a / t : 0)
	}
}' "$out/rate.txt" "$out/all.txt"
