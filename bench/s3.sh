#!/usr/bin/env bash
# bench/s3.sh: backup and restore of one tree by cairn to a local directory,
# cairn to MinIO on loopback and restic 0.14 to the same MinIO, as ratios.
# Each round uses fresh repositories and caches; figures are medians.
#
#   bench/s3.sh [--rounds N] [--src DIR] [--workdir DIR]
#
# Default source: drivers/net of data set K (bench/run prepares K), else a
# generated 200 MB tree. MinIO: $MINIO_BIN, minio on PATH or ~/go/bin/minio
# (.ci/run installs it). Report on stdout and in bench/results/<stamp>-s3.txt.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=3 SRC='' WORK=$HERE/work
while (($#)); do
	case $1 in
	--rounds) ROUNDS=${2:?}; shift ;;
	--src) SRC=${2:?}; shift ;;
	--workdir) WORK=${2:?}; shift ;;
	*) echo "usage: bench/s3.sh [--rounds N] [--src DIR] [--workdir DIR]" >&2; exit 2 ;;
	esac
	shift
done

. "$HERE/lib.sh"

bench_minio
command -v restic >/dev/null || die "restic missing (apt-get install restic)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"

bench_work_module "$WORK"
S3W=$WORK/s3bench
rm -rf "$S3W" && mkdir -p "$S3W"/{bin,logs}
log "building cairn"
(cd "$ROOT" && go build -o "$S3W/bin/cairn" ./cmd/cairn) || die "cairn does not build"

if [[ -z $SRC ]]; then
	SRC=$WORK/data/K/linux-source-6.1/drivers/net
	if [[ ! -d $SRC ]]; then
		SRC=$WORK/data/s3gen
		if [[ ! -d $SRC ]]; then
			log "generating a 200 MB tree in $SRC"
			mkdir -p "$SRC"
			for d in $(seq 1 20); do
				mkdir -p "$SRC/d$d"
				for f in $(seq 1 50); do head -c $((200 * 1024)) /dev/urandom >"$SRC/d$d/f$f"; done
			done
		fi
	fi
fi
SRC=$(cd "$SRC" && pwd)

# ---------------------------------------------------------------- MinIO
trap 'bench_stop_minio; rm -rf "$S3W/trash"' EXIT
bench_start_minio "$S3W/minio" "$S3W/logs/minio.log"
ENDPOINT=$MINIO_ENDPOINT

# ---------------------------------------------------------------- steps
printf 'bench-password\n' >"$S3W/password"
export CAIRN_PASSWORD_FILE=$S3W/password RESTIC_PASSWORD=bench-password
TSV=$S3W/results.tsv
: >"$TSV"

# measure TOOL STEP ROUND CMD...: runs CMD under /usr/bin/time, appends
# tool, step, round, status, wall, cpu, rss KiB to the TSV.
measure() {
	local tool=$1 step=$2 round=$3 status=ok
	shift 3
	local base=$S3W/logs/r$round-$tool-$step
	/usr/bin/time -f '%e %U %S %M' -o "$base.time" "$@" >"$base.out" 2>"$base.err" || status=FAIL
	read -r wall user sys rss <"$base.time" 2>/dev/null || { wall=0 user=0 sys=0 rss=0; }
	[[ $status == FAIL ]] && log "$tool $step failed: $(tail -3 "$base.err")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$step" "$round" "$status" "$wall" \
		"$(echo "$user + $sys" | bc)" "$rss" >>"$TSV"
}

verify() { # tool round target
	local root=$3$SRC
	[[ -d $root ]] || root=$3/$(basename "$SRC")
	[[ -d $root ]] || root=$3
	if ! diff -rq "$SRC" "$root" >"$S3W/logs/r$2-$1-diff" 2>&1; then
		log "$1 round $2: restore MISMATCH (see logs/r$2-$1-diff)"
		printf '%s\trestore-verify\t%s\tMISMATCH\t0\t0\t0\n' "$1" "$2" >>"$TSV"
	fi
}

