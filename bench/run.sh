#!/bin/sh
# What `./dev bench` runs: every benchmark, side by side with its peers,
# from the release build (build-release/). Writes bench/results/<date>.md
# (tables), <date>.tsv (every run), <date>.jsonl (weft-load's reports) and
# <date>.png (the plot). Flags:
#   --quick        a short version (under 2 minutes)
#   --only LIST    sections to run, comma-separated:
#                  echo,profile,memory,http,tls,resp,client,micro (all by default),
#                  soak (only when named: 10,000 connections churning for
#                  60 s on each backend, PASS/FAIL per server; bench/lib/soak.sh)
#   --json         the microbenchmarks print JSON lines instead of tables
#   --tag NAME     name the results <date>-NAME (a partial run then leaves
#                  the day's full results alone)
#   --wine         the echo section also runs weft_echo_cb.exe and
#                  weft_echo_task.exe (IOCP) from the Windows release build
#                  BW (default build-release-win64) under wine ($WINE,
#                  default /usr/lib/wine/wine64): wine's figures, not Windows'
# Environment: REPS (echo rounds), PROTO_REPS (HTTP/RESP rounds), ECHO_SECS
# (seconds per echo run), ECHO_ONLY (echo server names, space-separated),
# ECHO_EXTRA (more echo servers, "name|command ending in --port" per line),
# LOAD_FLAGS (weft-load's flags in the echo, HTTP and RESP sections;
# default --uring where built with it, "" for epoll), MEM_CONNS (idle connections), MEM_BIG=0 (skip
# 100,000), CLIENT_SECS and
# RESP_CLIENT_N (the load-client runs), BUSY_POLL_US (the HTTP and RESP
# servers also run with --busy-poll this many us; default 50, --quick 0 =
# not run), SOAK_CONNS, SOAK_SECS, SOAK_SAMPLE (seconds between printed samples),
# SOAK_THINK (ms of pause at most between a connection's requests),
# SOAK_SIZE (echo: bytes per request at most, default 4096),
# SOAK_HTTP=0 (echo_server only), SOAK_ONLY (server names, as ECHO_ONLY), B (build dir),
# PIN=0 (no pinning: a multi-threaded server then shares the cores with the client),
# STEAL_MAX (the tables' medians leave out runs whose steal %, the
# hypervisor's share of the two pinned cores, was above it).
set -eu
cd "$(dirname "$0")/.."
QUICK=0
ECHO_EXTRA=${ECHO_EXTRA:-}
JSON=""
ONLY="echo,profile,memory,http,tls,resp,client,micro"
NAME_TAG=""
WINE_ECHO=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --json) JSON=--json ;;
    --only) ONLY=$2; shift ;;
    --tag) NAME_TAG=$2; shift ;;
    --wine) WINE_ECHO=1 ;;
    *) echo "bench/run.sh: unknown flag $1" >&2; exit 2 ;;
    esac
    shift
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

B=${B:-build-release}
if [ ! -f "$B/build.ninja" ]; then
    meson setup "$B" -Dbuildtype=release -Db_ndebug=true -Dtests=false >/dev/null
fi
ninja -C "$B" >/dev/null

if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1}
    ECHO_SECS=${ECHO_SECS:-1}
    ECHO_WARMUP=${ECHO_WARMUP:-0.3}
    ECHO_ONLY=${ECHO_ONLY:-"libuv raw io_uring raw epoll weft-cb io_uring weft-cb epoll weft-task io_uring weft-task epoll weft-cb kqueue (libkqueue over epoll)"}
    ECHO_WORKLOADS="64B-c64 64 64
64B-c512 512 64"
    PROTO_REPS=${PROTO_REPS:-1}
    MEM_CONNS=${MEM_CONNS:-2000}
    MEM_BIG=${MEM_BIG:-0}
    MEM_QUICK=1
    HTTP_SECS=${HTTP_SECS:-1}
    RESP_N=${RESP_N:-50000}
    CLIENT_SECS=${CLIENT_SECS:-1}
    RESP_CLIENT_N=${RESP_CLIENT_N:-50000}
    BUSY_POLL_US=${BUSY_POLL_US:-0}
    SOAK_CONNS=${SOAK_CONNS:-2000}
    SOAK_SECS=${SOAK_SECS:-10}
    SOAK_SAMPLE=${SOAK_SAMPLE:-2}
    TAG=$(date +%Y-%m-%d)-quick
