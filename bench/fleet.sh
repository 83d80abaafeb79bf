#!/usr/bin/env bash
# bench/fleet.sh: one server under a fleet of clients on loopback (issue 17).
# Every client backs up its own copy of a scaled-down data set V, ROUNDS
# times into the same repository: an initial backup, then backups after
# small seeded changes (PAGES 4 KiB pages overwritten per round).
#
#   bench/fleet.sh [--clients N] [--size MiB] [--rounds R] [--pages P]
#                  [--phases A,B,C,D] [--restic PATH] [--rest-server PATH]
#                  [--cairn-bin PATH] [--workdir DIR] [--pprof SECONDS]
#                  [--cairn-agent]
#
# Phases, run one after the other in every round, on the same data:
#   A  N restic + N cairn clients at once through `cairn server` (the fleet)
#   B  the N restic clients through rest-server (with --htpasswd-file and
#      --private-repos, bcrypt logins as on `cairn server`; --rest-no-auth
#      for none)
#   C  the N restic clients alone through `cairn server`
#   D  the N cairn clients alone through `cairn server`: each backup a
#      `cairn backup` process of its own, or with --cairn-agent as a fleet
#      runs them: one `cairn agent run` daemon per client (a writer key,
#      unlocked once per daemon), every round started by `cairn server
#      client run-now` for each client. The round's wall is then from the
#      first run's start to the last one's end as the agents report them
#      (the poll's latency before a run starts is not in it), and a
#      client's CPU is its agent's with its backup children (utime, stime,
#      cutime and cstime of /proc/PID/stat), idle polling included.
# A is the fleet of the issue; B, C and D take one kind of client at a
# time, so that the ratios compare like with like on 2 cores (in A the
# restic clients share the CPU with the cairn clients). Every phase has its
# own repositories (tenants r1..rN and c1..cN on `cairn server`).
#
# Per phase and round: aggregate ingest throughput (logical bytes backed up
# / wall time from the first client's start to the last one's end), every
# backup's wall time (p50/p99 over clients and rounds), the server's CPU
# seconds (/proc/PID/stat) and its peak RSS (VmHWM, reset per phase through
# /proc/PID/clear_refs). With --pprof S, a CPU profile of `cairn server`
# over the first S seconds of every round's phases A, C and D is written to
# the work dir's fleet/prof, with the mutex, block, goroutine and heap
# profiles at the end of each (cumulative; the server runs with
# --pprof-listen on loopback).
#
# The data: V is 4 GiB; 2×N copies of it do not fit a run on 2 cores, so
# each client gets SIZE MiB (default 128) of V's make-up: a quarter zeros,
# three eighths of the uncompressed kernel tar, three eighths seeded random
# (seeded per client, so no two clients hold the same data).
# Report on stdout and in bench/results/<stamp>-fleet.txt.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=8 SIZE=128 ROUNDS=3 PAGES=64 PHASES=A,B,C,D WORK=$HERE/work CAIRN_BIN='' PPROF=0 REST_AUTH=1 CAIRN_AGENT=0
RESTIC=${RESTIC:-restic}
REST_SERVER=${REST_SERVER:-/work/tools/rest-server-v0.14.0}
KSRC=/usr/src/linux-source-6.1.tar.xz
usage() {
	echo "usage: bench/fleet.sh [--clients N] [--size MiB] [--rounds R] [--pages P] [--phases A,B,C,D]" >&2
	echo "                      [--restic PATH] [--rest-server PATH] [--rest-no-auth] [--cairn-bin PATH] [--workdir DIR] [--pprof SECONDS]" >&2
	echo "                      [--cairn-agent]" >&2
	exit 2
}
while (($#)); do
	case $1 in
	--clients) N=${2:?} ;;
	--size) SIZE=${2:?} ;;
	--rounds) ROUNDS=${2:?} ;;
	--pages) PAGES=${2:?} ;;
	--phases) PHASES=${2:?} ;;
	--restic) RESTIC=${2:?} ;;
	--rest-server) REST_SERVER=${2:?} ;;
	--cairn-bin) CAIRN_BIN=${2:?} ;;
	--workdir) WORK=${2:?} ;;
	--pprof) PPROF=${2:?} ;;
	--rest-no-auth) REST_AUTH=0; shift; continue ;;
	--cairn-agent) CAIRN_AGENT=1; shift; continue ;;
	*) usage ;;
	esac
	shift 2
