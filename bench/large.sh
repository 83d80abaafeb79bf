#!/usr/bin/env bash
# bench/large.sh: a large repository (issue 17). For each size N (blobs),
# generates one snapshot of N files of one tiny unique blob each through a
# real `cairn server` (bench/largerepo gen), then measures with
# /usr/bin/time (wall, user+sys, peak RSS) and, for the server, its CPU
# ticks and peak RSS (VmHWM, reset before each step through clear_refs):
#
#   index       largerepo index: heap LoadIndex keeps, bytes per blob
#   check       cairn check on the repository's directory (owner key file)
#   check-data  cairn check --read-data (the smallest size only)
#   backup-new  backup of a small directory S (1,000 files of 1 KiB) through
#               the server, just restarted: the server loads the big index
#               and validates the commit; the client loads the index too
#   backup-chg  backup of S with 10 files changed: commit validation with
#               the server's index loaded
#   backup-nochg  backup of S unchanged: the no-change backup (index load,
#               lookups, commit), the generated files themselves not being
#               on disk
#   prune       cairn prune through the server (an owner request: the
#               server prunes with its own key), the server just restarted
#
#   bench/large.sh [--sizes 1000000,3000000,10000000] [--workdir DIR] [--keep]
#                  [--prune-only] [--profile]
#
# --prune-only runs the generate, index and prune steps only (no check or
# backups: the prune sees the one generated snapshot). --profile
# writes a CPU profile of the prune's server (CAIRN_CPUPROFILE, from its
# start to its stop) to <workdir>/large-<stamp>/logs/<N>-prune.pprof.
#
# Table on stdout and in bench/results/<stamp>-large.txt, raw rows in
# <stamp>-large.tsv. Disk: about 330 bytes per blob (3.3 GB at 10 M).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SIZES=1000000,3000000,10000000 WORK=$HERE/work KEEP=0 PRUNE_ONLY=0 PROFILE=0
while (($#)); do
	case $1 in
	--sizes) SIZES=${2:?}; shift ;;
	--workdir) WORK=${2:?}; shift ;;
	--keep) KEEP=1 ;;
	--prune-only) PRUNE_ONLY=1 ;;
	--profile) PROFILE=1 ;;
	*) echo "usage: bench/large.sh [--sizes N,N,...] [--workdir DIR] [--keep] [--prune-only] [--profile]" >&2; exit 2 ;;
	esac
	shift
done

. "$HERE/lib.sh"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"

bench_work_module "$WORK"
STAMP=$(date -u +%Y%m%d-%H%M%S)
W=$WORK/large-$STAMP
mkdir -p "$W/bin" "$W/logs" "$ROOT/bench/results"
log "building cairn and largerepo"
(cd "$ROOT" && go build -o "$W/bin/cairn" ./cmd/cairn && go build -o "$W/bin/largerepo" ./bench/largerepo) || die "build failed"
CAIRN=$W/bin/cairn LARGEREPO=$W/bin/largerepo

printf 'bench-password\n' >"$W/password"
printf 'client-password\n' >"$W/client.pass"
export CAIRN_PASSWORD_FILE=$W/password CAIRN_SERVER_DATA=$W/srv XDG_CONFIG_HOME=$W/config XDG_CACHE_HOME=$W/cache
"$CAIRN" server init >/dev/null || die "cairn server init"
"$CAIRN" server client add bench --password-file "$W/client.pass" >/dev/null || die "client add"
FP=$("$CAIRN" server fingerprint | sed -n 's/^.*\(SHA256:[^ ]*\).*$/\1/p' | head -1)

SRV_PID='' SRV=''
# start_server [PROFILE]: with PROFILE, the server writes a CPU profile
# there when it stops.
start_server() {
	: >"$W/logs/server.out"
	CAIRN_CPUPROFILE=${1:-} "$CAIRN" server run --listen 127.0.0.1:0 >"$W/logs/server.out" 2>>"$W/logs/server.log" &
	SRV_PID=$!
	SRV=''
	for _ in $(seq 200); do
		SRV=$(sed -n 's|^cairn server listening on http://||p' "$W/logs/server.out")
		[[ -n $SRV ]] && return
		sleep 0.1
	done
	die "cairn server did not start: $(tail -3 "$W/logs/server.log")"
}
stop_server() {
	[[ -n $SRV_PID ]] || return
	kill "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=''
}
trap stop_server EXIT
srv_ticks() { awk '{print $14 + $15}' "/proc/$SRV_PID/stat"; }
srv_hwm() { awk '/^VmHWM/ {print $2}' "/proc/$SRV_PID/status"; }   # KiB
srv_reset_hwm() { echo 5 >"/proc/$SRV_PID/clear_refs" 2>/dev/null; }
TCK=$(getconf CLK_TCK)

