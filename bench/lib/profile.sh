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