done

. "$HERE/lib.sh"

command -v "$RESTIC" >/dev/null || die "no restic at $RESTIC"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"
[[ $PHASES != *B* || -x $REST_SERVER ]] || die "no rest-server at $REST_SERVER (bench/README.md says how to build it)"
bench_work_module "$WORK"
W=$WORK/fleet
rm -rf "$W" && mkdir -p "$W"/{bin,logs,data,cache,prof,agents}
if [[ -n $CAIRN_BIN ]]; then
	cp "$CAIRN_BIN" "$W/bin/cairn" || die "no cairn at $CAIRN_BIN"
else
	log "building cairn"
	(cd "$ROOT" && go build -o "$W/bin/cairn" ./cmd/cairn) || die "cairn does not build"
fi
(cd "$ROOT" && go build -o "$W/bin/gen" ./bench/gen) || die "bench/gen does not build"
CAIRN=$W/bin/cairn GEN=$W/bin/gen

# ---------------------------------------------------------------- data
zeros=$((SIZE << 20 >> 2)) tarb=$((SIZE * 3 << 20 >> 3))
rnd=$(((SIZE << 20) - zeros - tarb))
tar=$WORK/data/linux-source-6.1.tar
if [[ ! -s $tar ]]; then # bench/run keeps the whole tar there; a prefix will do
	tar=$W/data/kernel.tar
	[[ -r $KSRC ]] || die "$KSRC missing (apt-get install linux-source-6.1)"
	xz -dc "$KSRC" 2>/dev/null | head -c "$tarb" >"$tar"
fi
log "generating $((2 * N)) copies of V at $SIZE MiB ($((zeros >> 20)) zeros, $((tarb >> 20)) kernel tar, $((rnd >> 20)) random)"
CLIENTS=()
for i in $(seq "$N"); do CLIENTS+=("r$i" "c$i"); done
seed_of() { local k=${1:0:1} i=${1:1}; [[ $k == r ]] && echo "$i" || echo $((1000 + i)); }
for c in "${CLIENTS[@]}"; do
	mkdir -p "$W/data/$c"
	"$GEN" vimage -out "$W/data/$c/disk.img" -zeros "$zeros" -tar "$tar" -tarbytes "$tarb" -random "$rnd" \
		-seed "$(seed_of "$c")" || die "gen vimage for $c"
done
BYTES=$((SIZE << 20)) # logical bytes per backup

# ---------------------------------------------------------------- servers
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
printf 'bench-password\n' >"$W/password"
export CAIRN_PASSWORD_FILE=$W/password RESTIC_PASSWORD=bench-password
export CAIRN_SERVER_DATA=$W/srvdata
(
	export XDG_CONFIG_HOME=$W/srvconfig
	"$CAIRN" server init >/dev/null || exit 1
	for c in "${CLIENTS[@]}"; do
		printf 'client-password-%s\n' "$c" >"$W/$c.pass"
		"$CAIRN" server client add "$c" --password-file "$W/$c.pass" >/dev/null || exit 1
	done
	"$CAIRN" server fingerprint | sed -n 's/^.*\(SHA256:[^ ]*\).*$/\1/p' | head -1 >"$W/fingerprint"
) || die "cairn server init"
PPROF_ADDR=
((PPROF > 0)) && PPROF_ADDR=127.0.0.1:$(bench_freeport)
XDG_CONFIG_HOME=$W/srvconfig "$CAIRN" --debug server run --listen 127.0.0.1:0 ${PPROF_ADDR:+--pprof-listen "$PPROF_ADDR"} \
	>"$W/logs/server.out" 2>"$W/logs/server.log" &
SRV_PID=$!
PIDS+=("$SRV_PID")
SRV=
for _ in $(seq 100); do
	SRV=$(sed -n 's|^cairn server listening on http://||p' "$W/logs/server.out")
	[[ -n $SRV ]] && break
	sleep 0.1
