#!/bin/sh
# The example servers built for Windows (mingw) run under wine and answer
# real Linux clients over loopback: curl (byte-exact GET, keep-alive),
# weft-load (exact request counts, no errors: echo, HTTP, RESP, a server on
# two threads sharing one listener), the native echo_client, redis-cli
# (PING / SET / GET); and the other way round, echo_client.exe under wine
# talks to the native echo_server. Then each server is stopped the way
# Ctrl-C stops it:
# wine turns SIGINT into CTRL_C_EVENT for the console control handler, so
# this checks the graceful path (the "closing" line, exit status 0, with
# live connections closed within the grace period).
#
# usage: e2e.sh HTTP_SERVER.exe ECHO_SERVER.exe RESP_SERVER.exe ECHO_CLIENT.exe
#               [NATIVE_BUILD]
# NATIVE_BUILD: a native (Linux) build directory of weft: its tools/weft-load,
# examples/servers/echo/echo_client and echo_server are the Linux peers;
# without it those checks are skipped with a line saying so. WINE: the wine
# binary (default /usr/lib/wine/wine64).
set -eu
. "$(dirname "$0")/../server_port.sh"
http_server=$1 echo_server=$2 resp_server=$3 echo_client_exe=$4 native=${5:-}
wine=${WINE:-/usr/lib/wine/wine64}
export WINEDEBUG=-all
tmp=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
# Killed (meson's timeout sends SIGTERM): exit, so that the EXIT trap
# still ends the servers under wine.
trap 'exit 1' INT TERM HUP PIPE

load="" echo_client="" native_echo=""
if [ -n "$native" ] && [ -x "$native/tools/weft-load" ]; then
    load=$native/tools/weft-load
else
    echo "SKIP: weft-load checks: no native build with tools/weft-load given (-Dnative_build=DIR)"
fi
if [ -n "$native" ] && [ -x "$native/examples/servers/echo/echo_client" ]; then
    echo_client=$native/examples/servers/echo/echo_client
else
    echo "SKIP: echo_client check: no native build with echo_client given"
fi
if [ -n "$native" ] && [ -x "$native/examples/servers/echo/echo_server" ]; then
    native_echo=$native/examples/servers/echo/echo_server
else
    echo "SKIP: echo_client.exe check: no native build with echo_server given"
fi

