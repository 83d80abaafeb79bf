#!/usr/bin/env bash
# bench/reqlat.sh: per-request latency of restic's REST protocol through
# `cairn server` and through rest-server (issue 17), side by side. Both
# servers run on loopback with a bcrypt password (cost 10) and serve one
# restic repository: restic 0.19.1 backs SRC up through `cairn server`,
# and the repository's directory is copied for rest-server. Then
# bench/reqlat sends the same requests to each (whole GETs, HEADs and
# ranged GETs of the same data files, from 1 and from 4 connections),
# each server's CPU seconds over the run read from /proc; and restic
# 0.19.1 restores the snapshot from each.
#
#   bench/reqlat.sh [--src DIR] [--n REQUESTS] [--rounds R] [--workdir DIR]
#                   [--restic19 PATH] [--rest-server PATH] [--pprof]
#
# --pprof starts `cairn server` with --pprof-listen and saves a CPU
# profile of the cairn GET run from 4 connections in the work directory.
# Rows on stdout: server, mode, conns, requests, latency percentiles (µs),
# server CPU seconds.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SRC=/work/bench-data/K/linux-source-6.1/fs N=4000 ROUNDS=1 WORK=$HERE/work PPROF=0
RESTIC19=${RESTIC19:-/work/tools/restic-0.19.1}
REST_SERVER=${REST_SERVER:-/work/tools/rest-server-v0.14.0}
while (($#)); do
	case $1 in
	--src) SRC=${2:?}; shift ;;
	--n) N=${2:?}; shift ;;
	--rounds) ROUNDS=${2:?}; shift ;;
	--workdir) WORK=${2:?}; shift ;;
	--restic19) RESTIC19=${2:?}; shift ;;
	--rest-server) REST_SERVER=${2:?}; shift ;;
	--pprof) PPROF=1 ;;
	*) echo "usage: bench/reqlat.sh [--src DIR] [--n REQUESTS] [--rounds R] [--workdir DIR] [--restic19 PATH] [--rest-server PATH] [--pprof]" >&2; exit 2 ;;
	esac
	shift
done

. "$HERE/lib.sh"
[[ -x $RESTIC19 ]] || die "no restic 0.19.1 at $RESTIC19"
[[ -x $REST_SERVER ]] || die "no rest-server at $REST_SERVER"
[[ -d $SRC ]] || die "no source tree $SRC"
bench_work_module "$WORK"
W=$WORK/reqlat
rm -rf "$W" && mkdir -p "$W"/{bin,logs}
log "building cairn and reqlat"
(cd "$ROOT" && go build -o "$W/bin/cairn" ./cmd/cairn && go build -o "$W/bin/reqlat" ./bench/reqlat) || die "build failed"
CAIRN=$W/bin/cairn REQLAT=$W/bin/reqlat
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$W/restore"
}
trap cleanup EXIT

export CAIRN_SERVER_DATA=$W/srvdata XDG_CONFIG_HOME=$W/srvconfig RESTIC_PASSWORD=bench-password
"$CAIRN" server init >/dev/null || die "cairn server init"
printf 'client-password\n' >"$W/client.pass"
"$CAIRN" server client add bench --password-file "$W/client.pass" >/dev/null || die "client add"
PPROF_ARGS=()
((PPROF)) && PPROF_ARGS=(--pprof-listen 127.0.0.1:0)
"$CAIRN" server run --listen 127.0.0.1:0 "${PPROF_ARGS[@]}" >"$W/logs/server.out" 2>"$W/logs/server.log" &
SRV_PID=$!
PIDS+=("$SRV_PID")
SRV=$(bench_listen_addr "$W/logs/server.out") || die "cairn server did not start: $(tail -3 "$W/logs/server.log")"
PPROF_ADDR=$(sed -n 's|^profiles on http://\(.*\)/debug/pprof/$|\1|p' "$W/logs/server.out")

log "restic 0.19.1 backs up $SRC through cairn server"
CREPO=rest:http://bench:client-password@$SRV/bench/restic
"$RESTIC19" -q -r "$CREPO" --cache-dir "$W/cache" init >"$W/logs/init" 2>&1 || die "restic init: $(tail -3 "$W/logs/init")"
"$RESTIC19" -q -r "$CREPO" --cache-dir "$W/cache" backup --compression auto "$SRC" >"$W/logs/backup" 2>&1 || die "restic backup: $(tail -3 "$W/logs/backup")"
mkdir -p "$W/rest-server"
cp -a "$W/srvdata/repos/bench/restic" "$W/rest-server/bench" || die "copy the repository"

bench_htpasswd bench client-password >"$W/htpasswd" || die "could not make rest-server's htpasswd (python3 crypt)"
bench_start_rest_server "$REST_SERVER" "$W/rest-server" "$W/logs/rest-server.log" --htpasswd-file "$W/htpasswd"
RREPO=rest:http://bench:client-password@127.0.0.1:$RPORT/bench

TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
url_of() { [[ $1 == cairn ]] && echo "http://bench:client-password@$SRV/bench/restic" || echo "http://bench:client-password@127.0.0.1:$RPORT/bench"; }
pid_of() { [[ $1 == cairn ]] && echo "$SRV_PID" || echo "$RS_PID"; }

printf 'round\tserver\tmode\tconns\trequests\treq_per_s\tmean_us\tp50_us\tp90_us\tp99_us\tsrv_cpu_s\n'
for round in $(seq "$ROUNDS"); do
	for mode in head get range; do
		for c in 1 4; do
			for srv in cairn rest-server; do
				prof=''
				if ((PPROF)) && [[ $srv == cairn && $mode == get && $c == 4 && -n $PPROF_ADDR ]]; then
					curl -s -o "$W/cpu-get-c4-r$round.prof" "http://$PPROF_ADDR/debug/pprof/profile?seconds=5" &
					prof=$!
				fi
				t0=$(ticks "$(pid_of "$srv")")
				out=$("$REQLAT" -url "$(url_of "$srv")" -mode "$mode" -c "$c" -n "$N") || die "reqlat $srv $mode: $out"
				t1=$(ticks "$(pid_of "$srv")")
				[[ -n $prof ]] && wait "$prof"
				# shellcheck disable=SC2001 # one sed per field is clearer
				field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$srv" "$mode" "$c" "$(field requests)" "$(field req_per_s)" \
					"$(field mean_us)" "$(field p50_us)" "$(field p90_us)" "$(field p99_us)" \
					"$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) / t}')"
			done
		done
	done
	for srv in cairn rest-server; do
		rm -rf "$W/restore"
		repo=$CREPO
		[[ $srv == rest-server ]] && repo=$RREPO
		t0=$(ticks "$(pid_of "$srv")")
		/usr/bin/time -f '%e %U %S' -o "$W/time.out" "$RESTIC19" -q -r "$repo" --cache-dir "$W/cache-restore-$srv" restore latest --target "$W/restore" \
			>"$W/logs/restore-$srv" 2>&1 || die "restore from $srv: $(tail -3 "$W/logs/restore-$srv")"
		t1=$(ticks "$(pid_of "$srv")")
		read -r wall u s <"$W/time.out"
		printf '%s\t%s\trestore\t-\t-\twall_s=%s\tclient_cpu_s=%s\t-\t-\t-\t%s\n' "$round" "$srv" "$wall" \
			"$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u + s}')" "$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) / t}')"
	done
done
