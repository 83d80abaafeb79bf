#!/usr/bin/env bash
# bench/restore.sh: restore of one tree from S3 (MinIO on loopback) and
# through a REST server, cairn beside restic 0.14 and restic 0.19.1, in one
# run, interleaved tool by tool, as ratios of medians (issue 17).
#
#   bench/restore.sh [--rounds N] [--src DIR] [--workdir DIR]
#                    [--restic19 PATH] [--rest-server PATH]
#
# Tools (each restores latest into an empty directory, every round):
#   cairn-s3       cairn from MinIO
#   restic14-s3    restic 0.14 from MinIO     } one restic repository
#   restic19-s3    restic 0.19.1 from MinIO   } (init by 0.14, backup by 0.19.1)
#   cairn-srv      cairn through `cairn server`
#   restic19-rest  restic 0.19.1 through rest-server
#   restic19-srv   restic 0.19.1 through `cairn server`
# restic 0.19.1 and rest-server are built from source (bench/README.md); a
# tool whose binary is missing is left out. Each repository is backed up
# once (the backup's figures are in the TSV) with its cache kept, as on the
# machine that made the backup; the restores then run ROUNDS times. Per
# restore: wall, user+sys seconds and peak RSS of the client; for S3 the GET
# requests MinIO answered, the bytes it sent and its CPU seconds (from its
# v3 API metrics and /proc); for a server its CPU seconds. The first
# round's restores are compared with the source (diff -r).
#
# Default source: data set K (bench/run prepares it in the work dir).
# Report on stdout and in bench/results/<stamp>-restore.txt.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
ROUNDS=5 SRC='' WORK=$HERE/work
RESTIC19=${RESTIC19:-/work/tools/restic-0.19.1}
REST_SERVER=${REST_SERVER:-/work/tools/rest-server-v0.14.0}
while (($#)); do
	case $1 in
	--rounds) ROUNDS=${2:?}; shift ;;
	--src) SRC=${2:?}; shift ;;
	--workdir) WORK=${2:?}; shift ;;
	--restic19) RESTIC19=${2:?}; shift ;;
	--rest-server) REST_SERVER=${2:?}; shift ;;
	*) echo "usage: bench/restore.sh [--rounds N] [--src DIR] [--workdir DIR] [--restic19 PATH] [--rest-server PATH]" >&2; exit 2 ;;
	esac
	shift
done


bench_minio
command -v restic >/dev/null || die "restic missing (apt-get install restic)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"
TOOLS=(cairn-s3 restic14-s3)
[[ -x $RESTIC19 ]] && TOOLS+=(restic19-s3) || log "no restic 0.19.1 at $RESTIC19: its columns are left out"
TOOLS+=(cairn-srv)
if [[ -x $RESTIC19 && -x $REST_SERVER ]]; then TOOLS+=(restic19-rest); else log "no rest-server at $REST_SERVER: left out"; fi
[[ -x $RESTIC19 ]] && TOOLS+=(restic19-srv)

SRC=${SRC:-$WORK/data/K/linux-source-6.1}
[[ -d $SRC ]] || die "no source tree $SRC (bench/run --prepare-only --datasets K, or --src DIR)"
SRC=$(cd "$SRC" && pwd)
bench_work_module "$WORK"

W=$WORK/restorebench
rm -rf "$W" && mkdir -p "$W"/{bin,logs,restore}
log "building cairn"
(cd "$ROOT" && go build -o "$W/bin/cairn" ./cmd/cairn) || die "cairn does not build"
CAIRN=$W/bin/cairn
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	bench_stop_minio
	rm -rf "$W/restore" "$W/trash"
}
trap cleanup EXIT

# ---------------------------------------------------------------- MinIO
bench_start_minio "$W/minio" "$W/logs/minio.log"
S3=s3:$MINIO_ENDPOINT

