#!/bin/sh
# The example servers stopped under load (issue 15): echo_server,
# http_server and resp_server, on one thread and on two, each first serving
# 32 connections that finish, then busy with 64 when SIGINT (one thread) or
# SIGTERM (two threads) arrives. Each must say it is
# closing, exit 0 within 10 s (a sanitizer report makes it exit non-zero:
# TSan's and ASan's exitcode) and have served requests before the signal.
# Under clang's TSan echo_server used to die here with SEGV.
# usage: shutdown_load.sh WEFT_LOAD ECHO_SERVER HTTP_SERVER RESP_SERVER BACKEND
set -eu
. "$(dirname "$0")/server_port.sh"
load=$1 backend=$5
tmp=$(mktemp -d)
pid="" lpid=""
trap 'kill "$pid" "$lpid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# open_fds PID: how many descriptors the process holds.
open_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# field NAME < JSON: the number after "NAME":
field() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p"; }

# stop_under_load NAME SERVER THREADS [weft-load flags...]
stop_under_load() {
    name=$1 server=$2 threads=$3
    shift 3
    # SIGINT on one thread, SIGTERM on two: every server gets both signals
    # on every backend.
    sig=INT
    [ "$threads" = 1 ] || sig=TERM
    what="$name --threads $threads ($backend)"
    : >"$tmp/server.out"
    "$server" --port 0 --backend "$backend" --threads "$threads" >>"$tmp/server.out" 2>&1 &
    pid=$!
    port=$(server_port "$tmp/server.out") || {
        echo "$what did not start:"
        cat "$tmp/server.out"
        exit 1
    }
    # Connections that come and go first (their tasks finish: before the
    # fix, each finished one unbalanced TSan's shadow stack, and the
    # shutdown's new fibers then crashed it), then ones busy at the signal (0.3 s
    # into a 1 s run without warm-up, once the server holds its
    # connections: its report counts what was served).
    "$load" --port "$port" -c 32 -w 0 -n 2000 "$@" >"$tmp/load.err" 2>&1 || {
        echo "$what: weft-load -n 2000 failed:"
        cat "$tmp/load.err" "$tmp/server.out"
        exit 1
    }
    # The signal waits until the server holds all 64 connections: a fixed
    # delay lost the race to weft-load's start under ASan on a busy machine
    # (the listener was closed before it connected: "Connection refused").
    base=$(open_fds "$pid")
    "$load" --port "$port" -c 64 -w 0 -d 1 --json "$@" >"$tmp/load.json" 2>"$tmp/load.err" &
    lpid=$!
    for _ in $(seq 200); do
        [ "$(open_fds "$pid")" -ge $((base + 64)) ] && break
        sleep 0.05
    done
    sleep 0.3
    if ! kill -"$sig" "$pid" 2>/dev/null; then
        echo "$what: died under load, before SIG$sig:"
        cat "$tmp/server.out"
        exit 1
    fi
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$what: still running 10 s after SIG$sig"
        exit 1
    fi
    rc=0
    wait "$pid" || rc=$?
    pid=""
    wait "$lpid" || true
    lpid=""
    if [ "$rc" != 0 ] || ! grep -q "SIG$sig, closing" "$tmp/server.out"; then
        echo "$what: exit $rc after SIG$sig under load:"
        cat "$tmp/server.out"
        exit 1
    fi
    served=$(field requests <"$tmp/load.json")
    if [ -z "$served" ] || [ "$served" -le 0 ]; then
        echo "$what: no requests served before SIG$sig:"
        cat "$tmp/load.json" "$tmp/load.err"
        exit 1
    fi
    echo "$what: $served requests, then SIG$sig: exit 0"
}

for threads in 1 2; do
    stop_under_load echo_server "$2" "$threads"
    stop_under_load http_server "$3" "$threads" \
        --request 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' --expect 'HTTP/1.1 200'
    # shellcheck disable=SC2016 # RESP's $4: a length, not a variable
    stop_under_load resp_server "$4" "$threads" \
        --request '*1\r\n$4\r\nPING\r\n' --expect '+PONG'
done
echo ok
