# Sourced by the end-to-end scripts that start several servers and read a
# tool's JSON (weft_load.sh, weft_soak.sh). Sets $tmp, a directory removed
# at exit, and $pids, the servers started, killed at exit.
. "$(dirname "$0")/server_port.sh"
tmp=$(mktemp -d)
pids=""
pid=""
# $pid too: a server that did not start is not in $pids yet.
trap 'for p in $pids $pid; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

# start NAME "BINARY [FLAGS]": start_server with its output in
# $tmp/NAME.out; its pid in $pid (and $pids), its port in $port.
start() {
    # shellcheck disable=SC2086
    start_server "$tmp/$1.out" "" $2
    pids="$pids $pid"
}

# field NAME < JSON: the value after "NAME": (a number, or a string's
# letters without its quotes).
field() { sed -n "s/.*\"$1\":\"*\([-+0-9.a-zA-Z]*\).*/\1/p"; }
