#!/bin/sh
# weft-load end to end, against examples/echo_server and http_server:
# exact request counts (-n) in both send modes, pipelined, two threads, and
# request mode; the failure paths: nothing listening (exit 1), and the
# server dying mid-run (errors counted, the run still ends on time; also
# with a count that can never be reached); the io_uring worker the same way.
# usage: weft_load.sh WEFT_LOAD ECHO_SERVER HTTP_SERVER
set -eu
. "$(dirname "$0")/e2e_servers.sh"
load=$1 echo_server=$2 http_server=$3

# expect_run DESCRIPTION REQUESTS weft-load-flags...: exactly REQUESTS done, no errors.
expect_run() {
    what=$1 want=$2
    shift 2
    out=$("$load" --port "$port" --json -w 0.1 "$@")
    got=$(printf '%s\n' "$out" | field requests)
    errs=$(printf '%s\n' "$out" | field errors)
    p99=$(printf '%s\n' "$out" | field p99_us)
    [ "$got" = "$want" ] || { echo "$what: $got requests, want $want: $out"; exit 1; }
    [ "$errs" = 0 ] || { echo "$what: $errs errors: $out"; exit 1; }
    awk -v p="$p99" 'BEGIN { exit !(p > 0) }' || { echo "$what: no latency: $out"; exit 1; }
    echo "ok: $what"
}

start echo "$echo_server"
expect_run "echo, batched sends" 20000 -n 20000 -c 8 -s 100
expect_run "echo, interleaved sends" 20000 -n 20000 -c 8 -s 100 --interleave
expect_run "echo, pipelined 8 deep" 20000 -n 20000 -c 4 -s 64 -p 8
expect_run "echo, 16 KiB messages" 500 -n 500 -c 4 -s 16384
expect_run "echo, two threads" 20000 -n 20000 -c 8 -t 2

start http "$http_server"
expect_run "http, marker" 5000 -n 5000 -c 4 -p 4 \
    --request 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' --expect 'HTTP/1.1 200'
# The same server busy-polling (--busy-poll: the loop spins before it sleeps).
start http_spin "$http_server --busy-poll 200"
expect_run "http, busy-polling server" 5000 -n 5000 -c 4 -p 1 \
    --request 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' --expect 'HTTP/1.1 200'

# Nothing listening: a clear failure, not a hang.
if "$load" --port 1 -d 0.2 -w 0 >"$tmp/refused.out" 2>&1; then
    echo "weft-load against a closed port must fail"
    exit 1
fi
echo "ok: refused"

# The server dies mid-run: every connection is counted lost, and the
# measured run still ends after its duration.
start victim "$echo_server"
(sleep 0.5 && kill -9 "$pid") &
start_s=$(date +%s)
out=$("$load" --port "$port" --json -c 4 -d 1.5 -w 0 || true)
[ $(($(date +%s) - start_s)) -le 5 ] || { echo "the run did not end on time"; exit 1; }
errs=$(printf '%s\n' "$out" | field errors)
[ "${errs:-0}" -ge 1 ] || { echo "server killed: errors not counted: $out"; exit 1; }
echo "ok: server killed mid-run ($errs connections lost)"

# The same with a request count that can never be reached: the run ends
# once every connection is lost, with exit status 1.
start victim2 "$echo_server"
(sleep 0.5 && kill -9 "$pid") &
start_s=$(date +%s)
rc=0
out=$("$load" --port "$port" --json -c 4 -n 1000000000 -w 0) || rc=$?
[ $(($(date +%s) - start_s)) -le 5 ] || { echo "-n run did not end when all were lost"; exit 1; }
[ "$rc" = 1 ] || { echo "-n run with every connection lost: exit $rc, want 1"; exit 1; }
echo "ok: -n run ends when every connection is lost"

# A run whose requests are never answered (a request line without its
# blank line: the server waits for the rest) leaves weft-load nothing to
# do. It must sleep: its main thread once spun after the first second when
# stdout was not a terminal, taking the workers' core.
start silent "$http_server"
"$load" --port "$port" --json -c 2 -d 2.5 -w 0 --request 'GET / HTTP/1.1\r\n' \
    --expect 'HTTP/1.1 200' >"$tmp/silent.out" 2>&1 &
lpid=$!
sleep 2.2
# utime + stime in clock ticks: fields 14 and 15 of /proc/PID/stat, $12 and
# $13 once everything up to the command name is cut.
ticks=$(sed 's/.*) //' "/proc/$lpid/stat" | awk '{ print $12 + $13 }')
[ -n "$ticks" ] || { echo "weft-load ended before its duration:"; cat "$tmp/silent.out"; exit 1; }
hz=$(getconf CLK_TCK)
wait "$lpid" || true
awk -v t="$ticks" -v hz="$hz" 'BEGIN { exit !(t < 0.4 * hz) }' ||
    { echo "weft-load used $ticks/$hz s of CPU in 2.2 s of an idle run"; exit 1; }
echo "ok: an idle run sleeps ($ticks ticks of CPU)"

# The io_uring worker (--uring), where weft-load was built with liburing
# and the kernel gives a ring: the same exact counts, and a lost server.
start uring "$echo_server"
if "$load" --uring -h >/dev/null 2>&1; then
    expect_run "io_uring, echo" 20000 -n 20000 -c 8 -s 100 --uring
    expect_run "io_uring, pipelined 8 deep" 20000 -n 20000 -c 4 -s 64 -p 8 --uring
    expect_run "io_uring, 16 KiB messages" 500 -n 500 -c 4 -s 16384 --uring
    expect_run "io_uring, two threads" 20000 -n 20000 -c 8 -t 2 --uring
    # More data in flight (4 x 8 x 64 KiB) than provided buffers (64 x 16
    # KiB): the multishot receives end with ENOBUFS and are armed again.
    expect_run "io_uring, out of provided buffers" 2000 -n 2000 -c 4 -s 65536 -p 8 --uring
    # Kernels before 6.0 have no multishot receive: one recv per response.
    WEFT_LOAD_SINGLESHOT=1 expect_run "io_uring, single-shot receives" 20000 -n 20000 -c 8 \
        -s 100 -p 2 --uring
    (sleep 0.5 && kill -9 "$pid") &
    rc=0
    out=$("$load" --port "$port" --json --uring -c 4 -n 1000000000 -w 0) || rc=$?
    [ "$rc" = 1 ] || { echo "io_uring -n run with every connection lost: exit $rc, want 1"; exit 1; }
    echo "ok: io_uring, server killed mid-run"
    start uring_http "$http_server"
    expect_run "io_uring, http marker" 5000 -n 5000 -c 4 -p 4 --uring \
        --request 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' --expect 'HTTP/1.1 200'
else
    echo "skip: weft-load built without io_uring"
fi
