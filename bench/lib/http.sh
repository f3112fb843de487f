# HTTP plaintext (sourced by bench/run.sh): wrk against weft's http_server
# and nginx with one worker, both answering "Hello, World!" to GET /.
# Skipped where a binary is missing.

# nginx_conf DIR [LISTEN_FLAGS HTTP_LINES SERVER_LINES]: a one-worker config
# serving the same response; the TLS section adds "ssl", its protocol and
# cipher lines and the certificate.
nginx_conf() {
    mkdir -p "$1/logs"
    cat >"$1/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/logs/error.log crit;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    default_type text/plain;
    server_tokens off;
${3:-}
    server {
        listen 127.0.0.1:__PORT__ ${2:+$2 }reuseport backlog=1024;
${4:-}
        location / { return 200 "Hello, World!"; }
    }
}
NGINX
}

# proc_tree_cpu PID: CPU ticks of PID and its children.
proc_tree_cpu() {
    for p in $1 $(pgrep -P "$1" 2>/dev/null); do
        sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }'
    done | awk '{ s += $1 } END { print s + 0 }'
}

# wrk_us VALUE: wrk's "12.34us" / "1.2ms" / "1s" in microseconds.
wrk_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6
        else print "-" }'
}

# wrk_measure NAME WRK_COMMAND...: run WRK_COMMAND (output to $TMPD/wrk.out)
# against the server start_server started, then stop it. Sets rps, p99
# (us), scpu and ccpu (pinned: the cores' busy share, softirq included;
# else the server processes' CPU time, ccpu ""), eff (per_core), steal
# (the two cores' steal share, "-" unpinned), and u0 u1
# t0 t1 for cpu_per_req. Returns 1, having said why, without a wrk result.
wrk_measure() {
    name_=$1
    shift
    c0=$(proc_tree_cpu "$SERVER_PID")
    u0=$(proc_ut "$SERVER_PID") t0=$(now_s)
    s0=$(core_ticks "$SERVER_CORE") k0=$(core_ticks "$CLIENT_CORE")
    q0=$(cores_steal "$SERVER_CORE" "$CLIENT_CORE")
    "$@" >"$TMPD/wrk.out" 2>&1 || true
    c1=$(proc_tree_cpu "$SERVER_PID")
    u1=$(proc_ut "$SERVER_PID") t1=$(now_s)
    s1=$(core_ticks "$SERVER_CORE") k1=$(core_ticks "$CLIENT_CORE")
    q1=$(cores_steal "$SERVER_CORE" "$CLIENT_CORE")
    steal=$(core_busy "$q0" "$q1")
    stop_server
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TMPD/wrk.out")
    p99=$(wrk_us "$(sed -n 's/^ *99% *\([0-9.a-z]*\).*/\1/p' "$TMPD/wrk.out")")
    errs=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$TMPD/wrk.out")
    [ -n "$rps" ] || { say "  $name_: no wrk result ($(head -c 200 "$TMPD/wrk.out"))"; return 1; }
    [ -z "$errs" ] || say "  $name_: $errs non-2xx responses"
    ccpu=""
    if [ -n "$SERVER_CORE" ]; then
        scpu=$(core_busy "$s0" "$s1")
        ccpu=$(core_busy "$k0" "$k1")
    else
        scpu=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" -v s="$HTTP_SECS" \
            'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
    fi
    eff=$(per_core "$rps" "$scpu")
}

# rounds FUNC: FUNC with r = 1 .. REPS (a dot per result on stderr), then
# the end of the line of dots.
rounds() {
    r=1
    while [ "$r" -le "$REPS" ]; do
        "$1"
        r=$((r + 1))
    done
    printf '\n' >&2
}

http_servers() {
    [ -x "$B/examples/servers/http/http_server" ] && echo "weft http_server|$B/examples/servers/http/http_server --port" &&
        [ "$BUSY_POLL_US" != 0 ] &&
        echo "weft http_server --busy-poll $BUSY_POLL_US|$B/examples/servers/http/http_server --busy-poll $BUSY_POLL_US --port"
    command -v nginx >/dev/null 2>&1 &&
        echo "nginx (1 worker)|sh bench/lib/nginx-run.sh $TMPD/nginx --port"
    return 0
}

run_http() {
    if ! command -v wrk >/dev/null 2>&1; then
        say "  http: wrk is not installed, skipped"
        return 0
    fi
    mkdir -p "$TMPD/nginx"
    nginx_conf "$TMPD/nginx"
    rounds http_round
}

# http_round: round $r of run_http (rounds).
http_round() {
    for conns in 64 512; do
        http_servers | while IFS='|' read -r name cmd; do
            # shellcheck disable=SC2086
            start_server $cmd || continue
            # shellcheck disable=SC2086
            wrk_measure "$name" $PIN_CLIENT wrk -t1 -c"$conns" -d"${HTTP_SECS}s" --latency \
                "http://127.0.0.1:$PORT/" || continue
            # shellcheck disable=SC2046
            record http "wrk-c$conns" "$name" "$r" "$rps" "$p99" "$ccpu" "$scpu" "$eff" \
                $(cpu_per_req "$u0" "$u1" "$(reqs_over "$rps" "$t0" "$t1")") "$steal"
            printf '.' >&2
        done
    done
    # weft-load, unpipelined and 16 deep (TechEmpower's plaintext test
    # pipelines 16): it needs less CPU per request than wrk (section
    # "load client"), so the servers, not the client, set the pace.
    for pipe in 1 16; do
        http_servers | while IFS='|' read -r name cmd; do
            # shellcheck disable=SC2086
            start_server $cmd || continue
            load_record http "weft-load-p$pipe-c64" "$name" "$r" -c 64 -p "$pipe" \
                -d "$HTTP_SECS" -w 0.5 --request 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' \
                --expect 'HTTP/1.1 200' || true
            stop_server
            printf '.' >&2
        done
    done
}
