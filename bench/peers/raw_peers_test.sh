#!/bin/sh
# The limit references end to end: each raw peer (raw_uring_echo also with
# RAW_URING_FALLBACK=1, its fallbacks: plain ring, single accepts,
# single-shot recv), or with --multi weft_echo_multi on each backend named,
# echoes an exact count of 64 B messages over 64
# connections; survives a client killed with 256 KiB messages in flight
# (SIGPIPE, buffers given back); then echoes 1 MiB messages exactly. About
# 2 s per server (weft-load checks a count once a second).
# usage: raw_peers_test.sh WEFT_LOAD RAW_EPOLL_ECHO [RAW_URING_ECHO]
#        raw_peers_test.sh WEFT_LOAD --multi WEFT_ECHO_MULTI BACKEND...
set -eu
. "$(dirname "$0")/../../tests/server_port.sh"
load=$1
shift
tmp=$(mktemp -d)
pid=""
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

# exact PORT CONNS SIZE N: N echoes, none lost.
exact() {
    out=$("$load" --port "$1" -c "$2" -s "$3" -n "$4" -w 0 --json)
    got=$(printf '%s\n' "$out" | field requests)
    errs=$(printf '%s\n' "$out" | field errors)
    if [ "$got" != "$4" ] || [ "$errs" != 0 ]; then
        echo "FAIL: -c $2 -s $3 -n $4: $got requests, $errs errors"
        exit 1
    fi
}

# check NAME ENV BINARY [ARGS...]
check() {
    name=$1 envv=$2
    shift 2
    : >"$tmp/out"
    env "$envv" "$@" --port 0 2>"$tmp/out" &
    pid=$!
    port=$(server_port "$tmp/out") || { echo "FAIL: $name did not start"; cat "$tmp/out"; exit 1; }
    exact "$port" 64 64 20000
    # A client killed with its messages in flight: the server's sends fail.
    "$load" --port "$port" -c 32 -s 262144 -d 10 -w 0 >/dev/null 2>&1 &
    k=$!
    sleep 0.3
    kill -9 "$k"
    wait "$k" 2>/dev/null || true
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: $name died with its client"; cat "$tmp/out"; exit 1; }
    exact "$port" 2 1048576 20
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
    echo "ok: $name ($(grep -v '^listening' "$tmp/out" | tr '\n' ' '))"
}

if [ "$1" = --multi ]; then
    bin=$2
    shift 2
    for b in "$@"; do
        check "weft_echo_multi $b" "X=0" "$bin" --backend "$b"
    done
    exit 0
fi
check raw_epoll_echo "X=0" "$1"
if [ -n "${2:-}" ]; then
    check raw_uring_echo "X=0" "$2"
    check "raw_uring_echo fallbacks" "RAW_URING_FALLBACK=1" "$2"
fi
