#!/usr/bin/env bash
# bench/compression.sh: `cairn backup --compression LEVEL` of one tree at
# every level, a fresh local repository per level and round, levels
# interleaved; prints median wall and CPU seconds, peak RSS and the size of
# the repository's packs per level, and restic 0.19.1 at auto and max
# beside them when it is there.
#
#   bench/compression.sh [--rounds N] [--src DIR] [--workdir DIR]
#
# Default source: drivers/net of data set K (bench/run prepares K).
# Report on stdout and in bench/results/<stamp>-compression.txt.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=3 SRC='' WORK=$HERE/work
RESTIC19=${RESTIC19:-/work/tools/restic-0.19.1}
while (($#)); do
	case $1 in
	--rounds) ROUNDS=${2:?}; shift ;;
	--src) SRC=${2:?}; shift ;;
	--workdir) WORK=${2:?}; shift ;;
	*) echo "usage: bench/compression.sh [--rounds N] [--src DIR] [--workdir DIR]" >&2; exit 2 ;;
	esac
	shift
done
. "$HERE/lib.sh"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"
SRC=${SRC:-$WORK/data/K/linux-source-6.1/drivers/net}
[[ -d $SRC ]] || die "no source tree $SRC (bench/run --prepare-only --datasets K, or --src DIR)"
SRC=$(cd "$SRC" && pwd)
bench_work_module "$WORK"

W=$WORK/compressionbench
rm -rf "$W" && mkdir -p "$W"/{bin,logs}
trap 'rm -rf "$W/repo"' EXIT
(cd "$ROOT" && go build -o "$W/bin/cairn" ./cmd/cairn) || die "cairn does not build"
printf 'bench-password\n' >"$W/password"
export CAIRN_PASSWORD_FILE=$W/password RESTIC_PASSWORD=bench-password

RUNS=(cairn:off cairn:fastest cairn:auto cairn:max)
[[ -x $RESTIC19 ]] && RUNS+=(restic19:auto restic19:max)
TSV=$W/results.tsv
: >"$TSV"
find "$SRC" -type f -exec cat {} + >/dev/null # warm the page cache
for round in $(seq 1 "$ROUNDS"); do
	for run in "${RUNS[@]}"; do
		tool=${run%%:*} level=${run##*:}
		repo=$W/repo/$tool-$level-$round base=$W/logs/r$round-$tool-$level
		export XDG_CACHE_HOME=$W/cache/$tool-$level-$round
		if [[ $tool == cairn ]]; then
			"$W/bin/cairn" -r "$repo" init >/dev/null || die "cairn init"
			/usr/bin/time -f '%e %U %S %M' -o "$base.time" "$W/bin/cairn" -q -r "$repo" backup --compression "$level" "$SRC" 2>"$base.err" || die "cairn backup --compression $level: $(tail -3 "$base.err")"
		else
			"$RESTIC19" -q -r "$repo" init --repository-version 2 >/dev/null || die "restic init"
			/usr/bin/time -f '%e %U %S %M' -o "$base.time" "$RESTIC19" -q -r "$repo" --cache-dir "$XDG_CACHE_HOME" backup --compression "$level" "$SRC" >/dev/null 2>"$base.err" || die "restic backup: $(tail -3 "$base.err")"
		fi
		read -r wall user sys rss <"$base.time"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$level" "$round" "$wall" "$(echo "$user + $sys" | bc)" "$rss" "$(du -sb "$repo/data" | cut -f1)" >>"$TSV"
		rm -rf "$repo"
	done
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
med() { awk -F'\t' -v t="$1" -v l="$2" -v c="$3" '$1==t && $2==l {print $c}' "$TSV" | median; }
STAMP=$(date -u +%Y-%m-%dT%H%M%S)
mkdir -p "$ROOT/bench/results"
{
	echo "bench/compression.sh  $(date -u +%FT%TZ)  $(nproc) cores  load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "source $SRC: $(find "$SRC" -type f | wc -l) files, $(du -sb "$SRC" | cut -f1) bytes; $ROUNDS rounds, medians; cairn $(cd "$ROOT" && git rev-parse --short HEAD)"
	printf '%-18s %8s %8s %8s %10s\n' "tool --compression" wall cpu RSS_MiB packs_MiB
	for run in "${RUNS[@]}"; do
		tool=${run%%:*} level=${run##*:}
		printf '%-18s %8s %8s %8.0f %10.1f\n' "$tool $level" "$(med "$tool" "$level" 4)" "$(med "$tool" "$level" 5)" \
			"$(echo "$(med "$tool" "$level" 6) / 1024" | bc -l)" "$(echo "$(med "$tool" "$level" 7) / 1048576" | bc -l)"
	done
	echo "Raw: $TSV"
} | tee "$ROOT/bench/results/$STAMP-compression.txt"
