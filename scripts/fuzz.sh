#!/usr/bin/env bash
# Runs every Fuzz target in the module for a fixed number of executions.
#
# The budget is a count (-fuzztime Nx), not a duration: with a duration, Go
# 1.26's fuzz coordinator can report a bare "context deadline exceeded" when
# the deadline fires while a worker is mid-call (go.dev/issue/75804, fixed in
# Go 1.27), which fails CI without any failing input. A count has no deadline
# to race. A real finding still fails: go test exits non-zero and writes the
# input under testdata/fuzz/.
set -euo pipefail
n_exec=${1:-20000}
cd "$(dirname "$0")/.."
n=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    start=$(date +%s)
    go test -run='^$' -fuzz="^${f}\$" -fuzztime="${n_exec}x" "$pkg" >"$log" 2>&1 || { cat "$log"; exit 1; }
    echo "fuzz $pkg $f: ${n_exec} execs in $(( $(date +%s) - start ))s"
    n=$((n+1))
  done
done
echo "fuzz: $n targets ran"
