# Is the load client the bottleneck? (sourced by bench/run.sh, after
# http.sh). One server per target, several clients against it in turn
# (A B C A B C ...): weft-load in its two send modes and pipelined, and the
# standard client of that protocol (wrk, redis-benchmark). For each run:
# requests/s and how busy each CPU core was (/proc/stat, softirq included:
# loopback TCP does much of its work there, outside any process's CPU
# time). A core at ~100 % is saturated; the side whose core is not is
# waiting for the other.

# client_run TARGET CLIENT CMD...: run CMD (pinned to the client core),
# which prints "rps p99_us" on its last line; record it with both cores'
# busy percentages and the client core's microseconds per request.
client_run() {
    target=$1 cname=$2
    shift 2
    s0=$(core_ticks "$SERVER_CORE") k0=$(core_ticks "$CLIENT_CORE")
    line=$("$@" 2>"$TMPD/client.err" | tail -1) || true
    s1=$(core_ticks "$SERVER_CORE") k1=$(core_ticks "$CLIENT_CORE")
    rps=${line%% *}
    [ -n "$rps" ] && [ "$rps" != "$line" ] || {
        say "  $target / $cname: no result ($(head -c 200 "$TMPD/client.err"))"
        return 0
    }
    p99=${line#* }
    sb=$(core_busy "$s0" "$s1")
    cb=$(core_busy "$k0" "$k1")
    us=$(awk -v b="$cb" -v r="$rps" 'BEGIN { if (b != "-" && r > 0) printf "%.2f", b / 100 * 1e6 / r; else print "-" }')
    record client "$target" "$cname" "$CLIENT_ROUND" "$rps" "$p99" "$cb" "$sb" "$us"
    printf '.' >&2
}

# The clients, each printing "rps p99_us".
wl_client() { # weft-load flags...
    # shellcheck disable=SC2086
    $PIN_CLIENT "$LOAD" --port "$PORT" -d "$CLIENT_SECS" -w 0.3 --json "$@" |
        awk '{ r = $0; p = $0; sub(/.*"rps":/, "", r); sub(/,.*/, "", r)
               sub(/.*"p99_us":/, "", p); sub(/,.*/, "", p); print r, p }'
}
wrk_client() { # connections
    $PIN_CLIENT wrk -t1 -c"$1" -d"${CLIENT_SECS}s" --latency "http://127.0.0.1:$PORT/" >"$TMPD/wrk.out" 2>&1
    printf '%s %s\n' "$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TMPD/wrk.out")" \
        "$(wrk_us "$(sed -n 's/^ *99% *\([0-9.a-z]*\).*/\1/p' "$TMPD/wrk.out")")"
}
rb_client() { # pipeline requests
    $PIN_CLIENT redis-benchmark -p "$PORT" -c 50 -P "$1" -n "$2" -t ping_mbulk --csv -q 2>&1 |
        tr -d '"' | awk -F, 'NF >= 7 && $2 + 0 > 0 { print $2, $7 * 1000 }'
}

HTTP_REQ='GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'
PING_REQ='*1\r\n$4\r\nPING\r\n'

run_client() {
    if [ -z "$PIN_CLIENT" ]; then
        say "  client: needs two CPUs (server and client pinned apart), skipped"
        return 0
    fi
    CLIENT_ROUND=1
    while [ "$CLIENT_ROUND" -le "$REPS" ]; do
        t="echo libuv 64B c64"
        if start_server "$PEERS/libuv_echo" --port; then
            client_run "$t" "weft-load" wl_client -c 64 -s 64
            client_run "$t" "weft-load --interleave" wl_client -c 64 -s 64 --interleave
            client_run "$t" "weft-load -p 16" wl_client -c 64 -s 64 -p 16
            [ -z "$(load_uring_flag)" ] || client_run "$t" "weft-load --uring" wl_client -c 64 -s 64 --uring
            stop_server
        fi
        t="http nginx c64"
        if command -v nginx >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1 &&
            start_server sh bench/lib/nginx-run.sh "$TMPD/nginx" --port; then
            client_run "$t" "wrk -t1" wrk_client 64
            client_run "$t" "weft-load" wl_client -c 64 --request "$HTTP_REQ" --expect 'HTTP/1.1 200'
            client_run "$t" "weft-load --interleave" wl_client -c 64 --request "$HTTP_REQ" \
                --expect 'HTTP/1.1 200' --interleave
            client_run "$t" "weft-load -p 16" wl_client -c 64 -p 16 --request "$HTTP_REQ" \
                --expect 'HTTP/1.1 200'
            [ -z "$(load_uring_flag)" ] || client_run "$t" "weft-load --uring" wl_client -c 64 \
                --request "$HTTP_REQ" --expect 'HTTP/1.1 200' --uring
            stop_server
        fi
        t="resp redis-server PING c50"
        if command -v redis-benchmark >/dev/null 2>&1 &&
            start_server redis-server --save '' --appendonly no --dir "$TMPD" --port; then
            client_run "$t" "redis-benchmark" rb_client 1 "$RESP_CLIENT_N"
            client_run "$t" "weft-load" wl_client -c 50 --request "$PING_REQ" --expect '+PONG'
            [ -z "$(load_uring_flag)" ] || client_run "$t" "weft-load --uring" wl_client -c 50 \
                --request "$PING_REQ" --expect '+PONG' --uring
            client_run "$t" "redis-benchmark -P 16" rb_client 16 $((RESP_CLIENT_N * 10))
            client_run "$t" "weft-load -p 16" wl_client -c 50 -p 16 --request "$PING_REQ" \
                --expect '+PONG'
            stop_server
        fi
        CLIENT_ROUND=$((CLIENT_ROUND + 1))
    done
    printf '\n' >&2
}

# client_table: per target, the medians of each client's runs.
client_table() {
    awk -F'\t' '$1 == "client" && !seen[$2]++ { print $2 }' "$RAW" | while read -r wl; do
        printf '\n**%s** (median of %s rounds)\n\n' "$wl" "$REPS"
        printf '| client | requests/s | p99 us | server core busy %% | client core busy %% | client core us/request |\n'
        printf '|---|---:|---:|---:|---:|---:|\n'
        awk -F'\t' -v w="$wl" '$1 == "client" && $2 == w && !seen[$3]++ { print $3 }' "$RAW" |
            while IFS= read -r c; do
                printf '| %s | %s | %s | %s | %s | %s |\n' "$c" "$(fmt0 "$(col client "$wl" "$c" 5)")" \
                    "$(col client "$wl" "$c" 6)" "$(col client "$wl" "$c" 8)" \
                    "$(col client "$wl" "$c" 7)" "$(col client "$wl" "$c" 9)"
            done
    done
}
