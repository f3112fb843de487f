# RESP (sourced by bench/run.sh): redis-benchmark PING, SET, GET, without
# pipelining and with -P 16, against weft's resp_server and redis-server.
# Skipped where a binary is missing.

resp_servers() {
    [ -x "$B/examples/resp_server" ] && echo "weft resp_server|$B/examples/resp_server --port"
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
                $PIN_CLIENT redis-benchmark -p "$PORT" -c 50 -n "$n" -P "$pipe" \
                    -t ping,set,get --csv -q >"$TMPD/rb.out" 2>&1 || true
                stop_server
                # "PING_INLINE","123456.79","0.207",...,"p99",... (redis 7's columns:
                # test, rps, avg, min, p50, p95, p99, max)
                tr -d '"' <"$TMPD/rb.out" | awk -F, -v p="$pipe" 'NF >= 7 && $2 + 0 > 0 {
                    print $1 "-P" p "\t" $2 "\t" $7 * 1000 }' |
                    while IFS="$(printf '\t')" read -r test rps p99; do
                        record resp "$test" "$name" "$r" "$rps" "$p99" "" "" ""
                    done
                printf '.' >&2
            done
        done
        r=$((r + 1))
    done
    printf '\n' >&2
}