# ---------------------------------------------------------------- cairn server
printf 'bench-password\n' >"$W/password"
export CAIRN_PASSWORD_FILE=$W/password RESTIC_PASSWORD=bench-password
(
	export CAIRN_SERVER_DATA=$W/srvdata XDG_CONFIG_HOME=$W/srvconfig
	"$CAIRN" server init >/dev/null || exit 1
	printf 'client-password\n' >"$W/client.pass"
	"$CAIRN" server client add bench --password-file "$W/client.pass" >/dev/null || exit 1
	"$CAIRN" server fingerprint | sed -n 's/^.*\(SHA256:[^ ]*\).*$/\1/p' | head -1 >"$W/fingerprint"
) || die "cairn server init"
CAIRN_SERVER_DATA=$W/srvdata XDG_CONFIG_HOME=$W/srvconfig \
	"$CAIRN" server run --listen 127.0.0.1:0 >"$W/logs/server.out" 2>"$W/logs/server.log" &
SRV_PID=$!
PIDS+=("$SRV_PID")
SRV=$(bench_listen_addr "$W/logs/server.out") || die "cairn server did not start: $(tail -3 "$W/logs/server.log")"

# ---------------------------------------------------------------- rest-server
RS_PID=
if [[ " ${TOOLS[*]} " == *" restic19-rest "* ]]; then
	# Like cairn server: a bcrypt password (cost 10, as cairn's), checked
	# per request with a cache (rest-server caches a success too).
	bench_htpasswd bench client-password >"$W/htpasswd" || die "could not make rest-server's htpasswd (python3 crypt)"
	bench_start_rest_server "$REST_SERVER" "$W/rest-server" "$W/logs/rest-server.log" --htpasswd-file "$W/htpasswd"
fi

# ---------------------------------------------------------------- helpers
TSV=$W/results.tsv
: >"$TSV"
# minio_counters prints the GET requests MinIO answered and the bytes it
# sent, from its v3 API metrics, which count as requests end; the v2
# cluster and node metrics are refreshed only every few seconds and lagged
# a restore of 10 s (a tool's GETs showed up in the next tool's row). It
# reads until two reads 0.3 s apart agree, so a request still ending is in.
minio_counters() {
	local a b=
	for _ in $(seq 20); do
		a=$(curl -s "$MINIO_ENDPOINT/minio/metrics/v3/api/requests" |
			awk '/^minio_api_requests_total\{name="GetObject"/ {n+=$2} /^minio_api_requests_traffic_sent_bytes/ {b+=$2} END {printf "%d %.0f", n, b}')
		[[ -n $a && $a == "$b" ]] && break
		b=$a
		sleep 0.3
	done
	echo "$a"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
server_pid() { # tool
	case $1 in
	*-s3) echo "$MINIO_PID" ;;
	*-srv) echo "$SRV_PID" ;;
	*-rest) echo "$RS_PID" ;;
	esac
}
repo_of() { # tool
	case $1 in
	cairn-s3) echo "$S3/bench/cairn" ;;
	restic14-s3 | restic19-s3) echo "$S3/bench/restic" ;;
	cairn-srv) echo "rest:http://bench:client-password@$SRV/bench/cairn" ;;
	restic19-srv) echo "rest:http://bench:client-password@$SRV/bench/restic" ;;
	restic19-rest) echo "rest:http://bench:client-password@127.0.0.1:$RPORT/bench" ;;
	esac
}
cmd_of() { # tool: the client command, without the subcommand
	local repo
	repo=$(repo_of "$1")
	case $1 in
	cairn-*) echo "$CAIRN -q -r $repo" ;;
	restic14-*) echo "restic -q -r $repo --cache-dir $W/cache/restic-s3" ;;
	restic19-s3) echo "$RESTIC19 -q -r $repo --cache-dir $W/cache/restic-s3" ;;
	restic19-*) echo "$RESTIC19 -q -r $repo --cache-dir $W/cache/$1" ;;
	esac
}

