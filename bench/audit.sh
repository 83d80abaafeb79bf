#!/usr/bin/env bash
# bench/audit.sh: the rolling audit's cost per day (issue 16). A `cairn
# server` with one client and a directory destination stores a backup of
# a data set and replicates it; the server is then stopped and `cairn
# server audit --replicas` runs once per simulated day on an injected
# clock (CAIRN_TEST_MONITOR_CLOCK), with the default fraction 1/30, and
# once with --fraction 1. Reports, per audit, the files re-hashed, the
# bytes read (primary and replica), the wall and CPU time and the coverage.
#
#   bench/audit.sh [-d DIR] [-n DAYS] [-f FRACTION]
#
# DIR defaults to data set K (the Linux 6.1 source, untarred from
# /usr/src/linux-source-6.1.tar.xz into the work directory). Everything
# lives in a temporary directory, removed at the end. Needs go and jq.
set -euo pipefail

src= days=3 frac=1/30
while getopts d:n:f: o; do
	case $o in
	d) src=$OPTARG ;;
	n) days=$OPTARG ;;
	f) frac=$OPTARG ;;
	*) echo "usage: $0 [-d dir] [-n days] [-f fraction]" >&2; exit 2 ;;
	esac
done

. "$(dirname "$0")/lib.sh"
bench_workdir

cd "$(dirname "$0")/.."
if [ -z "$src" ]; then
	tar=/usr/src/linux-source-6.1.tar.xz
	[ -f "$tar" ] || { echo "no $tar: apt-get install linux-source-6.1, or give -d DIR" >&2; exit 1; }
	mkdir -p "$work/K"
	tar -xJf "$tar" -C "$work/K"
	src=$work/K
fi
go build -o "$work/cairn" ./cmd/cairn
cairn=$work/cairn
export CAIRN_SERVER_DATA=$work/data XDG_CONFIG_HOME=$work/config XDG_CACHE_HOME=$work/cache HOME=$work
export CAIRN_TEST_MONITOR_CLOCK=$work/clock CAIRN_PASSWORD=bench-repository-pw
t0=$(date -u +%s)
setclock() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ >"$work/clock.new" && mv "$work/clock.new" "$work/clock"; }
setclock "$t0"
"$cairn" server init >/dev/null
echo "bench-client-pw" >"$work/c.pass"
"$cairn" server client add c --password-file "$work/c.pass" >/dev/null
"$cairn" server destination add disk --location "$work/replicas" --all >/dev/null

bench_start_server --audit-every 0
fp=$("$cairn" server fingerprint | sed 's/^server fingerprint: //')
repo="rest:http://c:bench-client-pw@$addr/c/main"
"$cairn" -r "$repo" init --server-fingerprint "$fp" --owner-key-file "$work/owner.key" >/dev/null
export CAIRN_KEY_FILE=$work/owner.key
"$cairn" -r "$repo" backup -q "$src" >/dev/null
for _ in $(seq 600); do
	lag=$("$cairn" server replication status --json | jq '[.[] | select(.snapshot != "" and .lag_bytes == 0 and .lag_seconds == 0)] | length')
	[ "$lag" = 1 ] && break
	sleep 0.5
done
[ "$lag" = 1 ] || { echo "replication did not complete" >&2; exit 1; }
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
server_pid=
stored=$(du -sb "$CAIRN_SERVER_DATA/repos/c/main" | cut -f1)
files=$(find "$CAIRN_SERVER_DATA/repos/c/main" -type f | wc -l)
printf 'data set:  %s\nstored:    %d bytes in %d files per copy (primary + 1 replica)\n\n' "$src" "$stored" "$files"
printf '%-12s %10s %14s %9s %9s %9s %9s\n' audit files "bytes read" "MB/s" seconds "CPU s" coverage
run() { # label day fraction
	setclock $((t0 + $2 * 86400))
	local t u s cpu
	# Wall and CPU (user + system) seconds of the audit process.
	/usr/bin/time -f '%e %U %S' -o "$work/time" "$cairn" server audit --replicas --fraction "$3" --json >"$work/audit.json"
	read -r t u s <"$work/time"
	cpu=$(echo "$u + $s" | bc)
	jq -r --arg l "$1" --arg t "$t" --arg c "$cpu" \
		'.clients[0] | [$l, .checked, .bytes_read, (.bytes_read / 1e6 / ($t | tonumber) | floor), $t, $c, (.coverage * 1000 | floor / 1000)] | @tsv' "$work/audit.json" |
		awk -F'\t' '{printf "%-12s %10d %14d %9d %9.2f %9.2f %9.3f\n", $1, $2, $3, $4, $5, $6, $7}'
}
for d in $(seq 1 "$days"); do
	run "day $d" "$d" "$frac"
done
run "full" $((days + 1)) 1
