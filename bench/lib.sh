# bench/lib.sh: what the benchmarks share; sourced, not run.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_workdir                  # $work, removed at exit with the server
#   go build -o "$work/cairn" ./cmd/cairn
#   bench_start_server --max-upload 1GiB   # sets $server_pid and $addr

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

# bench_minio sets $MINIO to the MinIO server binary ($MINIO_BIN, minio on
# PATH, or ~/go/bin/minio where .ci/run installs it), or dies.
bench_minio() {
	MINIO=${MINIO_BIN:-$(command -v minio || echo "$HOME/go/bin/minio")}
	[[ -x $MINIO ]] || die "no MinIO server (set MINIO_BIN or run .ci/run)"
}
