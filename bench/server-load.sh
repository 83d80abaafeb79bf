#!/usr/bin/env bash
# bench/server-load.sh: a `cairn server` on loopback under hostile load
# (R26, issue 10). Two phases, one server:
#
#  1. N concurrent uploads of SIZE each (default 50 × 400 MiB): a fifth
#     accepted, two fifths with a wrong hash, two fifths from a client
#     over its quota. Reports how each was answered and the server's peak
#     RSS (VmHWM). Target: under 300 MB.
#  2. SLOW slow connections (default 1000: headers that never end, bodies
#     that never come, with and without credentials; reopened as the
#     server closes them) held open while a normal `cairn backup` of
#     BACKUP MiB and a restore run through the same server. Reports their
#     times and the server's open descriptors meanwhile.
#
#   bench/server-load.sh [-n UPLOADS] [-s SIZE] [-c SLOW] [-b BACKUP_MIB]
#
# Loopback only; everything lives in a temporary directory, removed at
# the end, with the server and the load generator. Needs go.
set -euo pipefail

n=50 size=400MiB slow=1000 backup=64
while getopts n:s:c:b: o; do
	case $o in
	n) n=$OPTARG ;;
	s) size=$OPTARG ;;
	c) slow=$OPTARG ;;
	b) backup=$OPTARG ;;
	*) echo "usage: $0 [-n uploads] [-s size] [-c slow-conns] [-b backup-MiB]" >&2; exit 2 ;;
	esac
done

. "$(dirname "$0")/lib.sh"
bench_workdir
slow_pid=
cleanup() {
	bench_stop "$slow_pid"
	bench_cleanup
}
trap cleanup EXIT

cd "$(dirname "$0")/.."
go build -o "$work/cairn" ./cmd/cairn
go build -o "$work/load" ./bench/load
export CAIRN_SERVER_DATA=$work/data XDG_CONFIG_HOME=$work/config XDG_CACHE_HOME=$work/cache HOME=$work
"$work/cairn" server init >/dev/null
add() { # name [quota]
	echo "pw-$1-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/$1.pass"
	"$work/cairn" server client add "$1" --password-file "$work/$1.pass" ${2:+--quota "$2"} >/dev/null
}
creds=
for i in 1 2 3 4 5 6 7 8; do
	add "c$i"
	creds+="${creds:+,}c$i:$(cat "$work/c$i.pass")"
done
add over 1MiB
add backup

bench_start_server --max-upload 1GiB
for c in c1 c2 c3 c4 c5 c6 c7 c8 over; do
	curl -sf -X POST "http://$c:$(cat "$work/$c.pass")@$addr/$c/bench/?create=true" >/dev/null
done
rss() { awk -v f="$1:" '$1 == f {printf "%.0f MB", $2 * 1024 / 1e6}' "/proc/$server_pid/status"; }
echo "server:       $addr, RSS $(rss VmRSS) at start"

# Phase 1.
"$work/load" uploads -addr "$addr" -clients "$creds" -over "over:$(cat "$work/over.pass")" -n "$n" -size "$size"
echo "server RSS:   peak $(rss VmHWM), now $(rss VmRSS)"

# Phase 2: a backup and restore alone, then with slow connections open.
mkdir -p "$work/src"
for i in $(seq "$backup"); do head -c 1048576 /dev/urandom >"$work/src/f$i"; done
echo backup-password >"$work/backup.pw"
export CAIRN_PASSWORD_FILE=$work/backup.pw
fp=$("$work/cairn" server fingerprint | sed -n 's/^.*\(SHA256:[^ ]*\).*$/\1/p' | head -1)
backup() { # repository; prints the backup's and the restore's seconds
	local repo="rest:http://backup:$(cat "$work/backup.pass")@$addr/backup/$1" t0 t1 t2
	"$work/cairn" -r "$repo" init --server-fingerprint "$fp" >/dev/null
	t0=$(date +%s.%N)
	"$work/cairn" -q -r "$repo" backup "$work/src"
	t1=$(date +%s.%N)
	"$work/cairn" -q -r "$repo" restore latest --target "$work/restore-$1"
	t2=$(date +%s.%N)
	diff -r "$work/src" "$work/restore-$1$work/src" >/dev/null || { echo "restore differs" >&2; exit 1; }
	awk -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN { printf "%.1f s, restore %.1f s", t1 - t0, t2 - t1 }'
}
echo "backup alone: $backup MiB in $(backup alone) (byte-identical)"
"$work/load" slow -addr "$addr" -client "c1:$(cat "$work/c1.pass")" -n "$slow" -stop "$work/stop" >"$work/slow.out" &
slow_pid=$!
for _ in $(seq 600); do
	[ "$(ls "/proc/$server_pid/fd" | wc -l)" -ge $((slow * 9 / 10)) ] && break
	sleep 0.1
done
echo "server fds:   $(ls "/proc/$server_pid/fd" | wc -l) open before the backup"
times=$(backup slow)
fds=$(ls "/proc/$server_pid/fd" | wc -l)
touch "$work/stop"
wait "$slow_pid"
slow_pid=
cat "$work/slow.out"
echo "backup slow:  $backup MiB in $times (byte-identical), $fds server fds open at its end"
echo "server RSS:   peak $(rss VmHWM) over both phases"
