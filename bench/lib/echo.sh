# The echo workloads (sourced by bench/run.sh): every server in turn, A B A B,
# REPS rounds; one weft-load run per (round, workload, server).

# The servers: "name|command line without the port value" (the command
# ends with --port). Only those whose binary exists are kept. "raw io_uring"
# and "raw epoll" are the limit references (bench/peers/raw_*_echo.c):
# minimal servers with no library, what each backend allows at best. The kqueue rows
# come from BK (build-release-kqueue, where ./dev bench could build
# libkqueue): kqueue emulated over epoll, a number to watch, not a peer.
# weft-multi is callback style on weft's multishot recv and provided
# buffers (bench/peers/weft_echo_multi.c), raw io_uring's design.
echo_servers() {
    for s in \
        "libuv|$PEERS/libuv_echo --port" \
        "libev|$PEERS/libev_echo --port" \
        "libevent|$PEERS/libevent_echo --port" \
        "raw io_uring|$PEERS/raw_uring_echo --port" \
        "raw epoll|$PEERS/raw_epoll_echo --port" \
        "weft-cb io_uring|$PEERS/weft_echo_cb --backend io_uring --port" \
        "weft-cb epoll|$PEERS/weft_echo_cb --backend epoll --port" \
        "weft-cb poll|$PEERS/weft_echo_cb --backend poll --port" \
        "weft-multi io_uring|$PEERS/weft_echo_multi --backend io_uring --port" \
        "weft-multi epoll|$PEERS/weft_echo_multi --backend epoll --port" \
        "weft-task io_uring|$PEERS/weft_echo_task --backend io_uring --port" \
        "weft-task epoll|$PEERS/weft_echo_task --backend epoll --port" \
        "weft-task poll|$PEERS/weft_echo_task --backend poll --port" \
        "weft echo_server io_uring|$B/examples/servers/echo/echo_server --backend io_uring --port" \
        "weft-cb kqueue (libkqueue over epoll)|${BK:-/nonexistent}/bench/peers/weft_echo_cb --backend kqueue --port" \
        "weft-task kqueue (libkqueue over epoll)|${BK:-/nonexistent}/bench/peers/weft_echo_task --backend kqueue --port"; do
        bin=${s#*|}
        bin=${bin%% *}
        case " $ECHO_ONLY " in
        "  ") ;;
        *" ${s%%|*} "*) ;;
        *) continue ;;
        esac
        [ -x "$bin" ] && printf '%s\n' "$s"
    done
    # ECHO_EXTRA: more "name|command" lines, e.g. another build's peers, to
    # compare two versions of weft in one interleaved run.
    [ -z "${ECHO_EXTRA:-}" ] || printf '%s\n' "$ECHO_EXTRA"
}

# echo_run WORKLOAD CONNS SIZE: one measurement of every server; appends
# to RAW and prints a dot per run.
echo_round() {
    wl=$1 conns=$2 size=$3 rep=$4
    echo_servers | while IFS='|' read -r name cmd; do
        # shellcheck disable=SC2086
        start_server $cmd || continue
        s0=$(core_ticks "$SERVER_CORE") k0=$(core_ticks "$CLIENT_CORE")
        q0=$(cores_steal "$SERVER_CORE" "$CLIENT_CORE")
        u0=$(proc_ut "$SERVER_PID") t0=$(now_s)
        # shellcheck disable=SC2086
        out=$($PIN_CLIENT "$LOAD" $LOAD_FLAGS --port "$PORT" -c "$conns" -s "$size" -d "$ECHO_SECS" \
            -w "$ECHO_WARMUP" --json --label "$name" --server-pid "$SERVER_PID" 2>"$TMPD/load.err") || true
        u1=$(proc_ut "$SERVER_PID") t1=$(now_s)
        s1=$(core_ticks "$SERVER_CORE") k1=$(core_ticks "$CLIENT_CORE")
        q1=$(cores_steal "$SERVER_CORE" "$CLIENT_CORE")
        stop_server
        printf '%s\n' "$out" >>"${JSONL:-/dev/null}"
        rps=$(printf '%s\n' "$out" | json_field rps)
        p99=$(printf '%s\n' "$out" | json_field p99_us)
        # The cores' busy share over the whole run (warm-up included: the
        # load is the same throughout); without pinning, the processes' own.
        if [ -n "$SERVER_CORE" ]; then
            cpu=$(core_busy "$k0" "$k1")
            scpu=$(core_busy "$s0" "$s1")
            percpu=$(per_core "$rps" "$scpu")
        else
            cpu=$(printf '%s\n' "$out" | json_field client_cpu_pct)
            scpu=$(printf '%s\n' "$out" | json_field server_cpu_pct)
            percpu=$(printf '%s\n' "$out" | json_field rps_per_server_cpu)
        fi
        [ -n "$rps" ] || { say "  $name: no result ($(head -c 200 "$TMPD/load.err"))"; continue; }
        # shellcheck disable=SC2046
        record echo "$wl" "$name" "$rep" "$rps" "$p99" "$cpu" "$scpu" "$percpu" \
            $(cpu_per_req "$u0" "$u1" "$(reqs_over "$rps" "$t0" "$t1")") "$(core_busy "$q0" "$q1")"
        printf '.' >&2
    done
}

# The workloads: name conns size.
ECHO_WORKLOADS=${ECHO_WORKLOADS:-"64B-c1 1 64
64B-c64 64 64
64B-c512 512 64
16KiB-c64 64 16384
64KiB-c64 64 65536"}

run_echo() {
    r=1
    while [ $r -le "$REPS" ]; do
        printf '%s\n' "$ECHO_WORKLOADS" | while read -r wl conns size; do
            [ -n "$wl" ] || continue
            echo_round "$wl" "$conns" "$size" "$r"
        done
        r=$((r + 1))
    done
    printf '\n' >&2
}