done
[[ -n $SRV ]] || die "cairn server did not start: $(tail -3 "$W/logs/server.log")"
unset CAIRN_SERVER_DATA
RS_PID=
if [[ $PHASES == *B* ]]; then
	auth=(--no-auth)
	if ((REST_AUTH)); then # bcrypt (cost 10, as cairn server's), each client its own login
		for c in "${CLIENTS[@]}"; do
			bench_htpasswd "$c" "$(cat "$W/$c.pass")"
		done >"$W/htpasswd" || die "htpasswd (python3's crypt with bcrypt)"
		auth=(--htpasswd-file "$W/htpasswd" --private-repos)
	fi
	bench_start_rest_server "$REST_SERVER" "$W/rest-server" "$W/logs/rest-server.log" "${auth[@]}"
fi

# ---------------------------------------------------------------- clients
members() { # phase: the clients it runs
	local i
	for i in $(seq "$N"); do
		case $1 in
		A) echo "r$i c$i" ;;
		B | C) echo "r$i" ;;
		D) echo "c$i" ;;
		esac
	done
}
repo_of() { # phase client
	local pw
	pw=$(cat "$W/$2.pass")
	case $1 in
	B) ((REST_AUTH)) && echo "rest:http://$2:$pw@127.0.0.1:$RPORT/$2/B" || echo "rest:http://127.0.0.1:$RPORT/$2" ;;
	*) echo "rest:http://$2:$pw@$SRV/$2/$1" ;;
	esac
}
backup_cmd() { # phase client
	local repo
	repo=$(repo_of "$1" "$2")
	case $2 in
	r*) echo "$RESTIC -q -r $repo --cache-dir $W/cache/$1-$2 backup --compression auto $W/data/$2" ;;
	c*) echo "$CAIRN -q -r $repo --cache-dir $W/cache/$1-$2 backup $W/data/$2" ;;
	esac
}
init_repo() { # phase client
	local repo
	repo=$(repo_of "$1" "$2")
	case $2 in
	r*) $RESTIC -q -r "$repo" init --repository-version 2 ;;
	c*) "$CAIRN" -q -r "$repo" --cache-dir "$W/cache/$1-$2" init --server-fingerprint "$(cat "$W/fingerprint")" ;;
	esac
}
server_pid() { [[ $1 == B ]] && echo "$RS_PID" || echo "$SRV_PID"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

TSV=$W/results.tsv
printf 'phase\tround\tclient\tstatus\twall\tcpu\trss_kib\n' >"$W/clients.tsv"
: >"$TSV"
: >"$W/commits.tsv"
IFS=, read -ra PH <<<"$PHASES"
for ph in "${PH[@]}"; do
	for c in $(members "$ph"); do
		init_repo "$ph" "$c" >"$W/logs/init-$ph-$c" 2>&1 || die "init $ph $c: $(tail -3 "$W/logs/init-$ph-$c")"
	done
done

# --cairn-agent: phase D's clients are `cairn agent run` daemons, each
# with a writer key of its repository (its host label the client's name)
# and a schedule 12 hours away; a round is a run-now request to each.
declare -A AGENT_PID
agent_d() { [[ $1 == D ]] && ((CAIRN_AGENT)); }
start_agents() {
	local c at
	at=$(date -u -d '+12 hours' +%H:%M)
	for c in $(members D); do
		"$CAIRN" -q -r "$(repo_of D "$c")" --cache-dir "$W/cache/D-$c" key add --role writer --export "$W/agents/$c.key" \
			--new-password-file "$W/password" --host "$c" >"$W/logs/key-$c" 2>&1 || die "writer key for $c: $(tail -3 "$W/logs/key-$c")"
		cat >"$W/agents/$c.yaml" <<-YAML
			repository: rest:http://$SRV/$c/D
			server_fingerprint: $(cat "$W/fingerprint")
			client_password_file: $W/$c.pass
			key_file: $W/agents/$c.key
			password_file: $W/password
			host: $c
			paths: [$W/data/$c]
			schedule: {at: "daily $at", time_zone: UTC, jitter: 0s}
			retries: {attempts: 1}
		YAML
		"$CAIRN" --cache-dir "$W/cache/D-$c" agent run --config "$W/agents/$c.yaml" --poll 200ms \
			>"$W/logs/agent-$c.out" 2>"$W/logs/agent-$c.log" &
		AGENT_PID[$c]=$!
		PIDS+=("$!")
	done
}
agent_cpu() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; } # with waited-for children
# agent_runs: every client's last agent run as the server has it, one
# line each: client, run_id, start and end (unix seconds), result.
agent_runs() {
	"$CAIRN" server status --data "$W/srvdata" --json 2>/dev/null | python3 -c '
import json, sys, datetime
def ts(s):  # RFC 3339 with up to nanoseconds
	head, _, frac = s.partition(".")
	zone = ""
	for z in ("Z", "+", "-"):
		if z in frac:
			i = frac.index(z); frac, zone = frac[:i], frac[i:]
			break
	if not frac:
		head, zone = head[:19], head[19:]
	t = datetime.datetime.fromisoformat(head + (zone if zone != "Z" else "+00:00"))
	return t.timestamp() + (float("0." + frac) if frac else 0)
for c in json.load(sys.stdin)["clients"]:
	a = c.get("last_agent_run")
	print(c["name"], "none 0 0 none" if not a else "%s %.3f %.3f %s" % (a["run_id"], ts(a["start"]), ts(a["end"]), a["result"]))'
}
# agent_round ROUND: run-now for every agent of phase D, then wait for
# each one's report; sets T0, T1 (the runs' first start and last end),
# N_RUN and FAILS, and writes the clients' rows.
agent_round() {
	local r=$1 c id start end res
	declare -A before cpu0
	while read -r c id _; do before[$c]=$id; done < <(agent_runs)
	for c in $(members D); do
		cpu0[$c]=$(agent_cpu "${AGENT_PID[$c]}")
	done
	for c in $(members D); do
		"$CAIRN" server client run-now "$c" --data "$W/srvdata" >/dev/null || die "run-now $c"
	done
	T0='' T1='' N_RUN=0 FAILS=0
	local waiting deadline=$((SECONDS + 3600))
	declare -A done_ runs
	while :; do
		waiting=0
		runs=()
		while read -r c id start end res; do runs[$c]="$id $start $end $res"; done < <(agent_runs)
		for c in $(members D); do
			[[ -n ${done_[$c]:-} ]] && continue
			read -r id start end res <<<"${runs[$c]:-none 0 0 none}"
			if [[ $id == "${before[$c]:-none}" ]]; then
				kill -0 "${AGENT_PID[$c]}" 2>/dev/null || die "the agent of $c exited: $(tail -3 "$W/logs/agent-$c.log")"
				waiting=1
				continue
			fi
			done_[$c]=1
			local cpu st=ok
			cpu=$(echo "($(agent_cpu "${AGENT_PID[$c]}") - ${cpu0[$c]}) / 100" | bc -l)
			[[ $res == ok ]] || { st=FAIL; FAILS=$((FAILS + 1)); log "D round $r $c (agent) failed: $(tail -2 "$W/logs/agent-$c.log")"; }
			printf '%s\t%s\t%s\t%s\t%.3f\t%.2f\t%s\n' D "$r" "$c" "$st" "$(echo "$end - $start" | bc)" "$cpu" 0 >>"$W/clients.tsv"
			N_RUN=$((N_RUN + 1))
			[[ -z $T0 ]] || (($(echo "$start < $T0" | bc))) && T0=$start
			[[ -z $T1 ]] || (($(echo "$end > $T1" | bc))) && T1=$end
		done
		((waiting)) || break
		((SECONDS < deadline)) || die "D round $r: the agents did not report within an hour"
		sleep 0.2
	done
}

