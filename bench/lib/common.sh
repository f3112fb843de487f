# Shared by bench/run.sh and bench/lib/*.sh (sourced, POSIX sh): where the
# binaries are, CPU pinning, starting and stopping servers, medians.

B=${B:-build-release}
LOAD="$B/tools/weft-load"
PEERS="$B/bench/peers"

# weft-load's flags for the echo runs: io_uring when it was built with it
# (one system call per batch: the cheapest client, whose ceiling the
# servers then reach later; bench/RESULTS.md "load client").
load_uring_flag() {
    if "$LOAD" --uring -h >/dev/null 2>&1; then echo --uring; fi
}

# Server on CPU 0, client on CPU 1 when there are two CPUs or more (PIN=0:
# neither pinned, for a server on several threads).
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    PIN_SERVER="taskset -c 0"
    PIN_CLIENT="taskset -c 1"
    SERVER_CORE=0
    CLIENT_CORE=1
else
    PIN_SERVER=""
    PIN_CLIENT=""
    SERVER_CORE=""
    CLIENT_CORE=""
fi

# Each server start takes a new port: an io_uring server's listener can
# outlive the process for a moment (the ring is torn down asynchronously).
# The counter lives in a file: the loops that start servers run in subshells.
PORT_BASE=${PORT_BASE:-17100}
SERVER_PID=""
PORT=""

say() { printf '%s\n' "$*" >&2; }

# wait_port PORT: until something listens on 127.0.0.1:PORT (5 s at most).
wait_port() {
    i=0
    while [ $i -lt 100 ]; do
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# start_server CMD...: start CMD (its flags end with --port, which we add)
# pinned to the server CPU; sets SERVER_PID and PORT. 1 if it did not listen.
start_server() {
    PORT=$(cat "$TMPD/port" 2>/dev/null || echo "$PORT_BASE")
    # Skip a port something else listens on (another bench run on the
    # machine): wait_port would take its listener for ours.
    while ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; do PORT=$((PORT + 1)); done
    echo $((PORT + 1)) >"$TMPD/port"
    # shellcheck disable=SC2086
    $PIN_SERVER "$@" "$PORT" >/dev/null 2>"$TMPD/server.err" &
    SERVER_PID=$!
    if ! wait_port "$PORT"; then
        say "  server did not start: $* $PORT ($(head -c 300 "$TMPD/server.err"))"
        stop_server
        return 1
    fi
    return 0
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# How busy the pinned cores were over a run, from /proc/stat: softirq
# included, where loopback TCP does much of its work outside any process's
# CPU time. SERVER_CORE and CLIENT_CORE are the pinned CPUs ("" unpinned).
# core_ticks N: "busy total" jiffies of CPU N (busy: all but idle, iowait).
core_ticks() {
    [ -n "$1" ] || { echo "0 0"; return 0; }
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t }' \
        /proc/stat
}

# cores_steal N M: "steal total" jiffies of CPUs N and M together. Steal is
# time the hypervisor gave to other guests while these virtual CPUs wanted
# to run: on a shared VM a disturbed run shows here ("0 0" unpinned).
cores_steal() {
    [ -n "$1" ] || { echo "0 0"; return 0; }
    awk -v a="cpu$1" -v b="cpu$2" '$1 == a || $1 == b {
        for (i = 2; i <= 9; i++) t += $i; s += $9 } END { print s + 0, t + 0 }' /proc/stat
}

# core_busy "BEFORE" "AFTER": percent of the interval the core was busy, or "-".
# (Also the steal share, from two cores_steal readings.)
core_busy() {
    printf '%s %s\n' "$1" "$2" | awk '{ if ($4 > $2) printf "%.1f", ($3 - $1) * 100 / ($4 - $2); else print "-" }'
}

# per_core RPS BUSY: requests per second of a fully busy core, or "".
per_core() {
    awk -v r="$1" -v b="$2" 'BEGIN { if (b != "-" && b + 0 > 0 && r != "") printf "%.0f", r / (b / 100) }'
}