fail() {
    echo "FAIL: $*"
    for f in "$tmp"/*.out; do
        [ -s "$f" ] && echo "---- $f" && tail -n 20 "$f"
    done
    exit 1
}

# start NAME EXE [FLAGS]: run EXE under wine (a native one as it is) on an
# ephemeral port; its port in $port, the process in $pid (wine's first
# start in a fresh prefix takes ~10 s, hence the repeated waits).
start() {
    name=$1
    shift
    : >"$tmp/$name.out"
    case "$1" in
    *.exe) set -- "$wine" "$@" ;;
    esac
    "$@" --port 0 >>"$tmp/$name.out" 2>&1 &
    pid=$!
    pids="$pids $pid"
    for _ in 1 2 3 4 5 6; do
        port=$(server_port "$tmp/$name.out") && return 0
        kill -0 "$pid" 2>/dev/null || break
    done
    fail "$name did not start"
}

# field NAME < JSON: the number after "NAME":
field() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p"; }

# expect_load DESCRIPTION PORT REQUESTS weft-load-flags...: exactly
# REQUESTS answered, no errors.
expect_load() {
    what=$1 p=$2 want=$3
    shift 3
    if [ -z "$load" ]; then
        echo "skip: $what (no weft-load)"
        return 0
    fi
    out=$("$load" --port "$p" --json -w 0.1 "$@" 2>&1) || fail "$what: weft-load: $out"
    got=$(printf '%s\n' "$out" | field requests)
    errs=$(printf '%s\n' "$out" | field errors)
    [ "$got" = "$want" ] || fail "$what: $got requests, want $want: $out"
    [ "$errs" = 0 ] || fail "$what: $errs errors: $out"
    echo "ok: $what ($(printf '%s\n' "$out" | field rps) requests/s)"
}

# stop NAME PID GRACE_S [MIN_S]: SIGINT (wine: CTRL_C_EVENT), then the
# server must print its closing line and exit with status 0 within
# GRACE_S + 10 s, and not before MIN_S s (a server holding live connections
# gives them their grace period).
stop() {
    name=$1 p=$2 limit=$(($3 + 10)) min=${4:-0}
    t0=$(date +%s)
    kill -INT "$p"
    while kill -0 "$p" 2>/dev/null; do
        [ $(($(date +%s) - t0)) -le "$limit" ] || fail "$name: still running $limit s after Ctrl-C"
        sleep 0.1
    done
    rc=0
    wait "$p" || rc=$?
    grep -q "Ctrl-C, closing" "$tmp/$name.out" || fail "$name: no 'Ctrl-C, closing' line"
    [ "$rc" = 0 ] || fail "$name: exit status $rc after Ctrl-C"
    took=$(($(date +%s) - t0))
    [ "$took" -ge "$min" ] || fail "$name: exited after $took s, before its live connections' grace"
    echo "ok: $name: Ctrl-C, closed gracefully, exit 0 ($took s)"
}

start http "$http_server"
http_port=$port http_pid=$pid
start echo "$echo_server"
echo_port=$port echo_pid=$pid
start resp "$resp_server"
resp_port=$port resp_pid=$pid
start http2 "$http_server" --threads 2
http2_port=$port http2_pid=$pid
grep -q 'iocp' "$tmp/http.out" || fail "http_server does not run on iocp: $(cat "$tmp/http.out")"
echo "ok: four servers listening under wine ($(head -n 1 "$tmp/http.out" | tr -d '\r'))"

# curl: one GET, byte-exact body and the head's fields; then two GETs on
# one kept-alive connection.
if command -v curl >/dev/null 2>&1; then
    day0=$(LC_ALL=C date -u '+%a, %d %b %Y')
    code=$(curl -sS --max-time 10 -D "$tmp/head" -o "$tmp/body" -w '%{http_code}' \
        "http://127.0.0.1:$http_port/") || fail "curl GET"
    [ "$code" = 200 ] || fail "curl GET: status $code"
    printf 'Hello, World!' | cmp -s - "$tmp/body" || fail "curl GET: body '$(cat "$tmp/body")'"
    printf 'Hello, World!Hello, World!' >"$tmp/body"
    tr -d '\r' <"$tmp/head" | grep -q '^Content-Length: 13$' || fail "curl GET: head $(cat "$tmp/head")"
    tr -d '\r' <"$tmp/head" | grep -q '^Server: weft$' || fail "curl GET: head $(cat "$tmp/head")"
    # The Date field, from gmtime_s on Windows: today (the day the request
    # began or ended), in the RFC 9110 format.
    day1=$(LC_ALL=C date -u '+%a, %d %b %Y')
    tr -d '\r' <"$tmp/head" |
        grep -qE "^Date: ($day0|$day1) [0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT\$" ||
        fail "curl GET: Date field: $(cat "$tmp/head")"
    echo "ok: curl GET: 200, body 'Hello, World!' byte for byte, today's Date"
    conns=$(curl -sS --max-time 10 -o "$tmp/body_a" -o "$tmp/body_b" -w '%{num_connects} ' \
        "http://127.0.0.1:$http_port/a" "http://127.0.0.1:$http_port/b") || fail "curl keep-alive"
    cat "$tmp/body_a" "$tmp/body_b" | cmp -s - "$tmp/body" || fail "curl keep-alive: bodies"
    [ "$conns" = "1 0 " ] || fail "curl keep-alive: connections made per request: $conns"
    echo "ok: curl: two GETs on one kept-alive connection"
else
    echo "SKIP: curl checks: curl is not installed (apt-get install curl)"
fi

req='GET / HTTP/1.1\r\nHost: x\r\n\r\n'
expect_load "http, weft-load pipelined" "$http_port" 4000 -n 4000 -c 4 -p 4 \
    --request "$req" --expect 'HTTP/1.1 200'
expect_load "http on two threads, one shared listener" "$http2_port" 4000 -n 4000 -c 8 \
    --request "$req" --expect 'HTTP/1.1 200'
expect_load "echo, 100 B messages" "$echo_port" 4000 -n 4000 -c 8 -s 100
expect_load "echo, 16 KiB messages" "$echo_port" 200 -n 200 -c 4 -s 16384
expect_load "echo, pipelined 8 deep" "$echo_port" 4000 -n 4000 -c 4 -s 64 -p 8
expect_load "resp, PING" "$resp_port" 4000 -n 4000 -c 4 -p 4 \
    --request '*1\r\n$4\r\nPING\r\n' --expect '+PONG'

if [ -n "$echo_client" ]; then
    out=$("$echo_client" --port "$echo_port" --message 'weft under wine' 2>&1) ||
        fail "echo_client: $out"
    [ "$out" = "received: weft under wine" ] || fail "echo_client: $out"
    out=$("$echo_client" --port "$echo_port" --size 1000000 --connections 4 2>&1) ||
        fail "echo_client 4 x 1 MB: $out"
    echo "ok: echo_client: a message, and 4 x 1 MB at once ($out)"
fi

# The other way round: the Windows client (ConnectEx, a writer and a reader
# task per connection) against the Linux server.
if [ -n "$native_echo" ]; then
    start native_echo "$native_echo"
    native_pid=$pid
    out=$("$wine" "$echo_client_exe" --port "$port" --message 'from wine' 2>&1 | tr -d '\r') ||
        fail "echo_client.exe: $out"
    [ "$out" = "received: from wine" ] || fail "echo_client.exe: $out"
    out=$("$wine" "$echo_client_exe" --port "$port" --size 1000000 --connections 4 2>&1 |
        tr -d '\r') || fail "echo_client.exe 4 x 1 MB: $out"
    [ "$out" = "echo_client: 4 ok, 0 failed" ] || fail "echo_client.exe 4 x 1 MB: $out"
    kill "$native_pid"
    echo "ok: echo_client.exe under wine against the native echo_server ($out)"
fi

if command -v redis-cli >/dev/null 2>&1; then
    rcli() { redis-cli -p "$resp_port" "$@" 2>&1 | tr -d '\r'; }
    [ "$(rcli PING)" = PONG ] || fail "redis-cli PING: $(rcli PING)"
    [ "$(rcli SET weft 'under wine')" = OK ] || fail "redis-cli SET"
    [ "$(rcli GET weft)" = "under wine" ] || fail "redis-cli GET: $(rcli GET weft)"
    [ "$(rcli DEL weft)" = 1 ] || fail "redis-cli DEL"
    echo "ok: redis-cli PING, SET, GET, DEL"
else
    echo "SKIP: redis-cli checks: redis-cli is not installed (apt-get install redis-tools)"
fi

# Ctrl-C with live connections. Connections that spoke and stay open
# (each sent a byte, got its echo, and waits) are handlers at work: echo
# gives them its grace period (2 s) before it closes them. Connections that
# never spoke (weft-load --hold) have no handler yet and no request: http
# closes them at once, without waiting out its grace.
spoke=0
if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(4)]
for c in conns:
    c.sendall(b"x")
    assert c.recv(1) == b"x"
time.sleep(30)' "$echo_port" >"$tmp/hold-echo.log" 2>&1 &
    pids="$pids $!"
    spoke=1
fi
if [ -n "$load" ]; then
    "$load" --port "$http_port" -c 4 --hold 30 >"$tmp/hold-http.log" 2>&1 &
    pids="$pids $!"
fi
sleep 1
if [ "$spoke" = 1 ]; then
    stop echo "$echo_pid" 2 1
else
    stop echo "$echo_pid" 2
fi
stop http "$http_pid" 1
stop resp "$resp_pid" 1
stop http2 "$http2_pid" 1
# After the stop nothing listens there any more.
if command -v curl >/dev/null 2>&1 &&
    curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$http_port/" 2>/dev/null; then
    fail "http_server still answers after Ctrl-C"
fi
echo "ok: all servers stopped"