else
    REPS=${REPS:-5}
    ECHO_SECS=${ECHO_SECS:-1.5}
    ECHO_WARMUP=${ECHO_WARMUP:-0.5}
    ECHO_ONLY=${ECHO_ONLY:-}
    PROTO_REPS=${PROTO_REPS:-3}
    MEM_CONNS=${MEM_CONNS:-10000}
    MEM_BIG=${MEM_BIG:-1}
    MEM_QUICK=0
    HTTP_SECS=${HTTP_SECS:-4}
    RESP_N=${RESP_N:-200000}
    CLIENT_SECS=${CLIENT_SECS:-2}
    RESP_CLIENT_N=${RESP_CLIENT_N:-100000}
    SOAK_CONNS=${SOAK_CONNS:-10000}
    SOAK_SECS=${SOAK_SECS:-60}
    SOAK_SAMPLE=${SOAK_SAMPLE:-5}
    TAG=$(date +%Y-%m-%d)
fi
[ -z "$NAME_TAG" ] || TAG="$TAG-$NAME_TAG"
if [ "$WINE_ECHO" = 1 ]; then
    BW=${BW:-build-release-win64}
    WINE=${WINE:-/usr/lib/wine/wine64}
    export WINEDEBUG=-all
    for p in weft_echo_cb weft_echo_task; do
        [ -f "$BW/bench/peers/$p.exe" ] || { echo "bench/run.sh --wine: no $BW/bench/peers/$p.exe" >&2; exit 1; }
    done
    # Start the wineserver (and see that IOCP works) before the first run.
    WINE_IOCP=$("$WINE" "$BW/tools/weft-info.exe" 2>&1 | tr -d '\r' | grep '^iocp' || true)
    ECHO_EXTRA="${ECHO_EXTRA:+$ECHO_EXTRA
}weft-cb iocp (wine)|$WINE $BW/bench/peers/weft_echo_cb.exe --backend iocp --port
weft-task iocp (wine)|$WINE $BW/bench/peers/weft_echo_task.exe --backend iocp --port"
fi
export B REPS PROTO_REPS ECHO_SECS ECHO_WARMUP ECHO_ONLY ECHO_EXTRA MEM_CONNS MEM_BIG HTTP_SECS RESP_N
BUSY_POLL_US=${BUSY_POLL_US:-50}
export CLIENT_SECS RESP_CLIENT_N BUSY_POLL_US

TMPD=$(mktemp -d)
RESULTS=bench/results
mkdir -p "$RESULTS"
OUT="$RESULTS/$TAG.md"
RAW="$RESULTS/$TAG.tsv"
JSONL="$RESULTS/$TAG.jsonl"
: >"$RAW"
: >"$JSONL"
. bench/lib/common.sh
. bench/lib/echo.sh
. bench/lib/table.sh
. bench/lib/profile.sh
. bench/lib/memory.sh
. bench/lib/http.sh
. bench/lib/tls.sh
. bench/lib/resp.sh
. bench/lib/client.sh
. bench/lib/soak.sh
[ "${LOAD_FLAGS-auto}" != auto ] || LOAD_FLAGS=$(load_uring_flag)
. bench/lib/plot.sh
cleanup() {
    stop_server
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# out TEXT...: to the terminal and the results file.
out() { printf '%s\n' "$*" | tee -a "$OUT"; }

start=$(date +%s)
{
    printf '# weft benchmarks, %s\n\n' "$(date '+%Y-%m-%d %H:%M')"
    printf -- '- machine: %s CPUs (%s), Linux %s\n' "$(nproc)" \
        "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" "$(uname -r)"
    printf -- '- weft %s, build %s; server pinned with "%s", client with "%s"\n' \
        "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$B" "$PIN_SERVER" "$PIN_CLIENT"
    printf -- '- %s rounds (A B A B ...), %s s per echo run after %s s warm-up; weft-load client: %s\n' \
        "$REPS" "$ECHO_SECS" "$ECHO_WARMUP" "${LOAD_FLAGS:-(epoll)}"
    if [ "$WINE_ECHO" = 1 ]; then
        printf -- '- wine rows: %s running %s (mingw-w64 %s); weft-info.exe: %s.\n' \
            "$("$WINE" --version 2>/dev/null)" "$BW" "$(x86_64-w64-mingw32-gcc -dumpversion 2>/dev/null)" \
            "$(printf '%s' "$WINE_IOCP" | tr -s ' ')"
        printf '  Wine figures on Linux, not Windows ones: wine carries socket I/O through wineserver\n'
    fi
    printf -- '- load average at start: %s (other work on the machine makes runs noisy;\n' \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '  the core columns show how busy each pinned core was, softirq included)\n'
} | tee "$OUT"

if want echo; then
    say "== echo: $(echo_servers | wc -l) servers x $(printf '%s\n' "$ECHO_WORKLOADS" |
        wc -l) workloads x $REPS rounds"
    run_echo
    out ""
    out "## echo (weft-load, requests/s = messages echoed per second)"
    table echo libuv "echo" | tee -a "$OUT"