# run_phase PHASE ROUND: every client of the phase at once.
run_phase() {
	local ph=$1 r=$2 spid c0 c1 t0 t1 c n=0 fails=0 prof_pid=
	spid=$(server_pid "$ph")
	echo 5 >"/proc/$spid/clear_refs" 2>/dev/null # resets VmHWM
	if [[ $ph != B && -n $PPROF_ADDR ]]; then
		curl -s -o "$W/prof/cpu-$ph-r$r.pprof" "http://$PPROF_ADDR/debug/pprof/profile?seconds=$PPROF" &
		prof_pid=$!
	fi
	local log0
	log0=$(wc -l <"$W/logs/server.log")
	c0=$(cpu_ticks "$spid")
	t0=$(date +%s.%N)
	local pids=()
	agent_d "$ph" && agent_round "$r"
	for c in $(agent_d "$ph" || members "$ph"); do
		# shellcheck disable=SC2046 # backup_cmd is words
		/usr/bin/time -f '%e %U %S %M' -o "$W/logs/$ph-$r-$c.time" $(backup_cmd "$ph" "$c") \
			>"$W/logs/$ph-$r-$c.out" 2>"$W/logs/$ph-$r-$c.err" &
		pids+=("$!:$c")
	done
	local p
	for p in "${pids[@]}"; do
		c=${p#*:}
		local st=ok wall user sys rss
		wait "${p%%:*}" || { st=FAIL; fails=$((fails + 1)); log "$ph round $r $c failed: $(tail -2 "$W/logs/$ph-$r-$c.err")"; }
		read -r wall user sys rss <"$W/logs/$ph-$r-$c.time" 2>/dev/null || { wall=0 user=0 sys=0 rss=0; }
		[[ $wall =~ ^[0-9.]+$ ]] || { wall=0 user=0 sys=0 rss=0; st=FAIL; }
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ph" "$r" "$c" "$st" "$wall" "$(echo "$user + $sys" | bc)" "$rss" >>"$W/clients.tsv"
		n=$((n + 1))
	done
	t1=$(date +%s.%N)
	agent_d "$ph" && t0=$T0 t1=$T1 n=$N_RUN fails=$FAILS
	c1=$(cpu_ticks "$spid")
	if [[ -n $prof_pid ]]; then
		wait "$prof_pid"
		local k # cumulative since the server started
		for k in mutex block goroutine heap; do curl -s -o "$W/prof/$k-$ph-r$r.pprof" "http://$PPROF_ADDR/debug/pprof/$k"; done
	fi
	# Commit latency: the server's time for each snapshot upload (its
	# debug line per request), validation included.
	[[ $ph != B ]] && tail -n +$((log0 + 1)) "$W/logs/server.log" |
		awk -v ph="$ph" -v r="$r" '/msg=request / && / method=POST / && / path=\/[^ ]*\/snapshots\// {
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^path=/) { split($i, p, "/"); c = p[2] }
				if ($i ~ /^took=/) { d = substr($i, 6) }
			}
			ms = d + 0
			if (d ~ /µs$/) ms /= 1000; else if (d ~ /ms$/) ; else if (d ~ /m[0-9.]*s$/) { split(d, m, "m"); ms = (m[1] * 60 + m[2]) * 1000 } else if (d ~ /s$/) ms *= 1000
			printf "%s\t%s\t%s\t%.1f\n", ph, r, c, ms
		}' >>"$W/commits.tsv"
	# phase round clients failed wall bytes srv_cpu srv_hwm_kib
	printf '%s\t%s\t%s\t%s\t%.2f\t%s\t%.2f\t%s\n' "$ph" "$r" "$n" "$fails" "$(echo "$t1 - $t0" | bc)" \
		$(((n - fails) * BYTES)) "$(echo "($c1 - $c0) / 100" | bc -l)" "$(hwm_kib "$spid")" >>"$TSV"
	log "phase $ph round $r: $n clients, $fails failed, $(echo "$t1 - $t0" | bc | xargs printf '%.1f') s"
}

