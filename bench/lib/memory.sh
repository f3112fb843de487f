# Memory at scale (sourced by bench/run.sh): hold MEM_CONNS idle
# connections on a server and report its RSS growth per connection
# (VmRSS from /proc before and after; the connections never send).

# rss_kb PID: VmRSS in KiB.
rss_kb() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }

# fd_count PID: open descriptors of PID.
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# mem_one NAME CONNS CMD...: one measurement; appends to RAW.
mem_one() {
    name=$1 conns=$2
    shift 2
    start_server "$@" || return 0
    sleep 0.2
    rss0=$(rss_kb "$SERVER_PID")
    fd0=$(fd_count "$SERVER_PID")
    # Spread over source addresses: one address has ~28k ephemeral ports,
    # and earlier runs leave theirs in TIME_WAIT.
    srcs=$((conns / 5000 + 2))
    $PIN_CLIENT "$LOAD" --port "$PORT" -c "$conns" --source-ips "$srcs" --hold 600 \
        >"$TMPD/hold.out" 2>"$TMPD/hold.err" &
    client=$!
    i=0
    while [ $i -lt 1200 ]; do # 120 s at most
        grep -q '^held' "$TMPD/hold.out" 2>/dev/null && [ "$(fd_count "$SERVER_PID")" -ge $((fd0 + conns)) ] && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    if grep -q '^held' "$TMPD/hold.out"; then
        sleep 0.5
        rss1=$(rss_kb "$SERVER_PID")
        per=$(awk -v a="$rss0" -v b="$rss1" -v n="$conns" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
        record memory "idle-$conns" "$name" 1 "$per" "" "" "$rss0" "$rss1"
        printf '  %-20s %7s connections: RSS %s -> %s KiB, %s bytes per connection\n' \
            "$name" "$conns" "$rss0" "$rss1" "$per" >&2
    else
        say "  $name: could not hold $conns connections ($(head -c 300 "$TMPD/hold.err"))"
    fi
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    stop_server
}

MEM_SERVERS="weft-task io_uring|$PEERS/weft_echo_task --backend io_uring --port
weft-task epoll|$PEERS/weft_echo_task --backend epoll --port
weft echo_server io_uring|$B/examples/servers/echo/echo_server --backend io_uring --port
weft-cb io_uring|$PEERS/weft_echo_cb --backend io_uring --port
weft-cb epoll|$PEERS/weft_echo_cb --backend epoll --port
libuv|$PEERS/libuv_echo --port
libev|$PEERS/libev_echo --port
libevent|$PEERS/libevent_echo --port"

# run_memory: MEM_CONNS on every server; 100,000 as well on weft and libuv
# when MEM_BIG=1 and the descriptor limit can be raised that far.
run_memory() {
    printf '%s\n' "$MEM_SERVERS" | while IFS='|' read -r name cmd; do
        # shellcheck disable=SC2086
        [ -x "${cmd%% *}" ] && mem_one "$name" "$MEM_CONNS" $cmd
    done
    [ "${MEM_BIG:-0}" = 1 ] || return 0
    # Both sides need 100k descriptors: raise the limit for this subshell.
    if (ulimit -n 110000) 2>/dev/null; then
        (
            ulimit -n 110000
            printf '%s\n' "$MEM_SERVERS" | grep -E '^(weft-task io_uring|weft-cb io_uring|libuv)\|' |
                while IFS='|' read -r name cmd; do
                    # shellcheck disable=SC2086
                    [ -x "${cmd%% *}" ] && mem_one "$name" 100000 $cmd
                done
        )
    else
        say "  100,000 connections: skipped (RLIMIT_NOFILE $(ulimit -Hn) and cannot raise it)"
    fi
}

# memory_table: RSS per connection for each count.
memory_table() {
    awk -F'\t' '$1 == "memory" && !seen[$2]++ { print $2 }' "$RAW" | while read -r wl; do
        printf '\n**memory %s** (server RSS growth / connections)\n\n' "$wl"
        printf '| server | bytes per connection | RSS before KiB | RSS after KiB |\n|---|---:|---:|---:|\n'
        awk -F'\t' -v w="$wl" '$1 == "memory" && $2 == w {
            printf "| %s | %s | %s | %s |\n", $3, $5, $8, $9 }' "$RAW"
    done
}
