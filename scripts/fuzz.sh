#!/usr/bin/env bash
# Fuzz every native Go fuzz target of the module for FUZZTIME each
# (default 60s), one after the other, and stop at the first failure.
#
#   scripts/fuzz.sh                       # all targets, 60s each
#   FUZZTIME=10m scripts/fuzz.sh craft    # only packages whose path contains "craft"
#   FUZZTIME=50000x scripts/fuzz.sh       # 50000 inputs each (what CI runs)
#
# A budget in inputs (Nx) is what CI uses: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded"
# and no failing input when the time runs out (golang/go#75804, fixed in
# Go 1.27). Such a failure here names no input and is that bug.
#
# A failing input is written by go test to the package's
# testdata/fuzz/FuzzXxx/; commit it with the fix: every `go test` then
# replays it. No privileges and no network needed.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-60s}
filter=${1:-}
for pkg in $(go list ./...); do
  [[ -z "$filter" || "$pkg" == *"$filter"* ]] || continue
  for target in $(go test -run '^$' -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "-- $pkg $target ($FUZZTIME)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
  done
done