# The server's own CPU time per request, split user / system, from
# /proc/PID/stat (utime, stime) of the server and its children (nginx's
# worker) before and after a run. The kernel counts them in ticks
# (getconf CLK_TCK, 100 a second here): over a run of R requests the
# resolution is 1e9 / CLK_TCK / R ns, about 30 ns for 300,000 requests.
# proc_ut PID: "utime stime" ticks of PID and its descendants.
proc_ut() {
    for p in $1 $(pgrep -P "$1" 2>/dev/null) $(for c in $(pgrep -P "$1" 2>/dev/null); do
        pgrep -P "$c" 2>/dev/null; done); do
        sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12, $13 }'
    done | awk '{ u += $1; s += $2 } END { print u + 0, s + 0 }'
}

# now_s: wall-clock seconds (fractional).
now_s() { date +%s.%N; }

# reqs_over RPS T0 T1: requests made from T0 to T1 at RPS (the warm-up
# included, as in the CPU times), "" when RPS is missing.
reqs_over() {
    awk -v r="$1" -v a="$2" -v b="$3" 'BEGIN { if (r != "" && r + 0 > 0) printf "%.0f", r * (b - a) }'
}

# cpu_per_req "U0 S0" "U1 S1" REQUESTS: "user_ns sys_ns" per request ("- -"
# without requests).
cpu_per_req() {
    printf '%s %s %s\n' "$1" "$2" "$3" | awk -v hz="$(getconf CLK_TCK)" '{
        if ($5 == "" || $5 + 0 <= 0) { print "- -"; exit }
        printf "%.0f %.0f\n", ($3 - $1) * 1e9 / hz / $5, ($4 - $2) * 1e9 / hz / $5 }'
}

# load_record SECTION WORKLOAD NAME ROUND WEFT-LOAD-FLAGS...: one weft-load
# run against the server on $PORT with both cores' busy share; its report
# goes to JSONL, its numbers to RAW. 1 when weft-load gave no result.
load_record() {
    sec=$1 wl=$2 name=$3 round=$4
    shift 4
    s0=$(core_ticks "$SERVER_CORE") k0=$(core_ticks "$CLIENT_CORE")
    q0=$(cores_steal "$SERVER_CORE" "$CLIENT_CORE")
    u0=$(proc_ut "$SERVER_PID") t0=$(now_s)
    # shellcheck disable=SC2086
    out=$($PIN_CLIENT "$LOAD" ${LOAD_FLAGS:-} --port "$PORT" --json --label "$name" "$@" \
        2>"$TMPD/load.err") || true
    u1=$(proc_ut "$SERVER_PID") t1=$(now_s)
    s1=$(core_ticks "$SERVER_CORE") k1=$(core_ticks "$CLIENT_CORE")
    q1=$(cores_steal "$SERVER_CORE" "$CLIENT_CORE")
    printf '%s\n' "$out" >>"${JSONL:-/dev/null}"
    rps=$(printf '%s\n' "$out" | json_field rps)
    [ -n "$rps" ] || { say "  $name: no weft-load result ($(head -c 200 "$TMPD/load.err"))"; return 1; }
    scpu=$(core_busy "$s0" "$s1")
    # shellcheck disable=SC2046
    record "$sec" "$wl" "$name" "$round" "$rps" "$(printf '%s\n' "$out" | json_field p99_us)" \
        "$(core_busy "$k0" "$k1")" "$scpu" "$(per_core "$rps" "$scpu")" \
        $(cpu_per_req "$u0" "$u1" "$(reqs_over "$rps" "$t0" "$t1")") "$(core_busy "$q0" "$q1")"
}

# json_field NAME < one JSON object line: the number after "NAME":
json_field() {
    sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p"
}

# median: the median of the numbers on stdin (one per line), "-" if none.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Where each measurement goes: one tab-separated line per run
#   section workload server rep rps p99_us client_core% server_core% rps_per_server_core
#   server_user_ns_per_request server_sys_ns_per_request steal% (both pinned cores)
RAW=${RAW:-/dev/null}
record() {
    {
        printf '%s' "$1"
        shift
        for f in "$@"; do printf '\t%s' "$f"; done
        printf '\n'
    } >>"$RAW"
}
