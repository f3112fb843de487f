# Sourced by the end-to-end scripts. server_port FILE [PATTERN]: wait up to
# 5 s for a server's "listening on 127.0.0.1:PORT" line (one that also
# matches PATTERN) in FILE; print PORT, or return 1.
server_port() {
    for _ in $(seq 100); do
        p=$(sed -n "s/.*listening on 127\\.0\\.0\\.1:\\([0-9]*\\).*${2:-}.*/\\1/p" "$1" 2>/dev/null)
        [ -n "$p" ] && echo "$p" && return 0
        sleep 0.05
    done
    return 1
}

# start_server OUT PATTERN COMMAND...: run COMMAND --port 0 in the
# background, its output in OUT; its pid in $pid, its port in $port (from
# a "listening on" line that also matches PATTERN). If it does not say so,
# print its output and exit 1.
start_server() {
    out_=$1 pattern_=$2
    shift 2
    # OUT is emptied here, before the server's shell opens it: the wait
    # below meets neither a missing file nor an earlier server's line.
    : >"$out_"
    "$@" --port 0 >>"$out_" 2>&1 &
    pid=$!
    # shellcheck disable=SC2034 # $port is the caller's
    port=$(server_port "$out_" "$pattern_") && return 0
    echo "$* did not start:"
    cat "$out_"
    exit 1
}

# stop_server: SIGTERM the server start_server started last and wait for
# it; its exit status is wait's.
stop_server() {
    kill -TERM "$pid"
    wait "$pid"
}
