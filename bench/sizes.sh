#!/usr/bin/env bash
# bench/sizes.sh: back one tree up once with cairn and restic into fresh
# repositories and break each repository's bytes down by kind (see
# bench/README.md, "Repository size by kind").
#
#   bench/sizes.sh [--src DIR] [--workdir DIR] [--cairn-bin PATH] [--tools cairn,restic19,restic14]
#
# Default source: data set T, generated with bench/gen and seed 1 as
# bench/run does. restic 0.19.1 is looked for at /work/tools/restic-0.19.1
# (RESTIC19), restic 0.14 as `restic` on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/bench/work/sizes SRC="" CAIRN_BIN="" TOOLS=cairn,restic19,restic14
RESTIC19=${RESTIC19:-/work/tools/restic-0.19.1}
while (($#)); do
	case $1 in
	--src) SRC=${2:?}; shift ;;
	--workdir) WORK=${2:?}; shift ;;
	--cairn-bin) CAIRN_BIN=${2:?}; shift ;;
	--tools) TOOLS=${2:?}; shift ;;
	*) echo "usage: $0 [--src DIR] [--workdir DIR] [--cairn-bin PATH] [--tools LIST]" >&2; exit 2 ;;
	esac
	shift
done
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
printf 'module sizes\n' >"$WORK/go.mod" # keeps go build ./... out of the work dir
if [[ -z $CAIRN_BIN ]]; then
	(cd "$ROOT" && go build -o "$WORK/cairn" ./cmd/cairn)
	CAIRN_BIN=$WORK/cairn
fi
if [[ -z $SRC ]]; then
	SRC=$WORK/T
	if [[ ! -d $SRC ]]; then
		(cd "$ROOT" && go build -o "$WORK/gen" ./bench/gen)
		"$WORK/gen" tree -kind T -seed 1 -out "$SRC.tmp" && mv "$SRC.tmp" "$SRC"
	fi
fi
PASS=sizes-bench-password
for tool in ${TOOLS//,/ }; do
	r=$WORK/$tool
	rm -rf "$r" && mkdir -p "$r"
	case $tool in
	cairn)
		export CAIRN_REPOSITORY=$r/repo CAIRN_PASSWORD=$PASS XDG_CACHE_HOME=$r/cache
		"$CAIRN_BIN" init >"$r/log" 2>&1
		"$CAIRN_BIN" backup "$SRC" >>"$r/log" 2>&1
		;;
	restic19 | restic14)
		bin=restic
		[[ $tool == restic19 ]] && bin=$RESTIC19
		RESTIC_PASSWORD=$PASS "$bin" -r "$r/repo" --cache-dir "$r/cache" init --repository-version 2 >"$r/log" 2>&1
		RESTIC_PASSWORD=$PASS "$bin" -r "$r/repo" --cache-dir "$r/cache" backup --compression auto "$SRC" >>"$r/log" 2>&1
		;;
	*) echo "unknown tool $tool" >&2; exit 2 ;;
	esac
	echo "== $tool: du -sb $(du -sb "$r/repo" | cut -f1)"
	case $tool in
	cairn) python3 "$ROOT/bench/sizes.py" cairn "$r/repo" "$CAIRN_BIN" "$PASS" ;;
	restic19) python3 "$ROOT/bench/sizes.py" restic "$r/repo" "$RESTIC19" "$PASS" ;;
	restic14) python3 "$ROOT/bench/sizes.py" restic "$r/repo" restic "$PASS" ;;
	esac
done