fi

if want profile; then
    say "== profile: system calls per message (perf tracepoints)"
    run_profile
    profile_table | tee -a "$OUT"
    if perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
        say "== profile: the HTTP and RESP clients' work per request"
        run_client_profile
        client_profile_table | tee -a "$OUT"
    fi
fi

if want memory; then
    say "== memory: $MEM_CONNS idle connections per server"
    if [ "$MEM_QUICK" = 1 ]; then
        MEM_SERVERS=$(printf '%s\n' "$MEM_SERVERS" | grep -E '^(weft-task io_uring|weft-cb io_uring|libuv)\|')
    fi
    run_memory
    out ""
    out "## memory (idle connections held by weft-load --hold; RSS from /proc/<pid>/status)"
    memory_table | tee -a "$OUT"
fi

if want http; then
    say "== http: wrk against $(http_servers | cut -d'|' -f1 | paste -sd, -)"
    REPS=$PROTO_REPS run_http
    if grep -q '^http' "$RAW"; then
        out ""
        out "## http (wrk -t1; weft-load unpipelined and -p 16; GET / answered with \"Hello, World!\")"
        table http "nginx (1 worker)" "http" | tee -a "$OUT"
    fi
fi

if want tls; then
    say "== tls: wrk over https against $(tls_servers | cut -d'|' -f1 | paste -sd, -)"
    REPS=$PROTO_REPS run_tls
    if grep -q '^tls' "$RAW"; then
        out ""
        out "## tls (wrk -t1 over https, TLS 1.3 TLS_AES_128_GCM_SHA256, one ECDSA P-256 certificate; handshake: Connection: close, requests/s = full handshakes/s)"
        table tls "nginx (1 worker)" "tls" | tee -a "$OUT"
    fi
fi

if want resp; then
    say "== resp: redis-benchmark against $(resp_servers | cut -d'|' -f1 | paste -sd, -)"
    REPS=$PROTO_REPS run_resp
    if grep -q '^resp' "$RAW"; then
        out ""
        out "## resp (redis-benchmark -c 50, -n $RESP_N unpipelined, 5x that with -P 16; then weft-load -c 50)"
        table resp redis-server "resp" | tee -a "$OUT"
    fi
fi

if want client; then
    say "== client: is the load client the bottleneck? (libuv echo, nginx, redis-server)"
    mkdir -p "$TMPD/nginx"
    nginx_conf "$TMPD/nginx"
    REPS=$PROTO_REPS run_client
    if grep -q '^client' "$RAW"; then
        out ""
        out "## load client (one server, its clients in turn; core busy from /proc/stat, softirq included)"
        REPS=$PROTO_REPS client_table | tee -a "$OUT"
    fi
fi

if want soak; then
    say "== soak: $SOAK_CONNS connections churning for $SOAK_SECS s per server"
    run_soak
    out ""
    out "## soak ($SOAK_CONNS connections churning for $SOAK_SECS s: 1..8 requests each (echo: 1..${SOAK_SIZE:-4096} bytes) with pauses of 0..${SOAK_THINK:-3000} ms, then close, half-close, reset or reset mid-request; every byte verified by weft-soak; the server's /proc/PID/fd and VmRSS)"
    out ""
    soak_table | tee -a "$OUT"
fi

if want micro; then
    B_MICRO="$B/bench"
    micro() {
        title=$1
        shift
        [ -n "$JSON" ] || printf '\n## %s\n\n```\n' "$title" | tee -a "$OUT"
        "$@" $JSON | tee -a "$OUT"
        [ -n "$JSON" ] || printf '```\n' | tee -a "$OUT"
    }
    if [ "$QUICK" = 1 ]; then
        micro "timers (weft vs libuv)" "$B_MICRO/timers" --reps 3 --n 200000 --spread 100
        micro "tasks vs plain callbacks" "$B_MICRO/tasks" --reps 3 --n 200000
    else
        micro "timers (weft vs libuv)" "$B_MICRO/timers" --reps 5
        micro "tasks vs plain callbacks" "$B_MICRO/tasks" --reps 5
        micro "context switch (weft vs boost fcontext vs ucontext)" "$B_MICRO/switch"
    fi
fi

make_plot "$RESULTS/$TAG.png"
[ -f "$RESULTS/$TAG.png" ] && out "" && out "![plot]($TAG.png)"
out ""
out "(total $(($(date +%s) - start)) s; every run: $RAW; weft-load reports: $JSONL)"
exit 0
