# The soak (sourced by bench/run.sh; issue 15): SOAK_CONNS connections
# churning for SOAK_SECS seconds against each server (echo_server on every
# backend, the kqueue peer from BK where ./dev bench built it, the
# multishot peer on io_uring and epoll (its buffers run out and its recvs
# pause and resume), http_server on every backend unless SOAK_HTTP=0). weft-soak keeps the connections
# open, each doing 1..8 requests (echo: of 1..SOAK_SIZE bytes, default
# 4096; 65536 takes the long reads' path) with pauses of 0..SOAK_THINK ms (default
# 3000: without them a connection lives a few ms and far fewer are open at
# once) and then closing, half-closing, resetting or resetting
# mid-request, and verifies every byte. The server's descriptors
# (/proc/PID/fd) and RSS (VmRSS) are sampled before, every second during
# (printed every SOAK_SAMPLE seconds), and after the run.
#
# PASS when: weft-soak verified everything in both passes (no mismatch,
# no failed connect, no early end, no stall, every half-close answered by
# the server's end); the descriptors return exactly to their count before,
# after each pass; and the second pass (half as long, after the first) does
# not raise the RSS left after the first by more than 2% + 2 MiB. The RSS
# does not return to the idle start: what stays is a high-water mark set by
# the peak concurrency (glibc's heap keeps the freed 4-16 KiB stream
# buffers: with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4096 an
# echo_server after 2,000 connections churning went back from 13.9 MB to
# 4.5 MB, 1.9 MB at its start; the stack cache keeps up to 64 stacks). A
# leak grows with every connection churned, so the second pass would add
# to it.

SOAK="$B/tools/weft-soak"

soak_servers() {
    mc="--max-connections $((SOAK_CONNS + 2000))"
    for s in \
        "echo_server io_uring|echo|$B/examples/servers/echo/echo_server --backend io_uring $mc --port" \
        "echo_server epoll|echo|$B/examples/servers/echo/echo_server --backend epoll $mc --port" \
        "echo_server poll|echo|$B/examples/servers/echo/echo_server --backend poll $mc --port" \
        "weft-task kqueue (libkqueue over epoll)|echo|${BK:-/nonexistent}/bench/peers/weft_echo_task --backend kqueue --port" \
        "weft-multi io_uring|echo|$PEERS/weft_echo_multi --backend io_uring --port" \
        "weft-multi epoll|echo|$PEERS/weft_echo_multi --backend epoll --port" \
        "http_server io_uring|http|$B/examples/servers/http/http_server --backend io_uring $mc --port" \
        "http_server epoll|http|$B/examples/servers/http/http_server --backend epoll $mc --port" \
        "http_server poll|http|$B/examples/servers/http/http_server --backend poll $mc --port"; do
        bin=${s#*|*|}
        bin=${bin%% *}
        [ "${SOAK_HTTP:-1}" = 1 ] || case "$s" in http_server*) continue ;; esac
        case " ${SOAK_ONLY:-} " in # names, as ECHO_ONLY
        "  ") ;;
        *" ${s%%|*} "*) ;;
        *) continue ;;
        esac
        [ -x "$bin" ] && printf '%s\n' "$s"
    done
}

# soak_pass PROTO SECS: one churn against $SERVER_PID; then waits for the
# server's descriptors to return (10 s at most). Sets pst (weft-soak's
# status), pout (its JSON), and raises fdmax / rssmax.
soak_pass() {
    set -- --port "$PORT" -c "$SOAK_CONNS" -d "$2" --think "${SOAK_THINK:-3000}" \
        --source-ips 16 --json
    if [ "$proto" = echo ]; then
        set -- "$@" -s "${SOAK_SIZE:-4096}"
    else
        set -- "$@" --http "Hello, World!"
    fi
    $PIN_CLIENT "$SOAK" "$@" >"$TMPD/soak.out" 2>"$TMPD/soak.err" &
    client=$!
    t=0
    while kill -0 "$client" 2>/dev/null; do
        sleep 1
        t=$((t + 1))
        fd=$(fd_count "$SERVER_PID") rss=$(rss_kb "$SERVER_PID")
        [ -n "$rss" ] || break # the server died
        [ "$fd" -le "$fdmax" ] || fdmax=$fd
        [ "$rss" -le "$rssmax" ] || rssmax=$rss
        [ $((t % SOAK_SAMPLE)) != 0 ] || say "    $name: ${t}s: $fd descriptors, RSS $rss KiB"
    done
    pst=0
    wait "$client" || pst=$?
    i=0
    while [ $i -lt 50 ] && [ "$(fd_count "$SERVER_PID")" != "$fd0" ]; do
        sleep 0.2
        i=$((i + 1))
    done
    sleep 1
    pout=$(cat "$TMPD/soak.out")
    printf '%s\n' "$pout" >>"${JSONL:-/dev/null}"
    if [ "$pst" != 0 ]; then
        verdict=FAIL
        why="${why:+$why; }client: $(printf '%s' "$pout" | tr -d '\n' | cut -c1-300) $(head -c 200 "$TMPD/soak.err")"
    fi
}

