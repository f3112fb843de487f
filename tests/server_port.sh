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
