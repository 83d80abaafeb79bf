#!/usr/bin/env bash
# bench/replication.sh: replication lag (commit -> replica complete) and
# throughput of `cairn server` to each destination kind at once: a
# directory, MinIO on loopback (s3:) and a second cairn server on loopback
# (rest:, its replica tenant, fingerprint pinned).
#
#   bench/replication.sh [--rounds N] [--src DIR] [--workdir DIR]
#
# Per round: a fresh repository gets a backup of SRC (default data set K,
# /work/bench-data/K or bench/work/data/K, never modified) and of a copy
# of every 300th .c file of it, then a small change (1 KiB appended to
# each of those copies) and a second backup. After each commit
# the three destinations replicate it in parallel, as a server does; the
# lag of each is replicated_at - snapshot_time from `cairn server
# replication status --json` (the server's own clocks: when the pass that
# completed the replica ended, when the snapshot was committed), and its
# throughput the primary repository's bytes over that lag (initial
# backup only). Report: medians over rounds, on stdout and in
# bench/results/<stamp>-replication.txt.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=3 SRC='' WORK=$HERE/work
while (($#)); do
	case $1 in
	--rounds) ROUNDS=${2:?}; shift ;;
	--src) SRC=${2:?}; shift ;;
	--workdir) WORK=${2:?}; shift ;;
	*) echo "usage: bench/replication.sh [--rounds N] [--src DIR] [--workdir DIR]" >&2; exit 2 ;;
	esac
	shift
done

. "$HERE/lib.sh"

bench_minio
command -v python3 >/dev/null || die "python3 missing (reads the status JSON)"

