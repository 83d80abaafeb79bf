# bench/lib.sh: what the benchmarks share; sourced, not run.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_workdir                  # $work, removed at exit with the server
#   go build -o "$work/cairn" ./cmd/cairn
#   bench_start_server --max-upload 1GiB   # sets $server_pid and $addr
#   bench_start_minio "$dir/minio" "$dir/minio.log"   # sets $MINIO_ENDPOINT…

# bench_workdir makes $work, a temporary directory, and removes it when
# the script exits, after stopping the server bench_start_server started.
# A script with more to stop sets its own EXIT trap and calls
# bench_cleanup from it.
bench_workdir() {
	work=$(mktemp -d)
	server_pid=
	trap bench_cleanup EXIT
}

# bench_stop PID stops a background process of the script, if PID is set;
# it never fails (under set -e a failing wait, 143 for the signal, would
# end the EXIT trap before the work directory is removed).
bench_stop() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

bench_cleanup() {
	bench_stop "$server_pid"
	rm -rf "$work"
}

# bench_listen_addr OUT prints the host:port a `cairn server run` writing
# its stdout to OUT listens on, once it says so (up to 10 seconds); it
# fails if the server never does.
bench_listen_addr() {
	local a=
	for _ in $(seq 100); do
		a=$(sed -n 's|^cairn server listening on http://||p' "$1")
		[ -n "$a" ] && break
		sleep 0.1
	done
	[ -n "$a" ] && echo "$a"
}

# bench_start_server ARGS… runs "$work/cairn" server run --listen
# 127.0.0.1:0 ARGS… in the background (stdout in $work/server.out, the log
# in $work/server.log) and sets $server_pid and $addr; if the server does
# not start, it prints the log and exits.
bench_start_server() {
	"$work/cairn" server run --listen 127.0.0.1:0 "$@" >"$work/server.out" 2>"$work/server.log" &
	server_pid=$!
	addr=$(bench_listen_addr "$work/server.out") || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
}

# log prints a timestamped line to stderr; die logs FATAL and exits 1.
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# bench_work_module DIR makes DIR, a benchmark's work directory (bench/work
# by default, inside the project), a Go module of its own, so that go
# build ./..., go vet ./... and go mod tidy in the project skip it while a
# benchmark fills it (data sets, restored trees that come and go). Every
# script with a work directory calls it before writing there.
bench_work_module() {
	mkdir -p "$1" || die "cannot make the work directory $1"
	[[ -e $1/go.mod ]] || printf 'module benchwork\n' >"$1/go.mod"
}

# bench_minio sets $MINIO to the MinIO server binary ($MINIO_BIN, minio on
# PATH, or ~/go/bin/minio where .ci/run installs it), or dies.
bench_minio() {
	MINIO=${MINIO_BIN:-$(command -v minio || echo "$HOME/go/bin/minio")}
	[[ -x $MINIO ]] || die "no MinIO server (set MINIO_BIN or run .ci/run)"
}

# bench_freeport prints a TCP port on loopback that is free now.
bench_freeport() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_htpasswd USER PASSWORD prints an htpasswd line for rest-server:
# bcrypt at cost 10, as cairn server's, made with python3's crypt.
bench_htpasswd() {
	python3 -W ignore -c 'import crypt, sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))' "$1" "$2"
}

# bench_start_rest_server BIN DIR LOG [ARGS...] runs rest-server BIN on a
# free loopback port, storing in DIR, logging to LOG, with ARGS (e.g.
# --htpasswd-file F, --no-auth); it sets $RS_PID and $RPORT, adds the
# process to PIDS (the script's cleanup) and waits until it answers.
bench_start_rest_server() {
	local bin=$1 dir=$2 logfile=$3
	shift 3
	RPORT=$(bench_freeport)
	"$bin" --path "$dir" --listen "127.0.0.1:$RPORT" "$@" >"$logfile" 2>&1 &
	RS_PID=$!
	PIDS+=("$RS_PID")
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$RPORT/" && return 0
		kill -0 "$RS_PID" 2>/dev/null || break
		sleep 0.1
	done
	die "rest-server did not start: $(tail -3 "$logfile")"
}

# bench_start_minio DIR LOG runs MinIO (bench_minio's) in the background
# on loopback, storing in DIR and logging to LOG, and waits until it
# serves requests; it dies if MinIO never does. It exports the root
# credentials as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and sets
# $MINIO_PID, $MINIO_PORT and $MINIO_ENDPOINT (http://127.0.0.1:PORT).
# Metrics (/minio/v2/metrics/cluster) need no token. Stop it with
# bench_stop_minio, from the script's EXIT trap.
bench_start_minio() {
	local dir=$1 logfile=$2
	[[ -n ${MINIO:-} ]] || bench_minio
	MINIO_PORT=$(bench_freeport)
	MINIO_ENDPOINT=http://127.0.0.1:$MINIO_PORT
	export AWS_ACCESS_KEY_ID=benchroot AWS_SECRET_ACCESS_KEY=benchsecret-0123
	MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
		MINIO_PROMETHEUS_AUTH_TYPE=public \
		"$MINIO" server --quiet --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$(bench_freeport)" "$dir" >"$logfile" 2>&1 &
	MINIO_PID=$!
	local up=
	for _ in $(seq 100); do
		if curl -sf "$MINIO_ENDPOINT/minio/health/ready" >/dev/null 2>&1; then up=1; break; fi
		kill -0 "$MINIO_PID" 2>/dev/null || break
		sleep 0.2
	done
	[[ -n $up ]] || { bench_stop_minio; die "MinIO did not start: $(tail -3 "$logfile")"; }
	sleep 1 # ready answers before the object layer is up
}

# bench_stop_minio stops the MinIO bench_start_minio started, if any.
bench_stop_minio() {
	bench_stop "${MINIO_PID:-}"
	MINIO_PID=
}