if [[ ,$PHASES, == *,D,* ]] && ((CAIRN_AGENT)); then start_agents; fi
for r in $(seq "$ROUNDS"); do
	if ((r > 1)); then
		for c in "${CLIENTS[@]}"; do
			"$GEN" pages -file "$W/data/$c/disk.img" -count "$PAGES" -size 4096 -seed $((r * 10000 + $(seed_of "$c"))) ||
				die "gen pages for $c"
		done
	fi
	cat "$W"/data/*/disk.img >/dev/null # warm the page cache
	for ph in "${PH[@]}"; do run_phase "$ph" "$r"; done
done

# ---------------------------------------------------------------- report
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
pctl() { sort -n | awk -v p="$1" '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} i=int((p*NR+99)/100); if (i<1) i=1; print a[i]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b+0 > 0 && a != "n/a") printf "%.2f", a/b; else print "n/a" }'; }
# tput PHASE ROUNDS KIND: MB/s of the phase's KIND clients (r, c or all)
# over the rounds selected (1 or 2-): per round, their bytes over the
# phase's wall (all) or over the slowest one's wall (r, c: they start
# together); the median over rounds.
tput() {
	local ph=$1 sel=$2 kind=$3
	if [[ $kind == all ]]; then
		awk -F'\t' -v ph="$ph" -v sel="$sel" '$1==ph && (sel=="1" ? $2==1 : $2>1) {printf "%.1f\n", $6/1e6/$5}' "$TSV" | median
		return
	fi
	awk -F'\t' -v ph="$ph" -v sel="$sel" -v kind="$kind" -v b="$BYTES" '
		$1==ph && (sel=="1" ? $2==1 : $2>1) && $4=="ok" && substr($3,1,1)==kind {n[$2]++; if ($5 > w[$2]) w[$2] = $5}
		END {for (r in n) printf "%.1f\n", n[r]*b/1e6/w[r]}' "$W/clients.tsv" | median
}
lat() { # phase sel kind pct
	awk -F'\t' -v ph="$1" -v sel="$2" -v kind="$3" '$1==ph && (sel=="1" ? $2==1 : $2>1) && $4=="ok" &&
		(kind=="all" || substr($3,1,1)==kind) {print $5}' "$W/clients.tsv" | pctl "$4"
}
clicpu() { # phase sel kind: the clients' CPU seconds in a round (median over rounds)
	awk -F'\t' -v ph="$1" -v sel="$2" -v kind="$3" '$1==ph && (sel=="1" ? $2==1 : $2>1) &&
		(kind=="all" || substr($3,1,1)==kind) {s[$2]+=$6} END {for (r in s) printf "%.2f\n", s[r]}' "$W/clients.tsv" | median
}
totcpu() { # phase sel: clients' and server's CPU seconds in a round (median over rounds)
	awk -v a="$(clicpu "$1" "$2" all)" -v b="$(col "$1" "$2" 7)" 'BEGIN {printf "%.2f", a + b}'
}
commit() { # phase sel kind pct: commit latency in ms (n/a through rest-server)
	awk -F'\t' -v ph="$1" -v sel="$2" -v kind="$3" '$1==ph && (sel=="1" ? $2==1 : $2>1) &&
		(kind=="all" || substr($3,1,1)==kind) {print $4}' "$W/commits.tsv" | pctl "$4"
}
col() { # phase sel column: median over rounds of the phase TSV's column
	awk -F'\t' -v ph="$1" -v sel="$2" -v c="$3" '$1==ph && (sel=="1" ? $2==1 : $2>1) {print $c}' "$TSV" | median
}
restic_kdf() { # the scrypt parameters of the restic clients' key files, per phase
	local f
	for f in "$W"/srvdata/repos/r*/*/keys/* "$W"/rest-server/r*/*/keys/*; do
		[[ -f $f ]] || continue
		python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[2], d["N"], d["r"], d["p"])' "$f" "$(basename "$(dirname "$(dirname "$f")")")"
	done | sort | uniq -c | awk '{printf "%s%s: %s %s %s ×%s", (NR > 1 ? ", " : ""), $2, $3, $4, $5, $1}'
}
STAMP=$(date -u +%Y-%m-%dT%H%M%S)
mkdir -p "$ROOT/bench/results"
REPORT=$ROOT/bench/results/$STAMP-fleet.txt
{
	echo "bench/fleet.sh  $(date -u +%FT%TZ)  host $(hostname)  $(nproc) cores  load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$N restic + $N cairn clients, $SIZE MiB of V each, $ROUNDS rounds ($PAGES pages changed per later round)"
	echo "cairn $(cd "$ROOT" && git rev-parse --short HEAD)${CAIRN_BIN:+ (binary $CAIRN_BIN)}; $($RESTIC version | cut -d' ' -f1-2); $([[ -x $REST_SERVER ]] && "$REST_SERVER" --version 2>&1 | head -1)"
	# restic calibrates scrypt to the machine's load at init, and a backup
	# derives its key again: the clients' CPU depends on it.
	echo "restic keys (scrypt, calibrated at init; phase: N r p, count): $(restic_kdf)"
	echo "phases: A = restic+cairn through cairn server, B = restic through rest-server ($( ((REST_AUTH)) && echo htpasswd logins || echo no auth)), C = restic alone through cairn server, D = cairn alone through cairn server$( ((CAIRN_AGENT)) && echo " (agent daemons, writer keys, run-now)")"
	echo
	printf '%-5s %-7s %-5s %7s %8s %8s %10s %10s %8s %8s %8s %5s\n' phase round kind MB/s lat_p50 lat_p99 commit_p50 commit_p99 cli_cpu srv_cpu srv_MiB fails
	for ph in "${PH[@]}"; do
		for sel in 1 2-; do
			((ROUNDS == 1)) && [[ $sel == 2- ]] && continue
			kinds=all
			[[ $ph == A ]] && kinds="all r c"
			for k in $kinds; do
				printf '%-5s %-7s %-5s %7s %8s %8s %10s %10s %8s %8s %8s %5s\n' "$ph" "$([[ $sel == 1 ]] && echo initial || echo change)" "$k" \
					"$(tput "$ph" "$sel" "$k")" "$(lat "$ph" "$sel" "$k" 50)" "$(lat "$ph" "$sel" "$k" 99)" \
					"$(commit "$ph" "$sel" "$k" 50)" "$(commit "$ph" "$sel" "$k" 99)" "$(clicpu "$ph" "$sel" "$k")" \
					"$(col "$ph" "$sel" 7)" "$(awk -v k="$(col "$ph" "$sel" 8)" 'BEGIN {printf "%.0f", k/1024}')" \
					"$(awk -F'\t' -v ph="$ph" -v sel="$sel" '$1==ph && (sel=="1" ? $2==1 : $2>1) {s+=$4} END {print s+0}' "$TSV")"
			done
		done
	done
	echo
	echo "ratios (throughput, medians over rounds)     initial  change"
	row() { printf '%-44s %7s %7s\n' "$1" "$(ratio "$(tput $2 1 $3)" "$(tput $4 1 $5)")" \
		"$( ((ROUNDS > 1)) && ratio "$(tput $2 2- $3)" "$(tput $4 2- $5)" || echo n/a)"; }
	has() { [[ ,$PHASES, == *,$1,* ]]; }
	# CPU: on a shared machine the wall ratios follow the share of the
	# CPU the clients get; the CPU spent per byte does not.
	cpurow() { printf '%-44s %7s %7s\n' "$1" "$(ratio "$(totcpu $3 1)" "$(totcpu $2 1)")" \
		"$( ((ROUNDS > 1)) && ratio "$(totcpu $3 2-)" "$(totcpu $2 2-)" || echo n/a)"; }
	has C && has B && row "restic via cairn server / via rest-server" C all B all
	has D && has B && row "cairn via cairn server / restic via rest-srv" D all B all
	has A && has B && row "fleet restic via cairn / alone via rest-srv" A r B all
	has A && has B && row "fleet cairn via cairn / restic via rest-srv" A c B all
	echo "targets: restic C/B >= 0.9, cairn D/B >= 1.5, server peak RSS <= 300 MiB"
	echo
	echo "ratios (bytes per CPU second, clients + server)  initial  change"
	has C && has B && cpurow "restic via cairn server / via rest-server" C B
	has D && has B && cpurow "cairn via cairn server / restic via rest-srv" D B
	echo
	echo "MB/s: logical bytes backed up / wall time of the phase's round (median over rounds; r and c: over their slowest"
	echo "client's wall); lat: one backup's wall s, p50/p99 over clients and rounds; commit: the server's ms for a snapshot"
	echo "upload (validation included), from its debug log; cli_cpu, srv_cpu: the clients' and the server's CPU s in the"
	echo "phase (median over rounds); srv_MiB: the server's VmHWM in the phase."
	echo "Raw: $TSV, $W/clients.tsv, $W/commits.tsv"
} | tee "$REPORT"