# measure TOOL STEP ROUND CMD...: runs CMD under /usr/bin/time; appends tool,
# step, round, status, wall, cpu, rss KiB, GETs, MiB sent, server cpu.
measure() {
	local tool=$1 step=$2 round=$3 status=ok spid g0 b0 g1 b1 c0 c1 wall user sys rss
	shift 3
	local base=$W/logs/r$round-$tool-$step
	spid=$(server_pid "$tool")
	# What the tool before wrote and has not flushed (restic does not) is
	# written out first: otherwise the next tool's run pays for it in disk
	# time, and a tool that flushes what it restored (cairn's syncfs) pays
	# for all of it.
	sync
	read -r g0 b0 <<<"$(minio_counters)"
	c0=$(cpu_ticks "$spid")
	/usr/bin/time -f '%e %U %S %M' -o "$base.time" "$@" >"$base.out" 2>"$base.err" || status=FAIL
	c1=$(cpu_ticks "$spid")
	read -r g1 b1 <<<"$(minio_counters)"
	read -r wall user sys rss <"$base.time" 2>/dev/null || { wall=0 user=0 sys=0 rss=0; }
	[[ $status == FAIL ]] && log "$tool $step failed: $(tail -3 "$base.err")"
	local gets=- mib=-
	if [[ $tool == *-s3 ]]; then
		gets=$((g1 - g0))
		mib=$(awk -v a="$b0" -v b="$b1" 'BEGIN {printf "%.1f", (b - a) / 1048576}')
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$step" "$round" "$status" "$wall" \
		"$(echo "$user + $sys" | bc)" "$rss" "$gets" "$mib" "$(echo "($c1 - $c0) / 100" | bc -l | xargs printf '%.2f')" >>"$TSV"
}

# ---------------------------------------------------------------- backups
find "$SRC" -type f -exec cat {} + >/dev/null # warm the page cache
fp=$(cat "$W/fingerprint")
for tool in "${TOOLS[@]}"; do
	# shellcheck disable=SC2046 # cmd_of is words
	case $tool in
	cairn-s3 | cairn-srv)
		export XDG_CACHE_HOME=$W/cache/$tool
		if [[ $tool == cairn-srv ]]; then set -- --server-fingerprint "$fp"; else set --; fi
		$(cmd_of "$tool") init "$@" >"$W/logs/init-$tool" 2>&1 || die "$tool init: $(tail -3 "$W/logs/init-$tool")"
		measure "$tool" backup 0 $(cmd_of "$tool") backup "$SRC"
		;;
	restic14-s3)
		restic -q -r "$(repo_of "$tool")" init --repository-version 2 >"$W/logs/init-$tool" 2>&1 || die "restic init: $(tail -3 "$W/logs/init-$tool")"
		# restic 0.19.1 backs up when it is here (both versions restore it)
		if [[ -x $RESTIC19 ]]; then
			measure restic19-s3 backup 0 $(cmd_of restic19-s3) backup --compression auto "$SRC"
		else
			measure "$tool" backup 0 $(cmd_of "$tool") backup --compression auto "$SRC"
		fi
		;;
	restic19-s3) ;;
	restic19-*)
		$(cmd_of "$tool") init >"$W/logs/init-$tool" 2>&1 || die "$tool init: $(tail -3 "$W/logs/init-$tool")"
		measure "$tool" backup 0 $(cmd_of "$tool") backup --compression auto "$SRC"
		;;
	esac
done
log "backups done; restoring"