# soak_one NAME PROTO CMD...: SOAK_SECS of churn, the descriptors and RSS
# after it, then a second pass of half as long and the same again; a row
# in $TMPD/soak.rows.
soak_one() {
    name=$1 proto=$2
    shift 2
    if ! start_server "$@"; then
        printf '%s|-|-|-|-|-|-|-|server did not start|FAIL\n' "$name" >>"$TMPD/soak.rows"
        return 0
    fi
    sleep 0.5
    fd0=$(fd_count "$SERVER_PID") rss0=$(rss_kb "$SERVER_PID")
    fdmax=$fd0 rssmax=$rss0 verdict=PASS why=""
    soak_pass "$proto" "$SOAK_SECS"
    out1=$pout
    fd1=$(fd_count "$SERVER_PID") rss1=$(rss_kb "$SERVER_PID")
    soak_pass "$proto" "$((${SOAK_SECS%.*} / 2))"
    out2=$pout
    fd2=$(fd_count "$SERVER_PID") rss2=$(rss_kb "$SERVER_PID")
    [ -n "$rss2" ] || { verdict=FAIL why="${why:+$why; }the server died"; }
    [ "$fd1" = "$fd0" ] && [ "$fd2" = "$fd0" ] ||
        { verdict=FAIL why="${why:+$why; }descriptors $fd0 -> $fd1 -> $fd2"; }
    if [ -n "$rss2" ] && [ "$rss2" -gt $((rss1 + 2048 + rss1 / 50)) ]; then
        verdict=FAIL why="${why:+$why; }RSS grew in the second pass: $rss1 -> $rss2 KiB"
    fi
    stop_server
    sum() { echo $(($(printf '%s' "$out1" | json_field "$1") + $(printf '%s' "$out2" | json_field "$1"))); }
    ended=$(sum finished) reqs=$(sum requests) bytes=$(sum bytes) bad=$(sum mismatch)
    secs=$(printf '%s %s' "$(printf '%s' "$out1" | json_field seconds)" \
        "$(printf '%s' "$out2" | json_field seconds)" | awk '{ printf "%.0f + %.0f", $1, $2 }')
    printf '%s|%s|%s|%s|%s|%s -> %s -> %s -> %s|%s -> %s -> %s -> %s|%s|%s|%s\n' "$name" "$secs" \
        "$ended" "$reqs" "$bytes" "$fd0" "$fdmax" "$fd1" "$fd2" "$rss0" "$rssmax" "$rss1" "$rss2" \
        "$bad" "${why:--}" "$verdict" >>"$TMPD/soak.rows"
    record soak "c$SOAK_CONNS-${SOAK_SECS}s" "$name" 1 "$reqs" "" "" "" ""
    say "  $name: $verdict ($ended connections, $reqs requests verified; fds $fd0 -> $fdmax -> $fd1 -> $fd2, RSS $rss0 -> $rssmax -> $rss1 -> $rss2 KiB)${why:+: $why}"
}

run_soak() {
    : >"$TMPD/soak.rows"
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((SOAK_CONNS + 1000)) ]; then
        ulimit -n $((SOAK_CONNS + 1000)) 2>/dev/null ||
            say "  RLIMIT_NOFILE $(ulimit -n) (hard $(ulimit -Hn)): too low for $SOAK_CONNS connections"
    fi
    soak_servers | while IFS='|' read -r name proto cmd; do
        # shellcheck disable=SC2086
        soak_one "$name" "$proto" $cmd
    done
}

soak_table() {
    printf '| server | s | connections churned | requests verified | bytes | descriptors before -> peak -> after 1st -> after 2nd | RSS KiB before -> peak -> after 1st -> after 2nd | mismatches | failure | verdict |\n'
    printf '|---|---:|---:|---:|---:|---|---|---:|---|---|\n'
    tr '|' '\t' <"$TMPD/soak.rows" | while IFS="$(printf '\t')" read -r a b c d e f g h i j; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i" "$j"
    done
}
