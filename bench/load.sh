#!/usr/bin/env bash
# bench/load.sh: N concurrent clients uploading to one `cairn server` on
# loopback. Reports throughput (MB/s), p50/p99 request latency and the
# server's peak memory (VmHWM).
#
#   bench/load.sh [-n CLIENTS] [-u UPLOADS_PER_CLIENT] [-s SIZE_MIB]
#
# Each client is a tenant with its own password and repository; each
# upload is a content-named file POSTed the way restic and cairn store
# packs (hash checked, fsynced, renamed). Needs curl, sha256sum, go.
set -euo pipefail

clients=8 uploads=20 size=4
while getopts n:u:s: o; do
	case $o in
	n) clients=$OPTARG ;;
	u) uploads=$OPTARG ;;
	s) size=$OPTARG ;;
	*) echo "usage: $0 [-n clients] [-u uploads] [-s MiB]" >&2; exit 2 ;;
	esac
done

. "$(dirname "$0")/lib.sh"
bench_workdir

cd "$(dirname "$0")/.."
go build -o "$work/cairn" ./cmd/cairn
export CAIRN_SERVER_DATA=$work/data
"$work/cairn" server init >/dev/null
for i in $(seq "$clients"); do
	echo "pw-$i-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/c$i.pass"
	"$work/cairn" server client add "c$i" --password-file "$work/c$i.pass" >/dev/null
done

bench_start_server --max-upload $(((size + 1) << 20))

# One payload per client, made distinct per upload by a counter suffix.
for i in $(seq "$clients"); do
	head -c $((size << 20)) /dev/urandom >"$work/payload$i"
done

client() {
	local i=$1 pw url f name
	pw=$(cat "$work/c$i.pass")
	url="http://c$i:$pw@$addr/c$i/bench"
	curl -sf -X POST "$url/?create=true" >/dev/null
	for j in $(seq "$uploads"); do
		f=$work/up$i-$j
		{ cat "$work/payload$i"; echo "$j"; } >"$f"
		name=$(sha256sum "$f" | cut -d' ' -f1)
		curl -sf -o /dev/null -w '%{time_total}\n' -X POST --data-binary "@$f" \
			-H 'Content-Type: application/octet-stream' "$url/data/$name" >>"$work/lat$i"
		rm -f "$f"
	done
}

start=$(date +%s.%N)
for i in $(seq "$clients"); do client "$i" & done
wait $(jobs -p | grep -v "^$server_pid\$") 2>/dev/null || true
end=$(date +%s.%N)

cat "$work"/lat* | sort -n >"$work/lat"
n=$(wc -l <"$work/lat")
[ "$n" -eq $((clients * uploads)) ] || echo "warning: $n of $((clients * uploads)) uploads succeeded" >&2
pct() { sed -n "$(( ($1 * n + 99) / 100 ))p" "$work/lat"; }
hwm=$(awk '/VmHWM/ {print $2, $3}' "/proc/$server_pid/status")
awk -v n="$n" -v s="$size" -v t0="$start" -v t1="$end" -v c="$clients" \
	-v p50="$(pct 50)" -v p99="$(pct 99)" -v hwm="$hwm" 'BEGIN {
	mb = n * s * 1048576 / 1e6; dt = t1 - t0
	printf "clients:     %d\nuploads:     %d x %d MiB\nelapsed:     %.2f s\nthroughput:  %.1f MB/s\n", c, n, s, dt, mb / dt
	printf "latency:     p50 %.0f ms, p99 %.0f ms\nserver RSS:  peak %s\n", p50 * 1000, p99 * 1000, hwm
}'