# ---------------------------------------------------------------- restores
verify() { # tool round target
	local root=$3$SRC
	[[ -d $root ]] || root=$3/$(basename "$SRC")
	if ! diff -rq "$SRC" "$root" >"$W/logs/r$2-$1-diff" 2>&1; then
		log "$1 round $2: restore MISMATCH (see logs/r$2-$1-diff)"
		printf '%s\trestore-verify\t%s\tMISMATCH\t0\t0\t0\t-\t-\t0\n' "$1" "$2" >>"$TSV"
	fi
}
# evict DIR drops the page cache pages of the files below DIR (their
# data stays on disk): kept trees would otherwise fill memory, and every
# later restore would also pay for reclaiming it.
evict() {
	python3 - "$1" <<'PY'
import os, sys
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        try:
            fd = os.open(os.path.join(d, f), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}
for round in $(seq 1 "$ROUNDS"); do
	# Each round starts with the next tool, so no tool always runs first
	# or last.
	n=${#TOOLS[@]}
	for ((k = 0; k < n; k++)); do
		tool=${TOOLS[$(((round - 1 + k) % n))]}
		export XDG_CACHE_HOME=$W/cache/$tool
		target=$W/restore/$tool-$round
		# shellcheck disable=SC2046
		measure "$tool" restore "$round" $(cmd_of "$tool") restore latest --target "$target"
		((round == 1)) && verify "$tool" "$round" "$target"
		# Kept until the end: creating files within minutes of deleting
		# many is slow on ext4 (freed inodes are scanned; with online
		# discard, the freed blocks are trimmed). Their pages are dropped.
		sync
		evict "$target"
		mkdir -p "$W/trash" && mv "$target" "$W/trash/"
	done
	log "round $round done"
done

# ---------------------------------------------------------------- report
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
med() { awk -F'\t' -v t="$1" -v s="$2" -v c="$3" '$1==t && $2==s && $4=="ok" && $c != "-" {print $c}' "$TSV" | median; }
range() { awk -F'\t' -v t="$1" -v s="$2" '$1==t && $2==s && $4=="ok" {print $5}' "$TSV" | sort -n | awk 'NR==1 {a=$1} {b=$1} END {if (NR) printf "%s-%s", a, b; else print "n/a"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b+0 > 0 && a != "n/a") printf "%.2f", a/b; else print "n/a" }'; }

STAMP=$(date -u +%Y-%m-%dT%H%M%S)
REPORT=$ROOT/bench/results/$STAMP-restore.txt
mkdir -p "$ROOT/bench/results"
{
	echo "bench/restore.sh  $(date -u +%FT%TZ)  host $(hostname)  $(nproc) cores  load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "source $SRC: $(find "$SRC" -type f | wc -l) files, $(du -sb "$SRC" | cut -f1) bytes; $ROUNDS rounds, medians"
	echo "cairn $(cd "$ROOT" && git rev-parse --short HEAD); $(restic version | cut -d' ' -f1-2); $([[ -x $RESTIC19 ]] && "$RESTIC19" version | cut -d' ' -f1-2); $([[ -x $REST_SERVER ]] && "$REST_SERVER" --version 2>&1 | head -1); minio $(go version -m "$MINIO" 2>/dev/null | awk '$1=="mod" {print $3}')"
	grep -q MISMATCH "$TSV" && echo "RESTORE MISMATCH: see $W/logs"
	echo
	printf '%-14s %8s %13s %7s %7s %7s %8s %9s\n' restore wall min-max cpu RSS_MiB GETs MiB_sent srv_cpu
	for tool in "${TOOLS[@]}"; do
		rss=$(med "$tool" restore 7)
		[[ $rss == n/a ]] || rss=$(printf '%.0f' "$(echo "$rss / 1024" | bc -l)")
		printf '%-14s %8s %13s %7s %7s %7s %8s %9s\n' "$tool" "$(med "$tool" restore 5)" "$(range "$tool" restore)" \
			"$(med "$tool" restore 6)" "$rss" "$(med "$tool" restore 8)" "$(med "$tool" restore 9)" "$(med "$tool" restore 10)"
	done
	echo
	printf '%-30s %6s %6s %9s\n' "ratio of medians" wall cpu "srv_cpu"
	for pair in cairn-s3:restic14-s3 cairn-s3:restic19-s3 cairn-srv:restic19-rest restic19-srv:restic19-rest; do
		a=${pair%%:*} b=${pair##*:}
		[[ " ${TOOLS[*]} " == *" $a "* && " ${TOOLS[*]} " == *" $b "* ]] || continue
		printf '%-30s %6s %6s %9s\n' "$a / $b" "$(ratio "$(med "$a" restore 5)" "$(med "$b" restore 5)")" \
			"$(ratio "$(med "$a" restore 6)" "$(med "$b" restore 6)")" "$(ratio "$(med "$a" restore 10)" "$(med "$b" restore 10)")"
	done
	echo
	echo "restic's and cairn's caches are kept from the backup. Raw: $TSV"
} | tee "$REPORT"
