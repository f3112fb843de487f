#!/bin/sh
# weft-soak end to end: a short churn against echo_server and http_server
# passes with every byte verified and every kind of end used; the failure
# paths fail (exit 1) with the right counter: the wrong protocol or body
# (mismatch), nothing listening (connect), the server killed mid-run
# (ended early); bad flags exit 2.
# usage: weft_soak.sh WEFT_SOAK ECHO_SERVER HTTP_SERVER
set -eu
. "$(dirname "$0")/e2e_servers.sh"
soak=$1 echo_server=$2 http_server=$3

fail() { echo "FAILED: $*"; exit 1; }

# run WANT_STATUS FLAGS...: weft-soak's JSON in $out, its status checked.
run() {
    want=$1
    shift
    st=0
    out=$("$soak" --json "$@") || st=$?
    echo "weft-soak $*: status $st: $out"
    [ "$st" = "$want" ] || fail "status $st, want $want"
}

start echo "$echo_server"
echo_port=$port
run 0 --port "$echo_port" -c 100 -d 1.5 -r 4 -s 3000
for f in closed half_closed reset mid_reset requests; do
    [ "$(printf '%s' "$out" | field $f)" -gt 0 ] || fail "no $f"
done
[ "$(printf '%s' "$out" | field verdict)" = PASS ] || fail "verdict"
# With pauses between requests (connections thinking on the timer wheel).
run 0 --port "$echo_port" -c 200 -d 1 -r 4 -s 100 --think 100
[ "$(printf '%s' "$out" | field requests)" -gt 200 ] || fail "thinking: too few requests"

start http "$http_server"
http_port=$port
run 0 --port "$http_port" --http "Hello, World!" -c 50 -d 1 -r 3
[ "$(printf '%s' "$out" | field requests)" -gt 0 ] || fail "no http request"

# The wrong protocol, the wrong body: mismatches.
run 1 --port "$echo_port" --http "Hello, World!" -c 5 -d 0.5 --stall 2
[ "$(printf '%s' "$out" | field mismatch)" -gt 0 ] || fail "http against echo: no mismatch"
run 1 --port "$http_port" --http "Hello, Moon!!" -c 5 -d 0.5 --stall 2
[ "$(printf '%s' "$out" | field mismatch)" -gt 0 ] || fail "wrong body: no mismatch"

# Nothing listening.
kill "$pid"
wait "$pid" 2>/dev/null || true
run 1 --port "$http_port" -c 5 -d 0.3 --stall 2
[ "$(printf '%s' "$out" | field connect_err)" -gt 0 ] || fail "no connect error"

# The server killed mid-run: connections end early (or fail to connect).
( sleep 0.5; kill -9 "$(printf '%s' "$pids" | awk '{print $1}')" ) &
run 1 --port "$echo_port" -c 50 -d 1.5 --stall 2
early=$(printf '%s' "$out" | field early_end)
[ "$early" -gt 0 ] || fail "server killed: nothing ended early"

run 2 --port 0
run 2 --reset 60 --eof 60
run 2 --think 5000
echo "weft-soak: all checks passed"