for round in $(seq 1 "$ROUNDS"); do
	find "$SRC" -type f -exec cat {} + >/dev/null # warm the page cache
	for tool in cairn-local cairn-s3 restic-s3; do
		export XDG_CACHE_HOME=$S3W/cache/$tool-$round
		target=$S3W/restore/$tool-$round
		case $tool in
		cairn-local)
			export CAIRN_REPOSITORY=$S3W/repo/local-$round
			"$S3W/bin/cairn" init >/dev/null || die "cairn init (local)"
			measure "$tool" backup "$round" "$S3W/bin/cairn" backup "$SRC"
			measure "$tool" restore "$round" "$S3W/bin/cairn" restore latest --target "$target"
			;;
		cairn-s3)
			export CAIRN_REPOSITORY=s3:$ENDPOINT/cairn-bench/r$round
			"$S3W/bin/cairn" init >/dev/null || die "cairn init (s3)"
			measure "$tool" backup "$round" "$S3W/bin/cairn" backup "$SRC"
			measure "$tool" restore "$round" "$S3W/bin/cairn" restore latest --target "$target"
			;;
		restic-s3)
			repo=s3:$ENDPOINT/restic-bench/r$round
			restic -q -r "$repo" init --repository-version 2 >/dev/null || die "restic init"
			measure "$tool" backup "$round" restic -r "$repo" --cache-dir "$XDG_CACHE_HOME" backup --compression auto "$SRC"
			measure "$tool" restore "$round" restic -r "$repo" --cache-dir "$XDG_CACHE_HOME" restore latest --target "$target"
			;;
		esac
		verify "$tool" "$round" "$target"
		# Kept until the end: on ext4 without a journal, creating files
		# within 60 s of deleting many costs the next restore a scan of
		# the freed inodes (see bench/run).
		mkdir -p "$S3W/trash" && mv "$target" "$S3W/trash/"
	done
	log "round $round done"
done

# ---------------------------------------------------------------- report
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
med() { awk -F'\t' -v t="$1" -v s="$2" -v c="$3" '$1==t && $2==s && $4=="ok" {print $c}' "$TSV" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b+0 > 0 && a != "n/a") printf "%.2f", a/b; else print "n/a" }'; }

STAMP=$(date -u +%Y-%m-%dT%H%M%S)
REPORT=$ROOT/bench/results/$STAMP-s3.txt
mkdir -p "$ROOT/bench/results"
{
	echo "bench/s3.sh  $(date -u +%FT%TZ)  host $(hostname)  $(nproc) cores  load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "source $SRC: $(find "$SRC" -type f | wc -l) files, $(du -sb "$SRC" | cut -f1) bytes; $ROUNDS rounds, medians"
	echo "cairn $(cd "$ROOT" && git rev-parse --short HEAD); $(restic version | cut -d' ' -f1-2); minio $(go version -m "$MINIO" 2>/dev/null | awk '$1=="mod" {print $3}')"
	grep -q MISMATCH "$TSV" && echo "RESTORE MISMATCH: see $S3W/logs"
	echo
	printf '%-8s %-10s %12s %10s %10s %14s %16s\n' step measure cairn-local cairn-s3 restic-s3 "s3/local" "cairn/restic(s3)"
	for step in backup restore; do
		for m in wall:5 cpu:6 rss_MiB:7; do
			name=${m%%:*} col=${m##*:}
			l=$(med cairn-local $step "$col") s=$(med cairn-s3 $step "$col") r=$(med restic-s3 $step "$col")
			if [[ $name == rss_MiB ]]; then
				for v in l s r; do [[ ${!v} == n/a ]] || printf -v "$v" '%.0f' "$(echo "${!v} / 1024" | bc -l)"; done
			fi
			printf '%-8s %-10s %12s %10s %10s %14s %16s\n' "$step" "$name" "$l" "$s" "$r" "$(ratio "$s" "$l")" "$(ratio "$s" "$r")"
		done
	done
	echo
	echo "ratios below 1.00: the first is faster/smaller. Raw: $TSV"
} | tee "$REPORT"
