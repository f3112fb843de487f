#!/bin/sh
# User-space instructions per echo message of a server, under callgrind:
# the server runs under `valgrind --tool=callgrind` twice, echoing N1 and
# then N2 messages (weft-load -n, 64 connections, 64 B, no warm-up), and
# (Ir(N2) - Ir(N1)) / (N2 - N1) cancels start-up and exit. Instruction
# counts do not depend on the machine's load, unlike times.
#   count_msg_insns.sh WEFT_LOAD SERVER [SERVER ARGS...]
# N1, N2, CONNS, SIZE, PORT from the environment (20000, 60000, 64, 64,
# 24517): the server is started with --port PORT.
set -eu
load=$1
shift
n1=${N1:-20000}
n2=${N2:-60000}
tmp=$(mktemp -d)
pid=""
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# ir N: instructions of the server run echoing N messages.
ir() {
    : >"$tmp/err"
    port=${PORT:-24517}
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$@" --port "$port" \
        >/dev/null 2>"$tmp/err" &
    pid=$!
    if ss -Hltn "sport = :$port" | grep -q .; then
        echo "port $port is taken: set PORT" >&2
        exit 1
    fi
    i=0
    until ss -Hltn "sport = :$port" | grep -q .; do
        i=$((i + 1))
        if [ $i -ge 200 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "server did not start" >&2
            cat "$tmp/err" >&2
            exit 1
        fi
        sleep 0.05
    done
    out=$("$load" --port "$port" -c "${CONNS:-64}" -s "${SIZE:-64}" -n "$N" -w 0 --json)
    got=$(printf '%s\n' "$out" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
    [ "$got" = "$N" ] || { echo "weft-load: $got of $N requests" >&2; exit 1; }
    kill -TERM "$pid"
    # valgrind keeps signals blocked in io_uring_enter with EXT_ARG and
    # looks for pending ones every ~100,000 basic blocks: 100 messages at a
    # time until it does (a few hundred messages at most, the same in both
    # runs on average: under 1 % of N2 - N1).
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
        timeout 2 "$load" --port "$port" -c 1 -n 100 -w 0 >/dev/null 2>&1 || true
        i=$((i + 1))
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
    pid=""
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$tmp/err"
}
N=$n1
a=$(ir "$@")
N=$n2
b=$(ir "$@")
awk -v a="$a" -v b="$b" -v d="$((n2 - n1))" 'BEGIN { printf "%.1f\n", (b - a) / d }'
