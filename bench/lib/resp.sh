# RESP (sourced by bench/run.sh): redis-benchmark PING, SET, GET, without
# pipelining and with -P 16, against weft's resp_server and redis-server.
# Skipped where a binary is missing.

resp_servers() {
    [ -x "$B/examples/servers/resp/resp_server" ] && echo "weft resp_server|$B/examples/servers/resp/resp_server --port" &&
        [ "$BUSY_POLL_US" != 0 ] &&
        echo "weft resp_server --busy-poll $BUSY_POLL_US|$B/examples/servers/resp/resp_server --busy-poll $BUSY_POLL_US --port"
    command -v redis-server >/dev/null 2>&1 &&
        echo "redis-server|redis-server --save 86400 1000000000 --appendonly no --dir $TMPD --port"
    return 0
}

run_resp() {
    if ! command -v redis-benchmark >/dev/null 2>&1; then
        say "  resp: redis-benchmark is not installed, skipped"
        return 0
    fi
    r=1
    while [ "$r" -le "$REPS" ]; do
        for pipe in 1 16; do
            resp_servers | while IFS='|' read -r name cmd; do
                # shellcheck disable=SC2086
                start_server $cmd || continue
                n=$RESP_N
                [ "$pipe" = 1 ] || n=$((RESP_N * 5))
                # One test per redis-benchmark run, so that the cores' busy
                # share belongs to that test.
                for t in ping_inline ping_mbulk set get; do
                    s0=$(core_ticks "$SERVER_CORE") k0=$(core_ticks "$CLIENT_CORE")
                    q0=$(cores_steal "$SERVER_CORE" "$CLIENT_CORE")
                    u0=$(proc_ut "$SERVER_PID")
                    $PIN_CLIENT redis-benchmark -p "$PORT" -c 50 -n "$n" -P "$pipe" \
                        -t "$t" --csv -q >"$TMPD/rb.out" 2>&1 || true
                    u1=$(proc_ut "$SERVER_PID")
                    s1=$(core_ticks "$SERVER_CORE") k1=$(core_ticks "$CLIENT_CORE")
                    q1=$(cores_steal "$SERVER_CORE" "$CLIENT_CORE")
                    scpu="" ccpu=""
                    if [ -n "$SERVER_CORE" ]; then
                        scpu=$(core_busy "$s0" "$s1")
                        ccpu=$(core_busy "$k0" "$k1")
                    fi
                    # "PING_INLINE","123456.79","0.207",...,"p99",... (redis 7's
                    # columns: test, rps, avg, min, p50, p95, p99, max)
                    tr -d '"' <"$TMPD/rb.out" | awk -F, -v p="$pipe" 'NF >= 7 && $2 + 0 > 0 {
                        print $1 "-P" p "\t" $2 "\t" $7 * 1000 }' |
                        while IFS="$(printf '\t')" read -r test rps p99; do
                            # One test per run: its n requests.
                            # shellcheck disable=SC2046
                            record resp "$test" "$name" "$r" "$rps" "$p99" "$ccpu" "$scpu" \
                                "$(per_core "$rps" "$scpu")" $(cpu_per_req "$u0" "$u1" "$n") \
                                "$(core_busy "$q0" "$q1")"
                        done
                done
                stop_server
                printf '.' >&2
            done
        done
        # The same servers under weft-load, which drives them harder than
        # redis-benchmark (section "load client"): SET then GET of one key,
        # unpipelined and 16 deep. Responses have a fixed length.
        resp_servers | while IFS='|' read -r name cmd; do
            # shellcheck disable=SC2086
            start_server $cmd || continue
            for spec in 'SET|*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nval\r\n|5' \
                'GET|*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n|9'; do
                cmdname=${spec%%|*} rest=${spec#*|}
                req=${rest%|*} rlen=${rest##*|}
                for pipe in 1 16; do
                    load_record resp "weft-load-$cmdname-P$pipe" "$name" "$r" -c 50 -p "$pipe" \
                        -d "$HTTP_SECS" -w 0.3 --request "$req" --response-len "$rlen" || true
                done
            done
            stop_server
            printf '.' >&2
        done
        r=$((r + 1))
    done
    printf '\n' >&2
}