if [[ -z $SRC ]]; then
	for d in /work/bench-data/K/linux-source-6.1 "$WORK/data/K/linux-source-6.1"; do
		if [[ -d $d ]]; then SRC=$d; break; fi
	done
	[[ -n $SRC ]] || die "no data set K: run bench/run --prepare-only, or give --src DIR"
	if [[ $SRC == /work/bench-data/* ]]; then
		for _ in $(seq 600); do [[ -e /work/bench-data/K.ready ]] && break; sleep 1; done
		[[ -e /work/bench-data/K.ready ]] || die "/work/bench-data/K is not ready"
	fi
fi
SRC=$(cd "$SRC" && pwd)

bench_work_module "$WORK"
RW=$WORK/replbench
rm -rf "$RW" && mkdir -p "$RW"/{bin,logs}
log "building cairn"
(cd "$ROOT" && go build -o "$RW/bin/cairn" ./cmd/cairn) || die "cairn does not build"
REV=$(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- . ':!bench' || echo "+changes")
CAIRN=$RW/bin/cairn

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	bench_stop_minio
}
trap cleanup EXIT

# ---------------------------------------------------------------- MinIO
bench_start_minio "$RW/minio" "$RW/logs/minio.log"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$RW/minio.aws"

# ---------------------------------------------------------------- servers
# start_server NAME: runs `cairn server run` on loopback for the data dir
# $RW/NAME, sets ADDR_NAME once it listens.
start_server() {
	local name=$1 out=$RW/logs/$1.out
	CAIRN_SERVER_DATA=$RW/$name "$CAIRN" server run --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 >"$out" 2>"$RW/logs/$name.log" &
	PIDS+=($!)
	for _ in $(seq 300); do
		grep -q '^server fingerprint:' "$out" 2>/dev/null && break
		sleep 0.1
	done
	local addr
	addr=$(sed -n 's|^cairn server listening on http://||p' "$out")
	[[ -n $addr ]] || die "server $name did not start: $(tail -3 "$RW/logs/$name.log")"
	printf -v "ADDR_$name" '%s' "$addr"
}

printf 'site1-bench-password\n' >"$RW/site1.pass"
printf 'bob-bench-password\n' >"$RW/bob.pass"
CAIRN_SERVER_DATA=$RW/far "$CAIRN" server init >/dev/null || die "far: server init"
CAIRN_SERVER_DATA=$RW/far "$CAIRN" server client add site1 --replica --password-file "$RW/site1.pass" >/dev/null || die "far: client add --replica"
FAR_FP=$(CAIRN_SERVER_DATA=$RW/far "$CAIRN" server fingerprint --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
start_server far

export CAIRN_SERVER_DATA=$RW/primary
"$CAIRN" server init >/dev/null || die "primary: server init"
"$CAIRN" server client add bob --password-file "$RW/bob.pass" >/dev/null || die "primary: client add"
"$CAIRN" server destination add dir --location "$RW/replicas" --all >/dev/null || die "destination dir"
"$CAIRN" server destination add s3 --location "s3:$MINIO_ENDPOINT/replicas" --credentials-file "$RW/minio.aws" --all >/dev/null || die "destination s3"
"$CAIRN" server destination add rest --location "rest:http://site1@$ADDR_far/site1" --credentials-file "$RW/site1.pass" \
	--server-fingerprint "$FAR_FP" --all >/dev/null || die "destination rest"
start_server primary

# ---------------------------------------------------------------- steps
printf 'bench-owner-password\n' >"$RW/owner.pass"
export CAIRN_PASSWORD_FILE=$RW/owner.pass XDG_CACHE_HOME=$RW/cache
TSV=$RW/results.tsv
: >"$TSV"

# The small change: copies of every 300th .c file of SRC (SRC itself is
# never modified), backed up with it, get 1 KiB appended each.
EXTRA=$RW/extra
fresh_extra() {
	rm -rf "$EXTRA" && mkdir -p "$EXTRA"
	find "$SRC" -name '*.c' -type f | LC_ALL=C sort | awk 'NR % 300 == 0' | while read -r f; do
		cp -p "$f" "$EXTRA/$(printf '%s' "${f#"$SRC"/}" | tr / _)"
	done
}
change() {
	for f in "$EXTRA"/*; do head -c 1024 /dev/zero | tr '\0' 'x' >>"$f"; done
}

# wait_replicated REPO SNAP STEP ROUND: polls the status until every
# destination holds SNAP of bob/REPO with no lag, then appends per
# destination: step, round, destination, lag seconds, primary bytes.
wait_replicated() {
	local repo=$1 snap=$2 step=$3 round=$4 bytes
	bytes=$(du -sb "$RW/primary/repos/bob/$repo" | cut -f1)
	for _ in $(seq 7200); do
		if "$CAIRN" server replication status --json >"$RW/status.json" 2>/dev/null &&
			python3 - "$repo" "$snap" "$step" "$round" "$bytes" "$RW/status.json" >>"$TSV" <<'EOF'; then
import json, sys
from datetime import datetime
repo, snap, step, rnd, nbytes, path = sys.argv[1:]
rows = [r for r in json.load(open(path)) if r["client"] == "bob" and r["repo"] == repo]
done = [r for r in rows if r["snapshot"] == snap and r["lag_seconds"] == 0 and r["lag_bytes"] == 0 and not r["last_error"]]
if len(rows) != 3 or len(done) != 3:
    sys.exit(1)
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
for r in sorted(done, key=lambda r: r["destination"]):
    print(f'{step}\t{rnd}\t{r["destination"]}\t{t(r["replicated_at"]) - t(r["snapshot_time"]):.2f}\t{nbytes}')
EOF
			return 0
		fi
		sleep 0.5
	done
	die "bob/$repo: snapshot $snap not on every destination within an hour; see $RW/logs/primary.log"
}

snapshots() { ls "$RW/primary/repos/bob/$1/snapshots" 2>/dev/null | LC_ALL=C sort; }
# new_snapshot REPO BEFORE: the one snapshot file of REPO not in BEFORE.
new_snapshot() { comm -13 "$2" <(snapshots "$1") | head -1; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
	repo=r$round
	url=rest:http://bob:bob-bench-password@$ADDR_primary/bob/$repo
	"$CAIRN" -r "$url" init --server-fingerprint "$(CAIRN_SERVER_DATA=$RW/primary "$CAIRN" server fingerprint --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')" \
		--owner-key-file "$RW/owner-$round.key" >/dev/null || die "init $repo"
	export CAIRN_KEY_FILE=$RW/owner-$round.key
	fresh_extra
	find "$SRC" -type f -exec cat {} + >/dev/null # warm the page cache
	log "round $round: backup of $SRC"
	"$CAIRN" -r "$url" backup -q "$SRC" "$EXTRA" >"$RW/logs/backup-$round.out" 2>&1 || die "backup: $(tail -3 "$RW/logs/backup-$round.out")"
	wait_replicated "$repo" "$(new_snapshot "$repo" /dev/null)" initial "$round"
	log "round $round: replicated; the small change"
	snapshots "$repo" >"$RW/before"
	change
	"$CAIRN" -r "$url" backup -q "$SRC" "$EXTRA" >"$RW/logs/change-$round.out" 2>&1 || die "backup after the change: $(tail -3 "$RW/logs/change-$round.out")"
	wait_replicated "$repo" "$(new_snapshot "$repo" "$RW/before")" change "$round"
	log "round $round done"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# The replicas restore: the last round's from each destination alone,
# compared with the source.
verify() { # name location [env...]
	local name=$1 loc=$2 target=$RW/restore-$1
	shift 2
	if env "$@" XDG_CACHE_HOME="$RW/vcache-$name" "$CAIRN" -r "$loc" --key-file "$RW/owner-$ROUNDS.key" restore latest --target "$target" >"$RW/logs/verify-$name.out" 2>&1 &&
		diff -rq "$SRC" "$target$SRC" >"$RW/logs/verify-$name.diff" 2>&1 &&
		diff -rq "$EXTRA" "$target$EXTRA" >>"$RW/logs/verify-$name.diff" 2>&1; then
		echo "ok"
	else
		echo "MISMATCH (see $RW/logs/verify-$name.*)"
	fi
}
V_DIR=$(verify dir "$RW/replicas/bob/r$ROUNDS")
V_S3=$(verify s3 "s3:$MINIO_ENDPOINT/replicas/bob/r$ROUNDS")
V_REST=$(verify rest "rest:http://site1:site1-bench-password@$ADDR_far/site1/bob/r$ROUNDS")

# ---------------------------------------------------------------- report
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -F'\t' -v s="$1" -v d="$2" -v c="$3" '$1==s && $3==d {print $c}' "$TSV"; }
tput_mibs() { awk -F'\t' -v d="$1" '$1=="initial" && $3==d && $4 > 0 {printf "%.1f\n", $5/$4/1048576}' "$TSV" | median; }

STAMP=$(date -u +%Y-%m-%dT%H%M%S)
REPORT=$ROOT/bench/results/$STAMP-replication.txt
mkdir -p "$ROOT/bench/results"
{
	echo "bench/replication.sh  $(date -u +%FT%TZ)  host $(hostname)  $(nproc) cores  load $LOAD_START at the start, $LOAD_END at the end"
	echo "source $SRC: $(find "$SRC" -type f | wc -l) files, $(du -sb "$SRC" | cut -f1) bytes; $ROUNDS rounds, medians (min-max)"
	echo "cairn $REV; primary repository after the backup $(col initial dir 5 | median | cut -d. -f1) bytes; three destinations replicating at once"
	echo
	printf '%-12s %-24s %-24s %-14s %s\n' destination "initial lag s" "change lag s" "initial MiB/s" "restore from it alone"
	for d in dir s3 rest; do
		i=$(col initial $d 4 | median) c=$(col change $d 4 | median)
		ir="$(col initial $d 4 | sort -n | head -1)-$(col initial $d 4 | sort -n | tail -1)"
		cr="$(col change $d 4 | sort -n | head -1)-$(col change $d 4 | sort -n | tail -1)"
		case $d in dir) v=$V_DIR ;; s3) v=$V_S3 ;; rest) v=$V_REST ;; esac
		printf '%-12s %-24s %-24s %-14s %s\n' "$d" "$i ($ir)" "$c ($cr)" "$(tput_mibs $d)" "$v"
	done
	echo
	echo "lag: from the commit on the primary to the end of the pass that completed the replica (server clocks)."
	echo "Raw: $TSV; logs in $RW/logs"
} | tee "$REPORT"