TSV=$ROOT/bench/results/$STAMP-large.tsv
printf 'blobs\tstep\tstatus\twall_s\tcpu_s\trss_kib\tsrv_cpu_s\tsrv_rss_kib\tnote\n' >"$TSV"
# measure BLOBS STEP CMD...: runs CMD under /usr/bin/time; with a server
# running, also its CPU and peak RSS over the step.
measure() {
	local n=$1 step=$2 t0='' h='' sc=- sr=- status=ok note=''
	shift 2
	if [[ -n $SRV_PID ]]; then srv_reset_hwm; t0=$(srv_ticks); fi
	/usr/bin/time -f '%e %U %S %M' -o "$W/time.out" "$@" >"$W/logs/$n-$step.out" 2>"$W/logs/$n-$step.err" || status=FAIL
	if [[ -n $SRV_PID ]]; then
		sc=$(awk -v a="$t0" -v b="$(srv_ticks)" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) / t}')
		sr=$(srv_hwm)
	fi
	read -r wall u s rss < <(tail -1 "$W/time.out")
	[[ $step == index ]] && note=$(sed -n 's/^index: //p' "$W/logs/$n-$step.out")
	[[ $status == FAIL ]] && note="$*: $(tail -2 "$W/logs/$n-$step.err" | tr '\n' ' ')"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$step" "$status" "$wall" \
		"$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u + s}')" "$rss" "$sc" "$sr" "$note" >>"$TSV"
	log "$n $step: $status ${wall}s wall, rss ${rss} KiB, server cpu ${sc}s rss ${sr} KiB $note"
}

# S: the small directory backed up against the big repository.
S=$W/small
mkdir -p "$S"
for i in $(seq -w 1 1000); do head -c 1024 /dev/urandom >"$S/f$i"; done

IFS=, read -ra NS <<<"$SIZES"
SMALLEST=$(printf '%s\n' "${NS[@]}" | sort -n | head -1)
for n in "${NS[@]}"; do
	name=large$n
	start_server
	R=rest:http://bench:client-password@$SRV/bench/$name
	L=$W/srv/repos/bench/$name
	KEY=$W/owner-$n.key
	"$CAIRN" -r "$R" init --server-fingerprint "$FP" --owner-key-file "$KEY" >"$W/logs/$n-init.out" 2>&1 || die "init $n"
	log "generating $n blobs"
	measure "$n" generate "$LARGEREPO" gen -r "$R" -n "$n" --key-file "$KEY"
	stop_server
	log "$n: repository $(du -sb "$L" | cut -f1) bytes"
	C=$W/cache-client-$n
	measure "$n" index "$LARGEREPO" index -r "$L" --key-file "$KEY"
	if ((!PRUNE_ONLY)); then
		measure "$n" check "$CAIRN" -r "$L" --key-file "$KEY" --cache-dir "$W/cache-check-$n" check
		[[ $n == "$SMALLEST" ]] && measure "$n" check-data "$CAIRN" -r "$L" --key-file "$KEY" --cache-dir "$W/cache-check-$n" check --read-data

		start_server
		R=rest:http://bench:client-password@$SRV/bench/$name
		measure "$n" backup-new "$CAIRN" -r "$R" --key-file "$KEY" --cache-dir "$C" backup "$S"
		for i in $(seq -w 1 100 1000); do head -c 1024 /dev/urandom >"$S/f$i"; done
		measure "$n" backup-chg "$CAIRN" -r "$R" --key-file "$KEY" --cache-dir "$C" backup "$S"
		measure "$n" backup-nochg "$CAIRN" -r "$R" --key-file "$KEY" --cache-dir "$C" backup "$S"
		stop_server
	fi

	PROF=''
	((PROFILE)) && PROF=$W/logs/$n-prune.pprof
	start_server "$PROF"
	R=rest:http://bench:client-password@$SRV/bench/$name
	measure "$n" prune "$CAIRN" -r "$R" --key-file "$KEY" --cache-dir "$C" prune
	stop_server
	[[ -n $PROF ]] && log "$n prune: server CPU profile in $PROF (go tool pprof -top $CAIRN $PROF)"
	((KEEP)) || rm -rf "$L" "$W/cache-check-$n" "$C"
done

OUT=$ROOT/bench/results/$STAMP-large.txt
{
	printf 'bench/large.sh %s, cairn %s, %s, load %s\n\n' "$STAMP" "$(cd "$ROOT" && git rev-parse --short HEAD)" "$(nproc) cores" "$(cut -d' ' -f1-3 /proc/loadavg)"
	column -t -s $'\t' "$TSV"
	# Growth from the smallest to the largest size, per step.
	awk -F'\t' 'NR > 1 && $3 == "ok" {
		k = $2; if (!(k in lo) || $1 < lon[k]) {lon[k] = $1; lo[k] = $0}
		if (!(k in hi) || $1 > hin[k]) {hin[k] = $1; hi[k] = $0}
	}
	END {
		print ""
		print "growth smallest -> largest (blobs ratio, then wall, cpu, rss, server cpu, server rss ratios)"
		for (k in lo) {
			split(lo[k], a, "\t"); split(hi[k], b, "\t")
			if (a[1] == b[1]) continue
			printf "%-13s x%-5.1f wall %5.2f  cpu %5.2f  rss %5.2f  srv-cpu %s  srv-rss %s\n", k, b[1] / a[1],
				(a[4] > 0 ? b[4] / a[4] : 0), (a[5] > 0 ? b[5] / a[5] : 0), (a[6] > 0 ? b[6] / a[6] : 0),
				(a[7] + 0 > 0 ? sprintf("%5.2f", b[7] / a[7]) : "-"), (a[8] + 0 > 0 ? sprintf("%5.2f", b[8] / a[8]) : "-")
		}
	}' "$TSV"
} | tee "$OUT"
