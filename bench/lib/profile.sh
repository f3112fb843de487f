# Where the time goes (sourced by bench/run.sh): system calls and context
# switches per echoed message on the server, counted with perf's tracepoints
# (no hardware counters needed) while weft-load runs 64 B echo.

PROFILE_SERVERS="weft-cb io_uring|$PEERS/weft_echo_cb --backend io_uring --port
weft-cb epoll|$PEERS/weft_echo_cb --backend epoll --port
weft-task io_uring|$PEERS/weft_echo_task --backend io_uring --port
libuv|$PEERS/libuv_echo --port"

run_profile() {
    if ! perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
        say "  profile: perf tracepoints unavailable, skipped"
        return 0
    fi
    for conns in 64 512; do
        printf '%s\n' "$PROFILE_SERVERS" | while IFS='|' read -r name cmd; do
            # shellcheck disable=SC2086
            start_server $cmd || continue
            secs=$ECHO_SECS
            perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,context-switches \
                -p "$SERVER_PID" -o "$TMPD/perf.out" -- sleep "$(awk -v s="$secs" -v w="$ECHO_WARMUP" \
                'BEGIN { print s + w + 0.3 }')" &
            perfpid=$!
            out=$($PIN_CLIENT "$LOAD" --port "$PORT" -c "$conns" -s 64 -d "$secs" -w "$ECHO_WARMUP" \
                --json --label "$name" --server-pid "$SERVER_PID" 2>/dev/null) || true
            wait "$perfpid" 2>/dev/null || true
            stop_server
            # perf counted over warm-up + run: scale by all the messages sent then.
            rps=$(printf '%s\n' "$out" | json_field rps)
            [ -n "$rps" ] || continue
            msgs=$(awk -v r="$rps" -v s="$secs" -v w="$ECHO_WARMUP" 'BEGIN { print r * (s + w) }')
            sc=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$TMPD/perf.out")
            ue=$(awk -F, '$3 == "syscalls:sys_enter_io_uring_enter" { print $1 }' "$TMPD/perf.out")
            cs=$(awk -F, '$3 == "context-switches" { print $1 }' "$TMPD/perf.out")
            per() { awk -v a="$1" -v m="$msgs" 'BEGIN { if (a == "" || a !~ /^[0-9]/) print "-"; else printf "%.3f", a / m }'; }
            record profile "64B-c$conns" "$name" 1 "$rps" "$(per "$sc")" "$(per "$ue")" "$(per "$cs")" ""
            printf '.' >&2
        done
    done
    printf '\n' >&2
}

profile_table() {
    awk -F'\t' '$1 == "profile" && !seen[$2]++ { print $2 }' "$RAW" | while read -r wl; do
        printf '\n**server system calls per message, echo %s** (perf stat tracepoints; rate approximate: one run)\n\n' "$wl"
        printf '| server | requests/s | syscalls/msg | io_uring_enter/msg | context switches/msg |\n|---|---:|---:|---:|---:|\n'
        awk -F'\t' -v w="$wl" '$1 == "profile" && $2 == w {
            printf "| %s | %.0f | %s | %s | %s |\n", $3, $5, $6, $7, $8 }' "$RAW"
    done
}

# Why HTTP and RESP tie under wrk and redis-benchmark: what the client
# itself does per request, whoever serves. perf stat follows the client
# process (its CPU time includes the softirq work its system calls do).
# If these columns match across servers while the client's core is full,
# the client, not the server, sets the rate.
client_perf() {
    perf stat -x, -e task-clock,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,context-switches \
        -o "$TMPD/perf.out" -- "$@"
}

# client_record WORKLOAD NAME REQUESTS ELAPSED_S: one line from perf.out.
client_record() {
    awk -F, -v wl="$1" -v name="$2" -v n="$3" -v s="$4" '
        $3 == "task-clock" { tc = $1 } $3 == "raw_syscalls:sys_enter" { sc = $1 }
        $3 == "syscalls:sys_enter_epoll_wait" { ew = $1 } $3 == "context-switches" { cs = $1 }
        END { if (n > 0) printf "clientprof\t%s\t%s\t1\t%.0f\t%.2f\t%.2f\t%.3f\t%.4f\n",
            wl, name, n / s, tc * 1000 / n, sc / n, ew / n, cs / n }' "$TMPD/perf.out" >>"$RAW"
}

run_client_profile() {
    mkdir -p "$TMPD/nginx"
    nginx_conf "$TMPD/nginx"
    r=1
    while [ "$r" -le "$PROTO_REPS" ]; do
        command -v wrk >/dev/null 2>&1 && http_servers | while IFS='|' read -r name cmd; do
            # shellcheck disable=SC2086
            start_server $cmd || continue
            client_perf $PIN_CLIENT wrk -t1 -c64 -d"${HTTP_SECS}s" "http://127.0.0.1:$PORT/" \
                >"$TMPD/wrk.out" 2>&1 || true
            stop_server
            n=$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)s.*/\1 \2/p' "$TMPD/wrk.out")
            # shellcheck disable=SC2086
            [ -n "$n" ] && client_record "wrk -t1 -c64" "$name" $n
            printf '.' >&2
        done
        command -v redis-benchmark >/dev/null 2>&1 && resp_servers | while IFS='|' read -r name cmd; do
            # shellcheck disable=SC2086
            start_server $cmd || continue
            t0=$(date +%s.%N)
            client_perf $PIN_CLIENT redis-benchmark -p "$PORT" -c 50 -n "$RESP_N" -t get -q \
                >/dev/null 2>&1 || true
            t1=$(date +%s.%N)
            stop_server
            client_record "redis-benchmark GET -c50" "$name" "$RESP_N" \
                "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
            printf '.' >&2
        done
        r=$((r + 1))
    done
    printf '\n' >&2
}

# The median of each column over the rounds, per server.
client_profile_table() {
    awk -F'\t' '$1 == "clientprof" && !seen[$2]++ { print $2 }' "$RAW" | while read -r wl; do
        printf '\n**client work per request, %s** (perf stat on the client; median of %s runs)\n\n' \
            "$wl" "$PROTO_REPS"
        printf '| server | requests/s | client CPU us/req | client syscalls/req | epoll_wait/req | context switches/req |\n'
        printf '|---|---:|---:|---:|---:|---:|\n'
        awk -F'\t' -v w="$wl" '$1 == "clientprof" && $2 == w && !seen[$3]++ { print $3 }' "$RAW" |
            while read -r name; do
                row="| $name"
                for col in 5 6 7 8 9; do
                    row="$row | $(awk -F'\t' -v w="$wl" -v n="$name" -v c="$col" \
                        '$1 == "clientprof" && $2 == w && $3 == n { print $c }' "$RAW" | median)"
                done
                printf '%s |\n' "$row"
            done
    done
}
